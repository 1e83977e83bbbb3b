//! Every error a client can see: one [`ErrorCode`] per kind, each with its stable machine code
//! and its HTTP status, and the one mapping from broker errors to them.
//!
//! `docs/api.md` lists the same codes ("All machine codes"); a test checks that the two sets
//! are equal. The OpenAPI document takes the error body's schema from the types here.

use std::borrow::Cow;

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Serialize, Serializer};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::{PartialSchema, ToSchema};

use crate::broker::{BrokerError, Invalid, Limit};

macro_rules! error_codes {
    ($($(#[doc = $doc:literal])* $variant:ident = ($status:ident, $code:literal),)*) => {
        /// The machine code of an error reply, with its HTTP status.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $($(#[doc = $doc])* $variant,)*
        }

        impl ErrorCode {
            /// Every code, in the order of the table in `docs/api.md`.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)*];

            /// The stable snake_case code clients match on.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $code,)*
                }
            }

            /// The HTTP status it is sent with.
            pub fn status(self) -> StatusCode {
                match self {
                    $(ErrorCode::$variant => StatusCode::$status,)*
                }
            }
        }
    };
}

error_codes! {
    /// A required body is empty or only whitespace.
    EmptyBody = (BAD_REQUEST, "empty_body"),
    /// The body is not JSON (syntax, UTF-8, trailing data).
    InvalidJson = (BAD_REQUEST, "invalid_json"),
    /// A queue name outside `[A-Za-z0-9._-]{1,128}`.
    InvalidQueueName = (BAD_REQUEST, "invalid_queue_name"),
    /// A schedule name outside `[A-Za-z0-9._-]{1,128}`.
    InvalidScheduleName = (BAD_REQUEST, "invalid_schedule_name"),
    /// A cursor name outside `[A-Za-z0-9._-]{1,128}`.
    InvalidCursorName = (BAD_REQUEST, "invalid_cursor_name"),
    /// A path segment that is not UTF-8 after percent-decoding.
    InvalidPath = (BAD_REQUEST, "invalid_path"),
    /// The body could not be read for a reason other than its size.
    BadBody = (BAD_REQUEST, "bad_body"),
    /// No such route.
    NotFound = (NOT_FOUND, "not_found"),
    /// No API key, or a malformed, unknown or revoked one (with `WWW-Authenticate: Bearer`).
    Unauthorized = (UNAUTHORIZED, "unauthorized"),
    /// The key lacks the route's scope, or the queue is outside its patterns.
    Forbidden = (FORBIDDEN, "forbidden"),
    /// A web page of another origin tried to change the broker, or (without keys, on
    /// loopback) a request named a host other than an IP address or `localhost`.
    CrossOrigin = (FORBIDDEN, "cross_origin"),
    /// No API key with that id (in the caller's tenant).
    KeyNotFound = (NOT_FOUND, "key_not_found"),
    /// A request hyper could not parse: a malformed request line, header or Content-Length.
    BadRequest = (BAD_REQUEST, "bad_request"),
    /// A request line over hyper's limit.
    UriTooLong = (URI_TOO_LONG, "uri_too_long"),
    /// Too many headers, or a header block over hyper's limit.
    HeadersTooLarge = (REQUEST_HEADER_FIELDS_TOO_LARGE, "headers_too_large"),
    /// No job with that id.
    JobNotFound = (NOT_FOUND, "job_not_found"),
    /// No queue with that name.
    QueueNotFound = (NOT_FOUND, "queue_not_found"),
    /// No schedule with that name.
    ScheduleNotFound = (NOT_FOUND, "schedule_not_found"),
    /// No cursor with that name.
    CursorNotFound = (NOT_FOUND, "cursor_not_found"),
    /// The route does not take that method.
    MethodNotAllowed = (METHOD_NOT_ALLOWED, "method_not_allowed"),
    /// The request body did not arrive within `body_read_timeout_ms`.
    RequestTimeout = (REQUEST_TIMEOUT, "request_timeout"),
    /// Ack, nack or extend of a job that is not leased.
    JobNotLeased = (CONFLICT, "job_not_leased"),
    /// A lease token that is not the job's current lease.
    StaleLease = (CONFLICT, "stale_lease"),
    /// The current lease token, past its deadline.
    LeaseExpired = (CONFLICT, "lease_expired"),
    /// Cancel of a leased job.
    JobLeased = (CONFLICT, "job_leased"),
    /// Cancel of a job that already succeeded.
    JobFinished = (CONFLICT, "job_finished"),
    /// Another request is changing the job; retry.
    JobBusy = (CONFLICT, "job_busy"),
    /// Deleting a queue that schedules enqueue into.
    QueueInUse = (CONFLICT, "queue_in_use"),
    /// The events asked for were trimmed from the change log.
    EventsTrimmed = (GONE, "events_trimmed"),
    /// The body is over `max_body_bytes`.
    BodyTooLarge = (PAYLOAD_TOO_LARGE, "body_too_large"),
    /// A payload is over `max_payload_bytes`.
    PayloadTooLarge = (PAYLOAD_TOO_LARGE, "payload_too_large"),
    /// An ack result is over `max_payload_bytes`.
    ResultTooLarge = (PAYLOAD_TOO_LARGE, "result_too_large"),
    /// A batch is over `max_batch`.
    BatchTooLarge = (PAYLOAD_TOO_LARGE, "batch_too_large"),
    /// The key's rate limit for this class of route is used up (with `Retry-After`).
    RateLimited = (TOO_MANY_REQUESTS, "rate_limited"),
    /// The queue is at its `max_depth` (with `Retry-After`).
    QueueFull = (TOO_MANY_REQUESTS, "queue_full"),
    /// The queue has 16.7 million job groups live (with `Retry-After`).
    TooManyGroups = (TOO_MANY_REQUESTS, "too_many_groups"),
    /// A body in a media type other than JSON (see `request_checks.rs`).
    UnsupportedMediaType = (UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
    /// A cron expression or time zone that is not accepted.
    InvalidSchedule = (UNPROCESSABLE_ENTITY, "invalid_schedule"),
    /// Any other value that breaks a rule, unknown fields included.
    InvalidValue = (UNPROCESSABLE_ENTITY, "invalid_value"),
    /// An unexpected failure; the details are in the server log.
    Internal = (INTERNAL_SERVER_ERROR, "internal"),
    /// The broker is still recovering its data.
    Recovering = (SERVICE_UNAVAILABLE, "recovering"),
    /// The broker is shutting down.
    ShuttingDown = (SERVICE_UNAVAILABLE, "shutting_down"),
    /// A commit or fsync failed; writes are refused until a restart.
    StorageFailed = (SERVICE_UNAVAILABLE, "storage_failed"),
    /// The data volume is below its free-space floor; writes that add data are refused.
    InsufficientStorage = (INSUFFICIENT_STORAGE, "insufficient_storage"),
}

impl Serialize for ErrorCode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl PartialSchema for ErrorCode {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(ErrorCode::ALL.iter().map(|c| c.as_str())))
            .description(Some(
                "The stable machine code; each is always sent with the same status (docs/api.md, \"All machine codes\").",
            ))
            .into()
    }
}

