//! Rate limits per key, on the broker's manual clock: a burst of one second's worth, then
//! 429 `rate_limited` with `Retry-After` and the `RateLimit-*` headers, changing nothing; each
//! class of route counted apart; refilled as the clock moves; limits kept across a restart and
//! never raised by the keys a limited key creates.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may unwrap
mod common;
use common::TestServer;

use axum::body::Bytes;
use serde_json::{Value, json};

/// A request as `key`: status, the headers asked for, and the body.
async fn call(
    server: &TestServer,
    key: &str,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> (u16, Vec<Option<String>>, Value) {
    let auth = format!("Bearer {key}");
    let (status, headers, bytes) = wharf::client::request_full(
        server.addr,
        method,
        path,
        body.map(|b| Bytes::from(b.to_owned())),
        &[("authorization", &auth)],
    )
    .await
    .unwrap();
    let named = [
        "retry-after",
        "ratelimit-limit",
        "ratelimit-remaining",
        "ratelimit-reset",
    ]
    .iter()
    .map(|h| headers.get(*h).map(|v| v.to_str().unwrap().to_owned()))
    .collect();
    let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, named, value)
}

fn some(values: &[&str]) -> Vec<Option<String>> {
    values
        .iter()
        .map(|v| (!v.is_empty()).then(|| (*v).to_owned()))
        .collect()
}

async fn key(server: &TestServer, by: &str, spec: Value) -> String {
    let (status, _, body) = call(server, by, "POST", "/v1/keys", Some(&spec.to_string())).await;
    assert_eq!(status, 201, "{body}");
    body["key"].as_str().unwrap().to_owned()
}

async fn ready(server: &TestServer, op: &str) -> Value {
    let (_, _, queue) = call(server, op, "GET", "/v1/queues/q", None).await;
    queue["counts"]["ready"].clone()
}

