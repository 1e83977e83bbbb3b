//! `GET /v1/mirrors`: each mirror's relay and how far behind it is.

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;
use super::error::ApiError;
use crate::mirror::MirrorStatus;

/// An event the mirror refused 3 times, set aside so that the relay goes on.
#[derive(Serialize, ToSchema)]
struct DeadOut {
    seq: u64,
    error: String,
}

/// A mirror's relay as shown.
#[derive(Serialize, ToSchema)]
pub struct MirrorOut {
    /// As configured.
    name: String,
    /// `postgres` or `redis`.
    kind: &'static str,
    /// `connecting`, `snapshotting`, `following`, or `down` (retrying with backoff).
    state: &'static str,
    /// The last event the mirror holds, as far as the relay knows (0 before it first
    /// connected).
    position: u64,
    /// Durable events past `position`.
    lag_events: u64,
    /// How long the oldest of them has waited; 0 when caught up.
    lag_ms: u64,
    /// The last failure.
    #[schema(required)]
    last_error: Option<String>,
    /// Events applied since the broker started.
    applied_total: u64,
    /// Failed tries since the broker started.
    errors_total: u64,
    /// The last 100 events set aside.
    dead: Vec<DeadOut>,
    /// Events set aside since the broker started.
    dead_total: u64,
}

/// Every configured mirror, in the order of the config.
#[derive(Serialize, ToSchema)]
pub struct MirrorsOut {
    mirrors: Vec<MirrorOut>,
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
#[utoipa::path(
    get,
    path = "/v1/mirrors",
    operation_id = "list_mirrors",
    tag = "mirrors",
    summary = "The mirrors' relays and their lag",
    description = "See docs/api.md#get-v1mirrors-the-mirrors-relays.",
    responses((status = 200, description = "Every mirror, in the order of the config.", body = MirrorsOut)),
)]
pub async fn list(State(app): State<AppState>) -> Result<Json<MirrorsOut>, ApiError> {
    let broker = app.broker()?;
    let (head, now) = (broker.events_head(), broker.now());
    let mirrors = app
        .mirrors()
        .into_iter()
        .map(|status| MirrorOut::new(status, head, now))
        .collect();
    Ok(Json(MirrorsOut { mirrors }))
}
