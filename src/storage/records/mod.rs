//! Persisted record types and their codec: one format-version byte, then postcard.
//!
//! These types are the on-disk format (specified in `docs/design.md`). They are deliberately
//! separate from the broker's in-memory bookkeeping: changing one must not silently change the
//! other. Adding a field means a new format version and a decoder for the old one.
//!
//! - `job`: tables `jobs`, `bodies`, `idempotency`;
//! - `queue`: table `queues`;
//! - `schedule`: table `schedules`;
//! - `event`: tables `events` (the change log) and `cursors`;
//! - `key`: table `keys`;
//! - `audit`: table `audit`.

mod audit;
mod event;
mod job;
mod key;
mod queue;
mod schedule;

use serde::Serialize;
use serde::de::DeserializeOwned;

pub use super::error::DecodeError;
pub use audit::AuditRecord;
pub use event::{CursorRecord, DeleteReason, EventData, EventRecord, decode_events};
pub use job::{IdempotencyRecord, JobBody, JobRecord, JobRecordV5, StoredState, decode_job_record};
pub use key::{KeyLimits, KeyRecord};
pub use queue::{
    QueueRecord, QueueRecordV2, QueueRecordV5, decode_queue_record, decode_queue_record_v2_on,
};
pub use schedule::{JobTemplate, ScheduleRecord};

/// The current record format version, written as the first byte of every value.
///
/// - 1: the first format.
/// - 2: `QueueRecord` gained retention and idempotency windows; every other record is encoded
///   exactly as in version 1, so [`decode`] reads both, and [`decode_queue_record`] upgrades a
///   version-1 queue record with the default windows.
/// - 3: an `outbox` value held the changes of one commit instead of one change. Every other
///   record is encoded as in 2.
/// - 4: the change log became the `events` table ([`EventRecord`] batches, one per commit) and
///   `cursors` appeared; the `outbox` table, which nothing read, is dropped when an older file
///   is opened. Every other record is encoded as in 2 and 3.
/// - 5: `QueueRecord` gained `max_depth`, and the `keys` table appeared.
/// - 6: `JobRecord` gained `group`, `QueueRecord` `group_max_in_flight` and `group_weights`
///   ([`decode_job_record`] and [`decode_queue_record`] upgrade older ones). Every other record
///   is encoded as in 5.
/// - 7: the `audit` table appeared ([`AuditRecord`]), and an events batch may hold an
///   `Audit` event. Every other record is encoded as in 6.
/// - 8: queues can be deleted: an events batch may hold a `QueueDeleted` event, and a
///   `JobDeleted` event the reason `QueueDeleted`. Every other record is encoded as in 7.
///
/// The journal's op format has its own version (see [`super::ops`]).
pub const FORMAT_VERSION: u8 = 8;

/// Encodes a record behind the format-version byte.
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = Vec::new();
    encode_into(value, &mut out);
    out
}

/// Appends a record, behind the format-version byte, to `out`.
pub fn encode_into<T: Serialize>(value: &T, out: &mut Vec<u8>) {
    out.push(FORMAT_VERSION);
    // Serializing these plain structs into a Vec cannot fail: postcard only errors on
    // unsupported serde features (none used here) or a full fixed buffer (a Vec grows).
    let taken = std::mem::take(out);
    match postcard::to_extend(value, taken) {
        Ok(bytes) => *out = bytes,
        Err(_) => unreachable!("postcard cannot fail to serialize a record into a Vec"),
    }
}

/// Decodes a record, checking its format version.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, DecodeError> {
    match bytes.split_first() {
        None => Err(DecodeError::Empty),
        // Versions 2 and 5 changed only QueueRecord (see decode_queue_record), 3 only the
        // outbox (now gone), 4 and 7 added tables, 6 changed JobRecord and QueueRecord; every
        // other record is encoded alike in all seven. A job or queue record, or an events batch
        // holding one, must be read by its own decoder.
        Some((1..=FORMAT_VERSION, rest)) => Ok(postcard::from_bytes(rest)?),
        Some((&found, _)) => Err(DecodeError::UnknownVersion {
            found,
            supported: FORMAT_VERSION,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> JobRecord {
        JobRecord {
            queue: "emails".into(),
            priority: 200,
            state: StoredState::Leased {
                nonce: 42,
                deadline: 1_700_000_000_000,
            },
            attempts: 2,
            max_attempts: 5,
            lease_ms: Some(30_000),
            enqueued_at: 1_699_999_999_000,
            updated_at: 1_700_000_000_000,
            last_error: Some("boom".into()),
            version: 3,
            group: None,
        }
    }

    #[test]
    fn records_round_trip_behind_the_version_byte() {
        let bytes = encode(&record());
        assert_eq!(bytes[0], FORMAT_VERSION);
        assert_eq!(decode::<JobRecord>(&bytes).unwrap(), record());
    }

    #[test]
    fn unknown_versions_and_garbage_are_errors_not_panics() {
        let mut bytes = encode(&record());
        bytes[0] = 99;
        assert!(matches!(
            decode::<JobRecord>(&bytes),
            Err(DecodeError::UnknownVersion { found: 99, .. })
        ));
        assert!(matches!(decode::<JobRecord>(&[]), Err(DecodeError::Empty)));
        assert!(matches!(
            decode::<JobRecord>(&[FORMAT_VERSION, 0xff]),
            Err(DecodeError::Corrupt(_))
        ));
        let truncated = &encode(&record())[..10];
        assert!(decode::<JobRecord>(truncated).is_err());
    }
}
