//! The single writer thread (`wharf-storage`): group commit.
//!
//! Requests arrive on a channel. The thread takes what is queued (up to `max_group` requests or
//! 64 MiB of ops), applies them in arrival order inside one redb write transaction committed
//! without fsync, and hands the group's ops to the [`journal`](super::journal) as one frame.
//! Requests that must be durable are answered by the journal thread after its fdatasync; the
//! others at once. Arrival order is the order the broker decided the changes in (it submits
//! while holding its state lock), so disk and memory agree. Checkpoints (durable redb commits)
//! let the journal start over.
//!
//! A failed commit, journal write or checkpoint poisons the store: every waiter of that group
//! and every later request gets [`StoreError::Poisoned`]. Retrying an fsync that failed is
//! unsafe (the kernel may have dropped the dirty pages), so the only way on is a restart, which
//! recovers from the last checkpoint and the journal.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use redb::{Database, Durability, ReadableDatabase, ReadableTable, Table, WriteTransaction};
use serde::{Deserialize, Serialize};
use tokio::sync::{OwnedSemaphorePermit, oneshot};

use super::journal::{self, Journal};
use super::records::{
    IdempotencyRecord, JobBody, JobRecord, OutboxEntry, QueueRecord, ScheduleRecord, StoredState,
    decode, encode,
};
use super::tables::{
    BODIES, EXPIRY, IDEMPOTENCY, IDEMPOTENCY_EXPIRY, JOBS, META, META_JOURNAL_SALT,
    META_JOURNAL_SEQ, META_NEXT_JOB_ID, META_OUTBOX_NEXT, OUTBOX, QUEUES, RESULTS, SCHEDULES,
};
use super::{StoreError, StoreMetrics, StoredJob};

/// One change, applied atomically with the rest of its request. Applying an op depends only on
/// the op and the stored state (never on the clock), so replaying the journal after a crash
/// rebuilds exactly what was acknowledged.
#[derive(Debug, Serialize, Deserialize)]
pub enum WriteOp {
    /// Create or replace a queue's defaults.
    PutQueue {
        /// Queue name.
        name: String,
        /// Its defaults.
        record: QueueRecord,
    },
    /// Store a new job, unless its idempotency key already maps to a job within its window
    /// (then nothing is written and the result names the original job).
    Insert {
        /// Its id.
        id: u64,
        /// State and scheduling fields.
        record: JobRecord,
        /// Payload and headers.
        body: JobBody,
        /// The job's idempotency key, if it has one.
        idempotency: Option<IdempotencyKey>,
    },
    /// Apply a life-cycle transition the broker decided.
    Update {
        /// The job.
        id: u64,
        /// What changes.
        change: JobChange,
    },
    /// Remove a job and everything stored for it (purge, retention).
    Delete {
        /// The job.
        id: u64,
        /// Its entry in the expiry index, if it has one.
        expiry: Option<u64>,
    },
    /// Move a job's expiry-index entry (`to: None` drops a stale one).
    MoveExpiry {
        /// The job.
        id: u64,
        /// The entry's current time.
        from: u64,
        /// Its new time.
        to: Option<u64>,
    },
    /// Create or replace a schedule.
    PutSchedule {
        /// Its name.
        name: String,
        /// The schedule.
        record: ScheduleRecord,
    },
    /// Delete a schedule.
    DeleteSchedule {
        /// Its name.
        name: String,
    },
    /// Forget an idempotency key whose window ended at `expires_at` (kept if it was reused
    /// since, with a later window).
    ForgetKey {
        /// "queue\0key".
        key: String,
        /// The end of the window being forgotten.
        expires_at: u64,
    },
}

/// An idempotency key and the end of its window.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IdempotencyKey {
    /// "queue\0key": keys are scoped to their queue.
    pub key: String,
    /// When the key stops mapping to the job (epoch ms).
    pub expires_at: u64,
}

