//! Mirror settings for tests, and waits on relays: until they have applied every event.

use std::time::Duration;

use wharf::config::Config;
use wharf::mirror::{MirrorConfig, MirrorState, MirrorStatus};

use super::TestServer;

/// A Postgres mirror into `schema`, retrying fast.
pub fn pg_mirror(schema: &str, url: &str) -> MirrorConfig {
    MirrorConfig {
        schema: schema.to_owned(),
        max_backoff_ms: 200,
        ..MirrorConfig::from_url(url, &[]).unwrap()
    }
}

/// A Redis mirror under `prefix`, retrying fast.
pub fn redis_mirror(prefix: &str, url: &str) -> MirrorConfig {
    MirrorConfig {
        prefix: prefix.to_owned(),
        max_backoff_ms: 200,
        ..MirrorConfig::from_url(url, &[]).unwrap()
    }
}

/// A quiet test config in `dir` with `mirrors`.
pub fn config_with(dir: &std::path::Path, mirrors: Vec<MirrorConfig>) -> Config {
    Config {
        mirrors,
        ..super::quiet_config_in(dir)
    }
}

/// Waits until every mirror has applied every event readers can see now, and follows.
pub async fn converged(server: &TestServer) {
    let head = server.broker().events_head();
    for mut status in server.server.as_ref().unwrap().mirrors() {
        let caught_up = |s: &MirrorStatus| s.position >= head && s.state == MirrorState::Following;
        let reached = tokio::time::timeout(Duration::from_secs(30), status.wait_for(caught_up))
            .await
            .map(|result| result.is_ok());
        assert!(
            matches!(reached, Ok(true)),
            "a mirror did not catch up to {head}: {:?}",
            *status.borrow()
        );
    }
}

/// The head of the log once every change so far is durable: lease events are fsynced with the
/// next write anyone waits for, so one durable enqueue (to a queue of its own) flushes them.
pub async fn settled_head(server: &TestServer) -> u64 {
    server.enqueue("flush-marker", r#"{"payload":null}"#).await;
    server.broker().events_head()
}
