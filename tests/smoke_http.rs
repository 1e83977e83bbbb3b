//! The shortest user journey: enqueue, poll, ack, read back.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may unwrap
mod common;
use common::TestServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enqueue_poll_ack_round_trip() {
    let server = TestServer::start().await;
    let id = server.enqueue("q", r#"{"payload":{"n":1}}"#).await;
    let jobs = server.poll("q", 1).await;
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0]["id"], id.as_str());
    assert_eq!(jobs[0]["payload"]["n"], 1);
    let lease = jobs[0]["lease"].as_str().unwrap();
    let (status, body) = server
        .post(
            &format!("/v1/jobs/{id}/ack"),
            &format!(r#"{{"lease":"{lease}","result":[1,2]}}"#),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (_, job) = server.get(&format!("/v1/jobs/{id}")).await;
    assert_eq!(job["state"], "succeeded");
    assert_eq!(job["result"], serde_json::json!([1, 2]));
}
