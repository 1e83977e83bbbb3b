//! The audit trail over HTTP: which requests are audited (one table), the record each one
//! leaves, and `GET /v1/audit`.
//!
//! The access middleware records an audited request once it is answered and before the reply
//! goes out, whatever the outcome, so a reply the caller received always has its record (an
//! action whose reply was never sent, because wharf stopped in between, may lack one).
//! Requests refused before a key is known (401) or over a rate limit (429) leave none: anyone
//! who can reach the port could otherwise fill the disk with them. They are counted in
//! `/metrics` and logged instead.

use std::net::SocketAddr;

use axum::extract::rejection::QueryRejection;
use axum::extract::{ConnectInfo, FromRequestParts, Query, RawPathParams, Request, State};
use axum::http::Method;
use axum::response::Response;
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::access::Caller;
use super::error::{ApiError, ErrorCode};
use crate::auth::Principal;
use crate::broker::AuditRecord;
use crate::broker::{MAX_AUDIT_PAGE, audit_json};

/// Every audited route, by method and path, with the action its records name. `docs/api.md`
/// shows the same table; a test checks both against the router.
pub const AUDITED: &[(Method, &str, &str)] = &[
    (Method::PATCH, "/v1/queues/{queue}", "queue.update"),
    (Method::DELETE, "/v1/queues/{queue}", "queue.delete"),
    (Method::DELETE, "/v1/queues/{queue}/jobs", "queue.purge"),
    (Method::POST, "/v1/queues/{queue}/pause", "queue.pause"),
    (Method::POST, "/v1/queues/{queue}/resume", "queue.resume"),
    (Method::POST, "/v1/queues/{queue}/replay", "queue.replay"),
    (Method::DELETE, "/v1/jobs/{id}", "job.cancel"),
    (Method::PUT, "/v1/schedules/{name}", "schedule.put"),
    (Method::DELETE, "/v1/schedules/{name}", "schedule.delete"),
    (Method::POST, "/v1/schedules/{name}/pause", "schedule.pause"),
    (
        Method::POST,
        "/v1/schedules/{name}/resume",
        "schedule.resume",
    ),
    (
        Method::POST,
        "/v1/schedules/{name}/trigger",
        "schedule.trigger",
    ),
    (Method::PUT, "/v1/cursors/{name}", "cursor.put"),
    (Method::DELETE, "/v1/cursors/{name}", "cursor.delete"),
    (Method::POST, "/v1/keys", "key.create"),
    (Method::DELETE, "/v1/keys/{id}", "key.revoke"),
];

/// Longest target a record keeps (a refused request's path may hold anything).
const MAX_TARGET_BYTES: usize = 256;

/// The action of route `path` for `method`; `None`: not audited.
pub fn action(method: &Method, path: &str) -> Option<&'static str> {
    AUDITED
        .iter()
        .find(|(m, p, _)| m == method && *p == path)
        .map(|(.., action)| *action)
}

/// What a handler tells the audit beyond the request's path: the target it created or found
/// (a new key's id) and the tenant that target belongs to. Put in the reply's extensions.
#[derive(Debug, Clone)]
pub struct AuditNote {
    /// The target.
    pub target: String,
    /// Its tenant.
    pub tenant: String,
}

/// What the middleware knows of an audited request before it runs.
pub struct Audit {
    action: &'static str,
    /// The path's parameter as sent (percent-decoded), if the route has one.
    param: Option<String>,
    peer: Option<SocketAddr>,
}

impl Audit {
    /// The audit of `request` on route `path`; `None`: the route is not audited.
    pub async fn of(request: Request, path: &str) -> (Request, Option<Audit>) {
        let Some(action) = action(request.method(), path) else {
            return (request, None);
        };
        let peer = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0);
        let (mut parts, body) = request.into_parts();
        // A path that is not UTF-8 fails here; the handler's own extractor refuses it.
        let param = RawPathParams::from_request_parts(&mut parts, &())
            .await
            .ok()
            .and_then(|params| params.iter().next().map(|(_, value)| value.to_owned()));
        let audit = Audit {
            action,
            param,
            peer,
        };
        (Request::from_parts(parts, body), Some(audit))
    }

    /// The audit of an action of the SQS endpoint (whose one route serves every action) on
    /// queue `target`, as the caller named it.
    pub fn of_sqs(action: &'static str, target: Option<String>, peer: Option<SocketAddr>) -> Audit {
        Audit {
            action,
            param: target,
            peer,
        }
    }

    /// Appends the record of the request `by` made, answered with `response`. A record that
    /// cannot be written is logged: the action it tells of has already happened. The record
    /// is built before the write, which holds no reference to the reply (its body is not
    /// `Sync`).
    pub fn record(
        self,
        app: &AppState,
        by: &Principal,
        response: &Response,
    ) -> impl Future<Output = ()> + Send + 'static {
        // While still recovering the request was answered 503 and changed nothing.
        let write = app.broker().ok().map(|broker| {
            let record = self.to_record(broker.now(), by, response);
            (broker.clone(), record)
        });
        async move {
            let Some((broker, record)) = write else {
                return;
            };
            let (action, key) = (record.action.clone(), record.key_id.clone());
            if let Err(error) = broker.audit(record).await {
                tracing::error!(%error, action, ?key, "cannot write an audit record");
            }
        }
    }

    fn to_record(&self, at: u64, by: &Principal, response: &Response) -> AuditRecord {
        let (target, tenant) = self.target(by, response.extensions().get::<AuditNote>());
        AuditRecord {
            at,
            key_id: by.key_id.clone(),
            key_tenant: by.tenant.clone(),
            tenant,
            peer: self.peer.map(|p| p.to_string()),
            action: self.action.to_owned(),
            target,
            status: response.status().as_u16(),
            error: response
                .extensions()
                .get::<ErrorCode>()
                .map(|code| code.as_str().to_owned()),
        }
    }

    /// The record's target and the tenant it concerns: the handler's note; else the path's
    /// name, as a full name, and its tenant; else (a job or key id, or a name the caller
    /// cannot send) the caller's tenant.
    fn target(&self, by: &Principal, note: Option<&AuditNote>) -> (Option<String>, String) {
        if let Some(note) = note {
            return (Some(note.target.clone()), note.tenant.clone());
        }
        let Some(param) = &self.param else {
            return (None, by.tenant.clone());
        };
        let names_a_resource = !matches!(self.action, "job.cancel" | "key.revoke");
        match by.full_name(param).filter(|_| names_a_resource) {
            Some(full) => {
                let tenant = crate::tenant::tenant_of(&full).to_owned();
                (Some(full), tenant)
            }
            None => (Some(truncated(param)), by.tenant.clone()),
        }
    }
}

