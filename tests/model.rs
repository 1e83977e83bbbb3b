//! Model-based property test: random operation sequences run against the broker core and a
//! tiny reference model with the same manual clock; after every step each job's state and
//! attempts, and every queue's counts, must agree. Restarts are among the operations, so the
//! recovery path is checked against the model too, and so are queue deletions (a queue then
//! exists again once something is enqueued into it).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may unwrap

use std::collections::BTreeMap;

use proptest::prelude::*;
use wharf::broker::{
    AckItem, Backoff, Broker, BrokerError, NackRequest, NewJob, PollRequest, QueueConfig, RunAt,
};
use wharf::clock::Clock;
use wharf::config::{Config, Durability};
use wharf::job::{JobId, JobState, LeaseToken};

const QUEUES: [&str; 2] = ["a", "b"];
const PRIORITIES: [u8; 3] = [0, 128, 255];
const MAX_ATTEMPTS: u32 = 3;
const BASE_MS: u64 = 100;
const CAP_MS: u64 = 400;

#[derive(Debug, Clone)]
enum Op {
    Enqueue {
        queue: usize,
        priority: usize,
        delay_ms: Option<u64>,
        key: Option<u8>,
    },
    Poll {
        queue: usize,
        max: usize,
        lease_ms: u64,
    },
    Ack {
        pick: usize,
        stale: bool,
    },
    Nack {
        pick: usize,
        dead: bool,
        delay_ms: Option<u64>,
    },
    Extend {
        pick: usize,
        lease_ms: u64,
    },
    Cancel {
        pick: usize,
    },
    Replay {
        queue: usize,
    },
    DeleteQueue {
        queue: usize,
    },
    Advance {
        ms: u64,
    },
    Restart,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..2usize, 0..3usize, prop::option::of(0..600u64), prop::option::weighted(0.3, 0..3u8))
            .prop_map(|(queue, priority, delay_ms, key)| Op::Enqueue { queue, priority, delay_ms, key }),
        3 => (0..2usize, 1..4usize, 50..500u64).prop_map(|(queue, max, lease_ms)| Op::Poll { queue, max, lease_ms }),
        2 => (any::<usize>(), any::<bool>()).prop_map(|(pick, stale)| Op::Ack { pick, stale }),
        2 => (any::<usize>(), any::<bool>(), prop::option::of(0..300u64)).prop_map(|(pick, dead, delay_ms)| Op::Nack { pick, dead, delay_ms }),
        1 => (any::<usize>(), 50..500u64).prop_map(|(pick, lease_ms)| Op::Extend { pick, lease_ms }),
        1 => any::<usize>().prop_map(|pick| Op::Cancel { pick }),
        1 => (0..2usize).prop_map(|queue| Op::Replay { queue }),
        1 => (0..2usize).prop_map(|queue| Op::DeleteQueue { queue }),
        3 => (0..700u64).prop_map(|ms| Op::Advance { ms }),
        1 => Just(Op::Restart),
    ]
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum MState {
    Queued { run_at: u64 },
    Leased { token: LeaseToken, deadline: u64 },
    Succeeded,
    Dead,
    Cancelled,
}

#[derive(Debug, Clone)]
struct MJob {
    queue: usize,
    priority: u8,
    state: MState,
    attempts: u32,
}

/// The reference model: the documented rules, written as plainly as possible.
#[derive(Default)]
struct Model {
    jobs: BTreeMap<u64, MJob>,
    /// (queue, idempotency key) → the job it created. Windows (24 h) never end in a test run.
    keys: BTreeMap<(usize, u8), u64>,
    /// Jobs deleted with their queue: gone for good.
    deleted: Vec<u64>,
    now: u64,
}

/// The outcome classes compared between broker and model.
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
        Err(other) => panic!("unexpected broker error: {other}"),
    }
}

impl Model {
    fn public(&self, job: &MJob) -> JobState {
        match job.state {
            MState::Queued { run_at } if run_at > self.now => JobState::Scheduled,
            MState::Queued { .. } => JobState::Ready,
            MState::Leased { .. } => JobState::Leased,
            MState::Succeeded => JobState::Succeeded,
            MState::Dead => JobState::Dead,
            MState::Cancelled => JobState::Cancelled,
        }
    }

    fn backoff(attempts: u32) -> u64 {
        (BASE_MS << (attempts - 1).min(20)).min(CAP_MS)
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
        let job = self.jobs.get_mut(&id).unwrap();
        job.state = if dead || job.attempts >= MAX_ATTEMPTS {
            MState::Dead
        } else {
            MState::Queued {
                run_at: now + delay_ms.unwrap_or_else(|| Self::backoff(job.attempts)),
            }
        };
    }