/// The job an idempotency key already maps to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Original {
    /// Its id.
    pub id: u64,
    /// Its state, unless it has been deleted since (purge, retention).
    pub state: Option<StoredState>,
}

/// What a write request produced.
#[derive(Debug, Default)]
pub struct Written {
    /// The rows asked for in `fetch`, in order.
    pub fetched: Vec<Option<StoredJob>>,
    /// One entry per `Insert` op, in order: `None` if the job was stored, or the original job
    /// its idempotency key maps to (id, and state unless it has been deleted since).
    pub duplicates: Vec<Option<Original>>,
}

/// The fields a transition sets; everything else in the record is kept.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobChange {
    /// The new state.
    pub state: StoredState,
    /// The new attempt count.
    pub attempts: u32,
    /// Replaces the last error when `Some`.
    pub last_error: Option<String>,
    /// Stores an ack result when `Some`.
    pub result: Option<String>,
    /// Indexes the job for retention at this time (succeeded, cancelled, dead).
    pub expires_at: Option<u64>,
    /// When the change happened (epoch ms).
    pub at: u64,
}

/// A batch of ops to apply atomically, plus jobs to read back after them.
pub(super) struct WriteRequest {
    pub ops: Vec<WriteOp>,
    pub fetch: Vec<u64>,
    /// Whether the reply must wait for an fsync. Lease writes (polls, expiries) need not: if
    /// one is lost in a crash the job is only delivered again, which at-least-once allows.
    pub durable: bool,
    pub reply: Reply,
}

impl WriteRequest {
    /// Roughly the bytes its ops take in a journal frame (payloads dominate).
    fn approx_len(&self) -> usize {
        self.ops.iter().map(WriteOp::approx_len).sum()
    }
}

impl WriteOp {
    fn approx_len(&self) -> usize {
        const FIXED: usize = 64;
        match self {
            WriteOp::Insert { body, .. } => {
                FIXED
                    + body.payload.len()
                    + body
                        .headers
                        .iter()
                        .map(|(k, v)| k.len() + v.len())
                        .sum::<usize>()
            }
            WriteOp::Update { change, .. } => {
                FIXED
                    + change.result.as_ref().map_or(0, String::len)
                    + change.last_error.as_ref().map_or(0, String::len)
            }
            WriteOp::PutSchedule { record, .. } => FIXED + record.template.payload.len(),
            _ => FIXED,
        }
    }
}

/// A commit group stops taking requests once their ops reach this size. With requests of at
/// most `max_body_bytes` (at most 256 MiB, see the config), a frame stays below the journal's
/// 1 GiB frame limit.
const MAX_GROUP_BYTES: usize = 64 << 20;

/// Where a request's answer goes.
pub(super) struct Reply {
    pub tx: oneshot::Sender<Result<Written, StoreError>>,
    /// Holds a place in the bounded admission queue until the request is answered.
    pub _permit: OwnedSemaphorePermit,
}

impl Reply {
    pub fn send(self, result: Result<Written, StoreError>) {
        // The submitter may have gone away (a dropped HTTP request); nothing to do then.
        let _ = self.tx.send(result);
    }
}

/// Messages to the writer thread.
pub(super) enum Message {
    Write(WriteRequest),
    /// Finish what is queued, make everything durable, and exit.
    Shutdown,
}

/// How the writer makes commits durable.
#[derive(Debug, Clone, Copy)]
pub(super) struct WriterOptions {
    /// `false` (`async` mode): no request waits for an fsync.
    pub sync_mode: bool,
    pub max_group: usize,
    pub outbox_max_entries: u64,
    /// A checkpoint (durable redb commit, then the journal starts over) follows at most this
    /// long after the first change since the last one...
    pub checkpoint_interval: Duration,
    /// ...or as soon as this many journal bytes were written since it.
    pub checkpoint_bytes: usize,
}

