//! Leases: expiry and retry with backoff, dead after max_attempts, fencing of stale tokens,
//! extend, nack (delay, dead, error text), lease lengths, and acks of jobs that are not leased.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may unwrap
mod common;
use common::{T0, TestServer, assert_error};

use serde_json::{Value, json};

/// RFC 3339 of `T0 + ms`.
fn at(ms: u64) -> String {
    wharf::clock::rfc3339(T0 + ms)
}

async fn job(server: &TestServer, id: &str) -> Value {
    let (status, body) = server.get(&format!("/v1/jobs/{id}")).await;
    assert_eq!(status, 200, "{body}");
    body
}

/// Polls exactly one job and returns (id, lease token, delivery).
async fn poll_one(server: &TestServer, queue: &str, body: Value) -> (String, String, Value) {
    let (status, reply) = server
        .post(&format!("/v1/queues/{queue}/poll"), &body.to_string())
        .await;
    assert_eq!(status, 200, "{reply}");
    let jobs = reply["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 1, "{reply}");
    let d = jobs[0].clone();
    (
        d["id"].as_str().unwrap().to_owned(),
        d["lease"].as_str().unwrap().to_owned(),
        d,
    )
}

async fn ack(server: &TestServer, id: &str, lease: &str) -> (u16, Value) {
    server
        .post(
            &format!("/v1/jobs/{id}/ack"),
            &json!({"lease": lease}).to_string(),
        )
        .await
}

async fn nack(server: &TestServer, id: &str, body: Value) -> (u16, Value) {
    server
        .post(&format!("/v1/jobs/{id}/nack"), &body.to_string())
        .await
}

async fn extend(server: &TestServer, id: &str, body: Value) -> (u16, Value) {
    server
        .post(&format!("/v1/jobs/{id}/extend"), &body.to_string())
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_lease_is_retried_after_the_backoff_as_the_next_attempt() {
    let server = TestServer::start().await;
    let id = server.enqueue("q", r#"{"payload":"x"}"#).await;
    let (_, lease1, d1) = poll_one(&server, "q", json!({})).await;
    assert_eq!(d1["attempt"], 1);
    assert!(lease1.starts_with("1."), "{lease1}");
    assert_eq!(d1["lease_expires_at"], "2026-01-01T00:00:30.000Z");
    let view = job(&server, &id).await;
    assert_eq!(view["state"], "leased");
    assert_eq!(view["lease_expires_at"], "2026-01-01T00:00:30.000Z");
    assert_eq!(view["attempts"], 1);

    server.advance(29_999).await;
    assert_eq!(server.state_of(&id).await, "leased", "expired 1 ms early");

    server.advance(1).await;
    let view = job(&server, &id).await;
    assert_eq!(view["state"], "scheduled", "{view}");
    assert_eq!(
        view["run_at"], "2026-01-01T00:00:31.000Z",
        "retry at now + base backoff (1000 ms): {view}"
    );
    assert_eq!(view["attempts"], 1);
    assert_eq!(view["last_error"], "lease expired");
    assert!(view.get("lease_expires_at").is_none(), "{view}");
    assert!(
        server.poll("q", 10).await.is_empty(),
        "retried before its backoff"
    );

    server.advance(999).await;
    assert!(server.poll("q", 10).await.is_empty(), "retried 1 ms early");
    server.advance(1).await;
    assert_eq!(server.state_of(&id).await, "ready");
    let (again, lease2, d2) = poll_one(&server, "q", json!({})).await;
    assert_eq!(again, id);
    assert_eq!(d2["attempt"], 2);
    assert!(lease2.starts_with("2."), "{lease2}");
    assert_ne!(lease1, lease2);
    assert_eq!(job(&server, &id).await["attempts"], 2);

    // The second failure doubles the backoff: 2000 ms after the expiry.
    server.advance(30_000).await;
    let view = job(&server, &id).await;
    assert_eq!(view["state"], "scheduled");
    assert_eq!(view["run_at"], at(31_000 + 30_000 + 2_000), "{view}");
    server.advance(1_999).await;
    assert_eq!(server.state_of(&id).await, "scheduled");
    server.advance(1).await;
    let (_, lease3, d3) = poll_one(&server, "q", json!({})).await;
    assert_eq!(d3["attempt"], 3);
    assert_eq!(ack(&server, &id, &lease3).await.0, 200);
    assert_eq!(server.state_of(&id).await, "succeeded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_is_dead_once_its_attempts_are_used_up_by_expiries() {
    let server = TestServer::start().await;
    let id = server
        .enqueue("q", r#"{"payload":1,"max_attempts":2}"#)
        .await;
    assert_eq!(job(&server, &id).await["max_attempts"], 2);
    poll_one(&server, "q", json!({})).await;
    server.advance(30_000).await;
    assert_eq!(server.state_of(&id).await, "scheduled");
    server.advance(1_000).await;
    let (_, _, d) = poll_one(&server, "q", json!({})).await;
    assert_eq!(d["attempt"], 2);
    server.advance(30_000).await;

    let view = job(&server, &id).await;
    assert_eq!(view["state"], "dead", "{view}");
    assert_eq!(view["attempts"], 2);
    assert_eq!(view["last_error"], "lease expired");
    assert_eq!(view["finished_at"], at(61_000), "{view}");
    assert!(view.get("run_at").is_none(), "{view}");
    server.advance(3_600_000).await;
    assert!(
        server.poll("q", 10).await.is_empty(),
        "a dead job was delivered"
    );
    let (_, queue) = server.get("/v1/queues/q").await;
    assert_eq!(queue["counts"]["dead"], 1, "{queue}");
    assert_eq!(queue["counts"]["scheduled"], 0, "{queue}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_is_dead_once_its_attempts_are_used_up_by_nacks() {
    let server = TestServer::start().await;
    let id = server
        .enqueue("q", r#"{"payload":1,"max_attempts":2}"#)
        .await;
    let (_, lease, _) = poll_one(&server, "q", json!({})).await;
    let reply = nack(&server, &id, json!({"lease": lease, "error": "first"})).await;
    assert_eq!(reply, (200, json!({"id": id, "state": "scheduled"})));
    server.advance(1_000).await;
    let (_, lease, _) = poll_one(&server, "q", json!({})).await;
    // A delay does not save a job on its last attempt.
    let reply = nack(
        &server,
        &id,
        json!({"lease": lease, "error": "second", "delay_ms": 5}),
    )
    .await;
    assert_eq!(reply, (200, json!({"id": id, "state": "dead"})));
    let view = job(&server, &id).await;
    assert_eq!(
        (view["state"].as_str(), view["attempts"].as_u64()),
        (Some("dead"), Some(2)),
        "{view}"
    );
    assert_eq!(view["last_error"], "second");
    server.advance(10_000).await;
    assert!(server.poll("q", 10).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_token_after_redelivery_is_refused_and_changes_nothing() {
    let server = TestServer::start().await;
    let id = server.enqueue("q", r#"{"payload":1}"#).await;
    let (_, old, _) = poll_one(&server, "q", json!({})).await;
    server.advance(30_000).await;
    server.advance(1_000).await;
    let (_, new, d) = poll_one(&server, "q", json!({})).await;
    assert_eq!(d["attempt"], 2);
    let before = job(&server, &id).await;
    assert_eq!(before["state"], "leased");

    assert_error(&ack(&server, &id, &old).await, 409, "stale_lease");
    assert_error(
        &nack(&server, &id, json!({"lease": old, "error": "late"})).await,
        409,
        "stale_lease",
    );
    assert_error(
        &nack(&server, &id, json!({"lease": old, "dead": true})).await,
        409,
        "stale_lease",
    );
    assert_error(
        &extend(&server, &id, json!({"lease": old, "lease_ms": 600000})).await,
        409,
        "stale_lease",
    );
    // A malformed token and a well-formed token of the right attempt with the wrong nonce too.
    assert_error(&ack(&server, &id, "garbage").await, 409, "stale_lease");
    let forged = format!(
        "2.{}",
        if new.ends_with('0') {
            "0000000000000001"
        } else {
            "0000000000000000"
        }
    );
    assert_error(&ack(&server, &id, &forged).await, 409, "stale_lease");
    assert_eq!(
        job(&server, &id).await,
        before,
        "a refused token changed the job"
    );

    // The new delivery is untouched: its token still works.
    let (status, body) = extend(&server, &id, json!({"lease": new, "lease_ms": 1000})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["lease_expires_at"], at(31_000 + 1_000));
    assert_eq!(ack(&server, &id, &new).await.0, 200);
    let view = job(&server, &id).await;
    assert_eq!(view["state"], "succeeded");
    assert_eq!(view["attempts"], 2);
}

/// The moment between a lease's deadline and the timer retrying the job: only the broker core
/// without its timer task can hold time there, so this one runs on `Broker` directly (the
/// HTTP mapping of `LeaseExpired` to 409 `lease_expired` is tested in `src/http/error.rs`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn right_token_after_the_deadline_is_lease_expired() {
    use wharf::broker::{AckItem, Broker, BrokerError, NackRequest, NewJob, PollRequest};

    let dir = tempfile::tempdir().unwrap();
    let clock = wharf::clock::Clock::manual(T0);
    let mut options = common::quiet_config_in(dir.path()).broker_options();
    options.seed = Some(7);
    let broker = Broker::open(&options, clock.clone()).unwrap();
    let id = broker.enqueue("q", vec![NewJob::new("1")]).await.unwrap()[0].id;
    let request = PollRequest {
        max: 1,
        wait_ms: 0,
        lease_ms: None,
    };
    let lease = broker.poll("q", request).await.unwrap()[0].lease;
    let before = format!("{:?}", broker.job(id).await.unwrap());
    // The deadline passes; no timer runs.
    clock.advance(30_000);
    let ack = broker.ack(AckItem::new(id, lease)).await;
    assert!(matches!(ack, Err(BrokerError::LeaseExpired)), "{ack:?}");
    let nack = broker.nack(id, lease, NackRequest::default()).await;
    assert!(matches!(nack, Err(BrokerError::LeaseExpired)), "{nack:?}");
    let extend = broker.extend(id, lease, 60_000).await;
    assert!(
        matches!(extend, Err(BrokerError::LeaseExpired)),
        "{extend:?}"
    );
    assert_eq!(
        format!("{:?}", broker.job(id).await.unwrap()),
        before,
        "a refused token changed the job"
    );
    // The timer's pass then retries it as usual.
    broker.run_due().await.unwrap();
    let view = broker.job(id).await.unwrap();
    assert_eq!(view.state.as_str(), "scheduled");
    assert_eq!(view.run_at, Some(T0 + 31_000));
    broker.close();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn right_token_after_the_timer_expired_the_lease_is_job_not_leased() {
    // docs/api.md (Leases and fencing): once the timer has handled the expiry, the same token
    // gets `job_not_leased`, whose message gives the state (scheduled when retried, dead when
    // out of attempts), and changes nothing.
    let server = TestServer::start().await;
    let retried = server.enqueue("q", r#"{"payload":1}"#).await;
    let (_, retried_lease, _) = poll_one(&server, "q", json!({})).await;
    let dead = server
        .enqueue("q", r#"{"payload":2,"max_attempts":1}"#)
        .await;
    let (_, dead_lease, _) = poll_one(&server, "q", json!({})).await;
    server.advance(30_000).await;
    let before = (job(&server, &retried).await, job(&server, &dead).await);
    assert_eq!(before.0["state"], "scheduled");
    assert_eq!(before.1["state"], "dead");

    for (id, lease, state) in [
        (&retried, &retried_lease, "scheduled"),
        (&dead, &dead_lease, "dead"),
    ] {
        for reply in [
            ack(&server, id, lease).await,
            nack(&server, id, json!({"lease": lease, "dead": true})).await,
            extend(&server, id, json!({"lease": lease, "lease_ms": 60000})).await,
        ] {
            assert_error(&reply, 409, "job_not_leased");
            let message = reply.1["error"]["message"].as_str().unwrap();
            assert!(message.contains(&format!("(it is {state})")), "{message}");
        }
    }
    assert_eq!(
        (job(&server, &retried).await, job(&server, &dead).await),
        before,
        "a refused token changed a job"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extend_moves_the_deadline() {
    let server = TestServer::start().await;
    let id = server.enqueue("q", r#"{"payload":1}"#).await;
    let (_, lease, d) = poll_one(&server, "q", json!({})).await;
    assert_eq!(d["lease_expires_at"], at(30_000));

    server.advance(20_000).await;
    // lease_ms is required: a bare heartbeat is refused and changes nothing.
    let before = job(&server, &id).await;
    assert_error(
        &extend(&server, &id, json!({"lease": lease})).await,
        422,
        "invalid_value",
    );
    assert_error(
        &extend(&server, &id, json!({"lease": lease, "lease_ms": null})).await,
        422,
        "invalid_value",
    );
    assert_eq!(job(&server, &id).await, before);
    // The new deadline is now + lease_ms, not the old deadline + lease_ms.
    let reply = extend(&server, &id, json!({"lease": lease, "lease_ms": 30_000})).await;
    assert_eq!(
        reply,
        (200, json!({"id": id, "lease_expires_at": at(50_000)}))
    );
    assert_eq!(job(&server, &id).await["lease_expires_at"], at(50_000));

    server.advance(10_000).await; // the old deadline passes
    let view = job(&server, &id).await;
    assert_eq!(
        view["state"], "leased",
        "expired at the old deadline: {view}"
    );
    assert_eq!(view["attempts"], 1);

    server.advance(19_999).await;
    assert_eq!(server.state_of(&id).await, "leased");
    // Extending can also shorten what is left; the token does not change.
    let reply = extend(&server, &id, json!({"lease": lease, "lease_ms": 100})).await;
    assert_eq!(
        reply,
        (200, json!({"id": id, "lease_expires_at": at(49_999 + 100)}))
    );
    server.advance(99).await;
    assert_eq!(server.state_of(&id).await, "leased");
    server.advance(1).await;
    let view = job(&server, &id).await;
    assert_eq!(view["state"], "scheduled", "{view}");
    assert_eq!(view["attempts"], 1, "one delivery, one failed attempt");
    assert_eq!(view["last_error"], "lease expired");
    assert_error(&ack(&server, &id, &lease).await, 409, "job_not_leased");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nack_retries_with_exponential_backoff_and_records_the_error() {
    let server = TestServer::start().await;
    let id = server.enqueue("q", r#"{"payload":1}"#).await;
    let (_, lease, _) = poll_one(&server, "q", json!({})).await;
    let reply = nack(&server, &id, json!({"lease": lease, "error": "boom 1"})).await;
    assert_eq!(reply, (200, json!({"id": id, "state": "scheduled"})));
    let view = job(&server, &id).await;
    assert_eq!(view["run_at"], at(1_000));
    assert_eq!(view["last_error"], "boom 1");
    assert_eq!(view["attempts"], 1);
    assert_error(
        &nack(&server, &id, json!({"lease": lease})).await,
        409,
        "job_not_leased",
    );

    server.advance(1_000).await;
    let (_, lease, d) = poll_one(&server, "q", json!({})).await;
    assert_eq!(d["attempt"], 2);
    assert_eq!(
        nack(&server, &id, json!({"lease": lease, "error": "boom 2"}))
            .await
            .0,
        200
    );
    let view = job(&server, &id).await;
    assert_eq!(view["run_at"], at(1_000 + 2_000));
    assert_eq!(view["last_error"], "boom 2");

    server.advance(2_000).await;
    let (_, lease, d) = poll_one(&server, "q", json!({})).await;
    assert_eq!(d["attempt"], 3);
    // Without an error text the job still records a failed attempt, and keeps the previous
    // last_error (docs/api.md: "A nack without `error` keeps the previous value").
    assert_eq!(nack(&server, &id, json!({"lease": lease})).await.0, 200);
    let view = job(&server, &id).await;
    assert_eq!(view["run_at"], at(3_000 + 4_000));
    assert_eq!(view["attempts"], 3);
    assert_eq!(view["last_error"], "boom 2");
    // "error": null is the same as leaving it out.
    server.advance(4_000).await;
    let (_, lease, _) = poll_one(&server, "q", json!({})).await;
    assert_eq!(
        nack(&server, &id, json!({"lease": lease, "error": null}))
            .await
            .0,
        200
    );
    assert_eq!(job(&server, &id).await["last_error"], "boom 2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nack_without_error_keeps_null_when_there_was_none() {
    let server = TestServer::start().await;
    let id = server.enqueue("q", r#"{"payload":1}"#).await;
    let (_, lease, _) = poll_one(&server, "q", json!({})).await;
    assert_eq!(
        nack(&server, &id, json!({"lease": lease, "delay_ms": 0}))
            .await
            .0,
        200
    );
    assert_eq!(job(&server, &id).await["last_error"], Value::Null);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nack_with_delay_ms_overrides_the_backoff() {
    let server = TestServer::start().await;
    let id = server.enqueue("q", r#"{"payload":1}"#).await;
    let (_, lease, _) = poll_one(&server, "q", json!({})).await;
    let reply = nack(
        &server,
        &id,
        json!({"lease": lease, "delay_ms": 10_000, "error": "later"}),
    )
    .await;
    assert_eq!(reply, (200, json!({"id": id, "state": "scheduled"})));
    let view = job(&server, &id).await;
    assert_eq!(view["run_at"], at(10_000));
    assert_eq!(view["last_error"], "later");
    server.advance(9_999).await;
    assert!(server.poll("q", 10).await.is_empty());
    server.advance(1).await;
    let (_, lease, d) = poll_one(&server, "q", json!({})).await;
    assert_eq!(d["attempt"], 2);

    // delay_ms 0: ready again at once.
    let reply = nack(&server, &id, json!({"lease": lease, "delay_ms": 0})).await;
    assert_eq!(reply, (200, json!({"id": id, "state": "ready"})));
    let (_, _, d) = poll_one(&server, "q", json!({})).await;
    assert_eq!(d["attempt"], 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nack_with_dead_kills_the_job_whatever_attempts_are_left() {
    let server = TestServer::start().await;
    let id = server.enqueue("q", r#"{"payload":1}"#).await;
    let (_, lease, _) = poll_one(&server, "q", json!({})).await;
    let reply = nack(
        &server,
        &id,
        json!({"lease": lease, "dead": true, "error": "poison pill"}),
    )
    .await;
    assert_eq!(reply, (200, json!({"id": id, "state": "dead"})));
    let view = job(&server, &id).await;
    assert_eq!(view["state"], "dead");
    assert_eq!(view["attempts"], 1);
    assert_eq!(view["max_attempts"], 5);
    assert_eq!(view["last_error"], "poison pill");
    server.advance(600_000).await;
    assert!(server.poll("q", 10).await.is_empty());
    assert_eq!(server.state_of(&id).await, "dead");
    // "dead": false is an ordinary nack.
    let other = server.enqueue("q", r#"{"payload":2}"#).await;
    let (_, lease, _) = poll_one(&server, "q", json!({})).await;
    let reply = nack(&server, &other, json!({"lease": lease, "dead": false})).await;
    assert_eq!(reply, (200, json!({"id": other, "state": "scheduled"})));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lease_ms_of_the_poll_and_of_the_job_are_honoured() {
    let server = TestServer::start().await;
    let a = server
        .enqueue("q", r#"{"payload":"a","lease_ms":5000}"#)
        .await;
    let b = server.enqueue("q", r#"{"payload":"b"}"#).await;
    let c = server
        .enqueue("q", r#"{"payload":"c","lease_ms":5000}"#)
        .await;
    let d = server.enqueue("q", r#"{"payload":"d"}"#).await;

    let (id, _, da) = poll_one(&server, "q", json!({})).await;
    assert_eq!(id, a);
    assert_eq!(da["lease_expires_at"], at(5_000), "the job's lease_ms");
    let (id, _, db) = poll_one(&server, "q", json!({"lease_ms": 2000})).await;
    assert_eq!(id, b);
    assert_eq!(db["lease_expires_at"], at(2_000), "the poll's lease_ms");
    let (id, lease_c, dc) = poll_one(&server, "q", json!({"lease_ms": 1000})).await;
    assert_eq!(id, c);
    assert_eq!(
        dc["lease_expires_at"],
        at(1_000),
        "the poll's lease_ms wins over the job's"
    );
    let (id, _, dd) = poll_one(&server, "q", json!({})).await;
    assert_eq!(id, d);
    assert_eq!(dd["lease_expires_at"], at(30_000), "the queue's default");
    assert_eq!(job(&server, &c).await["lease_expires_at"], at(1_000));

    server.advance(999).await;
    // An extend sets now + its lease_ms, whatever the job's lease_ms.
    let reply = extend(&server, &c, json!({"lease": lease_c, "lease_ms": 5_000})).await;
    assert_eq!(
        reply,
        (200, json!({"id": c, "lease_expires_at": at(999 + 5_000)}))
    );

    server.advance(1_001).await; // T0 + 2000
    assert_eq!(server.state_of(&b).await, "scheduled");
    assert_eq!(server.state_of(&a).await, "leased");
    server.advance(2_999).await; // T0 + 4999
    assert_eq!(server.state_of(&a).await, "leased");
    server.advance(1).await; // T0 + 5000
    assert_eq!(server.state_of(&a).await, "scheduled");
    assert_eq!(server.state_of(&c).await, "leased");
    assert_eq!(server.state_of(&d).await, "leased");
    server.advance(999).await; // T0 + 5999
    assert_eq!(server.state_of(&c).await, "scheduled");
    assert_eq!(server.state_of(&d).await, "leased");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ack_nack_extend_of_a_job_that_is_not_leased_is_409() {
    let server = TestServer::start().await;
    let ready = server.enqueue("q", r#"{"payload":1}"#).await;
    let scheduled = server
        .enqueue("q", r#"{"payload":2,"delay_ms":60000}"#)
        .await;
    let token = "1.0123456789abcdef";
    for id in [&ready, &scheduled] {
        let before = job(&server, id).await;
        assert_error(&ack(&server, id, token).await, 409, "job_not_leased");
        assert_error(
            &nack(&server, id, json!({"lease": token, "dead": true})).await,
            409,
            "job_not_leased",
        );
        assert_error(
            &extend(&server, id, json!({"lease": token, "lease_ms": 1000})).await,
            409,
            "job_not_leased",
        );
        assert_eq!(job(&server, id).await, before);
    }

    // A succeeded job: a second ack (even with its own token) does not replace the result.
    let (id, lease, _) = poll_one(&server, "q", json!({})).await;
    assert_eq!(id, ready);
    let (status, body) = server
        .post(
            &format!("/v1/jobs/{id}/ack"),
            &json!({"lease": lease, "result": {"v": 1}}).to_string(),
        )
        .await;
    assert_eq!(
        (status, body),
        (200, json!({"id": id, "state": "succeeded"}))
    );
    let before = job(&server, &id).await;
    assert_eq!(before["result"], json!({"v": 1}));
    let again = server
        .post(
            &format!("/v1/jobs/{id}/ack"),
            &json!({"lease": lease, "result": {"v": 2}}).to_string(),
        )
        .await;
    assert_error(&again, 409, "job_not_leased");
    assert_error(
        &nack(&server, &id, json!({"lease": lease})).await,
        409,
        "job_not_leased",
    );
    assert_error(
        &extend(&server, &id, json!({"lease": lease, "lease_ms": 1000})).await,
        409,
        "job_not_leased",
    );
    assert_eq!(job(&server, &id).await, before);

    // An unknown id is 404.
    assert_error(&ack(&server, "987654", token).await, 404, "job_not_found");
    assert_error(
        &nack(&server, "987654", json!({"lease": token})).await,
        404,
        "job_not_found",
    );
    assert_error(
        &extend(&server, "987654", json!({"lease": token, "lease_ms": 1000})).await,
        404,
        "job_not_found",
    );
}
