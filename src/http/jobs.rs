//! Job routes: enqueue, read, cancel, ack, nack, extend, batch ack.

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};

use super::AppState;
use super::access::Caller;
use super::access::{check_ack, check_job, check_side_effects};
use super::body::{JobIdParam, Obj, QueueName, UniqueMap, body_bytes, parse_json, parse_list};
use super::error::ApiError;
use super::wire::{EnqueuedOut, JobInput, JobOut, MessageInput, follow_ups, lease_token, messages};
use crate::broker::{AckItem, Acked, BrokerError, NackRequest};
use crate::clock::rfc3339;
use crate::job::JobId;

type Reply = Result<(StatusCode, Json<Value>), ApiError>;

/// `POST /v1/queues/{queue}/jobs`: one job object, or `{"jobs": [...]}`.
pub async fn enqueue(
    State(app): State<AppState>,
    Extension(by): Extension<Caller>,
    QueueName(queue): QueueName,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Reply {
    let broker = app.broker()?;
    let bytes = body_bytes(body)?;
    let header_key = match headers.get("idempotency-key") {
        None => None,
        Some(value) => Some(
            value
                .to_str()
                .map_err(|_| ApiError::invalid("the Idempotency-Key header must be visible ASCII"))?
                .to_owned(),
        ),
    };
    let UniqueMap(top) = parse_json::<UniqueMap<&RawValue>>(&bytes)?;
    let (mut inputs, batch, emit) = match top.get("jobs") {
        Some(jobs) if top.keys().all(|k| k == "jobs" || k == "emit") => {
            let emit = match top.get("emit") {
                Some(emit) => messages(parse_json(emit.get().as_bytes())?),
                None => Vec::new(),
            };
            let most = broker.limits().max_batch;
            let jobs: Vec<JobInput> = parse_list(jobs.get().as_bytes(), most, || {
                batch_too_large("jobs", most)
            })?;
            (jobs, true, emit)
        }
        Some(_) => {
            return Err(ApiError::invalid(
                "a batch body has only the fields \"jobs\" and \"emit\"",
            ));
        }
        None => (vec![parse_json::<JobInput>(&bytes)?], false, Vec::new()),
    };
    let mut emit = match inputs.first_mut() {
        Some(single) if !batch => single.take_emit().unwrap_or_default(),
        _ => emit,
    };
    check_side_effects(&by, &mut emit, &mut [])?;
    // The size limits come first, as they are the cheapest to tell a client about; every
    // other rule is the broker's to check once the input has its shape.
    let limits = broker.limits();
    let item_error = |index, error| {
        ApiError::from_item(BrokerError::InvalidItem { index, error }, "jobs", batch)
    };
    limits
        .check_batch("jobs", inputs.len())
        .map_err(|e| ApiError::from(BrokerError::Invalid(e)))?;
    let mut jobs = Vec::with_capacity(inputs.len());
    for (i, input) in inputs.into_iter().enumerate() {
        limits
            .check_payload(input.payload())
            .map_err(|e| item_error(i, e))?;
        let label = batch.then(|| format!("jobs[{i}]"));
        jobs.push(input.into_job(label.as_deref())?);
    }
    if let Some(key) = header_key {
        // The header names one job; a batch carries a key per item.
        let (false, [job]) = (batch, jobs.as_mut_slice()) else {
            return Err(ApiError::invalid(
                "the Idempotency-Key header is for single-job enqueues; give each batch item an idempotency_key",
            ));
        };
        if job.idempotency_key.as_ref().is_some_and(|k| *k != key) {
            return Err(ApiError::invalid(
                "the Idempotency-Key header and the idempotency_key field differ",
            ));
        }
        job.idempotency_key = Some(key);
    }
    let enqueued = broker
        .enqueue_emitting(&queue, jobs, emit)
        .await
        .map_err(|e| ApiError::from_item(e, "jobs", batch))?;
    // 201 when anything was created; 200 when every job was a duplicate.
    let status = if enqueued.iter().all(|e| e.duplicate) {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    let mut out: Vec<EnqueuedOut> = enqueued.iter().map(EnqueuedOut::from).collect();
    let body = match out.pop() {
        Some(one) if !batch => json!(one),
        last => json!({"jobs": out.into_iter().chain(last).collect::<Vec<_>>()}),
    };
    Ok((status, Json(body)))
}

/// `GET /v1/jobs/{id}`.
pub async fn get(
    State(app): State<AppState>,
    Extension(by): Extension<Caller>,
    JobIdParam(id): JobIdParam,
) -> Result<Json<JobOut>, ApiError> {
    let job = app.broker()?.job(id).await?;
    if !by.may_touch(&job.queue) {
        return Err(BrokerError::JobNotFound.into());
    }
    Ok(Json(JobOut::from(job)))
}

/// `DELETE /v1/jobs/{id}`: cancel.
pub async fn cancel(
    State(app): State<AppState>,
    Extension(by): Extension<Caller>,
    JobIdParam(id): JobIdParam,
) -> Reply {
    check_job(&app, &by, id).await?;
    app.broker()?.cancel(id).await?;
    Ok((
        StatusCode::OK,
        Json(json!({"id": id.to_string(), "state": "cancelled"})),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AckBody {
    lease: String,
    result: Option<Box<RawValue>>,
    emit: Option<Vec<Obj<MessageInput>>>,
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
fn enqueued_json(acked: &Acked, asked: bool) -> Option<Value> {
    asked.then(|| {
        json!(
            acked
                .enqueued
                .iter()
                .map(EnqueuedOut::from)
                .collect::<Vec<_>>()
        )
    })
}

/// `POST /v1/jobs/{id}/ack`.
pub async fn ack(
    State(app): State<AppState>,
    Extension(by): Extension<Caller>,
    JobIdParam(id): JobIdParam,
    body: Result<Bytes, BytesRejection>,
) -> Reply {
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
    let mut reply = json!({"id": id.to_string(), "state": "succeeded"});
    if let (Some(enqueued), Some(object)) = (enqueued_json(&acked, asked), reply.as_object_mut()) {
        object.insert("enqueued".into(), enqueued);
    }
    Ok((StatusCode::OK, Json(reply)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NackBody {
    lease: String,
    error: Option<String>,
    delay_ms: Option<u64>,
    #[serde(default)]
    dead: bool,
    emit: Option<Vec<Obj<MessageInput>>>,
}

/// `POST /v1/jobs/{id}/nack`.
pub async fn nack(
    State(app): State<AppState>,
    Extension(by): Extension<Caller>,
    JobIdParam(id): JobIdParam,
    body: Result<Bytes, BytesRejection>,
) -> Reply {
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
    Ok((
        StatusCode::OK,
        Json(json!({"id": id.to_string(), "state": state.as_str()})),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExtendBody {
    lease: String,
    lease_ms: u64,
}

/// `POST /v1/jobs/{id}/extend`.
pub async fn extend(
    State(app): State<AppState>,
    Extension(by): Extension<Caller>,
    JobIdParam(id): JobIdParam,
    body: Result<Bytes, BytesRejection>,
) -> Reply {
    let broker = app.broker()?;
    let body: ExtendBody = parse_json(&body_bytes(body)?)?;
    check_job(&app, &by, id).await?;
    let deadline = broker
        .extend(id, lease_token(&body.lease), body.lease_ms)
        .await?;
    Ok((
        StatusCode::OK,
        Json(json!({"id": id.to_string(), "lease_expires_at": rfc3339(deadline)})),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchAckBody {
    acks: Vec<Obj<BatchAckItem>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchAckItem {
    id: String,
    lease: String,
    result: Option<Box<RawValue>>,
    emit: Option<Vec<Obj<MessageInput>>>,
    enqueue: Option<Vec<Box<RawValue>>>,
}

/// `POST /v1/ack`: many acks in one durable write, with an outcome per item.
pub async fn ack_batch(
    State(app): State<AppState>,
    Extension(by): Extension<Caller>,
    body: Result<Bytes, BytesRejection>,
) -> Reply {
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
    let acks: Vec<Value> = ids
        .into_iter()
        .zip(outcomes)
        .map(|((id, asked), outcome)| match outcome {
            Ok(acked) => match enqueued_json(&acked, asked) {
                Some(enqueued) => json!({"id": id, "ok": true, "enqueued": enqueued}),
                None => json!({"id": id, "ok": true}),
            },
            Err(error) => {
                let error = ApiError::from(error);
                json!({"id": id, "ok": false, "status": error.status().as_u16(), "error": {"code": error.code.as_str(), "message": error.message}})
            }
        })
        .collect();
    Ok((StatusCode::OK, Json(json!({"acks": acks}))))
}

/// 413 `batch_too_large` for a list `field` found to hold more than `most` items.
fn batch_too_large(field: &'static str, most: usize) -> ApiError {
    ApiError::from(BrokerError::Invalid(crate::broker::Invalid {
        field,
        rule: format!("holds more than {most} items; the limit is {most} (max_batch)"),
        kind: crate::broker::Limit::Batch,
    }))
}
