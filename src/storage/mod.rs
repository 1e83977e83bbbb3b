//! The embedded store: the only module that knows redb.
//!
//! - [`records`]: persisted types and their versioned codec.
//! - [`tables`]: the table layout.
//! - [`ops`]: the write ops and their versioned journal encoding.
//! - [`layers`]: the changes not yet in the data file, in memory, and reads through them.
//! - [`apply`]: applying one op to the tables (a pure step, shared by the writer and replay).
//! - [`events`]: the change log as the writer appends and trims it.
//! - [`writer`]: the `wharf-storage` thread and its group commit.
//! - [`journal`]: the write-ahead log that makes group commits durable: frames, and the
//!   `wharf-journal` thread that fsyncs them.
//! - [`checkpoint`]: folding the layers into the data file on the `wharf-checkpoint` thread;
//!   replay at start-up.
//! - [`reads`]: job lookups and recovery scans (through the layers, concurrent with the
//!   writer).
//! - [`expiry`]: the writer's wake-ups for the retention sweeper.
//! - [`error`]: every storage error.
//! - [`disk`]: the files' reads, writes and fsyncs, behind an interface tests swap for
//!   [`faulty`], a disk that fails or loses power.

mod apply;
mod checkpoint;
mod disk;
mod error;
mod events;
mod expiry;
pub mod faulty;
pub(crate) mod journal;
mod layers;
mod ops;
mod reads;
mod records;
mod request;
mod space;
mod tables;
mod writer;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Sender, channel};
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use redb::{Database, ReadableTable};
use tokio::sync::{Semaphore, oneshot, watch};

pub use apply::Original;
pub use disk::{DatabaseFile, Disk, DiskFile, RealDisk, Space};
pub use error::{DecodeError, OpsError, StoreError};
pub use expiry::ExpiryWatch;
pub use ops::{
    IdempotencyKey, JobChange, JobEvent, Message, OPS_VERSION, ScheduleEvent, WriteOp, decode_ops,
    encode_ops,
};
pub use reads::{EventsRead, Snapshot};
pub use records::{
    AuditRecord, CursorRecord, DeleteReason, EventData, EventRecord, FORMAT_VERSION,
    IdempotencyRecord, JobBody, JobRecord, JobTemplate, KeyLimits, KeyRecord, QueueRecord,
    ScheduleRecord, StoredState, decode, decode_events, decode_job_record, decode_queue_record,
    encode,
};
pub use request::Written;
pub use space::{DEFAULT_FLOOR_BYTES, SpaceReading};

use crate::metrics::StorageMetrics;
use checkpoint::{Checkpointer, Context};
use events::EventLog;
use journal::{JOURNAL_FILE, JOURNAL_SEGMENT_FILE, Journal, SyncPolicy};
use layers::Layers;
use request::{Command, Reply, WriteRequest};
use space::SpaceGuard;
use tables::{
    EVENTS, JOBS, META, META_EVENTS_NEXT, META_FORMAT, META_NEXT_JOB_ID, META_OUTBOX_NEXT, OUTBOX,
};
use writer::{Writer, WriterOptions};

/// The database file inside the data directory.
pub const DATA_FILE: &str = "wharf.redb";
/// A checkpoint follows at the latest when this many journal bytes were written since the last.
const CHECKPOINT_BYTES: usize = 16 << 20;
/// ...or when the changes not yet checkpointed take this much memory (see `layers`). Small, so
/// that a checkpoint's write-back is a short burst: the journal's fsyncs, and every write
/// request's reply, wait behind it (at 32 MiB they took up to 25 ms; docs/design.md).
const LAYER_BYTES: usize = 8 << 20;

/// A job as stored: record, body and, once acked with one, its result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredJob {
    /// State and scheduling fields.
    pub record: JobRecord,
    /// Payload and headers.
    pub body: JobBody,
    /// The ack result (raw JSON), when read with [`Store::read_job`].
    pub result: Option<String>,
}

