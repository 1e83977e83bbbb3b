//! The SQS-compatible endpoint, driven by the real boto3 (unchanged client code pointed at the
//! broker with `endpoint_url`, in `tests/sqs/client.py`), checked against wharf's own API.
//!
//! boto3 comes from PyPI (`.ci/run` installs it); without it these tests are a clear skip,
//! unless `WHARF_REQUIRE_SERVICES=1`, which makes it a failure.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may unwrap
mod common;
use common::keys::{call, create_key};
use common::{TestServer, quiet_config_in};

use serde_json::{Value, json};
use wharf::clock::Clock;

/// Whether boto3 can be imported (else the test is skipped, or fails when services are
/// required).
fn boto3() -> bool {
    let found = std::process::Command::new("python3")
        .args(["-c", "import boto3"])
        .output()
        .is_ok_and(|out| out.status.success());
    if !found {
        assert!(
            std::env::var("WHARF_REQUIRE_SERVICES").map_or(true, |v| v != "1"),
            "boto3 is not installed and WHARF_REQUIRE_SERVICES=1 (pip install boto3)"
        );
        eprintln!("skipped: boto3 is not installed (pip install boto3)");
    }
    found
}

/// Runs one scenario of `client.py` against `server`; its JSON output.
async fn scenario(server: &TestServer, name: &str, args: Value) -> Value {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sqs/client.py");
    let endpoint = format!("http://{}", server.addr);
    let out = tokio::process::Command::new("python3")
        .args([script, name, &endpoint, &args.to_string()])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{name} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A server whose manual clock starts now: SDKs sign with the wall clock, and the broker
/// checks the signature's date against its own.
async fn server_at_now() -> TestServer {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let dir = tempfile::tempdir().unwrap();
    let config = quiet_config_in(dir.path());
    TestServer::start_in(dir, config, Clock::manual(now)).await
}

#[tokio::test]
async fn boto3_drives_queues_and_messages_through_their_life_cycle() {
    if !boto3() {
        return;
    }
    let server = server_at_now().await;
    let out = scenario(&server, "lifecycle", json!({})).await;

    // What boto3 saw is what wharf holds: SQS's counts are wharf's states.
    let (status, queue) = server.get("/v1/queues/orders").await;
    assert_eq!(status, 200, "{queue}");
    assert_eq!(queue["lease_ms"], 60_000, "VisibilityTimeout is the lease");
    assert_eq!(queue["counts"]["succeeded"], 3, "{queue}");
    assert_eq!(queue["counts"]["ready"], 0, "{queue}");
    assert_eq!(queue["counts"]["scheduled"], 0, "purged: {queue}");
    // A CreateQueue queue redelivers at once when a visibility timeout ends, as SQS does.
    assert_eq!(queue["backoff"]["base_ms"], 0, "{queue}");
    // The message is a job: its body the payload (a JSON string), its attributes headers.
    let id = out["sent"].as_str().unwrap();
    let (_, job) = server.get(&format!("/v1/jobs/{id}")).await;
    assert_eq!(job["payload"], "héllo, wharf 🚢");
    assert_eq!(job["state"], "succeeded");
    assert_eq!(job["headers"]["customer"], "acme", "{job}");
    assert_eq!(job["headers"]["weight"], "12.5", "{job}");
    // DeleteQueue deleted the other queue with its messages.
    assert_eq!(server.get("/v1/queues/other").await.0, 404);
    let id = out["deleted_message"].as_str().unwrap();
    assert_eq!(server.get(&format!("/v1/jobs/{id}")).await.0, 404);
}

#[tokio::test]
async fn sqs_and_wharf_clients_share_a_queue_and_leases_stay_fenced() {
    if !boto3() {
        return;
    }
    let server = server_at_now().await;
    // A job from wharf's own API arrives over SQS with its payload's JSON text as the body
    // and its headers as String attributes.
    let (status, body) = server
        .post(
            "/v1/queues/mixed/jobs",
            r#"{"payload": {"n": 1}, "headers": {"trace": "t-1"}}"#,
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let got = scenario(
        &server,
        "receive",
        json!({"queue": "mixed", "visibility": 30}),
    )
    .await;
    let message = &got["messages"][0];
    assert_eq!(
        message["Body"], r#"{"n": 1}"#,
        "the payload's text as enqueued"
    );
    assert_eq!(message["MessageAttributes"]["trace"]["StringValue"], "t-1");
    let old_handle = message["ReceiptHandle"].as_str().unwrap().to_owned();

    // The visibility timeout ends (the broker's clock moves), and so does the retry backoff
    // of a queue made by wharf's API (1 s here): delivered again, and the first delivery's
    // handle deletes nothing.
    server.advance(30_001).await;
    assert_eq!(server.state_of("1").await, "scheduled");
    server.advance(1_000).await;
    let again = scenario(&server, "receive", json!({"queue": "mixed"})).await;
    let message = &again["messages"][0];
    assert_eq!(message["Attributes"]["ApproximateReceiveCount"], "2");
    let stale = scenario(
        &server,
        "delete",
        json!({"queue": "mixed", "handle": old_handle}),
    )
    .await;
    assert_eq!(
        stale,
        json!({"deleted": false, "code": "ReceiptHandleIsInvalid"})
    );
    let id = message["MessageId"].as_str().unwrap();
    assert_eq!(server.state_of(id).await, "leased");
    let handle = message["ReceiptHandle"].as_str().unwrap();
    let done = scenario(
        &server,
        "delete",
        json!({"queue": "mixed", "handle": handle}),
    )
    .await;
    assert_eq!(done, json!({"deleted": true}));
    assert_eq!(server.state_of(id).await, "succeeded");

    // A message sent over SQS is polled by a wharf consumer, group and all.
    let sent = scenario(
        &server,
        "send",
        json!({"queue": "mixed", "body": "plain text", "group": "customer-7"}),
    )
    .await;
    let jobs = server.poll("mixed", 1).await;
    assert_eq!(jobs[0]["id"], sent["id"]);
    assert_eq!(jobs[0]["payload"], "plain text");
    assert_eq!(jobs[0]["group"], "customer-7");
}

#[tokio::test]
async fn with_keys_the_signature_names_the_key_and_its_scopes_and_tenant_hold() {
    if !boto3() {
        return;
    }
    let server = server_at_now().await;
    let spec = |scopes: Value| json!({"tenant": "acme", "scopes": scopes, "queues": ["jobs*"]});
    let (_, operator) = create_key(&server, None, json!({"tenant": "*", "scopes": ["*"]})).await;
    let all = json!(["jobs:enqueue", "jobs:consume", "jobs:read", "queues:admin"]);
    let (key_id, key) = create_key(&server, Some(&operator), spec(all)).await;
    let (_, enqueue_only) =
        create_key(&server, Some(&operator), spec(json!(["jobs:enqueue"]))).await;
    let (revoked_id, revoked) = create_key(&server, Some(&operator), spec(json!(["*"]))).await;
    let path = format!("/v1/keys/{revoked_id}");
    assert_eq!(
        call(&server, Some(&operator), "DELETE", &path, None)
            .await
            .0,
        200
    );

    let args = json!({"key": key, "enqueue_only": enqueue_only, "revoked": revoked});
    scenario(&server, "keys", args).await;

    // The queue is acme's; the producer's message is in it, and the purge before it is in
    // the audit trail under the key that made it, as are the create and the refusal.
    let (status, queue) = call(
        &server,
        Some(&operator),
        "GET",
        "/v1/queues/acme:jobs-main",
        None,
    )
    .await;
    assert_eq!(status, 200, "{queue}");
    assert_eq!(queue["counts"]["ready"], 1, "{queue}");
    let (_, audit) = call(&server, Some(&operator), "GET", "/v1/audit", None).await;
    let records: Vec<(String, String, String, u64)> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["by"]["key_id"] == key_id.as_str())
        .map(|r| {
            assert!(
                r["by"]["peer"].as_str().unwrap().starts_with("127.0.0.1:"),
                "{r}"
            );
            (
                r["action"].as_str().unwrap().to_owned(),
                r["target"].as_str().unwrap().to_owned(),
                r["tenant"].as_str().unwrap().to_owned(),
                r["status"].as_u64().unwrap(),
            )
        })
        .collect();
    let record = |action: &str, target: &str, status| {
        (
            action.to_owned(),
            target.to_owned(),
            "acme".to_owned(),
            status,
        )
    };
    assert_eq!(
        records,
        [
            record("queue.create", "jobs-main", 200),
            record("queue.purge", "jobs-main", 200),
            record("queue.create", "billing", 403),
        ]
    );
}
