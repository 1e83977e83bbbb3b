//! The journal: a write-ahead log in front of redb.
//!
//! A durable redb commit rewrites every B-tree page a group touched, in several tables, and
//! fsyncs them; it cost ~1 ms for a group of 64 jobs here, against ~0.25 ms for an fsync of
//! the same bytes appended to one file. So the writer commits to redb *without* fsync, appends
//! the group's ops to this journal as one frame, and a second thread (`wharf-journal`) writes
//! and fdatasyncs the journal and only then answers the requests that wait for durability.
//! While it syncs, the writer already applies the next group, and one fdatasync covers every
//! frame appended meanwhile, so the two stages overlap and group on their own.
//!
//! Every so often the writer makes a *checkpoint*: a durable redb commit that records the last
//! frame it contains (`META_JOURNAL_SEQ`). The journal is then rewound and overwritten from the
//! start; after a crash, redb reopens at its last checkpoint and the frames after it are applied
//! again, in order (the ops are deterministic, see [`super::writer`]).
//!
//! A frame is `len: u32 LE | crc32: u32 LE | seq: u64 LE | payload`, the CRC covering seq and
//! payload, the payload a format byte and the postcard-encoded ops. Reading stops at the first
//! frame that is torn (short, bad CRC) or stale (a sequence other than the next one): what
//! follows a torn write was never acknowledged, and stale frames are an earlier round's.

use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use serde::Serialize;
use serde::ser::SerializeSeq;

use super::records::FORMAT_VERSION;
use super::writer::{Reply, WriteOp, Written};
use super::{StoreError, StoreMetrics};

/// The journal file inside the data directory.
pub const JOURNAL_FILE: &str = "wharf.journal";

const HEADER_LEN: usize = 16;
/// Refuse to read a frame claiming to be larger (a torn length field). Frames stay far below:
/// a commit group stops at 64 MiB of ops plus one request of at most `max_body_bytes`
/// (at most 256 MiB).
const MAX_FRAME_LEN: usize = 1 << 30;

/// Appends one frame holding `ops`, in order, to `out`.
pub(super) fn encode_frame<'a, I>(seq: u64, ops: I, out: &mut Vec<u8>) -> Result<(), StoreError>
where
    I: Iterator<Item = &'a WriteOp> + Clone,
{
    struct Ops<I>(I);
    impl<'a, I: Iterator<Item = &'a WriteOp> + Clone> Serialize for Ops<I> {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let mut seq = s.serialize_seq(Some(self.0.clone().count()))?;
            for op in self.0.clone() {
                seq.serialize_element(op)?;
            }
            seq.end()
        }
    }
    let start = out.len();
    let mut buf = std::mem::take(out);
    buf.extend_from_slice(&[0; HEADER_LEN]);
    buf.push(FORMAT_VERSION);
    let mut buf = postcard::to_extend(&Ops(ops), buf).map_err(StoreError::Journal)?;
    let len = buf.len() - start - HEADER_LEN;
    buf[start + 8..start + HEADER_LEN].copy_from_slice(&seq.to_le_bytes());
    let crc = crc32fast::hash(&buf[start + 8..]);
    buf[start..start + 4].copy_from_slice(&(len as u32).to_le_bytes());
    buf[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    *out = buf;
    Ok(())
}

/// Calls `apply` with the ops of every intact frame after `applied`, in order, and returns the
/// sequence of the last frame read (or `applied`). A missing file reads as empty.
pub(super) fn replay(
    path: &Path,
    applied: u64,
    mut apply: impl FnMut(u64, Vec<WriteOp>) -> Result<(), StoreError>,
) -> Result<u64, StoreError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(applied),
        Err(e) => return Err(StoreError::Io(e)),
    };
    let mut last = applied;
    let mut at = 0;
    while let Some((seq, payload)) = frame_at(&bytes, at) {
        at += HEADER_LEN + payload.len();
        if seq <= applied && last == applied {
            // The previous round, already in the checkpoint (a crash between the checkpoint
            // and the rewind leaves it in place).
            continue;
        }
        if seq != last + 1 {
            break; // stale: a frame of an earlier round past the end of this one
        }
        let Some((&version, ops)) = payload.split_first() else {
            break;
        };
        // Ops are encoded alike since version 2, the first with a journal.
        if !(2..=FORMAT_VERSION).contains(&version) {
            return Err(StoreError::Format {
                found: u64::from(version),
            });
        }
        let ops: Vec<WriteOp> = postcard::from_bytes(ops).map_err(StoreError::Journal)?;
        apply(seq, ops)?;
        last = seq;
    }
    Ok(last)
}

