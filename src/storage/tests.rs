//! Store tests: crash images, checkpoints, replay, the outbox across restarts.

#![allow(clippy::unwrap_used)]

use redb::ReadableDatabase;

use super::*;
use crate::storage::ops::golden::{V3_HEX, golden_ops, unhex};

fn options(dir: &std::path::Path, checkpoint_interval: Duration) -> StoreOptions {
    StoreOptions {
        data_dir: dir.to_path_buf(),
        sync_mode: true,
        flush_interval: Duration::from_millis(50),
        checkpoint_interval,
        journal_preallocate_bytes: 0,
        cache_bytes: 4 << 20,
        max_group: 64,
        max_pending: 64,
        events_max_entries: 1000,
        events_max_age_ms: 7 * 24 * 3_600_000,
        disk: std::sync::Arc::new(super::RealDisk),
        min_free_bytes: None,
    }
}

fn insert(id: u64) -> WriteOp {
    WriteOp::Insert {
        id,
        record: JobRecord {
            queue: "q".into(),
            priority: 128,
            state: StoredState::Queued { run_at: 1 },
            attempts: 0,
            max_attempts: 5,
            lease_ms: None,
            enqueued_at: 1,
            updated_at: 1,
            last_error: None,
            version: 1,
            group: None,
        },
        body: JobBody {
            payload: format!("\"job {id}\""),
            headers: Vec::new(),
        },
        idempotency: None,
    }
}

/// Submits each op as its own durable request and waits for every reply.
fn write_all(store: &Store, ops: Vec<WriteOp>) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let pending: Vec<Pending> = ops
        .into_iter()
        .map(|op| {
            let admission = runtime.block_on(store.admit()).unwrap();
            store.submit(admission, vec![op], Vec::new(), true)
        })
        .collect();
    for reply in pending {
        runtime.block_on(reply).unwrap().unwrap();
    }
}

/// Copies the data files as a crash would leave them: what the kernel has, no shutdown.
/// The journal goes first: a checkpoint racing the copy then only makes the data file
/// newer, never leaves frames missing between it and the journal.
fn crash_image(from: &std::path::Path, to: &std::path::Path) {
    for name in [JOURNAL_FILE, journal::JOURNAL_SEGMENT_FILE, DATA_FILE] {
        std::fs::copy(from.join(name), to.join(name)).unwrap();
    }
}

#[test]
fn acknowledged_writes_are_in_the_journal_before_any_checkpoint() {
    let live = tempfile::tempdir().unwrap();
    let image = tempfile::tempdir().unwrap();
    // No checkpoint during the test: only the journal holds the writes durably.
    let store = Store::open(&options(live.path(), Duration::from_secs(600))).unwrap();
    write_all(&store, (1..=50).map(insert).collect());
    assert_eq!(store.metrics().checkpoint_seconds.count(), 0);
    crash_image(live.path(), image.path());
    store.close();

    let recovered = Store::open(&options(image.path(), Duration::from_secs(600))).unwrap();
    for id in 1..=50 {
        let job = recovered.read_job(id).unwrap().unwrap();
        assert_eq!(job.body.payload, format!("\"job {id}\""));
    }
    assert_eq!(recovered.next_job_id().unwrap(), 51);
}

#[test]
fn a_stop_after_a_failure_does_not_replay_what_redb_kept() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&options(dir.path(), Duration::from_secs(600))).unwrap();
    write_all(&store, (1..=20).map(insert).collect());
    // As after a failed fsync: no checkpoint runs, but closing the database makes redb's
    // non-durable commits durable, so the data file already holds every frame.
    store.poisoned.store(true, Ordering::Release);
    store.close();

    let reopened = Store::open(&options(dir.path(), Duration::from_secs(600))).unwrap();
    assert_eq!(
        event_jobs(&reopened),
        (1..=20).collect::<Vec<_>>(),
        "one event per insert, none applied twice"
    );
    assert_eq!(reopened.job_count().unwrap(), 20);
}

/// Every stored event with its sequence number, in order.
fn events(store: &Store) -> Vec<(u64, EventRecord)> {
    store.read_events(0, u64::MAX, usize::MAX).unwrap().events
}

/// The job ids of every stored event, in sequence order.
fn event_jobs(store: &Store) -> Vec<u64> {
    events(store).iter().filter_map(|(_, e)| e.job_id).collect()
}

