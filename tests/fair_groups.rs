//! Fair dispatch across job groups: a poll takes turns across the groups that have ready jobs
//! (priority still first), `group_max_in_flight` caps one group's leases, and both survive a
//! restart. Queues that never saw a group keep plain priority-then-FIFO order.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may unwrap
mod common;
use common::{TestServer, assert_error};

use serde_json::{Value, json};

/// Enqueues `count` jobs of `group` (`None`: ungrouped) with payloads `first..`, in batches.
async fn enqueue_many(
    server: &TestServer,
    queue: &str,
    group: Option<&str>,
    first: u64,
    count: u64,
) {
    const BATCH: u64 = 1000;
    let mut at = first;
    while at < first + count {
        let n = BATCH.min(first + count - at);
        let jobs: Vec<Value> = (at..at + n)
            .map(|i| match group {
                Some(g) => json!({"payload": i, "group": g}),
                None => json!({"payload": i}),
            })
            .collect();
        let body = json!({ "jobs": jobs }).to_string();
        let (status, reply) = server
            .post(&format!("/v1/queues/{queue}/jobs"), &body)
            .await;
        assert_eq!(status, 201, "{reply}");
        at += n;
    }
}

/// Polls `n` jobs one poll at a time; returns (group, payload) of each, in delivery order.
async fn deliveries(server: &TestServer, queue: &str, n: usize) -> Vec<(Value, Value)> {
    let mut out = Vec::new();
    for _ in 0..n {
        let jobs = server.poll(queue, 1).await;
        let Some(job) = jobs.first() else { break };
        out.push((job["group"].clone(), job["payload"].clone()));
    }
    out
}

async fn ack(server: &TestServer, job: &Value) {
    let id = job["id"].as_str().unwrap();
    let body = json!({"lease": job["lease"]}).to_string();
    let (status, reply) = server.post(&format!("/v1/jobs/{id}/ack"), &body).await;
    assert_eq!(status, 200, "{reply}");
}

#[tokio::test]
async fn ten_jobs_of_b_behind_100k_of_a_are_all_delivered_within_the_first_20() {
    let server = TestServer::start().await;
    enqueue_many(&server, "q", Some("A"), 0, 100_000).await;
    enqueue_many(&server, "q", Some("B"), 100_000, 10).await;
    let first = deliveries(&server, "q", 20).await;
    let b: Vec<&Value> = first
        .iter()
        .filter(|(group, _)| group == "B")
        .map(|(_, payload)| payload)
        .collect();
    assert_eq!(b.len(), 10, "B's jobs in the first 20: {first:?}");
    // Each group's own jobs still come in FIFO order.
    let b_payloads: Vec<u64> = b.iter().map(|p| p.as_u64().unwrap()).collect();
    assert_eq!(b_payloads, (100_000..100_010).collect::<Vec<_>>());
    let a_payloads: Vec<u64> = first
        .iter()
        .filter(|(group, _)| group == "A")
        .map(|(_, p)| p.as_u64().unwrap())
        .collect();
    assert_eq!(a_payloads, (0..10).collect::<Vec<_>>());
    server.shutdown().await;
}

#[tokio::test]
async fn priority_comes_first_then_groups_take_turns_with_ungrouped_jobs_as_one_more() {
    let server = TestServer::start().await;
    let jobs = json!({"jobs": [
        {"payload": "a1", "group": "a"},
        {"payload": "a2", "group": "a"},
        {"payload": "a3", "group": "a"},
        {"payload": "u1"},
        {"payload": "u2"},
        {"payload": "b1", "group": "b"},
        {"payload": "urgent", "group": "a", "priority": "high"},
    ]});
    let (status, reply) = server.post("/v1/queues/q/jobs", &jobs.to_string()).await;
    assert_eq!(status, 201, "{reply}");
    let order: Vec<Value> = deliveries(&server, "q", 10)
        .await
        .into_iter()
        .map(|(_, p)| p)
        .collect();
    assert_eq!(
        order,
        [
            json!("urgent"),
            json!("u1"),
            json!("b1"),
            // a and the ungrouped jobs have had one turn each: the older group goes first.
            json!("u2"),
            json!("a1"),
            json!("a2"),
            json!("a3")
        ]
    );
    server.shutdown().await;
}