pub(super) struct Writer {
    pub db: Arc<Database>,
    pub options: WriterOptions,
    pub metrics: Arc<StoreMetrics>,
    pub poisoned: Arc<AtomicBool>,
    /// Outbox change sequence range currently stored: `[first, next)`. `first` is the key of
    /// the oldest stored batch.
    pub outbox_first: u64,
    pub outbox_next: u64,
    /// The changes of the transaction being built, written as one batch by `finish`.
    pub outbox_batch: Vec<OutboxEntry>,
    pub next_job_id: u64,
    /// Sequence of the last journal frame (applied to redb, not necessarily durable).
    pub journal_seq: u64,
    /// This run's frame checksum salt (set by `recover`).
    pub journal_salt: u64,
    /// When the first change since the last checkpoint was committed, and the journal bytes
    /// written since.
    pub dirty_since: Option<Instant>,
    pub journal_bytes: usize,
    /// Reused buffer for encoding frames.
    pub frame: Vec<u8>,
}

impl Writer {
    /// Runs the writer thread until shutdown.
    pub fn run(mut self, rx: Receiver<Message>, mut journal: Journal) {
        loop {
            let first = match self.dirty_since {
                Some(since) => {
                    let wait = self
                        .options
                        .checkpoint_interval
                        .saturating_sub(since.elapsed());
                    match rx.recv_timeout(wait) {
                        Ok(message) => message,
                        Err(RecvTimeoutError::Timeout) => {
                            self.checkpoint(&journal);
                            continue;
                        }
                        Err(RecvTimeoutError::Disconnected) => Message::Shutdown,
                    }
                }
                None => rx.recv().unwrap_or(Message::Shutdown),
            };
            let mut group = Vec::new();
            let mut bytes = 0;
            let mut shutdown = false;
            match first {
                Message::Write(request) => {
                    bytes += request.approx_len();
                    group.push(request);
                }
                Message::Shutdown => shutdown = true,
            }
            // A group is one journal frame: its size is capped as well as its count.
            while !shutdown && group.len() < self.options.max_group && bytes < MAX_GROUP_BYTES {
                match rx.try_recv() {
                    Ok(Message::Write(request)) => {
                        bytes += request.approx_len();
                        group.push(request);
                    }
                    Ok(Message::Shutdown) => shutdown = true,
                    Err(_) => break,
                }
            }
            if !group.is_empty() {
                self.commit_group(group, &journal);
            }
            let due = self.dirty_since.is_some_and(|since| {
                since.elapsed() >= self.options.checkpoint_interval
                    || self.journal_bytes >= self.options.checkpoint_bytes
            });
            if due || shutdown {
                self.checkpoint(&journal);
            }
            if shutdown {
                journal.shutdown();
                // Answer whatever raced in behind the shutdown message.
                while let Ok(Message::Write(request)) = rx.try_recv() {
                    request.reply.send(Err(StoreError::Closed));
                }
                return;
            }
        }
    }

    fn commit_group(&mut self, group: Vec<WriteRequest>, journal: &Journal) {
        if self.poisoned.load(Ordering::Acquire) {
            for request in group {
                request.reply.send(Err(StoreError::Poisoned));
            }
            return;
        }
        let outbox_next = self.outbox_next;
        let next_job_id = self.next_job_id;
        let seq = self.journal_seq + 1;
        self.frame.clear();
        let started = Instant::now();
        let result = self.write_group(&group, seq).and_then(|results| {
            journal::encode_frame(
                seq,
                self.journal_salt,
                group.iter().flat_map(|r| &r.ops),
                &mut self.frame,
            )
            .map(|()| results)
        });
        match result {
            Ok(results) => {
                self.metrics
                    .apply_seconds
                    .observe(started.elapsed().as_secs_f64());
                self.journal_seq = seq;
                self.journal_bytes += self.frame.len();
                self.dirty_since.get_or_insert_with(Instant::now);
                self.metrics.group_size.observe(group.len() as f64);
                let mut waiters = Vec::new();
                for (request, written) in group.into_iter().zip(results) {
                    if self.options.sync_mode && request.durable {
                        waiters.push((request.reply, written));
                    } else {
                        request.reply.send(Ok(written));
                    }
                }
                journal.append(seq, &self.frame, waiters);
            }
            Err(error) => {
                tracing::error!(%error, "commit failed; storage is poisoned and refuses writes until restart");
                self.poisoned.store(true, Ordering::Release);
                self.outbox_next = outbox_next;
                self.outbox_batch.clear();
                self.next_job_id = next_job_id;
                for request in group {
                    request.reply.send(Err(StoreError::Poisoned));
                }
            }
        }
    }

