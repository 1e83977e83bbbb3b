//! Reads: job lookups, listings for the sweeper, and the recovery scans. They use redb read
//! transactions, which run concurrently with the writer and see its last commit.

use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata};

use super::error::StoreError;
use super::records::{
    AuditRecord, CursorRecord, EventRecord, IdempotencyRecord, JobBody, JobRecord, KeyRecord,
    QueueRecord, ScheduleRecord, StoredState, decode, decode_events, decode_job_record,
    decode_queue_record,
};
use super::tables::{
    AUDIT, BODIES, CURSORS, EVENTS, EXPIRY, IDEMPOTENCY, IDEMPOTENCY_EXPIRY, JOBS, KEYS, META,
    META_EVENTS_NEXT, META_NEXT_JOB_ID, QUEUES, RESULTS, SCHEDULES,
};
use super::{Store, StoredJob};

/// A stretch of the change log.
#[derive(Debug, Clone, Default)]
pub struct EventsRead {
    /// The oldest event still kept (when the log is empty: the sequence the next event gets).
    pub first: u64,
    /// The events read, with their sequence numbers, in order.
    pub events: Vec<(u64, EventRecord)>,
}

/// An entry of the expiry index: (when the job's retention ends, its id).
pub type ExpiryEntry = (u64, u64);

impl Store {
    /// Reads one job with its body and result (blocking I/O: call off the async runtime).
    pub fn read_job(&self, id: u64) -> Result<Option<StoredJob>, StoreError> {
        let db = self.db()?;
        let txn = db.begin_read()?;
        let Some(record) = txn.open_table(JOBS)?.get(id)? else {
            return Ok(None);
        };
        let record = decode_job_record(record.value())?;
        let body = match txn.open_table(BODIES)?.get(id)? {
            Some(body) => decode(body.value())?,
            None => JobBody {
                payload: "null".into(),
                headers: Vec::new(),
            },
        };
        let result = txn
            .open_table(RESULTS)?
            .get(id)?
            .map(|r| r.value().to_owned());
        Ok(Some(StoredJob {
            record,
            body,
            result,
        }))
    }

    /// Every stored queue (for recovery); fields an older record lacks come from `defaults`.
    pub fn queues(&self, defaults: &QueueRecord) -> Result<Vec<(String, QueueRecord)>, StoreError> {
        let db = self.db()?;
        let txn = db.begin_read()?;
        let table = txn.open_table(QUEUES)?;
        let mut queues = Vec::new();
        for row in table.iter()? {
            let (name, value) = row?;
            queues.push((
                name.value().to_owned(),
                decode_queue_record(value.value(), defaults)?,
            ));
        }
        Ok(queues)
    }

    /// Every stored schedule (for recovery).
    pub fn schedules(&self) -> Result<Vec<(String, ScheduleRecord)>, StoreError> {
        let db = self.db()?;
        let txn = db.begin_read()?;
        let table = txn.open_table(SCHEDULES)?;
        let mut schedules = Vec::new();
        for row in table.iter()? {
            let (name, value) = row?;
            schedules.push((name.value().to_owned(), decode(value.value())?));
        }
        Ok(schedules)
    }

    /// Up to `limit` expiry-index entries due at `now` or earlier, oldest first, with the job
    /// record each names (`None` if the job is gone).
    pub fn expired_jobs(
        &self,
        now: u64,
        limit: usize,
    ) -> Result<Vec<(u64, u64, Option<JobRecord>)>, StoreError> {
        let db = self.db()?;
        let txn = db.begin_read()?;
        let expiry = txn.open_table(EXPIRY)?;
        let jobs = txn.open_table(JOBS)?;
        let mut out = Vec::new();
        for row in expiry.range((0, 0)..=(now, u64::MAX))?.take(limit) {
            let (key, _) = row?;
            let (at, id) = key.value();
            let record = match jobs.get(id)? {
                Some(bytes) => Some(decode_job_record(bytes.value())?),
                None => None,
            };
            out.push((at, id, record));
        }
        Ok(out)
    }

    /// The finished jobs (succeeded, cancelled) of `queue`, looking at up to `scan` entries of
    /// the expiry index after `after` (which holds every finished and dead job, by when its
    /// retention ends): their entries `(expires at, id)`, and the entry to go on after
    /// (`None`: the index is done). Bounded per call, as the index holds every queue's jobs.
    pub fn finished_jobs_of(
        &self,
        queue: &str,
        after: Option<ExpiryEntry>,
        scan: usize,
    ) -> Result<(Vec<ExpiryEntry>, Option<ExpiryEntry>), StoreError> {
        let db = self.db()?;
        let txn = db.begin_read()?;
        let expiry = txn.open_table(EXPIRY)?;
        let jobs = txn.open_table(JOBS)?;
        let (mut found, mut last, mut scanned) = (Vec::new(), None, 0);
        let start = after.map_or((0, 0), |(at, id)| match id.checked_add(1) {
            Some(next) => (at, next),
            None => (at.saturating_add(1), 0),
        });
        for row in expiry.range(start..)? {
            if scanned == scan {
                return Ok((found, last));
            }
            scanned += 1;
            let (key, _) = row?;
            let (at, id) = key.value();
            last = Some((at, id));
            let Some(bytes) = jobs.get(id)? else { continue };
            let record = decode_job_record(bytes.value())?;
            let finished = matches!(
                record.state,
                StoredState::Succeeded { .. } | StoredState::Cancelled { .. }
            );
            if finished && record.queue == queue {
                found.push((at, id));
            }
        }
        Ok((found, None))
    }

