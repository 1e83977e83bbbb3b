//! `wharf bench`: a load generator that drives a broker over real HTTP.
//!
//! Producers enqueue jobs (in batches of `--batch`), consumers poll (`--poll-max`, long-poll)
//! and ack (`--ack-batch` per request; 1 uses the single-job ack route). Every payload carries
//! the time its enqueue was sent, so consumers measure enqueue-to-delivery latency. Without
//! `--url` a temporary broker runs in-process on loopback, in a temporary data directory that
//! is removed afterwards. Runs stop after `--jobs` cycles or `--duration`, whichever is first.

mod report;

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use serde::Deserialize;
use serde_json::json;

pub use report::{Errors, Latencies, Percentiles, Report};

use crate::client::{ClientError, Connection};
use crate::clock::Clock;
use crate::config::{Config, Durability};
use crate::server::Server;

/// What to run. Every flag has a default, so `wharf bench` alone is a meaningful run.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Broker to drive, e.g. http://127.0.0.1:7070 [default: a temporary in-process broker]
    #[arg(long)]
    pub url: Option<String>,
    /// Concurrent producers, each on its own connection.
    #[arg(long, default_value_t = 1)]
    pub producers: usize,
    /// Concurrent consumers, each on its own connection (0: only enqueue, to build a backlog).
    #[arg(long, default_value_t = 1)]
    pub consumers: usize,
    /// Jobs to push through the full cycle (enqueue → poll → ack).
    #[arg(long, default_value_t = 100_000)]
    pub jobs: u64,
    /// Stop after this many seconds even if not all jobs completed [default: 600]
    #[arg(long, value_parser = parse_seconds)]
    pub duration: Option<Duration>,
    /// Payload size in bytes (the JSON text of each job's payload).
    #[arg(long, default_value_t = 256)]
    pub payload_bytes: usize,
    /// Jobs per enqueue request (1 sends single-job bodies).
    #[arg(long, default_value_t = 64)]
    pub batch: usize,
    /// `max` of each poll.
    #[arg(long, default_value_t = 64)]
    pub poll_max: usize,
    /// Acks per ack request (1 uses POST /v1/jobs/{id}/ack, more use POST /v1/ack).
    #[arg(long, default_value_t = 64)]
    pub ack_batch: usize,
    /// Distinct priorities the jobs are spread over (1-4).
    #[arg(long, default_value_t = 1)]
    pub priorities: u8,
    /// Job groups the jobs are spread over round-robin (`g0`, `g1`, …), so that polls take
    /// turns across them (0: ungrouped jobs).
    #[arg(long, default_value_t = 0)]
    pub groups: u32,
    /// Queues the jobs are spread over; each consumer polls one of them.
    #[arg(long, default_value_t = 1)]
    pub queues: usize,
    /// Cap on enqueued jobs per second across producers (for latency runs) [default: none]
    #[arg(long)]
    pub rate: Option<u64>,
    /// API key to send with every request (for a broker with keys; see --auth for the
    /// temporary one) [default: none]
    #[arg(long, env = "WHARF_BENCH_KEY", hide_env_values = true)]
    pub key: Option<String>,
    /// The temporary broker requires a key: one with jobs:enqueue and jobs:consume is
    /// created and sent with every request, so the run includes the cost of checking it.
    #[arg(long, conflicts_with_all = ["url", "key"])]
    pub auth: bool,
    /// Durability of the temporary broker (ignored with --url).
    #[arg(long, value_enum, default_value_t = Durability::Sync)]
    pub durability: Durability,
    /// Also write the report as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Print no progress line.
    #[arg(long)]
    pub quiet: bool,
}

fn parse_seconds(text: &str) -> Result<Duration, String> {
    let number = text.strip_suffix('s').unwrap_or(text);
    number
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s > 0.0)
        .map(Duration::from_secs_f64)
        .ok_or_else(|| format!("{text:?} is not a number of seconds such as 30 or 30s"))
}

