//! The kill -9 campaign: rounds of mixed load against the real `wharf serve` binary (`sync`
//! mode), each ended by SIGKILL at a random moment, then a restart on the same data directory
//! and a check of everything the clients were told, accumulated over all rounds:
//!
//! - every enqueue answered 201 is there, with its payload; a retry with its idempotency key
//!   answers the same job, never a second one (a keyed enqueue cut off by the kill is retried
//!   so, which settles its outcome);
//! - an ack answered 200 is `succeeded` and its job is never delivered again; a nack to `dead`
//!   answered 200 is `dead`; a cancel answered 200 is `cancelled`;
//! - a schedule `PUT` answered 2xx is there with its cron, a `DELETE` answered 200 is gone
//!   (unless a later request on it was cut off);
//! - every outbox message answered 201 is in the change log, and the log's seqs are contiguous
//!   and increasing across all restarts;
//! - at the end every job still pending is delivered once per payload (a payload under two ids
//!   would be a half-applied or doubled enqueue).
//!
//! A request the kill cut off has an unknown outcome: it may or may not have happened, and
//! either is accepted, but it is whole or absent.
//!
//! `WHARF_KILL9_ROUNDS` (default 5, what CI runs) sets the rounds; `WHARF_KILL9_SEED` replays a
//! campaign (each run prints its seed). The 100-round result is in `docs/reliability.md`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may unwrap

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::child::{spawn_wharf, try_request};
use common::request;
use parking_lot::Mutex;
use serde_json::{Value, json};
use wharf::random::Rng;

const QUEUE: &str = "k9";
const CLIENTS: u64 = 3;

/// What the clients were told, over every round.
#[derive(Debug, Default, Clone)]
struct Ledger {
    /// Acknowledged jobs: id -> payload tag.
    jobs: BTreeMap<String, String>,
    /// Idempotency key -> the job it created, for acknowledged keyed enqueues.
    keys: BTreeMap<String, String>,
    /// Keyed enqueues cut off by a kill: key -> payload tag (settled by a retry with the key).
    keys_unknown: BTreeMap<String, String>,
    acked: BTreeSet<String>,
    /// Acks sent but not answered: succeeded or still pending, never half.
    ack_unknown: BTreeSet<String>,
    dead: BTreeSet<String>,
    cancelled: BTreeSet<String>,
    /// Schedule name -> the cron of its last acknowledged PUT (`None`: acknowledged DELETE).
    schedules: BTreeMap<String, Option<String>>,
    /// Schedules with a request cut off after the last acknowledged one: either state.
    schedules_unknown: BTreeSet<String>,
    /// Topics of acknowledged outbox messages.
    messages: BTreeSet<String>,
    /// Requests cut off by a kill, by kind.
    unknown: BTreeMap<&'static str, u64>,
    /// Requests acknowledged, by kind.
    acknowledged: BTreeMap<&'static str, u64>,
}

impl Ledger {
    fn told(&mut self, kind: &'static str) {
        *self.acknowledged.entry(kind).or_default() += 1;
    }

    fn cut_off(&mut self, kind: &'static str) {
        *self.unknown.entry(kind).or_default() += 1;
    }
}

type Shared = Arc<Mutex<Ledger>>;

/// One request; `None` when the server died under it (the outcome is unknown).
async fn call(addr: SocketAddr, method: &str, path: &str, body: Value) -> Option<(u16, Value)> {
    let body = (!body.is_null()).then(|| body.to_string());
    try_request(addr, method, path, body).await
}

/// One client's mixed load, until the server dies: enqueues (half with idempotency keys, some
/// batches), polls, and for each delivery an extend, then an ack (with a result), a nack to
/// dead, or a plain nack; cancels; schedule PUTs and DELETEs; outbox messages.
async fn client(addr: SocketAddr, round: usize, n: u64, seed: u64, ledger: Shared) {
    let mut rng = Rng::new(seed);
    for i in 0.. {
        let tag = format!("r{round}-c{n}-{i}");
        let step = match rng.next_u64() % 10 {
            0..=3 => enqueue(addr, &tag, &mut rng, &ledger).await,
            4..=6 => consume(addr, &mut rng, &ledger).await,
            7 => cancel(addr, &tag, &ledger).await,
            8 => schedule(addr, n, &tag, &mut rng, &ledger).await,
            _ => emit(addr, &tag, &ledger).await,
        };
        if step.is_none() {
            return;
        }
    }
}

