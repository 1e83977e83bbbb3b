//! The change log's query strings: `GET /v1/events?...` (long-polled JSON pages) and
//! `GET /v1/events/stream?...` (server-sent events, with a `Last-Event-ID` header), through
//! the real router.
//!
//! Input: `flags: u8 | query string`. Bit 0 of `flags` picks the stream; for the stream, bit 1
//! sends a `Last-Event-ID` header (the query's text after its last `#`). The broker's change
//! log is filled by a few writes first, so pages have events to filter.
//!
//! Checked (by `wharf_fuzz::check`): never a panic; 2xx or 4xx only, every 4xx a JSON error
//! object with a documented code and its own status.

#![no_main]

use axum::http::{HeaderValue, Method};
use libfuzzer_sys::fuzz_target;
use wharf_fuzz::Api;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let mut api = Api::get();
    if api.requests().is_multiple_of(8) {
        // Now and then a job's life (enqueued, leased, succeeded) and a message, so that
        // pages have events to filter and the log trims (at 1000 events) under its readers.
        let (id, lease) = api.leased_job("fz-events");
        api.send(
            Method::POST,
            &format!("/v1/jobs/{id}/ack"),
            &[],
            format!("{{\"lease\":\"{lease}\",\"result\":{{\"ok\":true}}}}").into_bytes(),
        );
        api.send(
            Method::POST,
            "/v1/outbox",
            &[],
            br#"{"messages":[{"topic":"t","key":"k","payload":{"a":1}}]}"#.to_vec(),
        );
    }
    let stream = flags & 1 == 1;
    let (query, last_event_id) = match text.rsplit_once('#') {
        Some((query, id)) if stream && flags & 2 == 2 => (query, Some(id)),
        _ => (text, None),
    };
    let path = if stream {
        "/v1/events/stream"
    } else {
        "/v1/events"
    };
    let uri = if query.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{query}")
    };
    let headers: Vec<(&str, HeaderValue)> = last_event_id
        .and_then(|id| HeaderValue::from_str(id).ok())
        .map(|v| ("last-event-id", v))
        .into_iter()
        .collect();
    api.send(Method::GET, &uri, &headers, Vec::new());
});
