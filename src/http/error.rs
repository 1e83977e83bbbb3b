//! Every error a client can see, mapped to a status and a stable machine code in one place.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::broker::BrokerError;
use crate::storage::StoreError;

/// An error reply: `{"error": {"code": ..., "message": ...}}` with its status.
#[derive(Debug)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// A stable machine-readable code (documented in `docs/api.md`).
    pub code: &'static str,
    /// Human text saying what to do.
    pub message: String,
}

impl ApiError {
    /// An error with any status.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    /// 400: the request cannot be parsed.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> ApiError {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 422: well-formed, but a value is not acceptable.
    pub fn invalid(message: impl Into<String>) -> ApiError {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_value", message)
    }

    /// 413: over a size limit.
    pub fn too_large(code: &'static str, message: impl Into<String>) -> ApiError {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, code, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": {"code": self.code, "message": self.message}});
        (self.status, Json(body)).into_response()
    }
}

impl From<BrokerError> for ApiError {
    fn from(error: BrokerError) -> ApiError {
        use BrokerError as E;
        use StatusCode as S;
        let (status, code) = match &error {
            E::JobNotFound => (S::NOT_FOUND, "job_not_found"),
            E::QueueNotFound => (S::NOT_FOUND, "queue_not_found"),
            E::ScheduleNotFound => (S::NOT_FOUND, "schedule_not_found"),
            E::InvalidScheduleName => (S::BAD_REQUEST, "invalid_schedule_name"),
            E::InvalidQueueName => (S::BAD_REQUEST, "invalid_queue_name"),
            E::NotLeased { .. } => (S::CONFLICT, "job_not_leased"),
            E::StaleLease => (S::CONFLICT, "stale_lease"),
            E::LeaseExpired => (S::CONFLICT, "lease_expired"),
            E::JobLeased => (S::CONFLICT, "job_leased"),
            E::JobFinished { .. } => (S::CONFLICT, "job_finished"),
            E::JobBusy => (S::CONFLICT, "job_busy"),
            E::Storage(StoreError::Poisoned) => (S::SERVICE_UNAVAILABLE, "storage_failed"),
            E::Storage(StoreError::Closed) => (S::SERVICE_UNAVAILABLE, "shutting_down"),
            _ => {
                tracing::error!(%error, "internal error");
                return ApiError::new(
                    S::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error; see the server log",
                );
            }
        };
        ApiError::new(status, code, error.to_string())
    }
}