    /// Ids a poll must deliver, in order.
    fn ready(&self, queue: usize, max: usize) -> Vec<u64> {
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
}

struct Harness {
    dir: tempfile::TempDir,
    clock: Clock,
    broker: Option<std::sync::Arc<Broker>>,
    runtime: tokio::runtime::Runtime,
    durability: Durability,
}

fn open(dir: &std::path::Path, clock: &Clock, durability: Durability) -> std::sync::Arc<Broker> {
    let config = Config {
        data_dir: dir.to_path_buf(),
        // Durability must not change the life-cycle rules: the model runs in both modes.
        durability,
        queue_defaults: QueueConfig {
            max_attempts: MAX_ATTEMPTS,
            backoff: Backoff {
                base_ms: BASE_MS,
                cap_ms: CAP_MS,
                jitter: false,
            },
            ..QueueConfig::default()
        },
        ..Config::default()
    };
    let mut options = config.broker_options();
    options.seed = Some(1);
    Broker::open(&options, clock.clone()).unwrap()
}

impl Harness {
    fn new(start: u64, durability: Durability) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let clock = Clock::manual(start);
        let broker = open(dir.path(), &clock, durability);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        Harness {
            dir,
            clock,
            broker: Some(broker),
            runtime,
            durability,
        }
    }

    fn broker(&self) -> &Broker {
        self.broker.as_ref().unwrap()
    }
}

fn run(ops: Vec<Op>, durability: Durability) -> Result<(), TestCaseError> {
    const START: u64 = 1_767_225_600_000;
    let mut h = Harness::new(START, durability);
    let mut model = Model {
        now: START,
        ..Model::default()
    };
    // Every token the broker ever handed out, so stale ones can be replayed.
    let mut deliveries: Vec<(u64, LeaseToken)> = Vec::new();
    let pick = |deliveries: &Vec<(u64, LeaseToken)>, pick: usize| {
        deliveries.get(pick % deliveries.len().max(1)).copied()
    };

    for op in ops {
        match op {
            Op::Enqueue {
                queue,
                priority,
                delay_ms,
                key,
            } => {
                let job = NewJob {
                    payload: "{}".into(),
                    priority: PRIORITIES[priority],
                    run_at: delay_ms.map(|d| RunAt::At(model.now + d)),
                    max_attempts: None,
                    lease_ms: None,
                    headers: Vec::new(),
                    idempotency_key: key.map(|k| format!("key-{k}")),
                    group: None,
                };
                let out = h
                    .runtime
                    .block_on(h.broker().enqueue(QUEUES[queue], vec![job]))
                    .unwrap();
                if let Some(&original) = key.and_then(|k| model.keys.get(&(queue, k))) {
                    prop_assert!(out[0].duplicate, "key {:?} of queue {} reused", key, queue);
                    prop_assert_eq!(out[0].id.0, original);
                    prop_assert_eq!(out[0].state, Some(model.public(&model.jobs[&original])));
                    compare(&h, &model)?;
                    continue;
                }
                prop_assert!(!out[0].duplicate);
                if let Some(k) = key {
                    model.keys.insert((queue, k), out[0].id.0);
                }
                let run_at = model.now + delay_ms.unwrap_or(0);
                model.jobs.insert(
                    out[0].id.0,
                    MJob {
                        queue,
                        priority: PRIORITIES[priority],
                        state: MState::Queued { run_at },
                        attempts: 0,
                    },
                );
            }
            Op::Poll {
                queue,
                max,
                lease_ms,
            } => {
                let expected = model.ready(queue, max);
                let got = h
                    .runtime
                    .block_on(h.broker().poll(
                        QUEUES[queue],
                        PollRequest {
                            max,
                            wait_ms: 0,
                            lease_ms: Some(lease_ms),
                        },
                    ))
                    .unwrap();
                let got_ids: Vec<u64> = got.iter().map(|d| d.id.0).collect();
                prop_assert_eq!(&got_ids, &expected, "poll order");
                for d in got {
                    let job = model.jobs.get_mut(&d.id.0).unwrap();
                    job.attempts += 1;
                    prop_assert_eq!(d.attempt, job.attempts);
                    job.state = MState::Leased {
                        token: d.lease,
                        deadline: model.now + lease_ms,
                    };
                    deliveries.push((d.id.0, d.lease));
                }
            }
            Op::Ack { pick: p, stale } => {
                let Some((id, mut token)) = pick(&deliveries, p) else {
                    continue;
                };
                if stale {
                    token.nonce ^= 1;
                }
                let expected = model.check(id, token);
                let got = classify(
                    h.runtime
                        .block_on(h.broker().ack(AckItem::new(JobId(id), token))),
                );
                prop_assert_eq!(&got, &expected, "ack {}", id);
                if got == Outcome::Ok {
                    model.jobs.get_mut(&id).unwrap().state = MState::Succeeded;
                }
            }
            Op::Nack {
                pick: p,
                dead,
                delay_ms,
            } => {
                let Some((id, token)) = pick(&deliveries, p) else {
                    continue;
                };
                let expected = model.check(id, token);
                let request = NackRequest {
                    error: Some("e".into()),
                    delay_ms,
                    dead,
                    emit: Vec::new(),
                };
                let got = classify(
                    h.runtime
                        .block_on(h.broker().nack(JobId(id), token, request)),
                );
                prop_assert_eq!(&got, &expected, "nack {}", id);
                if got == Outcome::Ok {
                    model.fail(id, delay_ms, dead);
                }
            }
            Op::Extend { pick: p, lease_ms } => {
                let Some((id, token)) = pick(&deliveries, p) else {
                    continue;
                };
                let expected = model.check(id, token);
                let got = h
                    .runtime
                    .block_on(h.broker().extend(JobId(id), token, lease_ms));
                if let Ok(deadline) = got {
                    prop_assert_eq!(deadline, model.now + lease_ms);
                    model.jobs.get_mut(&id).unwrap().state = MState::Leased { token, deadline };
                }
                prop_assert_eq!(classify(got), expected, "extend {}", id);
            }
            Op::Cancel { pick: p } => {
                let ids: Vec<u64> = model.jobs.keys().copied().collect();
                let Some(&id) = ids.get(p % ids.len().max(1)) else {
                    continue;
                };
                let expected = match model.jobs[&id].state {
                    MState::Leased { .. } => Outcome::Leased,
                    MState::Succeeded => Outcome::Finished,
                    _ => Outcome::Ok,
                };
                let got = classify(h.runtime.block_on(h.broker().cancel(JobId(id))));
                prop_assert_eq!(&got, &expected, "cancel {}", id);
                if got == Outcome::Ok {
                    model.jobs.get_mut(&id).unwrap().state = MState::Cancelled;
                }
            }
            Op::Replay { queue } => {
                let mut expected: Vec<u64> = model
                    .jobs
                    .iter()
                    .filter(|(_, j)| j.queue == queue && j.state == MState::Dead)
                    .map(|(&id, _)| id)
                    .collect();
                let got = h.runtime.block_on(h.broker().replay(QUEUES[queue], None));
                if model.jobs.values().all(|j| j.queue != queue) {
                    // A queue exists once anything was enqueued into it, and not before.
                    prop_assert!(
                        matches!(got, Err(BrokerError::QueueNotFound)),
                        "replay of queue {} that was never used: {:?}",
                        QUEUES[queue],
                        got
                    );
                    continue;
                }
                let mut got: Vec<u64> = got.unwrap().into_iter().map(|id| id.0).collect();
                got.sort_unstable();
                expected.sort_unstable();
                prop_assert_eq!(&got, &expected, "replay");
                for id in got {
                    let job = model.jobs.get_mut(&id).unwrap();
                    job.state = MState::Queued { run_at: model.now };
                    job.attempts = 0;
                }
            }
            Op::DeleteQueue { queue } => {
                let got = h.runtime.block_on(h.broker().delete_queue(QUEUES[queue]));
                let ids: Vec<u64> = model
                    .jobs
                    .iter()
                    .filter(|(_, j)| j.queue == queue)
                    .map(|(&id, _)| id)
                    .collect();
                if ids.is_empty() {
                    prop_assert!(
                        matches!(got, Err(BrokerError::QueueNotFound)),
                        "delete of queue {} that holds nothing: {:?}",
                        QUEUES[queue],
                        got
                    );
                    continue;
                }
                prop_assert_eq!(got.unwrap(), ids.len() as u64, "jobs deleted");
                for id in ids {
                    model.jobs.remove(&id);
                    model.deleted.push(id);
                }
                model.keys.retain(|(q, _), _| *q != queue);
            }
            Op::Advance { ms } => {
                h.clock.advance(ms);
                h.runtime.block_on(h.broker().run_due()).unwrap();
                model.advance(ms);
            }
            Op::Restart => {
                let old = h.broker.take().unwrap();
                old.close();
                drop(old);
                h.broker = Some(open(h.dir.path(), &h.clock, h.durability));
            }
        }
        compare(&h, &model)?;
    }
    h.broker().close();
    Ok(())
}