/// Why a run could not start.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// An option is out of range.
    #[error("{0}")]
    Invalid(String),
    /// The temporary broker did not start.
    #[error("temporary broker: {0}")]
    Serve(#[from] crate::server::ServeError),
    /// The report could not be written.
    #[error("writing {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

impl BenchArgs {
    fn validate(&self) -> Result<(), BenchError> {
        let check = |ok: bool, m: &str| {
            if ok {
                Ok(())
            } else {
                Err(BenchError::Invalid(m.to_owned()))
            }
        };
        check(self.producers >= 1, "--producers must be at least 1")?;
        check(self.jobs >= 1, "--jobs must be at least 1")?;
        check((1..=1000).contains(&self.batch), "--batch must be 1-1000")?;
        check(
            (1..=1000).contains(&self.poll_max),
            "--poll-max must be 1-1000",
        )?;
        check(
            (1..=1000).contains(&self.ack_batch),
            "--ack-batch must be 1-1000",
        )?;
        check(
            (1..=4).contains(&self.priorities),
            "--priorities must be 1-4",
        )?;
        check(self.groups <= 1_000_000, "--groups must be 0-1000000")?;
        check(
            self.queues >= 1 && self.queues <= 1000,
            "--queues must be 1-1000",
        )?;
        check(
            self.payload_bytes >= 16 && self.payload_bytes <= 1 << 20,
            "--payload-bytes must be 16 to 1048576",
        )?;
        check(self.rate != Some(0), "--rate must be at least 1")
    }

    fn settings(&self, target: &str) -> serde_json::Value {
        json!({
            "target": target, "producers": self.producers, "consumers": self.consumers,
            "jobs": self.jobs, "payload_bytes": self.payload_bytes, "batch": self.batch,
            "poll_max": self.poll_max, "ack_batch": self.ack_batch, "priorities": self.priorities,
            "groups": self.groups, "queues": self.queues, "rate": self.rate,
            "auth": self.auth || self.key.is_some(),
            "durability": if self.url.is_some() { None } else { Some(format!("{:?}", self.durability).to_lowercase()) },
            "cores": std::thread::available_parallelism().map_or(1, |n| n.get()),
        })
    }
}

/// Shared progress of a run.
#[derive(Default)]
struct Progress {
    claimed: AtomicU64,
    enqueued: AtomicU64,
    completed: AtomicU64,
    errors: [AtomicU64; 3],
    stop: AtomicBool,
    /// Microseconds from the start to the last successful ack: the run's measured time, so
    /// that idle long-polls after the last ack do not count.
    last_ack_us: AtomicU64,
}

/// Runs the benchmark and returns its report (also printed, and written with `--json`).
pub async fn run(args: BenchArgs) -> Result<Report, BenchError> {
    args.validate()?;
    let (addr, temporary) = match &args.url {
        Some(url) => (parse_url(url)?, None),
        None => {
            // Unique per run, also for runs started in the same millisecond by one process
            // (tests run benches in parallel).
            static RUNS: AtomicU64 = AtomicU64::new(0);
            let dir = std::env::temp_dir().join(format!(
                "wharf-bench-{}-{}-{}",
                std::process::id(),
                Clock::System.now(),
                RUNS.fetch_add(1, Ordering::Relaxed)
            ));
            let config = Config {
                data_dir: dir.clone(),
                listen: SocketAddr::from(([127, 0, 0, 1], 0)),
                durability: args.durability,
                ..Config::default()
            };
            let server = Server::start(&config, Clock::System).await?;
            (server.addr(), Some((server, dir)))
        }
    };
    let mut args = args;
    if args.auth {
        args.key = Some(create_key(addr).await?);
    }
    let target = args
        .url
        .clone()
        .unwrap_or_else(|| format!("in-process broker on {addr}"));
    if !args.quiet {
        eprintln!(
            "wharf bench: {} producers, {} consumers, {} jobs of {} bytes, batch {}, poll max {}, ack batch {} against {target}",
            args.producers,
            args.consumers,
            args.jobs,
            args.payload_bytes,
            args.batch,
            args.poll_max,
            args.ack_batch
        );
    }
    let report = drive(&args, addr, &target).await;
    if let Some((server, dir)) = temporary {
        server.shutdown().await;
        let _ = std::fs::remove_dir_all(dir);
    }
    // A reader that has gone (`wharf bench | head`) wants no more of the table; the JSON
    // report below is still written.
    let _ = writeln!(std::io::stdout().lock(), "{}", report.table());
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&report).unwrap_or_default();
        std::fs::write(path, text).map_err(|source| BenchError::Write {
            path: path.clone(),
            source,
        })?;
    }
    Ok(report)
}

