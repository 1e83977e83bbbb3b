//! Retention: finished and dead jobs are purged once their queue's retention has passed, and
//! idempotency keys are forgotten once their window has, in bounded batches on a background
//! task so the write path never stalls behind a large purge.

use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use std::sync::atomic::Ordering;

use super::state::{Phase, QueueId, State};
use super::{Broker, BrokerError, Prepared, blocking, committed};
use crate::clock::Millis;
use crate::job::JobState;
use crate::storage::{StoredState, WriteOp};

/// Most jobs or keys one purge write touches.
pub const SWEEP_BATCH: usize = 256;
/// The sweeper looks at least this often, so a retention shortened by a queue update takes
/// effect without a wake-up.
const MAX_SWEEP_WAIT: Duration = Duration::from_secs(60);

impl Broker {
    /// The end of a finished job's retention (see [`State::retention_end`]); wakes the sweeper
    /// if that is earlier than what it sleeps until. Under the state lock.
    pub(super) fn retain_until(
        &self,
        state: &State,
        queue: QueueId,
        kind: JobState,
        now: Millis,
    ) -> Millis {
        let at = state.retention_end_by_id(queue, kind, now);
        if at < self.sweeper_target.load(Ordering::SeqCst) {
            self.sweeper_target.store(at, Ordering::SeqCst);
            self.sweeper_wake.notify_one();
        }
        at
    }

    /// Runs the retention sweeper until shutdown: sleeps until the earliest expiry (at most a
    /// minute), then purges what is due.
    pub async fn run_sweeper(self: Arc<Self>) {
        loop {
            let mut stop = pin!(self.shutdown_signal.notified());
            stop.as_mut().enable();
            if self.is_shutting_down() {
                return;
            }
            // Writers lower the target (and wake us) when a retention ends sooner. Their hint is
            // kept, not re-read from disk: the expiry it announces may not be committed yet.
            let hinted = self.sweeper_target.swap(Millis::MAX, Ordering::SeqCst);
            let stored = blocking(|| self.store.next_expiry()).ok().flatten();
            let next = stored
                .into_iter()
                .chain((hinted != Millis::MAX).then_some(hinted))
                .min();
            self.sweeper_target
                .fetch_min(next.unwrap_or(Millis::MAX), Ordering::SeqCst);
            let wait = match next {
                Some(at) if self.clock.is_system() => {
                    Duration::from_millis(at.saturating_sub(self.now())).min(MAX_SWEEP_WAIT)
                }
                _ => MAX_SWEEP_WAIT,
            };
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = self.sweeper_wake.notified() => {
                    // Woken for an earlier expiry: loop to sleep until it.
                    continue;
                }
                () = &mut stop => return,
            }
            if let Err(error) = self.purge_expired().await {
                tracing::error!(%error, "retention purge failed");
            }
        }
    }

    /// Purges every job whose retention has ended and forgets every idempotency key whose
    /// window has, in batches of [`SWEEP_BATCH`]. Returns (jobs purged, keys forgotten).
    pub async fn purge_expired(&self) -> Result<(u64, u64), BrokerError> {
        let (mut jobs, mut keys) = (0, 0);
        loop {
            let now = self.now();
            let candidates = blocking(|| self.store.expired_jobs(now, SWEEP_BATCH))?;
            let more_jobs = candidates.len() == SWEEP_BATCH;
            if !candidates.is_empty() {
                let admission = self.store.admit().await?;
                let (pending, purged) = {
                    let mut state = self.state.lock();
                    let mut ops = Vec::with_capacity(candidates.len());
                    let mut purged = 0;
                    for (at, id, record) in candidates {
                        let finished = record.as_ref().and_then(|r| match r.state {
                            StoredState::Succeeded { finished_at } => {
                                Some((JobState::Succeeded, finished_at))
                            }
                            StoredState::Cancelled { finished_at } => {
                                Some((JobState::Cancelled, finished_at))
                            }
                            StoredState::Dead { died_at } => Some((JobState::Dead, died_at)),
                            StoredState::Queued { .. } | StoredState::Leased { .. } => None,
                        });
                        // A dead job counts only while memory agrees it is dead: memory decides,
                        // so a concurrent replay wins over the purge.
                        let dead_in_memory =
                            state.jobs.get(&id).is_some_and(|s| s.phase == Phase::Dead);
                        let (Some(record), Some((kind, since))) = (record, finished) else {
                            ops.push(WriteOp::MoveExpiry {
                                id,
                                from: at,
                                to: None,
                            });
                            continue;
                        };
                        if kind == JobState::Dead && !dead_in_memory {
                            ops.push(WriteOp::MoveExpiry {
                                id,
                                from: at,
                                to: None,
                            });
                            continue;
                        }
                        let end = state.retention_end(&record.queue, kind, since);
                        if end > now {
                            // The queue's retention grew since this entry was written.
                            ops.push(WriteOp::MoveExpiry {
                                id,
                                from: at,
                                to: Some(end),
                            });
                            continue;
                        }
                        if kind == JobState::Dead {
                            state.unplace(id);
                        } else {
                            state.uncount_finished(&record.queue, kind);
                        }
                        ops.push(WriteOp::Delete {
                            id,
                            expiry: Some(at),
                        });
                        purged += 1;
                    }
                    // A purge lost in a crash is simply redone after the restart: no fsync needed.
                    let prepared = Prepared {
                        durable: false,
                        ..Prepared::ops(ops)
                    };
                    (self.submit(admission, prepared), purged)
                };
                committed(pending).await?;
                jobs += purged;
            }
            let expired = blocking(|| self.store.expired_keys(now, SWEEP_BATCH))?;
            let more_keys = expired.len() == SWEEP_BATCH;
            if !expired.is_empty() {
                keys += expired.len() as u64;
                let admission = self.store.admit().await?;
                let ops = expired
                    .into_iter()
                    .map(|(expires_at, key)| WriteOp::ForgetKey { key, expires_at })
                    .collect();
                let pending = self.submit(
                    admission,
                    Prepared {
                        durable: false,
                        ..Prepared::ops(ops)
                    },
                );
                committed(pending).await?;
            }
            if !more_jobs && !more_keys {
                return Ok((jobs, keys));
            }
        }
    }
}
