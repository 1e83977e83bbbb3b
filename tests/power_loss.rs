//! The durability promise on a disk that fails: `sync` mode, concurrent clients, and the power
//! cut at a random write or fsync (the store's I/O runs on `wharf::storage::faulty`, which
//! keeps only what was fsynced, optionally with the last write torn). After each crash the
//! broker recovers from the crash image and is checked against what clients were told:
//! every acknowledged enqueue, ack, nack, cancel, queue change, schedule and outbox message is
//! there, an acknowledged ack's job is never delivered again, an unacknowledged one is all or nothing (the ack with its message),
//! and the change log's seqs stay contiguous. An fsync that fails with EIO stops writes for
//! good (never retried) while reads go on.
//!
//! `WHARF_POWER_LOSS_POINTS` sets how many crash points one run tries (default 500).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may unwrap

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use parking_lot::Mutex;
use wharf::broker::{
    AckItem, Broker, BrokerError, EventFilter, EventQuery, NackRequest, NewJob, NewMessage,
    PollRequest, QueuePatch, ScheduleSpec, Start,
};
use wharf::clock::Clock;
use wharf::config::{Config, Durability};
use wharf::cron::CronSchedule;
use wharf::job::{JobId, JobState};
use wharf::random::Rng;
use wharf::storage::faulty::{Fault, FaultKind, FaultOn, FaultyDisk};

/// Clients writing at once.
const CLIENTS: u64 = 3;
/// Rounds of operations each client tries per crash point (it stops at the first refused one).
const OPS: u64 = 8;

fn open(dir: &std::path::Path, disk: &FaultyDisk) -> Result<Arc<Broker>, BrokerError> {
    open_with(dir, disk, 5_000)
}

fn open_with(
    dir: &std::path::Path,
    disk: &FaultyDisk,
    checkpoint_interval_ms: u64,
) -> Result<Arc<Broker>, BrokerError> {
    let config = Config {
        data_dir: dir.to_owned(),
        durability: Durability::Sync,
        journal_preallocate_mb: 0,
        cache_mb: 4,
        checkpoint_interval_ms,
        ..Config::default()
    };
    let mut options = config.broker_options();
    options.store.disk = Arc::new(disk.clone());
    options.seed = Some(1);
    Broker::open(&options, Clock::manual(1_767_225_600_000))
}

/// What the clients were told.
#[derive(Default)]
struct Told {
    /// Jobs whose enqueue was acknowledged, with their idempotency key.
    enqueued: BTreeMap<u64, String>,
    /// Jobs whose ack was acknowledged.
    acked: BTreeSet<u64>,
    /// Jobs whose ack was sent but not answered: done or not, with its message or without.
    ack_unknown: BTreeSet<u64>,
    /// Topics of acknowledged messages.
    messages: BTreeSet<String>,
    /// Jobs whose nack (`dead`) was acknowledged.
    killed: BTreeSet<u64>,
    /// Jobs whose cancel was acknowledged.
    cancelled: BTreeSet<u64>,
    /// Per client queue: the last acknowledged `lease_ms`, and one sent but not answered.
    lease_ms: BTreeMap<String, (Option<u64>, Option<u64>)>,
    /// Schedules whose PUT was acknowledged.
    schedules: BTreeSet<String>,
}

