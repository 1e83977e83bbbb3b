//! Who may call what: the one table of the scope each route needs, and the middleware that
//! checks a request's key against it before anything else looks at the request.
//!
//! Queue patterns are checked where the queue is known: the `QueueName` path extractor refuses
//! a queue outside the key's patterns (403), and routes that name a job by id answer 404 for a
//! job in such a queue, so that ids cannot be probed.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::extract::{MatchedPath, Request};
use axum::http::header::{AUTHORIZATION, RETRY_AFTER, WWW_AUTHENTICATE};
use axum::http::{HeaderValue, Method};
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::audit::Audit;
use super::error::{ApiError, ErrorCode};
use crate::auth::{
    Authenticated, Class, DEFAULT_TENANT, Principal, RateLimited, Scope, Taken, Unauthorized,
};
use crate::broker::{AckItem, FollowUp, NewMessage};
use crate::job::JobId;

/// The caller of a request, as handlers receive it (shared with the key registry, so
/// handing it over costs a reference count).
pub type Caller = Arc<Principal>;

/// What a route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    /// Nothing: answered without a key (health probes, the dashboard's files).
    Open,
    /// A key with this scope.
    Scope(Scope),
    /// A key named by an AWS signature, with the scope of the SQS action the request names:
    /// the SQS endpoint checks both itself, so that its refusals come in SQS's shape.
    Signed,
}

/// Whether a route reads a query string (every other one refuses one: `request_checks`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Takes {
    /// It reads parameters from the query string.
    Query,
    /// It takes none.
    NoQuery,
}

use Needs::{Open, Scope as S, Signed};
use Scope::*;
use Takes::{NoQuery, Query};

