//! Queue routes: list, read and update defaults, pause/resume, list jobs, replay, purge,
//! delete.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Query, State};

use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::access::Caller;
use super::body::{Obj, QueueName, UniqueMap, body_bytes, parse_json_or_default};
use super::error::ApiError;
use super::schema;
use super::wire::{JobOut, QueueOut};
use crate::broker::limits::{MAX_POLL, check_page};
use crate::broker::{BrokerError, QueuePatch};
use crate::job::{JobId, JobState};

/// A page of queues.
#[derive(Serialize, ToSchema)]
pub struct QueuesPage {
    /// By name.
    queues: Vec<QueueOut>,
    /// What to pass as `after` for the next page; `null` on the last one.
    #[schema(required)]
    next_after: Option<String>,
}

/// `GET /v1/queues?limit=N&after=NAME`: queues sorted by name, a page at a time.
#[utoipa::path(
    get,
    path = "/v1/queues",
    operation_id = "list_queues",
    tag = "queues",
    summary = "List queues",
    description = "The queues the caller may touch, sorted by name, a page at a time. See docs/api.md#get-v1queues-list-queues.",
    params(QueuesQuery),
    responses((status = 200, description = "A page of queues.", body = QueuesPage)),
)]
pub async fn list(
    State(app): State<AppState>,
    Extension(by): Extension<Caller>,
    query: Result<Query<QueuesQuery>, QueryRejection>,
) -> Result<Json<QueuesPage>, ApiError> {
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
    let queues = page.into_iter().map(QueueOut::from).collect();
    Ok(Json(QueuesPage { queues, next_after }))
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
#[derive(Deserialize, Default, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct QueuesQuery {
    /// Most queues in the page. Default: 1000.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
    /// Start after this name (default: from the first).
    after: Option<String>,
}

/// `GET /v1/queues/{queue}`.
#[utoipa::path(
    get,
    path = "/v1/queues/{queue}",
    operation_id = "get_queue",
    tag = "queues",
    summary = "Read a queue's settings and counts",
    description = "See docs/api.md#get-v1queuesqueue-read-a-queue.",
    params(QueueName),
    responses((status = 200, description = "The queue.", body = QueueOut)),
)]
pub async fn get(
    State(app): State<AppState>,
    QueueName(queue): QueueName,
) -> Result<Json<QueueOut>, ApiError> {
    Ok(Json(app.broker()?.queue(&queue)?.into()))
}

/// A queue's settings to change; a field left out (or `null`, where `null` has no meaning of
/// its own) stays as it is.
#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
struct PatchBody {
    #[schema(minimum = 1, maximum = 43200000)]
    lease_ms: Option<u64>,
    /// Applies to jobs enqueued afterwards.
    #[schema(minimum = 1, maximum = 1000)]
    max_attempts: Option<u32>,
    #[schema(value_type = Option<BackoffPatch>)]
    backoff: Option<Obj<BackoffPatch>>,
    /// The same as pause or resume.
    paused: Option<bool>,
    /// How long succeeded and cancelled jobs stay after they finished (up to 10 years).
    #[schema(maximum = 315_360_000_000_i64)]
    retention_ms: Option<u64>,
    /// How long dead jobs stay after they died (up to 10 years).
    #[schema(maximum = 315_360_000_000_i64)]
    dead_retention_ms: Option<u64>,
    /// Up to 10 years; applies to keys used afterwards.
    #[schema(minimum = 1, maximum = 315_360_000_000_i64)]
    idempotency_window_ms: Option<u64>,
    /// The most jobs ready, scheduled or leased, or `null` for no limit. Absent: unchanged.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<u64>, minimum = 1, maximum = 1_000_000_000_000_i64)]
    max_depth: Option<Option<u64>>,
    /// The most leases one group may hold, or `null` for no cap. Absent: unchanged.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<u32>, minimum = 1, maximum = 1000000)]
    group_max_in_flight: Option<Option<u32>>,
    /// Group name to weight 1-1000, at most 1000 groups; replaces the whole map (`null` or
    /// `{}`: every group weighs 1). Absent: unchanged.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<BTreeMap<String, u32>>)]
    group_weights: Option<Option<UniqueMap<u32>>>,
}

