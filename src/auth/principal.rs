//! Who a request comes from, once its key is checked.

use super::pattern::QueuePatterns;
use super::scope::{Scope, Scopes};
use crate::storage::KeyLimits;

/// The tenant every resource belongs to before tenants are told apart, and the one a key gets
/// when none is named.
pub const DEFAULT_TENANT: &str = "default";

/// The tenant of an operator key: it reaches every tenant.
pub const ANY_TENANT: &str = "*";

/// The caller of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Its key's id; `None` when the broker runs without keys.
    pub key_id: Option<String>,
    /// Its tenant (`*`: every tenant).
    pub tenant: String,
    /// What it may do.
    pub scopes: Scopes,
    /// The queues it may touch.
    pub queues: QueuePatterns,
    /// Its key's rate limits (none without a key).
    pub limits: KeyLimits,
}

impl Principal {
    /// The caller while no key exists (on loopback, or with `--insecure-no-auth`): it may do
    /// everything.
    pub fn unauthenticated() -> Principal {
        Principal {
            key_id: None,
            tenant: ANY_TENANT.to_owned(),
            scopes: Scopes::ALL,
            queues: QueuePatterns::any(),
            limits: KeyLimits::default(),
        }
    }

    /// Whether it has `scope`.
    pub fn may(&self, scope: Scope) -> bool {
        self.scopes.has(scope)
    }

    /// Whether it may touch queue `name`.
    pub fn may_touch(&self, queue: &str) -> bool {
        self.queues.allow(queue)
    }

    /// Whether it reaches every queue (lists and the change log need no filtering).
    pub fn touches_every_queue(&self) -> bool {
        self.queues.is_any()
    }

    /// Whether it reaches `tenant`'s resources.
    pub fn reaches(&self, tenant: &str) -> bool {
        self.tenant == ANY_TENANT || self.tenant == tenant
    }
}
