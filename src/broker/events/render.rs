//! Events as JSON, the one form every reader gets (the HTTP API, the event stream, the
//! mirrors): `{"seq", "at", "type", "tenant", "queue", "job_id", "data"}`. Queue and schedule
//! names are shown within their tenant (see [`crate::tenant`]), `tenant` beside them.
//!
//! Written by hand rather than through a `serde_json::Value`: payloads and results are stored
//! as the JSON text the client sent (validated then), so they are copied in as they are instead
//! of being parsed into a tree and printed again.

use std::collections::BTreeMap;

use crate::clock::{Millis, rfc3339};
use crate::tenant::{self, split};

/// A full name's part within its tenant.
fn plain(full: &str) -> &str {
    split(full).1
}
use crate::storage::{
    AuditRecord, DeleteReason, EventData, EventRecord, QueueRecord, ScheduleRecord,
};

/// The type name of an event, as the API spells it.
pub fn type_name(data: &EventData) -> &'static str {
    match data {
        EventData::JobEnqueued { .. } => "job.enqueued",
        EventData::JobLeased { .. } => "job.leased",
        EventData::JobExtended { .. } => "job.extended",
        EventData::JobLeaseExpired { .. } => "job.lease_expired",
        EventData::JobRetryScheduled { .. } => "job.retry_scheduled",
        EventData::JobSucceeded { .. } => "job.succeeded",
        EventData::JobDead { .. } => "job.dead",
        EventData::JobCancelled => "job.cancelled",
        EventData::JobReplayed => "job.replayed",
        EventData::JobDeleted { .. } => "job.deleted",
        EventData::QueueCreated { .. } => "queue.created",
        EventData::QueueUpdated { .. } => "queue.updated",
        EventData::QueuePaused => "queue.paused",
        EventData::QueueResumed => "queue.resumed",
        EventData::QueuePurged { .. } => "queue.purged",
        EventData::QueueDeleted { .. } => "queue.deleted",
        EventData::SchedulePut { .. } => "schedule.put",
        EventData::ScheduleDeleted { .. } => "schedule.deleted",
        EventData::SchedulePaused { .. } => "schedule.paused",
        EventData::ScheduleResumed { .. } => "schedule.resumed",
        EventData::ScheduleFired { .. } => "schedule.fired",
        EventData::Message { .. } => "message",
        EventData::Audit { .. } => "audit",
    }
}

/// Every type an event can have (for filters, and the docs' table).
pub const TYPES: [&str; 23] = [
    "job.enqueued",
    "job.leased",
    "job.extended",
    "job.lease_expired",
    "job.retry_scheduled",
    "job.succeeded",
    "job.dead",
    "job.cancelled",
    "job.replayed",
    "job.deleted",
    "queue.created",
    "queue.updated",
    "queue.paused",
    "queue.resumed",
    "queue.purged",
    "queue.deleted",
    "schedule.put",
    "schedule.deleted",
    "schedule.paused",
    "schedule.resumed",
    "schedule.fired",
    "message",
    "audit",
];

/// The tenant of an event: its queue's (a schedule event's: its target queue's), or, for an
/// outbox message, the one its `wharf-tenant` header names (none: the default tenant); for an
/// audit record, the tenant it concerns.
pub fn tenant(event: &EventRecord) -> &str {
    match (&event.queue, &event.data) {
        (Some(queue), _) => tenant::tenant_of(queue),
        (None, EventData::Audit { record, .. }) => &record.tenant,
        (None, EventData::Message { headers, .. }) => headers
            .iter()
            .find(|(name, _)| name == tenant::MESSAGE_HEADER)
            .map_or(tenant::DEFAULT_TENANT, |(_, value)| value),
        (None, _) => tenant::DEFAULT_TENANT,
    }
}

/// The JSON text of event `seq`.
pub fn render(seq: u64, event: &EventRecord) -> String {
    let mut o = Object::new();
    o.u64("seq", seq);
    o.time("at", event.at);
    o.str("type", type_name(&event.data));
    o.str("tenant", tenant(event));
    o.opt_str("queue", event.queue.as_deref().map(plain));
    match event.job_id {
        Some(id) => o.str("job_id", &id.to_string()),
        None => o.null("job_id"),
    }
    o.key("data");
    data(&mut o.out, &event.data);
    o.finish()
}

