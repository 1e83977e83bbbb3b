//! Every rule an input must keep: value ranges, sizes and counts, in one place.
//!
//! The broker checks each request against these rules itself, at the top of the operation, so
//! no caller (the HTTP API, a later adapter) can skip one or apply another version of it. A
//! queue PATCH is checked once more under the state lock, against the settings the queue has
//! then, as a whole. A broken rule is an [`Invalid`] naming the field; it changes nothing.
//! (A schedule's fire is not checked again: its template was checked when it was put.)

use super::config::QueueConfig;
use super::views::{FollowUp, NackRequest, NewJob, NewMessage, PollRequest, RunAt};
use crate::clock::Millis;

/// Most a lease can last (12 h, as in SQS); longer would hide dead consumers.
pub const MAX_LEASE_MS: u64 = 12 * 3600 * 1000;
/// Most attempts a job may have.
pub const MAX_ATTEMPTS: u32 = 1000;
/// Longest retention or idempotency window (10 years).
pub const MAX_RETENTION_MS: u64 = 10 * 365 * 24 * 3600 * 1000;
/// Longest backoff or delay (365 days).
pub const MAX_DELAY_MS: u64 = 365 * 24 * 3600 * 1000;
/// Most headers a job may carry.
pub const MAX_HEADERS: usize = 32;
/// Largest `max_depth` of a queue.
pub const MAX_DEPTH: u64 = 1_000_000_000_000;
/// Largest `group_max_in_flight` of a queue.
pub const MAX_GROUP_IN_FLIGHT: u32 = 1_000_000;
/// Longest job group name.
pub const MAX_GROUP_LEN: usize = 128;
/// Largest weight of a job group.
pub const MAX_GROUP_WEIGHT: u32 = 1000;
/// Most groups a queue's `group_weights` may name.
pub const MAX_GROUP_WEIGHTS: usize = 1000;

/// Longest header name.
pub const MAX_HEADER_NAME: usize = 128;
/// Longest header value.
pub const MAX_HEADER_VALUE: usize = 4096;
/// Longest idempotency key.
pub const MAX_IDEMPOTENCY_KEY: usize = 255;
/// Longest outbox message topic or key.
pub const MAX_TOPIC: usize = 255;
/// Longest nack error text.
pub const MAX_ERROR_TEXT: usize = 16 * 1024;
/// Deepest nesting of arrays and objects in a payload or result: well inside what JSON
/// libraries (serde_json: 128, many others less) read back without a recursion error.
pub const MAX_JSON_DEPTH: usize = 64;
/// Longest long-poll wait.
pub const MAX_WAIT_MS: u64 = 30_000;
/// Most jobs one poll may deliver, and most jobs a listing page shows.
pub const MAX_POLL: usize = 1000;
/// The headers a schedule adds to every job it enqueues; they replace template headers of the
/// same names, so a template may carry at most `MAX_HEADERS - 2` others.
pub const SCHEDULE_HEADERS: [&str; 2] = ["wharf-schedule", "wharf-due-at"];

/// A value outside what wharf accepts: which field, and the rule it broke.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}{}{rule}", if rule.starts_with('[') { "" } else { " " })]
pub struct Invalid {
    /// The field, as the API names it (`max_attempts`, `backoff.cap_ms`).
    pub field: &'static str,
    /// What it must be, as a phrase that follows the field name ("must be at most 1000").
    pub rule: String,
    /// Which kind of limit: a size limit is told apart from other rules.
    pub kind: Limit,
}

/// The kinds of limit an [`Invalid`] can be about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// A range or a shape rule.
    Value,
    /// A job payload over `max_payload_bytes`.
    Payload,
    /// An ack result over `max_payload_bytes`.
    Result,
    /// A batch over `max_batch`.
    Batch,
}

impl Invalid {
    fn value(field: &'static str, rule: impl Into<String>) -> Invalid {
        Invalid {
            field,
            rule: rule.into(),
            kind: Limit::Value,
        }
    }
}

/// The limits the configuration sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest payload or result, in bytes of JSON text.
    pub max_payload_bytes: usize,
    /// Most jobs in one enqueue, acks in one batch ack, ids in one replay.
    pub max_batch: usize,
}

