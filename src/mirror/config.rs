//! Mirror settings: `[[mirror]]` tables in the config file, or `--mirror URL`.

use serde::{Deserialize, Serialize};

use crate::broker::limits::MAX_POLL;
use crate::job::valid_queue_name;

/// Where a mirror's state goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MirrorKind {
    /// Tables in a Postgres schema.
    Postgres,
    /// Keys under a Redis prefix.
    Redis,
}

impl MirrorKind {
    /// The kind's name, as in the config.
    pub fn as_str(self) -> &'static str {
        match self {
            MirrorKind::Postgres => "postgres",
            MirrorKind::Redis => "redis",
        }
    }

    /// What keeps two mirrors of one server apart.
    pub fn namespace(self) -> &'static str {
        match self {
            MirrorKind::Postgres => "schema",
            MirrorKind::Redis => "prefix",
        }
    }
}

/// One mirror.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MirrorConfig {
    /// Its name, unique among mirrors (`[A-Za-z0-9._-]{1,128}`): Postgres keeps its position
    /// under it.
    pub name: String,
    /// `postgres` or `redis`.
    pub kind: MirrorKind,
    /// `postgres://user@host:port/db` or `redis://host:port/db`.
    pub url: String,
    /// Postgres: the schema its tables live in (created on first connect). Default: `wharf`.
    #[serde(default = "default_schema")]
    pub schema: String,
    /// Redis: the prefix of its keys (1-128 of `A-Z a-z 0-9 : . _ - / { }`: no glob
    /// characters, so that a snapshot's clearing matches only the mirror's own keys).
    /// Default: `wharf:`.
    #[serde(default = "default_prefix")]
    pub prefix: String,
    /// Most events applied in one transaction. Default: 1000.
    #[serde(default = "default_batch")]
    pub batch: usize,
    /// How long the relay waits for more events after a short read, to apply a busy log in
    /// fewer, larger transactions; it adds up to this much lag. Default: 10.
    #[serde(default = "default_linger_ms")]
    pub linger_ms: u64,
    /// Longest wait between two tries when the mirror is down (exponential from 100 ms, full
    /// jitter). Default: 30000.
    #[serde(default = "default_max_backoff_ms")]
    pub max_backoff_ms: u64,
}

fn default_schema() -> String {
    "wharf".into()
}

fn default_prefix() -> String {
    "wharf:".into()
}

fn default_batch() -> usize {
    1000
}

fn default_linger_ms() -> u64 {
    10
}

fn default_max_backoff_ms() -> u64 {
    30_000
}

impl MirrorConfig {
    /// A mirror of the kind the URL's scheme names, with every default; `name` is the kind's
    /// name unless taken by one of `taken`, then `kind-2`, `kind-3`, ...
    pub fn from_url(url: &str, taken: &[MirrorConfig]) -> Result<MirrorConfig, String> {
        let kind = match url.split_once("://").map(|(scheme, _)| scheme) {
            Some("postgres" | "postgresql") => MirrorKind::Postgres,
            Some("redis" | "rediss") => MirrorKind::Redis,
            _ => {
                return Err(format!(
                    "mirror URL {url:?} must start with postgres:// or redis://"
                ));
            }
        };
        let base = kind.as_str();
        let name = (1..)
            .map(|n| {
                if n == 1 {
                    base.to_owned()
                } else {
                    format!("{base}-{n}")
                }
            })
            .find(|name| taken.iter().all(|m| &m.name != name))
            .unwrap_or_else(|| base.to_owned());
        Ok(MirrorConfig {
            name,
            kind,
            url: url.to_owned(),
            schema: default_schema(),
            prefix: default_prefix(),
            batch: default_batch(),
            linger_ms: default_linger_ms(),
            max_backoff_ms: default_max_backoff_ms(),
        })
    }

    /// Whether `self` and `other` would write the same tables or keys (same server, and the
    /// same schema, or prefixes one of which starts with the other): two relays would undo
    /// each other's work, and a snapshot of one would clear the other's.
    pub fn overlaps(&self, other: &MirrorConfig) -> bool {
        self.kind == other.kind
            && self.url == other.url
            && match self.kind {
                MirrorKind::Postgres => self.schema == other.schema,
                MirrorKind::Redis => {
                    self.prefix.starts_with(&other.prefix) || other.prefix.starts_with(&self.prefix)
                }
            }
    }

