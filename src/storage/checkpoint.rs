//! Checkpoints and replay: folding the journal into the data file, at run time and at start-up.
//!
//! A checkpoint is a durable redb commit that records the last journal frame it holds
//! (`meta.journal_seq`) and the salt of the run's frames, after which the journal is rewound.
//! At start-up redb comes back at its last checkpoint and the frames written after it are
//! applied again, in order, with the same [`apply`](super::apply) the writer uses.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Instant;

use redb::{Durability, ReadableDatabase};

use super::error::StoreError;
use super::journal::{Journal, frame};
use super::ops::{WriteOp, decode_ops};
use super::tables::{META, META_JOURNAL_SALT, META_JOURNAL_SEQ, Tables};
use super::writer::Writer;
use crate::random::Rng;

/// Replayed frames are applied this many at a time, one transaction each.
const REPLAY_CHUNK: usize = 1024;

impl Writer {
    /// Makes everything so far durable in redb itself, so the journal can start over. Waits for
    /// the journal first: the checkpoint must not contain a change whose frame could still be
    /// lost, or a crash right after it would keep a write whose reply said it failed.
    pub(super) fn checkpoint(&mut self, journal: &Journal) {
        if self.poisoned.load(Ordering::Acquire) {
            // Nothing can be checkpointed any more; forgetting the due time also keeps the run
            // loop from waking at once, over and over, to try again.
            self.dirty_since = None;
            return;
        }
        if self.dirty_since.is_none() {
            return;
        }
        let started = Instant::now();
        let result = journal.sync_all().and_then(|()| self.commit_checkpoint());
        match result {
            Ok(()) => {
                journal.rewind();
                self.space.checkpointed(|| self.pages_in_use());
                self.metrics
                    .checkpoint_seconds
                    .observe(started.elapsed().as_secs_f64());
            }
            Err(error) => {
                tracing::error!(%error, "checkpoint failed; storage is poisoned and refuses writes until restart");
                self.poisoned.store(true, Ordering::Release);
            }
        }
    }

    /// Bytes of the data file redb's pages use (walks every table; `None` if that fails).
    fn pages_in_use(&self) -> Option<u64> {
        let txn = self.db.begin_write().ok()?;
        let stats = txn.stats().ok()?;
        let bytes = stats.allocated_pages() * stats.page_size() as u64;
        // Nothing was written: dropping the transaction aborts it.
        drop(txn);
        Some(bytes)
    }

    /// The durable redb commit of a checkpoint: records the last frame it contains and the
    /// salt of the run's frames.
    fn commit_checkpoint(&mut self) -> Result<(), StoreError> {
        let txn = self.db.begin_write()?;
        {
            let mut meta = txn.open_table(META)?;
            meta.insert(META_JOURNAL_SEQ, self.journal_seq)?;
            meta.insert(META_JOURNAL_SALT, self.journal_salt)?;
        }
        txn.commit()?;
        self.dirty_since = None;
        self.journal_bytes = 0;
        Ok(())
    }

    /// At start-up, before the thread runs: applies the journal frames written after the last
    /// checkpoint, then checkpoints them together with a fresh salt for this run's frames.
    /// Returns how many frames were replayed.
    ///
    /// A frame whose checksum matches but whose ops do not decode stops the start-up with an
    /// error rather than being skipped: it was acknowledged, and skipping it would lose it.
    pub fn recover(&mut self, path: &Path) -> Result<u64, StoreError> {
        let (checkpointed, salt) = {
            let txn = self.db.begin_read()?;
            let meta = txn.open_table(META)?;
            let seq = meta.get(META_JOURNAL_SEQ)?.map_or(0, |v| v.value());
            let salt = meta.get(META_JOURNAL_SALT)?.map_or(0, |v| v.value());
            (seq, salt)
        };
        let mut chunk = Vec::with_capacity(REPLAY_CHUNK);
        let disk = self.disk.clone();
        let last = frame::replay(&*disk, path, checkpointed, salt, |seq, payload| {
            chunk.push(decode_ops(payload)?);
            if chunk.len() == REPLAY_CHUNK {
                self.replay_chunk(&std::mem::take(&mut chunk), seq)?;
            }
            Ok(())
        })?;
        self.replay_chunk(&chunk, last)?;
        self.journal_seq = last;
        // Every run checksums its frames with a salt of its own, durable (in the checkpoint
        // below) before its first frame is written: frames an earlier run left in the file may
        // reuse this run's sequence numbers (a crash can leave intact, never acknowledged
        // frames behind a torn one) but never pass this run's checksum.
        self.journal_salt = Rng::from_entropy().next_u64();
        self.commit_checkpoint()?;
        Ok(last - checkpointed)
    }

    /// Applies replayed frames, the last of them frame `last`, in one transaction.
    fn replay_chunk(&mut self, frames: &[Vec<WriteOp>], last: u64) -> Result<(), StoreError> {
        if frames.is_empty() {
            return Ok(());
        }
        let mut txn = self.db.begin_write()?;
        txn.set_durability(Durability::None)?;
        {
            let mut tables = Tables::open(&txn)?;
            for op in frames.iter().flatten() {
                self.apply(&mut tables, op)?;
            }
            self.finish(&mut tables, last)?;
        }
        txn.commit()?;
        Ok(())
    }
}
