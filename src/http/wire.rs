//! JSON shapes of the v1 API and their validation into broker requests.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::ToSchema;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, Type};

use super::body::{Obj, UniqueMap, parse_json};
use super::error::ApiError;
use super::schema;
use crate::broker::{
    Delivery, Enqueued, FollowUp, JobView, NewJob, NewMessage, QueueConfig, QueueView, RunAt,
};
use crate::clock::{parse_rfc3339, rfc3339};
use crate::job::{JobId, JobState, LeaseToken, Priority};

/// A priority: an integer 0–255 or a level name.
#[derive(Debug, Clone, Copy)]
pub struct PriorityInput(pub Priority);

impl<'de> Deserialize<'de> for PriorityInput {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        const EXPECTED: &str =
            "an integer 0-255 or one of \"low\", \"normal\", \"high\", \"critical\"";
        impl Visitor<'_> for V {
            type Value = PriorityInput;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(EXPECTED)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<PriorityInput, E> {
                u8::try_from(v)
                    .map(|p| PriorityInput(Priority(p)))
                    .map_err(|_| {
                        E::custom(format!("priority {v} is out of range: expected {EXPECTED}"))
                    })
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<PriorityInput, E> {
                Err(E::custom(format!(
                    "priority {v} is out of range: expected {EXPECTED}"
                )))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<PriorityInput, E> {
                Priority::from_name(v).map(PriorityInput).ok_or_else(|| {
                    E::custom(format!("unknown priority {v:?}: expected {EXPECTED}"))
                })
            }
        }
        d.deserialize_any(V)
    }
}

impl utoipa::PartialSchema for PriorityInput {
    fn schema() -> RefOr<Schema> {
        let number = ObjectBuilder::new()
            .schema_type(Type::Integer)
            .minimum(Some(0))
            .maximum(Some(255));
        let name = ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(Priority::NAMES.iter().map(|(name, _)| *name)));
        let names = Priority::NAMES
            .iter()
            .map(|(name, p)| format!("{name} = {}", p.0))
            .collect::<Vec<_>>()
            .join(", ");
        OneOfBuilder::new()
            .item(number)
            .item(name)
            .description(Some(format!(
                "Higher runs first: 0-255, or a level name ({names}). Default: normal."
            )))
            .into()
    }
}

impl ToSchema for PriorityInput {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Priority")
    }
}

/// One job as a client sends it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JobInput {
    /// Any JSON, stored and delivered exactly as sent; at most `max_payload_bytes` (1 MiB).
    #[schema(value_type = Value, example = json!({"to": "ada@example.com"}))]
    payload: Box<RawValue>,
    priority: Option<PriorityInput>,
    /// Wait this long before the job is ready (at most 365 days); not with `run_at`.
    #[schema(maximum = 31_536_000_000_i64)]
    delay_ms: Option<u64>,
    /// When the job becomes ready (RFC 3339, at most 365 days ahead); not with `delay_ms`.
    #[schema(format = DateTime)]
    run_at: Option<String>,
    /// Deliveries before it is dead (default: the queue's).
    #[schema(minimum = 1, maximum = 1000)]
    max_attempts: Option<u32>,
    /// The lease a poll gives it when the poll names none (default: the queue's).
    #[schema(minimum = 1, maximum = 43200000)]
    lease_ms: Option<u64>,
    #[schema(schema_with = schema::input_headers)]
    headers: Option<UniqueMap<String>>,
    /// 1-255 bytes: an enqueue with a key the queue has seen within its window creates
    /// nothing and answers the original job.
    #[schema(min_length = 1)]
    idempotency_key: Option<String>,
    /// Its group within the queue (1-128 bytes, no control characters): polls take turns
    /// across groups.
    #[schema(min_length = 1, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$")]
    group: Option<String>,
    /// Messages written to the outbox with the enqueue (a single-job body only).
    #[schema(value_type = Option<Vec<MessageInput>>)]
    emit: Option<Vec<Obj<MessageInput>>>,
}

impl JobInput {
    /// Takes the messages the job's body emits out of it.
    pub fn take_emit(&mut self) -> Option<Vec<NewMessage>> {
        self.emit.take().map(messages)
    }

    /// The payload as sent (raw JSON text).
    pub fn payload(&self) -> &str {
        self.payload.get()
    }

