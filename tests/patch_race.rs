//! Queue settings under concurrent PATCHes: each PATCH is checked against the settings it
//! actually changes, under the queue's lock, so two PATCHes that are each valid alone but not
//! together (one lowers `backoff.cap_ms` below the base the other raises) can never both win.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may unwrap
mod common;
use common::{TestServer, request};

use serde_json::{Value, json};
use wharf::broker::{Broker, BrokerError, QueuePatch};

/// Rounds of racing PATCHes; each round also races a burst of enqueues (write load widens the
/// window between a check made before the lock and the write).
const ROUNDS: usize = 30;
/// PATCHes of each kind per round.
const EACH: usize = 10;

fn backoff(queue: &Value) -> (u64, u64) {
    (
        queue["backoff"]["base_ms"].as_u64().unwrap(),
        queue["backoff"]["cap_ms"].as_u64().unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflicting_patches_never_combine_into_invalid_settings() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::quiet_config_in(dir.path());
    // One write at a time: requests queue for the writer after they were decided, which is
    // where a check made before the lock would go stale.
    config.max_pending_writes = 1;
    let server = TestServer::start_in(dir, config, wharf::clock::Clock::manual(common::T0)).await;
    let addr = server.addr;
    for round in 0..ROUNDS {
        let reset = json!({"backoff": {"base_ms": 1000, "cap_ms": 5000}}).to_string();
        assert_eq!(server.patch("/v1/queues/q", &reset).await.0, 200);
        let lower = json!({"backoff": {"cap_ms": 1500}}).to_string();
        let raise = json!({"backoff": {"base_ms": 2000}}).to_string();
        let mut tasks = Vec::new();
        for i in 0..EACH * 3 {
            let body = match i % 3 {
                0 => lower.clone(),
                1 => raise.clone(),
                _ => json!({"payload": i}).to_string(),
            };
            let (method, path) = match i % 3 {
                2 => ("POST", "/v1/queues/q/jobs"),
                _ => ("PATCH", "/v1/queues/q"),
            };
            tasks.push(tokio::spawn(async move {
                (i % 3, request(addr, method, path, Some(&body)).await)
            }));
        }
        let (mut lowered, mut raised) = (Vec::new(), Vec::new());
        for task in tasks {
            let (kind, (status, body)) = task.await.unwrap();
            match kind {
                0 => lowered.push(status),
                1 => raised.push(status),
                _ => assert_eq!(status, 201, "{body}"),
            }
            if status == 422 {
                assert_eq!(body["error"]["code"], "invalid_value", "{body}");
            }
        }
        // Whichever kind took the lock first wins, with every PATCH of its kind (they set the
        // same value); the other kind is refused every time.
        let all = |s: &[u16], want: u16| s.iter().all(|&x| x == want);
        assert!(
            (all(&lowered, 200) && all(&raised, 422)) || (all(&lowered, 422) && all(&raised, 200)),
            "round {round}: cap lowered {lowered:?}, base raised {raised:?}"
        );
        let (_, queue) = server.get("/v1/queues/q").await;
        let (base, cap) = backoff(&queue);
        assert!(base <= cap, "round {round}: stored base {base} > cap {cap}");
        assert!((base, cap) == (1000, 1500) || (base, cap) == (2000, 5000));
    }
    // What was stored survives a restart, and the queue still takes PATCHes.
    let server = server.restart().await;
    let (_, queue) = server.get("/v1/queues/q").await;
    let (base, cap) = backoff(&queue);
    assert!(base <= cap);
    assert_eq!(
        server
            .patch("/v1/queues/q", r#"{"lease_ms": 1000}"#)
            .await
            .0,
        200
    );
}

/// The broker checks a patch itself, whoever calls it: nothing is stored (the queue is not
/// even created) when the patched settings break a rule.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_broker_refuses_a_patch_that_breaks_a_rule() {
    let dir = tempfile::tempdir().unwrap();
    let options = common::quiet_config_in(dir.path()).broker_options();
    let broker = Broker::open(&options, wharf::clock::Clock::manual(common::T0)).unwrap();
    let patch = QueuePatch {
        backoff_cap_ms: Some(10),
        ..QueuePatch::default()
    };
    let refused = broker.update_queue("q", patch).await;
    match refused {
        Err(BrokerError::Invalid(invalid)) => assert_eq!(invalid.field, "backoff.base_ms"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(broker.queue("q"), Err(BrokerError::QueueNotFound)));
    broker.close();
}