impl ToSchema for ErrorCode {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("ErrorCode")
    }
}

/// An error reply: `{"error": {"code": ..., "message": ...}}` with the code's status.
#[derive(Debug)]
pub struct ApiError {
    /// What kind of error, which also decides the status.
    pub code: ErrorCode,
    /// Human text saying what to do.
    pub message: String,
    /// What the error object adds for a program, beside its code and message.
    pub extra: Option<Extra>,
}

/// What some errors add to their error object, for a program.
#[derive(Debug)]
pub enum Extra {
    /// `events_trimmed`: the oldest seq still kept.
    Oldest(u64),
    /// `queue_in_use`: the schedules that enqueue into the queue.
    Schedules(Vec<String>),
    /// `queue_full`: the queue's limit and depth.
    Queue(QueueDepth),
    /// `insufficient_storage`: the free space and its floor.
    Disk(DiskFloor),
    /// `rate_limited`: how long until a request of this class is let through.
    RetryAfterMs(u64),
}

/// Every error reply's body.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong.
    error: ErrorObject,
}

/// The error object: a code and a message, and for some codes one more field.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorObject {
    code: ErrorCode,
    /// For people: what went wrong and what to do. It may change between versions.
    message: String,
    /// `events_trimmed`: the oldest seq still kept; read on from there.
    #[serde(skip_serializing_if = "Option::is_none")]
    oldest: Option<u64>,
    /// `queue_in_use`: the schedules that enqueue into the queue.
    #[serde(skip_serializing_if = "Option::is_none")]
    schedules: Option<Vec<String>>,
    /// `queue_full`: the queue's `max_depth` and its depth now.
    #[serde(skip_serializing_if = "Option::is_none")]
    queue: Option<QueueDepth>,
    /// `insufficient_storage`: the free space on the data volume and its floor.
    #[serde(skip_serializing_if = "Option::is_none")]
    disk: Option<DiskFloor>,
    /// `rate_limited`: milliseconds until a request of this class is let through.
    #[serde(skip_serializing_if = "Option::is_none")]
    retry_after_ms: Option<u64>,
}

/// A full queue's limit and depth.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
pub struct QueueDepth {
    /// The queue's `max_depth`.
    pub max_depth: u64,
    /// Jobs ready, scheduled or leased, and enqueues being written.
    pub depth: u64,
}

