//! Shared test helpers: a server on an ephemeral port in a temp dir, and a tiny HTTP client.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)] // tests may unwrap; not every test uses every helper

pub mod child;
pub mod exposition;
pub mod keys;
pub mod mirroring;
pub mod services;

use std::net::SocketAddr;
use std::path::Path;

use axum::body::Bytes;
use serde_json::Value;
use tempfile::TempDir;
use wharf::broker::QueueConfig;
use wharf::clock::Clock;
use wharf::config::Config;
use wharf::server::Server;

/// A start time for manual clocks (2026-01-01T00:00:00Z).
pub const T0: u64 = 1_767_225_600_000;

/// A server in its own temp dir, listening on 127.0.0.1 on an ephemeral port.
pub struct TestServer {
    pub server: Option<Server>,
    pub addr: SocketAddr,
    pub clock: Clock,
    pub dir: TempDir,
}

/// A config for a test server in `dir`.
pub fn test_config(dir: &Path) -> Config {
    Config {
        data_dir: dir.to_path_buf(),
        listen: "127.0.0.1:0".parse().unwrap(),
        shutdown_grace_ms: 2_000,
        ..Config::default()
    }
}

impl TestServer {
    /// A server on a manual clock (deadlines move only with [`TestServer::advance`]), with
    /// jitter off so retry times are exact.
    pub async fn start() -> TestServer {
        Self::start_at(T0).await
    }

    /// A server with the given config and clock, in `dir`.
    pub async fn start_in(dir: TempDir, config: Config, clock: Clock) -> TestServer {
        let mut options = config.broker_options();
        options.seed = Some(7);
        let server = Server::start_with(&config, options, clock.clone())
            .await
            .unwrap();
        TestServer {
            addr: server.addr(),
            server: Some(server),
            clock,
            dir,
        }
    }

    /// Shuts down cleanly and starts again on the same data dir and clock.
    pub async fn restart(self) -> TestServer {
        self.restart_after(0).await
    }

    /// Shuts down cleanly (background tasks and mirror relays stop).
    pub async fn shutdown(mut self) {
        self.server.take().unwrap().shutdown().await;
    }

    /// Moves the manual clock forward and waits until the broker's timer and retention
    /// sweeper have handled every deadline that passed (and gone back to sleep).
    pub async fn advance(&self, ms: u64) {
        self.clock.advance(ms);
        settle(self.broker()).await;
    }

    /// Shuts down cleanly, lets `ms` pass while the broker is down, and starts again on the
    /// same data dir and clock (then settles, so whatever fell due meanwhile is handled).
    pub async fn restart_after(self, ms: u64) -> TestServer {
        let config = quiet_config_in(self.dir.path());
        self.restart_with(ms, config).await
    }

    /// Shuts down cleanly, lets `ms` pass, and starts again on the same data dir and clock
    /// with `config` (then settles).
    pub async fn restart_with(mut self, ms: u64, config: Config) -> TestServer {
        self.server.take().unwrap().shutdown().await;
        self.clock.advance(ms);
        let server = Self::start_in(self.dir, config, self.clock).await;
        settle(server.broker()).await;
        server
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        request(self.addr, "GET", path, None).await
    }

    pub async fn post(&self, path: &str, body: &str) -> (u16, Value) {
        request(self.addr, "POST", path, Some(body)).await
    }

    pub async fn post_with(
        &self,
        path: &str,
        body: &str,
        headers: &[(&str, &str)],
    ) -> (u16, Value) {
        request_bytes(
            self.addr,
            "POST",
            path,
            Some(body.as_bytes().to_vec()),
            headers,
        )
        .await
    }

    pub async fn patch(&self, path: &str, body: &str) -> (u16, Value) {
        request(self.addr, "PATCH", path, Some(body)).await
    }

