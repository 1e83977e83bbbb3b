//! Schedule routes: create or replace, read, list, delete, pause, resume, trigger.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::ToSchema;

use super::AppState;
use super::access::Caller;
use super::body::{Obj, body_bytes, parse_json};
use super::error::{ApiError, ErrorCode};
use super::wire::{DeletedOut, EnqueuedOut, JobInput, raw};
use crate::broker::{BrokerError, ScheduleSpec, ScheduleView};
use crate::clock::rfc3339;
use crate::cron::CronSchedule;
use crate::job::valid_queue_name;

/// A valid schedule name from the path (same alphabet as queue names), as a full name.
pub struct ScheduleName(String);

impl FromRequestParts<AppState> for ScheduleName {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, ApiError> {
        let Path(name) = Path::<String>::from_request_parts(parts, app)
            .await
            .map_err(|e| ApiError::new(ErrorCode::InvalidPath, e.body_text()))?;
        let by = super::names::caller(parts);
        let name =
            super::names::full_name_or(by.map(|c| &**c), &name, BrokerError::InvalidScheduleName)?;
        // A schedule into a queue outside the key's patterns is, to that key, no schedule.
        if let Some(by) = by
            && !by.touches_every_queue()
            && let Ok(view) = app.broker()?.schedule(&name)
            && !by.may_touch(&view.queue)
        {
            return Err(BrokerError::ScheduleNotFound.into());
        }
        Ok(ScheduleName(name))
    }
}

/// What a schedule does at start-up about fires it missed while the broker was down: fire
/// once for all of them, or skip them.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
enum CatchUp {
    Once,
    None,
}

/// A schedule to create or replace (fields left out take their defaults).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ScheduleBody {
    /// A cron expression (5 fields, or 6 with seconds first) or an alias such as @daily; at
    /// most 256 bytes.
    #[schema(example = "*/15 * * * *")]
    cron: String,
    /// An IANA time zone name; `null` or `""`: UTC.
    #[schema(example = "Europe/Berlin")]
    timezone: Option<String>,
    /// The queue each fire enqueues into (a queue name of the schedule's tenant).
    #[schema(example = "reports")]
    queue: String,
    /// The job each fire enqueues: a job object without `delay_ms`, `run_at`,
    /// `idempotency_key` or `emit`.
    #[schema(value_type = JobInput)]
    job: Obj<JobInput>,
    /// Create or replace it paused. Default: false.
    #[serde(default)]
    paused: bool,
    /// `null`: once.
    catch_up: Option<CatchUp>,
}

/// The job a schedule enqueues, as rendered.
#[derive(Serialize, ToSchema)]
pub struct TemplateOut {
    #[schema(value_type = Value)]
    payload: Box<RawValue>,
    priority: u8,
    /// `null`: the queue's applies.
    #[schema(required)]
    max_attempts: Option<u32>,
    /// `null`: the queue's applies.
    #[schema(required)]
    lease_ms: Option<u64>,
    headers: BTreeMap<String, String>,
}

/// A schedule as the schedule routes render it.
#[derive(Serialize, ToSchema)]
pub struct ScheduleOut {
    /// Its name within its tenant.
    name: String,
    tenant: String,
    /// The expression exactly as given.
    cron: String,
    /// The IANA name as the time zone database spells it.
    timezone: String,
    /// The queue its jobs go to.
    queue: String,
    job: TemplateOut,
    paused: bool,
    #[schema(schema_with = catch_up)]
    catch_up: &'static str,
    /// The due time of the last fire; `null` before the first.
    #[schema(required, format = DateTime)]
    last_fire_at: Option<String>,
    /// The next due time; `null` while paused.
    #[schema(required, format = DateTime)]
    next_fire_at: Option<String>,
    /// The next 5 fire times; empty while paused.
    upcoming: Vec<String>,
    #[schema(format = DateTime)]
    created_at: String,
    /// The last put, pause or resume.
    #[schema(format = DateTime)]
    updated_at: String,
}

/// `catch_up` as rendered.
fn catch_up() -> utoipa::openapi::schema::ObjectBuilder {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(["once", "none"]))
}

