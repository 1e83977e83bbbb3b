//! A disk for tests, held in memory, that fails or loses power on command.
//!
//! Each file keeps two images: what the process sees (every write so far) and what survives a
//! power loss (the state as of its last successful `sync`, like the page cache against the
//! platter). [`FaultyDisk::crash_image`] is the disk a machine finds after losing power: only
//! what was synced, optionally with the last unsynced write torn at a random byte.
//! [`FaultyDisk::fail`] makes the Nth write or sync from now on fail with EIO or ENOSPC, or
//! cuts the power there: from that operation on, every write and sync fails, as in a process
//! that died, and nothing more reaches the durable image. [`FaultyDisk::set_capacity`] gives it
//! a size: a write that would fill it beyond fails with ENOSPC, as on a full volume.
//!
//! Not used by the server: a test puts it in [`super::StoreOptions::disk`].

use std::collections::{BTreeSet, HashMap};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;

use super::disk::{DatabaseFile, Disk, DiskFile, Space};
use crate::random::Rng;

/// Which operations a [`Fault`] counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultOn {
    /// Writes (and length changes).
    Write,
    /// Syncs.
    Sync,
    /// Both.
    Any,
}

/// What happens at the faulty operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// That operation fails with EIO; later ones work.
    Eio,
    /// That operation fails with ENOSPC; later ones work (space was freed).
    Enospc,
    /// The power goes: that operation and every later write or sync fail with EIO and change
    /// nothing durable.
    PowerLoss,
    /// The thread doing that operation panics (a bug in the I/O path, as the store sees it).
    Panic,
}

/// A fault armed on a disk: the `nth` counted operation from when it is armed (1: the next).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fault {
    /// Which operations count.
    pub on: FaultOn,
    /// Which of them fails.
    pub nth: u64,
    /// How.
    pub kind: FaultKind,
}

/// A change not synced yet.
#[derive(Debug, Clone)]
enum Unsynced {
    Write { offset: u64, data: Vec<u8> },
    SetLen(u64),
}

#[derive(Debug, Default, Clone)]
struct MemFile {
    /// What reads see.
    data: Vec<u8>,
    /// What survives a power loss.
    durable: Vec<u8>,
    /// The changes since the last sync, in order.
    unsynced: Vec<Unsynced>,
    /// The blocks the file takes on the volume.
    blocks: Blocks,
}

/// A file system's allocation unit.
const BLOCK: u64 = 4096;

/// The blocks a file takes on the volume, as a file system allocates them: a write takes the
/// blocks it touches, growing the length alone takes none (a sparse file: redb grows its file
/// by doubling it and fills it page by page), and shrinking it gives back the blocks past the
/// new end.
#[derive(Debug, Default, Clone)]
struct Blocks(BTreeSet<u64>);

impl Blocks {
    fn bytes(&self) -> u64 {
        self.0.len() as u64 * BLOCK
    }

    fn range(offset: u64, len: u64) -> std::ops::Range<u64> {
        if len == 0 {
            return 0..0;
        }
        offset / BLOCK..offset.saturating_add(len).div_ceil(BLOCK)
    }

    /// Bytes a write of `len` bytes at `offset` would add.
    fn added_by(&self, offset: u64, len: u64) -> u64 {
        let new = Blocks::range(offset, len)
            .filter(|block| !self.0.contains(block))
            .count();
        new as u64 * BLOCK
    }

    fn write(&mut self, offset: u64, len: u64) {
        self.0.extend(Blocks::range(offset, len));
    }

    fn truncate(&mut self, len: u64) {
        self.0.split_off(&len.div_ceil(BLOCK));
    }
}

fn apply(image: &mut Vec<u8>, change: &Unsynced) {
    match change {
        Unsynced::Write { offset, data } => {
            let start = usize::try_from(*offset).unwrap_or(usize::MAX);
            let end = start.saturating_add(data.len());
            if image.len() < end {
                image.resize(end, 0);
            }
            image[start..end].copy_from_slice(data);
        }
        Unsynced::SetLen(len) => image.resize(usize::try_from(*len).unwrap_or(usize::MAX), 0),
    }
}

