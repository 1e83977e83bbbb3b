//! An SQS-compatible endpoint: the actions SQS client code uses most, on the AWS JSON 1.0
//! protocol current SDKs speak (`POST /` with `X-Amz-Target: AmazonSQS.<Action>`), mapped onto
//! wharf's queues. What maps to what, and what is not served, is in `docs/sqs.md`.
//!
//! - [`Action`]: the actions, and the scope each needs.
//! - [`sigv4`]: the signature SDKs send, checked against the wharf key it names.
//! - [`queues`], [`messages`]: the actions, over the broker's API.
//! - [`attributes`]: message attributes as job headers, and SQS's MD5 digests.
//! - [`error`]: SQS's error shapes.
//!
//! A message is a job: its body is the job's payload as a JSON string (a job enqueued through
//! wharf's own API with another payload arrives with that payload's JSON text as its body),
//! `MessageId` is the job id, and `ReceiptHandle` is `<job id>.<lease token>`, fenced as every
//! lease is: a handle from an earlier delivery deletes nothing.

pub mod attributes;
pub mod error;
pub mod messages;
pub mod queues;
pub mod sigv4;

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::auth::{Principal, Scope};
use crate::broker::Broker;
pub use error::{SqsCode, SqsError};

/// The media type of the JSON 1.0 protocol, requests and replies.
pub const CONTENT_TYPE_JSON_1_0: &str = "application/x-amz-json-1.0";

/// What every `X-Amz-Target` starts with.
pub const TARGET_PREFIX: &str = "AmazonSQS.";

macro_rules! actions {
    ($($action:ident => $scope:ident,)*) => {
        /// The actions wharf serves.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Action {
            $(#[doc = concat!("`", stringify!($action), "`.")] $action,)*
        }

        impl Action {
            /// Every action, in the order of the table in `docs/sqs.md`.
            pub const ALL: &'static [Action] = &[$(Action::$action,)*];

            /// Its name, as in `X-Amz-Target`.
            pub fn name(self) -> &'static str {
                match self {
                    $(Action::$action => stringify!($action),)*
                }
            }

            /// The scope a key needs for it.
            pub fn scope(self) -> Scope {
                match self {
                    $(Action::$action => Scope::$scope,)*
                }
            }
        }
    };
}

actions! {
    CreateQueue => QueuesAdmin,
    GetQueueUrl => JobsRead,
    ListQueues => JobsRead,
    DeleteQueue => QueuesAdmin,
    GetQueueAttributes => JobsRead,
    PurgeQueue => QueuesAdmin,
    SendMessage => JobsEnqueue,
    SendMessageBatch => JobsEnqueue,
    ReceiveMessage => JobsConsume,
    DeleteMessage => JobsConsume,
    DeleteMessageBatch => JobsConsume,
    ChangeMessageVisibility => JobsConsume,
}

/// SQS actions wharf knows of but does not serve (their refusal says so, not "unknown").
const NOT_SERVED: &[&str] = &[
    "SetQueueAttributes",
    "ChangeMessageVisibilityBatch",
    "ListDeadLetterSourceQueues",
    "ListQueueTags",
    "TagQueue",
    "UntagQueue",
    "AddPermission",
    "RemovePermission",
    "StartMessageMoveTask",
    "CancelMessageMoveTask",
    "ListMessageMoveTasks",
];

impl Action {
    /// The action an `X-Amz-Target` header names.
    pub fn of_target(target: Option<&str>) -> Result<Action, SqsError> {
        let Some(target) = target else {
            return Err(SqsError::new(
                SqsCode::UnknownOperation,
                "the request must carry X-Amz-Target: AmazonSQS.<Action> (see docs/sqs.md)",
            ));
        };
        let name = target.strip_prefix(TARGET_PREFIX).unwrap_or("");
        if let Some(action) = Action::ALL.iter().find(|a| a.name() == name) {
            return Ok(*action);
        }
        if NOT_SERVED.contains(&name) {
            return Err(SqsError::new(
                SqsCode::UnsupportedOperation,
                format!(
                    "wharf does not serve the SQS action {name}; docs/sqs.md lists those it does"
                ),
            ));
        }
        Err(SqsError::new(
            SqsCode::UnknownOperation,
            format!("unknown operation {target:?}; docs/sqs.md lists the actions wharf serves"),
        ))
    }

