//! Liveness, readiness and Prometheus metrics.

use std::fmt::Write;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::{Extension, Json};
use serde_json::{Value, json};

use super::AppState;
use super::access::Caller;
use super::error::{ApiError, ErrorCode};
use crate::job::JobState;

/// Reads one counter of a queue.
type CounterFn = fn(&crate::broker::Counters) -> u64;

/// `GET /healthz`: the process is up (also during recovery).
#[utoipa::path(
    get,
    path = "/healthz",
    operation_id = "healthz",
    tag = "health",
    summary = "Liveness",
    description = "200 while the process serves HTTP, also during start-up recovery. See docs/api.md#get-healthz.",
    responses((status = 200, description = "Up.", body = super::schema::HealthOut)),
)]
pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// `GET /readyz`: 200 once recovery is done and while storage accepts writes.
#[utoipa::path(
    get,
    path = "/readyz",
    operation_id = "readyz",
    tag = "health",
    summary = "Readiness",
    description = "200 once recovery is done, while storage accepts writes and until shutdown begins; else 503 recovering, storage_failed or shutting_down. A volume below its floor does not make the broker unready. See docs/api.md#get-readyz.",
    responses((status = 200, description = "Ready.", body = super::schema::ReadyOut)),
)]
pub async fn readyz(State(app): State<AppState>) -> Result<Json<Value>, ApiError> {
    let broker = app.broker()?;
    if !broker.is_healthy() {
        return Err(ApiError::new(
            ErrorCode::StorageFailed,
            "storage failed; see the server log",
        ));
    }
    if broker.is_shutting_down() {
        return Err(ApiError::new(
            ErrorCode::ShuttingDown,
            "the broker is shutting down",
        ));
    }
    // A volume below its floor does not make the broker unready: consumers must still reach
    // it to drain. The body says so, for a dashboard or an alert.
    let disk = broker.disk_space();
    Ok(Json(json!({
        "status": "ready",
        "disk": {
            "available_bytes": disk.available_bytes,
            "floor_bytes": disk.floor_bytes,
            "low": disk.low,
            "pending_checkpoint_bytes": disk.pending_checkpoint_bytes,
        },
    })))
}

/// `GET /metrics`: Prometheus text format. Queue series are labelled by tenant and queue; a
/// tenant's key sees its own tenant's series only, an operator every series.
#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "metrics",
    tag = "health",
    summary = "Prometheus metrics",
    description = "The Prometheus text format (text/plain; version=0.0.4). See docs/api.md#get-metrics.",
    responses((status = 200, description = "The metrics.", content_type = "text/plain", body = String)),
)]
pub async fn metrics(
    State(app): State<AppState>,
    Extension(by): Extension<Caller>,
) -> Result<impl IntoResponse, ApiError> {
    let broker = app.broker()?;
    let mut out = String::new();
    let counters: Vec<_> = broker
        .counters()
        .into_iter()
        .filter(|(queue, ..)| by.may_touch(queue))
        .map(|(queue, counts, c)| {
            let (tenant, name) = crate::tenant::split(&queue);
            (format!("tenant=\"{tenant}\",queue=\"{name}\""), counts, c)
        })
        .collect();
    out.push_str("# HELP wharf_jobs Jobs per queue and state.\n# TYPE wharf_jobs gauge\n");
    for (labels, counts, _) in &counters {
        for state in JobState::ALL {
            let _ = writeln!(
                out,
                "wharf_jobs{{{labels},state=\"{}\"}} {}",
                state.as_str(),
                counts[state.index()]
            );
        }
    }
    let series: [(&str, &str, CounterFn); 6] = [
        ("wharf_jobs_enqueued_total", "Jobs enqueued.", |c| {
            c.enqueued
        }),
        (
            "wharf_jobs_delivered_total",
            "Deliveries (leases handed out).",
            |c| c.delivered,
        ),
        ("wharf_jobs_acked_total", "Jobs acked.", |c| c.acked),
        ("wharf_jobs_nacked_total", "Nacks.", |c| c.nacked),
        ("wharf_jobs_expired_total", "Leases that expired.", |c| {
            c.expired
        }),
        (
            "wharf_jobs_dead_lettered_total",
            "Jobs that became dead.",
            |c| c.dead_lettered,
        ),
    ];
    for (name, help, get) in series {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        for (labels, _, c) in &counters {
            let _ = writeln!(out, "{name}{{{labels}}} {}", get(c));
        }
    }
    auth_metrics(&mut out, &app, &by);
    if by.is_operator() {
        broker_metrics(&mut out, &app, broker);
    }
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    ))
}

