//! Writes the committed seed corpora, `fuzz/corpus/<target>/`, from scratch:
//!
//! ```text
//! cargo run --manifest-path fuzz/Cargo.toml --example seeds
//! ```
//!
//! The journal seeds are the frames a real broker wrote while it served every kind of write
//! through the HTTP API (resealed with a known salt, so that the `raw` mode's checksums
//! match); the record seeds are the records inside those frames and a few made by hand; the
//! HTTP seeds are the request bodies of `docs/api.md`; the others are hand-made. Deterministic
//! except for the journal's lease nonces and timestamps of the real run.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use axum::body::Body;
use axum::http::{Method, Request};
use http_body_util::BodyExt;
use tower::ServiceExt;
use wharf::clock::Clock;
use wharf::fuzzing::{Record, RecordKind, encode_record, seal_frame};
use wharf::storage::{
    CursorRecord, DeleteReason, EventData, EventRecord, IdempotencyRecord, QueueRecord,
    StoredState, WriteOp, decode_ops, encode,
};
use wharf_fuzz::{START_MS, open_broker, route_index};

/// The salt the `raw` journal seeds are sealed with.
const SALT: u64 = 0x5eed_f022;

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let payloads = journal_payloads();
    journal_seeds(&root.join("journal"), &payloads);
    record_seeds(&root.join("records"), &payloads);
    http_seeds(&root.join("http_bodies"));
    cron_seeds(&root.join("cron"));
    event_query_seeds(&root.join("event_query"));
    broker_model_seeds(&root.join("broker_model"));
    println!("seeds written under {}", root.display());
}

/// Empties `dir` and returns a writer of named files in it.
fn corpus(dir: &Path) -> impl FnMut(&str, &[u8]) + '_ {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap();
    move |name: &str, bytes: &[u8]| std::fs::write(dir.join(name), bytes).unwrap()
}

/// Sends one request to `router`; returns the reply's JSON (`null` when it is none).
async fn send(router: &axum::Router, method: Method, uri: &str, body: &str) -> serde_json::Value {
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json")
        .body(Body::from(body.to_owned()))
        .unwrap();
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    assert!(
        status.is_success(),
        "{uri}: {status} {}",
        String::from_utf8_lossy(&bytes)
    );
    serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null)
}

