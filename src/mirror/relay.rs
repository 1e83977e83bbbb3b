//! The relay every mirror runs, and what it reports.
//!
//! It connects, reads the position the mirror stores, and follows the change log from there,
//! applying events in batches (each batch and the new position in one transaction of the
//! mirror). A new mirror replays the log from seq 1 while the log still holds it; one whose
//! position is behind the log's start (trimmed), or ahead of its end (a broker whose data was
//! reset), first gets a snapshot. When the mirror is
//! unreachable the relay retries with capped exponential backoff and full jitter, and the
//! broker never waits for it. A batch the mirror refuses is retried, then applied one event at
//! a time, and an event refused [`TRIES`] times is set aside in the dead list (logged, counted,
//! shown by `GET /v1/mirrors`) so that one bad event never wedges the relay.

use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::change::{self, Change};
use super::{MirrorConfig, MirrorKind, Sink, SinkError};
use crate::broker::{Broker, BrokerError, EventFilter, EventPage, EventQuery, Start};
use crate::clock::Millis;
use crate::random::Rng;

/// Tries of a change the mirror refuses before it goes to the dead list.
const TRIES: u32 = 3;
/// Dead events a status keeps (the count goes on).
const DEAD_KEPT: usize = 100;
/// How long one read of the log waits for new events before it looks again.
const READ_WAIT_MS: u64 = 30_000;
/// The first retry delay after a failure.
const FIRST_BACKOFF_MS: u64 = 100;

/// Where a relay is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MirrorState {
    /// Connecting (or reconnecting).
    Connecting,
    /// Copying a snapshot.
    Snapshotting,
    /// Applying events as they come.
    Following,
    /// Unreachable; waiting before the next try.
    Down,
}

impl MirrorState {
    /// Every state, in the order above.
    pub const ALL: [MirrorState; 4] = [
        MirrorState::Connecting,
        MirrorState::Snapshotting,
        MirrorState::Following,
        MirrorState::Down,
    ];

    /// The name `GET /v1/mirrors` shows.
    pub fn as_str(self) -> &'static str {
        match self {
            MirrorState::Connecting => "connecting",
            MirrorState::Snapshotting => "snapshotting",
            MirrorState::Following => "following",
            MirrorState::Down => "down",
        }
    }
}

/// An event a mirror refused, set aside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadEvent {
    /// Its seq.
    pub seq: u64,
    /// Why.
    pub error: String,
}

/// What a relay reports.
#[derive(Debug, Clone)]
pub struct MirrorStatus {
    /// The mirror's name.
    pub name: String,
    /// Its kind.
    pub kind: MirrorKind,
    /// Where the relay is.
    pub state: MirrorState,
    /// The last event applied (0: none yet).
    pub position: u64,
    /// Whether the last try to reach the mirror worked.
    pub up: bool,
    /// The last error, if any.
    pub last_error: Option<String>,
    /// Events applied since start.
    pub applied_total: u64,
    /// Failed tries (connect, apply, snapshot) since start.
    pub errors_total: u64,
    /// The newest events set aside (at most 100), and how many in all since start.
    pub dead: VecDeque<DeadEvent>,
    /// Events set aside since start.
    pub dead_total: u64,
    /// The time of the oldest event read but not applied yet, while behind.
    pub behind_since: Option<Millis>,
}

impl MirrorStatus {
    /// Events readers can see that the mirror does not hold yet.
    pub fn lag_events(&self, head: u64) -> u64 {
        head.saturating_sub(self.position)
    }

    /// How long the oldest event it has not applied has waited (0 when caught up).
    pub fn lag_ms(&self, head: u64, now: Millis) -> u64 {
        if self.lag_events(head) == 0 {
            return 0;
        }
        self.behind_since
            .map_or(0, |since| now.saturating_sub(since))
    }
}

