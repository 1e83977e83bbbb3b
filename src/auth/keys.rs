//! The key registry: every key in memory (a few per service, so a map is plenty), checked on
//! every request, changed only through the broker's writer so that a key is durable before it
//! is usable and a revocation is durable before it is answered.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::RwLock;

use super::limits::{Buckets, Class, MAX_PER_SEC};
use super::pattern::QueuePatterns;
use super::principal::{ANY_TENANT, DEFAULT_TENANT, Principal};
use super::scope::Scopes;
use super::token;
use crate::broker::{Broker, BrokerError};
use crate::clock::Millis;
use crate::storage::{KeyLimits, KeyRecord};

/// How stale a stored `last_used_at` may get: a key's use is written at most this often.
const USE_GRANULARITY_MS: u64 = 60_000;

/// Longest label.
pub const MAX_LABEL_BYTES: usize = 256;

/// Most scopes or queue patterns on one key.
pub const MAX_PATTERNS: usize = 64;

/// Why a request's credentials were refused (401).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Unauthorized {
    /// No `Authorization` header.
    #[error("this broker requires an API key: send Authorization: Bearer <key>")]
    Missing,
    /// Not `Bearer <token>`, or not a token's shape.
    #[error("the Authorization header must be Bearer followed by a wharf key (wk_...)")]
    Malformed,
    /// No key with that id, or the secret does not match.
    #[error("unknown API key")]
    Unknown,
    /// The key was revoked.
    #[error("this API key was revoked")]
    Revoked,
}

/// Why a key change was refused.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// A value breaks a rule (422).
    #[error("{0}")]
    Invalid(String),
    /// The caller may not grant that (403).
    #[error("{0}")]
    Forbidden(String),
    /// No key with that id in the caller's tenant (404).
    #[error("no key with that id")]
    NotFound,
    /// The random source failed (500).
    #[error("cannot draw a random key: {0}")]
    Random(getrandom::Error),
    /// Storing it failed.
    #[error(transparent)]
    Broker(#[from] BrokerError),
}

/// What a new key is asked to be.
#[derive(Debug, Clone, Default)]
pub struct KeySpec {
    /// Its tenant (default: the creator's own, or `default` for an operator).
    pub tenant: Option<String>,
    /// Its scopes (`*`: every scope).
    pub scopes: Vec<String>,
    /// Its queue patterns (empty: every queue the creator may touch).
    pub queues: Vec<String>,
    /// Free text.
    pub label: String,
    /// Rate limits (unset: the creator's own).
    pub limits: KeyLimits,
}

/// A key as shown (never its token or hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyView {
    /// Its id.
    pub id: String,
    /// Its tenant.
    pub tenant: String,
    /// Its scope names.
    pub scopes: Vec<&'static str>,
    /// Its queue patterns (empty: every queue).
    pub queues: Vec<String>,
    /// Its label.
    pub label: String,
    /// When it was created.
    pub created_at: Millis,
    /// When it was last used, to within a minute.
    pub last_used_at: Option<Millis>,
    /// When it was revoked.
    pub revoked_at: Option<Millis>,
    /// Its rate limits.
    pub limits: KeyLimits,
}

struct Entry {
    record: KeyRecord,
    /// Who a request with this key comes from (its scopes and patterns, parsed once).
    principal: Arc<Principal>,
    /// Its rate limits' buckets.
    buckets: Arc<Buckets>,
    /// Its requests, for `/metrics`.
    stats: Arc<KeyStats>,
}

impl Entry {
    fn new(id: &str, record: KeyRecord, clock: &crate::clock::Clock) -> Entry {
        // Stored records were checked when created; a name this build does not know (from a
        // newer wharf) grants nothing rather than failing the start.
        let scopes = Scopes::parse(record.scopes.iter().map(String::as_str)).unwrap_or_default();
        let queues = QueuePatterns::parse(record.queues.iter().map(String::as_str))
            .unwrap_or_else(|_| QueuePatterns::none());
        let principal = Arc::new(Principal {
            key_id: Some(id.to_owned()),
            tenant: record.tenant.clone(),
            scopes,
            queues,
            limits: record.limits,
        });
        Entry {
            buckets: Arc::new(Buckets::new(&record.limits, clock)),
            stats: Arc::default(),
            record,
            principal,
        }
    }

