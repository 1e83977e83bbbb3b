//! One test per op: what it does to the tables, and the events it appends.

#![allow(clippy::unwrap_used)]

use std::cell::RefCell;
use std::ops::Bound;

use redb::backends::InMemoryBackend;
use redb::{Database, Durability};

use super::*;
use crate::storage::layers::{Base, Layers};
use crate::storage::ops::Message;
use crate::storage::records::{DeleteReason, JobTemplate};

/// An in-memory database and the layers over it, as the writer has them.
struct Db {
    db: Database,
    layers: RefCell<Layers>,
}

/// A fresh in-memory database.
fn db() -> Db {
    let db = Database::builder()
        .create_with_backend(InMemoryBackend::new())
        .unwrap();
    let txn = db.begin_write().unwrap();
    crate::storage::tables::create_all(&txn).unwrap();
    txn.commit().unwrap();
    let layers = RefCell::new(Layers::open(&db, 1).unwrap());
    Db { db, layers }
}

/// Applies `ops` to the active layer, in order; returns what each did, and the events. The
/// layer is then folded into the file, as a checkpoint does, so that the next run reads
/// through both.
fn run(db: &Db, ops: &[WriteOp]) -> (Vec<Applied>, Vec<EventRecord>) {
    let mut layers = db.layers.borrow_mut();
    let mut events = Vec::new();
    let applied = {
        let mut t = Tables::new(&mut layers).unwrap();
        ops.iter()
            .map(|op| apply(&mut t, op, &mut events).unwrap())
            .collect()
    };
    let frozen = layers.freeze();
    let mut txn = db.db.begin_write().unwrap();
    txn.set_durability(Durability::None).unwrap();
    frozen.write_to(&txn).unwrap();
    txn.commit().unwrap();
    let _ = layers.checkpointed(Base::open(&db.db).unwrap());
    (applied, events)
}

/// The events of `ops`, without their times and queues: (job, data).
fn events_of(db: &Db, ops: &[WriteOp]) -> Vec<(Option<u64>, EventData)> {
    run(db, ops)
        .1
        .into_iter()
        .map(|e| (e.job_id, e.data))
        .collect()
}

