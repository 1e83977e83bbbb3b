//! Cron schedules: each fire enqueues one job from the schedule's template.
//!
//! A schedule's record stores `next_fire`, the next due time to fire. Firing writes the job and
//! the record (`last_fire` = the due time, `next_fire` = the first fire time after now) in one
//! atomic write, so a due time never fires twice across restarts: a crash before the commit
//! leaves the due time pending, a crash after it has already moved `next_fire` on.
//!
//! One fire per look, not per due time: when the broker was down, or the timer looked late,
//! every due time that passed meanwhile is folded into the one job that fire enqueues (its
//! `wharf-due-at` is the first of them). At start-up `catch_up` decides whether due times
//! missed while down fire that one job (`true`, the default) or are skipped (`false`).
//! Resuming a paused schedule skips what fell due while it was paused.

use super::enqueue::Depth;
use super::placement::Placement;
use super::state::{ScheduleSlot, State};
use super::views::TemplateView;
use super::{
    Broker, BrokerError, Enqueued, NewJob, Prepared, ScheduleSpec, ScheduleView,
    limits::SCHEDULE_HEADERS,
};
use crate::clock::{Millis, rfc3339};
use crate::cron::CronSchedule;
use crate::storage::{JobTemplate, ScheduleEvent, ScheduleRecord, WriteOp};
use crate::tenant::valid_full_name;

/// How many upcoming fire times a view lists.
const UPCOMING: usize = 5;

fn view(name: &str, slot: &ScheduleSlot, now: Millis) -> ScheduleView {
    let r = &slot.record;
    ScheduleView {
        name: name.to_owned(),
        cron: r.cron.clone(),
        timezone: r.zone.clone(),
        queue: r.queue.clone(),
        job: TemplateView {
            payload: r.template.payload.clone(),
            priority: r.template.priority,
            max_attempts: r.template.max_attempts,
            lease_ms: r.template.lease_ms,
            headers: r.template.headers.clone(),
        },
        paused: r.paused,
        catch_up: r.catch_up,
        last_fire: r.last_fire,
        next_fire: (!r.paused).then_some(r.next_fire).flatten(),
        upcoming: if r.paused {
            Vec::new()
        } else {
            slot.cron.upcoming(now, UPCOMING)
        },
        created_at: r.created_at,
        updated_at: r.updated_at,
    }
}

impl Broker {
    /// Creates or replaces schedule `name`; returns whether it was created, and its view.
    pub async fn put_schedule(
        &self,
        name: &str,
        spec: ScheduleSpec,
    ) -> Result<(bool, ScheduleView), BrokerError> {
        if !valid_full_name(name) {
            return Err(BrokerError::InvalidScheduleName);
        }
        if !valid_full_name(&spec.queue) {
            return Err(BrokerError::InvalidQueueName);
        }
        self.limits.check_schedule_job(&spec.job)?;
        let job = spec.job;
        let template = JobTemplate {
            payload: job.payload,
            priority: job.priority,
            max_attempts: job.max_attempts,
            lease_ms: job.lease_ms,
            headers: job.headers,
        };
        let admission = self.store.admit_growth().await?;
        let now = self.now();
        let (submitted, created, view) = {
            let mut state = self.state.lock();
            let previous = state.schedules.by_name.get(name).map(|s| s.record.clone());
            let record = ScheduleRecord {
                cron: spec.cron.expression().to_owned(),
                zone: spec.cron.zone().to_owned(),
                queue: spec.queue,
                template,
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
            let view = view(name, &slot, now);
            self.activate(&mut state, name, slot);
            let op = WriteOp::PutSchedule {
                name: name.to_owned(),
                record,
                event: ScheduleEvent::Put,
                at: now,
            };
            (
                self.submit(admission, Prepared::ops(vec![op])),
                previous.is_none(),
                view,
            )
        };
        self.committed(submitted).await?;
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
        Ok(view(name, slot, self.now()))
    }

    /// Every schedule, sorted by name.
    pub fn schedules(&self) -> Vec<ScheduleView> {
        let state = self.state.lock();
        let now = self.now();
        let mut views: Vec<ScheduleView> = state
            .schedules
            .by_name
            .iter()
            .map(|(name, slot)| view(name, slot, now))
            .collect();
        views.sort_by(|a, b| a.name.cmp(&b.name));
        views
    }

    /// Deletes a schedule (jobs it already enqueued stay).
    pub async fn delete_schedule(&self, name: &str) -> Result<(), BrokerError> {
        let admission = self.store.admit().await?;
        let submitted = {
            let mut state = self.state.lock();
            state
                .schedules
                .remove(name)
                .ok_or(BrokerError::ScheduleNotFound)?;
            self.submit(
                admission,
                Prepared::ops(vec![WriteOp::DeleteSchedule {
                    name: name.to_owned(),
                    at: self.now(),
                }]),
            )
        };
        self.committed(submitted).await?;
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
        let (submitted, view) = {
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
                event: if paused {
                    ScheduleEvent::Paused
                } else {
                    ScheduleEvent::Resumed
                },
                at: now,
            };
            let view = view(name, &slot, now);
            self.activate(&mut state, name, slot);
            (self.submit(admission, Prepared::ops(vec![op])), view)
        };
        self.committed(submitted).await?;
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
        let mut enqueued = self.insert_jobs(&queue, vec![job], Vec::new()).await?;
        enqueued.pop().ok_or(BrokerError::ScheduleNotFound)
    }

