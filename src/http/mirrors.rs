//! `GET /v1/mirrors`: each mirror's relay and how far behind it is.

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use serde_json::{Value, json};

use super::AppState;
use super::error::ApiError;
use crate::mirror::MirrorStatus;

/// A set-aside event as shown.
#[derive(Serialize)]
struct DeadOut {
    seq: u64,
    error: String,
}

/// A mirror as shown.
#[derive(Serialize)]
pub struct MirrorOut {
    name: String,
    kind: &'static str,
    state: &'static str,
    position: u64,
    lag_events: u64,
    lag_ms: u64,
    last_error: Option<String>,
    applied_total: u64,
    errors_total: u64,
    dead: Vec<DeadOut>,
    dead_total: u64,
}

impl MirrorOut {
    /// The view of `status` against the log's `head` at `now`.
    pub fn new(status: MirrorStatus, head: u64, now: u64) -> MirrorOut {
        MirrorOut {
            lag_events: status.lag_events(head),
            lag_ms: status.lag_ms(head, now),
            name: status.name,
            kind: status.kind.as_str(),
            state: status.state.as_str(),
            position: status.position,
            last_error: status.last_error,
            applied_total: status.applied_total,
            errors_total: status.errors_total,
            dead: status
                .dead
                .into_iter()
                .map(|d| DeadOut {
                    seq: d.seq,
                    error: d.error,
                })
                .collect(),
            dead_total: status.dead_total,
        }
    }
}

/// `GET /v1/mirrors`.
pub async fn list(State(app): State<AppState>) -> Result<Json<Value>, ApiError> {
    let broker = app.broker()?;
    let (head, now) = (broker.events_head(), broker.now());
    let mirrors: Vec<MirrorOut> = app
        .mirrors()
        .into_iter()
        .map(|status| MirrorOut::new(status, head, now))
        .collect();
    Ok(Json(json!({ "mirrors": mirrors })))
}
