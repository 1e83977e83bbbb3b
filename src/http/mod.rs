//! The HTTP API (v1, JSON): parse, call one broker operation (which checks the values), render.
//!
//! - [`body`]: strict body and path parsing.
//! - [`wire`]: JSON shapes, and turning them into broker requests (the broker checks the values).
//! - [`error`]: the one list of error codes (machine code and status) and the mapping from
//!   broker errors.
//! - [`access`]: the scope of every route, and the middleware that checks keys against it.
//! - [`jobs`], [`consume`], [`queues`], [`schedules`], [`events`], [`cursors`], [`outbox`],
//!   [`mirrors`], [`keys`], [`audit`], [`health`]: the handlers, one file per resource (and
//!   [`consume`] for what a consumer does: poll, ack, nack, extend).
//! - [`openapi`]: the OpenAPI document of these routes, `GET /v1/openapi.json`, with
//!   [`schema`] for the schemas no derive writes.
//! - [`metrics`]: `GET /metrics`, and the layer that counts requests by route and status.
//! - [`sqs`]: `POST /`, the SQS-compatible endpoint (the protocol is in [`crate::sqs`]).
//! - `GET /ui` and its files: the web dashboard, served from [`crate::ui`].

pub mod access;
pub mod audit;
mod body;
pub mod conn;
mod consume;
mod cursors;
mod error;
mod events;
mod gate;
mod health;
mod jobs;
mod keys;
mod metrics;
mod mirrors;
mod names;
pub mod openapi;
mod origin;
mod outbox;
mod parse_errors;
mod queues;
mod request_checks;
mod schedules;
mod schema;
mod sqs;
pub mod tls;
mod wire;

use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};

pub use error::{ApiError, ErrorCode};

use tokio::sync::watch;

use crate::auth::Keys;
use crate::broker::Broker;
use crate::mirror::MirrorStatus;
use metrics::HttpMetrics;

/// What every handler shares. The broker is set once recovery finishes; until then the API
/// answers 503 `recovering` (and `/healthz` already answers 200).
///
/// One `Arc`: axum clones the state for every layer and extractor of every request, so a
/// clone is one atomic increment rather than one per field.
#[derive(Clone, Default)]
pub struct AppState(Arc<Shared>);

#[derive(Default)]
struct Shared {
    broker: OnceLock<Arc<Broker>>,
    /// The API keys, loaded with the broker.
    keys: OnceLock<Arc<Keys>>,
    /// The mirrors' statuses, once their relays run.
    mirrors: OnceLock<Vec<watch::Receiver<MirrorStatus>>>,
    /// `https` when serving TLS (set once at start; unset: `http`), for the URLs wharf hands
    /// out (SQS queue URLs).
    scheme: OnceLock<&'static str>,
    /// Whether the server listens on a loopback address (set once at start; unset: yes, as a
    /// router without a listener is only reached in process).
    loopback: OnceLock<bool>,
    /// Requests by route and status, counted from the first request on (also while
    /// recovering).
    http_metrics: Arc<HttpMetrics>,
}

impl AppState {
    /// A state whose broker is not there yet.
    pub fn new() -> AppState {
        AppState::default()
    }

    /// Makes the recovered broker, and the keys every request is checked against, available
    /// to handlers (until then they answer 503 `recovering`).
    pub fn set_broker(&self, broker: Arc<Broker>, keys: Arc<Keys>) {
        let _ = self.0.keys.set(keys);
        let _ = self.0.broker.set(broker);
    }

    fn keys(&self) -> Result<&Arc<Keys>, ApiError> {
        self.0.keys.get().ok_or_else(recovering)
    }

    /// Records that the API is served over TLS (`https`) or not.
    pub fn set_tls(&self, tls: bool) {
        let _ = self.0.scheme.set(if tls { "https" } else { "http" });
    }

    /// Records whether the server listens on a loopback address.
    pub fn set_loopback(&self, loopback: bool) {
        let _ = self.0.loopback.set(loopback);
    }

    /// Whether the server listens on a loopback address.
    fn serves_loopback(&self) -> bool {
        self.0.loopback.get().copied().unwrap_or(true)
    }

