//! Retention: finished and dead jobs are purged once their queue's retention has passed, and
//! idempotency keys are forgotten once their window has, in bounded batches on a background
//! task so the write path never stalls behind a large purge.
//!
//! The sweeper sleeps until the earliest entry of the expiry indexes on disk. The writer thread
//! tells it about every commit that adds an entry (an ack, a cancel, a job going dead, an
//! enqueue with an idempotency key; [`ExpiryWatch`]), and it wakes if that entry is earlier than
//! what it sleeps until. It always re-reads the index before sleeping, so a hint is only a
//! wake-up, never a deadline it keeps: a hint already handled (or already in the past) cannot
//! keep it awake. A failed look or purge is retried after 1 s, doubling up to a minute.

use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::background::{count_look, set_asleep};
use super::state::Phase;
use super::{Broker, BrokerError, Prepared, blocking};
use crate::clock::Millis;
use crate::job::JobState;
use crate::storage::{DeleteReason, ExpiryWatch, StoredState, WriteOp};

/// The wait after `failures` failed looks in a row: 1 s, doubling up to a minute.
fn retry_delay(failures: u32) -> Millis {
    1_000u64.saturating_mul(1 << failures.min(16)).min(60_000)
}

/// Most jobs or keys one purge write touches.
pub const SWEEP_BATCH: usize = 256;

impl Broker {
    /// Runs the retention sweeper until shutdown: sleeps until the earliest expiry, then purges
    /// what is due.
    pub async fn run_sweeper(self: Arc<Self>) {
        let watch = self.store.expiry_watch();
        // Failed looks in a row: a read can fail on an I/O error while writes still work, so
        // the sweeper retries, after 1 s, doubling up to a minute.
        let mut failures = 0u32;
        loop {
            let mut stop = pin!(self.shutdown_signal.notified());
            stop.as_mut().enable();
            let mut woken = pin!(watch.notified());
            woken.as_mut().enable();
            if self.is_shutting_down() {
                return;
            }
            let wake_at = match self.look(watch).await {
                Ok(None) => {
                    failures = 0;
                    continue;
                }
                Ok(Some(next)) => {
                    failures = 0;
                    next
                }
                Err(error) => {
                    let delay = retry_delay(failures);
                    failures = failures.saturating_add(1);
                    tracing::error!(%error, retry_in_ms = delay, "retention purge failed");
                    let at = self.now().saturating_add(delay);
                    // The target keeps `settle` from waiting for the retry.
                    watch.sleep_until(at);
                    at
                }
            };
            set_asleep(&self.sweeper_status, true);
            tokio::select! {
                () = self.clock.sleep_until((wake_at != Millis::MAX).then_some(wake_at)) => {}
                () = woken => {}
                () = &mut stop => return,
            }
            set_asleep(&self.sweeper_status, false);
        }
    }

    /// One look at the expiry index: purges what is due and returns `None` (look again), or
    /// returns the time of the next entry (`u64::MAX`: none) to sleep until.
    async fn look(&self, watch: &ExpiryWatch) -> Result<Option<Millis>, BrokerError> {
        // Hints are taken before the index is read: every hint is for an entry already
        // committed, so the read below sees it.
        watch.take_hints();
        count_look(&self.sweeper_status);
        let next = blocking(|| self.store.next_expiry())?.unwrap_or(Millis::MAX);
        if !watch.sleep_until(next) {
            return Ok(None);
        }
        if next > self.now() {
            return Ok(Some(next));
        }
        self.purge_expired().await?;
        Ok(None)
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
                            state.remove(id);
                        } else {
                            state.uncount_finished(&record.queue, kind);
                        }
                        ops.push(WriteOp::Delete {
                            id,
                            expiry: Some(at),
                            reason: DeleteReason::Retention,
                            at: now,
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
