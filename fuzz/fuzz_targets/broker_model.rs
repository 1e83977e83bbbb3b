//! The broker against a reference model (the ideas of `tests/model.rs`, driven by the fuzzer):
//! the input decodes into a sequence of operations (enqueue into one of three queues with a
//! priority, maybe a delay and an idempotency key; poll; ack, nack or extend a lease, current
//! or stale; cancel; replay dead jobs; pause and resume a queue; the retention sweep; clock
//! advances and jumps; restarts, which close the broker cleanly and reopen its directory).
//!
//! After every operation the broker must agree with the model: what each poll delivers
//! (ready jobs of the queue, priority first, then enqueue order; never a finished or cancelled
//! job; the attempt number and lease deadline), the outcome class of every call, every job's
//! state, attempts and times as read from disk, and every queue's counts per state.

#![no_main]

use std::collections::BTreeMap;
use std::sync::Arc;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use wharf::broker::{
    AckItem, Backoff, Broker, BrokerError, NackRequest, NewJob, PollRequest, QueueConfig,
    QueuePatch, RunAt,
};
use wharf::clock::Clock;
use wharf::config::{Config, Durability};
use wharf::job::{JobId, JobState, LeaseToken};

const QUEUES: [&str; 3] = ["a", "b", "c"];
const MAX_ATTEMPTS: u32 = 3;
const BASE_MS: u64 = 100;
const CAP_MS: u64 = 400;
const RETENTION_MS: u64 = 10_000;
const DEAD_RETENTION_MS: u64 = 20_000;
const WINDOW_MS: u64 = 5_000;
/// Most operations one input runs (longer inputs are cut).
const MAX_OPS: usize = 64;
/// Most restarts one input runs (each reopens the store; later ones are skipped).
const MAX_RESTARTS: usize = 4;
/// 2026-01-01T00:00:00Z.
const START: u64 = 1_767_225_600_000;

#[derive(Debug, Arbitrary)]
enum Op {
    Enqueue {
        queue: u8,
        priority: u8,
        delay_ms: Option<u16>,
        key: Option<u8>,
        count: u8,
    },
    Poll {
        queue: u8,
        max: u8,
        lease_ms: u16,
    },
    Ack {
        pick: u8,
        stale: bool,
    },
    Nack {
        pick: u8,
        dead: bool,
        delay_ms: Option<u16>,
    },
    Extend {
        pick: u8,
        lease_ms: u16,
    },
    Cancel {
        pick: u8,
    },
    Replay {
        queue: u8,
    },
    Pause {
        queue: u8,
        paused: bool,
    },
    Sweep,
    Advance {
        ms: u16,
    },
    Jump {
        minutes: u8,
    },
    Restart,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum MState {
    Queued { run_at: u64 },
    Leased { token: LeaseToken, deadline: u64 },
    Succeeded { at: u64 },
    Dead { at: u64 },
    Cancelled { at: u64 },
}

#[derive(Debug, Clone)]
struct MJob {
    queue: usize,
    priority: u8,
    state: MState,
    attempts: u32,
    payload: String,
}

/// The documented rules, as plainly as possible.
#[derive(Default)]
struct Model {
    jobs: BTreeMap<u64, MJob>,
    /// Every id the broker handed out, also of jobs retention deleted since.
    ids: Vec<u64>,
    /// (queue, key) → (the job it created, the end of its window).
    keys: BTreeMap<(usize, u8), (u64, u64)>,
    exists: [bool; 3],
    paused: [bool; 3],
    now: u64,
}

#[derive(Debug, PartialEq)]
enum Outcome {
    Ok,
    NotFound,
    NotLeased,
    Stale,
    Expired,
    Leased,
    Finished,
}

fn classify<T>(result: Result<T, BrokerError>) -> Outcome {
    match result {
        Ok(_) => Outcome::Ok,
        Err(BrokerError::JobNotFound) => Outcome::NotFound,
        Err(BrokerError::NotLeased { .. }) => Outcome::NotLeased,
        Err(BrokerError::StaleLease) => Outcome::Stale,
        Err(BrokerError::LeaseExpired) => Outcome::Expired,
        Err(BrokerError::JobLeased) => Outcome::Leased,
        Err(BrokerError::JobFinished { .. }) => Outcome::Finished,
        Err(other) => panic!("unexpected broker error: {other} ({other:?})"),
    }
}

impl Model {
    fn public(&self, job: &MJob) -> JobState {
        match job.state {
            MState::Queued { run_at } if run_at > self.now => JobState::Scheduled,
            MState::Queued { .. } => JobState::Ready,
            MState::Leased { .. } => JobState::Leased,
            MState::Succeeded { .. } => JobState::Succeeded,
            MState::Dead { .. } => JobState::Dead,
            MState::Cancelled { .. } => JobState::Cancelled,
        }
    }

