//! A real `wharf serve` child process, for tests that kill it.
#![allow(dead_code)] // not every test uses every helper

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};

/// Starts `wharf serve` on an ephemeral port with `dir/wharf.toml`, and returns it with the
/// address it logged and whether it replayed journal frames at start-up.
pub async fn spawn_wharf(dir: &Path) -> (Child, SocketAddr, bool) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_wharf"))
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(dir.join("wharf.toml"))
        .arg("--data-dir")
        .arg(dir.join("data"))
        .env("WHARF_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn wharf");
    let stderr = tokio::process::ChildStderr::from_std(child.stderr.take().unwrap()).unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let mut addr = None;
    let mut replayed = false;
    let deadline = Instant::now() + Duration::from_secs(30);
    while let Some(line) = tokio::time::timeout_at(deadline.into(), lines.next_line())
        .await
        .expect("wharf did not start in time")
        .unwrap()
    {
        if let Some(rest) = line.split("listening on http://").nth(1) {
            addr = Some(rest.split_whitespace().next().unwrap().parse().unwrap());
        }
        replayed |= line.contains("replayed the journal");
        if line.contains("recovered") {
            break;
        }
    }
    // Keep draining stderr so the child never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, addr.expect("wharf logged its address"), replayed)
}

/// A request that reports a dead server as `None` instead of panicking.
pub async fn try_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<String>,
) -> Option<(u16, Value)> {
    super::try_request_bytes(addr, method, path, body.map(String::into_bytes), &[])
        .await
        .ok()
}
