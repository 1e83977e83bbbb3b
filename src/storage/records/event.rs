//! The change log's events (table `events`) and readers' cursors (table `cursors`).
//!
//! `events` holds one value per commit: the events of that commit, in order (`seq<EventRecord>`),
//! keyed by the sequence number of its first event. A batch per commit costs one B-tree insert
//! per commit instead of one per event (one insert per change was 40% of the writer's apply
//! time when this was measured for the outbox that preceded it).

use serde::{Deserialize, Serialize};

use super::{DecodeError, QueueRecord, ScheduleRecord, decode};

/// One event of the change log. Its sequence number is its place in its batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventRecord {
    /// When the change happened (epoch ms, the broker's clock).
    pub at: u64,
    /// The queue it concerns (a schedule's: its target queue), if any.
    pub queue: Option<String>,
    /// The job it concerns, if any.
    pub job_id: Option<u64>,
    /// What happened.
    pub data: EventData,
}

/// Why a job was deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeleteReason {
    /// A purge of its queue.
    Purge,
    /// Its retention ended.
    Retention,
}

/// What an event says happened. The variant order is the format (postcard writes the index).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventData {
    /// A job was stored.
    JobEnqueued {
        /// The payload (raw JSON text).
        payload: String,
        /// 0–255.
        priority: u8,
        /// Its headers.
        headers: Vec<(String, String)>,
        /// When it may first be delivered.
        run_at: u64,
        /// Deliveries allowed.
        max_attempts: u32,
        /// Its own lease length, if it has one.
        lease_ms: Option<u64>,
    },
    /// A job was delivered.
    JobLeased {
        /// Which delivery (1-based).
        attempt: u32,
        /// The lease deadline.
        lease_expires_at: u64,
    },
    /// A lease was extended.
    JobExtended {
        /// The delivery.
        attempt: u32,
        /// The new deadline.
        lease_expires_at: u64,
    },
    /// A lease passed its deadline (a retry or a death follows, in the same commit).
    JobLeaseExpired {
        /// The delivery whose lease expired.
        attempt: u32,
    },
    /// A failed attempt will be retried.
    JobRetryScheduled {
        /// The attempt that failed.
        attempt: u32,
        /// Its error text, if one was given.
        error: Option<String>,
        /// When the retry becomes ready.
        run_at: u64,
    },
    /// A job was acked.
    JobSucceeded {
        /// The delivery acked.
        attempt: u32,
        /// The ack result (raw JSON text), if any.
        result: Option<String>,
    },
    /// A job is dead.
    JobDead {
        /// Its last attempt.
        attempt: u32,
        /// Its last error text, if any.
        error: Option<String>,
    },
    /// A job was cancelled.
    JobCancelled,
    /// A dead job was replayed: ready again, attempts reset.
    JobReplayed,
    /// A job and everything stored for it were deleted.
    JobDeleted {
        /// Purge or retention.
        reason: DeleteReason,
    },
    /// A queue was created (with these settings).
    QueueCreated {
        /// Its settings.
        settings: QueueRecord,
    },
    /// A queue's settings changed.
    QueueUpdated {
        /// Its new settings.
        settings: QueueRecord,
    },
    /// A queue was paused.
    QueuePaused,
    /// A queue was resumed.
    QueueResumed,
    /// A queue's waiting and dead jobs were purged.
    QueuePurged {
        /// How many jobs the purge deleted.
        jobs: u64,
    },
    /// A schedule was created or replaced.
    SchedulePut {
        /// Its name.
        name: String,
        /// The schedule.
        schedule: ScheduleRecord,
    },
    /// A schedule was deleted.
    ScheduleDeleted {
        /// Its name.
        name: String,
    },
    /// A schedule was paused.
    SchedulePaused {
        /// Its name.
        name: String,
    },
    /// A schedule was resumed.
    ScheduleResumed {
        /// Its name.
        name: String,
    },
    /// A schedule fired: it enqueued the event's job.
    ScheduleFired {
        /// Its name.
        name: String,
        /// The due time fired.
        due_at: u64,
    },
    /// A message a client wrote to the outbox.
    Message {
        /// Its topic.
        topic: String,
        /// Its key, if any.
        key: Option<String>,
        /// Its payload (raw JSON text).
        payload: String,
        /// Its headers.
        headers: Vec<(String, String)>,
    },
}

/// A reader's durable position in the change log (table `cursors`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CursorRecord {
    /// The last event the reader has handled.
    pub seq: u64,
    /// When the cursor was last set (epoch ms).
    pub updated_at: u64,
}

/// Decodes an `events` value: the events of one commit, in order.
pub fn decode_events(bytes: &[u8]) -> Result<Vec<EventRecord>, DecodeError> {
    decode(bytes)
}
