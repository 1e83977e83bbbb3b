//! The vocabulary shared by every layer: job ids, priorities, states and lease tokens.

use std::fmt;
use std::str::FromStr;

/// A job's identity: a u64 sequence allocated at enqueue, strictly increasing and never reused.
///
/// It doubles as the FIFO tie-breaker within a priority. Publicly it is rendered as a decimal
/// string, so clients never depend on its width.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct JobId(pub u64);

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A string that is not a job id in its canonical form (decimal digits, no sign, no leading
/// zero), so that each job has exactly one spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidJobId;

impl FromStr for JobId {
    type Err = InvalidJobId;
    fn from_str(s: &str) -> Result<Self, InvalidJobId> {
        let canonical = !s.is_empty()
            && s.bytes().all(|b| b.is_ascii_digit())
            && (s == "0" || !s.starts_with('0'));
        if !canonical {
            return Err(InvalidJobId);
        }
        s.parse().map(JobId).map_err(|_| InvalidJobId)
    }
}

/// Higher runs first. Named levels map onto the 0–255 range (see `docs/api.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Priority(pub u8);

impl Priority {
    /// `"low"`.
    pub const LOW: Priority = Priority(64);
    /// `"normal"`, the default.
    pub const NORMAL: Priority = Priority(128);
    /// `"high"`.
    pub const HIGH: Priority = Priority(192);
    /// `"critical"`.
    pub const CRITICAL: Priority = Priority(255);

    /// Every named level with its number.
    pub const NAMES: [(&'static str, Priority); 4] = [
        ("low", Self::LOW),
        ("normal", Self::NORMAL),
        ("high", Self::HIGH),
        ("critical", Self::CRITICAL),
    ];

    /// Maps a named level to its number.
    pub fn from_name(name: &str) -> Option<Priority> {
        Self::NAMES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, priority)| *priority)
    }
}

impl Default for Priority {
    fn default() -> Self {
        Self::NORMAL
    }
}

/// The public life-cycle state of a job (see the diagram in `docs/api.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum JobState {
    /// Waiting for its `run_at` (a delay or a retry backoff).
    Scheduled,
    /// Waiting to be polled.
    Ready,
    /// Delivered to a consumer that holds a lease.
    Leased,
    /// Acked.
    Succeeded,
    /// Out of attempts, or nacked with `dead: true`; can be replayed.
    Dead,
    /// Cancelled by a client before it succeeded.
    Cancelled,
}

impl JobState {
    /// Every state, in life-cycle order.
    pub const ALL: [JobState; 6] = [
        JobState::Scheduled,
        JobState::Ready,
        JobState::Leased,
        JobState::Succeeded,
        JobState::Dead,
        JobState::Cancelled,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Scheduled => "scheduled",
            JobState::Ready => "ready",
            JobState::Leased => "leased",
            JobState::Succeeded => "succeeded",
            JobState::Dead => "dead",
            JobState::Cancelled => "cancelled",
        }
    }

    /// Parses a wire name.
    pub fn parse(name: &str) -> Option<JobState> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// Position in [`JobState::ALL`], for per-state counters.
    pub fn index(self) -> usize {
        self as usize
    }
}

/// A lease token: which delivery of which job it fences.
///
/// `nonce` (32 random bits drawn at every delivery, written as 16 hex digits) is what tells
/// deliveries apart: a token from an earlier delivery, from another job, or a typo matches only
/// by a 1-in-4-billion accident, even after a replay restarts `attempt` at 1. `attempt` makes
/// the token self-describing. Nonces are 32 bits so that a job's in-memory slot stays 32 bytes
/// (see `broker::state`); they fence deliveries, they are not secrets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LeaseToken {
    /// The delivery this token belongs to (1-based).
    pub attempt: u32,
    /// Random bits drawn at delivery (wharf draws 32; a wider value matches no lease).
    pub nonce: u64,
}

impl fmt::Display for LeaseToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:x}.{:016x}", self.attempt, self.nonce)
    }
}

impl FromStr for LeaseToken {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        let (attempt, nonce) = s.split_once('.').ok_or(())?;
        if nonce.len() != 16 {
            return Err(());
        }
        Ok(LeaseToken {
            attempt: u32::from_str_radix(attempt, 16).map_err(|_| ())?,
            nonce: u64::from_str_radix(nonce, 16).map_err(|_| ())?,
        })
    }
}

/// Checks a queue name against `[A-Za-z0-9._-]{1,128}`.
pub fn valid_queue_name(name: &str) -> bool {
    // `.` and `..` would read as relative path segments in every URL that names the queue.
    (1..=128).contains(&name.len())
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_token_round_trips_and_rejects_garbage() {
        let token = LeaseToken {
            attempt: 7,
            nonce: 0xdead_beef,
        };
        assert_eq!(token.to_string().parse::<LeaseToken>(), Ok(token));
        for bad in [
            "",
            "7",
            "7.",
            "x.0000000000000001",
            "7.1",
            "7.00000000000000001",
        ] {
            assert!(bad.parse::<LeaseToken>().is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn job_ids_have_one_spelling() {
        assert_eq!("42".parse::<JobId>(), Ok(JobId(42)));
        assert_eq!("0".parse::<JobId>(), Ok(JobId(0)));
        for bad in [
            "",
            "+5",
            "-5",
            "0005",
            " 5",
            "5 ",
            "abc",
            "18446744073709551616",
        ] {
            assert_eq!(bad.parse::<JobId>(), Err(InvalidJobId), "{bad:?}");
        }
    }

    #[test]
    fn queue_names_follow_the_documented_alphabet() {
        assert!(valid_queue_name("emails.high_prio-1"));
        assert!(valid_queue_name(&"a".repeat(128)));
        for bad in ["", "a b", "a/b", "é", "a\0", &"a".repeat(129)] {
            assert!(!valid_queue_name(bad), "{bad:?} accepted");
        }
    }

    #[test]
    fn state_names_round_trip() {
        for state in JobState::ALL {
            assert_eq!(JobState::parse(state.as_str()), Some(state));
            assert_eq!(JobState::ALL[state.index()], state);
        }
        assert_eq!(JobState::parse("READY"), None);
    }
}
