//! The Redis sink: keys under one prefix.
//!
//! Queue names are full names (`acme:emails`; see [`crate::tenant`]).
//!
//! - `{prefix}job:{id}`: a hash of `queue`, `tenant`, `state`, `priority`, `attempts`, `max_attempts`,
//!   `payload` (JSON text), `headers` (JSON text), `result` (JSON text), `last_error`,
//!   `run_at`, `enqueued_at`, `updated_at`, `finished_at` (RFC 3339), `group` (when it has
//!   one); deleted when the broker deletes the job;
//! - `{prefix}queue:{name}`: a hash of `tenant`, `paused` (`true`/`false`), `settings` (JSON text, as of
//!   the last create or update: `paused` is the field to read), `updated_at`;
//! - `{prefix}outbox`: a stream with entry id `{seq}-0` per `message` event (fields `topic`,
//!   `key` when it has one, `payload`, `headers`, `at`);
//! - `{prefix}position`: the last event applied, written in the same MULTI/EXEC as its batch.
//!
//! Redis does not roll a transaction back when one of its commands fails at run time: the
//! others, the position among them, take effect. So no command of a batch may fail on data,
//! and each must be safe to apply twice: a full row deletes the key first (whatever its type),
//! a patch is a script that touches only an existing hash (never a stub of a job the mirror
//! lacks), and a message goes to the stream only past the stream's last generated id (read
//! before the transaction). The one thing refused, before anything is written, is a message
//! for an outbox key that is not a stream. Every error Redis answers (OOM, READONLY, LOADING,
//! a transaction discarded, ...) is a mirror that is down for now: retried with backoff, never
//! a reason to set an event aside.

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

/// Sets fields of a hash only if it exists as one. `ARGV[1]` is `1` to delete `finished_at`
/// first; the rest are field, value pairs.
const PATCH: &str = r"
if redis.call('TYPE', KEYS[1]).ok ~= 'hash' then return 0 end
if ARGV[1] == '1' then redis.call('HDEL', KEYS[1], 'finished_at') end
if #ARGV > 1 then redis.call('HSET', KEYS[1], unpack(ARGV, 2)) end
return 1
";

/// The type of the outbox key and, for a stream, its last generated id's first part (entries
/// trimmed or deleted by consumers do not lower it).
const OUTBOX_TOP: &str = r"
local kind = redis.call('TYPE', KEYS[1]).ok
if kind ~= 'stream' then return {kind, 0} end
local info = redis.call('XINFO', 'STREAM', KEYS[1])
for i = 1, #info, 2 do
  if info[i] == 'last-generated-id' then
    return {kind, tonumber(string.match(info[i + 1], '^(%d+)')) or 0}
  end
end
return {kind, 0}
";

/// What the outbox key holds.
enum Outbox {
    /// Nothing yet, or a stream whose last generated id is `{seq}-...`.
    Stream { last_seq: u64 },
    /// A key of another type: messages cannot be added.
    Other(String),
}

/// A Redis mirror.
pub struct RedisSink {
    url: String,
    prefix: String,
    connection: Option<ConnectionManager>,
}

impl RedisSink {
    /// A sink for `config` (not connected yet).
    pub fn new(config: &MirrorConfig) -> RedisSink {
        RedisSink {
            url: config.url.clone(),
            prefix: config.prefix.clone(),
            connection: None,
        }
    }

    fn connected(&self) -> Result<ConnectionManager, SinkError> {
        self.connection
            .clone()
            .ok_or_else(|| SinkError::Down("not connected".into()))
    }

    fn key(&self, rest: &str) -> String {
        format!("{}{rest}", self.prefix)
    }

    /// Any error Redis answers: down for now (see the module's doc); reconnect before the
    /// next try.
    fn fail(&mut self, error: RedisError) -> SinkError {
        self.connection = None;
        SinkError::Down(error.to_string())
    }

