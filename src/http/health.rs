//! Liveness and readiness (metrics are in [`super::metrics`]).

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use super::AppState;
use super::error::{ApiError, ErrorCode};

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