async fn enqueue(addr: SocketAddr, tag: &str, rng: &mut Rng, ledger: &Shared) -> Option<()> {
    let path = format!("/v1/queues/{QUEUE}/jobs");
    if rng.next_u64() % 4 == 0 {
        // A batch of three, all or nothing.
        let tags: Vec<String> = (0..3).map(|k| format!("{tag}-{k}")).collect();
        let jobs: Vec<Value> = tags.iter().map(|t| json!({"payload": t})).collect();
        let Some((status, reply)) = call(addr, "POST", &path, json!({ "jobs": jobs })).await else {
            ledger.lock().cut_off("enqueue batch");
            return None;
        };
        assert_eq!(status, 201, "{reply}");
        let mut ledger = ledger.lock();
        for (job, tag) in reply["jobs"].as_array().unwrap().iter().zip(tags) {
            ledger.jobs.insert(id_of(job), tag);
        }
        ledger.told("enqueue batch");
        return Some(());
    }
    let keyed = rng.next_u64() % 2 == 0;
    let body = if keyed {
        json!({"payload": tag, "idempotency_key": format!("key-{tag}")})
    } else {
        json!({ "payload": tag })
    };
    let Some((status, reply)) = call(addr, "POST", &path, body).await else {
        let mut ledger = ledger.lock();
        if keyed {
            ledger
                .keys_unknown
                .insert(format!("key-{tag}"), tag.to_owned());
        }
        ledger.cut_off("enqueue");
        return None;
    };
    assert_eq!(status, 201, "{reply}");
    let mut ledger = ledger.lock();
    let id = id_of(&reply);
    if keyed {
        ledger.keys.insert(format!("key-{tag}"), id.clone());
    }
    ledger.jobs.insert(id, tag.to_owned());
    ledger.told("enqueue");
    Some(())
}

async fn consume(addr: SocketAddr, rng: &mut Rng, ledger: &Shared) -> Option<()> {
    let path = format!("/v1/queues/{QUEUE}/poll");
    let (status, reply) = call(addr, "POST", &path, json!({"max": 4})).await?;
    assert_eq!(status, 200, "{reply}");
    for job in reply["jobs"].as_array().unwrap() {
        let id = id_of(job);
        let lease = job["lease"].clone();
        let base = format!("/v1/jobs/{id}");
        let extended = call(
            addr,
            "POST",
            &format!("{base}/extend"),
            json!({"lease": lease, "lease_ms": 2000}),
        )
        .await?;
        if extended.0 != 200 {
            continue; // its lease ran out while we held it: someone else may have it now
        }
        match rng.next_u64() % 6 {
            0 => {
                let nack = json!({"lease": lease, "error": "fatal", "dead": true});
                match call(addr, "POST", &format!("{base}/nack"), nack).await {
                    Some((200, _)) => {
                        let mut ledger = ledger.lock();
                        ledger.dead.insert(id);
                        ledger.told("nack dead");
                    }
                    Some(_) => {}
                    None => {
                        ledger.lock().cut_off("nack dead");
                        return None;
                    }
                }
            }
            1 => {
                let nack = json!({"lease": lease, "error": "later", "delay_ms": 1});
                match call(addr, "POST", &format!("{base}/nack"), nack).await {
                    Some((200, _)) => ledger.lock().told("nack"),
                    Some(_) => {}
                    None => {
                        ledger.lock().cut_off("nack");
                        return None;
                    }
                }
            }
            _ => {
                ledger.lock().ack_unknown.insert(id.clone());
                let ack = json!({"lease": lease, "result": {"done": id}});
                match call(addr, "POST", &format!("{base}/ack"), ack).await {
                    Some((200, _)) => {
                        let mut ledger = ledger.lock();
                        ledger.ack_unknown.remove(&id);
                        ledger.acked.insert(id);
                        ledger.told("ack");
                    }
                    Some(_) => {
                        ledger.lock().ack_unknown.remove(&id);
                    }
                    None => {
                        ledger.lock().cut_off("ack");
                        return None;
                    }
                }
            }
        }
    }
    Some(())
}

