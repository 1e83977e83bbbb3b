//! Queue records, and the layouts of versions 1, 2-4 and 5 they upgrade from.

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
    /// Most jobs it may hold ready, scheduled or leased (an enqueue past it is refused);
    /// `None`: no limit. Since version 5.
    pub max_depth: Option<u64>,
    /// Most leases one job group may hold at once; `None`: no limit. Since version 6.
    pub group_max_in_flight: Option<u32>,
    /// Weights of job groups (turns per round), by group name; others have 1. Since
    /// version 6.
    pub group_weights: Vec<(String, u32)>,
}

/// A queue record as version 5 wrote it (no `group_max_in_flight`). Change-log events of
/// version 5 carry queue settings in this layout too.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueRecordV5 {
    lease_ms: u64,
    max_attempts: u32,
    backoff_base_ms: u64,
    backoff_cap_ms: u64,
    backoff_jitter: bool,
    paused: bool,
    retention_ms: u64,
    dead_retention_ms: u64,
    idempotency_window_ms: u64,
    max_depth: Option<u64>,
}

impl QueueRecordV5 {
    /// A record with every field set (for the tests of the decoders that read this layout).
    #[cfg(test)]
    pub(crate) fn sample() -> QueueRecordV5 {
        QueueRecordV5 {
            lease_ms: 1,
            max_attempts: 2,
            backoff_base_ms: 3,
            backoff_cap_ms: 4,
            backoff_jitter: true,
            paused: false,
            retention_ms: 5,
            dead_retention_ms: 6,
            idempotency_window_ms: 7,
            max_depth: Some(8),
        }
    }
}

impl From<QueueRecordV5> for QueueRecord {
    fn from(v5: QueueRecordV5) -> QueueRecord {
        QueueRecord {
            lease_ms: v5.lease_ms,
            max_attempts: v5.max_attempts,
            backoff_base_ms: v5.backoff_base_ms,
            backoff_cap_ms: v5.backoff_cap_ms,
            backoff_jitter: v5.backoff_jitter,
            paused: v5.paused,
            retention_ms: v5.retention_ms,
            dead_retention_ms: v5.dead_retention_ms,
            idempotency_window_ms: v5.idempotency_window_ms,
            max_depth: v5.max_depth,
            group_max_in_flight: None,
            group_weights: Vec::new(),
        }
    }
}

/// A queue record as versions 2 to 4 wrote it (no `max_depth`). Change-log events of those
/// versions carry queue settings in this layout too.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueRecordV2 {
    lease_ms: u64,
    max_attempts: u32,
    backoff_base_ms: u64,
    backoff_cap_ms: u64,
    backoff_jitter: bool,
    paused: bool,
    retention_ms: u64,
    dead_retention_ms: u64,
    idempotency_window_ms: u64,
}

impl QueueRecordV2 {
    /// A record with every field set (for the tests of the decoders that read this layout).
    #[cfg(test)]
    pub(crate) fn sample() -> QueueRecordV2 {
        QueueRecordV2 {
            lease_ms: 1,
            max_attempts: 2,
            backoff_base_ms: 3,
            backoff_cap_ms: 4,
            backoff_jitter: true,
            paused: false,
            retention_ms: 5,
            dead_retention_ms: 6,
            idempotency_window_ms: 7,
        }
    }
}

impl From<QueueRecordV2> for QueueRecord {
    fn from(v2: QueueRecordV2) -> QueueRecord {
        QueueRecord {
            lease_ms: v2.lease_ms,
            max_attempts: v2.max_attempts,
            backoff_base_ms: v2.backoff_base_ms,
            backoff_cap_ms: v2.backoff_cap_ms,
            backoff_jitter: v2.backoff_jitter,
            paused: v2.paused,
            retention_ms: v2.retention_ms,
            dead_retention_ms: v2.dead_retention_ms,
            idempotency_window_ms: v2.idempotency_window_ms,
            max_depth: None,
            group_max_in_flight: None,
            group_weights: Vec::new(),
        }
    }
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
        _ => decode_queue_record_v2_on(bytes),
    }
}

/// Decodes a queue record of version 2 or later (version 1 needs the server's defaults: see
/// [`decode_queue_record`]).
pub fn decode_queue_record_v2_on(bytes: &[u8]) -> Result<QueueRecord, DecodeError> {
    match bytes.split_first() {
        Some((2..=4, rest)) => Ok(postcard::from_bytes::<QueueRecordV2>(rest)?.into()),
        Some((5, rest)) => Ok(postcard::from_bytes::<QueueRecordV5>(rest)?.into()),
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
            max_depth: Some(9),
            group_max_in_flight: Some(2),
            group_weights: Vec::new(),
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

#[cfg(test)]
mod v2_tests {
    #![allow(clippy::unwrap_used)]

    use super::super::encode;
    use super::*;

    #[test]
    fn records_of_versions_2_to_4_upgrade_with_no_max_depth() {
        let v2 = QueueRecordV2::sample();
        for version in 2..=4 {
            let mut bytes = vec![version];
            bytes.extend(postcard::to_allocvec(&v2).unwrap());
            let upgraded = decode_queue_record_v2_on(&bytes).unwrap();
            assert_eq!(upgraded, QueueRecord::from(v2.clone()));
            assert_eq!((upgraded.retention_ms, upgraded.max_depth), (5, None));
        }
        let current = QueueRecord {
            max_depth: Some(100),
            ..QueueRecord::from(v2)
        };
        assert_eq!(
            decode_queue_record_v2_on(&encode(&current)).unwrap(),
            current
        );
    }
}

#[cfg(test)]
mod v5_tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn records_of_version_5_upgrade_with_no_group_limit() {
        let v5 = QueueRecordV5::sample();
        let mut bytes = vec![5];
        bytes.extend(postcard::to_allocvec(&v5).unwrap());
        let upgraded = decode_queue_record_v2_on(&bytes).unwrap();
        assert_eq!(
            (upgraded.max_depth, upgraded.group_max_in_flight),
            (Some(8), None)
        );
        assert_eq!(upgraded, QueueRecord::from(v5));
    }
}
