//! Job records: state and scheduling fields, body, idempotency key entries.

use serde::{Deserialize, Serialize};

use super::{DecodeError, decode};

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
    /// Its fairness group within the queue (a customer id, say); `None`: ungrouped. Since
    /// version 6.
    pub group: Option<String>,
}

/// A job record as versions 1 to 5 wrote it (no `group`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRecordV5 {
    pub queue: String,
    pub priority: u8,
    pub state: StoredState,
    pub attempts: u32,
    pub max_attempts: u32,
    pub lease_ms: Option<u64>,
    pub enqueued_at: u64,
    pub updated_at: u64,
    pub last_error: Option<String>,
    pub version: u64,
}

impl From<JobRecordV5> for JobRecord {
    fn from(v5: JobRecordV5) -> JobRecord {
        JobRecord {
            queue: v5.queue,
            priority: v5.priority,
            state: v5.state,
            attempts: v5.attempts,
            max_attempts: v5.max_attempts,
            lease_ms: v5.lease_ms,
            enqueued_at: v5.enqueued_at,
            updated_at: v5.updated_at,
            last_error: v5.last_error,
            version: v5.version,
            group: None,
        }
    }
}

/// Decodes a job record of any known version (those before 6 have no group).
pub fn decode_job_record(bytes: &[u8]) -> Result<JobRecord, DecodeError> {
    match bytes.split_first() {
        Some((1..=5, rest)) => Ok(postcard::from_bytes::<JobRecordV5>(rest)?.into()),
        _ => decode(bytes),
    }
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

/// A job id's entry for an idempotency key (table `idempotency`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdempotencyRecord {
    /// The job the key created.
    pub job_id: u64,
    /// When the key stops mapping to it (epoch ms).
    pub expires_at: u64,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::super::encode;
    use super::*;

    #[test]
    fn records_before_version_6_upgrade_ungrouped_and_todays_round_trip() {
        let v5 = JobRecordV5 {
            queue: "q".into(),
            priority: 3,
            state: StoredState::Queued { run_at: 9 },
            attempts: 1,
            max_attempts: 5,
            lease_ms: Some(100),
            enqueued_at: 7,
            updated_at: 8,
            last_error: Some("boom".into()),
            version: 2,
        };
        for version in 1..=5 {
            let mut bytes = vec![version];
            bytes.extend(postcard::to_allocvec(&v5).unwrap());
            let upgraded = decode_job_record(&bytes).unwrap();
            assert_eq!(upgraded, JobRecord::from(v5.clone()));
            assert_eq!(upgraded.group, None);
        }
        let grouped = JobRecord {
            group: Some("acme".into()),
            ..JobRecord::from(v5)
        };
        assert_eq!(decode_job_record(&encode(&grouped)).unwrap(), grouped);
    }
}