    /// Up to `limit` idempotency keys of `queue`: each key ("queue\0key") and when its window
    /// ends.
    pub fn keys_of(&self, queue: &str, limit: usize) -> Result<Vec<(String, u64)>, StoreError> {
        let db = self.db()?;
        let txn = db.begin_read()?;
        let table = txn.open_table(IDEMPOTENCY)?;
        // Keys are "queue\0key": the queue's run of them sorts between "queue\0" and "queue\x01".
        let (from, to) = (format!("{queue}\0"), format!("{queue}\u{1}"));
        let mut out = Vec::new();
        for row in table.range(from.as_str()..to.as_str())?.take(limit) {
            let (key, value) = row?;
            let record: IdempotencyRecord = decode(value.value())?;
            out.push((key.value().to_owned(), record.expires_at));
        }
        Ok(out)
    }

    /// Up to `limit` idempotency keys whose window ended at `now` or earlier.
    pub fn expired_keys(&self, now: u64, limit: usize) -> Result<Vec<(u64, String)>, StoreError> {
        let db = self.db()?;
        let txn = db.begin_read()?;
        let table = txn.open_table(IDEMPOTENCY_EXPIRY)?;
        let mut out = Vec::new();
        for row in table.range((0, "")..=(now, "\u{10FFFF}"))?.take(limit) {
            let (key, _) = row?;
            let (at, name) = key.value();
            out.push((at, name.to_owned()));
        }
        Ok(out)
    }

    /// The earliest time a job's retention or a key's window ends.
    pub fn next_expiry(&self) -> Result<Option<u64>, StoreError> {
        let db = self.db()?;
        let txn = db.begin_read()?;
        let job = txn.open_table(EXPIRY)?.first()?.map(|(k, _)| k.value().0);
        let key = txn
            .open_table(IDEMPOTENCY_EXPIRY)?
            .first()?
            .map(|(k, _)| k.value().0);
        Ok(job.into_iter().chain(key).min())
    }

    /// How many job records are stored, live and finished (an O(1) read of the table header).
    pub fn job_count(&self) -> Result<u64, StoreError> {
        let db = self.db()?;
        let txn = db.begin_read()?;
        Ok(txn.open_table(JOBS)?.len()?)
    }

    /// Calls `visit` for every stored job record in id order (for recovery).
    pub fn scan_jobs(&self, mut visit: impl FnMut(u64, JobRecord)) -> Result<(), StoreError> {
        let db = self.db()?;
        let txn = db.begin_read()?;
        for row in txn.open_table(JOBS)?.iter()? {
            let (id, value) = row?;
            visit(id.value(), decode_job_record(value.value())?);
        }
        Ok(())
    }

    /// The next job id to allocate (ids are never reused).
    pub fn next_job_id(&self) -> Result<u64, StoreError> {
        let db = self.db()?;
        let txn = db.begin_read()?;
        Ok(txn
            .open_table(META)?
            .get(META_NEXT_JOB_ID)?
            .map_or(1, |v| v.value()))
    }

    /// Up to `limit` events after `after` and none after `upto`, in order, with where the log
    /// starts now (a reader behind `first` has missed trimmed events).
    pub fn read_events(
        &self,
        after: u64,
        upto: u64,
        limit: usize,
    ) -> Result<EventsRead, StoreError> {
        let db = self.db()?;
        let txn = db.begin_read()?;
        let table = txn.open_table(EVENTS)?;
        let first = match table.first()? {
            Some((key, _)) => key.value(),
            None => txn
                .open_table(META)?
                .get(META_EVENTS_NEXT)?
                .map_or(1, |v| v.value()),
        };
        let mut read = EventsRead {
            first,
            events: Vec::new(),
        };
        let wanted = after.saturating_add(1);
        if wanted > upto || limit == 0 {
            return Ok(read);
        }
        // The batch holding `wanted`: the last one keyed at or before it.
        let start = table
            .range(..=wanted)?
            .next_back()
            .transpose()?
            .map_or(wanted, |(key, _)| key.value());
        for row in table.range(start..=upto)? {
            let (key, value) = row?;
            for (seq, event) in (key.value()..).zip(decode_events(value.value())?) {
                if seq > upto || read.events.len() == limit {
                    return Ok(read);
                }
                if seq >= wanted {
                    read.events.push((seq, event));
                }
            }
        }
        Ok(read)
    }

