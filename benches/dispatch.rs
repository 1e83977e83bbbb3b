//! The dispatch-index comparison asked for in `docs/design.md` ("Dispatch (memory)").
//!
//! A ready index is ordered by (priority descending, id ascending); many threads push to it and
//! pop its front. Three candidates:
//!
//! - `mutex_btree`: `parking_lot::Mutex<BTreeSet<(Reverse<u8>, u64)>>`, the structure
//!   `broker/state` chose by this bench. It has since packed the key into one `u64`
//!   (`((255 - priority) << 56) | id`, the same order in half the bytes), and its mutex guards
//!   all of `State`, not only the index;
//! - `skipset`: `crossbeam_skiplist::SkipSet<(Reverse<u8>, u64)>`, lock-free, `pop_front`;
//! - `mutex_heap`: `parking_lot::Mutex<BinaryHeap<(u8, Reverse<u64>)>>` (a max-heap, so the same
//!   order), pop only: it cannot remove an arbitrary job (cancel, purge), which the broker needs.
//!
//! Benchmarks:
//!
//! - `dispatch/push_pop/threads={1,2,8}/{structure}`: every thread repeats "push one entry, pop
//!   the front" on one shared index holding a backlog of [`BACKLOG`] entries. One iteration is
//!   one push+pop pair; the time is wall time over all threads divided by the pairs done by all
//!   threads, so it is the inverse of the aggregate throughput (pairs/s is shown as elem/s).
//! - `dispatch/pop_10k/resident=1M/{structure}`: pop [`POP`] entries from an index of
//!   [`LARGE`] entries (single thread); they are pushed back, untimed, after each iteration.
//!
//! Memory under churn cannot be measured by criterion: with `WHARF_BENCH_MEMORY=1` a plain
//! function runs first and prints a table of process RSS per structure (see [`memory_report`]).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap};
use std::hint::black_box;
use std::sync::Barrier;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, SamplingMode, Throughput, criterion_group};
use crossbeam_skiplist::SkipSet;
use parking_lot::Mutex;

// The allocator of the `wharf` binary (src/main.rs), so allocation costs match production.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The mix of priorities: wharf's four named levels (low, normal, high, critical).
const PRIORITIES: [u8; 4] = [64, 128, 192, 255];
/// Entries already in the index when a push/pop sample starts, so pops never find it empty and
/// the structure has some depth (a queue with a backlog).
const BACKLOG: u64 = 1_000;
/// Thread counts of the push/pop benchmark.
const THREADS: [usize; 3] = [1, 2, 8];
/// Size of the large index.
const LARGE: u64 = 1_000_000;
/// Pops per iteration from the large index.
const POP: usize = 10_000;
/// Memory report: entries kept resident during the churn.
const MEM_RESIDENT: u64 = 100_000;
/// Memory report: push/pop pairs of churn (in total, over all threads).
const MEM_CHURN: u64 = 1_000_000;
/// Memory report: threads doing the churn.
const MEM_THREADS: u64 = 4;

/// A fixed, well-mixed priority for each id (the broker's generator seeded with the id), from
/// [`PRIORITIES`].
fn priority_of(id: u64) -> u8 {
    let z = wharf::random::Rng::new(id).next_u64();
    PRIORITIES[(z >> 62) as usize]
}

/// A concurrent ready index: push anywhere, pop the front (highest priority, then lowest id).
trait ReadyIndex: Send + Sync {
    /// The name in benchmark ids and the memory table.
    const NAME: &'static str;
    fn new() -> Self;
    fn push(&self, priority: u8, id: u64);
    fn pop(&self) -> Option<(u8, u64)>;
}

struct MutexBTree(Mutex<BTreeSet<(Reverse<u8>, u64)>>);

impl ReadyIndex for MutexBTree {
    const NAME: &'static str = "mutex_btree";
    fn new() -> Self {
        MutexBTree(Mutex::new(BTreeSet::new()))
    }
    fn push(&self, priority: u8, id: u64) {
        self.0.lock().insert((Reverse(priority), id));
    }
    fn pop(&self) -> Option<(u8, u64)> {
        let (Reverse(priority), id) = self.0.lock().pop_first()?;
        Some((priority, id))
    }
}

