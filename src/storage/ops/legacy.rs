//! Op format versions 2 and 3: the postcard (serde) encoding of the `WriteOp` enum as it was
//! until op format 4, kept so that a journal an older wharf left behind still replays.
//!
//! The types below are frozen copies: their variant and field order *is* the format. The
//! records inside them are the record types of format 2 and 3 (which encode alike), encoded
//! inline by serde rather than as table bytes.

use serde::Deserialize;

use super::super::error::OpsError;
use super::super::records::{JobBody, JobRecord, QueueRecord, ScheduleRecord, StoredState};
use super::{IdempotencyKey, JobChange, WriteOp};

#[derive(Deserialize)]
enum OpV3 {
    PutQueue {
        name: String,
        record: QueueRecord,
    },
    Insert {
        id: u64,
        record: JobRecord,
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
    Ok(ops.into_iter().map(WriteOp::from).collect())
}

impl From<OpV3> for WriteOp {
    fn from(op: OpV3) -> WriteOp {
        match op {
            OpV3::PutQueue { name, record } => WriteOp::PutQueue { name, record },
            OpV3::Insert {
                id,
                record,
                body,
                idempotency,
            } => WriteOp::Insert {
                id,
                record,
                body,
                idempotency: idempotency.map(|k| IdempotencyKey {
                    key: k.key,
                    expires_at: k.expires_at,
                }),
            },
            OpV3::Update { id, change } => WriteOp::Update {
                id,
                change: JobChange {
                    state: change.state,
                    attempts: change.attempts,
                    last_error: change.last_error,
                    result: change.result,
                    expires_at: change.expires_at,
                    at: change.at,
                },
            },
            OpV3::Delete { id, expiry } => WriteOp::Delete { id, expiry },
            OpV3::MoveExpiry { id, from, to } => WriteOp::MoveExpiry { id, from, to },
            OpV3::PutSchedule { name, record } => WriteOp::PutSchedule { name, record },
            OpV3::DeleteSchedule { name } => WriteOp::DeleteSchedule { name },
            OpV3::ForgetKey { key, expires_at } => WriteOp::ForgetKey { key, expires_at },
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::super::decode_ops;
    use super::super::golden::{V3_HEX, golden_ops, unhex};

    #[test]
    fn frames_of_op_format_2_and_3_still_decode() {
        // V3_HEX is what wharf at commit 338ff53 (op format 3) wrote for the golden ops.
        let ops = unhex(V3_HEX);
        for version in [2, 3] {
            let mut payload = vec![version];
            payload.extend_from_slice(&ops);
            assert_eq!(
                decode_ops(&payload).unwrap(),
                golden_ops(),
                "version {version}"
            );
        }
        let mut cut = vec![3];
        cut.extend_from_slice(&ops[..ops.len() / 2]);
        assert!(decode_ops(&cut).is_err());
    }
}
