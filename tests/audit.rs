//! The audit trail: every admin action and key change is recorded durably with who, from
//! where, what, on which target, when and its outcome, refusals included; `GET /v1/audit`
//! reads it (a tenant's key its own tenant's records); nothing edits or deletes it but its
//! retention; it flows through the change log to Postgres, into an append-only table.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may unwrap
mod common;
use common::child::spawn_wharf;
use common::keys::{call, create_key};
use common::mirroring::{config_with, converged, pg_mirror};
use common::services::{PgSchema, postgres_url};
use common::{T0, TestServer, assert_error, quiet_config_in, request};

use serde_json::{Value, json};
use wharf::clock::Clock;

const DAY: u64 = 86_400_000;

/// Every record `key` can read, page by page (`limit` per page).
async fn trail(server: &TestServer, key: Option<&str>, limit: usize) -> Vec<Value> {
    let mut records = Vec::new();
    let mut after = 0;
    loop {
        let path = format!("/v1/audit?after={after}&limit={limit}");
        let (status, page) = call(server, key, "GET", &path, None).await;
        assert_eq!(status, 200, "{page}");
        let entries = page["entries"].as_array().unwrap().clone();
        let next = page["next_after"].as_u64().unwrap();
        if next == after {
            assert!(entries.is_empty(), "{page}");
            return records;
        }
        assert!(entries.len() <= limit, "{page}");
        records.extend(entries);
        after = next;
    }
}

/// (action, target, status, error) of each record.
fn summary(records: &[Value]) -> Vec<(String, Value, u64, Value)> {
    records
        .iter()
        .map(|r| {
            (
                r["action"].as_str().unwrap().to_owned(),
                r["target"].clone(),
                r["status"].as_u64().unwrap(),
                r["error"].clone(),
            )
        })
        .collect()
}

fn row(action: &str, target: Value, status: u64, error: Value) -> (String, Value, u64, Value) {
    (action.to_owned(), target, status, error)
}

