//! The write ops: what one request changes, as the writer applies it and the journal stores it.
//!
//! Applying an op depends only on the op and the stored state, never on the clock or on
//! memory (see [`super::apply`]), so replaying the journal after a crash rebuilds exactly what
//! was acknowledged.
//!
//! A journal frame's payload is one op format version byte followed by the ops of the frame.
//! The layout of the current version, [`OPS_VERSION`] = 4, is written out byte by byte in
//! `docs/design.md` ("Journal op format") and in [`codec`]; records embedded in ops are the
//! same bytes as in the tables (a record format byte, then postcard), so a record format change
//! needs no new op format. Versions 2 and 3 (the serde/postcard encoding of an earlier
//! `WriteOp` enum) are still read by [`legacy`], so a journal left by an older wharf replays.
//! Golden-bytes tests pin both layouts: a change to the bytes without a new version fails them.

mod codec;
mod legacy;

use super::error::OpsError;
use super::records::{
    AuditRecord, DeleteReason, JobBody, JobRecord, KeyRecord, QueueRecord, ScheduleRecord,
    StoredState,
};

pub use codec::OPS_VERSION;

/// One change, applied atomically with the rest of its request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOp {
    /// Create or replace a queue's settings.
    PutQueue {
        /// Queue name.
        name: String,
        /// Its settings.
        record: QueueRecord,
        /// When (epoch ms).
        at: u64,
    },
    /// Store a new job, unless its idempotency key already maps to a job within its window
    /// (then nothing is written and the result names the original job).
    Insert {
        /// Its id.
        id: u64,
        /// State and scheduling fields.
        record: JobRecord,
        /// Payload and headers.
        body: JobBody,
        /// The job's idempotency key, if it has one.
        idempotency: Option<IdempotencyKey>,
    },
    /// Apply a life-cycle transition the broker decided.
    Update {
        /// The job.
        id: u64,
        /// What changes.
        change: JobChange,
    },
    /// Remove a job and everything stored for it (purge, retention).
    Delete {
        /// The job.
        id: u64,
        /// Its entry in the expiry index, if it has one.
        expiry: Option<u64>,
        /// Purge or retention.
        reason: DeleteReason,
        /// When (epoch ms).
        at: u64,
    },
    /// Move a job's expiry-index entry (`to: None` drops a stale one).
    MoveExpiry {
        /// The job.
        id: u64,
        /// The entry's current time.
        from: u64,
        /// Its new time.
        to: Option<u64>,
    },
    /// Create, replace, pause, resume a schedule, or record that it fired.
    PutSchedule {
        /// Its name.
        name: String,
        /// The schedule.
        record: ScheduleRecord,
        /// Which of those this is.
        event: ScheduleEvent,
        /// When (epoch ms).
        at: u64,
    },
    /// Delete a schedule.
    DeleteSchedule {
        /// Its name.
        name: String,
        /// When (epoch ms).
        at: u64,
    },
    /// Forget an idempotency key whose window ended at `expires_at` (kept if it was reused
    /// since, with a later window).
    ForgetKey {
        /// "queue\0key".
        key: String,
        /// The end of the window being forgotten.
        expires_at: u64,
    },
    /// Append a client's message to the change log.
    Message(Message),
    /// Record that a purge of `queue` deleted `jobs` jobs (their deletes are ops of their own).
    QueuePurged {
        /// The queue.
        queue: String,
        /// How many jobs the purge deleted.
        jobs: u64,
        /// When (epoch ms).
        at: u64,
    },
    /// Set a reader's cursor.
    PutCursor {
        /// Its name.
        name: String,
        /// The last event it has handled.
        seq: u64,
        /// When (epoch ms).
        at: u64,
    },
    /// Delete a reader's cursor.
    DeleteCursor {
        /// Its name.
        name: String,
    },
    /// Store a new API key.
    PutKey {
        /// Its id.
        id: String,
        /// The key.
        record: KeyRecord,
    },
    /// Record that a key was used (kept if a later use is already stored; nothing if the key
    /// is unknown). An op of its own, so it can never undo a revocation written beside it.
    KeyUsed {
        /// The key's id.
        id: String,
        /// When (epoch ms).
        at: u64,
    },
    /// Revoke an API key (the first revocation's time is kept; nothing if the key is unknown).
    RevokeKey {
        /// The key's id.
        id: String,
        /// When (epoch ms).
        at: u64,
    },
    /// Append a record to the audit trail (and its event to the change log), and drop the
    /// oldest records from before `trim_before` (retention; a few per append).
    Audit {
        /// The record.
        record: AuditRecord,
        /// Records older than this (epoch ms) are past their retention.
        trim_before: u64,
    },
    /// Delete a queue: its settings and its idempotency keys. Its jobs were deleted by ops of
    /// their own (in this request and earlier ones); `jobs` says how many in all.
    QueueDeleted {
        /// The queue.
        queue: String,
        /// How many jobs the deletion deleted.
        jobs: u64,
        /// When (epoch ms).
        at: u64,
    },
}

