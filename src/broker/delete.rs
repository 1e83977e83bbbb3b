//! Deleting a queue: its jobs in every state, its idempotency keys, then the queue itself.
//!
//! A queue may hold millions of jobs, so the deletion is a series of bounded writes, like a
//! purge: the live jobs (scheduled, ready, leased, dead) from memory, the finished ones
//! (succeeded, cancelled, only counted in memory) from a scan of the expiry index, the keys
//! from the idempotency table. The last write deletes the jobs left, if any, and the queue's
//! settings together, under the state lock, once no enqueue into the queue is in flight:
//! afterwards no job names the queue in memory, and its name is free (an enqueue creates it
//! again, with the server defaults). A job enqueued while the deletion runs is deleted with
//! the rest. Two races are left to retention: a job finished by an ack racing the scan, and
//! an idempotency key written after the keys were read, outlive the queue until their
//! retention or window ends.
//!
//! Leased jobs go too: their consumers' acks, nacks and extends then answer `job_not_found`,
//! as for any job that no longer exists.

use std::time::Duration;

use super::admin::CHUNK;
use super::{Broker, BrokerError, Prepared, blocking};
use crate::job::JobState;
use crate::storage::{DeleteReason, WriteOp};

/// Expiry-index entries one read of the finished-jobs scan looks at.
const SCAN: usize = 16 * 1024;

impl Broker {
    /// Deletes `queue` with every job and idempotency key it has; returns how many jobs were
    /// deleted. Refused while schedules enqueue into it ([`BrokerError::QueueInUse`]).
    pub async fn delete_queue(&self, queue: &str) -> Result<u64, BrokerError> {
        {
            let state = self.state.lock();
            state.queue(queue).ok_or(BrokerError::QueueNotFound)?;
            let mut schedules: Vec<String> = state
                .schedules
                .by_name
                .iter()
                .filter(|(_, s)| s.record.queue == queue)
                .map(|(name, _)| name.clone())
                .collect();
            if !schedules.is_empty() {
                schedules.sort();
                return Err(BrokerError::QueueInUse { schedules });
            }
        }
        let mut deleted = self.delete_live_jobs(queue).await?;
        deleted += self.delete_finished_jobs(queue).await?;
        self.forget_keys_of(queue).await?;
        loop {
            let admission = self.store.admit().await?;
            let now = self.now();
            let step = {
                let mut state = self.state.lock();
                match state.queue(queue) {
                    // Deleted meanwhile by another request.
                    None => Step::Gone,
                    // An enqueue into it is being written; its jobs are placed right after.
                    Some(q) if q.pending > 0 => Step::Wait,
                    Some(q) => {
                        let ids = live_ids(q);
                        let last = ids.len() < CHUNK;
                        let mut prepared = Prepared::default();
                        for &id in &ids {
                            state.remove(id);
                            prepared.ops.push(delete_op(id, None, now));
                        }
                        deleted += ids.len() as u64;
                        if last {
                            prepared.ops.push(WriteOp::QueueDeleted {
                                queue: queue.to_owned(),
                                jobs: deleted,
                                at: now,
                            });
                            // Long-polls on it wait on: as on any queue not created yet, an
                            // enqueue that creates it again wakes them.
                            state.delete_queue(queue);
                        }
                        Step::Write(self.submit(admission, prepared), last)
                    }
                }
            };
            match step {
                Step::Gone => return Ok(deleted),
                Step::Wait => tokio::time::sleep(Duration::from_millis(1)).await,
                Step::Write(submitted, last) => {
                    self.committed(submitted).await?;
                    if last {
                        return Ok(deleted);
                    }
                }
            }
        }
    }

    /// Deletes the queue's live jobs in chunks; how many.
    async fn delete_live_jobs(&self, queue: &str) -> Result<u64, BrokerError> {
        let mut deleted = 0;
        loop {
            let admission = self.store.admit().await?;
            let now = self.now();
            let (submitted, count) = {
                let mut state = self.state.lock();
                let Some(q) = state.queue(queue) else {
                    return Ok(deleted);
                };
                let ids = live_ids(q);
                let mut prepared = Prepared::default();
                for &id in &ids {
                    state.remove(id);
                    prepared.ops.push(delete_op(id, None, now));
                }
                (self.submit(admission, prepared), ids.len())
            };
            self.committed(submitted).await?;
            deleted += count as u64;
            if count < CHUNK {
                return Ok(deleted);
            }
        }
    }

    /// Deletes the queue's succeeded and cancelled jobs, found in the expiry index; how many.
    async fn delete_finished_jobs(&self, queue: &str) -> Result<u64, BrokerError> {
        let mut deleted = 0;
        let mut after = None;
        loop {
            let (found, next) = blocking(|| self.store.finished_jobs_of(queue, after, SCAN))?;
            for chunk in found.chunks(CHUNK) {
                let admission = self.store.admit().await?;
                let now = self.now();
                let ops = chunk
                    .iter()
                    .map(|&(expires_at, id)| delete_op(id, Some(expires_at), now))
                    .collect();
                let submitted = self.submit(admission, Prepared::ops(ops));
                // Counted by the `job.deleted` events written: the index may name a job twice
                // (a stale entry of a dead job that was replayed and then finished).
                let written = self.committed(submitted).await?;
                deleted += written.events.end - written.events.start;
            }
            match next {
                Some(next) => after = Some(next),
                None => return Ok(deleted),
            }
        }
    }

    /// Forgets the queue's idempotency keys, so that a queue created again under its name
    /// starts with none.
    async fn forget_keys_of(&self, queue: &str) -> Result<(), BrokerError> {
        loop {
            let keys = blocking(|| self.store.keys_of(queue, CHUNK))?;
            let more = keys.len() == CHUNK;
            if !keys.is_empty() {
                let admission = self.store.admit().await?;
                let ops = keys
                    .into_iter()
                    .map(|(key, expires_at)| WriteOp::ForgetKey { key, expires_at })
                    .collect();
                let submitted = self.submit(admission, Prepared::ops(ops));
                self.committed(submitted).await?;
            }
            if !more {
                return Ok(());
            }
        }
    }
}

/// What the last loop of a deletion does next.
enum Step {
    /// The queue is gone already.
    Gone,
    /// Wait for an enqueue in flight to be placed.
    Wait,
    /// Write this (the last write of the deletion if the flag says so).
    Write(Option<super::Pending>, bool),
}

/// Up to [`CHUNK`] ids of the queue's live jobs: scheduled, ready, leased and dead.
fn live_ids(q: &super::state::QueueState) -> Vec<u64> {
    let members = |state: JobState| q.members[state.index()].iter().copied();
    members(JobState::Scheduled)
        .chain(q.ready_ids())
        .chain(members(JobState::Leased))
        .chain(members(JobState::Dead))
        .take(CHUNK)
        .collect()
}

fn delete_op(id: u64, expiry: Option<u64>, at: u64) -> WriteOp {
    WriteOp::Delete {
        id,
        expiry,
        reason: DeleteReason::QueueDeleted,
        at,
    }
}
