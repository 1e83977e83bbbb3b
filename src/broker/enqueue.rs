//! Enqueue: store first, then make visible.

use std::sync::atomic::Ordering;

use super::placement::{Placement, PreparedJobs};
use super::state::{
    Phase, QueueId, Slot, SlotGroup, State, TooManyGroups, slot_lease_ms, slot_max_attempts,
};
use super::{Broker, BrokerError, Enqueued, NewJob, NewMessage, Prepared};
use crate::clock::Millis;
use crate::storage::{
    IdempotencyKey, JobBody, JobRecord, Message, QueueRecord, StoredState, WriteOp,
};
use crate::tenant::valid_full_name;

impl Broker {
    /// Enqueues `jobs` into `queue` (created with the server defaults on first use), all or
    /// nothing: a job that breaks a rule is [`BrokerError::InvalidItem`] and nothing is
    /// enqueued. Returns once the write is durable; only then can a poll see the jobs.
    ///
    /// A job whose idempotency key already maps to a job of this queue within the key's window
    /// creates nothing: its outcome names the original job with `duplicate: true`. The check
    /// runs on the writer thread inside the commit, so concurrent enqueues with one key create
    /// exactly one job.
    pub async fn enqueue(
        &self,
        queue: &str,
        jobs: Vec<NewJob>,
    ) -> Result<Vec<Enqueued>, BrokerError> {
        self.enqueue_emitting(queue, jobs, Vec::new()).await
    }

    /// Like [`Broker::enqueue`], and writes `emit` to the outbox in the same commit: only if
    /// a job is created, so a retried enqueue whose every job is a duplicate emits nothing again.
    pub async fn enqueue_emitting(
        &self,
        queue: &str,
        jobs: Vec<NewJob>,
        emit: Vec<NewMessage>,
    ) -> Result<Vec<Enqueued>, BrokerError> {
        if !valid_full_name(queue) {
            return Err(BrokerError::InvalidQueueName);
        }
        if jobs.is_empty() {
            return Err(super::Invalid {
                field: "jobs",
                rule: "must hold at least one job".into(),
                kind: super::Limit::Value,
            }
            .into());
        }
        self.limits.check_batch("jobs", jobs.len())?;
        let now = self.now();
        for (index, job) in jobs.iter().enumerate() {
            self.limits
                .check_job(job, now)
                .map_err(|error| BrokerError::InvalidItem { index, error })?;
        }
        self.limits.check_messages("emit", &emit)?;
        self.insert_jobs(queue, jobs, emit).await
    }

    /// Enqueues jobs already checked (or, for a schedule's trigger, checked when the schedule
    /// was put: its fires are not refused by a limit lowered since).
    pub(super) async fn insert_jobs(
        &self,
        queue: &str,
        jobs: Vec<NewJob>,
        emit: Vec<NewMessage>,
    ) -> Result<Vec<Enqueued>, BrokerError> {
        let admission = self.store.admit_growth().await?;
        let now = self.now();
        let duplicates = self.known_duplicates(queue, &jobs, now)?;
        let (submitted, slots) = {
            let mut state = self.state.lock();
            let mut prepared = Prepared::default();
            let depth = Depth::Limited { duplicates };
            let slots = self.prepare_jobs(&mut state, queue, jobs, depth, now, &mut prepared)?;
            let ids = slots.first().zip(slots.last()).map(|(a, b)| (a.0, b.0));
            prepared.ops.extend(message_ops(emit, ids, now));
            (self.submit(admission, prepared), slots)
        };
        let (_, mut placed) = Placement::new(self, submitted, vec![slots], now)
            .finish()
            .await?;
        Ok(placed.pop().unwrap_or_default())
    }

    /// How many of `jobs` are already known to be duplicates (their idempotency key maps to a
    /// job whose window is open, or an earlier job of the list has the same key): they will
    /// create nothing, so they do not count against the queue's `max_depth`, and a retried
    /// enqueue that succeeded before still gets its original job back from a full queue. Read
    /// only for a queue with a `max_depth` (0 otherwise). A key written meanwhile by another
    /// request only makes one more job a duplicate; one whose window ends meanwhile may let
    /// the queue pass its depth by that job.
    fn known_duplicates(
        &self,
        queue: &str,
        jobs: &[NewJob],
        now: Millis,
    ) -> Result<u64, BrokerError> {
        let limited = self
            .state
            .lock()
            .queue(queue)
            .is_some_and(|q| q.config.max_depth.is_some());
        if !limited || jobs.iter().all(|j| j.idempotency_key.is_none()) {
            return Ok(0);
        }
        let mut keys: Vec<String> = jobs
            .iter()
            .filter_map(|j| j.idempotency_key.as_ref())
            .map(|key| format!("{queue}\0{key}"))
            .collect();
        let keyed = keys.len();
        keys.sort_unstable();
        keys.dedup();
        let repeated = keyed - keys.len();
        let live = super::blocking(|| self.store.live_keys(&keys, now))?;
        Ok((repeated + live) as u64)
    }

