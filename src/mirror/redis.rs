//! The Redis sink: keys under one prefix.
//!
//! - `{prefix}job:{id}`: a hash of `queue`, `state`, `priority`, `attempts`, `max_attempts`,
//!   `payload` (JSON text), `headers` (JSON text), `result` (JSON text), `last_error`,
//!   `run_at`, `enqueued_at`, `updated_at`, `finished_at` (RFC 3339); deleted when the broker
//!   deletes the job;
//! - `{prefix}queue:{name}`: a hash of `paused` (`true`/`false`), `settings` (JSON text, as of
//!   the last create or update: `paused` is the field to read), `updated_at`;
//! - `{prefix}outbox`: a stream with entry id `{seq}-0` per `message` event (fields `topic`,
//!   `key` when it has one, `payload`, `headers`, `at`);
//! - `{prefix}position`: the last event applied, written in the same MULTI/EXEC as its batch.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, Pipeline, RedisError};

use super::batch::{self, Folded};
use super::change::{Change, JobPatch, JobRow, MessageRow, job_row, queue_row};
use super::{MirrorConfig, Sink, SinkError};
use crate::broker::Snapshot;
use crate::clock::rfc3339;

/// Jobs written per round of a snapshot.
const SNAPSHOT_CHUNK: usize = 1000;
/// How long a connection attempt, or a command, may take.
const TIMEOUT: Duration = Duration::from_secs(5);

/// Entries of a stream as XRANGE answers: (id, fields).
type StreamEntries = Vec<(String, Vec<(String, String)>)>;

/// A Redis mirror.
pub struct RedisSink {
    client: redis::Client,
    prefix: String,
    connection: Option<ConnectionManager>,
}

impl RedisSink {
    /// A sink for `config` (not connected yet).
    pub fn new(config: &MirrorConfig) -> Result<RedisSink, RedisError> {
        Ok(RedisSink {
            client: redis::Client::open(config.url.as_str())?,
            prefix: config.prefix.clone(),
            connection: None,
        })
    }

    fn connected(&self) -> Result<ConnectionManager, SinkError> {
        self.connection
            .clone()
            .ok_or_else(|| SinkError::Down("not connected".into()))
    }

    fn key(&self, rest: &str) -> String {
        format!("{}{rest}", self.prefix)
    }

    /// Maps a Redis error, and forgets a broken connection.
    fn fail(&mut self, error: RedisError) -> SinkError {
        if error.is_io_error() || error.is_connection_dropped() || error.is_timeout() {
            self.connection = None;
            SinkError::Down(error.to_string())
        } else {
            SinkError::Rejected(error.to_string())
        }
    }

    fn job(&self, pipe: &mut Pipeline, row: &JobRow) {
        let key = self.key(&format!("job:{}", row.id));
        let mut fields: Vec<(&str, String)> = vec![
            ("queue", row.queue.clone()),
            ("state", row.state.to_owned()),
            ("priority", row.priority.to_string()),
            ("attempts", row.attempts.to_string()),
            ("max_attempts", row.max_attempts.to_string()),
            ("payload", row.payload.clone()),
            ("headers", row.headers.clone()),
            ("enqueued_at", rfc3339(row.enqueued_at)),
            ("updated_at", rfc3339(row.updated_at)),
        ];
        if let Some(result) = &row.result {
            fields.push(("result", result.clone()));
        }
        if let Some(error) = &row.last_error {
            fields.push(("last_error", error.clone()));
        }
        if let Some(at) = row.run_at {
            fields.push(("run_at", rfc3339(at)));
        }
        if let Some(at) = row.finished_at {
            fields.push(("finished_at", rfc3339(at)));
        }
        pipe.del(&key).ignore();
        pipe.hset_multiple(&key, &fields).ignore();
    }

    fn patch(&self, pipe: &mut Pipeline, id: u64, p: &JobPatch) {
        let key = self.key(&format!("job:{id}"));
        let mut fields: Vec<(&str, String)> = vec![("updated_at", rfc3339(p.updated_at))];
        if let Some(state) = p.state {
            fields.push(("state", state.to_owned()));
        }
        if let Some(attempts) = p.attempts {
            fields.push(("attempts", attempts.to_string()));
        }
        if let Some(error) = &p.last_error {
            fields.push(("last_error", error.clone()));
        }
        if let Some(result) = &p.result {
            fields.push(("result", result.clone()));
        }
        if let Some(at) = p.run_at {
            fields.push(("run_at", rfc3339(at)));
        }
        match p.finished_at {
            Some(Some(at)) => fields.push(("finished_at", rfc3339(at))),
            Some(None) => {
                pipe.hdel(&key, "finished_at").ignore();
            }
            None => {}
        }
        pipe.hset_multiple(&key, &fields).ignore();
    }

    /// The commands of a folded batch.
    fn batch(&self, pipe: &mut Pipeline, folded: &Folded) {
        for row in &folded.inserts {
            self.job(pipe, row);
        }
        for (id, patch) in &folded.patches {
            self.patch(pipe, *id, patch);
        }
        if !folded.deletes.is_empty() {
            let keys: Vec<String> = folded
                .deletes
                .iter()
                .map(|id| self.key(&format!("job:{id}")))
                .collect();
            pipe.del(keys).ignore();
        }
        for change in &folded.queues {
            self.queue(pipe, change);
        }
        for message in &folded.messages {
            self.message(pipe, message);
        }
    }

