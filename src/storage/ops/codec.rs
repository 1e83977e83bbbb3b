//! Op format version 4: an explicit byte layout, written and read by hand.
//!
//! ```text
//! payload  = version: u8 (= 4) | count: varint | op × count
//! op       = tag: u8 | fields, by tag:
//!   1 PutQueue        name: str | record: bytes (QueueRecord) | at: varint
//!   2 Insert          id: varint | record: bytes (JobRecord) | body: bytes (JobBody)
//!                     | key: opt(str key | varint expires_at)
//!   3 Update          id: varint | event: u8 | state | attempts: varint
//!                     | last_error: opt(str) | result: opt(str) | expires_at: opt(varint)
//!                     | at: varint
//!   4 Delete          id: varint | expiry: opt(varint) | reason: u8 | at: varint
//!   5 MoveExpiry      id: varint | from: varint | to: opt(varint)
//!   6 PutSchedule     name: str | record: bytes (ScheduleRecord) | schedule event | at: varint
//!   7 DeleteSchedule  name: str | at: varint
//!   8 ForgetKey       key: str | expires_at: varint
//!   9 Message         if_stored: opt(varint first | varint last) | topic: str | key: opt(str)
//!                     | payload: str | headers | at: varint
//!  10 QueuePurged     queue: str | jobs: varint | at: varint
//!  11 PutCursor       name: str | seq: varint | at: varint
//!  12 DeleteCursor    name: str
//!  13 PutKey          id: str | record: bytes (KeyRecord)
//!  14 KeyUsed         id: str | at: varint
//!  15 RevokeKey       id: str | at: varint
//!  16 Audit           record: bytes (AuditRecord) | trim_before: varint
//!  17 QueueDeleted    queue: str | jobs: varint | at: varint
//! state    = kind: u8 | varint fields, by kind:
//!   0 Queued run_at · 1 Leased nonce, deadline · 2 Succeeded finished_at · 3 Dead died_at
//!   4 Cancelled finished_at
//! event    = 0 Leased · 1 Extended · 2 Nacked · 3 Expired · 4 Acked · 5 Cancelled · 6 Replayed
//! reason   = 0 Purge · 1 Retention · 2 QueueDeleted
//! schedule event = 0 Put · 1 Paused · 2 Resumed · 3 Fired job_id: varint
//! headers  = count: varint | (name: str | value: str) × count
//! varint   = unsigned LEB128, at most 10 bytes (u64)
//! str      = len: varint | UTF-8 bytes;  bytes = len: varint | bytes
//! opt(x)   = 0x00 | 0x01 x
//! ```
//!
//! `bytes (Record)` is the record exactly as its table stores it: the record format byte, then
//! postcard ([`super::super::records`]), so records keep their own versioning.
//!
//! Adding an op or a kind needs no new version (old frames never hold it); changing the bytes
//! of an existing one does, together with a decoder for the old layout.

use serde::Serialize;

use super::super::error::OpsError;
use super::super::records::{self, DeleteReason, StoredState, encode_into};
use super::{IdempotencyKey, JobChange, JobEvent, Message, ScheduleEvent, WriteOp};

/// The op format version this build writes.
pub const OPS_VERSION: u8 = 4;

const PUT_QUEUE: u8 = 1;
const INSERT: u8 = 2;
const UPDATE: u8 = 3;
const DELETE: u8 = 4;
const MOVE_EXPIRY: u8 = 5;
const PUT_SCHEDULE: u8 = 6;
const DELETE_SCHEDULE: u8 = 7;
const FORGET_KEY: u8 = 8;
const MESSAGE: u8 = 9;
const QUEUE_PURGED: u8 = 10;
const PUT_CURSOR: u8 = 11;
const DELETE_CURSOR: u8 = 12;
const PUT_KEY: u8 = 13;
const KEY_USED: u8 = 14;
const REVOKE_KEY: u8 = 15;
const AUDIT: u8 = 16;
const QUEUE_DELETED: u8 = 17;