    fn backoff(attempts: u32) -> u64 {
        (BASE_MS << (attempts.max(1) - 1).min(20)).min(CAP_MS)
    }

    fn check(&self, id: u64, token: LeaseToken) -> Outcome {
        match self.jobs.get(&id).map(|j| j.state) {
            None => Outcome::NotFound,
            Some(MState::Leased {
                token: current,
                deadline,
            }) => {
                if current != token {
                    Outcome::Stale
                } else if deadline <= self.now {
                    Outcome::Expired
                } else {
                    Outcome::Ok
                }
            }
            Some(_) => Outcome::NotLeased,
        }
    }

    fn fail(&mut self, id: u64, delay_ms: Option<u64>, dead: bool) {
        let now = self.now;
        let Some(job) = self.jobs.get_mut(&id) else {
            return;
        };
        job.state = if dead || job.attempts >= MAX_ATTEMPTS {
            MState::Dead { at: now }
        } else {
            MState::Queued {
                run_at: now + delay_ms.unwrap_or_else(|| Self::backoff(job.attempts)),
            }
        };
    }

    /// Ids a poll must deliver, in order.
    fn ready(&self, queue: usize, max: usize) -> Vec<u64> {
        if self.paused[queue] {
            return Vec::new();
        }
        let mut ready: Vec<(u8, u64)> = self
            .jobs
            .iter()
            .filter(|(_, j)| {
                j.queue == queue
                    && matches!(j.state, MState::Queued { run_at } if run_at <= self.now)
            })
            .map(|(&id, j)| (j.priority, id))
            .collect();
        ready.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        ready.into_iter().take(max).map(|(_, id)| id).collect()
    }

    fn advance(&mut self, ms: u64) {
        self.now += ms;
        let expired: Vec<u64> = self
            .jobs
            .iter()
            .filter(
                |(_, j)| matches!(j.state, MState::Leased { deadline, .. } if deadline <= self.now),
            )
            .map(|(&id, _)| id)
            .collect();
        for id in expired {
            self.fail(id, None, false);
        }
    }

    /// The retention sweep: finished and dead jobs past their retention are deleted.
    fn sweep(&mut self) {
        let now = self.now;
        self.jobs.retain(|_, j| match j.state {
            MState::Succeeded { at } | MState::Cancelled { at } => at + RETENTION_MS > now,
            MState::Dead { at } => at + DEAD_RETENTION_MS > now,
            _ => true,
        });
    }
}

fn open(dir: &std::path::Path, clock: &Clock) -> Arc<Broker> {
    let config = Config {
        data_dir: dir.to_path_buf(),
        // Durability does not change the rules; async is fast, and restarts close cleanly,
        // which flushes.
        durability: Durability::Async,
        journal_preallocate_mb: 0,
        cache_mb: 4,
        queue_defaults: QueueConfig {
            max_attempts: MAX_ATTEMPTS,
            backoff: Backoff {
                base_ms: BASE_MS,
                cap_ms: CAP_MS,
                jitter: false,
            },
            retention_ms: RETENTION_MS,
            dead_retention_ms: DEAD_RETENTION_MS,
            idempotency_window_ms: WINDOW_MS,
            ..QueueConfig::default()
        },
        ..Config::default()
    };
    let mut options = config.broker_options();
    options.seed = Some(1);
    match Broker::open(&options, clock.clone()) {
        Ok(broker) => broker,
        Err(error) => panic!("the broker does not (re)open: {error}"),
    }
}

struct Harness {
    runtime: tokio::runtime::Runtime,
    clock: Clock,
    broker: Option<Arc<Broker>>,
    dir: tempfile::TempDir,
}

impl Harness {
    fn broker(&self) -> &Broker {
        match &self.broker {
            Some(broker) => broker,
            None => unreachable!("the broker is open between operations"),
        }
    }

