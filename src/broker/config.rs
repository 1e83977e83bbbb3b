//! Per-queue defaults and the retry backoff.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::storage::QueueRecord;

/// A queue's defaults. New queues start from the server's configured defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueueConfig {
    /// Lease length when neither the poll nor the job names one. Default: 30000 (30 s).
    pub lease_ms: u64,
    /// Deliveries allowed before a job is dead, when the job names none. Default: 5.
    pub max_attempts: u32,
    /// Delay before a failed attempt is retried.
    pub backoff: Backoff,
    /// Paused queues accept enqueues but deliver nothing. Default: false.
    pub paused: bool,
    /// How long succeeded and cancelled jobs stay readable before they are purged.
    /// Default: 3600000 (1 h).
    pub retention_ms: u64,
    /// How long dead jobs stay for inspection and replay. Default: 604800000 (7 days).
    pub dead_retention_ms: u64,
    /// How long an idempotency key maps to the job it created. Default: 86400000 (24 h).
    pub idempotency_window_ms: u64,
    /// Most jobs the queue may hold ready, scheduled or leased: an enqueue that would pass it
    /// is refused (429 `queue_full`). Default: none.
    pub max_depth: Option<u64>,
    /// Most leases one job group may hold at once (ungrouped jobs are not limited).
    /// Default: none.
    pub group_max_in_flight: Option<u32>,
    /// Turns per round of the groups named here (1 for every other group): a group of weight
    /// 3 is served three times as often as one of weight 1. Default: none.
    pub group_weights: BTreeMap<String, u32>,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            lease_ms: 30_000,
            max_attempts: 5,
            backoff: Backoff::default(),
            paused: false,
            retention_ms: 3_600_000,
            dead_retention_ms: 7 * 24 * 3_600_000,
            idempotency_window_ms: 24 * 3_600_000,
            max_depth: None,
            group_max_in_flight: None,
            group_weights: BTreeMap::new(),
        }
    }
}

/// Exponential backoff: `min(base_ms * 2^(attempt-1), cap_ms)`, then, with `jitter`, a uniform
/// draw from `[0, that]` ("full jitter", which spreads a burst of failures out evenly).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Backoff {
    /// Delay after the first failed attempt. Default: 1000 (1 s).
    pub base_ms: u64,
    /// Upper bound of any delay. Default: 600000 (10 min).
    pub cap_ms: u64,
    /// Draw full jitter. Default: true.
    pub jitter: bool,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            base_ms: 1_000,
            cap_ms: 600_000,
            jitter: true,
        }
    }
}

impl Backoff {
    /// The delay before retrying after failed attempt number `attempt` (1-based);
    /// `random` is a uniformly random u64, used only with jitter.
    pub fn delay_ms(&self, attempt: u32, random: u64) -> u64 {
        let exponent = attempt.saturating_sub(1).min(63);
        let ceiling = self
            .base_ms
            .saturating_mul(1u64 << exponent)
            .min(self.cap_ms);
        if self.jitter && ceiling > 0 {
            random % (ceiling + 1)
        } else {
            ceiling
        }
    }
}

impl From<QueueConfig> for QueueRecord {
    fn from(c: QueueConfig) -> Self {
        QueueRecord {
            lease_ms: c.lease_ms,
            max_attempts: c.max_attempts,
            backoff_base_ms: c.backoff.base_ms,
            backoff_cap_ms: c.backoff.cap_ms,
            backoff_jitter: c.backoff.jitter,
            paused: c.paused,
            retention_ms: c.retention_ms,
            dead_retention_ms: c.dead_retention_ms,
            idempotency_window_ms: c.idempotency_window_ms,
            max_depth: c.max_depth,
            group_max_in_flight: c.group_max_in_flight,
            group_weights: c.group_weights.into_iter().collect(),
        }
    }
}

impl From<QueueRecord> for QueueConfig {
    fn from(r: QueueRecord) -> Self {
        QueueConfig {
            lease_ms: r.lease_ms,
            max_attempts: r.max_attempts,
            backoff: Backoff {
                base_ms: r.backoff_base_ms,
                cap_ms: r.backoff_cap_ms,
                jitter: r.backoff_jitter,
            },
            paused: r.paused,
            retention_ms: r.retention_ms,
            dead_retention_ms: r.dead_retention_ms,
            idempotency_window_ms: r.idempotency_window_ms,
            max_depth: r.max_depth,
            group_max_in_flight: r.group_max_in_flight,
            group_weights: r.group_weights.into_iter().collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_without_jitter() {
        let b = Backoff {
            base_ms: 1_000,
            cap_ms: 5_000,
            jitter: false,
        };
        let delays: Vec<u64> = (1..=5).map(|a| b.delay_ms(a, 0)).collect();
        assert_eq!(delays, [1_000, 2_000, 4_000, 5_000, 5_000]);
        assert_eq!(
            b.delay_ms(u32::MAX, 0),
            5_000,
            "huge attempt counts must not overflow"
        );
    }

    #[test]
    fn full_jitter_stays_within_zero_and_the_ceiling() {
        let b = Backoff {
            base_ms: 1_000,
            cap_ms: 600_000,
            jitter: true,
        };
        for random in [0, 1, 999, 1_000, 1_001, u64::MAX] {
            assert!(b.delay_ms(1, random) <= 1_000);
            assert!(b.delay_ms(3, random) <= 4_000);
        }
        assert_eq!(b.delay_ms(1, 1_001), 0, "draw wraps modulo ceiling + 1");
    }
}
