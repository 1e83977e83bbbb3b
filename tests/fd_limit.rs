//! Under a low file-descriptor limit (`prlimit --nofile`), more stalled connections than the
//! limit allows: wharf lowers `max_connections` to fit (saying so in its log) instead of
//! failing accepts with "Too many open files", holds the extra clients in the listen backlog,
//! closes the stalled ones after the header timeout, and then serves a fresh client.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may unwrap
mod common;

use std::time::{Duration, Instant};

use common::child::spawn_wharf_under;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

const FD_LIMIT: u64 = 160;
const STALLED: usize = 400;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_low_fd_limit_caps_connections_and_the_server_keeps_serving() {
    if std::process::Command::new("prlimit")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipped: no prlimit (util-linux) here");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("wharf.toml"),
        "header_read_timeout_ms = 1000\n",
    )
    .unwrap();
    let nofile = format!("--nofile={FD_LIMIT}:{FD_LIMIT}");
    let (mut child, addr, log) = spawn_wharf_under(dir.path(), &["prlimit", &nofile, "--"]).await;
    assert!(
        log.lock()
            .iter()
            .any(|l| l.contains("max_connections lowered")
                && l.contains(&format!("max_connections={}", FD_LIMIT - 64))),
        "{:?}",
        log.lock()
    );

    // More half-sent requests than there are descriptors: the kernel queues the rest.
    let mut stalled = Vec::with_capacity(STALLED);
    for _ in 0..STALLED {
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        let _ = tcp
            .write_all(b"GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\n")
            .await;
        stalled.push(tcp);
    }
    let fds = std::fs::read_dir(format!("/proc/{}/fd", child.id()))
        .unwrap()
        .count();
    assert!(fds as u64 <= FD_LIMIT, "{fds} descriptors open");

    // The stalled ones are closed after the header timeout, batch after batch, and a fresh
    // client behind them is served: a health check and an enqueue.
    let started = Instant::now();
    let (status, body) = common::request(addr, "GET", "/healthz", None).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) =
        common::request(addr, "POST", "/v1/queues/q/jobs", Some(r#"{"payload":1}"#)).await;
    assert_eq!(status, 201, "{body}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    drop(stalled);
    let refused = log
        .lock()
        .iter()
        .filter(|l| l.contains("cannot accept a connection"))
        .count();
    assert_eq!(refused, 0, "accepts failed for want of descriptors");
    child.kill().unwrap();
    child.wait().unwrap();
}