    fn run<T>(&self, future: impl Future<Output = T>) -> T {
        self.runtime.block_on(future)
    }
}

fn runtime() -> tokio::runtime::Runtime {
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => panic!("no tokio runtime: {error}"),
    }
}

fuzz_target!(|ops: Vec<Op>| {
    let dir = wharf_fuzz::temp_dir("wharf-model-");
    let clock = Clock::manual(START);
    let broker = open(dir.path(), &clock);
    let mut h = Harness {
        runtime: runtime(),
        clock,
        broker: Some(broker),
        dir,
    };
    let mut model = Model {
        now: START,
        ..Model::default()
    };
    // Every token the broker handed out, so stale ones can be presented.
    let mut deliveries: Vec<(u64, LeaseToken)> = Vec::new();
    let mut restarts = 0;
    let mut payloads = 0u64;

    for op in ops.into_iter().take(MAX_OPS) {
        match op {
            Op::Enqueue {
                queue,
                priority,
                delay_ms,
                key,
                count,
            } => {
                let queue = usize::from(queue) % QUEUES.len();
                // A key on single enqueues only: a batch carries at most one, on its first job.
                let count = if key.is_some() {
                    1
                } else {
                    usize::from(count % 3) + 1
                };
                let jobs: Vec<NewJob> = (0..count)
                    .map(|i| {
                        payloads += 1;
                        NewJob {
                            payload: format!("{{\"n\":{payloads}}}"),
                            priority,
                            run_at: delay_ms.map(|d| RunAt::After(u64::from(d))),
                            max_attempts: None,
                            lease_ms: None,
                            headers: Vec::new(),
                            idempotency_key: key.filter(|_| i == 0).map(|k| format!("key-{k}")),
                            group: None,
                        }
                    })
                    .collect();
                let sent: Vec<String> = jobs.iter().map(|j| j.payload.clone()).collect();
                let out = match h.run(h.broker().enqueue(QUEUES[queue], jobs)) {
                    Ok(out) => out,
                    Err(error) => panic!("enqueue failed: {error}"),
                };
                assert_eq!(out.len(), count);
                model.exists[queue] = true;
                let live = key.and_then(|k| {
                    model
                        .keys
                        .get(&(queue, k))
                        .filter(|(_, expires_at)| *expires_at > model.now)
                        .map(|&(id, _)| id)
                });
                if let Some(original) = live {
                    assert!(out[0].duplicate, "key {key:?} of queue {queue} reused");
                    assert_eq!(out[0].id.0, original);
                    assert_eq!(
                        out[0].state,
                        model.jobs.get(&original).map(|j| model.public(j)),
                        "state of the original of a duplicate"
                    );
                } else {
                    for (outcome, payload) in out.iter().zip(sent) {
                        assert!(!outcome.duplicate, "a new job reported as a duplicate");
                        let run_at = model.now + delay_ms.map_or(0, u64::from);
                        let job = MJob {
                            queue,
                            priority,
                            state: MState::Queued { run_at },
                            attempts: 0,
                            payload,
                        };
                        assert_eq!(outcome.state, Some(model.public(&job)));
                        assert!(
                            model.ids.last().is_none_or(|&last| outcome.id.0 > last),
                            "ids increase"
                        );
                        model.ids.push(outcome.id.0);
                        model.jobs.insert(outcome.id.0, job);
                    }
                    if let Some(k) = key {
                        model
                            .keys
                            .insert((queue, k), (out[0].id.0, model.now + WINDOW_MS));
                    }
                }
            }
            Op::Poll {
                queue,
                max,
                lease_ms,
            } => {
                let queue = usize::from(queue) % QUEUES.len();
                let max = usize::from(max % 4) + 1;
                let lease_ms = u64::from(lease_ms % 5000) + 1;
                let expected = model.ready(queue, max);
                let request = PollRequest {
                    max,
                    wait_ms: 0,
                    lease_ms: Some(lease_ms),
                };
                let got = match h.run(h.broker().poll(QUEUES[queue], request)) {
                    Ok(got) => got,
                    Err(error) => panic!("poll failed: {error}"),
                };
                let got_ids: Vec<u64> = got.iter().map(|d| d.id.0).collect();
                assert_eq!(got_ids, expected, "poll of queue {queue}");
                for d in got {
                    let now = model.now;
                    let Some(job) = model.jobs.get_mut(&d.id.0) else {
                        unreachable!("the model delivers only its jobs");
                    };
                    job.attempts += 1;
                    assert_eq!(d.attempt, job.attempts, "attempt of job {}", d.id.0);
                    assert_eq!(d.lease.attempt, job.attempts, "the token's attempt");
                    assert_eq!(d.priority, job.priority);
                    assert_eq!(d.queue, QUEUES[queue]);
                    assert_eq!(d.payload, job.payload);
                    assert_eq!(d.lease_expires_at, now + lease_ms);
                    job.state = MState::Leased {
                        token: d.lease,
                        deadline: now + lease_ms,
                    };
                    deliveries.push((d.id.0, d.lease));
                }
            }
            Op::Ack { pick, stale } => {
                let Some(&(id, mut token)) =
                    deliveries.get(usize::from(pick) % deliveries.len().max(1))
                else {
                    continue;
                };
                if stale {
                    token.nonce ^= 1;
                }
                let expected = model.check(id, token);
                let got = classify(h.run(h.broker().ack(AckItem::new(JobId(id), token))));
                assert_eq!(got, expected, "ack of job {id}");
                if got == Outcome::Ok
                    && let Some(job) = model.jobs.get_mut(&id)
                {
                    job.state = MState::Succeeded { at: model.now };
                }
            }
            Op::Nack {
                pick,
                dead,
                delay_ms,
            } => {
                let Some(&(id, token)) =
                    deliveries.get(usize::from(pick) % deliveries.len().max(1))
                else {
                    continue;
                };
                let expected = model.check(id, token);
                let request = NackRequest {
                    error: Some("e".into()),
                    delay_ms: delay_ms.map(u64::from),
                    dead,
                    emit: Vec::new(),
                };
                let got = h.run(h.broker().nack(JobId(id), token, request));
                let state = got.as_ref().ok().copied();
                assert_eq!(classify(got), expected, "nack of job {id}");
                if expected == Outcome::Ok {
                    model.fail(id, delay_ms.map(u64::from), dead);
                    let job = &model.jobs[&id];
                    assert_eq!(state, Some(model.public(job)), "state after a nack");
                }
            }
            Op::Extend { pick, lease_ms } => {
                let Some(&(id, token)) =
                    deliveries.get(usize::from(pick) % deliveries.len().max(1))
                else {
                    continue;
                };
                let lease_ms = u64::from(lease_ms % 5000) + 1;
                let expected = model.check(id, token);
                let got = h.run(h.broker().extend(JobId(id), token, lease_ms));
                if let Ok(deadline) = got {
                    assert_eq!(deadline, model.now + lease_ms);
                    if let Some(job) = model.jobs.get_mut(&id) {
                        job.state = MState::Leased { token, deadline };
                    }
                }
                assert_eq!(classify(got), expected, "extend of job {id}");
            }
            Op::Cancel { pick } => {
                let Some(&id) = model.ids.get(usize::from(pick) % model.ids.len().max(1)) else {
                    continue;
                };
                let expected = match model.jobs.get(&id).map(|j| j.state) {
                    None => Outcome::NotFound,
                    Some(MState::Leased { .. }) => Outcome::Leased,
                    Some(MState::Succeeded { .. }) => Outcome::Finished,
                    Some(_) => Outcome::Ok,
                };
                let got = classify(h.run(h.broker().cancel(JobId(id))));
                assert_eq!(got, expected, "cancel of job {id}");
                if let Some(job) = model.jobs.get_mut(&id)
                    && got == Outcome::Ok
                    && !matches!(job.state, MState::Cancelled { .. })
                {
                    job.state = MState::Cancelled { at: model.now };
                }
            }
            Op::Replay { queue } => {
                let queue = usize::from(queue) % QUEUES.len();
                let mut expected: Vec<u64> = model
                    .jobs
                    .iter()
                    .filter(|(_, j)| j.queue == queue && matches!(j.state, MState::Dead { .. }))
                    .map(|(&id, _)| id)
                    .collect();
                let got = h.run(h.broker().replay(QUEUES[queue], None));
                if !model.exists[queue] {
                    assert!(got.is_err(), "replay in a queue that does not exist");
                    continue;
                }
                let mut got: Vec<u64> = match got {
                    Ok(ids) => ids.into_iter().map(|id| id.0).collect(),
                    Err(error) => panic!("replay failed: {error}"),
                };
                got.sort_unstable();
                expected.sort_unstable();
                assert_eq!(got, expected, "replay of queue {queue}");
                for id in got {
                    if let Some(job) = model.jobs.get_mut(&id) {
                        job.state = MState::Queued { run_at: model.now };
                        job.attempts = 0;
                    }
                }
            }
            Op::Pause { queue, paused } => {
                let queue = usize::from(queue) % QUEUES.len();
                let patch = QueuePatch {
                    paused: Some(paused),
                    ..QueuePatch::default()
                };
                match h.run(h.broker().update_queue(QUEUES[queue], patch)) {
                    Ok(view) => assert_eq!(view.config.paused, paused),
                    Err(error) => panic!("pause failed: {error}"),
                }
                model.exists[queue] = true;
                model.paused[queue] = paused;
            }
            Op::Sweep => {
                if let Err(error) = h.run(h.broker().purge_expired()) {
                    panic!("the retention sweep failed: {error}");
                }
                model.sweep();
            }
            Op::Advance { ms } => advance(&h, &mut model, u64::from(ms)),
            Op::Jump { minutes } => advance(&h, &mut model, u64::from(minutes) * 60_000),
            Op::Restart => {
                if restarts == MAX_RESTARTS {
                    continue;
                }
                restarts += 1;
                if let Some(old) = h.broker.take() {
                    old.close();
                    drop(old);
                }
                h.broker = Some(open(h.dir.path(), &h.clock));
            }
        }
        compare(&h, &model);
    }
    h.broker().close();
});

