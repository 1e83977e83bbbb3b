//! Fair dispatch across the job groups of one queue.
//!
//! A job may name a `group` (a customer id, say). Once a queue has seen one, its polls deliver
//! round-robin across the groups that have ready jobs, so a group that enqueued 100,000 jobs
//! cannot starve one that enqueued ten after it; ungrouped jobs of the queue take their turns as
//! one more group. A queue that has never seen a group dispatches from its ready index as
//! before, and pays nothing for this module.
//!
//! # The rotation
//!
//! Round-robin is start-time fair queueing: every group has a virtual time that advances each
//! time it is served, by [`TURN`] divided by the group's weight (1 unless the queue's
//! `group_weights` names it), and the queue remembers the virtual time of the last group
//! served. A group of weight 3 thus has three turns for every one of a group of weight 1.
//! The group served next is the first of `rotation`, ordered by
//!
//! 1. the priority of the group's first ready job (highest first: priority still comes first),
//! 2. the group's virtual time (least served first),
//! 3. the group's id (oldest group first, to break ties).
//!
//! A group that had nothing ready (or was at its `group_max_in_flight`) and becomes eligible
//! again starts at the queue's current virtual time, so an idle group does not bank turns.
//! Each step is a few B-tree operations on the group's entry, whatever the number of groups
//! or jobs.
//!
//! # Memory
//!
//! A group exists while any of its jobs is in memory (scheduled, ready, leased, dead, or being
//! inserted): `live` counts them, and the group is dropped, and its id reused, when that count
//! reaches zero. Slots carry their group's id in 24 bits ([`SlotGroup`]), so at most 16.7
//! million groups of one queue can be live at once.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use super::slot::unpack_ready;

/// A group id as a slot keeps it: 24 bits, little-endian; 0 is "ungrouped".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SlotGroup([u8; 3]);

/// The largest group id a slot can hold.
const MAX_GROUP_ID: u32 = (1 << 24) - 1;

impl SlotGroup {
    /// Ungrouped.
    pub const NONE: SlotGroup = SlotGroup([0; 3]);

    fn new(id: u32) -> SlotGroup {
        let [a, b, c, _] = id.to_le_bytes();
        SlotGroup([a, b, c])
    }

    fn id(self) -> u32 {
        let [a, b, c] = self.0;
        u32::from_le_bytes([a, b, c, 0])
    }
}

/// The virtual time one turn of a group of weight 1 takes (divisible by every weight up to
/// 16, so small weights share turns exactly).
const TURN: u64 = 720_720;

/// Too many groups of one queue are live at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooManyGroups;

/// One group: its ready jobs, its leases, and its place in the rotation.
#[derive(Debug)]
struct Group {
    name: Arc<str>,
    /// Its ready jobs' ready keys (`pack_ready`): priority descending, then id ascending.
    ready: BTreeSet<u64>,
    /// Its jobs leased right now.
    leased: u32,
    /// Its jobs in memory, in any phase, and those being inserted.
    live: u64,
    /// Turns it has had, in virtual time.
    vtime: u64,
    /// Turns per round (at least 1).
    weight: u32,
    /// Its entry in the rotation, if it is eligible: (inverted head priority, vtime).
    entry: Option<(u8, u64)>,
}

impl Group {
    fn new(name: Arc<str>, weight: u32) -> Group {
        Group {
            name,
            ready: BTreeSet::new(),
            leased: 0,
            live: 0,
            vtime: 0,
            weight: weight.max(1),
            entry: None,
        }
    }
}

/// The groups of one queue and their rotation.
#[derive(Debug)]
pub struct Groups {
    /// Live groups by name (the ungrouped pseudo-group, id 0, has none).
    ids: HashMap<Arc<str>, u32>,
    /// Groups by id; `None`: a free id.
    groups: Vec<Option<Group>>,
    free: Vec<u32>,
    /// Eligible groups in service order: (inverted head priority, vtime, id).
    rotation: BTreeSet<(u8, u64, u32)>,
    /// The virtual time of the last group served.
    clock: u64,
}

