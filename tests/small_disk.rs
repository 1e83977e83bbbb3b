//! A real small volume (an 8 MiB tmpfs, mounted by the test; skipped where mounting is not
//! allowed): wharf starts on it with its default 64 MiB journal preallocation, growing the
//! journal on demand instead, and a start never leaves the volume fuller than it found it.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may unwrap
mod common;
use common::TestServer;

use std::path::{Path, PathBuf};
use std::process::Command;

use wharf::clock::Clock;

/// A tmpfs of `size` mounted on a temp dir; unmounted when dropped.
struct SmallVolume {
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl SmallVolume {
    fn mount(size: &str) -> Option<SmallVolume> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_owned();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&path)
            .status();
        if !mounted.is_ok_and(|status| status.success()) {
            eprintln!("skipped: cannot mount a tmpfs here (needs root)");
            return None;
        }
        Some(SmallVolume { path, _dir: dir })
    }

    fn used_bytes(&self) -> u64 {
        fn walk(path: &Path) -> u64 {
            std::fs::read_dir(path)
                .unwrap()
                .map(|entry| {
                    let entry = entry.unwrap();
                    let meta = entry.metadata().unwrap();
                    if meta.is_dir() {
                        walk(&entry.path())
                    } else {
                        meta.len()
                    }
                })
                .sum()
        }
        walk(&self.path)
    }
}

impl Drop for SmallVolume {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wharf_starts_on_a_volume_smaller_than_its_journal_preallocation() {
    let Some(volume) = SmallVolume::mount("8m") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::test_config(&volume.path.join("data"));
    assert_eq!(config.journal_preallocate_mb, 64, "the default");
    config.durability = wharf::config::Durability::Sync;
    let server = TestServer::start_in(dir, config, Clock::System).await;
    // The preallocation was given back, not left half-written.
    assert!(
        volume.used_bytes() < 1 << 20,
        "{} bytes used after the start",
        volume.used_bytes()
    );
    let id = server
        .enqueue("q", r#"{"payload":"on a small disk"}"#)
        .await;
    let config = common::test_config(&volume.path.join("data"));
    let server = server.restart_with(0, config).await;
    assert_eq!(server.state_of(&id).await, "ready");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_volume_answers_507_lets_consumers_drain_and_takes_writes_once_space_is_freed() {
    let Some(volume) = SmallVolume::mount("8m") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::test_config(&volume.path.join("data"));
    config.durability = wharf::config::Durability::Sync;
    config.journal_preallocate_mb = 0;
    let server = TestServer::start_in(dir, config, Clock::System).await;
    // The default floor on an 8 MiB volume: an eighth of it.
    let (status, ready) = server.get("/readyz").await;
    assert_eq!(
        (status, &ready["disk"]["floor_bytes"]),
        (200, &(1 << 20).into())
    );
    assert_eq!(ready["disk"]["low"], false);
    // Another process fills most of the volume.
    let filler = volume.path.join("filler");
    std::fs::write(&filler, vec![1u8; 6 << 20]).unwrap();

    let payload = format!(r#"{{"payload":"{}"}}"#, "x".repeat(32 << 10));
    let mut enqueued = 0;
    let refused = loop {
        assert!(enqueued < 200, "the floor never refused an enqueue");
        let reply = server.post("/v1/queues/q/jobs", &payload).await;
        if reply.0 != 201 {
            break reply;
        }
        enqueued += 1;
    };
    common::assert_error(&refused, 507, "insufficient_storage");
    // The reply reports the volume as it is now: the floor, and less than the 2 MiB the filler
    // left. (Available may still be above the floor: the journal a checkpoint has yet to write
    // counts against it too, so how far above depends on when the last checkpoint ran.)
    let disk = &refused.1["error"]["disk"];
    assert_eq!(disk["floor_bytes"], 1 << 20, "{disk}");
    assert!(
        disk["available_bytes"].as_u64().unwrap() < 2 << 20,
        "{disk}"
    );
    let (status, ready) = server.get("/readyz").await;
    assert_eq!(
        (status, &ready["disk"]["low"]),
        (200, &true.into()),
        "{ready}"
    );
    let (_, metrics) = server.get("/metrics").await;
    assert!(metrics.as_str().unwrap().contains("\nwharf_disk_low 1\n"));

    // Nothing changed, and consumers still drain.
    let (_, queue) = server.get("/v1/queues/q").await;
    assert_eq!(queue["counts"]["ready"], enqueued);
    let deliveries = server.poll("q", 2).await;
    assert_eq!(deliveries.len(), 2);
    for delivery in &deliveries {
        let path = format!("/v1/jobs/{}/ack", delivery["id"].as_str().unwrap());
        let body = format!(r#"{{"lease":"{}"}}"#, delivery["lease"].as_str().unwrap());
        assert_eq!(server.post(&path, &body).await.0, 200);
    }

    // The other process's file goes: the next enqueue is accepted, without a restart.
    std::fs::remove_file(&filler).unwrap();
    let (status, body) = server.post("/v1/queues/q/jobs", &payload).await;
    assert_eq!(status, 201, "{body}");
    let (_, ready) = server.get("/readyz").await;
    assert_eq!(ready["disk"]["low"], false);
    server.shutdown().await;
}