    fn view(&self, id: &str) -> KeyView {
        KeyView {
            id: id.to_owned(),
            tenant: self.record.tenant.clone(),
            scopes: self.principal.scopes.names(),
            queues: self.principal.queues.texts(),
            label: self.record.label.clone(),
            created_at: self.record.created_at,
            last_used_at: self.record.last_used_at,
            revoked_at: self.record.revoked_at,
            limits: self.record.limits,
        }
    }
}

/// A request's key, checked: who it is, and the buckets its requests are counted in.
pub struct Authenticated {
    /// Who.
    pub principal: Arc<Principal>,
    /// Its rate limits.
    pub buckets: Arc<Buckets>,
    /// Its counts.
    pub stats: Arc<KeyStats>,
    /// Its tenant's rate limits, shared by every key of the tenant (from the configuration).
    pub tenant_buckets: Option<Arc<Buckets>>,
}

/// What became of one key's requests (since the start).
#[derive(Debug, Default)]
pub struct KeyStats {
    /// Let through to their handler.
    pub requests: AtomicU64,
    /// Refused for a missing scope (403).
    pub forbidden: AtomicU64,
    /// Refused over a rate limit (429).
    pub rate_limited: AtomicU64,
}

/// One tenant's counts, summed over its keys.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TenantStats {
    /// Let through to their handler.
    pub requests: u64,
    /// Refused for a missing scope (403).
    pub forbidden: u64,
    /// Refused over a rate limit (429).
    pub rate_limited: u64,
}

/// Every key, and the broker that stores them.
pub struct Keys {
    broker: Arc<Broker>,
    entries: RwLock<HashMap<String, Entry>>,
    /// The caller while no key exists.
    open: Arc<Principal>,
    /// Requests refused with 401.
    unauthorized: AtomicU64,
    /// Each configured tenant's rate limits, shared by its keys.
    tenants: HashMap<String, Arc<Buckets>>,
}

impl Keys {
    /// Loads the stored keys.
    pub fn load(broker: Arc<Broker>) -> Result<Keys, BrokerError> {
        let clock = broker.clock().clone();
        let entries = broker
            .stored_keys()?
            .into_iter()
            .map(|(id, record)| {
                let entry = Entry::new(&id, record, &clock);
                (id, entry)
            })
            .collect();
        Ok(Keys {
            broker,
            entries: RwLock::new(entries),
            open: Arc::new(Principal::unauthenticated()),
            unauthorized: AtomicU64::new(0),
            tenants: HashMap::new(),
        })
    }

    /// Gives each tenant of `limits` buckets that all its keys' requests count against, on top
    /// of each key's own.
    pub fn with_tenant_limits(mut self, limits: &BTreeMap<String, KeyLimits>) -> Keys {
        let clock = self.broker.clock().clone();
        self.tenants = limits
            .iter()
            .map(|(tenant, limits)| (tenant.clone(), Arc::new(Buckets::new(limits, &clock))))
            .collect();
        self
    }

    /// The caller of every request while no key exists.
    pub fn unauthenticated(&self) -> Arc<Principal> {
        self.open.clone()
    }

    /// Whether authentication is on: as soon as one key was ever created. A revoked key still
    /// counts, so revoking every key locks the broker rather than opening it.
    pub fn enabled(&self) -> bool {
        !self.entries.read().is_empty()
    }

    /// The caller of a request with this `Authorization` header value.
    pub fn authenticate(
        &self,
        authorization: Option<&[u8]>,
    ) -> Result<Authenticated, Unauthorized> {
        self.counted(bearer(authorization).and_then(|token| self.check_token(token)))
    }

    /// The caller of a request whose key is `token` (the SQS endpoint's access key id).
    pub fn authenticate_token(&self, token: &str) -> Result<Authenticated, Unauthorized> {
        self.counted(self.check_token(token))
    }

    /// Counts a refusal in `/metrics`.
    fn counted(
        &self,
        checked: Result<Authenticated, Unauthorized>,
    ) -> Result<Authenticated, Unauthorized> {
        if checked.is_err() {
            self.unauthorized.fetch_add(1, Ordering::Relaxed);
        }
        checked
    }

    /// Requests refused with 401 so far.
    pub fn unauthorized_total(&self) -> u64 {
        self.unauthorized.load(Ordering::Relaxed)
    }