/// Creates a worker key on the (still open) temporary broker; returns its token.
async fn create_key(addr: SocketAddr) -> Result<String, BenchError> {
    let body = r#"{"scopes":["jobs:enqueue","jobs:consume"],"label":"wharf bench"}"#;
    let reply = crate::client::request(addr, "POST", "/v1/keys", Some(Bytes::from(body)), &[])
        .await
        .map_err(|e| BenchError::Invalid(format!("creating a key: {e}")))?;
    serde_json::from_slice::<serde_json::Value>(&reply.1)
        .ok()
        .and_then(|v| v["key"].as_str().map(str::to_owned))
        .filter(|_| reply.0 == 201)
        .ok_or_else(|| BenchError::Invalid(format!("creating a key: status {}", reply.0)))
}

fn parse_url(url: &str) -> Result<SocketAddr, BenchError> {
    let rest = url.strip_prefix("http://").ok_or_else(|| {
        BenchError::Invalid(format!("--url must start with http:// (got {url:?})"))
    })?;
    let host = rest.trim_end_matches('/');
    std::net::ToSocketAddrs::to_socket_addrs(host)
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| {
            BenchError::Invalid(format!("--url {url:?} does not name a reachable host:port"))
        })
}

/// A connection that sends the run's key, if it has one.
async fn open(addr: SocketAddr, args: &BenchArgs) -> Result<Connection, ClientError> {
    let mut conn = Connection::open(addr).await?;
    if let Some(key) = &args.key {
        conn.authorize(key);
    }
    Ok(conn)
}

async fn drive(args: &BenchArgs, addr: SocketAddr, target: &str) -> Report {
    let progress = Arc::new(Progress::default());
    let start = Instant::now();
    let deadline = start + args.duration.unwrap_or(Duration::from_secs(600));
    let mut workers = Vec::new();
    for p in 0..args.producers {
        workers.push(tokio::spawn(produce(
            args.clone(),
            addr,
            progress.clone(),
            start,
            deadline,
            p,
        )));
    }
    for c in 0..args.consumers {
        workers.push(tokio::spawn(consume(
            args.clone(),
            addr,
            progress.clone(),
            start,
            deadline,
            c,
        )));
    }
    let ticker = (!args.quiet).then(|| tokio::spawn(show_progress(progress.clone(), start)));
    let mut latencies = Latencies::new();
    for worker in workers {
        if let Ok(l) = worker.await {
            latencies.merge(&l);
        }
    }
    let last_ack = Duration::from_micros(progress.last_ack_us.load(Ordering::Relaxed));
    let elapsed = if last_ack.is_zero() {
        start.elapsed()
    } else {
        last_ack
    };
    progress.stop.store(true, Ordering::SeqCst);
    if let Some(ticker) = ticker {
        ticker.abort();
        eprintln!();
    }
    let e = &progress.errors;
    let errors = Errors {
        enqueue: e[0].load(Ordering::Relaxed),
        poll: e[1].load(Ordering::Relaxed),
        ack: e[2].load(Ordering::Relaxed),
    };
    Report::new(
        args.settings(target),
        progress.enqueued.load(Ordering::Relaxed),
        progress.completed.load(Ordering::Relaxed),
        elapsed,
        &latencies,
        errors,
    )
}

