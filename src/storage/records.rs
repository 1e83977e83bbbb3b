//! Persisted record types and their codec: one format-version byte, then postcard.
//!
//! These types are the on-disk format (specified in `docs/design.md`). They are deliberately
//! separate from the broker's in-memory bookkeeping: changing one must not silently change the
//! other. Adding a field means a new format version and a decoder for the old one.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::error::DecodeError;

/// The current record format version, written as the first byte of every value.
///
/// - 1: the first format.
/// - 2: `QueueRecord` gained retention and idempotency windows; every other record is encoded
///   exactly as in version 1, so [`decode`] reads both, and [`decode_queue_record`] upgrades a
///   version-1 queue record with the default windows.
/// - 3: an `outbox` value holds the changes of one commit (`seq<OutboxEntry>`) instead of one
///   change; [`decode_outbox`] reads both layouts. Every other record is encoded as in 2.
///
/// The journal's op format has its own version (see [`super::ops`]).
pub const FORMAT_VERSION: u8 = 3;

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
    /// How long succeeded and cancelled jobs stay readable.
    pub retention_ms: u64,
    /// How long dead jobs stay (for inspection and replay).
    pub dead_retention_ms: u64,
    /// How long an idempotency key maps to its job.
    pub idempotency_window_ms: u64,
}

/// A queue record as version 1 wrote it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct QueueRecordV1 {
    lease_ms: u64,
    max_attempts: u32,
    backoff_base_ms: u64,
    backoff_cap_ms: u64,
    backoff_jitter: bool,
    paused: bool,
}

/// Decodes a queue record of any known version; windows missing from version 1 get `defaults`'.
pub fn decode_queue_record(
    bytes: &[u8],
    defaults: &QueueRecord,
) -> Result<QueueRecord, DecodeError> {
    match bytes.split_first() {
        Some((1, rest)) => {
            let v1: QueueRecordV1 = postcard::from_bytes(rest)?;
            Ok(QueueRecord {
                lease_ms: v1.lease_ms,
                max_attempts: v1.max_attempts,
                backoff_base_ms: v1.backoff_base_ms,
                backoff_cap_ms: v1.backoff_cap_ms,
                backoff_jitter: v1.backoff_jitter,
                paused: v1.paused,
                ..defaults.clone()
            })
        }
        _ => decode(bytes),
    }
}

/// A cron schedule (table `schedules`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleRecord {
    /// The cron expression as given.
    pub cron: String,
    /// The IANA time zone it is evaluated in.
    pub zone: String,
    /// The queue its jobs go to.
    pub queue: String,
    /// The job each fire enqueues.
    pub template: JobTemplate,
    /// Paused schedules do not fire.
    pub paused: bool,
    /// Fire once on start for due times missed while the broker was down (`false`: skip them).
    pub catch_up: bool,
    /// The due time of the last fire (epoch ms).
    pub last_fire: Option<u64>,
    /// The next due time to fire (epoch ms); written in the same transaction as each fire's job,
    /// which is what makes a due time fire exactly once across restarts.
    pub next_fire: Option<u64>,
    /// Creation time (epoch ms).
    pub created_at: u64,
    /// Last change (epoch ms).
    pub updated_at: u64,
}

/// The job a schedule enqueues.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobTemplate {
    /// The payload (raw JSON text).
    pub payload: String,
    /// 0–255.
    pub priority: u8,
    /// Overrides the queue's max attempts.
    pub max_attempts: Option<u32>,
    /// Lease length for its deliveries.
    pub lease_ms: Option<u64>,
    /// Headers.
    pub headers: Vec<(String, String)>,
}

/// A job id's entry for an idempotency key (table `idempotency`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdempotencyRecord {
    /// The job the key created.
    pub job_id: u64,
    /// When the key stops mapping to it (epoch ms).
    pub expires_at: u64,
}

/// One change of the change log. Table `outbox` holds them in batches, one per commit, keyed by
/// the sequence number of the batch's first change (see [`decode_outbox`]).
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

/// Decodes an `outbox` value: the changes of one commit, in order. Versions 1 and 2 stored one
/// change per key; version 3 stores one batch per commit (one B-tree insert per commit instead
/// of one per change: the outbox was 40% of the writer's apply time).
pub fn decode_outbox(bytes: &[u8]) -> Result<Vec<OutboxEntry>, DecodeError> {
    match bytes.split_first() {
        Some((1 | 2, rest)) => Ok(vec![postcard::from_bytes(rest)?]),
        _ => decode(bytes),
    }
}

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
        // Version 2 changed only QueueRecord (see decode_queue_record), version 3 only the
        // outbox (see decode_outbox); every other record is encoded alike in all three.
        Some((1..=3, rest)) => Ok(postcard::from_bytes(rest)?),
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
        }
    }

    #[test]
    fn records_round_trip_behind_the_version_byte() {
        let bytes = encode(&record());
        assert_eq!(bytes[0], FORMAT_VERSION);
        assert_eq!(decode::<JobRecord>(&bytes).unwrap(), record());
    }

    #[test]
    fn version_1_queue_records_upgrade_with_default_windows() {
        let v1 = QueueRecordV1 {
            lease_ms: 5,
            max_attempts: 2,
            backoff_base_ms: 3,
            backoff_cap_ms: 4,
            backoff_jitter: false,
            paused: true,
        };
        let mut bytes = vec![1];
        bytes.extend(postcard::to_allocvec(&v1).unwrap());
        let defaults = QueueRecord {
            lease_ms: 0,
            max_attempts: 0,
            backoff_base_ms: 0,
            backoff_cap_ms: 0,
            backoff_jitter: true,
            paused: false,
            retention_ms: 10,
            dead_retention_ms: 20,
            idempotency_window_ms: 30,
        };
        let upgraded = decode_queue_record(&bytes, &defaults).unwrap();
        assert_eq!(
            (upgraded.lease_ms, upgraded.max_attempts, upgraded.paused),
            (5, 2, true)
        );
        assert_eq!(
            (
                upgraded.retention_ms,
                upgraded.dead_retention_ms,
                upgraded.idempotency_window_ms
            ),
            (10, 20, 30)
        );
        let current = QueueRecord {
            lease_ms: 7,
            ..defaults.clone()
        };
        assert_eq!(
            decode_queue_record(&encode(&current), &defaults).unwrap(),
            current
        );
    }

    fn change(job_id: u64) -> OutboxEntry {
        OutboxEntry {
            job_id,
            queue: "q".into(),
            state: None,
            attempts: 1,
            version: 2,
            at: 3,
        }
    }

    #[test]
    fn outbox_values_decode_as_batches_in_every_version() {
        let batch = vec![change(1), change(2)];
        assert_eq!(decode_outbox(&encode(&batch)).unwrap(), batch);
        // Versions 1 and 2 stored a single change per key.
        let mut old = encode(&change(7));
        old[0] = 2;
        assert_eq!(decode_outbox(&old).unwrap(), vec![change(7)]);
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
