//! The machine's Postgres and Redis for mirror tests: where they are, a schema or key prefix of
//! a test's own (dropped when the test ends), and a TCP proxy a test can take down and bring
//! back to play a mirror that is unreachable.
//!
//! An unreachable service skips the test with a note, unless `WHARF_REQUIRE_SERVICES=1` (set by
//! `.ci/run`), which makes it a failure.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// `WHARF_TEST_POSTGRES_URL`, by default the machine's Postgres.
pub fn postgres_url() -> String {
    std::env::var("WHARF_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// `WHARF_TEST_REDIS_URL`, by default the machine's Redis.
pub fn redis_url() -> String {
    std::env::var("WHARF_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// `None` (after a note) when `service` cannot be reached and services are not required.
fn skip<T>(service: &str, error: impl std::fmt::Display) -> Option<T> {
    if std::env::var("WHARF_REQUIRE_SERVICES").is_ok_and(|v| v == "1") {
        panic!("{service} is unreachable and WHARF_REQUIRE_SERVICES=1: {error}");
    }
    eprintln!("skipped: {service} is unreachable ({error}); set WHARF_TEST_{service}_URL");
    None
}

/// A name no other test (or run) uses: `prefix` and a counter with the process id.
pub fn unique(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "{prefix}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A Postgres schema of a test's own, dropped at the end.
pub struct PgSchema {
    pub client: tokio_postgres::Client,
    pub schema: String,
}

impl PgSchema {
    /// Connects, or `None` to skip the test.
    pub async fn new() -> Option<PgSchema> {
        let url = postgres_url();
        let connecting = tokio_postgres::connect(&url, tokio_postgres::NoTls);
        let (client, connection) =
            match tokio::time::timeout(Duration::from_secs(5), connecting).await {
                Ok(Ok(pair)) => pair,
                Ok(Err(error)) => return skip("POSTGRES", error),
                Err(_) => return skip("POSTGRES", "timed out"),
            };
        tokio::spawn(connection);
        let schema = unique("wharf_test");
        Some(PgSchema { client, schema })
    }

    /// The rows of `query` (over the schema's tables: write `{s}` for the schema).
    pub async fn rows(&self, query: &str) -> Vec<tokio_postgres::Row> {
        let query = query.replace("{s}", &format!("\"{}\"", self.schema));
        self.client.query(&query, &[]).await.unwrap()
    }

    /// Drops the schema now (it is also dropped when the value is, even by a failing test).
    pub async fn drop_schema(self) {
        drop(self);
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        let sql = format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.schema);
        cleanup(async move {
            let (client, connection) =
                tokio_postgres::connect(&postgres_url(), tokio_postgres::NoTls).await?;
            tokio::spawn(connection);
            client.batch_execute(&sql).await?;
            Ok::<(), tokio_postgres::Error>(())
        });
    }
}

/// Runs a clean-up on a runtime of its own (a `Drop` may run inside the test's runtime, which
/// cannot be blocked on). A failure fails the test, or is reported when it already fails.
fn cleanup<E: std::fmt::Display>(
    work: impl std::future::Future<Output = Result<(), E>> + Send + 'static,
) {
    let outcome = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        match runtime.block_on(async { tokio::time::timeout(Duration::from_secs(10), work).await })
        {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(error.to_string()),
            Err(_) => Err("timed out".to_owned()),
        }
    })
    .join();
    let error = match outcome {
        Ok(Ok(())) => return,
        Ok(Err(error)) => error,
        Err(_) => "it panicked".to_owned(),
    };
    if std::thread::panicking() {
        eprintln!("test clean-up failed: {error}");
    } else {
        panic!("test clean-up failed: {error}");
    }
}

/// A Redis key prefix of a test's own, its keys deleted at the end.
pub struct RedisPrefix {
    pub connection: redis::aio::MultiplexedConnection,
    pub prefix: String,
}

impl RedisPrefix {
    /// Connects, or `None` to skip the test.
    pub async fn new() -> Option<RedisPrefix> {
        let client = redis::Client::open(redis_url()).unwrap();
        let connecting = client.get_multiplexed_async_connection();
        let connection = match tokio::time::timeout(Duration::from_secs(5), connecting).await {
            Ok(Ok(connection)) => connection,
            Ok(Err(error)) => return skip("REDIS", error),
            Err(_) => return skip("REDIS", "timed out"),
        };
        Some(RedisPrefix {
            connection,
            prefix: format!("{}:", unique("wharf_test")),
        })
    }

    /// Deletes every key under the prefix now (also done when the value is dropped, even by
    /// a failing test).
    pub async fn delete_keys(self) {
        drop(self);
    }
}

impl Drop for RedisPrefix {
    fn drop(&mut self) {
        let pattern = format!("{}*", self.prefix);
        cleanup(async move {
            let client = redis::Client::open(redis_url())?;
            let mut connection = client.get_multiplexed_async_connection().await?;
            let keys: Vec<String> = redis::cmd("KEYS")
                .arg(&pattern)
                .query_async(&mut connection)
                .await?;
            if !keys.is_empty() {
                let () = redis::cmd("DEL")
                    .arg(keys)
                    .query_async(&mut connection)
                    .await?;
            }
            Ok::<(), redis::RedisError>(())
        });
    }
}

/// A TCP proxy to `target` that a test takes down (every connection cut, new ones refused)
/// and brings back.
pub struct Proxy {
    pub addr: SocketAddr,
    up: watch::Sender<bool>,
}

impl Proxy {
    /// A proxy that is up.
    pub async fn start(target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (up, _) = watch::channel(true);
        let state = up.subscribe();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if !*state.borrow() {
                    drop(client);
                    continue;
                }
                let mut down = state.clone();
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(target).await else {
                        return;
                    };
                    let (mut client, mut server) = (client, server);
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = down.wait_for(|up| !*up) => {}
                    }
                });
            }
        });
        Proxy { addr, up }
    }

    /// Cuts every connection and refuses new ones.
    pub fn down(&self) {
        self.up.send_replace(false);
    }

    /// Lets connections through again.
    pub fn up(&self) {
        self.up.send_replace(true);
    }
}

