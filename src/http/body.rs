//! Request bodies and path parameters: parsed strictly, every failure a JSON 4xx.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequestParts, Path};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::marker::PhantomData;

use serde::de::{DeserializeOwned, Deserializer, Error as _, IgnoredAny, MapAccess, Visitor};
use serde_json::error::Category;

use super::error::{ApiError, ErrorCode};
use crate::job::JobId;

/// Parses a JSON body. Empty or malformed JSON (including invalid UTF-8 and trailing data) is
/// 400; valid JSON with wrong types, missing or unknown fields, or an array where an object
/// belongs is 422.
pub fn parse_json<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::new(
            ErrorCode::EmptyBody,
            "the request body is empty; send a JSON object",
        ));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let parsed = T::deserialize(MapOnly(&mut deserializer))
        .and_then(|value| deserializer.end().map(|()| value));
    parsed.map_err(|error| json_error(bytes, error))
}

/// The API error for a body serde refused.
fn json_error(bytes: &[u8], error: serde_json::Error) -> ApiError {
    // serde stops at the first problem, which may be a wrong field before a syntax error
    // further on; only on this error path, check the syntax of the whole body.
    let syntax = serde_json::from_slice::<IgnoredAny>(bytes).err();
    match syntax.as_ref().unwrap_or(&error).classify() {
        Category::Data => ApiError::invalid(error.to_string()),
        _ => ApiError::new(
            ErrorCode::InvalidJson,
            format!("the body is not valid JSON: {}", syntax.unwrap_or(error)),
        ),
    }
}

/// Parses a JSON array of objects, refusing it with `too_many()` as soon as it holds more than
/// `most`: the items past the limit are never built, so a huge batch costs no more memory than
/// its body.
pub fn parse_list<'a, T: Deserialize<'a>>(
    bytes: &'a [u8],
    most: usize,
    too_many: impl FnOnce() -> ApiError,
) -> Result<Vec<T>, ApiError> {
    let over = std::cell::Cell::new(false);
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let list = Bounded {
        most,
        over: &over,
        items: PhantomData,
    };
    let parsed = serde::de::DeserializeSeed::deserialize(list, &mut deserializer)
        .and_then(|value| deserializer.end().map(|()| value));
    match parsed {
        Ok(items) => Ok(items),
        Err(_) if over.get() => Err(too_many()),
        Err(error) => Err(json_error(bytes, error)),
    }
}

/// A list of at most `most` objects; sets `over` when it holds more.
struct Bounded<'c, T> {
    most: usize,
    over: &'c std::cell::Cell<bool>,
    items: PhantomData<T>,
}

impl<'de, T: Deserialize<'de>> serde::de::DeserializeSeed<'de> for Bounded<'_, T> {
    type Value = Vec<T>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Vec<T>, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de, T: Deserialize<'de>> Visitor<'de> for Bounded<'_, T> {
    type Value = Vec<T>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an array of objects")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
        let mut items = Vec::new();
        while items.len() < self.most {
            match seq.next_element::<Obj<T>>()? {
                Some(Obj(item)) => items.push(item),
                None => return Ok(items),
            }
        }
        // One more, looked at but not built, is one too many.
        if seq.next_element::<IgnoredAny>()?.is_some() {
            self.over.set(true);
            return Err(A::Error::custom("too many items"));
        }
        Ok(items)
    }
}

/// A struct that must arrive as a JSON object: serde's derived structs would also accept an
/// array of their fields in order, which no client means.
#[derive(Debug)]
pub struct Obj<T>(pub T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Obj<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        T::deserialize(MapOnly(deserializer)).map(Obj)
    }
}

/// A JSON object read as a map that refuses a key given twice: serde's maps keep the last
/// value, so `{"jobs": [...], "jobs": [...]}` would silently drop the first list.
#[derive(Debug, Default)]
pub struct UniqueMap<V>(pub BTreeMap<String, V>);

impl<'de, V: Deserialize<'de>> Deserialize<'de> for UniqueMap<V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Entries<V>(PhantomData<V>);

        impl<'de, V: Deserialize<'de>> Visitor<'de> for Entries<V> {
            type Value = UniqueMap<V>;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries = BTreeMap::new();
                while let Some(key) = map.next_key::<String>()? {
                    if entries.contains_key(&key) {
                        return Err(A::Error::custom(format_args!("duplicate key {key:?}")));
                    }
                    let value = map.next_value()?;
                    entries.insert(key, value);
                }
                Ok(UniqueMap(entries))
            }
        }

        deserializer.deserialize_map(Entries(PhantomData))
    }
}

/// Wraps a deserializer so that a struct is read only from a map.
struct MapOnly<D>(D);

impl<'de, D: Deserializer<'de>> Deserializer<'de> for MapOnly<D> {
    type Error = D::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.0.deserialize_any(visitor)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_map(visitor)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option
        unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier ignored_any
    }
}

/// Like [`parse_json`], but an empty body means `T::default()` (for bodies whose every field
/// is optional).
pub fn parse_json_or_default<T: DeserializeOwned + Default>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        Ok(T::default())
    } else {
        parse_json(bytes)
    }
}

/// Maps a failure to read the body (over the size limit, or the connection failed).
pub fn body_bytes(body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    body.map_err(|rejection| match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
            ErrorCode::BodyTooLarge,
            "the request body is over the server's max_body_bytes",
        ),
        _ => ApiError::new(ErrorCode::BadBody, rejection.body_text()),
    })
}

/// A valid queue name from the path, as the full name of the caller's tenant's queue.
pub struct QueueName(pub String);

impl<S: Send + Sync> FromRequestParts<S> for QueueName {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let name = first_param(parts, state).await?;
        // Every route that names a queue in its path goes through here, after the access
        // middleware (which leaves no principal only on open routes).
        let caller = super::names::caller(parts);
        let full = super::names::full_name_or(
            caller.map(|c| &**c),
            &name,
            crate::broker::BrokerError::InvalidQueueName,
        )?;
        if let Some(principal) = caller {
            super::access::check_queue(principal, &full)?;
        }
        Ok(QueueName(full))
    }
}

/// The text of the one path parameter (a key id).
pub struct PathText(pub String);

impl<S: Send + Sync> FromRequestParts<S> for PathText {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        first_param(parts, state).await.map(PathText)
    }
}

/// A job id from the path; anything that is not a job id is 404, as no such job exists.
pub struct JobIdParam(pub JobId);

impl<S: Send + Sync> FromRequestParts<S> for JobIdParam {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let text = first_param(parts, state).await?;
        text.parse()
            .map(JobIdParam)
            .map_err(|_| ApiError::new(ErrorCode::JobNotFound, format!("no job with id {text:?}")))
    }
}

async fn first_param<S: Send + Sync>(parts: &mut Parts, state: &S) -> Result<String, ApiError> {
    let Path(params) = Path::<Vec<(String, String)>>::from_request_parts(parts, state)
        .await
        .map_err(|e| ApiError::new(ErrorCode::InvalidPath, e.body_text()))?;
    params
        .into_iter()
        .next()
        .map(|(_, v)| v)
        .ok_or_else(|| ApiError::new(ErrorCode::InvalidPath, "missing path parameter"))
}
