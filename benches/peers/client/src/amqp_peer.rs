//! RabbitMQ over AMQP 0.9.1: one queue per run, declared before and deleted after it, on the
//! default exchange.
//!
//! - [`Durability::Quorum`]: a quorum queue (`x-queue-type: quorum`; it writes every message to
//!   its Raft log and fsyncs it before the publisher confirm). Producers put their channel in
//!   confirm mode and keep up to `batch` confirms outstanding (a sliding window; one at a time
//!   when `batch` is 1). Consumers set `basic.qos` prefetch to `batch` and acknowledge by hand:
//!   one `basic.ack` per job when `batch` is 1, else one `multiple` ack for all the deliveries
//!   that had arrived (up to `batch`).
//! - [`Durability::Transient`]: a classic non-durable queue, transient messages, no confirms,
//!   and consumers in auto-ack mode (a delivery counts as acknowledged when it arrives; prefetch
//!   does not apply to auto-ack consumers). Memory only.
//!
//! AMQP 0.9.1 has no reply to `basic.ack`: an ack counts once it is written to the connection.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use clap::ValueEnum;
use futures_util::{FutureExt, StreamExt};
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};

use crate::workload::{Progress, Shape, Start, payload, share, start};

/// The service's default user, which RabbitMQ lets in from loopback only.
const USER: &str = "guest";
const PASSWORD: &str = "guest";
/// How long a consumer waits for a delivery before it re-checks whether the run is over.
const BLOCK: Duration = Duration::from_millis(200);
/// A queue left behind by a killed run deletes itself after this long unused.
const QUEUE_EXPIRES_MS: i32 = 15 * 60 * 1000;
/// Bound on connecting and on deleting the queue.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(30);

/// What the queue promises, and with it how producers and consumers talk to it.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Durability {
    /// Quorum queue, publisher confirms, manual acks.
    Quorum,
    /// Classic non-durable queue, no confirms, auto-ack.
    Transient,
}

/// The run's queue: declared before, deleted after the run.
pub struct Queue {
    conn: Connection,
    channel: Channel,
    name: String,
    durability: Durability,
}

impl Queue {
    /// Declares the queue `name` (not exclusive, not auto-deleted, so that every task's
    /// connection can use it).
    pub async fn declare(
        addr: SocketAddr,
        name: &str,
        durability: Durability,
    ) -> anyhow::Result<Self> {
        let conn = connect(addr).await?;
        let channel = conn.create_channel().await?;
        let mut arguments = FieldTable::default();
        arguments.insert("x-expires".into(), AMQPValue::LongInt(QUEUE_EXPIRES_MS));
        if let Durability::Quorum = durability {
            arguments.insert(
                "x-queue-type".into(),
                AMQPValue::LongString("quorum".into()),
            );
        }
        let options = QueueDeclareOptions {
            durable: matches!(durability, Durability::Quorum),
            ..Default::default()
        };
        channel
            .queue_declare(name.into(), options, arguments)
            .await
            .with_context(|| format!("declaring queue {name}"))?;
        Ok(Self {
            conn,
            channel,
            name: name.to_owned(),
            durability,
        })
    }

    /// Deletes the queue (with any messages left) and closes the admin connection.
    pub async fn delete(&self) -> anyhow::Result<()> {
        let deleted = tokio::time::timeout(
            ADMIN_TIMEOUT,
            self.channel
                .queue_delete(self.name.as_str().into(), QueueDeleteOptions::default()),
        )
        .await
        .context("timed out")
        .and_then(|result| Ok(result?))
        .with_context(|| format!("deleting queue {}", self.name));
        close(&self.conn).await;
        deleted.map(|_| ())
    }
}

async fn connect(addr: SocketAddr) -> anyhow::Result<Connection> {
    let uri = format!("amqp://{USER}:{PASSWORD}@{addr}/%2f");
    tokio::time::timeout(
        ADMIN_TIMEOUT,
        Connection::connect(&uri, ConnectionProperties::default()),
    )
    .await
    .context("timed out")
    .and_then(|result| Ok(result?))
    .with_context(|| format!("connecting to rabbitmq at {addr}"))
}

/// Closes a connection politely (the service is shared); errors only mean it is gone already.
async fn close(conn: &Connection) {
    let _ = tokio::time::timeout(Duration::from_secs(5), conn.close(200, "done".into())).await;
}

