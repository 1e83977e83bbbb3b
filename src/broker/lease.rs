//! Poll, ack, nack and extend: everything that hands out or settles a lease.

use std::pin::pin;

use super::enqueue::{Depth, message_ops};
use super::limits::{check_lease_ms, check_nack, check_poll};
use super::placement::Placement;
use super::state::{Phase, Slot, State};
use super::{
    AckItem, Acked, Broker, BrokerError, Delivery, NackRequest, PollRequest, Prepared, stored_state,
};
use crate::clock::Millis;
use crate::job::{JobId, JobState, LeaseToken};
use crate::storage::{JobChange, JobEvent, StoredState, WriteOp};
use crate::tenant::valid_full_name;

/// A failed attempt: why, and what the consumer asked for.
pub(super) struct Failure {
    /// A nack, or an expired lease.
    pub event: JobEvent,
    /// Becomes the job's `last_error`; `None` keeps the previous one.
    pub error: Option<String>,
    /// Retry after this long instead of the backoff.
    pub delay_ms: Option<u64>,
    /// Dead now, whatever attempts are left.
    pub dead: bool,
}

/// Why a presented lease token does not settle the job.
enum LeaseCheck {
    /// The job is not live in memory: finished, purged, or unknown (the store decides which).
    Missing,
    Refused(BrokerError),
}

/// Checks `token` against the job's current lease at time `now`; returns the lease's nonce.
///
/// Nonces are 32 bits while the token carries 64: a token whose nonce does not fit in 32 bits
/// was never handed out (or predates the narrowing) and is stale like any other mismatch.
fn check_lease(slot: Option<&Slot>, token: LeaseToken, now: Millis) -> Result<u32, LeaseCheck> {
    let slot = slot.ok_or(LeaseCheck::Missing)?;
    let Phase::Leased { deadline, nonce } = slot.phase else {
        return Err(LeaseCheck::Refused(BrokerError::NotLeased {
            state: slot.phase.state().as_str(),
        }));
    };
    if token.attempt != u32::from(slot.attempts) || token.nonce != u64::from(nonce) {
        return Err(LeaseCheck::Refused(BrokerError::StaleLease));
    }
    if deadline <= now {
        return Err(LeaseCheck::Refused(BrokerError::LeaseExpired));
    }
    Ok(nonce)
}

impl Broker {
    /// Delivers up to `request.max` ready jobs of `queue`, waiting up to `request.wait_ms`
    /// (on the broker's clock) for the first one. Each delivery's lease is written before it
    /// is returned.
    pub async fn poll(
        &self,
        queue: &str,
        request: PollRequest,
    ) -> Result<Vec<Delivery>, BrokerError> {
        if !valid_full_name(queue) {
            return Err(BrokerError::InvalidQueueName);
        }
        check_poll(&request)?;
        let until = self.now().saturating_add(request.wait_ms);
        let waiter = self.waiter(queue);
        loop {
            // Register interest before looking, so a job made ready in between still wakes us.
            let mut notified = pin!(waiter.notify.notified());
            notified.as_mut().enable();
            if self.is_shutting_down() {
                return Ok(Vec::new());
            }
            let deliveries = self.lease_ready(queue, request).await?;
            if !deliveries.is_empty() || request.wait_ms == 0 || self.now() >= until {
                return Ok(deliveries);
            }
            let _waiting = self.waiting();
            // Either way the loop looks once more: a job made ready just as the wait ends
            // (both branches ready at once, and `select!` picks at random) is still delivered.
            tokio::select! {
                () = notified => {}
                () = self.clock.sleep_until(Some(until)) => {}
            }
        }
    }

