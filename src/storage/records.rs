//! Persisted record types and their codec: one format-version byte, then postcard.
//!
//! These types are the on-disk format (specified in `docs/design.md`). They are deliberately
//! separate from the broker's in-memory bookkeeping: changing one must not silently change the
//! other. Adding a field means a new format version and a decoder for the old one.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// The current record format version, written as the first byte of every value.
pub const FORMAT_VERSION: u8 = 1;

/// A job's mutable state and scheduling fields (table `jobs`). Small on purpose: recovery scans
/// every one of these, and every life-cycle transition rewrites one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRecord {
    /// The queue it belongs to.
    pub queue: String,
    /// 0–255, higher first.
    pub priority: u8,
    /// Where it is in its life cycle.
    pub state: StoredState,
    /// Deliveries so far.
    pub attempts: u32,
    /// Deliveries allowed before it is dead.
    pub max_attempts: u32,
    /// Lease length for its deliveries when a poll names none; `None` uses the queue's default.
    pub lease_ms: Option<u64>,
    /// Enqueue time (epoch ms).
    pub enqueued_at: u64,
    /// Time of the last change (epoch ms).
    pub updated_at: u64,
    /// The error text of the last failed attempt.
    pub last_error: Option<String>,
    /// Bumped on every change; mirrors apply an outbox entry only if its version is newer.
    pub version: u64,
}

/// The persisted life-cycle state. `Queued` covers both public `scheduled` and `ready`: which
/// one is derived from `run_at` and the clock, so a delay elapsing needs no write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StoredState {
    /// Waiting; deliverable once `run_at` has passed.
    Queued {
        /// Earliest delivery time (epoch ms).
        run_at: u64,
    },
    /// Delivered under a lease (the token's attempt is the record's `attempts`).
    Leased {
        /// The lease token's random part.
        nonce: u64,
        /// When the lease expires (epoch ms).
        deadline: u64,
    },
    /// Acked.
    Succeeded {
        /// When (epoch ms).
        finished_at: u64,
    },
    /// Out of attempts or nacked as dead.
    Dead {
        /// When (epoch ms).
        died_at: u64,
    },
    /// Cancelled.
    Cancelled {
        /// When (epoch ms).
        finished_at: u64,
    },
}

/// What a job carries (table `bodies`): written once at enqueue, never rewritten by a
/// transition, so a lease or an ack costs the same whatever the payload size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobBody {
    /// The payload as the client sent it (raw JSON text).
    pub payload: String,
    /// Small string headers, in the order given.
    pub headers: Vec<(String, String)>,
}

/// A queue's stored defaults (table `queues`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueRecord {
    /// Default lease length.
    pub lease_ms: u64,
    /// Default deliveries before dead.
    pub max_attempts: u32,
    /// Backoff base.
    pub backoff_base_ms: u64,
    /// Backoff cap.
    pub backoff_cap_ms: u64,
    /// Whether the backoff draws full jitter.
    pub backoff_jitter: bool,
    /// Whether polls are refused (enqueue still works).
    pub paused: bool,
}

/// One entry of the change log (table `outbox`, keyed by a sequence).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxEntry {
    /// The job that changed.
    pub job_id: u64,
    /// Its queue.
    pub queue: String,
    /// Its state after the change; `None` when the record was deleted (purge).
    pub state: Option<StoredState>,
    /// Its attempts after the change.
    pub attempts: u32,
    /// The record version after the change.
    pub version: u64,
    /// When (epoch ms).
    pub at: u64,
}

/// Why a stored value could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The value is empty.
    #[error("empty record")]
    Empty,
    /// Written by a format this binary does not know (a newer wharf?).
    #[error(
        "record format version {0} is not supported (this build reads version {FORMAT_VERSION})"
    )]
    UnknownVersion(u8),
    /// The bytes do not decode.
    #[error("corrupt record: {0}")]
    Corrupt(#[from] postcard::Error),
}

/// Encodes a record behind the format-version byte.
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    let out = vec![FORMAT_VERSION];
    // Serializing these plain structs into a Vec cannot fail: postcard only errors on
    // unsupported serde features (none used here) or a full fixed buffer (a Vec grows).
    match postcard::to_extend(value, out) {
        Ok(bytes) => bytes,
        Err(_) => unreachable!("postcard cannot fail to serialize a record into a Vec"),
    }
}

/// Decodes a record, checking its format version.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, DecodeError> {
    match bytes.split_first() {
        None => Err(DecodeError::Empty),
        Some((&FORMAT_VERSION, rest)) => Ok(postcard::from_bytes(rest)?),
        Some((&other, _)) => Err(DecodeError::UnknownVersion(other)),
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
            Err(DecodeError::UnknownVersion(99))
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
