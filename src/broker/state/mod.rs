//! In-memory dispatch state: what a job needs to be dispatched, nothing more.
//!
//! Payloads, headers, errors and results stay on disk. A job that is scheduled, ready, leased
//! or dead has a [`Slot`] (32 bytes) and sits in exactly the indexes of its phase;
//! succeeded and cancelled jobs are only counted. All index upkeep goes through
//! [`State::place`] and [`State::unplace`], so the invariant "a slot is in exactly the indexes of
//! its phase" holds by construction.
//!
//! # Memory per job
//!
//! Every live job has a slot in [`State::jobs`], and hashbrown at 1M entries has 2^21 buckets,
//! so each byte of `Slot` costs about 2 MB at 1M jobs. Its fields are therefore as narrow as
//! their values allow:
//!
//! - `queue` is a [`QueueId`] (4 bytes), an index into the interned queues, instead of an
//!   `Arc<str>` (16 bytes). Ids are not persisted. A deleted queue's id is reused by the next
//!   queue created, which is safe because a queue is deleted only once no slot names it.
//! - [`Phase`] is 16 bytes: the lease nonce is 32 bits, which packs next to the tag, so the
//!   largest variant is the nonce plus one `Millis`. The token format is unchanged (the nonce is
//!   still written as 16 hex digits); a token whose nonce does not fit in 32 bits matches no
//!   lease.
//! - `max_attempts` is a `u16` (inputs are at most `MAX_ATTEMPTS` = 1000).
//! - `lease_ms` is an `Option<NonZeroU32>` (4 bytes thanks to the niche; inputs are 1 to
//!   `MAX_LEASE_MS` = 43,200,000).
//! - `attempts` is a `u16`: a job is dead once its attempts reach `max_attempts`, itself a
//!   `u16`. That makes room for `group`, a 24-bit group id ([`groups`]).
//!
//! Ready jobs are indexed only by their packed ready key (see [`pack_ready`]), not also in
//! [`QueueState::members`].

mod groups;
mod queue;
mod schedules;
mod slot;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use tokio::sync::Notify;

pub use groups::{SlotGroup, TooManyGroups};
pub use queue::{Counters, QueueState};
pub use schedules::{ScheduleSlot, Schedules};
pub use slot::{Phase, QueueId, Slot, slot_attempts, slot_lease_ms, slot_max_attempts};

use super::config::QueueConfig;
use super::error::BrokerError;
use crate::clock::Millis;
use crate::job::JobState;
use crate::random::Rng;

/// Everything the broker keeps in memory, behind one mutex that is never held across I/O.
#[derive(Debug)]
pub struct State {
    /// Every queue, indexed by [`QueueId`]; a deleted one stays as an empty entry until a new
    /// queue takes its id.
    queues: Vec<QueueState>,
    /// Queue ids by name (deleted queues have none).
    queue_ids: HashMap<Arc<str>, QueueId>,
    /// Ids of deleted queues, for the next queues created.
    free_queue_ids: Vec<QueueId>,
    pub jobs: HashMap<u64, Slot>,
    /// Scheduled jobs by due time.
    pub delayed: BTreeSet<(Millis, u64)>,
    /// Leased jobs by lease deadline.
    pub leases: BTreeSet<(Millis, u64)>,
    /// Long-poll waiters per queue name (also for queues that do not exist yet).
    pub waiters: HashMap<Arc<str>, Arc<Notify>>,
    pub rng: Rng,
    /// Cron schedules and their due index.
    pub schedules: Schedules,
}

impl State {
    /// Uncounts jobs prepared for an insert that will not be placed (its write failed, or
    /// the request that prepared them refused itself).
    pub fn release_pending(&mut self, groups: &[Vec<(u64, Slot)>]) {
        for slots in groups {
            if let Some(q) = slots
                .first()
                .and_then(|(_, s)| self.queue_by_id_mut(s.queue))
            {
                q.pending = q.pending.saturating_sub(slots.len() as u64);
                for (_, slot) in slots {
                    q.leave_group(slot.group);
                }
            }
        }
    }

    pub fn new(rng: Rng) -> State {
        State {
            queues: Vec::new(),
            queue_ids: HashMap::new(),
            free_queue_ids: Vec::new(),
            jobs: HashMap::new(),
            delayed: BTreeSet::new(),
            leases: BTreeSet::new(),
            waiters: HashMap::new(),
            rng,
            schedules: Default::default(),
        }
    }

    /// The queue, created with `defaults` if new; the flag says whether it was created.
    ///
    /// Fails only when 2^32 queues exist, which would take hundreds of gigabytes of memory.
    pub fn queue_or_create(
        &mut self,
        name: &str,
        defaults: &QueueConfig,
    ) -> Result<(QueueId, bool), BrokerError> {
        if let Some(&id) = self.queue_ids.get(name) {
            return Ok((id, false));
        }
        let name: Arc<str> = Arc::from(name);
        let queue = QueueState::new(name.clone(), defaults.clone());
        let id = match self.free_queue_ids.pop() {
            Some(id) => {
                self.queues[id.index()] = queue;
                id
            }
            None => {
                let id = QueueId(
                    u32::try_from(self.queues.len()).map_err(|_| BrokerError::TooManyQueues)?,
                );
                self.queues.push(queue);
                id
            }
        };
        self.queue_ids.insert(name, id);
        Ok((id, true))
    }

