//! The Postgres sink: tables in one schema, created on first connect.
//!
//! ```sql
//! jobs(id bigint primary key, queue text not null, state text not null, priority int not null,
//!      attempts int not null, max_attempts int not null, payload jsonb, payload_text text,
//!      headers jsonb, headers_text text, result jsonb, result_text text, last_error text,
//!      run_at timestamptz, enqueued_at timestamptz not null, updated_at timestamptz not null,
//!      finished_at timestamptz)
//! queues(name text primary key, paused boolean not null, settings jsonb not null,
//!        updated_at timestamptz not null)
//! outbox(seq bigint primary key, topic text not null, key text, payload jsonb, payload_text text,
//!        headers jsonb, headers_text text, at timestamptz not null)
//! mirror_position(mirror text primary key, seq bigint not null, applied_at timestamptz not null)
//! ```
//!
//! JSON a `jsonb` column cannot hold (a string with `\u0000` in it, which Postgres refuses) is
//! kept losslessly as its JSON text in the `_text` column beside it, the `jsonb` one then null.
//! A batch's statements are pipelined in one transaction that also sets the position.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::try_join_all;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, NoTls, Statement};

use super::change::{Change, JobPatch, JobRow, job_row, queue_row};
use super::{MirrorConfig, Sink, SinkError};
use crate::broker::Snapshot;
use crate::clock::Millis;

/// Jobs read from a snapshot per round.
const SNAPSHOT_CHUNK: usize = 1000;
/// How long a connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Statements prepared once per connection.
struct Statements {
    insert_job: Statement,
    patch_job: Statement,
    delete_job: Statement,
    put_queue: Statement,
    pause_queue: Statement,
    message: Statement,
    position: Statement,
}

/// A Postgres mirror.
pub struct PostgresSink {
    url: String,
    schema: String,
    mirror: String,
    connection: Option<(Arc<Client>, Arc<Statements>)>,
}

impl PostgresSink {
    /// A sink for `config` (not connected yet).
    pub fn new(config: &MirrorConfig) -> PostgresSink {
        PostgresSink {
            url: config.url.clone(),
            schema: config.schema.clone(),
            mirror: config.name.clone(),
            connection: None,
        }
    }

    fn connected(&self) -> Result<(Arc<Client>, Arc<Statements>), SinkError> {
        self.connection
            .clone()
            .ok_or_else(|| SinkError::Down("not connected".into()))
    }

    /// Maps a Postgres error, and forgets a broken connection.
    fn fail(&mut self, error: tokio_postgres::Error) -> SinkError {
        let refused = error.code().is_some_and(|code| {
            // Data exceptions (22), integrity violations (23): the data, not the server.
            let class = &code.code()[..2];
            class == "22" || class == "23"
        });
        if refused {
            SinkError::Rejected(error.to_string())
        } else {
            self.connection = None;
            SinkError::Down(error.to_string())
        }
    }
}

/// The DDL of the mirror's tables.
fn schema_sql(s: &str) -> String {
    format!(
        r#"CREATE SCHEMA IF NOT EXISTS "{s}";
CREATE TABLE IF NOT EXISTS "{s}".jobs (id bigint PRIMARY KEY, queue text NOT NULL,
  state text NOT NULL, priority int NOT NULL, attempts int NOT NULL, max_attempts int NOT NULL,
  payload jsonb, payload_text text, headers jsonb, headers_text text, result jsonb,
  result_text text, last_error text, run_at timestamptz, enqueued_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL, finished_at timestamptz);
CREATE INDEX IF NOT EXISTS jobs_queue_state ON "{s}".jobs (queue, state);
CREATE TABLE IF NOT EXISTS "{s}".queues (name text PRIMARY KEY, paused boolean NOT NULL,
  settings jsonb NOT NULL, updated_at timestamptz NOT NULL);
CREATE TABLE IF NOT EXISTS "{s}".outbox (seq bigint PRIMARY KEY, topic text NOT NULL,
  key text, payload jsonb, payload_text text, headers jsonb, headers_text text,
  at timestamptz NOT NULL);
CREATE TABLE IF NOT EXISTS "{s}".mirror_position (mirror text PRIMARY KEY,
  seq bigint NOT NULL, applied_at timestamptz NOT NULL);"#
    )
}

