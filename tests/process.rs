//! What the `wharf` process sets up for itself before it serves.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may unwrap
mod common;

use common::child::spawn_wharf;

/// mimalloc asks for transparent huge pages; wharf opts out at its first line (`main.rs`), or a
/// 2 MiB page backs memory touched a few KiB at a time (docs/benchmarks.md). The kernel reports
/// the opt-out as `THP_enabled: 0` in the process's status.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn the_server_opts_out_of_transparent_huge_pages() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("wharf.toml"), "").unwrap();
    let (child, _, _) = spawn_wharf(dir.path()).await;
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap();
    let Some(thp) = status
        .lines()
        .find_map(|line| line.strip_prefix("THP_enabled:"))
    else {
        eprintln!("skipped: this kernel does not report THP_enabled");
        return;
    };
    assert_eq!(thp.trim(), "0", "THP_enabled of the wharf process");
}