    /// Fires every active schedule whose due time has passed: one job each, written together
    /// with the schedule's new fire times. Returns how many fired.
    pub async fn fire_due_schedules(&self) -> Result<usize, BrokerError> {
        let mut fired = 0;
        loop {
            let admission = self.store.admit().await?;
            let now = self.now();
            let (submitted, slots) = {
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
                let slots = self.prepare_jobs(
                    &mut state,
                    &queue,
                    vec![job],
                    Depth::Unlimited,
                    now,
                    &mut prepared,
                )?;
                slot.record.last_fire = Some(due);
                slot.record.next_fire = slot.cron.next_after(now);
                let job_id = slots.first().map_or(0, |(id, _)| *id);
                prepared.ops.push(WriteOp::PutSchedule {
                    name: name.clone(),
                    record: slot.record.clone(),
                    event: ScheduleEvent::Fired { job_id },
                    at: now,
                });
                self.activate(&mut state, &name, slot);
                (self.submit(admission, prepared), slots)
            };
            Placement::new(self, submitted, vec![slots], now)
                .finish()
                .await?;
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

/// The job a fire of schedule `name` due at `due` enqueues: the template, with the headers
/// that name the schedule and the due time in place of any template headers of those names.
fn template_job(name: &str, template: &JobTemplate, due: Millis) -> NewJob {
    let mut headers: Vec<(String, String)> = template
        .headers
        .iter()
        .filter(|(name, _)| !SCHEDULE_HEADERS.contains(&name.as_str()))
        .cloned()
        .collect();
    headers.push((SCHEDULE_HEADERS[0].into(), name.to_owned()));
    headers.push((SCHEDULE_HEADERS[1].into(), rfc3339(due)));
    NewJob {
        payload: template.payload.clone(),
        priority: template.priority,
        run_at: None,
        max_attempts: template.max_attempts,
        lease_ms: template.lease_ms,
        headers,
        idempotency_key: None,
        group: None,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fire_replaces_template_headers_of_the_schedule_header_names() {
        let template = JobTemplate {
            payload: "1".into(),
            priority: 128,
            max_attempts: None,
            lease_ms: None,
            headers: vec![
                ("wharf-schedule".into(), "forged".into()),
                ("trace".into(), "t".into()),
            ],
        };
        let job = template_job("nightly", &template, 0);
        assert_eq!(
            job.headers,
            [
                ("trace".to_owned(), "t".to_owned()),
                ("wharf-schedule".to_owned(), "nightly".to_owned()),
                (
                    "wharf-due-at".to_owned(),
                    "1970-01-01T00:00:00.000Z".to_owned()
                ),
            ]
        );
    }
}