const QUEUED: u8 = 0;
const LEASED: u8 = 1;
const SUCCEEDED: u8 = 2;
const DEAD: u8 = 3;
const CANCELLED: u8 = 4;

/// Job events, in [`JobEvent`] order.
const JOB_EVENTS: [JobEvent; 7] = [
    JobEvent::Leased,
    JobEvent::Extended,
    JobEvent::Nacked,
    JobEvent::Expired,
    JobEvent::Acked,
    JobEvent::Cancelled,
    JobEvent::Replayed,
];
/// Delete reasons, by their byte.
const REASONS: [DeleteReason; 3] = [
    DeleteReason::Purge,
    DeleteReason::Retention,
    DeleteReason::QueueDeleted,
];

/// Appends the version byte and `ops` to `out`.
pub(super) fn encode<'a>(ops: impl Iterator<Item = &'a WriteOp> + Clone, out: &mut Vec<u8>) {
    out.push(OPS_VERSION);
    put_varint(out, ops.clone().count() as u64);
    // One scratch buffer per frame for the embedded records (their length comes first).
    let scratch = &mut Vec::new();
    for op in ops {
        match op {
            WriteOp::PutQueue {
                name,
                record: r,
                at,
            } => {
                out.push(PUT_QUEUE);
                put_bytes(out, name.as_bytes());
                put_record(out, scratch, r);
                put_varint(out, *at);
            }
            WriteOp::Insert {
                id,
                record: r,
                body,
                idempotency,
            } => {
                out.push(INSERT);
                put_varint(out, *id);
                put_record(out, scratch, r);
                put_record(out, scratch, body);
                put_opt(out, idempotency.as_ref(), |out, key| {
                    put_bytes(out, key.key.as_bytes());
                    put_varint(out, key.expires_at);
                });
            }
            WriteOp::Update { id, change } => {
                out.push(UPDATE);
                put_varint(out, *id);
                out.push(job_event_byte(change.event));
                put_state(out, &change.state);
                put_varint(out, u64::from(change.attempts));
                put_opt(out, change.last_error.as_ref(), |out, s| {
                    put_bytes(out, s.as_bytes());
                });
                put_opt(out, change.result.as_ref(), |out, s| {
                    put_bytes(out, s.as_bytes());
                });
                put_opt(out, change.expires_at, put_varint);
                put_varint(out, change.at);
            }
            WriteOp::Delete {
                id,
                expiry,
                reason,
                at,
            } => {
                out.push(DELETE);
                put_varint(out, *id);
                put_opt(out, *expiry, put_varint);
                out.push(match reason {
                    DeleteReason::Purge => 0,
                    DeleteReason::Retention => 1,
                    DeleteReason::QueueDeleted => 2,
                });
                put_varint(out, *at);
            }
            WriteOp::MoveExpiry { id, from, to } => {
                out.push(MOVE_EXPIRY);
                put_varint(out, *id);
                put_varint(out, *from);
                put_opt(out, *to, put_varint);
            }
            WriteOp::PutSchedule {
                name,
                record: r,
                event,
                at,
            } => {
                out.push(PUT_SCHEDULE);
                put_bytes(out, name.as_bytes());
                put_record(out, scratch, r);
                match event {
                    ScheduleEvent::Put => out.push(0),
                    ScheduleEvent::Paused => out.push(1),
                    ScheduleEvent::Resumed => out.push(2),
                    ScheduleEvent::Fired { job_id } => {
                        out.push(3);
                        put_varint(out, *job_id);
                    }
                }
                put_varint(out, *at);
            }
            WriteOp::DeleteSchedule { name, at } => {
                out.push(DELETE_SCHEDULE);
                put_bytes(out, name.as_bytes());
                put_varint(out, *at);
            }
            WriteOp::ForgetKey { key, expires_at } => {
                out.push(FORGET_KEY);
                put_bytes(out, key.as_bytes());
                put_varint(out, *expires_at);
            }
            WriteOp::Message(m) => {
                out.push(MESSAGE);
                put_opt(out, m.if_stored, |out, (first, last)| {
                    put_varint(out, first);
                    put_varint(out, last);
                });
                put_bytes(out, m.topic.as_bytes());
                put_opt(out, m.key.as_ref(), |out, k| put_bytes(out, k.as_bytes()));
                put_bytes(out, m.payload.as_bytes());
                put_varint(out, m.headers.len() as u64);
                for (name, value) in &m.headers {
                    put_bytes(out, name.as_bytes());
                    put_bytes(out, value.as_bytes());
                }
                put_varint(out, m.at);
            }
            WriteOp::QueuePurged { queue, jobs, at }
            | WriteOp::QueueDeleted { queue, jobs, at } => {
                out.push(if matches!(op, WriteOp::QueuePurged { .. }) {
                    QUEUE_PURGED
                } else {
                    QUEUE_DELETED
                });
                put_bytes(out, queue.as_bytes());
                put_varint(out, *jobs);
                put_varint(out, *at);
            }
            WriteOp::PutCursor { name, seq, at } => {
                out.push(PUT_CURSOR);
                put_bytes(out, name.as_bytes());
                put_varint(out, *seq);
                put_varint(out, *at);
            }
            WriteOp::DeleteCursor { name } => {
                out.push(DELETE_CURSOR);
                put_bytes(out, name.as_bytes());
            }
            WriteOp::PutKey { id, record: r } => {
                out.push(PUT_KEY);
                put_bytes(out, id.as_bytes());
                put_record(out, scratch, r);
            }
            WriteOp::KeyUsed { id, at } | WriteOp::RevokeKey { id, at } => {
                out.push(if matches!(op, WriteOp::KeyUsed { .. }) {
                    KEY_USED
                } else {
                    REVOKE_KEY
                });
                put_bytes(out, id.as_bytes());
                put_varint(out, *at);
            }
            WriteOp::Audit {
                record: r,
                trim_before,
            } => {
                out.push(AUDIT);
                put_record(out, scratch, r);
                put_varint(out, *trim_before);
            }
        }
    }
}

