//! The golden ops: one of every op and every state, with and without their optional fields,
//! and the bytes each op format wrote for them. Shared by the codec tests and the journal
//! replay test.

#![allow(clippy::unwrap_used)]

use super::super::records::{
    JobBody, JobRecord, JobTemplate, QueueRecord, ScheduleRecord, StoredState,
};
use super::{IdempotencyKey, JobChange, WriteOp};

/// Op format 3 (and 2): postcard of the ops, as wharf wrote them before op format 4.
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

/// Op format 4, version byte included.
pub const V4_HEX: &str = concat!(
    "04100106656d61696c731903b0ea0105e807c0cf24010080dddb018088b2a00280b899290207240306656d61",
    "696c73c000f4d3eab6b733000501e0d40380d0eab6b73380d0eab6b733000119030c7b22746f223a22616461",
    "227d0105747261636503742d31010a656d61696c73006b2d31808884e0b7330208210306656d61696c738000",
    "f4d3eab6b73300050080d0eab6b73380d0eab6b73300010703046e756c6c00000209210306656d61696c7380",
    "00f4d3eab6b73300050080d0eab6b73380d0eab6b73300010803055b312c325d0000030701effdb6f50da4be",
    "ecb6b73301000000f4d3eab6b733030700d0dfeab6b733010104626f6f6d0000e8d7eab6b733030803dcdbea",
    "b6b733050107676176652075700001dce39cd7b933dcdbeab6b733030904c0dceab6b73300000001c0b9c6b8",
    "b733c0dceab6b733030702b8e7eab6b7330200010b7b226f6b223a747275657d01b8c4c6b8b733b8e7eab6b7",
    "330509c0b9c6b8b73301c096a2bab7330508dce39cd7b93300040901c096a2bab733040a0006076e69676874",
    "6c794e0309302033202a202a202a0c4575726f70652f506172697306656d61696c730f7b227265706f727422",
    "3a747275657d80010300010161016200010001808aa2bab73380d0eab6b73380d0eab6b73307036f6c64080a",
    "656d61696c73006b2d30ffcfeab6b733",
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
    state: StoredState,
    attempts: u32,
    last_error: Option<&str>,
    result: Option<&str>,
    expires_at: Option<u64>,
    at: u64,
) -> JobChange {
    JobChange {
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
    }
}

/// The queue "emails" is created; jobs 7, 8 and 9 are inserted (7 with an idempotency key),
/// 7 is leased, retried and acked, 8 dies, 9 is cancelled and purged; schedule "nightly" is put
/// and "old" deleted; a key is forgotten.
pub fn golden_ops() -> Vec<WriteOp> {
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
        },
        WriteOp::Delete {
            id: 10,
            expiry: None,
        },
        WriteOp::PutSchedule {
            name: "nightly".into(),
            record: schedule,
        },
        WriteOp::DeleteSchedule { name: "old".into() },
        WriteOp::ForgetKey {
            key: "emails\0k-0".into(),
            expires_at: T - 1,
        },
    ]
}