struct SkipIndex(SkipSet<(Reverse<u8>, u64)>);

impl ReadyIndex for SkipIndex {
    const NAME: &'static str = "skipset";
    fn new() -> Self {
        SkipIndex(SkipSet::new())
    }
    fn push(&self, priority: u8, id: u64) {
        self.0.insert((Reverse(priority), id));
    }
    fn pop(&self) -> Option<(u8, u64)> {
        let entry = self.0.pop_front()?;
        let (Reverse(priority), id) = *entry.value();
        Some((priority, id))
    }
}

struct MutexHeap(Mutex<BinaryHeap<(u8, Reverse<u64>)>>);

impl ReadyIndex for MutexHeap {
    const NAME: &'static str = "mutex_heap";
    fn new() -> Self {
        MutexHeap(Mutex::new(BinaryHeap::new()))
    }
    fn push(&self, priority: u8, id: u64) {
        self.0.lock().push((priority, Reverse(id)));
    }
    fn pop(&self) -> Option<(u8, u64)> {
        let (priority, Reverse(id)) = self.0.lock().pop()?;
        Some((priority, id))
    }
}

/// Pushes ids `range` with their priorities.
fn fill<I: ReadyIndex>(index: &I, range: std::ops::Range<u64>) {
    for id in range {
        index.push(priority_of(id), id);
    }
}

/// Runs `iters` push+pop pairs split over `threads` threads on `index` and returns the wall time
/// from the first thread's start to the last thread's end (thread start-up excluded).
fn push_pop_run<I: ReadyIndex>(
    index: &I,
    next_id: &AtomicU64,
    threads: usize,
    iters: u64,
) -> Duration {
    let barrier = Barrier::new(threads);
    let spans: Vec<(Instant, Instant)> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads as u64)
            .map(|t| {
                let share = iters / threads as u64 + u64::from(t < iters % threads as u64);
                let barrier = &barrier;
                s.spawn(move || {
                    barrier.wait();
                    let start = Instant::now();
                    for _ in 0..share {
                        let id = next_id.fetch_add(1, Ordering::Relaxed);
                        index.push(priority_of(id), id);
                        black_box(index.pop());
                    }
                    (start, Instant::now())
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    let start = spans.iter().map(|s| s.0).min().unwrap();
    let end = spans.iter().map(|s| s.1).max().unwrap();
    end - start
}

fn push_pop_one<I: ReadyIndex>(group: &mut BenchmarkGroup<'_, WallTime>, threads: usize) {
    group.bench_function(I::NAME, |b| {
        b.iter_custom(|iters| {
            // A fresh index with the same backlog for every sample.
            let index = I::new();
            fill(&index, 0..BACKLOG);
            let next_id = AtomicU64::new(BACKLOG);
            push_pop_run(&index, &next_id, threads, iters)
        });
    });
}

fn push_pop(c: &mut Criterion) {
    for threads in THREADS {
        let mut group = c.benchmark_group(format!("dispatch/push_pop/threads={threads}"));
        group.throughput(Throughput::Elements(1));
        push_pop_one::<MutexBTree>(&mut group, threads);
        push_pop_one::<SkipIndex>(&mut group, threads);
        push_pop_one::<MutexHeap>(&mut group, threads);
        group.finish();
    }
}

fn pop_large_one<I: ReadyIndex>(group: &mut BenchmarkGroup<'_, WallTime>) {
    // Criterion calls the closure below once per warm-up round and per sample, so the index
    // lives outside it: built on first use (a filtered-out benchmark costs nothing), dropped
    // when this function returns, before the next structure is built.
    let mut index: Option<I> = None;
    let mut popped = Vec::with_capacity(POP);
    group.bench_function(I::NAME, |b| {
        let index = index.get_or_insert_with(|| {
            let index = I::new();
            fill(&index, 0..LARGE);
            index
        });
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let start = Instant::now();
                for _ in 0..POP {
                    popped.push(index.pop().unwrap());
                }
                total += start.elapsed();
                // Restore the index exactly, untimed.
                for (priority, id) in popped.drain(..) {
                    index.push(priority, id);
                }
            }
            total
        });
    });
}

