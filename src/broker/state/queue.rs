//! One queue in memory: its defaults, indexes and counts.

use std::collections::BTreeSet;
use std::sync::Arc;

use super::groups::{Groups, SlotGroup, TooManyGroups};
use super::slot::{Phase, READY_MAX_ID, Slot, pack_ready, unpack_ready};
use crate::broker::config::QueueConfig;
use crate::job::JobState;

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

/// One queue's name, defaults, indexes and counts.
#[derive(Debug)]
pub struct QueueState {
    pub name: Arc<str>,
    pub config: QueueConfig,
    /// Dispatch order: priority descending, then id (enqueue sequence) ascending. Keys are
    /// [`pack_ready`]`(priority, id)`.
    pub ready: BTreeSet<u64>,
    /// Ids per state, indexed by [`JobState::index`]; only scheduled, leased and dead jobs are
    /// filled (ready ones are in `ready` only), finished jobs are just counted.
    pub members: [BTreeSet<u64>; 6],
    pub succeeded: u64,
    pub cancelled: u64,
    pub counters: Counters,
    /// Jobs prepared for an insert that has not committed and been placed yet: they count
    /// against `max_depth` while their commit is in flight.
    pub pending: u64,
    /// Fair dispatch across job groups, from the first grouped job on (see `groups`).
    groups: Option<Box<Groups>>,
}

impl QueueState {
    pub fn new(name: Arc<str>, config: QueueConfig) -> QueueState {
        QueueState {
            name,
            config,
            ready: BTreeSet::new(),
            members: Default::default(),
            succeeded: 0,
            cancelled: 0,
            counters: Counters::default(),
            pending: 0,
            groups: None,
        }
    }

    /// The empty entry a deleted queue leaves behind (see `State::delete_queue`).
    pub fn deleted() -> QueueState {
        QueueState::new(Arc::from(""), QueueConfig::default())
    }

    /// Whether this is a deleted queue's entry (no queue has an empty name).
    pub fn is_deleted(&self) -> bool {
        self.name.is_empty()
    }

    /// Whether the queue holds no live job and none is about to be placed: it may be deleted.
    pub fn is_empty(&self) -> bool {
        self.ready.is_empty() && self.pending == 0 && self.members.iter().all(BTreeSet::is_empty)
    }

    /// Adds a job to the index of its phase (a `Ready` slot is really ready).
    pub(super) fn index(&mut self, id: u64, slot: &Slot) {
        let cap = self.config.group_max_in_flight;
        match slot.phase {
            Phase::Ready => {
                let key = pack_ready(slot.priority, id);
                self.ready.insert(key);
                if let Some(groups) = &mut self.groups {
                    groups.ready(slot.group, key, cap);
                }
            }
            phase => {
                self.members[phase.state().index()].insert(id);
                if let (Phase::Leased { .. }, Some(groups)) = (phase, &mut self.groups) {
                    groups.leases(slot.group, true, cap);
                }
            }
        }
    }

    /// Removes a job from the index of its phase.
    pub(super) fn unindex(&mut self, id: u64, slot: &Slot) {
        let cap = self.config.group_max_in_flight;
        match slot.phase {
            Phase::Ready => {
                let key = pack_ready(slot.priority, id);
                self.ready.remove(&key);
                if let Some(groups) = &mut self.groups {
                    groups.unready(slot.group, key, cap);
                }
            }
            phase => {
                self.members[phase.state().index()].remove(&id);
                if let (Phase::Leased { .. }, Some(groups)) = (phase, &mut self.groups) {
                    groups.leases(slot.group, false, cap);
                }
            }
        }
    }

    /// The group `name` for a job about to be inserted (counted in the group until it leaves
    /// memory: [`QueueState::leave_group`]). The queue's first group turns on fair dispatch.
    pub fn join_group(&mut self, name: &str) -> Result<SlotGroup, TooManyGroups> {
        let ready = &self.ready;
        let weight = self.config.group_weights.get(name).copied().unwrap_or(1);
        self.groups
            .get_or_insert_with(|| Box::new(Groups::new(ready)))
            .join(name, weight)
    }

    /// A job of `group` left memory for good, or its insert failed.
    pub fn leave_group(&mut self, group: SlotGroup) {
        if let Some(groups) = &mut self.groups {
            groups.leave(group);
        }
    }

    /// Replaces the queue's settings; a new `group_max_in_flight` applies to every group now.
    pub fn set_config(&mut self, config: QueueConfig) {
        let recap = config.group_max_in_flight != self.config.group_max_in_flight
            || config.group_weights != self.config.group_weights;
        self.config = config;
        if let (true, Some(groups)) = (recap, &mut self.groups) {
            groups.recap(self.config.group_max_in_flight, &self.config.group_weights);
        }
    }

    /// The next ready job to deliver: the first in priority and id order, or, once the queue
    /// has groups, the head of the group whose turn it is (the turn is taken: lease it).
    pub fn next_ready(&mut self) -> Option<u64> {
        match &mut self.groups {
            Some(groups) => groups.next(self.config.group_max_in_flight),
            None => self.ready.first().map(|&key| unpack_ready(key).1),
        }
    }

    /// Jobs that count against `max_depth`: scheduled, ready, leased, and those being inserted.
    pub fn depth(&self) -> u64 {
        let live = |s: JobState| self.members[s.index()].len() as u64;
        live(JobState::Scheduled) + self.ready.len() as u64 + live(JobState::Leased) + self.pending
    }

    /// Jobs per state, in [`JobState::ALL`] order.
    pub fn counts(&self) -> [u64; 6] {
        let live = |s: JobState| self.members[s.index()].len() as u64;
        [
            live(JobState::Scheduled),
            self.ready.len() as u64,
            live(JobState::Leased),
            self.succeeded,
            live(JobState::Dead),
            self.cancelled,
        ]
    }

    /// Ids of ready jobs in dispatch order (priority descending, then id ascending).
    pub fn ready_ids(&self) -> impl Iterator<Item = u64> + '_ {
        self.ready.iter().map(|&key| unpack_ready(key).1)
    }

    /// The `limit` smallest ids of ready jobs that are at least `start`, in id order.
    ///
    /// Within one priority the ready index is in id order, so this takes at most `limit` ids
    /// from each of the 256 priority bands and keeps the smallest: a bounded amount of work
    /// however many jobs are ready.
    pub fn ready_ids_in_id_order(&self, start: u64, limit: usize) -> Vec<u64> {
        if start > READY_MAX_ID || limit == 0 {
            return Vec::new();
        }
        let mut ids = Vec::new();
        for priority in (0..=u8::MAX).rev() {
            let band = pack_ready(priority, start)..=pack_ready(priority, READY_MAX_ID);
            ids.extend(
                self.ready
                    .range(band)
                    .take(limit)
                    .map(|&key| unpack_ready(key).1),
            );
            if ids.len() >= limit.saturating_mul(2) {
                ids.sort_unstable();
                ids.truncate(limit);
            }
        }
        ids.sort_unstable();
        ids.truncate(limit);
        ids
    }
}
