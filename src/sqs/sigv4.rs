//! AWS Signature Version 4, as SDKs sign SQS requests: checked so that an SDK configured with a
//! wharf key reaches the broker with that key and nothing else.
//!
//! The access key id is the wharf key itself (`wk_…`) and the secret access key is the same
//! token: the broker stores only a hash of each token, so the request has to carry the token
//! for the key to be found, just as `Authorization: Bearer` does. The signature then proves the
//! sender holds it as its secret too, that the request (headers, path and body) is the one it
//! signed, and that it was signed within [`MAX_SKEW_MS`] of the broker's clock.

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::clock::Millis;

/// How far a request's `X-Amz-Date` may be from the broker's clock (SQS allows 15 minutes).
pub const MAX_SKEW_MS: u64 = 15 * 60 * 1000;

const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// Why a signed request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// No `Authorization` header.
    #[error(
        "the request must be signed (AWS Signature Version 4) with a wharf key as its access key id"
    )]
    Missing,
    /// An `Authorization` header that is not a SigV4 one.
    #[error("the Authorization header is not an AWS4-HMAC-SHA256 signature: {0}")]
    Malformed(&'static str),
    /// The date is missing, malformed, or too far from the broker's clock.
    #[error("{0}")]
    Date(String),
    /// The signature does not match.
    #[error(
        "the request signature we calculated does not match the signature you provided; check the secret access key (the same wharf key as the access key id)"
    )]
    Mismatch,
}

/// A request's `Authorization` header, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed<'a> {
    /// The access key id: a wharf token.
    pub access_key: &'a str,
    /// `yyyymmdd/region/service/aws4_request`.
    scope: &'a str,
    /// The date of the scope (`yyyymmdd`).
    date: &'a str,
    /// `host;x-amz-date;...`, lower case, sorted.
    signed_headers: &'a str,
    /// The signature, hex.
    signature: &'a str,
}

/// Parses `AWS4-HMAC-SHA256 Credential=AKID/DATE/REGION/SERVICE/aws4_request,
/// SignedHeaders=a;b, Signature=HEX`.
pub fn parse(authorization: Option<&str>) -> Result<Signed<'_>, SignatureError> {
    let header = authorization.ok_or(SignatureError::Missing)?.trim();
    let rest = header
        .strip_prefix(ALGORITHM)
        .filter(|rest| rest.starts_with(' '))
        .ok_or(SignatureError::Malformed(
            "it must start with AWS4-HMAC-SHA256",
        ))?;
    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let (name, value) = part
            .trim()
            .split_once('=')
            .ok_or(SignatureError::Malformed("a component is not name=value"))?;
        let slot = match name {
            "Credential" => &mut credential,
            "SignedHeaders" => &mut signed_headers,
            "Signature" => &mut signature,
            _ => return Err(SignatureError::Malformed("an unknown component")),
        };
        if slot.replace(value).is_some() {
            return Err(SignatureError::Malformed("a component is repeated"));
        }
    }
    let credential = credential.ok_or(SignatureError::Malformed("no Credential"))?;
    let signed_headers = signed_headers.ok_or(SignatureError::Malformed("no SignedHeaders"))?;
    let signature = signature.ok_or(SignatureError::Malformed("no Signature"))?;
    let (access_key, scope) = credential
        .split_once('/')
        .ok_or(SignatureError::Malformed("the Credential has no scope"))?;
    let parts: Vec<&str> = scope.split('/').collect();
    let [date, _region, _service, "aws4_request"] = parts[..] else {
        return Err(SignatureError::Malformed(
            "the Credential scope must be DATE/REGION/SERVICE/aws4_request",
        ));
    };
    let sorted = signed_headers
        .split(';')
        .collect::<Vec<_>>()
        .is_sorted_by(|a, b| a < b);
    let lower = !signed_headers.bytes().any(|b| b.is_ascii_uppercase());
    if !sorted || !lower || !signed_headers.split(';').any(|h| h == "host") {
        return Err(SignatureError::Malformed(
            "SignedHeaders must be lower case, sorted, and include host",
        ));
    }
    Ok(Signed {
        access_key,
        scope,
        date,
        signed_headers,
        signature,
    })
}