async fn cancel(addr: SocketAddr, tag: &str, ledger: &Shared) -> Option<()> {
    // A job of its own, delayed so no consumer takes it first, then cancelled.
    let path = format!("/v1/queues/{QUEUE}/jobs");
    let body = json!({"payload": tag, "delay_ms": 3_600_000});
    let Some((status, reply)) = call(addr, "POST", &path, body).await else {
        ledger.lock().cut_off("enqueue");
        return None;
    };
    assert_eq!(status, 201, "{reply}");
    let id = id_of(&reply);
    {
        let mut ledger = ledger.lock();
        ledger.jobs.insert(id.clone(), tag.to_owned());
        ledger.told("enqueue");
    }
    let Some((status, reply)) = call(addr, "DELETE", &format!("/v1/jobs/{id}"), Value::Null).await
    else {
        ledger.lock().cut_off("cancel");
        return None;
    };
    assert_eq!(status, 200, "{reply}");
    let mut ledger = ledger.lock();
    ledger.cancelled.insert(id);
    ledger.told("cancel");
    Some(())
}

async fn schedule(
    addr: SocketAddr,
    client: u64,
    tag: &str,
    rng: &mut Rng,
    ledger: &Shared,
) -> Option<()> {
    // A few names per client (so no two requests on one name race), so that PUTs replace and
    // DELETEs hit existing schedules.
    let name = format!("s{client}-{}", rng.next_u64() % 3);
    let path = format!("/v1/schedules/{name}");
    let (method, body, cron) = if rng.next_u64() % 4 == 0 {
        ("DELETE", Value::Null, None)
    } else {
        // Yearly, on 1 January: it never fires during the campaign.
        let cron = format!("{} 3 1 1 *", rng.next_u64() % 60);
        let body = json!({"cron": cron, "queue": "k9-fires", "job": {"payload": tag}});
        ("PUT", body, Some(cron))
    };
    ledger.lock().schedules_unknown.insert(name.clone());
    let Some((status, reply)) = call(addr, method, &path, body).await else {
        ledger.lock().cut_off("schedule");
        return None;
    };
    let mut ledger = ledger.lock();
    match (method, status) {
        ("PUT", 200 | 201) | ("DELETE", 200) => {
            ledger.schedules_unknown.remove(&name);
            ledger.schedules.insert(name, cron);
            ledger.told("schedule");
        }
        ("DELETE", 404) => {
            ledger.schedules_unknown.remove(&name);
            ledger.schedules.insert(name, None);
        }
        _ => panic!("{method} {path}: {status} {reply}"),
    }
    Some(())
}

async fn emit(addr: SocketAddr, tag: &str, ledger: &Shared) -> Option<()> {
    let body = json!({"messages": [{"topic": format!("t-{tag}"), "payload": {"n": 1}}]});
    let Some((status, reply)) = call(addr, "POST", "/v1/outbox", body).await else {
        ledger.lock().cut_off("outbox");
        return None;
    };
    assert_eq!(status, 201, "{reply}");
    let mut ledger = ledger.lock();
    ledger.messages.insert(format!("t-{tag}"));
    ledger.told("outbox");
    Some(())
}

fn id_of(job: &Value) -> String {
    job["id"].as_str().unwrap().to_owned()
}

