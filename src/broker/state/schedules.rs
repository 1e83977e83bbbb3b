//! Schedules in memory, and the index of when they are due.

use std::collections::{BTreeSet, HashMap};

use crate::clock::Millis;
use crate::cron::CronSchedule;
use crate::storage::ScheduleRecord;

/// A schedule in memory: its parsed expression and its record.
#[derive(Debug, Clone)]
pub struct ScheduleSlot {
    /// The parsed expression and zone.
    pub cron: CronSchedule,
    /// The stored record (template, flags, fire times).
    pub record: ScheduleRecord,
}

/// Schedules and the index of when they are due.
#[derive(Debug, Default)]
pub struct Schedules {
    /// By name.
    pub by_name: HashMap<String, ScheduleSlot>,
    /// (next fire, name) of every schedule that is not paused.
    pub due: BTreeSet<(Millis, String)>,
}

impl Schedules {
    /// Adds or replaces a schedule, indexing it when it is active.
    pub fn insert(&mut self, name: &str, slot: ScheduleSlot) {
        self.remove(name);
        if let (false, Some(at)) = (slot.record.paused, slot.record.next_fire) {
            self.due.insert((at, name.to_owned()));
        }
        self.by_name.insert(name.to_owned(), slot);
    }

    /// Removes a schedule and its index entry.
    pub fn remove(&mut self, name: &str) -> Option<ScheduleSlot> {
        let slot = self.by_name.remove(name)?;
        if let Some(at) = slot.record.next_fire {
            self.due.remove(&(at, name.to_owned()));
        }
        Some(slot)
    }

    /// The earliest due time of an active schedule.
    pub fn next_due(&self) -> Option<Millis> {
        self.due.first().map(|(at, _)| *at)
    }
}