    /// The job this input asks for. Only the JSON's own forms are checked here (a time that is
    /// not RFC 3339, both `delay_ms` and `run_at`); the broker checks every value against its
    /// rules. `index` names the job in messages when it is part of a batch.
    pub fn into_job(self, label: Option<&str>) -> Result<NewJob, ApiError> {
        if self.emit.is_some() {
            return Err(ApiError::invalid(format!(
                "{}emit belongs to the request, not to a job in a list: put it beside \"jobs\" (enqueue) or in the ack",
                label.map_or_else(String::new, |l| format!("{l}."))
            )));
        }
        let at = |field: &str| label.map_or_else(|| field.to_owned(), |l| format!("{l}.{field}"));
        let run_at = match (self.delay_ms, self.run_at) {
            (Some(_), Some(_)) => {
                return Err(ApiError::invalid(format!(
                    "give {} or {}, not both",
                    at("delay_ms"),
                    at("run_at")
                )));
            }
            (Some(delay), None) => Some(RunAt::After(delay)),
            (None, Some(text)) => match parse_rfc3339(&text) {
                Some(ms) => Some(RunAt::At(ms)),
                None => {
                    return Err(ApiError::invalid(format!(
                        "{} must be an RFC 3339 timestamp such as 2026-01-02T03:04:05Z, got {text:?}",
                        at("run_at")
                    )));
                }
            },
            (None, None) => None,
        };
        Ok(NewJob {
            payload: self.payload.get().to_owned(),
            priority: self.priority.map_or(Priority::NORMAL, |p| p.0).0,
            run_at,
            max_attempts: self.max_attempts,
            lease_ms: self.lease_ms,
            headers: self.headers.unwrap_or_default().0.into_iter().collect(),
            idempotency_key: self.idempotency_key,
            group: self.group,
        })
    }
}

/// A message for the outbox as a client sends it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MessageInput {
    /// 1-255 bytes.
    #[schema(min_length = 1, example = "orders.paid")]
    topic: String,
    /// 1-255 bytes.
    #[schema(min_length = 1)]
    key: Option<String>,
    /// Any JSON, at most `max_payload_bytes`.
    #[schema(value_type = Value, example = json!({"order": "o-1"}))]
    payload: Box<RawValue>,
    #[schema(schema_with = schema::input_headers)]
    headers: Option<UniqueMap<String>>,
}

/// The messages of a list as the broker takes them.
pub fn messages(list: Vec<Obj<MessageInput>>) -> Vec<NewMessage> {
    list.into_iter()
        .map(|Obj(m)| NewMessage {
            topic: m.topic,
            key: m.key,
            payload: m.payload.get().to_owned(),
            headers: m.headers.unwrap_or_default().0.into_iter().collect(),
        })
        .collect()
}

/// The jobs an ack enqueues: `[{"queue": "q", <job fields>}, ...]`, named `{label}[i]` in
/// messages.
pub fn follow_ups(list: Vec<Box<RawValue>>, label: &str) -> Result<Vec<FollowUp>, ApiError> {
    list.iter()
        .enumerate()
        .map(|(i, item)| {
            let at = format!("{label}[{i}]");
            let UniqueMap(mut fields) =
                parse_json::<UniqueMap<Box<RawValue>>>(item.get().as_bytes())?;
            let queue = fields
                .remove("queue")
                .and_then(|q| serde_json::from_str::<String>(q.get()).ok())
                .ok_or_else(|| ApiError::invalid(format!("{at}.queue must be a queue name")))?;
            // The rest is a job object, parsed as an enqueue's is.
            let job = serde_json::to_string(&fields)
                .map_err(|e| ApiError::invalid(format!("{at}: {e}")))?;
            let job: JobInput = parse_json(job.as_bytes())?;
            Ok(FollowUp {
                queue,
                job: job.into_job(Some(&at))?,
            })
        })
        .collect()
}

/// A lease token from a request; a malformed one is kept as a token that matches no delivery,
/// so it gets the same 404/409 answers as any other wrong token.
pub fn lease_token(text: &str) -> LeaseToken {
    text.parse().unwrap_or(LeaseToken {
        attempt: 0,
        nonce: 0,
    })
}

