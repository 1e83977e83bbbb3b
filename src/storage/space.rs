//! The free-space floor: writes that add data stop *before* the disk is full.
//!
//! A write that fails with ENOSPC inside redb cannot be taken back cleanly: redb refuses every
//! later transaction, and the broker has already changed its memory for it, so the store must
//! be poisoned and restarted. RabbitMQ's disk alarm shows the way out: keep a floor of free
//! space on the data volume, and while the volume is below it refuse the writes that *add*
//! data (enqueues, outbox messages, schedule changes) with 507 `insufficient_storage`, changing
//! nothing, while the writes that drain (polls, acks, nacks, cancels, deletes, retention) go
//! on and use the room the floor kept. Once space is freed, the next write is accepted again:
//! while low, every write that adds data looks at the volume afresh.
//!
//! What the volume has free is not all wharf may still use: the journal written since the last
//! checkpoint is yet to be written into the data file, whose pages redb holds in memory until
//! the checkpoint's durable commit writes them (copy-on-write, next to the pages they replace).
//! So the guard counts that journal three times against the free space: the volume is *low* when
//! `available < floor + 3 * journal since the checkpoint`. Without that, a volume that looked
//! fine filled up during the checkpoint and poisoned the store (seen on a 32 MiB tmpfs).
//!
//! Because that estimate is pessimistic, the writer checkpoints early when the journal alone
//! puts the volume below the floor ([`SpaceGuard::wants_checkpoint`]); afterwards the reading
//! is exact again.
//!
//! Space freed *inside* the data file (jobs acked and deleted) does not go back to the volume:
//! redb reuses the pages for later writes instead. So once the volume is below the floor, each
//! checkpoint also counts the data file's reusable bytes (what it takes on disk minus the pages
//! redb has in use; finding those walks the database, which is why only a low volume pays for
//! it) as free. A volume that wharf filled by itself is thus writable again once consumers
//! drained it and a checkpoint has run, not only when something else frees space.
//!
//! Readings come from the [`Disk`] (statvfs on the real one). The writer thread takes one after
//! every [`CHECK_EVERY_BYTES`] of journal it writes and after each checkpoint, so a burst
//! cannot run far past the floor between readings; admission takes one when the last is older
//! than [`STALE_AFTER`], which notices another process filling the volume while wharf was idle.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::disk::{Disk, Space};
use super::error::StoreError;

/// The journal since the last checkpoint counts this many times its size against the free
/// space: a checkpoint of 9.8 MiB of journal (165 single-job enqueues of 60 KB) took 21.8 MiB
/// of a tmpfs.
const PENDING_FACTOR: u64 = 3;
/// With no configured floor: this much free space, or an eighth of a smaller volume.
pub const DEFAULT_FLOOR_BYTES: u64 = 64 << 20;
/// The writer reads the volume again after this many journal bytes.
const CHECK_EVERY_BYTES: usize = 256 << 10;
/// Admission reads the volume again when the last reading is older than this.
const STALE_AFTER: Duration = Duration::from_secs(1);

/// The floor and the last reading of the data volume, shared by admission and the writer.
#[derive(Debug)]
pub struct SpaceGuard {
    disk: Arc<dyn Disk>,
    dir: PathBuf,
    /// The data file, whose reusable bytes count as free while the volume is low.
    data_file: PathBuf,
    /// `None`: [`DEFAULT_FLOOR_BYTES`], capped at an eighth of the volume.
    configured: Option<u64>,
    /// Whether the last look found the volume low (for the log's transitions).
    low: AtomicBool,
    available: AtomicU64,
    floor: AtomicU64,
    /// Journal bytes written since the last checkpoint: still to be written to the data file.
    pending: AtomicU64,
    /// Bytes the data file takes on disk that redb does not use (counted at the last
    /// checkpoint, and only while the volume was low; else 0).
    reusable: AtomicU64,
    /// Journal bytes written since the last reading (the writer's count).
    unchecked_bytes: AtomicUsize,
    read_at: Mutex<Instant>,
}

/// What the last reading found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpaceReading {
    /// Bytes free for wharf: free on the data volume, plus (while it is low) the data file's
    /// reusable bytes.
    pub available: u64,
    /// The floor below which writes that add data are refused.
    pub floor: u64,
    /// Journal bytes the next checkpoint writes into the data file.
    pub pending: u64,
    /// Whether the volume is below the floor, counting the pending checkpoint three times.
    pub low: bool,
}