/// A queue's backoff to change; a field left out stays as it is.
#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
struct BackoffPatch {
    /// At most `cap_ms`.
    #[schema(maximum = 31_536_000_000_i64)]
    base_ms: Option<u64>,
    #[schema(maximum = 31_536_000_000_i64)]
    cap_ms: Option<u64>,
    jitter: Option<bool>,
}

/// `PATCH /v1/queues/{queue}`: change defaults (creates the queue if new).
#[utoipa::path(
    patch,
    path = "/v1/queues/{queue}",
    operation_id = "patch_queue",
    tag = "queues",
    summary = "Change queue settings",
    description = "Creates the queue, with the server defaults plus the patch, if it is new. The result is validated as a whole before anything is written. See docs/api.md#patch-v1queuesqueue-change-queue-settings.",
    params(QueueName),
    request_body = PatchBody,
    responses((status = 200, description = "The queue.", body = QueueOut, links(
            ("enqueue" = (operation_id = "enqueue", parameters(("queue" = "$request.path.queue")))),
            ("poll" = (operation_id = "poll", parameters(("queue" = "$request.path.queue")))),
            ("get_queue" = (operation_id = "get_queue", parameters(("queue" = "$request.path.queue")))),
            ("purge" = (operation_id = "purge", parameters(("queue" = "$request.path.queue")))),
            ("replay" = (operation_id = "replay", parameters(("queue" = "$request.path.queue")))),
            ("delete_queue" = (operation_id = "delete_queue", parameters(("queue" = "$request.path.queue")))),
        ))),
)]
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
#[utoipa::path(
    post,
    path = "/v1/queues/{queue}/pause",
    operation_id = "pause_queue",
    tag = "queues",
    summary = "Stop deliveries",
    description = "Polls return nothing until resumed; enqueues, acks and the rest go on. Creates the queue if it is new; ignores any body. See docs/api.md#post-v1queuesqueuepause-and-resume.",
    params(QueueName),
    responses((status = 200, description = "The queue.", body = QueueOut)),
)]
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
#[utoipa::path(
    post,
    path = "/v1/queues/{queue}/resume",
    operation_id = "resume_queue",
    tag = "queues",
    summary = "Restart deliveries",
    description = "Wakes waiting long-polls. Creates the queue if it is new; ignores any body. See docs/api.md#post-v1queuesqueuepause-and-resume.",
    params(QueueName),
    responses((status = 200, description = "The queue.", body = QueueOut)),
)]
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

/// The states whose jobs `GET /v1/queues/{queue}/jobs` lists: the live ones.
pub const LISTED: [JobState; 4] = [
    JobState::Scheduled,
    JobState::Ready,
    JobState::Leased,
    JobState::Dead,
];

/// The query of `GET /v1/queues/{queue}/jobs`.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// The live state to list (finished jobs are read by id).
    #[param(schema_with = schema::listed_state)]
    state: String,
    /// Most jobs in the page. Default: 100.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
    /// List ids greater than this job id (empty: from the first).
    after: Option<String>,
}

