//! The transactional outbox: messages written with `POST /v1/outbox`, or with an enqueue, an ack
//! or a nack in the same commit; an ack's follow-up jobs, enqueued in the same commit as the ack
//! (a stale lease enqueues and emits nothing).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may unwrap
mod common;
use common::{TestServer, assert_error};

use serde_json::{Value, json};

/// Every event after `after`.
async fn events(server: &TestServer, after: u64) -> Vec<Value> {
    let (status, page) = server
        .get(&format!("/v1/events?after={after}&limit=1000"))
        .await;
    assert_eq!(status, 200, "{page}");
    page["events"].as_array().unwrap().clone()
}

fn kinds(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["type"].as_str().unwrap()).collect()
}

async fn head(server: &TestServer) -> u64 {
    server.get("/v1/events?limit=1").await.1["head"]
        .as_u64()
        .unwrap()
}

/// Polls one job and waits for its `job.leased` event to be readable (a lease is not fsynced
/// for the poll's reply, so its event becomes visible with the next fsync).
async fn poll_one(server: &TestServer, queue: &str) -> (String, String) {
    let before = head(server).await;
    let jobs = server.poll(queue, 1).await;
    let (status, page) = server
        .get(&format!(
            "/v1/events?after={before}&wait_ms=10000&types=job.leased"
        ))
        .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(jobs.len(), 1, "nothing to deliver in {queue}");
    (
        jobs[0]["id"].as_str().unwrap().to_owned(),
        jobs[0]["lease"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_posted_to_the_outbox_are_events_with_their_seqs() {
    let server = TestServer::start().await;
    let body = json!({"messages": [
        {"topic": "orders", "key": "o-1", "payload": {"total": 12}, "headers": {"trace": "t"}},
        {"topic": "orders", "payload": [1, 2]},
    ]});
    let (status, reply) = server.post("/v1/outbox", &body.to_string()).await;
    assert_eq!(status, 201, "{reply}");
    assert_eq!(reply, json!({"messages": [{"seq": 1}, {"seq": 2}]}));
    let log = events(&server, 0).await;
    assert_eq!(kinds(&log), ["message", "message"]);
    assert_eq!(
        (&log[0]["queue"], &log[0]["job_id"]),
        (&json!(null), &json!(null))
    );
    assert_eq!(
        log[0]["data"],
        json!({"topic": "orders", "key": "o-1", "payload": {"total": 12}, "headers": {"trace": "t"}})
    );
    assert_eq!(log[1]["data"]["key"], json!(null));
    assert_eq!(log[1]["data"]["payload"], json!([1, 2]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_enqueue_emits_once_and_a_duplicate_emits_nothing_again() {
    let server = TestServer::start().await;
    let body = json!({"payload": 1, "emit": [{"topic": "created", "payload": {"n": 1}}]});
    for expected in [201, 200] {
        let (status, reply) = server
            .post_with(
                "/v1/queues/q/jobs",
                &body.to_string(),
                &[("idempotency-key", "k-1")],
            )
            .await;
        assert_eq!(status, expected, "{reply}");
    }
    assert_eq!(
        kinds(&events(&server, 0).await),
        ["queue.created", "job.enqueued", "message"],
        "the retry (a duplicate) emitted nothing"
    );
    // A batch carries its messages beside "jobs".
    let batch = json!({"jobs": [{"payload": 2}, {"payload": 3}],
                       "emit": [{"topic": "batch", "payload": null}]});
    assert_eq!(
        server.post("/v1/queues/q/jobs", &batch.to_string()).await.0,
        201
    );
    assert_eq!(
        kinds(&events(&server, 3).await),
        ["job.enqueued", "job.enqueued", "message"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ack_enqueues_its_follow_ups_and_emits_in_the_same_commit() {
    let server = TestServer::start().await;
    let id = server.enqueue("orders", r#"{"payload":1}"#).await;
    let (_, lease) = poll_one(&server, "orders").await;
    let before = head(&server).await;
    let ack = json!({
        "lease": lease,
        "result": {"ok": true},
        "emit": [{"topic": "orders.done", "key": id, "payload": {"id": id}}],
        "enqueue": [
            {"queue": "emails", "payload": {"to": "ada"}, "priority": "high"},
            {"queue": "invoices", "payload": 7, "idempotency_key": "inv-7"},
        ],
    });
    let (status, reply) = server
        .post(&format!("/v1/jobs/{id}/ack"), &ack.to_string())
        .await;
    assert_eq!(status, 200, "{reply}");
    let enqueued = reply["enqueued"].as_array().unwrap();
    assert_eq!(enqueued.len(), 2, "{reply}");
    assert_eq!(enqueued[0]["state"], "ready");
    // The follow-ups are deliverable.
    let email = server.poll("emails", 1).await;
    assert_eq!(email[0]["id"], enqueued[0]["id"]);
    assert_eq!(email[0]["priority"], 192);
    // One commit: its events are contiguous, the ack's with its follow-ups'.
    let log = events(&server, before).await;
    assert_eq!(
        kinds(&log)[..6],
        [
            "queue.created",
            "job.enqueued",
            "queue.created",
            "job.enqueued",
            "job.succeeded",
            "message"
        ]
    );
    assert_eq!(log[5]["data"]["key"], id.as_str());

    // A follow-up's idempotency key is honoured: a second ack's follow-up with the same key
    // is the original job.
    let second = server.enqueue("orders", r#"{"payload":2}"#).await;
    let (_, lease) = poll_one(&server, "orders").await;
    let ack = json!({"lease": lease, "enqueue": [
        {"queue": "invoices", "payload": 7, "idempotency_key": "inv-7"}]});
    let (_, reply) = server
        .post(&format!("/v1/jobs/{second}/ack"), &ack.to_string())
        .await;
    assert_eq!(reply["enqueued"][0]["duplicate"], true);
    assert_eq!(reply["enqueued"][0]["id"], enqueued[1]["id"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_ack_enqueues_and_emits_nothing() {
    let server = TestServer::start().await;
    let id = server.enqueue("orders", r#"{"payload":1}"#).await;
    let (_, lease) = poll_one(&server, "orders").await;
    let before = head(&server).await;
    let stale = json!({
        "lease": "1.0000000000000000",
        "emit": [{"topic": "t", "payload": 1}],
        "enqueue": [{"queue": "emails", "payload": 1}],
    });
    let reply = server
        .post(&format!("/v1/jobs/{id}/ack"), &stale.to_string())
        .await;
    assert_error(&reply, 409, "stale_lease");
    assert_eq!(head(&server).await, before, "nothing was written");
    assert_error(
        &server.get("/v1/queues/emails").await,
        404,
        "queue_not_found",
    );
    // In a batch, only the items whose lease holds enqueue and emit.
    let other = server.enqueue("orders", r#"{"payload":2}"#).await;
    let (_, other_lease) = poll_one(&server, "orders").await;
    let batch = json!({"acks": [
        {"id": id, "lease": "1.0000000000000000", "enqueue": [{"queue": "a", "payload": 1}]},
        {"id": other, "lease": other_lease, "enqueue": [{"queue": "b", "payload": 1}],
         "emit": [{"topic": "t", "payload": 2}]},
    ]});
    let (status, reply) = server.post("/v1/ack", &batch.to_string()).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["acks"][0]["ok"], false);
    assert_eq!(reply["acks"][1]["ok"], true);
    assert_eq!(reply["acks"][1]["enqueued"].as_array().unwrap().len(), 1);
    assert_error(&server.get("/v1/queues/a").await, 404, "queue_not_found");
    assert_eq!(server.poll("b", 1).await.len(), 1);
    // The original lease still acks.
    let ok = json!({"lease": lease}).to_string();
    assert_eq!(server.post(&format!("/v1/jobs/{id}/ack"), &ok).await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nack_emits_with_the_failure() {
    let server = TestServer::start().await;
    let id = server.enqueue("q", r#"{"payload":1}"#).await;
    let (_, lease) = poll_one(&server, "q").await;
    let before = head(&server).await;
    let nack = json!({"lease": lease, "error": "boom",
                      "emit": [{"topic": "failures", "payload": {"id": id}}]});
    assert_eq!(
        server
            .post(&format!("/v1/jobs/{id}/nack"), &nack.to_string())
            .await
            .0,
        200
    );
    assert_eq!(
        kinds(&events(&server, before).await),
        ["job.retry_scheduled", "message"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_messages_and_follow_ups_are_refused_and_change_nothing() {
    let server = TestServer::start().await;
    let id = server.enqueue("q", r#"{"payload":1}"#).await;
    let (_, lease) = poll_one(&server, "q").await;
    let before = head(&server).await;
    let big = "x".repeat(1_100_000);
    for (path, body, status, code) in [
        ("/v1/outbox", json!({"messages": []}), 422, "invalid_value"),
        (
            "/v1/outbox",
            json!({"messages": [{"payload": 1}]}),
            422,
            "invalid_value",
        ),
        (
            "/v1/outbox",
            json!({"messages": [{"topic": "", "payload": 1}]}),
            422,
            "invalid_value",
        ),
        (
            "/v1/outbox",
            json!({"messages": [{"topic": "t".repeat(256), "payload": 1}]}),
            422,
            "invalid_value",
        ),
        (
            "/v1/outbox",
            json!({"messages": [{"topic": "t", "payload": 1, "extra": 1}]}),
            422,
            "invalid_value",
        ),
        (
            "/v1/outbox",
            json!({"messages": [{"topic": "t", "payload": big}]}),
            413,
            "payload_too_large",
        ),
        (
            "/v1/queues/q/jobs",
            json!({"jobs": [{"payload": 1, "emit": []}]}),
            422,
            "invalid_value",
        ),
        (
            "/v1/queues/q/jobs",
            json!({"payload": 1, "emit": [{"topic": "t"}]}),
            422,
            "invalid_value",
        ),
        (
            &format!("/v1/jobs/{id}/ack"),
            json!({"lease": lease, "enqueue": [{"queue": "bad name", "payload": 1}]}),
            422,
            "invalid_value",
        ),
        (
            &format!("/v1/jobs/{id}/ack"),
            json!({"lease": lease, "enqueue": [{"payload": 1}]}),
            422,
            "invalid_value",
        ),
        (
            &format!("/v1/jobs/{id}/ack"),
            json!({"lease": lease, "enqueue": [{"queue": "a", "payload": 1, "prio": 1}]}),
            422,
            "invalid_value",
        ),
        (
            &format!("/v1/jobs/{id}/ack"),
            json!({"lease": lease, "enqueue": [{"queue": "a", "payload": 1, "max_attempts": 0}]}),
            422,
            "invalid_value",
        ),
    ] {
        let reply = server.post(path, &body.to_string()).await;
        assert_error(&reply, status, code);
    }
    assert_eq!(head(&server).await, before, "nothing was written");
    assert_eq!(
        server.state_of(&id).await,
        "leased",
        "the refused ack changed nothing"
    );
}
