//! The change log as the writer keeps it: a gap-free sequence of events, stored as one batch
//! per commit, trimmed to at most `max_entries` events and `max_age_ms` of age. Readers never
//! hold trimming back (a stuck reader must not fill the disk); one that asks for trimmed events
//! learns where the log starts now.

use std::ops::Bound;

use super::error::StoreError;
use super::layers::{Staged, Tables};
use super::records::{EventRecord, decode_events, encode};
use super::tables::META_EVENTS_NEXT;

/// The events table as the writer changes it.
type EventsTable<'a> = Staged<'a, u64, Vec<u8>>;

/// Most old batches one commit trims by age, so a long-idle log catches up over a few commits
/// instead of stalling one.
const AGE_TRIM_BATCHES: usize = 16;

/// The writer's view of the stored change log.
#[derive(Debug)]
pub struct EventLog {
    /// Sequence range stored: `[first, next)`; `first` is the key of the oldest batch.
    first: u64,
    next: u64,
    /// The events of the transaction being built, stored as one batch by [`EventLog::write`].
    batch: Vec<EventRecord>,
    max_entries: u64,
    max_age_ms: u64,
    /// The oldest batch's key and the time of its newest event, once read.
    oldest: Option<(u64, u64)>,
}

/// Where a transaction started, to roll back to if it fails.
#[derive(Debug, Clone, Copy)]
pub struct Mark {
    first: u64,
    next: u64,
    oldest: Option<(u64, u64)>,
}

impl EventLog {
    /// The log whose stored events are `[first, next)`.
    pub fn new(first: u64, next: u64, max_entries: u64, max_age_ms: u64) -> EventLog {
        EventLog {
            first,
            next,
            batch: Vec::new(),
            max_entries: max_entries.max(1),
            max_age_ms,
            oldest: None,
        }
    }

    /// The sequence number the next event appended will get (counting the transaction's).
    pub fn pending_next(&self) -> u64 {
        self.next + self.batch.len() as u64
    }

    /// The key of the oldest batch stored (or the next sequence number, while none is).
    pub fn first(&self) -> u64 {
        self.first
    }

    /// The sequence number of the last event appended (0: none yet).
    pub fn last(&self) -> u64 {
        self.next - 1
    }

    /// The position before a transaction, for [`EventLog::roll_back`].
    pub fn mark(&self) -> Mark {
        Mark {
            first: self.first,
            next: self.next,
            oldest: self.oldest,
        }
    }

    /// Forgets the events (and the trimming) of a transaction that failed.
    pub fn roll_back(&mut self, mark: Mark) {
        self.first = mark.first;
        self.next = mark.next;
        self.oldest = mark.oldest;
        self.batch.clear();
    }

    /// The transaction's events so far (`apply` appends to it); each gets the next sequence
    /// number when [`EventLog::write`] stores them.
    pub fn batch(&mut self) -> &mut Vec<EventRecord> {
        &mut self.batch
    }

    /// Stores the transaction's events as one batch, keyed by the sequence number of its first
    /// event, records where the next one starts, and trims the log by length and age. Age is
    /// measured against the newest event's time, not the clock, so that replaying the journal
    /// trims exactly as the original commit did.
    pub fn write(&mut self, t: &mut Tables<'_>) -> Result<(), StoreError> {
        let newest = self.batch.last().map(|e| e.at);
        if !self.batch.is_empty() {
            t.events.put(self.next, encode(&self.batch));
            self.next += self.batch.len() as u64;
            self.batch.clear();
        }
        t.meta.put(META_EVENTS_NEXT.to_owned(), self.next);
        self.trim_length(&mut t.events)?;
        if let Some(now) = newest {
            self.trim_age(&mut t.events, now)?;
        }
        Ok(())
    }

    /// Keeps at most `max_entries` events (plus less than one batch) by dropping the oldest
    /// batches: the batch holding the oldest event to keep stays whole.
    fn trim_length(&mut self, events: &mut EventsTable<'_>) -> Result<(), StoreError> {
        let excess = (self.next - self.first).saturating_sub(self.max_entries);
        if excess == 0 {
            return Ok(());
        }
        let keep_from = self.first + excess;
        let Some((cut, _)) = events
            .read()
            .range(Bound::Unbounded, Bound::Included(&keep_from), true, 1)?
            .pop()
        else {
            return Ok(());
        };
        if cut > self.first {
            events.delete_range(Bound::Included(&self.first), Bound::Excluded(&cut))?;
            self.first = cut;
            self.oldest = None;
        }
        Ok(())
    }

    /// Drops the oldest batches whose newest event is older than `max_age_ms` before `now`.
    fn trim_age(&mut self, events: &mut EventsTable<'_>, now: u64) -> Result<(), StoreError> {
        let cutoff = now.saturating_sub(self.max_age_ms);
        for _ in 0..AGE_TRIM_BATCHES {
            let (key, newest) = match self.oldest {
                Some(oldest) => oldest,
                None => {
                    // `first` is the oldest batch's key: reading from it skips the deletions
                    // below, which stay in the layer until the next checkpoint.
                    let Some((key, value)) = events
                        .read()
                        .range(Bound::Included(&self.first), Bound::Unbounded, false, 1)?
                        .pop()
                    else {
                        return Ok(());
                    };
                    let newest = decode_events(&value)?.last().map_or(0, |e| e.at);
                    let oldest = (key, newest);
                    self.oldest = Some(oldest);
                    oldest
                }
            };
            if newest >= cutoff {
                return Ok(());
            }
            events.delete(key);
            self.oldest = None;
            self.first = events
                .read()
                .range(Bound::Excluded(&key), Bound::Unbounded, false, 1)?
                .pop()
                .map_or(self.next, |(k, _)| k);
        }
        Ok(())
    }
}