fn data(out: &mut String, data: &EventData) {
    let mut o = Object::new();
    match data {
        EventData::JobEnqueued {
            payload,
            priority,
            headers,
            run_at,
            max_attempts,
            lease_ms,
            group,
        } => {
            o.raw("payload", payload);
            o.u64("priority", u64::from(*priority));
            o.headers("headers", headers);
            o.time("run_at", *run_at);
            o.u64("max_attempts", u64::from(*max_attempts));
            o.opt_u64("lease_ms", *lease_ms);
            o.opt_str("group", group.as_deref());
        }
        EventData::JobLeased {
            attempt,
            lease_expires_at,
        }
        | EventData::JobExtended {
            attempt,
            lease_expires_at,
        } => {
            o.u64("attempt", u64::from(*attempt));
            o.time("lease_expires_at", *lease_expires_at);
        }
        EventData::JobLeaseExpired { attempt } => o.u64("attempt", u64::from(*attempt)),
        EventData::JobRetryScheduled {
            attempt,
            error,
            run_at,
        } => {
            o.u64("attempt", u64::from(*attempt));
            o.opt_str("error", error.as_deref());
            o.time("run_at", *run_at);
        }
        EventData::JobSucceeded { attempt, result } => {
            o.u64("attempt", u64::from(*attempt));
            match result {
                Some(result) => o.raw("result", result),
                None => o.null("result"),
            }
        }
        EventData::JobDead { attempt, error } => {
            o.u64("attempt", u64::from(*attempt));
            o.opt_str("error", error.as_deref());
        }
        EventData::JobCancelled
        | EventData::JobReplayed
        | EventData::QueuePaused
        | EventData::QueueResumed => {}
        EventData::JobDeleted { reason } => o.str(
            "reason",
            match reason {
                DeleteReason::Purge => "purge",
                DeleteReason::Retention => "retention",
                DeleteReason::QueueDeleted => "queue_deleted",
            },
        ),
        EventData::QueueCreated { settings } | EventData::QueueUpdated { settings } => {
            o.key("settings");
            queue_settings(&mut o.out, settings);
        }
        EventData::QueuePurged { jobs } | EventData::QueueDeleted { jobs } => o.u64("jobs", *jobs),
        EventData::SchedulePut { name, schedule: s } => {
            o.str("name", plain(name));
            schedule(&mut o, s);
        }
        EventData::ScheduleDeleted { name }
        | EventData::SchedulePaused { name }
        | EventData::ScheduleResumed { name } => o.str("name", plain(name)),
        EventData::ScheduleFired { name, due_at } => {
            o.str("name", plain(name));
            o.time("due_at", *due_at);
        }
        EventData::Message {
            topic,
            key,
            payload,
            headers,
        } => {
            o.str("topic", topic);
            o.opt_str("key", key.as_deref());
            o.raw("payload", payload);
            o.headers("headers", headers);
        }
        EventData::Audit { seq, record } => audit_fields(&mut o, *seq, record),
    }
    out.push_str(&o.finish());
}

/// The JSON text of audit record `seq`: the shape of `GET /v1/audit`'s entries and of the
/// `audit` event's data.
pub fn audit(seq: u64, record: &AuditRecord) -> String {
    let mut o = Object::new();
    audit_fields(&mut o, seq, record);
    o.finish()
}

fn audit_fields(o: &mut Object, seq: u64, r: &AuditRecord) {
    o.u64("seq", seq);
    o.time("at", r.at);
    o.str("tenant", &r.tenant);
    o.key("by");
    let mut by = Object::new();
    by.opt_str("key_id", r.key_id.as_deref());
    by.str("tenant", &r.key_tenant);
    by.opt_str("peer", r.peer.as_deref());
    o.out.push_str(&by.finish());
    o.str("action", &r.action);
    o.opt_str("target", r.target.as_deref().map(plain));
    o.u64("status", u64::from(r.status));
    let outcome = match r.status {
        ..400 => "ok",
        400..500 => "refused",
        _ => "failed",
    };
    o.str("outcome", outcome);
    o.opt_str("error", r.error.as_deref());
}