    /// Adds the writes that store `jobs` in `queue` (creating the queue if new) to `prepared`,
    /// and returns their slots, counted as pending in the queue until they are placed (or
    /// released, if their write fails). Call under the state lock. Fails, changing nothing,
    /// when `depth` is limited and the jobs would take the queue past its `max_depth`, or when
    /// the queue is new and no queue id is left.
    pub(super) fn prepare_jobs(
        &self,
        state: &mut State,
        queue: &str,
        jobs: Vec<NewJob>,
        depth: Depth,
        now: Millis,
        prepared: &mut Prepared,
    ) -> Result<PreparedJobs, BrokerError> {
        if let (Depth::Limited { duplicates }, Some(q)) = (depth, state.queue(queue))
            && let Some(max_depth) = q.config.max_depth
        {
            let depth = q.depth();
            let new = (jobs.len() as u64).saturating_sub(duplicates);
            if depth.saturating_add(new) > max_depth {
                return Err(BrokerError::QueueFull { max_depth, depth });
            }
        }
        let (queue_id, created) = state.queue_or_create(queue, &self.queue_defaults)?;
        let config = state
            .queue_by_id(queue_id)
            .map_or(&self.queue_defaults, |q| &q.config);
        let (default_attempts, window_ms) = (config.max_attempts, config.idempotency_window_ms);
        let record = created.then(|| QueueRecord::from(config.clone()));
        if let Some(q) = state.queue_by_id_mut(queue_id) {
            q.pending += jobs.len() as u64;
        }
        if let Some(record) = record {
            prepared.ops.push(WriteOp::PutQueue {
                name: queue.to_owned(),
                record,
                at: now,
            });
        }
        let groups = join_groups(state, queue_id, &jobs)?;
        let first = self.next_id.fetch_add(jobs.len() as u64, Ordering::Relaxed);
        let mut slots = Vec::with_capacity(jobs.len());
        for ((id, job), group) in (first..).zip(jobs).zip(groups) {
            let run_at = job.run_at.map_or(now, |r| r.resolve(now));
            let max_attempts = job.max_attempts.unwrap_or(default_attempts);
            let record = JobRecord {
                queue: queue.to_owned(),
                priority: job.priority,
                state: StoredState::Queued { run_at },
                attempts: 0,
                max_attempts,
                lease_ms: job.lease_ms,
                enqueued_at: now,
                updated_at: now,
                last_error: None,
                version: 1,
                group: job.group.clone(),
            };
            let body = JobBody {
                payload: job.payload,
                headers: job.headers,
            };
            let idempotency = job.idempotency_key.map(|key| IdempotencyKey {
                key: format!("{queue}\0{key}"),
                expires_at: now.saturating_add(window_ms),
            });
            prepared.ops.push(WriteOp::Insert {
                id,
                record,
                body,
                idempotency,
            });
            let slot = Slot {
                queue: queue_id,
                priority: job.priority,
                phase: Phase::Scheduled { run_at },
                attempts: 0,
                max_attempts: slot_max_attempts(max_attempts),
                lease_ms: slot_lease_ms(job.lease_ms),
                group,
            };
            slots.push((id, slot));
        }
        Ok(slots)
    }
}

/// The groups of `jobs`, each counting one more job; all or nothing (too many groups leaves
/// every count as it was).
fn join_groups(
    state: &mut State,
    queue: QueueId,
    jobs: &[NewJob],
) -> Result<Vec<SlotGroup>, BrokerError> {
    let Some(q) = state.queue_by_id_mut(queue) else {
        return Ok(vec![SlotGroup::NONE; jobs.len()]);
    };
    let mut groups = Vec::with_capacity(jobs.len());
    for job in jobs {
        let joined = match &job.group {
            Some(name) => q.join_group(name),
            None => Ok(SlotGroup::NONE),
        };
        match joined {
            Ok(group) => groups.push(group),
            Err(TooManyGroups) => {
                groups.into_iter().for_each(|g| q.leave_group(g));
                q.pending = q.pending.saturating_sub(jobs.len() as u64);
                return Err(BrokerError::TooManyGroups);
            }
        }
    }
    Ok(groups)
}

/// Whether an insert is held to its queue's `max_depth`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Depth {
    /// Refused past it: enqueues and the follow-up jobs of acks, which a client retries.
    /// `duplicates` of the jobs are known to create nothing (see `known_duplicates`).
    Limited { duplicates: u64 },
    /// Not refused: a schedule's fires, which nobody would retry (a full queue must not turn
    /// into lost fires).
    Unlimited,
}

/// The ops that write `messages` at `now`; with `if_stored`, only if a job with an id in that
/// range gets stored in the same commit.
pub(super) fn message_ops(
    messages: Vec<NewMessage>,
    if_stored: Option<(u64, u64)>,
    now: Millis,
) -> impl Iterator<Item = WriteOp> {
    messages.into_iter().map(move |m| {
        WriteOp::Message(Message {
            if_stored,
            topic: m.topic,
            key: m.key,
            payload: m.payload,
            headers: m.headers,
            at: now,
        })
    })
}

impl Broker {
    /// Writes `messages` to the outbox (each a `message` event of the change log) in one
    /// commit; returns their sequence numbers once durable.
    pub async fn emit(&self, messages: Vec<NewMessage>) -> Result<Vec<u64>, BrokerError> {
        if messages.is_empty() {
            return Err(super::Invalid {
                field: "messages",
                rule: "must hold at least one message".into(),
                kind: super::Limit::Value,
            }
            .into());
        }
        self.limits.check_messages("messages", &messages)?;
        let admission = self.store.admit_growth().await?;
        let now = self.now();
        let submitted = {
            // Under the lock like every write, so writes reach the store in the order decided.
            let _state = self.state.lock();
            let prepared = Prepared::ops(message_ops(messages, None, now).collect());
            self.submit(admission, prepared)
        };
        Ok(self.committed(submitted).await?.events.collect())
    }
}
