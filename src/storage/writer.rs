//! The single writer thread (`wharf-storage`): group commit.
//!
//! Requests arrive on a channel. The thread takes what is queued (up to `max_group` requests or
//! 64 MiB of ops), applies them in arrival order to the active layer of changes
//! ([`super::layers`]; no redb transaction), and hands the group's ops to the
//! [`journal`](super::journal) as one frame. Requests that must be durable are answered by the
//! journal thread after its fdatasync; the others at once. Arrival order is the order the
//! broker decided the changes in (it submits while holding its state lock), so disk and memory
//! agree. Checkpoints ([`super::checkpoint`]) fold the layers into the data file on a thread of
//! their own, and let the journal's segments be reused.
//!
//! A failed apply, journal write or checkpoint poisons the store: every waiter of that group
//! and every later request gets [`StoreError::Poisoned`]. Retrying an fsync that failed is
//! unsafe (the kernel may have dropped the dirty pages), so the only way on is a restart, which
//! recovers from the last checkpoint and the journal. (An apply that fails half way leaves its
//! group's first changes in the active layer, where reads may see them until the restart; the
//! group's frame was never written, so the restart drops them.)

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use parking_lot::RwLock;
use redb::Database;

use super::StoredJob;
use super::apply::{Applied, apply};
use super::checkpoint::{Checkpointer, Flush, Job};
use super::disk::Disk;
use super::error::StoreError;
use super::events::EventLog;
use super::expiry::ExpiryWatch;
use super::journal::{Journal, frame};
use super::layers::{Layers, Tables};
use super::ops::{WriteOp, encode_ops};
use super::request::{Command, WriteRequest, Written};
use super::space::SpaceGuard;
use super::tables::{META_JOURNAL_SEQ, META_NEXT_JOB_ID};
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
    /// ...or as soon as this many journal bytes were written since it...
    pub checkpoint_bytes: usize,
    /// ...or as soon as the active layer takes this much memory. At twice that (the
    /// checkpoint in flight cannot keep up) the writer waits for it: memory stays bounded.
    pub layer_bytes: usize,
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
    /// The data file, for the recovery at start-up (checkpoints write it on their thread).
    pub db: Arc<Database>,
    /// The layers of changes the writer applies to and readers read through.
    pub layers: Arc<RwLock<Layers>>,
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
    /// Sequence of the last journal frame (applied to the layers, not necessarily durable).
    pub journal_seq: u64,
    /// This run's frame checksum salt (set by `recover`).
    pub journal_salt: u64,
    /// When the first change since the last checkpoint began was applied (on the monotonic
    /// clock: checkpoints are paced, not deadlines), and the journal bytes written since.
    pub dirty_since: Option<Instant>,
    pub journal_bytes: usize,
    /// Reused buffer for encoding frames.
    pub frame: Vec<u8>,
    /// Snapshots waiting for a checkpoint of everything applied before they asked.
    pub flushes: Vec<Flush>,
}

impl Writer {
    /// Runs the writer thread until shutdown.
    pub fn run(
        mut self,
        rx: Receiver<Command>,
        mut journal: Journal,
        mut checkpoints: Checkpointer,
    ) {
        let _failed_if_it_panics = PoisonOnPanic(self.poisoned.clone());
        loop {
            let first = match self.dirty_since {
                Some(since) if !checkpoints.is_busy() => {
                    let wait = self
                        .options
                        .checkpoint_interval
                        .saturating_sub(since.elapsed());
                    match rx.recv_timeout(wait) {
                        Ok(message) => message,
                        Err(RecvTimeoutError::Timeout) => {
                            self.checkpoint(&journal, &checkpoints);
                            continue;
                        }
                        Err(RecvTimeoutError::Disconnected) => Command::Shutdown,
                    }
                }
                // Idle, or a checkpoint is in flight: its end is a message too.
                _ => rx.recv().unwrap_or(Command::Shutdown),
            };
            let (group, shutdown) = self.take_group(first, &rx);
            if !group.is_empty() {
                self.commit_group(group, &journal);
            }
            if self.layer_full() && checkpoints.is_busy() {
                // The checkpoint in flight cannot keep up: wait for it rather than let the
                // active layer grow without bound.
                checkpoints.wait_idle();
            }
            if (self.checkpoint_due() || !self.flushes.is_empty()) && !checkpoints.is_busy() {
                self.checkpoint(&journal, &checkpoints);
            }
            if shutdown {
                checkpoints.wait_idle();
                self.checkpoint(&journal, &checkpoints);
                checkpoints.shutdown();
                if self.dirty_since.is_none() && !self.poisoned.load(Ordering::Acquire) {
                    journal.finished();
                }
                journal.shutdown();
                // Answer whatever raced in behind the shutdown message.
                while let Ok(message) = rx.try_recv() {
                    match message {
                        Command::Write(request) => request.reply.send(Err(StoreError::Closed)),
                        Command::Flush(flush) => {
                            let _ = flush.send(Err(StoreError::Closed));
                        }
                        Command::Checkpointed | Command::Shutdown => {}
                    }
                }
                return;
            }
        }
    }

