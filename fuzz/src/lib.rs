//! What the fuzz targets share: an in-process wharf HTTP API on a broker in a temporary
//! directory, and the checks every reply must pass.

#![allow(clippy::unwrap_used, clippy::expect_used)] // the harness's own setup may panic

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderValue, Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use tower::ServiceExt;
use wharf::broker::{Broker, NewJob, PollRequest, QueuePatch, limits::MAX_WAIT_MS};
use wharf::clock::Clock;
use wharf::config::{Config, Durability};
use wharf::http::{AppState, ErrorCode, router};
use wharf::job::JobId;

/// 2026-01-01T00:00:00Z: where the manual clock starts.
pub const START_MS: u64 = 1_767_225_600_000;
/// The request body limit of the fuzzed router: small, so the fuzzer reaches 413.
pub const MAX_BODY_BYTES: usize = 2048;
/// Requests served by one broker before it is closed and a fresh one opened in a new
/// directory, which bounds disk use.
const REQUESTS_PER_BROKER: u64 = 4000;

/// A broker opened for fuzzing in `dir`: async durability, small limits, no preallocated
/// journal, a fixed seed.
pub fn open_broker(dir: &std::path::Path, clock: &Clock) -> Arc<Broker> {
    let config = Config {
        data_dir: dir.to_path_buf(),
        durability: Durability::Async,
        journal_preallocate_mb: 0,
        cache_mb: 4,
        max_body_bytes: MAX_BODY_BYTES,
        max_payload_bytes: 512,
        max_batch: 8,
        events_max_entries: 1000,
        ..Config::default()
    };
    let mut options = config.broker_options();
    options.seed = Some(7);
    Broker::open(&options, clock.clone()).expect("the fuzz broker opens")
}

/// What a route's path parameter names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Param {
    /// No parameter.
    None,
    /// A queue name.
    Queue,
    /// A job id.
    Job,
    /// A schedule name.
    Schedule,
    /// A cursor name.
    Cursor,
}

/// The routes `http_bodies` sends to, by the input's first byte: (method, path with `{}` for
/// the parameter, its kind, whether the rest of the input is a query string).
pub const ROUTES: &[(Method, &str, Param, bool)] = &[
    (Method::POST, "/v1/queues/{}/jobs", Param::Queue, false),
    (Method::POST, "/v1/queues/{}/poll", Param::Queue, false),
    (Method::PATCH, "/v1/queues/{}", Param::Queue, false),
    (Method::POST, "/v1/queues/{}/pause", Param::Queue, false),
    (Method::POST, "/v1/queues/{}/resume", Param::Queue, false),
    (Method::POST, "/v1/queues/{}/replay", Param::Queue, false),
    (Method::DELETE, "/v1/queues/{}/jobs", Param::Queue, false),
    (Method::GET, "/v1/queues/{}/jobs", Param::Queue, true),
    (Method::GET, "/v1/queues/{}", Param::Queue, false),
    (Method::POST, "/v1/jobs/{}/ack", Param::Job, false),
    (Method::POST, "/v1/jobs/{}/nack", Param::Job, false),
    (Method::POST, "/v1/jobs/{}/extend", Param::Job, false),
    (Method::DELETE, "/v1/jobs/{}", Param::Job, false),
    (Method::GET, "/v1/jobs/{}", Param::Job, false),
    (Method::POST, "/v1/ack", Param::Job, false),
    (Method::PUT, "/v1/schedules/{}", Param::Schedule, false),
    (
        Method::POST,
        "/v1/schedules/{}/pause",
        Param::Schedule,
        false,
    ),
    (
        Method::POST,
        "/v1/schedules/{}/resume",
        Param::Schedule,
        false,
    ),
    (
        Method::POST,
        "/v1/schedules/{}/trigger",
        Param::Schedule,
        false,
    ),
    (Method::DELETE, "/v1/schedules/{}", Param::Schedule, false),
    (Method::GET, "/v1/schedules/{}", Param::Schedule, false),
    (Method::POST, "/v1/outbox", Param::None, false),
    (Method::GET, "/v1/events", Param::None, true),
    (Method::GET, "/v1/events/stream", Param::None, true),
    (Method::PUT, "/v1/cursors/{}", Param::Cursor, false),
    (Method::GET, "/v1/cursors/{}", Param::Cursor, false),
    (Method::DELETE, "/v1/cursors/{}", Param::Cursor, false),
    (Method::GET, "/v1/queues", Param::None, false),
    (Method::GET, "/v1/schedules", Param::None, false),
    (Method::GET, "/v1/cursors", Param::None, false),
    (Method::GET, "/v1/mirrors", Param::None, false),
    (Method::GET, "/healthz", Param::None, false),
    (Method::GET, "/readyz", Param::None, false),
    (Method::GET, "/metrics", Param::None, false),
    // A method a route does not take, and no route at all.
    (Method::PUT, "/v1/queues/{}/poll", Param::Queue, false),
    (Method::POST, "/v1/nowhere/{}", Param::Queue, false),
    // Added later: at the end, so the committed seeds keep their routes.
    (Method::DELETE, "/v1/queues/{}", Param::Queue, false),
];

