//! The web dashboard at `/ui`: its files served open with a strict policy, and the page in a
//! real browser (headless Chromium driven by Selenium, `tests/ui/driver.py`) against a live
//! broker with API keys, checked afterwards through the API.
//!
//! Chromium and chromedriver come from Debian (`chromium`, `chromium-driver`) and selenium
//! from PyPI (`tests/requirements.txt`); `.ci/run` installs them. Without them the browser
//! test is a clear skip, unless `WHARF_REQUIRE_SERVICES=1`, which makes it a failure.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may unwrap
mod common;
use common::keys::{call, create_key};
use common::{TestServer, mirroring::config_with};

use std::path::Path;
use std::time::Duration;

use axum::body::Bytes;
use axum::http::HeaderMap;
use serde_json::{Value, json};
use wharf::clock::Clock;
use wharf::mirror::MirrorConfig;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// The whole browser run, after which the driver is killed (it bounds itself a little sooner,
/// and quits the browser on its way out).
const DRIVER_LIMIT: Duration = Duration::from_secs(180);

/// Whether the browser and its driver are installed (else the test is skipped, or fails when
/// services are required).
fn browser() -> bool {
    let mut missing: Vec<&str> = [CHROMIUM, CHROMEDRIVER]
        .into_iter()
        .filter(|path| !Path::new(path).exists())
        .collect();
    let selenium = std::process::Command::new("python3")
        .args(["-c", "import selenium"])
        .output()
        .is_ok_and(|out| out.status.success());
    if !selenium {
        missing.push("python3's selenium");
    }
    if missing.is_empty() {
        return true;
    }
    let how = "apt-get install chromium chromium-driver; pip install -r tests/requirements.txt";
    assert!(
        std::env::var("WHARF_REQUIRE_SERVICES").map_or(true, |v| v != "1"),
        "{missing:?} missing and WHARF_REQUIRE_SERVICES=1 ({how})"
    );
    eprintln!("skipped: {missing:?} missing ({how})");
    false
}

