//! The redb tables. Keys are big-endian-ordered u64s or strings; values are
//! [`records`](super::records)-encoded bytes.

use redb::{TableDefinition, WriteTransaction};

use super::error::StoreError;

/// job id → [`JobRecord`](super::JobRecord).
pub const JOBS: TableDefinition<u64, &[u8]> = TableDefinition::new("jobs");
/// job id → [`JobBody`](super::JobBody).
pub const BODIES: TableDefinition<u64, &[u8]> = TableDefinition::new("bodies");
/// job id → the ack result (raw JSON text).
pub const RESULTS: TableDefinition<u64, &str> = TableDefinition::new("results");
/// queue name → [`QueueRecord`](super::QueueRecord).
pub const QUEUES: TableDefinition<&str, &[u8]> = TableDefinition::new("queues");
/// The change log before format 4; dropped when an older file is opened.
pub const OUTBOX: TableDefinition<u64, &[u8]> = TableDefinition::new("outbox");
/// sequence of a batch's first event → the events of one commit
/// (`seq<`[`EventRecord`](super::EventRecord)`>`).
pub const EVENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("events");
/// cursor name → [`CursorRecord`](super::CursorRecord).
pub const CURSORS: TableDefinition<&str, &[u8]> = TableDefinition::new("cursors");
/// (expires at, job id) → (): finished and dead jobs by the time their retention ends. Entries
/// may be stale (a dead job replayed); the sweeper checks the record before deleting.
pub const EXPIRY: TableDefinition<(u64, u64), ()> = TableDefinition::new("expiry");
/// "queue\0key" → [`IdempotencyRecord`](super::IdempotencyRecord).
pub const IDEMPOTENCY: TableDefinition<&str, &[u8]> = TableDefinition::new("idempotency");
/// (expires at, "queue\0key") → (): idempotency keys by the end of their window.
pub const IDEMPOTENCY_EXPIRY: TableDefinition<(u64, &str), ()> =
    TableDefinition::new("idempotency_expiry");
/// schedule name → [`ScheduleRecord`](super::ScheduleRecord).
pub const SCHEDULES: TableDefinition<&str, &[u8]> = TableDefinition::new("schedules");
/// key id → [`KeyRecord`](super::KeyRecord).
pub const KEYS: TableDefinition<&str, &[u8]> = TableDefinition::new("keys");
/// audit sequence → [`AuditRecord`](super::AuditRecord).
pub const AUDIT: TableDefinition<u64, &[u8]> = TableDefinition::new("audit");
/// name → u64 (see the `META_*` keys).
pub const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

/// The record format version the file was written with.
pub const META_FORMAT: &str = "format_version";
/// The next job id to allocate; ids are never reused, even after a purge.
pub const META_NEXT_JOB_ID: &str = "next_job_id";
/// The sequence number the next outbox change got, before format 4 (where the event sequence
/// starts on an upgraded file).
pub const META_OUTBOX_NEXT: &str = "outbox_next";
/// The sequence number the next event gets.
pub const META_EVENTS_NEXT: &str = "events_next";
/// The sequence number the next audit record gets.
pub const META_AUDIT_NEXT: &str = "audit_next";
/// The checksum salt of the current run's journal frames (see `docs/design.md`, "The journal").
pub const META_JOURNAL_SALT: &str = "journal_salt";
/// The last journal frame the latest checkpoint contains (see `docs/design.md`, "The journal").
pub const META_JOURNAL_SEQ: &str = "journal_seq";

/// Creates every table that does not exist yet (a new file, or one of an older format).
pub fn create_all(txn: &WriteTransaction) -> Result<(), StoreError> {
    txn.open_table(JOBS)?;
    txn.open_table(BODIES)?;
    txn.open_table(RESULTS)?;
    txn.open_table(QUEUES)?;
    txn.open_table(EVENTS)?;
    txn.open_table(CURSORS)?;
    txn.open_table(META)?;
    txn.open_table(EXPIRY)?;
    txn.open_table(IDEMPOTENCY)?;
    txn.open_table(IDEMPOTENCY_EXPIRY)?;
    txn.open_table(SCHEDULES)?;
    txn.open_table(KEYS)?;
    txn.open_table(AUDIT)?;
    Ok(())
}
