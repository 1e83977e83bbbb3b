//! The web dashboard at `/ui`: plain HTML, CSS and JavaScript, embedded in the binary at build
//! time (no build step, nothing fetched from anywhere else), so it works offline at the edge.
//!
//! The page itself holds no data. Everything it shows or changes goes through the JSON API,
//! with the API key typed into the page (kept in the tab's `sessionStorage`), so it can do
//! nothing that key could not. Its routes are open in `http::access::ROUTES` for that reason.
//!
//! Every reply carries a strict Content-Security-Policy: scripts, styles and requests only
//! from this origin, no inline script or style, no frames, no form submissions. The script
//! builds the page with `textContent`, never HTML from data, so a payload or an error message
//! cannot become markup.

use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};

use crate::http::{ApiError, ErrorCode};

/// The policy of every dashboard reply: nothing but this origin's own script, styles, images
/// and API, nothing inline, no `<base>`, no form submissions, and no framing (clickjacking).
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

/// One embedded file.
struct Asset {
    /// Its name under `/ui/` (the page itself is `index.html`).
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const SVG: &str = "image/svg+xml";

macro_rules! assets {
    ($($name:literal: $content_type:expr,)*) => {
        &[$(Asset { name: $name, content_type: $content_type, body: include_bytes!($name) },)*]
    };
}

/// The page and what it loads, as they were when the binary was built. `app.js` is the one
/// script the page names; it imports the other modules.
const ASSETS: &[Asset] = assets![
    "index.html": HTML,
    "app.js": JS,
    "dom.js": JS,
    "api.js": JS,
    "loop.js": JS,
    "actions.js": JS,
    "rates.js": JS,
    "tail.js": JS,
    "overview.js": JS,
    "queue.js": JS,
    "job.js": JS,
    "style.css": CSS,
    "favicon.svg": SVG,
];

/// A validator for the browser's cache: a hash of every asset, so it changes with the binary's
/// dashboard (FNV-1a; it tells versions apart, nobody forges it).
const VERSION: u64 = {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut a = 0;
    while a < ASSETS.len() {
        let body = ASSETS[a].body;
        let mut i = 0;
        while i < body.len() {
            hash ^= body[i] as u64;
            hash = hash.wrapping_mul(0x0100_0000_01b3);
            i += 1;
        }
        a += 1;
    }
    hash
};

/// `GET /ui` and `GET /ui/`: the page.
pub async fn index(headers: HeaderMap) -> Response {
    serve(&ASSETS[0], &headers)
}

/// `GET /ui/{asset}`: a file the page loads (404 for any other name).
pub async fn asset(uri: Uri, headers: HeaderMap) -> Response {
    let name = uri.path().strip_prefix("/ui/").unwrap_or_default();
    match ASSETS.iter().find(|a| a.name == name) {
        Some(asset) => serve(asset, &headers),
        None => ApiError::new(ErrorCode::NotFound, "no such file of the dashboard").into_response(),
    }
}

/// `GET /`: the dashboard (`POST /` is the SQS endpoint).
pub async fn home() -> Redirect {
    Redirect::temporary("/ui/")
}

/// The asset, or `304 Not Modified` when the browser's copy is this version.
fn serve(asset: &Asset, request: &HeaderMap) -> Response {
    let etag = format!("\"{VERSION:016x}\"");
    let fresh = request
        .get_all(IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|tag| tag.trim() == etag || tag.trim() == "*");
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(CONTENT_TYPE, asset.content_type)], asset.body).into_response()
    };
    let headers = response.headers_mut();
    if let Ok(etag) = HeaderValue::from_str(&etag) {
        headers.insert(ETAG, etag);
    }
    // The names carry no version, so the browser asks each time; the ETag makes that a 304.
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    for (name, value) in [
        ("content-security-policy", CONTENT_SECURITY_POLICY),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "no-referrer"),
        ("x-frame-options", "DENY"),
    ] {
        headers.insert(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    }
    response
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn text(name: &str) -> &'static str {
        let asset = ASSETS.iter().find(|a| a.name == name).unwrap();
        std::str::from_utf8(asset.body).unwrap()
    }

    #[test]
    fn the_page_loads_only_embedded_files_and_every_one_is_used() {
        let page = text("index.html");
        // One script, a module of ours: an inline one would be refused by the policy.
        assert_eq!(page.matches("<script").count(), 1);
        assert!(page.contains(r#"<script type="module" src="/ui/app.js"></script>"#));
        assert!(!page.contains("style="), "inline styles are refused too");
        assert!(!page.contains("http://") && !page.contains("https://"));
        let mut used: Vec<&str> = vec!["index.html"];
        for asset in ASSETS {
            let Ok(body) = std::str::from_utf8(asset.body) else {
                continue;
            };
            for chunk in body
                .split("\"/ui/")
                .skip(1)
                .chain(body.split("from \"./").skip(1))
            {
                let name = chunk.split('"').next().unwrap();
                assert!(
                    ASSETS.iter().any(|a| a.name == name),
                    "{} loads {name}, which is not embedded",
                    asset.name
                );
                used.push(name);
            }
        }
        for asset in ASSETS {
            assert!(used.contains(&asset.name), "{} is not used", asset.name);
        }
    }

    #[test]
    fn no_script_writes_markup_or_fetches_elsewhere() {
        for asset in ASSETS.iter().filter(|a| a.content_type == JS) {
            let script = text(asset.name);
            for sink in [
                "innerHTML",
                "outerHTML",
                "insertAdjacentHTML",
                "document.write",
                "eval(",
                "new Function",
                "localStorage",
                "http://",
                "https://",
            ] {
                assert!(!script.contains(sink), "{} uses {sink}", asset.name);
            }
        }
    }
}