/// The byte of a job event: its index in [`JOB_EVENTS`].
fn job_event_byte(event: JobEvent) -> u8 {
    match event {
        JobEvent::Leased => 0,
        JobEvent::Extended => 1,
        JobEvent::Nacked => 2,
        JobEvent::Expired => 3,
        JobEvent::Acked => 4,
        JobEvent::Cancelled => 5,
        JobEvent::Replayed => 6,
    }
}

/// Decodes the ops after the version byte.
pub(super) fn decode(bytes: &[u8]) -> Result<Vec<WriteOp>, OpsError> {
    let mut r = Reader(bytes);
    let count = r.varint()?;
    // A corrupt count must not reserve more than the bytes could hold (every op takes at least
    // two), nor much at all up front: a frame of a few large ops would reserve for millions.
    let mut ops = Vec::with_capacity(
        usize::try_from(count)
            .unwrap_or(0)
            .min(bytes.len() / 2)
            .min(1024),
    );
    for _ in 0..count {
        ops.push(r.op()?);
    }
    match r.0.len() {
        0 => Ok(ops),
        left => Err(OpsError::Trailing(left)),
    }
}

/// Appends a record as its table stores it, behind its length.
fn put_record<T: Serialize>(out: &mut Vec<u8>, scratch: &mut Vec<u8>, value: &T) {
    scratch.clear();
    encode_into(value, scratch);
    put_bytes(out, scratch);
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn put_opt<T>(out: &mut Vec<u8>, value: Option<T>, put: impl FnOnce(&mut Vec<u8>, T)) {
    match value {
        None => out.push(0),
        Some(value) => {
            out.push(1);
            put(out, value);
        }
    }
}

fn put_state(out: &mut Vec<u8>, state: &StoredState) {
    match *state {
        StoredState::Queued { run_at } => {
            out.push(QUEUED);
            put_varint(out, run_at);
        }
        StoredState::Leased { nonce, deadline } => {
            out.push(LEASED);
            put_varint(out, nonce);
            put_varint(out, deadline);
        }
        StoredState::Succeeded { finished_at } => {
            out.push(SUCCEEDED);
            put_varint(out, finished_at);
        }
        StoredState::Dead { died_at } => {
            out.push(DEAD);
            put_varint(out, died_at);
        }
        StoredState::Cancelled { finished_at } => {
            out.push(CANCELLED);
            put_varint(out, finished_at);
        }
    }
}

/// The unread rest of a payload.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn u8(&mut self) -> Result<u8, OpsError> {
        let (&first, rest) = self.0.split_first().ok_or(OpsError::Truncated)?;
        self.0 = rest;
        Ok(first)
    }

    fn varint(&mut self) -> Result<u64, OpsError> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.u8()?;
            let bits = u64::from(byte & 0x7f);
            if shift == 63 && bits > 1 {
                return Err(OpsError::Overflow);
            }
            value |= bits << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(OpsError::Overflow)
    }

    fn u32(&mut self) -> Result<u32, OpsError> {
        u32::try_from(self.varint()?).map_err(|_| OpsError::Overflow)
    }

    fn bytes(&mut self) -> Result<&'a [u8], OpsError> {
        let len = usize::try_from(self.varint()?).map_err(|_| OpsError::Truncated)?;
        if len > self.0.len() {
            return Err(OpsError::Truncated);
        }
        let (bytes, rest) = self.0.split_at(len);
        self.0 = rest;
        Ok(bytes)
    }

    fn string(&mut self) -> Result<String, OpsError> {
        let bytes = self.bytes()?;
        std::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|_| OpsError::Utf8)
    }

    fn opt<T>(
        &mut self,
        read: impl FnOnce(&mut Self) -> Result<T, OpsError>,
    ) -> Result<Option<T>, OpsError> {
        match self.u8()? {
            0 => Ok(None),
            1 => read(self).map(Some),
            tag => Err(OpsError::UnknownTag {
                what: "option",
                tag,
            }),
        }
    }

    fn record<T: serde::de::DeserializeOwned>(&mut self) -> Result<T, OpsError> {
        Ok(records::decode(self.bytes()?)?)
    }

    fn state(&mut self) -> Result<StoredState, OpsError> {
        Ok(match self.u8()? {
            QUEUED => StoredState::Queued {
                run_at: self.varint()?,
            },
            LEASED => StoredState::Leased {
                nonce: self.varint()?,
                deadline: self.varint()?,
            },
            SUCCEEDED => StoredState::Succeeded {
                finished_at: self.varint()?,
            },
            DEAD => StoredState::Dead {
                died_at: self.varint()?,
            },
            CANCELLED => StoredState::Cancelled {
                finished_at: self.varint()?,
            },
            tag => return Err(OpsError::UnknownTag { what: "state", tag }),
        })
    }

    fn job_event(&mut self) -> Result<JobEvent, OpsError> {
        let tag = self.u8()?;
        JOB_EVENTS
            .get(usize::from(tag))
            .copied()
            .ok_or(OpsError::UnknownTag {
                what: "job event",
                tag,
            })
    }

    fn reason(&mut self) -> Result<DeleteReason, OpsError> {
        let tag = self.u8()?;
        REASONS
            .get(usize::from(tag))
            .copied()
            .ok_or(OpsError::UnknownTag {
                what: "delete reason",
                tag,
            })
    }

    fn schedule_event(&mut self) -> Result<ScheduleEvent, OpsError> {
        Ok(match self.u8()? {
            0 => ScheduleEvent::Put,
            1 => ScheduleEvent::Paused,
            2 => ScheduleEvent::Resumed,
            3 => ScheduleEvent::Fired {
                job_id: self.varint()?,
            },
            tag => {
                return Err(OpsError::UnknownTag {
                    what: "schedule event",
                    tag,
                });
            }
        })
    }

    fn headers(&mut self) -> Result<Vec<(String, String)>, OpsError> {
        let count = self.varint()?;
        // Every header takes at least two bytes: a corrupt count cannot reserve more.
        let most = self.0.len() / 2;
        let mut headers = Vec::with_capacity(usize::try_from(count).unwrap_or(0).min(most).min(64));
        for _ in 0..count {
            headers.push((self.string()?, self.string()?));
        }
        Ok(headers)
    }

    fn op(&mut self) -> Result<WriteOp, OpsError> {
        Ok(match self.u8()? {
            PUT_QUEUE => WriteOp::PutQueue {
                name: self.string()?,
                // Journals of earlier versions hold queue records of an earlier layout.
                record: records::decode_queue_record_v2_on(self.bytes()?)?,
                at: self.varint()?,
            },
            INSERT => WriteOp::Insert {
                id: self.varint()?,
                record: records::decode_job_record(self.bytes()?)?,
                body: self.record()?,
                idempotency: self.opt(|r| {
                    Ok(IdempotencyKey {
                        key: r.string()?,
                        expires_at: r.varint()?,
                    })
                })?,
            },
            UPDATE => WriteOp::Update {
                id: self.varint()?,
                change: JobChange {
                    event: self.job_event()?,
                    state: self.state()?,
                    attempts: self.u32()?,
                    last_error: self.opt(Self::string)?,
                    result: self.opt(Self::string)?,
                    expires_at: self.opt(Self::varint)?,
                    at: self.varint()?,
                },
            },
            DELETE => WriteOp::Delete {
                id: self.varint()?,
                expiry: self.opt(Self::varint)?,
                reason: self.reason()?,
                at: self.varint()?,
            },
            MOVE_EXPIRY => WriteOp::MoveExpiry {
                id: self.varint()?,
                from: self.varint()?,
                to: self.opt(Self::varint)?,
            },
            PUT_SCHEDULE => WriteOp::PutSchedule {
                name: self.string()?,
                record: self.record()?,
                event: self.schedule_event()?,
                at: self.varint()?,
            },
            DELETE_SCHEDULE => WriteOp::DeleteSchedule {
                name: self.string()?,
                at: self.varint()?,
            },
            FORGET_KEY => WriteOp::ForgetKey {
                key: self.string()?,
                expires_at: self.varint()?,
            },
            MESSAGE => WriteOp::Message(Message {
                if_stored: self.opt(|r| Ok((r.varint()?, r.varint()?)))?,
                topic: self.string()?,
                key: self.opt(Self::string)?,
                payload: self.string()?,
                headers: self.headers()?,
                at: self.varint()?,
            }),
            QUEUE_PURGED => WriteOp::QueuePurged {
                queue: self.string()?,
                jobs: self.varint()?,
                at: self.varint()?,
            },
            PUT_CURSOR => WriteOp::PutCursor {
                name: self.string()?,
                seq: self.varint()?,
                at: self.varint()?,
            },
            DELETE_CURSOR => WriteOp::DeleteCursor {
                name: self.string()?,
            },
            PUT_KEY => WriteOp::PutKey {
                id: self.string()?,
                record: self.record()?,
            },
            KEY_USED => WriteOp::KeyUsed {
                id: self.string()?,
                at: self.varint()?,
            },
            REVOKE_KEY => WriteOp::RevokeKey {
                id: self.string()?,
                at: self.varint()?,
            },
            AUDIT => WriteOp::Audit {
                record: self.record()?,
                trim_before: self.varint()?,
            },
            QUEUE_DELETED => WriteOp::QueueDeleted {
                queue: self.string()?,
                jobs: self.varint()?,
                at: self.varint()?,
            },
            tag => return Err(OpsError::UnknownTag { what: "op", tag }),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::super::golden::{
        V4_HEX, V4_RECORDS_V4_HEX, V4_RECORDS_V4_OPS, V4_RECORDS_V5_HEX, V4_RECORDS_V6_HEX,
        V4_RECORDS_V6_OPS, V4_RECORDS_V7_HEX, V4_RECORDS_V7_OPS, golden_ops, hex, unhex,
    };
    use super::super::{decode_ops, encode_ops};
    use super::*;

    #[test]
    fn the_layout_is_pinned_by_golden_bytes() {
        let mut bytes = Vec::new();
        encode_ops(golden_ops().iter(), &mut bytes);
        assert_eq!(
            hex(&bytes),
            V4_HEX,
            "the version-{OPS_VERSION} op layout changed: bump OPS_VERSION and keep a decoder for the old bytes"
        );
        assert_eq!(decode_ops(&unhex(V4_HEX)).unwrap(), golden_ops());
    }

    #[test]
    fn a_journal_written_with_records_of_format_5_or_6_still_replays() {
        let ops = golden_ops();
        for hex in [V4_RECORDS_V5_HEX, V4_RECORDS_V6_HEX] {
            assert_eq!(decode_ops(&unhex(hex)).unwrap(), ops[..V4_RECORDS_V6_OPS]);
        }
    }

    #[test]
    fn a_journal_written_with_records_of_format_7_still_replays() {
        assert_eq!(
            decode_ops(&unhex(V4_RECORDS_V7_HEX)).unwrap(),
            golden_ops()[..V4_RECORDS_V7_OPS]
        );
    }

    #[test]
    fn a_journal_written_with_records_of_format_4_still_replays() {
        let ops = golden_ops();
        assert_eq!(
            decode_ops(&unhex(V4_RECORDS_V4_HEX)).unwrap(),
            ops[..V4_RECORDS_V4_OPS]
        );
    }

    #[test]
    fn the_layout_in_docs_design_md_is_this_one() {
        let here = include_str!("codec.rs");
        let design = include_str!("../../../docs/design.md");
        let start = here.find("//! ```text").unwrap();
        let end = start + here[start..].find("//! ```\n").unwrap();
        for line in here[start..end].lines().skip(1) {
            let line = line.strip_prefix("//! ").unwrap_or("").trim_end();
            assert!(
                design.contains(line),
                "docs/design.md (Journal op format) lacks: {line}"
            );
        }
    }

    #[test]
    fn varints_round_trip_at_their_edges() {
        for value in [
            0,
            1,
            127,
            128,
            300,
            u64::from(u32::MAX),
            u64::MAX - 1,
            u64::MAX,
        ] {
            let mut out = Vec::new();
            put_varint(&mut out, value);
            let mut reader = Reader(&out);
            assert_eq!(reader.varint().unwrap(), value);
            assert!(reader.0.is_empty());
        }
        // Eleven continuation bytes, or a tenth byte above 1, overflow u64.
        assert!(matches!(
            Reader(&[0xff; 11]).varint(),
            Err(OpsError::Overflow)
        ));
        let mut too_big = vec![0xff; 9];
        too_big.push(0x02);
        assert!(matches!(Reader(&too_big).varint(), Err(OpsError::Overflow)));
    }

    #[test]
    fn every_cut_and_corruption_is_an_error_not_a_panic() {
        let bytes = unhex(V4_HEX);
        for len in 0..bytes.len() {
            assert!(decode_ops(&bytes[..len]).is_err(), "a cut at {len} decoded");
        }
        for at in 0..bytes.len() {
            let mut corrupt = bytes.clone();
            corrupt[at] ^= 0xa5;
            // Some flips still decode to other valid ops; none may panic.
            let _ = decode_ops(&corrupt);
        }
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(matches!(decode_ops(&trailing), Err(OpsError::Trailing(1))));
        assert!(matches!(
            decode_ops(&[OPS_VERSION, 1, 99]),
            Err(OpsError::UnknownTag { what: "op", .. })
        ));
        assert!(matches!(decode_ops(&[9]), Err(OpsError::UnknownVersion(9))));
        assert!(matches!(decode_ops(&[]), Err(OpsError::Empty)));
    }
}
