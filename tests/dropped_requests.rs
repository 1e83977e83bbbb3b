//! Requests whose client goes away: an HTTP handler is dropped when its connection closes, and
//! a broker operation must not leave half its work undone because its caller stopped waiting.
//! Each test drops the operation's future after its first poll (its write is submitted by
//! then), the way hyper drops a handler whose client disconnected.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may unwrap
mod common;
use common::{T0, TestServer};

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use wharf::broker::{AckItem, Broker, NewJob, PollRequest};
use wharf::clock::Clock;

/// Polls `future` once and drops it.
async fn poll_once_and_drop<F: std::future::Future>(future: F) {
    let _ = tokio::time::timeout(Duration::ZERO, future).await;
}

/// A broker on a manual clock with its timer and sweeper running.
fn broker(dir: &std::path::Path, clock: &Clock) -> Arc<Broker> {
    let options = common::quiet_config_in(dir).broker_options();
    let broker = Broker::open(&options, clock.clone()).unwrap();
    tokio::spawn(broker.clone().run_timer());
    tokio::spawn(broker.clone().run_sweeper());
    broker
}

fn poll_request(wait_ms: u64) -> PollRequest {
    PollRequest {
        max: 10,
        wait_ms,
        lease_ms: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_enqueue_still_becomes_deliverable() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Clock::manual(T0);
    let broker = broker(dir.path(), &clock);
    poll_once_and_drop(broker.enqueue("q", vec![NewJob::new("1")])).await;
    // The long-poll waits until the job is placed in memory (the clock never moves, so only
    // that can end it).
    let delivered = tokio::time::timeout(
        Duration::from_secs(20),
        broker.poll("q", poll_request(10_000)),
    )
    .await
    .expect("the enqueued job never became deliverable")
    .unwrap();
    assert_eq!(delivered.len(), 1);
    assert_eq!(delivered[0].payload, "1");
    broker.close();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_ack_is_still_purged_when_its_retention_ends() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Clock::manual(T0);
    let broker = broker(dir.path(), &clock);
    let patch = wharf::broker::QueuePatch {
        retention_ms: Some(1_000),
        ..Default::default()
    };
    broker.update_queue("q", patch).await.unwrap();
    let id = broker.enqueue("q", vec![NewJob::new("1")]).await.unwrap()[0].id;
    let lease = broker.poll("q", poll_request(0)).await.unwrap()[0].lease;
    let ack = broker.ack(AckItem::new(id, lease));
    poll_once_and_drop(ack).await;
    // Writes commit in the order they were submitted: once a later one is durable, so is the
    // ack nobody awaited.
    broker
        .enqueue("barrier", vec![NewJob::new("2")])
        .await
        .unwrap();
    assert_eq!(broker.job(id).await.unwrap().state.as_str(), "succeeded");
    // Its retention still reaches the sweeper.
    clock.advance(1_000);
    common::settle(&broker).await;
    assert!(
        broker.job(id).await.is_err(),
        "the job outlived its retention"
    );
    assert_eq!(broker.retention_totals().0, 1);
    broker.close();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_poll_whose_client_leaves_stops_counting_as_waiting() {
    let server = TestServer::start().await;
    let broker = server.broker();
    poll_once_and_drop(broker.poll("q", poll_request(20_000))).await;
    assert_eq!(
        *broker.poll_stats().borrow(),
        wharf::broker::PollStats {
            waiting: 0,
            waits: 1,
        }
    );
    // Over HTTP: a client that closes its connection while its poll waits.
    let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let body = json!({"wait_ms": 20_000}).to_string();
    let request = format!(
        "POST /v1/queues/q/poll HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    tokio::io::AsyncWriteExt::write_all(&mut stream, request.as_bytes())
        .await
        .unwrap();
    server.polls_until(|p| p.waiting == 1).await;
    drop(stream);
    server.polls_until(|p| p.waiting == 0).await;
}
