//! Queue routes: poll, list, read and update defaults, pause/resume, list jobs, replay, purge,
//! delete.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::AppState;
use super::access::Caller;
use super::body::{Obj, QueueName, UniqueMap, body_bytes, parse_json_or_default};
use super::error::ApiError;
use super::wire::{DeliveryOut, JobOut, PollOut, QueueOut};
use crate::broker::limits::{MAX_POLL, check_page};
use crate::broker::{BrokerError, PollRequest, QueuePatch};
use crate::job::{JobId, JobState};

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct PollBody {
    max: usize,
    wait_ms: u64,
    lease_ms: Option<u64>,
}

impl Default for PollBody {
    fn default() -> Self {
        PollBody {
            max: 1,
            wait_ms: 0,
            lease_ms: None,
        }
    }
}

/// `POST /v1/queues/{queue}/poll` (an empty body polls for one job without waiting).
pub async fn poll(
    State(app): State<AppState>,
    QueueName(queue): QueueName,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<PollOut>, ApiError> {
    let broker = app.broker()?;
    let body: PollBody = parse_json_or_default(&body_bytes(body)?)?;
    let request = PollRequest {
        max: body.max,
        wait_ms: body.wait_ms,
        lease_ms: body.lease_ms,
    };
    let deliveries = broker.poll(&queue, request).await?;
    // Typed output: a `json!` value would re-parse every raw payload into a tree.
    let jobs = deliveries.into_iter().map(DeliveryOut::from).collect();
    Ok(Json(PollOut { jobs }))
}

/// `GET /v1/queues?limit=N&after=NAME`: queues sorted by name, a page at a time.
pub async fn list(
    State(app): State<AppState>,
    Extension(by): Extension<Caller>,
    query: Result<Query<QueuesQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::invalid(e.body_text()))?;
    let limit = query.limit.unwrap_or(MAX_POLL);
    check_page(limit).map_err(|e| ApiError::from(BrokerError::Invalid(e)))?;
    // Pages go by full name, so one tenant's queues are contiguous and in name order.
    let after = match query.after {
        Some(after) => by.full_name(&after).ok_or(BrokerError::InvalidQueueName)?,
        None => String::new(),
    };
    let mut page: Vec<_> = app
        .broker()?
        .queues()
        .into_iter()
        .filter(|q| q.name > after && by.may_touch(&q.name))
        .take(limit + 1)
        .collect();
    let more = page.len() > limit;
    page.truncate(limit);
    let next_after = more
        .then(|| page.last().map(|q| next_after_name(&by, &q.name)))
        .flatten();
    let queues: Vec<QueueOut> = page.into_iter().map(QueueOut::from).collect();
    Ok(Json(json!({"queues": queues, "next_after": next_after})))
}

/// The `after` of the next page: as the caller would send it.
fn next_after_name(by: &crate::auth::Principal, full: &str) -> String {
    if by.is_operator() {
        full.to_owned()
    } else {
        super::names::plain(full).to_owned()
    }
}

/// The query of `GET /v1/queues`.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct QueuesQuery {
    limit: Option<usize>,
    after: Option<String>,
}