/// `{"id", "state", "duplicate"}` of an enqueued job.
#[derive(Debug, Serialize, ToSchema)]
pub struct EnqueuedOut {
    /// The job id.
    pub id: String,
    /// `scheduled` or `ready`; for a duplicate, the original job's state (`purged` when it is
    /// no longer stored).
    #[schema(schema_with = schema::enqueued_state)]
    pub state: &'static str,
    /// Whether an idempotency key matched an earlier job (nothing was created).
    pub duplicate: bool,
}

impl From<&Enqueued> for EnqueuedOut {
    fn from(e: &Enqueued) -> EnqueuedOut {
        // A duplicate whose original was deleted since (purge, retention) has no state left.
        EnqueuedOut {
            id: e.id.to_string(),
            state: e.state.map_or("purged", JobState::as_str),
            duplicate: e.duplicate,
        }
    }
}

/// A queue: its settings and its jobs per state, as the queue routes render it.
#[derive(Debug, Serialize, ToSchema)]
pub struct QueueOut {
    /// Its name within its tenant.
    name: String,
    tenant: String,
    /// The lease a poll gives when neither the poll nor the job names one.
    lease_ms: u64,
    /// The `max_attempts` of jobs enqueued without one.
    max_attempts: u32,
    backoff: BackoffOut,
    /// A paused queue accepts enqueues but delivers nothing.
    paused: bool,
    /// How long succeeded and cancelled jobs stay after they finished.
    retention_ms: u64,
    /// How long dead jobs stay after they died.
    dead_retention_ms: u64,
    /// How long an idempotency key maps to the job it created.
    idempotency_window_ms: u64,
    /// The most jobs the queue may hold ready, scheduled or leased; `null`: no limit.
    #[schema(required)]
    max_depth: Option<u64>,
    /// The most leases one job group may hold at once; `null`: no cap.
    #[schema(required)]
    group_max_in_flight: Option<u32>,
    /// Turns per round of the groups it names (every other group weighs 1).
    group_weights: BTreeMap<String, u32>,
    /// Jobs per state (succeeded, cancelled and dead: those still stored).
    #[schema(schema_with = schema::job_counts)]
    counts: BTreeMap<&'static str, u64>,
}

/// A queue's retry backoff: `min(base_ms * 2^(n-1), cap_ms)`, with full jitter when `jitter`.
#[derive(Debug, Serialize, ToSchema)]
pub struct BackoffOut {
    base_ms: u64,
    cap_ms: u64,
    jitter: bool,
}

impl From<QueueView> for QueueOut {
    fn from(v: QueueView) -> QueueOut {
        let counts = JobState::ALL
            .iter()
            .map(|s| (s.as_str(), v.counts[s.index()]))
            .collect();
        let (tenant, name) = super::names::shown(&v.name);
        let QueueConfig {
            lease_ms,
            max_attempts,
            backoff,
            paused,
            retention_ms,
            dead_retention_ms,
            idempotency_window_ms,
            max_depth,
            group_max_in_flight,
            group_weights,
        } = v.config;
        QueueOut {
            name,
            tenant,
            lease_ms,
            max_attempts,
            backoff: BackoffOut {
                base_ms: backoff.base_ms,
                cap_ms: backoff.cap_ms,
                jitter: backoff.jitter,
            },
            paused,
            retention_ms,
            dead_retention_ms,
            idempotency_window_ms,
            max_depth,
            group_max_in_flight,
            group_weights,
            counts,
        }
    }
}

/// A job as rendered by `GET /v1/jobs/{id}` and listings.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobOut {
    id: String,
    /// Its queue's name within its tenant.
    queue: String,
    tenant: String,
    #[schema(schema_with = schema::job_state)]
    state: &'static str,
    priority: u8,
    /// Deliveries so far (reset to 0 by a replay).
    attempts: u32,
    max_attempts: u32,
    /// Exactly as enqueued.
    #[schema(value_type = Value)]
    payload: Box<RawValue>,
    headers: BTreeMap<String, String>,
    /// The error of the last nack that gave one, or `lease expired`.
    #[schema(required)]
    last_error: Option<String>,
    /// The ack's result (`null`: none).
    #[schema(value_type = Value, required)]
    result: Option<Box<RawValue>>,
    #[schema(format = DateTime)]
    enqueued_at: String,
    /// The last stored change.
    #[schema(format = DateTime)]
    updated_at: String,
    /// Only while scheduled or ready: when it is, or became, due.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String, format = DateTime)]
    run_at: Option<String>,
    /// Only while leased.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String, format = DateTime)]
    lease_expires_at: Option<String>,
    /// Only when succeeded, cancelled or dead.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String, format = DateTime)]
    finished_at: Option<String>,
    /// Its group; `null`: ungrouped.
    #[schema(required)]
    group: Option<String>,
}

