//! Entry points for the fuzz targets in `fuzz/` (cargo-fuzz, see `fuzz/README.md`).
//!
//! This module exists only so that `fuzz/` can reach decoders that are private to their
//! modules (the journal's frame reader above all). It is **not API**: nothing but `fuzz/`
//! should call it, and it changes whenever the fuzz targets need it to. Every function here
//! takes untrusted bytes and must return an error, never panic, on any input.

use crate::cron::{CronError, CronSchedule};
use crate::storage::journal::frame;
use crate::storage::{
    AuditRecord, CursorRecord, DecodeError, EventRecord, IdempotencyRecord, JobBody, JobRecord,
    KeyRecord, QueueRecord, ScheduleRecord, StoreError, WriteOp, decode, decode_events,
    decode_job_record, decode_ops, decode_queue_record, encode,
};

/// What replaying a journal read: every frame applied, with its decoded ops, and the sequence
/// of the last one (the `applied` given when none was).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replayed {
    /// (sequence, ops) of each frame replay would apply, in order.
    pub frames: Vec<(u64, Vec<WriteOp>)>,
    /// What replay returns: the sequence of the last frame read.
    pub last: u64,
}

/// Replays `bytes` as a journal file whose last checkpoint holds frame `applied`, in the run
/// salted with `salt`, decoding every frame's ops as start-up recovery does: the same frame
/// reader and loop, the same op decoder, and, like recovery, the first frame whose checksum
/// matches but whose ops do not decode is an error.
pub fn decode_journal(bytes: &[u8], applied: u64, salt: u64) -> Result<Replayed, StoreError> {
    let mut frames = Vec::new();
    let last = frame::replay_from(bytes, bytes.len() as u64, applied, salt, |seq, payload| {
        frames.push((seq, decode_ops(payload)?));
        Ok(())
    })?;
    Ok(Replayed { frames, last })
}

/// Appends one journal frame holding `payload`, sequence `seq`, checksummed for the run salted
/// with `salt`, to `out`: exactly what the writer appends.
pub fn seal_frame(out: &mut Vec<u8>, seq: u64, salt: u64, payload: &[u8]) {
    let start = frame::begin(out);
    out.extend_from_slice(payload);
    frame::seal(out, start, seq, salt);
}

/// The bytes of a journal frame header (length, checksum, sequence).
pub const FRAME_HEADER_LEN: usize = frame::HEADER_LEN;

/// The stored value kinds, one per table that holds encoded records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordKind {
    /// Table `jobs`.
    Job,
    /// Table `bodies`.
    Body,
    /// Table `queues` (read with the version-1 upgrade).
    Queue,
    /// Table `schedules`.
    Schedule,
    /// Table `events`: one commit's events.
    Events,
    /// Table `cursors`.
    Cursor,
    /// Table `idempotency`.
    Idempotency,
    /// Table `keys`.
    Key,
    /// Table `audit`.
    Audit,
}

impl RecordKind {
    /// Every kind.
    pub const ALL: [RecordKind; 9] = [
        RecordKind::Job,
        RecordKind::Body,
        RecordKind::Queue,
        RecordKind::Schedule,
        RecordKind::Events,
        RecordKind::Cursor,
        RecordKind::Idempotency,
        RecordKind::Key,
        RecordKind::Audit,
    ];
}

/// A decoded stored value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// A job record.
    Job(JobRecord),
    /// A job body.
    Body(JobBody),
    /// A queue record.
    Queue(QueueRecord),
    /// A schedule record.
    Schedule(ScheduleRecord),
    /// A commit's events.
    Events(Vec<EventRecord>),
    /// A cursor.
    Cursor(CursorRecord),
    /// An idempotency key's entry.
    Idempotency(IdempotencyRecord),
    /// An API key.
    Key(KeyRecord),
    /// An audit record.
    Audit(AuditRecord),
}

