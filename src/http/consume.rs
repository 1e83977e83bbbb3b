//! The routes a consumer uses (scope `jobs:consume`): poll, and ack, nack or extend a lease,
//! one at a time or acks in a batch.

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::ToSchema;

use super::AppState;
use super::access::{Caller, check_ack, check_job, check_side_effects};
use super::body::{JobIdParam, Obj, QueueName, body_bytes, parse_json, parse_json_or_default};
use super::error::{ApiError, ErrorObject};
use super::schema;
use super::wire::{
    DeliveryOut, EnqueuedOut, JobStateOut, MessageInput, PollOut, follow_ups, lease_token, messages,
};
use crate::broker::{AckItem, Acked, NackRequest, PollRequest};
use crate::clock::rfc3339;
use crate::job::JobId;

/// A poll's body; every field is optional, and an empty body means `{}`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
struct PollBody {
    /// Most jobs to lease. Default: 1.
    #[schema(minimum = 1, maximum = 1000)]
    max: usize,
    /// When none is ready, wait up to this long for one. Default: 0.
    #[schema(maximum = 30000)]
    wait_ms: u64,
    /// The lease (default: the job's `lease_ms`, else the queue's).
    #[schema(minimum = 1, maximum = 43200000)]
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
#[utoipa::path(
    post,
    path = "/v1/queues/{queue}/poll",
    operation_id = "poll",
    tag = "queues",
    summary = "Lease ready jobs (optionally long-poll)",
    description = "Leases up to max ready jobs in delivery order, waiting up to wait_ms for the first. An empty list when nothing became ready in time, the queue is paused or does not exist, or the server is shutting down. See docs/api.md#post-v1queuesqueuepoll-poll-for-jobs.",
    params(QueueName),
    request_body(content = Option<PollBody>, description = "Optional: an empty body polls for one job without waiting."),
    responses((status = 200, description = "The deliveries.", body = PollOut, links(
            ("ack" = (operation_id = "ack", parameters(("id" = "$response.body#/jobs/0/id")), request_body = json!({"lease": "$response.body#/jobs/0/lease"}))),
            ("nack" = (operation_id = "nack", parameters(("id" = "$response.body#/jobs/0/id")), request_body = json!({"lease": "$response.body#/jobs/0/lease"}))),
            ("extend" = (operation_id = "extend", parameters(("id" = "$response.body#/jobs/0/id")), request_body = json!({"lease": "$response.body#/jobs/0/lease", "lease_ms": 30000}))),
            ("ack_batch" = (operation_id = "ack_batch", request_body = json!({"acks": [{"id": "$response.body#/jobs/0/id", "lease": "$response.body#/jobs/0/lease"}]}))),
            ("get_job" = (operation_id = "get_job", parameters(("id" = "$response.body#/jobs/0/id")))),
        ))),
)]
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

/// An ack's body.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct AckBody {
    /// The lease token from the poll.
    lease: String,
    /// Stored with the job; any JSON (`null`: none), at most `max_payload_bytes`.
    #[schema(value_type = Option<Value>)]
    result: Option<Box<RawValue>>,
    /// Messages written to the outbox in the same commit.
    #[schema(value_type = Option<Vec<MessageInput>>)]
    emit: Option<Vec<Obj<MessageInput>>>,
    /// Follow-up jobs enqueued in the same commit (at most `max_batch`).
    #[schema(schema_with = schema::follow_ups)]
    enqueue: Option<Vec<Box<RawValue>>>,
}

/// The broker's ack of `id`: its result, messages and follow-up jobs (named `{label}...` in
/// messages).
fn ack_item(
    id: JobId,
    lease: &str,
    result: Option<Box<RawValue>>,
    emit: Option<Vec<Obj<MessageInput>>>,
    enqueue: Option<Vec<Box<RawValue>>>,
    label: &str,
) -> Result<AckItem, ApiError> {
    Ok(AckItem {
        id,
        lease: lease_token(lease),
        result: result.map(|r| r.get().to_owned()),
        emit: emit.map(messages).unwrap_or_default(),
        enqueue: follow_ups(enqueue.unwrap_or_default(), &format!("{label}enqueue"))?,
    })
}

/// What an ack reply adds for its follow-up jobs, when it had any.
fn enqueued_out(acked: &Acked, asked: bool) -> Option<Vec<EnqueuedOut>> {
    asked.then(|| acked.enqueued.iter().map(EnqueuedOut::from).collect())
}

