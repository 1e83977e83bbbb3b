//! Redis: a list as the queue. `LPUSH` to produce; `LMOVE`/`BLMOVE` into a processing list to
//! consume; `LREM` from it to acknowledge (the reliable-queue pattern).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::ensure;
use redis::aio::MultiplexedConnection;
use redis::io::tcp::TcpSettings;
use redis::{AsyncConnectionConfig, IntoConnectionInfo};

use crate::workload::{Progress, Shape, Start, payload, share, start};

const REDIS_READY: &str = "peerbench:ready";
const REDIS_PROCESSING: &str = "peerbench:processing";
/// Seconds a blocking consume waits before re-checking whether the run is over.
const BLOCK_SECS: f64 = 0.2;

/// Empties the lists, then opens one connection per consumer and producer.
pub async fn connect_all(addr: SocketAddr, shape: Shape) -> anyhow::Result<Vec<Start>> {
    setup(&mut connect(addr).await?).await?;
    let Shape {
        producers,
        consumers,
        batch,
        payload_bytes,
    } = shape;
    let mut starts = Vec::new();
    for i in 0..consumers {
        let conn = connect(addr).await?;
        starts.push(start(format!("redis consumer {i}"), move |pr| {
            consume(conn, pr, batch)
        }));
    }
    for i in 0..producers {
        let conn = connect(addr).await?;
        starts.push(start(format!("redis producer {i}"), move |pr| {
            let range = share(pr.total, producers, i);
            produce(conn, pr, range, batch, payload_bytes)
        }));
    }
    Ok(starts)
}

async fn connect(addr: SocketAddr) -> anyhow::Result<MultiplexedConnection> {
    let info = format!("redis://{addr}/")
        .into_connection_info()?
        .set_tcp_settings(TcpSettings::default().set_nodelay(true));
    let client = redis::Client::open(info)?;
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(5)))
        .set_response_timeout(Some(Duration::from_secs(60)));
    Ok(client
        .get_multiplexed_async_connection_with_config(&config)
        .await?)
}

async fn setup(conn: &mut MultiplexedConnection) -> anyhow::Result<()> {
    redis::cmd("DEL")
        .arg(REDIS_READY)
        .arg(REDIS_PROCESSING)
        .query_async::<()>(conn)
        .await?;
    Ok(())
}

async fn produce(
    mut conn: MultiplexedConnection,
    progress: Arc<Progress>,
    (first, count): (u64, u64),
    batch: usize,
    size: usize,
) -> anyhow::Result<()> {
    let end = first + count;
    let mut id = first;
    while id < end {
        progress.check_deadline()?;
        let n = (end - id).min(batch as u64);
        if n == 1 {
            redis::cmd("LPUSH")
                .arg(REDIS_READY)
                .arg(payload(id, size))
                .query_async::<()>(&mut conn)
                .await?;
        } else {
            let mut pipe = redis::pipe();
            for j in id..id + n {
                pipe.cmd("LPUSH")
                    .arg(REDIS_READY)
                    .arg(payload(j, size))
                    .ignore();
            }
            pipe.query_async::<()>(&mut conn).await?;
        }
        id += n;
    }
    Ok(())
}

async fn blocking_move(conn: &mut MultiplexedConnection) -> anyhow::Result<Option<Vec<u8>>> {
    Ok(redis::cmd("BLMOVE")
        .arg(REDIS_READY)
        .arg(REDIS_PROCESSING)
        .arg("RIGHT")
        .arg("LEFT")
        .arg(BLOCK_SECS)
        .query_async(conn)
        .await?)
}

async fn consume(
    mut conn: MultiplexedConnection,
    progress: Arc<Progress>,
    batch: usize,
) -> anyhow::Result<()> {
    while !progress.done() {
        progress.check_deadline()?;
        let mut got: Vec<Vec<u8>> = Vec::with_capacity(batch);
        if batch > 1 {
            let mut pipe = redis::pipe();
            for _ in 0..batch {
                pipe.cmd("LMOVE")
                    .arg(REDIS_READY)
                    .arg(REDIS_PROCESSING)
                    .arg("RIGHT")
                    .arg("LEFT");
            }
            let moved: Vec<Option<Vec<u8>>> = pipe.query_async(&mut conn).await?;
            got.extend(moved.into_iter().flatten());
        }
        if got.is_empty() {
            // Unbatched, or the queue was empty: block (briefly) for one job.
            got.extend(blocking_move(&mut conn).await?);
        }
        if got.is_empty() {
            continue;
        }
        let removed: i64 = if got.len() == 1 {
            redis::cmd("LREM")
                .arg(REDIS_PROCESSING)
                .arg(1)
                .arg(&got[0])
                .query_async(&mut conn)
                .await?
        } else {
            let mut pipe = redis::pipe();
            for job in &got {
                pipe.cmd("LREM").arg(REDIS_PROCESSING).arg(1).arg(job);
            }
            let counts: Vec<i64> = pipe.query_async(&mut conn).await?;
            counts.iter().sum()
        };
        ensure!(
            removed == got.len() as i64,
            "LREM removed {removed} of {} jobs",
            got.len()
        );
        progress.record_acks(got.len() as u64);
    }
    Ok(())
}
