//! The error replies of each operation: those a route documents ([`ERRORS`]), those every
//! route of a kind can give, and `4XX`/`5XX` for the rest, all with the one error body.

use std::collections::BTreeMap;

use axum::http::Method;
use utoipa::ToSchema;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::Operation;
use utoipa::openapi::request_body::RequestBody;
use utoipa::openapi::schema::{ObjectBuilder, Schema, SchemaType, Type};
use utoipa::openapi::{Content, Ref, RefOr, Required, ResponseBuilder};

use super::super::access::Needs;
use super::super::error::{ErrorBody, ErrorCode};
use ErrorCode::*;

/// The errors each route documents (docs/api.md, under each endpoint), beyond those every
/// route of its kind can give (see the module's doc).
pub const ERRORS: &[(Method, &str, &[ErrorCode])] = &[
    (Method::GET, "/v1/queues", &[InvalidQueueName]),
    (
        Method::GET,
        "/v1/queues/{queue}",
        &[InvalidQueueName, QueueNotFound],
    ),
    (
        Method::PATCH,
        "/v1/queues/{queue}",
        &[EmptyBody, InvalidJson, InvalidQueueName],
    ),
    (
        Method::DELETE,
        "/v1/queues/{queue}",
        &[InvalidQueueName, QueueNotFound, QueueInUse],
    ),
    (
        Method::POST,
        "/v1/queues/{queue}/jobs",
        &[
            EmptyBody,
            InvalidJson,
            InvalidQueueName,
            PayloadTooLarge,
            BatchTooLarge,
            QueueFull,
            TooManyGroups,
            InsufficientStorage,
        ],
    ),
    (
        Method::GET,
        "/v1/queues/{queue}/jobs",
        &[InvalidQueueName, QueueNotFound],
    ),
    (
        Method::DELETE,
        "/v1/queues/{queue}/jobs",
        &[InvalidQueueName, QueueNotFound],
    ),
    (
        Method::POST,
        "/v1/queues/{queue}/poll",
        &[InvalidJson, InvalidQueueName],
    ),
    (
        Method::POST,
        "/v1/queues/{queue}/pause",
        &[InvalidQueueName],
    ),
    (
        Method::POST,
        "/v1/queues/{queue}/resume",
        &[InvalidQueueName],
    ),
    (
        Method::POST,
        "/v1/queues/{queue}/replay",
        &[InvalidJson, InvalidQueueName, QueueNotFound, BatchTooLarge],
    ),
    (Method::GET, "/v1/jobs/{id}", &[JobNotFound]),
    (
        Method::DELETE,
        "/v1/jobs/{id}",
        &[JobNotFound, JobLeased, JobFinished, JobBusy],
    ),
    (
        Method::POST,
        "/v1/jobs/{id}/ack",
        &[
            EmptyBody,
            InvalidJson,
            JobNotFound,
            JobNotLeased,
            StaleLease,
            LeaseExpired,
            ResultTooLarge,
            PayloadTooLarge,
            BatchTooLarge,
            QueueFull,
        ],
    ),
    (
        Method::POST,
        "/v1/jobs/{id}/nack",
        &[
            EmptyBody,
            InvalidJson,
            JobNotFound,
            JobNotLeased,
            StaleLease,
            LeaseExpired,
        ],
    ),
    (
        Method::POST,
        "/v1/jobs/{id}/extend",
        &[
            EmptyBody,
            InvalidJson,
            JobNotFound,
            JobNotLeased,
            StaleLease,
            LeaseExpired,
        ],
    ),
    (
        Method::POST,
        "/v1/ack",
        &[
            EmptyBody,
            InvalidJson,
            BatchTooLarge,
            ResultTooLarge,
            PayloadTooLarge,
        ],
    ),
    (Method::GET, "/v1/schedules", &[]),
    (
        Method::GET,
        "/v1/schedules/{name}",
        &[InvalidScheduleName, ScheduleNotFound],
    ),
    (
        Method::PUT,
        "/v1/schedules/{name}",
        &[
            EmptyBody,
            InvalidJson,
            InvalidScheduleName,
            InvalidQueueName,
            PayloadTooLarge,
            InvalidSchedule,
            InsufficientStorage,
        ],
    ),
    (
        Method::DELETE,
        "/v1/schedules/{name}",
        &[InvalidScheduleName, ScheduleNotFound],
    ),
    (
        Method::POST,
        "/v1/schedules/{name}/pause",
        &[InvalidScheduleName, ScheduleNotFound],
    ),
    (
        Method::POST,
        "/v1/schedules/{name}/resume",
        &[InvalidScheduleName, ScheduleNotFound],
    ),
    (
        Method::POST,
        "/v1/schedules/{name}/trigger",
        &[
            InvalidScheduleName,
            ScheduleNotFound,
            QueueFull,
            TooManyGroups,
            InsufficientStorage,
        ],
    ),
    (
        Method::POST,
        "/v1/outbox",
        &[
            EmptyBody,
            InvalidJson,
            PayloadTooLarge,
            BatchTooLarge,
            InsufficientStorage,
        ],
    ),
    (
        Method::GET,
        "/v1/events",
        &[
            InvalidQueueName,
            InvalidCursorName,
            CursorNotFound,
            EventsTrimmed,
        ],
    ),
    (
        Method::GET,
        "/v1/events/stream",
        &[
            InvalidQueueName,
            InvalidCursorName,
            CursorNotFound,
            EventsTrimmed,
        ],
    ),
    (Method::GET, "/v1/cursors", &[]),
    (
        Method::GET,
        "/v1/cursors/{name}",
        &[InvalidCursorName, CursorNotFound],
    ),
    (
        Method::PUT,
        "/v1/cursors/{name}",
        &[EmptyBody, InvalidJson, InvalidCursorName],
    ),
    (
        Method::DELETE,
        "/v1/cursors/{name}",
        &[InvalidCursorName, CursorNotFound],
    ),
    (Method::GET, "/v1/mirrors", &[]),
    (Method::POST, "/v1/keys", &[EmptyBody, InvalidJson]),
    (Method::GET, "/v1/keys", &[]),
    (Method::DELETE, "/v1/keys/{id}", &[KeyNotFound]),
    (Method::GET, "/v1/audit", &[]),
    (Method::GET, "/v1/openapi.json", &[]),
    (Method::GET, "/metrics", &[]),
    (Method::GET, "/healthz", &[]),
    (Method::GET, "/readyz", &[StorageFailed, ShuttingDown]),
];