impl SpaceGuard {
    /// A guard for the volume holding `dir`, read once now.
    pub fn new(
        disk: Arc<dyn Disk>,
        dir: PathBuf,
        data_file: PathBuf,
        configured: Option<u64>,
    ) -> SpaceGuard {
        let guard = SpaceGuard {
            disk,
            dir,
            data_file,
            configured,
            low: AtomicBool::new(false),
            available: AtomicU64::new(u64::MAX),
            floor: AtomicU64::new(0),
            pending: AtomicU64::new(0),
            reusable: AtomicU64::new(0),
            unchecked_bytes: AtomicUsize::new(0),
            read_at: Mutex::new(Instant::now()),
        };
        guard.read();
        guard
    }

    /// Whether a write that adds data may go ahead: reads the volume afresh when it was low
    /// or the last reading is stale.
    pub fn admit_growth(&self) -> Result<(), StoreError> {
        let stale = self.read_at.lock().elapsed() >= STALE_AFTER;
        if self.reading().low || stale {
            self.read();
        }
        let reading = self.reading();
        if reading.low {
            return Err(StoreError::InsufficientStorage {
                available: reading.available,
                floor: reading.floor,
            });
        }
        Ok(())
    }

    /// Counts `bytes` of journal written by the writer; reads the volume every
    /// [`CHECK_EVERY_BYTES`].
    pub fn written(&self, bytes: usize) {
        self.pending.fetch_add(bytes as u64, Ordering::AcqRel);
        let before = self.unchecked_bytes.fetch_add(bytes, Ordering::Relaxed);
        if before + bytes >= CHECK_EVERY_BYTES {
            self.read();
        }
    }