/// How to open the store.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Where the data file lives.
    pub data_dir: PathBuf,
    /// `true` (`sync` mode): a durable request's reply waits for its fsync. `false` (`async`):
    /// no reply waits for an fsync.
    pub sync_mode: bool,
    /// Unsynced commits (all of them in `async` mode, lease writes in `sync` mode) are fsynced at
    /// most this long after the first one.
    pub flush_interval: Duration,
    /// The longest the journal grows before a checkpoint folds it into the data file. Longer
    /// means fewer, larger checkpoints and a longer journal replay after a crash.
    pub checkpoint_interval: Duration,
    /// Zeroed space the journal file is given once, so that its fsyncs overwrite instead of
    /// growing the file.
    pub journal_preallocate_bytes: u64,
    /// Page cache size in bytes.
    pub cache_bytes: usize,
    /// Most write requests in one commit.
    pub max_group: usize,
    /// Most write requests queued for the writer before submitters wait.
    pub max_pending: usize,
    /// The change log keeps at most this many events...
    pub events_max_entries: u64,
    /// ...for at most this long (ms).
    pub events_max_age_ms: u64,
    /// The disk the files are read from and written to: [`RealDisk`], or a test's.
    pub disk: Arc<dyn Disk>,
    /// Writes that add data are refused while the data volume has less free space than this;
    /// `None`: [`DEFAULT_FLOOR_BYTES`], or an eighth of a smaller volume.
    pub min_free_bytes: Option<u64>,
}

/// The handle to the store and its writer thread.
pub struct Store {
    /// Taken out on [`Store::close`], so the file is released even while other handles to the
    /// store (say, an HTTP connection task still winding down) are alive.
    db: RwLock<Option<Arc<Database>>>,
    /// What readers read through: the changes not yet checkpointed, and the data file.
    layers: Arc<RwLock<Layers>>,
    tx: Sender<Command>,
    admission: Arc<Semaphore>,
    thread: Mutex<Option<JoinHandle<()>>>,
    poisoned: Arc<AtomicBool>,
    metrics: Arc<StorageMetrics>,
    expiry: Arc<ExpiryWatch>,
    space: Arc<SpaceGuard>,
    /// The last event in a durable journal frame: what change-log readers may see.
    durable_events: watch::Receiver<u64>,
}

/// A place in the writer's bounded queue, taken before the broker locks its state.
pub type Admission = tokio::sync::OwnedSemaphorePermit;

/// The answer to a submitted request: rows for the ids asked to fetch, once committed.
pub type Pending = oneshot::Receiver<Result<Written, StoreError>>;

impl Store {
    /// Opens (or creates) the data file and starts the writer thread.
    pub fn open(options: &StoreOptions) -> Result<Store, StoreError> {
        let dir = &options.data_dir;
        std::fs::create_dir_all(dir).map_err(|source| StoreError::DataDir {
            path: dir.clone(),
            source,
        })?;
        let disk = options.disk.clone();
        let db = Database::builder()
            .set_cache_size(options.cache_bytes)
            .create_with_backend(
                disk.database(&dir.join(DATA_FILE))
                    .map_err(StoreError::Io)?,
            )?;
        let sequences = init(&db)?;
        let db = Arc::new(db);
        let layers = Arc::new(RwLock::new(Layers::open(&db, sequences.events_first)?));
        let metrics = Arc::new(StorageMetrics::new());
        let poisoned = Arc::new(AtomicBool::new(false));
        let expiry = Arc::new(ExpiryWatch::default());
        let space = Arc::new(SpaceGuard::new(
            disk.clone(),
            dir.clone(),
            dir.join(DATA_FILE),
            options.min_free_bytes,
        ));
        let mut writer = Writer {
            db: db.clone(),
            layers: layers.clone(),
            disk: disk.clone(),
            options: WriterOptions {
                sync_mode: options.sync_mode,
                max_group: options.max_group.max(1),
                checkpoint_interval: options.checkpoint_interval,
                checkpoint_bytes: CHECKPOINT_BYTES,
                layer_bytes: LAYER_BYTES,
            },
            metrics: metrics.clone(),
            poisoned: poisoned.clone(),
            expiry: expiry.clone(),
            space: space.clone(),
            events: EventLog::new(
                sequences.events_first,
                sequences.events_next,
                options.events_max_entries,
                options.events_max_age_ms,
            ),
            next_job_id: sequences.next_job_id,
            journal_seq: 0,
            journal_salt: 0,
            dirty_since: None,
            journal_bytes: 0,
            frame: Vec::new(),
            flushes: Vec::new(),
        };
        let journal_paths = [dir.join(JOURNAL_FILE), dir.join(JOURNAL_SEGMENT_FILE)];
        let journal_paths = [journal_paths[0].as_path(), journal_paths[1].as_path()];
        let replayed = writer.recover(journal_paths)?;
        if replayed > 0 {
            tracing::info!(frames = replayed, "replayed the journal");
        }
        // Everything recovered is durable: the replayed frames are in the checkpoint.
        let (durable_tx, durable_events) = watch::channel(writer.events.last());
        let journal = Journal::start(
            &*disk,
            journal_paths,
            writer.journal_seq,
            options.journal_preallocate_bytes,
            SyncPolicy {
                flush_interval: options.flush_interval,
            },
            poisoned.clone(),
            metrics.clone(),
            durable_tx,
        )?;
        let (tx, rx) = channel();
        let checkpoints = Checkpointer::start(Context {
            db: db.clone(),
            layers: layers.clone(),
            journal: journal.handle(),
            space: space.clone(),
            metrics: metrics.clone(),
            poisoned: poisoned.clone(),
            writer: tx.clone(),
        })?;
        let thread = std::thread::Builder::new()
            .name("wharf-storage".into())
            .spawn(move || writer.run(rx, journal, checkpoints))
            .map_err(|source| StoreError::DataDir {
                path: dir.clone(),
                source,
            })?;
        Ok(Store {
            db: RwLock::new(Some(db)),
            layers,
            tx,
            admission: Arc::new(Semaphore::new(options.max_pending.max(1))),
            thread: Mutex::new(Some(thread)),
            poisoned,
            metrics,
            expiry,
            space,
            durable_events,
        })
    }

