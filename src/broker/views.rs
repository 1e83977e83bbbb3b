//! The broker's inputs and outputs: validated requests in, plain views out.

use super::config::{Backoff, QueueConfig};
use crate::clock::Millis;
use crate::job::{JobId, JobState, LeaseToken};
use crate::storage::{StoredJob, StoredState};

/// A job to enqueue, already validated by the caller.
#[derive(Debug, Clone)]
pub struct NewJob {
    /// The payload (raw JSON text).
    pub payload: String,
    /// 0–255, higher first.
    pub priority: u8,
    /// Earliest delivery (epoch ms); `None` means now.
    pub run_at: Option<Millis>,
    /// Overrides the queue's `max_attempts`.
    pub max_attempts: Option<u32>,
    /// Lease length for its deliveries when a poll names none.
    pub lease_ms: Option<u64>,
    /// Small string headers.
    pub headers: Vec<(String, String)>,
    /// Deduplicates enqueues within the queue's idempotency window.
    pub idempotency_key: Option<String>,
}

/// The outcome of one enqueue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Enqueued {
    /// The new job's id.
    pub id: JobId,
    /// `scheduled` or `ready` for a new job; the original's current state for a duplicate, or
    /// `None` when the original has been deleted (purge or retention) within the key's window.
    pub state: Option<JobState>,
    /// Whether the idempotency key matched an earlier job (nothing was created).
    pub duplicate: bool,
}

/// A poll.
#[derive(Debug, Clone, Copy)]
pub struct PollRequest {
    /// Most jobs to deliver.
    pub max: usize,
    /// How long to wait for a first job when none is ready.
    pub wait_ms: u64,
    /// Lease length; `None` uses the job's, then the queue's default.
    pub lease_ms: Option<u64>,
}

/// One delivered job.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The job.
    pub id: JobId,
    /// Its queue.
    pub queue: String,
    /// Its payload (raw JSON text).
    pub payload: String,
    /// Its priority.
    pub priority: u8,
    /// Which delivery this is (1-based).
    pub attempt: u32,
    /// The token to ack, nack or extend with.
    pub lease: LeaseToken,
    /// When the lease expires unless extended.
    pub lease_expires_at: Millis,
    /// Its headers.
    pub headers: Vec<(String, String)>,
    /// When it was enqueued.
    pub enqueued_at: Millis,
}

/// One ack of a batch.
#[derive(Debug, Clone)]
pub struct AckItem {
    /// The job.
    pub id: JobId,
    /// The lease token from its delivery.
    pub lease: LeaseToken,
    /// An optional result (raw JSON text), readable with the job.
    pub result: Option<String>,
}

/// A nack.
#[derive(Debug, Clone, Default)]
pub struct NackRequest {
    /// Why the attempt failed (kept as the job's `last_error`).
    pub error: Option<String>,
    /// Retry after this long instead of the backoff.
    pub delay_ms: Option<u64>,
    /// Dead now, whatever attempts are left.
    pub dead: bool,
}

/// A partial update of a queue's defaults.
#[derive(Debug, Clone, Default)]
pub struct QueuePatch {
    /// New default lease.
    pub lease_ms: Option<u64>,
    /// New default max attempts.
    pub max_attempts: Option<u32>,
    /// New backoff base.
    pub backoff_base_ms: Option<u64>,
    /// New backoff cap.
    pub backoff_cap_ms: Option<u64>,
    /// New jitter setting.
    pub backoff_jitter: Option<bool>,
    /// Pause or resume.
    pub paused: Option<bool>,
    /// New retention of succeeded and cancelled jobs.
    pub retention_ms: Option<u64>,
    /// New retention of dead jobs.
    pub dead_retention_ms: Option<u64>,
    /// New idempotency window.
    pub idempotency_window_ms: Option<u64>,
}

impl QueuePatch {
    /// Applies the patch to `config`.
    pub fn apply(&self, config: &mut QueueConfig) {
        let b: &mut Backoff = &mut config.backoff;
        if let Some(v) = self.lease_ms {
            config.lease_ms = v;
        }
        if let Some(v) = self.max_attempts {
            config.max_attempts = v;
        }
        if let Some(v) = self.backoff_base_ms {
            b.base_ms = v;
        }
        if let Some(v) = self.backoff_cap_ms {
            b.cap_ms = v;
        }
        if let Some(v) = self.backoff_jitter {
            b.jitter = v;
        }
        if let Some(v) = self.paused {
            config.paused = v;
        }
        if let Some(v) = self.retention_ms {
            config.retention_ms = v;
        }
        if let Some(v) = self.dead_retention_ms {
            config.dead_retention_ms = v;
        }
        if let Some(v) = self.idempotency_window_ms {
            config.idempotency_window_ms = v;
        }
    }
}

/// A queue's defaults and counts.
#[derive(Debug, Clone)]
pub struct QueueView {
    /// Its name.
    pub name: String,
    /// Its defaults.
    pub config: QueueConfig,
    /// Jobs per state, in [`JobState::ALL`] order.
    pub counts: [u64; 6],
}

/// Everything known about one job.
#[derive(Debug, Clone)]
pub struct JobView {
    /// The job.
    pub id: JobId,
    /// Its state now.
    pub state: JobState,
    /// Its stored record, body and result.
    pub stored: StoredJob,
}

impl JobView {
    /// Builds the view of a stored job at time `now`.
    pub fn new(id: u64, stored: StoredJob, now: Millis) -> JobView {
        JobView {
            id: JobId(id),
            state: public_state(&stored.record.state, now),
            stored,
        }
    }
}

/// The public state of a stored state at time `now`.
pub fn public_state(state: &StoredState, now: Millis) -> JobState {
    match *state {
        StoredState::Queued { run_at } if run_at > now => JobState::Scheduled,
        StoredState::Queued { .. } => JobState::Ready,
        StoredState::Leased { .. } => JobState::Leased,
        StoredState::Succeeded { .. } => JobState::Succeeded,
        StoredState::Dead { .. } => JobState::Dead,
        StoredState::Cancelled { .. } => JobState::Cancelled,
    }
}

/// The wire name of a stored state at time `now`.
pub fn stored_state_name(state: &StoredState, now: Millis) -> &'static str {
    public_state(state, now).as_str()
}