/// The relays of a server.
#[derive(Default)]
pub struct Relays {
    statuses: Vec<watch::Receiver<MirrorStatus>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Relays {
    /// Starts a relay into `sink`.
    pub fn start<S: Sink>(&mut self, broker: Arc<Broker>, config: &MirrorConfig, sink: S) {
        let (status, receiver) = watch::channel(MirrorStatus {
            name: config.name.clone(),
            kind: config.kind,
            state: MirrorState::Connecting,
            position: 0,
            up: false,
            last_error: None,
            applied_total: 0,
            errors_total: 0,
            dead: VecDeque::new(),
            dead_total: 0,
            behind_since: None,
        });
        let relay = Relay {
            broker,
            batch: config.batch,
            linger: Duration::from_millis(config.linger_ms),
            max_backoff_ms: config.max_backoff_ms,
            status,
            rng: Rng::from_entropy(),
            failures: 0,
            dead_seqs: BTreeSet::new(),
        };
        self.tasks.push(tokio::spawn(relay.run(sink)));
        self.statuses.push(receiver);
    }

    /// Watches of every relay's status (tests wait on them).
    pub fn watch(&self) -> Vec<watch::Receiver<MirrorStatus>> {
        self.statuses.clone()
    }

    /// Waits for the relays to stop (they stop when the broker shuts down), at most `grace`;
    /// a relay still running then is dropped (its mirror keeps its position).
    pub async fn stop(mut self, grace: Duration) {
        // One deadline for all: they stop side by side.
        let deadline = tokio::time::Instant::now() + grace;
        for mut task in std::mem::take(&mut self.tasks) {
            if tokio::time::timeout_at(deadline, &mut task).await.is_err() {
                tracing::warn!("a mirror relay did not stop in time; dropping it");
                task.abort();
            }
        }
    }
}

impl Drop for Relays {
    /// Relays of a server dropped without [`Relays::stop`] stop too, at their next await.
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

struct Relay {
    broker: Arc<Broker>,
    batch: usize,
    linger: Duration,
    max_backoff_ms: u64,
    status: watch::Sender<MirrorStatus>,
    rng: Rng,
    /// Failures in a row, for the backoff.
    failures: u32,
    /// Events past the position already set aside, so that reading them again (after the
    /// mirror was down) does not set them aside twice.
    dead_seqs: BTreeSet<u64>,
}

/// What ended a relay's following.
enum Stop {
    /// The broker shuts down.
    Shutdown,
    /// The mirror failed: wait, then reconnect.
    Failed(String),
}

impl Relay {
    async fn run<S: Sink>(mut self, mut sink: S) {
        loop {
            if self.broker.is_shutting_down() {
                return;
            }
            // A mirror that failed stays `down` while the relay tries it again.
            self.set(|s| {
                if s.state != MirrorState::Down {
                    s.state = MirrorState::Connecting;
                }
            });
            let stop = match sink.connect().await {
                Ok(stored) => {
                    self.set(|s| s.up = true);
                    self.follow(&mut sink, stored).await
                }
                Err(error) => Stop::Failed(error.to_string()),
            };
            match stop {
                Stop::Shutdown => return,
                Stop::Failed(error) => {
                    let name = self.status.borrow().name.clone();
                    tracing::warn!(mirror = %name, %error, "mirror failed; retrying");
                    self.set(|s| {
                        s.state = MirrorState::Down;
                        s.up = false;
                        s.errors_total += 1;
                        s.last_error = Some(error);
                    });
                    self.note_behind().await;
                    if !self.back_off().await {
                        return;
                    }
                }
            }
        }
    }

