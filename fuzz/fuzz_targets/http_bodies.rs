//! Every v1 route that takes a body or a query string, through the real router, in process.
//!
//! Input: `route: u8 | path: u8 | flags: u8 | rest`. `route` picks the route (see `wharf_fuzz::ROUTES`);
//! `path` the path parameter: 0 the usual one (for job routes: a job leased just now, whose
//! token replaces every `@LEASE` and whose id replaces every `@ID` in the body), 1 another
//! valid one, 2 an invalid one, 3 the first line of `rest` (percent-encoded), the body then
//! being the rest after it. `rest` is the body, or the query string of a GET. `flags` picks an
//! `Idempotency-Key` header for enqueues.
//!
//! Checked (by `wharf_fuzz::check`): never a panic, never a 5xx, every 4xx a JSON error object
//! with a documented code sent with its own status, every other reply JSON.

#![no_main]

use axum::http::{HeaderValue, Method};
use libfuzzer_sys::fuzz_target;
use wharf_fuzz::{Api, JOB_QUEUE, Param, ROUTES, segment};

fuzz_target!(|data: &[u8]| {
    let [route, path, flags, rest @ ..] = data else {
        return;
    };
    let (method, template, param, query) = &ROUTES[usize::from(*route) % ROUTES.len()];
    let mut api = Api::get();
    let (segment_text, mut body) = match (param, path % 4) {
        (Param::None, _) => (String::new(), rest.to_vec()),
        (_, 3) => {
            let (seg, body) = match rest.iter().position(|&b| b == b'\n') {
                Some(at) => (&rest[..at], &rest[at + 1..]),
                None => (rest, &[][..]),
            };
            (segment(seg), body.to_vec())
        }
        (Param::Queue, 0) => ("fz-queue".to_owned(), rest.to_vec()),
        (Param::Queue, 1) => (JOB_QUEUE.to_owned(), rest.to_vec()),
        (Param::Schedule, 0) => ("nightly".to_owned(), rest.to_vec()),
        (Param::Schedule, 1) => ("hourly.report".to_owned(), rest.to_vec()),
        (Param::Cursor, 0) => ("reader-1".to_owned(), rest.to_vec()),
        (Param::Cursor, 1) => ("reader_2".to_owned(), rest.to_vec()),
        (Param::Job, 0) => {
            let (id, lease) = api.leased_job(JOB_QUEUE);
            let body = replace(rest, b"@LEASE", lease.as_bytes());
            let body = replace(&body, b"@ID", id.to_string().as_bytes());
            (id.to_string(), body)
        }
        (Param::Job, 1) => ("18446744073709551615".to_owned(), rest.to_vec()),
        (Param::Job, _) => ("not-a-job".to_owned(), rest.to_vec()),
        (_, _) => ("bad%20name!".to_owned(), rest.to_vec()),
    };
    let mut uri = template.replace("{}", &segment_text);
    if *query {
        // The rest is the query string, as a client would put it on the request line.
        let Ok(text) = std::str::from_utf8(&body) else {
            return;
        };
        if !text.is_empty() {
            uri.push('?');
            uri.push_str(text);
        }
        body = Vec::new();
    }
    let mut headers = Vec::new();
    if *method == Method::POST && template.ends_with("/jobs") && flags & 1 == 1 {
        // An Idempotency-Key header: visible ASCII, or (flags above 0x80) bytes that are not.
        let value = if *flags >= 0x80 {
            HeaderValue::from_bytes(&[b'k', *flags]).ok()
        } else {
            HeaderValue::from_str(&format!("key-{}", flags >> 1)).ok()
        };
        headers.extend(value.map(|v| ("idempotency-key", v)));
    }
    api.send(method.clone(), &uri, &headers, body);
});

/// `haystack` with every `needle` replaced by `with`.
fn replace(haystack: &[u8], needle: &[u8], with: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(haystack.len());
    let mut rest = haystack;
    while let Some(at) = rest.windows(needle.len()).position(|w| w == needle) {
        out.extend_from_slice(&rest[..at]);
        out.extend_from_slice(with);
        rest = &rest[at + needle.len()..];
    }
    out.extend_from_slice(rest);
    out
}
