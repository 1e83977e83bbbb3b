//! Who may do what: API keys (stored hashed), their scopes and queue patterns.
//!
//! - [`token`]: the `wk_` tokens, their hashes, the constant-time check.
//! - [`scope`]: the kinds of action; `http::access` holds the table of which route needs which.
//! - [`pattern`]: which queues a key may touch.
//! - [`keys`]: the registry every request is checked against.
//! - [`limits`]: the rate limits of each key.
//! - [`principal`]: the caller of one request.

pub mod keys;
pub mod limits;
pub mod offline;
pub mod pattern;
pub mod principal;
pub mod scope;
pub mod token;

/// A key's rate limits, as stored.
pub use crate::storage::KeyLimits;
pub use keys::{
    Authenticated, KeyError, KeySpec, KeyStats, KeyView, Keys, TenantStats, Unauthorized,
};
pub use limits::{Class, RateLimited, RateLimits, Taken};
pub use pattern::QueuePatterns;
pub use principal::{ANY_TENANT, DEFAULT_TENANT, Principal};
pub use scope::{Scope, Scopes};
