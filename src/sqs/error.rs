//! SQS's own error shapes: `{"__type": "com.amazonaws.sqs#QueueDoesNotExist", "message": ...}`
//! with the `x-amzn-query-error` header that tells SDKs the code of SQS's older query
//! protocol (`AWS.SimpleQueueService.NonExistentQueue;Sender`), as SQS itself answers.

use axum::http::header::{CONTENT_TYPE, RETRY_AFTER};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::CONTENT_TYPE_JSON_1_0;
use crate::broker::BrokerError;
use crate::http::{ApiError, ErrorCode};

/// One kind of SQS error: its `__type`, its query-protocol code, its status and whether the
/// sender is at fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SqsCode {
    /// The body is not the JSON the action takes.
    Serialization,
    /// No `X-Amz-Target`, or an action wharf does not serve.
    UnknownOperation,
    /// No `Authorization` header while the broker requires keys.
    MissingAuthenticationToken,
    /// The access key id is not a wharf key, or the key was revoked.
    UnrecognizedClient,
    /// The signature does not match the request, or its date is too far off.
    InvalidSignature,
    /// The key lacks the action's scope, or the queue is outside its patterns.
    AccessDenied,
    /// Over a rate limit of the key or its tenant.
    RequestThrottled,
    /// A required parameter is missing.
    MissingParameter,
    /// A parameter has a value outside its rules.
    InvalidParameterValue,
    /// No such queue.
    QueueDoesNotExist,
    /// CreateQueue of an existing queue with other attributes.
    QueueNameExists,
    /// An attribute wharf does not know or does not support.
    InvalidAttributeName,
    /// An attribute value outside its rules.
    InvalidAttributeValue,
    /// A receipt handle that is not one, or no longer the message's current one.
    ReceiptHandleIsInvalid,
    /// ChangeMessageVisibility of a message that is not in flight.
    MessageNotInflight,
    /// A batch with no entries.
    EmptyBatchRequest,
    /// A batch with more than 10 entries.
    TooManyEntriesInBatchRequest,
    /// Two entries of a batch with one id.
    BatchEntryIdsNotDistinct,
    /// A batch entry id outside `[A-Za-z0-9_-]{1,80}`.
    InvalidBatchEntryId,
    /// A message body with characters SQS does not allow.
    InvalidMessageContents,
    /// A request SQS serves that wharf does not (FIFO queues, say).
    UnsupportedOperation,
    /// The broker cannot take writes now (recovering, disk full, storage failed, stopping).
    ServiceUnavailable,
    /// A fault of wharf's own.
    InternalFailure,
}

