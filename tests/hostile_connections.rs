//! Connections that stall: half a request head, an idle keep-alive, a body that stops coming,
//! more connections than allowed. A fresh client is still served; the stalled ones are closed
//! after their timeout; a shutdown is not held up by them.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may unwrap
mod common;
use common::{TestServer, request};

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use wharf::clock::Clock;

/// How many connections each test stalls.
const STALLED: usize = 1000;

async fn server_with(configure: impl FnOnce(&mut wharf::config::Config)) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::quiet_config_in(dir.path());
    configure(&mut config);
    TestServer::start_in(dir, config, Clock::System).await
}

/// `count` connections, each having sent `bytes` and nothing more.
async fn stalled(addr: SocketAddr, count: usize, bytes: &[u8]) -> Vec<TcpStream> {
    let mut connections = Vec::with_capacity(count);
    for _ in 0..count {
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        tcp.write_all(bytes).await.unwrap();
        connections.push(tcp);
    }
    connections
}

/// Reads until the server closes the connection (EOF or reset); returns what it sent.
async fn until_closed(mut tcp: TcpStream) -> Vec<u8> {
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        match tcp.read(&mut buffer).await {
            Ok(0) | Err(_) => return received,
            Ok(n) => received.extend_from_slice(&buffer[..n]),
        }
    }
}

/// Every connection is closed by the server within `within`.
async fn all_closed(connections: Vec<TcpStream>, within: Duration) -> Vec<Vec<u8>> {
    let reads = connections
        .into_iter()
        .map(|tcp| tokio::spawn(until_closed(tcp)));
    let all = futures_util::future::join_all(reads);
    tokio::time::timeout(within, all)
        .await
        .expect("stalled connections were not closed")
        .into_iter()
        .map(Result::unwrap)
        .collect()
}

/// A fresh client is served promptly: `/healthz` and an enqueue each answer within 100 ms.
async fn fresh_client_is_served(server: &TestServer) {
    let started = Instant::now();
    assert_eq!(request(server.addr, "GET", "/healthz", None).await.0, 200);
    let health = started.elapsed();
    let started = Instant::now();
    let (status, reply) = request(
        server.addr,
        "POST",
        "/v1/queues/q/jobs",
        Some(r#"{"payload":1}"#),
    )
    .await;
    let enqueue = started.elapsed();
    assert_eq!(status, 201, "{reply}");
    assert!(
        health < Duration::from_millis(100) && enqueue < Duration::from_millis(100),
        "healthz took {health:?}, an enqueue {enqueue:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_stalled_mid_head_are_closed_and_others_are_served() {
    let server = server_with(|c| c.header_read_timeout_ms = 1_000).await;
    let connections = stalled(
        server.addr,
        STALLED,
        b"POST /v1/queues/q/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\n",
    )
    .await;
    fresh_client_is_served(&server).await;
    let started = Instant::now();
    let replies = all_closed(connections, Duration::from_secs(20)).await;
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "closed after {:?}",
        started.elapsed()
    );
    assert!(
        replies
            .iter()
            .all(|r| !String::from_utf8_lossy(r).contains(" 201 ")),
        "a half-sent request was served"
    );
    // Still serving after all that.
    fresh_client_is_served(&server).await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_keep_alive_connections_are_closed_after_the_timeout() {
    let server = server_with(|c| c.header_read_timeout_ms = 1_000).await;
    let request = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    let mut connections = stalled(server.addr, STALLED, request).await;
    // Each got its reply and is kept alive.
    for tcp in &mut connections {
        let mut buffer = [0u8; 512];
        let n = tcp.read(&mut buffer).await.unwrap();
        assert!(buffer[..n].starts_with(b"HTTP/1.1 200"));
    }
    fresh_client_is_served(&server).await;
    let after = all_closed(connections, Duration::from_secs(20)).await;
    assert!(after.iter().all(Vec::is_empty), "nothing more was sent");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_stops_coming_is_408_and_changes_nothing() {
    let server = server_with(|c| c.body_read_timeout_ms = 300).await;
    let bodies: [&[u8]; 2] = [
        // Content-Length never reached.
        b"POST /v1/queues/q/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n{\"payload\":",
        // A chunked body that stops halfway.
        b"POST /v1/queues/q/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\nb\r\n{\"payload\":\r\n",
    ];
    for body in bodies {
        let connection = stalled(server.addr, 1, body).await;
        let reply = all_closed(connection, Duration::from_secs(10))
            .await
            .remove(0);
        let reply = String::from_utf8_lossy(&reply).into_owned();
        assert!(reply.starts_with("HTTP/1.1 408"), "{reply}");
        let json = reply.split("\r\n\r\n").nth(1).unwrap();
        let json: Value = serde_json::from_str(json).unwrap();
        assert_eq!(json["error"]["code"], "request_timeout", "{json}");
    }
    let (_, queues) = server.get("/v1/queues").await;
    assert_eq!(queues["queues"].as_array().unwrap().len(), 0, "{queues}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beyond_max_connections_a_client_waits_for_a_free_one() {
    let server = server_with(|c| c.max_connections = 2).await;
    let mut connections = stalled(server.addr, 2, b"GET /healthz HTTP/1.1\r\n").await;
    let addr = server.addr;
    let mut third = tokio::spawn(async move { request(addr, "GET", "/healthz", None).await });
    // Both connections are taken (for the 30 s header timeout): the third waits.
    assert!(
        tokio::time::timeout(Duration::from_millis(300), &mut third)
            .await
            .is_err(),
        "served beyond max_connections"
    );
    // One closes: the third is served.
    drop(connections.pop());
    let (status, _) = tokio::time::timeout(Duration::from_secs(10), third)
        .await
        .expect("not served once a connection was free")
        .unwrap();
    assert_eq!(status, 200);
    drop(connections);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_connection_does_not_hold_a_shutdown() {
    // Defaults: a 30 s header timeout, and a grace of 10 s.
    let server = server_with(|c| c.shutdown_grace_ms = 10_000).await;
    let connections = stalled(server.addr, 10, b"GET /healthz HTTP/1.1\r\nHost").await;
    let started = Instant::now();
    server.shutdown().await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the shutdown waited {:?} for stalled connections",
        started.elapsed()
    );
    all_closed(connections, Duration::from_secs(5)).await;
}