    /// Forgets the queue named `name`, which must hold no job (live or pending): its name
    /// is free, its id goes to the next queue created. Finished jobs are only counted, so
    /// their counts go with it. Returns whether it existed.
    pub fn delete_queue(&mut self, name: &str) -> bool {
        let Some(id) = self.queue_ids.remove(name) else {
            return false;
        };
        if let Some(queue) = self.queues.get_mut(id.index()) {
            debug_assert!(queue.is_empty(), "deleted a queue that still holds jobs");
            *queue = QueueState::deleted();
        }
        self.free_queue_ids.push(id);
        true
    }

    /// The id of the queue named `name`, if it exists.
    pub fn queue_id(&self, name: &str) -> Option<QueueId> {
        self.queue_ids.get(name).copied()
    }

    /// The queue named `name`, if it exists.
    pub fn queue(&self, name: &str) -> Option<&QueueState> {
        self.queue_id(name).and_then(|id| self.queue_by_id(id))
    }

    /// The queue named `name`, if it exists.
    pub fn queue_mut(&mut self, name: &str) -> Option<&mut QueueState> {
        self.queue_id(name).and_then(|id| self.queue_by_id_mut(id))
    }

    /// The queue with id `id`.
    pub fn queue_by_id(&self, id: QueueId) -> Option<&QueueState> {
        self.queues.get(id.index())
    }

    /// The queue with id `id`.
    pub fn queue_by_id_mut(&mut self, id: QueueId) -> Option<&mut QueueState> {
        self.queues.get_mut(id.index())
    }

    /// The name of the queue with id `id`.
    pub fn queue_name(&self, id: QueueId) -> Option<&Arc<str>> {
        self.queue_by_id(id).map(|q| &q.name)
    }

