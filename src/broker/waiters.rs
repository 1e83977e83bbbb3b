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

    /// The `Notify` of `queue`'s waiters (created on first use), held until the guard drops.
    pub(super) fn waiter<'a>(&'a self, queue: &'a str) -> Waiter<'a> {
        let mut state = self.state.lock();
        let notify = match state.waiters.get(queue) {
            Some(notify) => notify.clone(),
            None => {
                let notify = Arc::new(Notify::new());
                state.waiters.insert(Arc::from(queue), notify.clone());
                notify
            }
        };
        Waiter {
            broker: self,
            queue,
            notify,
        }
    }

    /// Counts a poll as waiting until the guard drops.
    pub(super) fn waiting(&self) -> Waiting<'_> {
        self.polls.send_modify(|stats| {
            stats.waiting += 1;
            stats.waits += 1;
        });
        Waiting(self)
    }
}

/// A poll's hold on its queue's `Notify`. Dropping it (the poll returned, or its request was
/// dropped) forgets the entry once nobody waits on it, so polling many names does not grow
/// memory.
pub(super) struct Waiter<'a> {
    broker: &'a Broker,
    queue: &'a str,
    pub notify: Arc<Notify>,
}

impl Drop for Waiter<'_> {
    fn drop(&mut self) {
        let mut state = self.broker.state.lock();
        // This hold and the map's own: nobody else waits.
        if state
            .waiters
            .get(self.queue)
            .is_some_and(|n| Arc::strong_count(n) <= 2)
        {
            state.waiters.remove(self.queue);
        }
    }
}

/// A poll counted as waiting; uncounted when dropped, also when its request is.
pub(super) struct Waiting<'a>(&'a Broker);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.polls.send_modify(|stats| {
            stats.waiting = stats.waiting.saturating_sub(1);
        });
    }
}