#[derive(Debug, Default)]
struct State {
    files: HashMap<PathBuf, MemFile>,
    fault: Option<Fault>,
    /// Operations counted since the fault was armed.
    counted: u64,
    /// The power is gone: nothing is written or synced any more.
    dead: bool,
    /// Operations done, faults included: writes and syncs.
    writes: u64,
    syncs: u64,
    /// The volume's size; `None`: unbounded.
    capacity: Option<u64>,
}

impl State {
    /// Counts an operation; the error it must fail with, if any.
    fn check(&mut self, sync: bool) -> io::Result<()> {
        if sync {
            self.syncs += 1;
        } else {
            self.writes += 1;
        }
        if self.dead {
            return Err(io::Error::from_raw_os_error(EIO));
        }
        let Some(fault) = self.fault else {
            return Ok(());
        };
        let counts = match fault.on {
            FaultOn::Write => !sync,
            FaultOn::Sync => sync,
            FaultOn::Any => true,
        };
        if !counts {
            return Ok(());
        }
        self.counted += 1;
        if self.counted < fault.nth {
            return Ok(());
        }
        self.fault = None;
        match fault.kind {
            FaultKind::Eio => Err(io::Error::from_raw_os_error(EIO)),
            FaultKind::Enospc => Err(io::Error::from_raw_os_error(ENOSPC)),
            FaultKind::PowerLoss => {
                self.dead = true;
                Err(io::Error::from_raw_os_error(EIO))
            }
            // The lock is parking_lot's: unwinding releases it, unpoisoned.
            FaultKind::Panic => panic!("faulty disk: the injected panic"),
        }
    }
}

impl State {
    fn allocated(&self) -> u64 {
        self.files.values().map(|f| f.blocks.bytes()).sum()
    }

    /// Fails with ENOSPC if taking `added` more bytes would fill the volume beyond its
    /// capacity.
    fn make_room(&self, added: u64) -> io::Result<()> {
        let Some(capacity) = self.capacity else {
            return Ok(());
        };
        if added > 0 && self.allocated() + added > capacity {
            return Err(io::Error::from_raw_os_error(ENOSPC));
        }
        Ok(())
    }
}

const EIO: i32 = 5;
const ENOSPC: i32 = 28;

/// An in-memory disk that fails or loses power on command. Clones share the disk.
#[derive(Debug, Clone, Default)]
pub struct FaultyDisk {
    state: Arc<Mutex<State>>,
}

impl FaultyDisk {
    /// An empty disk that works.
    pub fn new() -> FaultyDisk {
        FaultyDisk::default()
    }

    /// Arms `fault` (replacing one armed before); its count starts now.
    pub fn fail(&self, fault: Fault) {
        let mut state = self.state.lock();
        state.fault = Some(fault);
        state.counted = 0;
    }

    /// Gives the disk a size (`None`: unbounded). Lowering it below what is in use fails only
    /// later writes that grow a file; raising it frees space.
    pub fn set_capacity(&self, capacity: Option<u64>) {
        self.state.lock().capacity = capacity;
    }

    /// Writes and syncs done so far (failed ones included).
    pub fn operations(&self) -> (u64, u64) {
        let state = self.state.lock();
        (state.writes, state.syncs)
    }

    /// Whether the power is gone.
    pub fn is_dead(&self) -> bool {
        self.state.lock().dead
    }

