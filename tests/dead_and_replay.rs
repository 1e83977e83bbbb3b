//! Dead jobs: listing with paging, replay by ids or all, replay of unknown queues.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may unwrap
mod common;
use common::{TestServer, assert_error};

use serde_json::{Value, json};

async fn job(server: &TestServer, id: &str) -> Value {
    let (status, body) = server.get(&format!("/v1/jobs/{id}")).await;
    assert_eq!(status, 200, "{body}");
    body
}

/// Enqueues `n` jobs into `queue`, delivers them and nacks each with `dead: true`; returns
/// their ids in enqueue order.
async fn dead_jobs(server: &TestServer, queue: &str, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..n {
        ids.push(
            server
                .enqueue(queue, &json!({"payload": {"i": i}}).to_string())
                .await,
        );
    }
    let jobs = server.poll(queue, n).await;
    assert_eq!(jobs.len(), n);
    for (i, d) in jobs.iter().enumerate() {
        let id = d["id"].as_str().unwrap();
        assert_eq!(id, ids[i]);
        let body = json!({"lease": d["lease"], "dead": true, "error": format!("failure {i}")});
        let (status, reply) = server
            .post(&format!("/v1/jobs/{id}/nack"), &body.to_string())
            .await;
        assert_eq!(
            (status, reply["state"].as_str()),
            (200, Some("dead")),
            "{reply}"
        );
    }
    ids
}

/// One page of a listing; asserts 200 and returns (ids, next_after).
async fn page(server: &TestServer, path: &str) -> (Vec<String>, Value, Vec<Value>) {
    let (status, body) = server.get(path).await;
    assert_eq!(status, 200, "{path}: {body}");
    let jobs = body["jobs"].as_array().unwrap().clone();
    let ids = jobs
        .iter()
        .map(|j| j["id"].as_str().unwrap().to_owned())
        .collect();
    (ids, body["next_after"].clone(), jobs)
}