    /// The audit trail's action of an action that changes a queue (`None`: not audited).
    pub fn audited(self) -> Option<&'static str> {
        match self {
            Action::CreateQueue => Some("queue.create"),
            Action::DeleteQueue => Some("queue.delete"),
            Action::PurgeQueue => Some("queue.purge"),
            _ => None,
        }
    }
}

/// What an action runs with.
pub struct Context<'a> {
    /// The broker.
    pub broker: &'a Broker,
    /// Who calls.
    pub by: &'a Principal,
    /// `http://host:port`, the start of every queue URL.
    pub base_url: &'a str,
}

/// Runs `action` with `body` (its JSON input); its JSON output.
pub async fn call(cx: &Context<'_>, action: Action, body: &[u8]) -> Result<Value, SqsError> {
    use Action as A;
    match action {
        A::CreateQueue => queues::create(cx, input(body)?).await,
        A::GetQueueUrl => queues::get_url(cx, input(body)?),
        A::ListQueues => queues::list(cx, input(body)?),
        A::DeleteQueue => queues::delete(cx, input(body)?).await,
        A::GetQueueAttributes => queues::attributes(cx, input(body)?),
        A::PurgeQueue => queues::purge(cx, input(body)?).await,
        A::SendMessage => messages::send(cx, input(body)?).await,
        A::SendMessageBatch => messages::send_batch(cx, input(body)?).await,
        A::ReceiveMessage => messages::receive(cx, input(body)?).await,
        A::DeleteMessage => messages::delete(cx, input(body)?).await,
        A::DeleteMessageBatch => messages::delete_batch(cx, input(body)?).await,
        A::ChangeMessageVisibility => messages::change_visibility(cx, input(body)?).await,
    }
}

/// The input of an action. Members wharf does not know are ignored, as SQS ignores them, so
/// that SDKs newer than this endpoint keep working.
fn input<T: DeserializeOwned>(body: &[u8]) -> Result<T, SqsError> {
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}".as_slice()
    } else {
        body
    };
    serde_json::from_slice(body).map_err(|e| {
        SqsError::new(
            SqsCode::Serialization,
            format!("the body is not this action's JSON input: {e}"),
        )
    })
}

/// The queue a `QueueUrl` names, as a full name the caller may touch: the URL's last two path
/// segments are the tenant and the queue (any scheme and host, so a URL survives a proxy).
pub fn queue_of_url(by: &Principal, url: Option<&str>) -> Result<String, SqsError> {
    let url = url.ok_or_else(|| SqsError::missing("QueueUrl"))?;
    let path = url
        .split_once("://")
        .map_or(url, |(_, rest)| rest.split_once('/').map_or("", |(_, p)| p));
    let mut segments = path.trim_end_matches('/').rsplit('/');
    let (Some(name), Some(tenant)) = (segments.next(), segments.next()) else {
        return Err(SqsError::no_queue());
    };
    let full = crate::tenant::full_name(tenant, name);
    let valid = crate::tenant::valid_tenant(tenant) && crate::tenant::valid_full_name(&full);
    if !valid || !by.owns(&full) {
        return Err(SqsError::no_queue());
    }
    check_touch(by, &full)?;
    Ok(full)
}

/// `AccessDenied` for a queue outside the caller's patterns.
pub fn check_touch(by: &Principal, full: &str) -> Result<(), SqsError> {
    if by.may_touch(full) {
        Ok(())
    } else {
        Err(SqsError::new(
            SqsCode::AccessDenied,
            format!("this key may not touch queue {full:?}"),
        ))
    }
}

/// The URL of queue `full`: `<base>/<tenant>/<name>`.
pub fn queue_url(base_url: &str, full: &str) -> String {
    let (tenant, name) = crate::tenant::split(full);
    format!("{base_url}/{tenant}/{name}")
}

/// An integer member within `range`, or its default.
pub fn int_in(
    field: &str,
    value: Option<i64>,
    range: std::ops::RangeInclusive<i64>,
    default: i64,
) -> Result<u64, SqsError> {
    let value = value.unwrap_or(default);
    if range.contains(&value) {
        Ok(u64::try_from(value).unwrap_or(0))
    } else {
        Err(SqsError::invalid(format!(
            "{field} must be between {} and {}",
            range.start(),
            range.end()
        )))
    }
}