/// `text`, cut to at most [`MAX_TARGET_BYTES`] on a character boundary.
fn truncated(text: &str) -> String {
    let mut end = text.len().min(MAX_TARGET_BYTES);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

/// The query of `GET /v1/audit`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    /// List the records after this seq. Default: 0, from the oldest kept.
    after: Option<u64>,
    /// Most records. Default: 100.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
}

/// `{"entries": [...], "next_after"}`.
#[derive(Serialize, ToSchema)]
pub struct AuditOut {
    /// Oldest first.
    #[schema(value_type = Vec<super::schema::AuditEntryOut>)]
    entries: Vec<Box<RawValue>>,
    /// What to pass as `after` for the next page (equal to `after` when there is nothing
    /// more).
    next_after: u64,
}

/// `GET /v1/audit?after=SEQ&limit=N`: the records after `after` (default: from the oldest
/// kept), oldest first; a tenant's key sees its tenant's only.
#[utoipa::path(
    get,
    path = "/v1/audit",
    operation_id = "read_audit",
    tag = "keys",
    summary = "Read the audit trail",
    description = "Every admin action and key change, whatever its outcome. See docs/api.md#get-v1audit-read-the-audit-trail.",
    params(AuditParams),
    responses((status = 200, description = "A page of records.", body = AuditOut)),
)]
pub async fn list(
    State(app): State<AppState>,
    Extension(by): Extension<Caller>,
    query: Result<Query<AuditParams>, QueryRejection>,
) -> Result<Json<AuditOut>, ApiError> {
    let Query(params) = query.map_err(|e| ApiError::invalid(e.body_text()))?;
    let limit = params.limit.unwrap_or(100);
    if !(1..=MAX_AUDIT_PAGE).contains(&limit) {
        return Err(ApiError::invalid(format!(
            "limit must be between 1 and {MAX_AUDIT_PAGE}"
        )));
    }
    let page = app
        .broker()?
        .audit_page(params.after.unwrap_or(0), limit, |r| by.reaches(&r.tenant))
        .await?;
    let mut entries = Vec::with_capacity(page.records.len());
    for (seq, record) in &page.records {
        entries.push(super::wire::raw(audit_json(*seq, record)));
    }
    Ok(Json(AuditOut {
        entries,
        next_after: page.next_after,
    }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn docs_api_md_lists_the_audited_routes() {
        let api = include_str!("../../docs/api.md");
        let start = api
            .find("| Method | Route | Action |")
            .expect("the audit table");
        let table: Vec<&str> = api[start..]
            .lines()
            .skip(2)
            .take_while(|l| l.starts_with('|'))
            .collect();
        let ours: Vec<String> = AUDITED
            .iter()
            .map(|(m, p, a)| format!("| {m} | `{p}` | `{a}` |"))
            .collect();
        assert_eq!(table, ours, "docs/api.md and audit::AUDITED differ");
    }

    #[test]
    fn every_audited_route_is_a_route_that_changes_something() {
        for (method, path, _) in AUDITED {
            assert_ne!(method, Method::GET, "{path}");
            assert!(
                super::super::access::needs(method, path).is_some(),
                "{method} {path} is not a route"
            );
        }
        // Every admin route that changes something is audited.
        use super::super::access::{Needs, ROUTES};
        use crate::auth::Scope::{KeysAdmin, QueuesAdmin, SchedulesAdmin};
        for (method, path, needs, _) in ROUTES {
            let admin = matches!(
                needs,
                Needs::Scope(QueuesAdmin | SchedulesAdmin | KeysAdmin)
            );
            if admin && method != Method::GET {
                assert!(action(method, path).is_some(), "{method} {path}");
            }
        }
    }

    #[test]
    fn long_targets_are_cut_on_a_character_boundary() {
        let text = "é".repeat(200);
        let cut = truncated(&text);
        assert!(cut.len() <= MAX_TARGET_BYTES && text.starts_with(&cut));
        assert_eq!(truncated("emails"), "emails");
    }
}
