//! Applying one op to the tables: a pure step of (op, stored state) → (new stored state, the
//! events it appends). It reads no clock and no memory, which is what lets journal replay
//! rebuild exactly the state, and the change log, the writer committed: an idempotency check,
//! for instance, compares the key's window with the job's own `enqueued_at`, not with the time
//! of replay.

use std::ops::Bound;

use super::error::StoreError;
use super::layers::Tables;
use super::ops::{IdempotencyKey, JobChange, JobEvent, ScheduleEvent, WriteOp};
use super::records::{
    AuditRecord, CursorRecord, EventData, EventRecord, IdempotencyRecord, JobBody, JobRecord,
    KeyRecord, QueueRecord, ScheduleRecord, StoredState, decode, decode_job_record,
    decode_queue_record_v2_on, encode,
};
use super::tables::META_AUDIT_NEXT;

/// The job an idempotency key already maps to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Original {
    /// Its id.
    pub id: u64,
    /// Its state, unless it has been deleted since (purge, retention).
    pub state: Option<StoredState>,
}

/// What applying one op did, beyond the tables and the events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// A job was stored.
    Inserted(u64),
    /// An insert was skipped: its idempotency key maps to this job within its window.
    Duplicate(Original),
    /// Anything else.
    Done,
}

/// Applies `op` to the tables (the writer's layer of changes), appending its events to
/// `events`.
pub fn apply(
    t: &mut Tables<'_>,
    op: &WriteOp,
    events: &mut Vec<EventRecord>,
) -> Result<Applied, StoreError> {
    match op {
        WriteOp::PutQueue { name, record, at } => {
            let previous = t
                .queues
                .replace(name.clone(), encode(record))?
                .map(|old| decode_queue_record_v2_on(&old))
                .transpose()?;
            queue_events(name, previous.as_ref(), record, *at, events);
        }
        WriteOp::Insert {
            id,
            record,
            body,
            idempotency,
        } => return insert(t, *id, record, body, idempotency.as_ref(), events),
        WriteOp::Update { id, change } => update(t, *id, change, events)?,
        WriteOp::Delete {
            id,
            expiry,
            reason,
            at,
        } => {
            if let Some(expires) = expiry {
                t.expiry.delete((*expires, *id));
            }
            let Some(bytes) = t.jobs.take(*id)? else {
                return Ok(Applied::Done);
            };
            let record = decode_job_record(&bytes)?;
            t.bodies.delete(*id);
            t.results.delete(*id);
            events.push(job_event(
                *id,
                &record,
                *at,
                EventData::JobDeleted { reason: *reason },
            ));
        }
        WriteOp::MoveExpiry { id, from, to } => {
            t.expiry.delete((*from, *id));
            if let Some(to) = to {
                t.expiry.put((*to, *id), ());
            }
        }
        WriteOp::PutSchedule {
            name,
            record,
            event,
            at,
        } => {
            t.schedules.put(name.clone(), encode(record));
            let name = name.clone();
            let (data, job_id) = match *event {
                ScheduleEvent::Put => (
                    EventData::SchedulePut {
                        name,
                        schedule: record.clone(),
                    },
                    None,
                ),
                ScheduleEvent::Paused => (EventData::SchedulePaused { name }, None),
                ScheduleEvent::Resumed => (EventData::ScheduleResumed { name }, None),
                ScheduleEvent::Fired { job_id } => (
                    EventData::ScheduleFired {
                        name,
                        due_at: record.last_fire.unwrap_or(*at),
                    },
                    Some(job_id),
                ),
            };
            events.push(EventRecord {
                at: *at,
                queue: Some(record.queue.clone()),
                job_id,
                data,
            });
        }
        WriteOp::DeleteSchedule { name, at } => {
            let Some(old) = t.schedules.take(name.clone())? else {
                return Ok(Applied::Done);
            };
            let old: ScheduleRecord = decode(&old)?;
            events.push(EventRecord {
                at: *at,
                queue: Some(old.queue),
                job_id: None,
                data: EventData::ScheduleDeleted { name: name.clone() },
            });
        }
        WriteOp::ForgetKey { key, expires_at } => {
            t.idempotency_expiry.delete((*expires_at, key.clone()));
            let current = match t.idempotency.get(key)? {
                Some(entry) => Some(decode::<IdempotencyRecord>(&entry)?),
                None => None,
            };
            if current.is_some_and(|c| c.expires_at == *expires_at) {
                t.idempotency.delete(key.clone());
            }
        }
        WriteOp::Message(message) => {
            if let Some((first, last)) = message.if_stored
                && t.jobs
                    .read()
                    .range(Bound::Included(&first), Bound::Included(&last), false, 1)?
                    .is_empty()
            {
                return Ok(Applied::Done);
            }
            events.push(EventRecord {
                at: message.at,
                queue: None,
                job_id: None,
                data: EventData::Message {
                    topic: message.topic.clone(),
                    key: message.key.clone(),
                    payload: message.payload.clone(),
                    headers: message.headers.clone(),
                },
            });
        }
        WriteOp::QueuePurged { queue, jobs, at } => events.push(EventRecord {
            at: *at,
            queue: Some(queue.clone()),
            job_id: None,
            data: EventData::QueuePurged { jobs: *jobs },
        }),
        WriteOp::QueueDeleted { queue, jobs, at } => {
            t.queues.delete(queue.clone());
            events.push(EventRecord {
                at: *at,
                queue: Some(queue.clone()),
                job_id: None,
                data: EventData::QueueDeleted { jobs: *jobs },
            });
        }
        WriteOp::PutCursor { name, seq, at } => {
            let cursor = CursorRecord {
                seq: *seq,
                updated_at: *at,
            };
            t.cursors.put(name.clone(), encode(&cursor));
        }
        WriteOp::DeleteCursor { name } => {
            t.cursors.delete(name.clone());
        }
        WriteOp::PutKey { id, record } => {
            t.keys.put(id.clone(), encode(record));
        }
        WriteOp::KeyUsed { id, at } | WriteOp::RevokeKey { id, at } => {
            let Some(mut key) = t
                .keys
                .get(id)?
                .map(|v| decode::<KeyRecord>(&v))
                .transpose()?
            else {
                return Ok(Applied::Done);
            };
            if matches!(op, WriteOp::KeyUsed { .. }) {
                key.last_used_at = key.last_used_at.max(Some(*at));
            } else {
                key.revoked_at = key.revoked_at.or(Some(*at));
            }
            t.keys.put(id.clone(), encode(&key));
        }
        WriteOp::Audit {
            record,
            trim_before,
        } => audit(t, record, *trim_before, events)?,
    }
    Ok(Applied::Done)
}

