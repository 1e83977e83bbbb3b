//! Job routes: enqueue, read, cancel (a consumer's routes are in `consume.rs`).

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::{Extension, Json};
use serde::Serialize;
use serde_json::value::RawValue;
use utoipa::ToSchema;

use super::AppState;
use super::access::{Caller, check_job, check_side_effects};
use super::body::{JobIdParam, QueueName, UniqueMap, body_bytes, parse_json, parse_list};
use super::error::ApiError;
use super::wire::{EnqueuedOut, JobInput, JobOut, JobStateOut, MessageInput, messages};
use crate::broker::BrokerError;

/// An enqueue's body, as the OpenAPI document shows it: the handler reads it by hand, so that
/// a batch's items are counted (and refused past `max_batch`) before they are built.
#[derive(ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum EnqueueBody {
    /// One job.
    One(JobInput),
    /// A batch: 1 to `max_batch` (1000) jobs, all or nothing.
    Batch(BatchInput),
}

/// A batch enqueue's body.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct BatchInput {
    jobs: Vec<JobInput>,
    /// Messages written to the outbox in the same commit, if any job is created.
    emit: Option<Vec<MessageInput>>,
}

/// An enqueue's reply: one job's, or a batch's in request order.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum EnqueueOut {
    /// One job.
    One(EnqueuedOut),
    /// A batch.
    Batch {
        /// One item per job, in request order.
        jobs: Vec<EnqueuedOut>,
    },
}

/// `POST /v1/queues/{queue}/jobs`: one job object, or `{"jobs": [...]}`.
#[utoipa::path(
    post,
    path = "/v1/queues/{queue}/jobs",
    operation_id = "enqueue",
    tag = "jobs",
    summary = "Enqueue one job or a batch",
    description = "Creates the queue if it is new. The reply comes once the jobs are durable. See docs/api.md#post-v1queuesqueuejobs-enqueue.",
    params(
        QueueName,
        ("Idempotency-Key" = Option<String>, Header, description = "The idempotency key of a single-job body: 1-255 bytes of visible ASCII."),
    ),
    request_body = EnqueueBody,
    responses(
        (status = 201, description = "At least one job was created.", body = EnqueueOut, links(
            ("get_job" = (operation_id = "get_job", parameters(("id" = "$response.body#/id")))),
            ("cancel_job" = (operation_id = "cancel_job", parameters(("id" = "$response.body#/id")))),
            ("poll" = (operation_id = "poll", parameters(("queue" = "$request.path.queue")))),
            ("get_queue" = (operation_id = "get_queue", parameters(("queue" = "$request.path.queue")))),
        )),
        (status = 200, description = "Every job was a duplicate of an earlier one (nothing was created).", body = EnqueueOut, links(
            ("get_job" = (operation_id = "get_job", parameters(("id" = "$response.body#/id")))),
            ("cancel_job" = (operation_id = "cancel_job", parameters(("id" = "$response.body#/id")))),
            ("poll" = (operation_id = "poll", parameters(("queue" = "$request.path.queue")))),
            ("get_queue" = (operation_id = "get_queue", parameters(("queue" = "$request.path.queue")))),
        )),
    ),
)]
pub async fn enqueue(
    State(app): State<AppState>,
    Extension(by): Extension<Caller>,
    QueueName(queue): QueueName,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<EnqueueOut>), ApiError> {
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
    let mut jobs: Vec<EnqueuedOut> = enqueued.iter().map(EnqueuedOut::from).collect();
    let body = match jobs.pop() {
        Some(one) if !batch => EnqueueOut::One(one),
        last => EnqueueOut::Batch {
            jobs: jobs.into_iter().chain(last).collect(),
        },
    };
    Ok((status, Json(body)))
}

/// `GET /v1/jobs/{id}`.
#[utoipa::path(
    get,
    path = "/v1/jobs/{id}",
    operation_id = "get_job",
    tag = "jobs",
    summary = "Read a job",
    description = "A job in any state, until retention deletes it. See docs/api.md#get-v1jobsid-read-a-job.",
    params(JobIdParam),
    responses((status = 200, description = "The job.", body = JobOut)),
)]
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
#[utoipa::path(
    delete,
    path = "/v1/jobs/{id}",
    operation_id = "cancel_job",
    tag = "jobs",
    summary = "Cancel a job",
    description = "Cancels a job that is scheduled, ready or dead; cancelling a cancelled job answers the same. See docs/api.md#delete-v1jobsid-cancel-a-job.",
    params(JobIdParam),
    responses((status = 200, description = "The job is cancelled.", body = JobStateOut)),
)]
pub async fn cancel(
    State(app): State<AppState>,
    Extension(by): Extension<Caller>,
    JobIdParam(id): JobIdParam,
) -> Result<Json<JobStateOut>, ApiError> {
    check_job(&app, &by, id).await?;
    app.broker()?.cancel(id).await?;
    Ok(Json(JobStateOut::new(id, "cancelled")))
}

/// 413 `batch_too_large` for a list `field` found to hold more than `most` items.
fn batch_too_large(field: &'static str, most: usize) -> ApiError {
    ApiError::from(BrokerError::Invalid(crate::broker::Invalid {
        field,
        rule: format!("holds more than {most} items; the limit is {most} (max_batch)"),
        kind: crate::broker::Limit::Batch,
    }))
}