impl From<ScheduleView> for ScheduleOut {
    fn from(v: ScheduleView) -> ScheduleOut {
        let (tenant, name) = super::names::shown(&v.name);
        ScheduleOut {
            name,
            tenant,
            cron: v.cron,
            timezone: v.timezone,
            queue: super::names::plain(&v.queue).to_owned(),
            job: TemplateOut {
                payload: raw(v.job.payload),
                priority: v.job.priority,
                max_attempts: v.job.max_attempts,
                lease_ms: v.job.lease_ms,
                headers: v.job.headers.into_iter().collect(),
            },
            paused: v.paused,
            catch_up: if v.catch_up { "once" } else { "none" },
            last_fire_at: v.last_fire.map(rfc3339),
            next_fire_at: v.next_fire.map(rfc3339),
            upcoming: v.upcoming.into_iter().map(rfc3339).collect(),
            created_at: rfc3339(v.created_at),
            updated_at: rfc3339(v.updated_at),
        }
    }
}

/// `PUT /v1/schedules/{name}`: create (201) or replace (200).
#[utoipa::path(
    put,
    path = "/v1/schedules/{name}",
    operation_id = "put_schedule",
    tag = "schedules",
    summary = "Create or replace a cron schedule",
    description = "A replace keeps created_at and last_fire_at and computes next_fire_at afresh from now. A refused put changes nothing. See docs/api.md#put-v1schedulesname-create-or-replace-a-schedule.",
    params(ScheduleName),
    request_body = ScheduleBody,
    responses(
        (status = 201, description = "Created.", body = ScheduleOut, links(
            ("get_schedule" = (operation_id = "get_schedule", parameters(("name" = "$request.path.name")))),
            ("pause_schedule" = (operation_id = "pause_schedule", parameters(("name" = "$request.path.name")))),
            ("resume_schedule" = (operation_id = "resume_schedule", parameters(("name" = "$request.path.name")))),
            ("trigger_schedule" = (operation_id = "trigger_schedule", parameters(("name" = "$request.path.name")))),
            ("delete_schedule" = (operation_id = "delete_schedule", parameters(("name" = "$request.path.name")))),
        )),
        (status = 200, description = "Replaced.", body = ScheduleOut, links(
            ("get_schedule" = (operation_id = "get_schedule", parameters(("name" = "$request.path.name")))),
            ("pause_schedule" = (operation_id = "pause_schedule", parameters(("name" = "$request.path.name")))),
            ("resume_schedule" = (operation_id = "resume_schedule", parameters(("name" = "$request.path.name")))),
            ("trigger_schedule" = (operation_id = "trigger_schedule", parameters(("name" = "$request.path.name")))),
            ("delete_schedule" = (operation_id = "delete_schedule", parameters(("name" = "$request.path.name")))),
        )),
    ),
)]
pub async fn put(
    State(app): State<AppState>,
    Extension(by): Extension<Caller>,
    ScheduleName(name): ScheduleName,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<ScheduleOut>), ApiError> {
    let broker = app.broker()?;
    let body: ScheduleBody = parse_json(&body_bytes(body)?)?;
    let cron = CronSchedule::parse(&body.cron, body.timezone.as_deref().unwrap_or("UTC"))
        .map_err(|e| ApiError::new(ErrorCode::InvalidSchedule, e.to_string()))?;
    // The queue name, then the payload's size, then the job's own forms; the broker checks
    // every other rule.
    // The target is a queue of the schedule's own tenant, named plainly.
    if !valid_queue_name(&body.queue) {
        return Err(BrokerError::InvalidQueueName.into());
    }
    let queue = crate::tenant::full_name(crate::tenant::tenant_of(&name), &body.queue);
    super::access::check_queue(&by, &queue)?;
    broker
        .limits()
        .check_payload(body.job.0.payload())
        .map_err(|e| ApiError::from(BrokerError::Invalid(e)))?;
    let spec = ScheduleSpec {
        cron,
        queue,
        job: body.job.0.into_job(Some("job"))?,
        paused: body.paused,
        catch_up: !matches!(body.catch_up, Some(CatchUp::None)),
    };
    let (created, view) = broker.put_schedule(&name, spec).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(view.into())))
}

/// `GET /v1/schedules/{name}`.
#[utoipa::path(
    get,
    path = "/v1/schedules/{name}",
    operation_id = "get_schedule",
    tag = "schedules",
    summary = "Read a schedule",
    description = "See docs/api.md#get-v1schedulesname-read-a-schedule.",
    params(ScheduleName),
    responses((status = 200, description = "The schedule.", body = ScheduleOut)),
)]
pub async fn get(
    State(app): State<AppState>,
    ScheduleName(name): ScheduleName,
) -> Result<Json<ScheduleOut>, ApiError> {
    Ok(Json(app.broker()?.schedule(&name)?.into()))
}

