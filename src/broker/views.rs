//! The broker's inputs and outputs: validated requests in, plain views out.

use super::config::{Backoff, QueueConfig};
use crate::clock::Millis;
use crate::cron::CronSchedule;
use crate::job::{JobId, JobState, LeaseToken};
use crate::storage::{StoredJob, StoredState};

/// A job to enqueue, already validated by the caller.
#[derive(Debug, Clone)]
pub struct NewJob {
    /// The payload (raw JSON text).
    pub payload: String,
    /// 0–255, higher first.
    pub priority: u8,
    /// Earliest delivery; `None` means now.
    pub run_at: Option<RunAt>,
    /// Overrides the queue's `max_attempts`.
    pub max_attempts: Option<u32>,
    /// Lease length for its deliveries when a poll names none.
    pub lease_ms: Option<u64>,
    /// Small string headers.
    pub headers: Vec<(String, String)>,
    /// Deduplicates enqueues within the queue's idempotency window.
    pub idempotency_key: Option<String>,
    /// Its fairness group within the queue (a customer id, say): polls take turns across
    /// groups.
    pub group: Option<String>,
}

impl NewJob {
    /// A job with `payload` (raw JSON text) and every other field at its default: normal
    /// priority, ready now, the queue's attempts and lease, no headers, no idempotency key.
    pub fn new(payload: impl Into<String>) -> NewJob {
        NewJob {
            payload: payload.into(),
            priority: crate::job::Priority::NORMAL.0,
            run_at: None,
            max_attempts: None,
            lease_ms: None,
            headers: Vec::new(),
            idempotency_key: None,
            group: None,
        }
    }
}

/// When a job may first be delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunAt {
    /// At this time (epoch ms).
    At(Millis),
    /// This many milliseconds after the enqueue.
    After(Millis),
}

impl RunAt {
    /// The time, for an enqueue at `now`.
    pub fn resolve(self, now: Millis) -> Millis {
        match self {
            RunAt::At(at) => at,
            RunAt::After(delay) => now.saturating_add(delay),
        }
    }
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
    /// Its fairness group, if any.
    pub group: Option<String>,
}

/// One ack (of a batch, or alone).
#[derive(Debug, Clone)]
pub struct AckItem {
    /// The job.
    pub id: JobId,
    /// The lease token from its delivery.
    pub lease: LeaseToken,
    /// An optional result (raw JSON text), readable with the job.
    pub result: Option<String>,
    /// Messages written to the outbox with the ack, atomically.
    pub emit: Vec<NewMessage>,
    /// Jobs enqueued with the ack, atomically (a stale lease enqueues nothing).
    pub enqueue: Vec<FollowUp>,
}

impl AckItem {
    /// An ack of `id` with `lease`, no result, nothing emitted or enqueued.
    pub fn new(id: JobId, lease: LeaseToken) -> AckItem {
        AckItem {
            id,
            lease,
            result: None,
            emit: Vec::new(),
            enqueue: Vec::new(),
        }
    }
}

/// What an ack did besides the ack.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Acked {
    /// The outcome of each follow-up job, in order.
    pub enqueued: Vec<Enqueued>,
}

/// A job an ack enqueues.
#[derive(Debug, Clone)]
pub struct FollowUp {
    /// Its queue.
    pub queue: String,
    /// The job.
    pub job: NewJob,
}

/// A message a client writes to the outbox: a `message` event of the change log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMessage {
    /// Its topic.
    pub topic: String,
    /// Its key, if any.
    pub key: Option<String>,
    /// Its payload (raw JSON text).
    pub payload: String,
    /// Small string headers.
    pub headers: Vec<(String, String)>,
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
    /// Messages written to the outbox with the nack, atomically.
    pub emit: Vec<NewMessage>,
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
    /// New depth limit (`Some(None)`: none).
    pub max_depth: Option<Option<u64>>,
    /// New limit of leases per group (`Some(None)`: none).
    pub group_max_in_flight: Option<Option<u32>>,
    /// New weights of groups, replacing the old ones (empty: every group weighs 1).
    pub group_weights: Option<std::collections::BTreeMap<String, u32>>,
}

