//! Cron schedules on a controllable clock: firing, daylight-saving days in Europe/Berlin,
//! restarts that neither double-fire nor lose a fire, pause/resume/trigger, bad input.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may unwrap

mod common;
use common::{TestServer, assert_error, ms};
use serde_json::Value;

const HOUR: u64 = 3_600_000;

/// The due times (`wharf-due-at` headers) of every job waiting in `queue`, in order.
async fn fired(server: &TestServer, queue: &str) -> Vec<String> {
    let (_, page) = server
        .get(&format!("/v1/queues/{queue}/jobs?state=ready&limit=1000"))
        .await;
    page["jobs"].as_array().map_or_else(Vec::new, |jobs| {
        jobs.iter()
            .map(|j| j["headers"]["wharf-due-at"].as_str().unwrap().to_owned())
            .collect()
    })
}

async fn put(server: &TestServer, name: &str, body: &str) -> (u16, Value) {
    common::request(
        server.addr,
        "PUT",
        &format!("/v1/schedules/{name}"),
        Some(body),
    )
    .await
}

/// Advances the clock hour by hour, letting the timer fire what falls due.
async fn run_hours(server: &TestServer, hours: u64) {
    for _ in 0..hours {
        server.advance(HOUR).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schedule_fires_once_per_due_time_with_its_template() {
    let server = TestServer::start_at(ms("2026-01-01T00:00:00Z")).await;
    let body = r#"{"cron":"0 * * * *","queue":"hourly","job":{"payload":{"k":1},"priority":"high","headers":{"a":"b"}}}"#;
    let (status, schedule) = put(&server, "tick", body).await;
    assert_eq!(status, 201, "{schedule}");
    assert_eq!(schedule["next_fire_at"], "2026-01-01T01:00:00.000Z");
    assert_eq!(schedule["upcoming"].as_array().unwrap().len(), 5);

    server.advance(HOUR - 1).await;
    assert!(
        fired(&server, "hourly").await.is_empty(),
        "not before its time"
    );
    server.advance(1).await;
    assert_eq!(fired(&server, "hourly").await, ["2026-01-01T01:00:00.000Z"]);
    server.advance(0).await;
    assert_eq!(
        fired(&server, "hourly").await.len(),
        1,
        "exactly once per due time"
    );

    let job = &server.poll("hourly", 1).await[0];
    assert_eq!(
        (job["payload"]["k"].as_i64(), job["priority"].as_i64()),
        (Some(1), Some(192))
    );
    assert_eq!(
        (
            job["headers"]["a"].as_str(),
            job["headers"]["wharf-schedule"].as_str()
        ),
        (Some("b"), Some("tick"))
    );
    let (_, schedule) = server.get("/v1/schedules/tick").await;
    assert_eq!(schedule["last_fire_at"], "2026-01-01T01:00:00.000Z");
    assert_eq!(schedule["next_fire_at"], "2026-01-01T02:00:00.000Z");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daylight_saving_days_in_berlin_fire_once() {
    // Spring forward, 2026-03-29: 02:00 CET jumps to 03:00 CEST; 02:30 does not exist that day.
    let server = TestServer::start_at(ms("2026-03-28T12:00:00Z")).await;
    put(
        &server,
        "nightly",
        r#"{"cron":"30 2 * * *","timezone":"Europe/Berlin","queue":"q","job":{"payload":1}}"#,
    )
    .await;
    run_hours(&server, 48).await;
    assert_eq!(
        fired(&server, "q").await,
        ["2026-03-29T01:00:00.000Z", "2026-03-30T00:30:00.000Z"],
        "once on the short day (at 03:00 CEST), then 02:30 CEST"
    );

    // Fall back, 2026-10-25: 03:00 CEST goes back to 02:00 CET; 02:30 happens twice.
    let server = TestServer::start_at(ms("2026-10-24T12:00:00Z")).await;
    put(
        &server,
        "nightly",
        r#"{"cron":"30 2 * * *","timezone":"Europe/Berlin","queue":"q","job":{"payload":1}}"#,
    )
    .await;
    run_hours(&server, 48).await;
    assert_eq!(
        fired(&server, "q").await,
        ["2026-10-25T00:30:00.000Z", "2026-10-26T01:30:00.000Z"],
        "once on the long day (the first 02:30), then 02:30 CET"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_neither_double_fires_nor_loses_a_fire() {
    let server = TestServer::start_at(ms("2026-01-01T00:00:00Z")).await;
    put(
        &server,
        "tick",
        r#"{"cron":"0 * * * *","queue":"q","job":{"payload":1}}"#,
    )
    .await;
    server.advance(HOUR).await;
    assert_eq!(fired(&server, "q").await.len(), 1);

    let server = server.restart().await;
    server.advance(0).await;
    assert_eq!(
        fired(&server, "q").await.len(),
        1,
        "the fire before the restart is not repeated"
    );

    // Down across three due times: catch-up (the default) fires once on start.
    let server = server.restart_after(3 * HOUR + 5).await;
    assert_eq!(
        fired(&server, "q").await,
        ["2026-01-01T01:00:00.000Z", "2026-01-01T02:00:00.000Z"],
        "one fire for everything missed"
    );
    let (_, schedule) = server.get("/v1/schedules/tick").await;
    assert_eq!(schedule["next_fire_at"], "2026-01-01T05:00:00.000Z");
    server.advance(HOUR).await;
    assert_eq!(
        fired(&server, "q").await.len(),
        3,
        "and the schedule goes on"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catch_up_none_skips_fires_missed_while_down() {
    let server = TestServer::start_at(ms("2026-01-01T00:00:00Z")).await;
    put(
        &server,
        "tick",
        r#"{"cron":"0 * * * *","queue":"q","job":{"payload":1},"catch_up":"none"}"#,
    )
    .await;
    let server = server.restart_after(3 * HOUR + 5).await;
    assert!(fired(&server, "q").await.is_empty());
    let (_, schedule) = server.get("/v1/schedules/tick").await;
    assert_eq!(
        (
            schedule["catch_up"].as_str(),
            schedule["next_fire_at"].as_str()
        ),
        (Some("none"), Some("2026-01-01T04:00:00.000Z"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_resume_trigger_replace_and_delete() {
    let server = TestServer::start_at(ms("2026-01-01T00:00:00Z")).await;
    put(
        &server,
        "tick",
        r#"{"cron":"0 * * * *","queue":"q","job":{"payload":1}}"#,
    )
    .await;
    let (status, paused) = server.post("/v1/schedules/tick/pause", "").await;
    assert_eq!(
        (status, paused["paused"].as_bool(), &paused["next_fire_at"]),
        (200, Some(true), &Value::Null)
    );
    run_hours(&server, 2).await;
    assert!(
        fired(&server, "q").await.is_empty(),
        "paused schedules do not fire"
    );
    let (_, resumed) = server.post("/v1/schedules/tick/resume", "").await;
    assert_eq!(
        resumed["next_fire_at"], "2026-01-01T03:00:00.000Z",
        "what fell due while paused is skipped"
    );

    let (status, triggered) = server.post("/v1/schedules/tick/trigger", "").await;
    assert_eq!(status, 201, "{triggered}");
    assert_eq!(
        server.state_of(triggered["id"].as_str().unwrap()).await,
        "ready"
    );
    let (_, schedule) = server.get("/v1/schedules/tick").await;
    assert_eq!(
        schedule["next_fire_at"], "2026-01-01T03:00:00.000Z",
        "a trigger does not move the schedule"
    );

    let (status, replaced) = put(
        &server,
        "tick",
        r#"{"cron":"@daily","queue":"q","job":{"payload":2}}"#,
    )
    .await;
    assert_eq!(
        (status, replaced["next_fire_at"].as_str()),
        (200, Some("2026-01-02T00:00:00.000Z"))
    );
    let (_, list) = server.get("/v1/schedules").await;
    assert_eq!(list["schedules"].as_array().unwrap().len(), 1);

    assert_eq!(server.delete("/v1/schedules/tick").await.0, 200);
    run_hours(&server, 24).await;
    assert_eq!(
        fired(&server, "q").await.len(),
        1,
        "only the trigger's job: deleted schedules do not fire"
    );
    for reply in [
        server.get("/v1/schedules/tick").await,
        server.delete("/v1/schedules/tick").await,
        server.post("/v1/schedules/tick/trigger", "").await,
    ] {
        assert_error(&reply, 404, "schedule_not_found");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_schedules_are_refused_and_change_nothing() {
    let server = TestServer::start().await;
    let cases: [(&str, &str, u16, &str); 12] = [
        (
            "s",
            r#"{"cron":"61 * * * *","queue":"q","job":{"payload":1}}"#,
            422,
            "invalid_schedule",
        ),
        (
            "s",
            r#"{"cron":"0 0 30 2 *","queue":"q","job":{"payload":1}}"#,
            422,
            "invalid_schedule",
        ),
        (
            "s",
            r#"{"cron":"* * * * *","timezone":"Mars/Base","queue":"q","job":{"payload":1}}"#,
            422,
            "invalid_schedule",
        ),
        (
            "s",
            r#"{"cron":"@sometimes","queue":"q","job":{"payload":1}}"#,
            422,
            "invalid_schedule",
        ),
        (
            "s",
            r#"{"cron":"* * * * *","queue":"bad queue","job":{"payload":1}}"#,
            400,
            "invalid_queue_name",
        ),
        (
            "s",
            r#"{"cron":"* * * * *","queue":"q","job":{"payload":1,"delay_ms":5}}"#,
            422,
            "invalid_value",
        ),
        (
            "s",
            r#"{"cron":"* * * * *","queue":"q","job":{"payload":1,"idempotency_key":"k"}}"#,
            422,
            "invalid_value",
        ),
        (
            "s",
            r#"{"cron":"* * * * *","queue":"q","job":{"payload":1},"catch_up":"sometimes"}"#,
            422,
            "invalid_value",
        ),
        (
            "s",
            r#"{"cron":"* * * * *","queue":"q","job":{"payload":1},"cronn":1}"#,
            422,
            "invalid_value",
        ),
        (
            "s",
            r#"{"cron":"* * * * *","queue":"q"}"#,
            422,
            "invalid_value",
        ),
        ("s", "", 400, "empty_body"),
        (
            "bad%20name",
            r#"{"cron":"* * * * *","queue":"q","job":{"payload":1}}"#,
            400,
            "invalid_schedule_name",
        ),
    ];
    for (name, body, status, code) in cases {
        let reply = put(&server, name, body).await;
        assert_error(&reply, status, code);
    }
    let (_, list) = server.get("/v1/schedules").await;
    assert_eq!(list["schedules"], serde_json::json!([]));
    assert_eq!(
        server.get("/v1/queues").await.1["queues"],
        serde_json::json!([])
    );
}