/// `GET /v1/schedules`.
#[utoipa::path(
    get,
    path = "/v1/schedules",
    operation_id = "list_schedules",
    tag = "schedules",
    summary = "List schedules",
    description = "Every schedule the caller may see, by name, without pagination. See docs/api.md#get-v1schedules-list-schedules.",
    responses((status = 200, description = "The schedules.", body = SchedulesOut)),
)]
pub async fn list(
    State(app): State<AppState>,
    Extension(by): Extension<Caller>,
) -> Result<Json<SchedulesOut>, ApiError> {
    let schedules = app
        .broker()?
        .schedules()
        .into_iter()
        .filter(|s| by.owns(&s.name) && by.may_touch(&s.queue))
        .map(ScheduleOut::from)
        .collect();
    Ok(Json(SchedulesOut { schedules }))
}

/// Every schedule. Typed, so stored job payloads are written out as they are.
#[derive(Serialize, ToSchema)]
pub struct SchedulesOut {
    /// By name.
    schedules: Vec<ScheduleOut>,
}

/// `DELETE /v1/schedules/{name}`.
#[utoipa::path(
    delete,
    path = "/v1/schedules/{name}",
    operation_id = "delete_schedule",
    tag = "schedules",
    summary = "Delete a schedule",
    description = "It fires no more; jobs it already enqueued stay. Deleting one that does not exist is 404. See docs/api.md#delete-v1schedulesname-delete-a-schedule.",
    params(ScheduleName),
    responses((status = 200, description = "Deleted.", body = DeletedOut)),
)]
pub async fn delete(
    State(app): State<AppState>,
    ScheduleName(name): ScheduleName,
) -> Result<Json<DeletedOut>, ApiError> {
    app.broker()?.delete_schedule(&name).await?;
    Ok(Json(DeletedOut::new(&name)))
}

/// `POST /v1/schedules/{name}/pause`.
#[utoipa::path(
    post,
    path = "/v1/schedules/{name}/pause",
    operation_id = "pause_schedule",
    tag = "schedules",
    summary = "Stop a schedule's fires",
    description = "Ignores any body. See docs/api.md#post-v1schedulesnamepause-and-resume.",
    params(ScheduleName),
    responses((status = 200, description = "The schedule.", body = ScheduleOut)),
)]
pub async fn pause(
    State(app): State<AppState>,
    ScheduleName(name): ScheduleName,
) -> Result<Json<ScheduleOut>, ApiError> {
    Ok(Json(
        app.broker()?.set_schedule_paused(&name, true).await?.into(),
    ))
}

/// `POST /v1/schedules/{name}/resume`.
#[utoipa::path(
    post,
    path = "/v1/schedules/{name}/resume",
    operation_id = "resume_schedule",
    tag = "schedules",
    summary = "Restart a schedule's fires",
    description = "From the first fire time after now: what fell due while paused is skipped. Ignores any body. See docs/api.md#post-v1schedulesnamepause-and-resume.",
    params(ScheduleName),
    responses((status = 200, description = "The schedule.", body = ScheduleOut)),
)]
pub async fn resume(
    State(app): State<AppState>,
    ScheduleName(name): ScheduleName,
) -> Result<Json<ScheduleOut>, ApiError> {
    Ok(Json(
        app.broker()?
            .set_schedule_paused(&name, false)
            .await?
            .into(),
    ))
}

/// `POST /v1/schedules/{name}/trigger`: enqueue its job now.
#[utoipa::path(
    post,
    path = "/v1/schedules/{name}/trigger",
    operation_id = "trigger_schedule",
    tag = "schedules",
    summary = "Enqueue a schedule's job now",
    description = "Does not move the schedule; works on a paused one too. Ignores any body. See docs/api.md#post-v1schedulesnametrigger-enqueue-its-job-now.",
    params(ScheduleName),
    responses((status = 201, description = "The job enqueued (durable).", body = EnqueuedOut, links(
        ("get_job" = (operation_id = "get_job", parameters(("id" = "$response.body#/id")))),
    ))),
)]
pub async fn trigger(
    State(app): State<AppState>,
    ScheduleName(name): ScheduleName,
) -> Result<(StatusCode, Json<EnqueuedOut>), ApiError> {
    let e = app.broker()?.trigger_schedule(&name).await?;
    Ok((StatusCode::CREATED, Json(EnqueuedOut::from(&e))))
}