impl QueuePatch {
    /// Whether the patch only pauses or resumes.
    pub fn only_pauses(&self) -> bool {
        let QueuePatch {
            lease_ms,
            max_attempts,
            backoff_base_ms,
            backoff_cap_ms,
            backoff_jitter,
            paused: _,
            retention_ms,
            dead_retention_ms,
            idempotency_window_ms,
            max_depth,
            group_max_in_flight,
            group_weights,
        } = self;
        lease_ms.is_none()
            && max_attempts.is_none()
            && backoff_base_ms.is_none()
            && backoff_cap_ms.is_none()
            && backoff_jitter.is_none()
            && retention_ms.is_none()
            && dead_retention_ms.is_none()
            && idempotency_window_ms.is_none()
            && max_depth.is_none()
            && group_max_in_flight.is_none()
            && group_weights.is_none()
    }

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
        if let Some(v) = self.max_depth {
            config.max_depth = v;
        }
        if let Some(v) = self.group_max_in_flight {
            config.group_max_in_flight = v;
        }
        if let Some(v) = &self.group_weights {
            config.group_weights = v.clone();
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
    /// Its queue.
    pub queue: String,
    /// Its state now.
    pub state: JobState,
    /// 0–255, higher first.
    pub priority: u8,
    /// Deliveries so far.
    pub attempts: u32,
    /// Deliveries allowed before it is dead.
    pub max_attempts: u32,
    /// The payload (raw JSON text).
    pub payload: String,
    /// Its headers, in the order given.
    pub headers: Vec<(String, String)>,
    /// The error text of the last failed attempt.
    pub last_error: Option<String>,
    /// The ack result (raw JSON text), once acked with one.
    pub result: Option<String>,
    /// When it was enqueued.
    pub enqueued_at: Millis,
    /// When it last changed.
    pub updated_at: Millis,
    /// When it becomes (or became) deliverable: scheduled and ready jobs.
    pub run_at: Option<Millis>,
    /// When its lease expires: leased jobs.
    pub lease_expires_at: Option<Millis>,
    /// When it finished: succeeded, dead and cancelled jobs.
    pub finished_at: Option<Millis>,
    /// Its fairness group, if any.
    pub group: Option<String>,
}

impl JobView {
    /// The view of a stored job at time `now`.
    pub(super) fn new(id: u64, stored: StoredJob, now: Millis) -> JobView {
        let r = stored.record;
        let (run_at, lease_expires_at, finished_at) = match r.state {
            StoredState::Queued { run_at } => (Some(run_at), None, None),
            StoredState::Leased { deadline, .. } => (None, Some(deadline), None),
            StoredState::Succeeded { finished_at } | StoredState::Cancelled { finished_at } => {
                (None, None, Some(finished_at))
            }
            StoredState::Dead { died_at } => (None, None, Some(died_at)),
        };
        JobView {
            id: JobId(id),
            state: public_state(&r.state, now),
            queue: r.queue,
            priority: r.priority,
            attempts: r.attempts,
            max_attempts: r.max_attempts,
            payload: stored.body.payload,
            headers: stored.body.headers,
            last_error: r.last_error,
            result: stored.result,
            enqueued_at: r.enqueued_at,
            updated_at: r.updated_at,
            run_at,
            lease_expires_at,
            finished_at,
            group: r.group,
        }
    }
}

/// What a client asks a schedule to be.
#[derive(Debug, Clone)]
pub struct ScheduleSpec {
    /// The parsed expression and zone.
    pub cron: CronSchedule,
    /// The target queue.
    pub queue: String,
    /// The job each fire enqueues (no `run_at`, no idempotency key).
    pub job: NewJob,
    /// Create paused.
    pub paused: bool,
    /// Fire once on start for fires missed while down.
    pub catch_up: bool,
}

/// The job a schedule enqueues, as shown to clients.
#[derive(Debug, Clone)]
pub struct TemplateView {
    /// The payload (raw JSON text).
    pub payload: String,
    /// 0–255.
    pub priority: u8,
    /// Overrides the queue's max attempts.
    pub max_attempts: Option<u32>,
    /// Lease length for its deliveries.
    pub lease_ms: Option<u64>,
    /// Headers (the schedule adds `wharf-schedule` and `wharf-due-at` to each job).
    pub headers: Vec<(String, String)>,
}

/// A schedule as shown to clients.
#[derive(Debug, Clone)]
pub struct ScheduleView {
    /// Its name.
    pub name: String,
    /// The cron expression as given.
    pub cron: String,
    /// The IANA time zone it is evaluated in.
    pub timezone: String,
    /// The queue its jobs go to.
    pub queue: String,
    /// The job each fire enqueues.
    pub job: TemplateView,
    /// Paused schedules do not fire.
    pub paused: bool,
    /// Fire once on start for due times missed while down (`false`: skip them).
    pub catch_up: bool,
    /// The due time of the last fire.
    pub last_fire: Option<Millis>,
    /// The next due time (`None` while paused, or when the expression has no more).
    pub next_fire: Option<Millis>,
    /// The next few fire times (empty while paused).
    pub upcoming: Vec<Millis>,
    /// Creation time.
    pub created_at: Millis,
    /// Last change.
    pub updated_at: Millis,
}

/// The public state of a stored state at time `now`.
pub(super) fn public_state(state: &StoredState, now: Millis) -> JobState {
    match *state {
        StoredState::Queued { run_at } if run_at > now => JobState::Scheduled,
        StoredState::Queued { .. } => JobState::Ready,
        StoredState::Leased { .. } => JobState::Leased,
        StoredState::Succeeded { .. } => JobState::Succeeded,
        StoredState::Dead { .. } => JobState::Dead,
        StoredState::Cancelled { .. } => JobState::Cancelled,
    }
}

/// The data volume's free space against its floor (`min_free_mb`), as last read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskSpace {
    /// Bytes free on the volume.
    pub available_bytes: u64,
    /// Below this, writes that add data are refused (507).
    pub floor_bytes: u64,
    /// Whether the volume is below the floor now.
    pub low: bool,
    /// Journal bytes the next checkpoint writes into the data file; `low` counts them three
    /// times against the free space, so while this is 0 the reading is exact.
    pub pending_checkpoint_bytes: u64,
}