/// The queue the job routes of `http_bodies` lease their jobs from.
pub const JOB_QUEUE: &str = "fz-jobs";

/// The index in [`ROUTES`] of `method path`.
pub fn route_index(method: &Method, path: &str) -> Option<u8> {
    ROUTES
        .iter()
        .position(|(m, p, _, _)| m == method && *p == path)
        .and_then(|i| u8::try_from(i).ok())
}

/// A fresh temporary directory: in `/dev/shm` where there is one (fsyncs cost nothing in
/// memory, and the targets fsync on every close and checkpoint), else in the system's.
pub fn temp_dir(prefix: &str) -> tempfile::TempDir {
    let shm = std::path::Path::new("/dev/shm");
    let mut builder = tempfile::Builder::new();
    builder.prefix(prefix);
    let dir = if shm.is_dir() {
        builder.tempdir_in(shm).or_else(|_| builder.tempdir())
    } else {
        builder.tempdir()
    };
    dir.expect("a temporary directory")
}

/// The API under test.
pub struct Api {
    runtime: tokio::runtime::Runtime,
    clock: Clock,
    /// Declared after the broker and router so that they are dropped first.
    live: Option<Live>,
    /// Requests the current broker served.
    served: u64,
    /// Requests sent in all.
    total: u64,
}

struct Live {
    broker: Arc<Broker>,
    router: Router,
    _dir: tempfile::TempDir,
}

impl Drop for Live {
    fn drop(&mut self) {
        self.broker.close();
    }
}

/// One request and what came back.
#[derive(Debug)]
pub struct Reply {
    /// The status.
    pub status: StatusCode,
    /// The body, unless it is an event stream (never read: it does not end).
    pub body: Option<Vec<u8>>,
}

impl Api {
    /// The one API of this process (libFuzzer runs inputs one at a time on one thread).
    pub fn get() -> std::sync::MutexGuard<'static, Api> {
        static API: OnceLock<Mutex<Api>> = OnceLock::new();
        let api = API.get_or_init(|| {
            Mutex::new(Api {
                runtime: tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a tokio runtime"),
                clock: Clock::manual(START_MS),
                live: None,
                served: 0,
                total: 0,
            })
        });
        // A panic in an earlier input is a crash libFuzzer reports; the lock is not reused.
        api.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn live(&mut self) -> &Live {
        if self.served >= REQUESTS_PER_BROKER {
            self.live = None;
            self.served = 0;
        }
        let clock = &self.clock;
        self.live.get_or_insert_with(|| {
            let dir = temp_dir("wharf-fuzz-");
            let broker = open_broker(dir.path(), clock);
            let state = AppState::new();
            state.set_broker(
                broker.clone(),
                std::sync::Arc::new(
                    wharf::auth::Keys::load(broker.clone()).expect("the keys load"),
                ),
            );
            Live {
                router: router(state, MAX_BODY_BYTES),
                broker,
                _dir: dir,
            }
        })
    }

    /// Requests sent so far, by every broker of this process.
    pub fn requests(&self) -> u64 {
        self.total
    }

    /// A job of queue `queue` leased now (enqueued and polled through the broker): its id and
    /// lease token, for routes that need a live lease.
    pub fn leased_job(&mut self, queue: &str) -> (JobId, String) {
        let broker = self.live().broker.clone();
        self.runtime.block_on(async {
            // A fuzzed request may have paused the queue.
            let resume = QueuePatch {
                paused: Some(false),
                ..QueuePatch::default()
            };
            broker
                .update_queue(queue, resume)
                .await
                .expect("resume of the leasing queue");
            broker
                .enqueue(queue, vec![NewJob::new("{\"n\":1}")])
                .await
                .expect("enqueue of a fresh job");
            let delivery = broker
                .poll(
                    queue,
                    PollRequest {
                        max: 1,
                        wait_ms: 0,
                        lease_ms: Some(3_600_000),
                    },
                )
                .await
                .expect("poll of a fresh job")
                .pop()
                .expect("the fresh job is delivered");
            (delivery.id, delivery.lease.to_string())
        })
    }