/// The data volume's free space and the floor below which writes that add data are refused.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
pub struct DiskFloor {
    /// Free bytes on the data volume.
    pub available_bytes: u64,
    /// The floor, in bytes.
    pub floor_bytes: u64,
}

impl From<ApiError> for ErrorObject {
    fn from(error: ApiError) -> ErrorObject {
        let mut object = ErrorObject {
            code: error.code,
            message: error.message,
            oldest: None,
            schedules: None,
            queue: None,
            disk: None,
            retry_after_ms: None,
        };
        match error.extra {
            None => {}
            Some(Extra::Oldest(seq)) => object.oldest = Some(seq),
            Some(Extra::Schedules(names)) => object.schedules = Some(names),
            Some(Extra::Queue(depth)) => object.queue = Some(depth),
            Some(Extra::Disk(disk)) => object.disk = Some(disk),
            Some(Extra::RetryAfterMs(ms)) => object.retry_after_ms = Some(ms),
        }
        object
    }
}

impl ApiError {
    /// An error of kind `code`.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            message: message.into(),
            extra: None,
        }
    }

    /// 422 `invalid_value`: well-formed, but a value is not acceptable.
    pub fn invalid(message: impl Into<String>) -> ApiError {
        Self::new(ErrorCode::InvalidValue, message)
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.code.status()
    }

    /// The error of item `index` of a batch: named `{list}[{index}].field` when the request
    /// was a batch, plain `field` when it held one item of its own.
    pub fn from_item(error: BrokerError, list: &str, batch: bool) -> ApiError {
        match error {
            BrokerError::InvalidItem { index, error } => {
                let mut api = ApiError::from(BrokerError::Invalid(error));
                if batch {
                    api.message = format!("{list}[{index}].{}", api.message);
                }
                api
            }
            other => other.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = self.code;
        let body = ErrorBody {
            error: ErrorObject::from(self),
        };
        let mut response = (code.status(), Json(body)).into_response();
        // For the audit trail, which records a refusal's code.
        response.extensions_mut().insert(code);
        if matches!(code, ErrorCode::QueueFull | ErrorCode::TooManyGroups) {
            // Nothing says when consumers will have drained it: a second is a polite first wait.
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("1"),
            );
        }
        response
    }
}

/// The code of a broken rule, by the kind of limit it is.
fn invalid_code(error: &Invalid) -> ErrorCode {
    match error.kind {
        Limit::Value => ErrorCode::InvalidValue,
        Limit::Payload => ErrorCode::PayloadTooLarge,
        Limit::Result => ErrorCode::ResultTooLarge,
        Limit::Batch => ErrorCode::BatchTooLarge,
    }
}

