//! Server configuration: a TOML file, then `WHARF_*` environment variables, then flags.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::auth::{KeyLimits, RateLimits};
use crate::broker::{BrokerOptions, Limits, QueueConfig};
use crate::mirror::MirrorConfig;
use crate::storage::StoreOptions;

/// When an acknowledged write is on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// Every commit is fsynced before any reply that depends on it. A `kill -9` or power loss
    /// loses nothing that was acknowledged.
    Sync,
    /// Commits are written without fsync and fsynced every `fsync_interval_ms`. Replies come
    /// sooner, but a crash (`kill -9` included) loses writes acknowledged in the last interval:
    /// enqueued jobs vanish, acked jobs are delivered again.
    Async,
}

/// Everything the server reads at start-up. Every field has a documented default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where the data file lives. Default: `./wharf-data`.
    pub data_dir: PathBuf,
    /// Address the HTTP API listens on. Default: `127.0.0.1:7070`.
    pub listen: SocketAddr,
    /// Durability mode. Default: `sync`.
    pub durability: Durability,
    /// The longest a commit stays unsynced: every acknowledged write in `async` mode, lease
    /// writes (polls, expiries) in `sync` mode. Default: 50.
    pub fsync_interval_ms: u64,
    /// How long changes may wait in memory and in the write-ahead journal before a background
    /// checkpoint folds them into the data file (also after 16 MiB of journal or 8 MiB of
    /// changes). Longer: fewer checkpoints, a longer replay after a crash. Default: 5000.
    pub checkpoint_interval_ms: u64,
    /// Disk space given to the write-ahead journal up front, once (zeros, half in each of its
    /// two files), so that its fsyncs overwrite rather than grow them; 0 lets them grow on
    /// demand. Default: 64 (MiB).
    pub journal_preallocate_mb: u64,
    /// Free space (MiB) kept on the data volume: below it, writes that add data (enqueues,
    /// outbox messages, schedule changes) get 507 `insufficient_storage` and change nothing,
    /// while polls, acks, cancels and retention go on; accepted again as soon as space is
    /// freed. Unset: 64, or an eighth of a volume smaller than 512 MiB.
    pub min_free_mb: Option<u64>,
    /// The data file's page cache. Writes wait in memory layers of their own and reach the
    /// file in background checkpoints, so this serves reads of jobs checkpointed already
    /// (the OS page cache backs it). Default: 16 (MiB).
    pub cache_mb: usize,
    /// Largest request body, at most 268435456 (256 MiB). Default: 8388608 (8 MiB).
    pub max_body_bytes: usize,
    /// Largest job payload or ack result (JSON text). Default: 1048576 (1 MiB).
    pub max_payload_bytes: usize,
    /// Most jobs in one enqueue or acks in one batch ack. Default: 1000.
    pub max_batch: usize,
    /// Most write requests in one commit group. Default: 1024.
    pub max_commit_group: usize,
    /// Most write requests waiting for the writer before new ones wait. Default: 8192.
    pub max_pending_writes: usize,
    /// Change-log events kept (oldest dropped first; readers never hold this back). The
    /// key's old name `outbox_max_entries` is still read. Default: 1000000.
    #[serde(alias = "outbox_max_entries")]
    pub events_max_entries: u64,
    /// Longest a change-log event is kept, in ms. Default: 604800000 (7 days).
    pub events_max_age_ms: u64,
    /// How long audit records are kept, in days (older ones are dropped as new ones are
    /// written). Default: 90.
    pub audit_retention_days: u64,
    /// On SIGINT/SIGTERM, how long in-flight requests may take to finish. Default: 10000.
    pub shutdown_grace_ms: u64,
    /// Most HTTP connections open at once; more wait in the listen backlog. At start the soft
    /// file-descriptor limit is raised to the hard one, and this is lowered (with a warning) to
    /// fit that limit less 64 descriptors for files and the store. Default: 10000.
    pub max_connections: usize,
    /// Longest a connection may take to send a request's head, counted from when the server
    /// waits for it (after connecting, and after each reply: also the idle keep-alive
    /// timeout); then it is closed. Default: 30000.
    pub header_read_timeout_ms: u64,
    /// Longest a request body may take to arrive; then 408 `request_timeout`. Default: 60000.
    pub body_read_timeout_ms: u64,
    /// PEM certificate chain to serve HTTPS with (together with `tls_key`). Default: none
    /// (plain HTTP).
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of `tls_cert`. Default: none.
    pub tls_key: Option<PathBuf>,
    /// Serve on an address other than loopback even though no API key exists (something in
    /// front of wharf authenticates). Without it, wharf refuses to start so exposed.
    /// Default: false.
    pub insecure_no_auth: bool,
    /// Rate limits per tenant (`[tenant_limits.NAME]` tables with `enqueue_per_sec`,
    /// `consume_per_sec`, `admin_per_sec`), shared by every key of the tenant on top of each
    /// key's own. Default: none.
    pub tenant_limits: BTreeMap<String, RateLimits>,
    /// Defaults of queues created on first use.
    pub queue_defaults: QueueConfig,
    /// Mirrors (`[[mirror]]` tables): none by default.
    #[serde(rename = "mirror")]
    pub mirrors: Vec<MirrorConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("./wharf-data"),
            listen: SocketAddr::from(([127, 0, 0, 1], 7070)),
            durability: Durability::Sync,
            fsync_interval_ms: 50,
            checkpoint_interval_ms: 5000,
            journal_preallocate_mb: 64,
            min_free_mb: None,
            cache_mb: 16,
            max_body_bytes: 8 << 20,
            max_payload_bytes: 1 << 20,
            max_batch: 1000,
            max_commit_group: 1024,
            max_pending_writes: 8192,
            events_max_entries: 1_000_000,
            events_max_age_ms: 7 * 24 * 3_600_000,
            audit_retention_days: 90,
            shutdown_grace_ms: 10_000,
            max_connections: 10_000,
            header_read_timeout_ms: 30_000,
            body_read_timeout_ms: 60_000,
            tls_cert: None,
            tls_key: None,
            insecure_no_auth: false,
            tenant_limits: BTreeMap::new(),
            queue_defaults: QueueConfig::default(),
            mirrors: Vec::new(),
        }
    }
}

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is not valid TOML for this schema.
    #[error("invalid config file {path}: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        source: Box<toml::de::Error>,
    },
    /// A value is out of range or contradicts another.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// Largest request body that may be configured: one request is one part of a journal frame,