    /// Rejects settings that cannot work, naming the mirror and the field.
    pub fn validate(&self) -> Result<(), String> {
        let name = &self.name;
        if !valid_queue_name(name) {
            return Err(format!(
                "mirror name {name:?} must be 1-128 characters of A-Z, a-z, 0-9, '.', '_' and '-', other than '.' and '..'"
            ));
        }
        match self.kind {
            MirrorKind::Postgres => {
                self.url
                    .parse::<tokio_postgres::Config>()
                    .map_err(|e| format!("mirror {name}: url is not a Postgres URL: {e}"))?;
                let ident = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_';
                let starts_ok = self
                    .schema
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_lowercase() || c == '_');
                if !starts_ok || self.schema.len() > 63 || !self.schema.chars().all(ident) {
                    return Err(format!(
                        "mirror {name}: schema must be a lower-case identifier ([a-z_][a-z0-9_]*, at most 63)"
                    ));
                }
            }
            MirrorKind::Redis => {
                redis::Client::open(self.url.as_str())
                    .map_err(|e| format!("mirror {name}: url is not a Redis URL: {e}"))?;
                let allowed = |c: char| c.is_ascii_alphanumeric() || ":._-/{}".contains(c);
                if self.prefix.is_empty()
                    || self.prefix.len() > 128
                    || !self.prefix.chars().all(allowed)
                {
                    return Err(format!(
                        "mirror {name}: prefix must be 1-128 characters of A-Z, a-z, 0-9 and ':._-/{{}}'"
                    ));
                }
            }
        }
        // A batch is one read of the change log, which pages at most MAX_POLL events.
        if !(1..=MAX_POLL).contains(&self.batch) {
            return Err(format!(
                "mirror {name}: batch must be between 1 and {MAX_POLL}"
            ));
        }
        if self.linger_ms > 10_000 {
            return Err(format!("mirror {name}: linger_ms must be at most 10000"));
        }
        if !(100..=3_600_000).contains(&self.max_backoff_ms) {
            return Err(format!(
                "mirror {name}: max_backoff_ms must be between 100 and 3600000"
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_url_names_its_kind_and_names_stay_unique() {
        let pg = MirrorConfig::from_url("postgres://postgres@127.0.0.1/test", &[]).unwrap();
        assert_eq!(
            (pg.kind, pg.name.as_str()),
            (MirrorKind::Postgres, "postgres")
        );
        let second =
            MirrorConfig::from_url("postgresql://h/db", std::slice::from_ref(&pg)).unwrap();
        assert_eq!(second.name, "postgres-2");
        let redis = MirrorConfig::from_url("redis://127.0.0.1:6379", &[]).unwrap();
        assert_eq!(
            (redis.kind, redis.prefix.as_str()),
            (MirrorKind::Redis, "wharf:")
        );
        assert!(MirrorConfig::from_url("mysql://x", &[]).is_err());
        pg.validate().unwrap();
        redis.validate().unwrap();
        // A batch is one page of the change log: more could never be read.
        let too_big = MirrorConfig {
            batch: 1001,
            ..pg.clone()
        };
        assert!(too_big.validate().unwrap_err().contains("batch"));
        let largest = MirrorConfig {
            batch: 1000,
            ..pg.clone()
        };
        largest.validate().unwrap();
        let bad = MirrorConfig {
            schema: "Bad-Schema".into(),
            ..pg.clone()
        };
        assert!(bad.validate().unwrap_err().contains("schema"));
        // Glob characters in a prefix would let a snapshot's SCAN MATCH clear other keys.
        for prefix in ["a*", "a?", "[a]", "a\\", "a b", ""] {
            let bad = MirrorConfig {
                prefix: prefix.into(),
                ..redis.clone()
            };
            assert!(bad.validate().unwrap_err().contains("prefix"), "{prefix:?}");
        }
        let tagged = MirrorConfig {
            prefix: "{app}/wharf.1:".into(),
            ..redis.clone()
        };
        tagged.validate().unwrap();
    }

    #[test]
    fn mirrors_that_would_write_the_same_keys_or_tables_overlap() {
        let redis = MirrorConfig::from_url("redis://127.0.0.1:6379", &[]).unwrap();
        let nested = MirrorConfig {
            name: "nested".into(),
            prefix: "wharf:eu:".into(),
            ..redis.clone()
        };
        assert!(redis.overlaps(&nested) && nested.overlaps(&redis));
        let apart = MirrorConfig {
            prefix: "other:".into(),
            ..nested.clone()
        };
        assert!(!redis.overlaps(&apart));
        let elsewhere = MirrorConfig {
            url: "redis://127.0.0.1:6380".into(),
            ..nested
        };
        assert!(!redis.overlaps(&elsewhere));
        let pg = MirrorConfig::from_url("postgres://postgres@127.0.0.1/test", &[]).unwrap();
        let same_schema = MirrorConfig {
            name: "pg2".into(),
            ..pg.clone()
        };
        assert!(pg.overlaps(&same_schema));
        let other_schema = MirrorConfig {
            schema: "wharf_2".into(),
            ..same_schema
        };
        assert!(!pg.overlaps(&other_schema));
    }
}
