//! What a broker operation can refuse.

use super::limits::Invalid;
use crate::storage::StoreError;

/// Why a broker operation did not happen. Every variant leaves state unchanged.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BrokerError {
    /// No job with that id exists (or it was purged).
    #[error("no job with that id")]
    JobNotFound,
    /// No schedule with that name exists.
    #[error("no schedule with that name")]
    ScheduleNotFound,
    /// The schedule name is outside `[A-Za-z0-9._-]{1,128}`.
    #[error(
        "schedule names are 1-128 characters of A-Z, a-z, 0-9, '.', '_' and '-', other than '.' and '..'"
    )]
    InvalidScheduleName,
    /// No queue with that name exists.
    #[error("no queue with that name")]
    QueueNotFound,
    /// The queue name is outside `[A-Za-z0-9._-]{1,128}`.
    #[error(
        "queue names are 1-128 characters of A-Z, a-z, 0-9, '.', '_' and '-', other than '.' and '..'"
    )]
    InvalidQueueName,
    /// The job is not leased, so there is no lease to ack, nack or extend.
    #[error("the job is not leased (it is {state})")]
    NotLeased {
        /// Its current state.
        state: &'static str,
    },
    /// The token belongs to another delivery of this job (or to no delivery at all).
    #[error(
        "the lease token is not the job's current lease (it was delivered again, or the token is wrong)"
    )]
    StaleLease,
    /// The token is the current one, but its deadline has passed.
    #[error("the lease expired; the job will be retried")]
    LeaseExpired,
    /// Cancel of a leased job: ack or nack it, or wait for the lease to expire.
    #[error("the job is leased; it can be cancelled once it is acked, nacked or its lease expires")]
    JobLeased,
    /// Cancel of a job that already succeeded.
    #[error("the job already finished ({state})")]
    JobFinished {
        /// Its state.
        state: &'static str,
    },
    /// Another request is changing the job right now (its enqueue or an ack is being
    /// written); retry.
    #[error("the job is being changed by another request; retry")]
    JobBusy,
    /// A new queue was needed but 2^32 queues exist (queue ids are 32 bits). Unreachable in
    /// practice: that many queues would take hundreds of gigabytes of memory.
    #[error("too many queues")]
    TooManyQueues,
    /// A job named a new group but its queue already has 2^24 - 1 groups with jobs in memory
    /// (group ids in a slot are 24 bits); nothing of the enqueue happened.
    #[error(
        "the queue has too many job groups with live jobs (16,777,215); retry once some have drained"
    )]
    TooManyGroups,
    /// The queue holds `max_depth` jobs (ready, scheduled, leased, or being enqueued) and this
    /// enqueue would pass it; nothing of it happened.
    #[error(
        "the queue is full: it holds {depth} of at most {max_depth} jobs (ready, scheduled or leased); retry once consumers have drained it"
    )]
    QueueFull {
        /// The queue's limit.
        max_depth: u64,
        /// Its jobs now.
        depth: u64,
    },
    /// A queue that schedules enqueue into cannot be deleted: their next fire would create it
    /// again.
    #[error(
        "schedules enqueue into this queue ({}); delete them first, or their next fire creates the queue again",
        schedules.join(", ")
    )]
    QueueInUse {
        /// The schedules' names.
        schedules: Vec<String>,
    },
    /// No cursor with that name exists.
    #[error("no cursor with that name")]
    CursorNotFound,
    /// The cursor name is outside `[A-Za-z0-9._-]{1,128}`.
    #[error(
        "cursor names are 1-128 characters of A-Z, a-z, 0-9, '.', '_' and '-', other than '.' and '..'"
    )]
    InvalidCursorName,
    /// The events asked for were trimmed from the change log (by its length or age limit).
    #[error("those events were trimmed from the change log; the oldest kept is {oldest}")]
    EventsTrimmed {
        /// The oldest event still kept.
        oldest: u64,
    },
    /// A value breaks one of the rules in [`super::limits`].
    #[error(transparent)]
    Invalid(#[from] Invalid),
    /// Item `index` of a batch (jobs, acks) breaks a rule; nothing of the batch happened.
    #[error("item {index}: {error}")]
    InvalidItem {
        /// Its position in the batch, from 0.
        index: usize,
        /// The rule.
        error: Invalid,
    },
    /// A commit or fsync failed earlier; the broker refuses writes until it is restarted.
    #[error("storage failed and refuses writes until wharf is restarted; see the server log")]
    StorageFailed,
    /// The data volume is below its free-space floor, so a write that adds data was refused;
    /// writes that drain (polls, acks, cancels) still work.
    #[error(
        "the data volume is nearly full ({available} bytes free, floor {floor}): enqueues, outbox messages and schedule changes are refused until space is freed; polls and acks still work"
    )]
    InsufficientStorage {
        /// Bytes free on the volume.
        available: u64,
        /// The floor (`storage.min_free_mb`).
        floor: u64,
    },
    /// The broker is shutting down and has closed its storage.
    #[error("the broker is shutting down")]
    ShuttingDown,
    /// An unexpected storage failure (I/O, a record that does not decode).
    #[error("storage: {0}")]
    Internal(StoreError),
}

impl From<StoreError> for BrokerError {
    fn from(error: StoreError) -> BrokerError {
        match error {
            StoreError::Poisoned => BrokerError::StorageFailed,
            StoreError::Closed => BrokerError::ShuttingDown,
            StoreError::InsufficientStorage { available, floor } => {
                BrokerError::InsufficientStorage { available, floor }
            }
            other => BrokerError::Internal(other),
        }
    }
}

impl BrokerError {
    /// Whether the broker cannot serve the request right now (its storage failed, or it is
    /// shutting down), as opposed to refusing this request: retry later, or elsewhere.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, BrokerError::StorageFailed | BrokerError::ShuttingDown)
    }
}