/// The defaults a version-1 queue record is upgraded with (the server's queue defaults).
fn queue_defaults() -> QueueRecord {
    QueueRecord::from(crate::broker::QueueConfig::default())
}

/// Decodes `bytes` as a value of table `kind`, with the decoder the store reads it with.
pub fn decode_record(kind: RecordKind, bytes: &[u8]) -> Result<Record, DecodeError> {
    Ok(match kind {
        RecordKind::Job => Record::Job(decode_job_record(bytes)?),
        RecordKind::Body => Record::Body(decode(bytes)?),
        RecordKind::Queue => Record::Queue(decode_queue_record(bytes, &queue_defaults())?),
        RecordKind::Schedule => Record::Schedule(decode(bytes)?),
        RecordKind::Events => Record::Events(decode_events(bytes)?),
        RecordKind::Cursor => Record::Cursor(decode(bytes)?),
        RecordKind::Idempotency => Record::Idempotency(decode(bytes)?),
        RecordKind::Key => Record::Key(decode(bytes)?),
        RecordKind::Audit => Record::Audit(decode(bytes)?),
    })
}

/// Encodes a record as the store writes it (the current format version).
pub fn encode_record(record: &Record) -> Vec<u8> {
    match record {
        Record::Job(r) => encode(r),
        Record::Body(r) => encode(r),
        Record::Queue(r) => encode(r),
        Record::Schedule(r) => encode(r),
        Record::Events(r) => encode(r),
        Record::Cursor(r) => encode(r),
        Record::Idempotency(r) => encode(r),
        Record::Key(r) => encode(r),
        Record::Audit(r) => encode(r),
    }
}

/// Parses a cron expression in a time zone, as a schedule PUT and recovery do.
pub fn parse_cron(expression: &str, zone: &str) -> Result<CronSchedule, CronError> {
    CronSchedule::parse(expression, zone)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::storage::{DeleteReason, encode_ops};

    fn ops(n: u64) -> Vec<WriteOp> {
        vec![
            WriteOp::DeleteCursor {
                name: format!("c{n}"),
            },
            WriteOp::Delete {
                id: n,
                expiry: Some(n + 1),
                reason: DeleteReason::Retention,
                at: 7,
            },
        ]
    }

    fn journal(salt: u64, seqs: impl IntoIterator<Item = u64>) -> Vec<u8> {
        let mut out = Vec::new();
        for seq in seqs {
            let mut payload = Vec::new();
            encode_ops(ops(seq).iter(), &mut payload);
            seal_frame(&mut out, seq, salt, &payload);
        }
        out
    }

    #[test]
    fn a_journal_replays_its_frames_after_the_checkpoint() {
        let bytes = journal(9, 1..=3);
        let replayed = decode_journal(&bytes, 1, 9).unwrap();
        assert_eq!(replayed.last, 3);
        assert_eq!(replayed.frames, vec![(2, ops(2)), (3, ops(3))]);
        // Another run's salt reads nothing.
        assert_eq!(decode_journal(&bytes, 0, 8).unwrap().frames, Vec::new());
        // A frame whose checksum matches but whose ops do not decode is an error.
        let mut bad = Vec::new();
        seal_frame(&mut bad, 1, 9, &[99]);
        assert!(matches!(
            decode_journal(&bad, 0, 9),
            Err(StoreError::Ops(_))
        ));
    }

    #[test]
    fn records_round_trip_through_their_decoders() {
        let cursor = Record::Cursor(CursorRecord {
            seq: 5,
            updated_at: 6,
        });
        let bytes = encode_record(&cursor);
        assert_eq!(decode_record(RecordKind::Cursor, &bytes).unwrap(), cursor);
        for kind in RecordKind::ALL {
            assert!(decode_record(kind, &[]).is_err());
        }
    }

    #[test]
    fn cron_parses_through_here() {
        assert!(parse_cron("*/5 * * * *", "Europe/Paris").is_ok());
        assert!(parse_cron("*/5 * * * *", "Mars/Olympus").is_err());
    }
}