/// Opens one connection (and channel) per consumer and producer.
pub async fn connect_all(
    addr: SocketAddr,
    queue: &Queue,
    shape: Shape,
) -> anyhow::Result<Vec<Start>> {
    let Shape {
        producers,
        consumers,
        batch,
        payload_bytes,
    } = shape;
    let durability = queue.durability;
    let prefetch = u16::try_from(batch).context("--batch is over 65535")?;
    let mut starts = Vec::new();
    for i in 0..consumers {
        let conn = connect(addr).await?;
        let channel = conn.create_channel().await?;
        let no_ack = matches!(durability, Durability::Transient);
        if !no_ack {
            channel
                .basic_qos(prefetch, BasicQosOptions::default())
                .await?;
        }
        let consumer = channel
            .basic_consume(
                queue.name.as_str().into(),
                format!("peerbench-consumer-{i}").into(),
                BasicConsumeOptions {
                    no_ack,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await?;
        starts.push(start(
            format!("rabbitmq consumer {i}"),
            move |pr| async move {
                let result = consume(&channel, consumer, pr, batch, no_ack).await;
                close(&conn).await;
                result
            },
        ));
    }
    for i in 0..producers {
        let conn = connect(addr).await?;
        let channel = conn.create_channel().await?;
        if let Durability::Quorum = durability {
            channel
                .confirm_select(ConfirmSelectOptions::default())
                .await?;
        }
        let name = queue.name.clone();
        starts.push(start(
            format!("rabbitmq producer {i}"),
            move |pr| async move {
                let range = share(pr.total, producers, i);
                let result =
                    produce(&channel, &name, durability, pr, range, batch, payload_bytes).await;
                close(&conn).await;
                result
            },
        ));
    }
    Ok(starts)
}

async fn produce(
    channel: &Channel,
    queue: &str,
    durability: Durability,
    progress: Arc<Progress>,
    (first, count): (u64, u64),
    window: usize,
    size: usize,
) -> anyhow::Result<()> {
    let (properties, confirmed) = match durability {
        // Persistent (delivery mode 2); a quorum queue stores every message durably anyway.
        Durability::Quorum => (BasicProperties::default().with_delivery_mode(2), true),
        Durability::Transient => (BasicProperties::default().with_delivery_mode(1), false),
    };
    let mut pending = VecDeque::with_capacity(window);
    for id in first..first + count {
        progress.check_deadline()?;
        if pending.len() >= window
            && let Some(confirm) = pending.pop_front()
        {
            expect_ack(confirm).await?;
        }
        let confirm = channel
            .basic_publish(
                "".into(),
                queue.into(),
                BasicPublishOptions::default(),
                &payload(id, size),
                properties.clone(),
            )
            .await?;
        if confirmed {
            pending.push_back(confirm);
        }
    }
    for confirm in pending {
        expect_ack(confirm).await?;
    }
    Ok(())
}

async fn expect_ack(confirm: lapin::PublisherConfirm) -> anyhow::Result<()> {
    let confirmation = confirm.await?;
    ensure!(
        confirmation.is_ack(),
        "publish not confirmed: {confirmation:?}"
    );
    Ok(())
}

async fn consume(
    channel: &Channel,
    mut consumer: lapin::Consumer,
    progress: Arc<Progress>,
    batch: usize,
    no_ack: bool,
) -> anyhow::Result<()> {
    while !progress.done() {
        progress.check_deadline()?;
        let first = match tokio::time::timeout(BLOCK, consumer.next()).await {
            Err(_) => continue,
            Ok(None) => bail!("the server cancelled the consumer"),
            Ok(Some(delivery)) => delivery?,
        };
        let mut last_tag = first.delivery_tag;
        let mut count = 1;
        // Take whatever else has already arrived, up to a batch, without waiting.
        while count < batch {
            match consumer.next().now_or_never() {
                Some(Some(delivery)) => {
                    last_tag = delivery?.delivery_tag;
                    count += 1;
                }
                Some(None) => bail!("the server cancelled the consumer"),
                None => break,
            }
        }
        if !no_ack {
            let options = BasicAckOptions {
                multiple: count > 1,
            };
            channel.basic_ack(last_tag, options).await?;
        }
        progress.record_acks(count as u64);
    }
    Ok(())
}
