//! Start-up: open the store and rebuild the in-memory indexes from it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::time::Instant;

use parking_lot::Mutex;
use tokio::sync::{Notify, watch};

use super::state::{
    Phase, Slot, SlotGroup, State, TooManyGroups, slot_attempts, slot_lease_ms, slot_max_attempts,
};
use super::{Broker, BrokerError, BrokerOptions, QueueConfig, RecoveryStats};
use crate::clock::Clock;
use crate::job::JobState;
use crate::random::Rng;
use crate::storage::{Store, StoredState};

impl Broker {
    /// Opens the store, rebuilds memory from it, and returns the broker ready to serve.
    ///
    /// Recovery rules: a queued job is scheduled or ready by its `run_at`; a leased job stays
    /// leased with its stored token until its stored deadline (then the timer retries it as an
    /// expired lease); dead jobs are dead; succeeded and cancelled jobs are only counted.
    pub fn open(options: &BrokerOptions, clock: Clock) -> Result<Arc<Broker>, BrokerError> {
        let started = Instant::now();
        let store = Store::open(&options.store)?;
        let rng = options.seed.map_or_else(Rng::from_entropy, Rng::new);
        let mut state = State::new(rng);
        let queues = store.queues(&options.queue_defaults.clone().into())?;
        let queue_count = queues.len() as u64;
        for (name, record) in queues {
            state.queue_or_create(&name, &QueueConfig::from(record))?;
        }
        let now = clock.now();
        // Sized once: growing the table during the scan would briefly hold the old and the new
        // one (at 1M jobs, 40 + 80 MB). The count includes finished jobs, which are not kept,
        // so the reservation is capped (a big retention must not reserve gigabytes for jobs
        // that are only counted) and an oversized table is shrunk below.
        const MOST_RESERVED: u64 = 1 << 20;
        let stored = store.job_count()?.min(MOST_RESERVED);
        state.jobs.reserve(usize::try_from(stored).unwrap_or(0));
        let mut jobs = 0u64;
        let mut failed = None;
        store.scan_jobs(|id, record| {
            jobs += 1;
            let queue = match state.queue_or_create(&record.queue, &options.queue_defaults) {
                Ok((queue, _)) => queue,
                Err(error) => {
                    failed.get_or_insert(error);
                    return;
                }
            };
            let phase = match record.state {
                StoredState::Queued { run_at } => Phase::Scheduled { run_at },
                // Memory keeps 32-bit nonces. Leases written since then fit exactly; a lease
                // stored by an older version (64-bit nonce) keeps its low half, so its token
                // no longer matches (ack, nack and extend get 409 stale_lease). The lease then
                // expires as a failed attempt and the job is delivered again (or is dead if
                // that was its last attempt): a redelivery that at-least-once allows.
                StoredState::Leased { nonce, deadline } => Phase::Leased {
                    deadline,
                    nonce: nonce as u32,
                },
                StoredState::Dead { .. } => Phase::Dead,
                StoredState::Succeeded { .. } => {
                    return state.count_finished(queue, JobState::Succeeded);
                }
                StoredState::Cancelled { .. } => {
                    return state.count_finished(queue, JobState::Cancelled);
                }
            };
            let group = match (&record.group, state.queue_by_id_mut(queue)) {
                (Some(name), Some(q)) => match q.join_group(name) {
                    Ok(group) => group,
                    Err(TooManyGroups) => {
                        failed.get_or_insert(BrokerError::TooManyGroups);
                        return;
                    }
                },
                _ => SlotGroup::NONE,
            };
            let slot = Slot {
                queue,
                priority: record.priority,
                phase,
                attempts: slot_attempts(record.attempts),
                max_attempts: slot_max_attempts(record.max_attempts),
                lease_ms: slot_lease_ms(record.lease_ms),
                group,
            };
            state.place(id, slot, now);
        })?;
        if let Some(error) = failed {
            return Err(error);
        }
        if state.jobs.len() < state.jobs.capacity() / 4 {
            state.jobs.shrink_to_fit();
        }
        for (name, record) in store.schedules()? {
            if let Some(slot) = super::schedule::recover(&name, record, now) {
                state.schedules.insert(&name, slot);
            }
        }
        let next_id = store.next_job_id()?;
        Ok(Arc::new_cyclic(|me| Broker {
            me: me.clone(),
            state: Mutex::new(state),
            store,
            clock,
            queue_defaults: options.queue_defaults.clone(),
            limits: options.limits,
            audit_retention_ms: options.audit_retention_ms,
            next_id: AtomicU64::new(next_id),
            timer_wake: Notify::new(),
            // Until the timer's first look, everything may be due.
            timer_target: AtomicU64::new(0),
            timer_status: watch::Sender::default(),
            sweeper_status: watch::Sender::default(),
            purged_jobs: AtomicU64::new(0),
            forgotten_keys: AtomicU64::new(0),
            polls: watch::Sender::default(),
            shutting_down: AtomicBool::new(false),
            shutdown_signal: Notify::new(),
            recovery: RecoveryStats {
                jobs,
                queues: queue_count,
                elapsed: started.elapsed(),
            },
        }))
    }
}