    /// Every reader's cursor, by name.
    pub fn cursors(&self) -> Result<Vec<(String, CursorRecord)>, StoreError> {
        let db = self.db()?;
        let txn = db.begin_read()?;
        let table = txn.open_table(CURSORS)?;
        let mut cursors = Vec::new();
        for row in table.iter()? {
            let (name, value) = row?;
            cursors.push((name.value().to_owned(), decode(value.value())?));
        }
        Ok(cursors)
    }

    /// Every API key, revoked ones included, by id.
    pub fn keys(&self) -> Result<Vec<(String, KeyRecord)>, StoreError> {
        let db = self.db()?;
        let txn = db.begin_read()?;
        let table = txn.open_table(KEYS)?;
        let mut keys = Vec::new();
        for row in table.iter()? {
            let (id, value) = row?;
            keys.push((id.value().to_owned(), decode(value.value())?));
        }
        Ok(keys)
    }

    /// One reader's cursor.
    pub fn cursor(&self, name: &str) -> Result<Option<CursorRecord>, StoreError> {
        let db = self.db()?;
        let txn = db.begin_read()?;
        let table = txn.open_table(CURSORS)?;
        Ok(match table.get(name)? {
            Some(value) => Some(decode(value.value())?),
            None => None,
        })
    }

    /// Up to `limit` audit records after sequence `after`, in order.
    pub fn audit(&self, after: u64, limit: usize) -> Result<Vec<(u64, AuditRecord)>, StoreError> {
        let db = self.db()?;
        let txn = db.begin_read()?;
        audit_rows(&txn, after, limit)
    }

    /// A consistent view of every job and queue, for a mirror's snapshot: one read
    /// transaction, with the last event its state reflects.
    pub fn snapshot(&self) -> Result<Snapshot, StoreError> {
        let db = self.db()?;
        let txn = db.begin_read()?;
        let next = txn
            .open_table(META)?
            .get(META_EVENTS_NEXT)?
            .map_or(1, |v| v.value());
        Ok(Snapshot {
            txn,
            seq: next - 1,
            after: 0,
        })
    }
}

/// A read transaction held open while a mirror copies the state it sees.
pub struct Snapshot {
    txn: redb::ReadTransaction,
    /// The last event the state reflects.
    pub seq: u64,
    /// The last job id read so far.
    after: u64,
}

/// Up to `limit` audit records after `after`, read in `txn`.
fn audit_rows(
    txn: &redb::ReadTransaction,
    after: u64,
    limit: usize,
) -> Result<Vec<(u64, AuditRecord)>, StoreError> {
    let table = txn.open_table(AUDIT)?;
    let mut out = Vec::new();
    for row in table.range(after.saturating_add(1)..)?.take(limit) {
        let (seq, value) = row?;
        out.push((seq.value(), decode(value.value())?));
    }
    Ok(out)
}

impl Snapshot {
    /// Up to `limit` audit records after sequence `after`, as of the snapshot.
    pub fn audit(&self, after: u64, limit: usize) -> Result<Vec<(u64, AuditRecord)>, StoreError> {
        audit_rows(&self.txn, after, limit)
    }

    /// Every queue with its settings.
    pub fn queues(&self, defaults: &QueueRecord) -> Result<Vec<(String, QueueRecord)>, StoreError> {
        let table = self.txn.open_table(QUEUES)?;
        let mut queues = Vec::new();
        for row in table.iter()? {
            let (name, value) = row?;
            queues.push((
                name.value().to_owned(),
                decode_queue_record(value.value(), defaults)?,
            ));
        }
        Ok(queues)
    }

    /// The next `limit` jobs in id order (empty when every job has been read).
    pub fn next_jobs(&mut self, limit: usize) -> Result<Vec<(u64, StoredJob)>, StoreError> {
        let jobs = self.txn.open_table(JOBS)?;
        let bodies = self.txn.open_table(BODIES)?;
        let results = self.txn.open_table(RESULTS)?;
        let mut out = Vec::with_capacity(limit);
        for row in jobs.range(self.after.saturating_add(1)..)?.take(limit) {
            let (id, value) = row?;
            let id = id.value();
            let record = decode_job_record(value.value())?;
            let body = match bodies.get(id)? {
                Some(body) => decode(body.value())?,
                None => JobBody {
                    payload: "null".into(),
                    headers: Vec::new(),
                },
            };
            let result = results.get(id)?.map(|r| r.value().to_owned());
            out.push((
                id,
                StoredJob {
                    record,
                    body,
                    result,
                },
            ));
            self.after = id;
        }
        Ok(out)
    }
}