    /// Every tenant's counts, by tenant.
    pub fn tenant_stats(&self) -> BTreeMap<String, TenantStats> {
        let mut tenants = BTreeMap::<String, TenantStats>::new();
        for entry in self.entries.read().values() {
            let sum = tenants.entry(entry.record.tenant.clone()).or_default();
            sum.requests += entry.stats.requests.load(Ordering::Relaxed);
            sum.forbidden += entry.stats.forbidden.load(Ordering::Relaxed);
            sum.rate_limited += entry.stats.rate_limited.load(Ordering::Relaxed);
        }
        tenants
    }

    fn check_token(&self, token: &str) -> Result<Authenticated, Unauthorized> {
        let id = token::id_of(token).ok_or(Unauthorized::Malformed)?;
        let now = self.broker.now();
        let (principal, write_use) = {
            let entries = self.entries.read();
            let entry = entries.get(id).ok_or(Unauthorized::Unknown)?;
            if !token::verify(token, &entry.record.hash) {
                return Err(Unauthorized::Unknown);
            }
            if entry.record.revoked_at.is_some() {
                return Err(Unauthorized::Revoked);
            }
            let principal = Authenticated {
                principal: entry.principal.clone(),
                buckets: entry.buckets.clone(),
                stats: entry.stats.clone(),
                tenant_buckets: self.tenants.get(&entry.record.tenant).cloned(),
            };
            let stale = entry
                .record
                .last_used_at
                .is_none_or(|at| now.saturating_sub(at) >= USE_GRANULARITY_MS);
            (principal, stale)
        };
        if write_use {
            self.note_use(id, now);
        }
        Ok(principal)
    }

    /// Writes a use in the background (at most once a minute per key).
    fn note_use(&self, id: &str, now: Millis) {
        {
            let mut entries = self.entries.write();
            let Some(entry) = entries.get_mut(id) else {
                return;
            };
            if entry
                .record
                .last_used_at
                .is_some_and(|at| now.saturating_sub(at) < USE_GRANULARITY_MS)
            {
                return; // another request got here first
            }
            entry.record.last_used_at = Some(now);
        }
        let broker = self.broker.clone();
        let id = id.to_owned();
        tokio::spawn(async move {
            if let Err(error) = broker.key_used(&id, now).await {
                tracing::debug!(%error, key = %id, "could not record a key's use");
            }
        });
    }

    /// Creates a key on behalf of `by`, who can grant only what it has; returns it and its
    /// token, once it is durable.
    pub async fn create(
        &self,
        by: &Principal,
        spec: KeySpec,
    ) -> Result<(KeyView, String), KeyError> {
        let record = self.check(by, spec)?;
        let new = token::generate().map_err(KeyError::Random)?;
        let record = KeyRecord {
            hash: new.hash,
            created_at: self.broker.now(),
            ..record
        };
        self.broker.put_key(&new.id, record.clone()).await?;
        let entry = Entry::new(&new.id, record, self.broker.clock());
        let view = entry.view(&new.id);
        self.entries.write().insert(new.id, entry);
        Ok((view, new.token))
    }

    /// The record a spec asks for, checked against what `by` may grant.
    fn check(&self, by: &Principal, spec: KeySpec) -> Result<KeyRecord, KeyError> {
        let invalid = |m: String| Err(KeyError::Invalid(m));
        let tenant = spec.tenant.unwrap_or_else(|| match by.tenant.as_str() {
            ANY_TENANT => DEFAULT_TENANT.to_owned(),
            own => own.to_owned(),
        });
        if tenant != ANY_TENANT && !crate::tenant::valid_tenant(&tenant) {
            return invalid(format!(
                "tenant {tenant:?}: tenant names are 1-{} characters of A-Z, a-z, 0-9, '.', '_' and '-', or '*' for every tenant",
                crate::tenant::MAX_TENANT_LEN
            ));
        }
        // Only an operator reaches `*`, so only it makes operator keys.
        if !by.reaches(&tenant) {
            return Err(KeyError::Forbidden(format!(
                "this key cannot create keys for tenant {tenant:?}"
            )));
        }
        if spec.scopes.is_empty() || spec.scopes.len() > MAX_PATTERNS {
            return invalid(format!(
                "scopes: give 1-{MAX_PATTERNS} scopes (names from docs/security.md, or '*')"
            ));
        }
        let scopes = match Scopes::parse(spec.scopes.iter().map(String::as_str)) {
            Ok(scopes) => scopes,
            Err(name) => return invalid(format!("scopes: unknown scope {name:?}")),
        };
        if !by.scopes.covers(scopes) {
            return Err(KeyError::Forbidden(
                "a key can grant only scopes it has itself".to_owned(),
            ));
        }
        if spec.queues.len() > MAX_PATTERNS {
            return invalid(format!("queues: at most {MAX_PATTERNS} patterns"));
        }
        let queues = match QueuePatterns::parse(spec.queues.iter().map(String::as_str)) {
            Ok(queues) => queues,
            Err(bad) => {
                return invalid(format!(
                    "queues: {bad:?} is not a queue name or a name followed by '*'"
                ));
            }
        };
        // None given: as many queues as the creator itself may touch (`*` asks for every queue).
        let queues = if spec.queues.is_empty() {
            by.queues.clone()
        } else {
            queues
        };
        if !by.queues.covers(&queues) {
            return Err(KeyError::Forbidden(
                "a key can grant only queues it may touch itself".to_owned(),
            ));
        }
        let limits = check_limits(by, spec.limits)?;
        if spec.label.len() > MAX_LABEL_BYTES || spec.label.chars().any(char::is_control) {
            return invalid(format!(
                "label: at most {MAX_LABEL_BYTES} bytes, no control characters"
            ));
        }
        Ok(KeyRecord {
            hash: [0; 32],
            tenant,
            scopes: scopes.names().into_iter().map(str::to_owned).collect(),
            queues: queues.texts(),
            label: spec.label,
            limits,
            created_at: 0,
            last_used_at: None,
            revoked_at: None,
        })
    }