/// `epoch ms` as a timestamptz expression of parameter `n`.
fn ts(n: usize) -> String {
    format!("to_timestamp(${n}::bigint / 1000.0)")
}

async fn prepare(client: &Client, s: &str) -> Result<Statements, tokio_postgres::Error> {
    let insert_job = format!(
        r#"INSERT INTO "{s}".jobs (id, queue, state, priority, attempts, max_attempts, payload,
  payload_text, headers, headers_text, result, result_text, last_error, run_at, enqueued_at,
  updated_at, finished_at)
VALUES ($1, $2, $3, $4, $5, $6, $7::text::jsonb, $8, $9::text::jsonb, $10, $11::text::jsonb, $12,
  $13, {}, {}, {}, {})
ON CONFLICT (id) DO UPDATE SET queue = EXCLUDED.queue, state = EXCLUDED.state,
  priority = EXCLUDED.priority, attempts = EXCLUDED.attempts,
  max_attempts = EXCLUDED.max_attempts, payload = EXCLUDED.payload,
  payload_text = EXCLUDED.payload_text, headers = EXCLUDED.headers,
  headers_text = EXCLUDED.headers_text, result = EXCLUDED.result,
  result_text = EXCLUDED.result_text, last_error = EXCLUDED.last_error,
  run_at = EXCLUDED.run_at, enqueued_at = EXCLUDED.enqueued_at,
  updated_at = EXCLUDED.updated_at, finished_at = EXCLUDED.finished_at"#,
        ts(14),
        ts(15),
        ts(16),
        ts(17)
    );
    let patch_job = format!(
        r#"UPDATE "{s}".jobs SET state = COALESCE($2, state), attempts = COALESCE($3, attempts),
  last_error = COALESCE($4, last_error), result = COALESCE($5::text::jsonb, result),
  result_text = COALESCE($6, result_text), run_at = COALESCE({}, run_at),
  finished_at = CASE WHEN $8 THEN {} ELSE finished_at END, updated_at = {}
WHERE id = $1"#,
        ts(7),
        ts(9),
        ts(10)
    );
    let put_queue = format!(
        r#"INSERT INTO "{s}".queues (name, paused, settings, updated_at)
VALUES ($1, $2, $3::text::jsonb, {})
ON CONFLICT (name) DO UPDATE SET paused = EXCLUDED.paused, settings = EXCLUDED.settings,
  updated_at = EXCLUDED.updated_at"#,
        ts(4)
    );
    let pause_queue = format!(
        r#"UPDATE "{s}".queues SET paused = $2,
  settings = jsonb_set(settings, '{{paused}}', to_jsonb($2::boolean)), updated_at = {}
WHERE name = $1"#,
        ts(3)
    );
    let message = format!(
        r#"INSERT INTO "{s}".outbox (seq, topic, key, payload, payload_text, headers, headers_text, at)
VALUES ($1, $2, $3, $4::text::jsonb, $5, $6::text::jsonb, $7, {})
ON CONFLICT (seq) DO NOTHING"#,
        ts(8)
    );
    let position = format!(
        r#"INSERT INTO "{s}".mirror_position (mirror, seq, applied_at) VALUES ($1, $2, now())
ON CONFLICT (mirror) DO UPDATE SET seq = EXCLUDED.seq, applied_at = EXCLUDED.applied_at"#
    );
    Ok(Statements {
        insert_job: client.prepare(&insert_job).await?,
        patch_job: client.prepare(&patch_job).await?,
        delete_job: client
            .prepare(&format!(r#"DELETE FROM "{s}".jobs WHERE id = $1"#))
            .await?,
        put_queue: client.prepare(&put_queue).await?,
        pause_queue: client.prepare(&pause_queue).await?,
        message: client.prepare(&message).await?,
        position: client.prepare(&position).await?,
    })
}

/// JSON text as (`jsonb` column, `_text` column): the text column only when `jsonb` cannot
/// hold it.
fn json_columns(json: Option<&str>) -> (Option<String>, Option<String>) {
    match json {
        None => (None, None),
        Some(text) if text.contains("\\u0000") => (None, Some(text.to_owned())),
        Some(text) => (Some(text.to_owned()), None),
    }
}

/// One statement and its parameters, owned so a batch can be pipelined.
type Param = Box<dyn ToSql + Sync + Send>;

fn ms(at: Millis) -> i64 {
    i64::try_from(at).unwrap_or(i64::MAX)
}

fn id(id: u64) -> i64 {
    i64::try_from(id).unwrap_or(i64::MAX)
}

fn job_params(row: &JobRow) -> Vec<Param> {
    let (payload, payload_text) = json_columns(Some(&row.payload));
    let (headers, headers_text) = json_columns(Some(&row.headers));
    let (result, result_text) = json_columns(row.result.as_deref());
    vec![
        Box::new(id(row.id)),
        Box::new(row.queue.clone()),
        Box::new(row.state.to_owned()),
        Box::new(i32::from(row.priority)),
        Box::new(i32::try_from(row.attempts).unwrap_or(i32::MAX)),
        Box::new(i32::try_from(row.max_attempts).unwrap_or(i32::MAX)),
        Box::new(payload),
        Box::new(payload_text),
        Box::new(headers),
        Box::new(headers_text),
        Box::new(result),
        Box::new(result_text),
        Box::new(row.last_error.clone()),
        Box::new(row.run_at.map(ms)),
        Box::new(ms(row.enqueued_at)),
        Box::new(ms(row.updated_at)),
        Box::new(row.finished_at.map(ms)),
    ]
}

fn patch_params(job: u64, p: &JobPatch) -> Vec<Param> {
    let (result, result_text) = json_columns(p.result.as_deref());
    vec![
        Box::new(id(job)),
        Box::new(p.state.map(str::to_owned)),
        Box::new(p.attempts.map(|a| i32::try_from(a).unwrap_or(i32::MAX))),
        Box::new(p.last_error.clone()),
        Box::new(result),
        Box::new(result_text),
        Box::new(p.run_at.map(ms)),
        Box::new(p.finished_at.is_some()),
        Box::new(p.finished_at.flatten().map(ms)),
        Box::new(ms(p.updated_at)),
    ]
}

/// The statement and parameters of a change; `None` for what the mirror does not keep.
fn statement<'a>(s: &'a Statements, change: &Change) -> Option<(&'a Statement, Vec<Param>)> {
    Some(match change {
        Change::InsertJob(row) => (&s.insert_job, job_params(row)),
        Change::PatchJob { id: job, patch } => (&s.patch_job, patch_params(*job, patch)),
        Change::DeleteJob { id: job } => (&s.delete_job, vec![Box::new(id(*job)) as Param]),
        Change::PutQueue(q) => (
            &s.put_queue,
            vec![
                Box::new(q.name.clone()) as Param,
                Box::new(q.paused),
                Box::new(q.settings.clone()),
                Box::new(ms(q.updated_at)),
            ],
        ),
        Change::PauseQueue { name, paused, at } => (
            &s.pause_queue,
            vec![
                Box::new(name.clone()) as Param,
                Box::new(*paused),
                Box::new(ms(*at)),
            ],
        ),
        Change::Message(m) => {
            let (payload, payload_text) = json_columns(Some(&m.payload));
            let (headers, headers_text) = json_columns(Some(&m.headers));
            (
                &s.message,
                vec![
                    Box::new(id(m.seq)) as Param,
                    Box::new(m.topic.clone()),
                    Box::new(m.key.clone()),
                    Box::new(payload),
                    Box::new(payload_text),
                    Box::new(headers),
                    Box::new(headers_text),
                    Box::new(ms(m.at)),
                ],
            )
        }
        Change::Nothing => return None,
    })
}

