//! The OpenAPI 3.1 document of the v1 API, served at `GET /v1/openapi.json`.
//!
//! Each handler carries its operation (`#[utoipa::path]`: path, parameters, body, success
//! replies), and the types it parses and renders carry their schemas (`ToSchema`). What holds
//! for many routes at once is added here from the tables that decide it, so that the document
//! cannot say otherwise than the router does:
//!
//! - the scope each route needs, from [`access::ROUTES`]: a `bearer` security requirement
//!   naming it, and `x-wharf-scope`;
//! - the error replies: those [`ERRORS`] lists for each route, those every route of a kind can
//!   give (a key's refusals, a path parameter that is not UTF-8, a query string where none is
//!   taken, a body over the limit, `503 recovering`), and `4XX`/`5XX` for the rest, each with
//!   the one error body ([`ErrorBody`]).
//!
//! `docs/openapi.json` is a copy of the document; `tests/openapi.rs` keeps it current and
//! checks it against the tables.

mod errors;

use std::sync::OnceLock;

use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderValue, Method};
use axum::response::{IntoResponse, Response};
use utoipa::OpenApi;
use utoipa::openapi::Components;
use utoipa::openapi::extensions::Extensions;
use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityRequirement, SecurityScheme};

pub use errors::ERRORS;

use super::access::{self, Needs};
use super::error::{ApiError, ErrorBody, ErrorCode};
use super::{
    audit, consume, cursors, events, health, jobs, keys, mirrors, outbox, queues, schedules,
};

/// The operations, from the handlers' annotations.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "wharf",
        description = "The HTTP API (v1) of wharf, a single-node, durable job broker. The prose reference, with every rule and example, is docs/api.md. Routes that need a key name its scope in `x-wharf-scope` (and in their `bearer` security requirement); a broker without keys, which serves only on loopback, needs none. Not here: the SQS-compatible endpoint (`POST /`, AWS's own protocol: docs/sqs.md) and the dashboard's files (`/ui`)."
    ),
    paths(
        jobs::enqueue,
        jobs::get,
        jobs::cancel,
        consume::poll,
        consume::ack,
        consume::nack,
        consume::extend,
        consume::ack_batch,
        queues::list,
        queues::get,
        queues::patch,
        queues::delete,
        queues::pause,
        queues::resume,
        queues::list_jobs,
        queues::replay,
        queues::purge,
        schedules::put,
        schedules::get,
        schedules::list,
        schedules::delete,
        schedules::pause,
        schedules::resume,
        schedules::trigger,
        outbox::post,
        events::list,
        events::stream,
        cursors::put,
        cursors::get,
        cursors::list,
        cursors::delete,
        mirrors::list,
        keys::create,
        keys::list,
        keys::revoke,
        audit::list,
        health::healthz,
        health::readyz,
        super::metrics::metrics,
        serve,
    ),
    components(schemas(ErrorBody)),
    tags(
        (name = "jobs", description = "Enqueue, read, cancel; ack, nack, extend."),
        (name = "queues", description = "Poll; queues' settings, pause and resume; list, replay and purge their jobs."),
        (name = "schedules", description = "Cron schedules that enqueue a job when they fire."),
        (name = "events", description = "The change log: read it, follow it, keep a cursor in it, write outbox messages to it."),
        (name = "mirrors", description = "The relays to the Postgres and Redis mirrors."),
        (name = "keys", description = "API keys and the audit trail."),
        (name = "health", description = "Probes and Prometheus metrics."),
        (name = "openapi", description = "This document."),
    )
)]
struct Operations;

/// The name of the security scheme of API keys.
pub const BEARER: &str = "bearer";

/// The document.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = Operations::openapi();
    let components = doc.components.get_or_insert_with(Components::new);
    let mut bearer = Http::new(HttpAuthScheme::Bearer);
    bearer.bearer_format = Some("wk_<id>_<secret>".to_owned());
    bearer.description = Some(
        "An API key (docs/security.md). Needed by every route but the open ones once a key exists; a broker without keys serves only on loopback and needs none. Each operation names the scope it needs.".to_owned(),
    );
    components
        .security_schemes
        .insert(BEARER.to_owned(), SecurityScheme::Http(bearer).into());
    for (path, item) in doc.paths.paths.iter_mut() {
        for (method, operation) in operations(item) {
            complete(&method, path, operation);
        }
    }
    doc
}

/// The document as served: pretty JSON, built once.
pub fn document_json() -> Result<&'static str, ApiError> {
    static JSON: OnceLock<String> = OnceLock::new();
    if let Some(json) = JSON.get() {
        return Ok(json);
    }
    let json = document().to_pretty_json().map_err(|error| {
        tracing::error!(%error, "cannot write the OpenAPI document");
        ApiError::new(
            ErrorCode::Internal,
            "cannot write the OpenAPI document; see the server log",
        )
    })?;
    Ok(JSON.get_or_init(|| json))
}

/// `GET /v1/openapi.json`: this document.
#[utoipa::path(
    get,
    path = "/v1/openapi.json",
    operation_id = "openapi",
    tag = "openapi",
    summary = "This OpenAPI document",
    description = "The OpenAPI 3.1 document of the v1 API (the same as docs/openapi.json). It holds no data, so it needs no key.",
    responses((status = 200, description = "The document.", body = super::schema::OpenApiDocument)),
)]
pub async fn serve() -> Result<Response, ApiError> {
    let json = document_json()?;
    let mut response = json.into_response();
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(response)
}

/// The operations of a path item with their methods.
fn operations(item: &mut PathItem) -> Vec<(Method, &mut Operation)> {
    [
        (Method::GET, item.get.as_mut()),
        (Method::PUT, item.put.as_mut()),
        (Method::POST, item.post.as_mut()),
        (Method::DELETE, item.delete.as_mut()),
        (Method::PATCH, item.patch.as_mut()),
    ]
    .into_iter()
    .filter_map(|(method, operation)| operation.map(|o| (method, o)))
    .collect()
}

/// Adds what the tables say of route `path` for `method` to its operation: the scope it needs,
/// and its error replies.
fn complete(method: &Method, path: &str, operation: &mut Operation) {
    let needs = access::needs(method, path);
    if let Some(Needs::Scope(scope)) = needs {
        operation.security = Some(vec![SecurityRequirement::new(BEARER, [scope.as_str()])]);
        let mut extensions = Extensions::default();
        extensions.insert("x-wharf-scope".to_owned(), scope.as_str().into());
        operation
            .extensions
            .get_or_insert_with(Extensions::default)
            .merge(extensions);
    }
    errors::add(method, path, needs, operation);
}
