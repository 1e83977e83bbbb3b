//! The `wharf` binary: parse the command line, load configuration, run.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use wharf::clock::Clock;
use wharf::config::{Config, Durability};
use wharf::mirror::MirrorConfig;
use wharf::server::Server;

// glibc malloc was ~15% of CPU under load (many small, short-lived allocations per request);
// mimalloc measured faster (docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// wharf: a single-node, durable job broker with an HTTP API.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the broker. Settings come from the config file, then WHARF_* environment variables,
    /// then these flags (each later source wins).
    Serve(ServeArgs),
    /// Measure throughput and latency over HTTP: against --url, or a temporary in-process
    /// broker. Bounded by --jobs and --duration.
    Bench(wharf::bench::BenchArgs),
    /// Create, list or revoke API keys with the broker stopped (how the first key is made;
    /// with the broker running, use POST /v1/keys).
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Create a key; its token is the last line of stdout, shown this once.
    Create {
        #[command(flatten)]
        store: StoreArg,
        /// Its tenant ('*': an operator key, every tenant)
        #[arg(long, default_value = "default")]
        tenant: String,
        /// A scope it has (repeat for more; '*': every scope): jobs:enqueue, jobs:consume,
        /// jobs:read, queues:admin, schedules:admin, events:read, outbox:write, mirrors:read,
        /// keys:admin, metrics:read
        #[arg(long = "scope", required = true, num_args = 1..)]
        scopes: Vec<String>,
        /// Queues it may touch: names, or prefixes ending in '*' [default: every queue]
        #[arg(long = "queues", num_args = 1..)]
        queues: Vec<String>,
        /// Free text, to tell keys apart
        #[arg(long, default_value = "")]
        label: String,
        /// Most enqueues and outbox writes per second (burst: one second's worth)
        /// [default: unlimited]
        #[arg(long)]
        enqueue_per_sec: Option<u32>,
        /// Most polls, acks, nacks and extends per second [default: unlimited]
        #[arg(long)]
        consume_per_sec: Option<u32>,
        /// Most requests of every other kind per second [default: unlimited]
        #[arg(long)]
        admin_per_sec: Option<u32>,
    },
    /// List every key (never their tokens).
    List {
        #[command(flatten)]
        store: StoreArg,
    },
    /// Revoke a key by id; it is refused from the next request on.
    Revoke {
        #[command(flatten)]
        store: StoreArg,
        /// The key's id
        id: String,
    },
}

#[derive(clap::Args)]
struct StoreArg {
    /// The broker's TOML config file, for its data_dir [default: none]
    #[arg(long, env = "WHARF_CONFIG")]
    config: Option<PathBuf>,
    /// Directory of the data file (wins over the config file's) [default: ./wharf-data]
    #[arg(long, env = "WHARF_DATA_DIR")]
    data_dir: Option<PathBuf>,
}

impl StoreArg {
    /// The broker's configuration, as `serve` would read it for the data directory.
    fn config(&self) -> anyhow::Result<Config> {
        let mut config = match &self.config {
            Some(path) => Config::from_file(path)?,
            None => Config::default(),
        };
        if let Some(dir) = &self.data_dir {
            config.data_dir = dir.clone();
        }
        Ok(config)
    }
}

#[derive(clap::Args)]
struct ServeArgs {
    /// TOML config file (every key optional; README.md lists them) [default: none]
    #[arg(long, env = "WHARF_CONFIG")]
    config: Option<PathBuf>,
    /// Directory of the data file [default: ./wharf-data]
    #[arg(long, env = "WHARF_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Address for the HTTP API [default: 127.0.0.1:7070]
    #[arg(long, env = "WHARF_LISTEN")]
    listen: Option<std::net::SocketAddr>,
    /// sync: fsync before every reply (nothing acknowledged is ever lost). async: fsync every
    /// fsync_interval_ms (a crash loses that last interval) [default: sync]
    #[arg(long, env = "WHARF_DURABILITY", value_enum)]
    durability: Option<Durability>,
    /// A mirror to copy the broker's state into, with the defaults of its kind (postgres://...
    /// or redis://...); repeat for more. Added to the config file's [[mirror]] tables
    /// [default: none]
    #[arg(long = "mirror", value_name = "URL")]
    mirrors: Vec<String>,
    /// PEM certificate chain: serve HTTPS (with --tls-key) [default: plain HTTP]
    #[arg(long, env = "WHARF_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert
    #[arg(long, env = "WHARF_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Serve beyond loopback even though no API key exists (only when something in front of
    /// wharf authenticates; see docs/security.md)
    #[arg(long, env = "WHARF_INSECURE_NO_AUTH")]
    insecure_no_auth: bool,
}