/// One client, until refused: enqueues (with a key), polls and acks with a message (or nacks
/// it dead), enqueues and cancels, changes its queue's settings, puts a schedule, emits.
async fn client(broker: Arc<Broker>, n: u64, told: Arc<Mutex<Told>>) {
    let own = format!("c{n}");
    for i in 0..OPS {
        let key = format!("c{n}-{i}");
        let mut job = NewJob::new(format!("{i}"));
        job.idempotency_key = Some(key.clone());
        match broker.enqueue("q", vec![job]).await {
            Ok(out) => {
                told.lock().enqueued.insert(out[0].id.0, key);
            }
            Err(_) => return,
        }
        let request = PollRequest {
            max: 1,
            wait_ms: 0,
            lease_ms: None,
        };
        let Ok(deliveries) = broker.poll("q", request).await else {
            return;
        };
        for delivery in deliveries {
            let id = delivery.id.0;
            if i % 3 == 2 {
                let nack = NackRequest {
                    error: Some("fatal".into()),
                    delay_ms: None,
                    dead: true,
                    emit: Vec::new(),
                };
                match broker.nack(delivery.id, delivery.lease, nack).await {
                    Ok(_) => told.lock().killed.insert(id),
                    Err(_) => return,
                };
                continue;
            }
            let mut ack = AckItem::new(delivery.id, delivery.lease);
            ack.emit.push(NewMessage {
                topic: format!("done-{id}"),
                key: None,
                payload: "1".into(),
                headers: Vec::new(),
            });
            told.lock().ack_unknown.insert(id);
            match broker.ack(ack).await {
                Ok(_) => {
                    let mut told = told.lock();
                    told.ack_unknown.remove(&id);
                    told.acked.insert(id);
                    told.messages.insert(format!("done-{id}"));
                }
                Err(_) => return,
            }
        }
        // A job of the client's own queue, cancelled.
        let Ok(out) = broker.enqueue(&own, vec![NewJob::new("0")]).await else {
            return;
        };
        match broker.cancel(out[0].id).await {
            Ok(()) => told.lock().cancelled.insert(out[0].id.0),
            Err(_) => return,
        };
        let lease_ms = 1_000 + i;
        told.lock().lease_ms.entry(own.clone()).or_default().1 = Some(lease_ms);
        let patch = QueuePatch {
            lease_ms: Some(lease_ms),
            ..QueuePatch::default()
        };
        match broker.update_queue(&own, patch).await {
            Ok(_) => {
                told.lock()
                    .lease_ms
                    .insert(own.clone(), (Some(lease_ms), None));
            }
            Err(_) => return,
        }
        let name = format!("s-{n}-{i}");
        let spec = ScheduleSpec {
            cron: CronSchedule::parse("0 0 1 1 *", "UTC").unwrap(),
            queue: own.clone(),
            job: NewJob::new("1"),
            paused: false,
            catch_up: false,
        };
        match broker.put_schedule(&name, spec).await {
            Ok(_) => told.lock().schedules.insert(name),
            Err(_) => return,
        };
        let message = NewMessage {
            topic: format!("m-{n}-{i}"),
            key: None,
            payload: "2".into(),
            headers: Vec::new(),
        };
        match broker.emit(vec![message]).await {
            Ok(_) => {
                told.lock().messages.insert(format!("m-{n}-{i}"));
            }
            Err(_) => return,
        }
    }
}

/// Every event of the recovered log, checked contiguous; the topics of its messages.
async fn event_topics(broker: &Broker) -> (BTreeSet<String>, BTreeMap<u64, usize>) {
    let mut topics = BTreeSet::new();
    let mut succeeded: BTreeMap<u64, usize> = BTreeMap::new();
    let mut start = Start::Oldest;
    let mut last = None::<u64>;
    loop {
        let page = broker
            .events(EventQuery {
                start: start.clone(),
                limit: 1000,
                wait_ms: 0,
                filter: EventFilter::default(),
            })
            .await
            .unwrap();
        for event in &page.events {
            if let Some(last) = last {
                assert_eq!(event.seq, last + 1, "a gap or a repeat in the change log");
            }
            last = Some(event.seq);
            let json: serde_json::Value = serde_json::from_str(&event.json).unwrap();
            if event.kind == "message" {
                topics.insert(json["data"]["topic"].as_str().unwrap().to_owned());
            }
            if event.kind == "job.succeeded" {
                *succeeded.entry(event.job_id.unwrap().0).or_default() += 1;
            }
        }
        if page.events.is_empty() {
            return (topics, succeeded);
        }
        start = Start::After(page.next_after);
    }
}

