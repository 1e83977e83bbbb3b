//! Enqueue: store first, then make visible.

use std::sync::atomic::Ordering;

use super::state::{Phase, Slot, State, slot_lease_ms, slot_max_attempts};
use super::views::public_state;
use super::{Broker, BrokerError, Enqueued, NewJob, Prepared};
use crate::clock::Millis;
use crate::job::{JobId, JobState, valid_queue_name};
use crate::storage::{
    IdempotencyKey, JobBody, JobRecord, Pending, QueueRecord, StoredState, WriteOp, Written,
};
use tokio::runtime::Handle;

/// Jobs prepared for one insert request, to place in memory once it commits.
pub(super) type PreparedJobs = Vec<(u64, Slot)>;

/// Places an insert's jobs in memory once it has committed, also when the request that
/// submitted it is dropped meanwhile (a client that disconnects before its fsync): a job that
/// was stored must be deliverable, not only found again after a restart.
pub(super) struct Placement<'a> {
    broker: &'a Broker,
    pending: Option<Pending>,
    slots: Option<PreparedJobs>,
    now: Millis,
}

impl<'a> Placement<'a> {
    pub(super) fn new(
        broker: &'a Broker,
        pending: Option<Pending>,
        slots: PreparedJobs,
        now: Millis,
    ) -> Placement<'a> {
        Placement {
            broker,
            pending,
            slots: Some(slots),
            now,
        }
    }

    /// Waits for the commit, then places the jobs; returns each job's outcome.
    pub(super) async fn finish(mut self) -> Result<Vec<Enqueued>, BrokerError> {
        let written = match self.pending.as_mut() {
            Some(pending) => match pending.await {
                Ok(result) => result.map_err(BrokerError::from),
                Err(_) => Err(BrokerError::ShuttingDown),
            },
            None => Ok(Written::default()),
        };
        self.pending = None;
        let slots = self.slots.take().unwrap_or_default();
        Ok(self.broker.place_enqueued(slots, written?, self.now))
    }
}

impl Drop for Placement<'_> {
    fn drop(&mut self) {
        let (Some(pending), Some(slots)) = (self.pending.take(), self.slots.take()) else {
            return;
        };
        let (Some(broker), Ok(runtime)) = (self.broker.me.upgrade(), Handle::try_current()) else {
            return;
        };
        let now = self.now;
        runtime.spawn(async move {
            if let Ok(Ok(written)) = pending.await {
                broker.place_enqueued(slots, written, now);
            }
        });
    }
}

impl Broker {
    /// Enqueues `jobs` into `queue` (created with the server defaults on first use), all or
    /// nothing: a job that breaks a rule is [`BrokerError::InvalidItem`] and nothing is
    /// enqueued. Returns once the write is durable; only then can a poll see the jobs.
    ///
    /// A job whose idempotency key already maps to a job of this queue within the key's window
    /// creates nothing: its outcome names the original job with `duplicate: true`. The check
    /// runs on the writer thread inside the commit, so concurrent enqueues with one key create
    /// exactly one job.
    pub async fn enqueue(
        &self,
        queue: &str,
        jobs: Vec<NewJob>,
    ) -> Result<Vec<Enqueued>, BrokerError> {
        if !valid_queue_name(queue) {
            return Err(BrokerError::InvalidQueueName);
        }
        if jobs.is_empty() {
            return Err(super::Invalid {
                field: "jobs",
                rule: "must hold at least one job".into(),
                kind: super::Limit::Value,
            }
            .into());
        }
        self.limits.check_batch("jobs", jobs.len())?;
        let now = self.now();
        for (index, job) in jobs.iter().enumerate() {
            self.limits
                .check_job(job, now)
                .map_err(|error| BrokerError::InvalidItem { index, error })?;
        }
        self.insert_jobs(queue, jobs).await
    }

    /// Enqueues jobs already checked (or, for a schedule's trigger, checked when the schedule
    /// was put: its fires are not refused by a limit lowered since).
    pub(super) async fn insert_jobs(
        &self,
        queue: &str,
        jobs: Vec<NewJob>,
    ) -> Result<Vec<Enqueued>, BrokerError> {
        let admission = self.store.admit().await?;
        let now = self.now();
        let (submitted, slots) = {
            let mut state = self.state.lock();
            let mut prepared = Prepared::default();
            let slots = self.prepare_jobs(&mut state, queue, jobs, now, &mut prepared)?;
            (self.submit(admission, prepared), slots)
        };
        Placement::new(self, submitted, slots, now).finish().await
    }