impl Groups {
    /// The groups of a queue whose ready jobs so far were all ungrouped: `ready` (their ready
    /// keys) becomes the ungrouped pseudo-group's.
    pub fn new(ready: &BTreeSet<u64>) -> Groups {
        let mut ungrouped = Group::new(Arc::from(""), 1);
        ungrouped.ready = ready.clone();
        let mut groups = Groups {
            ids: HashMap::new(),
            groups: vec![Some(ungrouped)],
            free: Vec::new(),
            rotation: BTreeSet::new(),
            clock: 0,
        };
        groups.rekey(0, None);
        groups
    }

    /// The group named `name` (created if new, with `weight`), with one more job counted live.
    pub fn join(&mut self, name: &str, weight: u32) -> Result<SlotGroup, TooManyGroups> {
        let id = match self.ids.get(name) {
            Some(&id) => id,
            None => {
                let id = match self.free.pop() {
                    Some(id) => id,
                    None => {
                        let id = u32::try_from(self.groups.len())
                            .ok()
                            .filter(|&id| id <= MAX_GROUP_ID)
                            .ok_or(TooManyGroups)?;
                        self.groups.push(None);
                        id
                    }
                };
                let name: Arc<str> = Arc::from(name);
                self.groups[id as usize] = Some(Group::new(name.clone(), weight));
                self.ids.insert(name, id);
                id
            }
        };
        if let Some(group) = self.group_mut(id) {
            group.live += 1;
        }
        Ok(SlotGroup::new(id))
    }

    /// One job of `group` left memory for good (or its insert failed); a group with no job
    /// left is dropped.
    pub fn leave(&mut self, group: SlotGroup) {
        let id = group.id();
        if id == 0 {
            return;
        }
        let Some(g) = self.group_mut(id) else {
            return;
        };
        g.live = g.live.saturating_sub(1);
        if g.live > 0 {
            return;
        }
        if let Some(g) = self.groups[id as usize].take() {
            if let Some((priority, vtime)) = g.entry {
                self.rotation.remove(&(priority, vtime, id));
            }
            self.ids.remove(&g.name);
            self.free.push(id);
        }
    }

    /// A job of `group` became ready.
    pub fn ready(&mut self, group: SlotGroup, key: u64, cap: Option<u32>) {
        if let Some(g) = self.group_mut(group.id()) {
            g.ready.insert(key);
            self.rekey(group.id(), cap);
        }
    }

    /// A ready job of `group` left the ready index.
    pub fn unready(&mut self, group: SlotGroup, key: u64, cap: Option<u32>) {
        if let Some(g) = self.group_mut(group.id()) {
            g.ready.remove(&key);
            self.rekey(group.id(), cap);
        }
    }

    /// A job of `group` was leased (`+1`) or its lease ended (`-1`).
    pub fn leases(&mut self, group: SlotGroup, leased: bool, cap: Option<u32>) {
        if let Some(g) = self.group_mut(group.id()) {
            g.leased = if leased {
                g.leased.saturating_add(1)
            } else {
                g.leased.saturating_sub(1)
            };
            self.rekey(group.id(), cap);
        }
    }

    /// The queue's `group_max_in_flight` or `group_weights` changed: every group takes its
    /// weight, and its eligibility is looked at again.
    pub fn recap(&mut self, cap: Option<u32>, weights: &BTreeMap<String, u32>) {
        for id in 0..self.groups.len() as u32 {
            if let Some(g) = self.group_mut(id) {
                g.weight = weights.get(&*g.name).copied().unwrap_or(1).max(1);
            }
            self.rekey(id, cap);
        }
    }

    /// The next job to deliver, and its group's turn taken: the caller leases it (or, if it
    /// cannot, has still used the turn, which only delays that group by one).
    pub fn next(&mut self, cap: Option<u32>) -> Option<u64> {
        let &(_, vtime, id) = self.rotation.first()?;
        let g = self.group_mut(id)?;
        let key = *g.ready.first()?;
        g.vtime = vtime.saturating_add(TURN / u64::from(g.weight));
        self.clock = vtime;
        self.rekey(id, cap);
        Some(unpack_ready(key).1)
    }

