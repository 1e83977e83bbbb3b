//! Checkpoints and replay: folding the journal into the data file, at run time and at start-up.
//!
//! A checkpoint writes a frozen layer of changes (see [`super::layers`]) into redb in one
//! durable transaction, on the `wharf-checkpoint` thread, while the writer goes on with a new
//! layer and the journal's other segment. The layer's last group recorded its journal frame in
//! `meta.journal_seq`, so the data file says which frames it holds. Only one checkpoint is in
//! flight at a time: the next may start once this one is in the file, which is also when the
//! segment it emptied may be overwritten.
//!
//! At start-up redb comes back at its last checkpoint, and the frames written after it are
//! applied again, in order, with the same [`apply`](super::apply) the writer uses, then folded
//! in with a checkpoint of their own.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, SyncSender};
use std::time::Instant;

use parking_lot::{Condvar, Mutex, RwLock};
use redb::{Database, Durability, ReadableDatabase};

use super::error::StoreError;
use super::journal::{JournalHandle, frame};
use super::layers::{Base, Layers, Overlay, Tables};
use super::ops::decode_ops;
use super::request::Command;
use super::space::SpaceGuard;
use super::tables::{META, META_JOURNAL_SALT, META_JOURNAL_SEQ};
use super::writer::Writer;
use crate::metrics::StorageMetrics;
use crate::random::Rng;

/// Who waits for a checkpoint to be in the data file (a mirror's snapshot).
pub type Flush = SyncSender<Result<(), StoreError>>;

/// One checkpoint to run.
pub struct Job {
    /// The changes to write.
    pub overlay: Arc<Overlay>,
    /// The last journal frame they hold.
    pub seq: u64,
    /// The journal bytes of those frames (the free-space floor counts them until now).
    pub journal_bytes: u64,
    /// Answered once the checkpoint is in the file.
    pub flushes: Vec<Flush>,
}

/// The writer's handle on the `wharf-checkpoint` thread.
pub struct Checkpointer {
    jobs: Option<Sender<Job>>,
    busy: Arc<Busy>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Whether a checkpoint is in flight, and a way to wait for it to end.
#[derive(Default)]
struct Busy {
    flag: Mutex<bool>,
    done: Condvar,
}

/// What the checkpoint thread works with.
pub struct Context {
    pub db: Arc<Database>,
    pub layers: Arc<RwLock<Layers>>,
    pub journal: JournalHandle,
    pub space: Arc<SpaceGuard>,
    pub metrics: Arc<StorageMetrics>,
    pub poisoned: Arc<AtomicBool>,
    /// Tells the writer a checkpoint ended, so it may start the next one.
    pub writer: Sender<Command>,
}

impl Checkpointer {
    /// Starts the thread.
    pub fn start(cx: Context) -> Result<Checkpointer, StoreError> {
        let (jobs, rx) = std::sync::mpsc::channel();
        let busy = Arc::new(Busy::default());
        let thread = {
            let busy = busy.clone();
            std::thread::Builder::new()
                .name("wharf-checkpoint".into())
                .spawn(move || run(cx, rx, busy))
                .map_err(StoreError::Io)?
        };
        Ok(Checkpointer {
            jobs: Some(jobs),
            busy,
            thread: Some(thread),
        })
    }

    /// Whether a checkpoint is in flight.
    pub fn is_busy(&self) -> bool {
        *self.busy.flag.lock()
    }

    /// Hands `job` to the thread. There must be none in flight.
    pub fn submit(&self, job: Job) {
        *self.busy.flag.lock() = true;
        let Some(jobs) = &self.jobs else { return };
        if let Err(std::sync::mpsc::SendError(job)) = jobs.send(job) {
            // The thread is gone (it panicked): the store is failed.
            for flush in job.flushes {
                let _ = flush.send(Err(StoreError::Poisoned));
            }
            *self.busy.flag.lock() = false;
        }
    }

    /// Waits until no checkpoint is in flight.
    pub fn wait_idle(&self) {
        let mut busy = self.busy.flag.lock();
        while *busy {
            self.busy.done.wait(&mut busy);
        }
    }