/// Reads the tables back through the layers.
fn with_tables<T>(db: &Db, read: impl FnOnce(&Tables<'_>) -> T) -> T {
    let mut layers = db.layers.borrow_mut();
    read(&Tables::new(&mut layers).unwrap())
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
        group: None,
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
    t.jobs.get(&id).unwrap().map(|v| decode(&v).unwrap())
}

fn expiry(t: &Tables<'_>) -> Vec<(u64, u64)> {
    let all = t
        .expiry
        .read()
        .range(Bound::Unbounded, Bound::Unbounded, false, usize::MAX);
    all.unwrap().into_iter().map(|(key, ())| key).collect()
}

fn key_expiry(t: &Tables<'_>) -> Vec<(u64, String)> {
    let all =
        t.idempotency_expiry
            .read()
            .range(Bound::Unbounded, Bound::Unbounded, false, usize::MAX);
    all.unwrap().into_iter().map(|(key, ())| key).collect()
}

fn change(event: JobEvent, state: StoredState, at: u64) -> JobChange {
    JobChange {
        event,
        state,
        attempts: 1,
        last_error: None,
        result: None,
        expires_at: None,
        at,
    }
}

fn update(id: u64, change: JobChange) -> WriteOp {
    WriteOp::Update { id, change }
}

fn queue_record(lease_ms: u64, paused: bool) -> QueueRecord {
    QueueRecord {
        lease_ms,
        max_attempts: 2,
        backoff_base_ms: 3,
        backoff_cap_ms: 4,
        backoff_jitter: false,
        paused,
        retention_ms: 5,
        dead_retention_ms: 6,
        idempotency_window_ms: 7,
        max_depth: None,
        group_max_in_flight: None,
        group_weights: Vec::new(),
    }
}

fn put_queue(record: QueueRecord) -> WriteOp {
    WriteOp::PutQueue {
        name: "q".into(),
        record,
        at: 9,
    }
}

#[test]
fn put_queue_stores_the_record_and_says_what_changed() {
    let db = db();
    let (applied, events) = run(&db, &[put_queue(queue_record(1, false))]);
    assert_eq!(applied, [Applied::Done]);
    assert_eq!((events[0].at, events[0].queue.as_deref()), (9, Some("q")));
    assert_eq!(
        events[0].data,
        EventData::QueueCreated {
            settings: queue_record(1, false)
        }
    );
    let back: QueueRecord = with_tables(&db, |t| {
        decode(&t.queues.get(&"q".to_owned()).unwrap().unwrap()).unwrap()
    });
    assert_eq!(back, queue_record(1, false));
    // A pause alone is only a pause; a setting and a resume are both said; no change, nothing.
    let pause = events_of(&db, &[put_queue(queue_record(1, true))]);
    assert_eq!(pause, [(None, EventData::QueuePaused)]);
    let both = events_of(&db, &[put_queue(queue_record(2, false))]);
    assert_eq!(
        both,
        [
            (
                None,
                EventData::QueueUpdated {
                    settings: queue_record(2, false)
                }
            ),
            (None, EventData::QueueResumed),
        ]
    );
    assert!(events_of(&db, &[put_queue(queue_record(2, false))]).is_empty());
}

#[test]
fn insert_stores_record_and_body_and_says_so_with_the_whole_job() {
    let db = db();
    let (applied, events) = run(&db, &[insert(7, 100, None)]);
    assert_eq!(applied, [Applied::Inserted(7)]);
    assert_eq!(
        (events[0].at, events[0].job_id, events[0].queue.as_deref()),
        (100, Some(7), Some("q"))
    );
    assert_eq!(
        events[0].data,
        EventData::JobEnqueued {
            payload: "7".into(),
            priority: 128,
            headers: vec![("h".into(), "v".into())],
            run_at: 100,
            max_attempts: 5,
            lease_ms: None,
            group: None,
        }
    );
    with_tables(&db, |t| {
        assert_eq!(stored(t, 7), Some(record(100)));
        let body: JobBody = decode(&t.bodies.get(&7).unwrap().unwrap()).unwrap();
        assert_eq!(body.payload, "7");
        assert!(key_expiry(t).is_empty(), "no key, no key window");
    });
}

#[test]
fn insert_with_a_live_key_is_a_duplicate_and_writes_nothing() {
    let db = db();
    run(&db, &[insert(1, 100, Some(("q\0k", 500)))]);
    // Within the window (enqueued at 499 < 500): the original answers, nothing is stored.
    let (applied, events) = run(&db, &[insert(2, 499, Some(("q\0k", 999)))]);
    assert_eq!(
        applied,
        [Applied::Duplicate(Original {
            id: 1,
            state: Some(StoredState::Queued { run_at: 100 })
        })]
    );
    assert!(events.is_empty(), "a duplicate is no change");
    with_tables(&db, |t| {
        assert!(stored(t, 2).is_none());
        assert!(t.bodies.get(&2).unwrap().is_none());
        assert_eq!(key_expiry(t), [(500, "q\0k".to_owned())]);
    });
}

#[test]
fn insert_with_an_ended_key_takes_it_over() {
    let db = db();
    run(&db, &[insert(1, 100, Some(("q\0k", 500)))]);
    // Enqueued at the end of the window: the key is free, its old expiry entry goes.
    let (applied, _) = run(&db, &[insert(2, 500, Some(("q\0k", 900)))]);
    assert_eq!(applied, [Applied::Inserted(2)]);
    with_tables(&db, |t| {
        assert!(stored(t, 2).is_some());
        assert_eq!(key_expiry(t), [(900, "q\0k".to_owned())]);
        let entry: IdempotencyRecord =
            decode(&t.idempotency.get(&"q\0k".to_owned()).unwrap().unwrap()).unwrap();
        assert_eq!((entry.job_id, entry.expires_at), (2, 900));
    });
}

#[test]
fn a_duplicate_of_a_deleted_original_has_no_state() {
    let db = db();
    let delete = WriteOp::Delete {
        id: 1,
        expiry: None,
        reason: DeleteReason::Purge,
        at: 150,
    };
    run(&db, &[insert(1, 100, Some(("q\0k", 500))), delete]);
    assert_eq!(
        run(&db, &[insert(2, 200, Some(("q\0k", 900)))]).0,
        [Applied::Duplicate(Original { id: 1, state: None })]
    );
}

#[test]
fn update_changes_the_record_indexes_retention_and_says_what_happened() {
    let db = db();
    run(&db, &[insert(1, 100, None)]);
    let leased = StoredState::Leased {
        nonce: 5,
        deadline: 30_000,
    };
    assert_eq!(
        events_of(&db, &[update(1, change(JobEvent::Leased, leased, 200))]),
        [(
            Some(1),
            EventData::JobLeased {
                attempt: 1,
                lease_expires_at: 30_000
            }
        )]
    );
    let done = JobChange {
        attempts: 2,
        last_error: Some("first try failed".into()),
        result: Some("{\"ok\":1}".into()),
        expires_at: Some(4_000),
        ..change(
            JobEvent::Acked,
            StoredState::Succeeded { finished_at: 300 },
            300,
        )
    };
    assert_eq!(
        events_of(&db, &[update(1, done)]),
        [(
            Some(1),
            EventData::JobSucceeded {
                attempt: 2,
                result: Some("{\"ok\":1}".into())
            }
        )]
    );
    with_tables(&db, |t| {
        let r = stored(t, 1).unwrap();
        assert_eq!(
            (r.state, r.attempts, r.updated_at, r.version),
            (StoredState::Succeeded { finished_at: 300 }, 2, 300, 3)
        );
        assert_eq!(r.last_error.as_deref(), Some("first try failed"));
        assert_eq!(t.results.get(&1).unwrap().unwrap(), "{\"ok\":1}");
        assert_eq!(expiry(t), [(4_000, 1)]);
    });
    // An update without an error keeps the last one.
    let replayed = change(JobEvent::Replayed, StoredState::Queued { run_at: 500 }, 400);
    assert_eq!(
        events_of(&db, &[update(1, replayed)]),
        [(Some(1), EventData::JobReplayed)]
    );
    with_tables(&db, |t| {
        assert_eq!(
            stored(t, 1).unwrap().last_error.as_deref(),
            Some("first try failed")
        );
    });
}

#[test]
fn a_failed_attempt_is_a_retry_or_a_death_and_an_expiry_says_so_first() {
    let db = db();
    run(&db, &[insert(1, 100, None), insert(2, 100, None)]);
    let retry = JobChange {
        last_error: Some("boom".into()),
        ..change(
            JobEvent::Nacked,
            StoredState::Queued { run_at: 2_000 },
            1_000,
        )
    };
    assert_eq!(
        events_of(&db, &[update(1, retry)]),
        [(
            Some(1),
            EventData::JobRetryScheduled {
                attempt: 1,
                error: Some("boom".into()),
                run_at: 2_000
            }
        )]
    );
    let expired = JobChange {
        last_error: Some("lease expired".into()),
        expires_at: Some(9_000),
        ..change(
            JobEvent::Expired,
            StoredState::Dead { died_at: 3_000 },
            3_000,
        )
    };
    assert_eq!(
        events_of(&db, &[update(2, expired)]),
        [
            (Some(2), EventData::JobLeaseExpired { attempt: 1 }),
            (
                Some(2),
                EventData::JobDead {
                    attempt: 1,
                    error: Some("lease expired".into())
                }
            ),
        ]
    );
    // A nack that kills without an error of its own reports the last one.
    let dead = change(
        JobEvent::Nacked,
        StoredState::Dead { died_at: 4_000 },
        4_000,
    );
    assert_eq!(
        events_of(&db, &[update(1, dead)]),
        [(
            Some(1),
            EventData::JobDead {
                attempt: 1,
                error: Some("boom".into())
            }
        )]
    );
    let cancelled = change(
        JobEvent::Cancelled,
        StoredState::Cancelled { finished_at: 5_000 },
        5_000,
    );
    assert_eq!(
        events_of(&db, &[update(1, cancelled)]),
        [(Some(1), EventData::JobCancelled)]
    );
}

#[test]
fn update_of_a_missing_job_changes_nothing() {
    let db = db();
    let gone = change(JobEvent::Nacked, StoredState::Dead { died_at: 1 }, 1);
    let (applied, events) = run(&db, &[update(9, gone)]);
    assert_eq!(applied, [Applied::Done]);
    assert!(events.is_empty());
    with_tables(&db, |t| assert!(stored(t, 9).is_none()));
}

#[test]
fn delete_removes_everything_and_says_why() {
    let db = db();
    let done = JobChange {
        result: Some("1".into()),
        expires_at: Some(700),
        ..change(
            JobEvent::Acked,
            StoredState::Succeeded { finished_at: 200 },
            200,
        )
    };
    run(&db, &[insert(1, 100, None), update(1, done)]);
    let delete = WriteOp::Delete {
        id: 1,
        expiry: Some(700),
        reason: DeleteReason::Retention,
        at: 700,
    };
    let (_, events) = run(&db, std::slice::from_ref(&delete));
    assert_eq!(
        (events[0].at, events[0].job_id, &events[0].data),
        (
            700,
            Some(1),
            &EventData::JobDeleted {
                reason: DeleteReason::Retention
            }
        )
    );
    with_tables(&db, |t| {
        assert!(stored(t, 1).is_none());
        assert!(t.bodies.get(&1).unwrap().is_none());
        assert!(t.results.get(&1).unwrap().is_none());
        assert!(expiry(t).is_empty());
    });
    // Deleting what is gone does nothing, and says nothing.
    assert!(run(&db, &[delete]).1.is_empty());
}

#[test]
fn move_expiry_moves_or_drops_the_entry() {
    let db = db();
    let dead = JobChange {
        expires_at: Some(500),
        ..change(JobEvent::Nacked, StoredState::Dead { died_at: 100 }, 100)
    };
    run(&db, &[insert(1, 100, None), update(1, dead)]);
    let moved = WriteOp::MoveExpiry {
        id: 1,
        from: 500,
        to: Some(900),
    };
    assert_eq!(run(&db, &[moved]), (vec![Applied::Done], Vec::new()));
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

fn schedule(paused: bool) -> ScheduleRecord {
    ScheduleRecord {
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
        paused,
        catch_up: true,
        last_fire: None,
        next_fire: Some(60_000),
        created_at: 0,
        updated_at: 0,
    }
}

#[test]
fn schedule_puts_say_what_they_are_and_deletes_say_so_once() {
    let db = db();
    let put = |record, event| WriteOp::PutSchedule {
        name: "s".into(),
        record,
        event,
        at: 10,
    };
    let (applied, events) = run(&db, &[put(schedule(false), ScheduleEvent::Put)]);
    assert_eq!(applied, [Applied::Done]);
    assert_eq!(events[0].queue.as_deref(), Some("q"));
    assert_eq!(
        events[0].data,
        EventData::SchedulePut {
            name: "s".into(),
            schedule: schedule(false)
        }
    );
    let back: ScheduleRecord = with_tables(&db, |t| {
        decode(&t.schedules.get(&"s".to_owned()).unwrap().unwrap()).unwrap()
    });
    assert_eq!(back, schedule(false));
    let fired = ScheduleRecord {
        last_fire: Some(60_000),
        ..schedule(false)
    };
    assert_eq!(
        events_of(&db, &[put(fired, ScheduleEvent::Fired { job_id: 3 })]),
        [(
            Some(3),
            EventData::ScheduleFired {
                name: "s".into(),
                due_at: 60_000
            }
        )]
    );
    assert_eq!(
        events_of(&db, &[put(schedule(true), ScheduleEvent::Paused)]),
        [(None, EventData::SchedulePaused { name: "s".into() })]
    );
    let delete = WriteOp::DeleteSchedule {
        name: "s".into(),
        at: 20,
    };
    assert_eq!(
        events_of(&db, std::slice::from_ref(&delete)),
        [(None, EventData::ScheduleDeleted { name: "s".into() })]
    );
    with_tables(&db, |t| {
        assert!(t.schedules.get(&"s".to_owned()).unwrap().is_none())
    });
    assert!(events_of(&db, &[delete]).is_empty(), "already gone");
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
        assert!(t.idempotency.get(&"q\0k".to_owned()).unwrap().is_some())
    });
    let (applied, events) = run(
        &db,
        &[WriteOp::ForgetKey {
            key: "q\0k".into(),
            expires_at: 500,
        }],
    );
    assert_eq!((applied, events), (vec![Applied::Done], Vec::new()));
    with_tables(&db, |t| {
        assert!(t.idempotency.get(&"q\0k".to_owned()).unwrap().is_none());
        assert!(key_expiry(t).is_empty());
        assert!(stored(t, 1).is_some(), "the job stays");
    });
}