/// The frame starting at `at`, if it is whole and its checksum matches.
fn frame_at(bytes: &[u8], at: usize) -> Option<(u64, &[u8])> {
    let header = bytes.get(at..at + HEADER_LEN)?;
    let len = u32::from_le_bytes(header[0..4].try_into().ok()?) as usize;
    let crc = u32::from_le_bytes(header[4..8].try_into().ok()?);
    let seq = u64::from_le_bytes(header[8..16].try_into().ok()?);
    if len > MAX_FRAME_LEN {
        return None;
    }
    let checked = bytes.get(at + 8..at + HEADER_LEN + len)?;
    if crc32fast::hash(checked) != crc {
        return None;
    }
    Some((seq, &checked[8..]))
}

/// The writer's handle on the journal and its syncing thread.
pub(super) struct Journal {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

struct Shared {
    state: Mutex<State>,
    /// Wakes the syncer: frames appended, a sync asked for, shutdown.
    work: Condvar,
    /// Wakes the writer waiting in [`Journal::sync_all`].
    synced: Condvar,
    poisoned: Arc<AtomicBool>,
    metrics: Arc<StoreMetrics>,
}

#[derive(Default)]
struct State {
    /// Frames appended and not yet written.
    pending: Vec<u8>,
    /// Replies that wait for the pending frames' fsync, with what to answer.
    waiters: Vec<(Reply, Written)>,
    /// Sequence of the last frame appended, and of the last one known durable.
    appended: u64,
    durable: u64,
    /// Write the next frames from the start of the file (set after a checkpoint).
    rewind: bool,
    /// The writer waits for `durable == appended`.
    sync_asked: bool,
    shutdown: bool,
}

/// How the syncer treats frames nobody waits for.
#[derive(Debug, Clone, Copy)]
pub(super) struct SyncPolicy {
    /// Frames that nobody waits for are fsynced at most this long after they are written.
    pub flush_interval: Duration,
}

impl Journal {
    /// Opens the journal file empty; `durable` is the last frame already safe (in the
    /// checkpoint). Call after replay: everything the file held is in redb by then.
    pub fn start(
        path: &Path,
        durable: u64,
        policy: SyncPolicy,
        poisoned: Arc<AtomicBool>,
        metrics: Arc<StoreMetrics>,
    ) -> Result<Journal, StoreError> {
        // Emptied, not only rewound: a crash can leave a torn frame followed by later,
        // intact frames that were never acknowledged. This run's frames restart at the torn
        // one's sequence number, and if one of them ended exactly where such an old frame
        // starts, a later replay would take the old frame for the next one.
        let file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .map_err(StoreError::Io)?;
        // The file's length and its directory entry must be durable before any frame in it
        // counts (a run killed between creating the file and this point left them unsynced).
        file.sync_all().map_err(StoreError::Io)?;
        if let Some(dir) = path.parent() {
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(StoreError::Io)?;
        }
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                appended: durable,
                durable,
                rewind: true,
                ..State::default()
            }),
            work: Condvar::new(),
            synced: Condvar::new(),
            poisoned,
            metrics,
        });
        let syncer = Syncer {
            shared: shared.clone(),
            file,
            offset: 0,
            policy,
            unsynced_since: None,
        };
        let thread = std::thread::Builder::new()
            .name("wharf-journal".into())
            .spawn(move || syncer.run())
            .map_err(StoreError::Io)?;
        Ok(Journal {
            shared,
            thread: Some(thread),
        })
    }

    /// Queues one encoded frame (sequence `seq`) and the replies that wait for it to be durable.
    pub fn append(&self, seq: u64, frame: &[u8], waiters: Vec<(Reply, Written)>) {
        let mut state = self.shared.state.lock();
        state.pending.extend_from_slice(frame);
        state.appended = seq;
        state.waiters.extend(waiters);
        drop(state);
        self.shared.work.notify_one();
    }

    /// Waits until every appended frame is durable (or the journal failed).
    pub fn sync_all(&self) -> Result<(), StoreError> {
        let mut state = self.shared.state.lock();
        while state.durable < state.appended {
            if self.shared.poisoned.load(Ordering::Acquire) {
                return Err(StoreError::Poisoned);
            }
            state.sync_asked = true;
            self.shared.work.notify_one();
            self.shared.synced.wait(&mut state);
        }
        if self.shared.poisoned.load(Ordering::Acquire) {
            return Err(StoreError::Poisoned);
        }
        Ok(())
    }

    /// After a checkpoint: the frames so far are in redb, so the next ones may overwrite them.
    /// Call only after [`Journal::sync_all`], with nothing appended since.
    pub fn rewind(&self) {
        self.shared.state.lock().rewind = true;
    }

    /// Writes and fsyncs what is pending, answers its waiters, and stops the syncer.
    pub fn shutdown(&mut self) {
        self.shared.state.lock().shutdown = true;
        self.shared.work.notify_one();
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("the journal thread panicked");
        }
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The `wharf-journal` thread: owns the file.
struct Syncer {
    shared: Arc<Shared>,
    file: File,
    offset: u64,
    policy: SyncPolicy,
    /// When the oldest frame that is written but not fsynced was written.
    unsynced_since: Option<Instant>,
}

