//! Mirrors against the machine's real Postgres and Redis: they converge to the broker's state,
//! survive a mirror that is down and a broker restart, snapshot when attached late or left
//! behind the trimmed log, and set aside an event the mirror refuses without wedging.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may unwrap
mod common;
use common::keys::{call, create_key};
use common::mirroring::{config_with, converged, pg_mirror, redis_mirror, settled_head};
use common::services::{PgSchema, Proxy, RedisPrefix, postgres_url, redis_url, service_addr, via};
use common::{T0, TestServer};

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{Value, json};
use wharf::clock::Clock;
use wharf::mirror::{MirrorKind, MirrorState, MirrorStatus};

/// What the API says about job `id` (None: 404).
async fn api_job(server: &TestServer, id: u64) -> Option<Value> {
    let (status, job) = server.get(&format!("/v1/jobs/{id}")).await;
    (status == 200).then_some(job)
}

/// The mirror's state matches the API's, or is `scheduled` for a job whose `run_at` has passed
/// since (a delay elapsing is no change, so no event).
fn same_state(api: &str, mirror: &str) -> bool {
    api == mirror || (api == "ready" && mirror == "scheduled")
}

async fn assert_pg_matches(server: &TestServer, pg: &PgSchema, last_id: u64) {
    let rows = pg
        .rows("SELECT id, queue, state, attempts, payload::text, payload_text, result::text, last_error, priority, \"group\" FROM {s}.jobs")
        .await;
    let mirrored: HashMap<i64, tokio_postgres::Row> =
        rows.into_iter().map(|r| (r.get::<_, i64>(0), r)).collect();
    for id in 1..=last_id {
        let api = api_job(server, id).await;
        let row = mirrored.get(&(id as i64));
        match (api, row) {
            (None, None) => {}
            (Some(job), Some(row)) => {
                assert_eq!(row.get::<_, String>(1), job["queue"], "job {id}");
                let state: String = row.get(2);
                assert!(
                    same_state(job["state"].as_str().unwrap(), &state),
                    "job {id}: {state} vs {job}"
                );
                assert_eq!(
                    i64::from(row.get::<_, i32>(3)),
                    job["attempts"].as_i64().unwrap(),
                    "job {id}"
                );
                let payload: Option<String> = row.get(4);
                let payload = payload.or_else(|| row.get(5)).unwrap();
                assert_eq!(
                    serde_json::from_str::<Value>(&payload).unwrap(),
                    job["payload"],
                    "job {id}"
                );
                let result: Option<String> = row.get(6);
                let result: Value =
                    result.map_or(Value::Null, |r| serde_json::from_str(&r).unwrap());
                assert_eq!(result, job["result"], "job {id}");
                let error: Option<String> = row.get(7);
                assert_eq!(json!(error), job["last_error"], "job {id}");
                assert_eq!(
                    i64::from(row.get::<_, i32>(8)),
                    job["priority"].as_i64().unwrap()
                );
                let group: Option<String> = row.get(9);
                assert_eq!(json!(group), job["group"], "job {id}");
            }
            (api, row) => panic!(
                "job {id}: the API says {api:?}, the mirror has {}",
                row.is_some()
            ),
        }
    }
}

async fn assert_redis_matches(server: &TestServer, redis: &mut RedisPrefix, last_id: u64) {
    for id in 1..=last_id {
        let api = api_job(server, id).await;
        let hash: HashMap<String, String> = redis::cmd("HGETALL")
            .arg(format!("{}job:{id}", redis.prefix))
            .query_async(&mut redis.connection)
            .await
            .unwrap();
        match api {
            None => assert!(hash.is_empty(), "job {id} is gone but mirrored: {hash:?}"),
            Some(job) => {
                assert!(
                    same_state(job["state"].as_str().unwrap(), &hash["state"]),
                    "job {id}"
                );
                assert_eq!(hash["attempts"], job["attempts"].to_string(), "job {id}");
                assert_eq!(
                    serde_json::from_str::<Value>(&hash["payload"]).unwrap(),
                    job["payload"]
                );
                let result = hash
                    .get("result")
                    .map_or(Value::Null, |r| serde_json::from_str(r).unwrap());
                assert_eq!(result, job["result"], "job {id}");
                assert_eq!(json!(hash.get("group")), job["group"], "job {id}");
            }
        }
    }
}

