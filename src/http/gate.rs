//! The two middleware layers every request passes, in the order it meets their checks.
//!
//! - [`edge`] (a `Router::layer`, so it also wraps the fallbacks): starts the request's clock,
//!   reads its whole body within the limits, and counts the reply under its route.
//! - [`gate`] (a `route_layer`, so only matched routes): a web page's request that may not
//!   reach the broker at all (`origin`), then the caller's key and scope (`access`), then the
//!   request's shape: query string and media type (`request_checks`). A caller without a key
//!   learns nothing of the request's other faults.
//!
//! Each is one `from_fn` layer calling plain functions: every `from_fn` layer costs about 3.5k
//! instructions a request in axum's machinery, as much as a small handler, so five separate
//! layers spent more than a tenth of an unbatched request (docs/benchmarks.md).

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::conn::{self, BodyLimits};
use super::metrics::HttpMetrics;
use super::{AppState, access, origin, request_checks};

/// What [`edge`] needs.
#[derive(Clone)]
pub struct Edge {
    pub metrics: Arc<HttpMetrics>,
    pub body: BodyLimits,
}

/// Times every request, from its head's arrival (before its body is read) to its reply's head,
/// and counts it under its route. A `Router::layer` runs after routing, so the matched route
/// is known here (none for the fallback).
pub async fn edge(State(edge): State<Edge>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let row = request
        .extensions()
        .get::<MatchedPath>()
        .and_then(|path| access::row(request.method(), path.as_str()));
    let response = match conn::read_body(edge.body, request).await {
        Ok(request) => next.run(request).await,
        Err(refused) => refused,
    };
    edge.metrics
        .record(row, response.status(), started.elapsed());
    response
}

/// The checks of a matched route, before its handler.
pub async fn gate(State(app): State<AppState>, request: Request, next: Next) -> Response {
    if let Err(refused) = origin::check(&app, &request) {
        return refused.into_response();
    }
    access::authorize(&app, request, async |request| {
        match request_checks::check(&request) {
            Ok(()) => next.run(request).await,
            Err(refused) => refused.into_response(),
        }
    })
    .await
}
