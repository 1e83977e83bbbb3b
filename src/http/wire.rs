//! JSON shapes of the v1 API and their validation into broker requests.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::body::{Obj, UniqueMap, parse_json};
use super::error::ApiError;
use crate::broker::{
    Delivery, Enqueued, FollowUp, JobView, NewJob, NewMessage, QueueConfig, QueueView, RunAt,
};
use crate::clock::{parse_rfc3339, rfc3339};
use crate::job::{JobState, LeaseToken, Priority};

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

/// One job as a client sends it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobInput {
    payload: Box<RawValue>,
    priority: Option<PriorityInput>,
    delay_ms: Option<u64>,
    run_at: Option<String>,
    max_attempts: Option<u32>,
    lease_ms: Option<u64>,
    headers: Option<UniqueMap<String>>,
    idempotency_key: Option<String>,
    group: Option<String>,
    /// Messages written to the outbox with the enqueue (a single-job body only).
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
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessageInput {
    topic: String,
    key: Option<String>,
    payload: Box<RawValue>,
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

/// `{"id", "state"}` of an enqueued job.
#[derive(Debug, Serialize)]
pub struct EnqueuedOut {
    /// The job id.
    pub id: String,
    /// `scheduled` or `ready`; for a duplicate, the original job's state.
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

/// A queue as rendered by the queue routes.
#[derive(Debug, Serialize)]
pub struct QueueOut {
    name: String,
    tenant: String,
    #[serde(flatten)]
    config: QueueConfig,
    counts: BTreeMap<&'static str, u64>,
}

impl From<QueueView> for QueueOut {
    fn from(v: QueueView) -> QueueOut {
        let counts = JobState::ALL
            .iter()
            .map(|s| (s.as_str(), v.counts[s.index()]))
            .collect();
        let (tenant, name) = super::names::shown(&v.name);
        QueueOut {
            name,
            tenant,
            config: v.config,
            counts,
        }
    }
}

/// A job as rendered by `GET /v1/jobs/{id}` and listings.
#[derive(Debug, Serialize)]
pub struct JobOut {
    id: String,
    queue: String,
    tenant: String,
    state: &'static str,
    priority: u8,
    attempts: u32,
    max_attempts: u32,
    payload: Box<RawValue>,
    headers: BTreeMap<String, String>,
    last_error: Option<String>,
    result: Option<Box<RawValue>>,
    enqueued_at: String,
    updated_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    run_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    lease_expires_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    finished_at: Option<String>,
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
#[derive(Debug, Serialize)]
pub struct DeliveryOut {
    id: String,
    queue: String,
    tenant: String,
    payload: Box<RawValue>,
    priority: u8,
    attempt: u32,
    lease: String,
    lease_expires_at: String,
    headers: BTreeMap<String, String>,
    enqueued_at: String,
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

/// The reply of a poll.
#[derive(Debug, Serialize)]
pub struct PollOut {
    /// The deliveries (empty when the wait ended with nothing ready).
    pub jobs: Vec<DeliveryOut>,
}