#[test]
fn the_log_keeps_its_newest_events_in_whole_batches() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(dir.path(), Duration::from_secs(600));
    opts.events_max_entries = 10;
    let store = Store::open(&opts).unwrap();
    // Submitted one request at a time: each insert is a batch of its own.
    for id in 1..=50 {
        write_all(&store, vec![insert(id)]);
    }
    assert_eq!(event_jobs(&store), (41..=50).collect::<Vec<_>>());
    assert_eq!(store.read_events(0, u64::MAX, 1).unwrap().first, 41);
    // Sequence numbers survive a restart: the next event continues after the last.
    store.close();
    let store = Store::open(&opts).unwrap();
    write_all(&store, (51..=60).map(insert).collect());
    let seqs: Vec<u64> = events(&store).iter().map(|(seq, _)| *seq).collect();
    assert_eq!(seqs.last(), Some(&60));
    assert!(seqs.len() >= 10, "{seqs:?}");
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
}

/// An insert made at `at` (epoch ms).
fn insert_at(id: u64, at: u64) -> WriteOp {
    match insert(id) {
        WriteOp::Insert {
            id,
            mut record,
            body,
            idempotency,
        } => {
            record.enqueued_at = at;
            record.updated_at = at;
            WriteOp::Insert {
                id,
                record,
                body,
                idempotency,
            }
        }
        other => other,
    }
}

#[test]
fn the_log_drops_batches_older_than_its_age_limit() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(dir.path(), Duration::from_secs(600));
    opts.events_max_age_ms = 1_000;
    let store = Store::open(&opts).unwrap();
    for (id, at) in [(1, 10_000), (2, 10_500), (3, 11_000)] {
        write_all(&store, vec![insert_at(id, at)]);
    }
    assert_eq!(event_jobs(&store), [1, 2, 3], "none older than 1 s yet");
    // Age is measured against the newest event written, not the clock.
    write_all(&store, vec![insert_at(4, 11_400)]);
    assert_eq!(event_jobs(&store), [2, 3, 4]);
    assert_eq!(store.read_events(0, u64::MAX, 10).unwrap().first, 2);
}

#[test]
fn readers_see_an_event_once_its_frame_is_durable() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&options(dir.path(), Duration::from_secs(600))).unwrap();
    let durable = store.durable_events();
    assert_eq!(*durable.borrow(), 0);
    write_all(&store, (1..=3).map(insert).collect());
    // Each reply waited for its fsync, which published the events of its frame.
    assert_eq!(*durable.borrow(), 3);
    store.close();
    let reopened = Store::open(&options(dir.path(), Duration::from_secs(600))).unwrap();
    assert_eq!(
        *reopened.durable_events().borrow(),
        3,
        "recovered means durable"
    );
}

#[test]
fn a_clean_stop_leaves_nothing_to_replay() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&options(dir.path(), Duration::from_secs(600))).unwrap();
    write_all(&store, (1..=5).map(insert).collect());
    store.close();
    // The shutdown checkpoint holds every frame, and the first one is blanked so that the
    // next start does not read the round only to skip it.
    let journal = std::fs::read(dir.path().join(JOURNAL_FILE)).unwrap();
    assert!(
        journal.len() > journal::frame::HEADER_LEN,
        "frames were written"
    );
    assert!(
        journal[..journal::frame::HEADER_LEN]
            .iter()
            .all(|&b| b == 0)
    );
    let reopened = Store::open(&options(dir.path(), Duration::from_secs(600))).unwrap();
    assert_eq!(reopened.job_count().unwrap(), 5);
}

#[test]
fn writes_after_a_checkpoint_replay_on_top_of_it() {
    let live = tempfile::tempdir().unwrap();
    let image = tempfile::tempdir().unwrap();
    // A checkpoint after every group that finds none in flight: the journal's segments take
    // turns over and over.
    let store = Store::open(&options(live.path(), Duration::ZERO)).unwrap();
    write_all(&store, (1..=20).map(insert).collect());
    // The first half is in the data file before the second is written.
    store.flush().unwrap();
    write_all(&store, (21..=40).map(insert).collect());
    assert!(store.metrics().checkpoint_seconds.count() > 0);
    crash_image(live.path(), image.path());
    store.close();

    let recovered = Store::open(&options(image.path(), Duration::from_secs(600))).unwrap();
    let mut stored = 0;
    recovered.scan_jobs(|_, _| stored += 1).unwrap();
    assert_eq!(stored, 40);
    // And a clean restart of that copy again finds them all, with an empty journal to replay.
    recovered.close();
    let again = Store::open(&options(image.path(), Duration::from_secs(600))).unwrap();
    assert_eq!(again.read_job(40).unwrap().unwrap().record.queue, "q");
}

