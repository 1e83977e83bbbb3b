//! Rate limits per key: a token bucket per class of route (governor's GCRA), refilled at the
//! key's rate per second with a burst of one second's worth, read from the broker's clock (so
//! tests move time by hand).

use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock as GovernorClock, Reference};
use governor::middleware::StateInformationMiddleware;
use governor::nanos::Nanos;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};

use super::scope::Scope;
use crate::clock::Clock;
use crate::storage::KeyLimits;

/// Rate limits per second as the API and the config file spell them (`null` or absent:
/// unlimited); stored as [`KeyLimits`].
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    serde::Serialize,
    serde::Deserialize,
    utoipa::ToSchema,
)]
#[serde(deny_unknown_fields)]
pub struct RateLimits {
    /// Enqueues and outbox messages, per second (1-1000000; `null`: unlimited).
    pub enqueue_per_sec: Option<u32>,
    /// Polls, acks, nacks, extends, per second (1-1000000; `null`: unlimited).
    pub consume_per_sec: Option<u32>,
    /// Every other route, per second (1-1000000; `null`: unlimited).
    pub admin_per_sec: Option<u32>,
}

impl From<RateLimits> for KeyLimits {
    fn from(r: RateLimits) -> KeyLimits {
        KeyLimits {
            enqueue_per_sec: r.enqueue_per_sec,
            consume_per_sec: r.consume_per_sec,
            admin_per_sec: r.admin_per_sec,
        }
    }
}

impl From<KeyLimits> for RateLimits {
    fn from(k: KeyLimits) -> RateLimits {
        RateLimits {
            enqueue_per_sec: k.enqueue_per_sec,
            consume_per_sec: k.consume_per_sec,
            admin_per_sec: k.admin_per_sec,
        }
    }
}

/// Highest rate a key may be given, per class.
pub const MAX_PER_SEC: u32 = 1_000_000;

/// The classes of route a key's limits count separately.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Enqueues and outbox messages.
    Enqueue,
    /// Polls, acks, nacks, extends.
    Consume,
    /// Everything else.
    Admin,
}

impl Class {
    /// The class of a route that needs `scope`.
    pub fn of(scope: Scope) -> Class {
        match scope {
            Scope::JobsEnqueue | Scope::OutboxWrite => Class::Enqueue,
            Scope::JobsConsume => Class::Consume,
            _ => Class::Admin,
        }
    }

    /// The name of its limit in a key's `limits`.
    pub fn field(self) -> &'static str {
        match self {
            Class::Enqueue => "enqueue_per_sec",
            Class::Consume => "consume_per_sec",
            Class::Admin => "admin_per_sec",
        }
    }

    /// Its limit in `limits`.
    pub fn limit(self, limits: &KeyLimits) -> Option<u32> {
        match self {
            Class::Enqueue => limits.enqueue_per_sec,
            Class::Consume => limits.consume_per_sec,
            Class::Admin => limits.admin_per_sec,
        }
    }

    /// Every class.
    pub const ALL: [Class; 3] = [Class::Enqueue, Class::Consume, Class::Admin];
}

/// The broker's clock, as governor reads time (nanoseconds from the epoch, at millisecond
/// resolution).
#[derive(Clone)]
pub struct LimiterClock(pub Clock);

impl GovernorClock for LimiterClock {
    type Instant = Nanos;

    fn now(&self) -> Nanos {
        Nanos::from(self.0.now().saturating_mul(1_000_000))
    }
}

type Bucket = RateLimiter<NotKeyed, InMemoryState, LimiterClock, StateInformationMiddleware>;

/// What a request took from its key's bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Taken {
    /// The limit per second (also the burst).
    pub limit: u32,
    /// Requests left in the burst.
    pub remaining: u32,
}

/// A request over its key's limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimited {
    /// The class whose limit it passed.
    pub class: Class,
    /// The limit per second.
    pub limit: u32,
    /// How long until a request of this class is let through again.
    pub retry_after: Duration,
}

/// A key's buckets, one per class that has a limit.
pub struct Buckets {
    buckets: [Option<(u32, Bucket)>; 3],
    clock: LimiterClock,
}

impl Buckets {
    /// The buckets of `limits`, full.
    pub fn new(limits: &KeyLimits, clock: &Clock) -> Buckets {
        let clock = LimiterClock(clock.clone());
        let bucket = |class: Class| {
            let per_sec = NonZeroU32::new(class.limit(limits)?.min(MAX_PER_SEC))?;
            let bucket = RateLimiter::direct_with_clock(Quota::per_second(per_sec), clock.clone())
                .with_middleware::<StateInformationMiddleware>();
            Some((per_sec.get(), bucket))
        };
        Buckets {
            buckets: Class::ALL.map(bucket),
            clock,
        }
    }

    /// Takes one request of `class`: `None` when the class has no limit.
    pub fn take(&self, class: Class) -> Result<Option<Taken>, RateLimited> {
        let Some((limit, bucket)) = &self.buckets[class as usize] else {
            return Ok(None);
        };
        match bucket.check() {
            Ok(state) => Ok(Some(Taken {
                limit: *limit,
                remaining: state.remaining_burst_capacity(),
            })),
            Err(not_until) => {
                let now = self.clock.now();
                let wait = not_until.earliest_possible().duration_since(now);
                Err(RateLimited {
                    class,
                    limit: *limit,
                    retry_after: Duration::from(wait),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_bucket_holds_one_seconds_worth_and_refills_with_the_clock() {
        let clock = Clock::manual(1_000_000);
        let limits = KeyLimits {
            enqueue_per_sec: Some(4),
            ..KeyLimits::default()
        };
        let buckets = Buckets::new(&limits, &clock);
        let remaining: Vec<u32> = (0..4)
            .map(|_| buckets.take(Class::Enqueue).unwrap().unwrap().remaining)
            .collect();
        assert_eq!(remaining, [3, 2, 1, 0]);
        let refused = buckets.take(Class::Enqueue).unwrap_err();
        assert_eq!(refused.limit, 4);
        assert_eq!(refused.retry_after, Duration::from_millis(250));
        // Other classes are not limited.
        assert_eq!(buckets.take(Class::Consume), Ok(None));
        clock.advance(250);
        assert!(buckets.take(Class::Enqueue).is_ok());
        assert!(buckets.take(Class::Enqueue).is_err());
        clock.advance(1_000);
        assert_eq!(buckets.take(Class::Enqueue).unwrap().unwrap().remaining, 3);
    }
}