    async fn lease_ready(
        &self,
        queue: &str,
        request: PollRequest,
    ) -> Result<Vec<Delivery>, BrokerError> {
        let admission = self.store.admit().await?;
        let now = self.now();
        let mut leased = Vec::new();
        let submitted = {
            let mut state = self.state.lock();
            let Some(queue_id) = state.queue_id(queue) else {
                return Ok(Vec::new());
            };
            let Some(q) = state.queue_by_id(queue_id) else {
                return Ok(Vec::new());
            };
            if q.config.paused {
                return Ok(Vec::new());
            }
            let default_lease = q.config.lease_ms;
            let mut prepared = Prepared::lazy();
            // One at a time: with job groups, which job comes next depends on the leases
            // just taken (turns, and each group's `group_max_in_flight`).
            while leased.len() < request.max {
                let Some(id) = state.queue_by_id_mut(queue_id).and_then(|q| q.next_ready()) else {
                    break;
                };
                // Unreachable (a ready job is live); stop rather than be handed it again.
                let Some(mut slot) = state.unplace(id) else {
                    break;
                };
                slot.attempts = slot.attempts.saturating_add(1);
                // 32 random bits: see the module docs of `state` for why not 64.
                let nonce = state.rng.next_u64() as u32;
                let lease_ms = request
                    .lease_ms
                    .or(slot.lease_ms())
                    .unwrap_or(default_lease);
                let deadline = now.saturating_add(lease_ms);
                slot.phase = Phase::Leased { deadline, nonce };
                let token = LeaseToken {
                    attempt: u32::from(slot.attempts),
                    nonce: u64::from(nonce),
                };
                prepared.ops.push(WriteOp::Update {
                    id,
                    change: JobChange {
                        event: JobEvent::Leased,
                        state: StoredState::Leased {
                            nonce: u64::from(nonce),
                            deadline,
                        },
                        attempts: u32::from(slot.attempts),
                        last_error: None,
                        result: None,
                        at: now,
                        expires_at: None,
                    },
                });
                prepared.fetch.push(id);
                leased.push((id, token, deadline, slot.priority));
                state.place(id, slot, now);
                self.deadline_added(deadline);
            }
            if let Some(q) = state.queue_by_id_mut(queue_id) {
                q.counters.delivered += leased.len() as u64;
            }
            self.submit(admission, prepared)
        };
        let rows = self.committed(submitted).await?.fetched;
        Ok(leased
            .into_iter()
            .zip(rows)
            .filter_map(|((id, lease, lease_expires_at, priority), row)| {
                let row = row?;
                Some(Delivery {
                    id: JobId(id),
                    queue: row.record.queue,
                    payload: row.body.payload,
                    priority,
                    attempt: lease.attempt,
                    lease,
                    lease_expires_at,
                    headers: row.body.headers,
                    enqueued_at: row.record.enqueued_at,
                    group: row.record.group,
                })
            })
            .collect())
    }

    /// Acks one job (with what it emits and enqueues, in the same commit).
    pub async fn ack(&self, item: AckItem) -> Result<Acked, BrokerError> {
        let mut outcomes = self.ack_many(vec![item]).await?;
        outcomes.pop().unwrap_or(Err(BrokerError::JobNotFound))
    }

