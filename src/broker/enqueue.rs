//! Enqueue: store first, then make visible.

use std::sync::atomic::Ordering;

use super::state::{Phase, Slot};
use super::{Broker, BrokerError, Enqueued, NewJob, Prepared, committed};
use crate::job::{JobId, JobState, valid_queue_name};
use crate::storage::{JobBody, JobRecord, QueueRecord, StoredState, WriteOp};

impl Broker {
    /// Enqueues `jobs` into `queue` (created with the server defaults on first use), all or
    /// nothing. Returns once the write is durable; only then can a poll see the jobs.
    pub async fn enqueue(
        &self,
        queue: &str,
        jobs: Vec<NewJob>,
    ) -> Result<Vec<Enqueued>, BrokerError> {
        if !valid_queue_name(queue) {
            return Err(BrokerError::InvalidQueueName);
        }
        let admission = self.store.admit().await?;
        let now = self.now();
        let mut prepared = Prepared::default();
        let mut slots = Vec::with_capacity(jobs.len());
        let pending = {
            let mut state = self.state.lock();
            let (queue, created) = state.queue_or_create(queue, self.queue_defaults);
            let config = state.queues[&queue].config;
            if created {
                prepared.ops.push(WriteOp::PutQueue {
                    name: queue.to_string(),
                    record: QueueRecord::from(config),
                });
            }
            let first = self.next_id.fetch_add(jobs.len() as u64, Ordering::Relaxed);
            for (id, job) in (first..).zip(jobs) {
                let run_at = job.run_at.unwrap_or(now);
                let max_attempts = job.max_attempts.unwrap_or(config.max_attempts);
                let record = JobRecord {
                    queue: queue.to_string(),
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
                prepared.ops.push(WriteOp::Insert { id, record, body });
                slots.push((
                    id,
                    Slot {
                        queue: queue.clone(),
                        priority: job.priority,
                        phase: Phase::Scheduled { run_at },
                        attempts: 0,
                        max_attempts,
                        lease_ms: job.lease_ms,
                    },
                ));
            }
            self.submit(admission, prepared)
        };
        committed(pending).await?;

        let mut state = self.state.lock();
        let mut earliest = u64::MAX;
        let mut woke = false;
        let mut enqueued = Vec::with_capacity(slots.len());
        let queue = slots.first().map(|(_, s)| s.queue.clone());
        for (id, slot) in slots {
            let became_ready = state.place(id, slot, now);
            woke |= became_ready;
            if !became_ready
                && let Some(Phase::Scheduled { run_at }) = state.jobs.get(&id).map(|s| s.phase)
            {
                earliest = earliest.min(run_at);
            }
            let job_state = if became_ready {
                JobState::Ready
            } else {
                JobState::Scheduled
            };
            enqueued.push(Enqueued {
                id: JobId(id),
                state: job_state,
            });
        }
        if let Some(queue) = queue {
            if let Some(q) = state.queues.get_mut(&queue) {
                q.counters.enqueued += enqueued.len() as u64;
            }
            if woke {
                state.wake(&queue);
            }
        }
        drop(state);
        if earliest != u64::MAX {
            self.timer_wake.notify_one();
        }
        Ok(enqueued)
    }
}
