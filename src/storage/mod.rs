//! The embedded store: the only module that knows redb.
//!
//! - [`records`]: persisted types and their versioned codec.
//! - [`tables`]: the table layout.
//! - [`ops`]: the write ops and their versioned journal encoding.
//! - [`apply`]: applying one op to the tables (a pure step, shared by the writer and replay).
//! - [`outbox`]: the change log as the writer appends and trims it.
//! - [`writer`]: the `wharf-storage` thread and its group commit.
//! - [`journal`]: the write-ahead log that makes group commits durable: frames, and the
//!   `wharf-journal` thread that fsyncs them.
//! - [`checkpoint`]: folding the journal into the data file; replay at start-up.
//! - [`reads`]: job lookups and recovery scans (redb read transactions, concurrent with the
//!   writer).
//! - [`expiry`]: the writer's wake-ups for the retention sweeper.
//! - [`error`]: every storage error.

mod apply;
mod checkpoint;
mod error;
mod expiry;
mod journal;
mod ops;
mod outbox;
mod reads;
mod records;
mod request;
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
use tokio::sync::{Semaphore, oneshot};

pub use apply::Original;
pub use error::{DecodeError, OpsError, StoreError};
pub use expiry::ExpiryWatch;
pub use ops::{IdempotencyKey, JobChange, OPS_VERSION, WriteOp, decode_ops, encode_ops};
pub use records::{
    FORMAT_VERSION, IdempotencyRecord, JobBody, JobRecord, JobTemplate, OutboxEntry, QueueRecord,
    ScheduleRecord, StoredState, decode, decode_outbox, decode_queue_record, encode,
};
pub use request::Written;

use crate::metrics::StorageMetrics;
use journal::{JOURNAL_FILE, Journal, SyncPolicy};
use outbox::Outbox;
use request::{Message, Reply, WriteRequest};
use tables::{
    BODIES, EXPIRY, IDEMPOTENCY, IDEMPOTENCY_EXPIRY, JOBS, META, META_FORMAT, META_NEXT_JOB_ID,
    META_OUTBOX_NEXT, OUTBOX, QUEUES, RESULTS, SCHEDULES,
};
use writer::{Writer, WriterOptions};

/// The database file inside the data directory.
pub const DATA_FILE: &str = "wharf.redb";
/// A checkpoint follows at the latest when this many journal bytes were written since the last.
const CHECKPOINT_BYTES: usize = 64 << 20;

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
    /// The outbox keeps at most this many entries.
    pub outbox_max_entries: u64,
}

