//! Queue records, and the version-1 layout they upgrade from.

use serde::{Deserialize, Serialize};

use super::{DecodeError, decode};

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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::super::encode;
    use super::*;

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
}
