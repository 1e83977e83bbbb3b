//! Cancel, replay, purge and queue settings.

use super::state::Phase;
use super::{Broker, BrokerError, Prepared, QueuePatch, QueueView};
use crate::job::{JobId, JobState};
use crate::storage::{DeleteReason, JobChange, JobEvent, QueueRecord, StoredState, WriteOp};
use crate::tenant::valid_full_name;

/// Most jobs one replay or purge write touches, so a huge one never builds one huge transaction.
pub const CHUNK: usize = 4096;

impl Broker {
    /// Cancels a job that is not leased. Cancelling a cancelled job succeeds again (DELETE is
    /// idempotent); a leased job is 409 `job_leased`, a succeeded one 409 `job_finished`.
    pub async fn cancel(&self, id: JobId) -> Result<(), BrokerError> {
        let admission = self.store.admit().await?;
        let now = self.now();
        let outcome = {
            let mut state = self.state.lock();
            match state.jobs.get(&id.0).map(|s| s.phase) {
                None => None,
                Some(Phase::Leased { .. }) => return Err(BrokerError::JobLeased),
                Some(_) => state.remove(id.0).map(|slot| {
                    state.count_finished(slot.queue, JobState::Cancelled);
                    let expires_at =
                        state.retention_end_by_id(slot.queue, JobState::Cancelled, now);
                    let change = JobChange {
                        event: JobEvent::Cancelled,
                        state: StoredState::Cancelled { finished_at: now },
                        attempts: u32::from(slot.attempts),
                        last_error: None,
                        result: None,
                        at: now,
                        expires_at: Some(expires_at),
                    };
                    self.submit(
                        admission,
                        Prepared::ops(vec![WriteOp::Update { id: id.0, change }]),
                    )
                }),
            }
        };
        let Some(submitted) = outcome else {
            // Not live in memory: finished, purged, unknown, or its enqueue is completing.
            return match self.read_stored(id.0).await? {
                None => Err(BrokerError::JobNotFound),
                Some(job) => match job.record.state {
                    StoredState::Cancelled { .. } => Ok(()),
                    StoredState::Succeeded { .. } => {
                        Err(BrokerError::JobFinished { state: "succeeded" })
                    }
                    _ => Err(BrokerError::JobBusy),
                },
            };
        };
        self.committed(submitted).await?;
        Ok(())
    }

    /// Makes dead jobs of `queue` ready again with their attempts reset: the given ids (others
    /// are skipped), or every dead job when `ids` is `None`. Returns the replayed ids. A large
    /// replay is written in chunks of [`CHUNK`] jobs, each one atomic.
    pub async fn replay(
        &self,
        queue: &str,
        ids: Option<Vec<JobId>>,
    ) -> Result<Vec<JobId>, BrokerError> {
        if let Some(ids) = &ids {
            self.limits.check_batch("ids", ids.len())?;
        }
        let mut replayed = Vec::new();
        let mut given = ids.map(|ids| ids.into_iter().map(|id| id.0).collect::<Vec<u64>>());
        loop {
            let admission = self.store.admit().await?;
            let now = self.now();
            let mut chunk = Vec::new();
            let (submitted, more) = {
                let mut state = self.state.lock();
                let queue_id = state.queue_id(queue).ok_or(BrokerError::QueueNotFound)?;
                let q = state
                    .queue_by_id(queue_id)
                    .ok_or(BrokerError::QueueNotFound)?;
                let candidates: Vec<u64> = match &mut given {
                    Some(ids) => ids.drain(..ids.len().min(CHUNK)).collect(),
                    None => q.members[JobState::Dead.index()]
                        .iter()
                        .take(CHUNK)
                        .copied()
                        .collect(),
                };
                let more = candidates.len() == CHUNK;
                let mut prepared = Prepared::default();
                for id in candidates {
                    let is_dead_here = state
                        .jobs
                        .get(&id)
                        .is_some_and(|s| s.phase == Phase::Dead && s.queue == queue_id);
                    let Some(mut slot) = is_dead_here.then(|| state.unplace(id)).flatten() else {
                        continue;
                    };
                    slot.attempts = 0;
                    slot.phase = Phase::Ready;
                    let change = JobChange {
                        event: JobEvent::Replayed,
                        state: StoredState::Queued { run_at: now },
                        attempts: 0,
                        last_error: None,
                        result: None,
                        at: now,
                        expires_at: None,
                    };
                    prepared.ops.push(WriteOp::Update { id, change });
                    state.place(id, slot, now);
                    chunk.push(JobId(id));
                }
                if !chunk.is_empty() {
                    state.wake(queue);
                }
                (self.submit(admission, prepared), more)
            };
            self.committed(submitted).await?;
            replayed.append(&mut chunk);
            if !more {
                return Ok(replayed);
            }
        }
    }

