//! The broker: every life-cycle rule lives here.
//!
//! # Life cycle
//!
//! A job is **enqueued** into a queue (created on first use). It is stored first; only once that
//! write is durable does it enter memory, as **scheduled** (its `run_at` is in the future) or
//! **ready**. The timer moves scheduled jobs to ready when they fall due; no write is needed for
//! that, because the stored state `Queued { run_at }` already says when it becomes ready.
//!
//! A **poll** takes ready jobs in order (priority descending, then enqueue sequence), gives each
//! a **lease**: a token made of the attempt number and a random nonce, and a deadline. The lease
//! is written to the store before the delivery is answered, but its fsync is not waited for: a
//! lease lost in a crash only means the job is delivered again. After a restart a leased job
//! whose lease was kept stays leased until its deadline and its token stays valid.
//!
//! The consumer then **acks** (the job **succeeded**; an optional result is stored), **nacks**
//! (a failed attempt), or **extends** the lease. Every one of these must present the current,
//! unexpired token, or it is refused (409) and changes nothing: a token from an earlier delivery
//! can never touch a later one.
//!
//! A **failed attempt** (nack, or a lease that expired, which the timer notices) is retried after
//! an exponential backoff with jitter (scheduled again), unless the job has used all its
//! attempts or was nacked with `dead`: then it is **dead**. Dead jobs can be listed and
//! **replayed** (ready again, attempts reset). Any job that is not leased can be **cancelled**;
//! a queue's waiting and dead jobs can be **purged**. Finished and dead jobs are deleted by the
//! retention sweeper once their queue's retention has passed.
//!
//! Every input is checked against [`limits`] first; every deadline is read from the one
//! [`Clock`].
//!
//! # Concurrency
//!
//! One mutex guards the in-memory [`State`]. It is held only for in-memory work and for handing
//! the resulting writes to the store (which never blocks), never across I/O or an `.await`.
//! Handing writes over under the lock makes the store apply them in exactly the order the
//! changes were decided, so disk never disagrees with memory. Replies wait for the commit.

mod admin;
mod audit;
mod background;
mod config;
mod delete;
mod enqueue;
mod error;
mod events;
mod keys;
mod lease;
pub mod limits;
mod placement;
mod reads;
mod recovery;
mod retention;
mod schedule;
mod snapshot;
mod state;
mod timer;
mod views;
mod waiters;

use std::sync::Weak;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::{Notify, watch};

pub use audit::{AuditPage, AuditRecord, MAX_AUDIT_PAGE};
pub use background::Parked;
pub use config::{Backoff, QueueConfig};
pub use error::BrokerError;
pub use events::{CursorView, Event, EventFilter, EventPage, EventQuery, Start, TYPES, audit_json};
pub use limits::{Invalid, Limit, Limits};
pub use snapshot::Snapshot;
pub use state::Counters;
pub use views::{
    AckItem, Acked, Delivery, DiskSpace, Enqueued, FollowUp, JobView, NackRequest, NewJob,
    NewMessage, PollRequest, QueuePatch, QueueView, RunAt, ScheduleSpec, ScheduleView,
    TemplateView,
};
pub use waiters::PollStats;

use crate::clock::{Clock, Millis};
use crate::metrics::StorageMetrics;
use crate::storage::{Admission, Pending, Store, StoreOptions, StoredState, WriteOp, Written};
use state::{Phase, State};

/// How the broker runs.
#[derive(Debug, Clone)]
pub struct BrokerOptions {
    /// The store's options.
    pub store: StoreOptions,
    /// Defaults for queues created on first use.
    pub queue_defaults: QueueConfig,
    /// Payload and batch limits.
    pub limits: Limits,
    /// Seed for jitter and lease nonces; `None` seeds from entropy (tests fix it).
    pub seed: Option<u64>,
    /// How long audit records are kept (ms).
    pub audit_retention_ms: Millis,
}

/// What recovery found at start-up.
#[derive(Debug, Clone, Copy, Default)]
pub struct RecoveryStats {
    /// Job records scanned.
    pub jobs: u64,
    /// Queues loaded.
    pub queues: u64,
    /// How long the open and scan took.
    pub elapsed: Duration,
}

/// The broker core, shared by every request handler and the background tasks.
pub struct Broker {
    /// The broker's own `Arc`, for work that must outlive a request (see `enqueue`).
    me: Weak<Broker>,
    state: Mutex<State>,
    store: Store,
    clock: Clock,
    queue_defaults: QueueConfig,
    limits: Limits,
    audit_retention_ms: Millis,
    next_id: AtomicU64,
    /// Woken when a deadline earlier than the timer's current one appears.
    timer_wake: Notify,
    /// The deadline the timer sleeps until (`u64::MAX`: none); lowered by `deadline_added`.
    timer_target: AtomicU64,
    timer_status: watch::Sender<Parked>,
    sweeper_status: watch::Sender<Parked>,
    /// Jobs purged and idempotency keys forgotten by retention, since start.
    purged_jobs: AtomicU64,
    forgotten_keys: AtomicU64,
    polls: watch::Sender<PollStats>,
    shutting_down: AtomicBool,
    shutdown_signal: Notify,
    recovery: RecoveryStats,
}

impl Broker {
    /// The clock every deadline is measured on.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Now, on the broker's clock.
    pub fn now(&self) -> Millis {
        self.clock.now()
    }

    /// The payload and batch limits every request is checked against.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// What recovery found at start-up.
    pub fn recovery_stats(&self) -> RecoveryStats {
        self.recovery
    }

