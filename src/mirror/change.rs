//! What a mirror applies: the change-log events it reads, as row changes, and the rows of a
//! snapshot. Events arrive as their public JSON (the same text every reader gets); payloads,
//! results and headers stay JSON text throughout, so nothing is lost on the way.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::broker::{JobView, QueueConfig};
use crate::clock::{Millis, parse_rfc3339};

/// A job row as mirrors store it (the states the API uses).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRow {
    pub id: u64,
    pub queue: String,
    pub state: &'static str,
    pub priority: u8,
    pub attempts: u32,
    pub max_attempts: u32,
    /// JSON text.
    pub payload: String,
    /// JSON text: an object of strings.
    pub headers: String,
    /// JSON text.
    pub result: Option<String>,
    pub last_error: Option<String>,
    pub run_at: Option<Millis>,
    pub enqueued_at: Millis,
    pub updated_at: Millis,
    pub finished_at: Option<Millis>,
    /// Its fairness group, if any.
    pub group: Option<String>,
}

/// What changes in an existing job row; `None` keeps a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobPatch {
    pub state: Option<&'static str>,
    pub attempts: Option<u32>,
    pub last_error: Option<String>,
    /// JSON text.
    pub result: Option<String>,
    pub run_at: Option<Millis>,
    /// `Some(None)` clears it (a replay).
    pub finished_at: Option<Option<Millis>>,
    pub updated_at: Millis,
}

/// A queue row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueRow {
    pub name: String,
    pub paused: bool,
    /// JSON text, the shape of the queue API.
    pub settings: String,
    pub updated_at: Millis,
}

/// A `message` event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageRow {
    pub seq: u64,
    pub topic: String,
    pub key: Option<String>,
    /// JSON text.
    pub payload: String,
    /// JSON text: an object of strings.
    pub headers: String,
    pub at: Millis,
}

/// An `audit` event: one record of the audit trail, in the shape of `GET /v1/audit`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct AuditRow {
    pub seq: u64,
    #[serde(skip)]
    pub at: Millis,
    pub tenant: String,
    pub by: AuditBy,
    pub action: String,
    pub target: Option<String>,
    pub status: u16,
    pub outcome: String,
    pub error: Option<String>,
}

/// Who made an audited request.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct AuditBy {
    pub key_id: Option<String>,
    pub tenant: String,
    pub peer: Option<String>,
}

/// An audit record as a row (for a snapshot: through its JSON, as its event carries it).
pub fn audit_row(seq: u64, record: &crate::storage::AuditRecord) -> Result<AuditRow, ParseError> {
    let mut row: AuditRow =
        serde_json::from_str(&crate::broker::audit_json(seq, record)).map_err(bad)?;
    row.at = record.at;
    Ok(row)
}

/// One row change, from one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A job was enqueued.
    InsertJob(JobRow),
    /// A job changed.
    PatchJob { id: u64, patch: JobPatch },
    /// A job was deleted (purge, retention).
    DeleteJob { id: u64 },
    /// A queue was created or its settings changed.
    PutQueue(QueueRow),
    /// A queue was paused or resumed.
    PauseQueue {
        name: String,
        paused: bool,
        at: Millis,
    },
    /// A queue was deleted (its jobs each had their own `DeleteJob` before).
    DeleteQueue { name: String },
    /// A client's message.
    Message(MessageRow),
    /// An audit record (appended, never changed).
    Audit(AuditRow),
    /// Nothing a mirror keeps (schedules, a purge's summary, a lease extension).
    Nothing,
}

/// An event as it arrives.
#[derive(Deserialize)]
struct Wire<'a> {
    seq: u64,
    #[serde(borrow)]
    at: &'a str,
    #[serde(rename = "type", borrow)]
    kind: &'a str,
    /// Absent in nothing the broker writes today; the default tenant's then.
    #[serde(default)]
    tenant: Option<String>,
    queue: Option<String>,
    job_id: Option<String>,
    #[serde(borrow)]
    data: &'a RawValue,
}

/// Why an event could not be read as a change (a bug: the broker wrote it).
#[derive(Debug, thiserror::Error)]
#[error("event does not parse as a change: {0}")]
pub struct ParseError(String);

fn bad(what: impl std::fmt::Display) -> ParseError {
    ParseError(what.to_string())
}

