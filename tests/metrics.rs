//! `GET /metrics` read as Prometheus reads it: both formats parse to the same series, values
//! follow what the broker did, requests are counted by route template and status, a tenant's
//! key sees its own tenant's series only, and every metric the Grafana dashboard in `docs/`
//! queries is in a real scrape.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may unwrap
mod common;
use common::exposition::{Exposition, scrape};
use common::keys::{call, create_key};
use common::mirroring::{config_with, redis_mirror};
use common::{T0, TestServer};

use std::time::Duration;

use serde_json::{Value, json};
use wharf::clock::Clock;

const ENQUEUE: &str = "/v1/queues/{queue}/jobs";

/// `(method, route, status)` labels.
fn route<'a>(method: &'a str, route: &'a str, status: &'a str) -> [(&'a str, &'a str); 3] {
    [("method", method), ("route", route), ("status", status)]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_formats_carry_the_same_series_named_by_the_rules() {
    let server = TestServer::start().await;
    server.enqueue("q", r#"{"payload":1}"#).await;
    scrape(&server, None, false).await; // so that the next two both count a scrape
    let (plain_type, plain) = scrape(&server, None, false).await;
    let (om_type, om) = scrape(&server, None, true).await;
    assert_eq!(plain_type, "text/plain; version=0.0.4; charset=utf-8");
    assert_eq!(
        om_type,
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    assert!(om.eof && !plain.eof);
    assert_eq!(plain.series(), om.series());

    // OpenMetrics names a counter's family without `_total`, and its samples with it.
    assert_eq!(om.types["wharf_jobs_enqueued"], "counter");
    assert_eq!(plain.types["wharf_jobs_enqueued_total"], "counter");
    assert_eq!(om.types["wharf_fsync_seconds"], "histogram");
    for family in om.types.keys() {
        assert!(family.starts_with("wharf_"), "{family}");
        assert!(!family.ends_with("_total"), "{family}");
    }
    // Every counter's samples, and only a counter's, end in `_total`.
    for sample in &om.samples {
        let counter = |family: &str| om.types.get(family).is_some_and(|k| k == "counter");
        match sample.name.strip_suffix("_total") {
            Some(family) => assert!(counter(family), "{sample:?}"),
            None => assert!(!counter(&sample.name), "{sample:?}"),
        }
    }
    for name in om.names() {
        assert!(!name.contains("_total_total"), "{name}");
        assert!(!name.contains("_ms") && !name.contains("millis"), "{name}");
    }
    // Histograms in seconds say so, and buckets are cumulative up to +Inf == _count.
    for (family, kind) in &om.types {
        if kind != "histogram" {
            continue;
        }
        let count = om.find(&format!("{family}_count"), &[]);
        assert!(!count.is_empty(), "{family} has no _count");
        for c in count {
            let mut labels: Vec<(&str, &str)> = c
                .labels
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let buckets = om.find(&format!("{family}_bucket"), &labels);
            let counts: Vec<f64> = buckets.iter().map(|b| b.value).collect();
            assert!(counts.is_sorted(), "{family}{labels:?}: {counts:?}");
            labels.push(("le", "+Inf"));
            let inf = om.value(&format!("{family}_bucket"), &labels).unwrap();
            assert_eq!(inf, c.value, "{family}{labels:?}");
        }
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_and_gauges_follow_what_the_broker_did() {
    let server = TestServer::start().await;
    for n in 0..3 {
        server
            .enqueue("q", &json!({"payload": n}).to_string())
            .await;
    }
    server.enqueue("other", r#"{"payload":0}"#).await;
    let jobs = server.poll("q", 1).await;
    let path = format!("/v1/jobs/{}/ack", jobs[0]["id"].as_str().unwrap());
    let ack = json!({"lease": jobs[0]["lease"]}).to_string();
    assert_eq!(server.post(&path, &ack).await.0, 200);

    let (_, m) = scrape(&server, None, true).await;
    let q = [("tenant", "default"), ("queue", "q")];
    assert_eq!(m.value("wharf_jobs_enqueued_total", &q), Some(3.0));
    assert_eq!(m.value("wharf_jobs_delivered_total", &q), Some(1.0));
    assert_eq!(m.value("wharf_jobs_acked_total", &q), Some(1.0));
    assert_eq!(m.value("wharf_jobs_nacked_total", &q), Some(0.0));
    let other = [("tenant", "default"), ("queue", "other")];
    assert_eq!(m.value("wharf_jobs_enqueued_total", &other), Some(1.0));
    let state = |s| [("tenant", "default"), ("queue", "q"), ("state", s)];
    assert_eq!(m.value("wharf_jobs", &state("ready")), Some(2.0));
    assert_eq!(m.value("wharf_jobs", &state("succeeded")), Some(1.0));
    assert_eq!(m.value("wharf_jobs", &state("leased")), Some(0.0));
    assert_eq!(m.value("wharf_polls_waiting", &[]), Some(0.0));

    // Five durable writes (four enqueues, one ack) and a lease went through the store.
    let commits = m.value("wharf_commit_group_size_count", &[]).unwrap();
    assert!(commits >= 5.0, "{commits}");
    let group_sum = m.value("wharf_commit_group_size_sum", &[]).unwrap();
    assert!(group_sum >= 6.0, "{group_sum}");
    assert!(m.value("wharf_fsync_seconds_count", &[]).unwrap() >= 1.0);
    assert!(m.value("wharf_journal_append_seconds_count", &[]).unwrap() >= 1.0);
    assert!(m.value("wharf_journal_appended_bytes_total", &[]).unwrap() > 0.0);
    assert_eq!(m.value("wharf_apply_seconds_count", &[]), Some(commits));
    assert_eq!(
        m.value(
            "wharf_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        Some(1.0)
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_are_counted_and_timed_by_route_template_and_status() {
    let server = TestServer::start().await;
    let (_, before) = scrape(&server, None, false).await;
    let created = route("POST", ENQUEUE, "201");
    assert_eq!(before.value("wharf_http_requests_total", &created), None);

    server.enqueue("q", r#"{"payload":1}"#).await;
    server.enqueue("r", r#"{"payload":2}"#).await;
    let bad = server
        .post("/v1/queues/q/jobs", r#"{"payload":1,"priority":300}"#)
        .await;
    assert_eq!(bad.0, 422, "{}", bad.1);
    assert_eq!(server.get("/v1/no-such-route").await.0, 404);
    assert_eq!(server.request_put("/v1/queues/q/jobs", "{}").await.0, 405);

    let (_, after) = scrape(&server, None, false).await;
    assert_eq!(
        after.value("wharf_http_requests_total", &created),
        Some(2.0)
    );
    let count = "wharf_http_request_duration_seconds_count";
    assert_eq!(after.value(count, &created), Some(2.0));
    let sum = "wharf_http_request_duration_seconds_sum";
    assert!(after.value(sum, &created).unwrap() > 0.0);
    let refused = route("POST", ENQUEUE, "422");
    assert_eq!(
        after.value("wharf_http_requests_total", &refused),
        Some(1.0)
    );
    let unmatched = |status| route("any", "unmatched", status);
    assert_eq!(after.value(count, &unmatched("404")), Some(1.0));
    assert_eq!(after.value(count, &unmatched("405")), Some(1.0));
    // The scrape before this one, under its own route.
    let scraped = route("GET", "/metrics", "200");
    assert_eq!(
        after.value("wharf_http_requests_total", &scraped),
        Some(1.0)
    );
    // Never a raw path: the series stay bounded by the route table.
    for sample in &after.samples {
        if let Some(route) = sample.labels.get("route") {
            assert!(route == "unmatched" || !route.contains("/q/"), "{sample:?}");
        }
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoints_are_timed() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::quiet_config_in(dir.path());
    config.checkpoint_interval_ms = 10;
    let server = TestServer::start_in(dir, config, Clock::manual(T0)).await;
    server.enqueue("q", r#"{"payload":1}"#).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (_, m) = scrape(&server, None, false).await;
        let checkpoints = m.value("wharf_checkpoint_seconds_count", &[]).unwrap();
        if checkpoints >= 1.0 {
            assert!(m.value("wharf_checkpoint_seconds_sum", &[]).unwrap() > 0.0);
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no checkpoint in 20 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.shutdown().await;
}

/// Families only an operator sees: the broker as a whole.
const BROKER_WIDE: &[&str] = &[
    "wharf_http_",
    "wharf_commit_",
    "wharf_apply_",
    "wharf_fsync_",
    "wharf_journal_",
    "wharf_checkpoint_",
    "wharf_disk_",
    "wharf_polls_",
    "wharf_mirror_",
    "wharf_recover",
    "wharf_retention_",
    "wharf_idempotency_",
    "wharf_build_",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_s_key_scrapes_its_own_tenant_s_series_only() {
    let server = TestServer::start().await;
    let (_, op) = create_key(&server, None, json!({"tenant": "*", "scopes": ["*"]})).await;
    let tenant_key = |tenant: &str, scopes: Value| json!({"tenant": tenant, "scopes": scopes});
    let (_, acme) = create_key(&server, Some(&op), tenant_key("acme", json!(["*"]))).await;
    let (_, globex) = create_key(&server, Some(&op), tenant_key("globex", json!(["*"]))).await;
    let (_, reader) = create_key(
        &server,
        Some(&op),
        tenant_key("globex", json!(["jobs:read"])),
    )
    .await;
    for key in [&acme, &acme, &globex] {
        let reply = call(
            &server,
            Some(key),
            "POST",
            "/v1/queues/q/jobs",
            Some("{\"payload\":1}"),
        )
        .await;
        assert_eq!(reply.0, 201, "{}", reply.1);
    }
    let forbidden = call(
        &server,
        Some(&reader),
        "POST",
        "/v1/queues/q/jobs",
        Some("{\"payload\":1}"),
    )
    .await;
    assert_eq!(forbidden.0, 403);
    assert_eq!(
        call(&server, Some("wk_nonsense"), "GET", "/v1/queues", None)
            .await
            .0,
        401
    );

    let (_, mine) = scrape(&server, Some(&acme), true).await;
    assert!(!mine.samples.is_empty());
    for sample in &mine.samples {
        assert!(
            !BROKER_WIDE.iter().any(|p| sample.name.starts_with(p)),
            "an operator's series in a tenant's scrape: {sample:?}"
        );
        assert_eq!(
            sample.labels.get("tenant").map(String::as_str),
            Some("acme"),
            "{sample:?}"
        );
    }
    let q = [("tenant", "acme"), ("queue", "q")];
    assert_eq!(mine.value("wharf_jobs_enqueued_total", &q), Some(2.0));
    // The acme key's two enqueues (this scrape is counted once it is let through).
    assert_eq!(
        mine.value("wharf_requests_total", &[("tenant", "acme")]),
        Some(3.0)
    );

    let (_, all) = scrape(&server, Some(&op), true).await;
    let g = [("tenant", "globex"), ("queue", "q")];
    assert_eq!(all.value("wharf_jobs_enqueued_total", &g), Some(1.0));
    assert_eq!(all.value("wharf_jobs_enqueued_total", &q), Some(2.0));
    let refusal = |tenant, reason| [("tenant", tenant), ("reason", reason)];
    let rejected = "wharf_requests_rejected_total";
    assert_eq!(
        all.value(rejected, &refusal("globex", "forbidden")),
        Some(1.0)
    );
    assert_eq!(
        all.value(rejected, &refusal("acme", "forbidden")),
        Some(0.0)
    );
    assert_eq!(
        all.value(rejected, &[("reason", "unauthorized")]),
        Some(1.0)
    );
    assert!(all.value("wharf_disk_available_bytes", &[]).is_some());
    assert!(!all.find("wharf_http_requests_total", &[]).is_empty());
    server.shutdown().await;
}

/// Every string in a JSON document.
fn strings(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => out.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|v| strings(v, out)),
        Value::Object(map) => map.values().for_each(|v| strings(v, out)),
        _ => {}
    }
}

/// Every `wharf_*` metric name in `text`.
fn metric_names(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("wharf_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        names.push(tail[..end].to_owned());
        rest = &tail[end..];
    }
    names
}

/// A scrape, by an operator, of a server with every kind of series: keys (so tenant series), a
/// mirror (unreachable: its series are there all the same), requests of several statuses, a
/// checkpoint.
async fn scrape_of_everything() -> Exposition {
    let dir = tempfile::tempdir().unwrap();
    let mirror = redis_mirror("m:", "redis://127.0.0.1:1/0");
    let mut config = config_with(dir.path(), vec![mirror]);
    config.checkpoint_interval_ms = 10;
    let server = TestServer::start_in(dir, config, Clock::manual(T0)).await;
    let (_, op) = create_key(&server, None, json!({"tenant": "*", "scopes": ["*"]})).await;
    let spec = json!({"tenant": "acme", "scopes": ["jobs:enqueue", "jobs:consume"]});
    let (_, acme) = create_key(&server, Some(&op), spec).await;
    let acme = |method, path, body| call(&server, Some(&acme), method, path, body);
    let job = Some(r#"{"payload":1}"#);
    assert_eq!(acme("POST", "/v1/queues/q/jobs", job).await.0, 201);
    assert_eq!(acme("GET", "/v1/queues", None).await.0, 403);
    let polled = acme("POST", "/v1/queues/q/poll", Some("{}")).await;
    let job = &polled.1["jobs"][0];
    let ack = json!({"lease": job["lease"]}).to_string();
    let path = format!("/v1/jobs/{}/ack", job["id"].as_str().unwrap());
    assert_eq!(acme("POST", &path, Some(&ack)).await.0, 200);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let scraped = loop {
        let (_, m) = scrape(&server, Some(&op), true).await;
        if m.value("wharf_checkpoint_seconds_count", &[]).unwrap() >= 1.0 {
            break m;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no checkpoint in 20 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    server.shutdown().await;
    scraped
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_the_grafana_dashboard_queries_is_in_a_scrape() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/grafana-dashboard.json");
    let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    // Importable: a Prometheus data source input that every panel and target uses.
    assert_eq!(dashboard["__inputs"][0]["name"], "DS_PROMETHEUS");
    assert_eq!(dashboard["__inputs"][0]["pluginId"], "prometheus");
    let panels = dashboard["panels"].as_array().unwrap();
    let mut ids: Vec<u64> = panels.iter().map(|p| p["id"].as_u64().unwrap()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), panels.len(), "panel ids repeat");
    for panel in panels.iter().filter(|p| p["type"] != "row") {
        assert_eq!(panel["datasource"]["uid"], "${DS_PROMETHEUS}", "{panel}");
        let targets = panel["targets"].as_array().unwrap();
        assert!(!targets.is_empty(), "{}", panel["title"]);
        for target in targets {
            let expr = target["expr"].as_str().unwrap();
            assert!(expr.contains("wharf_"), "{expr}");
        }
    }
    let mut texts = Vec::new();
    strings(&dashboard, &mut texts);
    let mut used: Vec<String> = texts.iter().flat_map(|t| metric_names(t)).collect();
    used.sort();
    used.dedup();
    assert!(used.len() >= 15, "{used:?}");

    let scraped = scrape_of_everything().await;
    let have = scraped.names();
    let missing: Vec<&String> = used.iter().filter(|n| !have.contains(n.as_str())).collect();
    assert!(
        missing.is_empty(),
        "the dashboard queries {missing:?}, not in:\n{have:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docs_api_md_lists_every_metric_of_a_scrape() {
    let api = include_str!("../docs/api.md");
    let start = api.find("### `GET /metrics`").unwrap();
    let section = &api[start..];
    let section = &section[..section.find("\n---").unwrap_or(section.len())];
    let documented: Vec<String> = section
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split('`').next())
        .map(str::to_owned)
        .collect();
    let scraped = scrape_of_everything().await;
    for (family, kind) in &scraped.types {
        // A counter's samples, and so its documented name, end in `_total`; an info's in `_info`.
        let name = match kind.as_str() {
            "counter" => format!("{family}_total"),
            "info" => format!("{family}_info"),
            _ => family.clone(),
        };
        assert!(
            documented.contains(&name),
            "docs/api.md does not list {name}"
        );
    }
    for name in &documented {
        let family = [name.as_str()]
            .into_iter()
            .chain(name.strip_suffix("_total"))
            .chain(name.strip_suffix("_info"));
        assert!(
            family.into_iter().any(|f| scraped.types.contains_key(f)),
            "docs/api.md lists {name}, which a scrape does not have"
        );
    }
}