#[test]
fn messages_and_purges_are_events_only() {
    let db = db();
    let message = Message {
        if_stored: None,
        topic: "orders".into(),
        key: Some("o-1".into()),
        payload: "{}".into(),
        headers: vec![("a".into(), "b".into())],
        at: 5,
    };
    let purged = WriteOp::QueuePurged {
        queue: "q".into(),
        jobs: 3,
        at: 6,
    };
    let (_, events) = run(&db, &[WriteOp::Message(message), purged]);
    assert_eq!(
        events,
        [
            EventRecord {
                at: 5,
                queue: None,
                job_id: None,
                data: EventData::Message {
                    topic: "orders".into(),
                    key: Some("o-1".into()),
                    payload: "{}".into(),
                    headers: vec![("a".into(), "b".into())],
                }
            },
            EventRecord {
                at: 6,
                queue: Some("q".into()),
                job_id: None,
                data: EventData::QueuePurged { jobs: 3 }
            },
        ]
    );
}

#[test]
fn cursors_are_set_and_deleted_without_events() {
    let db = db();
    let put = WriteOp::PutCursor {
        name: "c".into(),
        seq: 17,
        at: 9,
    };
    assert!(run(&db, &[put]).1.is_empty());
    let cursor: CursorRecord = with_tables(&db, |t| {
        decode(&t.cursors.get(&"c".to_owned()).unwrap().unwrap()).unwrap()
    });
    assert_eq!((cursor.seq, cursor.updated_at), (17, 9));
    run(&db, &[WriteOp::DeleteCursor { name: "c".into() }]);
    with_tables(&db, |t| {
        assert!(t.cursors.get(&"c".to_owned()).unwrap().is_none())
    });
}

