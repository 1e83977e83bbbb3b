//! The broker core without HTTP: one full job life cycle, in batches.
//!
//! `core/enqueue_poll_ack/batch=64/durability={async,sync}`: a [`Broker`] is opened from a
//! [`Config`] (defaults, data directory in a fresh temporary directory, the durability given),
//! its timer task running as in `wharf serve`. One iteration, on one queue, is
//!
//! 1. `enqueue` 64 jobs (256-byte payload, priority normal) in one call,
//! 2. `poll` with `max` 64 (no wait), which must deliver all 64,
//! 3. `ack_many` of the 64 deliveries, which must all succeed,
//!
//! three commits in all. In `sync` mode the enqueue and the ack each wait for an fsync; the
//! poll's lease write does not (it is fsynced with the next durable commit or within
//! `fsync_interval_ms`). In `async` mode nothing waits for an fsync (one every 50 ms at most).
//! Throughput is 64 jobs per iteration (elem/s = jobs/s through the whole cycle). The loop runs
//! inside a task on a 2-worker tokio runtime, like a request handler (`Broker::read_stored`
//! needs a multi-thread runtime).
//!
//! The data directory is `$WHARF_BENCH_DIR` if set, else cargo's `CARGO_TARGET_TMPDIR` (under
//! `target/`): it must be on the disk you want to measure, not a tmpfs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use wharf::broker::{AckItem, Broker, NewJob, PollRequest};
use wharf::clock::Clock;
use wharf::config::{Config, Durability};

// The allocator of the `wharf` binary (src/main.rs), so allocation costs match production.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const BATCH: usize = 64;
const PAYLOAD_BYTES: usize = 256;
const QUEUE: &str = "emails";

/// Where the data directories go.
fn bench_dir() -> PathBuf {
    std::env::var_os("WHARF_BENCH_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")), PathBuf::from)
}

/// enqueue(64) → poll(max 64) → ack_many(64).
async fn cycle(broker: &Broker, payload: &str) {
    let jobs = (0..BATCH).map(|_| NewJob::new(payload)).collect();
    let enqueued = broker.enqueue(QUEUE, jobs).await.unwrap();
    assert_eq!(enqueued.len(), BATCH);
    let request = PollRequest {
        max: BATCH,
        wait_ms: 0,
        lease_ms: None,
    };
    let deliveries = broker.poll(QUEUE, request).await.unwrap();
    assert_eq!(
        deliveries.len(),
        BATCH,
        "poll did not deliver the whole batch"
    );
    let acks = deliveries
        .into_iter()
        .map(|d| AckItem::new(d.id, d.lease))
        .collect();
    let outcomes = broker.ack_many(acks).await.unwrap();
    assert!(outcomes.iter().all(Result::is_ok), "an ack failed");
    black_box(outcomes);
}

fn core(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let payload = format!(
        r#"{{"data":"{}"}}"#,
        "x".repeat(PAYLOAD_BYTES - r#"{"data":""}"#.len())
    );
    assert_eq!(payload.len(), PAYLOAD_BYTES);
    let payload: Arc<str> = payload.into();
    println!("core: data directories under {}", bench_dir().display());

    let mut group = c.benchmark_group(format!("core/enqueue_poll_ack/batch={BATCH}"));
    group.throughput(Throughput::Elements(BATCH as u64));
    for (name, durability) in [("async", Durability::Async), ("sync", Durability::Sync)] {
        let dir = tempfile::Builder::new()
            .prefix("wharf-core-")
            .tempdir_in(bench_dir())
            .unwrap();
        let config = Config {
            data_dir: dir.path().to_path_buf(),
            durability,
            ..Config::default()
        };
        config.validate().unwrap();
        let broker = Broker::open(&config.broker_options(), Clock::System).unwrap();
        let timer = rt.spawn(broker.clone().run_timer());
        group.bench_function(format!("durability={name}"), |b| {
            b.iter_custom(|iters| {
                let (broker, payload) = (broker.clone(), payload.clone());
                rt.block_on(async move {
                    tokio::spawn(async move {
                        let started = Instant::now();
                        for _ in 0..iters {
                            cycle(&broker, &payload).await;
                        }
                        started.elapsed()
                    })
                    .await
                    .unwrap()
                })
            });
        });
        broker.close();
        rt.block_on(timer).unwrap();
    }
    group.finish();
}

criterion_group! {
    name = benches;
    // Sync mode waits for two fsyncs per iteration: few samples and short runs, well under a
    // minute in all. Command-line flags (--sample-size, --measurement-time, --warm-up-time,
    // --quick) override these.
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    targets = core
}
criterion_main!(benches);
