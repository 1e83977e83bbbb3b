//! Reads: job lookups, listings for the sweeper, and the recovery scans. They read through the
//! layers (`super::layers`), which they share with the writer under a lock held for one read:
//! they see every group the writer has applied, checkpointed or not.

use std::ops::Bound;

use redb::{ReadableDatabase, ReadableTable};

use super::error::StoreError;
use super::layers::{Layered, OwnedKey, OwnedValue, View};
use super::records::{
    AuditRecord, CursorRecord, EventRecord, IdempotencyRecord, JobBody, JobRecord, KeyRecord,
    QueueRecord, ScheduleRecord, StoredState, decode, decode_events, decode_job_record,
    decode_queue_record,
};
use super::tables::{
    AUDIT, BODIES, JOBS, META, META_EVENTS_NEXT, META_NEXT_JOB_ID, QUEUES, RESULTS,
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
        self.view(|v| stored_job(v, id, true))
    }

    /// Every stored queue (for recovery); fields an older record lacks come from `defaults`.
    pub fn queues(&self, defaults: &QueueRecord) -> Result<Vec<(String, QueueRecord)>, StoreError> {
        self.view(|v| {
            all(v.queues)?
                .into_iter()
                .map(|(name, value)| Ok((name, decode_queue_record(&value, defaults)?)))
                .collect()
        })
    }

    /// Every stored schedule (for recovery).
    pub fn schedules(&self) -> Result<Vec<(String, ScheduleRecord)>, StoreError> {
        self.view(|v| decoded(all(v.schedules)?))
    }

    /// Up to `limit` expiry-index entries due at `now` or earlier, oldest first, with the job
    /// record each names (`None` if the job is gone).
    pub fn expired_jobs(
        &self,
        now: u64,
        limit: usize,
    ) -> Result<Vec<(u64, u64, Option<JobRecord>)>, StoreError> {
        self.view(|v| {
            let entries = v.expiry.range(
                Bound::Unbounded,
                Bound::Included(&(now, u64::MAX)),
                false,
                limit,
            )?;
            entries
                .into_iter()
                .map(|((at, id), ())| {
                    let record = v
                        .jobs
                        .get(&id)?
                        .map(|b| decode_job_record(&b))
                        .transpose()?;
                    Ok((at, id, record))
                })
                .collect()
        })
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
        self.view(|v| {
            let lo = after.as_ref().map_or(Bound::Unbounded, Bound::Excluded);
            let entries = v.expiry.range(lo, Bound::Unbounded, false, scan)?;
            let next = (entries.len() == scan)
                .then(|| entries.last().map(|(entry, ())| *entry))
                .flatten();
            let mut found = Vec::new();
            for ((at, id), ()) in entries {
                let Some(bytes) = v.jobs.get(&id)? else {
                    continue;
                };
                let record = decode_job_record(&bytes)?;
                let finished = matches!(
                    record.state,
                    StoredState::Succeeded { .. } | StoredState::Cancelled { .. }
                );
                if finished && record.queue == queue {
                    found.push((at, id));
                }
            }
            Ok((found, next))
        })
    }

    /// Up to `limit` idempotency keys of `queue`: each key ("queue\0key") and when its window
    /// ends.
    pub fn keys_of(&self, queue: &str, limit: usize) -> Result<Vec<(String, u64)>, StoreError> {
        // Keys are "queue\0key": the queue's run of them sorts between "queue\0" and "queue\x01".
        let (from, to) = (format!("{queue}\0"), format!("{queue}\u{1}"));
        self.view(|v| {
            v.idempotency
                .range(Bound::Included(&from), Bound::Excluded(&to), false, limit)?
                .into_iter()
                .map(|(key, value)| Ok((key, decode::<IdempotencyRecord>(&value)?.expires_at)))
                .collect()
        })
    }

    /// How many of `keys` ("queue\0key") map to a job within their window at `now`.
    pub fn live_keys(&self, keys: &[String], now: u64) -> Result<usize, StoreError> {
        self.view(|v| {
            let mut live = 0;
            for key in keys {
                if let Some(bytes) = v.idempotency.get(key)?
                    && decode::<IdempotencyRecord>(&bytes)?.expires_at > now
                {
                    live += 1;
                }
            }
            Ok(live)
        })
    }

    /// Up to `limit` idempotency keys whose window ended at `now` or earlier.
    pub fn expired_keys(&self, now: u64, limit: usize) -> Result<Vec<(u64, String)>, StoreError> {
        let end = (now, "\u{10FFFF}".to_owned());
        self.view(|v| {
            Ok(v.idempotency_expiry
                .range(Bound::Unbounded, Bound::Included(&end), false, limit)?
                .into_iter()
                .map(|(key, ())| key)
                .collect())
        })
    }

    /// The earliest time a job's retention or a key's window ends.
    pub fn next_expiry(&self) -> Result<Option<u64>, StoreError> {
        self.view(|v| {
            let job = v.expiry.first()?.map(|((at, _), ())| at);
            let key = v.idempotency_expiry.first()?.map(|((at, _), ())| at);
            Ok(job.into_iter().chain(key).min())
        })
    }

    /// How many job records the data file holds, live and finished (an O(1) read of the table
    /// header; changes not checkpointed yet are not counted: at start-up there are none).
    pub fn job_count(&self) -> Result<u64, StoreError> {
        let layers = self.layers.read();
        layers.base.as_ref().ok_or(StoreError::Closed)?.job_count()
    }

    /// Calls `visit` for every stored job record in id order (for recovery).
    pub fn scan_jobs(&self, mut visit: impl FnMut(u64, JobRecord)) -> Result<(), StoreError> {
        self.view(|v| {
            let mut after = None;
            loop {
                let lo = after.as_ref().map_or(Bound::Unbounded, Bound::Excluded);
                let page = v.jobs.range(lo, Bound::Unbounded, false, SCAN_PAGE)?;
                let Some((last, _)) = page.last() else {
                    return Ok(());
                };
                after = Some(*last);
                for (id, bytes) in page {
                    visit(id, decode_job_record(&bytes)?);
                }
            }
        })
    }

    /// The next job id to allocate (ids are never reused).
    pub fn next_job_id(&self) -> Result<u64, StoreError> {
        self.view(|v| Ok(v.meta.get(&META_NEXT_JOB_ID.to_owned())?.unwrap_or(1)))
    }

    /// Up to `limit` events after `after` and none after `upto`, in order, with where the log
    /// starts now (a reader behind `first` has missed trimmed events).
    pub fn read_events(
        &self,
        after: u64,
        upto: u64,
        limit: usize,
    ) -> Result<EventsRead, StoreError> {
        self.view(|v| {
            let first = v.events_first;
            let mut read = EventsRead {
                first,
                events: Vec::new(),
            };
            let wanted = after.saturating_add(1);
            if wanted > upto || limit == 0 {
                return Ok(read);
            }
            // The batch holding `wanted`: the last one keyed at or before it.
            let start = v
                .events
                .range(Bound::Unbounded, Bound::Included(&wanted), true, 1)?
                .pop()
                .map_or(wanted, |(key, _)| key);
            // A batch holds at least one event: at most `limit` batches hold what is wanted.
            let batches = v.events.range(
                Bound::Included(&start),
                Bound::Included(&upto),
                false,
                limit,
            )?;
            for (key, value) in batches {
                for (seq, event) in (key..).zip(decode_events(&value)?) {
                    if seq > upto || read.events.len() == limit {
                        return Ok(read);
                    }
                    if seq >= wanted {
                        read.events.push((seq, event));
                    }
                }
            }
            Ok(read)
        })
    }

    /// Every reader's cursor, by name.
    pub fn cursors(&self) -> Result<Vec<(String, CursorRecord)>, StoreError> {
        self.view(|v| decoded(all(v.cursors)?))
    }

    /// Every API key, revoked ones included, by id.
    pub fn keys(&self) -> Result<Vec<(String, KeyRecord)>, StoreError> {
        self.view(|v| decoded(all(v.keys)?))
    }

    /// One reader's cursor.
    pub fn cursor(&self, name: &str) -> Result<Option<CursorRecord>, StoreError> {
        self.view(|v| {
            Ok(v.cursors
                .get(&name.to_owned())?
                .map(|b| decode(&b))
                .transpose()?)
        })
    }

    /// Up to `limit` audit records after sequence `after`, in order.
    pub fn audit(&self, after: u64, limit: usize) -> Result<Vec<(u64, AuditRecord)>, StoreError> {
        self.view(|v| {
            let rows = v
                .audit
                .range(Bound::Excluded(&after), Bound::Unbounded, false, limit)?;
            decoded(rows)
        })
    }

    /// A consistent view of every job and queue, for a mirror's snapshot: everything so far
    /// is checkpointed first, then one read transaction of the data file is held, with the
    /// last event its state reflects.
    pub fn snapshot(&self) -> Result<Snapshot, StoreError> {
        self.flush()?;
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

    /// Runs `read` over a consistent view of the layers (the store must be open).
    fn view<T>(
        &self,
        read: impl FnOnce(View<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.db()?;
        let layers = self.layers.read();
        read(View::new(&layers)?)
    }
}

/// Jobs a recovery scan reads at a time.
const SCAN_PAGE: usize = 4096;

/// Every entry of a table, in key order.
fn all<K: OwnedKey, V: OwnedValue>(table: Layered<'_, K, V>) -> Result<Vec<(K, V)>, StoreError> {
    table.range(Bound::Unbounded, Bound::Unbounded, false, usize::MAX)
}

/// Entries with their values decoded.
fn decoded<K, T: serde::de::DeserializeOwned>(
    rows: Vec<(K, Vec<u8>)>,
) -> Result<Vec<(K, T)>, StoreError> {
    rows.into_iter()
        .map(|(key, value)| Ok((key, decode(&value)?)))
        .collect()
}

/// Job `id` with its body, and its result if `result` (as the view sees them).
pub(super) fn stored_job<'a>(
    view: View<'a>,
    id: u64,
    result: bool,
) -> Result<Option<StoredJob>, StoreError> {
    let Some(record) = view.jobs.get(&id)? else {
        return Ok(None);
    };
    let record = decode_job_record(&record)?;
    let body = match view.bodies.get(&id)? {
        Some(body) => decode(&body)?,
        None => JobBody {
            payload: "null".into(),
            headers: Vec::new(),
        },
    };
    let result = if result { view.results.get(&id)? } else { None };
    Ok(Some(StoredJob {
        record,
        body,
        result,
    }))
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