impl ServeArgs {
    fn config(&self) -> anyhow::Result<Config> {
        let mut config = match &self.config {
            Some(path) => Config::from_file(path)?,
            None => Config::default(),
        };
        if let Some(v) = &self.data_dir {
            config.data_dir = v.clone();
        }
        if let Some(v) = self.listen {
            config.listen = v;
        }
        if let Some(v) = self.durability {
            config.durability = v;
        }
        config.insecure_no_auth |= self.insecure_no_auth;
        if let Some(v) = &self.tls_cert {
            config.tls_cert = Some(v.clone());
        }
        if let Some(v) = &self.tls_key {
            config.tls_key = Some(v.clone());
        }
        for url in &self.mirrors {
            let mirror =
                MirrorConfig::from_url(url, &config.mirrors).map_err(anyhow::Error::msg)?;
            config.mirrors.push(mirror);
        }
        config.validate()?;
        Ok(config)
    }
}

/// Opts the process out of transparent huge pages, as Redis does (`disable-thp`). mimalloc asks
/// for them (`MADV_HUGEPAGE`), so even where the system leaves them to `madvise`, a 2 MiB page
/// backs memory the broker has touched a few KiB of: 1M queued jobs took 152 MB after a restart
/// with them and 140 MB without, at the same throughput (docs/benchmarks.md). Called first in
/// `main`, before most of the memory is mapped; `tests/process.rs` checks it took effect.
fn no_transparent_huge_pages() -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    rustix::thread::disable_transparent_huge_pages(true)?;
    Ok(())
}

fn main() -> ExitCode {
    let huge_pages = no_transparent_huge_pages();
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("WHARF_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    if let Err(error) = huge_pages {
        tracing::debug!(%error, "could not opt out of transparent huge pages");
    }
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
            eprintln!("wharf: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("wharf-worker")
        .build()?;
    match cli.command {
        Command::Serve(args) => {
            let config = args.config()?;
            runtime.block_on(async {
                let server = Server::start(&config, Clock::System).await?;
                server.run_until(shutdown_signal()).await;
                anyhow::Ok(())
            })
        }
        Command::Keys { command } => runtime.block_on(keys(command)),
        Command::Bench(args) => runtime.block_on(async {
            let report = wharf::bench::run(args).await?;
            anyhow::ensure!(
                report.errors.total() == 0,
                "{} requests failed",
                report.errors.total()
            );
            Ok(())
        }),
    }
}

async fn keys(command: KeysCommand) -> anyhow::Result<()> {
    use wharf::auth::{KeySpec, offline};
    match command {
        KeysCommand::Create {
            store,
            tenant,
            scopes,
            queues,
            label,
            enqueue_per_sec,
            consume_per_sec,
            admin_per_sec,
        } => {
            let spec = KeySpec {
                tenant: Some(tenant),
                scopes,
                queues,
                label,
                limits: wharf::auth::KeyLimits {
                    enqueue_per_sec,
                    consume_per_sec,
                    admin_per_sec,
                },
            };
            let (key, token) = offline::create(&store.config()?, spec).await?;
            println!("created key {}", describe(&key));
            eprintln!("the token follows; it is shown only this once:");
            println!("{token}");
        }
        KeysCommand::List { store } => {
            for key in offline::list(&store.config()?).await? {
                println!("{}", describe(&key));
            }
        }
        KeysCommand::Revoke { store, id } => {
            let key = offline::revoke(&store.config()?, &id).await?;
            println!("revoked key {}", describe(&key));
        }
    }
    Ok(())
}

/// One line about a key.
fn describe(key: &wharf::auth::KeyView) -> String {
    let queues = if key.queues.is_empty() {
        "*".to_owned()
    } else {
        key.queues.join(",")
    };
    let revoked = key
        .revoked_at
        .map(|at| format!(" revoked {}", wharf::clock::rfc3339(at)))
        .unwrap_or_default();
    format!(
        "{} tenant={} scopes={} queues={queues} label={:?} created {}{revoked}",
        key.id,
        key.tenant,
        key.scopes.join(","),
        key.label,
        wharf::clock::rfc3339(key.created_at),
    )
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(error) => {
                    tracing::warn!(%error, "cannot listen for SIGTERM; only SIGINT stops wharf");
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}
