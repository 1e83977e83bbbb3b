//! Crash consistency: a real `wharf serve` child is killed with SIGKILL under concurrent load.
//! After a restart, every job whose enqueue got 201 is there exactly once, and no job whose ack
//! got 200 is ever delivered again. Run twice: killed before the first checkpoint (everything
//! comes back from the journal), and with a checkpoint every few milliseconds (the kill lands
//! among checkpoints and journal rewinds).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may unwrap

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::child::{spawn_wharf, try_request};
use common::request;
use parking_lot::Mutex;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_before_any_checkpoint_loses_no_acknowledged_write() {
    // The kill comes well within the first minute: only the journal holds the writes.
    let replayed = sigkill_under_load("checkpoint_interval_ms = 60000").await;
    assert!(replayed, "the restart did not replay the journal");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_among_checkpoints_loses_no_acknowledged_write() {
    sigkill_under_load("checkpoint_interval_ms = 5").await;
}

/// Runs the scenario with `config` and returns whether the restart replayed the journal.
async fn sigkill_under_load(config: &str) -> bool {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("wharf.toml"), config).unwrap();
    let (mut child, addr, _) = spawn_wharf(dir.path()).await;
    // Short leases and tiny backoff so jobs leased at the kill come back quickly after restart.
    let (status, body) = request(
        addr,
        "PATCH",
        "/v1/queues/crash",
        Some(r#"{"lease_ms":300,"backoff":{"base_ms":1,"cap_ms":10}}"#),
    )
    .await;
    assert_eq!(status, 200, "{body}");

    let enqueued: Arc<Mutex<HashMap<String, String>>> = Arc::default(); // id -> payload tag
    let acked: Arc<Mutex<HashSet<String>>> = Arc::default();
    // Acks sent; the kill may cut one off after it is durable but before its reply arrives.
    let ack_sent: Arc<Mutex<HashSet<String>>> = Arc::default();
    let progress = Arc::new(tokio::sync::Notify::new());
    // A bound, not a wait: the kill comes as soon as the load has got going (within a second
    // on an idle machine). A loaded CI machine checkpointing every 5 ms took longer than 1.5 s.
    let stop_at = Instant::now() + Duration::from_secs(10);
    let mut tasks = Vec::new();
    for producer in 0..4 {
        let enqueued = enqueued.clone();
        let progress = progress.clone();
        tasks.push(tokio::spawn(async move {
            for n in 0..5_000 {
                if Instant::now() > stop_at {
                    break;
                }
                let tag = format!("{producer}-{n}");
                let body =
                    format!(r#"{{"jobs":[{{"payload":"{tag}-a"}},{{"payload":"{tag}-b"}}]}}"#);
                let Some((201, reply)) =
                    try_request(addr, "POST", "/v1/queues/crash/jobs", Some(body)).await
                else {
                    break;
                };
                for (job, suffix) in reply["jobs"].as_array().unwrap().iter().zip(["a", "b"]) {
                    enqueued.lock().insert(
                        job["id"].as_str().unwrap().to_owned(),
                        format!("{tag}-{suffix}"),
                    );
                }
                progress.notify_waiters();
            }
        }));
    }
    let consumer_acked = acked.clone();
    let consumer_sent = ack_sent.clone();
    let consumer_progress = progress.clone();
    tasks.push(tokio::spawn(async move {
        while Instant::now() <= stop_at {
            let Some((200, reply)) = try_request(
                addr,
                "POST",
                "/v1/queues/crash/poll",
                Some(r#"{"max":16}"#.into()),
            )
            .await
            else {
                break;
            };
            for job in reply["jobs"].as_array().unwrap() {
                let id = job["id"].as_str().unwrap();
                let body = format!(r#"{{"lease":"{}"}}"#, job["lease"].as_str().unwrap());
                consumer_sent.lock().insert(id.to_owned());
                match try_request(addr, "POST", &format!("/v1/jobs/{id}/ack"), Some(body)).await {
                    Some((200, _)) => {
                        consumer_acked.lock().insert(id.to_owned());
                        consumer_progress.notify_waiters();
                    }
                    Some(_) => {}
                    None => return,
                }
            }
        }
    }));

    // Kill mid-load: once enough work has been acknowledged, without warning.
    loop {
        let notified = progress.notified();
        if enqueued.lock().len() >= 400 && acked.lock().len() >= 50 {
            break;
        }
        assert!(Instant::now() < stop_at, "load did not get going");
        // The timeout only guards against a notification racing past before we wait.
        let _ = tokio::time::timeout(Duration::from_millis(50), notified).await;
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    for task in tasks {
        task.await.unwrap();
    }
    let enqueued = enqueued.lock().clone();
    let acked = acked.lock().clone();
    let ack_sent = ack_sent.lock().clone();

    let (mut child, addr, replayed) = spawn_wharf(dir.path()).await;
    for id in &acked {
        let (status, job) = request(addr, "GET", &format!("/v1/jobs/{id}"), None).await;
        assert_eq!(
            (status, job["state"].as_str()),
            (200, Some("succeeded")),
            "acked job {id}: {job}"
        );
    }
    for (id, tag) in &enqueued {
        let (status, job) = request(addr, "GET", &format!("/v1/jobs/{id}"), None).await;
        assert_eq!(status, 200, "enqueued job {id} lost: {job}");
        assert_eq!(job["payload"], Value::String(tag.clone()));
    }

    // Drain everything still pending and check nothing appears twice.
    let mut delivered: HashMap<String, String> = HashMap::new(); // tag -> id
    let drain_deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, queue) = request(addr, "GET", "/v1/queues/crash", None).await;
        let live: u64 = ["scheduled", "ready", "leased"]
            .iter()
            .map(|s| queue["counts"][s].as_u64().unwrap())
            .sum();
        if live == 0 {
            break;
        }
        assert!(
            Instant::now() < drain_deadline,
            "queue did not drain: {queue}"
        );
        let (_, reply) = request(
            addr,
            "POST",
            "/v1/queues/crash/poll",
            Some(r#"{"max":100,"wait_ms":500,"lease_ms":60000}"#),
        )
        .await;
        let mut acks = Vec::new();
        for job in reply["jobs"].as_array().unwrap() {
            let id = job["id"].as_str().unwrap().to_owned();
            assert!(
                !acked.contains(&id),
                "job {id} was acked before the crash but delivered again"
            );
            let tag = job["payload"].as_str().unwrap().to_owned();
            if let Some(other) = delivered.insert(tag.clone(), id.clone()) {
                assert_eq!(other, id, "payload {tag} stored twice");
            }
            acks.push(serde_json::json!({"id": id, "lease": job["lease"]}));
        }
        let body = serde_json::json!({ "acks": acks }).to_string();
        let (status, reply) = request(addr, "POST", "/v1/ack", Some(&body)).await;
        assert_eq!(status, 200, "{reply}");
        assert!(
            reply["acks"]
                .as_array()
                .unwrap()
                .iter()
                .all(|a| a["ok"] == true),
            "{reply}"
        );
    }
    for (id, tag) in &enqueued {
        if acked.contains(id) || delivered.get(tag) == Some(id) {
            continue;
        }
        // Its ack was cut off by the kill after it was durable: succeeded, reply lost.
        let (_, job) = request(addr, "GET", &format!("/v1/jobs/{id}"), None).await;
        assert!(
            ack_sent.contains(id) && job["state"] == "succeeded",
            "job {id} ({tag}) neither acked before the crash nor delivered after: {job}"
        );
    }
    child.kill().unwrap();
    child.wait().unwrap();
    replayed
}
