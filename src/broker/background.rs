//! What the background tasks (the timer and the retention sweeper) report about themselves,
//! so that tests and tools driving a manual clock can wait for them instead of sleeping.

use std::pin::pin;
use std::sync::atomic::Ordering;

use tokio::sync::watch;

use super::Broker;

/// A background task's state, published every time it goes to sleep or wakes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Parked {
    /// Whether it is asleep, waiting for its next deadline or a wake-up.
    pub asleep: bool,
    /// How many times it has looked for due work (timer: passes over the deadlines; sweeper:
    /// looks at the expiry index). An idle task does not look.
    pub looks: u64,
}

impl Broker {
    /// The timer's state.
    pub fn timer_status(&self) -> watch::Receiver<Parked> {
        self.timer_status.subscribe()
    }

    /// The retention sweeper's state.
    pub fn sweeper_status(&self) -> watch::Receiver<Parked> {
        self.sweeper_status.subscribe()
    }

    /// Waits until the timer and the sweeper have handled every deadline up to now and gone
    /// back to sleep. For tests and tools that move a manual clock: advance it, then settle,
    /// then look. Needs both tasks running ([`crate::server::Server`] starts them); returns
    /// once the broker is shutting down (they stop then).
    pub async fn settle(&self) {
        let mut timer = self.timer_status.subscribe();
        let mut sweeper = self.sweeper_status.subscribe();
        loop {
            let mut stop = pin!(self.shutdown_signal.notified());
            stop.as_mut().enable();
            if self.is_shutting_down() {
                return;
            }
            let now = self.now();
            // Each target is lowered (and its task woken) as soon as an earlier deadline
            // appears, so "asleep with a target in the future" means nothing is due.
            let timer_idle =
                timer.borrow_and_update().asleep && self.timer_target.load(Ordering::SeqCst) > now;
            let sweeper_idle =
                sweeper.borrow_and_update().asleep && self.store.expiry_watch().idle_at(now);
            // A task publishes that it woke before it touches its target: one that woke between
            // the reads above shows as a change, and they may disagree.
            let moved =
                timer.has_changed().unwrap_or(true) || sweeper.has_changed().unwrap_or(true);
            if timer_idle && sweeper_idle && !moved {
                return;
            }
            tokio::select! {
                _ = timer.changed() => {}
                _ = sweeper.changed() => {}
                () = &mut stop => {}
            }
        }
    }
}

/// Publishes that a task goes to sleep (`asleep`) or has woken.
pub(super) fn set_asleep(status: &watch::Sender<Parked>, asleep: bool) {
    status.send_if_modified(|parked| std::mem::replace(&mut parked.asleep, asleep) != asleep);
}

/// Counts one look for due work.
pub(super) fn count_look(status: &watch::Sender<Parked>) {
    status.send_modify(|parked| parked.looks += 1);
}
