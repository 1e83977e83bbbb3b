//! A real `wharf serve` with a Postgres and a Redis mirror following it is killed with SIGKILL
//! under load. After a restart each relay resumes from the position its mirror stored: the log
//! is contiguous, each mirror applies exactly the events past its stored position (none twice,
//! none skipped), and both end up holding the broker's state.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may unwrap

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::child::{spawn_wharf, try_request};
use common::request;
use common::services::{PgSchema, RedisPrefix, postgres_url, redis_url};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_while_mirrors_follow_resumes_each_from_its_stored_position() {
    let (Some(pg), Some(mut redis)) = (PgSchema::new().await, RedisPrefix::new().await) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        r#"checkpoint_interval_ms = 20

[[mirror]]
name = "pg"
kind = "postgres"
url = "{}"
schema = "{}"
batch = 50
max_backoff_ms = 200

[[mirror]]
name = "redis"
kind = "redis"
url = "{}"
prefix = "{}"
batch = 50
max_backoff_ms = 200
"#,
        postgres_url(),
        pg.schema,
        redis_url(),
        redis.prefix
    );
    std::fs::write(dir.path().join("wharf.toml"), config).unwrap();
    let (mut child, addr, _) = spawn_wharf(dir.path()).await;

    // Load: producers enqueue jobs and outbox messages, a consumer acks with a message each.
    let acked = Arc::new(AtomicU64::new(0));
    let stop_at = Instant::now() + Duration::from_secs(3);
    let mut tasks = Vec::new();
    for producer in 0..2 {
        tasks.push(tokio::spawn(async move {
            for n in 0..5_000 {
                if Instant::now() > stop_at {
                    break;
                }
                let jobs = json!({"jobs": [{"payload": [producer, n]}, {"payload": [producer, n, 1]}]});
                let message = json!({"messages": [{"topic": "t", "key": format!("{producer}-{n}"), "payload": n}]});
                let enqueue = try_request(addr, "POST", "/v1/queues/q/jobs", Some(jobs.to_string()));
                let emit = try_request(addr, "POST", "/v1/outbox", Some(message.to_string()));
                if enqueue.await.is_none() || emit.await.is_none() {
                    break;
                }
            }
        }));
    }
    let consumer_acked = acked.clone();
    tasks.push(tokio::spawn(async move {
        while Instant::now() <= stop_at {
            let Some((200, reply)) =
                try_request(addr, "POST", "/v1/queues/q/poll", Some(r#"{"max":8}"#.into())).await
            else {
                break;
            };
            for job in reply["jobs"].as_array().unwrap() {
                let id = job["id"].as_str().unwrap();
                let ack = json!({"lease": job["lease"], "emit": [{"topic": "acked", "key": id, "payload": null}]});
                match try_request(addr, "POST", &format!("/v1/jobs/{id}/ack"), Some(ack.to_string())).await {
                    Some(_) => {
                        consumer_acked.fetch_add(1, Ordering::Relaxed);
                    }
                    None => return,
                }
            }
        }
    }));

    // Kill once the mirrors have applied a good part of the load, while they follow it.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let positions: Vec<u64> = mirrors(addr)
            .await
            .iter()
            .map(|m| m["position"].as_u64().unwrap())
            .collect();
        if acked.load(Ordering::Relaxed) >= 50 && positions.iter().all(|&p| p >= 300) {
            break;
        }
        assert!(
            Instant::now() < deadline && Instant::now() < stop_at,
            "the load or the mirrors did not get going: {positions:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    for task in tasks {
        task.await.unwrap();
    }
    let pg_stored = pg
        .rows("SELECT seq FROM {s}.mirror_position WHERE mirror = 'pg'")
        .await[0]
        .get::<_, i64>(0) as u64;
    let redis_stored: u64 = redis::cmd("GET")
        .arg(format!("{}position", redis.prefix))
        .query_async(&mut redis.connection)
        .await
        .unwrap();

    let (mut child, addr, _) = spawn_wharf(dir.path()).await;
    // Everything so far durable (a write that waits for its fsync flushes the lease events).
    let (status, _) = request(
        addr,
        "POST",
        "/v1/queues/marker/jobs",
        Some(r#"{"payload":null}"#),
    )
    .await;
    assert_eq!(status, 201);
    let events = all_events(addr).await;
    let head = events.len() as u64;
    for (i, event) in events.iter().enumerate() {
        assert_eq!(
            event["seq"].as_u64(),
            Some(i as u64 + 1),
            "the log has a gap or a repeat"
        );
    }
    assert!(
        pg_stored < head && redis_stored < head,
        "the kill came after the mirrors caught up"
    );

    // Each relay applies exactly the events past its stored position.
    let deadline = Instant::now() + Duration::from_secs(30);
    let caught_up = loop {
        let all = mirrors(addr).await;
        if all
            .iter()
            .all(|m| m["position"] == head && m["state"] == "following")
        {
            break all;
        }
        assert!(
            Instant::now() < deadline,
            "the mirrors did not catch up to {head}: {all:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let applied: HashMap<&str, u64> = caught_up
        .iter()
        .map(|m| {
            (
                m["name"].as_str().unwrap(),
                m["applied_total"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(applied["pg"], head - pg_stored, "{caught_up:?}");
    assert_eq!(applied["redis"], head - redis_stored, "{caught_up:?}");
    assert!(
        caught_up.iter().all(|m| m["dead_total"] == 0),
        "{caught_up:?}"
    );

    // The outbox: one row and one stream entry per message event, none twice.
    let messages: Vec<u64> = events
        .iter()
        .filter(|e| e["type"] == "message")
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    let rows: Vec<u64> = pg
        .rows("SELECT seq FROM {s}.outbox ORDER BY seq")
        .await
        .iter()
        .map(|r| r.get::<_, i64>(0) as u64)
        .collect();
    assert_eq!(rows, messages);
    let stream: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
        .arg(format!("{}outbox", redis.prefix))
        .arg("-")
        .arg("+")
        .query_async(&mut redis.connection)
        .await
        .unwrap();
    let entries: Vec<String> = stream.into_iter().map(|(id, _)| id).collect();
    assert_eq!(
        entries,
        messages
            .iter()
            .map(|s| format!("{s}-0"))
            .collect::<Vec<_>>()
    );

    // The jobs: each mirror holds the broker's state of every job.
    let states: HashMap<i64, String> = pg
        .rows("SELECT id, state FROM {s}.jobs")
        .await
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let last_id = events
        .iter()
        .filter_map(|e| e["job_id"].as_str())
        .map(|id| id.parse::<i64>().unwrap())
        .max()
        .unwrap();
    assert_eq!(states.len() as i64, last_id, "every job is mirrored");
    for id in 1..=last_id {
        let (status, job) = request(addr, "GET", &format!("/v1/jobs/{id}"), None).await;
        assert_eq!(status, 200);
        assert_eq!(job["state"], states[&id], "job {id} in Postgres");
        let state: String = redis::cmd("HGET")
            .arg(format!("{}job:{id}", redis.prefix))
            .arg("state")
            .query_async(&mut redis.connection)
            .await
            .unwrap();
        assert_eq!(job["state"], state, "job {id} in Redis");
    }
    child.kill().unwrap();
    child.wait().unwrap();
    pg.drop_schema().await;
    redis.delete_keys().await;
}

/// `GET /v1/mirrors`' list.
async fn mirrors(addr: SocketAddr) -> Vec<Value> {
    let (status, reply) = request(addr, "GET", "/v1/mirrors", None).await;
    assert_eq!(status, 200, "{reply}");
    reply["mirrors"].as_array().unwrap().clone()
}

/// Every event in the log, read page by page.
async fn all_events(addr: SocketAddr) -> Vec<Value> {
    let mut events = Vec::new();
    let mut after = 0;
    loop {
        let (status, page) = request(
            addr,
            "GET",
            &format!("/v1/events?after={after}&limit=1000"),
            None,
        )
        .await;
        assert_eq!(status, 200, "{page}");
        let got = page["events"].as_array().unwrap();
        if got.is_empty() {
            return events;
        }
        events.extend(got.iter().cloned());
        after = page["next_after"].as_u64().unwrap();
    }
}
