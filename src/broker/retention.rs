//! Retention: finished and dead jobs are purged once their queue's retention has passed, and
//! idempotency keys are forgotten once their window has, in bounded batches on a background
//! task so the write path never stalls behind a large purge.
//!
//! The sweeper sleeps until the earliest entry of the expiry indexes on disk. Every write that
//! adds an entry (an ack, a cancel, a job going dead, an enqueue with an idempotency key) tells
//! it once the write has committed ([`Broker::expiry_committed`]), and it wakes if that entry is
//! earlier than what it sleeps until. It always re-reads the index before sleeping, so a hint is
//! only a wake-up, never a deadline it keeps: a hint already handled (or already in the past)
//! cannot keep it awake.

use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::background::{count_look, set_asleep};
use super::state::Phase;
use super::{Broker, BrokerError, Prepared, blocking};
use crate::clock::Millis;
use crate::job::JobState;
use crate::storage::{StoredState, WriteOp};

/// Most jobs or keys one purge write touches.
pub const SWEEP_BATCH: usize = 256;

impl Broker {
    /// Wakes the sweeper for an expiry index entry at `at` that a write has just committed, if
    /// it sleeps until later than that.
    pub(super) fn expiry_committed(&self, at: Millis) {
        self.sweeper_hint.fetch_min(at, Ordering::SeqCst);
        if at < self.sweeper_target.load(Ordering::SeqCst) {
            self.sweeper_wake.notify_one();
        }
    }

    /// Runs the retention sweeper until shutdown: sleeps until the earliest expiry, then purges
    /// what is due.
    pub async fn run_sweeper(self: Arc<Self>) {
        loop {
            let mut stop = pin!(self.shutdown_signal.notified());
            stop.as_mut().enable();
            let mut woken = pin!(self.sweeper_wake.notified());
            woken.as_mut().enable();
            if self.is_shutting_down() {
                return;
            }
            // Hints are taken before the index is read: every hint is for an entry already
            // committed, so the read below sees it.
            self.sweeper_hint.store(Millis::MAX, Ordering::SeqCst);
            count_look(&self.sweeper_status);
            let next = match blocking(|| self.store.next_expiry()) {
                Ok(next) => next.unwrap_or(Millis::MAX),
                Err(error) => {
                    self.sweeper_failed(BrokerError::from(error), stop).await;
                    continue;
                }
            };
            self.sweeper_target.store(next, Ordering::SeqCst);
            // An entry committed after the read, whose writer compared with the old target:
            // look again rather than sleep past it.
            if self.sweeper_hint.load(Ordering::SeqCst) < next {
                continue;
            }
            let now = self.now();
            if next <= now {
                if let Err(error) = self.purge_expired().await {
                    self.sweeper_failed(error, stop).await;
                }
                continue;
            }
            set_asleep(&self.sweeper_status, true);
            tokio::select! {
                () = self.clock.sleep_until((next != Millis::MAX).then_some(next)) => {}
                () = woken => {}
                () = &mut stop => return,
            }
            set_asleep(&self.sweeper_status, false);
        }
    }

    /// After a failed look or purge (only a failed or closed store fails them, and nothing can
    /// be written until a restart): sleeps until woken or stopped instead of retrying at once.
    async fn sweeper_failed(
        &self,
        error: BrokerError,
        stop: std::pin::Pin<&mut tokio::sync::futures::Notified<'_>>,
    ) {
        tracing::error!(%error, "retention purge failed");
        self.sweeper_target.store(Millis::MAX, Ordering::SeqCst);
        set_asleep(&self.sweeper_status, true);
        tokio::select! {
            () = self.sweeper_wake.notified() => {}
            () = stop => {}
        }
        set_asleep(&self.sweeper_status, false);
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
                let (submitted, purged) = {
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
                    let mut prepared = Prepared::lazy();
                    prepared.ops = ops;
                    (self.submit(admission, prepared), purged)
                };
                self.committed(submitted).await?;
                self.purged_jobs.fetch_add(purged, Ordering::Relaxed);
                jobs += purged;
            }
            let expired = blocking(|| self.store.expired_keys(now, SWEEP_BATCH))?;
            let more_keys = expired.len() == SWEEP_BATCH;
            if !expired.is_empty() {
                let expired_count = expired.len() as u64;
                keys += expired_count;
                let admission = self.store.admit().await?;
                let ops = expired
                    .into_iter()
                    .map(|(expires_at, key)| WriteOp::ForgetKey { key, expires_at })
                    .collect();
                let mut prepared = Prepared::lazy();
                prepared.ops = ops;
                let submitted = self.submit(admission, prepared);
                self.committed(submitted).await?;
                self.forgotten_keys
                    .fetch_add(expired_count, Ordering::Relaxed);
            }
            if !more_jobs && !more_keys {
                return Ok((jobs, keys));
            }
        }
    }
}