    /// Adds the writes that store `jobs` in `queue` (creating the queue if new) to `prepared`,
    /// and returns their slots. Call under the state lock. Fails (changing nothing) only when
    /// the queue is new and no queue id is left.
    pub(super) fn prepare_jobs(
        &self,
        state: &mut State,
        queue: &str,
        jobs: Vec<NewJob>,
        now: Millis,
        prepared: &mut Prepared,
    ) -> Result<PreparedJobs, BrokerError> {
        let (queue_id, created) = state.queue_or_create(queue, self.queue_defaults)?;
        let config = state
            .queue_by_id(queue_id)
            .map_or(self.queue_defaults, |q| q.config);
        if created {
            prepared.ops.push(WriteOp::PutQueue {
                name: queue.to_owned(),
                record: QueueRecord::from(config),
                at: now,
            });
        }
        let first = self.next_id.fetch_add(jobs.len() as u64, Ordering::Relaxed);
        let mut slots = Vec::with_capacity(jobs.len());
        for (id, job) in (first..).zip(jobs) {
            let run_at = job.run_at.map_or(now, |r| r.resolve(now));
            let max_attempts = job.max_attempts.unwrap_or(config.max_attempts);
            let record = JobRecord {
                queue: queue.to_owned(),
                priority: job.priority,
                state: StoredState::Queued { run_at },
                attempts: 0,
                max_attempts,
                lease_ms: job.lease_ms,
                enqueued_at: now,
                updated_at: now,
                last_error: None,
                version: 1,
            };
            let body = JobBody {
                payload: job.payload,
                headers: job.headers,
            };
            let idempotency = job.idempotency_key.map(|key| IdempotencyKey {
                key: format!("{queue}\0{key}"),
                expires_at: now.saturating_add(config.idempotency_window_ms),
            });
            prepared.ops.push(WriteOp::Insert {
                id,
                record,
                body,
                idempotency,
            });
            let slot = Slot {
                queue: queue_id,
                priority: job.priority,
                phase: Phase::Scheduled { run_at },
                attempts: 0,
                max_attempts: slot_max_attempts(max_attempts),
                lease_ms: slot_lease_ms(job.lease_ms),
            };
            slots.push((id, slot));
        }
        Ok(slots)
    }

    /// Makes committed jobs visible (or reports the original of a duplicate), wakes waiters and
    /// the timer.
    pub(super) fn place_enqueued(
        &self,
        slots: PreparedJobs,
        written: Written,
        now: Millis,
    ) -> Vec<Enqueued> {
        let mut state = self.state.lock();
        let mut earliest = u64::MAX;
        let mut woke = false;
        let mut created = 0;
        let mut enqueued = Vec::with_capacity(slots.len());
        let queue = slots.first().map(|(_, s)| s.queue);
        let duplicates = written
            .duplicates
            .into_iter()
            .chain(std::iter::repeat(None));
        for ((id, slot), duplicate) in slots.into_iter().zip(duplicates) {
            if let Some(original) = duplicate {
                enqueued.push(Enqueued {
                    id: JobId(original.id),
                    state: original.state.map(|s| public_state(&s, now)),
                    duplicate: true,
                });
                continue;
            }
            if let Phase::Scheduled { run_at } = slot.phase
                && run_at > now
            {
                earliest = earliest.min(run_at);
            }
            let became_ready = state.place(id, slot, now);
            woke |= became_ready;
            created += 1;
            let job_state = if became_ready {
                JobState::Ready
            } else {
                JobState::Scheduled
            };
            enqueued.push(Enqueued {
                id: JobId(id),
                state: Some(job_state),
                duplicate: false,
            });
        }
        if let Some(queue) = queue {
            if let Some(q) = state.queue_by_id_mut(queue) {
                q.counters.enqueued += created;
            }
            if woke {
                state.wake_by_id(queue);
            }
        }
        if earliest != u64::MAX {
            self.deadline_added(earliest);
        }
        enqueued
    }
}
