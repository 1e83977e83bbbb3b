//! Op format versions 2 and 3: the postcard (serde) encoding of the `WriteOp` enum as it was
//! until op format 4, kept so that a journal an older wharf left behind still replays.
//!
//! The types below are frozen copies: their variant and field order *is* the format. The
//! records inside them are the record types of format 2 and 3 (which encode alike), encoded
//! inline by serde rather than as table bytes.
//!
//! What op format 4 added is filled in: a job update's event from its new state (leased →
//! `Leased`, succeeded → `Acked`, cancelled → `Cancelled`, queued with no attempts →
//! `Replayed`, otherwise `Nacked`), a delete's reason from its expiry entry (one only for
//! retention), a schedule put is `Put`; and where the old ops kept no time (a queue put, a
//! delete, a schedule delete), the latest time the frame holds, since a frame is one commit.

use serde::Deserialize;

use super::super::error::OpsError;
use super::super::records::{
    DeleteReason, JobBody, JobRecordV5, QueueRecordV2, ScheduleRecord, StoredState,
};
use super::{IdempotencyKey, JobChange, JobEvent, ScheduleEvent, WriteOp};

#[derive(Deserialize)]
enum OpV3 {
    PutQueue {
        name: String,
        record: QueueRecordV2,
    },
    Insert {
        id: u64,
        record: JobRecordV5,
        body: JobBody,
        idempotency: Option<KeyV3>,
    },
    Update {
        id: u64,
        change: ChangeV3,
    },
    Delete {
        id: u64,
        expiry: Option<u64>,
    },
    MoveExpiry {
        id: u64,
        from: u64,
        to: Option<u64>,
    },
    PutSchedule {
        name: String,
        record: ScheduleRecord,
    },
    DeleteSchedule {
        name: String,
    },
    ForgetKey {
        key: String,
        expires_at: u64,
    },
}

#[derive(Deserialize)]
struct KeyV3 {
    key: String,
    expires_at: u64,
}

#[derive(Deserialize)]
struct ChangeV3 {
    state: StoredState,
    attempts: u32,
    last_error: Option<String>,
    result: Option<String>,
    expires_at: Option<u64>,
    at: u64,
}

/// Decodes the ops after a version-2 or version-3 byte: `postcard(seq<OpV3>)`.
pub(super) fn decode(bytes: &[u8]) -> Result<Vec<WriteOp>, OpsError> {
    let ops: Vec<OpV3> = postcard::from_bytes(bytes).map_err(OpsError::Legacy)?;
    let at = ops.iter().filter_map(OpV3::time).max().unwrap_or(0);
    Ok(ops.into_iter().map(|op| op.upgrade(at)).collect())
}

impl OpV3 {
    /// The time the op records, if it records one.
    fn time(&self) -> Option<u64> {
        match self {
            OpV3::Insert { record, .. } => Some(record.enqueued_at),
            OpV3::Update { change, .. } => Some(change.at),
            OpV3::PutSchedule { record, .. } => Some(record.updated_at),
            _ => None,
        }
    }

    /// The op in today's terms; `at` is the frame's time, for the ops that kept none.
    fn upgrade(self, at: u64) -> WriteOp {
        match self {
            OpV3::PutQueue { name, record } => WriteOp::PutQueue {
                name,
                record: record.into(),
                at,
            },
            OpV3::Insert {
                id,
                record,
                body,
                idempotency,
            } => WriteOp::Insert {
                id,
                record: record.into(),
                body,
                idempotency: idempotency.map(|k| IdempotencyKey {
                    key: k.key,
                    expires_at: k.expires_at,
                }),
            },
            OpV3::Update { id, change } => WriteOp::Update {
                id,
                change: JobChange {
                    event: match change.state {
                        StoredState::Leased { .. } => JobEvent::Leased,
                        StoredState::Succeeded { .. } => JobEvent::Acked,
                        StoredState::Cancelled { .. } => JobEvent::Cancelled,
                        StoredState::Queued { .. } if change.attempts == 0 => JobEvent::Replayed,
                        StoredState::Queued { .. } | StoredState::Dead { .. } => JobEvent::Nacked,
                    },
                    state: change.state,
                    attempts: change.attempts,
                    last_error: change.last_error,
                    result: change.result,
                    expires_at: change.expires_at,
                    at: change.at,
                },
            },
            OpV3::Delete { id, expiry } => WriteOp::Delete {
                id,
                expiry,
                reason: if expiry.is_some() {
                    DeleteReason::Retention
                } else {
                    DeleteReason::Purge
                },
                at,
            },
            OpV3::MoveExpiry { id, from, to } => WriteOp::MoveExpiry { id, from, to },
            OpV3::PutSchedule { name, record } => WriteOp::PutSchedule {
                at: record.updated_at,
                name,
                record,
                event: ScheduleEvent::Put,
            },
            OpV3::DeleteSchedule { name } => WriteOp::DeleteSchedule { name, at },
            OpV3::ForgetKey { key, expires_at } => WriteOp::ForgetKey { key, expires_at },
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::super::decode_ops;
    use super::super::golden::{V3_HEX, unhex, v3_ops};

    #[test]
    fn frames_of_op_format_2_and_3_still_decode() {
        // V3_HEX is what wharf at commit 338ff53 (op format 3) wrote for these ops.
        let ops = unhex(V3_HEX);
        for version in [2, 3] {
            let mut payload = vec![version];
            payload.extend_from_slice(&ops);
            assert_eq!(decode_ops(&payload).unwrap(), v3_ops(), "version {version}");
        }
        let mut cut = vec![3];
        cut.extend_from_slice(&ops[..ops.len() / 2]);
        assert!(decode_ops(&cut).is_err());
    }
}
