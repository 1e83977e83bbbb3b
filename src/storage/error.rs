//! Every way storage can fail, in one place.

use std::path::PathBuf;

/// Storage failures.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The engine reported an error (I/O, corruption, a full disk).
    #[error("storage engine: {0}")]
    Engine(#[from] redb::Error),
    /// A stored value does not decode.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// An earlier commit or fsync failed; writes are refused until restart.
    #[error(
        "storage failed earlier and refuses writes; check the disk and the log, then restart wharf"
    )]
    Poisoned,
    /// The data volume is below its free-space floor: a write that adds data was refused
    /// before anything changed.
    #[error(
        "the data volume has {available} bytes free, below its floor of {floor} (storage.min_free_mb)"
    )]
    InsufficientStorage {
        /// Bytes free on the volume at the last reading.
        available: u64,
        /// The floor.
        floor: u64,
    },
    /// The store is shutting down.
    #[error("storage is shutting down")]
    Closed,
    /// The data directory could not be created or used.
    #[error("data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The journal file could not be read or written.
    #[error("journal: {0}")]
    Io(std::io::Error),
    /// A journal frame whose checksum matched does not decode (a bug, or a foreign file).
    #[error("journal frame: {0}")]
    Ops(#[from] OpsError),
    /// The file was written by an incompatible (newer) format.
    #[error(
        "data file format version {found} is not supported (this build reads up to {supported}); run the newer wharf that wrote it"
    )]
    Format {
        /// The version found in the file.
        found: u64,
        /// The newest version this build reads.
        supported: u8,
    },
}

macro_rules! engine_errors {
    ($($ty:ty),*) => {$(
        impl From<$ty> for StoreError {
            fn from(e: $ty) -> Self {
                StoreError::Engine(e.into())
            }
        }
    )*};
}
engine_errors!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::SetDurabilityError
);

/// Why a stored record could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The value is empty.
    #[error("empty record")]
    Empty,
    /// Written by a format this binary does not know (a newer wharf?).
    #[error("record format version {found} is not supported (this build reads up to {supported})")]
    UnknownVersion {
        /// The version byte found.
        found: u8,
        /// The newest version this build reads.
        supported: u8,
    },
    /// The bytes do not decode.
    #[error("corrupt record: {0}")]
    Corrupt(#[from] postcard::Error),
}

/// Why the ops of a journal frame could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    /// The payload is empty: not even a version byte.
    #[error("empty frame payload")]
    Empty,
    /// Written by an op format this binary does not know.
    #[error("journal op format version {0} is not supported")]
    UnknownVersion(u8),
    /// The bytes end in the middle of an op.
    #[error("the ops end early")]
    Truncated,
    /// An op or state tag that no version defines.
    #[error("unknown {what} tag {tag}")]
    UnknownTag {
        /// Which kind of tag.
        what: &'static str,
        /// Its value.
        tag: u8,
    },
    /// A varint longer than ten bytes or beyond u64.
    #[error("a varint overflows u64")]
    Overflow,
    /// A string that is not UTF-8.
    #[error("a string is not UTF-8")]
    Utf8,
    /// Bytes left over after the last op.
    #[error("{0} bytes after the last op")]
    Trailing(usize),
    /// A record embedded in an op does not decode.
    #[error(transparent)]
    Record(#[from] DecodeError),
    /// A frame of the postcard layout (versions 2 and 3) does not decode.
    #[error("legacy ops: {0}")]
    Legacy(postcard::Error),
}
