//! `peer-bench`: drives Redis, beanstalkd, PostgreSQL, NATS JetStream or RabbitMQ with the wharf
//! peer-comparison workload and prints one JSON line.
//!
//! Workload: `--jobs N` jobs of `--payload-bytes` bytes, produced by `--producers P` tasks and
//! consumed + acknowledged by `--consumers C` tasks, all running concurrently. `--batch B` is how
//! many jobs each round trip carries (pipelined commands for Redis and beanstalkd, multi-row
//! statements for PostgreSQL, fetches and windows of outstanding publish acks or confirms for
//! NATS and RabbitMQ); `--batch 1` means one job per request/command.
//!
//! NATS and RabbitMQ get a stream or queue of their own per run, named after the process id
//! and the time, which is deleted afterwards whether the run succeeded or not.
//!
//! jobs/s = jobs acknowledged / wall time from the start of production to the last ack.
//! Every loop is bounded: by the job count, and by `--timeout-sec` for the whole run.

mod amqp_peer;
mod beanstalk_peer;
mod nats_peer;
mod pg_peer;
mod redis_peer;
mod workload;

use std::net::{SocketAddr, ToSocketAddrs};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail, ensure};
use clap::{Parser, ValueEnum};
use tokio::signal::unix::{SignalKind, signal};
use tokio::time::Instant;

use workload::{Progress, Shape, Start, Task};

#[derive(Clone, Copy, Debug, ValueEnum)]
enum System {
    Redis,
    Beanstalkd,
    Postgres,
    Nats,
    Rabbitmq,
}

impl System {
    fn name(self) -> &'static str {
        match self {
            System::Redis => "redis",
            System::Beanstalkd => "beanstalkd",
            System::Postgres => "postgres",
            System::Nats => "nats",
            System::Rabbitmq => "rabbitmq",
        }
    }
}

/// Load driver for the wharf peer comparison.
#[derive(Parser, Debug)]
#[command(about)]
struct Args {
    /// Which system to drive.
    #[arg(long, value_enum)]
    system: System,
    /// host:port of the throwaway instance (loopback only).
    #[arg(long)]
    addr: String,
    /// Concurrent producer tasks (one connection each).
    #[arg(long, default_value_t = 1)]
    producers: usize,
    /// Concurrent consumer tasks (one connection each).
    #[arg(long, default_value_t = 1)]
    consumers: usize,
    /// Total jobs to produce, consume and acknowledge.
    #[arg(long, default_value_t = 100_000)]
    jobs: u64,
    /// Bytes per job payload (at least 24: the first 20 carry the job number).
    #[arg(long, default_value_t = 256)]
    payload_bytes: usize,
    /// Jobs per round trip for produce, consume and ack (1 = unbatched).
    #[arg(long, default_value_t = 1)]
    batch: usize,
    /// Give up after this many seconds (the run is then reported as incomplete).
    #[arg(long, default_value_t = 120)]
    timeout_sec: u64,
    /// PostgreSQL user (only for --system postgres).
    #[arg(long, default_value = "postgres")]
    pg_user: String,
    /// RabbitMQ queue kind (only for --system rabbitmq): a quorum queue with publisher confirms
    /// and manual acks, or a classic non-durable queue without confirms and with auto-ack.
    #[arg(long, value_enum, default_value = "quorum")]
    rabbitmq_queue: amqp_peer::Durability,
    /// Free-form label echoed in the JSON (e.g. the durability mode).
    #[arg(long)]
    label: Option<String>,
}

/// Ports of the machine's long-running shared Redis, PostgreSQL and NATS: never driven by this
/// tool. (RabbitMQ's 5672 is allowed: the comparison uses the shared service, in queues of its
/// own that it deletes.)
const FORBIDDEN_PORTS: [u16; 3] = [6379, 5432, 4222];

fn resolve_loopback(addr: &str) -> anyhow::Result<SocketAddr> {
    let resolved: SocketAddr = addr
        .to_socket_addrs()
        .with_context(|| format!("resolving {addr}"))?
        .next()
        .with_context(|| format!("{addr} resolves to nothing"))?;
    ensure!(
        resolved.ip().is_loopback(),
        "{addr} is not a loopback address; refusing"
    );
    ensure!(
        !FORBIDDEN_PORTS.contains(&resolved.port()),
        "port {} belongs to a shared service on this machine; refusing",
        resolved.port()
    );
    Ok(resolved)
}

/// What a run that got as far as starting the clock reports.
struct Outcome {
    progress: Arc<Progress>,
    /// Errors of producer and consumer tasks.
    errors: Vec<String>,
    /// Why the run's stream or queue could not be deleted, if it could not.
    cleanup_error: Option<String>,
}

