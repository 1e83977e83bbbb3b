//! `peer-bench`: drives Redis, beanstalkd or PostgreSQL with the wharf peer-comparison workload
//! and prints one JSON line.
//!
//! Workload: `--jobs N` jobs of `--payload-bytes` bytes, produced by `--producers P` tasks and
//! consumed + acknowledged by `--consumers C` tasks, all running concurrently. `--batch B` is how
//! many jobs each round trip carries (pipelined commands for Redis and beanstalkd, multi-row
//! statements for PostgreSQL); `--batch 1` means one job per request/command.
//!
//! jobs/s = jobs acknowledged / wall time from the start of production to the last ack.
//! Every loop is bounded: by the job count, and by `--timeout-sec` for the whole run.

use std::collections::HashMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use clap::{Parser, ValueEnum};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::time::Instant;

#[derive(Clone, Copy, Debug, ValueEnum)]
enum System {
    Redis,
    Beanstalkd,
    Postgres,
}

impl System {
    fn name(self) -> &'static str {
        match self {
            System::Redis => "redis",
            System::Beanstalkd => "beanstalkd",
            System::Postgres => "postgres",
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
    /// Free-form label echoed in the JSON (e.g. the durability mode).
    #[arg(long)]
    label: Option<String>,
}

/// Ports of the machine's long-running shared services: never driven by this tool.
const FORBIDDEN_PORTS: [u16; 2] = [6379, 5432];

const REDIS_READY: &str = "peerbench:ready";
const REDIS_PROCESSING: &str = "peerbench:processing";
/// Seconds a blocking consume waits before re-checking whether the run is over.
const BLOCK_SECS: f64 = 0.2;
/// beanstalkd time-to-run: far beyond any run, so no job is ever re-released.
const BEANSTALK_TTR: u32 = 600;
/// How long a PostgreSQL consumer sleeps after finding nothing ready (it has no blocking pop).
const PG_IDLE_SLEEP: Duration = Duration::from_millis(1);

/// Progress shared by all tasks of a run.
struct Progress {
    total: u64,
    acked: AtomicU64,
    /// Nanoseconds from `start` to the latest ack seen.
    last_ack_ns: AtomicU64,
    start: Instant,
    deadline: Instant,
}

impl Progress {
    fn done(&self) -> bool {
        self.acked.load(Ordering::Acquire) >= self.total
    }

    fn check_deadline(&self) -> anyhow::Result<()> {
        if Instant::now() >= self.deadline {
            bail!("timed out");
        }
        Ok(())
    }

    fn record_acks(&self, n: u64) {
        let elapsed = u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.last_ack_ns.fetch_max(elapsed, Ordering::AcqRel);
        self.acked.fetch_add(n, Ordering::AcqRel);
    }
}

/// Job `id`'s payload: its zero-padded number, then filler up to `size` bytes. Unique per job
/// (Redis acks remove the job from the processing list by value).
fn payload(id: u64, size: usize) -> Vec<u8> {
    let mut p = format!("{id:020}").into_bytes();
    p.resize(size, b'.');
    p
}

/// The `index`-th of `parts` nearly equal slices of `0..total`, as (first id, count).
fn share(total: u64, parts: usize, index: usize) -> (u64, u64) {
    let parts = parts as u64;
    let index = index as u64;
    let base = total / parts;
    let extra = total % parts;
    let count = base + u64::from(index < extra);
    let first = index * base + index.min(extra);
    (first, count)
}

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

// ---------------------------------------------------------------------------------------------
// Redis: LPUSH to a list; LMOVE/BLMOVE into a processing list; LREM from it to acknowledge.

mod redis_peer {
    use super::*;
    use redis::aio::MultiplexedConnection;
    use redis::io::tcp::TcpSettings;
    use redis::{AsyncConnectionConfig, IntoConnectionInfo};