impl Limits {
    /// A batch of `len` items (jobs, acks, ids) in `field`.
    pub fn check_batch(&self, field: &'static str, len: usize) -> Result<(), Invalid> {
        if len > self.max_batch {
            return Err(Invalid {
                field,
                rule: format!(
                    "holds {len} items; the limit is {} (max_batch)",
                    self.max_batch
                ),
                kind: Limit::Batch,
            });
        }
        Ok(())
    }

    /// A job payload (raw JSON text).
    pub fn check_payload(&self, payload: &str) -> Result<(), Invalid> {
        check_json_shape("payload", payload)?;
        if payload.len() > self.max_payload_bytes {
            return Err(Invalid {
                field: "payload",
                rule: format!(
                    "is {} bytes; the limit is {} (max_payload_bytes)",
                    payload.len(),
                    self.max_payload_bytes
                ),
                kind: Limit::Payload,
            });
        }
        Ok(())
    }

    /// A job to enqueue, at time `now`.
    pub fn check_job(&self, job: &NewJob, now: Millis) -> Result<(), Invalid> {
        self.check_payload(&job.payload)?;
        match job.run_at {
            Some(RunAt::After(delay)) if delay > MAX_DELAY_MS => {
                return Err(Invalid::value(
                    "delay_ms",
                    format!("must be at most {MAX_DELAY_MS} (365 days)"),
                ));
            }
            Some(RunAt::At(at)) if at > now.saturating_add(MAX_DELAY_MS) => {
                return Err(Invalid::value("run_at", "must be within 365 days"));
            }
            _ => {}
        }
        check_attempts("max_attempts", job.max_attempts)?;
        check_lease_ms("lease_ms", job.lease_ms)?;
        check_headers(&job.headers, MAX_HEADERS)?;
        if let Some(key) = &job.idempotency_key
            && !(1..=MAX_IDEMPOTENCY_KEY).contains(&key.len())
        {
            return Err(Invalid::value(
                "idempotency_key",
                format!("must be 1-{MAX_IDEMPOTENCY_KEY} bytes"),
            ));
        }
        if let Some(group) = &job.group
            && !valid_group(group)
        {
            return Err(Invalid::value(
                "group",
                format!("must be 1-{MAX_GROUP_LEN} bytes with no control characters"),
            ));
        }
        Ok(())
    }

    /// The job a schedule enqueues at every fire.
    pub fn check_schedule_job(&self, job: &NewJob) -> Result<(), Invalid> {
        if job.run_at.is_some() || job.idempotency_key.is_some() {
            return Err(Invalid::value(
                "job",
                "takes no delay_ms, run_at or idempotency_key: it is enqueued when the schedule fires",
            ));
        }
        if job.group.is_some() {
            return Err(Invalid::value(
                "job",
                "takes no group: a schedule's jobs are ungrouped",
            ));
        }
        self.check_job(job, 0)?;
        let own = job
            .headers
            .iter()
            .filter(|(name, _)| !SCHEDULE_HEADERS.contains(&name.as_str()));
        check_headers_count(own.count(), MAX_HEADERS - SCHEDULE_HEADERS.len())
    }

    /// Messages one request writes to the outbox (in `field`).
    pub fn check_messages(
        &self,
        field: &'static str,
        messages: &[NewMessage],
    ) -> Result<(), Invalid> {
        self.check_batch(field, messages.len())?;
        for (i, m) in messages.iter().enumerate() {
            self.check_message(m).map_err(|e| within(field, i, e))?;
        }
        Ok(())
    }

    fn check_message(&self, m: &NewMessage) -> Result<(), Invalid> {
        if !(1..=MAX_TOPIC).contains(&m.topic.len()) {
            return Err(Invalid::value(
                "topic",
                format!("must be 1-{MAX_TOPIC} bytes"),
            ));
        }
        if m.key
            .as_ref()
            .is_some_and(|k| !(1..=MAX_TOPIC).contains(&k.len()))
        {
            return Err(Invalid::value(
                "key",
                format!("must be 1-{MAX_TOPIC} bytes"),
            ));
        }
        self.check_payload(&m.payload)?;
        check_headers(&m.headers, MAX_HEADERS)
    }

