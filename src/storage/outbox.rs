//! The outbox (change log) as the writer keeps it: a gap-free sequence of changes, stored as
//! one batch per commit and trimmed to a maximum length.

use redb::{ReadableTable, Table};

use super::error::StoreError;
use super::records::{OutboxEntry, encode};
use super::tables::{META_OUTBOX_NEXT, Tables};

/// The writer's view of the stored change log.
#[derive(Debug)]
pub struct Outbox {
    /// Sequence range stored: `[first, next)`; `first` is the key of the oldest batch.
    first: u64,
    next: u64,
    /// The changes of the transaction being built, stored as one batch by [`Outbox::write`].
    batch: Vec<OutboxEntry>,
    max_entries: u64,
}

/// Where a transaction started, to roll back to if it fails.
#[derive(Debug, Clone, Copy)]
pub struct Mark {
    first: u64,
    next: u64,
}

impl Outbox {
    /// The log whose stored changes are `[first, next)`, kept at most `max_entries` long.
    pub fn new(first: u64, next: u64, max_entries: u64) -> Outbox {
        Outbox {
            first,
            next,
            batch: Vec::new(),
            max_entries: max_entries.max(1),
        }
    }

    /// The position before a transaction, for [`Outbox::roll_back`].
    pub fn mark(&self) -> Mark {
        Mark {
            first: self.first,
            next: self.next,
        }
    }

    /// Forgets the changes (and the trimming) of a transaction that failed.
    pub fn roll_back(&mut self, mark: Mark) {
        self.first = mark.first;
        self.next = mark.next;
        self.batch.clear();
    }

    /// Adds a change to the transaction being built; it gets the next sequence number.
    pub fn push(&mut self, change: OutboxEntry) {
        self.batch.push(change);
        self.next += 1;
    }

    /// Stores the transaction's changes as one batch, keyed by the sequence number of its
    /// first change, records where the next one starts, and trims the oldest batches.
    pub fn write(&mut self, t: &mut Tables<'_>) -> Result<(), StoreError> {
        if !self.batch.is_empty() {
            let first = self.next - self.batch.len() as u64;
            t.outbox.insert(first, encode(&self.batch).as_slice())?;
            self.batch.clear();
        }
        t.meta.insert(META_OUTBOX_NEXT, self.next)?;
        self.trim(&mut t.outbox)
    }

    /// Keeps at most `max_entries` changes (plus less than one batch) by dropping the oldest
    /// batches: the batch holding the oldest change to keep stays whole.
    fn trim(&mut self, outbox: &mut Table<'_, u64, &'static [u8]>) -> Result<(), StoreError> {
        let excess = (self.next - self.first).saturating_sub(self.max_entries);
        if excess == 0 {
            return Ok(());
        }
        let keep_from = self.first + excess;
        let Some(batch) = outbox.range(..=keep_from)?.next_back() else {
            return Ok(());
        };
        let cut = batch?.0.value();
        if cut > self.first {
            outbox.retain_in(self.first..cut, |_, _| false)?;
            self.first = cut;
        }
        Ok(())
    }
}