#[tokio::test]
async fn group_max_in_flight_caps_one_groups_leases_and_survives_a_restart() {
    let server = TestServer::start().await;
    let (status, reply) = server
        .patch("/v1/queues/q", r#"{"group_max_in_flight": 2}"#)
        .await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["group_max_in_flight"], 2);
    enqueue_many(&server, "q", Some("a"), 0, 5).await;
    enqueue_many(&server, "q", Some("b"), 5, 1).await;
    enqueue_many(&server, "q", None, 6, 1).await;
    // One poll for everything: two of a, b's one, the ungrouped one (not a group: no cap).
    let jobs = server.poll("q", 10).await;
    let mut got: Vec<u64> = jobs
        .iter()
        .map(|j| j["payload"].as_u64().unwrap())
        .collect();
    got.sort_unstable();
    assert_eq!(got, [0, 1, 5, 6]);
    assert!(server.poll("q", 10).await.is_empty(), "a holds two leases");
    // An ack frees a slot for a; the restart keeps the leases and the cap.
    let of_a = jobs.iter().find(|j| j["group"] == "a").unwrap();
    ack(&server, of_a).await;
    let server = server.restart().await;
    assert_eq!(server.get("/v1/queues/q").await.1["group_max_in_flight"], 2);
    let next = server.poll("q", 10).await;
    assert_eq!(next.len(), 1, "{next:?}");
    assert_eq!(next[0]["payload"], 2);
    assert_eq!(next[0]["group"], "a");
    // null lifts the cap: a's last two come at once.
    let (status, _) = server
        .patch("/v1/queues/q", r#"{"group_max_in_flight": null}"#)
        .await;
    assert_eq!(status, 200);
    let rest: Vec<Value> = server
        .poll("q", 10)
        .await
        .iter()
        .map(|j| j["payload"].clone())
        .collect();
    assert_eq!(rest, [json!(3), json!(4)]);
    server.shutdown().await;
}

#[tokio::test]
async fn the_group_is_kept_with_the_job_and_turns_resume_after_a_restart() {
    let server = TestServer::start().await;
    enqueue_many(&server, "q", Some("a"), 0, 3).await;
    enqueue_many(&server, "q", Some("b"), 3, 3).await;
    let id = server.enqueue("q", r#"{"payload":6,"group":"c"}"#).await;
    assert_eq!(server.get(&format!("/v1/jobs/{id}")).await.1["group"], "c");
    let server = server.restart().await;
    let order: Vec<u64> = deliveries(&server, "q", 7)
        .await
        .into_iter()
        .map(|(_, p)| p.as_u64().unwrap())
        .collect();
    assert_eq!(order, [0, 3, 6, 1, 4, 2, 5]);
    // An ungrouped job reads as group null.
    let id = server.enqueue("plain", r#"{"payload":1}"#).await;
    assert_eq!(
        server.get(&format!("/v1/jobs/{id}")).await.1["group"],
        Value::Null
    );
    server.shutdown().await;
}

#[tokio::test]
async fn bad_groups_and_caps_are_refused_and_change_nothing() {
    let server = TestServer::start().await;
    let long = "g".repeat(129);
    for job in [
        json!({"payload": 1, "group": ""}),
        json!({"payload": 1, "group": long}),
        json!({"payload": 1, "group": "a\u{7}b"}),
        json!({"payload": 1, "group": 5}),
        json!({"payload": 1, "group": {"id": "a"}}),
    ] {
        let reply = server.post("/v1/queues/q/jobs", &job.to_string()).await;
        assert_error(&reply, 422, "invalid_value");
    }
    for cap in [
        json!(0),
        json!(-1),
        json!(1_000_001),
        json!("2"),
        json!(1.5),
    ] {
        let body = json!({ "group_max_in_flight": cap }).to_string();
        let reply = server.patch("/v1/queues/q", &body).await;
        assert_error(&reply, 422, "invalid_value");
    }
    let schedule = json!({"cron": "* * * * *", "queue": "q", "job": {"payload": 1, "group": "a"}});
    let reply = server
        .request_put("/v1/schedules/s", &schedule.to_string())
        .await;
    assert_error(&reply, 422, "invalid_value");
    let (status, queues) = server.get("/v1/queues").await;
    assert_eq!(status, 200);
    assert_eq!(queues["queues"], json!([]), "nothing was created: {queues}");
    // A group of odd but printable characters is fine.
    let id = server
        .enqueue("q", r#"{"payload":1,"group":"customer:42@acme é"}"#)
        .await;
    assert_eq!(
        server.get(&format!("/v1/jobs/{id}")).await.1["group"],
        "customer:42@acme é"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_group_of_weight_3_gets_three_turns_to_another_groups_one() {
    let server = TestServer::start().await;
    let (status, reply) = server
        .patch("/v1/queues/q", r#"{"group_weights": {"A": 3}}"#)
        .await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["group_weights"], json!({"A": 3}));
    enqueue_many(&server, "q", Some("A"), 0, 12).await;
    enqueue_many(&server, "q", Some("B"), 100, 12).await;
    let count = |deliveries: &[(Value, Value)], group: &str| {
        deliveries.iter().filter(|(g, _)| g == group).count()
    };
    let first = deliveries(&server, "q", 12).await;
    assert_eq!(
        (count(&first, "A"), count(&first, "B")),
        (9, 3),
        "{first:?}"
    );
    // Kept across a restart; null makes every group weigh 1 again.
    let server = server.restart().await;
    assert_eq!(
        server.get("/v1/queues/q").await.1["group_weights"],
        json!({"A": 3})
    );
    let (status, reply) = server
        .patch("/v1/queues/q", r#"{"group_weights": null}"#)
        .await;
    assert_eq!((status, &reply["group_weights"]), (200, &json!({})));
    let next = deliveries(&server, "q", 6).await;
    assert_eq!((count(&next, "A"), count(&next, "B")), (3, 3), "{next:?}");
    for bad in [
        json!({"A": 0}),
        json!({"A": 1001}),
        json!({"A": "3"}),
        json!({"": 2}),
        json!({"A": -1}),
        json!([["A", 3]]),
    ] {
        let body = json!({ "group_weights": bad }).to_string();
        let reply = server.patch("/v1/queues/q", &body).await;
        assert_error(&reply, 422, "invalid_value");
    }
    assert_eq!(
        server.get("/v1/queues/q").await.1["group_weights"],
        json!({})
    );
    server.shutdown().await;
}
