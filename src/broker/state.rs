//! In-memory dispatch state: what a job needs to be dispatched, nothing more.
//!
//! Payloads, headers, errors and results stay on disk. A job that is scheduled, ready, leased
//! or dead has a [`Slot`] (72 bytes) and sits in exactly the indexes of its phase;
//! succeeded and cancelled jobs are only counted. All index upkeep goes through
//! [`State::place`] and [`State::unplace`], so the invariant "a slot is in exactly the indexes of
//! its phase" holds by construction.

use std::cmp::Reverse;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use tokio::sync::Notify;

use super::config::QueueConfig;
use super::rng::Rng;
use crate::clock::Millis;
use crate::job::JobState;

/// Where a job in memory is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Waiting for `run_at`.
    Scheduled { run_at: Millis },
    /// In the ready index.
    Ready,
    /// Delivered; the lease token is (`attempts`, `nonce`).
    Leased { nonce: u64, deadline: Millis },
    /// Dead, waiting for replay or retention.
    Dead,
}

impl Phase {
    pub fn state(self) -> JobState {
        match self {
            Phase::Scheduled { .. } => JobState::Scheduled,
            Phase::Ready => JobState::Ready,
            Phase::Leased { .. } => JobState::Leased,
            Phase::Dead => JobState::Dead,
        }
    }
}

/// What dispatch needs to know about a live job.
#[derive(Debug, Clone)]
pub struct Slot {
    pub queue: Arc<str>,
    pub priority: u8,
    pub phase: Phase,
    pub attempts: u32,
    pub max_attempts: u32,
    pub lease_ms: Option<u64>,
}

/// Throughput counters of one queue (exported at `/metrics`).
#[derive(Debug, Default, Clone, Copy)]
pub struct Counters {
    pub enqueued: u64,
    pub delivered: u64,
    pub acked: u64,
    pub nacked: u64,
    pub expired: u64,
    pub dead_lettered: u64,
}

/// One queue's defaults, indexes and counts.
#[derive(Debug)]
pub struct QueueState {
    pub config: QueueConfig,
    /// Dispatch order: priority descending, then id (enqueue sequence) ascending.
    pub ready: BTreeSet<(Reverse<u8>, u64)>,
    /// Ids per state, indexed by [`JobState::index`]; only the live states (scheduled, ready,
    /// leased, dead) are filled, finished jobs are just counted.
    pub members: [BTreeSet<u64>; 6],
    pub succeeded: u64,
    pub cancelled: u64,
    pub counters: Counters,
}

impl QueueState {
    pub fn new(config: QueueConfig) -> QueueState {
        QueueState {
            config,
            ready: BTreeSet::new(),
            members: Default::default(),
            succeeded: 0,
            cancelled: 0,
            counters: Counters::default(),
        }
    }

    /// Jobs per state, in [`JobState::ALL`] order.
    pub fn counts(&self) -> [u64; 6] {
        let live = |s: JobState| self.members[s.index()].len() as u64;
        [
            live(JobState::Scheduled),
            live(JobState::Ready),
            live(JobState::Leased),
            self.succeeded,
            live(JobState::Dead),
            self.cancelled,
        ]
    }
}

/// Everything the broker keeps in memory, behind one mutex that is never held across I/O.
#[derive(Debug)]
pub struct State {
    pub queues: HashMap<Arc<str>, QueueState>,
    pub jobs: HashMap<u64, Slot>,
    /// Scheduled jobs by due time.
    pub delayed: BTreeSet<(Millis, u64)>,
    /// Leased jobs by lease deadline.
    pub leases: BTreeSet<(Millis, u64)>,
    /// Long-poll waiters per queue name (also for queues that do not exist yet).
    pub waiters: HashMap<Arc<str>, Arc<Notify>>,
    pub rng: Rng,
    /// Cron schedules and their due index.
    pub schedules: super::schedule::Schedules,
}

impl State {
    pub fn new(rng: Rng) -> State {
        State {
            queues: HashMap::new(),
            jobs: HashMap::new(),
            delayed: BTreeSet::new(),
            leases: BTreeSet::new(),
            waiters: HashMap::new(),
            rng,
            schedules: Default::default(),
        }
    }

    /// The queue, created with `defaults` if new; the flag says whether it was created.
    pub fn queue_or_create(&mut self, name: &str, defaults: QueueConfig) -> (Arc<str>, bool) {
        if let Some((key, _)) = self.queues.get_key_value(name) {
            return (key.clone(), false);
        }
        let key: Arc<str> = Arc::from(name);
        self.queues.insert(key.clone(), QueueState::new(defaults));
        (key, true)
    }

    /// Adds a live job to the indexes of its phase. A scheduled job already due goes straight
    /// to ready. Returns whether it became ready (waiters should be woken).
    pub fn place(&mut self, id: u64, mut slot: Slot, now: Millis) -> bool {
        if let Phase::Scheduled { run_at } = slot.phase
            && run_at <= now
        {
            slot.phase = Phase::Ready;
        }
        // Callers create the queue first (`queue_or_create`); a slot never outlives its queue.
        if let Some(queue) = self.queues.get_mut(&slot.queue) {
            queue.members[slot.phase.state().index()].insert(id);
            if slot.phase == Phase::Ready {
                queue.ready.insert((Reverse(slot.priority), id));
            }
        }
        match slot.phase {
            Phase::Scheduled { run_at } => {
                self.delayed.insert((run_at, id));
            }
            Phase::Leased { deadline, .. } => {
                self.leases.insert((deadline, id));
            }
            Phase::Ready | Phase::Dead => {}
        }
        let ready = slot.phase == Phase::Ready;
        self.jobs.insert(id, slot);
        ready
    }

