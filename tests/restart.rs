//! Restart persistence: after a clean shutdown and start, every job is in the state it had,
//! leases keep their tokens and deadlines, results and queue defaults survive, ids keep rising.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may unwrap

mod common;
use common::TestServer;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_state_survives_a_clean_restart() {
    let server = TestServer::start().await;
    let (status, _) = server
        .patch(
            "/v1/queues/q",
            r#"{"max_attempts":1,"lease_ms":5000,"backoff":{"base_ms":10,"cap_ms":20}}"#,
        )
        .await;
    assert_eq!(status, 200);

    let succeeded = server
        .enqueue("q", r#"{"payload":"s","priority":"critical"}"#)
        .await;
    let dead = server
        .enqueue("q", r#"{"payload":"d","priority":"high"}"#)
        .await;
    let leased = server
        .enqueue(
            "q",
            r#"{"payload":"l","priority":"normal","headers":{"k":"v"}}"#,
        )
        .await;
    let jobs = server.poll("q", 3).await;
    let lease_of = |id: &str| {
        jobs.iter().find(|j| j["id"] == id).unwrap()["lease"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (s, _) = server
        .post(
            &format!("/v1/jobs/{succeeded}/ack"),
            &format!(
                r#"{{"lease":"{}","result":{{"r":1}}}}"#,
                lease_of(&succeeded)
            ),
        )
        .await;
    assert_eq!(s, 200);
    let (s, _) = server
        .post(
            &format!("/v1/jobs/{dead}/nack"),
            &format!(r#"{{"lease":"{}","error":"boom"}}"#, lease_of(&dead)),
        )
        .await;
    assert_eq!(s, 200);
    let ready = server
        .enqueue("q", r#"{"payload":"r","priority":"low"}"#)
        .await;
    let scheduled = server
        .enqueue("q", r#"{"payload":"later","delay_ms":60000}"#)
        .await;
    let cancelled = server.enqueue("q", r#"{"payload":"c"}"#).await;
    assert_eq!(server.delete(&format!("/v1/jobs/{cancelled}")).await.0, 200);
    assert_eq!(server.post("/v1/queues/paused/pause", "").await.0, 200);
    server.enqueue("paused", r#"{"payload":"p"}"#).await;

    let (_, before_queues) = server.get("/v1/queues").await;
    let (_, leased_before) = server.get(&format!("/v1/jobs/{leased}")).await;

    let server = server.restart().await;

    let (_, after_queues) = server.get("/v1/queues").await;
    assert_eq!(
        after_queues, before_queues,
        "queue defaults and counts survive"
    );
    for (id, state) in [
        (&succeeded, "succeeded"),
        (&dead, "dead"),
        (&leased, "leased"),
        (&ready, "ready"),
        (&scheduled, "scheduled"),
        (&cancelled, "cancelled"),
    ] {
        assert_eq!(server.state_of(id).await, state, "job {id}");
    }
    let (_, job) = server.get(&format!("/v1/jobs/{succeeded}")).await;
    assert_eq!(job["result"], json!({"r": 1}));
    let (_, job) = server.get(&format!("/v1/jobs/{dead}")).await;
    assert_eq!(job["last_error"], "boom");
    let (_, leased_after) = server.get(&format!("/v1/jobs/{leased}")).await;
    assert_eq!(
        leased_after, leased_before,
        "a leased job keeps its deadline and everything else"
    );

    // The paused queue is still paused; the ready job is next in line.
    assert!(server.poll("paused", 1).await.is_empty());
    let next = server.poll("q", 10).await;
    assert_eq!(
        next.iter()
            .map(|j| j["id"].as_str().unwrap())
            .collect::<Vec<_>>(),
        [ready.as_str()]
    );

    // The lease from before the restart still settles the job.
    let (s, body) = server
        .post(
            &format!("/v1/jobs/{leased}/ack"),
            &format!(r#"{{"lease":"{}"}}"#, lease_of(&leased)),
        )
        .await;
    assert_eq!(s, 200, "{body}");

    // Ids are never reused.
    let newer = server.enqueue("q", r#"{"payload":"n"}"#).await;
    assert!(newer.parse::<u64>().unwrap() > cancelled.parse::<u64>().unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_lease_after_restart_is_retried() {
    let server = TestServer::start().await;
    let id = server
        .enqueue("q", r#"{"payload":1,"lease_ms":1000}"#)
        .await;
    assert_eq!(server.poll("q", 1).await.len(), 1);
    let server = server.restart().await;
    assert_eq!(
        server.state_of(&id).await,
        "leased",
        "still leased until its deadline"
    );
    server.advance(1000).await;
    assert_eq!(
        server.state_of(&id).await,
        "scheduled",
        "expired: retried after the backoff"
    );
    server.advance(1000).await;
    let again = server.poll("q", 1).await;
    assert_eq!(again[0]["attempt"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_durability_keeps_everything_over_a_clean_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::test_config(dir.path());
    config.durability = wharf::config::Durability::Async;
    config.fsync_interval_ms = 10_000; // only the shutdown flush can save these writes
    let server = TestServer::start_in(dir, config, wharf::clock::Clock::manual(common::T0)).await;
    let ids: Vec<String> = enqueue_twenty(&server).await;
    let server = server.restart().await;
    for id in ids {
        assert_eq!(server.state_of(&id).await, "ready");
    }
}

async fn enqueue_twenty(server: &TestServer) -> Vec<String> {
    let mut ids = Vec::new();
    for n in 0..20 {
        ids.push(server.enqueue("q", &format!(r#"{{"payload":{n}}}"#)).await);
    }
    ids
}