/// `POST /v1/jobs/{id}/ack`.
#[utoipa::path(
    post,
    path = "/v1/jobs/{id}/ack",
    operation_id = "ack",
    tag = "jobs",
    summary = "Ack: mark a leased job succeeded",
    description = "A refused ack (stale or expired lease, a job that is not leased) changes nothing, and enqueues and emits nothing. See docs/api.md#post-v1jobsidack-ack.",
    params(JobIdParam),
    request_body = AckBody,
    responses((status = 200, description = "The job succeeded (durable).", body = JobStateOut, links(
        ("get_job" = (operation_id = "get_job", parameters(("id" = "$response.body#/id")))),
    ))),
)]
pub async fn ack(
    State(app): State<AppState>,
    Extension(by): Extension<Caller>,
    JobIdParam(id): JobIdParam,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<JobStateOut>, ApiError> {
    let broker = app.broker()?;
    let body: AckBody = parse_json(&body_bytes(body)?)?;
    let asked = body.enqueue.is_some();
    let mut item = ack_item(id, &body.lease, body.result, body.emit, body.enqueue, "")?;
    check_ack(&by, &mut item)?;
    check_job(&app, &by, id).await?;
    let acked = broker
        .ack(item)
        .await
        .map_err(|e| ApiError::from_item(e, "acks", false))?;
    let mut reply = JobStateOut::new(id, "succeeded");
    reply.enqueued = enqueued_out(&acked, asked);
    Ok(Json(reply))
}

/// A nack's body.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NackBody {
    /// The lease token from the poll.
    lease: String,
    /// Stored as `last_error` (at most 16384 bytes); without it `last_error` stays as it was.
    error: Option<String>,
    /// Retry after this long instead of the queue's backoff.
    #[schema(maximum = 31_536_000_000_i64)]
    delay_ms: Option<u64>,
    /// Make the job dead now, whatever attempts are left.
    #[serde(default)]
    dead: bool,
    /// Messages written to the outbox in the same commit.
    #[schema(value_type = Option<Vec<MessageInput>>)]
    emit: Option<Vec<Obj<MessageInput>>>,
}

/// `POST /v1/jobs/{id}/nack`.
#[utoipa::path(
    post,
    path = "/v1/jobs/{id}/nack",
    operation_id = "nack",
    tag = "jobs",
    summary = "Nack: fail the current attempt",
    description = "The job is retried after delay_ms or the queue's backoff, or becomes dead. See docs/api.md#post-v1jobsidnack-nack.",
    params(JobIdParam),
    request_body = NackBody,
    responses((status = 200, description = "The job's new state: scheduled, ready or dead.", body = JobStateOut)),
)]
pub async fn nack(
    State(app): State<AppState>,
    Extension(by): Extension<Caller>,
    JobIdParam(id): JobIdParam,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<JobStateOut>, ApiError> {
    let broker = app.broker()?;
    let body: NackBody = parse_json(&body_bytes(body)?)?;
    let mut emit = body.emit.map(messages).unwrap_or_default();
    check_side_effects(&by, &mut emit, &mut [])?;
    check_job(&app, &by, id).await?;
    let request = NackRequest {
        error: body.error,
        delay_ms: body.delay_ms,
        dead: body.dead,
        emit,
    };
    let state = broker.nack(id, lease_token(&body.lease), request).await?;
    Ok(Json(JobStateOut::new(id, state.as_str())))
}

/// An extend's body.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ExtendBody {
    /// The lease token from the poll.
    lease: String,
    /// The new deadline is now + lease_ms.
    #[schema(minimum = 1, maximum = 43200000)]
    lease_ms: u64,
}

/// A lease's new deadline.
#[derive(Serialize, ToSchema)]
pub struct ExtendOut {
    id: String,
    #[schema(format = DateTime)]
    lease_expires_at: String,
}