    /// Deletes every scheduled, ready and dead job of `queue` (leased jobs are left to finish;
    /// succeeded and cancelled ones stay readable), in atomic chunks of [`CHUNK`] jobs.
    /// Returns how many were deleted.
    pub async fn purge(&self, queue: &str) -> Result<u64, BrokerError> {
        let mut purged = 0;
        loop {
            let admission = self.store.admit().await?;
            let now = self.now();
            let (submitted, count) = {
                let mut state = self.state.lock();
                let q = state.queue(queue).ok_or(BrokerError::QueueNotFound)?;
                // Ready jobs are only in the ready index (in dispatch order, which does not
                // matter here: every chunk is deleted).
                let ids: Vec<u64> = q.members[JobState::Scheduled.index()]
                    .iter()
                    .copied()
                    .chain(q.ready_ids())
                    .chain(q.members[JobState::Dead.index()].iter().copied())
                    .take(CHUNK)
                    .collect();
                let mut prepared = Prepared::default();
                for &id in &ids {
                    state.remove(id);
                    prepared.ops.push(WriteOp::Delete {
                        id,
                        expiry: None,
                        reason: DeleteReason::Purge,
                        at: now,
                    });
                }
                if ids.len() < CHUNK {
                    // The last chunk also records the purge as a whole.
                    prepared.ops.push(WriteOp::QueuePurged {
                        queue: queue.to_owned(),
                        jobs: purged + ids.len() as u64,
                        at: now,
                    });
                }
                (self.submit(admission, prepared), ids.len())
            };
            self.committed(submitted).await?;
            purged += count as u64;
            if count < CHUNK {
                return Ok(purged);
            }
        }
    }

    /// Changes a queue's settings (creating the queue if new) and returns its view. The patch
    /// is applied to the settings the queue has under the state lock, and the result is checked
    /// there as a whole before anything changes, so concurrent patches can never combine into
    /// settings that break a rule (such as `backoff.base_ms <= backoff.cap_ms`). Pausing and
    /// resuming change no setting a rule is about, so they are never refused.
    pub async fn update_queue(
        &self,
        queue: &str,
        patch: QueuePatch,
    ) -> Result<QueueView, BrokerError> {
        if !valid_full_name(queue) {
            return Err(BrokerError::InvalidQueueName);
        }
        let checked = !patch.only_pauses();
        let patched = |state: &super::state::State| {
            let mut config = state
                .queue(queue)
                .map_or_else(|| self.queue_defaults.clone(), |q| q.config.clone());
            patch.apply(&mut config);
            config
        };
        if checked {
            // Refuse bad input before waiting for the writer (and before a failed store's
            // 503); the check that counts is the one under the lock below.
            patched(&self.state.lock()).check()?;
        }
        let admission = self.store.admit().await?;
        let (submitted, view) = {
            let mut state = self.state.lock();
            let config = patched(&state);
            if checked {
                config.check()?;
            }
            let (id, _) = state.queue_or_create(queue, &self.queue_defaults)?;
            let Some(q) = state.queue_by_id_mut(id) else {
                return Err(BrokerError::QueueNotFound);
            };
            let op = WriteOp::PutQueue {
                name: queue.to_owned(),
                record: QueueRecord::from(config.clone()),
                at: self.now(),
            };
            q.set_config(config);
            let view = QueueView {
                name: queue.to_owned(),
                config: q.config.clone(),
                counts: q.counts(),
            };
            if patch.paused == Some(false) {
                state.wake(queue);
            }
            (self.submit(admission, Prepared::ops(vec![op])), view)
        };
        self.committed(submitted).await?;
        Ok(view)
    }
}