#[test]
fn a_message_tied_to_an_insert_is_written_only_if_a_job_of_it_was_stored() {
    let db = db();
    run(&db, &[insert(1, 100, Some(("q\0k", 500)))]);
    let message = |if_stored| {
        WriteOp::Message(Message {
            if_stored,
            topic: "t".into(),
            key: None,
            payload: "1".into(),
            headers: Vec::new(),
            at: 200,
        })
    };
    // A retried enqueue: its job (id 2) is a duplicate, so its message is not emitted again.
    let (_, events) = run(
        &db,
        &[insert(2, 200, Some(("q\0k", 900))), message(Some((2, 2)))],
    );
    assert!(events.is_empty(), "{events:?}");
    // A batch of which one job is new emits once.
    let (_, events) = run(
        &db,
        &[
            insert(3, 300, Some(("q\0k", 900))),
            insert(4, 300, None),
            message(Some((3, 4))),
        ],
    );
    assert_eq!(events.len(), 2, "job 4's enqueue, then the message");
    assert!(matches!(events[1].data, EventData::Message { .. }));
}

#[test]
fn a_key_use_never_undoes_its_revocation_and_unknown_keys_change_nothing() {
    let db = db();
    let record = KeyRecord {
        hash: [1; 32],
        tenant: "default".into(),
        scopes: vec!["*".into()],
        queues: Vec::new(),
        label: String::new(),
        limits: crate::storage::records::KeyLimits::default(),
        created_at: 5,
        last_used_at: None,
        revoked_at: None,
    };
    let id = || "k1".to_owned();
    let put = WriteOp::PutKey {
        id: id(),
        record: record.clone(),
    };
    // A use decided before the revocation but applied after it, and a second revocation.
    let ops = [
        put,
        WriteOp::RevokeKey { id: id(), at: 20 },
        WriteOp::KeyUsed { id: id(), at: 10 },
        WriteOp::RevokeKey { id: id(), at: 30 },
        WriteOp::KeyUsed {
            id: "nope".into(),
            at: 40,
        },
    ];
    assert!(run(&db, &ops).1.is_empty(), "key changes append no events");
    let stored: KeyRecord = with_tables(&db, |t| {
        decode(&t.keys.get(&"k1".to_owned()).unwrap().unwrap()).unwrap()
    });
    assert_eq!(stored.revoked_at, Some(20));
    assert_eq!(stored.last_used_at, Some(10));
    assert_eq!(stored.hash, record.hash);
    with_tables(&db, |t| {
        assert!(t.keys.get(&"nope".to_owned()).unwrap().is_none())
    });
}
