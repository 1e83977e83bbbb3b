//! The store's state in three layers, so that no write waits for the data file.
//!
//! The writer applies every commit group to an in-memory layer of changes, `active`, and its
//! journal frame makes it durable; redb is not touched. A checkpoint freezes that layer
//! (`frozen`) and starts a new one; the `wharf-checkpoint` thread writes the frozen changes into
//! redb in one durable transaction while the writer goes on, then swaps in a read transaction
//! that sees them (`base`) and drops the frozen layer. Every read, the writer's and the
//! readers', looks at `active`, then `frozen`, then `base`: the newest layer holding a key
//! decides, and a deletion is a tombstone that hides the layers below.
//!
//! So a job enqueued, leased and acked between two checkpoints is written to the data file
//! once, as it ends up; a job that is also deleted in that time (retention, purge) never
//! reaches it. The writer's cost per group is a few B-tree inserts in memory instead of a redb
//! transaction, and a checkpoint stalls nothing.
//!
//! One `RwLock` guards the three: the writer holds it to apply a group (microseconds to a few
//! milliseconds), readers hold it for one read, and the swaps at a freeze and after a
//! checkpoint happen under it, so a reader always sees a consistent set of layers.

mod table;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use redb::{Database, ReadOnlyTable, ReadTransaction, ReadableDatabase, WriteTransaction};

pub use table::{Changes, Layered, OwnedKey, OwnedValue, Staged};

use super::error::StoreError;
use super::tables::{
    AUDIT, BODIES, CURSORS, EVENTS, EXPIRY, IDEMPOTENCY, IDEMPOTENCY_EXPIRY, JOBS, KEYS, META,
    QUEUES, RESULTS, SCHEDULES,
};