/// `POST /v1/jobs/{id}/extend`.
#[utoipa::path(
    post,
    path = "/v1/jobs/{id}/extend",
    operation_id = "extend",
    tag = "jobs",
    summary = "Extend a lease (heartbeat)",
    description = "Moves the deadline to now + lease_ms; the token stays the same. See docs/api.md#post-v1jobsidextend-extend-a-lease.",
    params(JobIdParam),
    request_body = ExtendBody,
    responses((status = 200, description = "The new deadline.", body = ExtendOut)),
)]
pub async fn extend(
    State(app): State<AppState>,
    Extension(by): Extension<Caller>,
    JobIdParam(id): JobIdParam,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<ExtendOut>, ApiError> {
    let broker = app.broker()?;
    let body: ExtendBody = parse_json(&body_bytes(body)?)?;
    check_job(&app, &by, id).await?;
    let deadline = broker
        .extend(id, lease_token(&body.lease), body.lease_ms)
        .await?;
    Ok(Json(ExtendOut {
        id: id.to_string(),
        lease_expires_at: rfc3339(deadline),
    }))
}

/// A batch ack's body.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct BatchAckBody {
    /// 0 to `max_batch` (1000) acks.
    #[schema(value_type = Vec<BatchAckItem>)]
    acks: Vec<Obj<BatchAckItem>>,
}

/// One ack of a batch.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct BatchAckItem {
    /// The job id, as a string; one that is not a job id names no job (404 outcome).
    id: String,
    /// The lease token from the poll.
    lease: String,
    /// As for a single ack.
    #[schema(value_type = Option<Value>)]
    result: Option<Box<RawValue>>,
    /// As for a single ack.
    #[schema(value_type = Option<Vec<MessageInput>>)]
    emit: Option<Vec<Obj<MessageInput>>>,
    /// As for a single ack.
    #[schema(schema_with = schema::follow_ups)]
    enqueue: Option<Vec<Box<RawValue>>>,
}

/// A batch ack's reply.
#[derive(Serialize, ToSchema)]
pub struct BatchAckOut {
    /// One outcome per item, in request order.
    acks: Vec<AckOutcome>,
}

/// The outcome of one item of a batch ack.
#[derive(Serialize, ToSchema)]
pub struct AckOutcome {
    /// The id exactly as sent.
    id: String,
    /// Whether this item's ack succeeded.
    ok: bool,
    /// A success's follow-up jobs, when it asked for some.
    #[serde(skip_serializing_if = "Option::is_none")]
    enqueued: Option<Vec<EnqueuedOut>>,
    /// A failure's status: the one a single ack would have answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<u16>,
    /// A failure's error object: the one a single ack would have answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<ErrorObject>,
}

/// `POST /v1/ack`: many acks in one durable write, with an outcome per item.
#[utoipa::path(
    post,
    path = "/v1/ack",
    operation_id = "ack_batch",
    tag = "jobs",
    summary = "Ack many jobs, with one outcome per item",
    description = "One durable write; items that fail change nothing and the others succeed. See docs/api.md#post-v1ack-batch-ack.",
    request_body = BatchAckBody,
    responses((status = 200, description = "An outcome per item (even when some failed).", body = BatchAckOut)),
)]
pub async fn ack_batch(
    State(app): State<AppState>,
    Extension(by): Extension<Caller>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<BatchAckOut>, ApiError> {
    let broker = app.broker()?;
    let body: BatchAckBody = parse_json(&body_bytes(body)?)?;
    let mut items = Vec::with_capacity(body.acks.len());
    let mut ids = Vec::with_capacity(body.acks.len());
    for (i, Obj(ack)) in body.acks.into_iter().enumerate() {
        // An id that is not a number names no job, nor does one in a queue outside the key's
        // patterns: either gets its own 404 outcome below.
        let mut id = ack.id.parse().unwrap_or(JobId(u64::MAX));
        if check_job(&app, &by, id).await.is_err() {
            id = JobId(u64::MAX);
        }
        ids.push((ack.id, ack.enqueue.is_some()));
        let label = format!("acks[{i}].");
        items.push(ack_item(
            id,
            &ack.lease,
            ack.result,
            ack.emit,
            ack.enqueue,
            &label,
        )?);
        if let Some(item) = items.last_mut() {
            check_ack(&by, item)?;
        }
    }
    let outcomes = broker
        .ack_many(items)
        .await
        .map_err(|e| ApiError::from_item(e, "acks", true))?;
    let acks = ids
        .into_iter()
        .zip(outcomes)
        .map(|((id, asked), outcome)| match outcome {
            Ok(acked) => AckOutcome {
                id,
                ok: true,
                enqueued: enqueued_out(&acked, asked),
                status: None,
                error: None,
            },
            Err(error) => {
                let error = ApiError::from(error);
                AckOutcome {
                    id,
                    ok: false,
                    enqueued: None,
                    status: Some(error.status().as_u16()),
                    error: Some(error.into()),
                }
            }
        })
        .collect();
    Ok(Json(BatchAckOut { acks }))
}