fn advance(h: &Harness, model: &mut Model, ms: u64) {
    h.clock.advance(ms);
    if let Err(error) = h.run(h.broker().run_due()) {
        panic!("run_due failed: {error}");
    }
    model.advance(ms);
}

/// Every job's public state, attempts and times (read from disk), every deleted job's
/// absence, and every queue's counts (from memory) must match the model.
fn compare(h: &Harness, model: &Model) {
    for &id in &model.ids {
        let got = h.run(h.broker().job(JobId(id)));
        let Some(job) = model.jobs.get(&id) else {
            assert!(
                matches!(got, Err(BrokerError::JobNotFound)),
                "job {id} was deleted by retention but reads {got:?}"
            );
            continue;
        };
        let view = match got {
            Ok(view) => view,
            Err(error) => panic!("job {id} does not read: {error}"),
        };
        assert_eq!(view.state, model.public(job), "state of job {id}");
        assert_eq!(view.attempts, job.attempts, "attempts of job {id}");
        assert_eq!(view.priority, job.priority, "priority of job {id}");
        assert_eq!(view.queue, QUEUES[job.queue], "queue of job {id}");
        match job.state {
            MState::Queued { run_at } => assert_eq!(view.run_at, Some(run_at), "run_at of {id}"),
            MState::Leased { deadline, .. } => {
                assert_eq!(view.lease_expires_at, Some(deadline), "deadline of {id}");
            }
            MState::Succeeded { at } | MState::Dead { at } | MState::Cancelled { at } => {
                assert_eq!(view.finished_at, Some(at), "finished_at of {id}");
            }
        }
    }
    for (q, name) in QUEUES.iter().enumerate() {
        let Ok(view) = h.broker().queue(name) else {
            assert!(!model.exists[q], "queue {name} missing");
            continue;
        };
        assert!(
            model.exists[q],
            "queue {name} exists before anything created it"
        );
        assert_eq!(
            view.config.paused, model.paused[q],
            "paused of queue {name}"
        );
        let mut expected = [0u64; 6];
        for job in model.jobs.values().filter(|j| j.queue == q) {
            expected[model.public(job).index()] += 1;
        }
        assert_eq!(view.counts, expected, "counts of queue {name}");
    }
}