    fn queue(&self, pipe: &mut Pipeline, change: &Change) {
        match change {
            Change::PutQueue(q) => {
                let fields = [
                    ("paused", q.paused.to_string()),
                    ("settings", q.settings.clone()),
                    ("updated_at", rfc3339(q.updated_at)),
                ];
                pipe.hset_multiple(self.key(&format!("queue:{}", q.name)), &fields)
                    .ignore();
            }
            Change::PauseQueue { name, paused, at } => {
                let fields = [("paused", paused.to_string()), ("updated_at", rfc3339(*at))];
                pipe.hset_multiple(self.key(&format!("queue:{name}")), &fields)
                    .ignore();
            }
            _ => {}
        }
    }

    fn message(&self, pipe: &mut Pipeline, m: &MessageRow) {
        let mut fields: Vec<(&str, String)> = vec![("topic", m.topic.clone())];
        if let Some(key) = &m.key {
            fields.push(("key", key.clone()));
        }
        fields.push(("payload", m.payload.clone()));
        fields.push(("headers", m.headers.clone()));
        fields.push(("at", rfc3339(m.at)));
        let xadd = pipe
            .cmd("XADD")
            .arg(self.key("outbox"))
            .arg(format!("{}-0", m.seq));
        for (name, value) in &fields {
            xadd.arg(*name).arg(value);
        }
        xadd.ignore();
    }

    /// Deletes every job and queue key (and the position) under the prefix.
    async fn clear(&mut self, connection: &mut ConnectionManager) -> Result<(), RedisError> {
        for pattern in ["job:*", "queue:*"] {
            let pattern = self.key(pattern);
            let mut cursor: u64 = 0;
            loop {
                let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(&pattern)
                    .arg("COUNT")
                    .arg(1000)
                    .query_async(connection)
                    .await?;
                if !keys.is_empty() {
                    let _: () = connection.unlink(keys).await?;
                }
                if next == 0 {
                    break;
                }
                cursor = next;
            }
        }
        Ok(())
    }
}

impl Sink for RedisSink {
    async fn connect(&mut self) -> Result<Option<u64>, SinkError> {
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(TIMEOUT))
            .set_response_timeout(Some(TIMEOUT))
            .set_number_of_retries(1);
        let connecting = ConnectionManager::new_with_config(self.client.clone(), config);
        let mut connection = tokio::time::timeout(TIMEOUT, connecting)
            .await
            .map_err(|_| SinkError::Down("connecting timed out".into()))?
            .map_err(|e| SinkError::Down(e.to_string()))?;
        let position: Option<u64> = connection
            .get(self.key("position"))
            .await
            .map_err(|e| SinkError::Down(e.to_string()))?;
        self.connection = Some(connection);
        Ok(position)
    }

    async fn apply(&mut self, changes: &[Change], position: u64) -> Result<(), SinkError> {
        let mut connection = self.connected()?;
        let mut pipe = redis::pipe();
        pipe.atomic();
        self.batch(&mut pipe, &batch::fold(changes));
        pipe.set(self.key("position"), position).ignore();
        let result: Result<(), RedisError> = pipe.query_async(&mut connection).await;
        result.map_err(|e| self.fail(e))
    }

    async fn replace(&mut self, snapshot: &mut Snapshot) -> Result<(), SinkError> {
        let mut connection = self.connected()?;
        let at = snapshot.taken_at();
        let seq = snapshot.seq();
        // No position while the snapshot is copied: one cut short is started over.
        let result: Result<(), RedisError> = connection.del(self.key("position")).await;
        result.map_err(|e| self.fail(e))?;
        let cleared = self.clear(&mut connection).await;
        cleared.map_err(|e| self.fail(e))?;
        // Stream entries past the snapshot can only come from a broker whose data was reset.
        let top: Result<StreamEntries, RedisError> = redis::cmd("XREVRANGE")
            .arg(self.key("outbox"))
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(1)
            .query_async(&mut connection)
            .await;
        let ahead = top
            .map_err(|e| self.fail(e))?
            .first()
            .and_then(|(id, _)| id.split('-').next()?.parse::<u64>().ok())
            .is_some_and(|top| top > seq);
        if ahead {
            let result: Result<(), RedisError> = connection.del(self.key("outbox")).await;
            result.map_err(|e| self.fail(e))?;
        }
        let queues = snapshot
            .queues()
            .map_err(|e| SinkError::Down(format!("reading the snapshot: {e}")))?;
        if !queues.is_empty() {
            let mut pipe = redis::pipe();
            for (name, config) in queues {
                self.queue(&mut pipe, &Change::PutQueue(queue_row(name, config, at)));
            }
            let result: Result<(), RedisError> = pipe.query_async(&mut connection).await;
            result.map_err(|e| self.fail(e))?;
        }
        loop {
            let jobs = snapshot
                .next_jobs(SNAPSHOT_CHUNK)
                .map_err(|e| SinkError::Down(format!("reading the snapshot: {e}")))?;
            if jobs.is_empty() {
                break;
            }
            let mut pipe = redis::pipe();
            for job in jobs {
                self.job(&mut pipe, &job_row(job));
            }
            let result: Result<(), RedisError> = pipe.query_async(&mut connection).await;
            result.map_err(|e| self.fail(e))?;
        }
        let result: Result<(), RedisError> = connection.set(self.key("position"), seq).await;
        result.map_err(|e| self.fail(e))
    }
}