impl From<BrokerError> for ApiError {
    fn from(error: BrokerError) -> ApiError {
        use BrokerError as E;
        use ErrorCode as C;
        let code = match &error {
            E::JobNotFound => C::JobNotFound,
            E::QueueNotFound => C::QueueNotFound,
            E::QueueInUse { schedules } => {
                let mut api = ApiError::new(C::QueueInUse, error.to_string());
                api.extra = Some(Extra::Schedules(schedules.clone()));
                return api;
            }
            E::ScheduleNotFound => C::ScheduleNotFound,
            E::InvalidScheduleName => C::InvalidScheduleName,
            E::InvalidQueueName => C::InvalidQueueName,
            E::NotLeased { .. } => C::JobNotLeased,
            E::StaleLease => C::StaleLease,
            E::LeaseExpired => C::LeaseExpired,
            E::JobLeased => C::JobLeased,
            E::JobFinished { .. } => C::JobFinished,
            E::JobBusy => C::JobBusy,
            E::Invalid(invalid) | E::InvalidItem { error: invalid, .. } => invalid_code(invalid),
            E::CursorNotFound => C::CursorNotFound,
            E::InvalidCursorName => C::InvalidCursorName,
            E::EventsTrimmed { oldest } => {
                let mut api = ApiError::new(C::EventsTrimmed, error.to_string());
                api.extra = Some(Extra::Oldest(*oldest));
                return api;
            }
            E::StorageFailed => C::StorageFailed,
            E::InsufficientStorage { available, floor } => {
                let mut api = ApiError::new(C::InsufficientStorage, error.to_string());
                api.extra = Some(Extra::Disk(DiskFloor {
                    available_bytes: *available,
                    floor_bytes: *floor,
                }));
                return api;
            }
            E::ShuttingDown => C::ShuttingDown,
            E::TooManyGroups => C::TooManyGroups,
            E::QueueFull { max_depth, depth } => {
                let mut api = ApiError::new(C::QueueFull, error.to_string());
                api.extra = Some(Extra::Queue(QueueDepth {
                    max_depth: *max_depth,
                    depth: *depth,
                }));
                return api;
            }
            _ => {
                tracing::error!(%error, "internal error");
                return ApiError::new(C::Internal, "internal error; see the server log");
            }
        };
        ApiError::new(code, error.to_string())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::collections::BTreeSet;

    use super::*;

    /// The (status, code) rows of the "All machine codes" table in `docs/api.md`.
    fn documented() -> BTreeSet<(u16, String)> {
        let api = include_str!("../../docs/api.md");
        let table = api
            .split("All machine codes:")
            .nth(1)
            .expect("docs/api.md has the table of machine codes");
        table
            .lines()
            .skip_while(|line| !line.starts_with('|'))
            .take_while(|line| line.starts_with('|'))
            .filter_map(|line| {
                let cells: Vec<&str> = line.split('|').map(str::trim).collect();
                let status = cells.get(1)?.parse().ok()?;
                let code = cells.get(2)?.trim_matches('`').to_owned();
                Some((status, code))
            })
            .collect()
    }

    #[test]
    fn the_codes_are_the_documented_ones() {
        let ours: BTreeSet<(u16, String)> = ErrorCode::ALL
            .iter()
            .map(|c| (c.status().as_u16(), c.as_str().to_owned()))
            .collect();
        assert_eq!(ours.len(), ErrorCode::ALL.len(), "a code is listed twice");
        assert_eq!(
            ours,
            documented(),
            "ErrorCode and the table in docs/api.md differ"
        );
    }

    #[test]
    fn broker_errors_map_to_their_codes() {
        let cases = [
            (BrokerError::JobNotFound, 404, "job_not_found"),
            (BrokerError::QueueNotFound, 404, "queue_not_found"),
            (BrokerError::ScheduleNotFound, 404, "schedule_not_found"),
            (BrokerError::InvalidQueueName, 400, "invalid_queue_name"),
            (
                BrokerError::InvalidScheduleName,
                400,
                "invalid_schedule_name",
            ),
            (
                BrokerError::NotLeased { state: "ready" },
                409,
                "job_not_leased",
            ),
            (BrokerError::StaleLease, 409, "stale_lease"),
            (BrokerError::LeaseExpired, 409, "lease_expired"),
            (BrokerError::JobLeased, 409, "job_leased"),
            (
                BrokerError::JobFinished { state: "succeeded" },
                409,
                "job_finished",
            ),
            (BrokerError::JobBusy, 409, "job_busy"),
            (
                BrokerError::QueueInUse {
                    schedules: vec!["nightly".into()],
                },
                409,
                "queue_in_use",
            ),
            (BrokerError::CursorNotFound, 404, "cursor_not_found"),
            (BrokerError::InvalidCursorName, 400, "invalid_cursor_name"),
            (
                BrokerError::EventsTrimmed { oldest: 5 },
                410,
                "events_trimmed",
            ),
            (BrokerError::StorageFailed, 503, "storage_failed"),
            (
                BrokerError::InsufficientStorage {
                    available: 1,
                    floor: 2,
                },
                507,
                "insufficient_storage",
            ),
            (BrokerError::ShuttingDown, 503, "shutting_down"),
            (BrokerError::TooManyQueues, 500, "internal"),
            (BrokerError::TooManyGroups, 429, "too_many_groups"),
        ];
        for (error, status, code) in cases {
            let api = ApiError::from(error);
            assert_eq!((api.status().as_u16(), api.code.as_str()), (status, code));
        }
        let rule = |kind| {
            ApiError::from(BrokerError::Invalid(Invalid {
                field: "f",
                rule: "r".into(),
                kind,
            }))
            .code
        };
        assert_eq!(rule(Limit::Value), ErrorCode::InvalidValue);
        assert_eq!(rule(Limit::Payload), ErrorCode::PayloadTooLarge);
        assert_eq!(rule(Limit::Result), ErrorCode::ResultTooLarge);
        assert_eq!(rule(Limit::Batch), ErrorCode::BatchTooLarge);
    }

    #[test]
    fn a_batch_item_error_names_its_item() {
        let item = |batch| {
            ApiError::from_item(
                BrokerError::InvalidItem {
                    index: 3,
                    error: Invalid {
                        field: "payload",
                        rule: "is too big".into(),
                        kind: Limit::Payload,
                    },
                },
                "jobs",
                batch,
            )
        };
        let batch = item(true);
        assert_eq!(
            (batch.code, batch.message.as_str()),
            (ErrorCode::PayloadTooLarge, "jobs[3].payload is too big")
        );
        assert_eq!(item(false).message, "payload is too big");
    }
}
