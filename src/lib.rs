//! wharf: a single-node, durable job broker with an HTTP API.
//!
//! # Module map
//!
//! - [`job`]: the vocabulary: job ids, priorities, states, lease tokens, queue names.
//! - [`clock`]: the one clock every deadline reads (system, or manual for tests).
//! - [`random`]: the one random source (jitter, lease nonces, the journal's salt).
//! - [`cron`]: cron expressions in IANA time zones (next fire times, daylight saving).
//! - [`config`]: server configuration (file, env, flags) and its validation.
//! - [`storage`]: the embedded store (redb): record format, group-commit writer, the memory
//!   layers that hold changes until a background checkpoint, reads and recovery scans.
//!   Nothing else knows the engine.
//! - [`broker`]: every life-cycle rule: enqueue (with idempotency keys), poll and leases,
//!   ack/nack/extend, retries with backoff, dead jobs and replay, cron schedules, retention,
//!   the timer, recovery of in-memory indexes.
//! - [`mirror`]: relays that copy the broker's state to Postgres and Redis from the change log.
//! - [`http`]: the v1 JSON API: parse, call one broker operation, render.
//! - [`sqs`]: the SQS-compatible endpoint (`POST /`, AWS JSON 1.0): SQS actions mapped onto
//!   the broker's queues, SigV4 checked against the wharf key it names.
//! - [`ui`]: the web dashboard at `/ui`, its files embedded at build time; it uses the API
//!   with the key typed into it.
//! - [`server`]: binds, recovers, serves, shuts down gracefully.
//! - [`metrics`]: the store's timings (`prometheus-client` histograms), shown at `/metrics`.
//! - [`bench`]: the load generator behind `wharf bench`.
//! - [`client`]: a minimal HTTP/1.1 client, shared by `wharf bench` and the tests.
//!
//! Requests flow `http` → `broker` → `storage`; see `docs/design.md` for the record format,
//! the commit path and the invariants.

pub mod auth;
pub mod bench;
pub mod broker;
pub mod client;
pub mod clock;
pub mod config;
pub mod cron;
/// Decoders opened up for the fuzz targets in `fuzz/` only; not API.
#[doc(hidden)]
pub mod fuzzing;
pub mod http;
pub mod job;
pub mod metrics;
pub mod mirror;
pub mod random;
pub mod server;
pub mod sqs;
pub mod storage;
pub mod tenant;
pub mod ui;
