//! Checks every matched `/v1` request gets before its handler: a query string only where the
//! route takes one (the table in `access.rs` says which), and a body only in a media type wharf reads as JSON.
//!
//! Both turn a silent surprise into a clear error: `GET /v1/schedules?limit=10` would otherwise
//! return every schedule as if paging worked, and an XML or multipart body would otherwise be
//! refused with a JSON syntax error that does not say what was wrong.

use axum::extract::{MatchedPath, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, HeaderValue};
use hyper::body::Body as _;

use super::access::takes_query;
use super::error::{ApiError, ErrorCode};

/// The checks, on a request whose route is matched and whose body was read (see `gate`).
pub fn check(request: &Request) -> Result<(), ApiError> {
    let Some(route) = request
        .extensions()
        .get::<MatchedPath>()
        .map(MatchedPath::as_str)
        .filter(|route| route.starts_with("/v1/"))
    else {
        return Ok(());
    };
    let has_query = request.uri().query().is_some_and(|q| !q.is_empty());
    if has_query && !takes_query(request.method(), route) {
        return Err(ApiError::invalid(format!(
            "{} {route} takes no query parameters",
            request.method()
        )));
    }
    // The body was read in full by `conn::read_body`, so its size is exact.
    let has_body = request.body().size_hint().exact() != Some(0);
    if has_body {
        check_media_type(request.headers())?;
    }
    Ok(())
}

/// Accepts a body with no `Content-Type`, JSON (`application/json`, `…+json`), and the two types
/// that tools send for a JSON body by default: `application/x-www-form-urlencoded` (`curl -d`)
/// and `text/plain` (a browser's `fetch` with a string body). A `charset` other than UTF-8 is
/// refused: the body is always read as UTF-8.
fn check_media_type(headers: &HeaderMap) -> Result<(), ApiError> {
    // Every value, so that a second `Content-Type` cannot hide behind an accepted first one.
    headers.get_all(CONTENT_TYPE).iter().try_for_each(check_one)
}

fn check_one(value: &HeaderValue) -> Result<(), ApiError> {
    let refuse = || {
        ApiError::new(
            ErrorCode::UnsupportedMediaType,
            format!(
                "bodies are JSON in UTF-8 (Content-Type: application/json), not {:?}",
                String::from_utf8_lossy(value.as_bytes())
            ),
        )
    };
    let text = value.to_str().map_err(|_| refuse())?.to_ascii_lowercase();
    let mut parts = text.split(';').map(str::trim);
    let essence = parts.next().unwrap_or("");
    let json_like = essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
        || essence == "application/x-www-form-urlencoded"
        || essence == "text/plain";
    let utf8 = parts
        .filter_map(|param| param.strip_prefix("charset="))
        .all(|charset| matches!(charset.trim_matches('"'), "utf-8" | "utf8"));
    if json_like && utf8 {
        Ok(())
    } else {
        Err(refuse())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accepts(content_type: &str) -> bool {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_str(content_type).unwrap());
        check_media_type(&headers).is_ok()
    }

    #[test]
    fn json_and_what_tools_send_by_default_are_accepted() {
        assert!(check_media_type(&HeaderMap::new()).is_ok());
        for ok in [
            "application/json",
            "Application/JSON; charset=UTF-8",
            "application/json;charset=\"utf-8\"",
            "application/vnd.api+json",
            "application/x-www-form-urlencoded",
            "text/plain;charset=utf-8",
        ] {
            assert!(accepts(ok), "{ok}");
        }
    }

    #[test]
    fn other_media_types_and_charsets_are_refused() {
        for bad in [
            "application/xml",
            "multipart/form-data; boundary=x",
            "application/octet-stream",
            "text/html",
            "application/json; charset=latin1",
            "",
        ] {
            assert!(!accepts(bad), "{bad}");
        }
        let mut two = HeaderMap::new();
        two.append(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        two.append(CONTENT_TYPE, HeaderValue::from_static("application/xml"));
        assert!(check_media_type(&two).is_err());
    }
}