    /// Applies a whole group (journal frame `seq`) in one redb transaction, committed without
    /// fsync: the journal frame makes it durable.
    fn write_group(
        &mut self,
        group: &[WriteRequest],
        seq: u64,
    ) -> Result<Vec<Written>, StoreError> {
        let mut txn = self.db.begin_write()?;
        txn.set_durability(Durability::None)?;
        let mut results = Vec::with_capacity(group.len());
        {
            let mut tables = Tables::open(&txn)?;
            for request in group {
                let mut written = Written::default();
                for op in &request.ops {
                    if let Some(duplicate) = self.apply(&mut tables, op)? {
                        written.duplicates.push(duplicate);
                    }
                }
                written.fetched = fetch(&tables, &request.fetch)?;
                results.push(written);
            }
            self.finish(&mut tables, seq)?;
        }
        txn.commit()?;
        Ok(results)
    }

    /// What every transaction ends with. Recording the last journal frame it holds in the
    /// transaction itself keeps `meta.journal_seq` exact whatever redb ends up keeping: at a
    /// crash redb falls back to the last checkpoint, but closing the database (say, a clean
    /// stop after a failed fsync) makes every non-durable commit durable, and replay must then
    /// skip exactly those frames, not apply them twice.
    fn finish(&mut self, tables: &mut Tables<'_>, seq: u64) -> Result<(), StoreError> {
        if !self.outbox_batch.is_empty() {
            let first = self.outbox_next - self.outbox_batch.len() as u64;
            tables
                .outbox
                .insert(first, encode(&self.outbox_batch).as_slice())?;
            self.outbox_batch.clear();
        }
        tables.meta.insert(META_OUTBOX_NEXT, self.outbox_next)?;
        self.trim_outbox(&mut tables.outbox)?;
        tables.meta.insert(META_NEXT_JOB_ID, self.next_job_id)?;
        tables.meta.insert(META_JOURNAL_SEQ, seq)?;
        Ok(())
    }

    /// Makes everything so far durable in redb itself, so the journal can start over. Waits for
    /// the journal first: the checkpoint must not contain a change whose frame could still be
    /// lost, or a crash right after it would keep a write whose reply said it failed.
    fn checkpoint(&mut self, journal: &Journal) {
        if self.poisoned.load(Ordering::Acquire) {
            // Nothing can be checkpointed any more; forgetting the due time also keeps the run
            // loop from waking at once, over and over, to try again.
            self.dirty_since = None;
            return;
        }
        if self.dirty_since.is_none() {
            return;
        }
        let started = Instant::now();
        let result = journal.sync_all().and_then(|()| self.commit_checkpoint());
        match result {
            Ok(()) => {
                journal.rewind();
                self.metrics
                    .checkpoint_seconds
                    .observe(started.elapsed().as_secs_f64());
            }
            Err(error) => {
                tracing::error!(%error, "checkpoint failed; storage is poisoned and refuses writes until restart");
                self.poisoned.store(true, Ordering::Release);
            }
        }
    }

    /// The durable redb commit of a checkpoint: records the last frame it contains and the
    /// salt of the run's frames.
    fn commit_checkpoint(&mut self) -> Result<(), StoreError> {
        let txn = self.db.begin_write()?;
        {
            let mut meta = txn.open_table(META)?;
            meta.insert(META_JOURNAL_SEQ, self.journal_seq)?;
            meta.insert(META_JOURNAL_SALT, self.journal_salt)?;
        }
        txn.commit()?;
        self.dirty_since = None;
        self.journal_bytes = 0;
        Ok(())
    }

