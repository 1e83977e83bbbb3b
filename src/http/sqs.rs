//! `POST /`: the SQS-compatible endpoint. Its one route serves every action, so it does what
//! the access middleware does for other routes itself (the key, the action's scope, the rate
//! limits, the audit), answering every refusal in SQS's shape, which SDKs understand.

use std::net::SocketAddr;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, HOST};
use axum::http::{HeaderMap, HeaderValue, Method, Uri};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::AppState;
use super::access::{Caller, Refusal, admit};
use super::audit::Audit;
use super::error::ErrorCode;
use crate::auth::Unauthorized;
use crate::sqs::sigv4::{self, SignatureError};
use crate::sqs::{Action, CONTENT_TYPE_JSON_1_0, Context, SqsCode, SqsError};

/// The handler.
pub async fn serve(
    State(app): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(body) => body,
        Err(rejection) => {
            let error = SqsError::invalid(format!(
                "cannot read the request body: {}",
                rejection.body_text()
            ));
            return error.into_response();
        }
    };
    let action = match Action::of_target(header(&headers, "x-amz-target")) {
        Ok(action) => action,
        Err(error) => return error.into_response(),
    };
    let request = sigv4::Request {
        method: method.as_str(),
        path: uri.path(),
        query: uri.query().unwrap_or(""),
        headers: &headers,
        body: &body,
    };
    let caller = match caller(&app, action, &request) {
        Ok(caller) => caller,
        Err((error, None)) => return error.into_response(),
        Err((error, Some(by))) => {
            let response = error.into_response();
            return audited(&app, action, &by, &body, peer, response).await;
        }
    };
    let response = match run(&app, &caller, action, &headers, &body).await {
        Ok(out) => {
            let mut response = out.to_string().into_response();
            response.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static(CONTENT_TYPE_JSON_1_0),
            );
            response
        }
        Err(error) => error.into_response(),
    };
    audited(&app, action, &caller, &body, peer, response).await
}

async fn run(
    app: &AppState,
    by: &Caller,
    action: Action,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<serde_json::Value, SqsError> {
    let broker = app.broker().map_err(unavailable)?;
    let host = header(headers, HOST.as_str()).unwrap_or("localhost");
    let base_url = format!("{}://{host}", app.scheme());
    let cx = Context {
        broker,
        by,
        base_url: &base_url,
    };
    crate::sqs::call(&cx, action, body).await
}

fn unavailable(error: super::ApiError) -> SqsError {
    SqsError::new(SqsCode::ServiceUnavailable, error.message)
}

/// The caller: with keys on, the key the signature names, checked against the action's
/// scope and its rate limits; else everyone may do everything (and a signature, which the
/// SDKs always send, is not checked). A refusal after the key is known carries the caller.
fn caller(
    app: &AppState,
    action: Action,
    request: &sigv4::Request<'_>,
) -> Result<Caller, (SqsError, Option<Caller>)> {
    let keys = app.keys().map_err(|e| (unavailable(e), None))?;
    if !keys.enabled() {
        return Ok(keys.unauthenticated());
    }
    let broker = app.broker().map_err(|e| (unavailable(e), None))?;
    let signed = sigv4::parse(header(request.headers, AUTHORIZATION.as_str()))
        .map_err(|e| (signature_error(e), None))?;
    let key = keys
        .authenticate_token(signed.access_key)
        .map_err(|why| (unrecognized(why), None))?;
    signed
        .verify(request, signed.access_key, broker.now())
        .map_err(|e| (signature_error(e), None))?;
    let (by, _taken) =
        admit(key, action.scope()).map_err(|(refusal, by)| (refused(refusal), by))?;
    Ok(by)
}

fn signature_error(error: SignatureError) -> SqsError {
    let code = match error {
        SignatureError::Missing => SqsCode::MissingAuthenticationToken,
        _ => SqsCode::InvalidSignature,
    };
    SqsError::new(code, error.to_string())
}

fn unrecognized(why: Unauthorized) -> SqsError {
    let message = match why {
        Unauthorized::Revoked => "the access key id is a revoked wharf key",
        _ => {
            "the access key id must be a wharf key (wk_...), with the same key as the secret access key"
        }
    };
    SqsError::new(SqsCode::UnrecognizedClient, message)
}

fn refused(refusal: Refusal) -> SqsError {
    match refusal {
        Refusal::Unauthorized(why) => unrecognized(why),
        Refusal::RateLimited(limited) => {
            let wait_ms = u64::try_from(limited.retry_after.as_millis()).unwrap_or(u64::MAX);
            let mut error = SqsError::new(
                SqsCode::RequestThrottled,
                format!(
                    "the limit of {} requests per second ({}) of this key or its tenant is used up",
                    limited.limit,
                    limited.class.field()
                ),
            );
            error.retry_after = Some(wait_ms.div_ceil(1000).max(1));
            error
        }
        Refusal::Error(error) if error.code == ErrorCode::Forbidden => {
            SqsError::new(SqsCode::AccessDenied, error.message)
        }
        Refusal::Error(error) => unavailable(error),
    }
}

/// `response`, once an audited action's record of it is written.
async fn audited(
    app: &AppState,
    action: Action,
    by: &Caller,
    body: &[u8],
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    response: Response,
) -> Response {
    let Some(name) = action.audited() else {
        return response;
    };
    let audit = Audit::of_sqs(name, target(by, body), peer.map(|p| p.0.0));
    audit.record(app, by, &response).await;
    response
}

/// The queue an audited action names: its `QueueName`, or the queue of its `QueueUrl`.
fn target(by: &Caller, body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Named {
        queue_name: Option<String>,
        queue_url: Option<String>,
    }
    let named: Named = serde_json::from_slice(body).ok()?;
    named.queue_name.or_else(|| {
        let full = crate::sqs::queue_of_url(by, named.queue_url.as_deref()).ok()?;
        Some(crate::tenant::split(&full).1.to_owned())
            .filter(|_| !by.is_operator())
            .or(Some(full))
    })
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}