    /// Sends one request through the router and checks the reply (see [`check`]). A request
    /// that long-polls is ended by moving the manual clock past the longest wait.
    pub fn send(
        &mut self,
        method: Method,
        uri: &str,
        headers: &[(&str, HeaderValue)],
        body: Vec<u8>,
    ) -> Option<Reply> {
        // What a client could not send (a URI that does not parse) never reaches the router.
        let mut request = Request::builder().method(method).uri(uri);
        for (name, value) in headers {
            request = request.header(*name, value.clone());
        }
        if !body.is_empty() {
            request = request.header(header::CONTENT_TYPE, "application/json");
        }
        let request = request.body(Body::from(body)).ok()?;
        self.served += 1;
        self.total += 1;
        let router = self.live().router.clone();
        let clock = self.clock.clone();
        let reply = self.runtime.block_on(async move {
            let response = router.oneshot(request);
            tokio::pin!(response);
            let response = loop {
                tokio::select! {
                    biased;
                    response = &mut response => break response,
                    () = tokio::time::sleep(Duration::from_millis(2)) => clock.advance(MAX_WAIT_MS + 1),
                }
            };
            let response = match response {
                Ok(response) => response,
                Err(infallible) => match infallible {},
            };
            let status = response.status();
            let stream = response
                .headers()
                .get(header::CONTENT_TYPE)
                .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
            let body = if stream {
                None
            } else {
                Some(
                    response
                        .into_body()
                        .collect()
                        .await
                        .expect("a reply body that reads")
                        .to_bytes()
                        .to_vec(),
                )
            };
            Reply { status, body }
        });
        if trace() {
            let body = reply.body.as_deref().map(String::from_utf8_lossy);
            eprintln!("{uri} -> {} {}", reply.status, body.unwrap_or_default());
        }
        check(uri, &reply);
        Some(reply)
    }
}

/// Whether `WHARF_FUZZ_TRACE` is set: then every request and its reply are printed.
fn trace() -> bool {
    static TRACE: OnceLock<bool> = OnceLock::new();
    *TRACE.get_or_init(|| std::env::var_os("WHARF_FUZZ_TRACE").is_some())
}

/// Every reply: never a 5xx; every 4xx a JSON `{"error": {"code": ..., "message": ...}}` whose
/// code is one of the documented codes and has that status; every other reply (except an
/// event stream) JSON.
pub fn check(uri: &str, reply: &Reply) {
    let status = reply.status;
    let text = reply
        .body
        .as_deref()
        .map(String::from_utf8_lossy)
        .unwrap_or_default();
    assert!(
        !status.is_server_error(),
        "{uri}: status {status}, body {text}"
    );
    let Some(body) = &reply.body else {
        assert!(status.is_success(), "{uri}: an event stream with {status}");
        return;
    };
    if uri.starts_with("/metrics") && status.is_success() {
        return; // Prometheus text, not JSON
    }
    let json: serde_json::Value = match serde_json::from_slice(body) {
        Ok(json) => json,
        Err(e) => panic!("{uri}: status {status}, the body is not JSON ({e}): {text}"),
    };
    if status.is_client_error() {
        let code = json
            .get("error")
            .and_then(|e| e.get("code"))
            .and_then(|c| c.as_str())
            .unwrap_or_else(|| panic!("{uri}: a {status} without error.code: {text}"));
        assert!(
            json.get("error")
                .and_then(|e| e.get("message"))
                .is_some_and(|m| m.is_string()),
            "{uri}: a {status} without error.message: {text}"
        );
        let known = ErrorCode::ALL
            .iter()
            .find(|c| c.as_str() == code)
            .unwrap_or_else(|| panic!("{uri}: unknown error code {code:?}: {text}"));
        assert_eq!(
            known.status(),
            status,
            "{uri}: code {code} sent with the wrong status: {text}"
        );
    }
}

/// Percent-encodes `bytes` as one path segment.
pub fn segment(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 3);
    for &b in bytes {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
