//! The queue actions: CreateQueue, GetQueueUrl, ListQueues, DeleteQueue, GetQueueAttributes,
//! PurgeQueue.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Value, json};

use super::error::{SqsCode, SqsError};
use super::{Context, check_touch, queue_of_url, queue_url};
use crate::broker::limits::{MAX_ATTEMPTS, MAX_LEASE_MS};
use crate::broker::{QueuePatch, QueueView};
use crate::job::JobState;

/// A queue made by CreateQueue behaves as an SQS queue: a message whose visibility timeout
/// ends is visible again at once (no backoff), and without a `RedrivePolicy` it is retried up
/// to wharf's most attempts rather than dead after five.
fn sqs_defaults() -> QueuePatch {
    QueuePatch {
        max_attempts: Some(MAX_ATTEMPTS),
        backoff_base_ms: Some(0),
        backoff_cap_ms: Some(0),
        ..QueuePatch::default()
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateQueueInput {
    queue_name: Option<String>,
    #[serde(default)]
    attributes: BTreeMap<String, String>,
    #[serde(default, rename = "tags")]
    tags: BTreeMap<String, String>,
}

/// The settings the attributes of CreateQueue ask for.
fn patch_of(attributes: &BTreeMap<String, String>) -> Result<QueuePatch, SqsError> {
    let mut patch = QueuePatch::default();
    for (name, value) in attributes {
        match name.as_str() {
            "VisibilityTimeout" => {
                let seconds = seconds(name, value, MAX_LEASE_MS / 1000)?;
                // SQS allows 0 (visible again at once); a wharf lease is at least 1 ms.
                patch.lease_ms = Some((seconds * 1000).max(1));
            }
            "RedrivePolicy" => patch.max_attempts = Some(max_receive_count(value)?),
            // Values SQS takes that change nothing here.
            "DelaySeconds" | "ReceiveMessageWaitTimeSeconds" if value == "0" => {}
            "FifoQueue" if value == "false" => {}
            "FifoQueue" => {
                return Err(SqsError::new(
                    SqsCode::UnsupportedOperation,
                    "wharf serves standard queues only (a wharf queue is already FIFO within a priority, but has no message groups of SQS's FIFO kind); see docs/sqs.md",
                ));
            }
            _ => {
                return Err(SqsError::new(
                    SqsCode::InvalidAttributeName,
                    format!(
                        "wharf does not support the queue attribute {name} (with value {value:?}); docs/sqs.md lists those it does"
                    ),
                ));
            }
        }
    }
    Ok(patch)
}

fn seconds(name: &str, value: &str, most: u64) -> Result<u64, SqsError> {
    value
        .parse::<u64>()
        .ok()
        .filter(|s| *s <= most)
        .ok_or_else(|| {
            SqsError::new(
                SqsCode::InvalidAttributeValue,
                format!("{name} must be a whole number of seconds from 0 to {most}"),
            )
        })
}

/// `{"maxReceiveCount": N, "deadLetterTargetArn": …}`: N deliveries, then the message is a
/// dead job of its own queue (docs/sqs.md says why there is no second queue).
fn max_receive_count(policy: &str) -> Result<u32, SqsError> {
    let bad = || {
        SqsError::new(
            SqsCode::InvalidAttributeValue,
            format!(
                "RedrivePolicy must be a JSON object with maxReceiveCount from 1 to {MAX_ATTEMPTS}"
            ),
        )
    };
    let policy: Value = serde_json::from_str(policy).map_err(|_| bad())?;
    let count = match policy.get("maxReceiveCount") {
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.parse().ok(),
        _ => None,
    };
    count
        .and_then(|c| u32::try_from(c).ok())
        .filter(|c| (1..=MAX_ATTEMPTS).contains(c))
        .ok_or_else(bad)
}

/// Whether `queue` already has every setting `patch` names.
fn has_settings(queue: &QueueView, patch: &QueuePatch) -> bool {
    let mut patched = queue.config.clone();
    patch.apply(&mut patched);
    patched == queue.config
}

/// The full name of a name the caller sends (`acme:emails` only from an operator).
fn full_name(cx: &Context<'_>, name: Option<&str>) -> Result<String, SqsError> {
    let name = name.ok_or_else(|| SqsError::missing("QueueName"))?;
    let full = cx.by.full_name(name).ok_or_else(|| {
        SqsError::invalid(
            "queue names are 1-128 characters of A-Z, a-z, 0-9, '.', '_' and '-' (a tenant's key sends names without a tenant prefix)",
        )
    })?;
    check_touch(cx.by, &full)?;
    Ok(full)
}

/// CreateQueue: the queue's URL, creating it if new. An existing queue keeps its settings;
/// attributes that would change one are refused (`QueueNameExists`), as SQS refuses them.
pub async fn create(cx: &Context<'_>, input: CreateQueueInput) -> Result<Value, SqsError> {
    let full = full_name(cx, input.queue_name.as_deref())?;
    if full.ends_with(".fifo") {
        return Err(SqsError::new(
            SqsCode::UnsupportedOperation,
            "wharf serves standard queues only (no .fifo queues); see docs/sqs.md",
        ));
    }
    if !input.tags.is_empty() {
        return Err(SqsError::invalid("wharf keeps no queue tags; send none"));
    }
    let asked = patch_of(&input.attributes)?;
    match cx.broker.queue(&full) {
        Ok(existing) if has_settings(&existing, &asked) => {}
        Ok(_) => {
            return Err(SqsError::new(
                SqsCode::QueueNameExists,
                "a queue with this name already exists with other attributes",
            ));
        }
        Err(_) => {
            let mut patch = sqs_defaults();
            patch.lease_ms = asked.lease_ms;
            patch.max_attempts = asked.max_attempts.or(patch.max_attempts);
            cx.broker.update_queue(&full, patch).await?;
        }
    }
    Ok(json!({"QueueUrl": queue_url(cx.base_url, &full)}))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetQueueUrlInput {
    queue_name: Option<String>,
}

/// GetQueueUrl.
pub fn get_url(cx: &Context<'_>, input: GetQueueUrlInput) -> Result<Value, SqsError> {
    let full = full_name(cx, input.queue_name.as_deref())?;
    cx.broker.queue(&full)?;
    Ok(json!({"QueueUrl": queue_url(cx.base_url, &full)}))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListQueuesInput {
    queue_name_prefix: Option<String>,
    max_results: Option<i64>,
    next_token: Option<String>,
}

/// ListQueues: the caller's queues in name order, by prefix of the name it sends; pages of
/// `MaxResults` (1-1000) when it is given, as in SQS.
pub fn list(cx: &Context<'_>, input: ListQueuesInput) -> Result<Value, SqsError> {
    let limit = match input.max_results {
        None => None,
        Some(n) => Some(super::int_in("MaxResults", Some(n), 1..=1000, 1000)? as usize),
    };
    let prefix = input.queue_name_prefix.unwrap_or_default();
    let after = input.next_token.unwrap_or_default();
    let shown = |full: &str| -> String {
        if cx.by.is_operator() {
            full.to_owned()
        } else {
            crate::tenant::split(full).1.to_owned()
        }
    };
    let mut names: Vec<String> = cx
        .broker
        .queues()
        .into_iter()
        .filter(|q| cx.by.owns(&q.name) && cx.by.may_touch(&q.name))
        .map(|q| q.name)
        .filter(|full| {
            let name = shown(full);
            name.starts_with(&prefix) && name > after
        })
        .collect();
    let mut out = serde_json::Map::new();
    if let Some(limit) = limit
        && names.len() > limit
    {
        names.truncate(limit);
        if let Some(last) = names.last() {
            out.insert("NextToken".into(), shown(last).into());
        }
    }
    let urls: Vec<Value> = names
        .iter()
        .map(|full| queue_url(cx.base_url, full).into())
        .collect();
    out.insert("QueueUrls".into(), urls.into());
    Ok(Value::Object(out))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct QueueUrlInput {
    queue_url: Option<String>,
}

/// DeleteQueue: the queue goes at once with every message in it, in flight or not (SQS takes
/// up to 60 seconds); refused while a wharf schedule enqueues into it.
pub async fn delete(cx: &Context<'_>, input: QueueUrlInput) -> Result<Value, SqsError> {
    let full = queue_of_url(cx.by, input.queue_url.as_deref())?;
    cx.broker.delete_queue(&full).await?;
    Ok(json!({}))
}

/// PurgeQueue: deletes every message that is not in flight (wharf's purge: ready, delayed and
/// dead; a leased job is its consumer's until it is acked or its lease ends).
pub async fn purge(cx: &Context<'_>, input: QueueUrlInput) -> Result<Value, SqsError> {
    let full = queue_of_url(cx.by, input.queue_url.as_deref())?;
    cx.broker.purge(&full).await?;
    Ok(json!({}))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetQueueAttributesInput {
    queue_url: Option<String>,
    #[serde(default)]
    attribute_names: Vec<String>,
}

/// The attributes GetQueueAttributes answers, in SQS's names.
pub const QUEUE_ATTRIBUTES: &[&str] = &[
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
    "VisibilityTimeout",
    "MaximumMessageSize",
    "DelaySeconds",
    "ReceiveMessageWaitTimeSeconds",
    "RedrivePolicy",
    "QueueArn",
];

/// GetQueueAttributes: the counts (ready, leased, scheduled) and settings.
pub fn attributes(cx: &Context<'_>, input: GetQueueAttributesInput) -> Result<Value, SqsError> {
    let full = queue_of_url(cx.by, input.queue_url.as_deref())?;
    let queue = cx.broker.queue(&full)?;
    let all = input.attribute_names.iter().any(|n| n == "All");
    for name in &input.attribute_names {
        if name != "All" && !QUEUE_ATTRIBUTES.contains(&name.as_str()) {
            return Err(SqsError::new(
                SqsCode::InvalidAttributeName,
                format!(
                    "unknown or unsupported queue attribute {name}; docs/sqs.md lists those wharf answers"
                ),
            ));
        }
    }
    let count = |state: JobState| queue.counts[state.index()].to_string();
    let (tenant, name) = crate::tenant::split(&full);
    let mut out = serde_json::Map::new();
    for attribute in QUEUE_ATTRIBUTES {
        if !all && !input.attribute_names.iter().any(|n| n == attribute) {
            continue;
        }
        let value = match *attribute {
            "ApproximateNumberOfMessages" => count(JobState::Ready),
            "ApproximateNumberOfMessagesNotVisible" => count(JobState::Leased),
            "ApproximateNumberOfMessagesDelayed" => count(JobState::Scheduled),
            "VisibilityTimeout" => (queue.config.lease_ms / 1000).to_string(),
            "MaximumMessageSize" => cx.broker.limits().max_payload_bytes.to_string(),
            "DelaySeconds" | "ReceiveMessageWaitTimeSeconds" => "0".to_owned(),
            "RedrivePolicy" => json!({"maxReceiveCount": queue.config.max_attempts}).to_string(),
            _ => format!("arn:wharf:sqs:local:{tenant}:{name}"),
        };
        out.insert((*attribute).to_owned(), value.into());
    }
    Ok(json!({"Attributes": out}))
}
