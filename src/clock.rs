//! The one place time comes from, so tests can control it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch: the unit of every deadline in wharf.
pub type Millis = u64;

/// Wall-clock time for deadlines, or a manual clock that only moves when a test says so.
#[derive(Clone, Debug)]
pub enum Clock {
    /// The system clock.
    System,
    /// A clock that stays where it is put.
    Manual(Arc<AtomicU64>),
}

impl Clock {
    /// A manual clock starting at `start`.
    pub fn manual(start: Millis) -> Clock {
        Clock::Manual(Arc::new(AtomicU64::new(start)))
    }

    /// Now, in milliseconds since the epoch.
    pub fn now(&self) -> Millis {
        match self {
            Clock::System => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as Millis),
            Clock::Manual(now) => now.load(Ordering::SeqCst),
        }
    }

    /// Moves a manual clock forward; a no-op on the system clock.
    pub fn advance(&self, ms: Millis) {
        if let Clock::Manual(now) = self {
            now.fetch_add(ms, Ordering::SeqCst);
        }
    }

    /// Whether deadlines follow real time (the timer may sleep until them).
    pub fn is_system(&self) -> bool {
        matches!(self, Clock::System)
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
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_advanced() {
        let clock = Clock::manual(1_000);
        assert_eq!(clock.now(), 1_000);
        clock.advance(250);
        assert_eq!(clock.now(), 1_250);
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