/// Marks the store failed if the syncer thread panics, so that nobody waits for it forever.
struct PanicGuard(Arc<Shared>);

impl Drop for PanicGuard {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.poisoned.store(true, Ordering::Release);
            self.0.synced.notify_all();
        }
    }
}

impl Syncer {
    fn run(mut self) {
        let _guard = PanicGuard(self.shared.clone());
        loop {
            let mut state = self.shared.state.lock();
            loop {
                if !state.pending.is_empty() || state.sync_asked || state.shutdown {
                    break;
                }
                match self.unsynced_since {
                    None => self.shared.work.wait(&mut state),
                    Some(since) => {
                        let deadline = since + self.policy.flush_interval;
                        if Instant::now() >= deadline {
                            break;
                        }
                        self.shared.work.wait_until(&mut state, deadline);
                    }
                }
            }
            let pending = std::mem::take(&mut state.pending);
            let waiters = std::mem::take(&mut state.waiters);
            let appended = state.appended;
            let rewind = std::mem::take(&mut state.rewind);
            let sync_asked = std::mem::take(&mut state.sync_asked);
            let shutdown = state.shutdown;
            drop(state);

            if rewind {
                self.offset = 0;
            }
            let must_sync = !waiters.is_empty()
                || sync_asked
                || shutdown
                || self
                    .unsynced_since
                    .is_some_and(|since| since.elapsed() >= self.policy.flush_interval);
            let result = self.write_and_sync(&pending, must_sync);
            let failed = result.is_err();
            if let Err(error) = result {
                tracing::error!(%error, "journal write failed; storage is poisoned and refuses writes until restart");
                self.shared.poisoned.store(true, Ordering::Release);
            }
            {
                let mut state = self.shared.state.lock();
                if must_sync && !failed {
                    state.durable = appended;
                }
            }
            self.shared.synced.notify_all();
            for (reply, written) in waiters {
                reply.send(if failed {
                    Err(StoreError::Poisoned)
                } else {
                    Ok(written)
                });
            }
            if shutdown || failed {
                // After a failure nothing more is written: the waiters still queued and every
                // later one are answered by the writer, which sees the poison flag.
                if failed {
                    self.fail_remaining();
                }
                return;
            }
        }
    }

    fn write_and_sync(&mut self, pending: &[u8], sync: bool) -> std::io::Result<()> {
        if !pending.is_empty() {
            self.file.seek(SeekFrom::Start(self.offset))?;
            self.file.write_all(pending)?;
            self.offset += pending.len() as u64;
            self.unsynced_since.get_or_insert_with(Instant::now);
        }
        if sync && self.unsynced_since.is_some() {
            let started = Instant::now();
            self.file.sync_data()?;
            self.shared
                .metrics
                .fsync_seconds
                .observe(started.elapsed().as_secs_f64());
            self.unsynced_since = None;
        }
        Ok(())
    }

