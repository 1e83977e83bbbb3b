//! `GET /metrics`: the exposition, encoded by `prometheus-client` from a registry built for
//! each scrape and for its caller.
//!
//! Who sees what: queue series (labelled by tenant and queue) and the request series of
//! tenants (labelled by tenant) are filtered to what the caller may see, so a tenant's key
//! sees its own tenant's series only. The broker-wide series (storage timings, HTTP requests
//! by route, disk, mirrors, recovery) are an operator's only.
//!
//! Formats: OpenMetrics 1.0 (`application/openmetrics-text; version=1.0.0`) when the `Accept`
//! header asks for it, as Prometheus's does; otherwise the Prometheus text format 0.0.4
//! (`text/plain; version=0.0.4`), which every scraper and a plain `curl` read. This is the
//! negotiation of Prometheus's own Go client. The series are the same in both.
//!
//! - [`collect`]: the series read from the broker's state at scrape time.
//! - [`routes`]: requests and their latency by route and status, recorded as they are served.

mod collect;
mod routes;

use axum::Extension;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::{prometheus_text, text};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

pub use routes::HttpMetrics;

use super::AppState;
use super::access::Caller;
use super::error::{ApiError, ErrorCode};
use collect::{BrokerSeries, MirrorSeries, QueueSeries, TenantSeries};

/// The `Content-Type` of OpenMetrics text 1.0.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// `GET /metrics` (see the module's doc).
#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "metrics",
    tag = "health",
    summary = "Prometheus metrics",
    description = "Prometheus text (text/plain; version=0.0.4), or OpenMetrics 1.0 when the Accept header asks for it. A tenant's key sees its own tenant's series only. See docs/api.md#get-metrics.",
    responses(
        (status = 200, description = "The metrics.", content_type = "text/plain", body = String),
    ),
)]
pub async fn metrics(
    State(app): State<AppState>,
    Extension(by): Extension<Caller>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let broker = app.broker()?;
    let mut registry = Registry::default();
    registry.register_collector(Box::new(QueueSeries::of(broker, &by)));
    if let Some(tenants) = TenantSeries::of(app.keys()?, &by) {
        registry.register_collector(Box::new(tenants));
    }
    if by.is_operator() {
        broker.storage_metrics().register(&mut registry);
        registry.register_collector(Box::new(BrokerSeries::of(broker)));
        let mirrors = MirrorSeries::of(app.mirrors(), broker.events_head(), broker.now());
        if !mirrors.is_empty() {
            registry.register_collector(Box::new(mirrors));
        }
        registry.register_collector(Box::new(app.http_metrics().clone()));
        registry.register(
            "wharf_build",
            "The version of wharf serving",
            Info::new(vec![("version", env!("CARGO_PKG_VERSION"))]),
        );
    }
    let openmetrics = wants_openmetrics(headers.get(header::ACCEPT));
    let mut body = String::new();
    let encoded = if openmetrics {
        text::encode(&mut body, &registry)
    } else {
        prometheus_text::encode(&mut body, &registry)
    };
    if encoded.is_err() {
        tracing::error!("encoding /metrics failed");
        return Err(ApiError::new(
            ErrorCode::Internal,
            "the metrics could not be encoded; see the server log",
        ));
    }
    let content_type = if openmetrics {
        OPENMETRICS
    } else {
        prometheus_text::CONTENT_TYPE
    };
    Ok(([(header::CONTENT_TYPE, content_type)], body).into_response())
}

/// Whether an `Accept` header lists OpenMetrics text (at any quality: Prometheus lists it
/// first, and other scrapers do not list it at all).
fn wants_openmetrics(accept: Option<&HeaderValue>) -> bool {
    accept
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| {
            value.split(',').any(|range| {
                let media = range.split(';').next().unwrap_or("").trim();
                media.eq_ignore_ascii_case("application/openmetrics-text")
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openmetrics_only_when_asked_for() {
        let asks =
            |accept: &'static str| wants_openmetrics(Some(&HeaderValue::from_static(accept)));
        // Prometheus 2.x and 3.x.
        assert!(asks(
            "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
        ));
        assert!(asks("Application/OpenMetrics-Text; version=1.0.0"));
        assert!(!asks("text/plain; version=0.0.4"));
        assert!(!asks("*/*"));
        assert!(!asks("application/openmetrics-textual"));
        assert!(!wants_openmetrics(None));
    }
}