macro_rules! tables {
    ($($name:ident: $k:ty => $v:ty = $def:ident;)*) => {
        /// A layer of changes to every table.
        #[derive(Debug, Default)]
        pub struct Overlay {
            $(pub $name: Changes<$k, $v>,)*
            /// The layer's size in memory, roughly.
            bytes: AtomicUsize,
        }

        impl Overlay {
            /// Whether the layer holds no change.
            #[cfg(test)]
            pub fn is_empty(&self) -> bool {
                true $(&& self.$name.is_empty())*
            }

            /// Writes the layer's changes into the data file, in one transaction.
            pub fn write_to(&self, txn: &WriteTransaction) -> Result<(), StoreError> {
                $(table::write_changes(&mut txn.open_table($def)?, &self.$name)?;)*
                Ok(())
            }
        }

        /// The data file as of the last checkpoint: a read transaction and its tables.
        pub struct Base {
            $($name: ReadOnlyTable<<$k as OwnedKey>::R, <$v as OwnedValue>::R>,)*
            /// Kept open, so the tables above see one commit.
            _txn: ReadTransaction,
        }

        impl Base {
            /// The data file as its last commit left it.
            pub fn open(db: &Database) -> Result<Base, StoreError> {
                let txn = db.begin_read()?;
                Ok(Base {
                    $($name: txn.open_table($def)?,)*
                    _txn: txn,
                })
            }
        }

        /// Every table as the writer changes it: reads through the layers, writes into the
        /// active one.
        pub struct Tables<'a> {
            $(pub $name: Staged<'a, $k, $v>,)*
        }

        impl<'a> Tables<'a> {
            /// The tables over `layers`, writing into its active layer.
            pub fn new(layers: &'a mut Layers) -> Result<Tables<'a>, StoreError> {
                let Layers {
                    active,
                    frozen,
                    base,
                    ..
                } = layers;
                let base = base.as_ref().ok_or(StoreError::Closed)?;
                let frozen = frozen.as_deref();
                let bytes = &active.bytes;
                Ok(Tables {
                    $($name: Staged {
                        active: &mut active.$name,
                        frozen: frozen.map(|f| &f.$name),
                        base: &base.$name,
                        bytes,
                    },)*
                })
            }
        }

        /// Every table as a reader sees it.
        pub struct View<'a> {
            $(pub $name: Layered<'a, $k, $v>,)*
            /// The key of the oldest batch of the change log (see [`Layers::events_first`]).
            pub events_first: u64,
        }

        impl<'a> View<'a> {
            /// The tables over `layers`.
            pub fn new(layers: &'a Layers) -> Result<View<'a>, StoreError> {
                let base = layers.base.as_ref().ok_or(StoreError::Closed)?;
                let frozen = layers.frozen.as_deref();
                Ok(View {
                    $($name: Layered {
                        active: &layers.active.$name,
                        frozen: frozen.map(|f| &f.$name),
                        base: &base.$name,
                    },)*
                    events_first: layers.events_first,
                })
            }
        }
    };
}

tables! {
    jobs: u64 => Vec<u8> = JOBS;
    bodies: u64 => Vec<u8> = BODIES;
    results: u64 => String = RESULTS;
    queues: String => Vec<u8> = QUEUES;
    events: u64 => Vec<u8> = EVENTS;
    cursors: String => Vec<u8> = CURSORS;
    meta: String => u64 = META;
    expiry: (u64, u64) => () = EXPIRY;
    idempotency: String => Vec<u8> = IDEMPOTENCY;
    idempotency_expiry: (u64, String) => () = IDEMPOTENCY_EXPIRY;
    schedules: String => Vec<u8> = SCHEDULES;
    keys: String => Vec<u8> = KEYS;
    audit: u64 => Vec<u8> = AUDIT;
}

impl Base {
    /// How many job records the data file holds.
    pub fn job_count(&self) -> Result<u64, StoreError> {
        Ok(redb::ReadableTableMetadata::len(&self.jobs)?)
    }
}

impl Overlay {
    /// The layer's size in memory, roughly (keys, values and a per-entry overhead).
    pub fn bytes(&self) -> usize {
        self.bytes.load(Ordering::Relaxed)
    }
}

/// The three layers.
pub struct Layers {
    /// The writer's changes since the last freeze.
    pub active: Overlay,
    /// The changes the checkpoint in flight is writing, if one is.
    pub frozen: Option<Arc<Overlay>>,
    /// The data file as of the last checkpoint (`None` once the store is closed).
    pub base: Option<Base>,
    /// The key of the oldest batch of the change log, as the writer keeps it (the oldest
    /// batches deleted by trimming stay in the layers, as deletions, until a checkpoint: a
    /// reader asking the layers for the first batch would walk them all).
    pub events_first: u64,
}

impl Layers {
    /// The layers of a data file with nothing staged, whose change log starts at
    /// `events_first`.
    pub fn open(db: &Database, events_first: u64) -> Result<Layers, StoreError> {
        Ok(Layers {
            active: Overlay::default(),
            frozen: None,
            base: Some(Base::open(db)?),
            events_first,
        })
    }

    /// Lets the data file go (its read transaction ends): every later read is `Closed`.
    pub fn close(&mut self) {
        self.base = None;
    }

    /// Freezes the active layer for a checkpoint and starts a new one. There must be no
    /// checkpoint in flight.
    pub fn freeze(&mut self) -> Arc<Overlay> {
        debug_assert!(self.frozen.is_none(), "two checkpoints in flight");
        let frozen = Arc::new(std::mem::take(&mut self.active));
        self.frozen = Some(frozen.clone());
        frozen
    }

    /// The checkpoint of the frozen layer is in the data file: reads go to `base` (a read
    /// transaction that sees it) instead. Returns the frozen layer and the old base, to be
    /// dropped once the lock is released: freeing a layer's hundreds of thousands of entries
    /// takes milliseconds that no write should wait for.
    pub fn checkpointed(&mut self, base: Base) -> (Option<Arc<Overlay>>, Option<Base>) {
        let old = if self.base.is_some() {
            self.base.replace(base)
        } else {
            None
        };
        (self.frozen.take(), old)
    }
}

#[cfg(test)]
mod tests;