    /// The last event in a durable journal frame, as it moves: change-log readers see events
    /// up to it and no further, so that no reader ever sees an event a crash could still
    /// take back (and its sequence number given to another).
    pub fn durable_events(&self) -> watch::Receiver<u64> {
        self.durable_events.clone()
    }

    /// Wake-ups for the retention sweeper, given by the writer as expiries are committed.
    pub fn expiry_watch(&self) -> &ExpiryWatch {
        &self.expiry
    }

    /// Waits for a place in the writer's queue. Take it *before* locking anything.
    pub async fn admit(&self) -> Result<Admission, StoreError> {
        if self.is_poisoned() {
            return Err(StoreError::Poisoned);
        }
        self.admission
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| StoreError::Closed)
    }

    /// [`Store::admit`] for a write that adds data (an enqueue, an outbox message, a schedule):
    /// refused with [`StoreError::InsufficientStorage`] while the data volume is below its
    /// free-space floor, so that the writes that drain the broker keep the room it leaves.
    pub async fn admit_growth(&self) -> Result<Admission, StoreError> {
        if self.is_poisoned() {
            return Err(StoreError::Poisoned);
        }
        self.space.admit_growth()?;
        self.admit().await
    }

    /// The data volume's free space and floor, as last read.
    pub fn space(&self) -> SpaceReading {
        self.space.reading()
    }

    /// Queues `ops` (applied atomically) and reads `fetch` back after them; with `durable` the
    /// reply waits for an fsync (in `sync` mode). Never blocks, so it may be called under the
    /// broker's state lock, which is what keeps the write order equal to the order changes were
    /// decided in.
    pub fn submit(
        &self,
        admission: Admission,
        ops: Vec<WriteOp>,
        fetch: Vec<u64>,
        durable: bool,
    ) -> Pending {
        let (tx, pending) = oneshot::channel();
        let request = WriteRequest {
            ops,
            fetch,
            durable,
            reply: Reply {
                tx,
                permit: admission,
            },
        };
        if let Err(std::sync::mpsc::SendError(Command::Write(request))) =
            self.tx.send(Command::Write(request))
        {
            request.reply.send(Err(StoreError::Closed));
        }
        pending
    }

    /// Waits until everything applied so far is checkpointed into the data file (blocking:
    /// call off the async runtime).
    pub fn flush(&self) -> Result<(), StoreError> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.tx
            .send(Command::Flush(tx))
            .map_err(|_| StoreError::Closed)?;
        rx.recv().map_err(|_| StoreError::Closed)?
    }

    /// Whether a failed commit has stopped the writer.
    pub fn is_poisoned(&self) -> bool {
        self.poisoned.load(Ordering::Acquire)
    }

    /// Commit metrics.
    pub fn metrics(&self) -> &StorageMetrics {
        &self.metrics
    }

    /// Finishes queued writes, fsyncs, joins the writer thread and releases the file (once
    /// reads in progress end). Idempotent; reads after it fail with [`StoreError::Closed`].
    pub fn close(&self) {
        let _ = self.tx.send(Command::Shutdown);
        if let Some(thread) = self.thread.lock().take()
            && thread.join().is_err()
        {
            tracing::error!("the storage writer thread panicked");
        }
        let db = self.db.write().take();
        // The layers hold a read transaction of the file: it goes first.
        self.layers.write().close();
        // After a storage thread died mid-commit, redb's own locks are poisoned and dropping
        // the database panics; the process must still stop cleanly.
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(db))).is_err() {
            tracing::error!("the database could not be closed cleanly; a restart recovers it");
        }
    }

    fn db(&self) -> Result<Arc<Database>, StoreError> {
        self.db.read().clone().ok_or(StoreError::Closed)
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        self.close();
    }
}