fn time(text: &str) -> Result<Millis, ParseError> {
    parse_rfc3339(text).ok_or_else(|| bad(format!("bad time {text:?}")))
}

fn opt_time(text: Option<&str>) -> Result<Option<Millis>, ParseError> {
    text.map(time).transpose()
}

#[derive(Deserialize)]
struct Enqueued<'a> {
    #[serde(borrow)]
    payload: &'a RawValue,
    priority: u8,
    #[serde(borrow)]
    headers: &'a RawValue,
    #[serde(borrow)]
    run_at: &'a str,
    max_attempts: u32,
    /// Absent in events of versions before job groups.
    #[serde(default)]
    group: Option<String>,
}

#[derive(Deserialize)]
struct Attempt<'a> {
    attempt: u32,
    error: Option<String>,
    #[serde(borrow)]
    run_at: Option<&'a str>,
    #[serde(borrow)]
    result: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct Settings<'a> {
    #[serde(borrow)]
    settings: &'a RawValue,
}

#[derive(Deserialize)]
struct Paused {
    paused: bool,
}

#[derive(Deserialize)]
struct Message<'a> {
    topic: String,
    key: Option<String>,
    #[serde(borrow)]
    payload: &'a RawValue,
    #[serde(borrow)]
    headers: &'a RawValue,
}

/// An event's seq and its change.
pub fn parse(json: &str) -> Result<(u64, Change), ParseError> {
    let w: Wire<'_> = serde_json::from_str(json).map_err(bad)?;
    let at = time(w.at)?;
    let data = w.data.get();
    let id = || {
        w.job_id
            .as_deref()
            .and_then(|id| id.parse::<u64>().ok())
            .ok_or_else(|| bad(format!("{} without a job id", w.kind)))
    };
    // Rows keep full names (`acme:emails`), as the broker does: unique across tenants.
    let tenant = w.tenant.as_deref().unwrap_or(crate::tenant::DEFAULT_TENANT);
    let queue = || {
        w.queue
            .as_deref()
            .map(|q| crate::tenant::full_name(tenant, q))
            .ok_or_else(|| bad(format!("{} without a queue", w.kind)))
    };
    let patch = |patch: JobPatch| -> Result<Change, ParseError> {
        Ok(Change::PatchJob { id: id()?, patch })
    };
    let attempt = || serde_json::from_str::<Attempt<'_>>(data).map_err(bad);
    let change = match w.kind {
        "job.enqueued" => {
            let e: Enqueued<'_> = serde_json::from_str(data).map_err(bad)?;
            let run_at = time(e.run_at)?;
            Change::InsertJob(JobRow {
                id: id()?,
                queue: queue()?,
                state: if run_at > at { "scheduled" } else { "ready" },
                priority: e.priority,
                attempts: 0,
                max_attempts: e.max_attempts,
                payload: e.payload.get().to_owned(),
                headers: e.headers.get().to_owned(),
                result: None,
                last_error: None,
                run_at: Some(run_at),
                enqueued_at: at,
                updated_at: at,
                finished_at: None,
                group: e.group,
            })
        }
        "job.leased" => patch(JobPatch {
            state: Some("leased"),
            attempts: Some(attempt()?.attempt),
            updated_at: at,
            ..JobPatch::default()
        })?,
        "job.extended" | "job.lease_expired" => patch(JobPatch {
            updated_at: at,
            ..JobPatch::default()
        })?,
        "job.retry_scheduled" => {
            let a = attempt()?;
            let run_at = opt_time(a.run_at)?;
            patch(JobPatch {
                state: Some(if run_at.is_some_and(|r| r > at) {
                    "scheduled"
                } else {
                    "ready"
                }),
                attempts: Some(a.attempt),
                last_error: a.error,
                run_at,
                updated_at: at,
                ..JobPatch::default()
            })?
        }
        "job.succeeded" => {
            let a = attempt()?;
            patch(JobPatch {
                state: Some("succeeded"),
                result: a.result.map(|r| r.get().to_owned()).filter(|r| r != "null"),
                finished_at: Some(Some(at)),
                updated_at: at,
                ..JobPatch::default()
            })?
        }
        "job.dead" => patch(JobPatch {
            state: Some("dead"),
            last_error: attempt()?.error,
            finished_at: Some(Some(at)),
            updated_at: at,
            ..JobPatch::default()
        })?,
        "job.cancelled" => patch(JobPatch {
            state: Some("cancelled"),
            finished_at: Some(Some(at)),
            updated_at: at,
            ..JobPatch::default()
        })?,
        "job.replayed" => patch(JobPatch {
            state: Some("ready"),
            attempts: Some(0),
            run_at: Some(at),
            finished_at: Some(None),
            updated_at: at,
            ..JobPatch::default()
        })?,
        "job.deleted" => Change::DeleteJob { id: id()? },
        "queue.created" | "queue.updated" => {
            let s: Settings<'_> = serde_json::from_str(data).map_err(bad)?;
            let paused: Paused = serde_json::from_str(s.settings.get()).map_err(bad)?;
            Change::PutQueue(QueueRow {
                name: queue()?,
                paused: paused.paused,
                settings: s.settings.get().to_owned(),
                updated_at: at,
            })
        }
        "queue.deleted" => Change::DeleteQueue { name: queue()? },
        "queue.paused" | "queue.resumed" => Change::PauseQueue {
            name: queue()?,
            paused: w.kind == "queue.paused",
            at,
        },
        "message" => {
            let m: Message<'_> = serde_json::from_str(data).map_err(bad)?;
            Change::Message(MessageRow {
                seq: w.seq,
                topic: m.topic,
                key: m.key,
                payload: m.payload.get().to_owned(),
                headers: m.headers.get().to_owned(),
                at,
            })
        }
        "audit" => {
            let mut row: AuditRow = serde_json::from_str(data).map_err(bad)?;
            row.at = at;
            Change::Audit(row)
        }
        _ => Change::Nothing,
    };
    Ok((w.seq, change))
}

