//! Storage commit cost in `sync` durability (one fsync per commit), by group size.
//!
//! A [`Store`] is opened in a fresh directory per benchmark (cache 64 MiB, `max_group` 1024,
//! `max_pending` 8192, outbox capped at 1,000,000 entries) and one iteration commits one group
//! of N inserts, each a job with a 256-byte payload, N = 1, 16, 256, in two shapes:
//!
//! - `commit/sync/requests/group=N`: N write requests of one insert each, all submitted before
//!   any is awaited (a burst of concurrent requests).
//! - `commit/sync/ops/group=N`: one write request carrying N insert ops (a batch enqueue): always
//!   exactly one commit, so this is the clean "one commit of N inserts" figure.
//!
//! The writer takes the first request as soon as it arrives and drains only what is queued by
//! then, so a burst of N requests to an idle writer is often split over two commits (it wakes
//! after the first few). After each benchmark the bench prints how many commits its groups
//! took; quote that with the `requests` figures.
//!
//! Timed: admission, submit, and awaiting every reply (the commits and their fsyncs); building
//! the ops is not. Throughput is per job (elem/s = jobs/s).
//!
//! The data directory is `$WHARF_BENCH_DIR` if set, else cargo's `CARGO_TARGET_TMPDIR` (under
//! `target/`): it must be on the disk you want to measure, not a tmpfs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};
use tokio::runtime::Runtime;
use wharf::config::{Config, Durability};
use wharf::storage::{
    Admission, JobBody, JobRecord, Pending, Store, StoreOptions, StoredState, WriteOp,
};

// The allocator of the `wharf` binary (src/main.rs), so allocation costs match production.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const GROUP_SIZES: [usize; 3] = [1, 16, 256];
const PAYLOAD_BYTES: usize = 256;

/// Where the data directories go.
fn bench_dir() -> PathBuf {
    std::env::var_os("WHARF_BENCH_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")), PathBuf::from)
}

/// The store options of the brief: sync durability (every commit fsynced), cache 64 MiB, groups
/// of at most 1024 requests, 8192 pending, outbox capped at 1,000,000. Built through
/// [`Config::broker_options`] so they are exactly what `wharf serve --durability sync` uses.
fn store_options(dir: &Path) -> StoreOptions {
    Config {
        data_dir: dir.to_path_buf(),
        durability: Durability::Sync,
        cache_mb: 64,
        max_commit_group: 1024,
        max_pending_writes: 8192,
        events_max_entries: 1_000_000,
        ..Config::default()
    }
    .broker_options()
    .store
}

/// Hands one request to the writer: nothing to fetch back, and durable (in `sync` mode its
/// reply waits for the fsync, as for an enqueue or an ack).
fn submit(store: &Store, admission: Admission, ops: Vec<WriteOp>) -> Pending {
    store.submit(admission, ops, Vec::new(), true)
}

/// An insert of a ready job with a 256-byte payload.
fn insert(id: u64, payload: &str) -> WriteOp {
    let now = 1_763_912_180_000 + id;
    WriteOp::Insert {
        id,
        record: JobRecord {
            queue: "emails".into(),
            priority: 128,
            state: StoredState::Queued { run_at: now },
            attempts: 0,
            max_attempts: 5,
            lease_ms: None,
            enqueued_at: now,
            updated_at: now,
            last_error: None,
            version: 1,
            group: None,
        },
        body: JobBody {
            payload: payload.to_owned(),
            headers: Vec::new(),
        },
        idempotency: None,
    }
}

/// How the N inserts of a group reach the writer.
#[derive(Clone, Copy)]
enum Shape {
    /// N requests of one op each, submitted before awaiting any.
    Requests,
    /// One request of N ops.
    Ops,
}

impl Shape {
    fn name(self) -> &'static str {
        match self {
            Shape::Requests => "requests",
            Shape::Ops => "ops",
        }
    }
}

/// Commits one group: submits every request, then awaits every reply.
async fn commit_group(store: &Store, shape: Shape, ops: Vec<WriteOp>) {
    let mut pending = Vec::new();
    match shape {
        Shape::Requests => {
            for op in ops {
                let admission = store.admit().await.unwrap();
                pending.push(submit(store, admission, vec![op]));
            }
        }
        Shape::Ops => {
            let admission = store.admit().await.unwrap();
            pending.push(submit(store, admission, ops));
        }
    }
    for reply in pending {
        black_box(reply.await.unwrap().unwrap());
    }
}

fn bench_one(group: &mut BenchmarkGroup<'_, WallTime>, rt: &Runtime, shape: Shape, size: usize) {
    let payload = "x".repeat(PAYLOAD_BYTES - r#"{"data":""}"#.len());
    let payload = format!(r#"{{"data":"{payload}"}}"#);
    assert_eq!(payload.len(), PAYLOAD_BYTES);
    let dir = tempfile::Builder::new()
        .prefix("wharf-commit-")
        .tempdir_in(bench_dir())
        .unwrap();
    let store = Store::open(&store_options(dir.path())).unwrap();
    let mut next_id = store.next_job_id().unwrap();
    let commits_before = store.metrics().group_size.count();
    let mut groups = 0u64;
    group.throughput(Throughput::Elements(size as u64));
    group.bench_function(format!("{}/group={size}", shape.name()), |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let ops: Vec<WriteOp> = (next_id..)
                    .take(size)
                    .map(|id| insert(id, &payload))
                    .collect();
                next_id += size as u64;
                let started = Instant::now();
                rt.block_on(commit_group(&store, shape, ops));
                total += started.elapsed();
            }
            groups += iters;
            total
        });
    });
    let commits = store.metrics().group_size.count() - commits_before;
    if groups > 0 {
        println!(
            "commit/sync/{}/group={size}: {groups} groups took {commits} commits ({:.2} per group)",
            shape.name(),
            commits as f64 / groups as f64
        );
    }
    store.close();
}

fn commit(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    println!("commit: data directories under {}", bench_dir().display());
    let mut group = c.benchmark_group("commit/sync");
    for shape in [Shape::Requests, Shape::Ops] {
        for size in GROUP_SIZES {
            bench_one(&mut group, &rt, shape, size);
        }
    }
    group.finish();
}

criterion_group! {
    name = benches;
    // fsync is slow: few samples and short runs, about a minute in all. Command-line flags
    // (--sample-size, --measurement-time, --warm-up-time, --quick) override these.
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    targets = commit
}
criterion_main!(benches);