/// Every route, by method and path, with what it needs and whether it takes a query string.
/// `docs/api.md` and `docs/security.md` show the scopes; a test checks that every route of the
/// router is here.
pub const ROUTES: &[(Method, &str, Needs, Takes)] = &[
    (Method::GET, "/v1/queues", S(JobsRead), Query),
    (Method::GET, "/v1/queues/{queue}", S(JobsRead), NoQuery),
    (Method::PATCH, "/v1/queues/{queue}", S(QueuesAdmin), NoQuery),
    (
        Method::DELETE,
        "/v1/queues/{queue}",
        S(QueuesAdmin),
        NoQuery,
    ),
    (
        Method::POST,
        "/v1/queues/{queue}/jobs",
        S(JobsEnqueue),
        NoQuery,
    ),
    (Method::GET, "/v1/queues/{queue}/jobs", S(JobsRead), Query),
    (
        Method::DELETE,
        "/v1/queues/{queue}/jobs",
        S(QueuesAdmin),
        NoQuery,
    ),
    (
        Method::POST,
        "/v1/queues/{queue}/poll",
        S(JobsConsume),
        NoQuery,
    ),
    (
        Method::POST,
        "/v1/queues/{queue}/pause",
        S(QueuesAdmin),
        NoQuery,
    ),
    (
        Method::POST,
        "/v1/queues/{queue}/resume",
        S(QueuesAdmin),
        NoQuery,
    ),
    (
        Method::POST,
        "/v1/queues/{queue}/replay",
        S(QueuesAdmin),
        NoQuery,
    ),
    (Method::GET, "/v1/jobs/{id}", S(JobsRead), NoQuery),
    (Method::DELETE, "/v1/jobs/{id}", S(QueuesAdmin), NoQuery),
    (Method::POST, "/v1/jobs/{id}/ack", S(JobsConsume), NoQuery),
    (Method::POST, "/v1/jobs/{id}/nack", S(JobsConsume), NoQuery),
    (
        Method::POST,
        "/v1/jobs/{id}/extend",
        S(JobsConsume),
        NoQuery,
    ),
    (Method::POST, "/v1/ack", S(JobsConsume), NoQuery),
    (Method::GET, "/v1/schedules", S(SchedulesAdmin), NoQuery),
    (
        Method::GET,
        "/v1/schedules/{name}",
        S(SchedulesAdmin),
        NoQuery,
    ),
    (
        Method::PUT,
        "/v1/schedules/{name}",
        S(SchedulesAdmin),
        NoQuery,
    ),
    (
        Method::DELETE,
        "/v1/schedules/{name}",
        S(SchedulesAdmin),
        NoQuery,
    ),
    (
        Method::POST,
        "/v1/schedules/{name}/pause",
        S(SchedulesAdmin),
        NoQuery,
    ),
    (
        Method::POST,
        "/v1/schedules/{name}/resume",
        S(SchedulesAdmin),
        NoQuery,
    ),
    (
        Method::POST,
        "/v1/schedules/{name}/trigger",
        S(SchedulesAdmin),
        NoQuery,
    ),
    (Method::POST, "/v1/outbox", S(OutboxWrite), NoQuery),
    (Method::GET, "/v1/events", S(EventsRead), Query),
    (Method::GET, "/v1/events/stream", S(EventsRead), Query),
    (Method::GET, "/v1/cursors", S(EventsRead), NoQuery),
    (Method::GET, "/v1/cursors/{name}", S(EventsRead), NoQuery),
    (Method::PUT, "/v1/cursors/{name}", S(EventsRead), NoQuery),
    (Method::DELETE, "/v1/cursors/{name}", S(EventsRead), NoQuery),
    (Method::GET, "/v1/mirrors", S(MirrorsRead), NoQuery),
    (Method::POST, "/v1/keys", S(KeysAdmin), NoQuery),
    (Method::GET, "/v1/keys", S(KeysAdmin), NoQuery),
    (Method::DELETE, "/v1/keys/{id}", S(KeysAdmin), NoQuery),
    (Method::GET, "/v1/audit", S(KeysAdmin), Query),
    // The OpenAPI document of these routes holds no data.
    (Method::GET, "/v1/openapi.json", Open, NoQuery),
    (Method::GET, "/metrics", S(MetricsRead), NoQuery),
    (Method::POST, "/", Signed, NoQuery),
    (Method::GET, "/healthz", Open, NoQuery),
    (Method::GET, "/readyz", Open, NoQuery),
    // The dashboard's page and files hold no data: every request the page makes for data
    // goes to a route above, with the key typed into it.
    (Method::GET, "/", Open, NoQuery),
    (Method::GET, "/ui", Open, NoQuery),
    (Method::GET, "/ui/", Open, NoQuery),
    (Method::GET, "/ui/{asset}", Open, NoQuery),
];

/// The index in [`ROUTES`] of route `path` (as the router matched it) and `method`. `HEAD` is
/// `GET`'s (the router answers it with the `GET` handler).
pub fn row(method: &Method, path: &str) -> Option<usize> {
    let method = if method == Method::HEAD {
        &Method::GET
    } else {
        method
    };
    ROUTES
        .iter()
        .position(|(m, p, ..)| m == method && *p == path)
}

/// The table's row of route `path` and `method`.
fn route(method: &Method, path: &str) -> Option<(Needs, Takes)> {
    row(method, path).map(|i| (ROUTES[i].2, ROUTES[i].3))
}

/// What route `path` needs for `method`; `None`: not in the table.
pub fn needs(method: &Method, path: &str) -> Option<Needs> {
    route(method, path).map(|(needs, _)| needs)
}

/// Whether route `path` reads a query string for `method`.
pub fn takes_query(method: &Method, path: &str) -> bool {
    route(method, path).is_some_and(|(_, takes)| takes == Query)
}

