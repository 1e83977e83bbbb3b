//! Scopes: one per kind of action. Every route declares the one it needs (`http::access`).

/// A kind of action a key may be allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Enqueue jobs (and the follow-up jobs of an ack).
    JobsEnqueue,
    /// Poll, ack, nack, extend.
    JobsConsume,
    /// Read queues and jobs.
    JobsRead,
    /// Change queues: settings, pause, resume, purge, replay, cancel a job.
    QueuesAdmin,
    /// Create, change, delete, trigger schedules.
    SchedulesAdmin,
    /// Read the change log and keep cursors in it.
    EventsRead,
    /// Write outbox messages (and the messages an enqueue or ack emits).
    OutboxWrite,
    /// Read the mirrors' status.
    MirrorsRead,
    /// Create, list and revoke keys.
    KeysAdmin,
    /// Read `/metrics`.
    MetricsRead,
}

impl Scope {
    /// Every scope, in the order of the table in `docs/security.md`.
    pub const ALL: [Scope; 10] = [
        Scope::JobsEnqueue,
        Scope::JobsConsume,
        Scope::JobsRead,
        Scope::QueuesAdmin,
        Scope::SchedulesAdmin,
        Scope::EventsRead,
        Scope::OutboxWrite,
        Scope::MirrorsRead,
        Scope::KeysAdmin,
        Scope::MetricsRead,
    ];

    /// Its name in keys and docs.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::JobsEnqueue => "jobs:enqueue",
            Scope::JobsConsume => "jobs:consume",
            Scope::JobsRead => "jobs:read",
            Scope::QueuesAdmin => "queues:admin",
            Scope::SchedulesAdmin => "schedules:admin",
            Scope::EventsRead => "events:read",
            Scope::OutboxWrite => "outbox:write",
            Scope::MirrorsRead => "mirrors:read",
            Scope::KeysAdmin => "keys:admin",
            Scope::MetricsRead => "metrics:read",
        }
    }

    /// The scope of that name.
    pub fn parse(name: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|s| s.as_str() == name)
    }

    fn bit(self) -> u16 {
        1 << self as u16
    }
}

/// A set of scopes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Scopes(u16);

impl Scopes {
    /// Every scope (`*`).
    pub const ALL: Scopes = Scopes((1 << Scope::ALL.len()) - 1);

    /// Parses a key's scope names (`*` is every scope); the unknown name is the error.
    pub fn parse<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Scopes, &'a str> {
        names.into_iter().try_fold(Scopes::default(), |set, name| {
            if name == "*" {
                return Ok(Scopes::ALL);
            }
            Scope::parse(name)
                .map(|s| Scopes(set.0 | s.bit()))
                .ok_or(name)
        })
    }

    /// Whether `scope` is in the set.
    pub fn has(self, scope: Scope) -> bool {
        self.0 & scope.bit() != 0
    }

    /// Whether every scope of `other` is in this set.
    pub fn covers(self, other: Scopes) -> bool {
        other.0 & !self.0 == 0
    }

    /// The names, `*` for every scope.
    pub fn names(self) -> Vec<&'static str> {
        if self == Scopes::ALL {
            return vec!["*"];
        }
        Scope::ALL
            .into_iter()
            .filter(|s| self.has(*s))
            .map(Scope::as_str)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_ones_are_named() {
        for scope in Scope::ALL {
            assert_eq!(Scope::parse(scope.as_str()), Some(scope));
        }
        let set = Scopes::parse(["jobs:read", "keys:admin"]).unwrap();
        assert!(set.has(Scope::JobsRead) && set.has(Scope::KeysAdmin));
        assert!(!set.has(Scope::JobsEnqueue));
        assert_eq!(set.names(), ["jobs:read", "keys:admin"]);
        assert_eq!(
            Scopes::parse(["jobs:read", "jobs:delete"]),
            Err("jobs:delete")
        );
        assert_eq!(Scopes::parse(["*"]).unwrap().names(), ["*"]);
        assert!(Scopes::ALL.covers(set) && !set.covers(Scopes::ALL));
    }
}