    /// At start-up, before the thread runs: applies the journal frames written after the last
    /// checkpoint, then checkpoints them together with a fresh salt for this run's frames.
    /// Returns how many frames were replayed.
    pub fn recover(&mut self, path: &std::path::Path) -> Result<u64, StoreError> {
        let (checkpointed, salt) = {
            let txn = self.db.begin_read()?;
            let meta = txn.open_table(META)?;
            let seq = meta.get(META_JOURNAL_SEQ)?.map_or(0, |v| v.value());
            let salt = meta.get(META_JOURNAL_SALT)?.map_or(0, |v| v.value());
            (seq, salt)
        };
        // Frames are applied in chunks, one transaction each.
        const CHUNK: usize = 1024;
        let mut chunk = Vec::with_capacity(CHUNK);
        let last = journal::replay(path, checkpointed, salt, |seq, ops| {
            chunk.push(ops);
            if chunk.len() == CHUNK {
                self.replay_chunk(&std::mem::take(&mut chunk), seq)?;
            }
            Ok(())
        })?;
        self.replay_chunk(&chunk, last)?;
        self.journal_seq = last;
        // Durable before the first frame of this run is written (see `journal::fresh_salt`).
        self.journal_salt = journal::fresh_salt();
        self.commit_checkpoint()?;
        Ok(last - checkpointed)
    }

    /// Applies replayed frames, the last of them frame `last`, in one transaction.
    fn replay_chunk(&mut self, frames: &[Vec<WriteOp>], last: u64) -> Result<(), StoreError> {
        if frames.is_empty() {
            return Ok(());
        }
        let mut txn = self.db.begin_write()?;
        txn.set_durability(Durability::None)?;
        {
            let mut tables = Tables::open(&txn)?;
            for op in frames.iter().flatten() {
                self.apply(&mut tables, op)?;
            }
            self.finish(&mut tables, last)?;
        }
        txn.commit()?;
        Ok(())
    }