/// Authenticates the key, checks the route's scope, hands the [`Principal`] to `inner` (the
/// rest of the request's way), and records an audited request's outcome (see
/// [`super::audit`]) before its reply goes out. Runs where the matched route is known (see
/// `gate`).
pub async fn authorize(
    app: &AppState,
    request: Request,
    inner: impl AsyncFnOnce(Request) -> Response,
) -> Response {
    // An `Arc<str>` inside: cloned without copying the path.
    let route = request.extensions().get::<MatchedPath>().cloned();
    let route = route.as_ref().map(MatchedPath::as_str);
    let (mut request, audit) = match route {
        Some(route) => Audit::of(request, route).await,
        None => (request, None),
    };
    match principal(app, &request, route) {
        Ok(None) => inner(request).await,
        Ok(Some((principal, taken))) => {
            request.extensions_mut().insert(principal.clone());
            let mut response = inner(request).await;
            if let Some(taken) = taken {
                let reset = u64::from(taken.remaining < taken.limit);
                rate_headers(&mut response, taken.limit, taken.remaining, reset);
            }
            if let Some(audit) = audit {
                audit.record(app, &principal, &response).await;
            }
            response
        }
        Err((refusal, key)) => {
            let response = refusal.into_response();
            if let (Some(audit), Some(key)) = (audit, key) {
                audit.record(app, &key, &response).await;
            }
            response
        }
    }
}

/// The `RateLimit-*` headers (IETF draft): the limit per second, what is left of the burst,
/// and the seconds until it is whole again.
fn rate_headers(response: &mut Response, limit: u32, remaining: u32, reset: u64) {
    let headers = response.headers_mut();
    headers.insert("ratelimit-limit", HeaderValue::from(limit));
    headers.insert("ratelimit-remaining", HeaderValue::from(remaining));
    headers.insert("ratelimit-reset", HeaderValue::from(reset));
}

/// Why the middleware refused a request.
pub(super) enum Refusal {
    /// 401, with `WWW-Authenticate`.
    Unauthorized(Unauthorized),
    /// 429, with `Retry-After` and the `RateLimit-*` headers.
    RateLimited(RateLimited),
    /// Any other error.
    Error(ApiError),
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::Error(error) => error.into_response(),
            Refusal::RateLimited(limited) => {
                let wait_ms = u64::try_from(limited.retry_after.as_millis()).unwrap_or(u64::MAX);
                let seconds = wait_ms.div_ceil(1000).max(1);
                let mut error = ApiError::new(
                    ErrorCode::RateLimited,
                    format!(
                        "the limit of {} requests per second ({}) of this key or its tenant is used up; retry in {seconds} s",
                        limited.limit,
                        limited.class.field()
                    ),
                );
                error.extra = Some(super::error::Extra::RetryAfterMs(wait_ms));
                let mut response = error.into_response();
                rate_headers(&mut response, limited.limit, 0, seconds);
                response
                    .headers_mut()
                    .insert(RETRY_AFTER, HeaderValue::from(seconds));
                response
            }
            Refusal::Unauthorized(why) => {
                let error = ApiError::new(ErrorCode::Unauthorized, why.to_string());
                let mut response = error.into_response();
                response
                    .headers_mut()
                    .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                response
            }
        }
    }
}

/// A refusal, with the caller when its key is known (a refusal the audit records).
pub(super) type Refused = (Refusal, Option<Caller>);

/// The caller, and what its request took from its rate limit (`None`: an open route); or why
/// it is refused.
fn principal(
    app: &AppState,
    request: &Request,
    route: Option<&str>,
) -> Result<Option<(Caller, Option<Taken>)>, Refused> {
    let needed = route.and_then(|r| needs(request.method(), r));
    let scope = match needed {
        Some(Open | Signed) => return Ok(None),
        Some(S(scope)) => scope,
        // A route missing from the table is refused, never left open (a test keeps the
        // table complete).
        None => {
            let error = ApiError::new(ErrorCode::Forbidden, "this route has no scope");
            return Err((Refusal::Error(error), None));
        }
    };
    let keys = app.keys().map_err(|e| (Refusal::Error(e), None))?;
    if !keys.enabled() {
        return Ok(Some((keys.unauthenticated(), None)));
    }
    let header = request
        .headers()
        .get(AUTHORIZATION)
        .map(HeaderValue::as_bytes);
    let key = keys
        .authenticate(header)
        .map_err(|why| (Refusal::Unauthorized(why), None))?;
    admit(key, scope).map(Some)
}