    /// Acks many jobs in one durable write; one outcome per item, in order. Items that fail
    /// change nothing, and enqueue and emit nothing; the others succeed, each with its
    /// follow-up jobs and messages in the same commit.
    pub async fn ack_many(
        &self,
        items: Vec<AckItem>,
    ) -> Result<Vec<Result<Acked, BrokerError>>, BrokerError> {
        self.limits.check_batch("acks", items.len())?;
        let now = self.now();
        for (index, item) in items.iter().enumerate() {
            let checked = self
                .limits
                .check_result(item.result.as_deref())
                .and_then(|()| self.limits.check_messages("emit", &item.emit))
                .and_then(|()| self.limits.check_follow_ups(&item.enqueue, now));
            checked.map_err(|error| BrokerError::InvalidItem { index, error })?;
        }
        let admission = self.store.admit().await?;
        let now = self.now();
        let ids: Vec<JobId> = items.iter().map(|item| item.id).collect();
        // Per item: refused, missing (the store decides which error), or acked with the range
        // of its follow-up groups.
        let mut outcomes: Vec<Option<Result<std::ops::Range<usize>, BrokerError>>> =
            Vec::with_capacity(items.len());
        let mut groups = Vec::new();
        let submitted = {
            let mut state = self.state.lock();
            let mut prepared = Prepared::default();
            for item in items {
                let id = item.id.0;
                match check_lease(state.jobs.get(&id), item.lease, now) {
                    Ok(_) => {
                        let first_group = groups.len();
                        let first_op = prepared.ops.len();
                        // The follow-ups first: preparing one fails only when no queue id is
                        // left (2^32 queues), and then this ack must not happen either.
                        let prepared_all = item.enqueue.into_iter().try_for_each(|f| {
                            let slots = self.prepare_jobs(
                                &mut state,
                                &f.queue,
                                vec![f.job],
                                Depth::Limited { duplicates: 0 },
                                now,
                                &mut prepared,
                            )?;
                            groups.push(slots);
                            Ok::<(), BrokerError>(())
                        });
                        if let Err(error) = prepared_all {
                            prepared.ops.truncate(first_op);
                            state.release_pending(&groups[first_group..]);
                            groups.truncate(first_group);
                            outcomes.push(Some(Err(error)));
                            continue;
                        }
                        let Some(slot) = state.remove(id) else {
                            outcomes.push(None);
                            continue;
                        };
                        state.count_finished(slot.queue, JobState::Succeeded);
                        if let Some(q) = state.queue_by_id_mut(slot.queue) {
                            q.counters.acked += 1;
                        }
                        let expires_at =
                            state.retention_end_by_id(slot.queue, JobState::Succeeded, now);
                        prepared.ops.push(WriteOp::Update {
                            id,
                            change: JobChange {
                                event: JobEvent::Acked,
                                state: StoredState::Succeeded { finished_at: now },
                                attempts: u32::from(slot.attempts),
                                last_error: None,
                                result: item.result,
                                at: now,
                                expires_at: Some(expires_at),
                            },
                        });
                        prepared.ops.extend(message_ops(item.emit, None, now));
                        outcomes.push(Some(Ok(first_group..groups.len())));
                    }
                    Err(LeaseCheck::Missing) => outcomes.push(None),
                    Err(LeaseCheck::Refused(error)) => outcomes.push(Some(Err(error))),
                }
            }
            self.submit(admission, prepared)
        };
        let (_, mut placed) = Placement::new(self, submitted, groups, now)
            .finish()
            .await?;
        let mut resolved = Vec::with_capacity(outcomes.len());
        for (id, outcome) in ids.into_iter().zip(outcomes) {
            resolved.push(match outcome {
                Some(Ok(range)) => Ok(Acked {
                    enqueued: placed
                        .get_mut(range)
                        .map(|groups| groups.iter_mut().flat_map(std::mem::take).collect())
                        .unwrap_or_default(),
                }),
                Some(Err(error)) => Err(error),
                None => Err(self.missing_job_error(id.0).await),
            });
        }
        Ok(resolved)
    }

    /// Fails the current attempt: retry after `delay_ms` or the backoff, or dead when asked or
    /// out of attempts. Returns the job's new state.
    pub async fn nack(
        &self,
        id: JobId,
        lease: LeaseToken,
        request: NackRequest,
    ) -> Result<JobState, BrokerError> {
        check_nack(&request)?;
        self.limits.check_messages("emit", &request.emit)?;
        let NackRequest {
            error,
            delay_ms,
            dead,
            emit,
        } = request;
        let admission = self.store.admit().await?;
        let now = self.now();
        let outcome = {
            let mut state = self.state.lock();
            check_lease(state.jobs.get(&id.0), lease, now).map(|_| {
                let slot = state.unplace(id.0)?;
                if let Some(q) = state.queue_by_id_mut(slot.queue) {
                    q.counters.nacked += 1;
                }
                let failure = Failure {
                    event: JobEvent::Nacked,
                    error,
                    delay_ms,
                    dead,
                };
                let mut prepared = Prepared::default();
                let new_state =
                    self.fail_attempt(&mut state, id.0, slot, failure, now, &mut prepared);
                prepared.ops.extend(message_ops(emit, None, now));
                Some((self.submit(admission, prepared), new_state))
            })
        };
        let (submitted, new_state) = match outcome {
            Ok(Some(settled)) => settled,
            Ok(None) => return Err(BrokerError::JobNotFound),
            Err(LeaseCheck::Refused(error)) => return Err(error),
            Err(LeaseCheck::Missing) => return Err(self.missing_job_error(id.0).await),
        };
        self.committed(submitted).await?;
        Ok(new_state)
    }