    /// A checkpoint wrote `covered` bytes of journal into the data file: they are no longer
    /// pending, and the volume is read again. If it is below the floor, the data file's
    /// reusable bytes count too: `in_use` says how many bytes of it redb's pages take (an
    /// expensive walk, only made then).
    pub fn checkpointed(&self, covered: u64, in_use: impl FnOnce() -> Option<u64>) {
        let _ = self
            .pending
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |p| {
                Some(p.saturating_sub(covered))
            });
        self.reusable.store(0, Ordering::Release);
        self.read();
        if self.available.load(Ordering::Acquire) >= self.floor.load(Ordering::Acquire) {
            return;
        }
        let on_disk = self.disk.allocated_bytes(&self.data_file);
        if let (Ok(on_disk), Some(in_use)) = (on_disk, in_use()) {
            self.reusable
                .store(on_disk.saturating_sub(in_use), Ordering::Release);
            self.read();
        }
    }

    /// Whether a checkpoint now would let writes that add data in again: the volume is low
    /// only because of the journal not yet checkpointed, which a checkpoint turns into real
    /// use of the data file, measured rather than estimated.
    pub fn wants_checkpoint(&self) -> bool {
        let reading = self.reading();
        reading.low && reading.pending > 0 && reading.available >= reading.floor
    }

    /// The last reading, against what is pending now.
    pub fn reading(&self) -> SpaceReading {
        let available = self
            .available
            .load(Ordering::Acquire)
            .saturating_add(self.reusable.load(Ordering::Acquire));
        let floor = self.floor.load(Ordering::Acquire);
        let pending = self.pending.load(Ordering::Acquire);
        SpaceReading {
            available,
            floor,
            pending,
            low: available < floor.saturating_add(pending.saturating_mul(PENDING_FACTOR)),
        }
    }

    /// Reads the volume now. A reading that fails (the directory is gone, say) leaves the
    /// last one in place: the write itself will then report what is wrong.
    fn read(&self) {
        self.unchecked_bytes.store(0, Ordering::Relaxed);
        // Held while the volume is measured and the figures stored: readings by several
        // threads (admission, the writer, the checkpoint) then land in the order they were
        // taken, and an older one never overwrites a newer (a volume grown a moment ago
        // would otherwise still look full).
        let mut read_at = self.read_at.lock();
        *read_at = Instant::now();
        let space = match self.disk.space(&self.dir) {
            Ok(space) => space,
            Err(error) => {
                tracing::warn!(%error, dir = %self.dir.display(), "could not read the free space");
                return;
            }
        };
        let floor = self.floor_for(space);
        self.available.store(space.available, Ordering::Release);
        self.floor.store(floor, Ordering::Release);
        let reading = self.reading();
        let was_low = self.low.swap(reading.low, Ordering::AcqRel);
        if reading.low && !was_low {
            tracing::warn!(
                available = reading.available,
                floor,
                pending_checkpoint = reading.pending,
                "the data volume is below its free-space floor: enqueues, outbox messages and \
                 schedule changes are refused (507) until space is freed; acks and polls go on"
            );
        } else if was_low && !reading.low {
            tracing::info!(
                available = reading.available,
                floor,
                "the data volume is above its free-space floor again: accepting all writes"
            );
        }
    }

    fn floor_for(&self, space: Space) -> u64 {
        self.configured
            .unwrap_or_else(|| DEFAULT_FLOOR_BYTES.min(space.total / 8))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::path::Path;

    use super::*;
    use crate::storage::faulty::FaultyDisk;

    /// A file system block: the faulty disk allocates whole blocks, as a real one does.
    const B: u64 = 4096;

    #[test]
    fn growth_is_refused_below_the_floor_and_admitted_again_once_space_is_freed() {
        let disk = FaultyDisk::new();
        disk.set_capacity(Some(1000 * B));
        let file = disk.open(Path::new("/d/f")).unwrap();
        let guard = SpaceGuard::new(
            Arc::new(disk.clone()),
            "/d".into(),
            "/d/f".into(),
            Some(300 * B),
        );
        assert!(guard.admit_growth().is_ok());
        file.write_at(0, &vec![1; 800 * B as usize]).unwrap();
        // Nothing told the guard to look again, and admission's reading is fresh.
        assert!(guard.admit_growth().is_ok(), "no new reading yet");
        guard.checkpointed(u64::MAX, || None);
        let refused = guard.admit_growth().unwrap_err();
        assert!(
            matches!(
                refused,
                StoreError::InsufficientStorage { available, floor }
                    if available == 200 * B && floor == 300 * B
            ),
            "{refused:?}"
        );
        assert!(guard.reading().low);
        // Freed: the very next admission looks again.
        file.set_len(100 * B).unwrap();
        assert!(guard.admit_growth().is_ok());
        assert_eq!(guard.reading().available, 900 * B);
    }

    #[test]
    fn the_journal_a_checkpoint_has_yet_to_write_counts_three_times_against_the_floor() {
        let disk = FaultyDisk::new();
        disk.set_capacity(Some(1 << 30));
        let guard = SpaceGuard::new(
            Arc::new(disk.clone()),
            "/d".into(),
            "/d/f".into(),
            Some(600 << 20),
        );
        guard.written(100 << 20);
        assert!(guard.admit_growth().is_ok(), "600 + 3 * 100 MiB of 1 GiB");
        guard.written(120 << 20);
        assert!(guard.admit_growth().is_err(), "600 + 3 * 220 MiB");
        guard.checkpointed(u64::MAX, || None);
        assert_eq!(guard.reading().pending, 0);
        assert!(guard.admit_growth().is_ok());
    }

    #[test]
    fn pages_freed_inside_the_data_file_count_as_free_once_the_volume_is_low() {
        let disk = FaultyDisk::new();
        disk.set_capacity(Some(1000 * B));
        let file = disk.open(Path::new("/d/f")).unwrap();
        file.write_at(0, &vec![1; 900 * B as usize]).unwrap();
        let guard = SpaceGuard::new(
            Arc::new(disk.clone()),
            "/d".into(),
            "/d/f".into(),
            Some(300 * B),
        );
        assert!(guard.admit_growth().is_err(), "100 blocks free");
        // The file's pages were freed inside it: 500 of its 900 blocks are still in use.
        guard.checkpointed(u64::MAX, || Some(500 * B));
        assert_eq!(guard.reading().available, 500 * B);
        assert!(guard.admit_growth().is_ok());
        // Not walked while the volume alone is above the floor.
        file.set_len(100 * B).unwrap();
        guard.checkpointed(u64::MAX, || {
            panic!("walked the database with room to spare")
        });
        assert_eq!(guard.reading().available, 900 * B);
    }

    #[test]
    fn the_default_floor_is_an_eighth_of_a_small_volume() {
        let disk = FaultyDisk::new();
        disk.set_capacity(Some(8 << 20));
        let guard = SpaceGuard::new(Arc::new(disk.clone()), "/d".into(), "/d/f".into(), None);
        assert_eq!(guard.reading().floor, 1 << 20);
        disk.set_capacity(Some(100 << 30));
        guard.checkpointed(u64::MAX, || None);
        assert_eq!(guard.reading().floor, DEFAULT_FLOOR_BYTES);
    }
}