/// Every job's public state and attempts (read from disk), and every queue's counts (from
/// memory), must match the model.
fn compare(h: &Harness, model: &Model) -> Result<(), TestCaseError> {
    for &id in &model.deleted {
        let got = h.runtime.block_on(h.broker().job(JobId(id)));
        prop_assert!(
            matches!(got, Err(BrokerError::JobNotFound)),
            "job {} of a deleted queue: {:?}",
            id,
            got.map(|v| v.state)
        );
    }
    for (&id, job) in &model.jobs {
        let view = h.runtime.block_on(h.broker().job(JobId(id))).unwrap();
        prop_assert_eq!(view.state, model.public(job), "state of job {}", id);
        prop_assert_eq!(view.attempts, job.attempts, "attempts of job {}", id);
    }
    for (q, name) in QUEUES.iter().enumerate() {
        let Ok(view) = h.broker().queue(name) else {
            prop_assert!(
                model.jobs.values().all(|j| j.queue != q),
                "queue {} missing",
                name
            );
            continue;
        };
        let mut expected = [0u64; 6];
        for job in model.jobs.values().filter(|j| j.queue == q) {
            expected[model.public(job).index()] += 1;
        }
        prop_assert_eq!(view.counts, expected, "counts of queue {}", name);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn broker_matches_the_reference_model_in_async_mode(ops in prop::collection::vec(op(), 1..60)) {
        run(ops, Durability::Async)?;
    }

    #[test]
    fn broker_matches_the_reference_model_in_sync_mode(ops in prop::collection::vec(op(), 1..60)) {
        run(ops, Durability::Sync)?;
    }
}