    /// Puts group `id` where its head, eligibility and virtual time say.
    fn rekey(&mut self, id: u32, cap: Option<u32>) {
        let clock = self.clock;
        let Some(g) = self.groups.get_mut(id as usize).and_then(Option::as_mut) else {
            return;
        };
        let was = g.entry.take();
        if let Some((priority, vtime)) = was {
            self.rotation.remove(&(priority, vtime, id));
        }
        // Ungrouped jobs are not a group a limit applies to.
        let capped = id != 0 && cap.is_some_and(|cap| g.leased >= cap);
        let Some(&head) = g.ready.first().filter(|_| !capped) else {
            return;
        };
        if was.is_none() {
            // Back in the rotation: no banked turns.
            g.vtime = g.vtime.max(clock);
        }
        let priority = (head >> 56) as u8;
        g.entry = Some((priority, g.vtime));
        self.rotation.insert((priority, g.vtime, id));
    }

    fn group_mut(&mut self, id: u32) -> Option<&mut Group> {
        self.groups.get_mut(id as usize).and_then(Option::as_mut)
    }

    /// Live named groups.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.ids.len()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::super::slot::pack_ready;
    use super::*;

    fn drain(groups: &mut Groups, cap: Option<u32>, n: usize) -> Vec<u64> {
        let mut out = Vec::new();
        for _ in 0..n {
            let Some(id) = groups.next(cap) else { break };
            out.push(id);
        }
        out
    }

    /// Jobs `ids` of `group`, all of `priority`, made ready.
    fn fill(groups: &mut Groups, group: SlotGroup, priority: u8, ids: impl Iterator<Item = u64>) {
        for id in ids {
            groups.ready(group, pack_ready(priority, id), None);
        }
    }

    /// Delivers like a poll does: the turn, then the job leaves the ready index.
    fn deliver(groups: &mut Groups, of: &[(u64, SlotGroup, u8)], cap: Option<u32>) -> Option<u64> {
        let id = groups.next(cap)?;
        let &(_, group, priority) = of.iter().find(|(i, ..)| *i == id)?;
        groups.unready(group, pack_ready(priority, id), cap);
        groups.leases(group, true, cap);
        Some(id)
    }

    #[test]
    fn groups_take_turns_and_a_late_small_group_is_not_starved() {
        let mut groups = Groups::new(&BTreeSet::new());
        let a = groups.join("a", 1).unwrap();
        let b = groups.join("b", 1).unwrap();
        let mut jobs = Vec::new();
        jobs.extend((1..=1000).map(|id| (id, a, 0)));
        jobs.extend((1001..=1003).map(|id| (id, b, 0)));
        for &(id, g, p) in &jobs {
            groups.ready(g, pack_ready(p, id), None);
        }
        let order: Vec<u64> = (0..8)
            .map_while(|_| deliver(&mut groups, &jobs, None))
            .collect();
        assert_eq!(order, [1, 1001, 2, 1002, 3, 1003, 4, 5]);
    }

    #[test]
    fn priority_comes_before_the_turn() {
        let mut groups = Groups::new(&BTreeSet::new());
        let a = groups.join("a", 1).unwrap();
        let b = groups.join("b", 1).unwrap();
        let jobs = [(1, a, 0), (2, a, 0), (3, b, 9), (4, b, 9)];
        for &(id, g, p) in &jobs {
            groups.ready(g, pack_ready(p, id), None);
        }
        let order: Vec<u64> = (0..4)
            .map_while(|_| deliver(&mut groups, &jobs, None))
            .collect();
        assert_eq!(order, [3, 4, 1, 2]);
    }

    #[test]
    fn ungrouped_jobs_take_their_turns_as_one_group() {
        let ready: BTreeSet<u64> = (1..=3).map(|id| pack_ready(0, id)).collect();
        let mut groups = Groups::new(&ready);
        let a = groups.join("a", 1).unwrap();
        fill(&mut groups, a, 0, 4..=6);
        let mut jobs: Vec<_> = (1..=3).map(|id| (id, SlotGroup::NONE, 0)).collect();
        jobs.extend((4..=6).map(|id| (id, a, 0)));
        let order: Vec<u64> = (0..6)
            .map_while(|_| deliver(&mut groups, &jobs, None))
            .collect();
        assert_eq!(order, [1, 4, 2, 5, 3, 6]);
    }

