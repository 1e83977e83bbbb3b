//! The one clock every deadline is measured on, so tests can control it.
//!
//! Every deadline a client can observe is read from [`Clock`] and waited for with
//! [`Clock::sleep_until`]: lease expiry, long-poll waits, backoff and delayed jobs (the timer),
//! cron fires, retention and idempotency windows (the sweeper). Tests run on
//! [`Clock::manual`], which moves only when told to and wakes every sleeper when it does, so
//! no test has to sleep in real time to see a deadline pass.
//!
//! What does *not* read it: the storage threads pace fsyncs (`fsync_interval_ms`) and
//! checkpoints (`checkpoint_interval_ms`) on the monotonic clock, metrics time durations with
//! `Instant`, and shutdown bounds its grace period in real time. None of those is a deadline a
//! client sees, and pacing must not jump when the wall clock is stepped.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::watch;

/// Milliseconds since the Unix epoch: the unit of every deadline in wharf.
pub type Millis = u64;

/// The longest a system-clock sleeper sleeps before it looks at the wall clock again, so that
/// a stepped clock delays a deadline by at most this much.
const LONGEST_SLEEP: Duration = Duration::from_secs(60);

/// Wall-clock time for deadlines, or a manual clock that only moves when a test says so.
#[derive(Clone, Debug)]
pub enum Clock {
    /// The system clock.
    System,
    /// A clock that stays where it is put; moving it wakes every [`Clock::sleep_until`].
    Manual(Arc<watch::Sender<Millis>>),
}

impl Clock {
    /// A manual clock starting at `start`.
    pub fn manual(start: Millis) -> Clock {
        Clock::Manual(Arc::new(watch::Sender::new(start)))
    }

    /// Now, in milliseconds since the epoch.
    pub fn now(&self) -> Millis {
        match self {
            Clock::System => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as Millis),
            Clock::Manual(now) => *now.borrow(),
        }
    }

    /// Moves a manual clock forward (waking the sleepers whose time has come); a no-op on the
    /// system clock.
    pub fn advance(&self, ms: Millis) {
        if let Clock::Manual(now) = self {
            now.send_modify(|now| *now = now.saturating_add(ms));
        }
    }

    /// Resolves once the clock reads `at` or later; never for `None`.
    pub async fn sleep_until(&self, at: Option<Millis>) {
        let Some(at) = at else {
            return std::future::pending().await;
        };
        match self {
            Clock::System => loop {
                let now = self.now();
                if now >= at {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(at - now).min(LONGEST_SLEEP)).await;
            },
            Clock::Manual(now) => {
                let mut moves = now.subscribe();
                // The sender lives as long as `self`, so this cannot fail while we wait.
                let _ = moves.wait_for(|&now| now >= at).await;
            }
        }
    }
}

/// Renders epoch milliseconds as RFC 3339 (UTC, millisecond precision).
pub fn rfc3339(ms: Millis) -> String {
    match jiff::Timestamp::from_millisecond(ms as i64) {
        Ok(ts) => format!("{ts:.3}"),
        Err(_) => String::from("9999-12-31T23:59:59.999Z"),
    }
}

/// Parses an RFC 3339 timestamp into epoch milliseconds; `None` if it is not RFC 3339 or is
/// before the epoch.
pub fn parse_rfc3339(text: &str) -> Option<Millis> {
    let ts: jiff::Timestamp = text.parse().ok()?;
    u64::try_from(ts.as_millisecond()).ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn manual_clock_moves_only_when_advanced() {
        let clock = Clock::manual(1_000);
        assert_eq!(clock.now(), 1_000);
        clock.advance(250);
        assert_eq!(clock.now(), 1_250);
    }

    #[tokio::test]
    async fn a_manual_sleeper_wakes_when_its_time_comes_and_not_before() {
        let clock = Clock::manual(1_000);
        let sleeper = tokio::spawn({
            let clock = clock.clone();
            async move { clock.sleep_until(Some(1_500)).await }
        });
        clock.advance(499);
        // A sleeper that had woken early would finish before this later one.
        let later = clock.clone();
        let mut later = tokio::spawn(async move { later.sleep_until(Some(1_499)).await });
        (&mut later).await.unwrap();
        assert!(!sleeper.is_finished(), "woke at 1499 for 1500");
        clock.advance(1);
        sleeper.await.unwrap();
        // A deadline already past resolves at once.
        clock.sleep_until(Some(0)).await;
    }

    #[test]
    fn rfc3339_round_trips_milliseconds() {
        let text = rfc3339(1_700_000_000_123);
        assert_eq!(text, "2023-11-14T22:13:20.123Z");
        assert_eq!(parse_rfc3339(&text), Some(1_700_000_000_123));
        assert_eq!(
            parse_rfc3339("2023-11-14T23:13:20.123+01:00"),
            Some(1_700_000_000_123)
        );
        assert_eq!(parse_rfc3339("tomorrow"), None);
        assert_eq!(parse_rfc3339("1969-12-31T23:59:59Z"), None);
    }
}
