//! Backpressure: a queue's `max_depth` (ready + scheduled + leased, and jobs whose enqueue is
//! still being written) refuses the enqueue that would pass it with 429 `queue_full`, all or
//! nothing, changing nothing; consumers draining it make room; the setting survives a restart;
//! concurrent enqueues never overshoot it; schedule fires are not refused.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may unwrap
mod common;
use common::{T0, TestServer, assert_error};

use serde_json::{Value, json};

async fn counts(server: &TestServer, queue: &str) -> Value {
    let (status, body) = server.get(&format!("/v1/queues/{queue}")).await;
    assert_eq!(status, 200, "{body}");
    body["counts"].clone()
}

async fn head(server: &TestServer) -> Value {
    server.get("/v1/events?limit=1").await.1["head"].clone()
}

async fn set_max_depth(server: &TestServer, queue: &str, depth: Value) {
    let body = json!({ "max_depth": depth }).to_string();
    let (status, reply) = server.patch(&format!("/v1/queues/{queue}"), &body).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["max_depth"], depth);
}

#[tokio::test]
async fn an_enqueue_past_max_depth_is_refused_whole_and_draining_makes_room() {
    let server = TestServer::start().await;
    set_max_depth(&server, "q", json!(3)).await;
    server.enqueue("q", r#"{"payload":1}"#).await;
    // A delayed job counts too.
    server
        .enqueue("q", r#"{"payload":2,"delay_ms":60000}"#)
        .await;
    let (before, events) = (counts(&server, "q").await, head(&server).await);
    // A batch of two with room for one: nothing of it is taken.
    let batch = r#"{"jobs":[{"payload":3},{"payload":4}]}"#;
    let reply = server.post("/v1/queues/q/jobs", batch).await;
    assert_error(&reply, 429, "queue_full");
    assert_eq!(
        reply.1["error"]["queue"],
        json!({"max_depth": 3, "depth": 2})
    );
    assert_eq!(
        (counts(&server, "q").await, head(&server).await),
        (before, events)
    );
    // One fits.
    server.enqueue("q", r#"{"payload":3}"#).await;
    let reply = server.post("/v1/queues/q/jobs", r#"{"payload":4}"#).await;
    assert_error(&reply, 429, "queue_full");
    // A leased job still counts; an acked one does not.
    let job = server.poll("q", 1).await.remove(0);
    assert_error(
        &server.post("/v1/queues/q/jobs", r#"{"payload":4}"#).await,
        429,
        "queue_full",
    );
    let ack = json!({"lease": job["lease"]}).to_string();
    let id = job["id"].as_str().unwrap();
    assert_eq!(
        server.post(&format!("/v1/jobs/{id}/ack"), &ack).await.0,
        200
    );
    server.enqueue("q", r#"{"payload":4}"#).await;
    // Kept across a restart; null lifts it.
    let server = server.restart().await;
    assert_eq!(server.get("/v1/queues/q").await.1["max_depth"], 3);
    assert_error(
        &server.post("/v1/queues/q/jobs", r#"{"payload":5}"#).await,
        429,
        "queue_full",
    );
    set_max_depth(&server, "q", Value::Null).await;
    server.enqueue("q", r#"{"payload":5}"#).await;
    // Other queues are not limited by it.
    server.enqueue("other", r#"{"payload":1}"#).await;
    server.shutdown().await;
}

#[tokio::test]
async fn concurrent_enqueues_never_overshoot_it() {
    let server = TestServer::start().await;
    set_max_depth(&server, "q", json!(5)).await;
    let addr = server.addr;
    let attempts: Vec<_> = (0..24)
        .map(|i| {
            tokio::spawn(async move {
                let body = format!(r#"{{"payload":{i}}}"#);
                common::request(addr, "POST", "/v1/queues/q/jobs", Some(&body)).await
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for attempt in attempts {
        statuses.push(attempt.await.unwrap().0);
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        5,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 201 || *s == 429),
        "{statuses:?}"
    );
    assert_eq!(counts(&server, "q").await["ready"], 5);
    // Nothing stays counted once placed: drained, it takes five again.
    for job in server.poll("q", 5).await {
        let ack = json!({"lease": job["lease"]}).to_string();
        let id = job["id"].as_str().unwrap();
        assert_eq!(
            server.post(&format!("/v1/jobs/{id}/ack"), &ack).await.0,
            200
        );
    }
    for i in 0..5 {
        server.enqueue("q", &format!(r#"{{"payload":{i}}}"#)).await;
    }
    assert_error(
        &server.post("/v1/queues/q/jobs", r#"{"payload":6}"#).await,
        429,
        "queue_full",
    );
    server.shutdown().await;
}

#[tokio::test]
async fn an_ack_whose_follow_up_would_overfill_a_queue_is_refused_and_changes_nothing() {
    let server = TestServer::start().await;
    set_max_depth(&server, "next", json!(1)).await;
    server.enqueue("next", r#"{"payload":0}"#).await;
    let id = server.enqueue("q", r#"{"payload":1}"#).await;
    let job = server.poll("q", 1).await.remove(0);
    let ack = json!({"lease": job["lease"], "enqueue": [{"queue": "next", "payload": 2}]});
    let reply = server
        .post(&format!("/v1/jobs/{id}/ack"), &ack.to_string())
        .await;
    assert_error(&reply, 429, "queue_full");
    assert_eq!(server.state_of(&id).await, "leased");
    // In a batch ack it is that item's outcome.
    let batch = json!({"acks": [{"id": id, "lease": job["lease"], "enqueue": [{"queue": "next", "payload": 2}]}]});
    let (status, reply) = server.post("/v1/ack", &batch.to_string()).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["acks"][0]["status"], 429, "{reply}");
    assert_eq!(server.state_of(&id).await, "leased");
    assert_eq!(counts(&server, "next").await["ready"], 1);
    server.shutdown().await;
}

#[tokio::test]
async fn a_schedule_still_fires_into_a_full_queue() {
    let server = TestServer::start().await;
    set_max_depth(&server, "reports", json!(1)).await;
    server.enqueue("reports", r#"{"payload":0}"#).await;
    // Every minute, from T0 (2026-01-01T00:00:00Z).
    let schedule = json!({"cron": "* * * * *", "queue": "reports", "job": {"payload": 1}});
    let reply = server
        .request_put("/v1/schedules/minutely", &schedule.to_string())
        .await;
    assert_eq!(reply.0, 201, "{}", reply.1);
    // A manual trigger is a client's request: refused like an enqueue.
    let reply = server.post("/v1/schedules/minutely/trigger", "").await;
    assert_error(&reply, 429, "queue_full");
    // A fire is not: nobody would retry it.
    server.advance(60_000).await;
    assert_eq!(counts(&server, "reports").await["ready"], 2);
    let (_, schedule) = server.get("/v1/schedules/minutely").await;
    assert_eq!(schedule["last_fire_at"], wharf::clock::rfc3339(T0 + 60_000));
    server.shutdown().await;
}

#[tokio::test]
async fn a_retried_enqueue_gets_its_original_job_back_from_a_full_queue() {
    let server = TestServer::start().await;
    set_max_depth(&server, "q", json!(2)).await;
    let first = server
        .post_with(
            "/v1/queues/q/jobs",
            r#"{"payload":1}"#,
            &[("idempotency-key", "k-1")],
        )
        .await;
    assert_eq!(first.0, 201, "{}", first.1);
    server.enqueue("q", r#"{"payload":2}"#).await;
    // The queue is full; the retry of the first enqueue creates nothing and says so.
    let retry = server
        .post_with(
            "/v1/queues/q/jobs",
            r#"{"payload":1}"#,
            &[("idempotency-key", "k-1")],
        )
        .await;
    assert_eq!(retry.0, 200, "{}", retry.1);
    assert_eq!(retry.1["id"], first.1["id"]);
    assert_eq!(retry.1["duplicate"], true);
    // A batch of known keys and repeats of one new key is held to the jobs it really adds.
    let batch = json!({"jobs": [
        {"payload": 1, "idempotency_key": "k-1"},
        {"payload": 3, "idempotency_key": "k-2"},
        {"payload": 3, "idempotency_key": "k-2"},
    ]});
    let reply = server.post("/v1/queues/q/jobs", &batch.to_string()).await;
    assert_error(&reply, 429, "queue_full");
    let (_, job) = server.get("/v1/queues/q").await;
    assert_eq!(job["counts"]["ready"], 2, "{job}");
    // With room for one, the same batch is taken: one job, two duplicates.
    set_max_depth(&server, "q", json!(3)).await;
    let reply = server.post("/v1/queues/q/jobs", &batch.to_string()).await;
    assert_eq!(reply.0, 201, "{}", reply.1);
    let dups: Vec<bool> = reply.1["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["duplicate"].as_bool().unwrap())
        .collect();
    assert_eq!(dups, [true, false, true]);
    assert_eq!(counts(&server, "q").await["ready"], 3);
    // A new key still counts: the queue is full again.
    let reply = server
        .post_with(
            "/v1/queues/q/jobs",
            r#"{"payload":4}"#,
            &[("idempotency-key", "k-3")],
        )
        .await;
    assert_error(&reply, 429, "queue_full");
}
