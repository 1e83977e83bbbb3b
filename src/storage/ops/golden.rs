//! The golden ops: one of every op and every state, with and without their optional fields,
//! and the bytes each op format wrote for them. Shared by the codec tests and the journal
//! replay test.

#![allow(clippy::unwrap_used)]

use super::super::records::{
    AuditRecord, DeleteReason, JobBody, JobRecord, JobTemplate, KeyLimits, KeyRecord, QueueRecord,
    ScheduleRecord, StoredState,
};
use super::{IdempotencyKey, JobChange, JobEvent, Message, ScheduleEvent, WriteOp};

/// Op format 3 (and 2): postcard of [`v3_ops`], as wharf wrote them before op format 4.
pub const V3_HEX: &str = concat!(
    "100006656d61696c73b0ea0105e807c0cf24010080dddb018088b2a00280b89929010706656d61696c73c000",
    "f4d3eab6b733000501e0d40380d0eab6b73380d0eab6b73300010c7b22746f223a22616461227d0105747261",
    "636503742d31010a656d61696c73006b2d31808884e0b733010806656d61696c738000f4d3eab6b733000500",
    "80d0eab6b73380d0eab6b7330001046e756c6c0000010906656d61696c738000f4d3eab6b73300050080d0ea",
    "b6b73380d0eab6b7330001055b312c325d0000020701effdb6f50da4beecb6b73301000000f4d3eab6b73302",
    "0700d0dfeab6b733010104626f6f6d0000e8d7eab6b733020803dcdbeab6b733050107676176652075700001",
    "dce39cd7b933dcdbeab6b733020904c0dceab6b73300000001c0b9c6b8b733c0dceab6b733020702b8e7eab6",
    "b7330200010b7b226f6b223a747275657d01b8c4c6b8b733b8e7eab6b7330409c0b9c6b8b73301c096a2bab7",
    "330408dce39cd7b93300030901c096a2bab733030a0005076e696768746c7909302033202a202a202a0c4575",
    "726f70652f506172697306656d61696c730f7b227265706f7274223a747275657d8001030001016101620001",
    "0001808aa2bab73380d0eab6b73380d0eab6b73306036f6c64070a656d61696c73006b2d30ffcfeab6b733",
);

/// Op format 4 as wharf wrote it with records of format 4 (before `max_depth` and keys): the
/// first [`V4_RECORDS_V4_OPS`] of [`golden_ops`].
pub const V4_RECORDS_V4_HEX: &str = concat!(
    "041b0106656d61696c731904b0ea0105e807c0cf24010080dddb018088b2a00280b89929b8e7eab6b7330207",
    "240406656d61696c73c000f4d3eab6b733000501e0d40380d0eab6b73380d0eab6b733000119040c7b22746f",
    "223a22616461227d0105747261636503742d31010a656d61696c73006b2d31808884e0b7330208210406656d",
    "61696c738000f4d3eab6b73300050080d0eab6b73380d0eab6b73300010704046e756c6c0000020921040665",
    "6d61696c738000f4d3eab6b73300050080d0eab6b73380d0eab6b73300010804055b312c325d000003070001",
    "effdb6f50da4beecb6b73301000000f4d3eab6b73303070200d0dfeab6b733010104626f6f6d0000e8d7eab6",
    "b73303080203dcdbeab6b733050107676176652075700001dce39cd7b933dcdbeab6b73303090504c0dceab6",
    "b73300000001c0b9c6b8b733c0dceab6b73303070402b8e7eab6b7330200010b7b226f6b223a747275657d01",
    "b8c4c6b8b733b8e7eab6b7330509c0b9c6b8b73301c096a2bab7330508dce39cd7b93300040901c096a2bab7",
    "3301b8e7eab6b733040a0000b8e7eab6b73306076e696768746c794e0409302033202a202a202a0c4575726f",
    "70652f506172697306656d61696c730f7b227265706f7274223a747275657d80010300010161016200010001",
    "808aa2bab73380d0eab6b73380d0eab6b7330080d0eab6b73307036f6c64b8e7eab6b733080a656d61696c73",
    "006b2d30ffcfeab6b733030b010107908ff0b6b73301000000a0efeab6b733030b0303908ff0b6b73305010d",
    "6c6561736520657870697265640001809ecf84ba33908ff0b6b733030b0600f896f0b6b73300000000f896f0",
    "b6b73306076e696768746c794e0409302033202a202a202a0c4575726f70652f506172697306656d61696c73",
    "0f7b227265706f7274223a747275657d80010300010161016201010001808aa2bab73380d0eab6b73380d0ea",
    "b6b73301e09ef0b6b73306076e696768746c794e0409302033202a202a202a0c4575726f70652f5061726973",
    "06656d61696c730f7b227265706f7274223a747275657d80010300010161016200010001808aa2bab73380d0",
    "eab6b73380d0eab6b73302c8a6f0b6b73306076e696768746c79540409302033202a202a202a0c4575726f70",
    "652f506172697306656d61696c730f7b227265706f7274223a747275657d800103000101610162000101808a",
    "a2bab73301808aa2bab73380d0eab6b73380d0eab6b733030ce48aa2bab73309010709066f72646572730103",
    "6f2d310c7b22746f74616c223a31327d0105747261636503742d32c88ba2bab7330900066f72646572730004",
    "6e756c6c00ac8ca2bab7330a06656d61696c7302908da2bab7330b086d6972726f722d6111f48da2bab7330c",
    "086d6972726f722d62",
);

