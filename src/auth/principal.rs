//! Who a request comes from, once its key is checked.

use super::pattern::QueuePatterns;
use super::scope::{Scope, Scopes};
use crate::job::valid_queue_name;
use crate::storage::KeyLimits;
use crate::tenant;

pub use crate::tenant::DEFAULT_TENANT;

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

    /// Whether it is an operator: it reaches every tenant, and names resources by their full
    /// names (`acme:emails`).
    pub fn is_operator(&self) -> bool {
        self.tenant == ANY_TENANT
    }

    /// The full name (see [`crate::tenant`]) of a queue, schedule, cursor or topic named
    /// `name` in a request: a tenant's key sends the plain names of its tenant, an operator
    /// full names. `None`: not a name this caller can send (a 400 for the kind of name).
    pub fn full_name(&self, name: &str) -> Option<String> {
        if self.is_operator() {
            tenant::valid_full_name(name).then(|| name.to_owned())
        } else {
            valid_queue_name(name).then(|| tenant::full_name(&self.tenant, name))
        }
    }

    /// Whether the resource of full name `full` is in a tenant it reaches.
    pub fn owns(&self, full: &str) -> bool {
        self.reaches(tenant::tenant_of(full))
    }

    /// Whether it may touch the queue of full name `full`: one of its tenant's, within its
    /// patterns (which match names within the tenant; an operator's, full names).
    pub fn may_touch(&self, full: &str) -> bool {
        if self.is_operator() {
            return self.queues.allow(full);
        }
        let (tenant, name) = tenant::split(full);
        tenant == self.tenant && self.queues.allow(name)
    }

    /// Whether it reaches every queue of every tenant (lists and the change log need no
    /// filtering).
    pub fn touches_every_queue(&self) -> bool {
        self.is_operator() && self.queues.is_any()
    }

    /// Whether it reaches `tenant`'s resources.
    pub fn reaches(&self, tenant: &str) -> bool {
        self.tenant == ANY_TENANT || self.tenant == tenant
    }
}