    pub async fn connect(addr: SocketAddr) -> anyhow::Result<MultiplexedConnection> {
        let info = format!("redis://{addr}/")
            .into_connection_info()?
            .set_tcp_settings(TcpSettings::default().set_nodelay(true));
        let client = redis::Client::open(info)?;
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(5)))
            .set_response_timeout(Some(Duration::from_secs(60)));
        Ok(client
            .get_multiplexed_async_connection_with_config(&config)
            .await?)
    }

    pub async fn setup(conn: &mut MultiplexedConnection) -> anyhow::Result<()> {
        redis::cmd("DEL")
            .arg(REDIS_READY)
            .arg(REDIS_PROCESSING)
            .query_async::<()>(conn)
            .await?;
        Ok(())
    }

    pub async fn produce(
        mut conn: MultiplexedConnection,
        progress: Arc<Progress>,
        (first, count): (u64, u64),
        batch: usize,
        size: usize,
    ) -> anyhow::Result<()> {
        let end = first + count;
        let mut id = first;
        while id < end {
            progress.check_deadline()?;
            let n = (end - id).min(batch as u64);
            if n == 1 {
                redis::cmd("LPUSH")
                    .arg(REDIS_READY)
                    .arg(payload(id, size))
                    .query_async::<()>(&mut conn)
                    .await?;
            } else {
                let mut pipe = redis::pipe();
                for j in id..id + n {
                    pipe.cmd("LPUSH")
                        .arg(REDIS_READY)
                        .arg(payload(j, size))
                        .ignore();
                }
                pipe.query_async::<()>(&mut conn).await?;
            }
            id += n;
        }
        Ok(())
    }

    async fn blocking_move(conn: &mut MultiplexedConnection) -> anyhow::Result<Option<Vec<u8>>> {
        Ok(redis::cmd("BLMOVE")
            .arg(REDIS_READY)
            .arg(REDIS_PROCESSING)
            .arg("RIGHT")
            .arg("LEFT")
            .arg(BLOCK_SECS)
            .query_async(conn)
            .await?)
    }

    pub async fn consume(
        mut conn: MultiplexedConnection,
        progress: Arc<Progress>,
        batch: usize,
    ) -> anyhow::Result<()> {
        while !progress.done() {
            progress.check_deadline()?;
            let mut got: Vec<Vec<u8>> = Vec::with_capacity(batch);
            if batch > 1 {
                let mut pipe = redis::pipe();
                for _ in 0..batch {
                    pipe.cmd("LMOVE")
                        .arg(REDIS_READY)
                        .arg(REDIS_PROCESSING)
                        .arg("RIGHT")
                        .arg("LEFT");
                }
                let moved: Vec<Option<Vec<u8>>> = pipe.query_async(&mut conn).await?;
                got.extend(moved.into_iter().flatten());
            }
            if got.is_empty() {
                // Unbatched, or the queue was empty: block (briefly) for one job.
                got.extend(blocking_move(&mut conn).await?);
            }
            if got.is_empty() {
                continue;
            }
            let removed: i64 = if got.len() == 1 {
                redis::cmd("LREM")
                    .arg(REDIS_PROCESSING)
                    .arg(1)
                    .arg(&got[0])
                    .query_async(&mut conn)
                    .await?
            } else {
                let mut pipe = redis::pipe();
                for job in &got {
                    pipe.cmd("LREM").arg(REDIS_PROCESSING).arg(1).arg(job);
                }
                let counts: Vec<i64> = pipe.query_async(&mut conn).await?;
                counts.iter().sum()
            };
            ensure!(
                removed == got.len() as i64,
                "LREM removed {removed} of {} jobs",
                got.len()
            );
            progress.record_acks(got.len() as u64);
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// beanstalkd: its text protocol by hand. put / reserve-with-timeout / delete.

mod beanstalk_peer {
    use super::*;
    use std::io::Write as _;

    pub struct Conn {
        io: BufReader<TcpStream>,
        out: Vec<u8>,
        line: Vec<u8>,
    }

    pub enum Reserve {
        Job(u64),
        None,
    }

    impl Conn {
        pub async fn connect(addr: SocketAddr) -> anyhow::Result<Self> {
            let stream = tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(addr))
                .await
                .context("connect timed out")??;
            stream.set_nodelay(true)?;
            Ok(Self {
                io: BufReader::with_capacity(256 * 1024, stream),
                out: Vec::new(),
                line: Vec::new(),
            })
        }

        fn put(&mut self, body: &[u8]) {
            let _ = write!(self.out, "put 0 0 {BEANSTALK_TTR} {}\r\n", body.len());
            self.out.extend_from_slice(body);
            self.out.extend_from_slice(b"\r\n");
        }

        fn reserve(&mut self, timeout_secs: u32) {
            let _ = write!(self.out, "reserve-with-timeout {timeout_secs}\r\n");
        }

        fn delete(&mut self, id: u64) {
            let _ = write!(self.out, "delete {id}\r\n");
        }

        async fn flush(&mut self) -> anyhow::Result<()> {
            self.io.get_mut().write_all(&self.out).await?;
            self.out.clear();
            Ok(())
        }

        async fn read_line(&mut self) -> anyhow::Result<String> {
            self.line.clear();
            let n = self.io.read_until(b'\n', &mut self.line).await?;
            ensure!(n > 0, "beanstalkd closed the connection");
            let text = std::str::from_utf8(&self.line)?.trim_end_matches(['\r', '\n']);
            Ok(text.to_owned())
        }

        async fn read_inserted(&mut self) -> anyhow::Result<()> {
            let line = self.read_line().await?;
            ensure!(
                line.starts_with("INSERTED "),
                "put: unexpected reply {line:?}"
            );
            Ok(())
        }

        async fn read_reserved(&mut self, size: usize) -> anyhow::Result<Reserve> {
            let line = self.read_line().await?;
            if line == "TIMED_OUT" || line == "DEADLINE_SOON" {
                return Ok(Reserve::None);
            }
            let mut words = line.split(' ');
            ensure!(
                words.next() == Some("RESERVED"),
                "reserve: unexpected reply {line:?}"
            );
            let id: u64 = words.next().context("reserve: no id")?.parse()?;
            let bytes: usize = words.next().context("reserve: no size")?.parse()?;
            ensure!(
                bytes == size,
                "reserve: job {id} has {bytes} bytes, expected {size}"
            );
            let mut body = vec![0u8; bytes + 2];
            self.io.read_exact(&mut body).await?;
            ensure!(
                body.ends_with(b"\r\n"),
                "reserve: body of job {id} not terminated"
            );
            Ok(Reserve::Job(id))
        }

        async fn read_deleted(&mut self) -> anyhow::Result<()> {
            let line = self.read_line().await?;
            ensure!(line == "DELETED", "delete: unexpected reply {line:?}");
            Ok(())
        }
    }

    pub async fn produce(
        mut conn: Conn,
        progress: Arc<Progress>,
        (first, count): (u64, u64),
        batch: usize,
        size: usize,
    ) -> anyhow::Result<()> {
        let end = first + count;
        let mut id = first;
        while id < end {
            progress.check_deadline()?;
            let n = (end - id).min(batch as u64);
            for j in id..id + n {
                conn.put(&payload(j, size));
            }
            conn.flush().await?;
            for _ in 0..n {
                conn.read_inserted().await?;
            }
            id += n;
        }
        Ok(())
    }

    pub async fn consume(
        mut conn: Conn,
        progress: Arc<Progress>,
        batch: usize,
        size: usize,
    ) -> anyhow::Result<()> {
        let mut ids = Vec::with_capacity(batch);
        while !progress.done() {
            progress.check_deadline()?;
            ids.clear();
            if batch > 1 {
                for _ in 0..batch {
                    conn.reserve(0);
                }
                conn.flush().await?;
                for _ in 0..batch {
                    if let Reserve::Job(id) = conn.read_reserved(size).await? {
                        ids.push(id);
                    }
                }
            }
            if ids.is_empty() {
                // Unbatched, or the queue was empty: block (up to 1 s, the protocol's unit).
                conn.reserve(1);
                conn.flush().await?;
                if let Reserve::Job(id) = conn.read_reserved(size).await? {
                    ids.push(id);
                }
            }
            if ids.is_empty() {
                continue;
            }
            for &id in &ids {
                conn.delete(id);
            }
            conn.flush().await?;
            for _ in 0..ids.len() {
                conn.read_deleted().await?;
            }
            progress.record_acks(ids.len() as u64);
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL: a jobs table; INSERT, UPDATE ... FOR UPDATE SKIP LOCKED ... RETURNING, DELETE.

mod pg_peer {
    use super::*;
    use tokio_postgres::types::ToSql;
    use tokio_postgres::{Client, NoTls, Statement};

    pub async fn connect(addr: SocketAddr, user: &str) -> anyhow::Result<Client> {
        let config = format!(
            "host={} port={} user={user} dbname=postgres connect_timeout=5",
            addr.ip(),
            addr.port()
        );
        let (client, connection) = tokio_postgres::connect(&config, NoTls).await?;
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                eprintln!("peer-bench: postgres connection: {error}");
            }
        });
        Ok(client)
    }

    pub async fn setup(client: &Client) -> anyhow::Result<()> {
        client
            .batch_execute(
                "DROP TABLE IF EXISTS jobs;
                 CREATE TABLE jobs (
                     id bigserial PRIMARY KEY,
                     payload bytea,
                     state text,
                     locked_at timestamptz
                 );
                 CREATE INDEX jobs_ready ON jobs (id) WHERE state = 'ready';",
            )
            .await?;
        Ok(())
    }

    pub async fn produce(
        client: Client,
        progress: Arc<Progress>,
        (first, count): (u64, u64),
        batch: usize,
        size: usize,
    ) -> anyhow::Result<()> {
        let mut statements: HashMap<usize, Statement> = HashMap::new();
        let end = first + count;
        let mut id = first;
        while id < end {
            progress.check_deadline()?;
            let n = (end - id).min(batch as u64) as usize;
            let statement = match statements.get(&n) {
                Some(statement) => statement.clone(),
                None => {
                    let values: Vec<String> = (1..=n).map(|i| format!("(${i}, 'ready')")).collect();
                    let sql = format!(
                        "INSERT INTO jobs (payload, state) VALUES {}",
                        values.join(", ")
                    );
                    let statement = client.prepare(&sql).await?;
                    statements.insert(n, statement.clone());
                    statement
                }
            };
            let payloads: Vec<Vec<u8>> = (id..id + n as u64).map(|j| payload(j, size)).collect();
            let params: Vec<&(dyn ToSql + Sync)> =
                payloads.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
            let inserted = client.execute(&statement, &params).await?;
            ensure!(
                inserted == n as u64,
                "INSERT inserted {inserted} of {n} rows"
            );
            id += n as u64;
        }
        Ok(())
    }

    pub async fn consume(
        client: Client,
        progress: Arc<Progress>,
        batch: usize,
    ) -> anyhow::Result<()> {
        let lease = client
            .prepare(
                "UPDATE jobs SET state = 'leased', locked_at = now() WHERE id IN (
                     SELECT id FROM jobs WHERE state = 'ready' ORDER BY id
                     FOR UPDATE SKIP LOCKED LIMIT $1
                 ) RETURNING id, payload",
            )
            .await?;
        let ack_one = client.prepare("DELETE FROM jobs WHERE id = $1").await?;
        let ack_many = client
            .prepare("DELETE FROM jobs WHERE id = ANY($1)")
            .await?;
        let limit = batch as i64;
        while !progress.done() {
            progress.check_deadline()?;
            let rows = client.query(&lease, &[&limit]).await?;
            if rows.is_empty() {
                tokio::time::sleep(PG_IDLE_SLEEP).await;
                continue;
            }
            let ids: Vec<i64> = rows.iter().map(|row| row.get::<_, i64>(0)).collect();
            let deleted = if ids.len() == 1 {
                client.execute(&ack_one, &[&ids[0]]).await?
            } else {
                client.execute(&ack_many, &[&ids]).await?
            };
            ensure!(
                deleted == ids.len() as u64,
                "DELETE removed {deleted} of {} rows",
                ids.len()
            );
            progress.record_acks(ids.len() as u64);
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------

type Task = tokio::task::JoinHandle<anyhow::Result<()>>;

fn spawn_bounded<F>(deadline: Instant, what: String, fut: F) -> Task
where
    F: std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
{
    tokio::spawn(async move {
        match tokio::time::timeout_at(deadline, fut).await {
            Ok(result) => result.with_context(|| what.clone()),
            Err(_) => bail!("{what}: timed out"),
        }
    })
}

async fn run(args: &Args) -> anyhow::Result<(Arc<Progress>, Vec<String>)> {
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
    let (p, c, b, size) = (
        args.producers,
        args.consumers,
        args.batch,
        args.payload_bytes,
    );

    // Connect everything (and reset state) before the clock starts.
    let mut tasks: Vec<Box<dyn FnOnce(Arc<Progress>) -> Task>> = Vec::new();
    let name = args.system.name();
    match args.system {
        System::Redis => {
            redis_peer::setup(&mut redis_peer::connect(addr).await?).await?;
            for i in 0..c {
                let conn = redis_peer::connect(addr).await?;
                tasks.push(Box::new(move |pr: Arc<Progress>| {
                    spawn_bounded(
                        pr.deadline,
                        format!("{name} consumer {i}"),
                        redis_peer::consume(conn, pr, b),
                    )
                }));
            }
            for i in 0..p {
                let conn = redis_peer::connect(addr).await?;
                tasks.push(Box::new(move |pr: Arc<Progress>| {
                    let range = share(pr.total, p, i);
                    spawn_bounded(
                        pr.deadline,
                        format!("{name} producer {i}"),
                        redis_peer::produce(conn, pr, range, b, size),
                    )
                }));
            }
        }
        System::Beanstalkd => {
            for i in 0..c {
                let conn = beanstalk_peer::Conn::connect(addr).await?;
                tasks.push(Box::new(move |pr: Arc<Progress>| {
                    spawn_bounded(
                        pr.deadline,
                        format!("{name} consumer {i}"),
                        beanstalk_peer::consume(conn, pr, b, size),
                    )
                }));
            }
            for i in 0..p {
                let conn = beanstalk_peer::Conn::connect(addr).await?;
                tasks.push(Box::new(move |pr: Arc<Progress>| {
                    let range = share(pr.total, p, i);
                    spawn_bounded(
                        pr.deadline,
                        format!("{name} producer {i}"),
                        beanstalk_peer::produce(conn, pr, range, b, size),
                    )
                }));
            }
        }
        System::Postgres => {
            pg_peer::setup(&pg_peer::connect(addr, &args.pg_user).await?).await?;
            for i in 0..c {
                let client = pg_peer::connect(addr, &args.pg_user).await?;
                tasks.push(Box::new(move |pr: Arc<Progress>| {
                    spawn_bounded(
                        pr.deadline,
                        format!("{name} consumer {i}"),
                        pg_peer::consume(client, pr, b),
                    )
                }));
            }
            for i in 0..p {
                let client = pg_peer::connect(addr, &args.pg_user).await?;
                tasks.push(Box::new(move |pr: Arc<Progress>| {
                    let range = share(pr.total, p, i);
                    spawn_bounded(
                        pr.deadline,
                        format!("{name} producer {i}"),
                        pg_peer::produce(client, pr, range, b, size),
                    )
                }));
            }
        }
    }

    let start = Instant::now();
    let progress = Arc::new(Progress {
        total: args.jobs,
        acked: AtomicU64::new(0),
        last_ack_ns: AtomicU64::new(0),
        start,
        deadline: start + Duration::from_secs(args.timeout_sec),
    });
    let handles: Vec<Task> = tasks
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
    Ok((progress, errors))
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
        Ok((progress, errors)) => {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_cover_everything_once() {
        for total in [1u64, 7, 64, 100_000, 5_003] {
            for parts in [1usize, 3, 8] {
                let mut next = 0;
                for i in 0..parts {
                    let (first, count) = share(total, parts, i);
                    assert_eq!(first, next);
                    next += count;
                }
                assert_eq!(next, total);
            }
        }
    }

    #[test]
    fn payloads_are_unique_and_sized() {
        assert_eq!(payload(7, 256).len(), 256);
        assert_ne!(payload(7, 256), payload(8, 256));
    }
}