/// and frames must stay well below the journal's 1 GiB frame limit.
pub const MAX_BODY_BYTES: usize = 256 << 20;

impl Config {
    /// Reads a TOML file (every key optional).
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.into(),
            source,
        })?;
        toml::from_str(&text).map_err(|source| ConfigError::Parse {
            path: path.into(),
            source: Box::new(source),
        })
    }

    /// Rejects values that cannot work, with a message that says which and why.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |m: &str| Err(ConfigError::Invalid(m.to_owned()));
        if !(1..=MAX_BODY_BYTES).contains(&self.max_body_bytes) {
            return invalid("max_body_bytes must be between 1 and 268435456 (256 MiB)");
        }
        if self.max_payload_bytes == 0 || self.max_payload_bytes > self.max_body_bytes {
            return invalid("max_payload_bytes must be between 1 and max_body_bytes");
        }
        if self.max_batch == 0 {
            return invalid("max_batch must be at least 1");
        }
        if !(1..=10_000).contains(&self.fsync_interval_ms) {
            return invalid("fsync_interval_ms must be between 1 and 10000");
        }
        if !(1..=600_000).contains(&self.checkpoint_interval_ms) {
            return invalid("checkpoint_interval_ms must be between 1 and 600000");
        }
        if self.journal_preallocate_mb > 4096 {
            return invalid("journal_preallocate_mb must be at most 4096");
        }
        if self.min_free_mb.is_some_and(|mb| mb > 1 << 30) {
            return invalid("min_free_mb must be at most 1073741824 (1 PiB)");
        }
        if !(1..=1_000_000).contains(&self.max_connections) {
            return invalid("max_connections must be between 1 and 1000000");
        }
        if !(1..=3_600_000).contains(&self.header_read_timeout_ms)
            || !(1..=3_600_000).contains(&self.body_read_timeout_ms)
        {
            return invalid(
                "header_read_timeout_ms and body_read_timeout_ms must be between 1 and 3600000",
            );
        }
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return invalid("tls_cert and tls_key go together: give both, or neither");
        }
        if self.events_max_entries == 0 || self.events_max_age_ms == 0 {
            return invalid("events_max_entries and events_max_age_ms must be at least 1");
        }
        if !(1..=36_500).contains(&self.audit_retention_days) {
            return invalid("audit_retention_days must be between 1 and 36500");
        }
        for (tenant, limits) in &self.tenant_limits {
            if tenant != crate::auth::ANY_TENANT && !crate::tenant::valid_tenant(tenant) {
                return invalid(&format!(
                    "tenant_limits: {tenant:?} is not a tenant name (A-Z, a-z, 0-9, '.', '_', '-', or '*')"
                ));
            }
            let values = [
                limits.enqueue_per_sec,
                limits.consume_per_sec,
                limits.admin_per_sec,
            ];
            if values
                .into_iter()
                .flatten()
                .any(|n| !(1..=crate::auth::limits::MAX_PER_SEC).contains(&n))
            {
                return invalid(&format!(
                    "tenant_limits.{tenant}: each limit must be between 1 and {}",
                    crate::auth::limits::MAX_PER_SEC
                ));
            }
        }
        for (i, mirror) in self.mirrors.iter().enumerate() {
            mirror.validate().map_err(ConfigError::Invalid)?;
            if self.mirrors[..i].iter().any(|m| m.name == mirror.name) {
                return invalid(&format!("two mirrors are named {:?}", mirror.name));
            }
            if let Some(other) = self.mirrors[..i].iter().find(|m| m.overlaps(mirror)) {
                let space = mirror.kind.namespace();
                return invalid(&format!(
                    "mirrors {:?} and {:?} would write the same {space} of one server: give each its own {space}",
                    other.name, mirror.name,
                ));
            }
        }
        self.queue_defaults
            .check()
            .map_err(|e| ConfigError::Invalid(format!("queue_defaults: {e}")))
    }

    /// The tenants' rate limits, as the key registry takes them.
    pub fn tenant_key_limits(&self) -> BTreeMap<String, KeyLimits> {
        self.tenant_limits
            .iter()
            .map(|(tenant, limits)| (tenant.clone(), KeyLimits::from(*limits)))
            .collect()
    }

    /// The broker's options derived from this configuration.
    pub fn broker_options(&self) -> BrokerOptions {
        BrokerOptions {
            store: StoreOptions {
                data_dir: self.data_dir.clone(),
                sync_mode: self.durability == Durability::Sync,
                flush_interval: Duration::from_millis(self.fsync_interval_ms),
                checkpoint_interval: Duration::from_millis(self.checkpoint_interval_ms),
                journal_preallocate_bytes: self.journal_preallocate_mb << 20,
                cache_bytes: self.cache_mb << 20,
                max_group: self.max_commit_group,
                max_pending: self.max_pending_writes,
                events_max_entries: self.events_max_entries,
                events_max_age_ms: self.events_max_age_ms,
                disk: std::sync::Arc::new(crate::storage::RealDisk),
                min_free_bytes: self.min_free_mb.map(|mb| mb.saturating_mul(1 << 20)),
            },
            queue_defaults: self.queue_defaults.clone(),
            limits: Limits {
                max_payload_bytes: self.max_payload_bytes,
                max_batch: self.max_batch,
            },
            seed: None,
            audit_retention_ms: self.audit_retention_days.saturating_mul(24 * 3_600_000),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_match_the_docs() {
        let c = Config::default();
        c.validate().unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:7070");
        assert_eq!(c.durability, Durability::Sync);
    }

    #[test]
    fn file_keys_are_optional_and_typos_are_rejected() {
        let c: Config =
            toml::from_str("durability = \"async\"\n[queue_defaults]\nlease_ms = 5000").unwrap();
        assert_eq!(c.durability, Durability::Async);
        assert_eq!(c.queue_defaults.lease_ms, 5000);
        assert_eq!(c.queue_defaults.max_attempts, 5);
        assert!(toml::from_str::<Config>("durabilty = \"sync\"").is_err());
    }

    #[test]
    fn the_readme_config_file_is_valid_and_says_the_defaults() {
        let readme = include_str!("../README.md");
        let start = readme
            .find("The config file")
            .and_then(|at| readme[at..].find("```toml").map(|block| at + block + 7))
            .unwrap();
        let block = &readme[start..start + readme[start..].find("```").unwrap()];
        let c: Config = toml::from_str(block).unwrap();
        c.validate().unwrap();
        let Config { mirrors, .. } = c.clone();
        assert_eq!(mirrors.len(), 1);
        // Every other key in the README holds its default.
        let defaults = Config {
            mirrors,
            ..Config::default()
        };
        assert_eq!(format!("{c:?}"), format!("{defaults:?}"));
    }

    /// The message a configuration that must be refused is refused with.
    fn rejection(c: &Config) -> String {
        c.validate().unwrap_err().to_string()
    }

    #[test]
    fn two_mirrors_writing_the_same_keys_are_rejected() {
        let first = MirrorConfig::from_url("redis://127.0.0.1:6379", &[]).unwrap();
        let second =
            MirrorConfig::from_url("redis://127.0.0.1:6379", std::slice::from_ref(&first)).unwrap();
        let c = Config {
            mirrors: vec![first, second],
            ..Config::default()
        };
        assert!(rejection(&c).contains("own prefix"), "{}", rejection(&c));
    }

    #[test]
    fn contradictions_are_rejected_with_the_field_named() {
        let mut c = Config::default();
        c.queue_defaults.backoff.base_ms = c.queue_defaults.backoff.cap_ms + 1;
        assert!(rejection(&c).contains("base_ms"));
        let c = Config {
            max_payload_bytes: 10 << 20,
            ..Config::default()
        };
        assert!(rejection(&c).contains("max_payload_bytes"));
    }

    #[test]
    fn limits_that_would_break_the_journal_are_rejected() {
        let c = Config {
            max_body_bytes: MAX_BODY_BYTES + 1,
            ..Config::default()
        };
        assert!(rejection(&c).contains("max_body_bytes"));
        let c = Config {
            checkpoint_interval_ms: 0,
            ..Config::default()
        };
        assert!(rejection(&c).contains("checkpoint_interval_ms"));
        let c = Config {
            journal_preallocate_mb: 4097,
            ..Config::default()
        };
        assert!(rejection(&c).contains("journal_preallocate_mb"));
    }
}
