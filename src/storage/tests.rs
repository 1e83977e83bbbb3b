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
        outbox_max_entries: 1000,
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
    for name in [JOURNAL_FILE, DATA_FILE] {
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
        outbox_changes(&reopened),
        (1..=20).collect::<Vec<_>>(),
        "one outbox change per insert, none applied twice"
    );
    assert_eq!(reopened.job_count().unwrap(), 20);
}

/// The job ids of every stored outbox change, in sequence order.
fn outbox_changes(store: &Store) -> Vec<u64> {
    let db = store.db().unwrap();
    let txn = db.begin_read().unwrap();
    let table = txn.open_table(OUTBOX).unwrap();
    let mut ids = Vec::new();
    for row in table.iter().unwrap() {
        let (_, value) = row.unwrap();
        ids.extend(
            decode_outbox(value.value())
                .unwrap()
                .iter()
                .map(|c| c.job_id),
        );
    }
    ids
}

#[test]
fn the_outbox_keeps_its_newest_changes_in_whole_batches() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(dir.path(), Duration::from_secs(600));
    opts.outbox_max_entries = 10;
    let store = Store::open(&opts).unwrap();
    // Submitted one request at a time: each insert is a batch of its own.
    for id in 1..=50 {
        write_all(&store, vec![insert(id)]);
    }
    assert_eq!(outbox_changes(&store), (41..=50).collect::<Vec<_>>());
    // Sequence numbers survive a restart: the next change continues after the last.
    store.close();
    let store = Store::open(&opts).unwrap();
    write_all(&store, (51..=60).map(insert).collect());
    let kept = outbox_changes(&store);
    assert_eq!(kept.last(), Some(&60));
    assert!(kept.len() >= 10, "{kept:?}");
    assert!(kept.windows(2).all(|w| w[1] == w[0] + 1), "{kept:?}");
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
    // A checkpoint after every group: the journal is rewound over and over.
    let store = Store::open(&options(live.path(), Duration::ZERO)).unwrap();
    write_all(&store, (1..=20).map(insert).collect());
    // The writer checkpoints the first half before it takes the second (its replies come
    // after that checkpoint's durable commit).
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
    // Every job change of the frame is in the outbox, once.
    let changes = outbox_changes(&store);
    let expected = golden_ops()
        .iter()
        .filter(|op| {
            matches!(op, WriteOp::Insert { .. } | WriteOp::Update { .. })
                || matches!(op, WriteOp::Delete { id: 9, .. })
        })
        .count();
    assert_eq!(changes.len(), expected);
}

/// Defaults for queue records older than format 2 (none here).
fn golden_queue() -> QueueRecord {
    match &golden_ops()[0] {
        WriteOp::PutQueue { record, .. } => record.clone(),
        other => panic!("the golden ops start with a queue, not {other:?}"),
    }
}
