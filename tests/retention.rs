//! Retention: succeeded and cancelled jobs stay readable for the queue's `retention_ms`, dead
//! jobs for `dead_retention_ms`; then the sweeper purges them in bounded batches.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may unwrap

mod common;
use common::TestServer;

async fn ack_one(server: &TestServer, queue: &str) -> String {
    let job = &server.poll(queue, 1).await[0];
    let id = job["id"].as_str().unwrap().to_owned();
    let (status, _) = server
        .post(
            &format!("/v1/jobs/{id}/ack"),
            &format!(r#"{{"lease":"{}"}}"#, job["lease"].as_str().unwrap()),
        )
        .await;
    assert_eq!(status, 200);
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finished_jobs_are_readable_until_their_retention_ends() {
    let server = TestServer::start().await;
    server
        .patch("/v1/queues/q", r#"{"retention_ms":1000}"#)
        .await;
    server.enqueue("q", r#"{"payload":1}"#).await;
    let succeeded = ack_one(&server, "q").await;
    let cancelled = server.enqueue("q", r#"{"payload":2}"#).await;
    assert_eq!(server.delete(&format!("/v1/jobs/{cancelled}")).await.0, 200);

    server.advance(999).await;
    assert_eq!(server.purged().0, 0);
    assert_eq!(server.state_of(&succeeded).await, "succeeded");
    server.advance(1).await;
    assert_eq!(server.purged().0, 2);
    assert_eq!(server.get(&format!("/v1/jobs/{succeeded}")).await.0, 404);
    assert_eq!(server.get(&format!("/v1/jobs/{cancelled}")).await.0, 404);
    let (_, queue) = server.get("/v1/queues/q").await;
    assert_eq!(
        (
            queue["counts"]["succeeded"].as_u64(),
            queue["counts"]["cancelled"].as_u64()
        ),
        (Some(0), Some(0))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_jobs_keep_their_own_retention_and_a_replay_saves_them() {
    let server = TestServer::start().await;
    server
        .patch(
            "/v1/queues/q",
            r#"{"retention_ms":10,"dead_retention_ms":5000,"max_attempts":1}"#,
        )
        .await;
    let kept = server.enqueue("q", r#"{"payload":"kept"}"#).await;
    let purged = server.enqueue("q", r#"{"payload":"purged"}"#).await;
    for job in server.poll("q", 2).await {
        let (status, _) = server
            .post(
                &format!("/v1/jobs/{}/nack", job["id"].as_str().unwrap()),
                &format!(r#"{{"lease":"{}"}}"#, job["lease"].as_str().unwrap()),
            )
            .await;
        assert_eq!(status, 200);
    }
    assert_eq!(server.state_of(&kept).await, "dead");
    server.advance(4_000).await;
    assert_eq!(
        server.purged().0,
        0,
        "dead jobs outlive the finished-job retention"
    );
    let (status, _) = server
        .post("/v1/queues/q/replay", &format!(r#"{{"ids":["{kept}"]}}"#))
        .await;
    assert_eq!(status, 200);
    server.advance(1_000).await;
    assert_eq!(server.purged().0, 1);
    assert_eq!(server.get(&format!("/v1/jobs/{purged}")).await.0, 404);
    assert_eq!(
        server.state_of(&kept).await,
        "ready",
        "the replayed job was not purged"
    );
    let (_, queue) = server.get("/v1/queues/q").await;
    assert_eq!(queue["counts"]["dead"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_longer_retention_postpones_the_purge_and_large_purges_run_in_batches() {
    let server = TestServer::start().await;
    server
        .patch("/v1/queues/q", r#"{"retention_ms":100}"#)
        .await;
    let jobs: Vec<String> = (0..600).map(|n| format!(r#"{{"payload":{n}}}"#)).collect();
    let (status, _) = server
        .post(
            "/v1/queues/q/jobs",
            &format!(r#"{{"jobs":[{}]}}"#, jobs.join(",")),
        )
        .await;
    assert_eq!(status, 201);
    for _ in 0..6 {
        let batch = server.poll("q", 100).await;
        let acks: Vec<String> = batch
            .iter()
            .map(|j| {
                format!(
                    r#"{{"id":"{}","lease":"{}"}}"#,
                    j["id"].as_str().unwrap(),
                    j["lease"].as_str().unwrap()
                )
            })
            .collect();
        assert_eq!(
            server
                .post("/v1/ack", &format!(r#"{{"acks":[{}]}}"#, acks.join(",")))
                .await
                .0,
            200
        );
    }
    server
        .patch("/v1/queues/q", r#"{"retention_ms":1000}"#)
        .await;
    server.advance(100).await;
    assert_eq!(
        server.purged().0,
        0,
        "retention was extended after the jobs finished"
    );
    server.advance(900).await;
    assert_eq!(
        server.purged().0,
        600,
        "more than one batch (256) in one sweep"
    );
    let (_, queue) = server.get("/v1/queues/q").await;
    assert_eq!(queue["counts"]["succeeded"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_survives_a_restart() {
    let server = TestServer::start().await;
    server
        .patch("/v1/queues/q", r#"{"retention_ms":1000}"#)
        .await;
    server.enqueue("q", r#"{"payload":1}"#).await;
    let id = ack_one(&server, "q").await;
    let server = server.restart().await;
    server.advance(1000).await;
    assert_eq!(server.purged().0, 1, "counted by the new run");
    assert_eq!(server.get(&format!("/v1/jobs/{id}")).await.0, 404);
}

/// The sweeper must wake for a retention that ends before its next look (it once slept a full
/// minute when its index had been empty).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sweeper_wakes_for_a_short_retention() {
    let server = TestServer::start().await;
    server.patch("/v1/queues/q", r#"{"retention_ms":50}"#).await;
    server.enqueue("q", r#"{"payload":1}"#).await;
    let id = ack_one(&server, "q").await;
    server.advance(50).await;
    assert_eq!(server.get(&format!("/v1/jobs/{id}")).await.0, 404);
}

/// An idle broker holding finished jobs sleeps until the first retention ends: one look when it
/// learns of the expiry, none while nothing is due, and one sweep (a look that purges, then a
/// look to find the next) when it is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_sweeper_sleeps_until_the_next_retention_ends() {
    let server = TestServer::start().await;
    server
        .patch("/v1/queues/q", r#"{"retention_ms":3600000}"#)
        .await;
    for n in 0..3 {
        server.enqueue("q", &format!(r#"{{"payload":{n}}}"#)).await;
        ack_one(&server, "q").await;
    }
    server.advance(0).await;
    let idle = server.sweeper_looks();
    // Requests that index no expiry, and time passing short of it, do not wake it.
    for _ in 0..20 {
        assert_eq!(server.get("/v1/queues/q").await.0, 200);
    }
    server.advance(59_000).await;
    server.advance(3_000_000).await;
    assert_eq!(
        server.sweeper_looks(),
        idle,
        "the idle sweeper looked again"
    );
    assert_eq!(server.purged().0, 0);
    // The retention ends: one look purges all three, one more finds nothing left.
    server.advance(3_600_000 - 3_059_000).await;
    assert_eq!(server.purged().0, 3);
    assert_eq!(server.sweeper_looks(), idle + 2);
}

/// On the system clock the sweeper purges by itself once a retention ends in real time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_the_system_clock_the_sweeper_purges_when_the_retention_ends() {
    let dir = tempfile::tempdir().unwrap();
    let config = common::test_config(dir.path());
    let clock = wharf::clock::Clock::System;
    let server = TestServer::start_in(dir, config, clock.clone()).await;
    server
        .patch("/v1/queues/q", r#"{"retention_ms":100}"#)
        .await;
    server.enqueue("q", r#"{"payload":1}"#).await;
    let id = ack_one(&server, "q").await;
    let (_, job) = server.get(&format!("/v1/jobs/{id}")).await;
    let finished = common::ms(job["finished_at"].as_str().unwrap());
    // Real time passing is what this test is about: wait for the retention's end, then for the
    // sweeper to go back to sleep.
    clock.sleep_until(Some(finished + 100)).await;
    common::settle(server.broker()).await;
    assert_eq!(server.get(&format!("/v1/jobs/{id}")).await.0, 404);
}