    /// Moves the lease deadline to `now + lease_ms` (a heartbeat); returns the new deadline.
    pub async fn extend(
        &self,
        id: JobId,
        lease: LeaseToken,
        lease_ms: u64,
    ) -> Result<Millis, BrokerError> {
        check_lease_ms("lease_ms", Some(lease_ms))?;
        let admission = self.store.admit().await?;
        let now = self.now();
        let outcome = {
            let mut state = self.state.lock();
            check_lease(state.jobs.get(&id.0), lease, now).map(|nonce| {
                let mut slot = state.unplace(id.0)?;
                let deadline = now.saturating_add(lease_ms);
                slot.phase = Phase::Leased { deadline, nonce };
                let change = JobChange {
                    event: JobEvent::Extended,
                    state: StoredState::Leased {
                        nonce: u64::from(nonce),
                        deadline,
                    },
                    attempts: u32::from(slot.attempts),
                    last_error: None,
                    result: None,
                    at: now,
                    expires_at: None,
                };
                state.place(id.0, slot, now);
                self.deadline_added(deadline);
                let ops = vec![WriteOp::Update { id: id.0, change }];
                Some((self.submit(admission, Prepared::ops(ops)), deadline))
            })
        };
        let (submitted, deadline) = match outcome {
            Ok(Some(settled)) => settled,
            Ok(None) => return Err(BrokerError::JobNotFound),
            Err(LeaseCheck::Refused(error)) => return Err(error),
            Err(LeaseCheck::Missing) => return Err(self.missing_job_error(id.0).await),
        };
        self.committed(submitted).await?;
        Ok(deadline)
    }

    /// The one rule for a failed attempt (nack or expired lease), applied to a slot already
    /// taken out of the indexes: dead if asked or out of attempts, else scheduled after
    /// `delay_ms` or the queue's backoff. Places the slot back, adds the write to `prepared`
    /// and returns the job's new state.
    pub(super) fn fail_attempt(
        &self,
        state: &mut State,
        id: u64,
        mut slot: Slot,
        failure: Failure,
        now: Millis,
        prepared: &mut Prepared,
    ) -> JobState {
        let Failure {
            event,
            error,
            delay_ms,
            dead,
        } = failure;
        let backoff = state
            .queue_by_id(slot.queue)
            .map(|q| q.config.backoff)
            .unwrap_or_default();
        if dead || slot.attempts >= slot.max_attempts {
            slot.phase = Phase::Dead;
            if let Some(q) = state.queue_by_id_mut(slot.queue) {
                q.counters.dead_lettered += 1;
            }
        } else {
            let delay = delay_ms.unwrap_or_else(|| {
                backoff.delay_ms(u32::from(slot.attempts), state.rng.next_u64())
            });
            let run_at = now.saturating_add(delay);
            slot.phase = Phase::Scheduled { run_at };
            self.deadline_added(run_at);
        }
        let expires_at = (slot.phase == Phase::Dead)
            .then(|| state.retention_end_by_id(slot.queue, JobState::Dead, now));
        let change = JobChange {
            event,
            state: stored_state(slot.phase, now),
            attempts: u32::from(slot.attempts),
            last_error: error,
            result: None,
            at: now,
            expires_at,
        };
        let queue = slot.queue;
        prepared.ops.push(WriteOp::Update { id, change });
        if state.place(id, slot, now) {
            state.wake_by_id(queue);
            JobState::Ready
        } else {
            state
                .jobs
                .get(&id)
                .map_or(JobState::Dead, |s| s.phase.state())
        }
    }
}