    /// The disk as it is after a power loss now: each file as of its last sync. With `tear`,
    /// the last unsynced write of each file also reaches the disk, cut at a random byte.
    pub fn crash_image(&self, tear: Option<&mut Rng>) -> FaultyDisk {
        let state = self.state.lock();
        let mut rng = tear;
        let files = state
            .files
            .iter()
            .map(|(path, file)| {
                let mut durable = file.durable.clone();
                if let Some(rng) = rng.as_deref_mut()
                    && let Some(Unsynced::Write { offset, data }) = file
                        .unsynced
                        .iter()
                        .rev()
                        .find(|c| matches!(c, Unsynced::Write { .. }))
                {
                    let kept = (rng.next_u64() % (data.len() as u64 + 1)) as usize;
                    let torn = Unsynced::Write {
                        offset: *offset,
                        data: data[..kept].to_vec(),
                    };
                    apply(&mut durable, &torn);
                }
                let mut blocks = file.blocks.clone();
                blocks.truncate(durable.len() as u64);
                let image = MemFile {
                    data: durable.clone(),
                    blocks,
                    durable,
                    unsynced: Vec::new(),
                };
                (path.clone(), image)
            })
            .collect();
        FaultyDisk {
            state: Arc::new(Mutex::new(State {
                files,
                capacity: state.capacity,
                ..State::default()
            })),
        }
    }

    fn file(&self, path: &Path) -> FaultyFile {
        self.state.lock().files.entry(path.to_owned()).or_default();
        FaultyFile {
            disk: self.clone(),
            path: path.to_owned(),
        }
    }
}

impl Disk for FaultyDisk {
    fn open(&self, path: &Path) -> io::Result<Box<dyn DiskFile>> {
        Ok(Box::new(self.file(path)))
    }

    fn exists(&self, path: &Path) -> io::Result<bool> {
        Ok(self.state.lock().files.contains_key(path))
    }

    fn sync_dir(&self, _dir: &Path) -> io::Result<()> {
        self.state.lock().check(true)
    }

    fn database(&self, path: &Path) -> io::Result<DatabaseFile> {
        Ok(DatabaseFile::Other(Box::new(self.file(path))))
    }

    fn allocated_bytes(&self, path: &Path) -> io::Result<u64> {
        let state = self.state.lock();
        Ok(state.files.get(path).ok_or_else(missing)?.blocks.bytes())
    }

    fn space(&self, _dir: &Path) -> io::Result<Space> {
        let state = self.state.lock();
        let total = state.capacity.unwrap_or(u64::MAX);
        Ok(Space {
            available: total.saturating_sub(state.allocated()),
            total,
        })
    }
}

/// A file of a [`FaultyDisk`].
#[derive(Debug)]
struct FaultyFile {
    disk: FaultyDisk,
    path: PathBuf,
}

impl FaultyFile {
    fn with<T>(&self, f: impl FnOnce(&mut State, &Path) -> io::Result<T>) -> io::Result<T> {
        let mut state = self.disk.state.lock();
        f(&mut state, &self.path)
    }
}

fn missing() -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, "no such file on the faulty disk")
}