    /// `http` or `https`.
    fn scheme(&self) -> &'static str {
        self.0.scheme.get().copied().unwrap_or("http")
    }

    /// Makes the relays' statuses available to handlers.
    pub fn set_mirrors(&self, mirrors: Vec<watch::Receiver<MirrorStatus>>) {
        let _ = self.0.mirrors.set(mirrors);
    }

    /// Every mirror's status now (none before the relays start).
    fn mirrors(&self) -> Vec<MirrorStatus> {
        self.0
            .mirrors
            .get()
            .map(|all| all.iter().map(|m| m.borrow().clone()).collect())
            .unwrap_or_default()
    }

    fn broker(&self) -> Result<&Arc<Broker>, ApiError> {
        self.0.broker.get().ok_or_else(recovering)
    }

    fn http_metrics(&self) -> &Arc<HttpMetrics> {
        &self.0.http_metrics
    }
}

fn recovering() -> ApiError {
    ApiError::new(
        ErrorCode::Recovering,
        "the broker is recovering its data; retry shortly",
    )
}

/// The v1 router, reading bodies within `body` limits.
pub fn router_with(state: AppState, body: conn::BodyLimits) -> Router {
    Router::new()
        .route("/v1/queues", get(queues::list))
        .route(
            "/v1/queues/{queue}",
            get(queues::get).patch(queues::patch).delete(queues::delete),
        )
        .route(
            "/v1/queues/{queue}/jobs",
            post(jobs::enqueue)
                .get(queues::list_jobs)
                .delete(queues::purge),
        )
        .route("/v1/queues/{queue}/poll", post(consume::poll))
        .route("/v1/queues/{queue}/pause", post(queues::pause))
        .route("/v1/queues/{queue}/resume", post(queues::resume))
        .route("/v1/queues/{queue}/replay", post(queues::replay))
        .route("/v1/jobs/{id}", get(jobs::get).delete(jobs::cancel))
        .route("/v1/jobs/{id}/ack", post(consume::ack))
        .route("/v1/jobs/{id}/nack", post(consume::nack))
        .route("/v1/jobs/{id}/extend", post(consume::extend))
        .route("/v1/ack", post(consume::ack_batch))
        .route("/v1/schedules", get(schedules::list))
        .route(
            "/v1/schedules/{name}",
            get(schedules::get)
                .put(schedules::put)
                .delete(schedules::delete),
        )
        .route("/v1/schedules/{name}/pause", post(schedules::pause))
        .route("/v1/schedules/{name}/resume", post(schedules::resume))
        .route("/v1/schedules/{name}/trigger", post(schedules::trigger))
        .route("/v1/outbox", post(outbox::post))
        .route("/v1/events", get(events::list))
        .route("/v1/events/stream", get(events::stream))
        .route("/v1/mirrors", get(mirrors::list))
        .route("/v1/cursors", get(cursors::list))
        .route(
            "/v1/cursors/{name}",
            get(cursors::get).put(cursors::put).delete(cursors::delete),
        )
        .route("/v1/keys", post(keys::create).get(keys::list))
        .route("/v1/keys/{id}", axum::routing::delete(keys::revoke))
        .route("/v1/audit", get(audit::list))
        .route("/v1/openapi.json", get(openapi::serve))
        .route("/", post(sqs::serve).get(crate::ui::home))
        .route("/ui", get(crate::ui::index))
        .route("/ui/", get(crate::ui::index))
        .route("/ui/{asset}", get(crate::ui::asset))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(metrics::metrics))
        // Before a matched route's handler: origin, then key, then request shape (`gate.rs`).
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            gate::gate,
        ))
        .fallback(|| async { ApiError::new(ErrorCode::NotFound, "no such route; see docs/api.md") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                ErrorCode::MethodNotAllowed,
                "this route does not take that method; see docs/api.md",
            )
        })
        .layer(DefaultBodyLimit::max(body.max_bytes))
        // Outermost, fallbacks included: the clock starts before the body is read, and every
        // reply is counted.
        .layer(axum::middleware::from_fn_with_state(
            gate::Edge {
                metrics: state.http_metrics().clone(),
                body,
            },
            gate::edge,
        ))
        .with_state(state)
}

/// The v1 router with bodies of at most `max_body_bytes`, read within the default timeout.
pub fn router(state: AppState, max_body_bytes: usize) -> Router {
    router_with(
        state,
        conn::BodyLimits {
            max_bytes: max_body_bytes,
            read_timeout: std::time::Duration::from_millis(
                crate::config::Config::default().body_read_timeout_ms,
            ),
        },
    )
}
