//! Bad input on **every** route, table-driven: query strings (unknown, repeated, zero, huge,
//! beyond u64, 1e309, negative), path segments (percent-encoded slash, NUL, `..`, invalid
//! UTF-8), bodies (syntax, invalid UTF-8, duplicate keys, 100k levels of nesting, numbers
//! beyond u64 and f64, unknown fields), media types, and bodies cut off mid-way. Each gets a
//! 4xx JSON error with its documented code, and changes nothing: the queues with their counts,
//! the jobs, schedules and cursors, and the head of the change log are compared before and
//! after every request. `tests/bad_input.rs` has the per-route field rules.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may unwrap
mod common;
use common::{TestServer, request_bytes};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The state every case starts from: one ready and one leased job in `q`, a schedule `s`, a
/// cursor `c`, and a few events.
struct Fixture {
    ready: String,
    leased: String,
    lease: String,
}

async fn setup(server: &TestServer) -> Fixture {
    server.enqueue("q", r#"{"payload":"first"}"#).await;
    let ready = server.enqueue("q", r#"{"payload":"second"}"#).await;
    let job = server.poll("q", 1).await.remove(0);
    let schedule = json!({"cron": "0 0 1 1 *", "queue": "q", "job": {"payload": 1}});
    let reply = server
        .request_put("/v1/schedules/s", &schedule.to_string())
        .await;
    assert!(reply.0 == 200 || reply.0 == 201, "{reply:?}");
    let reply = server.request_put("/v1/cursors/c", r#"{"seq":1}"#).await;
    assert!(reply.0 == 200 || reply.0 == 201, "{reply:?}");
    Fixture {
        ready,
        leased: job["id"].as_str().unwrap().to_owned(),
        lease: job["lease"].as_str().unwrap().to_owned(),
    }
}

/// Everything a bad request must not change.
async fn snapshot(server: &TestServer, fx: &Fixture) -> Value {
    let mut parts = Vec::new();
    for path in [
        "/v1/queues".to_owned(),
        format!("/v1/jobs/{}", fx.ready),
        format!("/v1/jobs/{}", fx.leased),
        "/v1/schedules".to_owned(),
        "/v1/cursors".to_owned(),
    ] {
        let (status, mut body) = server.get(&path).await;
        assert_eq!(status, 200, "{path}: {body}");
        // A cursor's lag follows the log's head, audit records included.
        for cursor in body["cursors"].as_array_mut().into_iter().flatten() {
            cursor.as_object_mut().unwrap().remove("lag");
        }
        parts.push(body);
    }
    // Refusals of admin routes leave audit records: the change log is compared without them.
    parts.push(common::last_change(server, None).await.into());
    Value::Array(parts)
}

/// One bad request and the error it must get.
struct Case {
    method: &'static str,
    path: String,
    body: Option<Vec<u8>>,
    content_type: Option<&'static str>,
    status: u16,
    code: &'static str,
}

fn case(method: &'static str, path: impl Into<String>, status: u16, code: &'static str) -> Case {
    Case {
        method,
        path: path.into(),
        body: None,
        content_type: None,
        status,
        code,
    }
}

impl Case {
    fn body(mut self, body: impl Into<Vec<u8>>) -> Case {
        self.body = Some(body.into());
        self
    }

    fn content_type(mut self, content_type: &'static str) -> Case {
        self.content_type = Some(content_type);
        self
    }
}

async fn expect_refused(server: &TestServer, fx: &Fixture, cases: Vec<Case>) {
    let before = snapshot(server, fx).await;
    for c in cases {
        let headers: Vec<(&str, &str)> = c
            .content_type
            .map(|t| vec![("content-type", t)])
            .unwrap_or_default();
        let reply = request_bytes(server.addr, c.method, &c.path, c.body.clone(), &headers).await;
        let shown = c
            .body
            .as_ref()
            .map(|b| String::from_utf8_lossy(&b[..b.len().min(80)]).into_owned());
        let what = format!("{} {} {shown:?} {:?}", c.method, c.path, c.content_type);
        assert_eq!(reply.0, c.status, "{what}: {}", reply.1);
        assert_eq!(reply.1["error"]["code"], c.code, "{what}: {}", reply.1);
        assert!(
            reply.1["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{what}: {}",
            reply.1
        );
        assert_eq!(
            snapshot(server, fx).await,
            before,
            "{what} changed something"
        );
    }
}

const BEYOND_U64: &str = "18446744073709551616";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_query_strings_are_422_on_the_routes_that_take_one() {
    let server = TestServer::start().await;
    let fx = setup(&server).await;
    let mut cases = Vec::new();
    let numbers = ["0", "1001", BEYOND_U64, "-1", "1e309", "1.5", "abc", ""];
    for base in [
        "/v1/queues?",
        "/v1/queues/q/jobs?state=ready&",
        "/v1/events?",
    ] {
        for n in numbers {
            cases.push(case(
                "GET",
                format!("{base}limit={n}"),
                422,
                "invalid_value",
            ));
        }
        for extra in ["limit=1&limit=2", "bogus=1", "LIMIT=1"] {
            cases.push(case("GET", format!("{base}{extra}"), 422, "invalid_value"));
        }
    }
    for query in [
        "",
        "?state=",
        "?state=succeeded",
        "?state=READY",
        "?state=ready&state=dead",
        "?state=ready&after=x",
        "?state=ready&after=-1",
        "?state=ready&after=1e309",
    ] {
        cases.push(case(
            "GET",
            format!("/v1/queues/q/jobs{query}"),
            422,
            "invalid_value",
        ));
    }
    cases.push(case(
        "GET",
        format!("/v1/queues/q/jobs?state=ready&after={BEYOND_U64}"),
        422,
        "invalid_value",
    ));
    for route in ["/v1/events", "/v1/events/stream"] {
        for query in [
            format!("after={BEYOND_U64}"),
            "after=1e309".into(),
            "after=-1".into(),
            "after=1&after=2".into(),
            "after=1&cursor=c".into(),
            "types=bogus".into(),
            "types=job.*,nope".into(),
            "bogus=1".into(),
        ] {
            cases.push(case(
                "GET",
                format!("{route}?{query}"),
                422,
                "invalid_value",
            ));
        }
        for queue in ["a%2Fb", "a%00b", "%2E%2E", ".", "a%20b"] {
            cases.push(case(
                "GET",
                format!("{route}?queue={queue}"),
                400,
                "invalid_queue_name",
            ));
        }
        cases.push(case(
            "GET",
            format!("{route}?cursor=nosuch"),
            404,
            "cursor_not_found",
        ));
    }
    for wait in ["30001", BEYOND_U64, "1e309", "-1"] {
        cases.push(case(
            "GET",
            format!("/v1/events?wait_ms={wait}"),
            422,
            "invalid_value",
        ));
    }
    // The stream sends every event as it comes: no page size, no wait.
    for query in ["limit=5", "wait_ms=1"] {
        cases.push(case(
            "GET",
            format!("/v1/events/stream?{query}"),
            422,
            "invalid_value",
        ));
    }
    expect_refused(&server, &fx, cases).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_string_on_a_route_that_takes_none_is_422_and_does_nothing() {
    let server = TestServer::start().await;
    let fx = setup(&server).await;
    let (ready, leased, lease) = (&fx.ready, &fx.leased, &fx.lease);
    // The writes are valid but for their query string: each would change something if it ran.
    let writes: Vec<(&str, String, String)> = vec![
        (
            "POST",
            "/v1/queues/q/jobs?priority=1".into(),
            r#"{"payload":1}"#.into(),
        ),
        (
            "PATCH",
            "/v1/queues/q?x=1".into(),
            r#"{"lease_ms":1000}"#.into(),
        ),
        ("POST", "/v1/queues/q/poll?max=1".into(), "{}".into()),
        ("POST", "/v1/queues/q/pause?x=1".into(), String::new()),
        ("POST", "/v1/queues/q/replay?x=1".into(), "{}".into()),
        (
            "DELETE",
            "/v1/queues/q/jobs?state=dead".into(),
            String::new(),
        ),
        (
            "DELETE",
            format!("/v1/jobs/{ready}?force=true"),
            String::new(),
        ),
        (
            "POST",
            format!("/v1/jobs/{leased}/ack?x=1"),
            json!({"lease": lease}).to_string(),
        ),
        (
            "POST",
            format!("/v1/jobs/{leased}/nack?x=1"),
            json!({"lease": lease}).to_string(),
        ),
        (
            "POST",
            format!("/v1/jobs/{leased}/extend?x=1"),
            json!({"lease": lease, "lease_ms": 5000}).to_string(),
        ),
        (
            "POST",
            "/v1/ack?x=1".into(),
            json!({"acks": [{"id": leased, "lease": lease}]}).to_string(),
        ),
        (
            "PUT",
            "/v1/schedules/s2?x=1".into(),
            json!({"cron": "* * * * *", "queue": "q", "job": {"payload": 1}}).to_string(),
        ),
        ("DELETE", "/v1/schedules/s?x=1".into(), String::new()),
        ("POST", "/v1/schedules/s/pause?x=1".into(), String::new()),
        ("POST", "/v1/schedules/s/trigger?x=1".into(), String::new()),
        (
            "POST",
            "/v1/outbox?x=1".into(),
            json!({"messages": [{"topic": "t", "payload": 1}]}).to_string(),
        ),
        ("PUT", "/v1/cursors/c?x=1".into(), r#"{"seq":2}"#.into()),
        ("DELETE", "/v1/cursors/c?x=1".into(), String::new()),
    ];
    let mut cases: Vec<Case> = writes
        .into_iter()
        .map(|(method, path, body)| case(method, path, 422, "invalid_value").body(body))
        .collect();
    for path in [
        "/v1/queues/q?x=1".to_owned(),
        format!("/v1/jobs/{ready}?x=1"),
        "/v1/schedules?limit=1".into(),
        "/v1/schedules/s?x=1".into(),
        "/v1/cursors?limit=1".into(),
        "/v1/cursors/c?x=1".into(),
        "/v1/mirrors?x=1".into(),
    ] {
        cases.push(case("GET", path, 422, "invalid_value"));
    }
    expect_refused(&server, &fx, cases).await;
    // An empty query string is no query.
    assert_eq!(server.get("/v1/schedules?").await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odd_path_segments_are_refused_on_every_route() {
    let server = TestServer::start().await;
    let fx = setup(&server).await;
    let mut cases = Vec::new();
    let names = [
        ("a%2Fb", 400),
        ("a%00b", 400),
        ("%2E%2E", 400),
        ("%2E", 400),
        ("a%20b", 400),
        ("%FF", 400),
    ];
    let queue_routes = [
        ("POST", "/v1/queues/{}/jobs", Some(r#"{"payload":1}"#)),
        ("GET", "/v1/queues/{}/jobs?state=ready", None),
        ("DELETE", "/v1/queues/{}/jobs", None),
        ("GET", "/v1/queues/{}", None),
        ("PATCH", "/v1/queues/{}", Some(r#"{"lease_ms":1000}"#)),
        ("POST", "/v1/queues/{}/poll", Some("{}")),
        ("POST", "/v1/queues/{}/pause", None),
        ("POST", "/v1/queues/{}/resume", None),
        ("POST", "/v1/queues/{}/replay", Some("{}")),
    ];
    let schedule = r#"{"cron":"* * * * *","queue":"q","job":{"payload":1}}"#;
    let schedule_routes = [
        ("GET", "/v1/schedules/{}", None),
        ("PUT", "/v1/schedules/{}", Some(schedule)),
        ("DELETE", "/v1/schedules/{}", None),
        ("POST", "/v1/schedules/{}/pause", None),
        ("POST", "/v1/schedules/{}/resume", None),
        ("POST", "/v1/schedules/{}/trigger", None),
    ];
    let cursor_routes = [
        ("GET", "/v1/cursors/{}", None),
        ("PUT", "/v1/cursors/{}", Some(r#"{"seq":1}"#)),
        ("DELETE", "/v1/cursors/{}", None),
    ];
    for (routes, code) in [
        (&queue_routes[..], "invalid_queue_name"),
        (&schedule_routes[..], "invalid_schedule_name"),
        (&cursor_routes[..], "invalid_cursor_name"),
    ] {
        for (method, template, body) in routes {
            for (name, status) in names {
                // A segment that is not UTF-8 once decoded is not a name at all.
                let code = if name == "%FF" { "invalid_path" } else { code };
                let mut c = case(method, template.replace("{}", name), status, code);
                if let Some(body) = body {
                    c = c.body(*body);
                }
                cases.push(c);
            }
        }
    }
    // Job ids: anything but a canonical number names no job.
    let lease = json!({"lease": fx.lease}).to_string();
    let extend = json!({"lease": fx.lease, "lease_ms": 5000}).to_string();
    for id in ["1%2F2", "%00", "%2E%2E", BEYOND_U64, "-1", "1e3", "0x1"] {
        for (method, suffix, body) in [
            ("GET", "", None),
            ("DELETE", "", None),
            ("POST", "/ack", Some(lease.clone())),
            ("POST", "/nack", Some(lease.clone())),
            ("POST", "/extend", Some(extend.clone())),
        ] {
            let mut c = case(
                method,
                format!("/v1/jobs/{id}{suffix}"),
                404,
                "job_not_found",
            );
            if let Some(body) = body {
                c = c.body(body);
            }
            cases.push(c);
        }
    }
    cases.push(case("GET", "/v1/jobs/%FF", 400, "invalid_path"));
    expect_refused(&server, &fx, cases).await;
}

/// Each JSON-body route, with one of its fields and a valid value of it.
fn body_routes(fx: &Fixture) -> Vec<(&'static str, String, &'static str, String)> {
    let lease = json!(fx.lease).to_string();
    let leased = &fx.leased;
    vec![
        ("POST", "/v1/queues/q/jobs".into(), "priority", "1".into()),
        ("PATCH", "/v1/queues/q".into(), "lease_ms", "1000".into()),
        ("POST", "/v1/queues/q/poll".into(), "max", "1".into()),
        ("POST", "/v1/queues/q/replay".into(), "ids", "[]".into()),
        (
            "POST",
            format!("/v1/jobs/{leased}/ack"),
            "lease",
            lease.clone(),
        ),
        (
            "POST",
            format!("/v1/jobs/{leased}/nack"),
            "lease",
            lease.clone(),
        ),
        (
            "POST",
            format!("/v1/jobs/{leased}/extend"),
            "lease_ms",
            "5000".into(),
        ),
        ("POST", "/v1/ack".into(), "acks", "[]".into()),
        (
            "PUT",
            "/v1/schedules/s2".into(),
            "cron",
            r#""* * * * *""#.into(),
        ),
        ("POST", "/v1/outbox".into(), "messages", "[]".into()),
        ("PUT", "/v1/cursors/c".into(), "seq", "1".into()),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_bodies_are_refused_on_every_json_route() {
    let server = TestServer::start().await;
    let fx = setup(&server).await;
    let deep_array = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let deep_object = format!("{}1{}", r#"{"a":"#.repeat(100_000), "}".repeat(100_000));
    let mut cases = Vec::new();
    for (method, path, field, value) in body_routes(&fx) {
        let with = |v: &str| format!(r#"{{"{field}":{v}}}"#);
        for (body, status, code) in [
            ("{".to_owned(), 400, "invalid_json"),
            (format!(r#"{{"{field}":{value}"#), 400, "invalid_json"),
            (format!("{} x", with(&value)), 400, "invalid_json"),
            ("null".into(), 422, "invalid_value"),
            ("[]".into(), 422, "invalid_value"),
            ("1".into(), 422, "invalid_value"),
            (r#""text""#.into(), 422, "invalid_value"),
            (r#"{"zzz":1}"#.into(), 422, "invalid_value"),
            (
                format!(r#"{{"{field}":{value},"{field}":{value}}}"#),
                422,
                "invalid_value",
            ),
            (with(BEYOND_U64), 422, "invalid_value"),
            (with("-1"), 422, "invalid_value"),
            (with("1e309"), 400, "invalid_json"),
            (with(&deep_array), 422, "invalid_value"),
            (deep_array.clone(), 422, "invalid_value"),
            (deep_object.clone(), 422, "invalid_value"),
        ] {
            cases.push(case(method, path.clone(), status, code).body(body));
        }
        let mut not_utf8 = with(&value).into_bytes();
        not_utf8.insert(2, 0xFF);
        cases.push(case(method, path.clone(), 400, "invalid_json").body(not_utf8));
        for content_type in [
            "application/xml",
            "multipart/form-data; boundary=x",
            "application/octet-stream",
            "text/html",
            "application/json; charset=iso-8859-1",
        ] {
            cases.push(
                case(method, path.clone(), 415, "unsupported_media_type")
                    .body(with(&value))
                    .content_type(content_type),
            );
        }
    }
    // A body on a route that takes none is still checked for its media type.
    cases.push(
        case("POST", "/v1/queues/q/pause", 415, "unsupported_media_type")
            .body("<pause/>")
            .content_type("application/xml"),
    );
    expect_refused(&server, &fx, cases).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_content_types_tools_send_by_default_are_read_as_json() {
    let server = TestServer::start().await;
    let types = [
        "",
        "content-type: application/json\r\n",
        "content-type: application/json; charset=utf-8\r\n",
        "content-type: application/vnd.wharf+json\r\n",
        "content-type: application/x-www-form-urlencoded\r\n", // curl -d
        "content-type: text/plain;charset=UTF-8\r\n",          // fetch() with a string body
    ];
    for (n, content_type) in types.into_iter().enumerate() {
        let body = json!({"payload": n}).to_string();
        let raw = format!(
            "POST /v1/queues/ct/jobs HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n{content_type}content-length: {}\r\n\r\n{body}",
            body.len()
        );
        let (status, reply) = exchange(&server, raw.as_bytes()).await;
        assert_eq!(status, 201, "{content_type:?}: {reply}");
    }
    let (_, queue) = server.get("/v1/queues/ct").await;
    assert_eq!(queue["counts"]["ready"], types.len());
    // Two Content-Type headers, the second not JSON: refused.
    let raw = "POST /v1/queues/ct/jobs HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\
               content-type: application/json\r\n\
               content-type: application/xml\r\ncontent-length: 2\r\n\r\n{}";
    let (status, reply) = exchange(&server, raw.as_bytes()).await;
    assert_eq!(
        (status, &reply["error"]["code"]),
        (415, &json!("unsupported_media_type"))
    );
    let (_, queue) = server.get("/v1/queues/ct").await;
    assert_eq!(queue["counts"]["ready"], types.len());
}

/// Sends `raw` and reads the reply to the end. A request cut off mid-body is followed by a
/// half-close (the server then sees the end of the stream there); a whole one asks for
/// `connection: close` instead, since a half-close after a whole request reads as a client
/// that left.
async fn exchange(server: &TestServer, raw: &[u8]) -> (u16, Value) {
    let mut tcp = TcpStream::connect(server.addr).await.unwrap();
    tcp.write_all(raw).await.unwrap();
    if !String::from_utf8_lossy(raw).contains("connection: close") {
        tcp.shutdown().await.unwrap();
    }
    let mut reply = Vec::new();
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        tcp.read_to_end(&mut reply),
    );
    read.await.expect("no reply").unwrap();
    let text = String::from_utf8(reply).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").expect("a reply");
    (
        head[9..12].parse().unwrap(),
        serde_json::from_str(body).unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_stops_halfway_is_400_bad_body_and_stores_nothing() {
    let server = TestServer::start().await;
    let fx = setup(&server).await;
    let before = snapshot(&server, &fx).await;
    let head = "HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n";
    let lease = json!({"lease": fx.lease}).to_string();
    let routes = [
        (
            "POST",
            "/v1/queues/q/jobs".to_owned(),
            r#"{"payload":"cut"}"#.to_owned(),
        ),
        ("POST", format!("/v1/jobs/{}/ack", fx.leased), lease),
        (
            "POST",
            "/v1/outbox".into(),
            r#"{"messages":[{"topic":"t","payload":1}]}"#.into(),
        ),
        ("PUT", "/v1/cursors/c".into(), r#"{"seq":2}"#.into()),
    ];
    for (method, path, body) in routes {
        let half = &body[..body.len() / 2];
        let requests = [
            // Chunked, the connection ends inside a chunk.
            format!(
                "{method} {path} {head}transfer-encoding: chunked\r\n\r\n{:x}\r\n{half}",
                body.len()
            ),
            // Chunked, the whole body sent but the connection ends before the last chunk.
            format!(
                "{method} {path} {head}transfer-encoding: chunked\r\n\r\n{:x}\r\n{body}\r\n",
                body.len()
            ),
            // A chunk size that is not hex.
            format!(
                "{method} {path} {head}transfer-encoding: chunked\r\n\r\nzz\r\n{body}\r\n0\r\n\r\n"
            ),
            // Content-Length promises more than arrives.
            format!(
                "{method} {path} {head}content-length: {}\r\n\r\n{half}",
                body.len()
            ),
        ];
        for raw in requests {
            let (status, reply) = exchange(&server, raw.as_bytes()).await;
            assert_eq!(
                (status, &reply["error"]["code"]),
                (400, &json!("bad_body")),
                "{raw:?}: {reply}"
            );
            assert_eq!(
                snapshot(&server, &fx).await,
                before,
                "{raw:?} changed something"
            );
        }
    }
}
