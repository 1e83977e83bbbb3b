//! The Postgres sink: tables in one schema, created on first connect.
//!
//! ```sql
//! jobs(id bigint primary key, queue text not null, state text not null, priority int not null,
//!      attempts int not null, max_attempts int not null, payload jsonb, payload_text text,
//!      headers jsonb, headers_text text, result jsonb, result_text text, last_error text,
//!      run_at timestamptz, enqueued_at timestamptz not null, updated_at timestamptz not null,
//!      finished_at timestamptz, "group" text, tenant text generated from queue)
//! queues(name text primary key, paused boolean not null, settings jsonb not null,
//!        updated_at timestamptz not null, tenant text generated from name)
//! outbox(seq bigint primary key, topic text not null, key text, payload jsonb, payload_text text,
//!        headers jsonb, headers_text text, at timestamptz not null,
//!        tenant text generated from headers)
//! audit(seq bigint primary key, at timestamptz not null, tenant text not null, key_id text,
//!       key_tenant text not null, peer text, action text not null, target text,
//!       status int not null, outcome text not null, error text)
//! mirror_position(mirror text primary key, seq bigint not null, applied_at timestamptz not null)
//! ```
//!
//! `audit` is append-only: a trigger refuses every UPDATE, DELETE and TRUNCATE of it (its
//! owner may drop the trigger to prune it), and the mirror only inserts, skipping records it
//! already holds; a snapshot adds the broker's records without clearing any.
//!
//! Queue names are full names (`emails` for the default tenant, `acme:emails` for tenant
//! `acme`), unique across tenants as in the broker; `tenant` is generated from them, and for
//! the outbox from the `wharf-tenant` header.
//!
//! JSON a `jsonb` column cannot hold (a string with `\u0000` in it, which Postgres refuses) is
//! kept losslessly as its JSON text in the `_text` column beside it, the `jsonb` one then null.
//! A batch is folded to its net effect ([`batch::fold`]) and written with one bulk statement
//! per kind (rows passed as arrays, read with `unnest`), pipelined in one transaction that also
//! sets the position.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::try_join_all;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, NoTls, Statement};

use super::batch::{self, Folded};
use super::change::{
    AuditRow, Change, JobPatch, JobRow, MessageRow, audit_row, job_row, queue_row,
};
use super::{MirrorConfig, Sink, SinkError};
use crate::broker::Snapshot;
use crate::clock::Millis;

/// Jobs read from a snapshot per round.
const SNAPSHOT_CHUNK: usize = 1000;
/// How long a connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Statements prepared once per connection. Jobs and messages are written in bulk: one
/// statement per kind and batch, its rows passed as arrays and read back with `unnest`.
struct Statements {
    insert_jobs: Statement,
    patch_jobs: Statement,
    delete_jobs: Statement,
    put_queue: Statement,
    pause_queue: Statement,
    delete_queue: Statement,
    messages: Statement,
    audit: Statement,
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
    let tenant_of_queue = tenant_of_column("queue");
    let tenant_of_name = tenant_of_column("name");
    format!(
        r#"CREATE SCHEMA IF NOT EXISTS "{s}";
CREATE TABLE IF NOT EXISTS "{s}".jobs (id bigint PRIMARY KEY, queue text NOT NULL,
  state text NOT NULL, priority int NOT NULL, attempts int NOT NULL, max_attempts int NOT NULL,
  payload jsonb, payload_text text, headers jsonb, headers_text text, result jsonb,
  result_text text, last_error text, run_at timestamptz, enqueued_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL, finished_at timestamptz);
ALTER TABLE "{s}".jobs ADD COLUMN IF NOT EXISTS "group" text;
ALTER TABLE "{s}".jobs ADD COLUMN IF NOT EXISTS tenant text GENERATED ALWAYS AS
  ({tenant_of_queue}) STORED;
CREATE INDEX IF NOT EXISTS jobs_queue_state ON "{s}".jobs (queue, state);
CREATE TABLE IF NOT EXISTS "{s}".queues (name text PRIMARY KEY, paused boolean NOT NULL,
  settings jsonb NOT NULL, updated_at timestamptz NOT NULL);
ALTER TABLE "{s}".queues ADD COLUMN IF NOT EXISTS tenant text GENERATED ALWAYS AS
  ({tenant_of_name}) STORED;
CREATE TABLE IF NOT EXISTS "{s}".outbox (seq bigint PRIMARY KEY, topic text NOT NULL,
  key text, payload jsonb, payload_text text, headers jsonb, headers_text text,
  at timestamptz NOT NULL);
ALTER TABLE "{s}".outbox ADD COLUMN IF NOT EXISTS tenant text GENERATED ALWAYS AS
  (coalesce(headers->>'wharf-tenant', 'default')) STORED;
CREATE TABLE IF NOT EXISTS "{s}".audit (seq bigint PRIMARY KEY, at timestamptz NOT NULL,
  tenant text NOT NULL, key_id text, key_tenant text NOT NULL, peer text, action text NOT NULL,
  target text, status int NOT NULL, outcome text NOT NULL, error text);
CREATE OR REPLACE FUNCTION "{s}".audit_is_append_only() RETURNS trigger LANGUAGE plpgsql AS
  $$BEGIN RAISE EXCEPTION 'the wharf audit table is append-only'; END$$;
CREATE OR REPLACE TRIGGER audit_rows_append_only BEFORE UPDATE OR DELETE ON "{s}".audit
  FOR EACH ROW EXECUTE FUNCTION "{s}".audit_is_append_only();
CREATE OR REPLACE TRIGGER audit_table_append_only BEFORE TRUNCATE ON "{s}".audit
  FOR EACH STATEMENT EXECUTE FUNCTION "{s}".audit_is_append_only();
CREATE TABLE IF NOT EXISTS "{s}".mirror_position (mirror text PRIMARY KEY,
  seq bigint NOT NULL, applied_at timestamptz NOT NULL);"#
    )
}

