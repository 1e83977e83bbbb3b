//! One test per op: what it does to the tables, and what it reports for the outbox.

#![allow(clippy::unwrap_used)]

use redb::backends::InMemoryBackend;
use redb::{Database, ReadableTable};

use super::*;
use crate::storage::ops::JobChange;
use crate::storage::records::{JobTemplate, QueueRecord, ScheduleRecord, StoredState};

/// A fresh in-memory database.
fn db() -> Database {
    Database::builder()
        .create_with_backend(InMemoryBackend::new())
        .unwrap()
}

/// Applies `ops` in one transaction, in order; returns what each did.
fn run(db: &Database, ops: &[WriteOp]) -> Vec<Applied> {
    let txn = db.begin_write().unwrap();
    let applied = {
        let mut t = Tables::open(&txn).unwrap();
        ops.iter().map(|op| apply(&mut t, op).unwrap()).collect()
    };
    txn.commit().unwrap();
    applied
}

/// Reads the tables back in a write transaction (never committed).
fn with_tables<T>(db: &Database, read: impl FnOnce(&Tables<'_>) -> T) -> T {
    let txn = db.begin_write().unwrap();
    let out = read(&Tables::open(&txn).unwrap());
    txn.abort().unwrap();
    out
}

fn record(at: u64) -> JobRecord {
    JobRecord {
        queue: "q".into(),
        priority: 128,
        state: StoredState::Queued { run_at: at },
        attempts: 0,
        max_attempts: 5,
        lease_ms: None,
        enqueued_at: at,
        updated_at: at,
        last_error: None,
        version: 1,
    }
}

fn insert(id: u64, at: u64, key: Option<(&str, u64)>) -> WriteOp {
    WriteOp::Insert {
        id,
        record: record(at),
        body: JobBody {
            payload: format!("{id}"),
            headers: vec![("h".into(), "v".into())],
        },
        idempotency: key.map(|(key, expires_at)| IdempotencyKey {
            key: key.into(),
            expires_at,
        }),
    }
}

fn stored(t: &Tables<'_>, id: u64) -> Option<JobRecord> {
    t.jobs.get(id).unwrap().map(|v| decode(v.value()).unwrap())
}

fn expiry(t: &Tables<'_>) -> Vec<(u64, u64)> {
    t.expiry
        .iter()
        .unwrap()
        .map(|row| row.unwrap().0.value())
        .collect()
}

fn key_expiry(t: &Tables<'_>) -> Vec<(u64, String)> {
    t.idempotency_expiry
        .iter()
        .unwrap()
        .map(|row| {
            let (key, _) = row.unwrap();
            let (at, name) = key.value();
            (at, name.to_owned())
        })
        .collect()
}

fn change(state: StoredState, at: u64) -> JobChange {
    JobChange {
        state,
        attempts: 1,
        last_error: None,
        result: None,
        expires_at: None,
        at,
    }
}

#[test]
fn put_queue_stores_the_record() {
    let db = db();
    let record = QueueRecord {
        lease_ms: 1,
        max_attempts: 2,
        backoff_base_ms: 3,
        backoff_cap_ms: 4,
        backoff_jitter: false,
        paused: true,
        retention_ms: 5,
        dead_retention_ms: 6,
        idempotency_window_ms: 7,
    };
    let applied = run(
        &db,
        &[WriteOp::PutQueue {
            name: "q".into(),
            record: record.clone(),
        }],
    );
    assert_eq!(applied, [Applied::Quiet]);
    let back: QueueRecord = with_tables(&db, |t| {
        decode(t.queues.get("q").unwrap().unwrap().value()).unwrap()
    });
    assert_eq!(back, record);
}

#[test]
fn insert_stores_record_and_body_and_reports_the_change() {
    let db = db();
    let applied = run(&db, &[insert(7, 100, None)]);
    let Applied::Inserted(entry) = &applied[0] else {
        panic!("{applied:?}");
    };
    assert_eq!(
        (
            entry.job_id,
            entry.queue.as_str(),
            entry.state,
            entry.version
        ),
        (7, "q", Some(StoredState::Queued { run_at: 100 }), 1)
    );
    with_tables(&db, |t| {
        assert_eq!(stored(t, 7), Some(record(100)));
        let body: JobBody = decode(t.bodies.get(7).unwrap().unwrap().value()).unwrap();
        assert_eq!(body.payload, "7");
        assert!(key_expiry(t).is_empty(), "no key, no key window");
    });
}

#[test]
fn insert_with_a_live_key_is_a_duplicate_and_writes_nothing() {
    let db = db();
    run(&db, &[insert(1, 100, Some(("q\0k", 500)))]);
    // Within the window (enqueued at 499 < 500): the original answers, nothing is stored.
    let applied = run(&db, &[insert(2, 499, Some(("q\0k", 999)))]);
    assert_eq!(
        applied,
        [Applied::Duplicate(Original {
            id: 1,
            state: Some(StoredState::Queued { run_at: 100 })
        })]
    );
    with_tables(&db, |t| {
        assert!(stored(t, 2).is_none());
        assert!(t.bodies.get(2).unwrap().is_none());
        assert_eq!(key_expiry(t), [(500, "q\0k".to_owned())]);
    });
}

#[test]
fn insert_with_an_ended_key_takes_it_over() {
    let db = db();
    run(&db, &[insert(1, 100, Some(("q\0k", 500)))]);
    // Enqueued at the end of the window: the key is free, its old expiry entry goes.
    let applied = run(&db, &[insert(2, 500, Some(("q\0k", 900)))]);
    assert!(matches!(applied[0], Applied::Inserted(_)));
    with_tables(&db, |t| {
        assert!(stored(t, 2).is_some());
        assert_eq!(key_expiry(t), [(900, "q\0k".to_owned())]);
        let entry: IdempotencyRecord =
            decode(t.idempotency.get("q\0k").unwrap().unwrap().value()).unwrap();
        assert_eq!((entry.job_id, entry.expires_at), (2, 900));
    });
}

#[test]
fn a_duplicate_of_a_deleted_original_has_no_state() {
    let db = db();
    run(
        &db,
        &[
            insert(1, 100, Some(("q\0k", 500))),
            WriteOp::Delete {
                id: 1,
                expiry: None,
            },
        ],
    );
    assert_eq!(
        run(&db, &[insert(2, 200, Some(("q\0k", 900)))]),
        [Applied::Duplicate(Original { id: 1, state: None })]
    );
}

#[test]
fn update_changes_the_record_and_indexes_retention() {
    let db = db();
    run(&db, &[insert(1, 100, None)]);
    let done = JobChange {
        state: StoredState::Succeeded { finished_at: 300 },
        attempts: 2,
        last_error: Some("first try failed".into()),
        result: Some("{\"ok\":1}".into()),
        expires_at: Some(4_000),
        at: 300,
    };
    let applied = run(
        &db,
        &[WriteOp::Update {
            id: 1,
            change: done,
        }],
    );
    let Applied::Changed(entry) = &applied[0] else {
        panic!("{applied:?}");
    };
    assert_eq!(
        (entry.state, entry.attempts, entry.version, entry.at),
        (Some(StoredState::Succeeded { finished_at: 300 }), 2, 2, 300)
    );
    with_tables(&db, |t| {
        let r = stored(t, 1).unwrap();
        assert_eq!(
            (r.state, r.attempts, r.updated_at, r.version),
            (StoredState::Succeeded { finished_at: 300 }, 2, 300, 2)
        );
        assert_eq!(r.last_error.as_deref(), Some("first try failed"));
        assert_eq!(t.results.get(1).unwrap().unwrap().value(), "{\"ok\":1}");
        assert_eq!(expiry(t), [(4_000, 1)]);
    });
    // An update without an error keeps the last one.
    run(
        &db,
        &[WriteOp::Update {
            id: 1,
            change: change(StoredState::Queued { run_at: 500 }, 400),
        }],
    );
    with_tables(&db, |t| {
        assert_eq!(
            stored(t, 1).unwrap().last_error.as_deref(),
            Some("first try failed")
        );
    });
}

#[test]
fn update_of_a_missing_job_changes_nothing() {
    let db = db();
    let applied = run(
        &db,
        &[WriteOp::Update {
            id: 9,
            change: change(StoredState::Dead { died_at: 1 }, 1),
        }],
    );
    assert_eq!(applied, [Applied::Quiet]);
    with_tables(&db, |t| assert!(stored(t, 9).is_none()));
}

#[test]
fn delete_removes_everything_and_reports_a_change_without_state() {
    let db = db();
    let done = JobChange {
        result: Some("1".into()),
        expires_at: Some(700),
        ..change(StoredState::Succeeded { finished_at: 200 }, 200)
    };
    run(
        &db,
        &[
            insert(1, 100, None),
            WriteOp::Update {
                id: 1,
                change: done,
            },
        ],
    );
    let applied = run(
        &db,
        &[WriteOp::Delete {
            id: 1,
            expiry: Some(700),
        }],
    );
    let Applied::Changed(entry) = &applied[0] else {
        panic!("{applied:?}");
    };
    assert_eq!((entry.job_id, entry.state, entry.version), (1, None, 3));
    with_tables(&db, |t| {
        assert!(stored(t, 1).is_none());
        assert!(t.bodies.get(1).unwrap().is_none());
        assert!(t.results.get(1).unwrap().is_none());
        assert!(expiry(t).is_empty());
    });
    // Deleting what is gone does nothing, and reports nothing.
    assert_eq!(
        run(
            &db,
            &[WriteOp::Delete {
                id: 1,
                expiry: None
            }]
        ),
        [Applied::Quiet]
    );
}

#[test]
fn move_expiry_moves_or_drops_the_entry() {
    let db = db();
    let dead = JobChange {
        expires_at: Some(500),
        ..change(StoredState::Dead { died_at: 100 }, 100)
    };
    run(
        &db,
        &[
            insert(1, 100, None),
            WriteOp::Update {
                id: 1,
                change: dead,
            },
        ],
    );
    let moved = WriteOp::MoveExpiry {
        id: 1,
        from: 500,
        to: Some(900),
    };
    assert_eq!(run(&db, &[moved]), [Applied::Quiet]);
    with_tables(&db, |t| assert_eq!(expiry(t), [(900, 1)]));
    run(
        &db,
        &[WriteOp::MoveExpiry {
            id: 1,
            from: 900,
            to: None,
        }],
    );
    with_tables(&db, |t| {
        assert!(expiry(t).is_empty());
        assert!(stored(t, 1).is_some(), "the job itself stays");
    });
}

#[test]
fn put_and_delete_schedule() {
    let db = db();
    let record = ScheduleRecord {
        cron: "* * * * *".into(),
        zone: "UTC".into(),
        queue: "q".into(),
        template: JobTemplate {
            payload: "1".into(),
            priority: 1,
            max_attempts: None,
            lease_ms: None,
            headers: Vec::new(),
        },
        paused: false,
        catch_up: true,
        last_fire: None,
        next_fire: Some(60_000),
        created_at: 0,
        updated_at: 0,
    };
    let put = WriteOp::PutSchedule {
        name: "s".into(),
        record: record.clone(),
    };
    assert_eq!(run(&db, &[put]), [Applied::Quiet]);
    let back: ScheduleRecord = with_tables(&db, |t| {
        decode(t.schedules.get("s").unwrap().unwrap().value()).unwrap()
    });
    assert_eq!(back, record);
    run(&db, &[WriteOp::DeleteSchedule { name: "s".into() }]);
    with_tables(&db, |t| assert!(t.schedules.get("s").unwrap().is_none()));
}

#[test]
fn forget_key_forgets_only_the_window_that_ended() {
    let db = db();
    run(&db, &[insert(1, 100, Some(("q\0k", 500)))]);
    // A stale entry (the key was reused since, with the window ending at 500): only the expiry
    // entry named goes, the key stays.
    run(
        &db,
        &[WriteOp::ForgetKey {
            key: "q\0k".into(),
            expires_at: 400,
        }],
    );
    with_tables(&db, |t| {
        assert!(t.idempotency.get("q\0k").unwrap().is_some())
    });
    let applied = run(
        &db,
        &[WriteOp::ForgetKey {
            key: "q\0k".into(),
            expires_at: 500,
        }],
    );
    assert_eq!(applied, [Applied::Quiet]);
    with_tables(&db, |t| {
        assert!(t.idempotency.get("q\0k").unwrap().is_none());
        assert!(key_expiry(t).is_empty());
        assert!(stored(t, 1).is_some(), "the job stays");
    });
}
