//! NATS JetStream: a work-queue stream with a file store, and one durable pull consumer with
//! explicit acks shared by all consumer tasks.
//!
//! Produce: a JetStream publish, whose ack future resolves when the stream has stored the
//! message; up to `batch` acks are outstanding per producer (a sliding window), one at a time
//! when `batch` is 1. Consume: a no-wait `fetch` of up to `batch` messages; when that finds
//! nothing (or `batch` is 1), a `batch` pull request for one message that waits up to
//! [`BLOCK`]. Acknowledge: `double_ack` (an ack with a reply, which the server sends once it
//! has processed the ack and so removed the message from the work queue), for every message;
//! the acks of one fetch are sent together and awaited together.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, anyhow};
use async_nats::jetstream::consumer::{AckPolicy, PullConsumer, pull};
use async_nats::jetstream::{self, Context, stream};
use futures_util::StreamExt;
use futures_util::future::try_join_all;

use crate::workload::{Progress, Shape, Start, payload, share, start};

/// The durable consumer's name inside each run's stream.
const CONSUMER: &str = "workers";
/// How long a pull request for one message waits before the consumer re-checks whether the
/// run is over.
const BLOCK: Duration = Duration::from_millis(200);
/// Bound on every request to the server (publish acks, pulls, stream admin).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The run's stream and its consumer, created before and deleted after the run.
pub struct Queue {
    js: Context,
    stream: String,
    subject: String,
}

impl Queue {
    /// Creates the work-queue stream `name` (file storage, one replica) listening on the
    /// subject `name` with dots for dashes, and its durable pull consumer.
    pub async fn create(addr: SocketAddr, name: &str) -> anyhow::Result<Self> {
        let js = context(addr).await?;
        let subject = name.replace('-', ".");
        let stream = js
            .create_stream(stream::Config {
                name: name.to_owned(),
                subjects: vec![subject.clone()],
                retention: stream::RetentionPolicy::WorkQueue,
                storage: stream::StorageType::File,
                num_replicas: 1,
                ..Default::default()
            })
            .await
            .with_context(|| format!("creating stream {name}"))?;
        let queue = Self {
            js,
            stream: name.to_owned(),
            subject,
        };
        let consumer = stream
            .create_consumer(pull::Config {
                durable_name: Some(CONSUMER.to_owned()),
                ack_policy: AckPolicy::Explicit,
                ..Default::default()
            })
            .await;
        if let Err(error) = consumer {
            let _ = queue.delete().await;
            return Err(anyhow!(error).context(format!("creating consumer {CONSUMER}")));
        }
        Ok(queue)
    }

    /// Deletes the stream (and with it the consumer and any messages left).
    pub async fn delete(&self) -> anyhow::Result<()> {
        self.js
            .delete_stream(&self.stream)
            .await
            .with_context(|| format!("deleting stream {}", self.stream))?;
        Ok(())
    }
}

async fn context(addr: SocketAddr) -> anyhow::Result<Context> {
    let client = async_nats::ConnectOptions::new()
        .connection_timeout(Duration::from_secs(5))
        .request_timeout(Some(REQUEST_TIMEOUT))
        .connect(addr.to_string())
        .await
        .with_context(|| format!("connecting to nats at {addr}"))?;
    Ok(jetstream::ContextBuilder::new()
        .timeout(REQUEST_TIMEOUT)
        .build(client))
}

/// Opens one connection per consumer and producer.
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
    let mut starts = Vec::new();
    for i in 0..consumers {
        let consumer: PullConsumer = context(addr)
            .await?
            .get_stream(&queue.stream)
            .await?
            .get_consumer(CONSUMER)
            .await
            .map_err(|e| anyhow!(e))?;
        starts.push(start(format!("nats consumer {i}"), move |pr| {
            consume(consumer, pr, batch)
        }));
    }
    for i in 0..producers {
        let js = context(addr).await?;
        let subject = queue.subject.clone();
        starts.push(start(format!("nats producer {i}"), move |pr| {
            let range = share(pr.total, producers, i);
            produce(js, subject, pr, range, batch, payload_bytes)
        }));
    }
    Ok(starts)
}

async fn produce(
    js: Context,
    subject: String,
    progress: Arc<Progress>,
    (first, count): (u64, u64),
    window: usize,
    size: usize,
) -> anyhow::Result<()> {
    let mut pending = VecDeque::with_capacity(window);
    for id in first..first + count {
        progress.check_deadline()?;
        if pending.len() >= window
            && let Some(ack) = pending.pop_front()
        {
            ack.await?;
        }
        let ack = js
            .publish(subject.clone(), payload(id, size).into())
            .await?;
        pending.push_back(ack);
    }
    for ack in pending {
        ack.await?;
    }
    Ok(())
}

async fn consume(
    consumer: PullConsumer,
    progress: Arc<Progress>,
    batch: usize,
) -> anyhow::Result<()> {
    let mut got = Vec::with_capacity(batch);
    while !progress.done() {
        progress.check_deadline()?;
        got.clear();
        if batch > 1 {
            let mut messages = consumer.fetch().max_messages(batch).messages().await?;
            while let Some(message) = messages.next().await {
                got.push(message.map_err(|e| anyhow!(e))?);
            }
        }
        if got.is_empty() {
            // Unbatched, or nothing was ready: wait (briefly) for one message.
            let mut messages = consumer
                .batch()
                .max_messages(1)
                .expires(BLOCK)
                .messages()
                .await?;
            while let Some(message) = messages.next().await {
                got.push(message.map_err(|e| anyhow!(e))?);
            }
        }
        if got.is_empty() {
            continue;
        }
        try_join_all(got.iter().map(|message| message.double_ack()))
            .await
            .map_err(|e| anyhow!(e).context("ack"))?;
        progress.record_acks(got.len() as u64);
    }
    Ok(())
}