/// Where the writer's sequences stand in a file just opened.
struct Sequences {
    /// The first event stored, and the one the next event gets.
    events_first: u64,
    events_next: u64,
    next_job_id: u64,
}

/// Creates the tables, checks the format version (upgrading an older file in place), and reads
/// the writer's sequences.
fn init(db: &Database) -> Result<Sequences, StoreError> {
    let txn = db.begin_write()?;
    let found = txn.open_table(META)?.get(META_FORMAT)?.map(|v| v.value());
    if let Some(found) = found.filter(|&v| v > u64::from(FORMAT_VERSION)) {
        return Err(StoreError::Format {
            found,
            supported: FORMAT_VERSION,
        });
    }
    {
        // Version 2 added tables, 4 the events and cursors, 5 the keys, 7 the audit trail:
        // created here when missing.
        tables::create_all(&txn)?;
    }
    if found.is_none_or(|v| v < u64::from(FORMAT_VERSION)) {
        upgrade(&txn)?;
    }
    let sequences = {
        let meta = txn.open_table(META)?;
        let events = txn.open_table(EVENTS)?;
        let events_next = meta.get(META_EVENTS_NEXT)?.map_or(1, |v| v.value());
        let events_first = events.first()?.map_or(events_next, |(k, _)| k.value());
        let stored = meta.get(META_NEXT_JOB_ID)?.map_or(1, |v| v.value());
        let jobs = txn.open_table(JOBS)?;
        let after_last = jobs.last()?.map_or(1, |(k, _)| k.value() + 1);
        Sequences {
            events_first,
            events_next,
            next_job_id: stored.max(after_last),
        }
    };
    txn.commit()?;
    Ok(sequences)
}

/// Brings a file of an older format (or a new one) to [`FORMAT_VERSION`]. Every older record
/// still decodes (see `records`); what changes is the change log: the `outbox` table of
/// versions 1 to 3, which nothing read, is dropped, and the event sequence starts where the
/// outbox's ended, so that no sequence number is ever reused.
fn upgrade(txn: &redb::WriteTransaction) -> Result<(), StoreError> {
    let outbox_next = {
        let outbox = txn.open_table(OUTBOX)?;
        // Written by every commit of version 3; before, each key held one change.
        let stored = txn
            .open_table(META)?
            .get(META_OUTBOX_NEXT)?
            .map(|v| v.value());
        stored.unwrap_or(outbox.last()?.map_or(1, |(k, _)| k.value() + 1))
    };
    txn.delete_table(OUTBOX)?;
    let mut meta = txn.open_table(META)?;
    let events_next = meta
        .get(META_EVENTS_NEXT)?
        .map_or(1, |v| v.value())
        .max(outbox_next);
    meta.insert(META_EVENTS_NEXT, events_next)?;
    meta.remove(META_OUTBOX_NEXT)?;
    meta.insert(META_FORMAT, u64::from(FORMAT_VERSION))?;
    Ok(())
}

#[cfg(test)]
mod tests;