/// Runs a broker through every kind of write and returns the payloads of the journal frames
/// it wrote, in order.
fn journal_payloads() -> Vec<Vec<u8>> {
    let dir = tempfile::tempdir().unwrap();
    let clock = Clock::manual(START_MS);
    let broker = open_broker(dir.path(), &clock);
    let state = wharf::http::AppState::new();
    state.set_broker(
        broker.clone(),
        std::sync::Arc::new(wharf::auth::Keys::load(broker.clone()).expect("the keys load")),
    );
    let router = wharf::http::router(state, 1 << 20);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        use Method as M;
        let r = &router;
        send(r, M::PATCH, "/v1/queues/emails", r#"{"lease_ms":60000,"max_attempts":2,"backoff":{"base_ms":500,"jitter":false},"retention_ms":1000,"dead_retention_ms":2000,"idempotency_window_ms":3000}"#).await;
        send(r, M::POST, "/v1/queues/emails/jobs", r#"{"payload":{"to":"a@example.com"},"priority":"high","headers":{"trace":"abc"},"idempotency_key":"k-1"}"#).await;
        send(r, M::POST, "/v1/queues/emails/jobs", r#"{"jobs":[{"payload":1},{"payload":2,"delay_ms":60000},{"payload":null,"priority":7,"max_attempts":2,"lease_ms":5000}],"emit":[{"topic":"orders","key":"o-1","payload":{"total":12},"headers":{"h":"v"}}]}"#).await;
        let polled = send(r, M::POST, "/v1/queues/emails/poll", r#"{"max":3,"lease_ms":60000}"#).await;
        let jobs = polled["jobs"].as_array().cloned().unwrap_or_default();
        let lease = |i: usize| {
            (
                jobs[i]["id"].as_str().unwrap().to_owned(),
                jobs[i]["lease"].as_str().unwrap().to_owned(),
            )
        };
        let (a, la) = lease(0);
        send(r, M::POST, &format!("/v1/jobs/{a}/ack"), &format!(r#"{{"lease":"{la}","result":{{"sent":true}},"emit":[{{"topic":"t","payload":[1]}}],"enqueue":[{{"queue":"followups","payload":{{"after":1}},"delay_ms":5}}]}}"#)).await;
        let (b, lb) = lease(1);
        send(r, M::POST, &format!("/v1/jobs/{b}/extend"), &format!(r#"{{"lease":"{lb}","lease_ms":120000}}"#)).await;
        send(r, M::POST, &format!("/v1/jobs/{b}/nack"), &format!(r#"{{"lease":"{lb}","error":"smtp 421","delay_ms":0}}"#)).await;
        let (c, lc) = lease(2);
        send(r, M::POST, &format!("/v1/jobs/{c}/nack"), &format!(r#"{{"lease":"{lc}","error":"bad address","dead":true}}"#)).await;
        send(r, M::POST, "/v1/queues/emails/replay", "{}").await;
        let polled = send(r, M::POST, "/v1/queues/emails/poll", r#"{"max":2,"lease_ms":1000}"#).await;
        let acks: Vec<String> = polled["jobs"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|j| format!(r#"{{"id":"{}","lease":"{}","result":null}}"#, j["id"].as_str().unwrap(), j["lease"].as_str().unwrap()))
            .collect();
        send(r, M::POST, "/v1/ack", &format!(r#"{{"acks":[{},{{"id":"nope","lease":"1.0000000000000000"}}]}}"#, acks.join(","))).await;
        send(r, M::POST, "/v1/queues/emails/jobs", r#"{"payload":{"cancel":"me"},"run_at":"2026-06-02T03:04:05Z"}"#).await;
        let jobs = send(r, M::GET, "/v1/queues/emails/jobs?state=scheduled", "").await;
        for job in jobs["jobs"].as_array().cloned().unwrap_or_default() {
            send(r, M::DELETE, &format!("/v1/jobs/{}", job["id"].as_str().unwrap()), "").await;
        }
        send(r, M::PUT, "/v1/schedules/nightly-report", r#"{"cron":"30 2 * * *","timezone":"Europe/Berlin","queue":"reports","job":{"payload":{"kind":"daily"},"priority":"high","headers":{"team":"finance"}},"catch_up":"none"}"#).await;
        send(r, M::POST, "/v1/schedules/nightly-report/pause", "").await;
        send(r, M::POST, "/v1/schedules/nightly-report/resume", "").await;
        send(r, M::POST, "/v1/schedules/nightly-report/trigger", "").await;
        send(r, M::PUT, "/v1/schedules/every-minute", r#"{"cron":"* * * * *","queue":"reports","job":{"payload":{}}}"#).await;
        send(r, M::POST, "/v1/outbox", r#"{"messages": [{"topic": "orders", "key": "o-1", "payload": {"total": 12}}]}"#).await;
        // Readers see events once their frame is fsynced (every 50 ms in async mode).
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        send(r, M::PUT, "/v1/cursors/reader-1", r#"{"seq":3}"#).await;
        send(r, M::PUT, "/v1/cursors/reader-1", r#"{"seq":5}"#).await;
        send(r, M::DELETE, "/v1/cursors/reader-1", "").await;
        send(r, M::POST, "/v1/queues/emails/pause", "").await;
        send(r, M::POST, "/v1/queues/emails/resume", "").await;
        // Leases expire, retries fall due, a schedule fires, retention deletes and forgets.
        clock.advance(120_000);
        broker.run_due().await.unwrap();
        broker.fire_due_schedules().await.unwrap();
        clock.advance(10_000_000);
        broker.run_due().await.unwrap();
        broker.purge_expired().await.unwrap();
        send(r, M::DELETE, "/v1/schedules/every-minute", "").await;
        send(r, M::DELETE, "/v1/queues/reports/jobs", "").await;
        // Let the journal thread write the last frames (async mode: within 50 ms).
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    });
    // Read before closing: a clean close blanks the first frame (its checkpoint has them all).
    let bytes = std::fs::read(dir.path().join("wharf.journal")).unwrap();
    drop(router);
    broker.close();
    drop(broker);
    // Walk the frames by their lengths (the run's salt is not needed: the seeds are resealed).
    let mut payloads = Vec::new();
    let mut at = 0;
    while at + 16 <= bytes.len() {
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        if len == 0 || at + 16 + len > bytes.len() {
            break;
        }
        let payload = bytes[at + 16..at + 16 + len].to_vec();
        if decode_ops(&payload).is_err() {
            break;
        }
        payloads.push(payload);
        at += 16 + len;
    }
    assert!(
        payloads.len() > 10,
        "the run wrote {} frames",
        payloads.len()
    );
    payloads
}

fn journal_seeds(dir: &Path, payloads: &[Vec<u8>]) {
    let mut write = corpus(dir);
    // Mode 0: whole journals, sealed with SALT: from the start, past a checkpoint, torn.
    let mut journal = Vec::new();
    for (seq, payload) in (1..).zip(payloads) {
        seal_frame(&mut journal, seq, SALT, payload);
    }
    let raw = |applied: u64, journal: &[u8]| {
        let mut seed = vec![0];
        seed.extend_from_slice(&applied.to_le_bytes());
        seed.extend_from_slice(&SALT.to_le_bytes());
        seed.extend_from_slice(journal);
        seed
    };
    write("raw-all", &raw(0, &journal));
    write("raw-after-3", &raw(3, &journal));
    write("raw-torn", &raw(0, &journal[..journal.len() - 5]));
    let mut short = Vec::new();
    for (seq, payload) in (1..).zip(payloads.iter().take(3)) {
        seal_frame(&mut short, seq, SALT, payload);
    }
    write("raw-three", &raw(0, &short));
    // Mode 1: the same frames as chunks, a few at a time.
    for (i, group) in payloads.chunks(4).enumerate() {
        let mut seed = vec![1, 0];
        for payload in group {
            seed.push(1);
            seed.extend_from_slice(&u16::try_from(payload.len()).unwrap().to_le_bytes());
            seed.extend_from_slice(payload);
        }
        write(&format!("sealed-{i:02}"), &seed);
    }
    // Mode 2: every frame payload alone, and the golden bytes of the op formats.
    for (i, payload) in payloads.iter().enumerate() {
        let mut seed = vec![2];
        seed.extend_from_slice(payload);
        write(&format!("ops-{i:02}"), &seed);
    }
    let mut golden = vec![2];
    golden.extend(unhex(V4_HEX));
    write("ops-golden-v4", &golden);
    for version in [2, 3] {
        let mut legacy = vec![2, version];
        legacy.extend(unhex(V3_HEX));
        write(&format!("ops-golden-v{version}"), &legacy);
    }
}

fn record_seeds(dir: &Path, payloads: &[Vec<u8>]) {
    let mut write = corpus(dir);
    let mut n = 0;
    let mut put = |record: Record, write: &mut dyn FnMut(&str, &[u8])| {
        n += 1;
        let kind = match &record {
            Record::Job(_) => "job",
            Record::Body(_) => "body",
            Record::Queue(_) => "queue",
            Record::Schedule(_) => "schedule",
            Record::Events(_) => "events",
            Record::Cursor(_) => "cursor",
            Record::Idempotency(_) => "idempotency",
            Record::Key(_) => "key",
            Record::Audit(_) => "audit",
        };
        write(&format!("{kind}-{n:02}"), &encode_record(&record));
    };
    // The records inside the real run's ops.
    let mut seen = std::collections::BTreeSet::new();
    for payload in payloads {
        for op in decode_ops(payload).unwrap() {
            let records = match op {
                WriteOp::Insert { record, body, .. } => {
                    vec![Record::Job(record), Record::Body(body)]
                }
                WriteOp::PutQueue { record, .. } => vec![Record::Queue(record)],
                WriteOp::PutSchedule { record, .. } => vec![Record::Schedule(record)],
                WriteOp::PutKey { record, .. } => vec![Record::Key(record)],
                WriteOp::Audit { record, .. } => vec![Record::Audit(record)],
                _ => Vec::new(),
            };
            for record in records {
                if seen.insert(encode_record(&record)) {
                    put(record, &mut write);
                }
            }
        }
    }
    // By hand: the records no op carries, every job state, and a version-1 queue record.
    let settings = QueueRecord::from(wharf::broker::QueueConfig::default());
    let event = |data| EventRecord {
        at: START_MS,
        queue: Some("emails".into()),
        job_id: Some(7),
        data,
    };
    put(
        Record::Events(vec![
            event(EventData::JobEnqueued {
                payload: "{\"a\":1}".into(),
                priority: 128,
                headers: vec![("h".into(), "v".into())],
                run_at: START_MS,
                max_attempts: 5,
                lease_ms: Some(1000),
                group: Some("customer-42".into()),
            }),
            event(EventData::JobLeased {
                attempt: 1,
                lease_expires_at: START_MS + 1,
            }),
            event(EventData::JobRetryScheduled {
                attempt: 1,
                error: Some("e".into()),
                run_at: START_MS + 2,
            }),
            event(EventData::JobSucceeded {
                attempt: 2,
                result: Some("true".into()),
            }),
            event(EventData::JobDeleted {
                reason: DeleteReason::Retention,
            }),
        ]),
        &mut write,
    );
    put(
        Record::Events(vec![
            event(EventData::QueueCreated {
                settings: settings.clone(),
            }),
            event(EventData::QueuePaused),
            event(EventData::QueuePurged { jobs: 3 }),
            event(EventData::ScheduleFired {
                name: "nightly".into(),
                due_at: START_MS,
            }),
            event(EventData::Message {
                topic: "orders".into(),
                key: None,
                payload: "{}".into(),
                headers: Vec::new(),
            }),
        ]),
        &mut write,
    );
    put(
        Record::Cursor(CursorRecord {
            seq: 42,
            updated_at: START_MS,
        }),
        &mut write,
    );
    put(
        Record::Idempotency(IdempotencyRecord {
            job_id: 9,
            expires_at: START_MS + 86_400_000,
        }),
        &mut write,
    );
    for state in [
        StoredState::Leased {
            nonce: u64::from(u32::MAX),
            deadline: START_MS,
        },
        StoredState::Dead { died_at: START_MS },
        StoredState::Cancelled {
            finished_at: START_MS,
        },
    ] {
        put(
            Record::Job(wharf::storage::JobRecord {
                queue: "emails".into(),
                priority: 255,
                state,
                attempts: 3,
                max_attempts: 3,
                lease_ms: None,
                enqueued_at: START_MS,
                updated_at: START_MS,
                last_error: Some("boom".into()),
                version: 4,
                group: Some("customer-42".into()),
            }),
            &mut write,
        );
    }
    // Version 1 of a queue record: its first six fields, behind the byte 1.
    let mut v1 = encode(&(
        settings.lease_ms,
        settings.max_attempts,
        settings.backoff_base_ms,
        settings.backoff_cap_ms,
        settings.backoff_jitter,
        settings.paused,
    ));
    v1[0] = 1;
    write("queue-v1", &v1);
    // Kinds are tried on every input; make sure each has at least one seed.
    let _ = RecordKind::ALL;
}

fn http_seeds(dir: &Path) {
    let mut write = corpus(dir);
    let mut seed = |name: &str, method: Method, path: &str, mode: u8, flags: u8, rest: &str| {
        let route =
            route_index(&method, path).unwrap_or_else(|| panic!("no route {method} {path}"));
        let mut bytes = vec![route, mode, flags];
        bytes.extend_from_slice(rest.as_bytes());
        write(name, &bytes);
    };
    use Method as M;
    let jobs = "/v1/queues/{}/jobs";
    seed(
        "enqueue",
        M::POST,
        jobs,
        0,
        0,
        r#"{"payload":{"to":"a@example.com"},"priority":"high","headers":{"trace":"abc"}}"#,
    );
    seed(
        "enqueue-key-header",
        M::POST,
        jobs,
        0,
        3,
        r#"{"payload":{"to":"a@example.com"}}"#,
    );
    seed(
        "enqueue-key-field",
        M::POST,
        jobs,
        1,
        0,
        r#"{"payload":{"to":"b@example.com"},"idempotency_key":"k-7","run_at":"2026-01-02T03:04:05Z","max_attempts":2,"lease_ms":5000}"#,
    );
    seed(
        "enqueue-batch",
        M::POST,
        jobs,
        0,
        0,
        r#"{"jobs":[{"payload":1},{"payload":2,"delay_ms":60000},{"payload":null,"priority":7,"max_attempts":2,"lease_ms":5000}]}"#,
    );
    seed(
        "enqueue-batch-emit",
        M::POST,
        jobs,
        0,
        0,
        r#"{"jobs":[{"payload":{"n":1},"idempotency_key":"a"},{"payload":{"n":2},"idempotency_key":"a"}],"emit":[{"topic":"orders","key":"o-1","payload":{"total":12},"headers":{"h":"v"}}]}"#,
    );
    seed(
        "enqueue-single-emit",
        M::POST,
        jobs,
        0,
        0,
        r#"{"payload":[1,2,3],"emit":[{"topic":"t","payload":"x"}]}"#,
    );
    seed(
        "enqueue-bad-path",
        M::POST,
        jobs,
        3,
        0,
        "a b\n{\"payload\":1}",
    );
    seed(
        "poll",
        M::POST,
        "/v1/queues/{}/poll",
        0,
        0,
        r#"{"max":10,"wait_ms":20000,"lease_ms":60000}"#,
    );
    seed("poll-empty", M::POST, "/v1/queues/{}/poll", 1, 0, "");
    seed(
        "patch",
        M::PATCH,
        "/v1/queues/{}",
        0,
        0,
        r#"{"lease_ms":60000,"max_attempts":10,"backoff":{"base_ms":500,"jitter":false}}"#,
    );
    seed(
        "patch-windows",
        M::PATCH,
        "/v1/queues/{}",
        0,
        0,
        r#"{"retention_ms":86400000,"dead_retention_ms":1209600000,"idempotency_window_ms":3600000,"paused":false,"backoff":{"cap_ms":1000}}"#,
    );
    seed("pause", M::POST, "/v1/queues/{}/pause", 0, 0, "");
    seed("resume", M::POST, "/v1/queues/{}/resume", 0, 0, "");
    seed(
        "replay-ids",
        M::POST,
        "/v1/queues/{}/replay",
        0,
        0,
        r#"{"ids":["4","999"]}"#,
    );
    seed("replay-all", M::POST, "/v1/queues/{}/replay", 1, 0, "{}");
    seed("purge", M::DELETE, jobs, 0, 0, "");
    seed("list-jobs", M::GET, jobs, 0, 0, "state=dead&limit=100");
    seed(
        "list-jobs-after",
        M::GET,
        jobs,
        1,
        0,
        "state=leased&limit=2&after=3",
    );
    seed("queue", M::GET, "/v1/queues/{}", 0, 0, "");
    seed(
        "ack",
        M::POST,
        "/v1/jobs/{}/ack",
        0,
        0,
        r#"{"lease":"@LEASE","result":{"sent":true}}"#,
    );
    seed(
        "ack-emit-enqueue",
        M::POST,
        "/v1/jobs/{}/ack",
        0,
        0,
        r#"{"lease":"@LEASE","emit":[{"topic":"t","key":"k","payload":{}}],"enqueue":[{"queue":"next","payload":{"step":2},"delay_ms":10}]}"#,
    );
    seed(
        "ack-stale",
        M::POST,
        "/v1/jobs/{}/ack",
        0,
        0,
        r#"{"lease":"1.000000009b101d3a"}"#,
    );
    seed(
        "nack",
        M::POST,
        "/v1/jobs/{}/nack",
        0,
        0,
        r#"{"lease":"@LEASE","error":"smtp 421","delay_ms":30000}"#,
    );
    seed(
        "nack-dead",
        M::POST,
        "/v1/jobs/{}/nack",
        0,
        0,
        r#"{"lease":"@LEASE","error":"bad","dead":true,"emit":[{"topic":"dead","payload":null}]}"#,
    );
    seed(
        "extend",
        M::POST,
        "/v1/jobs/{}/extend",
        0,
        0,
        r#"{"lease":"@LEASE","lease_ms":120000}"#,
    );
    seed(
        "extend-missing",
        M::POST,
        "/v1/jobs/{}/extend",
        1,
        0,
        r#"{"lease":"1.9b101d3af328957b","lease_ms":120000}"#,
    );
    seed("cancel", M::DELETE, "/v1/jobs/{}", 0, 0, "");
    seed("job", M::GET, "/v1/jobs/{}", 0, 0, "");
    seed(
        "ack-batch",
        M::POST,
        "/v1/ack",
        0,
        0,
        r#"{"acks":[{"id":"@ID","lease":"@LEASE","result":{"ok":true}},{"id":"nope","lease":"1.0000000000000000"}]}"#,
    );
    seed(
        "schedule-put",
        M::PUT,
        "/v1/schedules/{}",
        0,
        0,
        r#"{"cron":"30 2 * * *","timezone":"Europe/Berlin","queue":"reports","job":{"payload":{"kind":"daily"},"priority":"high","headers":{"team":"finance"}}}"#,
    );
    seed(
        "schedule-put-6",
        M::PUT,
        "/v1/schedules/{}",
        1,
        0,
        r#"{"cron":"*/10 * * * * *","queue":"reports","job":{"payload":1,"max_attempts":3,"lease_ms":1000},"paused":true,"catch_up":"none"}"#,
    );
    seed(
        "schedule-put-bad",
        M::PUT,
        "/v1/schedules/{}",
        0,
        0,
        r#"{"cron":"61 * * * *","timezone":"Mars/Olympus","queue":"reports","job":{"payload":1}}"#,
    );
    seed(
        "schedule-pause",
        M::POST,
        "/v1/schedules/{}/pause",
        0,
        0,
        "",
    );
    seed(
        "schedule-resume",
        M::POST,
        "/v1/schedules/{}/resume",
        0,
        0,
        "",
    );
    seed(
        "schedule-trigger",
        M::POST,
        "/v1/schedules/{}/trigger",
        0,
        0,
        "",
    );
    seed("schedule-delete", M::DELETE, "/v1/schedules/{}", 0, 0, "");
    seed("schedule", M::GET, "/v1/schedules/{}", 0, 0, "");
    seed(
        "outbox",
        M::POST,
        "/v1/outbox",
        0,
        0,
        r#"{"messages": [{"topic": "orders", "key": "o-1", "payload": {"total": 12}}]}"#,
    );
    seed(
        "events",
        M::GET,
        "/v1/events",
        0,
        0,
        "types=job.dead&queue=emails&wait_ms=30000",
    );
    seed(
        "events-after",
        M::GET,
        "/v1/events",
        0,
        0,
        "after=3&limit=2",
    );
    seed(
        "events-cursor",
        M::GET,
        "/v1/events",
        0,
        0,
        "cursor=reader-1",
    );
    seed(
        "events-stream",
        M::GET,
        "/v1/events/stream",
        0,
        0,
        "types=job.succeeded,job.dead",
    );
    seed(
        "cursor-put",
        M::PUT,
        "/v1/cursors/{}",
        0,
        0,
        r#"{"seq":17}"#,
    );
    seed("cursor", M::GET, "/v1/cursors/{}", 0, 0, "");
    seed("cursor-delete", M::DELETE, "/v1/cursors/{}", 1, 0, "");
    for (name, path) in [
        ("queues", "/v1/queues"),
        ("schedules", "/v1/schedules"),
        ("cursors", "/v1/cursors"),
        ("mirrors", "/v1/mirrors"),
        ("healthz", "/healthz"),
        ("readyz", "/readyz"),
        ("metrics", "/metrics"),
    ] {
        seed(name, M::GET, path, 0, 0, "");
    }
    seed("wrong-method", M::PUT, "/v1/queues/{}/poll", 0, 0, "{}");
    seed("no-route", M::POST, "/v1/nowhere/{}", 0, 0, "{}");
}

fn cron_seeds(dir: &Path) {
    let mut write = corpus(dir);
    let cases = [
        ("*/5 * * * *", "Europe/Paris"),
        ("30 2 * * *", "Europe/Berlin"),
        ("0 9 * * MON-FRI", "America/New_York"),
        ("0 0 L * *", "UTC"),
        ("0 0 * * 5L", "Asia/Kolkata"),
        ("0 12 15W * *", "Australia/Lord_Howe"),
        ("0 0 * * 1#2", "Pacific/Chatham"),
        ("*/10 * * * * *", ""),
        ("0 30 1 * * *", "America/Sao_Paulo"),
        ("@hourly", "Europe/London"),
        ("@yearly", "UTC"),
        ("0 0 29 2 *", "Antarctica/Troll"),
        ("0 0 30 2 *", "UTC"),
        ("15,45 1-3 * JAN,JUL SUN", "Europe/Dublin"),
    ];
    // 2026-03-29T00:00:00Z (a spring-forward day in Europe), and 2026-10-25.
    let instants = [1_774_742_400_000u64, 1_792_886_400_000];
    for (i, (expression, zone)) in cases.iter().enumerate() {
        let mut bytes = instants[i % 2].to_le_bytes().to_vec();
        bytes.extend_from_slice(expression.as_bytes());
        bytes.push(0);
        bytes.extend_from_slice(zone.as_bytes());
        write(&format!("cron-{i:02}"), &bytes);
    }
}

fn event_query_seeds(dir: &Path) {
    let mut write = corpus(dir);
    let cases: [(u8, &str); 12] = [
        (0, ""),
        (0, "after=0&limit=10"),
        (0, "types=job.*,message&queue=fz-events"),
        (0, "types=job.dead&queue=emails&wait_ms=30000"),
        (0, "cursor=reader-1&limit=1"),
        (0, "after=1&cursor=reader-1"),
        (0, "limit=0"),
        (0, "after=18446744073709551615"),
        (1, "types=job.succeeded,job.dead"),
        (1, "after=3"),
        (3, "types=job.*#5"),
        (1, "limit=5"),
    ];
    for (i, (flags, query)) in cases.iter().enumerate() {
        let mut bytes = vec![*flags];
        bytes.extend_from_slice(query.as_bytes());
        write(&format!("query-{i:02}"), &bytes);
    }
}

/// Seeds for `broker_model` are bytes the `arbitrary` crate decodes into operation lists;
/// pseudo-random bytes of a few lengths make varied ones.
fn broker_model_seeds(dir: &Path) {
    let mut write = corpus(dir);
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    for (i, len) in [64usize, 128, 256, 256, 512, 512, 1024].iter().enumerate() {
        let bytes: Vec<u8> = (0..*len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 24) as u8
            })
            .collect();
        write(&format!("ops-{i:02}"), &bytes);
    }
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

/// Op format 4 of the golden ops (`src/storage/ops/golden.rs`), version byte included.
const V4_HEX: &str = concat!(
    "041b0106656d61696c731904b0ea0105e807c0cf24010080dddb018088b2a00280b89929b8e7eab6b7330207",
    "240406656d61696c73c000f4d3eab6b733000501e0d40380d0eab6b73380d0eab6b733000119040c7b22746f",
    "223a22616461227d0105747261636503742d31010a656d61696c73006b2d31808884e0b7330208210406656d",
    "61696c738000f4d3eab6b73300050080d0eab6b73380d0eab6b73300010704046e756c6c0000020921040665",
    "6d61696c738000f4d3eab6b73300050080d0eab6b73380d0eab6b73300010804055b312c325d000003070001",
    "effdb6f50da4beecb6b73301000000f4d3eab6b73303070200d0dfeab6b733010104626f6f6d0000e8d7eab6",
    "b73303080203dcdbeab6b733050107676176652075700001dce39cd7b933dcdbeab6b73303090504c0dceab6",
    "b73300000001c0b9c6b8b733c0dceab6b73303070402b8e7eab6b7330200010b7b226f6b223a747275657d01",
    "b8c4c6b8b733b8e7eab6b7330509c0b9c6b8b73301c096a2bab7330508dce39cd7b93300040901c096a2bab7",
    "3301b8e7eab6b733040a0000b8e7eab6b73306076e696768746c794e0409302033202a202a202a0c4575726f",
    "70652f506172697306656d61696c730f7b227265706f7274223a747275657d80010300010161016200010001",
    "808aa2bab73380d0eab6b73380d0eab6b7330080d0eab6b73307036f6c64b8e7eab6b733080a656d61696c73",
    "006b2d30ffcfeab6b733030b010107908ff0b6b73301000000a0efeab6b733030b0303908ff0b6b73305010d",
    "6c6561736520657870697265640001809ecf84ba33908ff0b6b733030b0600f896f0b6b73300000000f896f0",
    "b6b73306076e696768746c794e0409302033202a202a202a0c4575726f70652f506172697306656d61696c73",
    "0f7b227265706f7274223a747275657d80010300010161016201010001808aa2bab73380d0eab6b73380d0ea",
    "b6b73301e09ef0b6b73306076e696768746c794e0409302033202a202a202a0c4575726f70652f5061726973",
    "06656d61696c730f7b227265706f7274223a747275657d80010300010161016200010001808aa2bab73380d0",
    "eab6b73380d0eab6b73302c8a6f0b6b73306076e696768746c79540409302033202a202a202a0c4575726f70",
    "652f506172697306656d61696c730f7b227265706f7274223a747275657d800103000101610162000101808a",
    "a2bab73301808aa2bab73380d0eab6b73380d0eab6b733030ce48aa2bab73309010709066f72646572730103",
    "6f2d310c7b22746f74616c223a31327d0105747261636503742d32c88ba2bab7330900066f72646572730004",
    "6e756c6c00ac8ca2bab7330a06656d61696c7302908da2bab7330b086d6972726f722d6111f48da2bab7330c",
    "086d6972726f722d62",
);

/// Op formats 2 and 3 of the legacy golden ops, without the version byte.
const V3_HEX: &str = concat!(
    "100006656d61696c73b0ea0105e807c0cf24010080dddb018088b2a00280b89929010706656d61696c73c000",
    "f4d3eab6b733000501e0d40380d0eab6b73380d0eab6b73300010c7b22746f223a22616461227d0105747261",
    "636503742d31010a656d61696c73006b2d31808884e0b733010806656d61696c738000f4d3eab6b733000500",
    "80d0eab6b73380d0eab6b7330001046e756c6c0000010906656d61696c738000f4d3eab6b73300050080d0ea",
    "b6b73380d0eab6b7330001055b312c325d0000020701effdb6f50da4beecb6b73301000000f4d3eab6b73302",
    "0700d0dfeab6b733010104626f6f6d0000e8d7eab6b733020803dcdbeab6b733050107676176652075700001",
    "dce39cd7b933dcdbeab6b733020904c0dceab6b73300000001c0b9c6b8b733c0dceab6b733020702b8e7eab6",
    "b7330200010b7b226f6b223a747275657d01b8c4c6b8b733b8e7eab6b7330409c0b9c6b8b73301c096a2bab7",
    "330408dce39cd7b93300030901c096a2bab733030a0005076e696768746c7909302033202a202a202a0c4575",
    "726f70652f506172697306656d61696c730f7b227265706f7274223a747275657d8001030001016101620001",
    "0001808aa2bab73380d0eab6b73380d0eab6b73306036f6c64070a656d61696c73006b2d30ffcfeab6b733",
);