/// Checks an authenticated key's scope and takes the request from its rate limits (and its
/// tenant's): the caller, and what is left of the nearer limit; or why it is refused.
pub(super) fn admit(key: Authenticated, scope: Scope) -> Result<(Caller, Option<Taken>), Refused> {
    if !key.principal.may(scope) {
        key.stats.forbidden.fetch_add(1, Ordering::Relaxed);
        return Err((Refusal::Error(forbidden_scope(scope)), Some(key.principal)));
    }
    // Counted once the key and scope are checked: those refusals do not use up its limit.
    let class = Class::of(scope);
    let limited = |limited| {
        key.stats.rate_limited.fetch_add(1, Ordering::Relaxed);
        (Refusal::RateLimited(limited), None)
    };
    let mut taken = key.buckets.take(class).map_err(limited)?;
    if let Some(tenant) = &key.tenant_buckets {
        // The headers tell of whichever limit is nearer.
        let shared = tenant.take(class).map_err(limited)?;
        taken = match (taken, shared) {
            (Some(own), Some(shared)) if shared.remaining < own.remaining => Some(shared),
            (None, shared) => shared,
            (own, _) => own,
        };
    }
    key.stats.requests.fetch_add(1, Ordering::Relaxed);
    Ok((key.principal, taken))
}

/// 403 for a key without `scope`.
pub fn forbidden_scope(scope: Scope) -> ApiError {
    ApiError::new(
        ErrorCode::Forbidden,
        format!("this key lacks the scope {}", scope.as_str()),
    )
}

/// 403 for a queue outside the key's patterns.
pub fn forbidden_queue(queue: &str) -> ApiError {
    ApiError::new(
        ErrorCode::Forbidden,
        format!("this key may not touch queue {queue:?}"),
    )
}

/// Refuses a queue outside the caller's patterns.
pub fn check_queue(principal: &Principal, queue: &str) -> Result<(), ApiError> {
    if principal.may_touch(queue) {
        Ok(())
    } else {
        Err(forbidden_queue(queue))
    }
}

/// Refuses what an ack, nack or enqueue carries beyond its own scope: messages for the outbox
/// (`outbox:write`) and follow-up jobs (`jobs:enqueue`, into queues the key may touch); names
/// the follow-ups' queues by their full names and the messages by their tenant.
pub fn check_side_effects(
    principal: &Principal,
    emit: &mut [NewMessage],
    follow_ups: &mut [FollowUp],
) -> Result<(), ApiError> {
    if !emit.is_empty() && !principal.may(OutboxWrite) {
        return Err(forbidden_scope(OutboxWrite));
    }
    tenant_messages(principal, emit)?;
    if !follow_ups.is_empty() && !principal.may(JobsEnqueue) {
        return Err(forbidden_scope(JobsEnqueue));
    }
    for (i, f) in follow_ups.iter_mut().enumerate() {
        f.queue = principal.full_name(&f.queue).ok_or_else(|| {
            ApiError::invalid(format!(
                "enqueue[{i}].queue must be a queue name of this key's tenant: 1-128 characters of A-Z, a-z, 0-9, '.', '_' and '-'"
            ))
        })?;
        check_queue(principal, &f.queue)?;
    }
    Ok(())
}

/// [`check_side_effects`] of an ack.
pub fn check_ack(principal: &Principal, item: &mut AckItem) -> Result<(), ApiError> {
    check_side_effects(principal, &mut item.emit, &mut item.enqueue)
}

use crate::tenant::MESSAGE_HEADER as TENANT_HEADER;

/// Marks each of `messages` with the caller's tenant (see [`TENANT_HEADER`]).
pub fn tenant_messages(by: &Principal, messages: &mut [NewMessage]) -> Result<(), ApiError> {
    for m in messages {
        let named = m.headers.iter().find(|(name, _)| name == TENANT_HEADER);
        match (by.is_operator(), named) {
            (true, Some((_, tenant)))
                if tenant == DEFAULT_TENANT || !crate::tenant::valid_tenant(tenant) =>
            {
                return Err(ApiError::invalid(format!(
                    "the {TENANT_HEADER} header names the tenant of a message: a tenant other than {DEFAULT_TENANT:?} (whose messages carry none)"
                )));
            }
            (true, _) => {}
            (false, Some(_)) => {
                return Err(ApiError::invalid(format!(
                    "the {TENANT_HEADER} header is set by wharf: it names the tenant whose key wrote the message"
                )));
            }
            (false, None) if by.tenant != DEFAULT_TENANT => {
                m.headers
                    .push((TENANT_HEADER.to_owned(), by.tenant.clone()));
            }
            (false, None) => {}
        }
    }
    Ok(())
}

