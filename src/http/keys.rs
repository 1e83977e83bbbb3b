//! Key routes: create (the token is in this reply only), list, revoke.

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};

use super::AppState;
use super::access::Caller;
use super::audit::AuditNote;
use super::body::{PathText, body_bytes, parse_json};
use super::error::{ApiError, ErrorCode};
use crate::auth::{KeyError, KeySpec, KeyView, RateLimits};
use crate::clock::rfc3339;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    tenant: Option<String>,
    scopes: Vec<String>,
    #[serde(default)]
    queues: Vec<String>,
    #[serde(default)]
    label: String,
    #[serde(default)]
    limits: RateLimits,
}

/// A key as the API shows it.
#[derive(Serialize)]
pub struct KeyOut {
    id: String,
    tenant: String,
    scopes: Vec<&'static str>,
    queues: Vec<String>,
    label: String,
    created_at: String,
    last_used_at: Option<String>,
    revoked_at: Option<String>,
    /// `null` per class: unlimited.
    limits: RateLimits,
    #[serde(skip_serializing_if = "Option::is_none")]
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

#[derive(Serialize)]
pub struct KeysOut {
    keys: Vec<KeyOut>,
}

/// `GET /v1/keys`: the keys of the caller's tenant, revoked ones included.
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
pub async fn revoke(
    State(app): State<AppState>,
    Extension(by): Extension<Caller>,
    PathText(id): PathText,
) -> Result<(Extension<AuditNote>, Json<KeyOut>), ApiError> {
    let view = app.keys()?.revoke(&by, &id).await?;
    tracing::info!(key = %view.id, by = ?by.key_id, "API key revoked");
    Ok((Extension(note(&view)), Json(KeyOut::new(view, None))))
}