/// How many of [`golden_ops`] [`V4_RECORDS_V4_HEX`] holds.
pub const V4_RECORDS_V4_OPS: usize = 27;

/// How many of [`golden_ops`] the journals of record formats 5 and 6 hold.
pub const V4_RECORDS_V6_OPS: usize = 31;

/// Op format 4 as wharf wrote it with records of format 5 (before job groups): the first
/// [`V4_RECORDS_V6_OPS`] of [`golden_ops`].
pub const V4_RECORDS_V5_HEX: &str = concat!(
    "041f0106656d61696c731a05b0ea0105e807c0cf24010080dddb018088b2a00280b8992900b8e7eab6b73302",
    "07240506656d61696c73c000f4d3eab6b733000501e0d40380d0eab6b73380d0eab6b733000119050c7b2274",
    "6f223a22616461227d0105747261636503742d31010a656d61696c73006b2d31808884e0b733020821050665",
    "6d61696c738000f4d3eab6b73300050080d0eab6b73380d0eab6b73300010705046e756c6c00000209210506",
    "656d61696c738000f4d3eab6b73300050080d0eab6b73380d0eab6b73300010805055b312c325d0000030700",
    "01effdb6f50da4beecb6b73301000000f4d3eab6b73303070200d0dfeab6b733010104626f6f6d0000e8d7ea",
    "b6b73303080203dcdbeab6b733050107676176652075700001dce39cd7b933dcdbeab6b73303090504c0dcea",
    "b6b73300000001c0b9c6b8b733c0dceab6b73303070402b8e7eab6b7330200010b7b226f6b223a747275657d",
    "01b8c4c6b8b733b8e7eab6b7330509c0b9c6b8b73301c096a2bab7330508dce39cd7b93300040901c096a2ba",
    "b73301b8e7eab6b733040a0000b8e7eab6b73306076e696768746c794e0509302033202a202a202a0c457572",
    "6f70652f506172697306656d61696c730f7b227265706f7274223a747275657d800103000101610162000100",
    "01808aa2bab73380d0eab6b73380d0eab6b7330080d0eab6b73307036f6c64b8e7eab6b733080a656d61696c",
    "73006b2d30ffcfeab6b733030b010107908ff0b6b73301000000a0efeab6b733030b0303908ff0b6b7330501",
    "0d6c6561736520657870697265640001809ecf84ba33908ff0b6b733030b0600f896f0b6b73300000000f896",
    "f0b6b73306076e696768746c794e0509302033202a202a202a0c4575726f70652f506172697306656d61696c",
    "730f7b227265706f7274223a747275657d80010300010161016201010001808aa2bab73380d0eab6b73380d0",
    "eab6b73301e09ef0b6b73306076e696768746c794e0509302033202a202a202a0c4575726f70652f50617269",
    "7306656d61696c730f7b227265706f7274223a747275657d80010300010161016200010001808aa2bab73380",
    "d0eab6b73380d0eab6b73302c8a6f0b6b73306076e696768746c79540509302033202a202a202a0c4575726f",
    "70652f506172697306656d61696c730f7b227265706f7274223a747275657d80010300010161016200010180",
    "8aa2bab73301808aa2bab73380d0eab6b73380d0eab6b733030ce48aa2bab73309010709066f726465727301",
    "036f2d310c7b22746f74616c223a31327d0105747261636503742d32c88ba2bab7330900066f726465727300",
    "046e756c6c00ac8ca2bab7330a06656d61696c7302908da2bab7330b086d6972726f722d6111f48da2bab733",
    "0c086d6972726f722d620d10303132333435363738396162636465665e050707070707070707070707070707",
    "0707070707070707070707070707070707070461636d65020c6a6f62733a656e71756575650c6a6f62733a63",
    "6f6e73756d650107656d61696c732a066d61696c65720164000101d88ea2bab73300000e1030313233343536",
    "373839616263646566bc8fa2bab7330f1030313233343536373839616263646566a090a2bab7330107626f75",
    "6e6465641b05b0ea0105e807c0cf24010080dddb018088b2a00280b8992901648491a2bab733",
);

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The bytes of lower-case hex text.
pub fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