/// Checks the restarted broker against the ledger; settles keyed enqueues cut off by a kill.
async fn check(addr: SocketAddr, ledger: &Shared) {
    let told = ledger.lock().clone();
    for (id, tag) in &told.jobs {
        let (status, job) = request(addr, "GET", &format!("/v1/jobs/{id}"), None).await;
        assert_eq!(status, 200, "acknowledged job {id} ({tag}) lost: {job}");
        assert_eq!(job["payload"].as_str(), Some(tag.as_str()), "job {id}");
        let expected = if told.acked.contains(id) {
            Some("succeeded")
        } else if told.dead.contains(id) {
            Some("dead")
        } else if told.cancelled.contains(id) {
            Some("cancelled")
        } else {
            None
        };
        if let Some(expected) = expected {
            assert_eq!(job["state"].as_str(), Some(expected), "job {id}: {job}");
        }
    }
    // A keyed enqueue answered 201 answers the same job again; one cut off is settled now.
    let path = format!("/v1/queues/{QUEUE}/jobs");
    for (key, id) in &told.keys {
        let body = json!({"payload": "retry", "idempotency_key": key}).to_string();
        let (status, reply) = request(addr, "POST", &path, Some(&body)).await;
        assert_eq!(
            (status, id_of(&reply)),
            (200, id.clone()),
            "key {key}: {reply}"
        );
    }
    for (key, tag) in &told.keys_unknown {
        let body = json!({"payload": tag, "idempotency_key": key}).to_string();
        let (status, reply) = request(addr, "POST", &path, Some(&body)).await;
        assert!(status == 200 || status == 201, "key {key}: {reply}");
        let id = id_of(&reply);
        let (_, job) = request(addr, "GET", &format!("/v1/jobs/{id}"), None).await;
        assert_eq!(job["payload"].as_str(), Some(tag.as_str()), "key {key}");
        let mut ledger = ledger.lock();
        ledger.keys_unknown.remove(key);
        ledger.keys.insert(key.clone(), id.clone());
        ledger.jobs.insert(id, tag.clone());
    }
    for (name, cron) in &told.schedules {
        if told.schedules_unknown.contains(name) {
            continue;
        }
        let (status, schedule) = request(addr, "GET", &format!("/v1/schedules/{name}"), None).await;
        match cron {
            Some(cron) => {
                assert_eq!(status, 200, "schedule {name} lost: {schedule}");
                assert_eq!(schedule["cron"].as_str(), Some(cron.as_str()), "{name}");
            }
            None => assert_eq!(status, 404, "deleted schedule {name} is back: {schedule}"),
        }
    }
    let topics = read_change_log(addr).await;
    for topic in &told.messages {
        assert!(topics.contains(topic), "acknowledged message {topic} lost");
    }
}

/// Reads the whole change log, checking its seqs are contiguous; returns the message topics.
async fn read_change_log(addr: SocketAddr) -> BTreeSet<String> {
    let mut topics = BTreeSet::new();
    let mut after: Option<u64> = None;
    loop {
        let path = match after {
            Some(after) => format!("/v1/events?after={after}&limit=1000"),
            None => "/v1/events?limit=1000".to_owned(),
        };
        let (status, page) = request(addr, "GET", &path, None).await;
        assert_eq!(status, 200, "{page}");
        let events = page["events"].as_array().unwrap();
        for event in events {
            let seq = event["seq"].as_u64().unwrap();
            if let Some(previous) = after {
                assert_eq!(seq, previous + 1, "a gap or disorder in the change log");
            }
            after = Some(seq);
            if event["type"] == "message" {
                topics.insert(event["data"]["topic"].as_str().unwrap_or("").to_owned());
            }
        }
        if events.is_empty() || after >= page["head"].as_u64() {
            return topics;
        }
    }
}

/// Drains the queue: nothing acked is delivered again, and each payload has one id. Jobs whose
/// cancel was cut off stay scheduled an hour ahead; everything else pending is ready, leased,
/// or retrying within milliseconds, so the queue is drained once nothing is ready or leased and
/// a 200 ms long-poll finds nothing.
async fn drain(addr: SocketAddr, ledger: &Ledger) {
    let mut delivered: HashMap<String, String> = HashMap::new(); // tag -> id
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(Instant::now() < deadline, "the queue did not drain");
        let poll = json!({"max": 100, "wait_ms": 200, "lease_ms": 60000}).to_string();
        let (_, reply) = request(
            addr,
            "POST",
            &format!("/v1/queues/{QUEUE}/poll"),
            Some(&poll),
        )
        .await;
        let mut acks = Vec::new();
        for job in reply["jobs"].as_array().unwrap() {
            let id = id_of(job);
            assert!(
                !ledger.acked.contains(&id),
                "job {id} acked, then delivered again"
            );
            let tag = job["payload"].as_str().unwrap().to_owned();
            if let Some(other) = delivered.insert(tag.clone(), id.clone()) {
                assert_eq!(other, id, "payload {tag} stored under two ids");
            }
            acks.push(json!({"id": id, "lease": job["lease"]}));
        }
        if acks.is_empty() {
            let (_, queue) = request(addr, "GET", &format!("/v1/queues/{QUEUE}"), None).await;
            let live = queue["counts"]["ready"].as_u64().unwrap()
                + queue["counts"]["leased"].as_u64().unwrap();
            if live == 0 {
                return;
            }
            continue;
        }
        let body = json!({ "acks": acks }).to_string();
        let (status, reply) = request(addr, "POST", "/v1/ack", Some(&body)).await;
        assert_eq!(status, 200, "{reply}");
    }
}

