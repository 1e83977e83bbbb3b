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
use serde_json::{Value, json};

use super::AppState;
use super::access::Caller;
use super::body::{Obj, body_bytes, parse_json};
use super::error::{ApiError, ErrorCode};
use super::wire::{EnqueuedOut, JobInput, raw};
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

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum CatchUp {
    Once,
    None,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScheduleBody {
    cron: String,
    timezone: Option<String>,
    queue: String,
    job: Obj<JobInput>,
    #[serde(default)]
    paused: bool,
    catch_up: Option<CatchUp>,
}

#[derive(Serialize)]
/// The job a schedule enqueues, as rendered.
pub struct TemplateOut {
    payload: Box<RawValue>,
    priority: u8,
    max_attempts: Option<u32>,
    lease_ms: Option<u64>,
    headers: BTreeMap<String, String>,
}

#[derive(Serialize)]
/// A schedule as the schedule routes render it.
pub struct ScheduleOut {
    name: String,
    tenant: String,
    cron: String,
    timezone: String,
    queue: String,
    job: TemplateOut,
    paused: bool,
    catch_up: &'static str,
    last_fire_at: Option<String>,
    next_fire_at: Option<String>,
    upcoming: Vec<String>,
    created_at: String,
    updated_at: String,
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
pub async fn get(
    State(app): State<AppState>,
    ScheduleName(name): ScheduleName,
) -> Result<Json<ScheduleOut>, ApiError> {
    Ok(Json(app.broker()?.schedule(&name)?.into()))
}

/// `GET /v1/schedules`.
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
#[derive(Serialize)]
pub struct SchedulesOut {
    schedules: Vec<ScheduleOut>,
}

/// `DELETE /v1/schedules/{name}`.
pub async fn delete(
    State(app): State<AppState>,
    ScheduleName(name): ScheduleName,
) -> Result<Json<Value>, ApiError> {
    app.broker()?.delete_schedule(&name).await?;
    let (tenant, name) = super::names::shown(&name);
    Ok(Json(
        json!({"name": name, "tenant": tenant, "deleted": true}),
    ))
}

/// `POST /v1/schedules/{name}/pause`.
pub async fn pause(
    State(app): State<AppState>,
    ScheduleName(name): ScheduleName,
) -> Result<Json<ScheduleOut>, ApiError> {
    Ok(Json(
        app.broker()?.set_schedule_paused(&name, true).await?.into(),
    ))
}

/// `POST /v1/schedules/{name}/resume`.
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
pub async fn trigger(
    State(app): State<AppState>,
    ScheduleName(name): ScheduleName,
) -> Result<(StatusCode, Json<EnqueuedOut>), ApiError> {
    let e = app.broker()?.trigger_schedule(&name).await?;
    Ok((StatusCode::CREATED, Json(EnqueuedOut::from(&e))))
}