/// What of the request a signature covers.
pub struct Request<'a> {
    /// `POST`.
    pub method: &'a str,
    /// The path as sent (`/`).
    pub path: &'a str,
    /// The query as sent (empty for SQS's JSON protocol).
    pub query: &'a str,
    /// Every header.
    pub headers: &'a axum::http::HeaderMap,
    /// The body.
    pub body: &'a [u8],
}

impl Signed<'_> {
    /// Checks the signature of `request` made with `secret`, and its date against `now`.
    pub fn verify(
        &self,
        request: &Request<'_>,
        secret: &str,
        now: Millis,
    ) -> Result<(), SignatureError> {
        let amz_date = header_text(request.headers, "x-amz-date")
            .ok_or_else(|| SignatureError::Date("the request must carry X-Amz-Date".into()))?;
        let signed_at = parse_amz_date(amz_date).ok_or_else(|| {
            SignatureError::Date(format!("X-Amz-Date {amz_date:?} is not yyyymmddThhmmssZ"))
        })?;
        if !amz_date.starts_with(self.date) {
            return Err(SignatureError::Date(
                "the Credential's date is not the date of X-Amz-Date".into(),
            ));
        }
        if signed_at.abs_diff(now) > MAX_SKEW_MS {
            return Err(SignatureError::Date(format!(
                "Signature expired: X-Amz-Date {amz_date} is more than 15 minutes from the broker's clock"
            )));
        }
        let canonical = self.canonical_request(request)?;
        let to_sign = format!(
            "{ALGORITHM}\n{amz_date}\n{}\n{}",
            self.scope,
            hex(&Sha256::digest(canonical.as_bytes()))
        );
        // kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request").
        let mut signing = format!("AWS4{secret}").into_bytes();
        for part in self.scope.split('/') {
            signing = hmac(&signing, part.as_bytes());
        }
        let expected = hex(&hmac(&signing, to_sign.as_bytes()));
        if bool::from(expected.as_bytes().ct_eq(self.signature.as_bytes())) {
            Ok(())
        } else {
            Err(SignatureError::Mismatch)
        }
    }

    /// The canonical request: method, path, query, the signed headers, their names, and the
    /// hash of the body.
    fn canonical_request(&self, request: &Request<'_>) -> Result<String, SignatureError> {
        let mut canonical = format!(
            "{}\n{}\n{}\n",
            request.method,
            request.path,
            canonical_query(request.query)
        );
        for name in self.signed_headers.split(';') {
            let values: Vec<String> = request
                .headers
                .get_all(name)
                .iter()
                .map(|v| {
                    v.to_str()
                        .map(collapse_spaces)
                        .map_err(|_| SignatureError::Malformed("a signed header is not text"))
                })
                .collect::<Result<_, _>>()?;
            if values.is_empty() {
                return Err(SignatureError::Malformed("a signed header is missing"));
            }
            canonical.push_str(name);
            canonical.push(':');
            canonical.push_str(&values.join(","));
            canonical.push('\n');
        }
        canonical.push('\n');
        canonical.push_str(self.signed_headers);
        canonical.push('\n');
        canonical.push_str(&hex(&Sha256::digest(request.body)));
        Ok(canonical)
    }
}

fn header_text<'a>(headers: &'a axum::http::HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The query's parameters sorted by name, then value (each as sent: SDKs send them encoded).
fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(&str, &str)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').unwrap_or((p, "")))
        .collect();
    pairs.sort_unstable();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// A header value trimmed, with each run of spaces made one.
