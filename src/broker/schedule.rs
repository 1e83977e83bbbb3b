//! Cron schedules: each fire enqueues one job from the schedule's template.
//!
//! A schedule's record stores `next_fire`, the next due time to fire. Firing writes the job and
//! the record (`last_fire` = the due time, `next_fire` = the first fire time after now) in one
//! atomic write, so a due time fires exactly once across restarts: a crash before the commit
//! leaves the due time pending, a crash after it has already moved `next_fire` on.
//!
//! Missed fires: when the broker starts and a schedule's `next_fire` has passed (it was down),
//! `catch_up` decides: `true` (the default) fires once, now, for everything missed; `false`
//! skips to the first fire time after now. While running, a late timer never drops a fire.
//! Resuming a paused schedule skips what fell due while it was paused.

use std::collections::BTreeSet;

use super::state::State;
use super::{Broker, BrokerError, Enqueued, NewJob, Prepared, committed};
use crate::clock::{Millis, rfc3339};
use crate::cron::CronSchedule;
use crate::job::valid_queue_name;
use crate::storage::{JobTemplate, ScheduleRecord, WriteOp};

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
    pub by_name: std::collections::HashMap<String, ScheduleSlot>,
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

/// What a client asks a schedule to be.
#[derive(Debug, Clone)]
pub struct ScheduleSpec {
    /// The parsed expression and zone.
    pub cron: CronSchedule,
    /// The target queue.
    pub queue: String,
    /// The job each fire enqueues.
    pub template: JobTemplate,
    /// Create paused.
    pub paused: bool,
    /// Fire once on start for fires missed while down.
    pub catch_up: bool,
}

/// A schedule as shown to clients.
#[derive(Debug, Clone)]
pub struct ScheduleView {
    /// Its name.
    pub name: String,
    /// Its record.
    pub record: ScheduleRecord,
    /// The next few fire times (empty while paused).
    pub upcoming: Vec<Millis>,
}

/// How many upcoming fire times a view lists.
const UPCOMING: usize = 5;

impl ScheduleSlot {
    fn view(&self, name: &str, now: Millis) -> ScheduleView {
        let upcoming = if self.record.paused {
            Vec::new()
        } else {
            self.cron.upcoming(now, UPCOMING)
        };
        ScheduleView {
            name: name.to_owned(),
            record: self.record.clone(),
            upcoming,
        }
    }
}

impl Broker {
    /// Creates or replaces schedule `name`; returns whether it was created, and its view.
    pub async fn put_schedule(
        &self,
        name: &str,
        spec: ScheduleSpec,
    ) -> Result<(bool, ScheduleView), BrokerError> {
        if !valid_queue_name(name) {
            return Err(BrokerError::InvalidScheduleName);
        }
        if !valid_queue_name(&spec.queue) {
            return Err(BrokerError::InvalidQueueName);
        }
        let admission = self.store.admit().await?;
        let now = self.now();
        let (pending, created, view) = {
            let mut state = self.state.lock();
            let previous = state.schedules.by_name.get(name).map(|s| s.record.clone());
            let record = ScheduleRecord {
                cron: spec.cron.expression().to_owned(),
                zone: spec.cron.zone().to_owned(),
                queue: spec.queue,
                template: spec.template,
                paused: spec.paused,
                catch_up: spec.catch_up,
                last_fire: previous.as_ref().and_then(|p| p.last_fire),
                next_fire: spec.cron.next_after(now),
                created_at: previous.as_ref().map_or(now, |p| p.created_at),
                updated_at: now,
            };
            let slot = ScheduleSlot {
                cron: spec.cron,
                record: record.clone(),
            };
            let view = slot.view(name, now);
            self.activate(&mut state, name, slot);
            let op = WriteOp::PutSchedule {
                name: name.to_owned(),
                record,
            };
            (
                self.submit(admission, Prepared::ops(vec![op])),
                previous.is_none(),
                view,
            )
        };
        committed(pending).await?;
        Ok((created, view))
    }

    /// One schedule.
    pub fn schedule(&self, name: &str) -> Result<ScheduleView, BrokerError> {
        let state = self.state.lock();
        let slot = state
            .schedules
            .by_name
            .get(name)
            .ok_or(BrokerError::ScheduleNotFound)?;
        Ok(slot.view(name, self.now()))
    }

    /// Every schedule, sorted by name.
    pub fn schedules(&self) -> Vec<ScheduleView> {
        let state = self.state.lock();
        let now = self.now();
        let mut views: Vec<ScheduleView> = state
            .schedules
            .by_name
            .iter()
            .map(|(name, slot)| slot.view(name, now))
            .collect();
        views.sort_by(|a, b| a.name.cmp(&b.name));
        views
    }

    /// Deletes a schedule (jobs it already enqueued stay).
    pub async fn delete_schedule(&self, name: &str) -> Result<(), BrokerError> {
        let admission = self.store.admit().await?;
        let pending = {
            let mut state = self.state.lock();
            state
                .schedules
                .remove(name)
                .ok_or(BrokerError::ScheduleNotFound)?;
            self.submit(
                admission,
                Prepared::ops(vec![WriteOp::DeleteSchedule {
                    name: name.to_owned(),
                }]),
            )
        };
        committed(pending).await?;
        Ok(())
    }