impl SqsCode {
    /// (`__type`, query code, status, sender's fault).
    fn parts(self) -> (&'static str, &'static str, StatusCode, bool) {
        use SqsCode as C;
        const BAD: StatusCode = StatusCode::BAD_REQUEST;
        match self {
            C::Serialization => (
                "com.amazon.coral.service#SerializationException",
                "SerializationException",
                BAD,
                true,
            ),
            C::UnknownOperation => (
                "com.amazon.coral.service#UnknownOperationException",
                "UnknownOperationException",
                BAD,
                true,
            ),
            C::MissingAuthenticationToken => (
                "com.amazon.coral.service#MissingAuthenticationTokenException",
                "MissingAuthenticationToken",
                StatusCode::FORBIDDEN,
                true,
            ),
            C::UnrecognizedClient => (
                "com.amazon.coral.service#UnrecognizedClientException",
                "InvalidClientTokenId",
                StatusCode::FORBIDDEN,
                true,
            ),
            C::InvalidSignature => (
                "com.amazon.coral.service#InvalidSignatureException",
                "SignatureDoesNotMatch",
                StatusCode::FORBIDDEN,
                true,
            ),
            C::AccessDenied => (
                "com.amazon.coral.service#AccessDeniedException",
                "AccessDenied",
                StatusCode::FORBIDDEN,
                true,
            ),
            C::RequestThrottled => (
                "com.amazonaws.sqs#RequestThrottled",
                "RequestThrottled",
                BAD,
                true,
            ),
            C::MissingParameter => (
                "com.amazonaws.sqs#MissingParameter",
                "MissingParameter",
                BAD,
                true,
            ),
            C::InvalidParameterValue => (
                "com.amazonaws.sqs#InvalidParameterValue",
                "InvalidParameterValue",
                BAD,
                true,
            ),
            C::QueueDoesNotExist => (
                "com.amazonaws.sqs#QueueDoesNotExist",
                "AWS.SimpleQueueService.NonExistentQueue",
                BAD,
                true,
            ),
            C::QueueNameExists => (
                "com.amazonaws.sqs#QueueNameExists",
                "QueueAlreadyExists",
                BAD,
                true,
            ),
            C::InvalidAttributeName => (
                "com.amazonaws.sqs#InvalidAttributeName",
                "InvalidAttributeName",
                BAD,
                true,
            ),
            C::InvalidAttributeValue => (
                "com.amazonaws.sqs#InvalidAttributeValue",
                "InvalidAttributeValue",
                BAD,
                true,
            ),
            C::ReceiptHandleIsInvalid => (
                "com.amazonaws.sqs#ReceiptHandleIsInvalid",
                "ReceiptHandleIsInvalid",
                BAD,
                true,
            ),
            C::MessageNotInflight => (
                "com.amazonaws.sqs#MessageNotInflight",
                "AWS.SimpleQueueService.MessageNotInflight",
                BAD,
                true,
            ),
            C::EmptyBatchRequest => (
                "com.amazonaws.sqs#EmptyBatchRequest",
                "AWS.SimpleQueueService.EmptyBatchRequest",
                BAD,
                true,
            ),
            C::TooManyEntriesInBatchRequest => (
                "com.amazonaws.sqs#TooManyEntriesInBatchRequest",
                "AWS.SimpleQueueService.TooManyEntriesInBatchRequest",
                BAD,
                true,
            ),
            C::BatchEntryIdsNotDistinct => (
                "com.amazonaws.sqs#BatchEntryIdsNotDistinct",
                "AWS.SimpleQueueService.BatchEntryIdsNotDistinct",
                BAD,
                true,
            ),
            C::InvalidBatchEntryId => (
                "com.amazonaws.sqs#InvalidBatchEntryId",
                "AWS.SimpleQueueService.InvalidBatchEntryId",
                BAD,
                true,
            ),
            C::InvalidMessageContents => (
                "com.amazonaws.sqs#InvalidMessageContents",
                "InvalidMessageContents",
                BAD,
                true,
            ),
            C::UnsupportedOperation => (
                "com.amazonaws.sqs#UnsupportedOperation",
                "AWS.SimpleQueueService.UnsupportedOperation",
                BAD,
                true,
            ),
            C::ServiceUnavailable => (
                "com.amazon.coral.availability#ServiceUnavailableException",
                "ServiceUnavailable",
                StatusCode::SERVICE_UNAVAILABLE,
                false,
            ),
            C::InternalFailure => (
                "com.amazon.coral.service#InternalFailure",
                "InternalFailure",
                StatusCode::INTERNAL_SERVER_ERROR,
                false,
            ),
        }
    }

    /// The code SDKs report (`e.response["Error"]["Code"]` in boto3): the query-protocol one.
    pub fn query_code(self) -> &'static str {
        self.parts().1
    }

    /// The status it is sent with.
    pub fn status(self) -> StatusCode {
        self.parts().2
    }

    /// wharf's own code closest to it, for the audit trail's `error`.
    fn wharf_code(self) -> ErrorCode {
        use SqsCode as C;
        match self {
            C::Serialization => ErrorCode::InvalidJson,
            C::UnknownOperation => ErrorCode::NotFound,
            C::MissingAuthenticationToken | C::UnrecognizedClient | C::InvalidSignature => {
                ErrorCode::Unauthorized
            }
            C::AccessDenied => ErrorCode::Forbidden,
            C::RequestThrottled => ErrorCode::RateLimited,
            C::QueueDoesNotExist => ErrorCode::QueueNotFound,
            C::ReceiptHandleIsInvalid => ErrorCode::StaleLease,
            C::ServiceUnavailable => ErrorCode::ShuttingDown,
            C::InternalFailure => ErrorCode::Internal,
            _ => ErrorCode::InvalidValue,
        }
    }
}