/// The meta value `key`, read from a closed store's data file.
fn meta(dir: &std::path::Path, key: &str) -> u64 {
    let db = Database::builder().open(dir.join(DATA_FILE)).unwrap();
    let txn = db.begin_read().unwrap();
    txn.open_table(META)
        .unwrap()
        .get(key)
        .unwrap()
        .map_or(0, |v| v.value())
}

#[test]
fn a_journal_written_by_the_previous_op_format_replays() {
    let dir = tempfile::tempdir().unwrap();
    // A data directory as a crash left it: its last checkpoint, and a journal frame after it
    // that an older wharf (op format 3) wrote in the run salted as the meta says.
    Store::open(&options(dir.path(), Duration::from_secs(600)))
        .unwrap()
        .close();
    let (seq, salt) = (
        meta(dir.path(), tables::META_JOURNAL_SEQ),
        meta(dir.path(), tables::META_JOURNAL_SALT),
    );
    let mut journal = Vec::new();
    let start = journal::frame::begin(&mut journal);
    journal.push(3);
    journal.extend_from_slice(&unhex(V3_HEX));
    journal::frame::seal(&mut journal, start, seq + 1, salt);
    std::fs::write(dir.path().join(JOURNAL_FILE), &journal).unwrap();

    let store = Store::open(&options(dir.path(), Duration::from_secs(600))).unwrap();
    // The golden ops: queue "emails"; job 7 leased, retried and acked with a result; 8 dead;
    // 9 cancelled and deleted; schedule "nightly".
    let seven = store.read_job(7).unwrap().unwrap();
    assert_eq!(
        seven.record.state,
        StoredState::Succeeded {
            finished_at: 1_767_225_603_000
        }
    );
    assert_eq!(seven.record.last_error.as_deref(), Some("boom"));
    assert_eq!(seven.result.as_deref(), Some(r#"{"ok":true}"#));
    assert_eq!(seven.body.payload, r#"{"to":"ada"}"#);
    let eight = store.read_job(8).unwrap().unwrap();
    assert!(matches!(eight.record.state, StoredState::Dead { .. }));
    assert!(store.read_job(9).unwrap().is_none());
    assert_eq!(store.queues(&golden_queue()).unwrap().len(), 1);
    assert_eq!(store.schedules().unwrap()[0].0, "nightly");
    // The frame's events, in order: the queue, the three jobs, each update (a nack that
    // kills is one `job.dead`), the delete of 9 (10 never existed), the schedule put. The old
    // ops kept no time for the queue put and the delete: they carry the frame's latest.
    let types: Vec<(&str, Option<u64>, u64)> = events(&store)
        .iter()
        .map(|(_, e)| (type_name(&e.data), e.job_id, e.at))
        .collect();
    const T: u64 = 1_767_225_600_000;
    assert_eq!(
        types,
        [
            ("queue.created", None, T + 3_000),
            ("job.enqueued", Some(7), T),
            ("job.enqueued", Some(8), T),
            ("job.enqueued", Some(9), T),
            ("job.leased", Some(7), T + 500),
            ("job.retry_scheduled", Some(7), T + 1_000),
            ("job.dead", Some(8), T + 1_500),
            ("job.cancelled", Some(9), T + 1_600),
            ("job.succeeded", Some(7), T + 3_000),
            ("job.deleted", Some(9), T + 3_000),
            // ("old" was never stored: deleting it is no event.)
            ("schedule.put", None, T),
        ]
    );
}

/// The type names the event API uses, for these tests.
fn type_name(data: &EventData) -> &'static str {
    match data {
        EventData::QueueCreated { .. } => "queue.created",
        EventData::JobEnqueued { .. } => "job.enqueued",
        EventData::JobLeased { .. } => "job.leased",
        EventData::JobRetryScheduled { .. } => "job.retry_scheduled",
        EventData::JobDead { .. } => "job.dead",
        EventData::JobCancelled => "job.cancelled",
        EventData::JobSucceeded { .. } => "job.succeeded",
        EventData::JobDeleted { .. } => "job.deleted",
        EventData::SchedulePut { .. } => "schedule.put",
        other => panic!("not in the golden frame: {other:?}"),
    }
}

/// Defaults for queue records older than format 2 (none here).
fn golden_queue() -> QueueRecord {
    match &golden_ops()[0] {
        WriteOp::PutQueue { record, .. } => record.clone(),
        other => panic!("the golden ops start with a queue, not {other:?}"),
    }
}
