//! Batch enqueue (ids in order, all or nothing) and batch ack (an outcome per item).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may unwrap
mod common;
use common::{TestServer, assert_error};

use serde_json::{Value, json};

async fn job(server: &TestServer, id: &str) -> Value {
    let (status, body) = server.get(&format!("/v1/jobs/{id}")).await;
    assert_eq!(status, 200, "{body}");
    body
}

fn ids_of(jobs: &[Value]) -> Vec<String> {
    jobs.iter()
        .map(|j| j["id"].as_str().unwrap().to_owned())
        .collect()
}

/// The queue's counts, or `None` when the queue does not exist.
async fn counts(server: &TestServer, queue: &str) -> Option<Value> {
    let (status, body) = server.get(&format!("/v1/queues/{queue}")).await;
    match status {
        200 => Some(body["counts"].clone()),
        404 => None,
        _ => panic!("{status} {body}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_enqueue_returns_ids_in_order() {
    let server = TestServer::start().await;
    let body = json!({"jobs": [
        {"payload": {"i": 0}},
        {"payload": {"i": 1}, "priority": "high", "headers": {"trace": "abc"}},
        {"payload": {"i": 2}, "delay_ms": 1000},
        {"payload": {"i": 3}, "max_attempts": 1},
    ]});
    let (status, reply) = server.post("/v1/queues/q/jobs", &body.to_string()).await;
    assert_eq!(status, 201, "{reply}");
    let out = reply["jobs"].as_array().unwrap();
    assert_eq!(out.len(), 4, "{reply}");
    let states: Vec<&str> = out.iter().map(|j| j["state"].as_str().unwrap()).collect();
    assert_eq!(states, ["ready", "ready", "scheduled", "ready"]);
    let ids = ids_of(out);
    let numeric: Vec<u64> = ids.iter().map(|id| id.parse().unwrap()).collect();
    assert!(
        numeric.windows(2).all(|w| w[0] < w[1]),
        "ids not increasing: {ids:?}"
    );
    for (i, id) in ids.iter().enumerate() {
        let view = job(&server, id).await;
        assert_eq!(
            view["payload"],
            json!({"i": i}),
            "id {i} does not name job {i}: {view}"
        );
    }
    assert_eq!(
        job(&server, &ids[1]).await["headers"],
        json!({"trace": "abc"})
    );
    assert_eq!(job(&server, &ids[3]).await["max_attempts"], 1);
    assert_eq!(counts(&server, "q").await.unwrap()["ready"], 3);
    let jobs = server.poll("q", 10).await;
    assert_eq!(
        ids_of(&jobs),
        [ids[1].clone(), ids[0].clone(), ids[3].clone()]
    );

    // A batch of one still answers with a list.
    let (status, reply) = server
        .post("/v1/queues/q/jobs", r#"{"jobs":[{"payload":"solo"}]}"#)
        .await;
    assert_eq!(status, 201, "{reply}");
    assert_eq!(reply["jobs"].as_array().map(Vec::len), Some(1), "{reply}");
    assert_eq!(reply["jobs"][0]["state"], "ready");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_enqueue_is_all_or_nothing() {
    let server = TestServer::start().await;
    let valid = json!({"payload": 1});
    let big = "x".repeat((1 << 20) + 1);
    let bad_batches: Vec<(Value, u16, &str, &str)> = vec![
        (
            json!({"jobs": [valid, valid, {"payload": 2, "priority": 256}, valid]}),
            422,
            "invalid_value",
            "",
        ),
        (
            json!({"jobs": [valid, {"payload": 2, "run_at": "tomorrow"}]}),
            422,
            "invalid_value",
            "jobs[1]",
        ),
        (
            json!({"jobs": [valid, {"payload": 2, "max_attempts": 0}]}),
            422,
            "invalid_value",
            "jobs[1]",
        ),
        (
            json!({"jobs": [valid, {"payload": 2, "delay_ms": 1, "run_at": "2026-01-01T00:00:01Z"}]}),
            422,
            "invalid_value",
            "jobs[1]",
        ),
        (
            json!({"jobs": [valid, {"payload": 2, "bogus": true}]}),
            422,
            "invalid_value",
            "",
        ),
        (
            json!({"jobs": [valid, {"priority": 1}]}),
            422,
            "invalid_value",
            "",
        ),
        (
            json!({"jobs": [valid, {"payload": big}]}),
            413,
            "payload_too_large",
            "jobs[1]",
        ),
        (
            json!({"jobs": [valid], "extra": 1}),
            422,
            "invalid_value",
            "",
        ),
        (json!({"jobs": []}), 422, "invalid_value", ""),
        (json!({"jobs": {"payload": 1}}), 422, "invalid_value", ""),
    ];
    for (body, status, code, names) in &bad_batches {
        let reply = server.post("/v1/queues/q/jobs", &body.to_string()).await;
        assert_error(&reply, *status, code);
        assert!(
            reply.1["error"]["message"]
                .as_str()
                .unwrap()
                .contains(names),
            "message should name {names}: {}",
            reply.1
        );
        assert_eq!(
            counts(&server, "q").await,
            None,
            "a failed batch created the queue or a job"
        );
    }
    let too_many = json!({"jobs": vec![valid.clone(); 1001]});
    assert_error(
        &server
            .post("/v1/queues/q/jobs", &too_many.to_string())
            .await,
        413,
        "batch_too_large",
    );
    assert_eq!(
        server.get("/v1/queues").await,
        (200, json!({"queues": [], "next_after": null}))
    );

    // With the queue existing: counts do not move, and later ids are still delivered in order.
    let first = server.enqueue("q", r#"{"payload":"first"}"#).await;
    let before = counts(&server, "q").await.unwrap();
    for (body, status, code, _) in &bad_batches {
        assert_error(
            &server.post("/v1/queues/q/jobs", &body.to_string()).await,
            *status,
            code,
        );
        assert_eq!(counts(&server, "q").await.unwrap(), before);
    }
    let (status, _) = server
        .post(
            "/v1/queues/q/jobs",
            &json!({"jobs": vec![valid.clone(); 1000]}).to_string(),
        )
        .await;
    assert_eq!(status, 201, "a batch of exactly max_batch is accepted");
    let jobs = server.poll("q", 1000).await;
    assert_eq!(jobs.len(), 1000, "first + 999 of the 1000");
    assert_eq!(jobs[0]["id"], first.as_str());
    assert!(jobs[1..].iter().all(|j| j["payload"] == 1));
    assert_eq!(counts(&server, "q").await.unwrap()["ready"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_ack_reports_an_outcome_per_item() {
    let server = TestServer::start().await;
    // "stale": delivered, expired, delivered again; its first token is stale.
    let stale = server.enqueue("q", r#"{"payload":"stale"}"#).await;
    let stale_old = server.poll("q", 1).await[0]["lease"]
        .as_str()
        .unwrap()
        .to_owned();
    server.advance(30_000).await;
    server.advance(1_000).await;
    let redelivered = server.poll("q", 1).await;
    assert_eq!(redelivered[0]["id"], stale.as_str());
    let stale_new = redelivered[0]["lease"].as_str().unwrap().to_owned();

    let a = server.enqueue("q", r#"{"payload":"a"}"#).await;
    let b = server.enqueue("q", r#"{"payload":"b"}"#).await;
    let c = server.enqueue("q", r#"{"payload":"c"}"#).await;
    let f = server.enqueue("q", r#"{"payload":"f"}"#).await;
    let ready = server.enqueue("q", r#"{"payload":"ready"}"#).await;
    let jobs = server.poll("q", 4).await;
    assert_eq!(ids_of(&jobs), [a.clone(), b.clone(), c.clone(), f.clone()]);
    let lease = |i: usize| jobs[i]["lease"].as_str().unwrap().to_owned();
    let b_before = job(&server, &b).await;

    let body = json!({"acks": [
        {"id": a, "lease": lease(0), "result": {"ok": "a"}},
        {"id": b, "lease": lease(0)},
        {"id": "987654", "lease": lease(1)},
        {"id": "abc", "lease": lease(1)},
        {"id": a, "lease": lease(0), "result": "again"},
        {"id": c, "lease": lease(2), "result": [1, 2, 3]},
        {"id": ready, "lease": "1.0123456789abcdef"},
        {"id": stale, "lease": stale_old},
        {"id": f, "lease": "1.0000000000000000"},
        {"id": f, "lease": lease(3)},
    ]});
    let (status, reply) = server.post("/v1/ack", &body.to_string()).await;
    assert_eq!(status, 200, "{reply}");
    let acks = reply["acks"].as_array().unwrap();
    let outcomes: Vec<(String, bool, Option<u64>, Option<&str>)> = acks
        .iter()
        .map(|o| {
            (
                o["id"].as_str().unwrap().to_owned(),
                o["ok"].as_bool().unwrap(),
                o["status"].as_u64(),
                o["error"]["code"].as_str(),
            )
        })
        .collect();
    let expected: Vec<(String, bool, Option<u64>, Option<&str>)> = vec![
        (a.clone(), true, None, None),
        (b.clone(), false, Some(409), Some("stale_lease")),
        ("987654".into(), false, Some(404), Some("job_not_found")),
        ("abc".into(), false, Some(404), Some("job_not_found")),
        (a.clone(), false, Some(409), Some("job_not_leased")),
        (c.clone(), true, None, None),
        (ready.clone(), false, Some(409), Some("job_not_leased")),
        (stale.clone(), false, Some(409), Some("stale_lease")),
        (f.clone(), false, Some(409), Some("stale_lease")),
        (f.clone(), true, None, None),
    ];
    assert_eq!(outcomes, expected, "{reply}");
    for o in acks.iter().filter(|o| o["ok"] == false) {
        assert!(
            o["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{o}"
        );
    }

    // Only the valid acks took effect, with their own results.
    let view = job(&server, &a).await;
    assert_eq!(
        (view["state"].as_str(), &view["result"]),
        (Some("succeeded"), &json!({"ok": "a"})),
        "the duplicate replaced the result"
    );
    let view = job(&server, &c).await;
    assert_eq!(
        (view["state"].as_str(), &view["result"]),
        (Some("succeeded"), &json!([1, 2, 3]))
    );
    assert_eq!(server.state_of(&f).await, "succeeded");
    assert_eq!(
        job(&server, &b).await,
        b_before,
        "a refused ack changed the job"
    );
    assert_eq!(server.state_of(&ready).await, "ready");
    assert_eq!(server.state_of(&stale).await, "leased");
    assert_eq!(server.get("/v1/queues/q").await.1["counts"]["succeeded"], 3);

    // The refused jobs' real tokens still work.
    let reply = server
        .post(
            &format!("/v1/jobs/{b}/ack"),
            &json!({"lease": lease(1)}).to_string(),
        )
        .await;
    assert_eq!(reply.0, 200, "{}", reply.1);
    let reply = server
        .post(
            &format!("/v1/jobs/{stale}/ack"),
            &json!({"lease": stale_new}).to_string(),
        )
        .await;
    assert_eq!(reply.0, 200, "{}", reply.1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_ack_of_nothing_valid_changes_nothing() {
    let server = TestServer::start().await;
    let id = server.enqueue("q", r#"{"payload":1}"#).await;
    let lease = server.poll("q", 1).await[0]["lease"]
        .as_str()
        .unwrap()
        .to_owned();
    let before = job(&server, &id).await;
    let body = json!({"acks": [{"id": id, "lease": "1.ffffffffffffffff"}, {"id": "1000000", "lease": lease}]});
    let (status, reply) = server.post("/v1/ack", &body.to_string()).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["acks"][0]["ok"], false, "{reply}");
    assert_eq!(reply["acks"][1]["ok"], false, "{reply}");
    assert_eq!(job(&server, &id).await, before);
    assert_eq!(
        server.post("/v1/ack", r#"{"acks":[]}"#).await,
        (200, json!({"acks": []}))
    );
}
