//! API key records (table `keys`): everything about a key but the token itself, of which only
//! the SHA-256 is kept.

use serde::{Deserialize, Serialize};

/// An API key (table `keys`, by key id). Revoked keys are kept, so that an id is never reused
/// and a broker that once had keys never falls back to serving without them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRecord {
    /// SHA-256 of the whole token.
    pub hash: [u8; 32],
    /// The tenant whose resources it reaches (`*`: every tenant).
    pub tenant: String,
    /// What it may do (`jobs:enqueue`, ..., or `*`).
    pub scopes: Vec<String>,
    /// The queues it may touch: names, or prefixes ending in `*`; empty: every queue.
    pub queues: Vec<String>,
    /// Free text for people.
    pub label: String,
    /// Its rate limits per class of route.
    pub limits: KeyLimits,
    /// When it was created (epoch ms).
    pub created_at: u64,
    /// When a request last used it, to within a minute (epoch ms).
    pub last_used_at: Option<u64>,
    /// When it was revoked (epoch ms); a revoked key is refused.
    pub revoked_at: Option<u64>,
}

/// A key's rate limits, per second (burst: one second's worth); `None`: unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyLimits {
    /// Enqueues and outbox messages.
    pub enqueue_per_sec: Option<u32>,
    /// Polls, acks, nacks, extends.
    pub consume_per_sec: Option<u32>,
    /// Every other route.
    pub admin_per_sec: Option<u32>,
}
