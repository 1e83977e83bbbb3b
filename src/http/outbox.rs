//! The transactional outbox for clients: `POST /v1/outbox`.

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::AppState;
use super::access::Caller;
use super::body::{Obj, body_bytes, parse_json};
use super::error::ApiError;
use super::wire::{MessageInput, messages};

/// Messages for the outbox.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct OutboxBody {
    /// At most `max_batch` (1000).
    #[schema(value_type = Vec<MessageInput>)]
    messages: Vec<Obj<MessageInput>>,
}

/// Where each message went in the change log.
#[derive(Serialize, ToSchema)]
pub struct OutboxOut {
    /// One per message, in order.
    messages: Vec<SeqOut>,
}

/// A message's place in the change log.
#[derive(Serialize, ToSchema)]
pub struct SeqOut {
    seq: u64,
}

/// `POST /v1/outbox` `{"messages": [{"topic", "key", "payload", "headers"}]}`: 201 once
/// durable, with each message's seq in the change log.
#[utoipa::path(
    post,
    path = "/v1/outbox",
    operation_id = "write_outbox",
    tag = "events",
    summary = "Write messages to the change log",
    description = "Each message becomes a `message` event. No idempotency key: a retried request may write a message twice. See docs/api.md#the-transactional-outbox.",
    request_body = OutboxBody,
    responses((status = 201, description = "Written (durable).", body = OutboxOut)),
)]
pub async fn post(
    State(app): State<AppState>,
    Extension(by): Extension<Caller>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<OutboxOut>), ApiError> {
    let broker = app.broker()?;
    let body: OutboxBody = parse_json(&body_bytes(body)?)?;
    let mut messages = messages(body.messages);
    super::access::tenant_messages(&by, &mut messages)?;
    let seqs = broker.emit(messages).await?;
    let messages = seqs.into_iter().map(|seq| SeqOut { seq }).collect();
    Ok((StatusCode::CREATED, Json(OutboxOut { messages })))
}
