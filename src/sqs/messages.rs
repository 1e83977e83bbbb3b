//! The message actions: SendMessage(Batch), ReceiveMessage, DeleteMessage(Batch),
//! ChangeMessageVisibility.

use std::collections::HashSet;

use serde::Deserialize;
use serde_json::{Value, json};

use super::attributes::{self, Attributes};
use super::error::{SqsCode, SqsError};
use super::{Context, int_in, queue_of_url};
use crate::broker::limits::MAX_LEASE_MS;
use crate::broker::{AckItem, BrokerError, Delivery, NackRequest, NewJob, PollRequest, RunAt};
use crate::job::{JobId, LeaseToken};

/// Most entries of a batch, and most messages of a receive (SQS's limits).
pub const MAX_BATCH: usize = 10;

/// The longest DelaySeconds (15 minutes, as in SQS).
const MAX_DELAY_SECONDS: i64 = 900;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SendMessageInput {
    queue_url: Option<String>,
    #[serde(flatten)]
    message: MessageInput,
}

/// One message to send (alone or in a batch).
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MessageInput {
    message_body: Option<String>,
    delay_seconds: Option<i64>,
    #[serde(default)]
    message_attributes: Attributes,
    /// A fair-queue group (SQS's fair queues): wharf's job group.
    message_group_id: Option<String>,
    /// Kept as the job's idempotency key.
    message_deduplication_id: Option<String>,
}

/// A checked message: the job, and the digests its reply carries.
struct Prepared {
    job: NewJob,
    md5_of_body: String,
    md5_of_attributes: Option<String>,
}

/// SQS's characters of a body: tab, newline, carriage return, and U+0020 and up except the
/// surrogates (which a Rust string cannot hold) and U+FFFE/U+FFFF.
fn valid_body(body: &str) -> bool {
    body.chars().all(|c| {
        matches!(c, '\t' | '\n' | '\r') || (c >= ' ' && c != '\u{FFFE}' && c != '\u{FFFF}')
    })
}

fn prepare(message: MessageInput) -> Result<Prepared, SqsError> {
    let body = message
        .message_body
        .ok_or_else(|| SqsError::missing("MessageBody"))?;
    if body.is_empty() {
        return Err(SqsError::invalid("MessageBody must not be empty"));
    }
    if !valid_body(&body) {
        return Err(SqsError::new(
            SqsCode::InvalidMessageContents,
            "MessageBody holds characters outside those SQS allows (#x9, #xA, #xD, #x20 and up, not #xFFFE or #xFFFF)",
        ));
    }
    let delay = int_in(
        "DelaySeconds",
        message.delay_seconds,
        0..=MAX_DELAY_SECONDS,
        0,
    )?;
    let headers = attributes::to_headers(&message.message_attributes)?;
    let mut job =
        NewJob::new(serde_json::to_string(&body).map_err(|_| SqsError::invalid("MessageBody"))?);
    job.run_at = (delay > 0).then_some(RunAt::After(delay * 1000));
    job.headers = headers;
    job.group = message.message_group_id;
    job.idempotency_key = message.message_deduplication_id;
    Ok(Prepared {
        md5_of_body: attributes::md5_hex(body.as_bytes()),
        md5_of_attributes: attributes::md5_of_attributes(&message.message_attributes),
        job,
    })
}

/// The queue of a URL, which must exist (wharf's own enqueue would create it).
fn existing_queue(cx: &Context<'_>, url: Option<&str>) -> Result<String, SqsError> {
    let full = queue_of_url(cx.by, url)?;
    cx.broker.queue(&full)?;
    Ok(full)
}

/// SendMessage.
pub async fn send(cx: &Context<'_>, input: SendMessageInput) -> Result<Value, SqsError> {
    let full = existing_queue(cx, input.queue_url.as_deref())?;
    let prepared = prepare(input.message)?;
    let mut enqueued = cx
        .broker
        .enqueue(&full, vec![prepared.job])
        .await
        .map_err(unwrap_item)?;
    let id = enqueued.pop().map(|e| e.id).ok_or_else(internal)?;
    let mut out = json!({"MessageId": id.to_string(), "MD5OfMessageBody": prepared.md5_of_body});
    if let Some(md5) = prepared.md5_of_attributes {
        out["MD5OfMessageAttributes"] = md5.into();
    }
    Ok(out)
}