/// Enqueues, delivers, acks, nacks, kills, cancels, purges, pauses and emits: a bit of every
/// change. Returns the last job id.
async fn workload(server: &TestServer, queue: &str, round: u64) -> u64 {
    let mut last = 0;
    for n in 0..6 {
        let payload = json!({"round": round, "n": n, "text": "a\u{0}b"});
        // Half of them in job groups, which the mirrors carry too.
        let job = match n % 2 {
            0 => json!({"payload": payload}),
            _ => json!({"payload": payload, "group": format!("g{n}")}),
        };
        let id = server.enqueue(queue, &job.to_string()).await;
        last = id.parse().unwrap();
    }
    let jobs = server.poll(queue, 4).await;
    let lease = |i: usize| jobs[i]["lease"].as_str().unwrap().to_owned();
    let id = |i: usize| jobs[i]["id"].as_str().unwrap().to_owned();
    let ack = json!({"lease": lease(0), "result": {"ok": round}, "emit": [{"topic": "done", "key": id(0), "payload": {"r": round}}]});
    assert_eq!(
        server
            .post(&format!("/v1/jobs/{}/ack", id(0)), &ack.to_string())
            .await
            .0,
        200
    );
    let nack = json!({"lease": lease(1), "error": "boom", "delay_ms": 0});
    assert_eq!(
        server
            .post(&format!("/v1/jobs/{}/nack", id(1)), &nack.to_string())
            .await
            .0,
        200
    );
    let dead = json!({"lease": lease(2), "error": "fatal", "dead": true});
    assert_eq!(
        server
            .post(&format!("/v1/jobs/{}/nack", id(2)), &dead.to_string())
            .await
            .0,
        200
    );
    let pending = server.enqueue(queue, r#"{"payload":"cancel me"}"#).await;
    assert_eq!(server.delete(&format!("/v1/jobs/{pending}")).await.0, 200);
    last = last.max(pending.parse().unwrap());
    assert_eq!(
        server
            .post(&format!("/v1/queues/{queue}/pause"), "")
            .await
            .0,
        200
    );
    assert_eq!(
        server
            .post(&format!("/v1/queues/{queue}/resume"), "")
            .await
            .0,
        200
    );
    let other = format!("{queue}-purged");
    server.enqueue(&other, r#"{"payload":1}"#).await;
    assert_eq!(
        server.delete(&format!("/v1/queues/{other}/jobs")).await.0,
        200
    );
    // A queue deleted with a leased and a ready job in it.
    let deleted = format!("{queue}-deleted");
    server.enqueue(&deleted, r#"{"payload":1}"#).await;
    let gone = server.enqueue(&deleted, r#"{"payload":2}"#).await;
    assert_eq!(server.poll(&deleted, 1).await.len(), 1);
    assert_eq!(server.delete(&format!("/v1/queues/{deleted}")).await.0, 200);
    last.max(gone.parse().unwrap()) + 1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_mirrors_converge_to_the_broker_state() {
    let (Some(pg), Some(mut redis)) = (PgSchema::new().await, RedisPrefix::new().await) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mirrors = vec![
        pg_mirror(&pg.schema, &postgres_url()),
        redis_mirror(&redis.prefix, &redis_url()),
    ];
    let config = config_with(dir.path(), mirrors.clone());
    let server = TestServer::start_in(dir, config, Clock::manual(T0)).await;
    let last = workload(&server, "q", 1).await;
    settled_head(&server).await;
    // The contract: within 1 s of the broker going idle, a healthy mirror holds its state.
    let idle = std::time::Instant::now();
    converged(&server).await;
    assert!(
        idle.elapsed() < Duration::from_secs(1),
        "the mirrors took {:?} to converge",
        idle.elapsed()
    );
    assert_pg_matches(&server, &pg, last).await;
    assert_redis_matches(&server, &mut redis, last).await;
    // The queue's pause and resume, and the message, are mirrored too.
    let queues = pg
        .rows("SELECT paused, settings->>'paused' FROM {s}.queues WHERE name = 'q'")
        .await;
    assert_eq!(
        (queues[0].get::<_, bool>(0), queues[0].get::<_, String>(1)),
        (false, "false".into())
    );
    // A deleted queue leaves no row and no key.
    let names: Vec<String> = pg
        .rows("SELECT name FROM {s}.queues ORDER BY name")
        .await
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(
        names.contains(&"q".to_owned()) && !names.contains(&"q-deleted".to_owned()),
        "{names:?}"
    );
    for (name, exists) in [("q", true), ("q-deleted", false)] {
        let found: bool = redis::cmd("EXISTS")
            .arg(format!("{}queue:{name}", redis.prefix))
            .query_async(&mut redis.connection)
            .await
            .unwrap();
        assert_eq!(found, exists, "redis key of queue {name}");
    }
    let outbox = pg
        .rows("SELECT seq, topic, payload::text FROM {s}.outbox")
        .await;
    assert_eq!(outbox.len(), 1);
    assert_eq!(outbox[0].get::<_, String>(1), "done");
    let stream: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
        .arg(format!("{}outbox", redis.prefix))
        .arg("-")
        .arg("+")
        .query_async(&mut redis.connection)
        .await
        .unwrap();
    assert_eq!(stream.len(), 1);
    assert_eq!(stream[0].0, format!("{}-0", outbox[0].get::<_, i64>(0)));
    // The position is stored with the data, and survives a restart of the broker: the relays
    // resume from it (nothing is applied twice: the outbox would refuse a second row).
    let position = pg.rows("SELECT seq FROM {s}.mirror_position").await[0].get::<_, i64>(0);
    assert_eq!(position as u64, server.broker().events_head());
    let config = config_with(server.dir.path(), mirrors);
    let server = server.restart_with(0, config).await;
    let last = workload(&server, "q", 2).await;
    settled_head(&server).await;
    converged(&server).await;
    assert_pg_matches(&server, &pg, last).await;
    assert_redis_matches(&server, &mut redis, last).await;
    assert_eq!(pg.rows("SELECT seq FROM {s}.outbox").await.len(), 2);
    let (_, mirrors) = server.get("/v1/mirrors").await;
    assert_eq!(mirrors["mirrors"][0]["state"], "following", "{mirrors}");
    assert_eq!(mirrors["mirrors"][0]["lag_events"], 0);
    assert_eq!(mirrors["mirrors"][1]["kind"], "redis");
    let (_, metrics) = server.get("/metrics").await;
    let metrics = metrics.as_str().unwrap().to_owned();
    assert!(
        metrics.contains(&format!("wharf_mirror_up{{mirror=\"{}\"}} 1", "postgres")),
        "{metrics}"
    );
    server.shutdown().await;
    pg.drop_schema().await;
    redis.delete_keys().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mirror_that_is_down_is_retried_and_catches_up() {
    let (Some(pg), Some(redis)) = (PgSchema::new().await, RedisPrefix::new().await) else {
        return;
    };
    let pg_proxy = Proxy::start(service_addr(&postgres_url())).await;
    let redis_proxy = Proxy::start(service_addr(&redis_url())).await;
    let dir = tempfile::tempdir().unwrap();
    let mirrors = vec![
        pg_mirror(&pg.schema, &via(&postgres_url(), pg_proxy.addr)),
        redis_mirror(&redis.prefix, &via(&redis_url(), redis_proxy.addr)),
    ];
    let config = config_with(dir.path(), mirrors);
    let server = TestServer::start_in(dir, config, Clock::manual(T0)).await;
    server.enqueue("q", r#"{"payload":0}"#).await;
    converged(&server).await;
    pg_proxy.down();
    redis_proxy.down();
    // The broker keeps serving while its mirrors are unreachable.
    let last = workload(&server, "q", 1).await;
    let head = settled_head(&server).await;
    for mut status in server.server.as_ref().unwrap().mirrors() {
        let failed = |s: &MirrorStatus| {
            s.errors_total > 0 && !s.up && s.state == MirrorState::Down && s.behind_since.is_some()
        };
        tokio::time::timeout(Duration::from_secs(30), status.wait_for(failed))
            .await
            .expect("the mirror was never seen down")
            .unwrap();
        assert!(status.borrow().position < head);
    }
    // While they are down, their lag grows in time too.
    server.advance(5_000).await;
    let (_, mirrors) = server.get("/v1/mirrors").await;
    for mirror in mirrors["mirrors"].as_array().unwrap() {
        assert_eq!(mirror["state"], "down", "{mirror}");
        assert!(mirror["lag_events"].as_u64().unwrap() > 0, "{mirror}");
        assert!(mirror["lag_ms"].as_u64().unwrap() >= 5_000, "{mirror}");
        assert!(mirror["last_error"].is_string(), "{mirror}");
    }
    pg_proxy.up();
    redis_proxy.up();
    converged(&server).await;
    assert_pg_matches(&server, &pg, last).await;
    let mut redis = redis;
    assert_redis_matches(&server, &mut redis, last).await;
    server.shutdown().await;
    pg.drop_schema().await;
    redis.delete_keys().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_or_trimmed_mirror_gets_a_snapshot_then_follows() {
    let (Some(pg), Some(mut redis)) = (PgSchema::new().await, RedisPrefix::new().await) else {
        return;
    };
    // A broker with data, and a log far shorter than its history.
    let dir = tempfile::tempdir().unwrap();
    let mut config = config_with(dir.path(), Vec::new());
    config.events_max_entries = 5;
    let server = TestServer::start_in(dir, config, Clock::manual(T0)).await;
    let last = workload(&server, "q", 1).await;
    // Attached now: it has no position, and the log no longer holds the start.
    let mut config = config_with(
        server.dir.path(),
        vec![
            pg_mirror(&pg.schema, &postgres_url()),
            redis_mirror(&redis.prefix, &redis_url()),
        ],
    );
    config.events_max_entries = 5;
    let server = server.restart_with(0, config).await;
    settled_head(&server).await;
    converged(&server).await;
    assert_pg_matches(&server, &pg, last).await;
    assert_redis_matches(&server, &mut redis, last).await;
    // Then it follows.
    let last = workload(&server, "q", 2).await;
    settled_head(&server).await;
    converged(&server).await;
    assert_pg_matches(&server, &pg, last).await;
    assert_redis_matches(&server, &mut redis, last).await;
    server.shutdown().await;
    pg.drop_schema().await;
    redis.delete_keys().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_the_mirror_refuses_is_set_aside_and_the_relay_goes_on() {
    let Some(pg) = PgSchema::new().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let config = config_with(dir.path(), vec![pg_mirror(&pg.schema, &postgres_url())]);
    let server = TestServer::start_in(dir, config, Clock::manual(T0)).await;
    // Postgres text cannot hold a NUL character: a topic with one is refused (a payload with
    // one is kept, as JSON text).
    let bad = json!({"messages": [{"topic": "bad\u{0}topic", "payload": 1}]});
    let (status, reply) = server.post("/v1/outbox", &bad.to_string()).await;
    assert_eq!(status, 201, "{reply}");
    let dead_seq = reply["messages"][0]["seq"].as_u64().unwrap();
    let good = json!({"messages": [{"topic": "good", "payload": 2}]});
    server.post("/v1/outbox", &good.to_string()).await;
    settled_head(&server).await;
    converged(&server).await;
    let topics = pg.rows("SELECT topic FROM {s}.outbox").await;
    assert_eq!(
        topics
            .iter()
            .map(|r| r.get::<_, String>(0))
            .collect::<Vec<_>>(),
        ["good"]
    );
    let (_, mirrors) = server.get("/v1/mirrors").await;
    let mirror = &mirrors["mirrors"][0];
    assert_eq!(mirror["dead_total"], 1, "{mirror}");
    assert_eq!(mirror["dead"][0]["seq"], dead_seq);
    assert_eq!(mirror["kind"], MirrorKind::Postgres.as_str());
    server.shutdown().await;
    pg.drop_schema().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mirror_rows_carry_their_tenant() {
    let (Some(pg), Some(mut redis)) = (PgSchema::new().await, RedisPrefix::new().await) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mirrors = vec![
        pg_mirror(&pg.schema, &postgres_url()),
        redis_mirror(&redis.prefix, &redis_url()),
    ];
    let config = config_with(dir.path(), mirrors);
    let server = TestServer::start_in(dir, config, Clock::manual(T0)).await;
    let (_, op) = create_key(&server, None, json!({"tenant": "*", "scopes": ["*"]})).await;
    let (_, acme) = create_key(
        &server,
        Some(&op),
        json!({"tenant": "acme", "scopes": ["*"]}),
    )
    .await;
    for key in [&acme, &op] {
        let job = json!({"payload": 1, "emit": [{"topic": "t", "payload": 2}]}).to_string();
        let reply = call(
            &server,
            Some(key),
            "POST",
            "/v1/queues/emails/jobs",
            Some(&job),
        )
        .await;
        assert_eq!(reply.0, 201, "{}", reply.1);
    }
    converged(&server).await;
    let jobs = pg
        .rows("SELECT id, queue, tenant FROM {s}.jobs ORDER BY id")
        .await;
    let rows: Vec<(String, String)> = jobs.iter().map(|r| (r.get(1), r.get(2))).collect();
    assert_eq!(
        rows,
        [
            ("acme:emails".into(), "acme".into()),
            ("emails".into(), "default".into())
        ]
    );
    let queues = pg
        .rows("SELECT name, tenant FROM {s}.queues ORDER BY name")
        .await;
    let rows: Vec<(String, String)> = queues.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(
        rows,
        [
            ("acme:emails".into(), "acme".into()),
            ("emails".into(), "default".into())
        ]
    );
    let outbox = pg.rows("SELECT tenant FROM {s}.outbox ORDER BY seq").await;
    let tenants: Vec<String> = outbox.iter().map(|r| r.get(0)).collect();
    assert_eq!(tenants, ["acme", "default"]);
    let first: i64 = jobs[0].get(0);
    let hash: HashMap<String, String> = redis::cmd("HGETALL")
        .arg(format!("{}job:{first}", redis.prefix))
        .query_async(&mut redis.connection)
        .await
        .unwrap();
    assert_eq!(
        (hash["queue"].as_str(), hash["tenant"].as_str()),
        ("acme:emails", "acme")
    );
    let queue: HashMap<String, String> = redis::cmd("HGETALL")
        .arg(format!("{}queue:acme:emails", redis.prefix))
        .query_async(&mut redis.connection)
        .await
        .unwrap();
    assert_eq!(queue["tenant"], "acme");
    server.shutdown().await;
    pg.drop_schema().await;
    redis.delete_keys().await;
}