/// A request as `key`, which must succeed; the reply.
async fn ok(
    server: &TestServer,
    key: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> Value {
    let body = body.map(|b| b.to_string());
    let (status, reply) = call(server, Some(key), method, path, body.as_deref()).await;
    assert!(
        (200..300).contains(&status),
        "{method} {path}: {status} {reply}"
    );
    reply
}

/// The ids of a batch enqueue's reply.
fn ids(reply: &Value) -> Vec<String> {
    reply["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_str().unwrap().to_owned())
        .collect()
}

/// A GET with `headers`: the status, the reply's headers and its body.
async fn fetch(
    server: &TestServer,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, HeaderMap, Bytes) {
    wharf::client::request_full(server.addr, "GET", path, None, headers)
        .await
        .unwrap()
}

#[tokio::test]
async fn the_dashboard_is_served_without_a_key_with_a_strict_policy() {
    let server = TestServer::start().await;
    create_key(&server, None, json!({"tenant": "*", "scopes": ["*"]})).await;
    // The page and its files need no key (they hold no data); the data they ask for does.
    for (path, content_type) in [
        ("/ui", "text/html; charset=utf-8"),
        ("/ui/", "text/html; charset=utf-8"),
        ("/ui/app.js", "text/javascript; charset=utf-8"),
        ("/ui/tail.js", "text/javascript; charset=utf-8"),
        ("/ui/style.css", "text/css; charset=utf-8"),
        ("/ui/favicon.svg", "image/svg+xml"),
    ] {
        let (status, headers, body) = fetch(&server, path, &[]).await;
        assert_eq!(status, 200, "{path}");
        assert_eq!(headers["content-type"], content_type, "{path}");
        assert!(!body.is_empty(), "{path}");
        let policy = headers["content-security-policy"].to_str().unwrap();
        assert!(policy.contains("default-src 'none'"), "{policy}");
        assert!(policy.contains("script-src 'self'"), "{policy}");
        assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
        assert!(!policy.contains("unsafe"), "{policy}");
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert_eq!(headers["cache-control"], "no-cache");

        // The browser's copy is revalidated: the same version is a 304 without a body.
        let etag = headers["etag"].to_str().unwrap();
        let (status, again, body) = fetch(&server, path, &[("if-none-match", etag)]).await;
        assert_eq!(status, 304, "{path}");
        assert!(body.is_empty());
        assert_eq!(
            again["content-security-policy"],
            headers["content-security-policy"]
        );
    }
    assert_eq!(server.get("/v1/queues").await.0, 401);

    // `GET /` opens the dashboard (`POST /` stays the SQS endpoint).
    let (status, headers, _) = fetch(&server, "/", &[]).await;
    assert_eq!(status, 307);
    assert_eq!(headers["location"], "/ui/");
    let (status, body) = server.get("/ui/secrets.txt").await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "not_found", "{body}");
    assert_eq!(server.get("/ui/app.js/").await.0, 404);
    assert_eq!(server.post("/ui/", "{}").await.0, 405);
}

/// What the page should show, and the keys it uses: the world the browser test runs in.
async fn world(server: &TestServer, screenshots: &Path) -> (Value, String, String) {
    // Before the first key the loopback broker is open; the first key turns keys on.
    let (op_id, op) = create_key(server, None, json!({"tenant": "*", "scopes": ["*"]})).await;
    let scopes = [
        "jobs:read",
        "queues:admin",
        "events:read",
        "metrics:read",
        "schedules:admin",
    ];
    let (_, tenant) = create_key(
        server,
        Some(&op),
        json!({"tenant": "acme", "scopes": scopes}),
    )
    .await;
    let op = op.as_str();

    // emails: one acked job with a result, three dead ones, 31 ready (one payload is markup).
    let jobs = |q: &str| format!("/v1/queues/{q}/jobs");
    let acked = ok(
        server,
        op,
        "POST",
        &jobs("emails"),
        Some(json!({"payload": {"to": "ada@example.com"}, "priority": "critical"})),
    )
    .await;
    let acked = acked["id"].as_str().unwrap().to_owned();
    let lease = ok(
        server,
        op,
        "POST",
        "/v1/queues/emails/poll",
        Some(json!({})),
    )
    .await;
    let lease = lease["jobs"][0]["lease"].as_str().unwrap().to_owned();
    let result =
        json!({"lease": lease, "result": {"sent": true, "message_id": "<m-1@example.com>"}});
    ok(
        server,
        op,
        "POST",
        &format!("/v1/jobs/{acked}/ack"),
        Some(result),
    )
    .await;
    let bounces: Vec<Value> = (1..=3)
        .map(|n| json!({"payload": {"to": format!("bounce{n}@example.com")}, "priority": "critical"}))
        .collect();
    let dead = ids(&ok(
        server,
        op,
        "POST",
        &jobs("emails"),
        Some(json!({"jobs": bounces})),
    )
    .await);
    let polled = ok(
        server,
        op,
        "POST",
        "/v1/queues/emails/poll",
        Some(json!({"max": 3})),
    )
    .await;
    for delivery in polled["jobs"].as_array().unwrap() {
        let nack = json!({"lease": delivery["lease"], "error": "SMTP 550 <b>mailbox unavailable</b>", "dead": true});
        let id = delivery["id"].as_str().unwrap();
        ok(
            server,
            op,
            "POST",
            &format!("/v1/jobs/{id}/nack"),
            Some(nack),
        )
        .await;
    }
    let welcome: Vec<Value> = (1..=30)
        .map(|n| json!({"payload": {"to": format!("user{n}@example.com"), "template": "welcome"}, "priority": "high"}))
        .collect();
    let mut ready = ids(&ok(
        server,
        op,
        "POST",
        &jobs("emails"),
        Some(json!({"jobs": welcome})),
    )
    .await);
    // Raw text: the number is beyond what a double holds exactly.
    let (status, markup) = call(server, Some(op), "POST", &jobs("emails"),
        Some(r#"{"payload": {"note": "<img src=x onerror=\"window.__xss=1\">", "id": 12345678901234567890}}"#)).await;
    assert_eq!(status, 201, "{markup}");
    let markup = markup["id"].as_str().unwrap().to_owned();
    ready.push(markup.clone());

    // reports: five delayed jobs and one leased; acme's billing: two ready; two schedules.
    let later: Vec<Value> = (1..=5)
        .map(|n| json!({"payload": {"report": "daily", "n": n}, "delay_ms": 3_600_000}))
        .collect();
    ok(
        server,
        op,
        "POST",
        &jobs("reports"),
        Some(json!({"jobs": later})),
    )
    .await;
    ok(
        server,
        op,
        "POST",
        &jobs("reports"),
        Some(json!({"payload": {"report": "weekly"}})),
    )
    .await;
    ok(
        server,
        op,
        "POST",
        "/v1/queues/reports/poll",
        Some(json!({"lease_ms": 600_000})),
    )
    .await;
    let invoices: Vec<Value> = (1..=2)
        .map(|n| json!({"payload": {"invoice": format!("INV-{n}")}}))
        .collect();
    ok(
        server,
        op,
        "POST",
        &jobs("acme:billing"),
        Some(json!({"jobs": invoices})),
    )
    .await;
    let nightly = json!({"cron": "30 2 * * *", "timezone": "Europe/Berlin", "queue": "reports", "job": {"payload": {"kind": "daily"}}});
    let nightly = ok(
        server,
        op,
        "PUT",
        "/v1/schedules/nightly-report",
        Some(nightly),
    )
    .await;
    let monthly =
        json!({"cron": "0 6 1 * *", "queue": "billing", "job": {"payload": {"run": "invoices"}}});
    let monthly = ok(
        server,
        op,
        "PUT",
        "/v1/schedules/acme:invoices",
        Some(monthly),
    )
    .await;

    let spec = json!({
        "base": format!("http://{}", server.addr),
        "operator_key": op,
        "operator_key_id": op_id,
        "tenant_key": tenant,
        "screenshots": screenshots,
        "counts": {
            "emails": {"ready": 31, "dead": 3, "succeeded": 1, "leased": 0},
            "reports": {"scheduled": 5, "leased": 1, "ready": 0},
            "acme:billing": {"ready": 2},
        },
        "next_fire": {
            "nightly-report": nightly["next_fire_at"],
            "acme:invoices": monthly["next_fire_at"],
        },
        "ready": ready,
        "dead": dead,
        "acked": acked,
        "markup_job": markup,
    });
    (spec, op.to_owned(), op_id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_browser_the_dashboard_shows_the_broker_and_pauses_and_replays() {
    if !browser() {
        return;
    }
    // The system clock: the page compares the broker's times with the browser's.
    let dir = tempfile::tempdir().unwrap();
    // A mirror nobody listens for (a port just freed): it stays down, and its lag grows.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mirror = MirrorConfig {
        name: "broken".into(),
        max_backoff_ms: 1_000,
        ..MirrorConfig::from_url(&format!("redis://127.0.0.1:{port}"), &[]).unwrap()
    };
    let config = config_with(dir.path(), vec![mirror]);
    let server = TestServer::start_in(dir, config, Clock::System).await;
    let screenshots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("ui-screenshots");
    let (spec, op, op_id) = world(&server, &screenshots).await;

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/ui/driver.py");
    let run = tokio::process::Command::new("python3")
        .args([script, &spec.to_string()])
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(DRIVER_LIMIT, run)
        .await
        .expect("the browser run did not end in time")
        .unwrap();
    assert!(
        out.status.success(),
        "the browser run failed (screenshots in {}):\n{}",
        screenshots.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    eprintln!("screenshots: {}", report["screenshots"]);

    // What the clicks did, read through the API: emails paused, reports not (that pause was
    // cancelled), the dead jobs ready again, and acme's billing paused by acme's own key.
    let emails = ok(&server, &op, "GET", "/v1/queues/emails", None).await;
    assert_eq!(emails["paused"], true, "{emails}");
    assert_eq!(emails["counts"]["dead"], 0, "{emails}");
    for id in spec["dead"].as_array().unwrap() {
        let job = ok(
            &server,
            &op,
            "GET",
            &format!("/v1/jobs/{}", id.as_str().unwrap()),
            None,
        )
        .await;
        assert_eq!(job["state"], "ready", "{job}");
        assert_eq!(job["attempts"], 0, "{job}");
    }
    let reports = ok(&server, &op, "GET", "/v1/queues/reports", None).await;
    assert_eq!(reports["paused"], false, "{reports}");
    let billing = ok(&server, &op, "GET", "/v1/queues/acme:billing", None).await;
    assert_eq!(billing["paused"], true, "{billing}");

    // The same API and keys: the audit trail names the key behind each click.
    let audit = ok(&server, &op, "GET", "/v1/audit", None).await;
    let actions: Vec<(String, String, bool)> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            e["action"]
                .as_str()
                .is_some_and(|a| a.starts_with("queue."))
        })
        .map(|e| {
            let by_op = e["by"]["key_id"] == op_id.as_str();
            (
                e["action"].as_str().unwrap().to_owned(),
                e["target"].as_str().unwrap().to_owned(),
                by_op,
            )
        })
        .collect();
    let expected = [
        ("queue.pause", "emails", true),
        ("queue.replay", "emails", true),
        ("queue.pause", "billing", false),
    ]
    .map(|(a, t, o)| (a.to_owned(), t.to_owned(), o));
    assert_eq!(actions, expected);
    server.shutdown().await;
}
