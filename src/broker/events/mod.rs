//! Reading the change log: pages of events after a position, filtered, long-polled.
//!
//! Readers see an event once its journal frame is fsynced (never before: a crash could still
//! take it back, and give its sequence number to another), and they read the log itself, not a
//! buffer in front of the writer, so a slow reader never slows the broker. The log is trimmed
//! by length and age only; a reader behind its start gets [`BrokerError::EventsTrimmed`].

mod cursors;
mod render;

use std::pin::pin;

pub use cursors::CursorView;
pub use render::{TYPES, audit as audit_json};

use super::limits::{self, MAX_WAIT_MS};
use super::{Broker, BrokerError, blocking};
use crate::clock::Millis;
use crate::job::JobId;
use crate::storage::EventRecord;

/// One event, rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Its place in the log: contiguous from 1, never reused.
    pub seq: u64,
    /// Its type, such as `job.succeeded`.
    pub kind: &'static str,
    /// The queue it concerns, if any.
    pub queue: Option<String>,
    /// The job it concerns, if any.
    pub job_id: Option<JobId>,
    /// When the change happened.
    pub at: Millis,
    /// The whole event as JSON text (`{"seq", "at", "type", "queue", "job_id", "data"}`).
    pub json: String,
}

/// Which events a reader wants.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    /// Type names or prefixes (`job.*`); empty: every type.
    pub types: Vec<String>,
    /// Only events of this queue (a full name).
    pub queue: Option<String>,
    /// Only events of this tenant.
    pub tenant: Option<String>,
}

impl EventFilter {
    /// Checks the filter: every pattern names a type, or a family of types, that exists.
    pub fn check(&self) -> Result<(), limits::Invalid> {
        for pattern in &self.types {
            let known = match pattern.strip_suffix('*') {
                Some(prefix) => TYPES.iter().any(|t| t.starts_with(prefix)),
                None => TYPES.contains(&pattern.as_str()),
            };
            if !known {
                return Err(limits::Invalid {
                    field: "types",
                    rule: format!(
                        "names no event type: {pattern:?} (types are listed in docs/api.md; end a prefix with *, as in job.*)"
                    ),
                    kind: limits::Limit::Value,
                });
            }
        }
        Ok(())
    }

    fn matches(&self, kind: &str, record: &EventRecord) -> bool {
        let type_ok = self.types.is_empty()
            || self.types.iter().any(|p| match p.strip_suffix('*') {
                Some(prefix) => kind.starts_with(prefix),
                None => kind == p,
            });
        type_ok
            && self
                .queue
                .as_deref()
                .is_none_or(|q| record.queue.as_deref() == Some(q))
            && self
                .tenant
                .as_deref()
                .is_none_or(|t| render::tenant(record) == t)
    }
}

/// Where a read starts.
#[derive(Debug, Clone)]
pub enum Start {
    /// The oldest event still kept.
    Oldest,
    /// After this sequence number (events `seq + 1`, ...).
    After(u64),
    /// After the position of this cursor.
    Cursor(String),
}

/// A read of the change log.
#[derive(Debug, Clone)]
pub struct EventQuery {
    /// Where to start.
    pub start: Start,
    /// Most events to return, 1 to 1000.
    pub limit: usize,
    /// How long to wait (on the broker's clock) for a first matching event, at most 30000.
    pub wait_ms: u64,
    /// Which events.
    pub filter: EventFilter,
}

/// What a read returns.
#[derive(Debug, Clone, Default)]
pub struct EventPage {
    /// The matching events, in order.
    pub events: Vec<Event>,
    /// Where the next read starts (`after`): past every event this one looked at, matching or
    /// not, so a filtered reader never reads the same events twice.
    pub next_after: u64,
    /// The last event readers can see now.
    pub head: u64,
    /// The oldest event still kept.
    pub oldest: u64,
}

/// Events looked at per store read.
const SCAN: usize = 1024;
/// Events one request looks at before it answers, matches or not, so that a narrow filter over
/// a long log answers in bounded time (with `next_after` moved on).
const MOST_SCANNED: usize = 16 * SCAN;

impl Broker {
    /// Reads events after a position, waiting up to `wait_ms` for a first matching one.
    pub async fn events(&self, query: EventQuery) -> Result<EventPage, BrokerError> {
        limits::check_page(query.limit)?;
        if query.wait_ms > MAX_WAIT_MS {
            return Err(limits::Invalid {
                field: "wait_ms",
                rule: format!("must be at most {MAX_WAIT_MS}"),
                kind: limits::Limit::Value,
            }
            .into());
        }
        query.filter.check()?;
        let mut after = match &query.start {
            Start::Oldest => None,
            Start::After(seq) => Some(*seq),
            Start::Cursor(name) => Some(self.cursor(name).await?.seq),
        };
        let until = self.now().saturating_add(query.wait_ms);
        let mut durable = self.store.durable_events();
        let mut scanned = 0;
        loop {
            let mut stop = pin!(self.shutdown_signal.notified());
            stop.as_mut().enable();
            let head = *durable.borrow_and_update();
            let read = blocking(|| self.store.read_events(after.unwrap_or(0), head, SCAN))?;
            let start = after.unwrap_or_else(|| read.first.saturating_sub(1));
            if start.saturating_add(1) < read.first {
                return Err(BrokerError::EventsTrimmed { oldest: read.first });
            }
            let mut page = EventPage {
                events: Vec::new(),
                next_after: start,
                head,
                oldest: read.first,
            };
            for (seq, record) in read.events {
                if seq <= start {
                    continue;
                }
                page.next_after = seq;
                let kind = render::type_name(&record.data);
                if !query.filter.matches(kind, &record) {
                    continue;
                }
                page.events.push(Event {
                    seq,
                    kind,
                    json: render::render(seq, &record),
                    queue: record.queue,
                    job_id: record.job_id.map(JobId),
                    at: record.at,
                });
                if page.events.len() == query.limit {
                    return Ok(page);
                }
            }
            scanned += SCAN;
            after = Some(page.next_after);
            let caught_up = page.next_after >= head;
            let done = !page.events.is_empty()
                || scanned >= MOST_SCANNED
                || (caught_up && (self.now() >= until || self.is_shutting_down()));
            if done {
                return Ok(page);
            }
            if caught_up {
                tokio::select! {
                    moved = durable.changed() => {
                        if moved.is_err() {
                            // The store has closed: nothing more will come.
                            return Ok(page);
                        }
                    }
                    () = self.clock.sleep_until(Some(until)) => {}
                    () = &mut stop => {}
                }
            }
        }
    }

    /// The last event readers can see now.
    pub fn events_head(&self) -> u64 {
        *self.store.durable_events().borrow()
    }
}