/// Most audit records past their retention one append drops: more than the one it adds, so
/// the trail catches up after its retention is shortened, in steps that stay small.
const AUDIT_TRIM_PER_APPEND: usize = 16;

/// Appends `record` to the audit trail under the next audit sequence number, with its event,
/// and drops the oldest records from before `trim_before`.
fn audit(
    t: &mut Tables<'_>,
    record: &AuditRecord,
    trim_before: u64,
    events: &mut Vec<EventRecord>,
) -> Result<(), StoreError> {
    let seq = t.meta.get(&META_AUDIT_NEXT.to_owned())?.unwrap_or(1);
    t.audit.put(seq, encode(record));
    t.meta.put(META_AUDIT_NEXT.to_owned(), seq + 1);
    let mut expired = Vec::new();
    let oldest = t.audit.read().range(
        Bound::Unbounded,
        Bound::Excluded(&seq),
        false,
        AUDIT_TRIM_PER_APPEND,
    )?;
    for (key, value) in oldest {
        if decode::<AuditRecord>(&value)?.at >= trim_before {
            break;
        }
        expired.push(key);
    }
    for key in expired {
        t.audit.delete(key);
    }
    events.push(EventRecord {
        at: record.at,
        queue: None,
        job_id: None,
        data: EventData::Audit {
            seq,
            record: record.clone(),
        },
    });
    Ok(())
}

/// A queue put's events: created, or updated and/or paused/resumed by what changed.
fn queue_events(
    name: &str,
    previous: Option<&QueueRecord>,
    record: &QueueRecord,
    at: u64,
    events: &mut Vec<EventRecord>,
) {
    let event = |data| EventRecord {
        at,
        queue: Some(name.to_owned()),
        job_id: None,
        data,
    };
    let Some(previous) = previous else {
        events.push(event(EventData::QueueCreated {
            settings: record.clone(),
        }));
        return;
    };
    let settings_changed = QueueRecord {
        paused: record.paused,
        ..previous.clone()
    } != *record;
    if settings_changed {
        events.push(event(EventData::QueueUpdated {
            settings: record.clone(),
        }));
    }
    match (previous.paused, record.paused) {
        (false, true) => events.push(event(EventData::QueuePaused)),
        (true, false) => events.push(event(EventData::QueueResumed)),
        _ => {}
    }
}