    pub async fn request_put(&self, path: &str, body: &str) -> (u16, Value) {
        request(self.addr, "PUT", path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> (u16, Value) {
        request(self.addr, "DELETE", path, None).await
    }

    /// Enqueues one job and returns its id.
    pub async fn enqueue(&self, queue: &str, job: &str) -> String {
        let (status, body) = self.post(&format!("/v1/queues/{queue}/jobs"), job).await;
        assert_eq!(status, 201, "{body}");
        body["id"].as_str().unwrap().to_owned()
    }

    /// Polls up to `max` jobs without waiting; returns the deliveries.
    pub async fn poll(&self, queue: &str, max: usize) -> Vec<Value> {
        let (status, body) = self
            .post(
                &format!("/v1/queues/{queue}/poll"),
                &format!(r#"{{"max":{max}}}"#),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body["jobs"].as_array().unwrap().clone()
    }

    /// The job's public state.
    pub async fn state_of(&self, id: &str) -> String {
        let (status, body) = self.get(&format!("/v1/jobs/{id}")).await;
        assert_eq!(status, 200, "{body}");
        body["state"].as_str().unwrap().to_owned()
    }
}

/// Waits for the broker's timer and sweeper to settle (see `Broker::settle`). A task that never
/// settles (one that spins) fails the test instead of hanging it.
pub async fn settle(broker: &wharf::broker::Broker) {
    tokio::time::timeout(std::time::Duration::from_secs(20), broker.settle())
        .await
        .expect("the timer and the sweeper did not go back to sleep within 20 s");
}

/// One HTTP/1.1 request on a fresh connection; the reply body parsed as JSON (or as a JSON
/// string when it is not JSON).
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> (u16, Value) {
    request_bytes(addr, method, path, body.map(|b| b.as_bytes().to_vec()), &[]).await
}

/// Like [`request`], with raw body bytes and extra headers.
pub async fn request_bytes(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<Vec<u8>>,
    headers: &[(&str, &str)],
) -> (u16, Value) {
    try_request_bytes(addr, method, path, body, headers)
        .await
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
}

/// Like [`request_bytes`], but a failed connection is an `Err` (for tests that kill servers).
pub async fn try_request_bytes(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<Vec<u8>>,
    headers: &[(&str, &str)],
) -> Result<(u16, Value), Box<dyn std::error::Error + Send + Sync>> {
    let (status, bytes) =
        wharf::client::request(addr, method, path, body.map(Bytes::from), headers).await?;
    let value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    Ok((status, value))
}

/// Asserts an error reply: status, machine code, and the documented shape.
pub fn assert_error(reply: &(u16, Value), status: u16, code: &str) {
    assert_eq!(reply.0, status, "{}", reply.1);
    assert_eq!(reply.1["error"]["code"], code, "{}", reply.1);
    assert!(
        reply.1["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{}",
        reply.1
    );
}

/// [`test_config`] with jitter off, so retry times are exact.
pub fn quiet_config_in(dir: &Path) -> Config {
    let mut config = test_config(dir);
    config.queue_defaults = QueueConfig {
        backoff: wharf::broker::Backoff {
            jitter: false,
            ..Default::default()
        },
        ..Default::default()
    };
    config
}

impl TestServer {
    /// Like [`TestServer::start`], with the manual clock starting at `start` (epoch ms).
    pub async fn start_at(start: u64) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let config = quiet_config_in(dir.path());
        let server = Self::start_in(dir, config, Clock::manual(start)).await;
        settle(server.broker()).await;
        server
    }
}

/// Epoch milliseconds of an RFC 3339 timestamp.
pub fn ms(rfc3339: &str) -> u64 {
    wharf::clock::parse_rfc3339(rfc3339).unwrap()
}

impl TestServer {
    /// The running server's broker core.
    pub fn broker(&self) -> &wharf::broker::Broker {
        self.server.as_ref().unwrap().broker()
    }

    /// Jobs purged and idempotency keys forgotten by the retention sweeper so far.
    pub fn purged(&self) -> (u64, u64) {
        self.broker().retention_totals()
    }

    /// How many times the retention sweeper has looked at the expiry index so far.
    pub fn sweeper_looks(&self) -> u64 {
        self.broker().sweeper_status().borrow().looks
    }

    /// Waits until `check` holds for the long-poll counts.
    pub async fn polls_until(&self, check: impl FnMut(&wharf::broker::PollStats) -> bool) {
        let mut stats = self.broker().poll_stats();
        tokio::time::timeout(std::time::Duration::from_secs(20), stats.wait_for(check))
            .await
            .expect("the polls did not get there within 20 s")
            .unwrap();
    }
}

/// The event types that tell of a change to the broker's state: every type but `audit` (a
/// refused request leaves an audit record, and its event, while changing nothing).
pub const CHANGES: &str = "job.*,queue.*,schedule.*,message";

/// The seq of the last event of the change log that is not an audit record, as `key` reads it.
pub async fn last_change(server: &TestServer, key: Option<&str>) -> u64 {
    let mut after = 0;
    let mut last = 0;
    loop {
        let path = format!("/v1/events?after={after}&limit=1000&types={CHANGES}");
        let (status, page) = keys::call(server, key, "GET", &path, None).await;
        assert_eq!(status, 200, "{page}");
        if let Some(seq) = page["events"].as_array().unwrap().last() {
            last = seq["seq"].as_u64().unwrap();
        }
        let next = page["next_after"].as_u64().unwrap();
        if next >= page["head"].as_u64().unwrap() || next == after {
            return last;
        }
        after = next;
    }
}
