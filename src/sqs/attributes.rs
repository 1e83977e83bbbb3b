//! Message attributes: SQS's typed name → value pairs, kept as the job's headers so that a
//! consumer on wharf's own API sees them too (and a job enqueued there with headers arrives
//! over SQS with String attributes). Types other than `String` are remembered in one more
//! header, [`TYPES_HEADER`]. The MD5 digests SQS replies with are computed here.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};

use super::error::SqsError;
use crate::broker::limits::{MAX_HEADER_NAME, MAX_HEADER_VALUE};

/// The header naming the data type of each attribute whose type is not `String`, as a JSON
/// object (absent when every attribute is a `String`).
pub const TYPES_HEADER: &str = "wharf-sqs-types";

/// Most attributes on one message (SQS's limit).
pub const MAX_ATTRIBUTES: usize = 10;

/// One attribute as the JSON protocol carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AttributeValue {
    /// `String`, `Number` or `Binary`, each optionally followed by `.custom-label`.
    pub data_type: String,
    /// The value of a String or Number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub string_value: Option<String>,
    /// The value of a Binary, base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binary_value: Option<String>,
}

/// Attributes by name (sorted, as the MD5 digest needs them).
pub type Attributes = BTreeMap<String, AttributeValue>;

/// Whether `data_type` is a Binary type.
fn is_binary(data_type: &str) -> bool {
    base_type(data_type) == Some("Binary")
}

/// `String`, `Number` or `Binary`: the part of a data type before its custom label.
fn base_type(data_type: &str) -> Option<&str> {
    let (base, label) = match data_type.split_once('.') {
        Some((base, label)) => (base, Some(label)),
        None => (data_type, None),
    };
    let known = matches!(base, "String" | "Number" | "Binary");
    let label_ok = label.is_none_or(|l| !l.is_empty() && l.len() <= 240);
    (known && label_ok).then_some(base)
}

/// Checks `attributes` and turns them into job headers.
pub fn to_headers(attributes: &Attributes) -> Result<Vec<(String, String)>, SqsError> {
    if attributes.len() > MAX_ATTRIBUTES {
        return Err(SqsError::invalid(format!(
            "a message may carry at most {MAX_ATTRIBUTES} MessageAttributes"
        )));
    }
    let mut headers = Vec::with_capacity(attributes.len() + 1);
    let mut types = BTreeMap::new();
    for (name, value) in attributes {
        check_name(name)?;
        let base = base_type(&value.data_type).ok_or_else(|| {
            SqsError::invalid(format!(
                "the DataType of message attribute {name:?} must be String, Number or Binary, optionally followed by .label"
            ))
        })?;
        let text = match (base, &value.string_value, &value.binary_value) {
            ("Binary", None, Some(binary)) => {
                STANDARD.decode(binary).map_err(|_| {
                    SqsError::invalid(format!("the BinaryValue of {name:?} is not base64"))
                })?;
                binary.clone()
            }
            ("Number", Some(number), None) => {
                if !number.parse::<f64>().is_ok_and(f64::is_finite) {
                    return Err(SqsError::invalid(format!(
                        "the StringValue of Number attribute {name:?} is not a number"
                    )));
                }
                number.clone()
            }
            ("String", Some(text), None) => text.clone(),
            _ => {
                return Err(SqsError::invalid(format!(
                    "message attribute {name:?} of type {} must carry exactly one {}",
                    value.data_type,
                    if base == "Binary" {
                        "BinaryValue"
                    } else {
                        "StringValue"
                    }
                )));
            }
        };
        if text.len() > MAX_HEADER_VALUE {
            return Err(SqsError::invalid(format!(
                "message attribute {name:?} is {} bytes; wharf keeps attributes of at most {MAX_HEADER_VALUE} bytes",
                text.len()
            )));
        }
        if value.data_type != "String" {
            types.insert(name.as_str(), value.data_type.as_str());
        }
        headers.push((name.clone(), text));
    }
    if !types.is_empty() {
        let types = serde_json::to_string(&types)
            .map_err(|_| SqsError::invalid("message attribute types"))?;
        headers.push((TYPES_HEADER.to_owned(), types));
    }
    Ok(headers)
}

/// SQS's rules for attribute names, and wharf's: at most 128 bytes (a header name), not
/// starting with `wharf-` (wharf's own headers).
fn check_name(name: &str) -> Result<(), SqsError> {
    let lower = name.to_ascii_lowercase();
    let charset = name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    let ok = (1..=MAX_HEADER_NAME).contains(&name.len())
        && charset
        && !name.starts_with('.')
        && !name.ends_with('.')
        && !name.contains("..")
        && !lower.starts_with("aws.")
        && !lower.starts_with("amazon.")
        && !lower.starts_with("wharf-");
    if ok {
        Ok(())
    } else {
        Err(SqsError::invalid(format!(
            "message attribute name {name:?}: 1-{MAX_HEADER_NAME} characters of A-Z, a-z, 0-9, '_', '-' and '.', not starting or ending with '.', no '..', and not starting with AWS., Amazon. or wharf-"
        )))
    }
}

/// The attributes of a job's headers (every header but [`TYPES_HEADER`]).
pub fn from_headers(headers: &[(String, String)]) -> Attributes {
    let types: BTreeMap<String, String> = headers
        .iter()
        .find(|(name, _)| name == TYPES_HEADER)
        .and_then(|(_, types)| serde_json::from_str(types).ok())
        .unwrap_or_default();
    headers
        .iter()
        .filter(|(name, _)| name != TYPES_HEADER)
        .map(|(name, value)| {
            let data_type = types
                .get(name)
                .filter(|t| base_type(t).is_some())
                .cloned()
                .unwrap_or_else(|| "String".to_owned());
            let (string_value, binary_value) = if is_binary(&data_type) {
                (None, Some(value.clone()))
            } else {
                (Some(value.clone()), None)
            };
            let value = AttributeValue {
                data_type,
                string_value,
                binary_value,
            };
            (name.clone(), value)
        })
        .collect()
}

