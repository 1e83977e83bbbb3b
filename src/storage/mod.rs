//! The embedded store: the only module that knows redb.
//!
//! - [`records`]: persisted types and their versioned codec.
//! - [`tables`]: the table layout.
//! - [`writer`]: the `wharf-storage` thread and its group commit.
//! - [`journal`]: the write-ahead log that makes group commits durable, and its
//!   `wharf-journal` thread.
//!
//! Reads (job lookups, the recovery scan) use redb read transactions directly; they run
//! concurrently with the writer and see the last commit.

mod journal;
mod records;
mod tables;
mod writer;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Sender, channel};
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata};
use tokio::sync::{Semaphore, oneshot};

pub use records::{
    DecodeError, FORMAT_VERSION, IdempotencyRecord, JobBody, JobRecord, JobTemplate, OutboxEntry,
    QueueRecord, ScheduleRecord, StoredState, decode, decode_outbox, decode_queue_record, encode,
};
pub use writer::{IdempotencyKey, JobChange, Original, WriteOp, Written};

use crate::metrics::Histogram;
use journal::{JOURNAL_FILE, Journal, SyncPolicy};
use tables::{
    BODIES, EXPIRY, IDEMPOTENCY, IDEMPOTENCY_EXPIRY, JOBS, META, META_FORMAT, META_NEXT_JOB_ID,
    META_OUTBOX_NEXT, OUTBOX, QUEUES, RESULTS, SCHEDULES,
};
use writer::{Message, Reply, WriteRequest, Writer, WriterOptions};

/// The database file inside the data directory.
pub const DATA_FILE: &str = "wharf.redb";
/// A checkpoint follows at the latest when this many journal bytes were written since the last.
const CHECKPOINT_BYTES: usize = 64 << 20;

/// Storage failures.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The engine reported an error (I/O, corruption, a full disk).
    #[error("storage engine: {0}")]
    Engine(#[from] redb::Error),
    /// A stored value does not decode.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// An earlier commit or fsync failed; writes are refused until restart.
    #[error(
        "storage failed earlier and refuses writes; check the disk and the log, then restart wharf"
    )]
    Poisoned,
    /// The store is shutting down.
    #[error("storage is shutting down")]
    Closed,
    /// The data directory could not be created or used.
    #[error("data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The journal file could not be read or written.
    #[error("journal: {0}")]
    Io(std::io::Error),
    /// A journal frame whose checksum matched does not decode (a bug, or a foreign file).
    #[error("journal frame: {0}")]
    Journal(postcard::Error),
    /// The file was written by an incompatible format.
    #[error(
        "data file format version {found} is not supported (this build reads {FORMAT_VERSION})"
    )]
    Format {
        /// The version found in the file.
        found: u64,
    },
}

macro_rules! engine_errors {
    ($($ty:ty),*) => {$(
        impl From<$ty> for StoreError {
            fn from(e: $ty) -> Self {
                StoreError::Engine(e.into())
            }
        }
    )*};
}
engine_errors!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::SetDurabilityError
);

/// Commit metrics, exported at `/metrics`.
#[derive(Debug)]
pub struct StoreMetrics {
    /// Requests per commit.
    pub group_size: Histogram,
    /// Duration of applying one commit group to redb (without fsync).
    pub apply_seconds: Histogram,
    /// Duration of journal fsyncs (each makes one or more commit groups durable).
    pub fsync_seconds: Histogram,
    /// Duration of checkpoints (journal fsync, then a durable redb commit).
    pub checkpoint_seconds: Histogram,
}

