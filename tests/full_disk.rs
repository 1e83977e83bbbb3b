//! A data volume that fills up (the store's I/O on `wharf::storage::faulty` with a capacity):
//! below the free-space floor, writes that add data are refused as `InsufficientStorage` (HTTP
//! 507) before anything changes, the writes that drain go on, the store is never poisoned, and
//! once space is freed the very next write is accepted, without a restart. A crash image taken
//! afterwards recovers exactly what was acknowledged.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may unwrap

use std::sync::Arc;

use wharf::broker::{AckItem, Broker, BrokerError, NewJob, NewMessage, PollRequest, ScheduleSpec};
use wharf::clock::Clock;
use wharf::config::{Config, Durability};
use wharf::cron::CronSchedule;
use wharf::job::JobState;
use wharf::storage::faulty::FaultyDisk;

const MIB: u64 = 1 << 20;

fn open(dir: &std::path::Path, disk: &FaultyDisk) -> Arc<Broker> {
    open_with(dir, disk, Config::default())
}

fn open_with(dir: &std::path::Path, disk: &FaultyDisk, defaults: Config) -> Arc<Broker> {
    let config = Config {
        data_dir: dir.to_owned(),
        durability: Durability::Sync,
        journal_preallocate_mb: 0,
        cache_mb: 4,
        min_free_mb: Some(4),
        ..defaults
    };
    let mut options = config.broker_options();
    options.store.disk = Arc::new(disk.clone());
    options.seed = Some(1);
    Broker::open(&options, Clock::manual(1_767_225_600_000)).unwrap()
}

/// Enqueues 16 KiB jobs into `q` until one is refused; returns how many were taken.
async fn fill(broker: &Broker) -> usize {
    let mut enqueued = 0;
    loop {
        assert!(enqueued < 5_000, "the floor never refused an enqueue");
        match broker.enqueue("q", vec![job(enqueued)]).await {
            Ok(_) => enqueued += 1,
            Err(BrokerError::InsufficientStorage { .. }) => return enqueued,
            Err(error) => panic!("expected InsufficientStorage, got {error:?}"),
        }
    }
}

fn job(n: usize) -> NewJob {
    // 16 KiB of payload: the volume fills within a few hundred jobs.
    NewJob::new(format!("\"{n:05}{}\"", "x".repeat(16 << 10)))
}

fn message(topic: &str) -> NewMessage {
    NewMessage {
        topic: topic.into(),
        key: None,
        payload: "1".into(),
        headers: Vec::new(),
    }
}

fn spec() -> ScheduleSpec {
    ScheduleSpec {
        cron: CronSchedule::parse("0 0 1 1 *", "UTC").unwrap(),
        queue: "q".into(),
        job: NewJob::new("1"),
        paused: false,
        catch_up: false,
    }
}