/// The tenant of a full name in `column` (see [`crate::tenant`]), as SQL.
fn tenant_of_column(column: &str) -> String {
    format!(
        "CASE WHEN strpos({column}, ':') > 0 THEN split_part({column}, ':', 1) ELSE 'default' END"
    )
}

/// `epoch ms` (a bigint, or null) as a timestamptz expression.
fn ts(column: &str) -> String {
    format!("to_timestamp({column} / 1000.0)")
}

async fn prepare(client: &Client, s: &str) -> Result<Statements, tokio_postgres::Error> {
    let insert_jobs = format!(
        r#"INSERT INTO "{s}".jobs (id, queue, state, priority, attempts, max_attempts, payload,
  payload_text, headers, headers_text, result, result_text, last_error, run_at, enqueued_at,
  updated_at, finished_at, "group")
SELECT id, queue, state, priority, attempts, max_attempts, payload::jsonb, payload_text,
  headers::jsonb, headers_text, result::jsonb, result_text, last_error, {}, {}, {}, {}, "group"
FROM unnest($1::bigint[], $2::text[], $3::text[], $4::int[], $5::int[], $6::int[], $7::text[],
  $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::bigint[],
  $15::bigint[], $16::bigint[], $17::bigint[], $18::text[])
  AS u(id, queue, state, priority, attempts, max_attempts, payload, payload_text, headers,
  headers_text, result, result_text, last_error, run_at, enqueued_at, updated_at, finished_at,
  "group")
ON CONFLICT (id) DO UPDATE SET queue = EXCLUDED.queue, state = EXCLUDED.state,
  priority = EXCLUDED.priority, attempts = EXCLUDED.attempts,
  max_attempts = EXCLUDED.max_attempts, payload = EXCLUDED.payload,
  payload_text = EXCLUDED.payload_text, headers = EXCLUDED.headers,
  headers_text = EXCLUDED.headers_text, result = EXCLUDED.result,
  result_text = EXCLUDED.result_text, last_error = EXCLUDED.last_error,
  run_at = EXCLUDED.run_at, enqueued_at = EXCLUDED.enqueued_at,
  updated_at = EXCLUDED.updated_at, finished_at = EXCLUDED.finished_at,
  "group" = EXCLUDED."group""#,
        ts("u.run_at"),
        ts("u.enqueued_at"),
        ts("u.updated_at"),
        ts("u.finished_at"),
    );
    let patch_jobs = format!(
        r#"UPDATE "{s}".jobs j SET state = COALESCE(u.state, j.state),
  attempts = COALESCE(u.attempts, j.attempts), last_error = COALESCE(u.last_error, j.last_error),
  result = CASE WHEN u.result IS NULL AND u.result_text IS NULL THEN j.result ELSE u.result::jsonb END,
  result_text = CASE WHEN u.result IS NULL AND u.result_text IS NULL THEN j.result_text ELSE u.result_text END,
  run_at = COALESCE({}, j.run_at),
  finished_at = CASE WHEN u.set_finished THEN {} ELSE j.finished_at END, updated_at = {}
FROM unnest($1::bigint[], $2::text[], $3::int[], $4::text[], $5::text[], $6::text[],
  $7::bigint[], $8::bool[], $9::bigint[], $10::bigint[])
  AS u(id, state, attempts, last_error, result, result_text, run_at, set_finished, finished_at,
  updated_at)
WHERE j.id = u.id"#,
        ts("u.run_at"),
        ts("u.finished_at"),
        ts("u.updated_at"),
    );
    let put_queue = format!(
        r#"INSERT INTO "{s}".queues (name, paused, settings, updated_at)
VALUES ($1, $2, $3::text::jsonb, {})
ON CONFLICT (name) DO UPDATE SET paused = EXCLUDED.paused, settings = EXCLUDED.settings,
  updated_at = EXCLUDED.updated_at"#,
        ts("$4::bigint")
    );
    let pause_queue = format!(
        r#"UPDATE "{s}".queues SET paused = $2,
  settings = jsonb_set(settings, '{{paused}}', to_jsonb($2::boolean)), updated_at = {}
WHERE name = $1"#,
        ts("$3::bigint")
    );
    let messages = format!(
        r#"INSERT INTO "{s}".outbox (seq, topic, key, payload, payload_text, headers, headers_text, at)
SELECT seq, topic, key, payload::jsonb, payload_text, headers::jsonb, headers_text, {}
FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
  $7::text[], $8::bigint[])
  AS u(seq, topic, key, payload, payload_text, headers, headers_text, at)