impl StoreMetrics {
    fn new() -> StoreMetrics {
        const SECONDS: &[f64] = &[
            0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
        ];
        StoreMetrics {
            group_size: Histogram::new(
                &[
                    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0,
                ],
                1.0,
            ),
            apply_seconds: Histogram::new(SECONDS, 1e6),
            fsync_seconds: Histogram::new(SECONDS, 1e6),
            checkpoint_seconds: Histogram::new(SECONDS, 1e6),
        }
    }
}

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
    metrics: Arc<StoreMetrics>,
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
        let metrics = Arc::new(StoreMetrics::new());
        let poisoned = Arc::new(AtomicBool::new(false));
        let mut writer = Writer {
            db: db.clone(),
            options: WriterOptions {
                sync_mode: options.sync_mode,
                max_group: options.max_group.max(1),
                outbox_max_entries: options.outbox_max_entries.max(1),
                checkpoint_interval: options.checkpoint_interval,
                checkpoint_bytes: CHECKPOINT_BYTES,
            },
            metrics: metrics.clone(),
            poisoned: poisoned.clone(),
            outbox_first,
            outbox_next,
            outbox_batch: Vec::new(),
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
        })
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
                _permit: admission,
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
    pub fn metrics(&self) -> &StoreMetrics {
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

    /// Reads one job with its body and result (blocking I/O: call off the async runtime).
    pub fn read_job(&self, id: u64) -> Result<Option<StoredJob>, StoreError> {
        let db = self.db()?;
        let txn = db.begin_read()?;
        let Some(record) = txn.open_table(JOBS)?.get(id)? else {
            return Ok(None);
        };
        let record: JobRecord = decode(record.value())?;
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

    /// Every stored queue (for recovery).
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
                Some(bytes) => Some(decode(bytes.value())?),
                None => None,
            };
            out.push((at, id, record));
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
            visit(id.value(), decode(value.value())?);
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
            Some(found) => return Err(StoreError::Format { found }),
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
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn options(dir: &std::path::Path, checkpoint_interval: Duration) -> StoreOptions {
        StoreOptions {
            data_dir: dir.to_path_buf(),
            sync_mode: true,
            flush_interval: Duration::from_millis(50),
            checkpoint_interval,
            journal_preallocate_bytes: 0,
            cache_bytes: 4 << 20,
            max_group: 64,
            max_pending: 64,
            outbox_max_entries: 1000,
        }
    }

    fn insert(id: u64) -> WriteOp {
        WriteOp::Insert {
            id,
            record: JobRecord {
                queue: "q".into(),
                priority: 128,
                state: StoredState::Queued { run_at: 1 },
                attempts: 0,
                max_attempts: 5,
                lease_ms: None,
                enqueued_at: 1,
                updated_at: 1,
                last_error: None,
                version: 1,
            },
            body: JobBody {
                payload: format!("\"job {id}\""),
                headers: Vec::new(),
            },
            idempotency: None,
        }
    }

    /// Submits each op as its own durable request and waits for every reply.
    fn write_all(store: &Store, ops: Vec<WriteOp>) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let pending: Vec<Pending> = ops
            .into_iter()
            .map(|op| {
                let admission = runtime.block_on(store.admit()).unwrap();
                store.submit(admission, vec![op], Vec::new(), true)
            })
            .collect();
        for reply in pending {
            runtime.block_on(reply).unwrap().unwrap();
        }
    }

    /// Copies the data files as a crash would leave them: what the kernel has, no shutdown.
    /// The journal goes first: a checkpoint racing the copy then only makes the data file
    /// newer, never leaves frames missing between it and the journal.
    fn crash_image(from: &std::path::Path, to: &std::path::Path) {
        for name in [JOURNAL_FILE, DATA_FILE] {
            std::fs::copy(from.join(name), to.join(name)).unwrap();
        }
    }

    #[test]
    fn acknowledged_writes_are_in_the_journal_before_any_checkpoint() {
        let live = tempfile::tempdir().unwrap();
        let image = tempfile::tempdir().unwrap();
        // No checkpoint during the test: only the journal holds the writes durably.
        let store = Store::open(&options(live.path(), Duration::from_secs(600))).unwrap();
        write_all(&store, (1..=50).map(insert).collect());
        assert_eq!(store.metrics().checkpoint_seconds.count(), 0);
        crash_image(live.path(), image.path());
        store.close();

        let recovered = Store::open(&options(image.path(), Duration::from_secs(600))).unwrap();
        for id in 1..=50 {
            let job = recovered.read_job(id).unwrap().unwrap();
            assert_eq!(job.body.payload, format!("\"job {id}\""));
        }
        assert_eq!(recovered.next_job_id().unwrap(), 51);
    }

    #[test]
    fn a_stop_after_a_failure_does_not_replay_what_redb_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&options(dir.path(), Duration::from_secs(600))).unwrap();
        write_all(&store, (1..=20).map(insert).collect());
        // As after a failed fsync: no checkpoint runs, but closing the database makes redb's
        // non-durable commits durable, so the data file already holds every frame.
        store.poisoned.store(true, Ordering::Release);
        store.close();

        let reopened = Store::open(&options(dir.path(), Duration::from_secs(600))).unwrap();
        assert_eq!(
            outbox_changes(&reopened),
            (1..=20).collect::<Vec<_>>(),
            "one outbox change per insert, none applied twice"
        );
        assert_eq!(reopened.job_count().unwrap(), 20);
    }

    /// The job ids of every stored outbox change, in sequence order.
    fn outbox_changes(store: &Store) -> Vec<u64> {
        let db = store.db().unwrap();
        let txn = db.begin_read().unwrap();
        let table = txn.open_table(OUTBOX).unwrap();
        let mut ids = Vec::new();
        for row in table.iter().unwrap() {
            let (_, value) = row.unwrap();
            ids.extend(
                decode_outbox(value.value())
                    .unwrap()
                    .iter()
                    .map(|c| c.job_id),
            );
        }
        ids
    }

    #[test]
    fn the_outbox_keeps_its_newest_changes_in_whole_batches() {
        let dir = tempfile::tempdir().unwrap();
        let mut opts = options(dir.path(), Duration::from_secs(600));
        opts.outbox_max_entries = 10;
        let store = Store::open(&opts).unwrap();
        // Submitted one request at a time: each insert is a batch of its own.
        for id in 1..=50 {
            write_all(&store, vec![insert(id)]);
        }
        assert_eq!(outbox_changes(&store), (41..=50).collect::<Vec<_>>());
        // Sequence numbers survive a restart: the next change continues after the last.
        store.close();
        let store = Store::open(&opts).unwrap();
        write_all(&store, (51..=60).map(insert).collect());
        let kept = outbox_changes(&store);
        assert_eq!(kept.last(), Some(&60));
        assert!(kept.len() >= 10, "{kept:?}");
        assert!(kept.windows(2).all(|w| w[1] == w[0] + 1), "{kept:?}");
    }

    #[test]
    fn a_clean_stop_leaves_nothing_to_replay() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&options(dir.path(), Duration::from_secs(600))).unwrap();
        write_all(&store, (1..=5).map(insert).collect());
        store.close();
        // The shutdown checkpoint holds every frame, and the first one is blanked so that the
        // next start does not read the round only to skip it.
        let journal = std::fs::read(dir.path().join(JOURNAL_FILE)).unwrap();
        assert!(journal.len() > journal::HEADER_LEN, "frames were written");
        assert!(journal[..journal::HEADER_LEN].iter().all(|&b| b == 0));
        let reopened = Store::open(&options(dir.path(), Duration::from_secs(600))).unwrap();
        assert_eq!(reopened.job_count().unwrap(), 5);
    }

    #[test]
    fn writes_after_a_checkpoint_replay_on_top_of_it() {
        let live = tempfile::tempdir().unwrap();
        let image = tempfile::tempdir().unwrap();
        // A checkpoint after every group: the journal is rewound over and over.
        let store = Store::open(&options(live.path(), Duration::ZERO)).unwrap();
        write_all(&store, (1..=20).map(insert).collect());
        // The writer checkpoints the first half before it takes the second (its replies come
        // after that checkpoint's durable commit).
        write_all(&store, (21..=40).map(insert).collect());
        assert!(store.metrics().checkpoint_seconds.count() > 0);
        crash_image(live.path(), image.path());
        store.close();

        let recovered = Store::open(&options(image.path(), Duration::from_secs(600))).unwrap();
        let mut stored = 0;
        recovered.scan_jobs(|_, _| stored += 1).unwrap();
        assert_eq!(stored, 40);
        // And a clean restart of that copy again finds them all, with an empty journal to replay.
        recovered.close();
        let again = Store::open(&options(image.path(), Duration::from_secs(600))).unwrap();
        assert_eq!(again.read_job(40).unwrap().unwrap().record.queue, "q");
    }
}
