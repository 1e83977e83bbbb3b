//! Where the store's bytes go: every write and fsync of the journal and of the database file
//! passes through [`Disk`], so that tests can put a disk that fails or loses power in the real
//! one's place ([`super::faulty`]).
//!
//! The interface is what the two files need and no more: positional reads and writes, a
//! length, and `sync` (fdatasync: the data, and the length when it grew). The database file
//! reaches redb as a [`redb::StorageBackend`]; on the real disk it is redb's own file backend,
//! locks included, so that two processes cannot open one data directory.

use std::fmt::Debug;
use std::fs::File;
use std::io;
use std::ops::Bound;
use std::os::unix::fs::FileExt;
use std::path::Path;

use redb::StorageBackend;
use redb::backends::FileBackend;

/// A file of the store.
pub trait DiskFile: Debug + Send + Sync + 'static {
    /// Its length in bytes.
    fn size(&self) -> io::Result<u64>;
    /// Fills `buf` from `offset` (an error if the file ends first).
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()>;
    /// Writes all of `data` at `offset`, growing the file if needed.
    fn write_at(&self, offset: u64, data: &[u8]) -> io::Result<()>;
    /// Sets its length (new bytes are zeros).
    fn set_len(&self, len: u64) -> io::Result<()>;
    /// Makes what was written durable (fdatasync).
    fn sync(&self) -> io::Result<()>;
}

/// The file system the store lives on.
pub trait Disk: Debug + Send + Sync + 'static {
    /// Opens the file at `path` for reading and writing, creating it (empty) if missing.
    fn open(&self, path: &Path) -> io::Result<Box<dyn DiskFile>>;
    /// Whether a file exists at `path`.
    fn exists(&self, path: &Path) -> io::Result<bool>;
    /// Makes the entries of directory `dir` durable (a file just created in it).
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
    /// The database file at `path`, as redb reads and writes it.
    fn database(&self, path: &Path) -> io::Result<DatabaseFile>;
    /// The size and free space of the volume holding directory `dir`.
    fn space(&self, dir: &Path) -> io::Result<Space>;
    /// Bytes the file at `path` takes on the volume (less than its length where it is sparse).
    fn allocated_bytes(&self, path: &Path) -> io::Result<u64>;
}

/// A volume's size and the part of it a non-root process may still fill.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Space {
    /// Bytes free for an unprivileged writer (statvfs `f_bavail`: the root reserve excluded).
    pub available: u64,
    /// The volume's size in bytes.
    pub total: u64,
}

/// The real file system.
#[derive(Debug, Default, Clone, Copy)]
pub struct RealDisk;

fn open_file(path: &Path) -> io::Result<File> {
    File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
}

impl Disk for RealDisk {
    fn open(&self, path: &Path) -> io::Result<Box<dyn DiskFile>> {
        Ok(Box::new(RealFile(open_file(path)?)))
    }

    fn exists(&self, path: &Path) -> io::Result<bool> {
        path.try_exists()
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }

    fn database(&self, path: &Path) -> io::Result<DatabaseFile> {
        let backend = FileBackend::new(open_file(path)?).map_err(io::Error::other)?;
        Ok(DatabaseFile::Real(backend))
    }

    fn allocated_bytes(&self, path: &Path) -> io::Result<u64> {
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::metadata(path)?;
        // st_blocks counts 512-byte units whatever the file system's block size.
        Ok(meta.blocks().saturating_mul(512).min(meta.len()))
    }

    fn space(&self, dir: &Path) -> io::Result<Space> {
        let stat = rustix::fs::statvfs(dir)?;
        Ok(Space {
            available: stat.f_bavail.saturating_mul(stat.f_frsize),
            total: stat.f_blocks.saturating_mul(stat.f_frsize),
        })
    }
}

/// A file of the real file system.
#[derive(Debug)]
struct RealFile(File);

impl DiskFile for RealFile {
    fn size(&self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.0.read_exact_at(buf, offset)
    }

    fn write_at(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.0.write_all_at(data, offset)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }

    fn sync(&self) -> io::Result<()> {
        self.0.sync_data()
    }
}

/// Reads a [`DiskFile`] from the start, as a stream (for replaying the journal).
pub struct Reader<'a> {
    file: &'a dyn DiskFile,
    offset: u64,
    len: u64,
}

impl<'a> Reader<'a> {
    /// A reader of the first `len` bytes of `file`.
    pub fn new(file: &'a dyn DiskFile, len: u64) -> Reader<'a> {
        Reader {
            file,
            offset: 0,
            len,
        }
    }
}

impl io::Read for Reader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.len.saturating_sub(self.offset);
        let n = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        if n == 0 {
            return Ok(0);
        }
        self.file.read_at(self.offset, &mut buf[..n])?;
        self.offset += n as u64;
        Ok(n)
    }
}

/// The database file as redb sees it: the real file with redb's own backend (and its locks),
/// or any other [`DiskFile`] (a test's), which takes no locks.
#[derive(Debug)]
pub enum DatabaseFile {
    /// A file of the real file system.
    Real(FileBackend),
    /// A file of another [`Disk`].
    Other(Box<dyn DiskFile>),
}

impl StorageBackend for DatabaseFile {
    fn len(&self) -> io::Result<u64> {
        match self {
            DatabaseFile::Real(file) => file.len(),
            DatabaseFile::Other(file) => file.size(),
        }
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> io::Result<()> {
        match self {
            DatabaseFile::Real(file) => file.read(offset, out),
            DatabaseFile::Other(file) => file.read_at(offset, out),
        }
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        match self {
            DatabaseFile::Real(file) => file.set_len(len),
            DatabaseFile::Other(file) => file.set_len(len),
        }
    }

    fn sync_data(&self) -> io::Result<()> {
        match self {
            DatabaseFile::Real(file) => file.sync_data(),
            DatabaseFile::Other(file) => file.sync(),
        }
    }

    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        match self {
            DatabaseFile::Real(file) => file.write(offset, data),
            DatabaseFile::Other(file) => file.write_at(offset, data),
        }
    }

    fn close(&self) -> io::Result<()> {
        match self {
            DatabaseFile::Real(file) => file.close(),
            DatabaseFile::Other(_) => Ok(()),
        }
    }

    fn try_lock_range(
        &self,
        start: Bound<u64>,
        end: Bound<u64>,
    ) -> Result<bool, redb::BackendError> {
        match self {
            DatabaseFile::Real(file) => file.try_lock_range(start, end),
            DatabaseFile::Other(_) => Err(redb::BackendError::Unsupported),
        }
    }

    fn try_lock_shared_range(
        &self,
        start: Bound<u64>,
        end: Bound<u64>,
    ) -> Result<bool, redb::BackendError> {
        match self {
            DatabaseFile::Real(file) => file.try_lock_shared_range(start, end),
            DatabaseFile::Other(_) => Err(redb::BackendError::Unsupported),
        }
    }

    fn lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), redb::BackendError> {
        match self {
            DatabaseFile::Real(file) => file.lock_range(start, end),
            DatabaseFile::Other(_) => Err(redb::BackendError::Unsupported),
        }
    }

    fn lock_shared_range(
        &self,
        start: Bound<u64>,
        end: Bound<u64>,
    ) -> Result<(), redb::BackendError> {
        match self {
            DatabaseFile::Real(file) => file.lock_shared_range(start, end),
            DatabaseFile::Other(_) => Err(redb::BackendError::Unsupported),
        }
    }

    fn unlock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), redb::BackendError> {
        match self {
            DatabaseFile::Real(file) => file.unlock_range(start, end),
            DatabaseFile::Other(_) => Err(redb::BackendError::Unsupported),
        }
    }

    fn query_lock_range(
        &self,
        start: Bound<u64>,
        end: Bound<u64>,
    ) -> Result<bool, redb::BackendError> {
        match self {
            DatabaseFile::Real(file) => file.query_lock_range(start, end),
            DatabaseFile::Other(_) => Err(redb::BackendError::Unsupported),
        }
    }
}
