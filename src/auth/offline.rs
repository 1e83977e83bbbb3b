//! `wharf keys`: managing keys with the broker stopped, straight on its data directory (how
//! the first key is made). The store's file lock keeps this from running beside a server.

use std::sync::Arc;

use super::keys::{KeySpec, KeyView, Keys};
use super::principal::Principal;
use crate::broker::{Broker, BrokerError};
use crate::clock::Clock;
use crate::config::Config;

/// Opens the store of `config`, runs `work` on its keys as an operator, and closes it.
pub async fn with_keys<T>(
    config: &Config,
    work: impl AsyncFnOnce(&Keys, &Principal) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let options = config.broker_options();
    let broker: Arc<Broker> =
        tokio::task::spawn_blocking(move || Broker::open(&options, Clock::System))
            .await?
            .map_err(|e| opening(config, e))?;
    let keys = Keys::load(broker.clone())?;
    let result = work(&keys, &keys.unauthenticated()).await;
    drop(keys);
    broker.begin_shutdown();
    tokio::task::spawn_blocking(move || broker.close()).await?;
    result
}

fn opening(config: &Config, error: BrokerError) -> anyhow::Error {
    anyhow::anyhow!(
        "cannot open {}: {error} (if a wharf server runs on it, use its API instead: POST /v1/keys)",
        config.data_dir.display()
    )
}

/// Creates a key; returns it and its token.
pub async fn create(config: &Config, spec: KeySpec) -> anyhow::Result<(KeyView, String)> {
    with_keys(config, async |keys, by| Ok(keys.create(by, spec).await?)).await
}

/// Every key.
pub async fn list(config: &Config) -> anyhow::Result<Vec<KeyView>> {
    with_keys(config, async |keys, by| Ok(keys.list(by))).await
}

/// Revokes key `id`.
pub async fn revoke(config: &Config, id: &str) -> anyhow::Result<KeyView> {
    with_keys(config, async |keys, by| Ok(keys.revoke(by, id).await?)).await
}