    /// Snapshots if needed, then applies events as they come, until the mirror fails or the
    /// broker shuts down.
    async fn follow<S: Sink>(&mut self, sink: &mut S, stored: Option<u64>) -> Stop {
        let head = self.broker.events_head();
        let mut position = match stored {
            Some(position) if position <= head => position,
            // A new mirror replays the log from its start, messages and all, while the log
            // still holds it; the first read says when it does not (then: a snapshot).
            None => 0,
            // Ahead of the log: the broker's data was reset.
            Some(_) => match self.snapshot(sink).await {
                Ok(seq) => seq,
                Err(stop) => return stop,
            },
        };
        self.set(|s| {
            s.state = MirrorState::Following;
            s.position = position;
        });
        loop {
            let query = EventQuery {
                start: Start::After(position),
                limit: self.batch,
                wait_ms: READ_WAIT_MS,
                filter: EventFilter::default(),
            };
            let mut page = match self.broker.events(query).await {
                Ok(page) => page,
                Err(BrokerError::EventsTrimmed { .. }) => match self.snapshot(sink).await {
                    Ok(seq) => {
                        position = seq;
                        self.set(|s| {
                            s.state = MirrorState::Following;
                            s.position = seq;
                        });
                        continue;
                    }
                    Err(stop) => return stop,
                },
                Err(_) if self.broker.is_shutting_down() => return Stop::Shutdown,
                Err(error) => return Stop::Failed(format!("reading the change log: {error}")),
            };
            if self.broker.is_shutting_down() {
                return Stop::Shutdown;
            }
            let Some(first) = page.events.first() else {
                continue;
            };
            let since = first.at;
            self.set(|s| s.behind_since = Some(since));
            if page.events.len() < self.batch && !self.linger(&mut page).await {
                return Stop::Shutdown;
            }
            let mut changes = Vec::with_capacity(page.events.len());
            for event in &page.events {
                match change::parse(&event.json) {
                    Ok(parsed) => changes.push(parsed),
                    Err(error) => {
                        self.dead(event.seq, error.to_string());
                        changes.push((event.seq, Change::Nothing));
                    }
                }
            }
            match self.apply(sink, &changes).await {
                Ok(()) => {
                    position = page.next_after;
                    self.set(|s| {
                        s.position = position;
                        s.behind_since = None;
                    });
                }
                Err(error) => return Stop::Failed(error.to_string()),
            }
        }
    }

    /// Waits `linger` for more commits to land and adds what they wrote to a short page, so
    /// that a busy log is applied in fewer and larger transactions, which fold better (a job
    /// enqueued, leased and acked within the wait is written once). Returns `false` if the
    /// broker shuts down meanwhile.
    async fn linger(&mut self, page: &mut EventPage) -> bool {
        if self.linger.is_zero() {
            return true;
        }
        // Real time: a pace of the relay's, no deadline a client sees.
        tokio::select! {
            () = tokio::time::sleep(self.linger) => {}
            () = self.broker.until_shutdown() => return false,
        }
        let query = EventQuery {
            start: Start::After(page.next_after),
            limit: self.batch - page.events.len(),
            wait_ms: 0,
            filter: EventFilter::default(),
        };
        // A failed read here is met again, and handled, by the next one.
        if let Ok(more) = self.broker.events(query).await {
            page.events.extend(more.events);
            page.next_after = more.next_after;
        }
        true
    }

    /// Replaces the mirror's state with a snapshot; returns its seq.
    async fn snapshot<S: Sink>(&mut self, sink: &mut S) -> Result<u64, Stop> {
        self.set(|s| s.state = MirrorState::Snapshotting);
        // Behind at least since the oldest event the log still holds (older ones are gone).
        let oldest = EventQuery {
            start: Start::Oldest,
            limit: 1,
            wait_ms: 0,
            filter: EventFilter::default(),
        };
        if let Ok(page) = self.broker.events(oldest).await
            && let Some(first) = page.events.first()
        {
            let since = first.at;
            self.set(|s| {
                s.behind_since = Some(s.behind_since.map_or(since, |known| known.min(since)));
            });
        }
        let mut snapshot = match self.broker.snapshot().await {
            Ok(snapshot) => snapshot,
            Err(_) if self.broker.is_shutting_down() => return Err(Stop::Shutdown),
            Err(error) => return Err(Stop::Failed(format!("taking a snapshot: {error}"))),
        };
        let name = self.status.borrow().name.clone();
        tracing::info!(mirror = %name, seq = snapshot.seq(), "mirror snapshot");
        match sink.replace(&mut snapshot).await {
            Ok(()) => {
                self.failures = 0;
                self.dead_seqs.clear();
                let seq = snapshot.seq();
                self.set(|s| {
                    s.position = seq;
                    s.behind_since = None;
                    s.up = true;
                });
                Ok(seq)
            }
            Err(error) => Err(Stop::Failed(error.to_string())),
        }
    }

