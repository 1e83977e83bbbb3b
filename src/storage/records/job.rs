//! Job records: state and scheduling fields, body, idempotency key entries.

use serde::{Deserialize, Serialize};

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

/// A job id's entry for an idempotency key (table `idempotency`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdempotencyRecord {
    /// The job the key created.
    pub job_id: u64,
    /// When the key stops mapping to it (epoch ms).
    pub expires_at: u64,
}