fn pop_large(c: &mut Criterion) {
    let mut group = c.benchmark_group("dispatch/pop_10k/resident=1M");
    // Iterations are long (10k pops, then 10k untimed pushes back, which criterion's planning
    // counts too): flat sampling (the same iteration count in every sample) fits the samples
    // in the measurement time.
    group.sampling_mode(SamplingMode::Flat);
    group.throughput(Throughput::Elements(POP as u64));
    pop_large_one::<MutexBTree>(&mut group);
    pop_large_one::<SkipIndex>(&mut group);
    pop_large_one::<MutexHeap>(&mut group);
    group.finish();
}

/// All three structures must pop in the same order, (priority desc, id asc), or the comparison
/// compares nothing. Cheap; runs before anything else.
fn check_same_order() {
    fn drain<I: ReadyIndex>() -> Vec<(u8, u64)> {
        let index = I::new();
        // Pushed out of id order, to exercise the tie-break.
        fill(&index, 5_000..10_000);
        fill(&index, 0..5_000);
        std::iter::from_fn(|| index.pop()).collect()
    }
    let btree = drain::<MutexBTree>();
    assert_eq!(btree.len(), 10_000);
    assert!(
        btree
            .windows(2)
            .all(|w| (Reverse(w[0].0), w[0].1) < (Reverse(w[1].0), w[1].1)),
        "mutex_btree does not pop in (priority desc, id asc) order"
    );
    assert_eq!(drain::<SkipIndex>(), btree, "skipset order differs");
    assert_eq!(drain::<MutexHeap>(), btree, "mutex_heap order differs");
}

// ---------------------------------------------------------------------------------------------
// Memory under churn (WHARF_BENCH_MEMORY=1)
// ---------------------------------------------------------------------------------------------

/// Bytes per page, from the kernel page size in `/proc/self/smaps` (4 KiB if unreadable).
fn page_size() -> u64 {
    std::fs::read_to_string("/proc/self/smaps")
        .ok()
        .and_then(|smaps| {
            smaps.lines().find_map(|line| {
                let kb = line
                    .strip_prefix("KernelPageSize:")?
                    .trim()
                    .strip_suffix("kB")?;
                kb.trim().parse::<u64>().ok().map(|kb| kb * 1024)
            })
        })
        .unwrap_or(4096)
}

/// The process's resident set in bytes (second field of `/proc/self/statm`, in pages).
fn rss_bytes(page: u64) -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * page)
}

struct MemoryRow {
    name: &'static str,
    before: u64,
    filled: u64,
    churned: u64,
    dropped: u64,
    churn_time: Duration,
}

/// One structure: [`MEM_THREADS`] fresh scoped threads fill [`MEM_RESIDENT`] entries, then
/// [`MEM_THREADS`] fresh scoped threads do [`MEM_CHURN`] push+pop pairs in total (each pushes a
/// new id, then pops the front, so the index stays at [`MEM_RESIDENT`] entries), then it is
/// dropped.
fn churn<I: ReadyIndex>(page: u64) -> MemoryRow {
    let rss = || rss_bytes(page).unwrap_or(0);
    let before = rss();
    let index = I::new();
    let next_id = AtomicU64::new(0);
    let on_threads = |pairs_per_thread: u64, pop: bool| {
        std::thread::scope(|s| {
            for _ in 0..MEM_THREADS {
                s.spawn(|| {
                    for _ in 0..pairs_per_thread {
                        let id = next_id.fetch_add(1, Ordering::Relaxed);
                        index.push(priority_of(id), id);
                        if pop {
                            black_box(index.pop().unwrap());
                        }
                    }
                });
            }
        });
    };
    on_threads(MEM_RESIDENT / MEM_THREADS, false);
    let filled = rss();
    let started = Instant::now();
    on_threads(MEM_CHURN / MEM_THREADS, true);
    let churn_time = started.elapsed();
    let churned = rss();
    drop(index);
    MemoryRow {
        name: I::NAME,
        before,
        filled,
        churned,
        dropped: rss(),
        churn_time,
    }
}

