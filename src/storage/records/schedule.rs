//! Schedule records and the job template they enqueue.

use serde::{Deserialize, Serialize};

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
