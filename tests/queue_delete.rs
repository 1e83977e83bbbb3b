//! Deleting a queue (`DELETE /v1/queues/{queue}`): its jobs in every state and its idempotency
//! keys go with it, leases of its jobs are void, the change log says so, its name is free
//! again, and all of it survives a restart.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may unwrap
mod common;
use common::{CHANGES, TestServer, assert_error};

use serde_json::{Value, json};

/// Every state at once in queue `q`: returns (ids, the leased job's id and lease).
async fn one_job_in_every_state(server: &TestServer) -> (Vec<String>, (String, String)) {
    let mut ids = Vec::new();
    // Succeeded, dead, leased: enqueued and polled in this order (FIFO).
    for _ in 0..3 {
        ids.push(server.enqueue("q", r#"{"payload": 1}"#).await);
    }
    let polled = server.poll("q", 3).await;
    let lease = |i: usize| polled[i]["lease"].as_str().unwrap().to_owned();
    let (status, body) = server
        .post(
            &format!("/v1/jobs/{}/ack", ids[0]),
            &json!({"lease": lease(0)}).to_string(),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = server
        .post(
            &format!("/v1/jobs/{}/nack", ids[1]),
            &json!({"lease": lease(1), "dead": true}).to_string(),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let leased = (ids[2].clone(), lease(2));
    // Ready (with an idempotency key), scheduled, cancelled.
    ids.push(
        server
            .enqueue("q", r#"{"payload": 2, "idempotency_key": "k-1"}"#)
            .await,
    );
    ids.push(
        server
            .enqueue("q", r#"{"payload": 3, "delay_ms": 60000}"#)
            .await,
    );
    let cancelled = server.enqueue("q", r#"{"payload": 4}"#).await;
    assert_eq!(server.delete(&format!("/v1/jobs/{cancelled}")).await.0, 200);
    ids.push(cancelled);
    let (_, queue) = server.get("/v1/queues/q").await;
    assert_eq!(
        queue["counts"],
        json!({"scheduled": 1, "ready": 1, "leased": 1, "succeeded": 1, "dead": 1, "cancelled": 1})
    );
    (ids, leased)
}

/// The changes after `after` (the audit trail's events left out).
async fn events_since(server: &TestServer, after: u64) -> Vec<Value> {
    let (status, body) = server
        .get(&format!(
            "/v1/events?after={after}&limit=1000&types={CHANGES}"
        ))
        .await;
    assert_eq!(status, 200, "{body}");
    body["events"].as_array().unwrap().clone()
}

#[tokio::test]
async fn deleting_a_queue_takes_its_jobs_in_every_state_and_frees_its_name() {
    let server = TestServer::start().await;
    let (status, body) = server
        .patch("/v1/queues/q", r#"{"lease_ms": 5000, "paused": false}"#)
        .await;
    assert_eq!(status, 200, "{body}");
    let (ids, (leased, lease)) = one_job_in_every_state(&server).await;
    server.enqueue("other", r#"{"payload": "kept"}"#).await;
    let head = events_since(&server, 0).await.last().unwrap()["seq"]
        .as_u64()
        .unwrap();

    let (status, body) = server.delete("/v1/queues/q").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"name": "q", "tenant": "default", "deleted_jobs": 6})
    );

    // Gone, with every job: reads are 404, and the lease of the job in flight is void.
    assert_error(&server.get("/v1/queues/q").await, 404, "queue_not_found");
    for id in &ids {
        assert_error(
            &server.get(&format!("/v1/jobs/{id}")).await,
            404,
            "job_not_found",
        );
    }
    let ack = server
        .post(
            &format!("/v1/jobs/{leased}/ack"),
            &json!({"lease": lease}).to_string(),
        )
        .await;
    assert_error(&ack, 404, "job_not_found");
    let (_, queues) = server.get("/v1/queues").await;
    let names: Vec<&str> = queues["queues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["other"]);

    // The change log: each job's deletion, then the queue's, in one ordered run.
    let events = events_since(&server, head).await;
    let (last, jobs) = events.split_last().unwrap();
    assert_eq!(last["type"], "queue.deleted");
    assert_eq!(last["queue"], "q");
    assert_eq!(last["data"]["jobs"], 6);
    let mut deleted: Vec<&str> = jobs
        .iter()
        .map(|e| {
            assert_eq!(e["type"], "job.deleted", "{e}");
            assert_eq!(e["data"]["reason"], "queue_deleted", "{e}");
            e["job_id"].as_str().unwrap()
        })
        .collect();
    deleted.sort();
    let mut expected: Vec<&str> = ids.iter().map(String::as_str).collect();
    expected.sort();
    assert_eq!(deleted, expected);

    // The audit trail has it.
    let (_, audit) = server.get("/v1/audit").await;
    let record = audit["entries"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (&record["action"], &record["target"], &record["status"]),
        (&json!("queue.delete"), &json!("q"), &json!(200)),
        "{record}"
    );

    // The name is free: a new queue with the server's defaults and no idempotency keys.
    let (status, body) = server
        .post(
            "/v1/queues/q/jobs",
            r#"{"payload": 5, "idempotency_key": "k-1"}"#,
        )
        .await;
    assert_eq!((status, body["duplicate"].as_bool()), (201, Some(false)));
    let (_, queue) = server.get("/v1/queues/q").await;
    assert_eq!(queue["lease_ms"], 30_000, "{queue}");
    assert_eq!(queue["counts"]["ready"], 1, "{queue}");
    assert_eq!(queue["counts"]["succeeded"], 0, "{queue}");
    // The other queue was not touched.
    let (_, other) = server.get("/v1/queues/other").await;
    assert_eq!(other["counts"]["ready"], 1, "{other}");
}

#[tokio::test]
async fn a_deleted_queue_stays_deleted_after_a_restart() {
    let server = TestServer::start().await;
    let (ids, _) = one_job_in_every_state(&server).await;
    assert_eq!(server.delete("/v1/queues/q").await.0, 200);
    let server = server.restart().await;
    assert_error(&server.get("/v1/queues/q").await, 404, "queue_not_found");
    for id in &ids {
        assert_error(
            &server.get(&format!("/v1/jobs/{id}")).await,
            404,
            "job_not_found",
        );
    }
    assert!(server.poll("q", 10).await.is_empty());
    // Nothing of it is left to come back: the delayed job's time passes without it.
    server.advance(120_000).await;
    assert!(server.poll("q", 10).await.is_empty());
}

#[tokio::test]
async fn a_queue_that_schedules_enqueue_into_is_not_deleted() {
    let server = TestServer::start().await;
    server.enqueue("reports", r#"{"payload": 1}"#).await;
    let schedule = json!({"cron": "0 3 * * *", "queue": "reports", "job": {"payload": 1}});
    for name in ["nightly", "early"] {
        let (status, body) = server
            .request_put(&format!("/v1/schedules/{name}"), &schedule.to_string())
            .await;
        assert_eq!(status, 201, "{body}");
    }
    let refused = server.delete("/v1/queues/reports").await;
    assert_error(&refused, 409, "queue_in_use");
    assert_eq!(refused.1["error"]["schedules"], json!(["early", "nightly"]));
    let (_, queue) = server.get("/v1/queues/reports").await;
    assert_eq!(queue["counts"]["ready"], 1, "nothing was deleted: {queue}");

    for name in ["nightly", "early"] {
        assert_eq!(server.delete(&format!("/v1/schedules/{name}")).await.0, 200);
    }
    assert_eq!(server.delete("/v1/queues/reports").await.0, 200);
    assert_error(
        &server.delete("/v1/queues/reports").await,
        404,
        "queue_not_found",
    );
    assert_error(
        &server.delete("/v1/queues/never").await,
        404,
        "queue_not_found",
    );
}

#[tokio::test]
async fn a_tenant_deletes_its_own_queue_and_no_other_tenants() {
    use common::keys::{call, create_key};
    let server = TestServer::start().await;
    let (_, operator) = create_key(&server, None, json!({"tenant": "*", "scopes": ["*"]})).await;
    let mut keys = Vec::new();
    for tenant in ["acme", "globex"] {
        let spec =
            json!({"tenant": tenant, "scopes": ["jobs:enqueue", "queues:admin", "jobs:read"]});
        let (_, key) = create_key(&server, Some(&operator), spec).await;
        let reply = call(
            &server,
            Some(&key),
            "POST",
            "/v1/queues/emails/jobs",
            Some(r#"{"payload": 1}"#),
        )
        .await;
        assert_eq!(reply.0, 201, "{}", reply.1);
        keys.push(key);
    }
    let reply = call(&server, Some(&keys[0]), "DELETE", "/v1/queues/emails", None).await;
    assert_eq!(
        reply,
        (
            200,
            json!({"name": "emails", "tenant": "acme", "deleted_jobs": 1})
        )
    );
    let reply = call(&server, Some(&keys[0]), "GET", "/v1/queues/emails", None).await;
    assert_error(&reply, 404, "queue_not_found");
    let reply = call(&server, Some(&keys[1]), "GET", "/v1/queues/emails", None).await;
    assert_eq!(
        (reply.0, &reply.1["counts"]["ready"]),
        (200, &json!(1)),
        "{}",
        reply.1
    );
    // The operator names the other tenant's queue by its full name.
    let reply = call(
        &server,
        Some(&operator),
        "DELETE",
        "/v1/queues/globex:emails",
        None,
    )
    .await;
    assert_eq!(reply.0, 200, "{}", reply.1);
    assert_eq!(reply.1["tenant"], "globex");
}
