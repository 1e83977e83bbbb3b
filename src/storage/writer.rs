//! The single writer thread (`wharf-storage`): group commit.
//!
//! Requests arrive on a channel. The thread takes what is queued (up to `max_group` requests or
//! 64 MiB of ops), applies them in arrival order inside one redb write transaction committed
//! without fsync, and hands the group's ops to the [`journal`](super::journal) as one frame.
//! Requests that must be durable are answered by the journal thread after its fdatasync; the
//! others at once. Arrival order is the order the broker decided the changes in (it submits
//! while holding its state lock), so disk and memory agree. Checkpoints (durable redb commits,
//! [`super::checkpoint`]) let the journal start over.
//!
//! A failed commit, journal write or checkpoint poisons the store: every waiter of that group
//! and every later request gets [`StoreError::Poisoned`]. Retrying an fsync that failed is
//! unsafe (the kernel may have dropped the dirty pages), so the only way on is a restart, which
//! recovers from the last checkpoint and the journal.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use redb::{Database, Durability, ReadableTable};

use super::StoredJob;
use super::apply::{Applied, apply};
use super::disk::Disk;
use super::error::StoreError;
use super::events::EventLog;
use super::expiry::ExpiryWatch;
use super::journal::{Journal, frame};
use super::ops::{WriteOp, encode_ops};
use super::records::{JobBody, decode};
use super::request::{Command, WriteRequest, Written};
use super::space::SpaceGuard;
use super::tables::{META_JOURNAL_SEQ, META_NEXT_JOB_ID, Tables};
use crate::metrics::StorageMetrics;

/// A commit group stops taking requests once their ops reach this size. With requests of at
/// most `max_body_bytes` (at most 256 MiB, see the config), a frame stays below the journal's
/// 1 GiB frame limit.
const MAX_GROUP_BYTES: usize = 64 << 20;

/// How the writer makes commits durable.
#[derive(Debug, Clone, Copy)]
pub struct WriterOptions {
    /// `false` (`async` mode): no request waits for an fsync.
    pub sync_mode: bool,
    pub max_group: usize,
    /// A checkpoint (durable redb commit, then the journal starts over) follows at most this
    /// long after the first change since the last one...
    pub checkpoint_interval: Duration,
    /// ...or as soon as this many journal bytes were written since it.
    pub checkpoint_bytes: usize,
}

/// Marks the store failed when the writer thread panics: its replies are dropped, and every
/// later write must be refused (`storage_failed`, `/readyz` 503) rather than queued for a
/// thread that is gone.
struct PoisonOnPanic(Arc<AtomicBool>);

impl Drop for PoisonOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            tracing::error!("the storage writer panicked; storage refuses writes until restart");
            self.0.store(true, Ordering::Release);
        }
    }
}

/// The writer thread's state.
pub struct Writer {
    pub db: Arc<Database>,
    /// Where the journal is read from at start-up.
    pub disk: Arc<dyn Disk>,
    pub options: WriterOptions,
    pub metrics: Arc<StorageMetrics>,
    pub poisoned: Arc<AtomicBool>,
    pub expiry: Arc<ExpiryWatch>,
    /// Told the journal bytes written, so it reads the free space as the files grow.
    pub space: Arc<SpaceGuard>,
    pub events: EventLog,
    pub next_job_id: u64,
    /// Sequence of the last journal frame (applied to redb, not necessarily durable).
    pub journal_seq: u64,
    /// This run's frame checksum salt (set by `recover`).
    pub journal_salt: u64,
    /// When the first change since the last checkpoint was committed (on the monotonic clock:
    /// checkpoints are paced, not deadlines), and the journal bytes written since.
    pub dirty_since: Option<Instant>,
    pub journal_bytes: usize,
    /// Reused buffer for encoding frames.
    pub frame: Vec<u8>,
}