    /// What the outbox key holds now.
    async fn outbox(&mut self, connection: &mut ConnectionManager) -> Result<Outbox, SinkError> {
        let top: Result<(String, u64), RedisError> = redis::cmd("EVAL")
            .arg(OUTBOX_TOP)
            .arg(1)
            .arg(self.key("outbox"))
            .query_async(connection)
            .await;
        match top.map_err(|e| self.fail(e))? {
            (kind, last_seq) if kind == "stream" || kind == "none" => {
                Ok(Outbox::Stream { last_seq })
            }
            (kind, _) => Ok(Outbox::Other(kind)),
        }
    }

    fn job(&self, pipe: &mut Pipeline, row: &JobRow) {
        let key = self.key(&format!("job:{}", row.id));
        let mut fields: Vec<(&str, String)> = vec![
            ("queue", row.queue.clone()),
            ("tenant", crate::tenant::tenant_of(&row.queue).to_owned()),
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
        if let Some(group) = &row.group {
            fields.push(("group", group.clone()));
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

    /// Sets `fields` of the hash `key` if the mirror holds it (see [`PATCH`]).
    fn patch_hash(
        pipe: &mut Pipeline,
        key: String,
        drop_finished: bool,
        fields: &[(&str, String)],
    ) {
        let eval = pipe
            .cmd("EVAL")
            .arg(PATCH)
            .arg(1)
            .arg(key)
            .arg(if drop_finished { "1" } else { "0" });
        for (name, value) in fields {
            eval.arg(*name).arg(value);
        }
        eval.ignore();
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
        if let Some(Some(at)) = p.finished_at {
            fields.push(("finished_at", rfc3339(at)));
        }
        Self::patch_hash(pipe, key, p.finished_at == Some(None), &fields);
    }

    /// The commands of a folded batch; messages up to `last_seq` are in the stream already.
    fn batch(&self, pipe: &mut Pipeline, folded: &Folded, last_seq: u64) {
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
        for message in folded.messages.iter().filter(|m| m.seq > last_seq) {
            self.message(pipe, message);
        }
    }

    fn queue(&self, pipe: &mut Pipeline, change: &Change) {
        match change {
            Change::PutQueue(q) => {
                let key = self.key(&format!("queue:{}", q.name));
                let fields = [
                    ("tenant", crate::tenant::tenant_of(&q.name).to_owned()),
                    ("paused", q.paused.to_string()),
                    ("settings", q.settings.clone()),
                    ("updated_at", rfc3339(q.updated_at)),
                ];
                pipe.del(&key).ignore();
                pipe.hset_multiple(&key, &fields).ignore();
            }
            Change::PauseQueue { name, paused, at } => {
                let fields = [("paused", paused.to_string()), ("updated_at", rfc3339(*at))];
                Self::patch_hash(pipe, self.key(&format!("queue:{name}")), false, &fields);
            }
            Change::DeleteQueue { name } => {
                pipe.del(self.key(&format!("queue:{name}"))).ignore();
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
        let client =
            redis::Client::open(self.url.as_str()).map_err(|e| SinkError::Down(e.to_string()))?;
        let connecting = ConnectionManager::new_with_config(client, config);
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
        let folded = batch::fold(changes);
        let mut last_seq = 0;
        if !folded.messages.is_empty() {
            match self.outbox(&mut connection).await? {
                Outbox::Stream { last_seq: seq } => last_seq = seq,
                Outbox::Other(kind) => {
                    return Err(SinkError::Rejected(format!(
                        "{} holds a {kind}, not a stream: no message can be added",
                        self.key("outbox")
                    )));
                }
            }
        }
        let mut pipe = redis::pipe();
        pipe.atomic();
        self.batch(&mut pipe, &folded, last_seq);
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
        // A stream past the snapshot can only come from a broker whose data was reset: its
        // messages would be refused (ids must grow), so it starts over.
        let ahead = matches!(
            self.outbox(&mut connection).await?,
            Outbox::Stream { last_seq } if last_seq > seq
        );
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