    /// Applies a batch in one transaction. If the mirror refuses it, retries, then applies
    /// its events one by one, setting aside each one it keeps refusing. A mirror that is down
    /// fails the whole call: the batch is applied again after reconnecting.
    async fn apply<S: Sink>(
        &mut self,
        sink: &mut S,
        changes: &[(u64, Change)],
    ) -> Result<(), SinkError> {
        let Some(&(last, _)) = changes.last() else {
            return Ok(());
        };
        let all: Vec<Change> = changes.iter().map(|(_, c)| c.clone()).collect();
        let mut refused = None;
        for _ in 0..TRIES {
            match sink.apply(&all, last).await {
                Ok(()) => {
                    self.applied(last, changes.len());
                    return Ok(());
                }
                Err(SinkError::Rejected(error)) => refused = Some(error),
                Err(down) => return Err(down),
            }
        }
        if changes.len() == 1 {
            let error = refused.unwrap_or_default();
            self.dead(last, error);
            self.set(|s| s.errors_total += 1);
            // Past it, with nothing applied.
            sink.apply(&[], last).await?;
            self.applied(last, 0);
            return Ok(());
        }
        for (seq, change) in changes {
            Box::pin(self.apply(sink, &[(*seq, change.clone())])).await?;
        }
        Ok(())
    }

    /// Notes that the mirror holds everything up to `position` (`count` more events).
    fn applied(&mut self, position: u64, count: usize) {
        self.failures = 0;
        self.dead_seqs = self.dead_seqs.split_off(&position.saturating_add(1));
        self.set(|s| {
            s.position = position;
            s.applied_total += count as u64;
            s.up = true;
        });
    }

    /// Sets event `seq` aside (once, however often it is read).
    fn dead(&mut self, seq: u64, error: String) {
        if !self.dead_seqs.insert(seq) {
            return;
        }
        let name = self.status.borrow().name.clone();
        tracing::error!(mirror = %name, seq, %error, "the mirror refused an event; set aside");
        self.set(|s| {
            s.dead_total += 1;
            s.dead.push_back(DeadEvent { seq, error });
            if s.dead.len() > DEAD_KEPT {
                s.dead.pop_front();
            }
        });
    }

    /// Notes when the oldest event the mirror lacks was written, so that the lag in time
    /// grows while the mirror is down.
    async fn note_behind(&mut self) {
        let (position, known) = {
            let status = self.status.borrow();
            (status.position, status.behind_since.is_some())
        };
        if known {
            return;
        }
        let query = EventQuery {
            start: Start::After(position),
            limit: 1,
            wait_ms: 0,
            filter: EventFilter::default(),
        };
        // Trimmed past the position: the snapshot after reconnecting covers it; no time then.
        if let Ok(page) = self.broker.events(query).await
            && let Some(first) = page.events.first()
        {
            let since = first.at;
            self.set(|s| s.behind_since = Some(since));
        }
    }

    /// Waits before the next try: full jitter over an exponential ceiling, capped. Returns
    /// `false` if the broker shuts down meanwhile.
    async fn back_off(&mut self) -> bool {
        let ceiling = FIRST_BACKOFF_MS
            .saturating_mul(1 << self.failures.min(20))
            .min(self.max_backoff_ms);
        self.failures = self.failures.saturating_add(1);
        let delay = self.rng.next_u64() % (ceiling + 1);
        // Real time: a retry pace, not a deadline of the broker's.
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(delay)) => true,
            () = self.broker.until_shutdown() => false,
        }
    }

