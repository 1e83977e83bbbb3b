//! Requests that web pages make: a broker is not a web site, so no other site's page may
//! change it, and without keys no page from another host may read it either.
//!
//! Out of the box wharf serves without keys on loopback, where anything the local user runs
//! may use it. A web page the user visits runs in the browser on the same machine, so two
//! browser tricks would reach such a broker:
//!
//! - **Cross-site requests.** A page can POST a "simple" request (a `text/plain` or form body,
//!   which wharf reads as JSON for `curl -d`'s sake) to `http://127.0.0.1:7070` without asking.
//!   The browser says where it comes from: `Sec-Fetch-Site` (every current browser) or at
//!   least `Origin`. A request that changes something (not GET, HEAD or OPTIONS) is refused
//!   unless it comes from the same origin or from no page at all (the user typed it, or it
//!   is not a browser: curl, SDKs and the SQS clients send neither header). This is the rule
//!   of Go's `http.CrossOriginProtection`.
//! - **DNS rebinding.** A page on `http://evil.example:7070` whose name later resolves to
//!   127.0.0.1 is same-origin with itself, so it could read and change the broker. Its
//!   requests carry `Host: evil.example:7070`, though. Without keys and on loopback, a request
//!   is served only if its `Host` is an IP address or `localhost`. With keys on, the page would
//!   need a key, which the browser never adds by itself (it goes in `Authorization`).
//!
//! The dashboard (`/ui`) is same-origin, so it passes both.

use axum::extract::Request;
use axum::http::header::{HOST, ORIGIN};
use axum::http::{HeaderMap, Method};

use super::AppState;
use super::error::{ApiError, ErrorCode};

/// The check, before anything else looks at the request (see `gate`).
pub fn check(app: &AppState, request: &Request) -> Result<(), ApiError> {
    let headers = request.headers();
    if !is_safe(request.method()) && !same_origin_or_none(headers) {
        return Err(ApiError::new(
            ErrorCode::CrossOrigin,
            "a web page of another origin may not change this broker (the request's Sec-Fetch-Site or Origin says it came from one); call it from the same origin, or from a program rather than a page",
        ));
    }
    let open = app.keys().is_ok_and(|keys| !keys.enabled());
    if open && app.serves_loopback() && !local_host(headers) {
        return Err(ApiError::new(
            ErrorCode::CrossOrigin,
            "without API keys wharf answers on loopback only to requests for an IP address or localhost (the Host header names another host, as a DNS-rebinding page would); create a key to serve other names",
        ));
    }
    Ok(())
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Whether the request comes from a page of this origin, or from no page at all.
fn same_origin_or_none(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site") {
        return matches!(site.as_bytes(), b"same-origin" | b"none");
    }
    let Some(origin) = headers.get(ORIGIN) else {
        return true;
    };
    // `Origin: scheme://host[:port]` against `Host: host[:port]` (the scheme is this server's).
    let origin_host = origin
        .to_str()
        .ok()
        .and_then(|o| o.split_once("://"))
        .map(|(_, host)| host);
    let host = headers.get(HOST).and_then(|h| h.to_str().ok());
    matches!((origin_host, host), (Some(a), Some(b)) if a.eq_ignore_ascii_case(b))
}

/// Whether the `Host` header names an IP address or `localhost` (or is absent: HTTP/1.0).
fn local_host(headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(HOST) else {
        return true;
    };
    let Ok(host) = host.to_str() else {
        return false;
    };
    // `[v6]:port`, `[v6]`, `name:port`, `name`.
    let name = match host.strip_prefix('[') {
        Some(rest) => {
            return rest
                .split_once(']')
                .is_some_and(|(ip, _)| ip.parse::<std::net::Ipv6Addr>().is_ok());
        }
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    name.eq_ignore_ascii_case("localhost")
        || name.to_ascii_lowercase().ends_with(".localhost")
        || name.parse::<std::net::Ipv4Addr>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, value.parse().unwrap_or_else(|_| unreachable!()));
        }
        map
    }

    #[test]
    fn a_page_of_another_site_is_told_apart_from_the_same_origin_and_from_programs() {
        let host = ("host", "127.0.0.1:7070");
        for (pairs, allowed) in [
            (vec![host], true),
            (vec![host, ("sec-fetch-site", "same-origin")], true),
            (vec![host, ("sec-fetch-site", "none")], true),
            (vec![host, ("sec-fetch-site", "cross-site")], false),
            (vec![host, ("sec-fetch-site", "same-site")], false),
            (vec![host, ("origin", "http://127.0.0.1:7070")], true),
            (vec![host, ("origin", "http://evil.example")], false),
            (vec![host, ("origin", "null")], false),
            // Sec-Fetch-Site wins over Origin: browsers that send it are exact about it.
            (
                vec![
                    host,
                    ("sec-fetch-site", "cross-site"),
                    ("origin", "http://127.0.0.1:7070"),
                ],
                false,
            ),
        ] {
            assert_eq!(same_origin_or_none(&headers(&pairs)), allowed, "{pairs:?}");
        }
    }

    #[test]
    fn only_addresses_and_localhost_are_local_hosts() {
        for (host, local) in [
            ("127.0.0.1:7070", true),
            ("127.0.0.1", true),
            ("[::1]:7070", true),
            ("[::1]", true),
            ("localhost:7070", true),
            ("LOCALHOST", true),
            ("app.localhost:7070", true),
            ("10.1.2.3:7070", true),
            ("evil.example:7070", false),
            ("evil.example", false),
            ("127.0.0.1.evil.example", false),
            ("[not-v6]:7070", false),
        ] {
            assert_eq!(local_host(&headers(&[("host", host)])), local, "{host}");
        }
        assert!(local_host(&HeaderMap::new()), "HTTP/1.0 sends no Host");
    }
}