/// 2026-01-01T00:00:00Z.
const T: u64 = 1_767_225_600_000;

fn change(
    event: JobEvent,
    state: StoredState,
    attempts: u32,
    last_error: Option<&str>,
    result: Option<&str>,
    expires_at: Option<u64>,
    at: u64,
) -> JobChange {
    JobChange {
        event,
        state,
        attempts,
        last_error: last_error.map(Into::into),
        result: result.map(Into::into),
        expires_at,
        at,
    }
}

fn record(id: u64, lease_ms: Option<u64>) -> JobRecord {
    JobRecord {
        queue: "emails".into(),
        priority: if id == 7 { 192 } else { 128 },
        state: StoredState::Queued { run_at: T + 500 },
        attempts: 0,
        max_attempts: 5,
        lease_ms,
        enqueued_at: T,
        updated_at: T,
        last_error: None,
        version: 1,
        group: None,
    }
}

/// The latest time the op format 3 frame of [`v3_ops`] holds: what ops that kept no time get.
const V3_FRAME_TIME: u64 = T + 3_000;

/// Op format 4 needs all of [`v3_ops`] and more: every job event, every schedule event, and the
/// ops format 3 did not have.
pub fn golden_ops() -> Vec<WriteOp> {
    let mut ops = v3_ops();
    let queue = match &ops[0] {
        WriteOp::PutQueue { record, .. } => record.clone(),
        other => panic!("op 0 is the queue put, not {other:?}"),
    };
    let nightly = match &ops[13] {
        WriteOp::PutSchedule { record, .. } => record.clone(),
        other => panic!("op 13 is the schedule put, not {other:?}"),
    };
    ops.extend([
        WriteOp::Update {
            id: 11,
            change: change(
                JobEvent::Extended,
                StoredState::Leased {
                    nonce: 7,
                    deadline: T + 90_000,
                },
                1,
                None,
                None,
                None,
                T + 4_000,
            ),
        },
        WriteOp::Update {
            id: 11,
            change: change(
                JobEvent::Expired,
                StoredState::Dead {
                    died_at: T + 90_000,
                },
                5,
                Some("lease expired"),
                None,
                Some(T + 700_000_000),
                T + 90_000,
            ),
        },
        WriteOp::Update {
            id: 11,
            change: change(
                JobEvent::Replayed,
                StoredState::Queued { run_at: T + 91_000 },
                0,
                None,
                None,
                None,
                T + 91_000,
            ),
        },
        WriteOp::PutSchedule {
            name: "nightly".into(),
            record: ScheduleRecord {
                paused: true,
                ..nightly.clone()
            },
            event: ScheduleEvent::Paused,
            at: T + 92_000,
        },
        WriteOp::PutSchedule {
            name: "nightly".into(),
            record: nightly.clone(),
            event: ScheduleEvent::Resumed,
            at: T + 93_000,
        },
        WriteOp::PutSchedule {
            name: "nightly".into(),
            record: ScheduleRecord {
                last_fire: Some(T + 7_200_000),
                ..nightly
            },
            event: ScheduleEvent::Fired { job_id: 12 },
            at: T + 7_200_100,
        },
        WriteOp::Message(Message {
            if_stored: Some((7, 9)),
            topic: "orders".into(),
            key: Some("o-1".into()),
            payload: r#"{"total":12}"#.into(),
            headers: vec![("trace".into(), "t-2".into())],
            at: T + 7_200_200,
        }),
        WriteOp::Message(Message {
            if_stored: None,
            topic: "orders".into(),
            key: None,
            payload: "null".into(),
            headers: vec![],
            at: T + 7_200_300,
        }),
        WriteOp::QueuePurged {
            queue: "emails".into(),
            jobs: 2,
            at: T + 7_200_400,
        },
        WriteOp::PutCursor {
            name: "mirror-a".into(),
            seq: 17,
            at: T + 7_200_500,
        },
        WriteOp::DeleteCursor {
            name: "mirror-b".into(),
        },
        WriteOp::PutKey {
            id: "0123456789abcdef".into(),
            record: KeyRecord {
                hash: [7; 32],
                tenant: "acme".into(),
                scopes: vec!["jobs:enqueue".into(), "jobs:consume".into()],
                queues: vec!["emails*".into()],
                label: "mailer".into(),
                limits: KeyLimits {
                    enqueue_per_sec: Some(100),
                    consume_per_sec: None,
                    admin_per_sec: Some(1),
                },
                created_at: T + 7_200_600,
                last_used_at: None,
                revoked_at: None,
            },
        },
        WriteOp::KeyUsed {
            id: "0123456789abcdef".into(),
            at: T + 7_200_700,
        },
        WriteOp::RevokeKey {
            id: "0123456789abcdef".into(),
            at: T + 7_200_800,
        },
        WriteOp::PutQueue {
            name: "bounded".into(),
            record: QueueRecord {
                max_depth: Some(100),
                ..queue
            },
            at: T + 7_200_900,
        },
        WriteOp::Audit {
            record: AuditRecord {
                at: T + 7_201_000,
                key_id: Some("0123456789abcdef".into()),
                key_tenant: "*".into(),
                tenant: "acme".into(),
                peer: Some("127.0.0.1:50000".into()),
                action: "queue.pause".into(),
                target: Some("acme:emails".into()),
                status: 403,
                error: Some("forbidden".into()),
            },
            trim_before: T - 90 * 86_400_000,
        },
        WriteOp::Audit {
            record: AuditRecord {
                at: T + 7_201_100,
                key_id: None,
                key_tenant: "*".into(),
                tenant: "default".into(),
                peer: None,
                action: "key.create".into(),
                target: None,
                status: 201,
                error: None,
            },
            trim_before: 0,
        },
        WriteOp::Delete {
            id: 7,
            expiry: Some(T + 7_201_000),
            reason: DeleteReason::QueueDeleted,
            at: T + 7_201_200,
        },
        WriteOp::QueueDeleted {
            queue: "emails".into(),
            jobs: 3,
            at: T + 7_201_200,
        },
    ]);
    ops
}