    /// Removes a live job from memory and every index, returning its slot.
    pub fn unplace(&mut self, id: u64) -> Option<Slot> {
        let slot = self.jobs.remove(&id)?;
        if let Some(queue) = self.queues.get_mut(&slot.queue) {
            queue.members[slot.phase.state().index()].remove(&id);
            if slot.phase == Phase::Ready {
                queue.ready.remove(&(Reverse(slot.priority), id));
            }
        }
        match slot.phase {
            Phase::Scheduled { run_at } => {
                self.delayed.remove(&(run_at, id));
            }
            Phase::Leased { deadline, .. } => {
                self.leases.remove(&(deadline, id));
            }
            Phase::Ready | Phase::Dead => {}
        }
        Some(slot)
    }

    /// Counts a job that left memory as succeeded or cancelled.
    pub fn count_finished(&mut self, queue: &str, state: JobState) {
        if let Some(q) = self.queues.get_mut(queue) {
            match state {
                JobState::Succeeded => q.succeeded += 1,
                JobState::Cancelled => q.cancelled += 1,
                _ => {}
            }
        }
    }

    /// When a job of `queue` that reached `state` at `now` is purged: succeeded and cancelled
    /// jobs after the queue's `retention_ms`, dead ones after its `dead_retention_ms`.
    pub fn retention_end(&self, queue: &str, state: JobState, now: Millis) -> Millis {
        let config = self.queues.get(queue).map(|q| q.config).unwrap_or_default();
        let keep = if state == JobState::Dead {
            config.dead_retention_ms
        } else {
            config.retention_ms
        };
        now.saturating_add(keep)
    }

    /// Uncounts a succeeded or cancelled job that retention purged.
    pub fn uncount_finished(&mut self, queue: &str, state: JobState) {
        if let Some(q) = self.queues.get_mut(queue) {
            match state {
                JobState::Succeeded => q.succeeded = q.succeeded.saturating_sub(1),
                JobState::Cancelled => q.cancelled = q.cancelled.saturating_sub(1),
                _ => {}
            }
        }
    }

    /// Wakes long-polls waiting on `queue`.
    pub fn wake(&self, queue: &str) {
        if let Some(notify) = self.waiters.get(queue) {
            notify.notify_waiters();
        }
    }

    /// The earliest timer deadline: a scheduled job due, a lease expiring, a schedule firing.
    pub fn next_deadline(&self) -> Option<Millis> {
        let delayed = self.delayed.first().map(|&(at, _)| at);
        let lease = self.leases.first().map(|&(at, _)| at);
        delayed
            .into_iter()
            .chain(lease)
            .chain(self.schedules.next_due())
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(queue: &Arc<str>, priority: u8, phase: Phase) -> Slot {
        Slot {
            queue: queue.clone(),
            priority,
            phase,
            attempts: 0,
            max_attempts: 5,
            lease_ms: None,
        }
    }

    #[test]
    fn ready_index_orders_by_priority_then_id() {
        let mut state = State::new(Rng::new(1));
        let (q, _) = state.queue_or_create("q", QueueConfig::default());
        for (id, prio) in [(1, 10), (2, 200), (3, 10), (4, 200)] {
            assert!(state.place(id, slot(&q, prio, Phase::Ready), 0));
        }
        let order: Vec<u64> = state.queues[&q].ready.iter().map(|&(_, id)| id).collect();
        assert_eq!(order, [2, 4, 1, 3]);
    }

    #[test]
    fn place_and_unplace_keep_every_index_consistent() {
        let mut state = State::new(Rng::new(1));
        let (q, _) = state.queue_or_create("q", QueueConfig::default());
        assert!(!state.place(1, slot(&q, 1, Phase::Scheduled { run_at: 50 }), 10));
        assert!(
            state.place(2, slot(&q, 1, Phase::Scheduled { run_at: 5 }), 10),
            "due jobs go straight to ready"
        );
        state.place(
            3,
            slot(
                &q,
                1,
                Phase::Leased {
                    nonce: 9,
                    deadline: 40,
                },
            ),
            10,
        );
        state.place(4, slot(&q, 1, Phase::Dead), 10);
        assert_eq!(state.queues[&q].counts(), [1, 1, 1, 0, 1, 0]);
        assert_eq!(state.next_deadline(), Some(40));
        for id in 1..=4 {
            assert!(state.unplace(id).is_some());
        }
        assert_eq!(state.queues[&q].counts(), [0; 6]);
        assert!(
            state.delayed.is_empty()
                && state.leases.is_empty()
                && state.queues[&q].ready.is_empty()
        );
        assert_eq!(state.next_deadline(), None);
        assert!(state.unplace(1).is_none());
    }
}