fn is_full(result: &Result<impl std::fmt::Debug, BrokerError>) -> bool {
    matches!(result, Err(BrokerError::InsufficientStorage { .. }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_volume_refuses_growth_lets_consumers_drain_and_recovers_by_itself() {
    let _ = tracing_subscriber::fmt().with_test_writer().try_init();
    let dir = tempfile::tempdir().unwrap();
    let disk = FaultyDisk::new();
    disk.set_capacity(Some(24 * MIB));
    // Checkpoints every millisecond: the journal the floor counts three times is folded into
    // the data file right after each write, so the reading soon becomes exact.
    let defaults = Config {
        checkpoint_interval_ms: 1,
        ..Config::default()
    };
    let broker = open_with(dir.path(), &disk, defaults);

    // Fill it with jobs until the floor refuses one on an exact reading. A refusal while
    // journal is pending may be lifted by the checkpoint that follows; this one cannot be, as
    // nothing is left to checkpoint and a refused write adds nothing.
    let mut enqueued = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let refused = loop {
        assert!(enqueued.len() < 5_000, "the floor never refused an enqueue");
        match broker.enqueue("q", vec![job(enqueued.len())]).await {
            Ok(out) => enqueued.push(out[0].id),
            Err(error) if broker.disk_space().pending_checkpoint_bytes == 0 => break error,
            Err(BrokerError::InsufficientStorage { .. }) => {
                assert!(
                    std::time::Instant::now() < deadline,
                    "no checkpoint ran: {:?}",
                    broker.disk_space()
                );
                // Waiting for the next checkpoint (every millisecond here).
                tokio::time::sleep(std::time::Duration::from_millis(2)).await;
            }
            Err(error) => panic!("expected InsufficientStorage, got {error:?}"),
        }
    };
    let BrokerError::InsufficientStorage { available, floor } = refused else {
        panic!("expected InsufficientStorage, got {refused:?}");
    };
    assert_eq!(floor, 4 * MIB);
    assert!(available < floor, "{available} free, floor {floor}");
    assert!(
        enqueued.len() > 100,
        "refused too early: {}",
        enqueued.len()
    );
    assert!(
        broker.is_healthy(),
        "a full volume must not poison the store"
    );
    assert!(broker.disk_space().low);

    // Nothing of a refused write happens: counts and the change log stay put.
    let counts = broker.queue("q").unwrap().counts;
    let head = broker.events_head();
    assert!(is_full(&broker.enqueue("q", vec![job(0)]).await));
    assert!(is_full(&broker.enqueue("other", vec![job(0)]).await));
    assert!(is_full(&broker.emit(vec![message("refused")]).await));
    assert!(is_full(&broker.put_schedule("s", spec()).await));
    assert_eq!(broker.queue("q").unwrap().counts, counts);
    assert!(
        broker.queue("other").is_err(),
        "a refused enqueue created its queue"
    );
    assert_eq!(broker.events_head(), head);

    // Consumers drain: polls, acks (with a message) and cancels still work.
    let request = PollRequest {
        max: 10,
        wait_ms: 0,
        lease_ms: None,
    };
    let deliveries = broker.poll("q", request).await.unwrap();
    assert_eq!(deliveries.len(), 10);
    let mut acked = Vec::new();
    for delivery in deliveries {
        let mut ack = AckItem::new(delivery.id, delivery.lease);
        ack.emit.push(message(&format!("done-{}", delivery.id.0)));
        broker.ack(ack).await.unwrap();
        acked.push(delivery.id);
    }
    let cancelled = *enqueued.last().unwrap();
    broker.cancel(cancelled).await.unwrap();

    // Space is freed (another file deleted, the volume grown): the very next write is taken.
    disk.set_capacity(Some(64 * MIB));
    let after = broker.enqueue("q", vec![job(99_999)]).await.unwrap()[0].id;
    assert!(!broker.disk_space().low);
    broker.emit(vec![message("accepted")]).await.unwrap();
    broker.put_schedule("s", spec()).await.unwrap();

    // A power loss now: the image holds every acknowledged write and none that was refused.
    let image = disk.crash_image(None);
    drop(broker);
    let broker = open(dir.path(), &image);
    for id in &acked {
        assert_eq!(broker.job(*id).await.unwrap().state, JobState::Succeeded);
    }
    assert_eq!(
        broker.job(cancelled).await.unwrap().state,
        JobState::Cancelled
    );
    assert_eq!(broker.job(after).await.unwrap().state, JobState::Ready);
    let counts = broker.queue("q").unwrap().counts;
    let stored: u64 = counts.iter().sum();
    assert_eq!(stored, enqueued.len() as u64 + 1, "{counts:?}");
    assert!(broker.queue("other").is_err());
    broker.close();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_drained_from_a_volume_wharf_filled_by_itself_make_room_for_new_ones() {
    let dir = tempfile::tempdir().unwrap();
    let disk = FaultyDisk::new();
    disk.set_capacity(Some(24 * MIB));
    // A short change log, so that the drained payloads do not stay in it; frequent checkpoints
    // (the data file's reusable pages are counted at checkpoints).
    let defaults = Config {
        events_max_entries: 10,
        checkpoint_interval_ms: 1,
        ..Config::default()
    };
    let broker = open_with(dir.path(), &disk, defaults);
    let first = fill(&broker).await;
    assert!(first > 100, "refused too early: {first}");
    // Nothing else frees space on this volume: only the purge, inside the data file.
    assert_eq!(broker.purge("q").await.unwrap(), first as u64);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match broker.enqueue("q", vec![job(0)]).await {
            Ok(_) => break,
            Err(BrokerError::InsufficientStorage { .. }) => {
                assert!(
                    std::time::Instant::now() < deadline,
                    "the drained space never counted: {:?}",
                    broker.disk_space()
                );
                // Waiting for the next checkpoint (every millisecond here).
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
            Err(error) => panic!("{error:?}"),
        }
    }
    // Most of what was drained is usable again: a client that retries 507 (a reading that is
    // briefly pessimistic until the next checkpoint) gets at least half as many jobs in.
    let mut second = 1;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while second * 2 < first {
        match broker.enqueue("q", vec![job(second)]).await {
            Ok(_) => second += 1,
            Err(BrokerError::InsufficientStorage { .. }) => {
                assert!(
                    std::time::Instant::now() < deadline,
                    "only {second} of {first} fit again: {:?}",
                    broker.disk_space()
                );
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
            Err(error) => panic!("{error:?}"),
        }
    }
    assert!(broker.is_healthy());
    broker.close();
}
