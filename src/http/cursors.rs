//! Durable cursors: `PUT /v1/cursors/{name}`, `GET /v1/cursors`, `GET|DELETE /v1/cursors/{name}`.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::AppState;
use super::access::Caller;
use super::body::{body_bytes, parse_json};
use super::error::{ApiError, ErrorCode};
use crate::broker::{BrokerError, CursorView};
use crate::clock::rfc3339;

/// A valid cursor name from the path (the alphabet of queue names), as a full name.
pub struct CursorName(String);

impl<S: Send + Sync> FromRequestParts<S> for CursorName {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(name) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::new(ErrorCode::InvalidPath, e.body_text()))?;
        let by = super::names::caller(parts).map(|c| &**c);
        let full = super::names::full_name_or(by, &name, BrokerError::InvalidCursorName)?;
        Ok(CursorName(full))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CursorBody {
    seq: u64,
}

/// A cursor as rendered.
#[derive(Serialize)]
pub struct CursorOut {
    name: String,
    tenant: String,
    seq: u64,
    lag: u64,
    updated_at: String,
}

impl From<CursorView> for CursorOut {
    fn from(v: CursorView) -> CursorOut {
        let (tenant, name) = super::names::shown(&v.name);
        CursorOut {
            name,
            tenant,
            seq: v.seq,
            lag: v.lag,
            updated_at: rfc3339(v.updated_at),
        }
    }
}

/// `PUT /v1/cursors/{name}` `{"seq": N}`: create (201) or move (200).
pub async fn put(
    State(app): State<AppState>,
    CursorName(name): CursorName,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<CursorOut>), ApiError> {
    let broker = app.broker()?;
    let body: CursorBody = parse_json(&body_bytes(body)?)?;
    let (created, view) = broker.put_cursor(&name, body.seq).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(view.into())))
}

/// `GET /v1/cursors/{name}`.
pub async fn get(
    State(app): State<AppState>,
    CursorName(name): CursorName,
) -> Result<Json<CursorOut>, ApiError> {
    Ok(Json(app.broker()?.cursor(&name).await?.into()))
}

/// `GET /v1/cursors`: the caller's tenant's.
pub async fn list(
    State(app): State<AppState>,
    Extension(by): Extension<Caller>,
) -> Result<Json<Value>, ApiError> {
    let cursors: Vec<CursorOut> = app
        .broker()?
        .cursors()
        .await?
        .into_iter()
        .filter(|c| by.owns(&c.name))
        .map(CursorOut::from)
        .collect();
    Ok(Json(json!({ "cursors": cursors })))
}

/// `DELETE /v1/cursors/{name}`.
pub async fn delete(
    State(app): State<AppState>,
    CursorName(name): CursorName,
) -> Result<Json<Value>, ApiError> {
    app.broker()?.delete_cursor(&name).await?;
    let (tenant, name) = super::names::shown(&name);
    Ok(Json(
        json!({"name": name, "tenant": tenant, "deleted": true}),
    ))
}