/// Runs the clients on a fresh disk until the power goes at the `nth` write or fsync (or they
/// finish), then recovers from the crash image and checks what survived.
async fn crash_at(nth: u64, rng: &mut Rng) {
    let dir = tempfile::tempdir().unwrap();
    let disk = FaultyDisk::new();
    // Half the points checkpoint all the time (every millisecond, in the background, while the
    // clients write), so that the power also goes in the middle of checkpoints.
    let checkpoint_interval_ms = if nth % 4 < 2 { 5_000 } else { 1 };
    let broker = open_with(dir.path(), &disk, checkpoint_interval_ms).unwrap();
    let on = [FaultOn::Write, FaultOn::Sync, FaultOn::Any][(nth % 3) as usize];
    disk.fail(Fault {
        on,
        nth,
        kind: FaultKind::PowerLoss,
    });
    let told = Arc::new(Mutex::new(Told::default()));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|n| tokio::spawn(client(broker.clone(), n, told.clone())))
        .collect();
    for client in clients {
        client.await.unwrap();
    }
    let image = disk.crash_image((nth % 2 == 0).then_some(&mut *rng));
    drop(broker);
    let told = std::mem::take(&mut *told.lock());

    let broker = open(dir.path(), &image).expect("recovery from the crash image failed");
    let (topics, succeeded) = event_topics(&broker).await;
    for (&id, key) in &told.enqueued {
        let view = broker
            .job(JobId(id))
            .await
            .unwrap_or_else(|e| panic!("crash point {nth}: acknowledged job {id} lost: {e}"));
        if told.acked.contains(&id) {
            assert_eq!(
                view.state,
                JobState::Succeeded,
                "crash point {nth}: job {id}"
            );
        }
        // Its key still maps to it: a retried enqueue is a duplicate.
        let mut again = NewJob::new("0");
        again.idempotency_key = Some(key.clone());
        let out = broker.enqueue("q", vec![again]).await.unwrap();
        assert!(
            out[0].duplicate && out[0].id.0 == id,
            "crash point {nth}: key {key}"
        );
    }
    for topic in &told.messages {
        assert!(
            topics.contains(topic),
            "crash point {nth}: message {topic} lost"
        );
    }
    for &id in &told.ack_unknown {
        // All or nothing: succeeded with its message, or neither.
        let done = broker
            .job(JobId(id))
            .await
            .is_ok_and(|v| v.state == JobState::Succeeded);
        assert_eq!(
            done,
            topics.contains(&format!("done-{id}")),
            "crash point {nth}: half an ack of job {id}"
        );
    }
    assert!(succeeded.values().all(|&n| n == 1), "a job succeeded twice");
    for &id in &told.killed {
        let state = broker.job(JobId(id)).await.unwrap().state;
        assert_eq!(state, JobState::Dead, "crash point {nth}: nacked job {id}");
    }
    for &id in &told.cancelled {
        let state = broker.job(JobId(id)).await.unwrap().state;
        assert_eq!(
            state,
            JobState::Cancelled,
            "crash point {nth}: cancelled job {id}"
        );
    }
    for (queue, (acked, unknown)) in &told.lease_ms {
        let now = broker.queue(queue).ok().map(|q| q.config.lease_ms);
        let default = wharf::broker::QueueConfig::default().lease_ms;
        let allowed = [acked.or(Some(default)), *unknown];
        assert!(
            allowed.contains(&now) || (acked.is_none() && now.is_none()),
            "crash point {nth}: queue {queue} has lease_ms {now:?}, told {acked:?} (unknown {unknown:?})"
        );
    }
    for name in &told.schedules {
        assert!(
            broker.schedule(name).is_ok(),
            "crash point {nth}: schedule {name} lost"
        );
    }
    // No acked job is delivered again.
    let request = PollRequest {
        max: 1000,
        wait_ms: 0,
        lease_ms: None,
    };
    let again = broker.poll("q", request).await.unwrap();
    for delivery in again {
        assert!(
            !told.acked.contains(&delivery.id.0),
            "crash point {nth}: acked job {} delivered again",
            delivery.id
        );
    }
    broker.close();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_a_power_loss_at_any_point() {
    let points: u64 = std::env::var("WHARF_POWER_LOSS_POINTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500);
    let seed = std::env::var("WHARF_POWER_LOSS_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| Rng::from_entropy().next_u64());
    eprintln!("power-loss seed {seed} (WHARF_POWER_LOSS_SEED), {points} crash points");
    let mut rng = Rng::new(seed);
    for point in 0..points {
        // Early points cut the power in the first few operations; later ones anywhere in a
        // run (a run does roughly a few hundred writes and syncs).
        let nth = 1 + rng.next_u64() % (2 + point.min(300));
        crash_at(nth, &mut rng).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_fsync_stops_writes_for_good_and_reads_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let disk = FaultyDisk::new();
    let broker = open(dir.path(), &disk).unwrap();
    let kept = broker.enqueue("q", vec![NewJob::new("1")]).await.unwrap()[0].id;
    disk.fail(Fault {
        on: FaultOn::Sync,
        nth: 1,
        kind: FaultKind::Eio,
    });
    let refused = broker.enqueue("q", vec![NewJob::new("2")]).await;
    assert!(
        matches!(refused, Err(BrokerError::StorageFailed)),
        "{refused:?}"
    );
    assert!(!broker.is_healthy(), "readiness must drop");
    let (_, syncs) = disk.operations();
    // The disk works again, but the store does not trust it: no write, no fsync retried.
    for _ in 0..3 {
        let again = broker.enqueue("q", vec![NewJob::new("3")]).await;
        assert!(
            matches!(again, Err(BrokerError::StorageFailed)),
            "{again:?}"
        );
    }
    assert_eq!(disk.operations().1, syncs, "an fsync was retried");
    assert_eq!(broker.job(kept).await.unwrap().state, JobState::Ready);
    drop(broker);
    // A restart recovers what was acknowledged. The refused enqueue's outcome is unknown, as
    // for any 5xx (redb's own close may still sync it): there or not, but whole, and no more.
    let broker = open(dir.path(), &disk.crash_image(None)).unwrap();
    assert_eq!(broker.job(kept).await.unwrap().state, JobState::Ready);
    let counts = broker.queue("q").unwrap().counts;
    let total: u64 = counts.iter().sum();
    assert!((1..=2).contains(&total), "{counts:?}");
    if total == 2 {
        let refused = JobId(kept.0 + 1);
        assert_eq!(broker.job(refused).await.unwrap().state, JobState::Ready);
    }
    broker.close();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_in_a_storage_thread_is_storage_failed_not_a_hang() {
    for on in [FaultOn::Write, FaultOn::Sync] {
        let dir = tempfile::tempdir().unwrap();
        let disk = FaultyDisk::new();
        let broker = open(dir.path(), &disk).unwrap();
        let kept = broker.enqueue("q", vec![NewJob::new("1")]).await.unwrap()[0].id;
        disk.fail(Fault {
            on,
            nth: 1,
            kind: FaultKind::Panic,
        });
        let refused = broker.enqueue("q", vec![NewJob::new("2")]).await;
        assert!(
            matches!(refused, Err(BrokerError::StorageFailed)),
            "{on:?}: {refused:?}"
        );
        assert!(!broker.is_healthy(), "{on:?}: readiness must drop");
        let again = broker.enqueue("q", vec![NewJob::new("3")]).await;
        assert!(
            matches!(again, Err(BrokerError::StorageFailed)),
            "{again:?}"
        );
        assert_eq!(broker.job(kept).await.unwrap().state, JobState::Ready);
        drop(broker);
        let broker = open(dir.path(), &disk.crash_image(None)).unwrap();
        assert_eq!(broker.job(kept).await.unwrap().state, JobState::Ready);
        broker.close();
    }
}

/// A storage thread dies in a checkpoint (the checkpoint thread, at its first write to the
/// database file): the store is marked failed, so writes are refused as `storage_failed` and
/// readiness drops, instead of being queued for a thread that is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_in_the_writer_thread_marks_the_store_failed() {
    let dir = tempfile::tempdir().unwrap();
    let disk = FaultyDisk::new();
    let broker = open_with(dir.path(), &disk, 1).unwrap();
    // The journal's write of the next commit, then the checkpoint's first write to redb.
    disk.fail(Fault {
        on: FaultOn::Write,
        nth: 2,
        kind: FaultKind::Panic,
    });
    let kept = broker.enqueue("q", vec![NewJob::new("1")]).await.unwrap()[0].id;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while broker.is_healthy() {
        assert!(
            std::time::Instant::now() < deadline,
            "the writer's panic was never noticed"
        );
        tokio::task::yield_now().await;
    }
    let refused = broker.enqueue("q", vec![NewJob::new("2")]).await;
    assert!(
        matches!(refused, Err(BrokerError::StorageFailed)),
        "{refused:?}"
    );
    assert_eq!(broker.job(kept).await.unwrap().state, JobState::Ready);
}