    /// Whether a checkpoint should begin: the layer is old enough, big enough, or the free
    /// space needs the journal folded in.
    fn checkpoint_due(&self) -> bool {
        self.dirty_since.is_some_and(|since| {
            since.elapsed() >= self.options.checkpoint_interval
                || self.journal_bytes >= self.options.checkpoint_bytes
                || self.layers.read().active.bytes() >= self.options.layer_bytes
                || self.space.wants_checkpoint()
        })
    }

    /// Whether the active layer has grown to twice its checkpoint size.
    fn layer_full(&self) -> bool {
        self.layers.read().active.bytes() >= 2 * self.options.layer_bytes
    }

    /// Begins a checkpoint of everything applied so far (none may be in flight): the journal
    /// goes on in its other segment, the active layer is frozen and handed to the checkpoint
    /// thread. With nothing to checkpoint, the flushes waiting are answered at once.
    fn checkpoint(&mut self, journal: &Journal, checkpoints: &Checkpointer) {
        let flushes = std::mem::take(&mut self.flushes);
        if self.poisoned.load(Ordering::Acquire) {
            // Nothing can be checkpointed any more; forgetting the due time also keeps the run
            // loop from waking at once, over and over, to try again.
            self.dirty_since = None;
            for flush in flushes {
                let _ = flush.send(Err(StoreError::Poisoned));
            }
            return;
        }
        if self.dirty_since.is_none() {
            for flush in flushes {
                let _ = flush.send(Ok(()));
            }
            return;
        }
        journal.switch();
        let overlay = self.layers.write().freeze();
        checkpoints.submit(Job {
            overlay,
            seq: self.journal_seq,
            journal_bytes: self.journal_bytes as u64,
            flushes,
        });
        self.dirty_since = None;
        self.journal_bytes = 0;
    }

    /// The group that starts with `first`: whatever else is queued, up to `max_group` requests
    /// or [`MAX_GROUP_BYTES`] of ops (a group is one journal frame). Also says whether a
    /// shutdown was asked for.
    fn take_group(&mut self, first: Command, rx: &Receiver<Command>) -> (Vec<WriteRequest>, bool) {
        let mut group = Vec::new();
        let mut bytes = 0;
        let mut shutdown = false;
        let mut next = Some(first);
        while let Some(message) = next.take() {
            match message {
                Command::Write(request) => {
                    bytes += request.approx_len();
                    group.push(request);
                }
                Command::Flush(flush) => self.flushes.push(flush),
                // The run loop looks whether a checkpoint is due after every group anyway.
                Command::Checkpointed => {}
                Command::Shutdown => shutdown = true,
            }
            if !shutdown && group.len() < self.options.max_group && bytes < MAX_GROUP_BYTES {
                next = rx.try_recv().ok();
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

    /// Applies a whole group (journal frame `seq`) to the active layer: the journal frame
    /// makes it durable.
    fn write_group(
        &mut self,
        group: &[WriteRequest],
        seq: u64,
    ) -> Result<Vec<Written>, StoreError> {
        let mut results = Vec::with_capacity(group.len());
        let layers = self.layers.clone();
        let mut layers = layers.write();
        {
            let mut tables = Tables::new(&mut layers)?;
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
        layers.events_first = self.events.first();
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

    /// What every group ends with. Recording the group's journal frame with its changes makes
    /// a checkpoint of the layer say exactly which frames the data file then holds.
    pub(super) fn finish(&mut self, tables: &mut Tables<'_>, seq: u64) -> Result<(), StoreError> {
        self.events.write(tables)?;
        tables
            .meta
            .put(META_NEXT_JOB_ID.to_owned(), self.next_job_id);
        tables.meta.put(META_JOURNAL_SEQ.to_owned(), seq);
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

/// The jobs `ids`, as the layers hold them after the group (a delivery's payload, read after
/// its lease).
fn fetch(t: &Tables<'_>, ids: &[u64]) -> Result<Vec<Option<StoredJob>>, StoreError> {
    ids.iter()
        .map(|id| {
            let Some(record) = t.jobs.get(id)? else {
                return Ok(None);
            };
            let record = super::records::decode_job_record(&record)?;
            let Some(body) = t.bodies.get(id)? else {
                return Ok(None);
            };
            Ok(Some(StoredJob {
                record,
                body: super::records::decode(&body)?,
                result: None,
            }))
        })
        .collect()
}
