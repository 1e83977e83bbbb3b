//! The transactional outbox for clients: `POST /v1/outbox`.

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::access::Caller;
use super::body::{Obj, body_bytes, parse_json};
use super::error::ApiError;
use super::wire::{MessageInput, messages};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OutboxBody {
    messages: Vec<Obj<MessageInput>>,
}

/// `POST /v1/outbox` `{"messages": [{"topic", "key", "payload", "headers"}]}`: 201 once
/// durable, with each message's seq in the change log.
pub async fn post(
    State(app): State<AppState>,
    Extension(by): Extension<Caller>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let broker = app.broker()?;
    let body: OutboxBody = parse_json(&body_bytes(body)?)?;
    let mut messages = messages(body.messages);
    super::access::tenant_messages(&by, &mut messages)?;
    let seqs = broker.emit(messages).await?;
    let out: Vec<Value> = seqs.into_iter().map(|seq| json!({"seq": seq})).collect();
    Ok((StatusCode::CREATED, Json(json!({ "messages": out }))))
}
