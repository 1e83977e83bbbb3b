//! `wharf bench` smoke run: a short in-process run completes every cycle without errors and
//! writes the JSON keys scripts rely on. Speed is never asserted here.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may unwrap

use clap::Parser;
use wharf::bench::BenchArgs;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    bench: BenchArgs,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_run_completes_every_cycle_and_writes_its_json() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("report.json");
    let cli = Cli::parse_from(
        [
            "bench",
            "--jobs",
            "600",
            "--producers",
            "2",
            "--consumers",
            "2",
            "--batch",
            "16",
            "--poll-max",
            "32",
            "--ack-batch",
            "8",
            "--priorities",
            "3",
            "--groups",
            "5",
            "--queues",
            "2",
            "--payload-bytes",
            "128",
            "--duration",
            "60",
            "--quiet",
            "--json",
        ]
        .into_iter()
        .map(String::from)
        .chain([json.display().to_string()]),
    );
    let report = wharf::bench::run(cli.bench).await.unwrap();
    assert_eq!(report.enqueued, 600);
    assert_eq!(report.completed, 600);
    assert_eq!(report.errors.total(), 0);

    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert!(written["cycles_per_sec"].as_f64().unwrap() > 0.0);
    assert!(written["enqueued_per_sec"].as_f64().unwrap() > 0.0);
    for op in ["enqueue", "poll", "ack", "end_to_end"] {
        assert!(
            written["latency_ms"][op]["p50"].is_number(),
            "{op}: {written}"
        );
        assert!(
            written["latency_ms"][op]["p99"].is_number(),
            "{op}: {written}"
        );
    }
    assert_eq!(written["latency_ms"]["end_to_end"]["count"], 600);
    assert_eq!(written["settings"]["groups"], 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_job_requests_use_the_single_routes() {
    let cli = Cli::parse_from([
        "bench",
        "--jobs",
        "50",
        "--batch",
        "1",
        "--poll-max",
        "1",
        "--ack-batch",
        "1",
        "--durability",
        "async",
        "--quiet",
    ]);
    let report = wharf::bench::run(cli.bench).await.unwrap();
    assert_eq!((report.completed, report.errors.total()), (50, 0));
    assert_eq!(
        report.latency_ms["ack"].count, 50,
        "one ack request per job"
    );
}

#[tokio::test]
async fn bad_options_are_refused_before_anything_runs() {
    for args in [
        &["bench", "--batch", "0"][..],
        &["bench", "--priorities", "9"],
        &["bench", "--groups", "1000001"],
        &["bench", "--url", "ftp://x"],
    ] {
        let cli = Cli::parse_from(args.iter().copied());
        assert!(wharf::bench::run(cli.bench).await.is_err(), "{args:?}");
    }
}

/// `wharf bench | head -1`: the reader goes away before the table is printed. The run still
/// ends well and writes its JSON report, with no panic about a broken pipe.
#[test]
fn a_closed_stdout_ends_the_run_cleanly_and_the_json_is_still_written() {
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("report.json");
    let mut child = Command::new(env!("CARGO_BIN_EXE_wharf"))
        .args(["bench", "--jobs", "200", "--quiet", "--json"])
        .arg(&json)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Close the reading end before anything is printed.
    drop(child.stdout.take());
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{:?}: {stderr}", output.status);
    assert!(!stderr.contains("panicked"), "{stderr}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["completed"], 200);
}