/// Adds the error replies of route `path` for `method`, which `needs` what the scope table
/// says, to its operation.
pub(super) fn add(method: &Method, path: &str, needs: Option<Needs>, operation: &mut Operation) {
    let mut codes: Vec<ErrorCode> = ERRORS
        .iter()
        .filter(|(m, p, _)| m == method && *p == path)
        .flat_map(|(.., codes)| codes.iter().copied())
        .collect();
    // Every route: a web page of another origin, or a DNS-rebinding page.
    codes.push(CrossOrigin);
    if matches!(needs, Some(Needs::Scope(_))) {
        codes.extend([Unauthorized, Forbidden, RateLimited]);
    }
    if path.starts_with("/v1/") {
        // A query string where the route takes none, or a bad one where it takes one; and,
        // for the routes with a body, a value that breaks a rule.
        codes.push(InvalidValue);
    }
    if path.contains('{') {
        codes.push(InvalidPath);
    }
    if let Some(RefOr::T(body)) = &mut operation.request_body {
        codes.extend([BodyTooLarge, BadBody, UnsupportedMediaType]);
        optional_body(body);
    }
    let broker = !matches!(path, "/healthz" | "/v1/openapi.json");
    if broker {
        codes.push(Recovering);
    }
    let mut by_status: BTreeMap<u16, Vec<ErrorCode>> = BTreeMap::new();
    for code in codes {
        let list = by_status.entry(code.status().as_u16()).or_default();
        if !list.contains(&code) {
            list.push(code);
        }
    }
    let responses = &mut operation.responses.responses;
    for (status, codes) in by_status {
        let names: Vec<String> = codes.iter().map(|c| format!("`{}`", c.as_str())).collect();
        let mut response = error_response(format!("{}.", names.join(", ")));
        if codes.contains(&Unauthorized) {
            response = response.header(
                "WWW-Authenticate",
                HeaderBuilder::new()
                    .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
                    .description(Some("`Bearer`."))
                    .build(),
            );
        }
        if status == 429 {
            response = response.header(
                "Retry-After",
                HeaderBuilder::new()
                    .schema(Some(ObjectBuilder::new().schema_type(Type::Integer)))
                    .description(Some("Seconds to wait before retrying (at least 1)."))
                    .build(),
            );
        }
        responses.insert(status.to_string(), response.build().into());
    }
    responses.insert(
        "4XX".to_owned(),
        error_response("Any other refusal: the code says which (see ErrorCode).")
            .build()
            .into(),
    );
    if path != "/healthz" {
        responses.insert(
            "5XX".to_owned(),
            error_response(
                "`internal` (500: see the server log); `recovering`, `shutting_down` or `storage_failed` (503): retry later; `insufficient_storage` (507).",
            )
            .build()
            .into(),
        );
    }
}

/// A body that may be left out (`request_body = Option<T>`) is written `oneOf: [T, null]`; but
/// no body is `null`: left out, it is not required, and when sent it is a `T`.
fn optional_body(body: &mut RequestBody) {
    if body.required == Some(Required::True) {
        return;
    }
    for content in body.content.values_mut() {
        let RefOr::T(content) = content else { continue };
        if let Some(RefOr::T(Schema::OneOf(one_of))) = &content.schema
            && let [item, RefOr::T(Schema::Object(null))] = one_of.items.as_slice()
            && null.schema_type == SchemaType::Type(Type::Null)
        {
            content.schema = Some(item.clone());
        }
    }
}

/// A response with the error body.
fn error_response(description: impl Into<String>) -> ResponseBuilder {
    let body = RefOr::Ref(Ref::from_schema_name(ErrorBody::name()));
    ResponseBuilder::new()
        .description(description)
        .content("application/json", Content::new(Some(body)))
}
