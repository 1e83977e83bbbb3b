//! Applying one op to the tables: a pure step of (op, stored state) → (new stored state, what
//! it did). It reads no clock and no memory, which is what lets journal replay rebuild exactly
//! the state the writer committed: an idempotency check, for instance, compares the key's
//! window with the job's own `enqueued_at`, not with the time of replay.

use redb::ReadableTable;

use super::error::StoreError;
use super::ops::{IdempotencyKey, WriteOp};
use super::records::{IdempotencyRecord, JobBody, JobRecord, OutboxEntry, decode, encode};
use super::tables::Tables;

/// The job an idempotency key already maps to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Original {
    /// Its id.
    pub id: u64,
    /// Its state, unless it has been deleted since (purge, retention).
    pub state: Option<super::records::StoredState>,
}

/// What applying one op did, beyond the tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// A job was stored: its change for the outbox.
    Inserted(OutboxEntry),
    /// An insert was skipped: its idempotency key maps to this job within its window.
    Duplicate(Original),
    /// A job changed or was deleted: its change for the outbox.
    Changed(OutboxEntry),
    /// Nothing for the outbox (queues, schedules, index upkeep, an update of a missing job).
    Quiet,
}

/// Applies `op` to the tables of one write transaction.
pub fn apply(t: &mut Tables<'_>, op: &WriteOp) -> Result<Applied, StoreError> {
    match op {
        WriteOp::PutQueue { name, record } => {
            t.queues.insert(name.as_str(), encode(record).as_slice())?;
        }
        WriteOp::Insert {
            id,
            record,
            body,
            idempotency,
        } => return insert(t, *id, record, body, idempotency.as_ref()),
        WriteOp::Update { id, change } => {
            let Some(bytes) = t.jobs.get(id)? else {
                // Memory and disk disagree: a bug, but not worth losing the group over.
                tracing::error!(job = id, "update of a job that is not stored; skipped");
                return Ok(Applied::Quiet);
            };
            let mut record: JobRecord = decode(bytes.value())?;
            drop(bytes);
            record.state = change.state;
            record.attempts = change.attempts;
            if let Some(error) = &change.last_error {
                record.last_error = Some(error.clone());
            }
            record.updated_at = change.at;
            record.version += 1;
            t.jobs.insert(id, encode(&record).as_slice())?;
            if let Some(result) = &change.result {
                t.results.insert(id, result.as_str())?;
            }
            if let Some(at) = change.expires_at {
                t.expiry.insert((at, *id), ())?;
            }
            return Ok(Applied::Changed(outbox_entry(
                *id,
                &record,
                Some(record.state),
                change.at,
            )));
        }
        WriteOp::Delete { id, expiry } => {
            if let Some(at) = expiry {
                t.expiry.remove((*at, *id))?;
            }
            let Some(bytes) = t.jobs.remove(id)? else {
                return Ok(Applied::Quiet);
            };
            let mut record: JobRecord = decode(bytes.value())?;
            drop(bytes);
            t.bodies.remove(id)?;
            t.results.remove(id)?;
            record.version += 1;
            let at = record.updated_at;
            return Ok(Applied::Changed(outbox_entry(*id, &record, None, at)));
        }
        WriteOp::MoveExpiry { id, from, to } => {
            t.expiry.remove((*from, *id))?;
            if let Some(to) = to {
                t.expiry.insert((*to, *id), ())?;
            }
        }
        WriteOp::PutSchedule { name, record } => {
            t.schedules
                .insert(name.as_str(), encode(record).as_slice())?;
        }
        WriteOp::DeleteSchedule { name } => {
            t.schedules.remove(name.as_str())?;
        }
        WriteOp::ForgetKey { key, expires_at } => {
            t.idempotency_expiry.remove((*expires_at, key.as_str()))?;
            let current = match t.idempotency.get(key.as_str())? {
                Some(entry) => Some(decode::<IdempotencyRecord>(entry.value())?),
                None => None,
            };
            if current.is_some_and(|c| c.expires_at == *expires_at) {
                t.idempotency.remove(key.as_str())?;
            }
        }
    }
    Ok(Applied::Quiet)
}

/// Stores a new job, unless `key` maps to a job whose window is open at its enqueue time.
fn insert(
    t: &mut Tables<'_>,
    id: u64,
    record: &JobRecord,
    body: &JobBody,
    key: Option<&IdempotencyKey>,
) -> Result<Applied, StoreError> {
    if let Some(key) = key {
        if let Some(original) = live_key(t, key, record.enqueued_at)? {
            return Ok(Applied::Duplicate(original));
        }
        let entry = IdempotencyRecord {
            job_id: id,
            expires_at: key.expires_at,
        };
        if let Some(old) = t
            .idempotency
            .insert(key.key.as_str(), encode(&entry).as_slice())?
        {
            // The key's earlier window has ended: its expiry entry goes with it.
            let old: IdempotencyRecord = decode(old.value())?;
            t.idempotency_expiry
                .remove((old.expires_at, key.key.as_str()))?;
        }
        t.idempotency_expiry
            .insert((key.expires_at, key.key.as_str()), ())?;
    }
    t.jobs.insert(id, encode(record).as_slice())?;
    t.bodies.insert(id, encode(body).as_slice())?;
    Ok(Applied::Inserted(outbox_entry(
        id,
        record,
        Some(record.state),
        record.updated_at,
    )))
}

/// The job `key` maps to, if its window is still open at `now`.
fn live_key(
    t: &Tables<'_>,
    key: &IdempotencyKey,
    now: u64,
) -> Result<Option<Original>, StoreError> {
    let Some(entry) = t.idempotency.get(key.key.as_str())? else {
        return Ok(None);
    };
    let entry: IdempotencyRecord = decode(entry.value())?;
    if entry.expires_at <= now {
        return Ok(None);
    }
    // The original may be gone already (purged, or past its retention): the key still answers
    // with its id, and no state.
    let state = match t.jobs.get(entry.job_id)? {
        Some(record) => Some(decode::<JobRecord>(record.value())?.state),
        None => None,
    };
    Ok(Some(Original {
        id: entry.job_id,
        state,
    }))
}

fn outbox_entry(
    job_id: u64,
    record: &JobRecord,
    state: Option<super::records::StoredState>,
    at: u64,
) -> OutboxEntry {
    OutboxEntry {
        job_id,
        queue: record.queue.clone(),
        state,
        attempts: record.attempts,
        version: record.version,
        at,
    }
}

#[cfg(test)]
mod tests;