/// What a job update is, which decides the events it appends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobEvent {
    /// A delivery: `job.leased`.
    Leased,
    /// A lease extended: `job.extended`.
    Extended,
    /// A nack: `job.retry_scheduled` or `job.dead`, by the new state.
    Nacked,
    /// A lease expired: `job.lease_expired`, then `job.retry_scheduled` or `job.dead`.
    Expired,
    /// An ack: `job.succeeded`.
    Acked,
    /// A cancel: `job.cancelled`.
    Cancelled,
    /// A replay of a dead job: `job.replayed`.
    Replayed,
}

/// What a schedule write is, which decides its event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScheduleEvent {
    /// Created or replaced: `schedule.put`.
    Put,
    /// `schedule.paused`.
    Paused,
    /// `schedule.resumed`.
    Resumed,
    /// It fired and enqueued `job_id` (written in the same request): `schedule.fired`.
    Fired {
        /// The job the fire enqueued.
        job_id: u64,
    },
}

/// A message a client writes to the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Written only if a job with an id in this range (inclusive) is stored: the message an
    /// enqueue emits is not emitted again when every job of it turns out to be a duplicate.
    pub if_stored: Option<(u64, u64)>,
    /// Its topic.
    pub topic: String,
    /// Its key, if any.
    pub key: Option<String>,
    /// Its payload (raw JSON text).
    pub payload: String,
    /// Its headers.
    pub headers: Vec<(String, String)>,
    /// When it was written (epoch ms).
    pub at: u64,
}

/// An idempotency key and the end of its window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey {
    /// "queue\0key": keys are scoped to their queue.
    pub key: String,
    /// When the key stops mapping to the job (epoch ms).
    pub expires_at: u64,
}

/// The fields a transition sets; everything else in the record is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobChange {
    /// What kind of transition (for its events).
    pub event: JobEvent,
    /// The new state.
    pub state: StoredState,
    /// The new attempt count.
    pub attempts: u32,
    /// Replaces the last error when `Some`.
    pub last_error: Option<String>,
    /// Stores an ack result when `Some`.
    pub result: Option<String>,
    /// Indexes the job for retention at this time (succeeded, cancelled, dead).
    pub expires_at: Option<u64>,
    /// When the change happened (epoch ms).
    pub at: u64,
}

impl WriteOp {
    /// Roughly the bytes it takes in a journal frame (payloads dominate).
    pub fn approx_len(&self) -> usize {
        const FIXED: usize = 64;
        match self {
            WriteOp::Insert { body, .. } => {
                FIXED
                    + body.payload.len()
                    + body
                        .headers
                        .iter()
                        .map(|(k, v)| k.len() + v.len())
                        .sum::<usize>()
            }
            WriteOp::Update { change, .. } => {
                FIXED
                    + change.result.as_ref().map_or(0, String::len)
                    + change.last_error.as_ref().map_or(0, String::len)
            }
            WriteOp::PutSchedule { record, .. } => FIXED + record.template.payload.len(),
            WriteOp::Message(message) => {
                FIXED
                    + message.payload.len()
                    + message
                        .headers
                        .iter()
                        .map(|(k, v)| k.len() + v.len())
                        .sum::<usize>()
            }
            _ => FIXED,
        }
    }
}

/// Appends the frame payload of `ops` (the version byte, then the ops in order) to `out`.
pub fn encode_ops<'a>(ops: impl Iterator<Item = &'a WriteOp> + Clone, out: &mut Vec<u8>) {
    codec::encode(ops, out);
}

/// Decodes a frame payload written by any supported op format version.
pub fn decode_ops(payload: &[u8]) -> Result<Vec<WriteOp>, OpsError> {
    match payload.split_first() {
        None => Err(OpsError::Empty),
        Some((&OPS_VERSION, ops)) => codec::decode(ops),
        Some((2 | 3, ops)) => legacy::decode(ops),
        Some((&other, _)) => Err(OpsError::UnknownVersion(other)),
    }
}

#[cfg(test)]
pub(crate) mod golden;