impl DiskFile for FaultyFile {
    fn size(&self) -> io::Result<u64> {
        self.with(|state, path| {
            let file = state.files.get(path).ok_or_else(missing)?;
            Ok(file.data.len() as u64)
        })
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.with(|state, path| {
            let file = state.files.get(path).ok_or_else(missing)?;
            let start = usize::try_from(offset).unwrap_or(usize::MAX);
            let end = start.saturating_add(buf.len());
            let bytes = file
                .data
                .get(start..end)
                .ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))?;
            buf.copy_from_slice(bytes);
            Ok(())
        })
    }

    fn write_at(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.with(|state, path| {
            state.check(false)?;
            let len = data.len() as u64;
            let added = state
                .files
                .get(path)
                .ok_or_else(missing)?
                .blocks
                .added_by(offset, len);
            state.make_room(added)?;
            let file = state.files.get_mut(path).ok_or_else(missing)?;
            file.blocks.write(offset, len);
            let change = Unsynced::Write {
                offset,
                data: data.to_vec(),
            };
            apply(&mut file.data, &change);
            file.unsynced.push(change);
            Ok(())
        })
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.with(|state, path| {
            state.check(false)?;
            let file = state.files.get_mut(path).ok_or_else(missing)?;
            file.blocks.truncate(len);
            let change = Unsynced::SetLen(len);
            apply(&mut file.data, &change);
            file.unsynced.push(change);
            Ok(())
        })
    }

    fn sync(&self) -> io::Result<()> {
        self.with(|state, path| {
            state.check(true)?;
            let file = state.files.get_mut(path).ok_or_else(missing)?;
            for change in std::mem::take(&mut file.unsynced) {
                apply(&mut file.durable, &change);
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_power_loss_keeps_only_what_was_synced() {
        let disk = FaultyDisk::new();
        let file = disk.open(Path::new("/f")).unwrap();
        file.write_at(0, b"synced").unwrap();
        file.sync().unwrap();
        file.write_at(6, b" and not").unwrap();
        assert_eq!(file.size().unwrap(), 14, "the process sees every write");
        let after = disk.crash_image(None);
        let survivor = after.open(Path::new("/f")).unwrap();
        let mut read = vec![0; 6];
        survivor.read_at(0, &mut read).unwrap();
        assert_eq!((&read[..], survivor.size().unwrap()), (&b"synced"[..], 6));
        // Torn: a prefix of the last unsynced write, at most all of it.
        let mut rng = Rng::new(3);
        let torn = disk.crash_image(Some(&mut rng));
        let len = torn.open(Path::new("/f")).unwrap().size().unwrap();
        assert!((6..=14).contains(&len), "{len}");
    }

    #[test]
    fn faults_hit_the_nth_operation_and_power_loss_stops_everything() {
        let disk = FaultyDisk::new();
        let file = disk.open(Path::new("/f")).unwrap();
        disk.fail(Fault {
            on: FaultOn::Sync,
            nth: 2,
            kind: FaultKind::Enospc,
        });
        file.write_at(0, b"a").unwrap();
        file.sync().unwrap();
        let error = file.sync().unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::StorageFull);
        file.sync().unwrap();
        disk.fail(Fault {
            on: FaultOn::Write,
            nth: 1,
            kind: FaultKind::PowerLoss,
        });
        assert!(file.write_at(1, b"b").is_err());
        assert!(file.sync().is_err() && disk.is_dead());
        assert_eq!(
            disk.crash_image(None)
                .open(Path::new("/f"))
                .unwrap()
                .size()
                .unwrap(),
            1
        );
    }

    #[test]
    fn a_full_volume_counts_written_blocks_not_file_lengths() {
        let disk = FaultyDisk::new();
        disk.set_capacity(Some(4 * BLOCK));
        let file = disk.open(Path::new("/f")).unwrap();
        // Growing the length takes nothing: the file is sparse.
        file.set_len(100 * BLOCK).unwrap();
        assert_eq!(disk.allocated_bytes(Path::new("/f")).unwrap(), 0);
        // A write far into it takes only the blocks it touches (two here).
        file.write_at(50 * BLOCK - 1, b"ab").unwrap();
        file.write_at(90 * BLOCK, &[1; BLOCK as usize]).unwrap();
        assert_eq!(disk.allocated_bytes(Path::new("/f")).unwrap(), 3 * BLOCK);
        // Overwriting takes nothing more; a fifth block does not fit.
        file.write_at(90 * BLOCK, b"again").unwrap();
        file.write_at(0, &[1; BLOCK as usize]).unwrap();
        let error = file.write_at(10 * BLOCK, b"x").unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::StorageFull);
        // Shrinking gives back the blocks past the new end.
        file.set_len(60 * BLOCK).unwrap();
        assert_eq!(disk.allocated_bytes(Path::new("/f")).unwrap(), 3 * BLOCK);
        file.write_at(10 * BLOCK, b"x").unwrap();
    }
}
