//! Bad input on every write route: each is refused with the documented status and code, and
//! changes nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may unwrap
mod common;
use common::{TestServer, assert_error, request_bytes};

use serde_json::{Value, json};

/// Everything observable that a bad request must not change: the queue list (defaults and
/// counts) and the full view of the given jobs.
async fn snapshot(server: &TestServer, ids: &[&str]) -> Value {
    let (status, queues) = server.get("/v1/queues").await;
    assert_eq!(status, 200);
    let mut jobs = Vec::new();
    for id in ids {
        let (status, job) = server.get(&format!("/v1/jobs/{id}")).await;
        assert_eq!(status, 200, "{job}");
        jobs.push(job);
    }
    json!({"queues": queues["queues"], "jobs": jobs})
}

/// Sends each body to `method path`, asserts the error, and that nothing changed.
async fn expect_all_refused(
    server: &TestServer,
    method: &str,
    path: &str,
    cases: &[(Vec<u8>, u16, &str)],
    ids: &[&str],
) {
    let before = snapshot(server, ids).await;
    for (body, status, code) in cases {
        let reply = request_bytes(server.addr, method, path, Some(body.clone()), &[]).await;
        let shown = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
        assert_eq!(reply.0, *status, "{method} {path} {shown:?}: {}", reply.1);
        assert_eq!(
            reply.1["error"]["code"], *code,
            "{method} {path} {shown:?}: {}",
            reply.1
        );
        assert!(
            reply.1["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{}",
            reply.1
        );
        assert_eq!(
            snapshot(server, ids).await,
            before,
            "{method} {path} {shown:?} changed something"
        );
    }
}

fn b(text: &str) -> Vec<u8> {
    text.as_bytes().to_vec()
}

/// Malformed bodies every JSON route refuses with 400: the syntax error (or invalid UTF-8)
/// comes before anything a field could object to.
fn malformed() -> Vec<(Vec<u8>, u16, &'static str)> {
    vec![
        (b("{"), 400, "invalid_json"),
        (b("not json"), 400, "invalid_json"),
        (b("{1:2}"), 400, "invalid_json"),
        (b("{,}"), 400, "invalid_json"),
        (b"\xff\xfe".to_vec(), 400, "invalid_json"),
        (b"{\"\xff\xfe\":1}".to_vec(), 400, "invalid_json"),
        (b"{\"caf\xc3\x28\":1}".to_vec(), 400, "invalid_json"),
    ]
}

fn empty() -> Vec<(Vec<u8>, u16, &'static str)> {
    vec![
        (Vec::new(), 400, "empty_body"),
        (b(" \n\t "), 400, "empty_body"),
    ]
}

fn invalid(bodies: &[String]) -> Vec<(Vec<u8>, u16, &'static str)> {
    bodies
        .iter()
        .map(|body| (b(body), 422, "invalid_value"))
        .collect()
}

/// A queue with one leased job; returns (id, lease).
async fn leased_job(server: &TestServer) -> (String, String) {
    let id = server.enqueue("q", r#"{"payload":1}"#).await;
    let jobs = server.poll("q", 1).await;
    assert_eq!(jobs[0]["id"], id.as_str());
    (id, jobs[0]["lease"].as_str().unwrap().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enqueue_refuses_malformed_and_invalid_jobs() {
    let server = TestServer::start().await;
    let mut cases = empty();
    cases.extend(malformed());
    cases.push((b"{\"payload\":\"\xc3\x28\"}".to_vec(), 400, "invalid_json"));
    cases.push((
        b"{\"jobs\":[{\"payload\":\"\xff\"}]}".to_vec(),
        400,
        "invalid_json",
    ));
    let bodies: Vec<String> = [
        "null",
        "[]",
        r#"[{"payload":1}]"#,
        r#""text""#,
        "{}",
        r#"{"priority":1}"#,
        r#"{"payload":1,"bogus":1}"#,
        r#"{"payload":1,"prority":1}"#,
        r#"{"payload":1,"payload":2}"#,
        r#"{"payload":1,"priority":256}"#,
        r#"{"payload":1,"priority":"urgent"}"#,
        r#"{"payload":1,"priority":"HIGH"}"#,
        r#"{"payload":1,"priority":-1}"#,
        r#"{"payload":1,"priority":1.5}"#,
        r#"{"payload":1,"priority":true}"#,
        r#"{"payload":1,"max_attempts":0}"#,
        r#"{"payload":1,"max_attempts":1001}"#,
        r#"{"payload":1,"max_attempts":4294967296}"#,
        r#"{"payload":1,"max_attempts":"3"}"#,
        r#"{"payload":1,"lease_ms":0}"#,
        r#"{"payload":1,"lease_ms":43200001}"#,
        r#"{"payload":1,"lease_ms":-1}"#,
        r#"{"payload":1,"delay_ms":-1}"#,
        r#"{"payload":1,"delay_ms":18446744073709551616}"#,
        r#"{"payload":1,"delay_ms":18446744073709551615}"#,
        r#"{"payload":1,"delay_ms":31536000001}"#,
        r#"{"payload":1,"delay_ms":1.5}"#,
        r#"{"payload":1,"run_at":"tomorrow"}"#,
        r#"{"payload":1,"run_at":"2026-01-01"}"#,
        r#"{"payload":1,"run_at":1767225600000}"#,
        r#"{"payload":1,"run_at":"2027-06-01T00:00:00Z"}"#,
        r#"{"payload":1,"delay_ms":10,"run_at":"2026-01-01T00:00:10Z"}"#,
        r#"{"payload":1,"headers":{"a":1}}"#,
        r#"{"payload":1,"headers":["a"]}"#,
        r#"{"payload":1,"headers":{"":"x"}}"#,
        r#"{"payload":1,"jobs":[]}"#,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    cases.extend(invalid(&bodies));
    expect_all_refused(&server, "POST", "/v1/queues/q/jobs", &cases, &[]).await;
    assert_eq!(
        server.get("/v1/queues").await,
        (200, json!({"queues": [], "next_after": null}))
    );

    // The same with the queue existing: its counts do not move.
    let id = server
        .enqueue("q", r#"{"payload":"ok","priority":"low"}"#)
        .await;
    expect_all_refused(&server, "POST", "/v1/queues/q/jobs", &cases, &[&id]).await;
    assert_eq!(server.poll("q", 10).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enqueue_size_limits() {
    let server = TestServer::start().await;
    let mib = 1 << 20;
    // Payload JSON text of 1 MiB + 1 bytes (a string: its quotes count).
    let over = json!({"payload": "x".repeat(mib - 1)}).to_string();
    let in_batch = json!({"jobs": [{"payload": 1}, {"payload": "x".repeat(mib - 1)}]}).to_string();
    let mut body = b(r#"{"payload":""#);
    body.resize((8 << 20) + 1 - 2, b'x');
    body.extend_from_slice(b"\"}");
    assert_eq!(body.len(), (8 << 20) + 1);
    let batch_1001 = json!({"jobs": vec![json!({"payload": 1}); 1001]}).to_string();
    let cases = vec![
        (b(&over), 413, "payload_too_large"),
        (b(&in_batch), 413, "payload_too_large"),
        (body, 413, "body_too_large"),
        (b(&batch_1001), 413, "batch_too_large"),
        (b(r#"{"jobs":[]}"#), 422, "invalid_value"),
    ];
    expect_all_refused(&server, "POST", "/v1/queues/q/jobs", &cases, &[]).await;
    assert_eq!(
        server.get("/v1/queues").await,
        (200, json!({"queues": [], "next_after": null}))
    );

    // Exactly 1 MiB of payload is accepted and delivered intact.
    let limit = json!({"payload": "y".repeat(mib - 2)}).to_string();
    let id = server.enqueue("q", &limit).await;
    let jobs = server.poll("q", 1).await;
    assert_eq!(jobs[0]["id"], id.as_str());
    assert_eq!(jobs[0]["payload"].as_str().map(str::len), Some(mib - 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_idempotency_keys_are_refused_and_create_nothing() {
    let server = TestServer::start().await;
    let long = "k".repeat(256);
    let cases: [(&str, &[(&str, &str)]); 4] = [
        // The header names one job; a batch carries keys per item.
        (r#"{"jobs":[{"payload":1}]}"#, &[("Idempotency-Key", "k-1")]),
        (
            r#"{"payload":1,"idempotency_key":"a"}"#,
            &[("Idempotency-Key", "b")],
        ),
        (r#"{"payload":1,"idempotency_key":""}"#, &[]),
        (r#"{"payload":1}"#, &[("Idempotency-Key", long.as_str())]),
    ];
    for (body, headers) in cases {
        let reply = request_bytes(
            server.addr,
            "POST",
            "/v1/queues/q/jobs",
            Some(b(body)),
            headers,
        )
        .await;
        assert_error(&reply, 422, "invalid_value");
        assert_eq!(
            server.get("/v1/queues").await,
            (200, json!({"queues": [], "next_after": null}))
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poll_refuses_bad_bodies() {
    let server = TestServer::start().await;
    let id = server.enqueue("q", r#"{"payload":1}"#).await;
    let mut cases = malformed();
    let bodies: Vec<String> = [
        "null",
        "7",
        r#"{"max":0}"#,
        r#"{"max":1001}"#,
        r#"{"max":-1}"#,
        r#"{"max":"1"}"#,
        r#"{"max":18446744073709551616}"#,
        r#"{"max":18446744073709551615}"#,
        r#"{"wait_ms":30001}"#,
        r#"{"wait_ms":-5}"#,
        r#"{"lease_ms":0}"#,
        r#"{"lease_ms":43200001}"#,
        r#"{"bogus":1}"#,
        r#"{"max":1,"wait":100}"#,
        r#"{"max":null}"#,
        r#"{"wait_ms":null}"#,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    cases.extend(invalid(&bodies));
    let big = vec![b' '; (8 << 20) + 1];
    cases.push((big, 413, "body_too_large"));
    expect_all_refused(&server, "POST", "/v1/queues/q/poll", &cases, &[&id]).await;
    assert_eq!(server.state_of(&id).await, "ready");

    // An empty body is allowed here: poll one job without waiting.
    let (status, body) = request_bytes(server.addr, "POST", "/v1/queues/q/poll", None, &[]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["jobs"][0]["id"], id.as_str());
    assert_eq!(
        body["jobs"][0]["attempt"], 1,
        "a refused poll counted an attempt"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ack_refuses_bad_bodies() {
    let server = TestServer::start().await;
    let (id, lease) = leased_job(&server).await;
    let mut cases = empty();
    cases.extend(malformed());
    cases.push((b"{\"lease\":\"\xff\xfe\"}".to_vec(), 400, "invalid_json"));
    let big = "x".repeat(1 << 20);
    cases.extend(invalid(&[
        "null".into(),
        "[]".into(),
        format!(r#"["{lease}"]"#),
        "{}".into(),
        r#"{"lease":1}"#.into(),
        r#"{"lease":null}"#.into(),
        format!(r#"{{"lease":"{lease}","bogus":1}}"#),
        format!(r#"{{"lease":"{lease}","results":1}}"#),
    ]));
    cases.push((
        b(&json!({"lease": lease, "result": big}).to_string()),
        413,
        "result_too_large",
    ));
    expect_all_refused(
        &server,
        "POST",
        &format!("/v1/jobs/{id}/ack"),
        &cases,
        &[&id],
    )
    .await;
    assert_eq!(server.state_of(&id).await, "leased");
    let reply = server
        .post(
            &format!("/v1/jobs/{id}/ack"),
            &json!({"lease": lease}).to_string(),
        )
        .await;
    assert_eq!(reply.0, 200, "{}", reply.1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nack_refuses_bad_bodies() {
    let server = TestServer::start().await;
    let (id, lease) = leased_job(&server).await;
    let mut cases = empty();
    cases.extend(malformed());
    let long_error = "e".repeat(16 * 1024 + 1);
    cases.extend(invalid(&[
        "null".into(),
        "{}".into(),
        r#"{"delay_ms":1}"#.into(),
        format!(r#"{{"lease":"{lease}","delay_ms":-1}}"#),
        format!(r#"{{"lease":"{lease}","delay_ms":18446744073709551616}}"#),
        format!(r#"{{"lease":"{lease}","delay_ms":31536000001}}"#),
        format!(r#"{{"lease":"{lease}","delay_ms":"10"}}"#),
        format!(r#"{{"lease":"{lease}","dead":"yes"}}"#),
        format!(r#"{{"lease":"{lease}","dead":1}}"#),
        format!(r#"{{"lease":"{lease}","dead":null}}"#),
        format!(r#"{{"lease":"{lease}","error":5}}"#),
        format!(r#"{{"lease":"{lease}","error":{{"msg":"x"}}}}"#),
        json!({"lease": lease, "error": long_error}).to_string(),
        format!(r#"{{"lease":"{lease}","bogus":1}}"#),
    ]));
    expect_all_refused(
        &server,
        "POST",
        &format!("/v1/jobs/{id}/nack"),
        &cases,
        &[&id],
    )
    .await;
    let view = server.get(&format!("/v1/jobs/{id}")).await.1;
    assert_eq!(
        (
            view["state"].as_str(),
            view["attempts"].as_u64(),
            &view["last_error"]
        ),
        (Some("leased"), Some(1), &Value::Null)
    );
    let reply = server
        .post(
            &format!("/v1/jobs/{id}/nack"),
            &json!({"lease": lease}).to_string(),
        )
        .await;
    assert_eq!(reply.0, 200, "{}", reply.1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extend_refuses_bad_bodies() {
    let server = TestServer::start().await;
    let (id, lease) = leased_job(&server).await;
    let mut cases = empty();
    cases.extend(malformed());
    cases.extend(invalid(&[
        "null".into(),
        "{}".into(),
        r#"{"lease_ms":1000}"#.into(),
        format!(r#"{{"lease":"{lease}"}}"#),
        format!(r#"{{"lease":"{lease}","lease_ms":null}}"#),
        format!(r#"{{"lease":"{lease}","lease_ms":0}}"#),
        format!(r#"{{"lease":"{lease}","lease_ms":43200001}}"#),
        format!(r#"{{"lease":"{lease}","lease_ms":-1}}"#),
        format!(r#"{{"lease":"{lease}","lease_ms":18446744073709551616}}"#),
        format!(r#"{{"lease":"{lease}","lease_ms":"5"}}"#),
        format!(r#"{{"lease":"{lease}","bogus":1}}"#),
    ]));
    expect_all_refused(
        &server,
        "POST",
        &format!("/v1/jobs/{id}/extend"),
        &cases,
        &[&id],
    )
    .await;
    let view = server.get(&format!("/v1/jobs/{id}")).await.1;
    assert_eq!(view["lease_expires_at"], "2026-01-01T00:00:30.000Z");
    let reply = server
        .post(
            &format!("/v1/jobs/{id}/extend"),
            &json!({"lease": lease, "lease_ms": 43_200_000}).to_string(),
        )
        .await;
    assert_eq!(reply.0, 200, "12 h exactly is allowed: {}", reply.1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patch_refuses_bad_bodies() {
    let server = TestServer::start().await;
    assert_eq!(
        server
            .patch("/v1/queues/q", r#"{"lease_ms":10000}"#)
            .await
            .0,
        200
    );
    let mut cases = empty();
    cases.extend(malformed());
    cases.extend(invalid(
        &[
            "null",
            "[]",
            r#"{"lease_ms":0}"#,
            r#"{"lease_ms":43200001}"#,
            r#"{"lease_ms":-1}"#,
            r#"{"lease_ms":18446744073709551616}"#,
            r#"{"lease_ms":"5000"}"#,
            r#"{"max_attempts":0}"#,
            r#"{"max_attempts":1001}"#,
            r#"{"max_attempts":-2}"#,
            r#"{"backoff":{"base_ms":5000,"cap_ms":1000}}"#,
            r#"{"backoff":{"base_ms":600001}}"#,
            r#"{"backoff":{"cap_ms":31536000001,"base_ms":1}}"#,
            r#"{"backoff":5}"#,
            r#"{"backoff":{"jitter":"no"}}"#,
            r#"{"backoff":{"bogus":1}}"#,
            r#"{"paused":1}"#,
            r#"{"name":"other"}"#,
            r#"{"counts":{}}"#,
            r#"{"lease_ms":5000,"max_attempts":0}"#,
        ]
        .map(String::from),
    ));
    expect_all_refused(&server, "PATCH", "/v1/queues/q", &cases, &[]).await;
    assert_eq!(server.get("/v1/queues/q").await.1["lease_ms"], 10000);
    // On a queue that does not exist yet: not created.
    expect_all_refused(&server, "PATCH", "/v1/queues/new", &cases, &[]).await;
    assert_error(&server.get("/v1/queues/new").await, 404, "queue_not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_refuses_bad_bodies() {
    let server = TestServer::start().await;
    let (id, lease) = leased_job(&server).await;
    let (status, reply) = server
        .post(
            &format!("/v1/jobs/{id}/nack"),
            &json!({"lease": lease, "dead": true}).to_string(),
        )
        .await;
    assert_eq!((status, reply["state"].as_str()), (200, Some("dead")));
    let mut cases = malformed();
    cases.extend(invalid(
        &[
            "null",
            r#"{"ids":"x"}"#,
            r#"{"ids":null}"#,
            r#"{"ids":[1]}"#,
            r#"{"ids":{}}"#,
            r#"{"bogus":1}"#,
            r#"{"id":["1"]}"#,
        ]
        .map(String::from),
    ));
    let too_many = json!({"ids": vec![id.clone(); 1001]}).to_string();
    cases.push((b(&too_many), 413, "batch_too_large"));
    expect_all_refused(&server, "POST", "/v1/queues/q/replay", &cases, &[&id]).await;
    assert_eq!(server.state_of(&id).await, "dead");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_ack_refuses_bad_bodies() {
    let server = TestServer::start().await;
    let (id, lease) = leased_job(&server).await;
    let mut cases = malformed();
    let item = json!({"id": id, "lease": lease});
    cases.extend(invalid(&[
        "null".into(),
        "{}".into(),
        r#"{"acks":{}}"#.into(),
        r#"{"acks":null}"#.into(),
        json!({"acks": [{"id": id}]}).to_string(),
        json!({"acks": [{"lease": lease}]}).to_string(),
        json!({"acks": [{"id": id.parse::<u64>().unwrap(), "lease": lease}]}).to_string(),
        json!({"acks": [{"id": id, "lease": lease, "bogus": 1}]}).to_string(),
        json!({"acks": [item], "bogus": 1}).to_string(),
        // One bad item refuses the whole batch, valid items included.
        json!({"acks": [item, {"id": id}]}).to_string(),
    ]));
    let big = json!({"acks": [item, {"id": id, "lease": lease, "result": "x".repeat(1 << 20)}]})
        .to_string();
    cases.push((b(&big), 413, "result_too_large"));
    let too_many = json!({"acks": vec![item.clone(); 1001]}).to_string();
    cases.push((b(&too_many), 413, "batch_too_large"));
    expect_all_refused(&server, "POST", "/v1/ack", &cases, &[&id]).await;
    assert_eq!(server.state_of(&id).await, "leased");
    let (status, reply) = server
        .post("/v1/ack", &json!({"acks": [item]}).to_string())
        .await;
    assert_eq!(
        (status, &reply["acks"][0]["ok"]),
        (200, &json!(true)),
        "{reply}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_ack_with_an_empty_body_is_400_empty_body() {
    // `{}` is 422 (acks is required), so an empty body, which says even less, must not be a
    // successful no-op.
    let server = TestServer::start().await;
    let (id, _) = leased_job(&server).await;
    expect_all_refused(&server, "POST", "/v1/ack", &empty(), &[&id]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_queue_names_are_400() {
    let server = TestServer::start().await;
    let long = "a".repeat(129);
    let names = [
        "a%20b",
        "a%2Fb",
        "%2F",
        long.as_str(),
        "caf%C3%A9",
        "a%00b",
        "a+b",
        "a*b",
        ".",
        "..",
        "%2E",
        "%2E%2E",
    ];
    for name in names {
        let routes: [(&str, String, Option<&str>); 10] = [
            (
                "POST",
                format!("/v1/queues/{name}/jobs"),
                Some(r#"{"payload":1}"#),
            ),
            ("GET", format!("/v1/queues/{name}/jobs?state=dead"), None),
            ("DELETE", format!("/v1/queues/{name}/jobs"), None),
            ("POST", format!("/v1/queues/{name}/poll"), Some("{}")),
            ("GET", format!("/v1/queues/{name}"), None),
            (
                "PATCH",
                format!("/v1/queues/{name}"),
                Some(r#"{"lease_ms":1000}"#),
            ),
            ("POST", format!("/v1/queues/{name}/pause"), None),
            ("POST", format!("/v1/queues/{name}/resume"), None),
            ("POST", format!("/v1/queues/{name}/replay"), Some("{}")),
            (
                "POST",
                format!("/v1/queues/{name}/jobs"),
                Some(r#"{"jobs":[{"payload":1}]}"#),
            ),
        ];
        for (method, path, body) in routes {
            let reply = request_bytes(server.addr, method, &path, body.map(b), &[]).await;
            assert_eq!(reply.0, 400, "{method} {path}: {}", reply.1);
            assert_eq!(
                reply.1["error"]["code"], "invalid_queue_name",
                "{method} {path}: {}",
                reply.1
            );
        }
    }
    assert_eq!(
        server.get("/v1/queues").await,
        (200, json!({"queues": [], "next_after": null}))
    );
    // The longest valid name, and every allowed character, work.
    let longest = "b".repeat(128);
    server.enqueue(&longest, r#"{"payload":1}"#).await;
    server.enqueue("Az09._-", r#"{"payload":1}"#).await;
    assert_eq!(
        server.get("/v1/queues").await.1["queues"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_ids_that_are_not_canonical_numbers_are_404() {
    let server = TestServer::start().await;
    let (id, lease) = leased_job(&server).await;
    let before = snapshot(&server, &[&id]).await;
    let body = json!({"lease": lease, "lease_ms": 1000}).to_string();
    let padded = format!("0{id}");
    let signed = format!("%2B{id}");
    let spaced = format!("%20{id}");
    for bad in [
        padded.as_str(),
        signed.as_str(),
        spaced.as_str(),
        "abc",
        "-1",
        "1.5",
        "0x1",
        "18446744073709551616",
        "%20",
        &format!("{id}a"),
    ] {
        for (method, path, body) in [
            ("GET", format!("/v1/jobs/{bad}"), None),
            ("DELETE", format!("/v1/jobs/{bad}"), None),
            ("POST", format!("/v1/jobs/{bad}/ack"), Some(body.as_str())),
            ("POST", format!("/v1/jobs/{bad}/nack"), Some(body.as_str())),
            (
                "POST",
                format!("/v1/jobs/{bad}/extend"),
                Some(body.as_str()),
            ),
        ] {
            let reply = request_bytes(server.addr, method, &path, body.map(b), &[]).await;
            assert_eq!(reply.0, 404, "{method} {path}: {}", reply.1);
            assert_eq!(
                reply.1["error"]["code"], "job_not_found",
                "{method} {path}: {}",
                reply.1
            );
        }
    }
    assert_eq!(snapshot(&server, &[&id]).await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn path_segments_that_are_not_utf8_are_400_invalid_path() {
    let server = TestServer::start().await;
    let (id, _) = leased_job(&server).await;
    let before = snapshot(&server, &[&id]).await;
    for (method, path) in [
        ("POST", "/v1/queues/%FF/jobs"),
        ("POST", "/v1/queues/%C3%28/poll"),
        ("GET", "/v1/queues/%FF"),
        ("GET", "/v1/jobs/%FF"),
        ("POST", "/v1/jobs/%FF/ack"),
    ] {
        let reply =
            request_bytes(server.addr, method, path, Some(b(r#"{"payload":1}"#)), &[]).await;
        assert_eq!(reply.0, 400, "{method} {path}: {}", reply.1);
        assert_eq!(
            reply.1["error"]["code"], "invalid_path",
            "{method} {path}: {}",
            reply.1
        );
    }
    assert_eq!(snapshot(&server, &[&id]).await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_routes_are_404_and_wrong_methods_405() {
    let server = TestServer::start().await;
    let id = server.enqueue("q", r#"{"payload":1}"#).await;
    let before = snapshot(&server, &[&id]).await;
    let job_path = format!("/v1/jobs/{id}");
    for (method, path) in [
        ("GET", "/v2/queues"),
        ("GET", "/v1/queue"),
        ("POST", "/v1/jobs"),
        ("GET", "/v1/queues/q/jobs/extra"),
        ("POST", "/v1/queues/q/purge"),
        ("GET", "/v1/jobs/1/result"),
        ("GET", "/metrics/x"),
        ("GET", "/v1/queues/"),
        ("POST", "/v1/queues/q/jobs/"),
        ("GET", "/v1/jobs/1/"),
        ("GET", "/healthz/"),
    ] {
        let reply = request_bytes(server.addr, method, path, Some(b("{}")), &[]).await;
        assert_error(&reply, 404, "not_found");
    }
    for (method, path) in [
        // `POST /` is the SQS endpoint, `GET /` opens the dashboard.
        ("PUT", "/"),
        ("POST", "/ui"),
        ("PUT", "/v1/queues/q/jobs"),
        ("GET", "/v1/queues/q/poll"),
        ("POST", "/v1/queues"),
        ("POST", "/v1/jobs/1"),
        ("PATCH", job_path.as_str()),
        ("GET", "/v1/jobs/1/ack"),
        ("GET", "/v1/ack"),
        ("POST", "/healthz"),
        ("DELETE", "/metrics"),
        ("GET", "/v1/queues/q/replay"),
    ] {
        let reply = request_bytes(server.addr, method, path, Some(b("{}")), &[]).await;
        assert_error(&reply, 405, "method_not_allowed");
    }
    assert_eq!(snapshot(&server, &[&id]).await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_json_is_400_even_when_a_field_is_wrong_before_the_syntax_error() {
    // docs/api.md, Request parsing: "A body that is not JSON (a syntax error, invalid UTF-8, or
    // trailing data after the value) is 400 invalid_json", wherever the first problem is. The
    // enqueue route gets most of these right; the others answer 422 for the field they read
    // before reaching the syntax error.
    let server = TestServer::start().await;
    let (id, lease) = leased_job(&server).await;
    let before = snapshot(&server, &[&id]).await;
    let mut cases: Vec<(&str, String, String)> = Vec::new();
    // The same two bodies on every JSON route: an unknown key missing its colon, and an
    // unterminated array.
    for (method, path) in [
        ("POST", "/v1/queues/q/jobs".to_owned()),
        ("POST", "/v1/queues/q/poll".to_owned()),
        ("POST", format!("/v1/jobs/{id}/ack")),
        ("POST", format!("/v1/jobs/{id}/nack")),
        ("POST", format!("/v1/jobs/{id}/extend")),
        ("PATCH", "/v1/queues/q".to_owned()),
        ("POST", "/v1/queues/q/replay".to_owned()),
        ("POST", "/v1/ack".to_owned()),
    ] {
        cases.push((method, path.clone(), r#"{"a" 1}"#.into()));
        cases.push((method, path, "[1,".into()));
    }
    cases.extend([
        (
            "POST",
            "/v1/queues/q/jobs".into(),
            r#"{"payload":1,"bogus":2} trailing"#.into(),
        ),
        (
            "POST",
            "/v1/queues/q/jobs".into(),
            r#"{"payload":1,"priority":"urgent""#.into(),
        ),
        ("POST", "/v1/queues/q/poll".into(), r#"{"max":"1""#.into()),
        ("POST", format!("/v1/jobs/{id}/ack"), r#"{"lease":1"#.into()),
        (
            "POST",
            format!("/v1/jobs/{id}/ack"),
            format!(r#"{{"lease":"{lease}"}} trailing"#),
        ),
        (
            "POST",
            format!("/v1/jobs/{id}/nack"),
            format!(r#"{{"lease":"{lease}","dead":"yes""#),
        ),
        (
            "POST",
            format!("/v1/jobs/{id}/extend"),
            format!(r#"{{"lease":"{lease}","lease_ms":-1,"#),
        ),
        (
            "PATCH",
            "/v1/queues/q".into(),
            r#"{"bogus":1} trailing"#.into(),
        ),
        ("POST", "/v1/queues/q/replay".into(), r#"{"ids":"x""#.into()),
        ("POST", "/v1/ack".into(), r#"{"acks":{}"#.into()),
    ]);
    let mut wrong = Vec::new();
    for (method, path, body) in &cases {
        let reply = request_bytes(server.addr, method, path, Some(b(body)), &[]).await;
        if (reply.0, reply.1["error"]["code"].as_str()) != (400, Some("invalid_json")) {
            wrong.push(format!(
                "{method} {path} {body:?} -> {} {}",
                reply.0, reply.1["error"]["code"]
            ));
        }
        assert_eq!(
            snapshot(&server, &[&id]).await,
            before,
            "{method} {path} {body:?} changed something"
        );
    }
    assert!(
        wrong.is_empty(),
        "{} of {} malformed bodies were not 400 invalid_json:\n{}",
        wrong.len(),
        cases.len(),
        wrong.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_arrays_are_not_accepted_as_request_objects() {
    // Every request body is a JSON object (docs/api.md lists each body's fields; for enqueue,
    // "a body that is not an object" is 422 invalid_value). serde's derived structs also accept
    // a sequence of their fields in declaration order; none of these may be taken as a request,
    // let alone acted on.
    let server = TestServer::start().await;
    for n in 0..5 {
        server
            .enqueue("q", &json!({"payload": n}).to_string())
            .await;
    }
    // One leased job per case that presents a lease, so each case is judged on its own.
    let leased: Vec<(String, String)> = server
        .poll("q", 5)
        .await
        .iter()
        .map(|d| {
            (
                d["id"].as_str().unwrap().to_owned(),
                d["lease"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let ready = server.enqueue("q", r#"{"payload":"ready"}"#).await;
    let ids: Vec<&str> = leased
        .iter()
        .map(|(id, _)| id.as_str())
        .chain([ready.as_str()])
        .collect();
    let before = snapshot(&server, &ids).await;
    let [(a, la), (n, ln), (e, le), (b1, lb1), (b2, lb2)] = leased.as_slice() else {
        unreachable!()
    };
    let cases: Vec<(&str, String, String)> = vec![
        ("POST", "/v1/queues/q/poll".into(), "[]".into()),
        ("POST", "/v1/queues/q/poll".into(), "[5]".into()),
        (
            "POST",
            format!("/v1/jobs/{a}/ack"),
            json!([la, null]).to_string(),
        ),
        (
            "POST",
            format!("/v1/jobs/{n}/nack"),
            json!([ln, "e", null, true]).to_string(),
        ),
        (
            "POST",
            format!("/v1/jobs/{e}/extend"),
            json!([le, 60000]).to_string(),
        ),
        (
            "POST",
            "/v1/ack".into(),
            json!([[{"id": b1, "lease": lb1}]]).to_string(),
        ),
        (
            "POST",
            "/v1/ack".into(),
            json!({"acks": [[b2, lb2, null]]}).to_string(),
        ),
        (
            "PATCH",
            "/v1/queues/q".into(),
            "[1000, null, null, null]".into(),
        ),
        ("POST", "/v1/queues/q/replay".into(), "[null]".into()),
        ("POST", "/v1/queues/q/jobs".into(), "[1]".into()),
    ];
    let mut wrong = Vec::new();
    for (method, path, body) in &cases {
        let reply = request_bytes(server.addr, method, path, Some(b(body)), &[]).await;
        if (reply.0, reply.1["error"]["code"].as_str()) != (422, Some("invalid_value")) {
            wrong.push(format!("{method} {path} {body} -> {} {}", reply.0, reply.1));
        }
    }
    let after = snapshot(&server, &ids).await;
    assert!(
        wrong.is_empty(),
        "{} of {} array bodies were accepted:\n{}",
        wrong.len(),
        cases.len(),
        wrong.join("\n")
    );
    assert_eq!(after, before, "array bodies changed something");
}

/// A payload nested deeper than 64 levels, or holding a number no 64-bit float can hold,
/// would be stored and then break every reader of it (serde_json's own `Value` among them):
/// refused on every route that takes a payload or a result, with nothing changed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payloads_too_deep_or_with_numbers_beyond_f64_are_422_everywhere() {
    let server = TestServer::start().await;
    let (id, lease) = leased_job(&server).await;
    let nested = |levels: usize| format!("{}{}", "[".repeat(levels), "]".repeat(levels));
    let bad_values = [nested(65), "1e309".to_owned(), "[-1e400]".to_owned()];
    // A durable enqueue makes the lease's event durable too: the head stands still from here.
    server.enqueue("flush", r#"{"payload":null}"#).await;
    let head = server.broker().events_head();
    let last_change = common::last_change(&server, None).await;
    for value in &bad_values {
        let cases = invalid(&[format!(r#"{{"payload":{value}}}"#)]);
        expect_all_refused(&server, "POST", "/v1/queues/q/jobs", &cases, &[&id]).await;
        let batch = invalid(&[format!(
            r#"{{"jobs":[{{"payload":1}},{{"payload":{value}}}]}}"#
        )]);
        expect_all_refused(&server, "POST", "/v1/queues/q/jobs", &batch, &[&id]).await;
        let ack = invalid(&[format!(r#"{{"lease":"{lease}","result":{value}}}"#)]);
        expect_all_refused(&server, "POST", &format!("/v1/jobs/{id}/ack"), &ack, &[&id]).await;
        let message = invalid(&[format!(
            r#"{{"messages":[{{"topic":"t","payload":{value}}}]}}"#
        )]);
        expect_all_refused(&server, "POST", "/v1/outbox", &message, &[&id]).await;
        let schedule = invalid(&[format!(
            r#"{{"cron":"* * * * *","queue":"q","job":{{"payload":{value}}}}}"#
        )]);
        expect_all_refused(&server, "PUT", "/v1/schedules/s", &schedule, &[&id]).await;
    }
    // Only the refused schedule puts' audit records were written.
    assert_eq!(common::last_change(&server, None).await, last_change);
    let refusals = bad_values.len() as u64;
    assert_eq!(server.broker().events_head(), head + refusals);
    // 64 levels, a string that looks deep, and large but finite numbers are fine, and read back.
    let payload = format!(
        r#"[{},"[[[[\"",1.7e308,-123456789012345678901234567890]"#,
        nested(63)
    );
    let kept = server
        .enqueue("q", &format!(r#"{{"payload":{payload}}}"#))
        .await;
    let (status, page) = server.get("/v1/queues/q/jobs?state=ready").await;
    assert_eq!(status, 200, "{page}");
    let listed = page["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["id"] == kept.as_str())
        .unwrap();
    assert_eq!(listed["payload"][1], "[[[[\"");
}

/// A key given twice is refused wherever a body is read as a map (serde keeps the last value,
/// so a second `jobs` list used to replace the first without a word).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_keys_are_422_and_change_nothing() {
    let server = TestServer::start().await;
    let (id, lease) = leased_job(&server).await;
    let enqueues = invalid(&[
        r#"{"jobs":[{"payload":1}],"jobs":[{"payload":2},{"payload":3}]}"#.into(),
        r#"{"jobs":[{"payload":1}],"emit":[],"emit":[]}"#.into(),
        r#"{"payload":1,"headers":{"a":"1","a":"2"}}"#.into(),
        r#"{"jobs":[{"payload":1,"headers":{"a":"1","a":"2"}}]}"#.into(),
        r#"{"payload":1,"payload":2}"#.into(),
    ]);
    expect_all_refused(&server, "POST", "/v1/queues/q/jobs", &enqueues, &[&id]).await;
    let acks = invalid(&[
        format!(r#"{{"lease":"{lease}","enqueue":[{{"queue":"a","queue":"b","payload":1}}]}}"#),
        format!(
            r#"{{"lease":"{lease}","emit":[{{"topic":"t","payload":1,"headers":{{"h":"1","h":"2"}}}}]}}"#
        ),
    ]);
    expect_all_refused(
        &server,
        "POST",
        &format!("/v1/jobs/{id}/ack"),
        &acks,
        &[&id],
    )
    .await;
    let reply = server
        .post(
            "/v1/queues/q/jobs",
            r#"{"jobs":[{"payload":1}],"jobs":[{"payload":2}]}"#,
        )
        .await;
    assert!(
        reply.1["error"]["message"]
            .as_str()
            .unwrap()
            .contains("duplicate key \"jobs\""),
        "{}",
        reply.1
    );
}

/// An enqueue batch over `max_batch` is refused as soon as its parse reaches the item past the
/// limit: the rest is never built (it used to be parsed whole first, 600k jobs taking ~360 MB
/// for a body just under `max_body_bytes`). An item past the limit that is itself invalid
/// shows it: the reply is 413, not that item's 422.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_batch_is_refused_before_the_items_past_the_limit_are_parsed() {
    let server = TestServer::start().await;
    let mut jobs = vec![r#"{"payload":1}"#; 1000];
    jobs.push(r#"{"payload":1,"not_a_field":true}"#);
    let body = format!(r#"{{"jobs":[{}]}}"#, jobs.join(","));
    let reply = request_bytes(
        server.addr,
        "POST",
        "/v1/queues/q/jobs",
        Some(b(&body)),
        &[],
    )
    .await;
    assert_error(&reply, 413, "batch_too_large");
    assert!(
        reply.1["error"]["message"]
            .as_str()
            .unwrap()
            .contains("more than 1000"),
        "{}",
        reply.1
    );
    assert_eq!(
        server.get("/v1/queues").await,
        (200, json!({"queues": [], "next_after": null}))
    );
}