/// The handle to the store and its writer thread.
pub struct Store {
    /// Taken out on [`Store::close`], so the file is released even while other handles to the
    /// store (say, an HTTP connection task still winding down) are alive.
    db: RwLock<Option<Arc<Database>>>,
    tx: Sender<Message>,
    admission: Arc<Semaphore>,
    thread: Mutex<Option<JoinHandle<()>>>,
    poisoned: Arc<AtomicBool>,
    metrics: Arc<StorageMetrics>,
    expiry: Arc<ExpiryWatch>,
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
        let db = Database::builder()
            .set_cache_size(options.cache_bytes)
            .create(dir.join(DATA_FILE))?;
        let (outbox_first, outbox_next, next_job_id) = init(&db)?;
        let db = Arc::new(db);
        let metrics = Arc::new(StorageMetrics::new());
        let poisoned = Arc::new(AtomicBool::new(false));
        let expiry = Arc::new(ExpiryWatch::default());
        let mut writer = Writer {
            db: db.clone(),
            options: WriterOptions {
                sync_mode: options.sync_mode,
                max_group: options.max_group.max(1),
                checkpoint_interval: options.checkpoint_interval,
                checkpoint_bytes: CHECKPOINT_BYTES,
            },
            metrics: metrics.clone(),
            poisoned: poisoned.clone(),
            expiry: expiry.clone(),
            outbox: Outbox::new(outbox_first, outbox_next, options.outbox_max_entries),
            next_job_id,
            journal_seq: 0,
            journal_salt: 0,
            dirty_since: None,
            journal_bytes: 0,
            frame: Vec::new(),
        };
        let journal_path = dir.join(JOURNAL_FILE);
        let replayed = writer.recover(&journal_path)?;
        if replayed > 0 {
            tracing::info!(frames = replayed, "replayed the journal");
        }
        let journal = Journal::start(
            &journal_path,
            writer.journal_seq,
            options.journal_preallocate_bytes,
            SyncPolicy {
                flush_interval: options.flush_interval,
            },
            poisoned.clone(),
            metrics.clone(),
        )?;
        let (tx, rx) = channel();
        let thread = std::thread::Builder::new()
            .name("wharf-storage".into())
            .spawn(move || writer.run(rx, journal))
            .map_err(|source| StoreError::DataDir {
                path: dir.clone(),
                source,
            })?;
        Ok(Store {
            db: RwLock::new(Some(db)),
            tx,
            admission: Arc::new(Semaphore::new(options.max_pending.max(1))),
            thread: Mutex::new(Some(thread)),
            poisoned,
            metrics,
            expiry,
        })
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
        if let Err(std::sync::mpsc::SendError(Message::Write(request))) =
            self.tx.send(Message::Write(request))
        {
            request.reply.send(Err(StoreError::Closed));
        }
        pending
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
        let _ = self.tx.send(Message::Shutdown);
        if let Some(thread) = self.thread.lock().take()
            && thread.join().is_err()
        {
            tracing::error!("the storage writer thread panicked");
        }
        self.db.write().take();
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

/// Creates the tables, checks the format version, and reads the writer's sequences:
/// (first outbox seq, next outbox seq, next job id).
fn init(db: &Database) -> Result<(u64, u64, u64), StoreError> {
    let txn = db.begin_write()?;
    {
        let mut meta = txn.open_table(META)?;
        let found = meta.get(META_FORMAT)?.map(|v| v.value());
        match found {
            // Older files upgrade in place: version 2 added tables (created below), version 3
            // batches the outbox (`decode_outbox` reads both layouts); both decode older records.
            None | Some(1 | 2) => {
                meta.insert(META_FORMAT, u64::from(FORMAT_VERSION))?;
            }
            Some(v) if v == u64::from(FORMAT_VERSION) => {}
            Some(found) => {
                return Err(StoreError::Format {
                    found,
                    supported: FORMAT_VERSION,
                });
            }
        }
        txn.open_table(JOBS)?;
        txn.open_table(BODIES)?;
        txn.open_table(RESULTS)?;
        txn.open_table(QUEUES)?;
        txn.open_table(EXPIRY)?;
        txn.open_table(IDEMPOTENCY)?;
        txn.open_table(IDEMPOTENCY_EXPIRY)?;
        txn.open_table(SCHEDULES)?;
    }
    let (first, next) = {
        let outbox = txn.open_table(OUTBOX)?;
        let first = outbox.first()?.map_or(1, |(k, _)| k.value());
        // Written by every commit since version 3; before, each key held one change.
        let stored = txn
            .open_table(META)?
            .get(META_OUTBOX_NEXT)?
            .map(|v| v.value());
        let next = stored.unwrap_or(outbox.last()?.map_or(1, |(k, _)| k.value() + 1));
        (first, next)
    };
    let next_job_id = {
        let meta = txn.open_table(META)?;
        let stored = meta.get(META_NEXT_JOB_ID)?.map_or(1, |v| v.value());
        let jobs = txn.open_table(JOBS)?;
        let after_last = jobs.last()?.map_or(1, |(k, _)| k.value() + 1);
        stored.max(after_last)
    };
    txn.commit()?;
    Ok((first, next, next_job_id))
}

#[cfg(test)]
mod tests;
