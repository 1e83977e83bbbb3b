//! Liveness and readiness (metrics are in [`super::metrics`]).

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use super::AppState;
use super::error::{ApiError, ErrorCode};

/// `GET /healthz`: the process is up (also during recovery).
pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// `GET /readyz`: 200 once recovery is done and while storage accepts writes.
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
