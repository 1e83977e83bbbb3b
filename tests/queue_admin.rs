//! Queue administration: counts, defaults (GET/PATCH), pause/resume, purge, cancel, health and
//! metrics.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may unwrap
mod common;
use common::{TestServer, assert_error, request};

use serde_json::{Value, json};

async fn job(server: &TestServer, id: &str) -> Value {
    let (status, body) = server.get(&format!("/v1/jobs/{id}")).await;
    assert_eq!(status, 200, "{body}");
    body
}

/// Polls exactly one job; returns (id, lease).
async fn poll_one(server: &TestServer, queue: &str) -> (String, String) {
    let jobs = server.poll(queue, 1).await;
    assert_eq!(jobs.len(), 1, "nothing to deliver in {queue}");
    (
        jobs[0]["id"].as_str().unwrap().to_owned(),
        jobs[0]["lease"].as_str().unwrap().to_owned(),
    )
}

async fn ack(server: &TestServer, id: &str, lease: &str) -> (u16, Value) {
    server
        .post(
            &format!("/v1/jobs/{id}/ack"),
            &json!({"lease": lease}).to_string(),
        )
        .await
}

async fn nack_dead(server: &TestServer, id: &str, lease: &str) {
    let (status, body) = server
        .post(
            &format!("/v1/jobs/{id}/nack"),
            &json!({"lease": lease, "dead": true}).to_string(),
        )
        .await;
    assert_eq!(
        (status, body["state"].as_str()),
        (200, Some("dead")),
        "{body}"
    );
}

fn counts(
    scheduled: u64,
    ready: u64,
    leased: u64,
    succeeded: u64,
    dead: u64,
    cancelled: u64,
) -> Value {
    json!({"scheduled": scheduled, "ready": ready, "leased": leased, "succeeded": succeeded, "dead": dead, "cancelled": cancelled})
}