/// The `host:port` of a service URL.
pub fn service_addr(url: &str) -> SocketAddr {
    let rest = url.split("://").nth(1).unwrap();
    let host = rest.rsplit('@').next().unwrap();
    let host = host.split('/').next().unwrap();
    host.parse().unwrap()
}

/// `url` with its `host:port` replaced by `addr`.
pub fn via(url: &str, addr: SocketAddr) -> String {
    let original = service_addr(url).to_string();
    url.replacen(&original, &addr.to_string(), 1)
}

/// A `redis-server` of a test's own, on an ephemeral port, with settings the machine's Redis
/// must not be given (such as a tiny `maxmemory`); killed when dropped.
pub struct RedisServer {
    pub url: String,
    child: std::process::Child,
}

impl RedisServer {
    /// Starts one with `args` (as on its command line), or `None` to skip the test.
    pub async fn start(args: &[&str]) -> Option<RedisServer> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let spawned = std::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .args(args)
            .stdout(std::process::Stdio::null())
            .spawn();
        let child = match spawned {
            Ok(child) => child,
            Err(error) => return skip("REDIS", format!("redis-server: {error}")),
        };
        let server = RedisServer {
            url: format!("redis://127.0.0.1:{port}"),
            child,
        };
        // Ready once it answers PING.
        let client = redis::Client::open(server.url.as_str()).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(mut connection) = client.get_multiplexed_async_connection().await {
                let pong: redis::RedisResult<String> =
                    redis::cmd("PING").query_async(&mut connection).await;
                if pong.is_ok() {
                    return Some(server);
                }
            }
            assert!(
                std::time::Instant::now() < deadline,
                "redis-server on port {port} did not start"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// A connection to it.
    pub async fn connect(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.url.as_str())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