    fn set(&self, change: impl FnOnce(&mut MirrorStatus)) {
        self.status.send_modify(change);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::Mutex;

    use super::*;
    use crate::broker::NewMessage;
    use crate::clock::Clock;
    use crate::config::Config;

    /// A mirror that refuses every batch holding message `refused`, and is down for the first
    /// try to step past it once it has been set aside.
    #[derive(Default)]
    struct Refusing {
        refused: u64,
        stored: Arc<Mutex<Option<u64>>>,
        stepped_past: bool,
    }

    impl Sink for Refusing {
        async fn connect(&mut self) -> Result<Option<u64>, SinkError> {
            Ok(*self.stored.lock().unwrap())
        }

        async fn apply(&mut self, changes: &[Change], position: u64) -> Result<(), SinkError> {
            let refused = changes
                .iter()
                .any(|c| matches!(c, Change::Message(m) if m.seq == self.refused));
            if refused {
                return Err(SinkError::Rejected("no".into()));
            }
            if changes.is_empty() && position == self.refused && !self.stepped_past {
                self.stepped_past = true;
                return Err(SinkError::Down("gone".into()));
            }
            *self.stored.lock().unwrap() = Some(position);
            Ok(())
        }

        async fn replace(&mut self, _: &mut crate::broker::Snapshot) -> Result<(), SinkError> {
            Err(SinkError::Down("no snapshots here".into()))
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_event_read_again_after_the_mirror_was_down_is_set_aside_once() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            data_dir: dir.path().to_owned(),
            ..Config::default()
        };
        let broker = Broker::open(&config.broker_options(), Clock::manual(0)).unwrap();
        let message = |n: u64| NewMessage {
            topic: format!("t{n}"),
            key: None,
            payload: n.to_string(),
            headers: Vec::new(),
        };
        let seqs = broker.emit((1..=3).map(message).collect()).await.unwrap();
        let mirror = MirrorConfig {
            linger_ms: 0,
            max_backoff_ms: 100,
            ..MirrorConfig::from_url("redis://127.0.0.1:1", &[]).unwrap()
        };
        let mut relays = Relays::default();
        let sink = Refusing {
            refused: seqs[1],
            ..Refusing::default()
        };
        relays.start(broker.clone(), &mirror, sink);
        let mut status = relays.watch().remove(0);
        let done = |s: &MirrorStatus| s.position == seqs[2] && s.state == MirrorState::Following;
        tokio::time::timeout(Duration::from_secs(10), status.wait_for(done))
            .await
            .unwrap()
            .unwrap();
        let now = status.borrow().clone();
        assert!(now.errors_total >= 2, "a refusal and an outage: {now:?}");
        assert_eq!(now.dead_total, 1, "{now:?}");
        assert_eq!(now.dead[0].seq, seqs[1]);
        broker.begin_shutdown();
        relays.stop(Duration::from_secs(5)).await;
    }

    /// A mirror ahead of the log (so it takes a snapshot) whose snapshot waits for `release`.
    struct SlowSnapshot {
        release: Arc<tokio::sync::Notify>,
    }

    impl Sink for SlowSnapshot {
        async fn connect(&mut self) -> Result<Option<u64>, SinkError> {
            Ok(Some(u64::MAX))
        }

        async fn apply(&mut self, _: &[Change], _: u64) -> Result<(), SinkError> {
            Ok(())
        }

        async fn replace(&mut self, _: &mut crate::broker::Snapshot) -> Result<(), SinkError> {
            self.release.notified().await;
            Ok(())
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_lag_in_time_grows_while_a_snapshot_is_copied() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            data_dir: dir.path().to_owned(),
            ..Config::default()
        };
        let clock = Clock::manual(1_000);
        let broker = Broker::open(&config.broker_options(), clock.clone()).unwrap();
        let message = NewMessage {
            topic: "t".into(),
            key: None,
            payload: "1".into(),
            headers: Vec::new(),
        };
        broker.emit(vec![message]).await.unwrap();
        let mirror = MirrorConfig::from_url("redis://127.0.0.1:1", &[]).unwrap();
        let release = Arc::new(tokio::sync::Notify::new());
        let mut relays = Relays::default();
        let sink = SlowSnapshot {
            release: release.clone(),
        };
        relays.start(broker.clone(), &mirror, sink);
        let mut status = relays.watch().remove(0);
        let copying =
            |s: &MirrorStatus| s.state == MirrorState::Snapshotting && s.behind_since.is_some();
        tokio::time::timeout(Duration::from_secs(10), status.wait_for(copying))
            .await
            .unwrap()
            .unwrap();
        clock.advance(5_000);
        let lag = status.borrow().lag_ms(broker.events_head(), clock.now());
        assert_eq!(lag, 5_000, "behind since the oldest event the log holds");
        release.notify_one();
        let done = |s: &MirrorStatus| s.state == MirrorState::Following;
        tokio::time::timeout(Duration::from_secs(10), status.wait_for(done))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            status.borrow().behind_since,
            None,
            "caught up by the snapshot"
        );
        broker.begin_shutdown();
        relays.stop(Duration::from_secs(5)).await;
    }
}
