//! A real `wharf serve` child process, for tests that kill it.
#![allow(dead_code)] // not every test uses every helper

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};

/// A `wharf serve` child that is killed when dropped, so a test that fails before it kills the
/// child leaves no server behind. Derefs to the [`Child`] (to kill and wait on it).
pub struct WharfChild(Child);

impl std::ops::Deref for WharfChild {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for WharfChild {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for WharfChild {
    fn drop(&mut self) {
        // Already gone when the test killed it: both calls then fail harmlessly.
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `wharf serve` on an ephemeral port with `dir/wharf.toml`, and returns it with the
/// address it logged and whether it replayed journal frames at start-up.
pub async fn spawn_wharf(dir: &Path) -> (WharfChild, SocketAddr, bool) {
    let (child, addr, log) = spawn_wharf_under(dir, &[]).await;
    let replayed = log
        .lock()
        .iter()
        .any(|l| l.contains("replayed the journal"));
    (child, addr, replayed)
}

/// [`spawn_wharf`] run through `wrapper` (say, `["prlimit", "--nofile=100:100", "--"]`), with
/// every line it logs (start-up and later) collected.
pub async fn spawn_wharf_under(
    dir: &Path,
    wrapper: &[&str],
) -> (WharfChild, SocketAddr, Arc<Mutex<Vec<String>>>) {
    let exe = env!("CARGO_BIN_EXE_wharf");
    let mut command = match wrapper.split_first() {
        Some((program, args)) => {
            let mut command = Command::new(program);
            command.args(args).arg(exe);
            command
        }
        None => Command::new(exe),
    };
    let mut child = WharfChild(
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--config"])
            .arg(dir.join("wharf.toml"))
            .arg("--data-dir")
            .arg(dir.join("data"))
            .env("WHARF_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn wharf"),
    );
    let stderr = tokio::process::ChildStderr::from_std(child.stderr.take().unwrap()).unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let log: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut addr = None;
    let deadline = Instant::now() + Duration::from_secs(30);
    while let Some(line) = tokio::time::timeout_at(deadline.into(), lines.next_line())
        .await
        .expect("wharf did not start in time")
        .unwrap()
    {
        if let Some(rest) = line.split("listening on http://").nth(1) {
            addr = Some(rest.split_whitespace().next().unwrap().parse().unwrap());
        }
        let recovered = line.contains("recovered");
        log.lock().push(line);
        if recovered {
            break;
        }
    }
    // Keep draining stderr so the child never blocks on a full pipe.
    let later = log.clone();
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            later.lock().push(line);
        }
    });
    (child, addr.expect("wharf logged its address"), log)
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
