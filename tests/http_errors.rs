//! Requests hyper itself cannot parse never reach a route; their replies still have the JSON
//! error shape with a stable code (sent over a raw socket: no client would send them).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may unwrap
mod common;
use common::TestServer;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Sends `raw` and reads the reply until the server closes the connection.
async fn exchange(server: &TestServer, raw: &[u8]) -> (u16, String, Value) {
    let mut tcp = TcpStream::connect(server.addr).await.unwrap();
    // The server may answer (and close) before it has read all of a huge request.
    let _ = tcp.write_all(raw).await;
    let mut reply = Vec::new();
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        tcp.read_to_end(&mut reply),
    );
    let _ = read.await.expect("the server did not close the connection");
    let text = String::from_utf8(reply).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let status = head[9..12].parse().unwrap();
    let body = serde_json::from_str(body).unwrap_or_else(|_| panic!("not JSON: {text:?}"));
    (status, head.to_ascii_lowercase(), body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unparseable_requests_get_json_errors_with_stable_codes() {
    let server = TestServer::start().await;
    let many_headers: String = (0..200).map(|i| format!("x-h{i}: v\r\n")).collect();
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        (
            "a raw space in the path",
            b"GET /v1/qu eues HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n".to_vec(),
            400,
            "bad_request",
        ),
        (
            "a control character in the path",
            b"GET /v1/\x01queues HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n".to_vec(),
            400,
            "bad_request",
        ),
        (
            "a bad Content-Length",
            b"POST /v1/queues/q/jobs HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-length: abc\r\n\r\n".to_vec(),
            400,
            "bad_request",
        ),
        (
            "two different Content-Lengths",
            b"POST /v1/queues/q/jobs HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\n{}"
                .to_vec(),
            400,
            "bad_request",
        ),
        (
            "a header without a colon",
            b"GET /healthz HTTP/1.1\r\nhost x\r\n\r\n".to_vec(),
            400,
            "bad_request",
        ),
        (
            "a 200 KB path",
            format!("GET /{} HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n", "a".repeat(200 << 10)).into_bytes(),
            414,
            "uri_too_long",
        ),
        (
            // Beyond hyper's read buffer before the line even ends: the head is too large.
            "a 10 MB path",
            format!("GET /{} HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n", "a".repeat(10 << 20)).into_bytes(),
            431,
            "headers_too_large",
        ),
        (
            "too many headers",
            format!("GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\n{many_headers}\r\n").into_bytes(),
            431,
            "headers_too_large",
        ),
    ];
    for (what, raw, status, code) in cases {
        let (got, head, body) = exchange(&server, &raw).await;
        assert_eq!(
            (got, body["error"]["code"].as_str()),
            (status, Some(code)),
            "{what}: {body}"
        );
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{what}"
        );
        assert!(
            head.contains("content-type: application/json"),
            "{what}: {head}"
        );
    }
    // None of it reached the broker, and the server serves the next client as before.
    let (status, _) = server.get("/v1/queues/q").await;
    assert_eq!(status, 404);
    let (status, body) = server.get("/healthz").await;
    assert_eq!((status, &body["status"]), (200, &Value::from("ok")));
    server.shutdown().await;
}
