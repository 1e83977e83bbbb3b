//! The timer: one task that sleeps until the earliest deadline (a scheduled job due, a lease
//! expiring, a schedule firing) or until woken because an earlier one appeared. No fixed-tick
//! polling: an idle broker's timer does not wake.

use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::background::{count_look, set_asleep};
use super::lease::Failure;
use super::state::Phase;
use super::{Broker, BrokerError, Prepared};
use crate::clock::Millis;
use crate::storage::JobEvent;

/// Most expired leases handled in one write, so a mass expiry never builds a huge transaction.
const EXPIRY_BATCH: usize = 1024;

impl Broker {
    /// Runs the timer until shutdown. Deadlines are read from the broker's clock, so with a
    /// manual clock the timer reacts to [`Clock::advance`](crate::clock::Clock::advance).
    pub async fn run_timer(self: Arc<Self>) {
        let mut failed = false;
        loop {
            let mut woken = pin!(self.timer_wake.notified());
            woken.as_mut().enable();
            if self.is_shutting_down() {
                return;
            }
            let next = if failed {
                // Only a failed or closed store fails a pass, and nothing can be written until
                // a restart: sleep until woken (a new deadline, a shutdown) instead of retrying
                // at once.
                self.timer_target.store(Millis::MAX, Ordering::SeqCst);
                None
            } else {
                // Set the target under the lock, so a deadline added concurrently either is
                // seen here or sees the new target and wakes us.
                let state = self.state.lock();
                let next = state.next_deadline();
                self.timer_target
                    .store(next.unwrap_or(Millis::MAX), Ordering::SeqCst);
                next
            };
            set_asleep(&self.timer_status, true);
            tokio::select! {
                () = self.clock.sleep_until(next) => {}
                () = woken => {}
            }
            set_asleep(&self.timer_status, false);
            if self.is_shutting_down() {
                return;
            }
            failed = match self.run_due().await {
                Ok(()) => false,
                Err(error) => {
                    tracing::error!(%error, "the timer cannot apply due deadlines");
                    true
                }
            };
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
    pub async fn run_due(&self) -> Result<(), BrokerError> {
        count_look(&self.timer_status);
        loop {
            let admission = self.store.admit().await?;
            let now = self.now();
            let (submitted, more) = {
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
                let mut prepared = Prepared::lazy();
                for id in expired {
                    let Some(slot) = state.unplace(id) else {
                        continue;
                    };
                    debug_assert!(matches!(slot.phase, Phase::Leased { .. }));
                    if let Some(q) = state.queue_by_id_mut(slot.queue) {
                        q.counters.expired += 1;
                    }
                    let failure = Failure {
                        event: JobEvent::Expired,
                        error: Some("lease expired".into()),
                        delay_ms: None,
                        dead: false,
                    };
                    self.fail_attempt(&mut state, id, slot, failure, now, &mut prepared);
                }
                (self.submit(admission, prepared), more)
            };
            self.committed(submitted).await?;
            if !more {
                break;
            }
        }
        self.fire_due_schedules().await?;
        Ok(())
    }
}