    /// Applies one op. For an `Insert` returns `Some(None)` when stored, `Some(Some(original))`
    /// when its idempotency key is taken; `None` for other ops.
    #[allow(clippy::option_option)]
    fn apply(
        &mut self,
        t: &mut Tables<'_>,
        op: &WriteOp,
    ) -> Result<Option<Option<Original>>, StoreError> {
        match op {
            WriteOp::PutQueue { name, record } => {
                t.queues.insert(name.as_str(), encode(record).as_slice())?;
            }
            WriteOp::Insert {
                id,
                record,
                body,
                idempotency,
            } => {
                if let Some(key) = idempotency {
                    if let Some(original) = live_key(t, key, record.enqueued_at)? {
                        return Ok(Some(Some(original)));
                    }
                    let entry = IdempotencyRecord {
                        job_id: *id,
                        expires_at: key.expires_at,
                    };
                    if let Some(old) = t
                        .idempotency
                        .insert(key.key.as_str(), encode(&entry).as_slice())?
                    {
                        let old: IdempotencyRecord = decode(old.value())?;
                        t.idempotency_expiry
                            .remove((old.expires_at, key.key.as_str()))?;
                    }
                    t.idempotency_expiry
                        .insert((key.expires_at, key.key.as_str()), ())?;
                }
                t.jobs.insert(id, encode(record).as_slice())?;
                t.bodies.insert(id, encode(body).as_slice())?;
                self.next_job_id = self.next_job_id.max(id + 1);
                self.append_outbox(*id, record, Some(record.state), record.updated_at);
                return Ok(Some(None));
            }
            WriteOp::Update { id, change } => {
                let Some(bytes) = t.jobs.get(id)? else {
                    // Memory and disk disagree: a bug, but not worth losing the group over.
                    tracing::error!(job = id, "update of a job that is not stored; skipped");
                    return Ok(None);
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
                self.append_outbox(*id, &record, Some(record.state), change.at);
            }
            WriteOp::Delete { id, expiry } => {
                if let Some(at) = expiry {
                    t.expiry.remove((*at, *id))?;
                }
                let Some(bytes) = t.jobs.remove(id)? else {
                    return Ok(None);
                };
                let mut record: JobRecord = decode(bytes.value())?;
                drop(bytes);
                t.bodies.remove(id)?;
                t.results.remove(id)?;
                record.version += 1;
                let at = record.updated_at;
                self.append_outbox(*id, &record, None, at);
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
        Ok(None)
    }

    /// Adds one change to the outbox batch of the transaction being built.
    fn append_outbox(
        &mut self,
        job_id: u64,
        record: &JobRecord,
        state: Option<StoredState>,
        at: u64,
    ) {
        self.outbox_batch.push(OutboxEntry {
            job_id,
            queue: record.queue.clone(),
            state,
            attempts: record.attempts,
            version: record.version,
            at,
        });
        self.outbox_next += 1;
    }

    /// Keeps the outbox at most `outbox_max_entries` changes long (plus less than one batch) by
    /// dropping its oldest batches.
    fn trim_outbox(
        &mut self,
        outbox: &mut Table<'_, u64, &'static [u8]>,
    ) -> Result<(), StoreError> {
        let excess =
            (self.outbox_next - self.outbox_first).saturating_sub(self.options.outbox_max_entries);
        if excess == 0 {
            return Ok(());
        }
        // The batch holding the oldest change to keep stays whole; everything before it goes.
        let keep_from = self.outbox_first + excess;
        let Some(batch) = outbox.range(..=keep_from)?.next_back() else {
            return Ok(());
        };
        let cut = batch?.0.value();
        if cut > self.outbox_first {
            outbox.retain_in(self.outbox_first..cut, |_, _| false)?;
            self.outbox_first = cut;
        }
        Ok(())
    }
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

/// Every table a write touches, opened once per transaction.
struct Tables<'txn> {
    jobs: Table<'txn, u64, &'static [u8]>,
    bodies: Table<'txn, u64, &'static [u8]>,
    results: Table<'txn, u64, &'static str>,
    queues: Table<'txn, &'static str, &'static [u8]>,
    outbox: Table<'txn, u64, &'static [u8]>,
    meta: Table<'txn, &'static str, u64>,
    expiry: Table<'txn, (u64, u64), ()>,
    idempotency: Table<'txn, &'static str, &'static [u8]>,
    idempotency_expiry: Table<'txn, (u64, &'static str), ()>,
    schedules: Table<'txn, &'static str, &'static [u8]>,
}

impl<'txn> Tables<'txn> {
    fn open(txn: &'txn WriteTransaction) -> Result<Tables<'txn>, StoreError> {
        Ok(Tables {
            jobs: txn.open_table(JOBS)?,
            bodies: txn.open_table(BODIES)?,
            results: txn.open_table(RESULTS)?,
            queues: txn.open_table(QUEUES)?,
            outbox: txn.open_table(OUTBOX)?,
            meta: txn.open_table(META)?,
            expiry: txn.open_table(EXPIRY)?,
            idempotency: txn.open_table(IDEMPOTENCY)?,
            idempotency_expiry: txn.open_table(IDEMPOTENCY_EXPIRY)?,
            schedules: txn.open_table(SCHEDULES)?,
        })
    }
}

fn fetch(t: &Tables<'_>, ids: &[u64]) -> Result<Vec<Option<StoredJob>>, StoreError> {
    ids.iter()
        .map(|id| {
            let Some(record) = t.jobs.get(id)? else {
                return Ok(None);
            };
            let record: JobRecord = decode(record.value())?;
            let body: JobBody = match t.bodies.get(id)? {
                Some(body) => decode(body.value())?,
                None => return Ok(None),
            };
            Ok(Some(StoredJob {
                record,
                body,
                result: None,
            }))
        })
        .collect()
}