/// `GET /v1/queues/{queue}`.
pub async fn get(
    State(app): State<AppState>,
    QueueName(queue): QueueName,
) -> Result<Json<QueueOut>, ApiError> {
    Ok(Json(app.broker()?.queue(&queue)?.into()))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct PatchBody {
    lease_ms: Option<u64>,
    max_attempts: Option<u32>,
    backoff: Option<Obj<BackoffPatch>>,
    paused: Option<bool>,
    retention_ms: Option<u64>,
    dead_retention_ms: Option<u64>,
    idempotency_window_ms: Option<u64>,
    /// Absent: unchanged; `null`: no limit.
    #[serde(default, deserialize_with = "present")]
    max_depth: Option<Option<u64>>,
    /// Absent: unchanged; `null`: no limit.
    #[serde(default, deserialize_with = "present")]
    group_max_in_flight: Option<Option<u32>>,
    /// Absent: unchanged; `null` or `{}`: every group weighs 1.
    #[serde(default, deserialize_with = "present")]
    group_weights: Option<Option<UniqueMap<u32>>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct BackoffPatch {
    base_ms: Option<u64>,
    cap_ms: Option<u64>,
    jitter: Option<bool>,
}

/// `PATCH /v1/queues/{queue}`: change defaults (creates the queue if new).
pub async fn patch(
    State(app): State<AppState>,
    QueueName(queue): QueueName,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<QueueOut>, ApiError> {
    let broker = app.broker()?;
    let body: PatchBody = super::body::parse_json(&body_bytes(body)?)?;
    let backoff = body.backoff.map(|b| b.0).unwrap_or_default();
    let patch = QueuePatch {
        lease_ms: body.lease_ms,
        max_attempts: body.max_attempts,
        backoff_base_ms: backoff.base_ms,
        backoff_cap_ms: backoff.cap_ms,
        backoff_jitter: backoff.jitter,
        paused: body.paused,
        retention_ms: body.retention_ms,
        dead_retention_ms: body.dead_retention_ms,
        idempotency_window_ms: body.idempotency_window_ms,
        max_depth: body.max_depth,
        group_max_in_flight: body.group_max_in_flight,
        group_weights: body
            .group_weights
            .map(|w| w.map(|m| m.0.into_iter().collect()).unwrap_or_default()),
    };
    Ok(Json(broker.update_queue(&queue, patch).await?.into()))
}

/// `POST /v1/queues/{queue}/pause`.
pub async fn pause(
    State(app): State<AppState>,
    QueueName(queue): QueueName,
) -> Result<Json<QueueOut>, ApiError> {
    let patch = QueuePatch {
        paused: Some(true),
        ..QueuePatch::default()
    };
    Ok(Json(
        app.broker()?.update_queue(&queue, patch).await?.into(),
    ))
}

/// `POST /v1/queues/{queue}/resume`.
pub async fn resume(
    State(app): State<AppState>,
    QueueName(queue): QueueName,
) -> Result<Json<QueueOut>, ApiError> {
    let patch = QueuePatch {
        paused: Some(false),
        ..QueuePatch::default()
    };
    Ok(Json(
        app.broker()?.update_queue(&queue, patch).await?.into(),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    state: String,
    limit: Option<usize>,
    after: Option<String>,
}

/// `GET /v1/queues/{queue}/jobs?state=dead&limit=100&after=<id>`.
pub async fn list_jobs(
    State(app): State<AppState>,
    QueueName(queue): QueueName,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<JobsPage>, ApiError> {
    let broker = app.broker()?;
    // Like JSON bodies: unknown parameters and values of the wrong type are 422.
    let Query(query) = query.map_err(|e| ApiError::invalid(e.body_text()))?;
    let state = match JobState::parse(&query.state) {
        Some(s @ (JobState::Scheduled | JobState::Ready | JobState::Leased | JobState::Dead)) => s,
        _ => {
            return Err(ApiError::invalid(
                "state must be one of scheduled, ready, leased, dead (finished jobs are read by id)",
            ));
        }
    };
    let limit = query.limit.unwrap_or(100);
    let after = match query.after.as_deref() {
        None | Some("") => None,
        Some(text) => Some(
            text.parse::<JobId>()
                .map_err(|_| ApiError::invalid("after must be a job id"))?,
        ),
    };
    let jobs = broker.list_jobs(&queue, state, after, limit).await?;
    let next = (jobs.len() == limit)
        .then(|| jobs.last().map(|j| j.id.to_string()))
        .flatten();
    let jobs = jobs.into_iter().map(JobOut::from).collect();
    Ok(Json(JobsPage {
        jobs,
        next_after: next,
    }))
}

/// A page of a queue's jobs. Typed, so stored payloads are written out as they are (a `json!`
/// tree would re-parse them, and fail on what serde_json's `Value` cannot hold).
#[derive(Serialize)]
pub struct JobsPage {
    jobs: Vec<JobOut>,
    next_after: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ReplayBody {
    /// Absent: every dead job. `null` is refused, so a bug that nulls the list cannot replay
    /// everything by accident.
    #[serde(default, deserialize_with = "present")]
    ids: Option<Option<Vec<String>>>,
}

/// Marks a field that is present (even as `null`) as `Some`; with `default`, absent is `None`.
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// `POST /v1/queues/{queue}/replay`: `{"ids": [...]}`, or `{}` for every dead job.
pub async fn replay(
    State(app): State<AppState>,
    QueueName(queue): QueueName,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let broker = app.broker()?;
    let body: ReplayBody = parse_json_or_default(&body_bytes(body)?)?;
    let ids = match body.ids {
        None => None,
        Some(None) => {
            return Err(ApiError::invalid(
                "ids must be a list of job ids; omit it to replay every dead job",
            ));
        }
        // An id that is not a job id names no dead job of this queue: skipped like the others.
        Some(Some(ids)) => Some(
            ids.iter()
                .map(|id| id.parse().unwrap_or(JobId(u64::MAX)))
                .collect(),
        ),
    };
    let replayed = broker.replay(&queue, ids).await?;
    Ok(Json(
        json!({"replayed": replayed.iter().map(ToString::to_string).collect::<Vec<_>>()}),
    ))
}

/// `DELETE /v1/queues/{queue}`: delete the queue, its jobs in every state and its
/// idempotency keys.
pub async fn delete(
    State(app): State<AppState>,
    QueueName(queue): QueueName,
) -> Result<Json<Value>, ApiError> {
    let deleted = app
        .broker()?
        .delete_queue(&queue)
        .await
        .map_err(|error| match error {
            // The schedules are the queue's tenant's: shown by their plain names.
            BrokerError::QueueInUse { schedules } => BrokerError::QueueInUse {
                schedules: schedules
                    .iter()
                    .map(|s| super::names::plain(s).to_owned())
                    .collect(),
            },
            other => other,
        })?;
    let (tenant, name) = super::names::shown(&queue);
    Ok(Json(
        json!({"name": name, "tenant": tenant, "deleted_jobs": deleted}),
    ))
}

/// `DELETE /v1/queues/{queue}/jobs`: purge waiting and dead jobs.
pub async fn purge(
    State(app): State<AppState>,
    QueueName(queue): QueueName,
) -> Result<Json<Value>, ApiError> {
    let purged = app.broker()?.purge(&queue).await?;
    Ok(Json(json!({"purged": purged})))
}