ON CONFLICT (seq) DO NOTHING"#,
        ts("u.at")
    );
    let audit = format!(
        r#"INSERT INTO "{s}".audit (seq, at, tenant, key_id, key_tenant, peer, action, target,
  status, outcome, error)
SELECT seq, {}, tenant, key_id, key_tenant, peer, action, target, status, outcome, error
FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[],
  $7::text[], $8::text[], $9::int[], $10::text[], $11::text[])
  AS u(seq, at, tenant, key_id, key_tenant, peer, action, target, status, outcome, error)
ON CONFLICT (seq) DO NOTHING"#,
        ts("u.at")
    );
    let position = format!(
        r#"INSERT INTO "{s}".mirror_position (mirror, seq, applied_at) VALUES ($1, $2, now())
ON CONFLICT (mirror) DO UPDATE SET seq = EXCLUDED.seq, applied_at = EXCLUDED.applied_at"#
    );
    Ok(Statements {
        insert_jobs: client.prepare(&insert_jobs).await?,
        patch_jobs: client.prepare(&patch_jobs).await?,
        delete_jobs: client
            .prepare(&format!(
                r#"DELETE FROM "{s}".jobs WHERE id = ANY($1::bigint[])"#
            ))
            .await?,
        put_queue: client.prepare(&put_queue).await?,
        pause_queue: client.prepare(&pause_queue).await?,
        delete_queue: client
            .prepare(&format!(r#"DELETE FROM "{s}".queues WHERE name = $1"#))
            .await?,
        messages: client.prepare(&messages).await?,
        audit: client.prepare(&audit).await?,
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

/// The parameters of a bulk insert of `rows`: one array per column.
fn insert_params(rows: &[JobRow]) -> Vec<Param> {
    let mut payload = (Vec::new(), Vec::new());
    let mut headers = (Vec::new(), Vec::new());
    let mut result = (Vec::new(), Vec::new());
    for row in rows {
        push(&mut payload, json_columns(Some(&row.payload)));
        push(&mut headers, json_columns(Some(&row.headers)));
        push(&mut result, json_columns(row.result.as_deref()));
    }
    let column = |f: fn(&JobRow) -> i64| rows.iter().map(f).collect::<Vec<i64>>();
    let int = |f: fn(&JobRow) -> i32| rows.iter().map(f).collect::<Vec<i32>>();
    vec![
        Box::new(column(|r| id(r.id))),
        Box::new(rows.iter().map(|r| r.queue.clone()).collect::<Vec<_>>()),
        Box::new(rows.iter().map(|r| r.state.to_owned()).collect::<Vec<_>>()),
        Box::new(int(|r| i32::from(r.priority))),
        Box::new(int(|r| count(r.attempts))),
        Box::new(int(|r| count(r.max_attempts))),
        Box::new(payload.0),
        Box::new(payload.1),
        Box::new(headers.0),
        Box::new(headers.1),
        Box::new(result.0),
        Box::new(result.1),
        Box::new(
            rows.iter()
                .map(|r| r.last_error.clone())
                .collect::<Vec<_>>(),
        ),
        Box::new(rows.iter().map(|r| r.run_at.map(ms)).collect::<Vec<_>>()),
        Box::new(column(|r| ms(r.enqueued_at))),
        Box::new(column(|r| ms(r.updated_at))),
        Box::new(
            rows.iter()
                .map(|r| r.finished_at.map(ms))
                .collect::<Vec<_>>(),
        ),
        Box::new(rows.iter().map(|r| r.group.clone()).collect::<Vec<_>>()),
    ]
}

/// The parameters of a bulk update by `patches`: one array per column.
fn patch_params(patches: &[(u64, JobPatch)]) -> Vec<Param> {
    let mut result = (Vec::new(), Vec::new());
    for (_, p) in patches {
        push(&mut result, json_columns(p.result.as_deref()));
    }
    vec![
        Box::new(patches.iter().map(|(job, _)| id(*job)).collect::<Vec<_>>()),
        Box::new(
            patches
                .iter()
                .map(|(_, p)| p.state.map(str::to_owned))
                .collect::<Vec<_>>(),
        ),
        Box::new(
            patches
                .iter()
                .map(|(_, p)| p.attempts.map(count))
                .collect::<Vec<_>>(),
        ),
        Box::new(
            patches
                .iter()
                .map(|(_, p)| p.last_error.clone())
                .collect::<Vec<_>>(),
        ),
        Box::new(result.0),
        Box::new(result.1),
        Box::new(
            patches
                .iter()
                .map(|(_, p)| p.run_at.map(ms))
                .collect::<Vec<_>>(),
        ),
        Box::new(
            patches
                .iter()
                .map(|(_, p)| p.finished_at.is_some())
                .collect::<Vec<_>>(),
        ),
        Box::new(
            patches
                .iter()
                .map(|(_, p)| p.finished_at.flatten().map(ms))
                .collect::<Vec<_>>(),
        ),
        Box::new(
            patches
                .iter()
                .map(|(_, p)| ms(p.updated_at))
                .collect::<Vec<_>>(),
        ),
    ]
}

/// The parameters of a bulk insert of `messages`.
fn message_params(messages: &[MessageRow]) -> Vec<Param> {
    let mut payload = (Vec::new(), Vec::new());
    let mut headers = (Vec::new(), Vec::new());
    for m in messages {
        push(&mut payload, json_columns(Some(&m.payload)));
        push(&mut headers, json_columns(Some(&m.headers)));
    }
    vec![
        Box::new(messages.iter().map(|m| id(m.seq)).collect::<Vec<_>>()),
        Box::new(messages.iter().map(|m| m.topic.clone()).collect::<Vec<_>>()),
        Box::new(messages.iter().map(|m| m.key.clone()).collect::<Vec<_>>()),
        Box::new(payload.0),
        Box::new(payload.1),
        Box::new(headers.0),
        Box::new(headers.1),
        Box::new(messages.iter().map(|m| ms(m.at)).collect::<Vec<_>>()),
    ]
}

/// The parameters of a bulk insert of audit `rows`.
fn audit_params(rows: &[AuditRow]) -> Vec<Param> {
    let text = |f: fn(&AuditRow) -> Option<String>| rows.iter().map(f).collect::<Vec<_>>();
    vec![
        Box::new(rows.iter().map(|r| id(r.seq)).collect::<Vec<_>>()),
        Box::new(rows.iter().map(|r| ms(r.at)).collect::<Vec<_>>()),
        Box::new(text(|r| Some(r.tenant.clone()))),
        Box::new(text(|r| r.by.key_id.clone())),
        Box::new(text(|r| Some(r.by.tenant.clone()))),
        Box::new(text(|r| r.by.peer.clone())),
        Box::new(text(|r| Some(r.action.clone()))),
        Box::new(text(|r| r.target.clone())),
        Box::new(rows.iter().map(|r| i32::from(r.status)).collect::<Vec<_>>()),
        Box::new(text(|r| Some(r.outcome.clone()))),
        Box::new(text(|r| r.error.clone())),
    ]
}

type JsonColumns = (Vec<Option<String>>, Vec<Option<String>>);

fn push(columns: &mut JsonColumns, (json, text): (Option<String>, Option<String>)) {
    columns.0.push(json);
    columns.1.push(text);
}

fn count(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// The statements that apply `folded`: a bulk statement per kind of job change and for the
/// messages, and the queue changes one by one.
fn statements<'a>(s: &'a Statements, folded: &Folded) -> Vec<(&'a Statement, Vec<Param>)> {
    let mut out = Vec::new();
    if !folded.inserts.is_empty() {
        out.push((&s.insert_jobs, insert_params(&folded.inserts)));
    }
    if !folded.patches.is_empty() {
        out.push((&s.patch_jobs, patch_params(&folded.patches)));
    }
    if !folded.deletes.is_empty() {
        let ids: Vec<i64> = folded.deletes.iter().map(|&job| id(job)).collect();
        out.push((&s.delete_jobs, vec![Box::new(ids) as Param]));
    }
    for change in &folded.queues {
        match change {
            Change::PutQueue(q) => out.push((
                &s.put_queue,
                vec![
                    Box::new(q.name.clone()) as Param,
                    Box::new(q.paused),
                    Box::new(q.settings.clone()),
                    Box::new(ms(q.updated_at)),
                ],
            )),
            Change::PauseQueue { name, paused, at } => out.push((
                &s.pause_queue,
                vec![
                    Box::new(name.clone()) as Param,
                    Box::new(*paused),
                    Box::new(ms(*at)),
                ],
            )),
            Change::DeleteQueue { name } => {
                out.push((&s.delete_queue, vec![Box::new(name.clone()) as Param]));
            }
            _ => {}
        }
    }
    if !folded.messages.is_empty() {
        out.push((&s.messages, message_params(&folded.messages)));
    }
    if !folded.audit.is_empty() {
        out.push((&s.audit, audit_params(&folded.audit)));
    }
    out
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
        // The mirror can be rebuilt from the log, and its position commits with its rows: a
        // Postgres crash that loses the last commits loses their position too, and the relay
        // applies them again from the position it reads on reconnecting. So this session need
        // not wait for Postgres' WAL fsync, which on a shared disk competes with the broker's.
        let setup = format!(
            "SET synchronous_commit = off;\n{}",
            schema_sql(&self.schema)
        );
        client
            .batch_execute(&setup)
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
        let mut statements = statements(&s, &batch::fold(changes));
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
            client
                .batch_execute("BEGIN")
                .await
                .map_err(|e| self.fail(e))?;
            // Outbox rows past the snapshot can only come from a broker whose data was reset.
            let clear = format!(
                r#"DELETE FROM "{schema}".jobs; DELETE FROM "{schema}".queues;
DELETE FROM "{schema}".outbox WHERE seq > {seq};"#
            );
            client
                .batch_execute(&clear)
                .await
                .map_err(|e| self.fail(e))?;
            let queues = Folded {
                queues: queues
                    .into_iter()
                    .map(|(name, config)| Change::PutQueue(queue_row(name, config, at)))
                    .collect(),
                ..Folded::default()
            };
            pipelined(&client, &statements(&s, &queues))
                .await
                .map_err(|e| self.fail(e))?;
            loop {
                let jobs = snapshot
                    .next_jobs(SNAPSHOT_CHUNK)
                    .map_err(|e| SinkError::Down(format!("reading the snapshot: {e}")))?;
                if jobs.is_empty() {
                    break;
                }
                let rows: Vec<JobRow> = jobs.into_iter().map(job_row).collect();
                let insert = [(&s.insert_jobs, insert_params(&rows))];
                pipelined(&client, &insert)
                    .await
                    .map_err(|e| self.fail(e))?;
            }
            // The audit trail is added to, never replaced: records the broker no longer keeps
            // stay in the mirror.
            let mut after = 0;
            loop {
                let records = snapshot
                    .audit(after, SNAPSHOT_CHUNK)
                    .map_err(|e| SinkError::Down(format!("reading the snapshot: {e}")))?;
                let Some((last, _)) = records.last() else {
                    break;
                };
                after = *last;
                let rows = records
                    .iter()
                    .map(|(seq, record)| audit_row(*seq, record))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| SinkError::Rejected(e.to_string()))?;
                let insert = [(&s.audit, audit_params(&rows))];
                pipelined(&client, &insert)
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