/// The attributes whose names `wanted` asks for: `All`, `.*`, `prefix.*` or exact names.
pub fn select(attributes: Attributes, wanted: &[String]) -> Attributes {
    let matches = |name: &str| {
        wanted.iter().any(|w| {
            w == "All"
                || w == ".*"
                || w == name
                || w.strip_suffix(".*").is_some_and(|prefix| {
                    name.strip_prefix(prefix)
                        .is_some_and(|r| r.starts_with('.'))
                })
        })
    };
    attributes.into_iter().filter(|(n, _)| matches(n)).collect()
}

/// The hex MD5 of `text`, as `MD5OfMessageBody`.
pub fn md5_hex(text: &[u8]) -> String {
    hex(&Md5::digest(text))
}

/// `MD5OfMessageAttributes`: the MD5 of every attribute in name order, each as its name and
/// its data type (both length-prefixed), a transport byte (1: string, 2: binary) and its value
/// (length-prefixed); `None` for no attributes.
pub fn md5_of_attributes(attributes: &Attributes) -> Option<String> {
    if attributes.is_empty() {
        return None;
    }
    let mut bytes = Vec::new();
    let field = |bytes: &mut Vec<u8>, value: &[u8]| {
        let len = u32::try_from(value.len()).unwrap_or(u32::MAX);
        bytes.extend_from_slice(&len.to_be_bytes());
        bytes.extend_from_slice(value);
    };
    for (name, value) in attributes {
        field(&mut bytes, name.as_bytes());
        field(&mut bytes, value.data_type.as_bytes());
        match (&value.binary_value, &value.string_value) {
            (Some(binary), _) => {
                bytes.push(2);
                // Checked to be base64 when the message was sent.
                field(&mut bytes, &STANDARD.decode(binary).unwrap_or_default());
            }
            (None, text) => {
                bytes.push(1);
                field(&mut bytes, text.as_deref().unwrap_or("").as_bytes());
            }
        }
    }
    Some(md5_hex(&bytes))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::with_capacity(32), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn string(value: &str) -> AttributeValue {
        AttributeValue {
            data_type: "String".into(),
            string_value: Some(value.into()),
            binary_value: None,
        }
    }

    /// The digests of AWS's own documentation and SDK tests: "test" in MD5, and one String
    /// attribute, as the Java SDK's `MessageMD5ChecksumHandler` computes it.
    #[test]
    fn digests_match_the_known_values() {
        assert_eq!(md5_hex(b"test"), "098f6bcd4621d373cade4e832627b4f6");
        let mut one = Attributes::new();
        one.insert("a".into(), string("b"));
        // 00000001 'a' 00000006 'String' 01 00000001 'b'
        let mut expected = Vec::new();
        expected.extend_from_slice(&[0, 0, 0, 1, b'a', 0, 0, 0, 6]);
        expected.extend_from_slice(b"String");
        expected.extend_from_slice(&[1, 0, 0, 0, 1, b'b']);
        assert_eq!(md5_of_attributes(&one), Some(md5_hex(&expected)));
        assert_eq!(md5_of_attributes(&Attributes::new()), None);
    }

    #[test]
    fn attributes_survive_the_trip_through_headers_with_their_types() {
        let mut attributes = Attributes::new();
        attributes.insert("plain".into(), string("text"));
        attributes.insert(
            "count".into(),
            AttributeValue {
                data_type: "Number.int".into(),
                string_value: Some("42".into()),
                binary_value: None,
            },
        );
        attributes.insert(
            "blob".into(),
            AttributeValue {
                data_type: "Binary".into(),
                string_value: None,
                binary_value: Some(STANDARD.encode([0u8, 255, 7])),
            },
        );
        let headers = to_headers(&attributes).unwrap();
        assert_eq!(headers.len(), 4, "three attributes and the types header");
        assert_eq!(from_headers(&headers), attributes);
        let wanted = select(from_headers(&headers), &["count".into()]);
        assert_eq!(wanted.keys().collect::<Vec<_>>(), ["count"]);
        assert_eq!(select(from_headers(&headers), &["All".into()]).len(), 3);
        assert!(select(from_headers(&headers), &[]).is_empty());
    }

    #[test]
    fn bad_attributes_are_refused() {
        let cases = [
            ("AWS.x", string("v")),
            ("wharf-tenant", string("v")),
            (".dot", string("v")),
            ("a..b", string("v")),
            ("sp ace", string("v")),
            (
                "n",
                AttributeValue {
                    data_type: "Number".into(),
                    string_value: Some("twelve".into()),
                    binary_value: None,
                },
            ),
            (
                "b",
                AttributeValue {
                    data_type: "Binary".into(),
                    string_value: None,
                    binary_value: Some("not base64!".into()),
                },
            ),
            (
                "t",
                AttributeValue {
                    data_type: "Date".into(),
                    string_value: Some("x".into()),
                    binary_value: None,
                },
            ),
            (
                "both",
                AttributeValue {
                    data_type: "String".into(),
                    string_value: Some("x".into()),
                    binary_value: Some("eA==".into()),
                },
            ),
        ];
        for (name, value) in cases {
            let mut attributes = Attributes::new();
            attributes.insert(name.into(), value);
            assert!(to_headers(&attributes).is_err(), "{name}");
        }
        let many: Attributes = (0..11).map(|i| (format!("a{i}"), string("v"))).collect();
        assert!(to_headers(&many).is_err());
    }
}
