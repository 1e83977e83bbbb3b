//! Telling the retention sweeper about expiry entries as soon as they are committed.
//!
//! The writer thread hints after every commit that indexes an expiry (an ack, a cancel, a job
//! going dead, an enqueue with an idempotency key), so a hint never depends on the request that
//! caused it still waiting for its reply (a client may disconnect before its fsync). The
//! sweeper says what it sleeps until; only an earlier entry wakes it, so a busy broker does not
//! wake it once per commit.

use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::Notify;
use tokio::sync::futures::Notified;

/// The sweeper's side of the hand-over: what it sleeps until, and hints newer than its look.
#[derive(Debug)]
pub struct ExpiryWatch {
    /// The earliest entry committed since the sweeper last took the hints (`u64::MAX`: none).
    hint: AtomicU64,
    /// What the sweeper sleeps until (`u64::MAX`: no entry). 0 until its first look, which
    /// reads the index anyway.
    target: AtomicU64,
    wake: Notify,
}

impl Default for ExpiryWatch {
    fn default() -> Self {
        ExpiryWatch {
            hint: AtomicU64::new(u64::MAX),
            target: AtomicU64::new(0),
            wake: Notify::new(),
        }
    }
}

impl ExpiryWatch {
    /// The writer: a commit indexed an entry at `at`.
    pub fn committed(&self, at: u64) {
        self.hint.fetch_min(at, Ordering::SeqCst);
        if at < self.target.load(Ordering::SeqCst) {
            self.wake.notify_one();
        }
    }

    /// The sweeper, before it reads the index: forgets the hints so far (the read sees their
    /// entries, which were committed before they were given).
    pub fn take_hints(&self) {
        self.hint.store(u64::MAX, Ordering::SeqCst);
    }

    /// The sweeper, after the read: it will sleep until `at`. Returns `false` if an earlier
    /// entry was committed meanwhile, whose writer may have compared with the old target: then
    /// look again rather than sleep past it.
    pub fn sleep_until(&self, at: u64) -> bool {
        self.target.store(at, Ordering::SeqCst);
        self.hint.load(Ordering::SeqCst) >= at
    }

    /// A wake-up for an earlier entry (enable it before [`ExpiryWatch::take_hints`]).
    pub fn notified(&self) -> Notified<'_> {
        self.wake.notified()
    }

    /// Wakes the sweeper whatever it sleeps until (shutdown).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Whether nothing known is due at `now`: the sweeper's target and every hint are later.
    pub fn idle_at(&self, now: u64) -> bool {
        self.target.load(Ordering::SeqCst) > now && self.hint.load(Ordering::SeqCst) > now
    }
}