    /// Waits for the checkpoint in flight and stops the thread.
    pub fn shutdown(&mut self) {
        self.wait_idle();
        self.jobs = None;
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("the checkpoint thread panicked");
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Marks the store failed, and the checkpoint over, if the thread panics: nobody may wait on
/// it forever.
struct PanicGuard(Arc<AtomicBool>, Arc<Busy>);

impl Drop for PanicGuard {
    fn drop(&mut self) {
        if std::thread::panicking() {
            tracing::error!("the checkpoint thread panicked; storage refuses writes until restart");
            self.0.store(true, Ordering::Release);
            *self.1.flag.lock() = false;
            self.1.done.notify_all();
        }
    }
}

fn run(cx: Context, jobs: Receiver<Job>, busy: Arc<Busy>) {
    let _guard = PanicGuard(cx.poisoned.clone(), busy.clone());
    while let Ok(job) = jobs.recv() {
        let started = Instant::now();
        let result = checkpoint(&cx, &job);
        match &result {
            Ok(()) => cx
                .metrics
                .checkpoint_seconds
                .observe(started.elapsed().as_secs_f64()),
            Err(error) => {
                tracing::error!(%error, "checkpoint failed; storage is poisoned and refuses writes until restart");
                cx.poisoned.store(true, Ordering::Release);
            }
        }
        for flush in job.flushes {
            let _ = flush.send(match &result {
                Ok(()) => Ok(()),
                Err(_) => Err(StoreError::Poisoned),
            });
        }
        *busy.flag.lock() = false;
        busy.done.notify_all();
        let _ = cx.writer.send(Command::Checkpointed);
    }
}

/// Writes `job`'s changes into the data file, durably, then lets reads see them there.
fn checkpoint(cx: &Context, job: &Job) -> Result<(), StoreError> {
    if cx.poisoned.load(Ordering::Acquire) {
        return Err(StoreError::Poisoned);
    }
    // No change whose frame could still be lost may reach the file: a crash right after the
    // checkpoint would keep a write whose reply said it failed.
    cx.journal.sync_through(job.seq)?;
    write(&cx.db, &job.overlay, None)?;
    let base = Base::open(&cx.db)?;
    let released = cx.layers.write().checkpointed(base);
    drop(released);
    cx.space
        .checkpointed(job.journal_bytes, || pages_in_use(&cx.db));
    Ok(())
}

/// Writes `overlay` into the data file in one durable transaction (with a new journal salt,
/// at start-up).
fn write(db: &Database, overlay: &Overlay, salt: Option<u64>) -> Result<(), StoreError> {
    let mut txn = db.begin_write()?;
    txn.set_durability(Durability::Immediate)?;
    overlay.write_to(&txn)?;
    if let Some(salt) = salt {
        txn.open_table(META)?.insert(META_JOURNAL_SALT, salt)?;
    }
    txn.commit()?;
    Ok(())
}

/// Bytes of the data file redb's pages use (walks every table; `None` if that fails).
fn pages_in_use(db: &Database) -> Option<u64> {
    let txn = db.begin_write().ok()?;
    let stats = txn.stats().ok()?;
    let bytes = stats.allocated_pages() * stats.page_size() as u64;
    // Nothing was written: dropping the transaction aborts it.
    drop(txn);
    Some(bytes)
}

impl Writer {
    /// At start-up, before the thread runs: applies the journal frames written after the last
    /// checkpoint, then checkpoints them together with a fresh salt for this run's frames.
    /// Returns how many frames were replayed.
    ///
    /// A frame whose checksum matches but whose ops do not decode stops the start-up with an
    /// error rather than being skipped: it was acknowledged, and skipping it would lose it.
    pub fn recover(&mut self, paths: [&Path; 2]) -> Result<u64, StoreError> {
        let (checkpointed, salt) = {
            let txn = self.db.begin_read()?;
            let meta = txn.open_table(META)?;
            let seq = meta.get(META_JOURNAL_SEQ)?.map_or(0, |v| v.value());
            let salt = meta.get(META_JOURNAL_SALT)?.map_or(0, |v| v.value());
            (seq, salt)
        };
        let disk = self.disk.clone();
        let layers = self.layers.clone();
        let last = frame::replay_segments(&*disk, paths, checkpointed, salt, |seq, payload| {
            let ops = decode_ops(payload)?;
            let mut layers = layers.write();
            {
                let mut tables = Tables::new(&mut layers)?;
                for op in &ops {
                    self.apply(&mut tables, op)?;
                }
                self.finish(&mut tables, seq)?;
            }
            layers.events_first = self.events.first();
            Ok(())
        })?;
        self.journal_seq = last;
        // Every run checksums its frames with a salt of its own, durable (in the checkpoint
        // below) before its first frame is written: frames an earlier run left in the files
        // may reuse this run's sequence numbers (a crash can leave intact, never acknowledged
        // frames behind a torn one) but never pass this run's checksum.
        self.journal_salt = Rng::from_entropy().next_u64();
        let mut layers = self.layers.write();
        let replayed = std::mem::take(&mut layers.active);
        write(&self.db, &replayed, Some(self.journal_salt))?;
        let _released = layers.checkpointed(Base::open(&self.db)?);
        Ok(last - checkpointed)
    }
}