fn collapse_spaces(value: &str) -> String {
    value.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `yyyymmddThhmmssZ` as epoch milliseconds.
fn parse_amz_date(text: &str) -> Option<Millis> {
    let b = text.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<i16> {
        let digits = text.get(range)?;
        digits
            .bytes()
            .all(|d| d.is_ascii_digit())
            .then(|| digits.parse().ok())?
    };
    let (year, month, day) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (hour, minute, second) = (num(9..11)?, num(11..13)?, num(13..15)?);
    let date =
        jiff::civil::Date::new(year, i8::try_from(month).ok()?, i8::try_from(day).ok()?).ok()?;
    let time = jiff::civil::Time::new(
        i8::try_from(hour).ok()?,
        i8::try_from(minute).ok()?,
        i8::try_from(second).ok()?,
        0,
    )
    .ok()?;
    let at = date
        .to_datetime(time)
        .to_zoned(jiff::tz::TimeZone::UTC)
        .ok()?;
    u64::try_from(at.timestamp().as_millisecond()).ok()
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    // Any key length is accepted by HMAC: this cannot fail.
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use axum::http::{HeaderMap, HeaderValue};

    /// AWS's published example ("GET / with query Action=ListUsers", IAM, us-east-1), from
    /// the Signature Version 4 test suite: the secret, the request and the signature it gives.
    #[test]
    fn the_signature_of_aws_published_example_verifies() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "content-type",
            HeaderValue::from_static("application/x-www-form-urlencoded; charset=utf-8"),
        );
        headers.insert("host", HeaderValue::from_static("iam.amazonaws.com"));
        headers.insert("x-amz-date", HeaderValue::from_static("20150830T123600Z"));
        let authorization = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7";
        let signed = parse(Some(authorization)).unwrap();
        assert_eq!(signed.access_key, "AKIDEXAMPLE");
        let request = Request {
            method: "GET",
            path: "/",
            query: "Action=ListUsers&Version=2010-05-08",
            headers: &headers,
            body: b"",
        };
        let now = parse_amz_date("20150830T123600Z").unwrap();
        let secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
        assert_eq!(signed.verify(&request, secret, now), Ok(()));
        assert_eq!(
            signed.verify(&request, "another secret", now),
            Err(SignatureError::Mismatch)
        );
        let altered = Request {
            body: b"x",
            ..request
        };
        assert_eq!(
            signed.verify(&altered, secret, now),
            Err(SignatureError::Mismatch)
        );
        let late = now + MAX_SKEW_MS + 1000;
        assert!(matches!(
            signed.verify(&request, secret, late),
            Err(SignatureError::Date(_))
        ));
    }

    #[test]
    fn malformed_headers_are_refused_with_a_reason() {
        assert_eq!(parse(None), Err(SignatureError::Missing));
        for bad in [
            "Bearer wk_x",
            "AWS4-HMAC-SHA256",
            "AWS4-HMAC-SHA256 Credential=a/b/c/d/aws4_request, SignedHeaders=host",
            "AWS4-HMAC-SHA256 Credential=a, SignedHeaders=host, Signature=00",
            "AWS4-HMAC-SHA256 Credential=a/b/c/d/e, SignedHeaders=host, Signature=00",
            "AWS4-HMAC-SHA256 Credential=a/b/c/d/aws4_request, SignedHeaders=x-amz-date;host, Signature=00",
            "AWS4-HMAC-SHA256 Credential=a/b/c/d/aws4_request, SignedHeaders=x-amz-date, Signature=00",
            "AWS4-HMAC-SHA256 Credential=a/b/c/d/aws4_request, Credential=a/b/c/d/aws4_request, SignedHeaders=host, Signature=00",
        ] {
            assert!(
                matches!(parse(Some(bad)), Err(SignatureError::Malformed(_))),
                "{bad}"
            );
        }
        assert_eq!(parse_amz_date("20151330T123600Z"), None);
        assert_eq!(parse_amz_date("2015-08-30T12:36"), None);
        assert_eq!(parse_amz_date("20150830T12360+Z"), None);
    }
}