    #[test]
    fn weights_give_turns_in_proportion() {
        let mut groups = Groups::new(&BTreeSet::new());
        let a = groups.join("a", 3).unwrap();
        let b = groups.join("b", 1).unwrap();
        let mut jobs: Vec<_> = (1..=12).map(|id| (id, a, 0)).collect();
        jobs.extend((101..=112).map(|id| (id, b, 0)));
        for &(id, g, p) in &jobs {
            groups.ready(g, pack_ready(p, id), None);
        }
        let order: Vec<u64> = (0..8)
            .map_while(|_| deliver(&mut groups, &jobs, None))
            .collect();
        assert_eq!(order, [1, 101, 2, 3, 4, 102, 5, 6]);
        // A change of weights applies from the next turn.
        groups.recap(None, &BTreeMap::from([("b".to_owned(), 3)]));
        let b_turns = (0..8)
            .map_while(|_| deliver(&mut groups, &jobs, None))
            .filter(|id| *id > 100)
            .count();
        assert!(b_turns >= 5, "b now weighs 3 and a 1: {b_turns} of 8");
    }

    #[test]
    fn a_group_at_its_limit_waits_until_a_lease_ends() {
        let mut groups = Groups::new(&BTreeSet::new());
        let a = groups.join("a", 1).unwrap();
        fill(&mut groups, a, 0, 1..=3);
        let jobs: Vec<_> = (1..=3).map(|id| (id, a, 0)).collect();
        let cap = Some(2);
        assert_eq!(deliver(&mut groups, &jobs, cap), Some(1));
        assert_eq!(deliver(&mut groups, &jobs, cap), Some(2));
        assert_eq!(groups.next(cap), None, "two leases held: no third");
        groups.leases(a, false, cap);
        assert_eq!(deliver(&mut groups, &jobs, cap), Some(3));
        groups.recap(None, &BTreeMap::new());
        assert!(drain(&mut groups, None, 5).is_empty(), "nothing left ready");
    }

    #[test]
    fn an_idle_group_comes_back_without_banked_turns() {
        let mut groups = Groups::new(&BTreeSet::new());
        let a = groups.join("a", 1).unwrap();
        let b = groups.join("b", 1).unwrap();
        let mut jobs: Vec<_> = (1..=10).map(|id| (id, a, 0)).collect();
        fill(&mut groups, a, 0, 1..=10);
        for _ in 0..6 {
            deliver(&mut groups, &jobs, None);
        }
        // b was idle while a had six turns; it now gets one turn, then they alternate.
        jobs.extend((11..=13).map(|id| (id, b, 0)));
        fill(&mut groups, b, 0, 11..=13);
        let order: Vec<u64> = (0..5)
            .map_while(|_| deliver(&mut groups, &jobs, None))
            .collect();
        assert_eq!(order, [11, 7, 12, 8, 13]);
    }

    #[test]
    fn a_group_is_dropped_with_its_last_job_and_its_id_reused() {
        let mut groups = Groups::new(&BTreeSet::new());
        let a = groups.join("a", 1).unwrap();
        let again = groups.join("a", 1).unwrap();
        assert_eq!(a, again);
        groups.leave(a);
        assert_eq!(groups.len(), 1, "one job of a is left");
        groups.leave(a);
        assert_eq!(groups.len(), 0);
        let b = groups.join("b", 1).unwrap();
        assert_eq!(b, a, "the id is reused");
        assert_eq!(
            groups.join("a", 1).unwrap(),
            SlotGroup::new(2),
            "a is new again"
        );
        groups.leave(SlotGroup::NONE);
        assert_eq!(groups.len(), 2, "ungrouped is not a group to leave");
    }

    #[test]
    fn slot_groups_hold_24_bits() {
        for id in [0, 1, 255, 256, 65_536, MAX_GROUP_ID] {
            assert_eq!(SlotGroup::new(id).id(), id);
        }
    }
}