/// 404 for a job in a queue outside the caller's patterns, as if it did not exist.
pub async fn check_job(app: &AppState, principal: &Principal, id: JobId) -> Result<(), ApiError> {
    if principal.touches_every_queue() {
        return Ok(());
    }
    let queue = app.broker()?.job_queue(id).await?;
    if principal.may_touch(&queue) {
        Ok(())
    } else {
        Err(crate::broker::BrokerError::JobNotFound.into())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn row(method: &Method, path: &str, needs: Needs) -> String {
        let scope = match needs {
            Open => "none".to_owned(),
            S(scope) => format!("`{}`", scope.as_str()),
            Signed => "the SQS action's ([sqs.md](sqs.md))".to_owned(),
        };
        format!("| {method} | `{path}` | {scope} |")
    }

    #[test]
    fn docs_api_md_shows_this_table() {
        let api = include_str!("../../docs/api.md");
        let start = api
            .find("| Method | Route | Scope |")
            .expect("the scope table");
        let table: Vec<&str> = api[start..]
            .lines()
            .skip(2)
            .take_while(|l| l.starts_with('|'))
            .collect();
        let ours: Vec<String> = ROUTES.iter().map(|(m, p, n, _)| row(m, p, *n)).collect();
        assert_eq!(table, ours, "docs/api.md and access::ROUTES differ");
    }

    /// Every `.route(...)` of the router (read from its source) with its methods.
    fn router_routes() -> Vec<(Method, String)> {
        let source = include_str!("mod.rs");
        let mut routes = Vec::new();
        for chunk in source.split(".route(").skip(1) {
            let chunk = chunk.trim_start().strip_prefix('"').unwrap();
            let (path, rest) = chunk.split_once('"').unwrap();
            let rest = rest.split(".route").next().unwrap();
            let rest = rest.split(".fallback").next().unwrap();
            for (name, method) in [
                ("get(", Method::GET),
                ("post(", Method::POST),
                ("put(", Method::PUT),
                ("patch(", Method::PATCH),
                ("delete(", Method::DELETE),
            ] {
                if rest.contains(name) {
                    routes.push((method, path.to_owned()));
                }
            }
        }
        routes
    }

    #[test]
    fn every_route_of_the_router_is_in_the_table_and_nothing_else() {
        let routes = router_routes();
        assert!(routes.len() > 30, "{routes:?}");
        for (method, path) in &routes {
            assert!(
                needs(method, path).is_some(),
                "{method} {path} has no scope"
            );
        }
        for (method, path, ..) in ROUTES {
            assert!(
                routes.iter().any(|(m, p)| m == method && p == path),
                "{method} {path} is in the table but not in the router"
            );
        }
        assert_eq!(needs(&Method::HEAD, "/v1/queues"), Some(S(JobsRead)));
        assert_eq!(needs(&Method::HEAD, "/healthz"), Some(Open));
    }

    #[test]
    fn only_the_listing_routes_take_a_query() {
        assert!(takes_query(&Method::GET, "/v1/events"));
        assert!(takes_query(&Method::GET, "/v1/queues/{queue}/jobs"));
        assert!(!takes_query(&Method::POST, "/v1/queues/{queue}/jobs"));
        assert!(takes_query(&Method::GET, "/v1/audit"));
        assert!(!takes_query(&Method::GET, "/v1/schedules"));
        let listing = ROUTES.iter().filter(|(.., takes)| *takes == Query).count();
        assert_eq!(listing, 5);
    }
}
