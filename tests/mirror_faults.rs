//! A Redis mirror meeting what Redis does to a writer in the field: keys of another type under
//! its prefix, and a server out of memory. Redis applies the rest of a transaction when one of
//! its commands fails, so these are where a relay could write an event and then also set it
//! aside, or set aside events it should simply have retried.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may unwrap
mod common;
use common::mirroring::{config_with, converged, redis_mirror, settled_head};
use common::services::{RedisPrefix, RedisServer, redis_url};
use common::{T0, TestServer};

use std::time::Duration;

use redis::aio::MultiplexedConnection;
use serde_json::{Value, json};
use wharf::clock::Clock;
use wharf::mirror::{MirrorState, MirrorStatus};

/// The ids of the entries of stream `key`.
async fn stream_ids(connection: &mut MultiplexedConnection, key: &str) -> Vec<String> {
    let entries: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
        .arg(key)
        .arg("-")
        .arg("+")
        .query_async(connection)
        .await
        .unwrap();
    entries.into_iter().map(|(id, _)| id).collect()
}

/// `GET /v1/mirrors`' only mirror.
async fn the_mirror(server: &TestServer) -> Value {
    let (_, reply) = server.get("/v1/mirrors").await;
    reply["mirrors"][0].clone()
}

/// Polls one job of `queue` and acks it, emitting a message in the same step; returns the
/// message's seq.
async fn ack_with_message(server: &TestServer, queue: &str, id: &str) -> u64 {
    let jobs = server.poll(queue, 1).await;
    assert_eq!(jobs[0]["id"], id);
    let ack = json!({"lease": jobs[0]["lease"], "emit": [{"topic": "done", "payload": 1}]});
    let (status, reply) = server
        .post(&format!("/v1/jobs/{id}/ack"), &ack.to_string())
        .await;
    assert_eq!(status, 200, "{reply}");
    let (_, page) = server.get("/v1/events?types=message&limit=1000").await;
    page["events"].as_array().unwrap().last().unwrap()["seq"]
        .as_u64()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_of_another_type_neither_repeat_nor_lose_a_message() {
    let Some(mut redis) = RedisPrefix::new().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let config = config_with(dir.path(), vec![redis_mirror(&redis.prefix, &redis_url())]);
    let server = TestServer::start_in(dir, config, Clock::manual(T0)).await;
    let clobbered = server.enqueue("q", r#"{"payload":1}"#).await;
    let vanished = server.enqueue("q", r#"{"payload":2}"#).await;
    settled_head(&server).await;
    converged(&server).await;
    let job_key = |id: &str| format!("{}job:{id}", redis.prefix);
    let outbox = format!("{}outbox", redis.prefix);
    // Someone else writes a string where a job's hash was, and deletes another job's hash.
    let () = redis::cmd("SET")
        .arg(job_key(&clobbered))
        .arg("not a hash")
        .query_async(&mut redis.connection)
        .await
        .unwrap();
    let () = redis::cmd("DEL")
        .arg(job_key(&vanished))
        .query_async(&mut redis.connection)
        .await
        .unwrap();
    // Each ack patches a job the mirror no longer holds as a hash, and adds a message, in one
    // transaction.
    let first = ack_with_message(&server, "q", &clobbered).await;
    let second = ack_with_message(&server, "q", &vanished).await;
    settled_head(&server).await;
    converged(&server).await;
    // Both messages are in the stream, once each, and nothing was set aside.
    assert_eq!(
        stream_ids(&mut redis.connection, &outbox).await,
        [format!("{first}-0"), format!("{second}-0")]
    );
    let mirror = the_mirror(&server).await;
    assert_eq!(mirror["dead_total"], 0, "{mirror}");
    // A patch touches only a hash the mirror holds: no stub of the deleted job, and the
    // string is left as it is.
    let exists: u64 = redis::cmd("EXISTS")
        .arg(job_key(&vanished))
        .query_async(&mut redis.connection)
        .await
        .unwrap();
    assert_eq!(
        exists, 0,
        "a patch created a stub of a job the mirror lacks"
    );
    let value: String = redis::cmd("GET")
        .arg(job_key(&clobbered))
        .query_async(&mut redis.connection)
        .await
        .unwrap();
    assert_eq!(value, "not a hash");

    // An outbox key of another type cannot take messages: each one is set aside, before
    // anything of its batch is written, and the rest goes on.
    let () = redis::cmd("SET")
        .arg(&outbox)
        .arg("not a stream")
        .query_async(&mut redis.connection)
        .await
        .unwrap();
    let later = server.enqueue("q", r#"{"payload":3}"#).await;
    let refused = ack_with_message(&server, "q", &later).await;
    settled_head(&server).await;
    converged(&server).await;
    let mirror = the_mirror(&server).await;
    assert_eq!(mirror["dead_total"], 1, "{mirror}");
    assert_eq!(mirror["dead"][0]["seq"], refused, "{mirror}");
    assert!(
        mirror["dead"][0]["error"]
            .as_str()
            .unwrap()
            .contains("not a stream"),
        "{mirror}"
    );
    let state: String = redis::cmd("HGET")
        .arg(job_key(&later))
        .arg("state")
        .query_async(&mut redis.connection)
        .await
        .unwrap();
    assert_eq!(
        state, "succeeded",
        "the ack in the refused message's commit"
    );
    server.shutdown().await;
    redis.delete_keys().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_out_of_memory_is_waited_out_and_nothing_is_set_aside() {
    let Some(redis) = RedisServer::start(&["--maxmemory-policy", "noeviction"]).await else {
        return;
    };
    let mut connection = redis.connect().await;
    let dir = tempfile::tempdir().unwrap();
    let config = config_with(dir.path(), vec![redis_mirror("t:", &redis.url)]);
    let server = TestServer::start_in(dir, config, Clock::manual(T0)).await;
    server.enqueue("q", r#"{"payload":0}"#).await;
    settled_head(&server).await;
    converged(&server).await;
    // Hold 4 MiB, then allow it 2 MiB: from now on Redis refuses every write with OOM.
    let () = redis::cmd("SET")
        .arg("filler")
        .arg(vec![b'x'; 4 << 20])
        .query_async(&mut connection)
        .await
        .unwrap();
    let () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory")
        .arg("2mb")
        .query_async(&mut connection)
        .await
        .unwrap();
    let probe: redis::RedisResult<()> = redis::cmd("HSET")
        .arg("probe")
        .arg("a")
        .arg("b")
        .query_async(&mut connection)
        .await;
    assert!(
        probe.is_err_and(|e| e.to_string().contains("OOM")),
        "the server is not out of memory"
    );
    let mut ids = Vec::new();
    for n in 1..=5 {
        ids.push(
            server
                .enqueue("q", &json!({"payload": n}).to_string())
                .await,
        );
    }
    let message = ack_with_message(&server, "q", "1").await;
    let head = settled_head(&server).await;
    // The relay sees the mirror as down (retrying with backoff), not as refusing the events.
    let mut status = server.server.as_ref().unwrap().mirrors().remove(0);
    let failed = |s: &MirrorStatus| s.state == MirrorState::Down && s.errors_total >= 2;
    tokio::time::timeout(Duration::from_secs(30), status.wait_for(failed))
        .await
        .expect("the relay never saw the mirror fail")
        .unwrap();
    {
        let now = status.borrow();
        assert!(now.position < head, "{now:?}");
        assert_eq!(now.dead_total, 0, "{now:?}");
    }
    // Memory is freed: it catches up, every event applied, none set aside.
    let () = redis::cmd("DEL")
        .arg("filler")
        .query_async(&mut connection)
        .await
        .unwrap();
    converged(&server).await;
    assert_eq!(status.borrow().dead_total, 0, "{:?}", *status.borrow());
    for id in &ids {
        let state: Option<String> = redis::cmd("HGET")
            .arg(format!("t:job:{id}"))
            .arg("state")
            .query_async(&mut connection)
            .await
            .unwrap();
        assert!(state.is_some(), "job {id} is not mirrored");
    }
    assert_eq!(
        stream_ids(&mut connection, "t:outbox").await,
        [format!("{message}-0")]
    );
    server.shutdown().await;
}