impl Writer {
    /// Runs the writer thread until shutdown.
    pub fn run(mut self, rx: Receiver<Command>, mut journal: Journal) {
        let _failed_if_it_panics = PoisonOnPanic(self.poisoned.clone());
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
                        Err(RecvTimeoutError::Disconnected) => Command::Shutdown,
                    }
                }
                None => rx.recv().unwrap_or(Command::Shutdown),
            };
            let (group, shutdown) = self.take_group(first, &rx);
            if !group.is_empty() {
                self.commit_group(group, &journal);
            }
            let due = self.dirty_since.is_some_and(|since| {
                since.elapsed() >= self.options.checkpoint_interval
                    || self.journal_bytes >= self.options.checkpoint_bytes
                    || self.space.wants_checkpoint()
            });
            if due || shutdown {
                self.checkpoint(&journal);
            }
            if shutdown {
                journal.shutdown();
                // Answer whatever raced in behind the shutdown message.
                while let Ok(Command::Write(request)) = rx.try_recv() {
                    request.reply.send(Err(StoreError::Closed));
                }
                return;
            }
        }
    }

    /// The group that starts with `first`: whatever else is queued, up to `max_group` requests
    /// or [`MAX_GROUP_BYTES`] of ops (a group is one journal frame). Also says whether a
    /// shutdown was asked for.
    fn take_group(&self, first: Command, rx: &Receiver<Command>) -> (Vec<WriteRequest>, bool) {
        let mut group = Vec::new();
        let mut bytes = 0;
        let mut shutdown = false;
        match first {
            Command::Write(request) => {
                bytes += request.approx_len();
                group.push(request);
            }
            Command::Shutdown => shutdown = true,
        }
        while !shutdown && group.len() < self.options.max_group && bytes < MAX_GROUP_BYTES {
            match rx.try_recv() {
                Ok(Command::Write(request)) => {
                    bytes += request.approx_len();
                    group.push(request);
                }
                Ok(Command::Shutdown) => shutdown = true,
                Err(_) => break,
            }
        }
        (group, shutdown)
    }

    fn commit_group(&mut self, group: Vec<WriteRequest>, journal: &Journal) {
        // Dropped before `group` if this panics: its waiters, woken by their replies being
        // dropped, find the store already failed.
        let _failed_if_it_panics = PoisonOnPanic(self.poisoned.clone());
        if self.poisoned.load(Ordering::Acquire) {
            for request in group {
                request.reply.send(Err(StoreError::Poisoned));
            }
            return;
        }
        let mark = self.events.mark();
        let next_job_id = self.next_job_id;
        let seq = self.journal_seq + 1;
        let started = Instant::now();
        match self.write_group(&group, seq) {
            Ok(results) => {
                if let Some(at) = earliest_expiry(&group) {
                    self.expiry.committed(at);
                }
                self.frame.clear();
                let start = frame::begin(&mut self.frame);
                encode_ops(group.iter().flat_map(|r| &r.ops), &mut self.frame);
                frame::seal(&mut self.frame, start, seq, self.journal_salt);
                self.metrics
                    .apply_seconds
                    .observe(started.elapsed().as_secs_f64());
                self.journal_seq = seq;
                self.journal_bytes += self.frame.len();
                // Before any reply: the next write admitted sees this group's growth.
                self.space.written(self.frame.len());
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
                journal.append(seq, &self.frame, waiters, self.events.last());
            }
            Err(error) => {
                tracing::error!(%error, "commit failed; storage is poisoned and refuses writes until restart");
                self.poisoned.store(true, Ordering::Release);
                self.events.roll_back(mark);
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
                let first_event = self.events.pending_next();
                for op in &request.ops {
                    match self.apply(&mut tables, op)? {
                        Applied::Inserted(_) => written.duplicates.push(None),
                        Applied::Duplicate(original) => written.duplicates.push(Some(original)),
                        Applied::Done => {}
                    }
                }
                written.events = first_event..self.events.pending_next();
                written.fetched = fetch(&tables, &request.fetch)?;
                results.push(written);
            }
            self.finish(&mut tables, seq)?;
        }
        txn.commit()?;
        Ok(results)
    }

    /// Applies one op (its events go to the transaction's batch) and keeps the next job id in
    /// step with it.
    pub(super) fn apply(
        &mut self,
        tables: &mut Tables<'_>,
        op: &WriteOp,
    ) -> Result<Applied, StoreError> {
        let applied = apply(tables, op, self.events.batch())?;
        if let Applied::Inserted(id) = applied {
            self.next_job_id = self.next_job_id.max(id + 1);
        }
        Ok(applied)
    }

    /// What every transaction ends with. Recording the last journal frame it holds in the
    /// transaction itself keeps `meta.journal_seq` exact whatever redb ends up keeping: at a
    /// crash redb falls back to the last checkpoint, but closing the database (say, a clean
    /// stop after a failed fsync) makes every non-durable commit durable, and replay must then
    /// skip exactly those frames, not apply them twice.
    pub(super) fn finish(&mut self, tables: &mut Tables<'_>, seq: u64) -> Result<(), StoreError> {
        self.events.write(tables)?;
        tables.meta.insert(META_NEXT_JOB_ID, self.next_job_id)?;
        tables.meta.insert(META_JOURNAL_SEQ, seq)?;
        Ok(())
    }
}

/// The earliest expiry-index entry (a retention end, a key's window) the group's ops write.
fn earliest_expiry(group: &[WriteRequest]) -> Option<u64> {
    group
        .iter()
        .flat_map(|r| &r.ops)
        .filter_map(|op| match op {
            WriteOp::Update { change, .. } => change.expires_at,
            WriteOp::Insert { idempotency, .. } => idempotency.as_ref().map(|k| k.expires_at),
            WriteOp::MoveExpiry { to, .. } => *to,
            _ => None,
        })
        .min()
}

/// The jobs `ids`, as the transaction sees them (a delivery's payload, read after its lease).
fn fetch(t: &Tables<'_>, ids: &[u64]) -> Result<Vec<Option<StoredJob>>, StoreError> {
    ids.iter()
        .map(|id| {
            let Some(record) = t.jobs.get(id)? else {
                return Ok(None);
            };
            let record = super::records::decode_job_record(record.value())?;
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