#[tokio::test]
async fn admin_actions_and_refusals_are_recorded_durably() {
    let server = TestServer::start().await;
    // Without keys: recorded with no key id.
    let reply = server
        .patch("/v1/queues/emails", r#"{"max_attempts": 3}"#)
        .await;
    assert_eq!(reply.0, 200, "{}", reply.1);
    let (op_id, op) = create_key(&server, None, json!({"tenant": "*", "scopes": ["*"]})).await;
    let (acme_id, acme) = create_key(
        &server,
        Some(&op),
        json!({"tenant": "acme", "scopes": ["jobs:enqueue"]}),
    )
    .await;
    // A key without the scope: refused, and recorded.
    let refused = call(
        &server,
        Some(&acme),
        "POST",
        "/v1/queues/emails/pause",
        None,
    )
    .await;
    assert_error(&refused, 403, "forbidden");
    // An action that fails in the handler: recorded with its code.
    let missing = call(
        &server,
        Some(&op),
        "POST",
        "/v1/queues/nope/replay",
        Some("{}"),
    )
    .await;
    assert_eq!(missing.0, 404, "{}", missing.1);
    let paused = call(&server, Some(&op), "POST", "/v1/queues/emails/pause", None).await;
    assert_eq!(paused.0, 200, "{}", paused.1);
    // No key or an unknown one: 401, not recorded (anyone could fill the disk with them).
    let anonymous = call(&server, None, "POST", "/v1/queues/emails/resume", None).await;
    assert_error(&anonymous, 401, "unauthorized");
    let unknown = call(&server, Some("wk_nope"), "DELETE", "/v1/keys/x", None).await;
    assert_error(&unknown, 401, "unauthorized");
    // Reads are not audited.
    let read = call(&server, Some(&op), "GET", "/v1/queues/emails", None).await;
    assert_eq!(read.0, 200);

    let expected = vec![
        row("queue.update", json!("emails"), 200, Value::Null),
        row("key.create", json!(op_id), 201, Value::Null),
        row("key.create", json!(acme_id), 201, Value::Null),
        row("queue.pause", json!("emails"), 403, json!("forbidden")),
        row(
            "queue.replay",
            json!("nope"),
            404,
            json!(missing.1["error"]["code"]),
        ),
        row("queue.pause", json!("emails"), 200, Value::Null),
    ];
    let records = trail(&server, Some(&op), 100).await;
    assert_eq!(summary(&records), expected);
    let seqs: Vec<u64> = records.iter().map(|r| r["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, [1, 2, 3, 4, 5, 6]);

    // Who, from where, when, and the tenant each concerns.
    let open = &records[0];
    assert_eq!(open["by"]["key_id"], Value::Null);
    assert_eq!(open["by"]["tenant"], "*");
    assert_eq!(open["tenant"], "default");
    assert_eq!(open["outcome"], "ok");
    assert_eq!(open["at"], "2026-01-01T00:00:00.000Z");
    let peer = open["by"]["peer"].as_str().unwrap();
    assert!(peer.starts_with("127.0.0.1:"), "{peer}");
    assert_eq!(
        records[2]["tenant"], "acme",
        "a key's record is its tenant's"
    );
    let refusal = &records[3];
    assert_eq!(refusal["by"]["key_id"], json!(acme_id));
    assert_eq!(refusal["by"]["tenant"], "acme");
    assert_eq!(refusal["tenant"], "acme");
    assert_eq!(refusal["outcome"], "refused");
    assert_eq!(records[5]["by"]["key_id"], json!(op_id));

    // The change log carries the same records.
    let (status, events) = call(&server, Some(&op), "GET", "/v1/events?types=audit", None).await;
    assert_eq!(status, 200, "{events}");
    let data: Vec<Value> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["data"].clone())
        .collect();
    assert_eq!(data, records);

    // Paging gives the same records, and they survive a restart.
    assert_eq!(trail(&server, Some(&op), 1).await, records);
    let server = server.restart().await;
    assert_eq!(trail(&server, Some(&op), 4).await, records);

    // Reading the trail needs keys:admin.
    let denied = call(&server, Some(&acme), "GET", "/v1/audit", None).await;
    assert_error(&denied, 403, "forbidden");
    server.shutdown().await;
}

#[tokio::test]
async fn a_record_whose_reply_was_sent_survives_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("wharf.toml"), "").unwrap();
    let (mut child, addr, _) = spawn_wharf(dir.path()).await;
    let patch = request(addr, "PATCH", "/v1/queues/q", Some(r#"{"lease_ms":"x"}"#)).await;
    assert_eq!(patch.0, 422, "{}", patch.1);
    let pause = request(addr, "POST", "/v1/queues/q/pause", None).await;
    assert_eq!(pause.0, 200, "{}", pause.1);
    child.kill().unwrap(); // SIGKILL, right after the last reply
    child.wait().unwrap();
    let (_child, addr, _) = spawn_wharf(dir.path()).await;
    let (status, page) = request(addr, "GET", "/v1/audit", None).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(
        summary(page["entries"].as_array().unwrap()),
        vec![
            row("queue.update", json!("q"), 422, json!("invalid_value")),
            row("queue.pause", json!("q"), 200, Value::Null),
        ]
    );
}

#[tokio::test]
async fn a_tenant_key_reads_its_own_tenant_records_only() {
    let server = TestServer::start().await;
    let (_, op) = create_key(&server, None, json!({"tenant": "*", "scopes": ["*"]})).await;
    let (acme_id, acme) = create_key(
        &server,
        Some(&op),
        json!({"tenant": "acme", "scopes": ["*"]}),
    )
    .await;
    let (_, globex) = create_key(
        &server,
        Some(&op),
        json!({"tenant": "globex", "scopes": ["*"]}),
    )
    .await;
    for (key, path) in [
        (&acme, "/v1/queues/emails/pause"),
        (&globex, "/v1/queues/emails/pause"),
        (&op, "/v1/queues/acme:emails/resume"),
    ] {
        let reply = call(&server, Some(key), "POST", path, None).await;
        assert_eq!(reply.0, 200, "{path}: {}", reply.1);
    }
    let cursor = call(
        &server,
        Some(&acme),
        "PUT",
        "/v1/cursors/reader",
        Some(r#"{"seq": 0}"#),
    )
    .await;
    assert_eq!(cursor.0, 201, "{}", cursor.1);

    let seen = trail(&server, Some(&acme), 2).await;
    assert_eq!(
        summary(&seen),
        vec![
            row("key.create", json!(acme_id), 201, Value::Null),
            row("queue.pause", json!("emails"), 200, Value::Null),
            row("queue.resume", json!("emails"), 200, Value::Null),
            row("cursor.put", json!("reader"), 201, Value::Null),
        ]
    );
    assert!(seen.iter().all(|r| r["tenant"] == "acme"), "{seen:?}");
    // The operator's resume of acme's queue is acme's to see.
    assert_eq!(seen[2]["by"]["tenant"], "*");
    let theirs = trail(&server, Some(&globex), 100).await;
    assert_eq!(theirs.len(), 2, "{theirs:?}");
    assert!(theirs.iter().all(|r| r["tenant"] == "globex"));
    // The operator sees all: 3 keys, 3 queue actions, 1 cursor.
    assert_eq!(trail(&server, Some(&op), 100).await.len(), 7);
    server.shutdown().await;
}

#[tokio::test]
async fn bad_reads_are_refused_and_no_route_changes_the_trail() {
    let server = TestServer::start().await;
    let reply = server.post("/v1/queues/emails/pause", "").await;
    assert_eq!(reply.0, 200, "{}", reply.1);
    for query in [
        "limit=0",
        "limit=1001",
        "after=-1",
        "after=x",
        "limit=1.5",
        "since=3",
    ] {
        let reply = request(server.addr, "GET", &format!("/v1/audit?{query}"), None).await;
        assert_error(&reply, 422, "invalid_value");
    }
    for method in ["POST", "PUT", "PATCH", "DELETE"] {
        let reply = request(server.addr, method, "/v1/audit", Some("{}")).await;
        assert_error(&reply, 405, "method_not_allowed");
        let reply = request(server.addr, method, "/v1/audit/1", Some("{}")).await;
        assert_eq!(reply.0, 404, "{method} /v1/audit/1");
    }
    let records = trail(&server, None, 100).await;
    assert_eq!(
        summary(&records),
        vec![row("queue.pause", json!("emails"), 200, Value::Null)]
    );
    server.shutdown().await;
}

#[tokio::test]
async fn records_past_their_retention_are_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = quiet_config_in(dir.path());
    config.audit_retention_days = 2;
    let server = TestServer::start_in(dir, config, Clock::manual(T0)).await;
    for path in ["/v1/queues/a/pause", "/v1/queues/b/pause"] {
        assert_eq!(server.post(path, "").await.0, 200);
    }
    server.clock.advance(DAY);
    assert_eq!(server.post("/v1/queues/c/pause", "").await.0, 200);
    // Two days after the first two: they go as the next record is written; c stays.
    server.clock.advance(DAY + 1);
    assert_eq!(server.post("/v1/queues/d/pause", "").await.0, 200);
    let targets: Vec<Value> = trail(&server, None, 100)
        .await
        .iter()
        .map(|r| r["target"].clone())
        .collect();
    assert_eq!(targets, [json!("c"), json!("d")]);
    server.shutdown().await;
}

#[tokio::test]
async fn the_trail_reaches_postgres_in_an_append_only_table() {
    let Some(pg) = PgSchema::new().await else {
        return;
    };
    // Records from before the mirror existed reach it with its first snapshot, later ones
    // through the change log.
    let server = TestServer::start().await;
    let (_, op) = create_key(&server, None, json!({"tenant": "*", "scopes": ["*"]})).await;
    let refused = call(&server, Some(&op), "PATCH", "/v1/queues/q", Some("[]")).await;
    assert_eq!(refused.0, 422, "{}", refused.1);
    let config = config_with(
        server.dir.path(),
        vec![pg_mirror(&pg.schema, &postgres_url())],
    );
    let server = server.restart_with(0, config).await;
    let pause = call(&server, Some(&op), "POST", "/v1/queues/acme:q/pause", None).await;
    assert_eq!(pause.0, 200, "{}", pause.1);
    converged(&server).await;

    let records = trail(&server, Some(&op), 100).await;
    assert_eq!(records.len(), 3);
    let rows = pg
        .rows(
            "SELECT seq, tenant, key_id, key_tenant, peer, action, target, status, outcome, error,
                (extract(epoch from at) * 1000)::bigint FROM {s}.audit ORDER BY seq",
        )
        .await;
    let mirrored: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({
                "seq": r.get::<_, i64>(0),
                "tenant": r.get::<_, String>(1),
                "by": {
                    "key_id": r.get::<_, Option<String>>(2),
                    "tenant": r.get::<_, String>(3),
                    "peer": r.get::<_, Option<String>>(4),
                },
                "action": r.get::<_, String>(5),
                "target": r.get::<_, Option<String>>(6),
                "status": r.get::<_, i32>(7),
                "outcome": r.get::<_, String>(8),
                "error": r.get::<_, Option<String>>(9),
                "at": wharf::clock::rfc3339(u64::try_from(r.get::<_, i64>(10)).unwrap()),
            })
        })
        .collect();
    assert_eq!(mirrored, records);
    assert_eq!(records[2]["tenant"], "acme");

    // Nothing may change or remove a row.
    for statement in [
        "UPDATE {s}.audit SET status = 200",
        "DELETE FROM {s}.audit",
        "TRUNCATE {s}.audit",
    ] {
        let sql = statement.replace("{s}", &format!("\"{}\"", pg.schema));
        let error = pg.client.batch_execute(&sql).await.unwrap_err();
        assert!(
            format!("{error:?}").contains("append-only"),
            "{statement}: {error:?}"
        );
    }
    assert_eq!(pg.rows("SELECT 1 FROM {s}.audit").await.len(), 3);
    server.shutdown().await;
    pg.drop_schema().await;
}
