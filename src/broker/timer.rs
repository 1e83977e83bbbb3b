//! The timer: one task that sleeps until the earliest deadline (a scheduled job due, a lease
//! expiring) or until woken because an earlier one appeared. No fixed-tick polling.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::lease::Failure;
use super::state::Phase;
use super::{Broker, Prepared, committed};
use crate::clock::Millis;

/// Most expired leases handled in one write, so a mass expiry never builds a huge transaction.
const EXPIRY_BATCH: usize = 1024;

impl Broker {
    /// Runs the timer until shutdown. With a manual clock it only reacts to wake-ups; tests
    /// drive deadlines with [`Broker::run_due`].
    pub async fn run_timer(self: Arc<Self>) {
        loop {
            let woken = self.timer_wake.notified();
            if self.is_shutting_down() {
                return;
            }
            let next = {
                // Set the target under the lock, so a deadline added concurrently either is
                // seen here or sees the new target and wakes us.
                let state = self.state.lock();
                let next = state.next_deadline();
                self.timer_target
                    .store(next.unwrap_or(Millis::MAX), Ordering::SeqCst);
                next
            };
            let sleep = match next {
                Some(at) if self.clock.is_system() => {
                    Duration::from_millis(at.saturating_sub(self.now()))
                }
                _ => Duration::from_secs(3600),
            };
            tokio::select! {
                () = tokio::time::sleep(sleep) => {}
                () = woken => {}
            }
            if self.is_shutting_down() {
                return;
            }
            self.run_due().await;
        }
    }

    /// Wakes the timer if `at` is earlier than what it sleeps until.
    pub(super) fn deadline_added(&self, at: Millis) {
        if at < self.timer_target.load(Ordering::SeqCst) {
            self.timer_target.store(at, Ordering::SeqCst);
            self.timer_wake.notify_one();
        }
    }

    /// Applies every deadline that has passed: scheduled jobs due become ready (memory only:
    /// the stored `run_at` already says so), expired leases count as failed attempts, and due
    /// cron schedules fire.
    pub async fn run_due(&self) {
        loop {
            let Ok(admission) = self.store.admit().await else {
                return;
            };
            let now = self.now();
            let (pending, more) = {
                let mut state = self.state.lock();
                let due: Vec<u64> = state
                    .delayed
                    .iter()
                    .take_while(|&&(at, _)| at <= now)
                    .map(|&(_, id)| id)
                    .collect();
                for id in due {
                    if let Some(slot) = state.unplace(id) {
                        let queue = slot.queue;
                        if state.place(id, slot, now) {
                            state.wake_by_id(queue);
                        }
                    }
                }
                let expired: Vec<u64> = state
                    .leases
                    .iter()
                    .take_while(|&&(at, _)| at <= now)
                    .take(EXPIRY_BATCH)
                    .map(|&(_, id)| id)
                    .collect();
                let more = expired.len() == EXPIRY_BATCH;
                let mut prepared = Prepared {
                    durable: false,
                    ..Prepared::default()
                };
                for id in expired {
                    let Some(slot) = state.unplace(id) else {
                        continue;
                    };
                    debug_assert!(matches!(slot.phase, Phase::Leased { .. }));
                    if let Some(q) = state.queue_by_id_mut(slot.queue) {
                        q.counters.expired += 1;
                    }
                    let failure = Failure {
                        error: Some("lease expired".into()),
                        delay_ms: None,
                        dead: false,
                    };
                    let (op, _) = self.fail_attempt(&mut state, id, slot, failure, now);
                    prepared.ops.push(op);
                }
                (self.submit(admission, prepared), more)
            };
            if let Err(error) = committed(pending).await {
                tracing::error!(%error, "could not store expired leases");
                return;
            }
            if !more {
                break;
            }
        }
        if let Err(error) = self.fire_due_schedules().await {
            tracing::error!(%error, "could not fire due schedules");
        }
    }
}
