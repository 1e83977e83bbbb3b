//! Idempotency keys: a key seen in the same queue within its window returns the original job
//! (200, `duplicate: true`) and creates nothing; concurrent enqueues with one key create one
//! job; keys survive restarts and are forgotten after their window.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may unwrap

mod common;
use common::{TestServer, request_bytes};
use serde_json::{Value, json};

async fn enqueue_with_header(
    server: &TestServer,
    queue: &str,
    body: &str,
    key: &str,
) -> (u16, Value) {
    request_bytes(
        server.addr,
        "POST",
        &format!("/v1/queues/{queue}/jobs"),
        Some(body.as_bytes().to_vec()),
        &[("Idempotency-Key", key)],
    )
    .await
}

async fn ready_count(server: &TestServer, queue: &str) -> u64 {
    server.get(&format!("/v1/queues/{queue}")).await.1["counts"]["ready"]
        .as_u64()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_key_returns_the_original_job() {
    let server = TestServer::start().await;
    let (status, first) = enqueue_with_header(&server, "q", r#"{"payload":"a"}"#, "order-1").await;
    assert_eq!(status, 201, "{first}");
    assert_eq!(first["duplicate"], false);

    // Same key, different payload: still the original (documented).
    let (status, again) = enqueue_with_header(&server, "q", r#"{"payload":"b"}"#, "order-1").await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(
        again,
        json!({"id": first["id"], "state": "ready", "duplicate": true})
    );
    assert_eq!(ready_count(&server, "q").await, 1);
    let (_, job) = server
        .get(&format!("/v1/jobs/{}", first["id"].as_str().unwrap()))
        .await;
    assert_eq!(job["payload"], "a");

    // The field works like the header; keys are scoped to their queue.
    let (status, field) = server
        .post(
            "/v1/queues/q/jobs",
            r#"{"payload":"c","idempotency_key":"order-1"}"#,
        )
        .await;
    assert_eq!((status, &field["id"]), (200, &first["id"]));
    let (status, other_queue) =
        enqueue_with_header(&server, "other", r#"{"payload":"d"}"#, "order-1").await;
    assert_eq!(status, 201);
    assert_ne!(other_queue["id"], first["id"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicate_reports_the_original_jobs_current_state() {
    let server = TestServer::start().await;
    let (_, first) = enqueue_with_header(&server, "q", r#"{"payload":1}"#, "k").await;
    let job = &server.poll("q", 1).await[0];
    let (_, reply) = enqueue_with_header(&server, "q", r#"{"payload":1}"#, "k").await;
    assert_eq!(
        (reply["id"].clone(), reply["state"].clone()),
        (first["id"].clone(), json!("leased"))
    );
    let lease = job["lease"].as_str().unwrap();
    server
        .post(
            &format!("/v1/jobs/{}/ack", job["id"].as_str().unwrap()),
            &format!(r#"{{"lease":"{lease}"}}"#),
        )
        .await;
    let (status, reply) = enqueue_with_header(&server, "q", r#"{"payload":1}"#, "k").await;
    assert_eq!((status, reply["state"].clone()), (200, json!("succeeded")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_items_carry_their_own_keys() {
    let server = TestServer::start().await;
    server
        .enqueue("q", r#"{"payload":0,"idempotency_key":"a"}"#)
        .await;
    let body = r#"{"jobs":[{"payload":1,"idempotency_key":"a"},{"payload":2,"idempotency_key":"b"},{"payload":3,"idempotency_key":"b"},{"payload":4}]}"#;
    let (status, reply) = server.post("/v1/queues/q/jobs", body).await;
    assert_eq!(status, 201, "something was created: {reply}");
    let jobs = reply["jobs"].as_array().unwrap();
    let duplicates: Vec<bool> = jobs
        .iter()
        .map(|j| j["duplicate"].as_bool().unwrap())
        .collect();
    assert_eq!(
        duplicates,
        [true, false, true, false],
        "a key repeated inside one batch is a duplicate too"
    );
    assert_eq!(jobs[1]["id"], jobs[2]["id"]);
    assert_eq!(ready_count(&server, "q").await, 3);

    let (status, reply) = server
        .post(
            "/v1/queues/q/jobs",
            r#"{"jobs":[{"payload":1,"idempotency_key":"a"}]}"#,
        )
        .await;
    assert_eq!(status, 200, "nothing created: {reply}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_enqueues_with_one_key_create_exactly_one_job() {
    let server = TestServer::start().await;
    let mut tasks = Vec::new();
    for n in 0..32 {
        let addr = server.addr;
        tasks.push(tokio::spawn(async move {
            let body = format!(r#"{{"payload":{n}}}"#).into_bytes();
            request_bytes(
                addr,
                "POST",
                "/v1/queues/q/jobs",
                Some(body),
                &[("Idempotency-Key", "same")],
            )
            .await
        }));
    }
    let mut ids = std::collections::HashSet::new();
    let mut created = 0;
    for task in tasks {
        let (status, reply) = task.await.unwrap();
        assert!(status == 200 || status == 201, "{reply}");
        created += usize::from(status == 201);
        ids.insert(reply["id"].as_str().unwrap().to_owned());
    }
    assert_eq!(
        (created, ids.len()),
        (1, 1),
        "one job, one id for everybody"
    );
    assert_eq!(ready_count(&server, "q").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_survive_a_restart_and_expire_after_their_window() {
    let server = TestServer::start().await;
    let (status, _) = server
        .patch("/v1/queues/q", r#"{"idempotency_window_ms":10000}"#)
        .await;
    assert_eq!(status, 200);
    let (_, first) = enqueue_with_header(&server, "q", r#"{"payload":1}"#, "k").await;
    let server = server.restart().await;
    let (status, again) = enqueue_with_header(&server, "q", r#"{"payload":1}"#, "k").await;
    assert_eq!(
        (status, &again["id"]),
        (200, &first["id"]),
        "the key survived the restart"
    );

    server.advance(9_999).await;
    let (status, _) = enqueue_with_header(&server, "q", r#"{"payload":1}"#, "k").await;
    assert_eq!(status, 200, "still inside the window");
    server.advance(1).await;
    // The window has ended: the sweeper forgets the key, and it is free again.
    assert_eq!(server.purged().1, 1);
    let (status, fresh) = enqueue_with_header(&server, "q", r#"{"payload":1}"#, "k").await;
    assert_eq!(status, 201, "{fresh}");
    assert_ne!(fresh["id"], first["id"]);
    let (status, again) = enqueue_with_header(&server, "q", r#"{"payload":1}"#, "k").await;
    assert_eq!((status, &again["id"]), (200, &fresh["id"]));
    // Its new window ends in turn.
    server.advance(9_999).await;
    assert_eq!(server.purged().1, 1);
    server.advance(1).await;
    assert_eq!(server.purged().1, 2);
    let (status, newest) = enqueue_with_header(&server, "q", r#"{"payload":1}"#, "k").await;
    assert_eq!(status, 201);
    assert_ne!(newest["id"], fresh["id"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_outliving_its_purged_job_reports_it_as_purged() {
    let server = TestServer::start().await;
    server.patch("/v1/queues/q", r#"{"retention_ms":10}"#).await;
    let (_, first) = enqueue_with_header(&server, "q", r#"{"payload":1}"#, "k").await;
    let job = &server.poll("q", 1).await[0];
    let lease = job["lease"].as_str().unwrap();
    server
        .post(
            &format!("/v1/jobs/{}/ack", first["id"].as_str().unwrap()),
            &format!(r#"{{"lease":"{lease}"}}"#),
        )
        .await;
    server.advance(10).await;
    assert_eq!(server.purged().0, 1);
    let (status, again) = enqueue_with_header(&server, "q", r#"{"payload":1}"#, "k").await;
    assert_eq!(
        status, 200,
        "the key's window (24 h) outlives the job's retention"
    );
    assert_eq!(
        again,
        json!({"id": first["id"], "state": "purged", "duplicate": true})
    );
}
