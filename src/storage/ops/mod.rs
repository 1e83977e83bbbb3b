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
use super::records::{JobBody, JobRecord, QueueRecord, ScheduleRecord, StoredState};

pub use codec::OPS_VERSION;

/// One change, applied atomically with the rest of its request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOp {
    /// Create or replace a queue's defaults.
    PutQueue {
        /// Queue name.
        name: String,
        /// Its defaults.
        record: QueueRecord,
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
    /// Create or replace a schedule.
    PutSchedule {
        /// Its name.
        name: String,
        /// The schedule.
        record: ScheduleRecord,
    },
    /// Delete a schedule.
    DeleteSchedule {
        /// Its name.
        name: String,
    },
    /// Forget an idempotency key whose window ended at `expires_at` (kept if it was reused
    /// since, with a later window).
    ForgetKey {
        /// "queue\0key".
        key: String,
        /// The end of the window being forgotten.
        expires_at: u64,
    },
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