fn write_config(dir: &Path, rng: &mut Rng) -> u64 {
    // Some rounds die among checkpoints, some long after the last one (the journal holds all).
    let checkpoint_ms = [5, 50, 500, 60_000][(rng.next_u64() % 4) as usize];
    let config = format!(
        "durability = \"sync\"\ncheckpoint_interval_ms = {checkpoint_ms}\n\
         [queue_defaults]\nlease_ms = 400\nretention_ms = 3600000\n\
         [queue_defaults.backoff]\nbase_ms = 1\ncap_ms = 20\n"
    );
    std::fs::write(dir.join("wharf.toml"), config).unwrap();
    checkpoint_ms
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_campaign() {
    let rounds: usize = std::env::var("WHARF_KILL9_ROUNDS")
        .ok()
        .map_or(5, |v| v.parse().expect("WHARF_KILL9_ROUNDS is a number"));
    let seed: u64 = std::env::var("WHARF_KILL9_SEED").ok().map_or_else(
        || {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        },
        |v| v.parse().expect("WHARF_KILL9_SEED is a number"),
    );
    println!("kill -9 campaign: {rounds} rounds, WHARF_KILL9_SEED={seed}");
    let mut rng = Rng::new(seed);
    let dir = tempfile::tempdir().unwrap();
    let ledger: Shared = Arc::default();
    let started = Instant::now();
    for round in 0..rounds {
        let checkpoint_ms = write_config(dir.path(), &mut rng);
        let (mut child, addr, _) = spawn_wharf(dir.path()).await;
        check(addr, &ledger).await;
        let tasks: Vec<_> = (0..CLIENTS)
            .map(|n| tokio::spawn(client(addr, round, n, rng.next_u64(), ledger.clone())))
            .collect();
        // The random moment: the kill is the event under test, so a timer is what picks it.
        let delay = 50 + rng.next_u64() % 1200;
        tokio::time::sleep(Duration::from_millis(delay)).await;
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        for task in tasks {
            task.await.unwrap();
        }
        let told: u64 = ledger.lock().acknowledged.values().sum();
        println!(
            "round {round}: killed after {delay} ms (checkpoint_interval_ms {checkpoint_ms}); {told} acknowledged so far"
        );
    }
    let (mut child, addr, _) = spawn_wharf(dir.path()).await;
    check(addr, &ledger).await;
    let mut ledger = Arc::try_unwrap(ledger).unwrap().into_inner();
    // Acks cut off by a kill count as acked from here on, if they took effect.
    for id in std::mem::take(&mut ledger.ack_unknown) {
        let (_, job) = request(addr, "GET", &format!("/v1/jobs/{id}"), None).await;
        if job["state"] == "succeeded" {
            ledger.acked.insert(id);
        }
    }
    drain(addr, &ledger).await;
    child.kill().unwrap();
    child.wait().unwrap();
    println!(
        "kill -9 campaign passed: {rounds} rounds in {:.1} s; acknowledged {:?}; cut off by the kill (unknown outcome) {:?}; {} jobs, {} acked, {} dead, {} cancelled, {} schedules, {} messages checked",
        started.elapsed().as_secs_f64(),
        ledger.acknowledged,
        ledger.unknown,
        ledger.jobs.len(),
        ledger.acked.len(),
        ledger.dead.len(),
        ledger.cancelled.len(),
        ledger.schedules.len(),
        ledger.messages.len(),
    );
}