#[tokio::test]
async fn over_its_limit_a_key_gets_429_until_the_bucket_refills() {
    let server = TestServer::start().await;
    let op = {
        let (status, body) = server
            .post("/v1/keys", r#"{"tenant":"*","scopes":["*"]}"#)
            .await;
        assert_eq!(status, 201, "{body}");
        body["key"].as_str().unwrap().to_owned()
    };
    let producer = key(
        &server,
        &op,
        json!({"scopes": ["jobs:enqueue", "jobs:consume", "jobs:read"], "limits": {"enqueue_per_sec": 2}}),
    )
    .await;
    let job = Some(r#"{"payload":1}"#);
    let enqueue = || call(&server, &producer, "POST", "/v1/queues/q/jobs", job);
    let (status, headers, _) = enqueue().await;
    assert_eq!((status, headers), (201, some(&["", "2", "1", "1"])));
    let (status, headers, _) = enqueue().await;
    assert_eq!((status, headers), (201, some(&["", "2", "0", "1"])));
    let (status, headers, body) = enqueue().await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"]["code"], "rate_limited");
    assert_eq!(body["error"]["retry_after_ms"], 500);
    assert_eq!(headers, some(&["1", "2", "0", "1"]));
    // The refused enqueue changed nothing.
    assert_eq!(ready(&server, &op).await, 2);
    // Another class is counted apart, and has no limit here: no headers either.
    let (status, headers, body) =
        call(&server, &producer, "POST", "/v1/queues/q/poll", Some("{}")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(headers, some(&["", "", "", ""]));
    // Half a second refills one.
    server.advance(500).await;
    assert_eq!(enqueue().await.0, 201);
    assert_eq!(enqueue().await.0, 429);
    server.advance(1_000).await;
    assert_eq!(enqueue().await.1, some(&["", "2", "1", "1"]));
    // /metrics counts the refusals by tenant and reason.
    let no_key = server.get("/v1/queues").await;
    assert_eq!(no_key.0, 401);
    let auth = format!("Bearer {op}");
    let (_, _, text) = wharf::client::request_full(
        server.addr,
        "GET",
        "/metrics",
        None,
        &[("authorization", &auth)],
    )
    .await
    .unwrap();
    let text = String::from_utf8(text.to_vec()).unwrap();
    for line in [
        "wharf_requests_rejected_total{tenant=\"default\",reason=\"rate_limited\"} 2",
        "wharf_requests_rejected_total{reason=\"unauthorized\"} 1",
        "wharf_requests_total{tenant=\"default\"} 5",
    ] {
        assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
    }
    server.shutdown().await;
}

#[tokio::test]
async fn limits_survive_a_restart_and_a_limited_key_cannot_mint_an_unlimited_one() {
    let server = TestServer::start().await;
    let (_, body) = server
        .post("/v1/keys", r#"{"tenant":"*","scopes":["*"]}"#)
        .await;
    let op = body["key"].as_str().unwrap().to_owned();
    let admin = key(
        &server,
        &op,
        json!({"scopes": ["keys:admin", "jobs:read"], "limits": {"admin_per_sec": 5}}),
    )
    .await;
    for (spec, status) in [
        (
            json!({"scopes": ["jobs:read"], "limits": {"admin_per_sec": 6}}),
            403,
        ),
        (
            json!({"scopes": ["jobs:read"], "limits": {"admin_per_sec": 0}}),
            422,
        ),
        (
            json!({"scopes": ["jobs:read"], "limits": {"admin_per_sec": 2_000_000}}),
            422,
        ),
        (
            json!({"scopes": ["jobs:read"], "limits": {"per_minute": 1}}),
            422,
        ),
    ] {
        let reply = call(&server, &admin, "POST", "/v1/keys", Some(&spec.to_string())).await;
        assert_eq!(reply.0, status, "{spec}: {}", reply.2);
        server.advance(1_000).await;
    }
    // Not asked for: the creator's own limit.
    let (status, _, child) = call(
        &server,
        &admin,
        "POST",
        "/v1/keys",
        Some(r#"{"scopes":["jobs:read"]}"#),
    )
    .await;
    assert_eq!(status, 201, "{child}");
    assert_eq!(
        child["limits"],
        json!({"admin_per_sec": 5, "consume_per_sec": null, "enqueue_per_sec": null})
    );
    let child = child["key"].as_str().unwrap().to_owned();
    let server = server.restart().await;
    for _ in 0..5 {
        assert_eq!(
            call(&server, &child, "GET", "/v1/queues", None).await.0,
            200
        );
    }
    let (status, headers, _) = call(&server, &child, "GET", "/v1/queues", None).await;
    assert_eq!((status, headers[0].as_deref()), (429, Some("1")));
    server.shutdown().await;
}

#[tokio::test]
async fn a_tenants_limit_is_shared_by_all_its_keys() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::quiet_config_in(dir.path());
    config.tenant_limits.insert(
        "default".into(),
        wharf::auth::RateLimits {
            enqueue_per_sec: Some(3),
            ..Default::default()
        },
    );
    let server = TestServer::start_in(dir, config, wharf::clock::Clock::manual(common::T0)).await;
    let (_, body) = server
        .post("/v1/keys", r#"{"tenant":"*","scopes":["*"]}"#)
        .await;
    let op = body["key"].as_str().unwrap().to_owned();
    let spec = json!({"scopes": ["jobs:enqueue"]});
    let (a, b) = (
        key(&server, &op, spec.clone()).await,
        key(&server, &op, spec).await,
    );
    let job = Some(r#"{"payload":1}"#);
    let path = "/v1/queues/q/jobs";
    assert_eq!(call(&server, &a, "POST", path, job).await.0, 201);
    assert_eq!(call(&server, &a, "POST", path, job).await.0, 201);
    let (status, headers, _) = call(&server, &b, "POST", path, job).await;
    assert_eq!((status, headers), (201, some(&["", "3", "0", "1"])));
    let (status, headers, body) = call(&server, &b, "POST", path, job).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (429, &json!("rate_limited")),
        "{body}"
    );
    assert_eq!(headers[0].as_deref(), Some("1"));
    // The operator's tenant ('*') has no limit configured.
    assert_eq!(call(&server, &op, "POST", path, job).await.0, 201);
    server.advance(1_000).await;
    assert_eq!(call(&server, &b, "POST", path, job).await.0, 201);
    server.shutdown().await;
}