    /// Answers whatever is still queued once the journal has failed, and keeps answering until
    /// shutdown so that no waiter hangs.
    fn fail_remaining(&mut self) {
        loop {
            let mut state = self.shared.state.lock();
            let waiters = std::mem::take(&mut state.waiters);
            state.pending.clear();
            let shutdown = state.shutdown;
            if waiters.is_empty() && !shutdown {
                self.shared.synced.notify_all();
                self.shared.work.wait(&mut state);
                continue;
            }
            drop(state);
            for (reply, _) in waiters {
                reply.send(Err(StoreError::Poisoned));
            }
            self.shared.synced.notify_all();
            if shutdown {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn op(name: &str) -> WriteOp {
        WriteOp::DeleteSchedule { name: name.into() }
    }

    fn names(ops: &[WriteOp]) -> Vec<String> {
        ops.iter()
            .map(|op| match op {
                WriteOp::DeleteSchedule { name } => name.clone(),
                other => panic!("unexpected op {other:?}"),
            })
            .collect()
    }

    /// Frames `seqs`, each holding one op named after its sequence.
    fn frames(seqs: impl IntoIterator<Item = u64>) -> Vec<u8> {
        let mut out = Vec::new();
        for seq in seqs {
            let ops = [op(&format!("s{seq}"))];
            encode_frame(seq, ops.iter(), &mut out).unwrap();
        }
        out
    }

    fn replayed(bytes: &[u8], applied: u64) -> (u64, Vec<String>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(JOURNAL_FILE);
        std::fs::write(&path, bytes).unwrap();
        let mut seen = Vec::new();
        let last = replay(&path, applied, |_, ops| {
            seen.extend(names(&ops));
            Ok(())
        })
        .unwrap();
        (last, seen)
    }

    #[test]
    fn frames_after_the_checkpoint_replay_in_order() {
        let bytes = frames(1..=4);
        assert_eq!(
            replayed(&bytes, 0),
            (
                4,
                vec!["s1", "s2", "s3", "s4"]
                    .into_iter()
                    .map(String::from)
                    .collect()
            )
        );
        assert_eq!(
            replayed(&bytes, 2),
            (4, vec!["s3".to_owned(), "s4".to_owned()])
        );
        assert_eq!(replayed(&bytes, 4), (4, Vec::new()));
    }

    #[test]
    fn a_torn_tail_ends_the_replay() {
        let bytes = frames(1..=3);
        // Cut inside the last frame: its fsync never finished, nobody was answered.
        let (last, seen) = replayed(&bytes[..bytes.len() - 3], 0);
        assert_eq!((last, seen.len()), (2, 2));
        // A flipped bit inside the second frame ends the replay before it.
        let mut corrupt = bytes.clone();
        let second = frames(1..=1).len();
        corrupt[second + HEADER_LEN + 2] ^= 0x40;
        assert_eq!(replayed(&corrupt, 0), (1, vec!["s1".to_owned()]));
    }

    #[test]
    fn stale_frames_of_an_earlier_round_are_not_replayed() {
        // Round one wrote 1..=5 and was checkpointed at 5; round two rewound and wrote 6..=7
        // over the start of the file, leaving 3..=5 behind it.
        let mut bytes = frames(6..=7);
        let old = frames(1..=5);
        let cut = frames(1..=2).len();
        bytes.extend_from_slice(&old[cut..]);
        assert_eq!(
            replayed(&bytes, 5),
            (7, vec!["s6".to_owned(), "s7".to_owned()])
        );
        // A crash between the checkpoint and the first new frame: the old round is all there.
        assert_eq!(replayed(&old, 5), (5, Vec::new()));
    }

    #[test]
    fn a_started_journal_holds_no_frame_of_an_earlier_run() {
        // After a crash, frames past a torn one were never acknowledged; this run reuses
        // their sequence numbers, so none of them may survive into it.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(JOURNAL_FILE);
        std::fs::write(&path, frames(1..=3)).unwrap();
        const SECONDS: &[f64] = &[1.0];
        let metrics = Arc::new(StoreMetrics {
            group_size: crate::metrics::Histogram::new(SECONDS, 1.0),
            apply_seconds: crate::metrics::Histogram::new(SECONDS, 1.0),
            fsync_seconds: crate::metrics::Histogram::new(SECONDS, 1.0),
            checkpoint_seconds: crate::metrics::Histogram::new(SECONDS, 1.0),
        });
        let policy = SyncPolicy {
            flush_interval: Duration::from_millis(10),
        };
        let mut journal = Journal::start(&path, 1, policy, Arc::default(), metrics).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
        let ops = [op("fresh")];
        let mut frame = Vec::new();
        encode_frame(2, ops.iter(), &mut frame).unwrap();
        journal.append(2, &frame, Vec::new());
        journal.sync_all().unwrap();
        journal.shutdown();
        assert_eq!(
            replayed(&std::fs::read(&path).unwrap(), 1),
            (2, vec!["fresh".to_owned()])
        );
    }

    #[test]
    fn a_missing_journal_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let last = replay(&dir.path().join(JOURNAL_FILE), 9, |_, _| Ok(())).unwrap();
        assert_eq!(last, 9);
    }
}
