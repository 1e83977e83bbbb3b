//! Delivery order (priority, then FIFO), delayed and scheduled jobs, and long-polls.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may unwrap
mod common;
use common::{TestServer, request};

use serde_json::{Value, json};

/// The ids of some deliveries, in order.
fn ids(jobs: &[Value]) -> Vec<String> {
    jobs.iter()
        .map(|j| j["id"].as_str().unwrap().to_owned())
        .collect()
}

/// Polls with an explicit body; asserts 200 and returns the deliveries.
async fn poll_with(server: &TestServer, queue: &str, body: Value) -> Vec<Value> {
    let (status, reply) = server
        .post(&format!("/v1/queues/{queue}/poll"), &body.to_string())
        .await;
    assert_eq!(status, 200, "{reply}");
    reply["jobs"].as_array().unwrap().clone()
}

/// Acks every delivery (so its lease cannot expire and bring it back later).
async fn ack_all(server: &TestServer, jobs: &[Value]) {
    for j in jobs {
        let body = json!({"lease": j["lease"]}).to_string();
        let (status, reply) = server
            .post(
                &format!("/v1/jobs/{}/ack", j["id"].as_str().unwrap()),
                &body,
            )
            .await;
        assert_eq!(status, 200, "{reply}");
    }
}

async fn job(server: &TestServer, id: &str) -> Value {
    let (status, body) = server.get(&format!("/v1/jobs/{id}")).await;
    assert_eq!(status, 200, "{body}");
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn priority_then_fifo_across_numeric_and_named_levels() {
    let server = TestServer::start().await;
    // (name, priority field as JSON or None for the default, expected numeric priority)
    let specs: [(&str, Option<Value>, u64); 11] = [
        ("a", Some(json!("low")), 64),
        ("b", Some(json!(200)), 200),
        ("c", None, 128),
        ("d", Some(json!("critical")), 255),
        ("e", Some(json!(0)), 0),
        ("f", Some(json!("high")), 192),
        ("g", Some(json!(128)), 128),
        ("h", Some(json!(255)), 255),
        ("i", Some(json!("normal")), 128),
        ("j", Some(json!(64)), 64),
        ("k", Some(json!(192)), 192),
    ];
    let mut id_of = std::collections::HashMap::new();
    for (name, priority, expected) in &specs {
        let mut body = json!({"payload": {"name": name}});
        if let Some(p) = priority {
            body["priority"] = p.clone();
        }
        let (status, reply) = server.post("/v1/queues/q/jobs", &body.to_string()).await;
        assert_eq!(status, 201, "{reply}");
        assert_eq!(reply["state"], "ready", "{reply}");
        let id = reply["id"].as_str().unwrap().to_owned();
        assert_eq!(
            job(&server, &id).await["priority"],
            *expected,
            "stored priority of {name}"
        );
        id_of.insert(*name, id);
    }
    let expected: Vec<String> = ["d", "h", "b", "f", "k", "c", "g", "i", "a", "j", "e"]
        .iter()
        .map(|n| id_of[n].clone())
        .collect();

    let first = server.poll("q", 4).await;
    assert_eq!(
        ids(&first),
        expected[..4],
        "first page: priority descending, FIFO within a priority"
    );
    let rest = server.poll("q", 100).await;
    assert_eq!(ids(&rest), expected[4..], "second page continues in order");
    assert!(server.poll("q", 100).await.is_empty());

    // Each delivery carries its numeric priority and payload.
    for delivery in first.iter().chain(&rest) {
        let name = delivery["payload"]["name"].as_str().unwrap();
        let (_, _, want) = specs.iter().find(|(n, _, _)| *n == name).unwrap();
        assert_eq!(delivery["priority"], *want, "{delivery}");
        assert_eq!(delivery["attempt"], 1, "{delivery}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifo_within_a_priority_and_a_later_higher_priority_job_jumps_ahead() {
    let server = TestServer::start().await;
    let mut normal = Vec::new();
    for n in 0..5 {
        normal.push(
            server
                .enqueue("q", &json!({"payload": n}).to_string())
                .await,
        );
    }
    assert_eq!(ids(&server.poll("q", 2).await), normal[..2]);
    let urgent = server
        .enqueue("q", r#"{"payload":"urgent","priority":"high"}"#)
        .await;
    let low = server
        .enqueue("q", r#"{"payload":"later","priority":1}"#)
        .await;
    let next = server.poll("q", 2).await;
    assert_eq!(
        ids(&next),
        [urgent.clone(), normal[2].clone()],
        "the high job goes before older normal ones"
    );
    let last = server.poll("q", 10).await;
    assert_eq!(
        ids(&last),
        [normal[3].clone(), normal[4].clone(), low],
        "the low job goes last"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delay_ms_job_is_not_delivered_before_its_time() {
    let server = TestServer::start().await;
    let (status, reply) = server
        .post(
            "/v1/queues/q/jobs",
            r#"{"payload":"later","delay_ms":5000}"#,
        )
        .await;
    assert_eq!(status, 201, "{reply}");
    assert_eq!(reply["state"], "scheduled", "{reply}");
    let id = reply["id"].as_str().unwrap().to_owned();

    let view = job(&server, &id).await;
    assert_eq!(view["state"], "scheduled");
    assert_eq!(view["run_at"], "2026-01-01T00:00:05.000Z");
    assert!(
        server.poll("q", 10).await.is_empty(),
        "not delivered before run_at"
    );
    let (_, queue) = server.get("/v1/queues/q").await;
    assert_eq!(queue["counts"]["scheduled"], 1, "{queue}");
    assert_eq!(queue["counts"]["ready"], 0, "{queue}");

    server.advance(4_999).await;
    assert!(server.poll("q", 10).await.is_empty(), "1 ms early");
    assert_eq!(server.state_of(&id).await, "scheduled");

    server.advance(1).await;
    assert_eq!(server.state_of(&id).await, "ready");
    let jobs = server.poll("q", 10).await;
    assert_eq!(ids(&jobs), vec![id.clone()]);
    assert_eq!(jobs[0]["payload"], "later");
    assert_eq!(jobs[0]["attempt"], 1);
    assert_eq!(server.state_of(&id).await, "leased");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_at_jobs_are_delivered_at_their_timestamp() {
    let server = TestServer::start().await;
    // One minute after T0, and two minutes after T0 written with a +01:00 offset.
    let (status, reply) = server
        .post(
            "/v1/queues/q/jobs",
            r#"{"payload":1,"run_at":"2026-01-01T00:01:00Z"}"#,
        )
        .await;
    assert_eq!(
        (status, reply["state"].as_str()),
        (201, Some("scheduled")),
        "{reply}"
    );
    let one = reply["id"].as_str().unwrap().to_owned();
    let two = server
        .enqueue("q", r#"{"payload":2,"run_at":"2026-01-01T01:02:00+01:00"}"#)
        .await;
    assert_eq!(
        job(&server, &one).await["run_at"],
        "2026-01-01T00:01:00.000Z"
    );
    assert_eq!(
        job(&server, &two).await["run_at"],
        "2026-01-01T00:02:00.000Z"
    );

    // A run_at in the past is ready at once.
    let (status, reply) = server
        .post(
            "/v1/queues/q/jobs",
            r#"{"payload":0,"run_at":"2025-12-31T23:00:00Z"}"#,
        )
        .await;
    assert_eq!(
        (status, reply["state"].as_str()),
        (201, Some("ready")),
        "{reply}"
    );
    let past = reply["id"].as_str().unwrap().to_owned();
    let delivered = server.poll("q", 10).await;
    assert_eq!(ids(&delivered), [past]);
    ack_all(&server, &delivered).await;

    server.advance(59_999).await;
    assert!(server.poll("q", 10).await.is_empty());
    assert_eq!(server.state_of(&one).await, "scheduled");
    server.advance(1).await;
    let delivered = server.poll("q", 10).await;
    assert_eq!(ids(&delivered), [one]);
    ack_all(&server, &delivered).await;
    assert_eq!(server.state_of(&two).await, "scheduled");
    server.advance(59_999).await;
    assert!(server.poll("q", 10).await.is_empty());
    server.advance(1).await;
    assert_eq!(ids(&server.poll("q", 10).await), [two]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delayed_critical_job_goes_first_once_due() {
    let server = TestServer::start().await;
    let n1 = server.enqueue("q", r#"{"payload":1}"#).await;
    let n2 = server.enqueue("q", r#"{"payload":2}"#).await;
    let critical = server
        .enqueue(
            "q",
            r#"{"payload":3,"priority":"critical","delay_ms":1000}"#,
        )
        .await;
    server.advance(1_000).await;
    assert_eq!(ids(&server.poll("q", 10).await), [critical, n1, n2]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_poll_returns_as_soon_as_a_job_is_enqueued() {
    let server = TestServer::start().await;
    let addr = server.addr;
    let poll = tokio::spawn(async move {
        request(
            addr,
            "POST",
            "/v1/queues/lp/poll",
            Some(r#"{"max":5,"wait_ms":10000}"#),
        )
        .await
    });
    // Nothing to deliver yet: the poll waits (the clock does not move, so only the enqueue
    // can end it).
    server.polls_until(|p| p.waiting == 1).await;
    let id = server.enqueue("lp", r#"{"payload":"wake"}"#).await;
    let (status, body) = poll.await.unwrap();
    assert_eq!(status, 200, "{body}");
    let jobs = body["jobs"].as_array().unwrap();
    assert_eq!(ids(jobs), vec![id.clone()], "{body}");
    assert_eq!(jobs[0]["payload"], "wake");
    assert_eq!(server.state_of(&id).await, "leased");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_poll_is_woken_when_a_scheduled_job_falls_due() {
    let server = TestServer::start().await;
    let id = server
        .enqueue("lp", r#"{"payload":"soon","delay_ms":1000}"#)
        .await;
    let addr = server.addr;
    let poll = tokio::spawn(async move {
        request(
            addr,
            "POST",
            "/v1/queues/lp/poll",
            Some(r#"{"wait_ms":10000}"#),
        )
        .await
    });
    // It looked, found the job not due, and waits.
    server.polls_until(|p| p.waiting == 1).await;
    server.advance(999).await;
    assert_eq!(server.state_of(&id).await, "scheduled");
    server.advance(1).await;
    let (status, body) = poll.await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(ids(body["jobs"].as_array().unwrap()), [id], "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_long_poll_returns_no_jobs_after_its_wait() {
    let server = TestServer::start().await;
    // "sched" exists and holds only a job that is not due; "none" does not exist at all.
    let scheduled = server
        .enqueue("sched", r#"{"payload":1,"delay_ms":60000}"#)
        .await;
    let addr = server.addr;
    let body = json!({"max": 3, "wait_ms": 200}).to_string();
    let polls: Vec<_> = ["sched", "none"]
        .into_iter()
        .map(|queue| {
            let body = body.clone();
            tokio::spawn(async move {
                request(
                    addr,
                    "POST",
                    &format!("/v1/queues/{queue}/poll"),
                    Some(&body),
                )
                .await
            })
        })
        .collect();
    server.polls_until(|p| p.waiting == 2).await;
    // 199 ms in, the "sched" poll still waits: a job that becomes ready now is delivered to it.
    server.advance(199).await;
    let late = server.enqueue("sched", r#"{"payload":2}"#).await;
    // Then the wait of the "none" poll ends, empty.
    server.advance(1).await;
    let mut replies = Vec::new();
    for poll in polls {
        replies.push(poll.await.unwrap());
    }
    assert_eq!(replies[0].0, 200, "{}", replies[0].1);
    assert_eq!(ids(replies[0].1["jobs"].as_array().unwrap()), [late]);
    assert_eq!(replies[1], (200, json!({"jobs": []})));
    assert_eq!(server.state_of(&scheduled).await, "scheduled");
    let (_, queues) = server.get("/v1/queues").await;
    let names: Vec<&str> = queues["queues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["sched"], "a poll does not create a queue");

    // wait_ms 0 (and the default) does not wait: it answers although the clock stands still.
    assert!(
        poll_with(&server, "sched", json!({"max": 1, "wait_ms": 0}))
            .await
            .is_empty()
    );
    assert!(poll_with(&server, "sched", json!({})).await.is_empty());
}

/// On the system clock a long-poll's wait ends by itself, in real time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_the_system_clock_an_empty_long_poll_ends_after_its_wait() {
    let dir = tempfile::tempdir().unwrap();
    let config = common::test_config(dir.path());
    let server = TestServer::start_in(dir, config, wharf::clock::Clock::System).await;
    let started = std::time::Instant::now();
    let jobs = poll_with(&server, "q", json!({"wait_ms": 150})).await;
    assert!(jobs.is_empty());
    let waited = started.elapsed();
    assert!(
        waited >= std::time::Duration::from_millis(150),
        "returned after {waited:?}"
    );
}