/// Stores a new job, unless `key` maps to a job whose window is open at its enqueue time.
fn insert(
    t: &mut Tables<'_>,
    id: u64,
    record: &JobRecord,
    body: &JobBody,
    key: Option<&IdempotencyKey>,
    events: &mut Vec<EventRecord>,
) -> Result<Applied, StoreError> {
    if let Some(key) = key {
        if let Some(original) = live_key(t, key, record.enqueued_at)? {
            return Ok(Applied::Duplicate(original));
        }
        let entry = IdempotencyRecord {
            job_id: id,
            expires_at: key.expires_at,
        };
        if let Some(old) = t.idempotency.replace(key.key.clone(), encode(&entry))? {
            // The key's earlier window has ended: its expiry entry goes with it.
            let old: IdempotencyRecord = decode(&old)?;
            t.idempotency_expiry
                .delete((old.expires_at, key.key.clone()));
        }
        t.idempotency_expiry
            .put((key.expires_at, key.key.clone()), ());
    }
    t.jobs.put(id, encode(record));
    t.bodies.put(id, encode(body));
    let run_at = match record.state {
        StoredState::Queued { run_at } => run_at,
        _ => record.enqueued_at,
    };
    events.push(job_event(
        id,
        record,
        record.enqueued_at,
        EventData::JobEnqueued {
            payload: body.payload.clone(),
            priority: record.priority,
            headers: body.headers.clone(),
            run_at,
            max_attempts: record.max_attempts,
            lease_ms: record.lease_ms,
            group: record.group.clone(),
        },
    ));
    Ok(Applied::Inserted(id))
}

/// Applies a life-cycle transition and appends its events.
fn update(
    t: &mut Tables<'_>,
    id: u64,
    change: &JobChange,
    events: &mut Vec<EventRecord>,
) -> Result<(), StoreError> {
    let Some(bytes) = t.jobs.get(&id)? else {
        // Memory and disk disagree: a bug, but not worth losing the group over.
        tracing::error!(job = id, "update of a job that is not stored; skipped");
        return Ok(());
    };
    let mut record = decode_job_record(&bytes)?;
    record.state = change.state;
    record.attempts = change.attempts;
    if let Some(error) = &change.last_error {
        record.last_error = Some(error.clone());
    }
    record.updated_at = change.at;
    record.version += 1;
    t.jobs.put(id, encode(&record));
    if let Some(result) = &change.result {
        t.results.put(id, result.clone());
    }
    if let Some(at) = change.expires_at {
        t.expiry.put((at, id), ());
    }
    let attempt = change.attempts;
    let failed = || match change.state {
        StoredState::Dead { .. } => EventData::JobDead {
            attempt,
            error: record.last_error.clone(),
        },
        StoredState::Queued { run_at } => EventData::JobRetryScheduled {
            attempt,
            error: change.last_error.clone(),
            run_at,
        },
        // A failure leaves a job dead or queued; anything else is a bug upstream.
        _ => EventData::JobRetryScheduled {
            attempt,
            error: change.last_error.clone(),
            run_at: change.at,
        },
    };
    let lease_expires_at = match change.state {
        StoredState::Leased { deadline, .. } => deadline,
        _ => change.at,
    };
    let mut push = |data| events.push(job_event(id, &record, change.at, data));
    match change.event {
        JobEvent::Leased => push(EventData::JobLeased {
            attempt,
            lease_expires_at,
        }),
        JobEvent::Extended => push(EventData::JobExtended {
            attempt,
            lease_expires_at,
        }),
        JobEvent::Nacked => push(failed()),
        JobEvent::Expired => {
            push(EventData::JobLeaseExpired { attempt });
            push(failed());
        }
        JobEvent::Acked => push(EventData::JobSucceeded {
            attempt,
            result: change.result.clone(),
        }),
        JobEvent::Cancelled => push(EventData::JobCancelled),
        JobEvent::Replayed => push(EventData::JobReplayed),
    }
    Ok(())
}

/// The job `key` maps to, if its window is still open at `now`.
fn live_key(
    t: &Tables<'_>,
    key: &IdempotencyKey,
    now: u64,
) -> Result<Option<Original>, StoreError> {
    let Some(entry) = t.idempotency.get(&key.key)? else {
        return Ok(None);
    };
    let entry: IdempotencyRecord = decode(&entry)?;
    if entry.expires_at <= now {
        return Ok(None);
    }
    // The original may be gone already (purged, or past its retention): the key still answers
    // with its id, and no state.
    let state = match t.jobs.get(&entry.job_id)? {
        Some(record) => Some(decode_job_record(&record)?.state),
        None => None,
    };
    Ok(Some(Original {
        id: entry.job_id,
        state,
    }))
}

/// An event about job `id` of `record`'s queue.
fn job_event(id: u64, record: &JobRecord, at: u64, data: EventData) -> EventRecord {
    EventRecord {
        at,
        queue: Some(record.queue.clone()),
        job_id: Some(id),
        data,
    }
}

#[cfg(test)]
mod tests;