/// A snapshot's job as a row.
pub fn job_row(job: JobView) -> JobRow {
    let headers: BTreeMap<String, String> = job.headers.into_iter().collect();
    JobRow {
        id: job.id.0,
        queue: job.queue,
        state: job.state.as_str(),
        priority: job.priority,
        attempts: job.attempts,
        max_attempts: job.max_attempts,
        payload: job.payload,
        headers: serde_json::to_string(&headers).unwrap_or_else(|_| "{}".into()),
        result: job.result,
        last_error: job.last_error,
        run_at: job.run_at,
        enqueued_at: job.enqueued_at,
        updated_at: job.updated_at,
        finished_at: job.finished_at,
        group: job.group,
    }
}

/// A snapshot's queue as a row.
pub fn queue_row(name: String, config: QueueConfig, at: Millis) -> QueueRow {
    QueueRow {
        name,
        paused: config.paused,
        settings: serde_json::to_string(&config).unwrap_or_else(|_| "{}".into()),
        updated_at: at,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn events_become_row_changes_with_json_kept_as_text() {
        let json = r#"{"seq":3,"at":"2026-01-01T00:00:00.000Z","type":"job.enqueued","queue":"q","job_id":"7","data":{"payload":{"big":123456789012345678901234567890},"priority":192,"headers":{"h":"v"},"run_at":"2026-01-01T00:00:01.000Z","max_attempts":5,"lease_ms":null}}"#;
        let (seq, change) = parse(json).unwrap();
        assert_eq!(seq, 3);
        let Change::InsertJob(row) = change else {
            panic!("{change:?}");
        };
        assert_eq!(row.payload, r#"{"big":123456789012345678901234567890}"#);
        assert_eq!((row.id, row.state, row.priority), (7, "scheduled", 192));
        let dead = r#"{"seq":4,"at":"2026-01-01T00:00:02.000Z","type":"job.dead","queue":"q","job_id":"7","data":{"attempt":5,"error":"boom"}}"#;
        let (_, change) = parse(dead).unwrap();
        assert_eq!(
            change,
            Change::PatchJob {
                id: 7,
                patch: JobPatch {
                    state: Some("dead"),
                    last_error: Some("boom".into()),
                    finished_at: Some(Some(1_767_225_602_000)),
                    updated_at: 1_767_225_602_000,
                    ..JobPatch::default()
                }
            }
        );
        let schedule = r#"{"seq":5,"at":"2026-01-01T00:00:02.000Z","type":"schedule.deleted","queue":"q","job_id":null,"data":{"name":"s"}}"#;
        assert_eq!(parse(schedule).unwrap().1, Change::Nothing);
        assert!(parse("{}").is_err());
    }
}