    /// Commit metrics of the store.
    pub fn storage_metrics(&self) -> &StorageMetrics {
        self.store.metrics()
    }

    /// Jobs purged and idempotency keys forgotten by retention since the broker started.
    pub fn retention_totals(&self) -> (u64, u64) {
        (
            self.purged_jobs.load(Ordering::Relaxed),
            self.forgotten_keys.load(Ordering::Relaxed),
        )
    }

    /// The data volume's free space and floor, as last read.
    pub fn disk_space(&self) -> DiskSpace {
        let reading = self.store.space();
        DiskSpace {
            available_bytes: reading.available,
            floor_bytes: reading.floor,
            low: reading.low,
            pending_checkpoint_bytes: reading.pending,
        }
    }

    /// Whether the store still accepts writes.
    pub fn is_healthy(&self) -> bool {
        !self.store.is_poisoned()
    }

    /// Stops long-polls and the background tasks. Writes in flight still complete; call
    /// [`Broker::close`] after the HTTP server has drained to flush and stop the writer.
    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
        self.shutdown_signal.notify_waiters();
        self.timer_wake.notify_one();
        self.store.expiry_watch().wake();
        let state = self.state.lock();
        for notify in state.waiters.values() {
            notify.notify_waiters();
        }
    }

    /// Resolves once [`Broker::begin_shutdown`] has been called.
    pub async fn until_shutdown(&self) {
        let mut stopped = std::pin::pin!(self.shutdown_signal.notified());
        stopped.as_mut().enable();
        if self.is_shutting_down() {
            return;
        }
        stopped.await;
    }

    /// Whether [`Broker::begin_shutdown`] was called.
    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }

    /// Finishes queued writes, fsyncs, and stops the writer thread.
    pub fn close(&self) {
        self.begin_shutdown();
        self.store.close();
    }

    /// Hands prepared writes to the store. Call it under the state lock (see the module docs
    /// for why); it never blocks. `None` when there is nothing to write.
    fn submit(&self, admission: Admission, prepared: Prepared) -> Option<Pending> {
        let Prepared {
            ops,
            fetch,
            durable,
        } = prepared;
        (!ops.is_empty() || !fetch.is_empty())
            .then(|| self.store.submit(admission, ops, fetch, durable))
    }

    /// Waits for a submitted write to commit; returns the rows it was asked to fetch.
    async fn committed(&self, pending: Option<Pending>) -> Result<Written, BrokerError> {
        let Some(pending) = pending else {
            return Ok(Written::default());
        };
        match pending.await {
            Ok(result) => Ok(result?),
            Err(_) => Err(self.reply_dropped()),
        }
    }

    /// Why the store dropped a write's reply: a storage thread died (a panic marks the store
    /// failed before its replies are dropped), or the store closed.
    fn reply_dropped(&self) -> BrokerError {
        if self.store.is_poisoned() {
            BrokerError::StorageFailed
        } else {
            BrokerError::ShuttingDown
        }
    }

    /// The 404/409 for an ack, nack, extend or cancel of a job that is not live in memory.
    async fn missing_job_error(&self, id: u64) -> BrokerError {
        match self.read_stored(id).await {
            Ok(Some(job)) => BrokerError::NotLeased {
                state: views::public_state(&job.record.state, self.now()).as_str(),
            },
            Ok(None) => BrokerError::JobNotFound,
            Err(error) => error,
        }
    }
}

/// Runs a storage read that may touch the disk. On the multi-threaded runtime tokio is told, so
/// it moves other tasks off this worker meanwhile; `block_in_place` is not allowed on a
/// current-thread runtime, where the read simply runs inline. A read that panics (the storage
/// engine's own state broken, say by a storage thread that died mid-commit) is a failed store,
/// answered as such, not a dropped connection.
fn blocking<T>(
    read: impl FnOnce() -> Result<T, crate::storage::StoreError>,
) -> Result<T, crate::storage::StoreError> {
    let guarded = || {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(read))
            .unwrap_or(Err(crate::storage::StoreError::Poisoned))
    };
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(guarded),
        _ => guarded(),
    }
}

/// Writes decided under the lock, to hand to the store.
struct Prepared {
    ops: Vec<WriteOp>,
    fetch: Vec<u64>,
    /// Whether the reply waits for an fsync (in `sync` mode): true for every acknowledged
    /// write; false for lease writes (polls, expiries), whose loss in a crash only means the
    /// job is delivered again.
    durable: bool,
}

impl Prepared {
    /// Durable writes with nothing to fetch.
    fn ops(ops: Vec<WriteOp>) -> Prepared {
        Prepared {
            ops,
            fetch: Vec::new(),
            durable: true,
        }
    }

    /// Writes whose reply need not wait for an fsync.
    fn lazy() -> Prepared {
        Prepared {
            durable: false,
            ..Prepared::default()
        }
    }
}

impl Default for Prepared {
    fn default() -> Self {
        Prepared::ops(Vec::new())
    }
}

/// The stored form of an in-memory phase.
fn stored_state(phase: Phase, now: Millis) -> StoredState {
    match phase {
        Phase::Scheduled { run_at } => StoredState::Queued { run_at },
        Phase::Ready => StoredState::Queued { run_at: now },
        Phase::Leased { deadline, nonce } => StoredState::Leased {
            nonce: u64::from(nonce),
            deadline,
        },
        Phase::Dead => StoredState::Dead { died_at: now },
    }
}