    /// Pauses or resumes a schedule. Resuming skips what fell due while paused.
    pub async fn set_schedule_paused(
        &self,
        name: &str,
        paused: bool,
    ) -> Result<ScheduleView, BrokerError> {
        let admission = self.store.admit().await?;
        let now = self.now();
        let (pending, view) = {
            let mut state = self.state.lock();
            let mut slot = state
                .schedules
                .by_name
                .get(name)
                .cloned()
                .ok_or(BrokerError::ScheduleNotFound)?;
            if slot.record.paused && !paused {
                slot.record.next_fire = slot.cron.next_after(now);
            }
            slot.record.paused = paused;
            slot.record.updated_at = now;
            let op = WriteOp::PutSchedule {
                name: name.to_owned(),
                record: slot.record.clone(),
            };
            let view = slot.view(name, now);
            self.activate(&mut state, name, slot);
            (self.submit(admission, Prepared::ops(vec![op])), view)
        };
        committed(pending).await?;
        Ok(view)
    }

    /// Enqueues the schedule's job now, without changing when it next fires.
    pub async fn trigger_schedule(&self, name: &str) -> Result<Enqueued, BrokerError> {
        let (queue, job) = {
            let state = self.state.lock();
            let slot = state
                .schedules
                .by_name
                .get(name)
                .ok_or(BrokerError::ScheduleNotFound)?;
            (
                slot.record.queue.clone(),
                template_job(name, &slot.record.template, self.now()),
            )
        };
        let mut enqueued = self.enqueue(&queue, vec![job]).await?;
        enqueued.pop().ok_or(BrokerError::ScheduleNotFound)
    }

    /// Fires every active schedule whose due time has passed: one job each, written together
    /// with the schedule's new fire times. Returns how many fired.
    pub async fn fire_due_schedules(&self) -> Result<usize, BrokerError> {
        let mut fired = 0;
        loop {
            let admission = self.store.admit().await?;
            let now = self.now();
            let (pending, slots) = {
                let mut state = self.state.lock();
                let Some((due, name)) = state
                    .schedules
                    .due
                    .first()
                    .cloned()
                    .filter(|(at, _)| *at <= now)
                else {
                    return Ok(fired);
                };
                let Some(mut slot) = state.schedules.by_name.get(&name).cloned() else {
                    return Ok(fired);
                };
                let job = template_job(&name, &slot.record.template, due);
                let mut prepared = Prepared::default();
                let queue = slot.record.queue.clone();
                let slots = self.prepare_jobs(&mut state, &queue, vec![job], now, &mut prepared)?;
                slot.record.last_fire = Some(due);
                slot.record.next_fire = slot.cron.next_after(now);
                prepared.ops.push(WriteOp::PutSchedule {
                    name: name.clone(),
                    record: slot.record.clone(),
                });
                self.activate(&mut state, &name, slot);
                (self.submit(admission, prepared), slots)
            };
            let written = committed(pending).await?;
            self.place_enqueued(slots, written, now);
            fired += 1;
        }
    }

    /// Puts a schedule in memory and tells the timer about its next fire. Under the state lock.
    fn activate(&self, state: &mut State, name: &str, slot: ScheduleSlot) {
        let next = (!slot.record.paused)
            .then_some(slot.record.next_fire)
            .flatten();
        state.schedules.insert(name, slot);
        if let Some(at) = next {
            self.deadline_added(at);
        }
    }
}

/// The job a fire of schedule `name` due at `due` enqueues: the template, plus headers that
/// name the schedule and the due time.
fn template_job(name: &str, template: &JobTemplate, due: Millis) -> NewJob {
    let mut headers = template.headers.clone();
    headers.push(("wharf-schedule".into(), name.to_owned()));
    headers.push(("wharf-due-at".into(), rfc3339(due)));
    NewJob {
        payload: template.payload.clone(),
        priority: template.priority,
        run_at: None,
        max_attempts: template.max_attempts,
        lease_ms: template.lease_ms,
        headers,
        idempotency_key: None,
    }
}

/// Rebuilds a schedule at start-up (see the module docs for missed fires).
pub(super) fn recover(name: &str, mut record: ScheduleRecord, now: Millis) -> Option<ScheduleSlot> {
    let cron = match CronSchedule::parse(&record.cron, &record.zone) {
        Ok(cron) => cron,
        Err(error) => {
            tracing::error!(schedule = name, %error, "stored schedule no longer parses; it will not fire until replaced");
            return None;
        }
    };
    let missed = record.next_fire.is_none_or(|at| at <= now);
    if missed && !(record.catch_up && record.next_fire.is_some()) {
        record.next_fire = cron.next_after(now);
    }
    Some(ScheduleSlot { cron, record })
}