/// A batch item's error as the request's own (the batch held one item).
fn unwrap_item(error: BrokerError) -> SqsError {
    match error {
        BrokerError::InvalidItem { error, .. } => BrokerError::Invalid(error).into(),
        other => other.into(),
    }
}

fn internal() -> SqsError {
    SqsError::new(SqsCode::InternalFailure, "the broker returned no outcome")
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SendMessageBatchInput {
    queue_url: Option<String>,
    entries: Option<Vec<SendEntry>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SendEntry {
    id: String,
    #[serde(flatten)]
    message: MessageInput,
}

/// Checks a batch's entry ids: 1 to 10 entries, ids of `[A-Za-z0-9_-]{1,80}`, all distinct.
fn check_entry_ids<'a>(ids: impl ExactSizeIterator<Item = &'a str>) -> Result<(), SqsError> {
    if ids.len() == 0 {
        return Err(SqsError::new(
            SqsCode::EmptyBatchRequest,
            "the batch must hold at least one entry",
        ));
    }
    if ids.len() > MAX_BATCH {
        return Err(SqsError::new(
            SqsCode::TooManyEntriesInBatchRequest,
            format!("a batch holds at most {MAX_BATCH} entries"),
        ));
    }
    let mut seen = HashSet::new();
    for id in ids {
        let valid = (1..=80).contains(&id.len())
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !valid {
            return Err(SqsError::new(
                SqsCode::InvalidBatchEntryId,
                format!(
                    "batch entry id {id:?} must be 1-80 characters of A-Z, a-z, 0-9, '-' and '_'"
                ),
            ));
        }
        if !seen.insert(id) {
            return Err(SqsError::new(
                SqsCode::BatchEntryIdsNotDistinct,
                format!("two entries of the batch have the id {id:?}"),
            ));
        }
    }
    Ok(())
}

/// A `Failed` entry of a batch reply.
fn failed(id: &str, error: &SqsError) -> Value {
    json!({
        "Id": id,
        "SenderFault": error.code.status().is_client_error(),
        "Code": error.code.query_code(),
        "Message": error.message,
    })
}

/// SendMessageBatch: the entries that pass their checks are enqueued together, in one durable
/// write; each other one is `Failed` with its reason.
pub async fn send_batch(cx: &Context<'_>, input: SendMessageBatchInput) -> Result<Value, SqsError> {
    let full = existing_queue(cx, input.queue_url.as_deref())?;
    let entries = input.entries.unwrap_or_default();
    check_entry_ids(entries.iter().map(|e| e.id.as_str()))?;
    let mut failures = Vec::new();
    let mut ready = Vec::new();
    for entry in entries {
        match prepare(entry.message) {
            Ok(prepared) => ready.push((entry.id, prepared)),
            Err(error) => failures.push(failed(&entry.id, &error)),
        }
    }
    let mut successes = Vec::new();
    if !ready.is_empty() {
        let jobs = ready.iter().map(|(_, p)| p.job.clone()).collect();
        match cx.broker.enqueue(&full, jobs).await {
            Ok(enqueued) => {
                for ((id, prepared), outcome) in ready.into_iter().zip(enqueued) {
                    let mut ok = json!({
                        "Id": id,
                        "MessageId": outcome.id.to_string(),
                        "MD5OfMessageBody": prepared.md5_of_body,
                    });
                    if let Some(md5) = prepared.md5_of_attributes {
                        ok["MD5OfMessageAttributes"] = md5.into();
                    }
                    successes.push(ok);
                }
            }
            // One entry the broker refuses (over a limit) fails that entry; the write as a
            // whole is all or nothing, so the others are refused with it.
            Err(BrokerError::InvalidItem { index, error }) => {
                let refused: SqsError = BrokerError::Invalid(error).into();
                for (i, (id, _)) in ready.iter().enumerate() {
                    let why = if i == index {
                        refused.clone()
                    } else {
                        SqsError::invalid(format!(
                            "not sent: entry {:?} of the same batch was refused",
                            ready[index].0
                        ))
                    };
                    failures.push(failed(id, &why));
                }
            }
            Err(other) => return Err(other.into()),
        }
    }
    Ok(json!({"Successful": successes, "Failed": failures}))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ReceiveMessageInput {
    queue_url: Option<String>,
    max_number_of_messages: Option<i64>,
    visibility_timeout: Option<i64>,
    wait_time_seconds: Option<i64>,
    #[serde(default)]
    attribute_names: Vec<String>,
    #[serde(default)]
    message_system_attribute_names: Vec<String>,
    #[serde(default)]
    message_attribute_names: Vec<String>,
}

/// The system attributes a receive can answer.
const SYSTEM_ATTRIBUTES: &[&str] = &["ApproximateReceiveCount", "SentTimestamp", "MessageGroupId"];

/// ReceiveMessage: a poll, with SQS's bounds (at most 10 messages, waits of at most 20 s).
pub async fn receive(cx: &Context<'_>, input: ReceiveMessageInput) -> Result<Value, SqsError> {
    let full = existing_queue(cx, input.queue_url.as_deref())?;
    let max = int_in(
        "MaxNumberOfMessages",
        input.max_number_of_messages,
        1..=10,
        1,
    )?;
    let wait = int_in("WaitTimeSeconds", input.wait_time_seconds, 0..=20, 0)?;
    let most = i64::try_from(MAX_LEASE_MS / 1000).unwrap_or(i64::MAX);
    let lease_ms = match input.visibility_timeout {
        None => None,
        // A timeout of 0 makes the message visible again at once: the shortest lease.
        Some(seconds) => {
            Some((int_in("VisibilityTimeout", Some(seconds), 0..=most, 0)? * 1000).max(1))
        }
    };
    let request = PollRequest {
        max: usize::try_from(max).unwrap_or(1),
        wait_ms: wait * 1000,
        lease_ms,
    };
    let deliveries = cx.broker.poll(&full, request).await?;
    let wanted: Vec<&str> = input
        .attribute_names
        .iter()
        .chain(&input.message_system_attribute_names)
        .map(String::as_str)
        .collect();
    let messages: Vec<Value> = deliveries
        .into_iter()
        .map(|d| message(d, &wanted, &input.message_attribute_names))
        .collect();
    Ok(json!({"Messages": messages}))
}

/// A delivery as an SQS message.
fn message(delivery: Delivery, wanted: &[&str], attribute_names: &[String]) -> Value {
    // A payload that is a JSON string (every message sent over SQS) is that string; any other
    // payload (from wharf's own API) is its JSON text.
    let body = match serde_json::from_str::<Value>(&delivery.payload) {
        Ok(Value::String(text)) => text,
        _ => delivery.payload,
    };
    let handle = format!("{}.{}", delivery.id, delivery.lease);
    let mut system = serde_json::Map::new();
    let all = wanted.contains(&"All");
    for name in SYSTEM_ATTRIBUTES {
        if !all && !wanted.contains(name) {
            continue;
        }
        let value = match *name {
            "ApproximateReceiveCount" => Some(delivery.attempt.to_string()),
            "SentTimestamp" => Some(delivery.enqueued_at.to_string()),
            _ => delivery.group.clone(),
        };
        if let Some(value) = value {
            system.insert((*name).to_owned(), value.into());
        }
    }
    let attributes =
        attributes::select(attributes::from_headers(&delivery.headers), attribute_names);
    let mut out = json!({
        "MessageId": delivery.id.to_string(),
        "ReceiptHandle": handle,
        "MD5OfBody": attributes::md5_hex(body.as_bytes()),
        "Body": body,
    });
    if !system.is_empty() {
        out["Attributes"] = Value::Object(system);
    }
    if let Some(md5) = attributes::md5_of_attributes(&attributes) {
        out["MD5OfMessageAttributes"] = md5.into();
        out["MessageAttributes"] = json!(attributes);
    }
    out
}

/// The job and lease a receipt handle names (`<job id>.<lease token>`).
fn parse_handle(handle: Option<&str>) -> Result<(JobId, LeaseToken), SqsError> {
    let handle = handle.ok_or_else(|| SqsError::missing("ReceiptHandle"))?;
    let (id, lease) = handle
        .split_once('.')
        .ok_or_else(|| SqsError::bad_receipt("it is not one wharf gave"))?;
    let id: JobId = id
        .parse()
        .map_err(|_| SqsError::bad_receipt("it is not one wharf gave"))?;
    let lease: LeaseToken = lease
        .parse()
        .map_err(|_| SqsError::bad_receipt("it is not one wharf gave"))?;
    Ok((id, lease))
}

/// The job of a receipt handle, which must be in `queue` (a handle of another queue is not a
/// handle of this one, whatever the caller may touch).
async fn handle_of(
    cx: &Context<'_>,
    queue: &str,
    handle: Option<&str>,
) -> Result<(JobId, LeaseToken), SqsError> {
    let (id, lease) = parse_handle(handle)?;
    match cx.broker.job_queue(id).await {
        Ok(q) if &*q == queue => Ok((id, lease)),
        Ok(_) | Err(BrokerError::JobNotFound) => {
            Err(SqsError::bad_receipt("no message of this queue has it"))
        }
        Err(other) => Err(other.into()),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteMessageInput {
    queue_url: Option<String>,
    receipt_handle: Option<String>,
}

/// One delete: an ack of the delivery the handle names. A message already deleted (acked)
/// deletes again without error, as in SQS, so a retried delete succeeds.
async fn delete_one(cx: &Context<'_>, queue: &str, handle: Option<&str>) -> Result<(), SqsError> {
    let (id, lease) = handle_of(cx, queue, handle).await?;
    match cx.broker.ack(AckItem::new(id, lease)).await {
        Ok(_) | Err(BrokerError::NotLeased { state: "succeeded" }) => Ok(()),
        Err(other) => Err(other.into()),
    }
}

/// DeleteMessage.
pub async fn delete(cx: &Context<'_>, input: DeleteMessageInput) -> Result<Value, SqsError> {
    let full = existing_queue(cx, input.queue_url.as_deref())?;
    delete_one(cx, &full, input.receipt_handle.as_deref()).await?;
    Ok(json!({}))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteMessageBatchInput {
    queue_url: Option<String>,
    entries: Option<Vec<DeleteEntry>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteEntry {
    id: String,
    receipt_handle: Option<String>,
}

/// DeleteMessageBatch: each entry on its own.
pub async fn delete_batch(
    cx: &Context<'_>,
    input: DeleteMessageBatchInput,
) -> Result<Value, SqsError> {
    let full = existing_queue(cx, input.queue_url.as_deref())?;
    let entries = input.entries.unwrap_or_default();
    check_entry_ids(entries.iter().map(|e| e.id.as_str()))?;
    let (mut successes, mut failures) = (Vec::new(), Vec::new());
    for entry in entries {
        match delete_one(cx, &full, entry.receipt_handle.as_deref()).await {
            Ok(()) => successes.push(json!({"Id": entry.id})),
            Err(error) if error.code == SqsCode::ServiceUnavailable => return Err(error),
            Err(error) => failures.push(failed(&entry.id, &error)),
        }
    }
    Ok(json!({"Successful": successes, "Failed": failures}))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ChangeVisibilityInput {
    queue_url: Option<String>,
    receipt_handle: Option<String>,
    visibility_timeout: Option<i64>,
}

/// ChangeMessageVisibility: extends the lease to now + the timeout; a timeout of 0 gives the
/// message back at once (a nack with no delay, which counts as a failed delivery).
pub async fn change_visibility(
    cx: &Context<'_>,
    input: ChangeVisibilityInput,
) -> Result<Value, SqsError> {
    let full = existing_queue(cx, input.queue_url.as_deref())?;
    let most = i64::try_from(MAX_LEASE_MS / 1000).unwrap_or(i64::MAX);
    let seconds = input
        .visibility_timeout
        .ok_or_else(|| SqsError::missing("VisibilityTimeout"))?;
    let seconds = int_in("VisibilityTimeout", Some(seconds), 0..=most, 0)?;
    let (id, lease) = handle_of(cx, &full, input.receipt_handle.as_deref()).await?;
    let changed = if seconds == 0 {
        let request = NackRequest {
            error: Some("given back by ChangeMessageVisibility with VisibilityTimeout 0".into()),
            delay_ms: Some(0),
            ..NackRequest::default()
        };
        cx.broker.nack(id, lease, request).await.map(|_| ())
    } else {
        cx.broker
            .extend(id, lease, seconds * 1000)
            .await
            .map(|_| ())
    };
    changed.map_err(|error| match error {
        BrokerError::NotLeased { .. } | BrokerError::LeaseExpired => SqsError::new(
            SqsCode::MessageNotInflight,
            "the message is not in flight (its visibility timeout ended, or it was deleted)",
        ),
        other => other.into(),
    })?;
    Ok(json!({}))
}