/// The series of the broker as a whole (storage, polls, retention, disk, mirrors, recovery):
/// an operator's.
fn broker_metrics(out: &mut String, app: &AppState, broker: &crate::broker::Broker) {
    let store = broker.storage_metrics();
    store
        .group_size
        .render(out, "wharf_commit_group_size", "Write requests per commit.");
    store.apply_seconds.render(
        out,
        "wharf_apply_seconds",
        "Duration of applying one commit group to the data file, before its journal fsync.",
    );
    store.fsync_seconds.render(
        out,
        "wharf_fsync_seconds",
        "Duration of journal fsyncs (each makes every commit group written before it durable).",
    );
    store.checkpoint_seconds.render(
        out,
        "wharf_checkpoint_seconds",
        "Duration of checkpoints (the journal folded into the data file with one durable commit).",
    );
    let _ = writeln!(
        out,
        "# HELP wharf_polls_waiting Long-polls waiting for a job.\n# TYPE wharf_polls_waiting gauge\nwharf_polls_waiting {}",
        broker.poll_stats().borrow().waiting
    );
    let (purged, forgotten) = broker.retention_totals();
    let _ = writeln!(
        out,
        "# HELP wharf_retention_purged_total Finished and dead jobs deleted by retention.\n# TYPE wharf_retention_purged_total counter\nwharf_retention_purged_total {purged}"
    );
    let _ = writeln!(
        out,
        "# HELP wharf_idempotency_keys_forgotten_total Idempotency keys forgotten after their window.\n# TYPE wharf_idempotency_keys_forgotten_total counter\nwharf_idempotency_keys_forgotten_total {forgotten}"
    );
    let disk = broker.disk_space();
    let _ = writeln!(
        out,
        "# HELP wharf_disk_available_bytes Free bytes on the data volume (last reading).\n# TYPE wharf_disk_available_bytes gauge\nwharf_disk_available_bytes {}\n# HELP wharf_disk_floor_bytes Free space below which writes that add data are refused (507).\n# TYPE wharf_disk_floor_bytes gauge\nwharf_disk_floor_bytes {}\n# HELP wharf_disk_low 1 while the data volume is below its floor.\n# TYPE wharf_disk_low gauge\nwharf_disk_low {}",
        disk.available_bytes,
        disk.floor_bytes,
        u8::from(disk.low)
    );
    mirror_metrics(out, app, broker.events_head(), broker.now());
    let recovery = broker.recovery_stats();
    let _ = writeln!(
        out,
        "# HELP wharf_recovered_jobs Job records scanned at start-up.\n# TYPE wharf_recovered_jobs gauge\nwharf_recovered_jobs {}",
        recovery.jobs
    );
    let _ = writeln!(
        out,
        "# HELP wharf_recovery_seconds Start-up recovery time.\n# TYPE wharf_recovery_seconds gauge\nwharf_recovery_seconds {}",
        recovery.elapsed.as_secs_f64()
    );
}

/// Requests by tenant and refusals by reason (once keys exist): the tenants `by` reaches.
fn auth_metrics(out: &mut String, app: &AppState, by: &crate::auth::Principal) {
    let Ok(keys) = app.keys() else { return };
    if !keys.enabled() {
        return;
    }
    let mut tenants = keys.tenant_stats();
    tenants.retain(|tenant, _| by.reaches(tenant));
    let _ = writeln!(
        out,
        "# HELP wharf_requests_total Requests a key was let through with, by its tenant.\n# TYPE wharf_requests_total counter"
    );
    for (tenant, stats) in &tenants {
        let _ = writeln!(
            out,
            "wharf_requests_total{{tenant=\"{tenant}\"}} {}",
            stats.requests
        );
    }
    let _ = writeln!(
        out,
        "# HELP wharf_requests_rejected_total Requests refused before their handler: unauthorized (no valid key, no tenant), forbidden (a missing scope), rate_limited.\n# TYPE wharf_requests_rejected_total counter"
    );
    if by.is_operator() {
        let _ = writeln!(
            out,
            "wharf_requests_rejected_total{{reason=\"unauthorized\"}} {}",
            keys.unauthorized_total()
        );
    }
    for (tenant, stats) in &tenants {
        let _ = writeln!(
            out,
            "wharf_requests_rejected_total{{tenant=\"{tenant}\",reason=\"forbidden\"}} {}\nwharf_requests_rejected_total{{tenant=\"{tenant}\",reason=\"rate_limited\"}} {}",
            stats.forbidden, stats.rate_limited
        );
    }
}

/// The mirror series, labelled by mirror.
fn mirror_metrics(out: &mut String, app: &AppState, head: u64, now: u64) {
    let mirrors = app.mirrors();
    if mirrors.is_empty() {
        return;
    }
    type Series = (&'static str, &'static str, &'static str);
    let series: [Series; 6] = [
        (
            "wharf_mirror_lag_events",
            "gauge",
            "Events readers can see that the mirror does not hold yet.",
        ),
        (
            "wharf_mirror_lag_seconds",
            "gauge",
            "How long the oldest event the mirror has not applied has waited.",
        ),
        (
            "wharf_mirror_applied_events_total",
            "counter",
            "Events applied to the mirror.",
        ),
        (
            "wharf_mirror_errors_total",
            "counter",
            "Failed tries to reach or write to the mirror.",
        ),
        (
            "wharf_mirror_dead_events_total",
            "counter",
            "Events the mirror refused, set aside in its dead list.",
        ),
        (
            "wharf_mirror_up",
            "gauge",
            "1 when the last try to reach the mirror worked.",
        ),
    ];
    for (name, kind, help) in series {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for m in &mirrors {
            let value = match name {
                "wharf_mirror_lag_events" => m.lag_events(head) as f64,
                "wharf_mirror_lag_seconds" => m.lag_ms(head, now) as f64 / 1000.0,
                "wharf_mirror_applied_events_total" => m.applied_total as f64,
                "wharf_mirror_errors_total" => m.errors_total as f64,
                "wharf_mirror_dead_events_total" => m.dead_total as f64,
                _ => f64::from(u8::from(m.up)),
            };
            let _ = writeln!(out, "{name}{{mirror=\"{}\"}} {value}", m.name);
        }
    }
}