fn default_config(name: &str, counts: Value) -> Value {
    json!({
        "name": name,
        "tenant": "default",
        "lease_ms": 30000,
        "max_attempts": 5,
        "backoff": {"base_ms": 1000, "cap_ms": 600000, "jitter": false},
        "paused": false,
        "retention_ms": 3600000,
        "dead_retention_ms": 604800000,
        "idempotency_window_ms": 86400000,
        "max_depth": null,
        "group_max_in_flight": null,
        "group_weights": {},
        "counts": counts,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_list_counts_jobs_in_every_state() {
    let server = TestServer::start().await;
    assert_eq!(
        server.get("/v1/queues").await,
        (200, json!({"queues": [], "next_after": null}))
    );

    server.enqueue("a", r#"{"payload":"succeeds"}"#).await;
    let (id, lease) = poll_one(&server, "a").await;
    assert_eq!(ack(&server, &id, &lease).await.0, 200);
    server.enqueue("a", r#"{"payload":"dies"}"#).await;
    let (id, lease) = poll_one(&server, "a").await;
    nack_dead(&server, &id, &lease).await;
    let cancelled = server.enqueue("a", r#"{"payload":"cancelled"}"#).await;
    assert_eq!(server.delete(&format!("/v1/jobs/{cancelled}")).await.0, 200);
    server.enqueue("a", r#"{"payload":"leased"}"#).await;
    poll_one(&server, "a").await;
    server.enqueue("a", r#"{"payload":"ready 1"}"#).await;
    server.enqueue("a", r#"{"payload":"ready 2"}"#).await;
    server
        .enqueue("a", r#"{"payload":"scheduled","delay_ms":1000}"#)
        .await;
    server.enqueue("b", r#"{"payload":"other"}"#).await;

    let (status, body) = server.get("/v1/queues").await;
    assert_eq!(status, 200, "{body}");
    let a = default_config("a", counts(1, 2, 1, 1, 1, 1));
    let b = default_config("b", counts(0, 1, 0, 0, 0, 0));
    assert_eq!(body, json!({"queues": [a, b], "next_after": null}));
    // A page at a time, by name.
    assert_eq!(
        server.get("/v1/queues?limit=1").await.1,
        json!({"queues": [a], "next_after": "a"})
    );
    assert_eq!(
        server.get("/v1/queues?limit=1&after=a").await.1,
        json!({"queues": [b], "next_after": null})
    );
    for bad in ["limit=0", "limit=1001", "limit=x", "offset=1"] {
        assert_error(
            &server.get(&format!("/v1/queues?{bad}")).await,
            422,
            "invalid_value",
        );
    }
    assert_eq!(server.get("/v1/queues/a").await, (200, a));
    assert_eq!(server.get("/v1/queues/b").await, (200, b));

    // Counts follow the clock: the scheduled job becomes ready.
    server.advance(1_000).await;
    assert_eq!(
        server.get("/v1/queues/a").await.1["counts"],
        counts(0, 3, 1, 1, 1, 1)
    );
    assert_error(&server.get("/v1/queues/nope").await, 404, "queue_not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patch_changes_the_defaults_of_new_jobs_and_deliveries() {
    let server = TestServer::start().await;
    let old = server.enqueue("q", r#"{"payload":"old"}"#).await;
    assert_eq!(job(&server, &old).await["max_attempts"], 5);

    let (status, body) = server
        .patch(
            "/v1/queues/q",
            r#"{"lease_ms":5000,"max_attempts":2,"backoff":{"base_ms":200}}"#,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let expected = json!({
        "name": "q",
        "tenant": "default",
        "lease_ms": 5000,
        "max_attempts": 2,
        "backoff": {"base_ms": 200, "cap_ms": 600000, "jitter": false},
        "paused": false,
        "retention_ms": 3600000,
        "dead_retention_ms": 604800000,
        "idempotency_window_ms": 86400000,
        "max_depth": null,
        "group_max_in_flight": null,
        "group_weights": {},
        "counts": counts(0, 1, 0, 0, 0, 0),
    });
    assert_eq!(body, expected, "fields not in the patch keep their values");
    assert_eq!(server.get("/v1/queues/q").await, (200, expected));

    let new = server.enqueue("q", r#"{"payload":"new"}"#).await;
    assert_eq!(
        job(&server, &new).await["max_attempts"],
        2,
        "new jobs take the new max_attempts"
    );
    assert_eq!(
        job(&server, &old).await["max_attempts"],
        5,
        "existing jobs keep theirs"
    );

    // New deliveries take the new lease length; a failure the new backoff.
    let jobs = server.poll("q", 2).await;
    assert_eq!(jobs.len(), 2);
    for d in &jobs {
        assert_eq!(d["lease_expires_at"], "2026-01-01T00:00:05.000Z", "{d}");
    }
    server.advance(4_999).await;
    assert_eq!(server.state_of(&old).await, "leased");
    server.advance(1).await;
    let view = job(&server, &old).await;
    assert_eq!(view["state"], "scheduled", "{view}");
    assert_eq!(view["run_at"], "2026-01-01T00:00:05.200Z", "{view}");
    server.advance(200).await;
    server.poll("q", 2).await;
    server.advance(5_000).await;
    // The new job had max_attempts 2: dead after its second expiry; the old one is retried.
    assert_eq!(server.state_of(&new).await, "dead");
    assert_eq!(server.state_of(&old).await, "scheduled");

    // PATCH creates a queue with the server defaults plus the patch.
    let (status, body) = server
        .patch("/v1/queues/fresh", r#"{"max_attempts":9}"#)
        .await;
    assert_eq!(status, 200, "{body}");
    let mut expected = default_config("fresh", counts(0, 0, 0, 0, 0, 0));
    expected["max_attempts"] = json!(9);
    assert_eq!(body, expected);
    assert_eq!(server.get("/v1/queues/fresh").await, (200, expected));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_patch_is_422_and_changes_nothing() {
    let server = TestServer::start().await;
    let (status, _) = server.patch("/v1/queues/q", r#"{"lease_ms":10000}"#).await;
    assert_eq!(status, 200);
    let before = server.get("/v1/queues/q").await;
    for bad in [
        r#"{"backoff":{"base_ms":700000}}"#,
        r#"{"backoff":{"base_ms":5000,"cap_ms":1000}}"#,
        r#"{"backoff":{"cap_ms":999}}"#,
        r#"{"lease_ms":0}"#,
        r#"{"lease_ms":43200001}"#,
        r#"{"max_attempts":0}"#,
        r#"{"max_attempts":1001}"#,
        r#"{"lease_ms":5000,"max_attempts":0}"#,
        r#"{"paused":"yes"}"#,
        r#"{"lease_ms":-1}"#,
        r#"{"lease_ms":5000,"bogus":1}"#,
        r#"{"backoff":{"base_ms":10,"jiter":true}}"#,
    ] {
        let reply = server.patch("/v1/queues/q", bad).await;
        assert_error(&reply, 422, "invalid_value");
        assert_eq!(
            server.get("/v1/queues/q").await,
            before,
            "{bad} changed the queue"
        );
    }
    // An invalid patch does not create a queue either.
    assert_error(
        &server.patch("/v1/queues/new", r#"{"lease_ms":0}"#).await,
        422,
        "invalid_value",
    );
    assert_error(&server.get("/v1/queues/new").await, 404, "queue_not_found");
    // And the queue's jobs still use the unchanged defaults.
    server.enqueue("q", r#"{"payload":1}"#).await;
    assert_eq!(
        server.poll("q", 1).await[0]["lease_expires_at"],
        "2026-01-01T00:00:10.000Z"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_queue_accepts_jobs_but_delivers_none_until_resumed() {
    let server = TestServer::start().await;
    let first = server.enqueue("q", r#"{"payload":1}"#).await;
    let (status, body) = server.post("/v1/queues/q/pause", "").await;
    assert_eq!((status, &body["paused"]), (200, &json!(true)), "{body}");
    let (status, body) = server.post("/v1/queues/q/jobs", r#"{"payload":2}"#).await;
    assert_eq!(
        (status, body["state"].as_str()),
        (201, Some("ready")),
        "{body}"
    );
    let second = body["id"].as_str().unwrap().to_owned();
    assert!(
        server.poll("q", 10).await.is_empty(),
        "a paused queue delivered"
    );
    let (_, queue) = server.get("/v1/queues/q").await;
    assert_eq!(queue["paused"], true);
    assert_eq!(queue["counts"]["ready"], 2);
    assert_eq!(server.state_of(&first).await, "ready");

    let (status, body) = server.post("/v1/queues/q/resume", "").await;
    assert_eq!((status, &body["paused"]), (200, &json!(false)), "{body}");
    let jobs = server.poll("q", 10).await;
    let ids: Vec<&str> = jobs.iter().map(|j| j["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [first.as_str(), second.as_str()]);

    // PATCH {"paused": true} pauses too.
    server.enqueue("q", r#"{"payload":3}"#).await;
    assert_eq!(
        server.patch("/v1/queues/q", r#"{"paused":true}"#).await.1["paused"],
        true
    );
    assert!(server.poll("q", 10).await.is_empty());
    assert_eq!(
        server.patch("/v1/queues/q", r#"{"paused":false}"#).await.1["paused"],
        false
    );
    assert_eq!(server.poll("q", 10).await.len(), 1);

    // Pausing an unknown queue creates it, paused.
    let (status, body) = server.post("/v1/queues/later/pause", "").await;
    assert_eq!((status, &body["paused"]), (200, &json!(true)), "{body}");
    server.enqueue("later", r#"{"payload":4}"#).await;
    assert!(server.poll("later", 10).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_poll_on_a_paused_queue_is_woken_by_resume() {
    let server = TestServer::start().await;
    let id = server.enqueue("q", r#"{"payload":1}"#).await;
    assert_eq!(server.post("/v1/queues/q/pause", "").await.0, 200);
    let addr = server.addr;
    let poll = tokio::spawn(async move {
        request(
            addr,
            "POST",
            "/v1/queues/q/poll",
            Some(r#"{"wait_ms":10000}"#),
        )
        .await
    });
    // It looked at the paused queue, took nothing, and waits.
    server.polls_until(|p| p.waiting == 1).await;
    let waits = server.broker().poll_stats().borrow().waits;
    // An enqueue into the paused queue wakes the poll, which looks again and goes back to
    // waiting without a delivery.
    server.enqueue("q", r#"{"payload":2}"#).await;
    server
        .polls_until(|p| p.waits == waits + 1 && p.waiting == 1)
        .await;
    assert_eq!(server.state_of(&id).await, "ready");

    assert_eq!(server.post("/v1/queues/q/resume", "").await.0, 200);
    let (status, body) = poll.await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["jobs"][0]["id"], id.as_str(), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purge_deletes_waiting_and_dead_jobs_but_leaves_leased_and_finished_ones() {
    let server = TestServer::start().await;
    server.enqueue("q", r#"{"payload":"dead"}"#).await;
    let (dead, lease) = poll_one(&server, "q").await;
    nack_dead(&server, &dead, &lease).await;
    server.enqueue("q", r#"{"payload":"done"}"#).await;
    let (done, lease) = poll_one(&server, "q").await;
    assert_eq!(ack(&server, &done, &lease).await.0, 200);
    server.enqueue("q", r#"{"payload":"leased"}"#).await;
    let (leased, leased_lease) = poll_one(&server, "q").await;
    let ready1 = server.enqueue("q", r#"{"payload":"r1"}"#).await;
    let ready2 = server
        .enqueue("q", r#"{"payload":"r2","priority":"critical"}"#)
        .await;
    let scheduled = server
        .enqueue("q", r#"{"payload":"s","delay_ms":1000}"#)
        .await;
    let elsewhere = server.enqueue("other", r#"{"payload":"keep"}"#).await;

    let (status, body) = server.delete("/v1/queues/q/jobs").await;
    assert_eq!((status, body), (200, json!({"purged": 4})));
    for id in [&dead, &ready1, &ready2, &scheduled] {
        assert_error(
            &server.get(&format!("/v1/jobs/{id}")).await,
            404,
            "job_not_found",
        );
        assert_error(
            &server.delete(&format!("/v1/jobs/{id}")).await,
            404,
            "job_not_found",
        );
    }
    assert_eq!(
        server.get("/v1/queues/q").await.1["counts"],
        counts(0, 0, 1, 1, 0, 0)
    );
    assert_eq!(server.state_of(&done).await, "succeeded");
    assert_eq!(
        server.state_of(&elsewhere).await,
        "ready",
        "purge touched another queue"
    );
    server.advance(5_000).await;
    assert!(
        server.poll("q", 10).await.is_empty(),
        "a purged job was delivered"
    );
    let (_, listed) = server.get("/v1/queues/q/jobs?state=dead").await;
    assert_eq!(
        listed["jobs"],
        json!([]),
        "purged dead jobs are still listed"
    );

    // The leased job survived and can still be acked.
    assert_eq!(server.state_of(&leased).await, "leased");
    assert_eq!(ack(&server, &leased, &leased_lease).await.0, 200);
    assert_eq!(server.state_of(&leased).await, "succeeded");
    // Purging again finds nothing; an unknown queue is 404.
    assert_eq!(
        server.delete("/v1/queues/q/jobs").await,
        (200, json!({"purged": 0}))
    );
    assert_error(
        &server.delete("/v1/queues/nope/jobs").await,
        404,
        "queue_not_found",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_follows_the_life_cycle_rules() {
    let server = TestServer::start().await;
    let ready = server
        .enqueue("q", r#"{"payload":"ready","priority":0}"#)
        .await;
    let scheduled = server
        .enqueue(
            "q",
            r#"{"payload":"scheduled","delay_ms":1000,"priority":0}"#,
        )
        .await;

    let reply = server.delete(&format!("/v1/jobs/{ready}")).await;
    assert_eq!(reply, (200, json!({"id": ready, "state": "cancelled"})));
    let view = job(&server, &ready).await;
    assert_eq!(view["state"], "cancelled");
    assert_eq!(view["finished_at"], "2026-01-01T00:00:00.000Z");
    // Idempotent.
    assert_eq!(
        server.delete(&format!("/v1/jobs/{ready}")).await,
        (200, json!({"id": ready, "state": "cancelled"}))
    );
    assert_eq!(server.delete(&format!("/v1/jobs/{scheduled}")).await.0, 200);
    server.advance(2_000).await;
    assert!(
        server.poll("q", 10).await.is_empty(),
        "a cancelled job was delivered"
    );
    assert_eq!(server.state_of(&scheduled).await, "cancelled");

    // Leased: 409 job_leased, and the lease is untouched.
    let leased = server.enqueue("q", r#"{"payload":"leased"}"#).await;
    let (id, lease) = poll_one(&server, "q").await;
    assert_eq!(id, leased);
    let before = job(&server, &leased).await;
    assert_error(
        &server.delete(&format!("/v1/jobs/{leased}")).await,
        409,
        "job_leased",
    );
    assert_eq!(job(&server, &leased).await, before);
    // Succeeded: 409 job_finished.
    assert_eq!(ack(&server, &leased, &lease).await.0, 200);
    assert_error(
        &server.delete(&format!("/v1/jobs/{leased}")).await,
        409,
        "job_finished",
    );
    assert_eq!(server.state_of(&leased).await, "succeeded");

    // Dead jobs can be cancelled (and then are no longer replayable).
    server.enqueue("q", r#"{"payload":"dead"}"#).await;
    let (dead, lease) = poll_one(&server, "q").await;
    nack_dead(&server, &dead, &lease).await;
    assert_eq!(server.delete(&format!("/v1/jobs/{dead}")).await.0, 200);
    assert_eq!(
        server.post("/v1/queues/q/replay", "{}").await,
        (200, json!({"replayed": []}))
    );
    assert_eq!(server.state_of(&dead).await, "cancelled");

    assert_error(
        &server.delete("/v1/jobs/987654").await,
        404,
        "job_not_found",
    );
    assert_eq!(
        server.get("/v1/queues/q").await.1["counts"],
        counts(0, 0, 0, 1, 0, 3)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_readiness() {
    let server = TestServer::start().await;
    assert_eq!(server.get("/healthz").await, (200, json!({"status": "ok"})));
    let (status, body) = server.get("/readyz").await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "ready");
    // The free-space report rides along; a test volume is not below the floor.
    assert_eq!(body["disk"]["low"], false);
    assert!(body["disk"]["available_bytes"].as_u64().is_some());
    assert!(body["disk"]["floor_bytes"].as_u64().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_export_job_gauges_and_throughput_counters() {
    let server = TestServer::start().await;
    for n in 0..5 {
        server
            .enqueue("m", &json!({"payload": n}).to_string())
            .await;
    }
    let jobs = server.poll("m", 2).await;
    let lease = |i: usize| jobs[i]["lease"].as_str().unwrap().to_owned();
    let id = |i: usize| jobs[i]["id"].as_str().unwrap().to_owned();
    assert_eq!(ack(&server, &id(0), &lease(0)).await.0, 200);
    nack_dead(&server, &id(1), &lease(1)).await;
    poll_one(&server, "m").await;
    server.advance(30_000).await; // that lease expires: retried later
    server.enqueue("n", r#"{"payload":"other queue"}"#).await;

    let (status, text) = server.get("/metrics").await;
    assert_eq!(status, 200);
    let text = text.as_str().expect("metrics are text, not JSON");
    let lines: Vec<&str> = text.lines().collect();
    for want in [
        r#"wharf_jobs{tenant="default",queue="m",state="scheduled"} 1"#,
        r#"wharf_jobs{tenant="default",queue="m",state="ready"} 2"#,
        r#"wharf_jobs{tenant="default",queue="m",state="leased"} 0"#,
        r#"wharf_jobs{tenant="default",queue="m",state="succeeded"} 1"#,
        r#"wharf_jobs{tenant="default",queue="m",state="dead"} 1"#,
        r#"wharf_jobs{tenant="default",queue="m",state="cancelled"} 0"#,
        r#"wharf_jobs{tenant="default",queue="n",state="ready"} 1"#,
        r#"wharf_jobs_enqueued_total{tenant="default",queue="m"} 5"#,
        r#"wharf_jobs_delivered_total{tenant="default",queue="m"} 3"#,
        r#"wharf_jobs_acked_total{tenant="default",queue="m"} 1"#,
        r#"wharf_jobs_nacked_total{tenant="default",queue="m"} 1"#,
        r#"wharf_jobs_expired_total{tenant="default",queue="m"} 1"#,
        r#"wharf_jobs_dead_lettered_total{tenant="default",queue="m"} 1"#,
        r#"wharf_jobs_enqueued_total{tenant="default",queue="n"} 1"#,
        r#"wharf_jobs_acked_total{tenant="default",queue="n"} 0"#,
        "# TYPE wharf_jobs gauge",
        "# TYPE wharf_jobs_acked_total counter",
    ] {
        assert!(lines.contains(&want), "missing line {want:?} in:\n{text}");
    }
}