/// Set, to a structure's name, in the child process that measures that one structure.
const MEMORY_CHILD: &str = "WHARF_BENCH_MEMORY_CHILD";

/// Runs [`churn`] for the structure `name` and prints its row as plain numbers (in the child).
fn memory_child(name: &str) {
    let page = page_size();
    let row = if name == MutexBTree::NAME {
        churn::<MutexBTree>(page)
    } else if name == SkipIndex::NAME {
        churn::<SkipIndex>(page)
    } else if name == MutexHeap::NAME {
        churn::<MutexHeap>(page)
    } else {
        panic!("{MEMORY_CHILD}: unknown structure {name:?}");
    };
    println!(
        "{} {} {} {} {}",
        row.before,
        row.filled,
        row.churned,
        row.dropped,
        row.churn_time.as_nanos()
    );
}

/// Measures one structure in a fresh process (this binary, re-executed with [`MEMORY_CHILD`]
/// set), so that no row sees memory the allocator kept from another.
fn churn_in_child(name: &'static str) -> Result<MemoryRow, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let out = std::process::Command::new(exe)
        .env(MEMORY_CHILD, name)
        .env_remove("WHARF_BENCH_MEMORY")
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!("child process: {}", out.status));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let numbers: Vec<u64> = stdout
        .lines()
        .last()
        .unwrap_or_default()
        .split_whitespace()
        .map(str::parse)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("child output {stdout:?}: {e}"))?;
    let [before, filled, churned, dropped, nanos] = numbers[..] else {
        return Err(format!("child output {stdout:?}: expected 5 numbers"));
    };
    Ok(MemoryRow {
        name,
        before,
        filled,
        churned,
        dropped,
        churn_time: Duration::from_nanos(nanos),
    })
}

/// Prints process RSS before and after a push/pop churn, for each structure, each measured in
/// a fresh process.
fn memory_report() {
    let page = page_size();
    if rss_bytes(page).is_none() {
        println!("WHARF_BENCH_MEMORY: /proc/self/statm is not readable; no memory report");
        return;
    }
    let rows: Vec<MemoryRow> = [MutexBTree::NAME, SkipIndex::NAME, MutexHeap::NAME]
        .into_iter()
        .map(|name| churn_in_child(name).unwrap_or_else(|e| panic!("{name}: {e}")))
        .collect();
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    let delta = |to: u64, from: u64| mib(to) - mib(from);
    println!();
    println!(
        "dispatch/memory: {MEM_RESIDENT} entries resident, {MEM_CHURN} push+pop pairs of churn \
         on {MEM_THREADS} threads; process RSS in MiB (/proc/self/statm), one process per row"
    );
    println!(
        "{:<12} {:>9} {:>9} {:>9} {:>9} {:>11} {:>11} {:>13} {:>10}",
        "structure",
        "before",
        "filled",
        "churned",
        "dropped",
        "fill Δ",
        "churn Δ",
        "B/entry fill",
        "churn ms"
    );
    for r in &rows {
        println!(
            "{:<12} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>+11.1} {:>+11.1} {:>13.1} {:>10}",
            r.name,
            mib(r.before),
            mib(r.filled),
            mib(r.churned),
            mib(r.dropped),
            delta(r.filled, r.before),
            delta(r.churned, r.filled),
            r.filled.saturating_sub(r.before) as f64 / MEM_RESIDENT as f64,
            r.churn_time.as_millis(),
        );
    }
    println!(
        "before: RSS of the fresh process; filled: after {MEM_RESIDENT} pushes; churned: after \
         the churn, index still alive; dropped: after dropping it (what the allocator kept)."
    );
    println!();
}

criterion_group! {
    name = benches;
    // Defaults for a whole run of about a minute; command-line flags (--measurement-time,
    // --warm-up-time, --sample-size, --quick) override them.
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = push_pop, pop_large
}

fn main() {
    if let Ok(name) = std::env::var(MEMORY_CHILD) {
        memory_child(&name);
        return;
    }
    check_same_order();
    if std::env::var("WHARF_BENCH_MEMORY").is_ok_and(|v| v == "1") {
        memory_report();
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