    /// Every queue, in creation order (a queue created after a deletion may take the deleted
    /// one's place).
    pub fn all_queues(&self) -> impl Iterator<Item = &QueueState> {
        self.queues.iter().filter(|q| !q.is_deleted())
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
        if let Some(queue) = self.queues.get_mut(slot.queue.index()) {
            queue.index(id, &slot);
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
        if let Some(queue) = self.queues.get_mut(slot.queue.index()) {
            queue.unindex(id, &slot);
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

    /// Removes a live job that leaves memory for good (finished, purged): [`State::unplace`],
    /// and its group no longer counts it.
    pub fn remove(&mut self, id: u64) -> Option<Slot> {
        let slot = self.unplace(id)?;
        if let Some(queue) = self.queues.get_mut(slot.queue.index()) {
            queue.leave_group(slot.group);
        }
        Some(slot)
    }

    /// Counts a job that left memory as succeeded or cancelled.
    pub fn count_finished(&mut self, queue: QueueId, state: JobState) {
        if let Some(q) = self.queue_by_id_mut(queue) {
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
        retention_end(self.queue(queue), state, now)
    }

    /// [`State::retention_end`] of the queue with id `queue`.
    pub fn retention_end_by_id(&self, queue: QueueId, state: JobState, now: Millis) -> Millis {
        retention_end(self.queue_by_id(queue), state, now)
    }

    /// Uncounts a succeeded or cancelled job that retention purged.
    pub fn uncount_finished(&mut self, queue: &str, state: JobState) {
        if let Some(q) = self.queue_mut(queue) {
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

    /// Wakes long-polls waiting on the queue with id `queue`.
    pub fn wake_by_id(&self, queue: QueueId) {
        if let Some(name) = self.queue_name(queue) {
            self.wake(name);
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

/// When a job of `queue` (default config if unknown) that reached `state` at `now` is purged.
fn retention_end(queue: Option<&QueueState>, state: JobState, now: Millis) -> Millis {
    let default = QueueConfig::default();
    let config = queue.map_or(&default, |q| &q.config);
    let keep = if state == JobState::Dead {
        config.dead_retention_ms
    } else {
        config.retention_ms
    };
    now.saturating_add(keep)
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU32;

    use super::slot::{READY_MAX_ID, pack_ready, unpack_ready};
    use super::*;

    fn slot(queue: QueueId, priority: u8, phase: Phase) -> Slot {
        Slot {
            queue,
            priority,
            phase,
            attempts: 0,
            max_attempts: 5,
            lease_ms: None,
            group: SlotGroup::NONE,
        }
    }

    fn queue(state: &mut State, name: &str) -> QueueId {
        let (id, created) = state
            .queue_or_create(name, &QueueConfig::default())
            .expect("few queues");
        assert!(created);
        id
    }

    #[test]
    fn ready_index_orders_by_priority_then_id() {
        let mut state = State::new(Rng::new(1));
        let q = queue(&mut state, "q");
        for (id, prio) in [(1, 10), (2, 200), (3, 10), (4, 200)] {
            assert!(state.place(id, slot(q, prio, Phase::Ready), 0));
        }
        let order: Vec<u64> = state.queue("q").expect("exists").ready_ids().collect();
        assert_eq!(order, [2, 4, 1, 3]);
    }

    #[test]
    fn ready_keys_round_trip_and_order() {
        for (priority, id) in [(0, 1), (255, 9), (7, 42), (128, READY_MAX_ID), (255, 0)] {
            assert_eq!(unpack_ready(pack_ready(priority, id)), (priority, id));
        }
        assert!(
            pack_ready(255, 9) < pack_ready(0, 1),
            "higher priority first"
        );
        assert!(
            pack_ready(3, 1) < pack_ready(3, 2),
            "same priority: smaller id first"
        );
        assert!(pack_ready(200, READY_MAX_ID) < pack_ready(199, 1));
    }

    #[test]
    fn ready_ids_in_id_order_pages_across_priorities() {
        let mut state = State::new(Rng::new(1));
        let q = queue(&mut state, "q");
        for (id, prio) in [(1, 10), (2, 200), (3, 10), (4, 200), (5, 0), (6, 255)] {
            state.place(id, slot(q, prio, Phase::Ready), 0);
        }
        let qs = state.queue("q").expect("exists");
        assert_eq!(qs.ready_ids_in_id_order(0, 100), [1, 2, 3, 4, 5, 6]);
        assert_eq!(qs.ready_ids_in_id_order(0, 2), [1, 2]);
        assert_eq!(qs.ready_ids_in_id_order(3, 2), [3, 4]);
        assert_eq!(qs.ready_ids_in_id_order(6, 10), [6]);
        assert!(qs.ready_ids_in_id_order(7, 10).is_empty());
        assert!(qs.ready_ids_in_id_order(u64::MAX, 10).is_empty());
        assert!(qs.ready_ids_in_id_order(0, 0).is_empty());
    }

    #[test]
    fn queues_are_interned_by_name() {
        let mut state = State::new(Rng::new(1));
        let a = queue(&mut state, "a");
        let b = queue(&mut state, "b");
        assert_ne!(a, b);
        let (again, created) = state
            .queue_or_create("a", &QueueConfig::default())
            .expect("few queues");
        assert_eq!((again, created), (a, false));
        assert_eq!(state.queue_id("b"), Some(b));
        assert_eq!(state.queue_name(b).map(|n| &**n), Some("b"));
        assert!(state.queue("c").is_none());
        assert_eq!(state.all_queues().count(), 2);
    }

    #[test]
    fn narrowing_conversions_saturate() {
        assert_eq!(slot_max_attempts(1000), 1000);
        assert_eq!(slot_max_attempts(u32::MAX), u16::MAX);
        assert_eq!(slot_lease_ms(None), None);
        assert_eq!(
            slot_lease_ms(Some(43_200_000)).map(NonZeroU32::get),
            Some(43_200_000)
        );
        assert_eq!(slot_lease_ms(Some(0)), Some(NonZeroU32::MIN));
        assert_eq!(
            slot_lease_ms(Some(u64::MAX)).map(NonZeroU32::get),
            Some(u32::MAX)
        );
    }

    #[test]
    fn place_and_unplace_keep_every_index_consistent() {
        let mut state = State::new(Rng::new(1));
        let q = queue(&mut state, "q");
        assert!(!state.place(1, slot(q, 1, Phase::Scheduled { run_at: 50 }), 10));
        assert!(
            state.place(2, slot(q, 1, Phase::Scheduled { run_at: 5 }), 10),
            "due jobs go straight to ready"
        );
        state.place(
            3,
            slot(
                q,
                1,
                Phase::Leased {
                    deadline: 40,
                    nonce: 9,
                },
            ),
            10,
        );
        state.place(4, slot(q, 1, Phase::Dead), 10);
        assert_eq!(
            state.queue("q").expect("exists").counts(),
            [1, 1, 1, 0, 1, 0]
        );
        assert!(
            state.queue("q").expect("exists").members[JobState::Ready.index()].is_empty(),
            "ready jobs are only in the ready index"
        );
        assert_eq!(state.next_deadline(), Some(40));
        for id in 1..=4 {
            assert!(state.unplace(id).is_some());
        }
        let qs = state.queue("q").expect("exists");
        assert_eq!(qs.counts(), [0; 6]);
        assert!(state.delayed.is_empty() && state.leases.is_empty() && qs.ready.is_empty());
        assert_eq!(state.next_deadline(), None);
        assert!(state.unplace(1).is_none());
    }
}
