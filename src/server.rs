//! Running the broker behind its HTTP API: bind, recover, serve, shut down gracefully.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::auth::Keys;
use crate::broker::{Broker, BrokerError, BrokerOptions};
use crate::clock::Clock;
use crate::config::Config;
use crate::http::conn::{BodyLimits, ConnLimits};
use crate::http::{self, AppState};
use crate::mirror::{self, MirrorStatus, Relays};

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// Opening or recovering the store failed.
    #[error("cannot open the data directory: {0}")]
    Open(#[from] BrokerError),
    /// Recovery panicked or was cancelled.
    #[error("recovery did not complete")]
    Recovery,
    /// The TLS certificate or key could not be used.
    #[error("{0}")]
    Tls(String),
    /// Asked to listen beyond loopback with no API key to require.
    #[error(
        "refusing to serve on {addr} without API keys: anyone who can reach it could do anything. Create a key first (wharf keys create --data-dir DIR --tenant '*' --scope '*', see docs/security.md), listen on 127.0.0.1, or pass --insecure-no-auth if something in front of wharf already authenticates"
    )]
    NoKeys {
        /// The address.
        addr: SocketAddr,
    },
}

/// The safe default: with no key to require, serve only where nobody else can connect.
fn refuses_to_serve(addr: SocketAddr, keys_exist: bool, insecure_no_auth: bool) -> bool {
    !keys_exist && !addr.ip().is_loopback() && !insecure_no_auth
}

/// Stops a server that will not serve: the listener (which only answered `/healthz`), then
/// the store.
async fn refuse(stop: &Notify, http: JoinHandle<()>, broker: Arc<Broker>) {
    stop.notify_one();
    let _ = http.await;
    let _ = tokio::task::spawn_blocking(move || broker.close()).await;
}

/// A running server.
pub struct Server {
    addr: SocketAddr,
    broker: Arc<Broker>,
    stop: Arc<Notify>,
    http: JoinHandle<()>,
    timer: JoinHandle<()>,
    sweeper: JoinHandle<()>,
    relays: Relays,
    grace: Duration,
}

impl Server {
    /// Binds, starts answering `/healthz`, recovers the store, then serves the whole API.
    /// Returns once the broker is ready.
    pub async fn start(config: &Config, clock: Clock) -> Result<Server, ServeError> {
        Self::start_with(config, config.broker_options(), clock).await
    }

    /// Like [`Server::start`], with explicit broker options (tests fix the random seed).
    pub async fn start_with(
        config: &Config,
        options: BrokerOptions,
        clock: Clock,
    ) -> Result<Server, ServeError> {
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| ServeError::Bind {
                    addr: config.listen,
                    source,
                })?;
        let addr = listener.local_addr().map_err(|source| ServeError::Bind {
            addr: config.listen,
            source,
        })?;
        let tls = match (&config.tls_cert, &config.tls_key) {
            (Some(cert), Some(key)) => {
                Some(http::tls::acceptor(cert, key).map_err(ServeError::Tls)?)
            }
            _ => None,
        };
        let scheme = if tls.is_some() { "https" } else { "http" };
        tracing::info!(%addr, data_dir = %config.data_dir.display(), durability = ?config.durability, "wharf listening on {scheme}://{addr}");

        let app = AppState::new();
        app.set_tls(tls.is_some());
        app.set_loopback(addr.ip().is_loopback());
        let router = http::router_with(
            app.clone(),
            BodyLimits {
                max_bytes: config.max_body_bytes,
                read_timeout: Duration::from_millis(config.body_read_timeout_ms),
            },
        );
        let limits = ConnLimits {
            max_connections: http::conn::connections_within_fd_limit(config.max_connections),
            header_read_timeout: Duration::from_millis(config.header_read_timeout_ms),
        };
        let stop = Arc::new(Notify::new());
        let stopped = stop.clone();
        let http = tokio::spawn(http::conn::serve(
            listener,
            router,
            limits,
            tls,
            async move {
                stopped.notified().await;
            },
        ));

