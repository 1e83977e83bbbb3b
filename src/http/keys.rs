//! Key routes: create (the token is in this reply only), list, revoke.

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::AppState;
use super::access::Caller;
use super::audit::AuditNote;
use super::body::{PathText, body_bytes, parse_json};
use super::error::{ApiError, ErrorCode};
use super::schema;
use crate::auth::{KeyError, KeySpec, KeyView, RateLimits};
use crate::clock::rfc3339;

/// A key to create. It can grant only what its creator has.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    /// A tenant name (1-64 characters of A-Za-z0-9._-), or `*` for an operator key. Default:
    /// the caller's (`default` for an operator key).
    tenant: Option<String>,
    /// 1-64 scope names, or `*` for every scope.
    #[schema(schema_with = schema::scope_names)]
    scopes: Vec<String>,
    /// Queue names, or prefixes ending in `*`; `*` is every queue. At most 64. Default: as
    /// many queues as the caller may touch.
    #[serde(default)]
    queues: Vec<String>,
    /// Free text, at most 256 bytes, no control characters.
    #[serde(default)]
    label: String,
    /// Rate limits per second (default: the caller's own).
    #[serde(default)]
    limits: RateLimits,
}

/// A key as the API shows it (never its token, but in the reply that creates it).
#[derive(Serialize, ToSchema)]
pub struct KeyOut {
    /// 16 hex digits.
    id: String,
    /// `*`: an operator key.
    tenant: String,
    #[schema(schema_with = schema::scope_names)]
    scopes: Vec<&'static str>,
    /// Empty: every queue.
    queues: Vec<String>,
    label: String,
    #[schema(format = DateTime)]
    created_at: String,
    /// Written at most once a minute per key; `null`: never used.
    #[schema(required, format = DateTime)]
    last_used_at: Option<String>,
    #[schema(required, format = DateTime)]
    revoked_at: Option<String>,
    /// `null` per class: unlimited.
    limits: RateLimits,
    /// The token, shown only in the reply that creates the key.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String)]
    key: Option<String>,
}

impl KeyOut {
    fn new(view: KeyView, key: Option<String>) -> KeyOut {
        KeyOut {
            id: view.id,
            tenant: view.tenant,
            scopes: view.scopes,
            queues: view.queues,
            label: view.label,
            created_at: rfc3339(view.created_at),
            last_used_at: view.last_used_at.map(rfc3339),
            revoked_at: view.revoked_at.map(rfc3339),
            limits: view.limits.into(),
            key,
        }
    }
}

impl From<KeyError> for ApiError {
    fn from(error: KeyError) -> ApiError {
        match error {
            KeyError::Invalid(m) => ApiError::invalid(m),
            KeyError::Forbidden(m) => ApiError::new(ErrorCode::Forbidden, m),
            KeyError::NotFound => ApiError::new(ErrorCode::KeyNotFound, "no key with that id"),
            KeyError::Random(e) => {
                tracing::error!(error = %e, "the random source failed");
                ApiError::new(
                    ErrorCode::Internal,
                    "cannot draw a random key; see the server log",
                )
            }
            KeyError::Broker(e) => e.into(),
        }
    }
}

/// `POST /v1/keys`: 201 with the key and its token (`key`), shown this once.
#[utoipa::path(
    post,
    path = "/v1/keys",
    operation_id = "create_key",
    tag = "keys",
    summary = "Create an API key",
    description = "The key is durable before the reply, and usable from the next request on. See docs/api.md#post-v1keys-create-a-key.",
    request_body = CreateBody,
    responses((status = 201, description = "The key, with its token in `key` (shown only here).", body = KeyOut, links(
        ("revoke_key" = (operation_id = "revoke_key", parameters(("id" = "$response.body#/id")))),
    ))),
)]
pub async fn create(
    State(app): State<AppState>,
    Extension(by): Extension<Caller>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Extension<AuditNote>, Json<KeyOut>), ApiError> {
    let body: CreateBody = parse_json(&body_bytes(body)?)?;
    let spec = KeySpec {
        tenant: body.tenant,
        scopes: body.scopes,
        queues: body.queues,
        label: body.label,
        limits: body.limits.into(),
    };
    let (view, token) = app.keys()?.create(&by, spec).await?;
    tracing::info!(key = %view.id, by = ?by.key_id, "API key created");
    let note = note(&view);
    Ok((
        StatusCode::CREATED,
        Extension(note),
        Json(KeyOut::new(view, Some(token))),
    ))
}

/// The audit trail's target of a key: its id, in its tenant.
fn note(view: &KeyView) -> AuditNote {
    AuditNote {
        target: view.id.clone(),
        tenant: view.tenant.clone(),
    }
}

/// The keys a caller may see.
#[derive(Serialize, ToSchema)]
pub struct KeysOut {
    /// By id, revoked ones included.
    keys: Vec<KeyOut>,
}

/// `GET /v1/keys`: the keys of the caller's tenant, revoked ones included.
#[utoipa::path(
    get,
    path = "/v1/keys",
    operation_id = "list_keys",
    tag = "keys",
    summary = "List API keys",
    description = "See docs/api.md#get-v1keys-list-keys.",
    responses((status = 200, description = "The keys.", body = KeysOut)),
)]
pub async fn list(
    State(app): State<AppState>,
    Extension(by): Extension<Caller>,
) -> Result<Json<KeysOut>, ApiError> {
    let keys = app.keys()?.list(&by);
    Ok(Json(KeysOut {
        keys: keys.into_iter().map(|k| KeyOut::new(k, None)).collect(),
    }))
}

/// `DELETE /v1/keys/{id}`: revoke; refused from the very next request.
#[utoipa::path(
    delete,
    path = "/v1/keys/{id}",
    operation_id = "revoke_key",
    tag = "keys",
    summary = "Revoke an API key",
    description = "Revoking a revoked key answers the same and changes nothing. See docs/api.md#delete-v1keysid-revoke-a-key.",
    params(PathText),
    responses((status = 200, description = "The key, with revoked_at.", body = KeyOut)),
)]
pub async fn revoke(
    State(app): State<AppState>,
    Extension(by): Extension<Caller>,
    PathText(id): PathText,
) -> Result<(Extension<AuditNote>, Json<KeyOut>), ApiError> {
    let view = app.keys()?.revoke(&by, &id).await?;
    tracing::info!(key = %view.id, by = ?by.key_id, "API key revoked");
    Ok((Extension(note(&view)), Json(KeyOut::new(view, None))))
}
