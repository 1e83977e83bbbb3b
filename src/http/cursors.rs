//! Durable cursors: `PUT /v1/cursors/{name}`, `GET /v1/cursors`, `GET|DELETE /v1/cursors/{name}`.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::AppState;
use super::access::Caller;
use super::body::{body_bytes, parse_json};
use super::error::{ApiError, ErrorCode};
use super::wire::DeletedOut;
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

/// Where to put a cursor.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CursorBody {
    /// An event's seq, not past the last one.
    seq: u64,
}

/// A cursor as rendered.
#[derive(Serialize, ToSchema)]
pub struct CursorOut {
    /// Its name within its tenant.
    name: String,
    tenant: String,
    /// The last event it has handled.
    seq: u64,
    /// How many events readers can see past it.
    lag: u64,
    #[schema(format = DateTime)]
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
#[utoipa::path(
    put,
    path = "/v1/cursors/{name}",
    operation_id = "put_cursor",
    tag = "events",
    summary = "Set a cursor",
    description = "Keeps a reader's position in the change log, durably. See docs/api.md#cursors.",
    params(CursorName),
    request_body = CursorBody,
    responses(
        (status = 201, description = "Created.", body = CursorOut, links(
            ("get_cursor" = (operation_id = "get_cursor", parameters(("name" = "$request.path.name")))),
            ("delete_cursor" = (operation_id = "delete_cursor", parameters(("name" = "$request.path.name")))),
        )),
        (status = 200, description = "Moved.", body = CursorOut, links(
            ("get_cursor" = (operation_id = "get_cursor", parameters(("name" = "$request.path.name")))),
            ("delete_cursor" = (operation_id = "delete_cursor", parameters(("name" = "$request.path.name")))),
        )),
    ),
)]
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
#[utoipa::path(
    get,
    path = "/v1/cursors/{name}",
    operation_id = "get_cursor",
    tag = "events",
    summary = "Read a cursor",
    description = "See docs/api.md#cursors.",
    params(CursorName),
    responses((status = 200, description = "The cursor.", body = CursorOut)),
)]
pub async fn get(
    State(app): State<AppState>,
    CursorName(name): CursorName,
) -> Result<Json<CursorOut>, ApiError> {
    Ok(Json(app.broker()?.cursor(&name).await?.into()))
}

/// Every cursor of the caller's tenant.
#[derive(Serialize, ToSchema)]
pub struct CursorsOut {
    /// By name.
    cursors: Vec<CursorOut>,
}

/// `GET /v1/cursors`: the caller's tenant's.
#[utoipa::path(
    get,
    path = "/v1/cursors",
    operation_id = "list_cursors",
    tag = "events",
    summary = "List cursors",
    description = "See docs/api.md#cursors.",
    responses((status = 200, description = "The cursors.", body = CursorsOut)),
)]
pub async fn list(
    State(app): State<AppState>,
    Extension(by): Extension<Caller>,
) -> Result<Json<CursorsOut>, ApiError> {
    let cursors = app
        .broker()?
        .cursors()
        .await?
        .into_iter()
        .filter(|c| by.owns(&c.name))
        .map(CursorOut::from)
        .collect();
    Ok(Json(CursorsOut { cursors }))
}

/// `DELETE /v1/cursors/{name}`.
#[utoipa::path(
    delete,
    path = "/v1/cursors/{name}",
    operation_id = "delete_cursor",
    tag = "events",
    summary = "Delete a cursor",
    description = "See docs/api.md#cursors.",
    params(CursorName),
    responses((status = 200, description = "Deleted.", body = DeletedOut)),
)]
pub async fn delete(
    State(app): State<AppState>,
    CursorName(name): CursorName,
) -> Result<Json<DeletedOut>, ApiError> {
    app.broker()?.delete_cursor(&name).await?;
    Ok(Json(DeletedOut::new(&name)))
}