/// Re-wraps stored JSON text (validated when it was accepted) for output.
pub fn raw(text: String) -> Box<RawValue> {
    RawValue::from_string(text).unwrap_or_else(|_| {
        tracing::error!("stored JSON does not parse; rendered as null");
        RawValue::NULL.to_owned()
    })
}

impl From<JobView> for JobOut {
    fn from(v: JobView) -> JobOut {
        let (tenant, queue) = super::names::shown(&v.queue);
        JobOut {
            id: v.id.to_string(),
            queue,
            tenant,
            state: v.state.as_str(),
            priority: v.priority,
            attempts: v.attempts,
            max_attempts: v.max_attempts,
            payload: raw(v.payload),
            headers: v.headers.into_iter().collect(),
            last_error: v.last_error,
            result: v.result.map(raw),
            enqueued_at: rfc3339(v.enqueued_at),
            updated_at: rfc3339(v.updated_at),
            run_at: v.run_at.map(rfc3339),
            lease_expires_at: v.lease_expires_at.map(rfc3339),
            finished_at: v.finished_at.map(rfc3339),
            group: v.group,
        }
    }
}

/// One delivered job, as `POST /v1/queues/{queue}/poll` renders it.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryOut {
    id: String,
    /// Its queue's name within its tenant.
    queue: String,
    tenant: String,
    /// Exactly as enqueued.
    #[schema(value_type = Value)]
    payload: Box<RawValue>,
    priority: u8,
    /// The number of this delivery, from 1.
    attempt: u32,
    /// The token to ack, nack or extend with (opaque).
    lease: String,
    /// The lease deadline.
    #[schema(format = DateTime)]
    lease_expires_at: String,
    headers: BTreeMap<String, String>,
    #[schema(format = DateTime)]
    enqueued_at: String,
    /// Its group; `null`: ungrouped.
    #[schema(required)]
    group: Option<String>,
}

impl From<Delivery> for DeliveryOut {
    fn from(d: Delivery) -> DeliveryOut {
        let (tenant, queue) = super::names::shown(&d.queue);
        DeliveryOut {
            id: d.id.to_string(),
            queue,
            tenant,
            payload: raw(d.payload),
            priority: d.priority,
            attempt: d.attempt,
            lease: d.lease.to_string(),
            lease_expires_at: rfc3339(d.lease_expires_at),
            headers: d.headers.into_iter().collect(),
            enqueued_at: rfc3339(d.enqueued_at),
            group: d.group,
        }
    }
}

/// A job's id and its new state.
#[derive(Serialize, ToSchema)]
pub struct JobStateOut {
    id: String,
    #[schema(schema_with = schema::job_state)]
    state: &'static str,
    /// An ack's follow-up jobs, in order (only when it asked for some).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enqueued: Option<Vec<EnqueuedOut>>,
}

impl JobStateOut {
    /// The reply for job `id` now in `state`.
    pub fn new(id: JobId, state: &'static str) -> JobStateOut {
        JobStateOut {
            id: id.to_string(),
            state,
            enqueued: None,
        }
    }
}

/// What a delete of a schedule or a cursor answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeletedOut {
    /// Its name within its tenant.
    name: String,
    tenant: String,
    /// Always true.
    deleted: bool,
}

impl DeletedOut {
    /// The reply for the deleted resource of full name `full`.
    pub fn new(full: &str) -> DeletedOut {
        let (tenant, name) = super::names::shown(full);
        DeletedOut {
            name,
            tenant,
            deleted: true,
        }
    }
}

/// The reply of a poll.
#[derive(Debug, Serialize, ToSchema)]
pub struct PollOut {
    /// The deliveries (empty when the wait ended with nothing ready).
    pub jobs: Vec<DeliveryOut>,
}