/// The queue "emails" is created; jobs 7, 8 and 9 are inserted (7 with an idempotency key),
/// 7 is leased, retried and acked, 8 dies, 9 is cancelled and purged; schedule "nightly" is put
/// and "old" deleted; a key is forgotten. What op format 3 could say, as the format 4 decoder
/// of it fills in the rest.
pub fn v3_ops() -> Vec<WriteOp> {
    let queue = QueueRecord {
        lease_ms: 30_000,
        max_attempts: 5,
        backoff_base_ms: 1_000,
        backoff_cap_ms: 600_000,
        backoff_jitter: true,
        paused: false,
        retention_ms: 3_600_000,
        dead_retention_ms: 604_800_000,
        idempotency_window_ms: 86_400_000,
        max_depth: None,
        group_max_in_flight: None,
        group_weights: Vec::new(),
    };
    let schedule = ScheduleRecord {
        cron: "0 3 * * *".into(),
        zone: "Europe/Paris".into(),
        queue: "emails".into(),
        template: JobTemplate {
            payload: r#"{"report":true}"#.into(),
            priority: 128,
            max_attempts: Some(3),
            lease_ms: None,
            headers: vec![("a".into(), "b".into())],
        },
        paused: false,
        catch_up: true,
        last_fire: None,
        next_fire: Some(T + 7_200_000),
        created_at: T,
        updated_at: T,
    };
    vec![
        WriteOp::PutQueue {
            name: "emails".into(),
            record: queue,
            at: V3_FRAME_TIME,
        },
        WriteOp::Insert {
            id: 7,
            record: record(7, Some(60_000)),
            body: JobBody {
                payload: r#"{"to":"ada"}"#.into(),
                headers: vec![("trace".into(), "t-1".into())],
            },
            idempotency: Some(IdempotencyKey {
                key: "emails\0k-1".into(),
                expires_at: T + 86_400_000,
            }),
        },
        WriteOp::Insert {
            id: 8,
            record: record(8, None),
            body: JobBody {
                payload: "null".into(),
                headers: vec![],
            },
            idempotency: None,
        },
        WriteOp::Insert {
            id: 9,
            record: record(9, None),
            body: JobBody {
                payload: "[1,2]".into(),
                headers: vec![],
            },
            idempotency: None,
        },
        WriteOp::Update {
            id: 7,
            change: change(
                JobEvent::Leased,
                StoredState::Leased {
                    nonce: 0xdead_beef,
                    deadline: T + 30_500,
                },
                1,
                None,
                None,
                None,
                T + 500,
            ),
        },
        WriteOp::Update {
            id: 7,
            change: change(
                JobEvent::Nacked,
                StoredState::Queued { run_at: T + 2_000 },
                1,
                Some("boom"),
                None,
                None,
                T + 1_000,
            ),
        },
        WriteOp::Update {
            id: 8,
            change: change(
                JobEvent::Nacked,
                StoredState::Dead { died_at: T + 1_500 },
                5,
                Some("gave up"),
                None,
                Some(T + 604_801_500),
                T + 1_500,
            ),
        },
        WriteOp::Update {
            id: 9,
            change: change(
                JobEvent::Cancelled,
                StoredState::Cancelled {
                    finished_at: T + 1_600,
                },
                0,
                None,
                None,
                Some(T + 3_601_600),
                T + 1_600,
            ),
        },
        WriteOp::Update {
            id: 7,
            change: change(
                JobEvent::Acked,
                StoredState::Succeeded {
                    finished_at: T + 3_000,
                },
                2,
                None,
                Some(r#"{"ok":true}"#),
                Some(T + 3_603_000),
                T + 3_000,
            ),
        },
        WriteOp::MoveExpiry {
            id: 9,
            from: T + 3_601_600,
            to: Some(T + 7_201_600),
        },
        WriteOp::MoveExpiry {
            id: 8,
            from: T + 604_801_500,
            to: None,
        },
        WriteOp::Delete {
            id: 9,
            expiry: Some(T + 7_201_600),
            reason: DeleteReason::Retention,
            at: V3_FRAME_TIME,
        },
        WriteOp::Delete {
            id: 10,
            expiry: None,
            reason: DeleteReason::Purge,
            at: V3_FRAME_TIME,
        },
        WriteOp::PutSchedule {
            name: "nightly".into(),
            at: schedule.updated_at,
            record: schedule,
            event: ScheduleEvent::Put,
        },
        WriteOp::DeleteSchedule {
            name: "old".into(),
            at: V3_FRAME_TIME,
        },
        WriteOp::ForgetKey {
            key: "emails\0k-0".into(),
            expires_at: T - 1,
        },
    ]
}

/// Op format 4 as wharf wrote it with records of format 6 (before the audit trail): the first
/// [`V4_RECORDS_V6_OPS`] of [`golden_ops`].
pub const V4_RECORDS_V6_HEX: &str = concat!(
    "041f0106656d61696c731c06b0ea0105e807c0cf24010080dddb018088b2a00280b89929000000b8e7eab6b7",
    "330207250606656d61696c73c000f4d3eab6b733000501e0d40380d0eab6b73380d0eab6b73300010019060c",
    "7b22746f223a22616461227d0105747261636503742d31010a656d61696c73006b2d31808884e0b733020822",
    "0606656d61696c738000f4d3eab6b73300050080d0eab6b73380d0eab6b7330001000706046e756c6c000002",
    "09220606656d61696c738000f4d3eab6b73300050080d0eab6b73380d0eab6b7330001000806055b312c325d",
    "000003070001effdb6f50da4beecb6b73301000000f4d3eab6b73303070200d0dfeab6b733010104626f6f6d",
    "0000e8d7eab6b73303080203dcdbeab6b733050107676176652075700001dce39cd7b933dcdbeab6b7330309",
    "0504c0dceab6b73300000001c0b9c6b8b733c0dceab6b73303070402b8e7eab6b7330200010b7b226f6b223a",
    "747275657d01b8c4c6b8b733b8e7eab6b7330509c0b9c6b8b73301c096a2bab7330508dce39cd7b933000409",
    "01c096a2bab73301b8e7eab6b733040a0000b8e7eab6b73306076e696768746c794e0609302033202a202a20",
    "2a0c4575726f70652f506172697306656d61696c730f7b227265706f7274223a747275657d80010300010161",
    "016200010001808aa2bab73380d0eab6b73380d0eab6b7330080d0eab6b73307036f6c64b8e7eab6b733080a",
    "656d61696c73006b2d30ffcfeab6b733030b010107908ff0b6b73301000000a0efeab6b733030b0303908ff0",
    "b6b73305010d6c6561736520657870697265640001809ecf84ba33908ff0b6b733030b0600f896f0b6b73300",
    "000000f896f0b6b73306076e696768746c794e0609302033202a202a202a0c4575726f70652f506172697306",
    "656d61696c730f7b227265706f7274223a747275657d80010300010161016201010001808aa2bab73380d0ea",
    "b6b73380d0eab6b73301e09ef0b6b73306076e696768746c794e0609302033202a202a202a0c4575726f7065",
    "2f506172697306656d61696c730f7b227265706f7274223a747275657d80010300010161016200010001808a",
    "a2bab73380d0eab6b73380d0eab6b73302c8a6f0b6b73306076e696768746c79540609302033202a202a202a",
    "0c4575726f70652f506172697306656d61696c730f7b227265706f7274223a747275657d8001030001016101",
    "62000101808aa2bab73301808aa2bab73380d0eab6b73380d0eab6b733030ce48aa2bab73309010709066f72",
    "6465727301036f2d310c7b22746f74616c223a31327d0105747261636503742d32c88ba2bab7330900066f72",
    "6465727300046e756c6c00ac8ca2bab7330a06656d61696c7302908da2bab7330b086d6972726f722d6111f4",
    "8da2bab7330c086d6972726f722d620d10303132333435363738396162636465665e06070707070707070707",
    "07070707070707070707070707070707070707070707070461636d65020c6a6f62733a656e71756575650c6a",
    "6f62733a636f6e73756d650107656d61696c732a066d61696c65720164000101d88ea2bab73300000e103031",
    "3233343536373839616263646566bc8fa2bab7330f1030313233343536373839616263646566a090a2bab733",
    "0107626f756e6465641d06b0ea0105e807c0cf24010080dddb018088b2a00280b89929016400008491a2bab7",
    "33",
);

/// How many of [`golden_ops`] the journal of record format 7 holds.
pub const V4_RECORDS_V7_OPS: usize = 33;

/// Op format 4 as wharf wrote it with records of format 7 (before queue deletion): the first
/// [`V4_RECORDS_V7_OPS`] of [`golden_ops`].
pub const V4_RECORDS_V7_HEX: &str = concat!(
    "04210106656d61696c731c07b0ea0105e807c0cf24010080dddb018088b2a00280b89929000000b8e7eab6b7",
    "330207250706656d61696c73c000f4d3eab6b733000501e0d40380d0eab6b73380d0eab6b73300010019070c",
    "7b22746f223a22616461227d0105747261636503742d31010a656d61696c73006b2d31808884e0b733020822",
    "0706656d61696c738000f4d3eab6b73300050080d0eab6b73380d0eab6b7330001000707046e756c6c000002",
    "09220706656d61696c738000f4d3eab6b73300050080d0eab6b73380d0eab6b7330001000807055b312c325d",
    "000003070001effdb6f50da4beecb6b73301000000f4d3eab6b73303070200d0dfeab6b733010104626f6f6d",
    "0000e8d7eab6b73303080203dcdbeab6b733050107676176652075700001dce39cd7b933dcdbeab6b7330309",
    "0504c0dceab6b73300000001c0b9c6b8b733c0dceab6b73303070402b8e7eab6b7330200010b7b226f6b223a",
    "747275657d01b8c4c6b8b733b8e7eab6b7330509c0b9c6b8b73301c096a2bab7330508dce39cd7b933000409",
    "01c096a2bab73301b8e7eab6b733040a0000b8e7eab6b73306076e696768746c794e0709302033202a202a20",
    "2a0c4575726f70652f506172697306656d61696c730f7b227265706f7274223a747275657d80010300010161",
    "016200010001808aa2bab73380d0eab6b73380d0eab6b7330080d0eab6b73307036f6c64b8e7eab6b733080a",
    "656d61696c73006b2d30ffcfeab6b733030b010107908ff0b6b73301000000a0efeab6b733030b0303908ff0",
    "b6b73305010d6c6561736520657870697265640001809ecf84ba33908ff0b6b733030b0600f896f0b6b73300",
    "000000f896f0b6b73306076e696768746c794e0709302033202a202a202a0c4575726f70652f506172697306",
    "656d61696c730f7b227265706f7274223a747275657d80010300010161016201010001808aa2bab73380d0ea",
    "b6b73380d0eab6b73301e09ef0b6b73306076e696768746c794e0709302033202a202a202a0c4575726f7065",
    "2f506172697306656d61696c730f7b227265706f7274223a747275657d80010300010161016200010001808a",
    "a2bab73380d0eab6b73380d0eab6b73302c8a6f0b6b73306076e696768746c79540709302033202a202a202a",
    "0c4575726f70652f506172697306656d61696c730f7b227265706f7274223a747275657d8001030001016101",
    "62000101808aa2bab73301808aa2bab73380d0eab6b73380d0eab6b733030ce48aa2bab73309010709066f72",
    "6465727301036f2d310c7b22746f74616c223a31327d0105747261636503742d32c88ba2bab7330900066f72",
    "6465727300046e756c6c00ac8ca2bab7330a06656d61696c7302908da2bab7330b086d6972726f722d6111f4",
    "8da2bab7330c086d6972726f722d620d10303132333435363738396162636465665e07070707070707070707",
    "07070707070707070707070707070707070707070707070461636d65020c6a6f62733a656e71756575650c6a",
    "6f62733a636f6e73756d650107656d61696c732a066d61696c65720164000101d88ea2bab73300000e103031",
    "3233343536373839616263646566bc8fa2bab7330f1030313233343536373839616263646566a090a2bab733",
    "0107626f756e6465641d07b0ea0105e807c0cf24010080dddb018088b2a00280b89929016400008491a2bab7",
    "33105707e891a2bab733011030313233343536373839616263646566012a0461636d65010f3132372e302e30",
    "2e313a35303030300b71756575652e7061757365010b61636d653a656d61696c7393030109666f7262696464",
    "656e80a0f9ba9a33102207cc92a2bab73300012a0764656661756c74000a6b65792e63726561746500c90100",
    "00",
);

/// Op format 4 of [`golden_ops`], version byte included.
pub const V4_HEX: &str = concat!(
    "04230106656d61696c731c08b0ea0105e807c0cf24010080dddb018088b2a00280b89929000000b8e7eab6b7",
    "330207250806656d61696c73c000f4d3eab6b733000501e0d40380d0eab6b73380d0eab6b73300010019080c",
    "7b22746f223a22616461227d0105747261636503742d31010a656d61696c73006b2d31808884e0b733020822",
    "0806656d61696c738000f4d3eab6b73300050080d0eab6b73380d0eab6b7330001000708046e756c6c000002",
    "09220806656d61696c738000f4d3eab6b73300050080d0eab6b73380d0eab6b7330001000808055b312c325d",
    "000003070001effdb6f50da4beecb6b73301000000f4d3eab6b73303070200d0dfeab6b733010104626f6f6d",
    "0000e8d7eab6b73303080203dcdbeab6b733050107676176652075700001dce39cd7b933dcdbeab6b7330309",
    "0504c0dceab6b73300000001c0b9c6b8b733c0dceab6b73303070402b8e7eab6b7330200010b7b226f6b223a",
    "747275657d01b8c4c6b8b733b8e7eab6b7330509c0b9c6b8b73301c096a2bab7330508dce39cd7b933000409",
    "01c096a2bab73301b8e7eab6b733040a0000b8e7eab6b73306076e696768746c794e0809302033202a202a20",
    "2a0c4575726f70652f506172697306656d61696c730f7b227265706f7274223a747275657d80010300010161",
    "016200010001808aa2bab73380d0eab6b73380d0eab6b7330080d0eab6b73307036f6c64b8e7eab6b733080a",
    "656d61696c73006b2d30ffcfeab6b733030b010107908ff0b6b73301000000a0efeab6b733030b0303908ff0",
    "b6b73305010d6c6561736520657870697265640001809ecf84ba33908ff0b6b733030b0600f896f0b6b73300",
    "000000f896f0b6b73306076e696768746c794e0809302033202a202a202a0c4575726f70652f506172697306",
    "656d61696c730f7b227265706f7274223a747275657d80010300010161016201010001808aa2bab73380d0ea",
    "b6b73380d0eab6b73301e09ef0b6b73306076e696768746c794e0809302033202a202a202a0c4575726f7065",
    "2f506172697306656d61696c730f7b227265706f7274223a747275657d80010300010161016200010001808a",
    "a2bab73380d0eab6b73380d0eab6b73302c8a6f0b6b73306076e696768746c79540809302033202a202a202a",
    "0c4575726f70652f506172697306656d61696c730f7b227265706f7274223a747275657d8001030001016101",
    "62000101808aa2bab73301808aa2bab73380d0eab6b73380d0eab6b733030ce48aa2bab73309010709066f72",
    "6465727301036f2d310c7b22746f74616c223a31327d0105747261636503742d32c88ba2bab7330900066f72",
    "6465727300046e756c6c00ac8ca2bab7330a06656d61696c7302908da2bab7330b086d6972726f722d6111f4",
    "8da2bab7330c086d6972726f722d620d10303132333435363738396162636465665e08070707070707070707",
    "07070707070707070707070707070707070707070707070461636d65020c6a6f62733a656e71756575650c6a",
    "6f62733a636f6e73756d650107656d61696c732a066d61696c65720164000101d88ea2bab73300000e103031",
    "3233343536373839616263646566bc8fa2bab7330f1030313233343536373839616263646566a090a2bab733",
    "0107626f756e6465641d08b0ea0105e807c0cf24010080dddb018088b2a00280b89929016400008491a2bab7",
    "33105708e891a2bab733011030313233343536373839616263646566012a0461636d65010f3132372e302e30",
    "2e313a35303030300b71756575652e7061757365010b61636d653a656d61696c7393030109666f7262696464",
    "656e80a0f9ba9a33102208cc92a2bab73300012a0764656661756c74000a6b65792e63726561746500c90100",
    "00040701e891a2bab73302b093a2bab7331106656d61696c7303b093a2bab733",
);
