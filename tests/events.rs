//! The change log: every change appends its events in the same commit, in order, with
//! contiguous sequence numbers; readers page, filter, long-poll, stream (SSE) and keep cursors;
//! a reader behind the trimmed start gets 410.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may unwrap
mod common;
use common::{T0, TestServer, assert_error};

use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// Every event after `after` (the whole log: pages of 1000).
async fn events(server: &TestServer, after: u64) -> Vec<Value> {
    let (status, page) = server
        .get(&format!("/v1/events?after={after}&limit=1000"))
        .await;
    assert_eq!(status, 200, "{page}");
    page["events"].as_array().unwrap().clone()
}

/// The type and job of each event but the audit records (the admin requests' own, checked in
/// `tests/audit.rs`).
fn types(events: &[Value]) -> Vec<(String, Option<String>)> {
    events
        .iter()
        .filter(|e| e["type"] != "audit")
        .map(|e| {
            (
                e["type"].as_str().unwrap().to_owned(),
                e["job_id"].as_str().map(str::to_owned),
            )
        })
        .collect()
}

fn ev(kind: &str, job: Option<&str>) -> (String, Option<String>) {
    (kind.to_owned(), job.map(str::to_owned))
}

async fn poll_one(server: &TestServer, queue: &str) -> (String, String) {
    let jobs = server.poll(queue, 1).await;
    assert_eq!(jobs.len(), 1, "nothing to deliver in {queue}");
    (
        jobs[0]["id"].as_str().unwrap().to_owned(),
        jobs[0]["lease"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_change_appends_its_events_in_order() {
    let server = TestServer::start().await;
    server
        .patch("/v1/queues/q", r#"{"max_attempts":2,"retention_ms":1000}"#)
        .await;
    let a = server
        .enqueue("q", r#"{"payload":{"n":1},"headers":{"h":"v"}}"#)
        .await;
    let (_, lease) = poll_one(&server, "q").await;
    let nack = json!({"lease": lease, "error": "boom", "delay_ms": 10}).to_string();
    assert_eq!(
        server.post(&format!("/v1/jobs/{a}/nack"), &nack).await.0,
        200
    );
    server.advance(10).await;
    let (_, lease) = poll_one(&server, "q").await;
    // The second attempt's lease expires: out of attempts, dead.
    server.advance(30_000).await;
    assert_eq!(server.state_of(&a).await, "dead");
    let replay = json!({"ids": [a]}).to_string();
    assert_eq!(server.post("/v1/queues/q/replay", &replay).await.0, 200);
    let (_, lease2) = poll_one(&server, "q").await;
    assert_ne!(lease, lease2);
    let ack = json!({"lease": lease2, "result": [1]}).to_string();
    assert_eq!(server.post(&format!("/v1/jobs/{a}/ack"), &ack).await.0, 200);
    let b = server.enqueue("q", r#"{"payload":2}"#).await;
    assert_eq!(server.delete(&format!("/v1/jobs/{b}")).await.0, 200);
    let c = server.enqueue("q", r#"{"payload":3}"#).await;
    assert_eq!(server.delete("/v1/queues/q/jobs").await.0, 200);
    assert_eq!(server.post("/v1/queues/q/pause", "").await.0, 200);
    assert_eq!(server.post("/v1/queues/q/resume", "").await.0, 200);
    let mut log = events(&server, 0).await;
    // Retention deletes a and b. Its deletes are not fsynced for a reply (a lost one is redone),
    // so readers see them once the next fsync makes them durable: a long-poll waits for that.
    server.advance(1_000).await;
    let (status, page) = server
        .get(&format!("/v1/events?after={}&wait_ms=10000", log.len()))
        .await;
    assert_eq!(status, 200, "{page}");
    log.extend(page["events"].as_array().unwrap().iter().cloned());
    let seqs: Vec<u64> = log.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(
        seqs,
        (1..=seqs.len() as u64).collect::<Vec<_>>(),
        "contiguous from 1"
    );
    // The admin requests' audit records are checked in tests/audit.rs.
    let log: Vec<Value> = log.into_iter().filter(|e| e["type"] != "audit").collect();
    let a = Some(a.as_str());
    assert_eq!(
        types(&log),
        [
            ev("queue.created", None),
            ev("job.enqueued", a),
            ev("job.leased", a),
            ev("job.retry_scheduled", a),
            ev("job.leased", a),
            ev("job.lease_expired", a),
            ev("job.dead", a),
            ev("job.replayed", a),
            ev("job.leased", a),
            ev("job.succeeded", a),
            ev("job.enqueued", Some(&b)),
            ev("job.cancelled", Some(&b)),
            ev("job.enqueued", Some(&c)),
            ev("job.deleted", Some(&c)),
            ev("queue.purged", None),
            ev("queue.paused", None),
            ev("queue.resumed", None),
            ev("job.deleted", a),
            ev("job.deleted", Some(&b)),
        ]
    );
    let enqueued = &log[1];
    assert_eq!(enqueued["queue"], "q");
    assert_eq!(enqueued["tenant"], "default");
    assert_eq!(enqueued["at"], wharf::clock::rfc3339(T0));
    assert_eq!(
        enqueued["data"],
        json!({"payload": {"n": 1}, "priority": 128, "headers": {"h": "v"},
               "run_at": wharf::clock::rfc3339(T0), "max_attempts": 2, "lease_ms": null, "group": null})
    );
    assert_eq!(log[3]["data"]["error"], "boom");
    assert_eq!(log[3]["data"]["attempt"], 1);
    assert_eq!(log[6]["data"]["error"], "lease expired");
    assert_eq!(log[9]["data"]["result"], json!([1]));
    assert!(log[2]["data"]["lease_expires_at"].is_string());
    assert!(
        log.iter().all(|e| !e.to_string().contains("lease\"")),
        "a lease token never appears in the log"
    );
    assert_eq!(log[13]["data"]["reason"], "purge");
    assert_eq!(log[14]["data"]["jobs"], 1);
    assert_eq!(log[17]["data"]["reason"], "retention");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedules_and_queue_settings_have_events_too() {
    let server = TestServer::start().await;
    let put = r#"{"cron":"*/5 * * * *","queue":"reports","job":{"payload":{"k":1}}}"#;
    assert_eq!(server.request_put("/v1/schedules/s", put).await.0, 201);
    server.advance(5 * 60_000).await;
    assert_eq!(server.post("/v1/schedules/s/pause", "").await.0, 200);
    assert_eq!(server.post("/v1/schedules/s/resume", "").await.0, 200);
    assert_eq!(server.delete("/v1/schedules/s").await.0, 200);
    server
        .patch("/v1/queues/reports", r#"{"lease_ms":1000}"#)
        .await;
    let log = events(&server, 0).await;
    let log: Vec<Value> = log.into_iter().filter(|e| e["type"] != "audit").collect();
    let kinds: Vec<&str> = log.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "schedule.put",
            "queue.created",
            "job.enqueued",
            "schedule.fired",
            "schedule.paused",
            "schedule.resumed",
            "schedule.deleted",
            "queue.updated",
        ]
    );
    assert_eq!(log[0]["data"]["name"], "s");
    assert_eq!(log[0]["data"]["cron"], "*/5 * * * *");
    assert_eq!(log[0]["queue"], "reports");
    assert_eq!(log[3]["job_id"], log[2]["job_id"], "the fire names its job");
    assert_eq!(
        log[3]["data"]["due_at"],
        wharf::clock::rfc3339(T0 + 5 * 60_000)
    );
    assert_eq!(log[7]["data"]["settings"]["lease_ms"], 1000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_filter_page_and_long_poll() {
    let server = TestServer::start().await;
    for queue in ["a", "b", "a"] {
        server.enqueue(queue, r#"{"payload":1}"#).await;
    }
    // By type family and queue; next_after passes the events looked at, matching or not.
    let (_, page) = server.get("/v1/events?types=job.*&queue=a&limit=1").await;
    assert_eq!(page["events"].as_array().unwrap().len(), 1);
    assert_eq!(page["events"][0]["seq"], 2);
    assert_eq!(page["next_after"], 2);
    let (_, page) = server
        .get("/v1/events?after=2&types=job.enqueued&queue=a")
        .await;
    let seqs: Vec<u64> = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, [5], "queue b's events are left out");
    assert_eq!(
        (&page["next_after"], &page["head"], &page["oldest"]),
        (&json!(5), &json!(5), &json!(1))
    );
    let (_, page) = server.get("/v1/events?types=queue.created,message").await;
    assert_eq!(page["events"].as_array().unwrap().len(), 2);

    // A long-poll after the head waits for the next event (the clock stands still, so only
    // an event can end it).
    let addr = server.addr;
    let waiting = tokio::spawn(async move {
        common::request(addr, "GET", "/v1/events?after=5&wait_ms=10000", None).await
    });
    let id = server.enqueue("b", r#"{"payload":2}"#).await;
    let (status, page) = tokio::time::timeout(Duration::from_secs(20), waiting)
        .await
        .expect("the long-poll did not return")
        .unwrap();
    assert_eq!(status, 200);
    assert_eq!(page["events"][0]["job_id"], id.as_str());
    // Past its wait, an empty page that still says where the log is.
    let (_, page) = server.get("/v1/events?after=6&wait_ms=0").await;
    assert_eq!(
        (
            page["events"].as_array().unwrap().len(),
            &page["next_after"]
        ),
        (0, &json!(6))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_behind_the_trimmed_start_gets_410_with_the_oldest_seq() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::quiet_config_in(dir.path());
    config.events_max_entries = 5;
    let server = TestServer::start_in(dir, config, wharf::clock::Clock::manual(T0)).await;
    // One event per request: the queue, then ten jobs.
    for n in 0..10 {
        server.enqueue("q", &format!(r#"{{"payload":{n}}}"#)).await;
    }
    let reply = server.get("/v1/events?after=2").await;
    assert_error(&reply, 410, "events_trimmed");
    let oldest = reply.1["error"]["oldest"].as_u64().unwrap();
    assert!((6..=7).contains(&oldest), "{}", reply.1);
    // From the oldest kept, or with no position at all, it reads on.
    let (status, page) = server
        .get(&format!("/v1/events?after={}", oldest - 1))
        .await;
    assert_eq!(status, 200);
    assert_eq!(page["events"][0]["seq"], oldest);
    let (_, page) = server.get("/v1/events").await;
    assert_eq!(page["events"][0]["seq"], oldest);
    assert_eq!(page["oldest"], oldest);
    // Events outlive a restart, and the sequence goes on.
    let server = server.restart().await;
    server.enqueue("q", r#"{"payload":"after"}"#).await;
    let (_, page) = server.get("/v1/events?after=11").await;
    assert_eq!(page["events"][0]["seq"], 12);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cursors_keep_a_readers_position() {
    let server = TestServer::start().await;
    for _ in 0..3 {
        server.enqueue("q", r#"{"payload":1}"#).await;
    }
    let (status, cursor) = server
        .request_put("/v1/cursors/mirror-1", r#"{"seq":2}"#)
        .await;
    assert_eq!(status, 201, "{cursor}");
    assert_eq!((&cursor["seq"], &cursor["lag"]), (&json!(2), &json!(2)));
    assert_eq!(
        server
            .request_put("/v1/cursors/mirror-1", r#"{"seq":3}"#)
            .await
            .0,
        200
    );
    let (_, page) = server.get("/v1/events?cursor=mirror-1").await;
    assert_eq!(page["events"][0]["seq"], 4);
    let (_, list) = server.get("/v1/cursors").await;
    assert_eq!(list["cursors"][0]["name"], "mirror-1");
    // Behind the last enqueue and the two cursor puts' audit records.
    assert_eq!(list["cursors"][0]["lag"], 3);
    // The cursor survives a restart.
    let server = server.restart().await;
    let (_, one) = server.get("/v1/cursors/mirror-1").await;
    assert_eq!(one["seq"], 3);
    assert_error(
        &server
            .request_put("/v1/cursors/mirror-1", r#"{"seq":99}"#)
            .await,
        422,
        "invalid_value",
    );
    assert_error(
        &server
            .request_put("/v1/cursors/bad%20name", r#"{"seq":1}"#)
            .await,
        400,
        "invalid_cursor_name",
    );
    assert_eq!(server.delete("/v1/cursors/mirror-1").await.0, 200);
    assert_error(
        &server.get("/v1/cursors/mirror-1").await,
        404,
        "cursor_not_found",
    );
    assert_error(
        &server.get("/v1/events?cursor=mirror-1").await,
        404,
        "cursor_not_found",
    );
    assert_error(
        &server.delete("/v1/cursors/mirror-1").await,
        404,
        "cursor_not_found",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_event_queries_are_422() {
    let server = TestServer::start().await;
    for query in [
        "?after=1&cursor=c",
        "?limit=0",
        "?limit=1001",
        "?wait_ms=30001",
        "?after=-1",
        "?after=x",
        "?types=job.nope",
        "?types=nope.*",
        "?surprise=1",
    ] {
        let reply = server.get(&format!("/v1/events{query}")).await;
        assert_error(&reply, 422, "invalid_value");
    }
    assert_error(
        &server.get("/v1/events/stream?limit=5").await,
        422,
        "invalid_value",
    );
}

/// A raw HTTP/1.1 connection reading an SSE stream line by line.
struct Sse {
    lines: tokio::io::Lines<BufReader<tokio::net::TcpStream>>,
}

impl Sse {
    async fn open(server: &TestServer, path: &str, last_event_id: Option<u64>) -> Sse {
        let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
        let resume =
            last_event_id.map_or_else(String::new, |id| format!("last-event-id: {id}\r\n"));
        let request = format!("GET {path} HTTP/1.1\r\nhost: 127.0.0.1\r\n{resume}\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut sse = Sse {
            lines: BufReader::new(stream).lines(),
        };
        let status = sse.line().await;
        assert!(status.starts_with("HTTP/1.1 200"), "{status}");
        // Headers, up to the blank line.
        let mut content_type = String::new();
        loop {
            let line = sse.line().await;
            if line.is_empty() {
                break;
            }
            if line.to_ascii_lowercase().starts_with("content-type:") {
                content_type = line;
            }
        }
        assert!(content_type.contains("text/event-stream"), "{content_type}");
        sse
    }

    async fn line(&mut self) -> String {
        tokio::time::timeout(Duration::from_secs(20), self.lines.next_line())
            .await
            .expect("the stream sent nothing for 20 s")
            .unwrap()
            .expect("the stream ended")
    }

    /// The next event: (id, type, data as JSON). Chunk-size lines of the chunked encoding and
    /// comment lines are skipped.
    async fn event(&mut self) -> (u64, String, Value) {
        let (mut id, mut kind, mut data) = (None, None, None);
        loop {
            let line = self.line().await;
            if let Some(v) = line.strip_prefix("id: ") {
                id = Some(v.parse().unwrap());
            } else if let Some(v) = line.strip_prefix("event: ") {
                kind = Some(v.to_owned());
            } else if let Some(v) = line.strip_prefix("data: ") {
                data = Some(serde_json::from_str(v).unwrap());
            } else if line.is_empty()
                && let Some(data) = data.take()
            {
                return (id.unwrap(), kind.unwrap(), data);
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_sends_each_event_as_it_comes_and_resumes_by_last_event_id() {
    let server = TestServer::start().await;
    let first = server.enqueue("q", r#"{"payload":1}"#).await;
    let mut sse = Sse::open(&server, "/v1/events/stream?types=job.*", None).await;
    let (id, kind, data) = sse.event().await;
    assert_eq!((id, kind.as_str()), (2, "job.enqueued"));
    assert_eq!(
        (data["seq"].as_u64(), data["job_id"].as_str()),
        (Some(2), Some(first.as_str()))
    );
    // New events arrive while the stream is open.
    let second = server.enqueue("q", r#"{"payload":2}"#).await;
    let (id, _, data) = sse.event().await;
    assert_eq!((id, data["job_id"].as_str()), (3, Some(second.as_str())));
    drop(sse);
    // A reconnecting EventSource sends the last id it saw.
    let third = server.enqueue("q", r#"{"payload":3}"#).await;
    let mut sse = Sse::open(&server, "/v1/events/stream", Some(3)).await;
    let (id, _, data) = sse.event().await;
    assert_eq!((id, data["job_id"].as_str()), (4, Some(third.as_str())));
}