fn ids_of(jobs: &[Value]) -> Vec<String> {
    jobs.iter()
        .map(|j| j["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_jobs_are_listed_in_pages() {
    let server = TestServer::start().await;
    let dead = dead_jobs(&server, "q", 5).await;
    let ready = server.enqueue("q", r#"{"payload":"alive"}"#).await;
    let elsewhere = dead_jobs(&server, "other", 1).await;

    let (ids, next, jobs) = page(&server, "/v1/queues/q/jobs?state=dead&limit=2").await;
    assert_eq!(ids, dead[..2]);
    assert_eq!(next, json!(dead[1]));
    for (i, j) in jobs.iter().enumerate() {
        assert_eq!(j["state"], "dead", "{j}");
        assert_eq!(j["queue"], "q", "{j}");
        assert_eq!(j["attempts"], 1, "{j}");
        assert_eq!(j["last_error"], format!("failure {i}"), "{j}");
        assert_eq!(j["payload"], json!({"i": i}), "{j}");
    }
    let (ids, next, _) = page(
        &server,
        &format!("/v1/queues/q/jobs?state=dead&limit=2&after={}", dead[1]),
    )
    .await;
    assert_eq!(ids, dead[2..4]);
    assert_eq!(next, json!(dead[3]));
    let (ids, next, _) = page(
        &server,
        &format!("/v1/queues/q/jobs?state=dead&limit=2&after={}", dead[3]),
    )
    .await;
    assert_eq!(ids, dead[4..]);
    assert_eq!(next, Value::Null, "the last page has no next_after");

    // Without a limit: everything, one page.
    let (ids, next, _) = page(&server, "/v1/queues/q/jobs?state=dead").await;
    assert_eq!(ids, dead);
    assert_eq!(next, Value::Null);
    // Other states and queues are listed separately.
    let (ids, _, _) = page(&server, "/v1/queues/q/jobs?state=ready").await;
    assert_eq!(ids, [ready]);
    let (ids, _, _) = page(&server, "/v1/queues/other/jobs?state=dead").await;
    assert_eq!(ids, elsewhere);
    // Bad listings (docs/api.md: query-string mistakes are 422 like bodies).
    assert_error(
        &server.get("/v1/queues/nope/jobs?state=dead").await,
        404,
        "queue_not_found",
    );
    for bad in [
        "state=succeeded",
        "state=cancelled",
        "state=DEAD",
        "",
        "limit=2",
        "state=dead&limit=0",
        "state=dead&limit=1001",
        "state=dead&limit=abc",
        "state=dead&limit=-1",
        "state=dead&after=abc",
        "state=dead&after=01",
        "state=dead&after=%2B1",
        "state=dead&bogus=1",
    ] {
        assert_error(
            &server.get(&format!("/v1/queues/q/jobs?{bad}")).await,
            422,
            "invalid_value",
        );
    }
    // An empty `after` means from the start.
    let (ids, _, _) = page(&server, "/v1/queues/q/jobs?state=dead&limit=1&after=").await;
    assert_eq!(ids, dead[..1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_final_page_is_followed_by_one_empty_page() {
    let server = TestServer::start().await;
    let dead = dead_jobs(&server, "q", 4).await;
    let (ids, next, _) = page(&server, "/v1/queues/q/jobs?state=dead&limit=2").await;
    assert_eq!((ids, next.clone()), (dead[..2].to_vec(), json!(dead[1])));
    let (ids, next, _) = page(
        &server,
        &format!("/v1/queues/q/jobs?state=dead&limit=2&after={}", dead[1]),
    )
    .await;
    assert_eq!((ids, next.clone()), (dead[2..].to_vec(), json!(dead[3])));
    let (ids, next, _) = page(
        &server,
        &format!("/v1/queues/q/jobs?state=dead&limit=2&after={}", dead[3]),
    )
    .await;
    assert!(ids.is_empty());
    assert_eq!(next, Value::Null);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_by_ids_replays_only_those_and_resets_attempts() {
    let server = TestServer::start().await;
    let dead = dead_jobs(&server, "q", 3).await;
    let other_dead = dead_jobs(&server, "other", 1).await;
    let ready = server.enqueue("q", r#"{"payload":"alive"}"#).await;

    let padded = format!("0{}", dead[1]);
    let body = json!({"ids": [dead[2], dead[0], ready, other_dead[0], "abc", "987654", padded, format!("+{}", dead[1])]});
    let (status, reply) = server.post("/v1/queues/q/replay", &body.to_string()).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(
        reply,
        json!({"replayed": [dead[2], dead[0]]}),
        "only dead jobs of this queue are replayed"
    );

    for (i, id) in [(0, &dead[0]), (2, &dead[2])] {
        let view = job(&server, id).await;
        assert_eq!(view["state"], "ready", "{view}");
        assert_eq!(view["attempts"], 0, "{view}");
        assert_eq!(
            view["last_error"],
            format!("failure {i}"),
            "replay keeps last_error: {view}"
        );
    }
    let view = job(&server, &dead[1]).await;
    assert_eq!(
        (view["state"].as_str(), view["attempts"].as_u64()),
        (Some("dead"), Some(1)),
        "{view}"
    );
    assert_eq!(server.state_of(&other_dead[0]).await, "dead");
    assert_eq!(server.state_of(&ready).await, "ready");
    let (_, queue) = server.get("/v1/queues/q").await;
    assert_eq!(queue["counts"]["dead"], 1, "{queue}");
    assert_eq!(queue["counts"]["ready"], 3, "{queue}");
    let (ids, _, _) = page(&server, "/v1/queues/q/jobs?state=dead").await;
    assert_eq!(ids, [dead[1].clone()]);

    // Replayed jobs are delivered in id order among equal priorities, as attempt 1 again.
    let jobs = server.poll("q", 10).await;
    assert_eq!(ids_of(&jobs), [dead[0].clone(), dead[2].clone(), ready]);
    assert_eq!(jobs[0]["attempt"], 1);
    assert_eq!(jobs[1]["attempt"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_job_gets_its_full_retries_again() {
    let server = TestServer::start().await;
    let id = server
        .enqueue("q", r#"{"payload":1,"max_attempts":2}"#)
        .await;
    server.poll("q", 1).await;
    server.advance(30_000).await;
    server.advance(1_000).await;
    server.poll("q", 1).await;
    server.advance(30_000).await;
    let view = job(&server, &id).await;
    assert_eq!(
        (view["state"].as_str(), view["attempts"].as_u64()),
        (Some("dead"), Some(2)),
        "{view}"
    );

    let (status, reply) = server
        .post("/v1/queues/q/replay", &json!({"ids": [id]}).to_string())
        .await;
    assert_eq!((status, reply), (200, json!({"replayed": [id]})));
    let jobs = server.poll("q", 1).await;
    assert_eq!(jobs[0]["attempt"], 1);
    assert!(
        jobs[0]["lease"].as_str().unwrap().starts_with("1."),
        "{}",
        jobs[0]
    );
    // One failure with attempts reset: retried, not dead.
    server.advance(30_000).await;
    let view = job(&server, &id).await;
    assert_eq!(view["state"], "scheduled", "{view}");
    assert_eq!(view["attempts"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_with_an_empty_id_list_replays_nothing() {
    let server = TestServer::start().await;
    let dead = dead_jobs(&server, "q", 2).await;
    assert_eq!(
        server.post("/v1/queues/q/replay", r#"{"ids":[]}"#).await,
        (200, json!({"replayed": []}))
    );
    assert_error(
        &server.post("/v1/queues/q/replay", r#"{"ids":null}"#).await,
        422,
        "invalid_value",
    );
    for id in &dead {
        assert_eq!(server.state_of(id).await, "dead");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_from_before_a_replay_does_not_match_the_new_delivery() {
    let server = TestServer::start().await;
    let id = server.enqueue("q", r#"{"payload":1}"#).await;
    let old = server.poll("q", 1).await[0]["lease"]
        .as_str()
        .unwrap()
        .to_owned();
    let body = json!({"lease": old, "dead": true}).to_string();
    assert_eq!(
        server.post(&format!("/v1/jobs/{id}/nack"), &body).await.0,
        200
    );
    assert_eq!(
        server.post("/v1/queues/q/replay", "{}").await.1,
        json!({"replayed": [id]})
    );
    let delivery = server.poll("q", 1).await[0].clone();
    let new = delivery["lease"].as_str().unwrap().to_owned();
    assert_eq!(
        delivery["attempt"], 1,
        "attempt restarts at 1 after a replay"
    );
    assert!(
        old.starts_with("1.") && new.starts_with("1."),
        "{old} {new}"
    );
    assert_ne!(old, new);
    let before = job(&server, &id).await;
    for (path, body) in [
        ("ack", json!({"lease": old})),
        ("nack", json!({"lease": old, "dead": true})),
        ("extend", json!({"lease": old, "lease_ms": 1000})),
    ] {
        let reply = server
            .post(&format!("/v1/jobs/{id}/{path}"), &body.to_string())
            .await;
        assert_error(&reply, 409, "stale_lease");
    }
    assert_eq!(job(&server, &id).await, before);
    assert_eq!(
        server
            .post(
                &format!("/v1/jobs/{id}/ack"),
                &json!({"lease": new}).to_string()
            )
            .await
            .0,
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_all_with_an_empty_object() {
    let server = TestServer::start().await;
    let dead = dead_jobs(&server, "q", 3).await;
    let (status, reply) = server.post("/v1/queues/q/replay", "{}").await;
    assert_eq!((status, reply), (200, json!({"replayed": dead})));
    for id in &dead {
        assert_eq!(job(&server, id).await["attempts"], 0);
    }
    let (ids, _, _) = page(&server, "/v1/queues/q/jobs?state=dead").await;
    assert!(ids.is_empty());
    assert_eq!(ids_of(&server.poll("q", 10).await), dead);
    // Nothing left to replay.
    assert_eq!(
        server.post("/v1/queues/q/replay", "{}").await,
        (200, json!({"replayed": []}))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_all_with_an_empty_body() {
    let server = TestServer::start().await;
    let dead = dead_jobs(&server, "q", 2).await;
    // No body at all.
    let (status, reply) =
        common::request_bytes(server.addr, "POST", "/v1/queues/q/replay", None, &[]).await;
    assert_eq!((status, reply), (200, json!({"replayed": dead})));
    // Kill them again, then an empty body with a content type.
    let jobs = server.poll("q", 10).await;
    assert_eq!(ids_of(&jobs), dead);
    for d in &jobs {
        let body = json!({"lease": d["lease"], "dead": true});
        let (status, reply) = server
            .post(
                &format!("/v1/jobs/{}/nack", d["id"].as_str().unwrap()),
                &body.to_string(),
            )
            .await;
        assert_eq!(
            (status, reply["state"].as_str()),
            (200, Some("dead")),
            "{reply}"
        );
    }
    let (status, reply) = server.post("/v1/queues/q/replay", "").await;
    assert_eq!((status, reply), (200, json!({"replayed": dead})));
    for id in &dead {
        assert_eq!(server.state_of(id).await, "ready");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_of_an_unknown_queue_is_404() {
    let server = TestServer::start().await;
    let dead = dead_jobs(&server, "q", 1).await;
    assert_error(
        &server.post("/v1/queues/nope/replay", "{}").await,
        404,
        "queue_not_found",
    );
    assert_error(
        &server
            .post("/v1/queues/nope/replay", &json!({"ids": dead}).to_string())
            .await,
        404,
        "queue_not_found",
    );
    assert_error(
        &server.post("/v1/queues/nope/replay", "").await,
        404,
        "queue_not_found",
    );
    let (_, queues) = server.get("/v1/queues").await;
    let names: Vec<&str> = queues["queues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["q"], "replay must not create the queue");
    assert_eq!(
        server.state_of(&dead[0]).await,
        "dead",
        "a job of another queue was replayed"
    );
}