        let broker = tokio::task::spawn_blocking(move || Broker::open(&options, clock))
            .await
            .map_err(|_| ServeError::Recovery)??;
        let keys = match Keys::load(broker.clone()) {
            Ok(keys) => keys.with_tenant_limits(&config.tenant_key_limits()),
            Err(error) => {
                refuse(&stop, http, broker).await;
                return Err(error.into());
            }
        };
        if refuses_to_serve(addr, keys.enabled(), config.insecure_no_auth) {
            refuse(&stop, http, broker).await;
            return Err(ServeError::NoKeys { addr });
        }
        if !keys.enabled() && addr.ip().is_loopback() {
            tracing::info!(%addr, "no API keys yet: open to local clients only (docs/security.md)");
        } else if !keys.enabled() {
            tracing::warn!(%addr, "no API keys and --insecure-no-auth: every client that reaches this address may do anything");
        }
        // Serve first, then log: clients (and tests) take the log line to mean "ready".
        app.set_broker(broker.clone(), Arc::new(keys));
        let stats = broker.recovery_stats();
        tracing::info!(
            jobs = stats.jobs,
            queues = stats.queues,
            elapsed_ms = stats.elapsed.as_millis() as u64,
            "recovered {} jobs in {:?}",
            stats.jobs,
            stats.elapsed
        );
        let relays = mirror::start(&broker, &config.mirrors);
        app.set_mirrors(relays.watch());
        let timer = tokio::spawn(broker.clone().run_timer());
        let sweeper = tokio::spawn(broker.clone().run_sweeper());
        Ok(Server {
            addr,
            broker,
            stop,
            http,
            timer,
            sweeper,
            relays,
            grace: Duration::from_millis(config.shutdown_grace_ms),
        })
    }

    /// Every mirror's status, as it changes (in the order of the config).
    pub fn mirrors(&self) -> Vec<tokio::sync::watch::Receiver<MirrorStatus>> {
        self.relays.watch()
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The broker it serves.
    pub fn broker(&self) -> &Arc<Broker> {
        &self.broker
    }

    /// Stops accepting connections, ends long-polls, lets in-flight requests finish within the
    /// grace period, then drains the writer (one last fsync) and joins it.
    pub async fn shutdown(self) {
        self.stop.notify_one();
        self.broker.begin_shutdown();
        let mut http = self.http;
        if tokio::time::timeout(self.grace, &mut http).await.is_err() {
            tracing::warn!(
                grace_ms = self.grace.as_millis() as u64,
                "requests still running after the grace period; dropping them"
            );
            http.abort();
        }
        // Both stop at once on `begin_shutdown`; the bound only keeps a bug from hanging a stop.
        for mut task in [self.timer, self.sweeper] {
            if tokio::time::timeout(self.grace, &mut task).await.is_err() {
                tracing::error!("a background task did not stop; dropping it");
                task.abort();
            }
        }
        // Relays stop on `begin_shutdown` too, after the batch they may be applying.
        self.relays.stop(self.grace).await;
        let broker = self.broker;
        let _ = tokio::task::spawn_blocking(move || broker.close()).await;
        tracing::info!("wharf stopped");
    }

    /// Runs until `signal` completes, then shuts down.
    pub async fn run_until(self, signal: impl Future<Output = ()>) {
        signal.await;
        tracing::info!("shutting down");
        self.shutdown().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_keys_it_serves_only_on_loopback_unless_told_otherwise() {
        let addr = |a: &str| {
            a.parse::<SocketAddr>()
                .unwrap_or_else(|e| panic!("{a}: {e}"))
        };
        for open in ["127.0.0.1:7070", "127.3.4.5:1", "[::1]:7070"] {
            assert!(!refuses_to_serve(addr(open), false, false), "{open}");
        }
        for exposed in ["0.0.0.0:7070", "10.0.0.1:7070", "[::]:7070"] {
            assert!(refuses_to_serve(addr(exposed), false, false), "{exposed}");
            assert!(
                !refuses_to_serve(addr(exposed), true, false),
                "{exposed} with keys"
            );
            assert!(
                !refuses_to_serve(addr(exposed), false, true),
                "{exposed} insecure"
            );
        }
    }
}