    /// The keys `by` can see (its tenant's; an operator's: all), by id.
    pub fn list(&self, by: &Principal) -> Vec<KeyView> {
        let entries = self.entries.read();
        let mut views: Vec<KeyView> = entries
            .iter()
            .filter(|(_, e)| by.reaches(&e.record.tenant))
            .map(|(id, e)| e.view(id))
            .collect();
        views.sort_by(|a, b| a.id.cmp(&b.id));
        views
    }

    /// Revokes key `id` (in a tenant `by` reaches); effective from the very next request.
    /// Revoking a revoked key changes nothing and answers the same.
    pub async fn revoke(&self, by: &Principal, id: &str) -> Result<KeyView, KeyError> {
        let revoked = {
            let entries = self.entries.read();
            let entry = entries
                .get(id)
                .filter(|e| by.reaches(&e.record.tenant))
                .ok_or(KeyError::NotFound)?;
            entry.record.revoked_at.is_some()
        };
        if !revoked {
            let now = self.broker.now();
            self.broker.revoke_key(id, now).await?;
            if let Some(entry) = self.entries.write().get_mut(id) {
                entry.record.revoked_at.get_or_insert(now);
            }
        }
        let entries = self.entries.read();
        entries
            .get(id)
            .map(|e| e.view(id))
            .ok_or(KeyError::NotFound)
    }
}

/// The limits a new key gets: those asked for, each within 1 and [`MAX_PER_SEC`], the
/// creator's own for a class not asked for, and none above the creator's (a limited key must
/// not mint an unlimited one).
fn check_limits(by: &Principal, asked: KeyLimits) -> Result<KeyLimits, KeyError> {
    let mut limits = KeyLimits::default();
    for class in Class::ALL {
        let own = class.limit(&by.limits);
        let value = match class.limit(&asked) {
            None => own,
            Some(n) if !(1..=MAX_PER_SEC).contains(&n) => {
                return Err(KeyError::Invalid(format!(
                    "limits.{}: must be between 1 and {MAX_PER_SEC}",
                    class.field()
                )));
            }
            Some(n) if own.is_some_and(|own| n > own) => {
                return Err(KeyError::Forbidden(format!(
                    "limits.{}: a key can grant at most its own limit",
                    class.field()
                )));
            }
            Some(n) => Some(n),
        };
        match class {
            Class::Enqueue => limits.enqueue_per_sec = value,
            Class::Consume => limits.consume_per_sec = value,
            Class::Admin => limits.admin_per_sec = value,
        }
    }
    Ok(limits)
}

/// The token of an `Authorization: Bearer <token>` header.
fn bearer(authorization: Option<&[u8]>) -> Result<&str, Unauthorized> {
    let value = authorization.ok_or(Unauthorized::Missing)?;
    let text = std::str::from_utf8(value).map_err(|_| Unauthorized::Malformed)?;
    let (scheme, token) = text.trim().split_once(' ').ok_or(Unauthorized::Malformed)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(Unauthorized::Malformed);
    }
    Ok(token.trim())
}