    /// The jobs an ack enqueues.
    pub fn check_follow_ups(&self, follow_ups: &[FollowUp], now: Millis) -> Result<(), Invalid> {
        self.check_batch("enqueue", follow_ups.len())?;
        for (i, f) in follow_ups.iter().enumerate() {
            if !crate::tenant::valid_full_name(&f.queue) {
                return Err(within(
                    "enqueue",
                    i,
                    Invalid::value(
                        "queue",
                        "must be 1-128 characters of A-Z, a-z, 0-9, '.', '_' and '-', other than '.' and '..'",
                    ),
                ));
            }
            self.check_job(&f.job, now)
                .map_err(|e| within("enqueue", i, e))?;
        }
        Ok(())
    }

    /// An ack result (raw JSON text).
    pub fn check_result(&self, result: Option<&str>) -> Result<(), Invalid> {
        if let Some(result) = result {
            check_json_shape("result", result)?;
        }
        match result {
            Some(r) if r.len() > self.max_payload_bytes => Err(Invalid {
                field: "result",
                rule: format!(
                    "is {} bytes; the limit is {} (max_payload_bytes)",
                    r.len(),
                    self.max_payload_bytes
                ),
                kind: Limit::Result,
            }),
            _ => Ok(()),
        }
    }
}

/// JSON text (already known to be valid) that every reader can take back: nested at most
/// [`MAX_JSON_DEPTH`] deep, and no number beyond a 64-bit float (`1e309`), which most JSON
/// libraries, serde_json's `Value` among them, refuse to read.
fn check_json_shape(field: &'static str, text: &str) -> Result<(), Invalid> {
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                // To the closing quote, jumping (memchr) to the next quote or backslash: strings
                // are most of a payload's bytes.
                i += 1;
                loop {
                    match memchr::memchr2(b'"', b'\\', bytes.get(i..).unwrap_or_default()) {
                        Some(at) if bytes[i + at] == b'"' => {
                            i += at;
                            break;
                        }
                        Some(at) => i += at + 2,
                        None => {
                            i = bytes.len();
                            break;
                        }
                    }
                }
            }
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_JSON_DEPTH {
                    return Err(Invalid::value(
                        field,
                        format!("is nested deeper than {MAX_JSON_DEPTH} levels"),
                    ));
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            b'-' | b'0'..=b'9' => {
                let start = i;
                while i < bytes.len()
                    && matches!(bytes[i], b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')
                {
                    i += 1;
                }
                // ASCII from `start` to `i`: a char boundary on both sides.
                let number = text.get(start..i).unwrap_or_default();
                if !number.parse::<f64>().is_ok_and(f64::is_finite) {
                    return Err(Invalid::value(
                        field,
                        format!("holds the number {number}, beyond a 64-bit float"),
                    ));
                }
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    Ok(())
}

/// Rule `e` broken by item `index` of the list `field`: named `field[index].sub-field`.
fn within(field: &'static str, index: usize, e: Invalid) -> Invalid {
    Invalid {
        field,
        rule: format!("[{index}].{} {}", e.field, e.rule),
        kind: e.kind,
    }
}

/// A lease length, when given.
pub fn check_lease_ms(field: &'static str, lease_ms: Option<u64>) -> Result<(), Invalid> {
    match lease_ms {
        Some(ms) if !(1..=MAX_LEASE_MS).contains(&ms) => Err(Invalid::value(
            field,
            format!("must be between 1 and {MAX_LEASE_MS} (12 h)"),
        )),
        _ => Ok(()),
    }
}

fn check_attempts(field: &'static str, attempts: Option<u32>) -> Result<(), Invalid> {
    match attempts {
        Some(n) if !(1..=MAX_ATTEMPTS).contains(&n) => Err(Invalid::value(
            field,
            format!("must be between 1 and {MAX_ATTEMPTS}"),
        )),
        _ => Ok(()),
    }
}

fn check_headers(headers: &[(String, String)], most: usize) -> Result<(), Invalid> {
    check_headers_count(headers.len(), most)?;
    for (name, value) in headers {
        if name.is_empty() || name.len() > MAX_HEADER_NAME || value.len() > MAX_HEADER_VALUE {
            return Err(Invalid::value(
                "headers",
                format!(
                    "names must be 1-{MAX_HEADER_NAME} bytes and values at most {MAX_HEADER_VALUE} bytes"
                ),
            ));
        }
    }
    Ok(())
}

fn check_headers_count(count: usize, most: usize) -> Result<(), Invalid> {
    if count > most {
        return Err(Invalid::value(
            "headers",
            format!("has {count} entries; at most {most}"),
        ));
    }
    Ok(())
}

/// A poll.
pub fn check_poll(request: &PollRequest) -> Result<(), Invalid> {
    if !(1..=MAX_POLL).contains(&request.max) {
        return Err(Invalid::value(
            "max",
            format!("must be between 1 and {MAX_POLL}"),
        ));
    }
    if request.wait_ms > MAX_WAIT_MS {
        return Err(Invalid::value(
            "wait_ms",
            format!("must be at most {MAX_WAIT_MS}"),
        ));
    }
    check_lease_ms("lease_ms", request.lease_ms)
}

/// A nack.
pub fn check_nack(request: &NackRequest) -> Result<(), Invalid> {
    if request
        .error
        .as_ref()
        .is_some_and(|e| e.len() > MAX_ERROR_TEXT)
    {
        return Err(Invalid::value(
            "error",
            format!("must be at most {MAX_ERROR_TEXT} bytes"),
        ));
    }
    if request.delay_ms.is_some_and(|d| d > MAX_DELAY_MS) {
        return Err(Invalid::value(
            "delay_ms",
            format!("must be at most {MAX_DELAY_MS} (365 days)"),
        ));
    }
    Ok(())
}

/// The size of a page of a job listing.
pub fn check_page(limit: usize) -> Result<(), Invalid> {
    if !(1..=MAX_POLL).contains(&limit) {
        return Err(Invalid::value(
            "limit",
            format!("must be between 1 and {MAX_POLL}"),
        ));
    }
    Ok(())
}

impl QueueConfig {
    /// Checks a queue's settings as a whole (they are checked together because some rules
    /// relate two of them, such as `backoff.base_ms <= backoff.cap_ms`).
    pub fn check(&self) -> Result<(), Invalid> {
        if !(1..=MAX_LEASE_MS).contains(&self.lease_ms) {
            return Err(Invalid::value(
                "lease_ms",
                format!("must be between 1 and {MAX_LEASE_MS}"),
            ));
        }
        check_attempts("max_attempts", Some(self.max_attempts))?;
        if self.backoff.base_ms > MAX_DELAY_MS || self.backoff.cap_ms > MAX_DELAY_MS {
            return Err(Invalid::value(
                "backoff",
                format!("base_ms and cap_ms must be at most {MAX_DELAY_MS}"),
            ));
        }
        if self.backoff.base_ms > self.backoff.cap_ms {
            return Err(Invalid::value(
                "backoff.base_ms",
                "must not exceed backoff.cap_ms",
            ));
        }
        if self.retention_ms > MAX_RETENTION_MS || self.dead_retention_ms > MAX_RETENTION_MS {
            return Err(Invalid::value(
                "retention_ms",
                format!("and dead_retention_ms must be at most {MAX_RETENTION_MS} (10 years)"),
            ));
        }
        if !(1..=MAX_RETENTION_MS).contains(&self.idempotency_window_ms) {
            return Err(Invalid::value(
                "idempotency_window_ms",
                format!("must be between 1 and {MAX_RETENTION_MS}"),
            ));
        }
        if self
            .max_depth
            .is_some_and(|d| !(1..=MAX_DEPTH).contains(&d))
        {
            return Err(Invalid::value(
                "max_depth",
                format!("must be between 1 and {MAX_DEPTH}, or null for no limit"),
            ));
        }
        if self
            .group_max_in_flight
            .is_some_and(|n| !(1..=MAX_GROUP_IN_FLIGHT).contains(&n))
        {
            return Err(Invalid::value(
                "group_max_in_flight",
                format!("must be between 1 and {MAX_GROUP_IN_FLIGHT}, or null for no limit"),
            ));
        }
        if self.group_weights.len() > MAX_GROUP_WEIGHTS {
            return Err(Invalid::value(
                "group_weights",
                format!("may name at most {MAX_GROUP_WEIGHTS} groups"),
            ));
        }
        for (group, weight) in &self.group_weights {
            if !valid_group(group) || !(1..=MAX_GROUP_WEIGHT).contains(weight) {
                return Err(Invalid::value(
                    "group_weights",
                    format!(
                        "maps group names (1-{MAX_GROUP_LEN} bytes, no control characters) to weights of 1-{MAX_GROUP_WEIGHT}; {group:?}: {weight} is not one"
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// Whether `group` is a job group's name: 1-128 bytes, no control characters.
fn valid_group(group: &str) -> bool {
    (1..=MAX_GROUP_LEN).contains(&group.len()) && !group.chars().any(char::is_control)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job() -> NewJob {
        NewJob::new("{}")
    }

    const LIMITS: Limits = Limits {
        max_payload_bytes: 10,
        max_batch: 2,
    };

    #[test]
    fn each_job_rule_names_its_field() {
        let field = |job: NewJob| LIMITS.check_job(&job, 1_000).unwrap_err().field;
        assert_eq!(
            field(NewJob {
                payload: "x".repeat(11),
                ..job()
            }),
            "payload"
        );
        assert_eq!(
            field(NewJob {
                run_at: Some(RunAt::After(MAX_DELAY_MS + 1)),
                ..job()
            }),
            "delay_ms"
        );
        assert_eq!(
            field(NewJob {
                run_at: Some(RunAt::At(1_000 + MAX_DELAY_MS + 1)),
                ..job()
            }),
            "run_at"
        );
        assert_eq!(
            field(NewJob {
                max_attempts: Some(0),
                ..job()
            }),
            "max_attempts"
        );
        assert_eq!(
            field(NewJob {
                lease_ms: Some(MAX_LEASE_MS + 1),
                ..job()
            }),
            "lease_ms"
        );
        assert_eq!(
            field(NewJob {
                headers: vec![(String::new(), "v".into())],
                ..job()
            }),
            "headers"
        );
        assert_eq!(
            field(NewJob {
                idempotency_key: Some(String::new()),
                ..job()
            }),
            "idempotency_key"
        );
        assert!(LIMITS.check_job(&job(), 1_000).is_ok());
        assert_eq!(
            LIMITS.check_batch("jobs", 3).unwrap_err().kind,
            Limit::Batch
        );
    }

    #[test]
    fn only_real_nesting_and_real_numbers_count_in_a_payload() {
        let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        assert!(check_json_shape("payload", &deep(MAX_JSON_DEPTH)).is_ok());
        assert!(check_json_shape("payload", &deep(MAX_JSON_DEPTH + 1)).is_err());
        // Brackets, quotes and numbers inside strings are text.
        let text = format!(
            r#"{{"a": "{}\"{}", "b": "1e999", "c": "\\", "d": [1e308]}}"#,
            "[".repeat(100),
            "{".repeat(100)
        );
        assert!(check_json_shape("payload", &text).is_ok(), "{text}");
        assert!(check_json_shape("payload", r#"["\\", 1e999]"#).is_err());
        assert!(check_json_shape("payload", r#"{"x": -1e309}"#).is_err());
    }

    #[test]
    fn a_schedule_job_leaves_room_for_the_schedule_headers() {
        let headers = |n: usize, reserved: bool| -> Vec<(String, String)> {
            let mut h: Vec<(String, String)> =
                (0..n).map(|i| (format!("h{i}"), String::new())).collect();
            if reserved {
                h.push(("wharf-schedule".into(), "mine".into()));
            }
            h
        };
        let with = |headers| NewJob { headers, ..job() };
        assert!(LIMITS.check_schedule_job(&with(headers(30, false))).is_ok());
        // Its own copies of the schedule headers are replaced, not added, so they do not count.
        assert!(LIMITS.check_schedule_job(&with(headers(30, true))).is_ok());
        assert_eq!(
            LIMITS
                .check_schedule_job(&with(headers(31, false)))
                .unwrap_err()
                .field,
            "headers"
        );
    }

    #[test]
    fn queue_settings_are_checked_together() {
        let mut c = QueueConfig::default();
        assert!(c.check().is_ok());
        c.backoff.base_ms = c.backoff.cap_ms + 1;
        assert_eq!(c.check().unwrap_err().field, "backoff.base_ms");
    }
}