/// `GET /v1/queues/{queue}/jobs?state=dead&limit=100&after=<id>`.
#[utoipa::path(
    get,
    path = "/v1/queues/{queue}/jobs",
    operation_id = "list_jobs",
    tag = "queues",
    summary = "List jobs in a live state",
    description = "One page of a queue's jobs in one live state, in id order. See docs/api.md#get-v1queuesqueuejobs-list-jobs.",
    params(QueueName, ListQuery),
    responses((status = 200, description = "A page of jobs.", body = JobsPage)),
)]
pub async fn list_jobs(
    State(app): State<AppState>,
    QueueName(queue): QueueName,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<JobsPage>, ApiError> {
    let broker = app.broker()?;
    // Like JSON bodies: unknown parameters and values of the wrong type are 422.
    let Query(query) = query.map_err(|e| ApiError::invalid(e.body_text()))?;
    let Some(state) = JobState::parse(&query.state).filter(|s| LISTED.contains(s)) else {
        return Err(ApiError::invalid(
            "state must be one of scheduled, ready, leased, dead (finished jobs are read by id)",
        ));
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
#[derive(Serialize, ToSchema)]
pub struct JobsPage {
    /// In id order.
    jobs: Vec<JobOut>,
    /// The last id of a full page, to pass as `after`; `null` otherwise.
    #[schema(required)]
    next_after: Option<String>,
}

/// A replay's body; an empty body means `{}`.
#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
struct ReplayBody {
    /// The dead jobs to replay (at most `max_batch`; others are skipped). Absent: every dead
    /// job. `null` is refused, so a bug that nulls the list cannot replay everything by
    /// accident.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Vec<String>)]
    ids: Option<Option<Vec<String>>>,
}

/// The jobs a replay made ready again.
#[derive(Serialize, ToSchema)]
pub struct ReplayOut {
    replayed: Vec<String>,
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
#[utoipa::path(
    post,
    path = "/v1/queues/{queue}/replay",
    operation_id = "replay",
    tag = "queues",
    summary = "Make dead jobs ready again",
    description = "Attempts are reset to 0. An empty body or {} replays every dead job of the queue. See docs/api.md#post-v1queuesqueuereplay-replay-dead-jobs.",
    params(QueueName),
    request_body(content = Option<ReplayBody>, description = "Optional: an empty body replays every dead job."),
    responses((status = 200, description = "The ids replayed.", body = ReplayOut)),
)]
pub async fn replay(
    State(app): State<AppState>,
    QueueName(queue): QueueName,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<ReplayOut>, ApiError> {
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
    Ok(Json(ReplayOut {
        replayed: replayed.iter().map(ToString::to_string).collect(),
    }))
}

/// What a queue deletion deleted.
#[derive(Serialize, ToSchema)]
pub struct QueueDeletedOut {
    name: String,
    tenant: String,
    /// Its jobs, in every state.
    deleted_jobs: u64,
}

/// `DELETE /v1/queues/{queue}`: delete the queue, its jobs in every state and its
/// idempotency keys.
#[utoipa::path(
    delete,
    path = "/v1/queues/{queue}",
    operation_id = "delete_queue",
    tag = "queues",
    summary = "Delete a queue with all its jobs",
    description = "Deletes its settings, every job whatever its state, and its idempotency keys. A queue that a schedule enqueues into is not deleted. See docs/api.md#delete-v1queuesqueue-delete-a-queue.",
    params(QueueName),
    responses((status = 200, description = "The queue is deleted.", body = QueueDeletedOut)),
)]
pub async fn delete(
    State(app): State<AppState>,
    QueueName(queue): QueueName,
) -> Result<Json<QueueDeletedOut>, ApiError> {
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
    Ok(Json(QueueDeletedOut {
        name,
        tenant,
        deleted_jobs: deleted,
    }))
}

/// How many jobs a purge deleted.
#[derive(Serialize, ToSchema)]
pub struct PurgeOut {
    purged: u64,
}

/// `DELETE /v1/queues/{queue}/jobs`: purge waiting and dead jobs.
#[utoipa::path(
    delete,
    path = "/v1/queues/{queue}/jobs",
    operation_id = "purge",
    tag = "queues",
    summary = "Purge waiting and dead jobs",
    description = "Deletes every scheduled, ready and dead job of the queue; leased jobs are left to finish. See docs/api.md#delete-v1queuesqueuejobs-purge.",
    params(QueueName),
    responses((status = 200, description = "How many jobs were deleted.", body = PurgeOut)),
)]
pub async fn purge(
    State(app): State<AppState>,
    QueueName(queue): QueueName,
) -> Result<Json<PurgeOut>, ApiError> {
    let purged = app.broker()?.purge(&queue).await?;
    Ok(Json(PurgeOut { purged }))
}
