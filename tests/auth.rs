//! API keys: every route × every way a request can lack the right to it, each refused with the
//! documented 401 / 403 / 404 and changing nothing; revocation on the very next request; what a
//! key may hand on; keys surviving a restart; and the safe default (no keys, no serving beyond
//! loopback).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may unwrap
mod common;
use common::keys::{call, create_key};
use common::{TestServer, request_bytes};

use serde_json::{Value, json};
use wharf::http::access::{Needs, ROUTES};

/// What the broker holds, as an operator sees it: queues with their counts, the jobs, the
/// schedules, cursors and keys. (The change log is compared apart: refusals by a known key of
/// an admin route append an audit record, and its event.)
async fn snapshot(server: &TestServer, op: &str, jobs: &[&str]) -> Value {
    let mut parts = Vec::new();
    let mut paths: Vec<String> = ["/v1/queues", "/v1/schedules", "/v1/cursors"]
        .map(str::to_owned)
        .into();
    paths.extend(jobs.iter().map(|id| format!("/v1/jobs/{id}")));
    for path in paths {
        let (status, mut body) = call(server, Some(op), "GET", &path, None).await;
        assert_eq!(status, 200, "{path}: {body}");
        // A cursor's lag follows the log's head, which `log` checks.
        for cursor in body["cursors"].as_array_mut().into_iter().flatten() {
            cursor.as_object_mut().unwrap().remove("lag");
        }
        parts.push(body);
    }
    let (_, keys) = call(server, Some(op), "GET", "/v1/keys", None).await;
    // Uses move `last_used_at`; which keys exist and which are revoked must not move.
    let keys: Vec<Value> = keys["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| json!([k["id"], k["revoked_at"], k["scopes"], k["queues"]]))
        .collect();
    parts.push(Value::Array(keys));
    Value::Array(parts)
}

/// The head of the change log and the audit records, as an operator sees them.
async fn log(server: &TestServer, op: &str) -> (u64, Vec<Value>) {
    let (_, events) = call(server, Some(op), "GET", "/v1/events?limit=1", None).await;
    let (status, audit) = call(server, Some(op), "GET", "/v1/audit?limit=1000", None).await;
    assert_eq!(status, 200, "{audit}");
    let records = audit["entries"].as_array().unwrap().clone();
    (events["head"].as_u64().unwrap(), records)
}

/// The state the matrix runs against, and the keys it uses.
struct World {
    op: String,
    /// A job in `emails` (ready) and one in `billing` (leased, with its lease).
    emails_job: String,
    billing_job: String,
    billing_lease: String,
    /// Revoked, still listed.
    revoked: String,
    revoked_id: String,
    /// Every scope but on `emails*` only.
    emails_only: String,
}

async fn world(server: &TestServer) -> World {
    // No key yet: the loopback broker is open, and the first key turns authentication on.
    let (_, op) = create_key(server, None, json!({"tenant": "*", "scopes": ["*"]})).await;
    let reply = call(server, None, "GET", "/v1/queues", None).await;
    assert_eq!(reply.0, 401, "{}", reply.1);
    let enqueue = |queue: &'static str| {
        let op = op.clone();
        async move {
            let path = format!("/v1/queues/{queue}/jobs");
            let reply = call(server, Some(&op), "POST", &path, Some(r#"{"payload":1}"#)).await;
            assert_eq!(reply.0, 201, "{}", reply.1);
            reply.1["id"].as_str().unwrap().to_owned()
        }
    };
    let emails_job = enqueue("emails").await;
    let billing_job = enqueue("billing").await;
    let (_, polled) = call(
        server,
        Some(&op),
        "POST",
        "/v1/queues/billing/poll",
        Some("{}"),
    )
    .await;
    let billing_lease = polled["jobs"][0]["lease"].as_str().unwrap().to_owned();
    let schedule = json!({"cron": "0 0 1 1 *", "queue": "billing", "job": {"payload": 1}});
    let reply = call(
        server,
        Some(&op),
        "PUT",
        "/v1/schedules/nightly",
        Some(&schedule.to_string()),
    )
    .await;
    assert_eq!(reply.0, 201, "{}", reply.1);
    let reply = call(
        server,
        Some(&op),
        "PUT",
        "/v1/cursors/c",
        Some(r#"{"seq":1}"#),
    )
    .await;
    assert_eq!(reply.0, 201, "{}", reply.1);
    let (revoked_id, revoked) = create_key(server, Some(&op), json!({"scopes": ["*"]})).await;
    let path = format!("/v1/keys/{revoked_id}");
    assert_eq!(call(server, Some(&op), "DELETE", &path, None).await.0, 200);
    let (_, emails_only) = create_key(
        server,
        Some(&op),
        json!({"scopes": ["*"], "queues": ["emails*"]}),
    )
    .await;
    World {
        op,
        emails_job,
        billing_job,
        billing_lease,
        revoked,
        revoked_id,
        emails_only,
    }
}

/// One concrete request for every route of the table, aimed at `billing`'s resources (outside
/// the `emails*` key's patterns).
fn requests(w: &World) -> Vec<(&'static str, &'static str, String, Option<String>)> {
    let job = &w.billing_job;
    let lease = json!({"lease": w.billing_lease}).to_string();
    let some = |s: &str| Some(s.to_owned());
    vec![
        ("GET", "/v1/queues", "/v1/queues".into(), None),
        (
            "GET",
            "/v1/queues/{queue}",
            "/v1/queues/billing".into(),
            None,
        ),
        (
            "PATCH",
            "/v1/queues/{queue}",
            "/v1/queues/billing".into(),
            some(r#"{"max_attempts":2}"#),
        ),
        (
            "DELETE",
            "/v1/queues/{queue}",
            "/v1/queues/billing".into(),
            None,
        ),
        (
            "POST",
            "/v1/queues/{queue}/jobs",
            "/v1/queues/billing/jobs".into(),
            some(r#"{"payload":2}"#),
        ),
        (
            "GET",
            "/v1/queues/{queue}/jobs",
            "/v1/queues/billing/jobs?state=ready".into(),
            None,
        ),
        (
            "DELETE",
            "/v1/queues/{queue}/jobs",
            "/v1/queues/billing/jobs".into(),
            None,
        ),
        (
            "POST",
            "/v1/queues/{queue}/poll",
            "/v1/queues/billing/poll".into(),
            some("{}"),
        ),
        (
            "POST",
            "/v1/queues/{queue}/pause",
            "/v1/queues/billing/pause".into(),
            None,
        ),
        (
            "POST",
            "/v1/queues/{queue}/resume",
            "/v1/queues/billing/resume".into(),
            None,
        ),
        (
            "POST",
            "/v1/queues/{queue}/replay",
            "/v1/queues/billing/replay".into(),
            some("{}"),
        ),
        ("GET", "/v1/jobs/{id}", format!("/v1/jobs/{job}"), None),
        ("DELETE", "/v1/jobs/{id}", format!("/v1/jobs/{job}"), None),
        (
            "POST",
            "/v1/jobs/{id}/ack",
            format!("/v1/jobs/{job}/ack"),
            Some(lease.clone()),
        ),
        (
            "POST",
            "/v1/jobs/{id}/nack",
            format!("/v1/jobs/{job}/nack"),
            Some(lease.clone()),
        ),
        (
            "POST",
            "/v1/jobs/{id}/extend",
            format!("/v1/jobs/{job}/extend"),
            Some(json!({"lease": w.billing_lease, "lease_ms": 9000}).to_string()),
        ),
        (
            "POST",
            "/v1/ack",
            "/v1/ack".into(),
            Some(json!({"acks": [{"id": job, "lease": w.billing_lease}]}).to_string()),
        ),
        ("GET", "/v1/schedules", "/v1/schedules".into(), None),
        (
            "GET",
            "/v1/schedules/{name}",
            "/v1/schedules/nightly".into(),
            None,
        ),
        (
            "PUT",
            "/v1/schedules/{name}",
            "/v1/schedules/nightly".into(),
            some(r#"{"cron":"* * * * *","queue":"billing","job":{"payload":3}}"#),
        ),
        (
            "DELETE",
            "/v1/schedules/{name}",
            "/v1/schedules/nightly".into(),
            None,
        ),
        (
            "POST",
            "/v1/schedules/{name}/pause",
            "/v1/schedules/nightly/pause".into(),
            None,
        ),
        (
            "POST",
            "/v1/schedules/{name}/resume",
            "/v1/schedules/nightly/resume".into(),
            None,
        ),
        (
            "POST",
            "/v1/schedules/{name}/trigger",
            "/v1/schedules/nightly/trigger".into(),
            None,
        ),
        (
            "POST",
            "/v1/outbox",
            "/v1/outbox".into(),
            some(r#"{"messages":[{"topic":"t","payload":1}]}"#),
        ),
        ("GET", "/v1/events", "/v1/events".into(), None),
        ("GET", "/v1/events/stream", "/v1/events/stream".into(), None),
        ("GET", "/v1/cursors", "/v1/cursors".into(), None),
        ("GET", "/v1/cursors/{name}", "/v1/cursors/c".into(), None),
        (
            "PUT",
            "/v1/cursors/{name}",
            "/v1/cursors/c".into(),
            some(r#"{"seq":2}"#),
        ),
        ("DELETE", "/v1/cursors/{name}", "/v1/cursors/c".into(), None),
        ("GET", "/v1/mirrors", "/v1/mirrors".into(), None),
        (
            "POST",
            "/v1/keys",
            "/v1/keys".into(),
            some(r#"{"scopes":["*"]}"#),
        ),
        ("GET", "/v1/keys", "/v1/keys".into(), None),
        (
            "DELETE",
            "/v1/keys/{id}",
            format!("/v1/keys/{}", w.revoked_id),
            None,
        ),
        ("GET", "/v1/audit", "/v1/audit".into(), None),
        ("GET", "/metrics", "/metrics".into(), None),
    ]
}

/// What a key that has every scope but only `emails*` gets on each of the billing requests:
/// 403 where it names a queue, 404 where it names a job or schedule by id or name, `None`
/// where the route touches no queue (it may use it).
fn outside_patterns(route: &str, method: &str) -> Option<(u16, &'static str)> {
    match route {
        r if r.starts_with("/v1/queues/{queue}") => Some((403, "forbidden")),
        "/v1/events" | "/v1/events/stream" => Some((403, "forbidden")),
        "/v1/jobs/{id}" | "/v1/jobs/{id}/ack" | "/v1/jobs/{id}/nack" | "/v1/jobs/{id}/extend" => {
            Some((404, "job_not_found"))
        }
        "/v1/schedules/{name}" if method == "PUT" => Some((404, "schedule_not_found")),
        r if r.starts_with("/v1/schedules/{name}") => Some((404, "schedule_not_found")),
        _ => None,
    }
}

#[tokio::test]
async fn every_route_refuses_every_missing_right_and_changes_nothing() {
    let server = TestServer::start().await;
    let w = world(&server).await;
    let requests = requests(&w);
    // The matrix covers the whole table (the SQS endpoint answers its refusals in SQS's
    // shape: tests/sqs.rs has its own).
    for (method, route, needs, _) in ROUTES {
        let covered = requests
            .iter()
            .any(|(m, r, ..)| *m == method.as_str() && r == route);
        assert!(
            covered || matches!(needs, Needs::Open | Needs::Signed),
            "{method} {route} is not in the matrix"
        );
    }
    let jobs = [w.emails_job.as_str(), w.billing_job.as_str()];
    let before = snapshot(&server, &w.op, &jobs).await;
    let unknown = format!("wk_{}_{}", "0".repeat(16), "A".repeat(43));
    let wrong_secret = format!("{}x", &w.op[..w.op.len() - 1]);
    let bad_headers: [(&str, Option<String>); 6] = [
        ("no header", None),
        ("basic auth", Some("Basic dXNlcjpwYXNz".into())),
        ("not a wharf key", Some("Bearer abc".into())),
        ("unknown key", Some(format!("Bearer {unknown}"))),
        ("wrong secret", Some(format!("Bearer {wrong_secret}"))),
        ("revoked key", Some(format!("Bearer {}", w.revoked))),
    ];
    // A key for each scope, holding every scope but that one.
    let mut without = std::collections::HashMap::new();
    for scope in wharf::auth::Scope::ALL {
        let others: Vec<&str> = wharf::auth::Scope::ALL
            .iter()
            .filter(|s| **s != scope)
            .map(|s| s.as_str())
            .collect();
        let (_, key) = create_key(&server, Some(&w.op), json!({"scopes": others})).await;
        without.insert(scope.as_str(), key);
    }
    let before_keys = snapshot(&server, &w.op, &jobs).await;
    for (method, route, path, body) in &requests {
        let body = body.as_deref();
        let (head, records) = log(&server, &w.op).await;
        // The statuses of the refusals below that the audit trail records.
        let mut audited = Vec::new();
        for (case, header) in &bad_headers {
            let headers: Vec<(&str, &str)> = header
                .iter()
                .map(|h| ("authorization", h.as_str()))
                .collect();
            let bytes = body.map(|b| b.as_bytes().to_vec());
            let reply = request_bytes(server.addr, method, path, bytes, &headers).await;
            assert_eq!(reply.0, 401, "{method} {path} with {case}: {}", reply.1);
            assert_eq!(
                reply.1["error"]["code"], "unauthorized",
                "{method} {path} {case}"
            );
        }
        let Some(Needs::Scope(scope)) = wharf::http::access::needs(&method.parse().unwrap(), route)
        else {
            panic!("{method} {route} has no scope");
        };
        let reply = call(&server, Some(&without[scope.as_str()]), method, path, body).await;
        assert_eq!(
            reply.0,
            403,
            "{method} {path} without {}: {}",
            scope.as_str(),
            reply.1
        );
        assert_eq!(reply.1["error"]["code"], "forbidden");
        audited.push(403);
        if let Some((status, code)) = outside_patterns(route, method) {
            let reply = call(&server, Some(&w.emails_only), method, path, body).await;
            assert_eq!(
                reply.0, status,
                "{method} {path} outside the patterns: {}",
                reply.1
            );
            assert_eq!(reply.1["error"]["code"], code, "{method} {path}");
            audited.push(status);
        }
        assert_eq!(
            snapshot(&server, &w.op, &jobs).await,
            before_keys,
            "{method} {path} changed something"
        );
        // The change log moved by the audit records of the refusals only (401s leave none).
        let action = wharf::http::audit::action(&method.parse().unwrap(), route);
        if action.is_none() {
            audited.clear();
        }
        let (head_after, records_after) = log(&server, &w.op).await;
        let added = &records_after[records.len()..];
        assert_eq!(
            records_after[..records.len()],
            records[..],
            "{method} {path}"
        );
        let statuses: Vec<u16> = added
            .iter()
            .map(|r| u16::try_from(r["status"].as_u64().unwrap()).unwrap())
            .collect();
        assert_eq!(statuses, audited, "{method} {path}: {added:?}");
        assert!(
            added
                .iter()
                .all(|r| r["action"] == json!(action) && r["outcome"] == "refused")
        );
        assert_eq!(head_after - head, audited.len() as u64, "{method} {path}");
    }
    // Only the keys the test made were added.
    assert_ne!(before, before_keys);
    server.shutdown().await;
}

#[tokio::test]
async fn a_batch_ack_answers_404_for_the_items_outside_the_patterns() {
    let server = TestServer::start().await;
    let w = world(&server).await;
    let body = json!({"acks": [{"id": w.billing_job, "lease": w.billing_lease}]}).to_string();
    let reply = call(
        &server,
        Some(&w.emails_only),
        "POST",
        "/v1/ack",
        Some(&body),
    )
    .await;
    assert_eq!(reply.0, 200, "{}", reply.1);
    assert_eq!(reply.1["acks"][0]["ok"], false, "{}", reply.1);
    assert_eq!(reply.1["acks"][0]["status"], 404, "{}", reply.1);
    let job = format!("/v1/jobs/{}", w.billing_job);
    let (_, view) = call(&server, Some(&w.op), "GET", &job, None).await;
    assert_eq!(view["state"], "leased");
    server.shutdown().await;
}

#[tokio::test]
async fn a_restricted_key_sees_and_works_only_its_own_queues() {
    let server = TestServer::start().await;
    let w = world(&server).await;
    let key = Some(w.emails_only.as_str());
    let (_, list) = call(&server, key, "GET", "/v1/queues", None).await;
    let names: Vec<&str> = list["queues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["emails"]);
    let (_, schedules) = call(&server, key, "GET", "/v1/schedules", None).await;
    assert_eq!(schedules["schedules"], json!([]));
    let (status, page) = call(&server, key, "GET", "/v1/events?queue=emails", None).await;
    assert_eq!(status, 200, "{page}");
    assert!(
        page["events"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["queue"] == "emails")
    );
    // It works its queue end to end.
    let (_, polled) = call(&server, key, "POST", "/v1/queues/emails/poll", Some("{}")).await;
    let job = &polled["jobs"][0];
    assert_eq!(job["id"].as_str(), Some(w.emails_job.as_str()));
    let ack = json!({"lease": job["lease"]}).to_string();
    let path = format!("/v1/jobs/{}/ack", w.emails_job);
    assert_eq!(call(&server, key, "POST", &path, Some(&ack)).await.0, 200);
    server.shutdown().await;
}

#[tokio::test]
async fn side_effects_need_their_own_scope_and_queues() {
    let server = TestServer::start().await;
    let w = world(&server).await;
    let (_, producer) = create_key(
        &server,
        Some(&w.op),
        json!({"scopes": ["jobs:enqueue", "jobs:consume"], "queues": ["emails*"]}),
    )
    .await;
    let key = Some(producer.as_str());
    let emitting = r#"{"payload":1,"emit":[{"topic":"t","payload":1}]}"#;
    let reply = call(
        &server,
        key,
        "POST",
        "/v1/queues/emails/jobs",
        Some(emitting),
    )
    .await;
    assert_eq!(
        (reply.0, &reply.1["error"]["code"]),
        (403, &json!("forbidden")),
        "{}",
        reply.1
    );
    let (_, polled) = call(&server, key, "POST", "/v1/queues/emails/poll", Some("{}")).await;
    let lease = &polled["jobs"][0]["lease"];
    let path = format!("/v1/jobs/{}/ack", w.emails_job);
    let into_billing = json!({"lease": lease, "enqueue": [{"queue": "billing", "payload": 1}]});
    let reply = call(&server, key, "POST", &path, Some(&into_billing.to_string())).await;
    assert_eq!(reply.0, 403, "{}", reply.1);
    let into_emails = json!({"lease": lease, "enqueue": [{"queue": "emails.next", "payload": 1}]});
    let reply = call(&server, key, "POST", &path, Some(&into_emails.to_string())).await;
    assert_eq!(reply.0, 200, "{}", reply.1);
    server.shutdown().await;
}

#[tokio::test]
async fn a_key_grants_only_what_it_has() {
    let server = TestServer::start().await;
    let w = world(&server).await;
    let (_, admin) = create_key(
        &server,
        Some(&w.op),
        json!({"scopes": ["keys:admin", "jobs:read"], "queues": ["emails*"]}),
    )
    .await;
    let key = Some(admin.as_str());
    for (spec, status) in [
        (json!({"scopes": ["jobs:enqueue"]}), 403),
        (json!({"scopes": ["jobs:read"], "queues": ["billing"]}), 403),
        (json!({"scopes": ["jobs:read"], "queues": ["*"]}), 403),
        (json!({"scopes": ["*"]}), 403),
        (json!({"scopes": ["jobs:read"], "tenant": "*"}), 403),
        (json!({"scopes": ["jobs:read"], "tenant": "acme"}), 403),
        (json!({"scopes": ["jobs:read"], "tenant": "a:b"}), 422),
        (json!({"scopes": ["jobs:dance"]}), 422),
        (json!({"scopes": ["jobs:read"], "queues": ["a b"]}), 422),
        (json!({"scopes": []}), 422),
        (json!({"scopes": ["jobs:read"], "label": "a\u{7}b"}), 422),
        (json!({"scopes": ["jobs:read"], "secret": "x"}), 422),
    ] {
        let reply = call(&server, key, "POST", "/v1/keys", Some(&spec.to_string())).await;
        assert_eq!(reply.0, status, "{spec}: {}", reply.1);
    }
    // Within its own rights it may, and the new key inherits its queues.
    let (_, child) = create_key(&server, key, json!({"scopes": ["jobs:read"]})).await;
    let reply = call(&server, Some(&child), "GET", "/v1/queues/billing", None).await;
    assert_eq!(reply.0, 403, "{}", reply.1);
    server.shutdown().await;
}

#[tokio::test]
async fn revocation_takes_effect_on_the_next_request_and_keys_survive_a_restart() {
    let server = TestServer::start().await;
    let (_, op) = create_key(&server, None, json!({"tenant": "*", "scopes": ["*"]})).await;
    let (id, worker) = create_key(&server, Some(&op), json!({"scopes": ["jobs:read"]})).await;
    assert_eq!(
        call(&server, Some(&worker), "GET", "/v1/queues", None)
            .await
            .0,
        200
    );
    let path = format!("/v1/keys/{id}");
    let revoked = call(&server, Some(&op), "DELETE", &path, None).await;
    assert_eq!(revoked.0, 200, "{}", revoked.1);
    assert!(revoked.1["revoked_at"].is_string(), "{}", revoked.1);
    let reply = call(&server, Some(&worker), "GET", "/v1/queues", None).await;
    assert_eq!(reply.0, 401);
    assert_eq!(reply.1["error"]["message"], "this API key was revoked");
    // Revoking it again changes nothing.
    let again = call(&server, Some(&op), "DELETE", &path, None).await;
    assert_eq!((again.0, &again.1), (200, &revoked.1));
    let server = server.restart().await;
    assert_eq!(
        call(&server, Some(&op), "GET", "/v1/queues", None).await.0,
        200
    );
    assert_eq!(
        call(&server, Some(&worker), "GET", "/v1/queues", None)
            .await
            .0,
        401
    );
    assert_eq!(call(&server, None, "GET", "/v1/queues", None).await.0, 401);
    let (_, keys) = call(&server, Some(&op), "GET", "/v1/keys", None).await;
    let listed = keys["keys"].as_array().unwrap();
    assert_eq!(listed.len(), 2, "{keys}");
    assert!(
        listed.iter().all(|k| k.get("key").is_none()),
        "tokens are never listed"
    );
    // Health probes stay open.
    assert_eq!(call(&server, None, "GET", "/healthz", None).await.0, 200);
    assert_eq!(call(&server, None, "GET", "/readyz", None).await.0, 200);
    server.shutdown().await;
}

#[tokio::test]
async fn a_401_says_how_to_authenticate() {
    let server = TestServer::start().await;
    create_key(&server, None, json!({"scopes": ["*"]})).await;
    let (status, headers, _) =
        wharf::client::request_full(server.addr, "GET", "/v1/queues", None, &[])
            .await
            .unwrap();
    assert_eq!(status, 401);
    assert_eq!(headers.get("www-authenticate").unwrap(), "Bearer");
    server.shutdown().await;
}

#[tokio::test]
async fn revoking_every_key_locks_the_broker_rather_than_opening_it() {
    let server = TestServer::start().await;
    let (id, op) = create_key(&server, None, json!({"scopes": ["*"]})).await;
    let path = format!("/v1/keys/{id}");
    assert_eq!(call(&server, Some(&op), "DELETE", &path, None).await.0, 200);
    assert_eq!(call(&server, None, "GET", "/v1/queues", None).await.0, 401);
    server.shutdown().await;
}

/// Runs `wharf keys ...`; returns (success, stdout, stderr).
fn wharf_keys(args: &[&str]) -> (bool, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_wharf"))
        .arg("keys")
        .args(args)
        .env("WHARF_LOG", "error")
        .output()
        .unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.success(), text(&out.stdout), text(&out.stderr))
}

#[tokio::test]
async fn the_first_key_is_made_offline_and_the_cli_revokes_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap().to_owned();
    let (ok, out, err) = wharf_keys(&[
        "create",
        "--data-dir",
        &data,
        "--tenant",
        "*",
        "--scope",
        "*",
        "--label",
        "ops",
    ]);
    assert!(ok, "{err}");
    let token = out.lines().last().unwrap().to_owned();
    assert!(token.starts_with("wk_"), "{out}");
    let id = token[3..19].to_owned();
    assert!(out.contains(&id) && out.contains("label=\"ops\""), "{out}");
    let (ok, _, err) = wharf_keys(&["create", "--data-dir", &data, "--scope", "jobs:fly"]);
    assert!(!ok && err.contains("unknown scope"), "{err}");

    let config = common::quiet_config_in(dir.path());
    let server = TestServer::start_in(dir, config, wharf::clock::Clock::manual(common::T0)).await;
    assert_eq!(call(&server, None, "GET", "/v1/queues", None).await.0, 401);
    assert_eq!(
        call(&server, Some(&token), "GET", "/v1/queues", None)
            .await
            .0,
        200
    );
    // The running server holds the store: the CLI says what to do instead.
    let (ok, _, err) = wharf_keys(&["list", "--data-dir", &data]);
    assert!(!ok && err.contains("POST /v1/keys"), "{err}");
    let TestServer {
        server: running,
        dir,
        clock,
        ..
    } = server;
    running.unwrap().shutdown().await;

    let (ok, out, err) = wharf_keys(&["list", "--data-dir", &data]);
    assert!(
        ok && out.contains(&id) && !out.contains(&token),
        "{out}{err}"
    );
    let (ok, out, err) = wharf_keys(&["revoke", "--data-dir", &data, &id]);
    assert!(ok && out.contains("revoked"), "{out}{err}");
    let config = common::quiet_config_in(dir.path());
    let server = TestServer::start_in(dir, config, clock).await;
    assert_eq!(
        call(&server, Some(&token), "GET", "/v1/queues", None)
            .await
            .0,
        401
    );
    server.shutdown().await;
}

#[test]
fn the_cli_finds_the_data_directory_in_the_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("wharf.toml");
    std::fs::write(
        &config,
        format!("data_dir = {:?}\n", data.to_str().unwrap()),
    )
    .unwrap();
    let config = config.to_str().unwrap();
    let (ok, out, err) = wharf_keys(&["create", "--config", config, "--scope", "jobs:read"]);
    assert!(ok, "{err}");
    assert!(
        data.join("wharf.redb").exists(),
        "the key went elsewhere: {out}"
    );
    let (ok, out, err) = wharf_keys(&["list", "--config", config]);
    assert!(ok && out.contains("scopes=jobs:read"), "{out}{err}");
}
