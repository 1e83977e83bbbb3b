//! Requests with API keys, and creating keys.

use serde_json::Value;

use super::{TestServer, request_bytes};

/// A request as a given key.
pub async fn call(
    server: &TestServer,
    key: Option<&str>,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> (u16, Value) {
    let header = key.map(|k| format!("Bearer {k}"));
    let headers: Vec<(&str, &str)> = header
        .iter()
        .map(|h| ("authorization", h.as_str()))
        .collect();
    request_bytes(
        server.addr,
        method,
        path,
        body.map(|b| b.as_bytes().to_vec()),
        &headers,
    )
    .await
}

/// Creates a key with `spec` as `by`; returns (id, token).
pub async fn create_key(server: &TestServer, by: Option<&str>, spec: Value) -> (String, String) {
    let reply = call(server, by, "POST", "/v1/keys", Some(&spec.to_string())).await;
    assert_eq!(reply.0, 201, "{}", reply.1);
    let token = reply.1["key"].as_str().unwrap().to_owned();
    assert!(token.starts_with("wk_"), "{token}");
    (reply.1["id"].as_str().unwrap().to_owned(), token)
}