/// A queue's settings in the shape of the queue API.
fn queue_settings(out: &mut String, r: &QueueRecord) {
    let mut o = Object::new();
    o.u64("lease_ms", r.lease_ms);
    o.u64("max_attempts", u64::from(r.max_attempts));
    o.key("backoff");
    let mut b = Object::new();
    b.u64("base_ms", r.backoff_base_ms);
    b.u64("cap_ms", r.backoff_cap_ms);
    b.bool("jitter", r.backoff_jitter);
    o.out.push_str(&b.finish());
    o.bool("paused", r.paused);
    o.u64("retention_ms", r.retention_ms);
    o.u64("dead_retention_ms", r.dead_retention_ms);
    o.u64("idempotency_window_ms", r.idempotency_window_ms);
    match r.max_depth {
        Some(depth) => o.u64("max_depth", depth),
        None => o.raw("max_depth", "null"),
    }
    match r.group_max_in_flight {
        Some(n) => o.u64("group_max_in_flight", u64::from(n)),
        None => o.raw("group_max_in_flight", "null"),
    }
    o.key("group_weights");
    let mut w = Object::new();
    for (group, weight) in &r.group_weights {
        w.u64(group, u64::from(*weight));
    }
    o.out.push_str(&w.finish());
    out.push_str(&o.finish());
}

/// A schedule's fields in the shape of the schedule API (after its name).
fn schedule(o: &mut Object, s: &ScheduleRecord) {
    o.str("cron", &s.cron);
    o.str("timezone", &s.zone);
    o.str("queue", plain(&s.queue));
    o.key("job");
    let mut j = Object::new();
    j.raw("payload", &s.template.payload);
    j.u64("priority", u64::from(s.template.priority));
    j.opt_u64("max_attempts", s.template.max_attempts.map(u64::from));
    j.opt_u64("lease_ms", s.template.lease_ms);
    j.headers("headers", &s.template.headers);
    o.out.push_str(&j.finish());
    o.bool("paused", s.paused);
    o.str("catch_up", if s.catch_up { "once" } else { "none" });
    match s.next_fire.filter(|_| !s.paused) {
        Some(at) => o.time("next_fire_at", at),
        None => o.null("next_fire_at"),
    }
}

/// A JSON object being written.
struct Object {
    out: String,
    empty: bool,
}

impl Object {
    fn new() -> Object {
        Object {
            out: String::from("{"),
            empty: true,
        }
    }

    fn key(&mut self, key: &str) {
        if !self.empty {
            self.out.push(',');
        }
        self.empty = false;
        push_string(&mut self.out, key);
        self.out.push(':');
    }

    fn str(&mut self, key: &str, value: &str) {
        self.key(key);
        push_string(&mut self.out, value);
    }

    fn opt_str(&mut self, key: &str, value: Option<&str>) {
        match value {
            Some(value) => self.str(key, value),
            None => self.null(key),
        }
    }

    fn u64(&mut self, key: &str, value: u64) {
        self.key(key);
        self.out.push_str(&value.to_string());
    }

    fn opt_u64(&mut self, key: &str, value: Option<u64>) {
        match value {
            Some(value) => self.u64(key, value),
            None => self.null(key),
        }
    }

    fn bool(&mut self, key: &str, value: bool) {
        self.key(key);
        self.out.push_str(if value { "true" } else { "false" });
    }

    fn null(&mut self, key: &str) {
        self.key(key);
        self.out.push_str("null");
    }

    fn time(&mut self, key: &str, at: Millis) {
        self.str(key, &rfc3339(at));
    }

    /// JSON text stored as the client sent it (validated when it was accepted).
    fn raw(&mut self, key: &str, json: &str) {
        self.key(key);
        self.out.push_str(json);
    }

    /// Headers as an object; a name given twice keeps its last value, as the job API shows.
    fn headers(&mut self, key: &str, headers: &[(String, String)]) {
        self.key(key);
        let mut h = Object::new();
        let sorted: BTreeMap<&str, &str> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        for (name, value) in sorted {
            h.str(name, value);
        }
        self.out.push_str(&h.finish());
    }