/// Connects everything (resetting the system's state, or creating a stream or queue of its
/// own) before the clock starts, then runs all producers and consumers to completion, error
/// or deadline, and deletes what it created.
async fn run(args: &Args) -> anyhow::Result<Outcome> {
    ensure!(
        args.producers >= 1 && args.consumers >= 1,
        "need at least one producer and consumer"
    );
    ensure!(args.batch >= 1, "--batch must be at least 1");
    ensure!(
        args.payload_bytes >= 24,
        "--payload-bytes must be at least 24"
    );
    ensure!(args.jobs >= 1, "--jobs must be at least 1");
    let addr = resolve_loopback(&args.addr)?;
    let shape = Shape {
        producers: args.producers,
        consumers: args.consumers,
        batch: args.batch,
        payload_bytes: args.payload_bytes,
    };
    let starts = match args.system {
        System::Redis => redis_peer::connect_all(addr, shape).await?,
        System::Beanstalkd => beanstalk_peer::connect_all(addr, shape).await?,
        System::Postgres => pg_peer::connect_all(addr, &args.pg_user, shape).await?,
        System::Nats => {
            let queue = nats_peer::Queue::create(addr, &run_name()).await?;
            let outcome = until_signal(async {
                let starts = nats_peer::connect_all(addr, &queue, shape).await?;
                Ok(drive(starts, args).await)
            })
            .await;
            return finish(outcome, queue.delete().await);
        }
        System::Rabbitmq => {
            let name = format!("{}-{:?}", run_name(), args.rabbitmq_queue).to_lowercase();
            let queue = amqp_peer::Queue::declare(addr, &name, args.rabbitmq_queue).await?;
            let outcome = until_signal(async {
                let starts = amqp_peer::connect_all(addr, &queue, shape).await?;
                Ok(drive(starts, args).await)
            })
            .await;
            return finish(outcome, queue.delete().await);
        }
    };
    Ok(drive(starts, args).await)
}

/// Runs `work` unless SIGINT or SIGTERM comes first, so that the caller still deletes the
/// stream or queue it created (the RabbitMQ service is shared) when the script is stopped.
async fn until_signal<T>(work: impl Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    tokio::select! {
        result = work => result,
        _ = terminate.recv() => bail!("stopped by SIGTERM"),
        _ = interrupt.recv() => bail!("stopped by SIGINT"),
    }
}

/// A name for this run's stream or queue that no other run shares: `peerbench-PID-MILLIS`.
fn run_name() -> String {
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_millis());
    format!("peerbench-{}-{millis}", std::process::id())
}

/// Adds the outcome of deleting the run's stream or queue to the run's outcome.
fn finish(
    outcome: anyhow::Result<Outcome>,
    deleted: anyhow::Result<()>,
) -> anyhow::Result<Outcome> {
    let cleanup_error = deleted.err().map(|error| format!("{error:#}"));
    if let Some(error) = &cleanup_error {
        eprintln!("peer-bench: {error}");
    }
    outcome.map(|outcome| Outcome {
        cleanup_error,
        ..outcome
    })
}

/// Starts the clock and every producer and consumer, and waits for all of them.
async fn drive(starts: Vec<Start>, args: &Args) -> Outcome {
    let start = Instant::now();
    let progress = Arc::new(Progress {
        total: args.jobs,
        acked: AtomicU64::new(0),
        last_ack_ns: AtomicU64::new(0),
        start,
        deadline: start + Duration::from_secs(args.timeout_sec),
    });
    let handles: Vec<Task> = starts
        .into_iter()
        .map(|spawn| spawn(progress.clone()))
        .collect();
    let mut errors = Vec::new();
    for handle in handles {
        match handle.await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => errors.push(format!("{error:#}")),
            Err(join) => errors.push(format!("task panicked: {join}")),
        }
    }
    Outcome {
        progress,
        errors,
        cleanup_error: None,
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(error) => {
            eprintln!("peer-bench: {error}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(run(&args));
    // Leave stuck connections behind rather than wait on them.
    runtime.shutdown_timeout(Duration::from_secs(1));
    let mut report = serde_json::json!({
        "system": args.system.name(),
        "label": args.label,
        "producers": args.producers,
        "consumers": args.consumers,
        "batch": args.batch,
        "payload_bytes": args.payload_bytes,
        "jobs": args.jobs,
    });
    let code = match outcome {
        Ok(Outcome {
            progress,
            errors,
            cleanup_error,
        }) => {
            let acked = progress.acked.load(Ordering::Acquire);
            let complete = acked >= progress.total && errors.is_empty();
            let elapsed = if acked >= progress.total {
                Duration::from_nanos(progress.last_ack_ns.load(Ordering::Acquire))
            } else {
                progress.start.elapsed()
            };
            let secs = elapsed.as_secs_f64();
            report["acked"] = acked.into();
            report["elapsed_sec"] = secs.into();
            report["jobs_per_sec"] = if secs > 0.0 {
                (acked as f64 / secs).into()
            } else {
                serde_json::Value::Null
            };
            report["complete"] = complete.into();
            if !errors.is_empty() {
                report["errors"] = errors.into();
            }
            if let Some(error) = cleanup_error {
                report["cleanup_error"] = error.into();
            }
            if complete {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            }
        }
        Err(error) => {
            report["error"] = format!("{error:#}").into();
            report["jobs_per_sec"] = serde_json::Value::Null;
            report["complete"] = false.into();
            ExitCode::FAILURE
        }
    };
    println!("{report}");
    code
}