async fn show_progress(progress: Arc<Progress>, start: Instant) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    loop {
        tick.tick().await;
        let secs = start.elapsed().as_secs_f64();
        let enq = progress.enqueued.load(Ordering::Relaxed);
        let done = progress.completed.load(Ordering::Relaxed);
        let errors: u64 = progress
            .errors
            .iter()
            .map(|e| e.load(Ordering::Relaxed))
            .sum();
        eprint!(
            "\r[{secs:>5.1}s] enqueued {enq} ({:.0}/s)  completed {done} ({:.0}/s)  errors {errors}   ",
            enq as f64 / secs,
            done as f64 / secs
        );
    }
}

/// A payload of exactly `bytes` bytes of JSON carrying the send time in µs since `start`.
fn payload(bytes: usize, sent_us: u64) -> String {
    let head = format!("{{\"t\":{sent_us},\"p\":\"");
    let pad = bytes.saturating_sub(head.len() + 2);
    let mut text = String::with_capacity(bytes);
    text.push_str(&head);
    text.extend(std::iter::repeat_n('x', pad));
    text.push_str("\"}");
    text
}

async fn produce(
    args: BenchArgs,
    addr: SocketAddr,
    progress: Arc<Progress>,
    start: Instant,
    deadline: Instant,
    index: usize,
) -> Latencies {
    let mut latencies = Latencies::new();
    let Ok(mut conn) = open(addr, &args).await else {
        progress.errors[0].fetch_add(1, Ordering::Relaxed);
        return latencies;
    };
    let pace = args.rate.map(|rate| {
        Duration::from_secs_f64(args.batch as f64 * args.producers as f64 / rate as f64)
    });
    let mut next_send = Instant::now();
    let mut round = index;
    loop {
        let first = progress
            .claimed
            .fetch_add(args.batch as u64, Ordering::Relaxed);
        if first >= args.jobs || Instant::now() >= deadline {
            return latencies;
        }
        let count = (args.jobs - first).min(args.batch as u64) as usize;
        if let Some(pace) = pace {
            tokio::time::sleep_until(next_send.into()).await;
            next_send += pace;
        }
        let queue = format!("bench-{}", round % args.queues);
        round += 1;
        let sent = Instant::now();
        let t = sent.duration_since(start).as_micros() as u64;
        let job = |i: u64| {
            let priority = ((first + i) % u64::from(args.priorities)) * 64;
            let group = match args.groups {
                0 => String::new(),
                n => format!(r#","group":"g{}""#, (first + i) % u64::from(n)),
            };
            format!(
                r#"{{"payload":{},"priority":{priority}{group}}}"#,
                payload(args.payload_bytes, t)
            )
        };
        let body = if args.batch == 1 {
            job(0)
        } else {
            let jobs: Vec<String> = (0..count as u64).map(job).collect();
            format!(r#"{{"jobs":[{}]}}"#, jobs.join(","))
        };
        match conn
            .send(
                "POST",
                &format!("/v1/queues/{queue}/jobs"),
                Some(Bytes::from(body)),
                &[],
            )
            .await
        {
            Ok((201, _)) => {
                latencies.record(0, sent.elapsed());
                progress.enqueued.fetch_add(count as u64, Ordering::Relaxed);
            }
            Ok(_) | Err(_) => {
                progress.errors[0].fetch_add(1, Ordering::Relaxed);
                // Give the jobs back so the run can still reach --jobs.
                progress.claimed.fetch_sub(count as u64, Ordering::Relaxed);
            }
        }
    }
}

#[derive(Deserialize)]
struct PollReply {
    jobs: Vec<PolledJob>,
}

#[derive(Deserialize)]
struct PolledJob {
    id: String,
    lease: String,
    payload: PolledPayload,
}

#[derive(Deserialize)]
struct PolledPayload {
    t: u64,
}

#[derive(Deserialize)]
struct BatchAckReply {
    acks: Vec<BatchAckOutcome>,
}

#[derive(Deserialize)]
struct BatchAckOutcome {
    ok: bool,
}

async fn consume(
    args: BenchArgs,
    addr: SocketAddr,
    progress: Arc<Progress>,
    start: Instant,
    deadline: Instant,
    index: usize,
) -> Latencies {
    let mut latencies = Latencies::new();
    let Ok(mut conn) = open(addr, &args).await else {
        progress.errors[1].fetch_add(1, Ordering::Relaxed);
        return latencies;
    };
    let queue = format!("bench-{}", index % args.queues);
    let poll_body = Bytes::from(format!(r#"{{"max":{},"wait_ms":250}}"#, args.poll_max));
    while progress.completed.load(Ordering::Relaxed) < args.jobs
        && Instant::now() < deadline
        && !progress.stop.load(Ordering::Relaxed)
    {
        let sent = Instant::now();
        let reply = conn
            .send(
                "POST",
                &format!("/v1/queues/{queue}/poll"),
                Some(poll_body.clone()),
                &[],
            )
            .await;
        let jobs = match parse_poll(reply) {
            Ok(jobs) => jobs,
            Err(_) => {
                progress.errors[1].fetch_add(1, Ordering::Relaxed);
                continue;
            }
        };
        if jobs.is_empty() {
            continue;
        }
        latencies.record(1, sent.elapsed());
        let now_us = start.elapsed().as_micros() as u64;
        for job in &jobs {
            latencies.record(
                3,
                Duration::from_micros(now_us.saturating_sub(job.payload.t)),
            );
        }
        for chunk in jobs.chunks(args.ack_batch) {
            let sent = Instant::now();
            let acked = ack(&mut conn, chunk, args.ack_batch == 1).await;
            latencies.record(2, sent.elapsed());
            progress.completed.fetch_add(acked, Ordering::Relaxed);
            if acked > 0 {
                progress
                    .last_ack_us
                    .fetch_max(start.elapsed().as_micros() as u64, Ordering::Relaxed);
            }
            progress.errors[2].fetch_add(chunk.len() as u64 - acked, Ordering::Relaxed);
        }
    }
    latencies
}

fn parse_poll(reply: Result<(u16, Bytes), ClientError>) -> Result<Vec<PolledJob>, ClientError> {
    match reply? {
        (200, body) => Ok(serde_json::from_slice::<PollReply>(&body)?.jobs),
        (status, _) => Err(format!("poll answered {status}").into()),
    }
}

/// Acks `jobs`; returns how many were acked.
async fn ack(conn: &mut Connection, jobs: &[PolledJob], single: bool) -> u64 {
    if single {
        let mut acked = 0;
        for job in jobs {
            let body = Bytes::from(format!(r#"{{"lease":"{}"}}"#, job.lease));
            if let Ok((200, _)) = conn
                .send("POST", &format!("/v1/jobs/{}/ack", job.id), Some(body), &[])
                .await
            {
                acked += 1;
            }
        }
        return acked;
    }
    let items: Vec<String> = jobs
        .iter()
        .map(|j| format!(r#"{{"id":"{}","lease":"{}"}}"#, j.id, j.lease))
        .collect();
    let body = Bytes::from(format!(r#"{{"acks":[{}]}}"#, items.join(",")));
    match conn.send("POST", "/v1/ack", Some(body), &[]).await {
        Ok((200, reply)) => serde_json::from_slice::<BatchAckReply>(&reply)
            .map_or(0, |r| r.acks.iter().filter(|a| a.ok).count() as u64),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_have_the_requested_size_and_carry_the_send_time() {
        for bytes in [64, 256, 4096] {
            let p = payload(bytes, 123_456);
            assert_eq!(p.len(), bytes);
            let parsed: PolledPayload = serde_json::from_str(&p).unwrap();
            assert_eq!(parsed.t, 123_456);
        }
        // Too small for the timestamp: as small as it can be, still valid.
        let tiny: PolledPayload = serde_json::from_str(&payload(16, 123_456)).unwrap();
        assert_eq!(tiny.t, 123_456);
    }

    #[test]
    fn durations_accept_seconds_with_or_without_suffix() {
        assert_eq!(parse_seconds("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_seconds("1.5s"), Ok(Duration::from_millis(1500)));
        assert!(parse_seconds("-1").is_err() && parse_seconds("soon").is_err());
    }
}