    fn finish(mut self) -> String {
        self.out.push('}');
        self.out
    }
}

/// Appends `text` as a JSON string.
fn push_string(out: &mut String, text: &str) {
    // Serializing a string into a String cannot fail.
    if let Ok(quoted) = serde_json::to_string(text) {
        out.push_str(&quoted);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::{Value, json};

    use super::*;

    fn event(data: EventData) -> EventRecord {
        EventRecord {
            at: 1_767_225_600_000,
            queue: Some("emails".into()),
            job_id: Some(42),
            data,
        }
    }

    #[test]
    fn an_event_renders_as_the_documented_json() {
        let text = render(
            17,
            &event(EventData::JobEnqueued {
                payload: r#"{"to":"a\u00e9"}"#.into(),
                priority: 192,
                headers: vec![("b".into(), "2".into()), ("a".into(), "\"1\"".into())],
                run_at: 1_767_225_601_000,
                max_attempts: 5,
                lease_ms: None,
                group: Some("acme".into()),
            }),
        );
        let value: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            value,
            json!({
                "seq": 17,
                "at": "2026-01-01T00:00:00.000Z",
                "type": "job.enqueued",
                "tenant": "default",
                "queue": "emails",
                "job_id": "42",
                "data": {
                    "payload": {"to": "aé"},
                    "priority": 192,
                    "headers": {"a": "\"1\"", "b": "2"},
                    "run_at": "2026-01-01T00:00:01.000Z",
                    "max_attempts": 5,
                    "lease_ms": null,
                    "group": "acme"
                }
            })
        );
    }

    #[test]
    fn every_type_renders_valid_json_and_is_listed() {
        let settings = QueueRecord {
            lease_ms: 1,
            max_attempts: 2,
            backoff_base_ms: 3,
            backoff_cap_ms: 4,
            backoff_jitter: true,
            paused: false,
            retention_ms: 5,
            dead_retention_ms: 6,
            idempotency_window_ms: 7,
            max_depth: Some(8),
            group_max_in_flight: None,
            group_weights: Vec::new(),
        };
        let all = [
            EventData::JobLeased {
                attempt: 1,
                lease_expires_at: 2,
            },
            EventData::JobExtended {
                attempt: 1,
                lease_expires_at: 2,
            },
            EventData::JobLeaseExpired { attempt: 1 },
            EventData::JobRetryScheduled {
                attempt: 1,
                error: Some("x\ny".into()),
                run_at: 3,
            },
            EventData::JobSucceeded {
                attempt: 1,
                result: Some("[1]".into()),
            },
            EventData::JobDead {
                attempt: 1,
                error: None,
            },
            EventData::JobCancelled,
            EventData::JobReplayed,
            EventData::JobDeleted {
                reason: DeleteReason::Retention,
            },
            EventData::QueueCreated {
                settings: settings.clone(),
            },
            EventData::QueueUpdated { settings },
            EventData::QueuePaused,
            EventData::QueueResumed,
            EventData::QueuePurged { jobs: 3 },
            EventData::QueueDeleted { jobs: 3 },
            EventData::ScheduleDeleted { name: "s".into() },
            EventData::SchedulePaused { name: "s".into() },
            EventData::ScheduleResumed { name: "s".into() },
            EventData::ScheduleFired {
                name: "s".into(),
                due_at: 4,
            },
            EventData::Message {
                topic: "t".into(),
                key: None,
                payload: "null".into(),
                headers: vec![],
            },
        ];
        for data in all {
            let name = type_name(&data);
            assert!(TYPES.contains(&name), "{name} is not listed");
            let value: Value = serde_json::from_str(&render(1, &event(data))).unwrap();
            assert_eq!(value["type"], name);
            assert!(value["data"].is_object(), "{value}");
        }
        let value: Value = serde_json::from_str(&render(
            2,
            &EventRecord {
                at: 0,
                queue: None,
                job_id: None,
                data: EventData::QueuePaused,
            },
        ))
        .unwrap();
        assert_eq!(
            (&value["queue"], &value["job_id"]),
            (&json!(null), &json!(null))
        );
    }
}