/// An error reply in SQS's shape.
#[derive(Debug, Clone)]
pub struct SqsError {
    /// Its kind.
    pub code: SqsCode,
    /// Human text.
    pub message: String,
    /// Seconds to wait before retrying (throttling).
    pub retry_after: Option<u64>,
    /// wharf's own code of the fault, when it came from the broker (for the audit trail).
    pub wharf: Option<ErrorCode>,
}

impl SqsError {
    /// An error of kind `code`.
    pub fn new(code: SqsCode, message: impl Into<String>) -> SqsError {
        SqsError {
            code,
            message: message.into(),
            retry_after: None,
            wharf: None,
        }
    }

    /// `InvalidParameterValue`.
    pub fn invalid(message: impl Into<String>) -> SqsError {
        SqsError::new(SqsCode::InvalidParameterValue, message)
    }

    /// `MissingParameter` for `field`.
    pub fn missing(field: &str) -> SqsError {
        SqsError::new(
            SqsCode::MissingParameter,
            format!("the request must contain the parameter {field}"),
        )
    }

    /// `QueueDoesNotExist`.
    pub fn no_queue() -> SqsError {
        SqsError::new(
            SqsCode::QueueDoesNotExist,
            "The specified queue does not exist.",
        )
    }

    /// `ReceiptHandleIsInvalid`.
    pub fn bad_receipt(why: impl std::fmt::Display) -> SqsError {
        SqsError::new(
            SqsCode::ReceiptHandleIsInvalid,
            format!("the receipt handle is not valid: {why}"),
        )
    }
}

impl From<BrokerError> for SqsError {
    fn from(error: BrokerError) -> SqsError {
        use BrokerError as E;
        let code = match &error {
            E::QueueNotFound | E::InvalidQueueName => SqsCode::QueueDoesNotExist,
            E::JobNotFound
            | E::NotLeased { .. }
            | E::StaleLease
            | E::LeaseExpired
            | E::JobFinished { .. } => SqsCode::ReceiptHandleIsInvalid,
            E::Invalid(_) | E::InvalidItem { .. } | E::QueueInUse { .. } => {
                SqsCode::InvalidParameterValue
            }
            E::QueueFull { .. } | E::TooManyGroups | E::JobBusy => SqsCode::RequestThrottled,
            E::StorageFailed | E::ShuttingDown | E::InsufficientStorage { .. } => {
                SqsCode::ServiceUnavailable
            }
            _ => SqsCode::InternalFailure,
        };
        // wharf's own mapping gives the message (and logs an internal error).
        let api = ApiError::from(error);
        SqsError {
            code,
            message: api.message,
            retry_after: None,
            wharf: Some(api.code),
        }
    }
}

impl IntoResponse for SqsError {
    fn into_response(self) -> Response {
        let (kind, query, status, sender) = self.code.parts();
        let body = serde_json::json!({"__type": kind, "message": self.message}).to_string();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static(CONTENT_TYPE_JSON_1_0),
        );
        let fault = if sender { "Sender" } else { "Receiver" };
        if let Ok(value) = HeaderValue::from_str(&format!("{query};{fault}")) {
            headers.insert("x-amzn-query-error", value);
        }
        if let Some(seconds) = self.retry_after {
            headers.insert(RETRY_AFTER, HeaderValue::from(seconds));
        }
        let wharf = self.wharf.unwrap_or_else(|| self.code.wharf_code());
        response.extensions_mut().insert(wharf);
        response
    }
}
