//! PostgreSQL: a jobs table. `INSERT` to produce; `UPDATE ... FOR UPDATE SKIP LOCKED ...
//! RETURNING` to consume; `DELETE` to acknowledge.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::ensure;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, NoTls, Statement};

use crate::workload::{Progress, Shape, Start, payload, share, start};

/// How long a PostgreSQL consumer sleeps after finding nothing ready (it has no blocking pop).
const PG_IDLE_SLEEP: Duration = Duration::from_millis(1);

/// Creates the table afresh, then opens one connection per consumer and producer.
pub async fn connect_all(addr: SocketAddr, user: &str, shape: Shape) -> anyhow::Result<Vec<Start>> {
    setup(&connect(addr, user).await?).await?;
    let Shape {
        producers,
        consumers,
        batch,
        payload_bytes,
    } = shape;
    let mut starts = Vec::new();
    for i in 0..consumers {
        let client = connect(addr, user).await?;
        starts.push(start(format!("postgres consumer {i}"), move |pr| {
            consume(client, pr, batch)
        }));
    }
    for i in 0..producers {
        let client = connect(addr, user).await?;
        starts.push(start(format!("postgres producer {i}"), move |pr| {
            let range = share(pr.total, producers, i);
            produce(client, pr, range, batch, payload_bytes)
        }));
    }
    Ok(starts)
}

async fn connect(addr: SocketAddr, user: &str) -> anyhow::Result<Client> {
    let config = format!(
        "host={} port={} user={user} dbname=postgres connect_timeout=5",
        addr.ip(),
        addr.port()
    );
    let (client, connection) = tokio_postgres::connect(&config, NoTls).await?;
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            eprintln!("peer-bench: postgres connection: {error}");
        }
    });
    Ok(client)
}

async fn setup(client: &Client) -> anyhow::Result<()> {
    client
        .batch_execute(
            "DROP TABLE IF EXISTS jobs;
             CREATE TABLE jobs (
                 id bigserial PRIMARY KEY,
                 payload bytea,
                 state text,
                 locked_at timestamptz
             );
             CREATE INDEX jobs_ready ON jobs (id) WHERE state = 'ready';",
        )
        .await?;
    Ok(())
}

async fn produce(
    client: Client,
    progress: Arc<Progress>,
    (first, count): (u64, u64),
    batch: usize,
    size: usize,
) -> anyhow::Result<()> {
    let mut statements: HashMap<usize, Statement> = HashMap::new();
    let end = first + count;
    let mut id = first;
    while id < end {
        progress.check_deadline()?;
        let n = (end - id).min(batch as u64) as usize;
        let statement = match statements.get(&n) {
            Some(statement) => statement.clone(),
            None => {
                let values: Vec<String> = (1..=n).map(|i| format!("(${i}, 'ready')")).collect();
                let sql = format!(
                    "INSERT INTO jobs (payload, state) VALUES {}",
                    values.join(", ")
                );
                let statement = client.prepare(&sql).await?;
                statements.insert(n, statement.clone());
                statement
            }
        };
        let payloads: Vec<Vec<u8>> = (id..id + n as u64).map(|j| payload(j, size)).collect();
        let params: Vec<&(dyn ToSql + Sync)> =
            payloads.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
        let inserted = client.execute(&statement, &params).await?;
        ensure!(
            inserted == n as u64,
            "INSERT inserted {inserted} of {n} rows"
        );
        id += n as u64;
    }
    Ok(())
}

async fn consume(client: Client, progress: Arc<Progress>, batch: usize) -> anyhow::Result<()> {
    let lease = client
        .prepare(
            "UPDATE jobs SET state = 'leased', locked_at = now() WHERE id IN (
                 SELECT id FROM jobs WHERE state = 'ready' ORDER BY id
                 FOR UPDATE SKIP LOCKED LIMIT $1
             ) RETURNING id, payload",
        )
        .await?;
    let ack_one = client.prepare("DELETE FROM jobs WHERE id = $1").await?;
    let ack_many = client
        .prepare("DELETE FROM jobs WHERE id = ANY($1)")
        .await?;
    let limit = batch as i64;
    while !progress.done() {
        progress.check_deadline()?;
        let rows = client.query(&lease, &[&limit]).await?;
        if rows.is_empty() {
            tokio::time::sleep(PG_IDLE_SLEEP).await;
            continue;
        }
        let ids: Vec<i64> = rows.iter().map(|row| row.get::<_, i64>(0)).collect();
        let deleted = if ids.len() == 1 {
            client.execute(&ack_one, &[&ids[0]]).await?
        } else {
            client.execute(&ack_many, &[&ids]).await?
        };
        ensure!(
            deleted == ids.len() as u64,
            "DELETE removed {deleted} of {} rows",
            ids.len()
        );
        progress.record_acks(ids.len() as u64);
    }
    Ok(())
}
