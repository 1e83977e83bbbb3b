//! Long-poll waiters: one `Notify` per polled queue name, and counts of the polls waiting.

use std::sync::Arc;

use tokio::sync::{Notify, watch};

use super::Broker;

/// How many polls wait for a job, and how often a poll has started to wait.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PollStats {
    /// Polls waiting now (found nothing to deliver and wait for a job or their deadline).
    pub waiting: usize,
    /// Every time a poll started to wait, counted: a poll woken by a job it may not take (the
    /// queue is paused, another poll was faster) counts again when it goes back to waiting.
    pub waits: u64,
}

impl Broker {
    /// The long-poll counts (`/metrics` shows `waiting`; tests wait for them).
    pub fn poll_stats(&self) -> watch::Receiver<PollStats> {
        self.polls.subscribe()
    }

    /// The `Notify` of `queue`'s waiters, created on first use.
    pub(super) fn waiter(&self, queue: &str) -> Arc<Notify> {
        let mut state = self.state.lock();
        if let Some(notify) = state.waiters.get(queue) {
            return notify.clone();
        }
        let notify = Arc::new(Notify::new());
        state.waiters.insert(Arc::from(queue), notify.clone());
        notify
    }

    /// Forgets a queue's waiter entry once nobody waits on it, so polling many names does not
    /// grow memory.
    pub(super) fn release_waiter(&self, queue: &str, notify: Arc<Notify>) {
        let mut state = self.state.lock();
        drop(notify);
        if state
            .waiters
            .get(queue)
            .is_some_and(|n| Arc::strong_count(n) == 1)
        {
            state.waiters.remove(queue);
        }
    }

    /// Counts a poll that starts (`true`) or stops (`false`) waiting.
    pub(super) fn count_waiting(&self, waiting: bool) {
        self.polls.send_modify(|stats| {
            if waiting {
                stats.waiting += 1;
                stats.waits += 1;
            } else {
                stats.waiting = stats.waiting.saturating_sub(1);
            }
        });
    }
}
