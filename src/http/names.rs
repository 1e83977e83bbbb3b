//! Names in requests and replies, per tenant (see [`crate::tenant`]).
//!
//! A request names a queue, schedule or cursor as its caller spells it: a tenant's key by its
//! plain name, an operator by its full name (`acme:emails`). Replies show every name split,
//! `"tenant"` beside the plain name, whoever asks.

use axum::http::request::Parts;

use super::access::Caller;
use crate::auth::Principal;
use crate::tenant;

/// The caller of a request (a broker without keys has an operator on every route but the
/// open ones, which name nothing).
pub fn caller(parts: &Parts) -> Option<&Caller> {
    parts.extensions.get::<Caller>()
}

/// The full name of `name` from a request of `by`; `None` for a name it cannot send.
pub fn full_name(by: Option<&Principal>, name: &str) -> Option<String> {
    match by {
        Some(by) => by.full_name(name),
        None => tenant::valid_full_name(name).then(|| name.to_owned()),
    }
}

/// A full name as replies show it: its tenant and its plain name.
pub fn shown(full: &str) -> (String, String) {
    let (tenant, name) = tenant::split(full);
    (tenant.to_owned(), name.to_owned())
}

/// The plain part of a full name.
pub fn plain(full: &str) -> &str {
    tenant::split(full).1
}
