//! Names in requests and replies, per tenant (see [`crate::tenant`]).
//!
//! A request names a queue, schedule or cursor as its caller spells it: a tenant's key by its
//! plain name, an operator by its full name (`acme:emails`). Replies show every name split,
//! `"tenant"` beside the plain name, whoever asks.

use axum::http::request::Parts;

use super::access::Caller;
use super::error::ApiError;
use crate::auth::Principal;
use crate::broker::BrokerError;
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

/// [`full_name`], or `invalid` (a 400 for the kind of name), with a message about prefixes
/// when the name has one: a tenant's key may not send one, an operator's must be well formed.
pub fn full_name_or(
    by: Option<&Principal>,
    name: &str,
    invalid: BrokerError,
) -> Result<String, ApiError> {
    if let Some(full) = full_name(by, name) {
        return Ok(full);
    }
    let error = ApiError::from(invalid);
    match by {
        Some(by) if !by.is_operator() && name.contains(tenant::SEPARATOR) => Err(ApiError::new(
            error.code,
            format!(
                "{name:?}: a key of tenant {:?} names its tenant's resources without a prefix; 'tenant:name' is for operator keys",
                by.tenant
            ),
        )),
        Some(by) if by.is_operator() && name.contains(tenant::SEPARATOR) => Err(ApiError::new(
            error.code,
            format!(
                "{name:?}: a full name is tenant:name, the tenant 1-{} characters of A-Z, a-z, 0-9, '.', '_' and '-' other than {:?} (whose names have no prefix), the name 1-128 of the same",
                tenant::MAX_TENANT_LEN,
                tenant::DEFAULT_TENANT
            ),
        )),
        _ => Err(error),
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
