//! The journal: a write-ahead log in front of redb.
//!
//! A durable redb commit rewrites every B-tree page a group touched, in several tables, and
//! fsyncs them; it cost ~1 ms for a group of 64 jobs here, against ~0.25 ms for an fsync of
//! the same bytes appended to one file. So the writer commits to redb *without* fsync, appends
//! the group's ops to this journal as one frame ([`frame`]), and the `wharf-journal` thread
//! ([`syncer`]) writes and fdatasyncs it and only then answers the requests that wait for
//! durability.
//!
//! Every so often the writer makes a *checkpoint*: a durable redb commit that records the last
//! frame it contains (`meta.journal_seq`). The journal is then rewound and overwritten from the
//! start; after a crash, redb reopens at its last checkpoint and the frames after it are applied
//! again, in order (see [`super::checkpoint`]).

pub mod frame;
mod syncer;

pub use syncer::{Journal, JournalHandle, SyncPolicy};

/// The journal's first segment file inside the data directory (the journal's only file before
/// checkpoints ran on a thread of their own).
pub const JOURNAL_FILE: &str = "wharf.journal";
/// Its second segment file.
pub const JOURNAL_SEGMENT_FILE: &str = "wharf.journal.1";