/// Runs `statements` pipelined (sent back to back, in order) on `client`.
async fn pipelined(
    client: &Client,
    statements: &[(&Statement, Vec<Param>)],
) -> Result<(), tokio_postgres::Error> {
    let runs = statements.iter().map(|(statement, params)| {
        let params: Vec<&(dyn ToSql + Sync)> = params
            .iter()
            .map(|p| p.as_ref() as &(dyn ToSql + Sync))
            .collect();
        async move { client.execute(*statement, &params).await }
    });
    try_join_all(runs).await.map(|_| ())
}

impl Sink for PostgresSink {
    async fn connect(&mut self) -> Result<Option<u64>, SinkError> {
        let connecting = tokio_postgres::connect(&self.url, NoTls);
        let (client, connection) = tokio::time::timeout(CONNECT_TIMEOUT, connecting)
            .await
            .map_err(|_| SinkError::Down("connecting timed out".into()))?
            .map_err(|e| SinkError::Down(e.to_string()))?;
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "postgres mirror connection ended");
            }
        });
        client
            .batch_execute(&schema_sql(&self.schema))
            .await
            .map_err(|e| SinkError::Down(e.to_string()))?;
        let statements = prepare(&client, &self.schema)
            .await
            .map_err(|e| SinkError::Down(e.to_string()))?;
        let row = client
            .query_opt(
                &format!(
                    r#"SELECT seq FROM "{}".mirror_position WHERE mirror = $1"#,
                    self.schema
                ),
                &[&self.mirror],
            )
            .await
            .map_err(|e| SinkError::Down(e.to_string()))?;
        let position = row
            .map(|r| r.try_get::<_, i64>(0))
            .transpose()
            .map_err(|e| SinkError::Down(e.to_string()))?
            .map(|seq| u64::try_from(seq).unwrap_or(0));
        self.connection = Some((Arc::new(client), Arc::new(statements)));
        Ok(position)
    }

    async fn apply(&mut self, changes: &[Change], position: u64) -> Result<(), SinkError> {
        let (client, s) = self.connected()?;
        let mut statements: Vec<(&Statement, Vec<Param>)> =
            changes.iter().filter_map(|c| statement(&s, c)).collect();
        statements.push((
            &s.position,
            vec![
                Box::new(self.mirror.clone()) as Param,
                Box::new(id(position)),
            ],
        ));
        let result = async {
            client.batch_execute("BEGIN").await?;
            pipelined(&client, &statements).await?;
            client.batch_execute("COMMIT").await
        }
        .await;
        match result {
            Ok(()) => Ok(()),
            Err(error) => {
                // A refused statement aborted the transaction; end it before the next try.
                let _ = client.batch_execute("ROLLBACK").await;
                Err(self.fail(error))
            }
        }
    }

    async fn replace(&mut self, snapshot: &mut Snapshot) -> Result<(), SinkError> {
        let (client, s) = self.connected()?;
        let schema = self.schema.clone();
        let at = snapshot.taken_at();
        let seq = snapshot.seq();
        let queues = snapshot
            .queues()
            .map_err(|e| SinkError::Down(format!("reading the snapshot: {e}")))?;
        let result: Result<(), SinkError> = async {
            let pg = |e: tokio_postgres::Error| e;
            client
                .batch_execute("BEGIN")
                .await
                .map_err(|e| self.fail(pg(e)))?;
            // Outbox rows past the snapshot can only come from a broker whose data was reset.
            let clear = format!(
                r#"DELETE FROM "{schema}".jobs; DELETE FROM "{schema}".queues;
DELETE FROM "{schema}".outbox WHERE seq > {seq};"#
            );
            client
                .batch_execute(&clear)
                .await
                .map_err(|e| self.fail(e))?;
            let rows: Vec<Change> = queues
                .into_iter()
                .map(|(name, config)| Change::PutQueue(queue_row(name, config, at)))
                .collect();
            let statements: Vec<_> = rows.iter().filter_map(|c| statement(&s, c)).collect();
            pipelined(&client, &statements)
                .await
                .map_err(|e| self.fail(e))?;
            loop {
                let jobs = snapshot
                    .next_jobs(SNAPSHOT_CHUNK)
                    .map_err(|e| SinkError::Down(format!("reading the snapshot: {e}")))?;
                if jobs.is_empty() {
                    break;
                }
                let rows: Vec<Change> = jobs
                    .into_iter()
                    .map(|j| Change::InsertJob(job_row(j)))
                    .collect();
                let statements: Vec<_> = rows.iter().filter_map(|c| statement(&s, c)).collect();
                pipelined(&client, &statements)
                    .await
                    .map_err(|e| self.fail(e))?;
            }
            let position = [(
                &s.position,
                vec![Box::new(self.mirror.clone()) as Param, Box::new(id(seq))],
            )];
            pipelined(&client, &position)
                .await
                .map_err(|e| self.fail(e))?;
            client
                .batch_execute("COMMIT")
                .await
                .map_err(|e| self.fail(e))
        }
        .await;
        if result.is_err() {
            let _ = client.batch_execute("ROLLBACK").await;
        }
        result
    }
}
