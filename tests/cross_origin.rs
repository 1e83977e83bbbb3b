//! Web pages the local user visits cannot use a broker that serves without keys: a page of
//! another origin cannot change it (`Sec-Fetch-Site` / `Origin`), and a DNS-rebinding page
//! (its own host name resolving to 127.0.0.1) cannot even read it. Programs (no such headers)
//! and the same origin (the dashboard) are served as before.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may unwrap
mod common;
use common::keys::{call, create_key};
use common::{TestServer, assert_error, request_bytes};

use serde_json::json;

#[tokio::test]
async fn a_page_of_another_origin_changes_nothing_and_the_same_origin_is_served() {
    let server = TestServer::start().await;
    let here = format!("http://{}", server.addr);
    let enqueue = |headers: Vec<(&'static str, String)>| {
        let addr = server.addr;
        async move {
            let headers: Vec<(&str, &str)> =
                headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
            let body = Some(br#"{"payload": 1}"#.to_vec());
            // The content type a page may send without asking first.
            let mut all = vec![("content-type", "text/plain")];
            all.extend(headers);
            request_bytes(addr, "POST", "/v1/queues/q/jobs", body, &all).await
        }
    };
    for refused in [
        vec![("origin", "http://evil.example".to_owned())],
        vec![("origin", "null".to_owned())],
        vec![("sec-fetch-site", "cross-site".to_owned())],
        vec![
            ("sec-fetch-site", "same-site".to_owned()),
            ("origin", here.clone()),
        ],
    ] {
        assert_error(&enqueue(refused.clone()).await, 403, "cross_origin");
    }
    assert_error(&server.get("/v1/queues/q").await, 404, "queue_not_found");
    // The same origin (the dashboard), a typed-in request, and a program are served.
    for served in [
        vec![
            ("origin", here.clone()),
            ("sec-fetch-site", "same-origin".to_owned()),
        ],
        vec![("origin", here.clone())],
        vec![("sec-fetch-site", "none".to_owned())],
        vec![],
    ] {
        assert_eq!(enqueue(served).await.0, 201);
    }
    let (_, queue) = server.get("/v1/queues/q").await;
    assert_eq!(queue["counts"]["ready"], 4, "{queue}");
    // Reads are not refused for their origin: the browser keeps another site's page from
    // reading the reply (wharf sends no CORS headers).
    let read = request_bytes(
        server.addr,
        "GET",
        "/v1/queues/q",
        None,
        &[("origin", "http://evil.example")],
    )
    .await;
    assert_eq!(read.0, 200);
}

#[tokio::test]
async fn without_keys_only_local_host_names_are_served_and_with_keys_any_name() {
    let server = TestServer::start().await;
    for host in ["evil.example:7070", "evil.example", "127.0.0.1.nip.example"] {
        let reply = request_bytes(server.addr, "GET", "/v1/queues", None, &[("host", host)]).await;
        assert_error(&reply, 403, "cross_origin");
    }
    for host in ["localhost:7070", "127.0.0.1:7070", "[::1]:7070"] {
        let reply = request_bytes(server.addr, "GET", "/v1/queues", None, &[("host", host)]).await;
        assert_eq!(reply.0, 200, "{host}: {}", reply.1);
    }
    // Probes too: on loopback they come from this machine, by address or as localhost.
    let reply = request_bytes(
        server.addr,
        "GET",
        "/healthz",
        None,
        &[("host", "lb.example")],
    )
    .await;
    assert_error(&reply, 403, "cross_origin");
    // With a key, a page would need the key: any host name is served.
    let (_, key) = create_key(&server, None, json!({"tenant": "*", "scopes": ["*"]})).await;
    let bearer = format!("Bearer {key}");
    let reply = request_bytes(
        server.addr,
        "GET",
        "/v1/queues",
        None,
        &[("host", "broker.internal:7070"), ("authorization", &bearer)],
    )
    .await;
    assert_eq!(reply.0, 200, "{}", reply.1);
    let reply = call(&server, Some(&key), "GET", "/healthz", None).await;
    assert_eq!(reply.0, 200);
}
