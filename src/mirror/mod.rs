//! Mirrors: relays that copy the broker's state into Postgres or Redis, from the change log.
//!
//! - [`relay`]: the loop every mirror runs (read events, apply them in batches, retry with
//!   capped backoff, snapshot when the mirror is new or behind the log), and its status.
//! - [`change`]: events as row changes, and snapshot rows.
//! - [`postgres`], [`redis`]: the sinks, one file each behind the [`Sink`] trait; a third (NATS
//!   JetStream, Kafka) would be one more file.
//!
//! A relay reads the change log and snapshots through the broker's API, never the tables, and
//! the broker never waits for a relay. Each sink stores its position (the last event applied)
//! in the mirror itself, in the same transaction as the batch, so that each event takes effect
//! exactly once, across crashes of either side.

mod batch;
pub mod change;
mod config;
pub mod postgres;
pub mod redis;
mod relay;

use std::future::Future;
use std::sync::Arc;

pub use config::{MirrorConfig, MirrorKind};
pub use relay::{DeadEvent, MirrorState, MirrorStatus, Relays};

use crate::broker::{Broker, Snapshot};
use change::Change;

/// Why a sink could not apply something.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SinkError {
    /// The mirror is unreachable or the connection broke: reconnect and retry the same batch.
    #[error("mirror unreachable: {0}")]
    Down(String),
    /// The mirror refused the data: retried a few times, then set aside in the dead list.
    #[error("mirror refused the change: {0}")]
    Rejected(String),
}

/// A mirror's storage: where changes are applied, with the position.
pub trait Sink: Send + 'static {
    /// Connects (creating the tables or keys' layout if needed) and returns the position
    /// stored in the mirror: the last event it applied, or `None` if it never applied one.
    fn connect(&mut self) -> impl Future<Output = Result<Option<u64>, SinkError>> + Send;

    /// Applies `changes` in order and records `position` as the last event applied, in one
    /// transaction.
    fn apply(
        &mut self,
        changes: &[Change],
        position: u64,
    ) -> impl Future<Output = Result<(), SinkError>> + Send;

    /// Replaces the jobs and queues the mirror holds with `snapshot`'s, and records its seq
    /// as the position.
    fn replace(
        &mut self,
        snapshot: &mut Snapshot,
    ) -> impl Future<Output = Result<(), SinkError>> + Send;
}

/// Starts a relay for every configured mirror.
pub fn start(broker: &Arc<Broker>, configs: &[MirrorConfig]) -> Relays {
    let mut relays = Relays::default();
    for config in configs {
        match config.kind {
            MirrorKind::Postgres => {
                let sink = postgres::PostgresSink::new(config);
                relays.start(broker.clone(), config, sink);
            }
            MirrorKind::Redis => {
                relays.start(broker.clone(), config, redis::RedisSink::new(config));
            }
        }
    }
    relays
}
