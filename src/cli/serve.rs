//! `streamwire serve`: run the server (signalling, telemetry store, browser client) until
//! Ctrl-C / SIGTERM, then shut down gracefully (peers are told and can reconnect elsewhere).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::state::{SECRET_FILE, StateArgs};
use anyhow::Context;
use clap::Args;
use streamwire::server::turn::TurnConfig;
use streamwire::server::{Server, ServerConfig};
use streamwire::signalling::protocol::IceServer;
use streamwire::signalling::token::{load_secret, parse_ttl};
use streamwire::telemetry::store::DEFAULT_DB_FILE;

/// Arguments of `streamwire serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Listen address.
    #[arg(long, default_value = "127.0.0.1:8443")]
    pub addr: SocketAddr,
    /// PEM certificate chain (enables wss://; needs --tls-key).
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key (needs --tls-cert).
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// File holding the HS256 secret; created with a random secret if missing. Default:
    /// streamwire.secret in the state directory.
    #[arg(long)]
    pub secret_file: Option<PathBuf>,
    #[command(flatten)]
    pub state: StateArgs,
    /// Largest WebSocket message processed, bytes.
    #[arg(long, default_value_t = 128 * 1024)]
    pub max_frame_bytes: usize,
    /// Largest real-time message payload, bytes.
    #[arg(long, default_value_t = 64 * 1024)]
    pub max_payload_bytes: usize,
    /// Sustained frames per second per connection.
    #[arg(long, default_value_t = 200)]
    pub rate: u32,
    /// Burst of frames per connection.
    #[arg(long, default_value_t = 400)]
    pub burst: u32,
    /// Maximum peers per room.
    #[arg(long, default_value_t = 100)]
    pub max_peers_per_room: usize,
    /// Resume grace period (e.g. 30s).
    #[arg(long, default_value = "30s")]
    pub grace: String,
    /// Keepalive ping interval.
    #[arg(long, default_value = "10s")]
    pub ping_interval: String,
    /// Close connections silent for this long.
    #[arg(long, default_value = "30s")]
    pub idle_timeout: String,
    /// ICE server URL announced to peers (repeatable; none by default).
    #[arg(long = "ice-server")]
    pub ice_servers: Vec<String>,
    /// TURN server for which per-peer time-limited credentials are minted (coturn
    /// use-auth-secret): turn:HOST:PORT[?transport=udp|tcp] or turns:HOST:PORT (repeatable;
    /// needs --turn-secret-file).
    #[arg(long = "turn-url", requires = "turn_secret_file")]
    pub turn_urls: Vec<String>,
    /// File holding the TURN server's static-auth-secret.
    #[arg(long, requires = "turn_urls")]
    pub turn_secret_file: Option<PathBuf>,
    /// Lifetime of each minted TURN credential (at least 10s); fresh ones are sent every
    /// half lifetime.
    #[arg(long, default_value = "1h")]
    pub turn_ttl: String,
    /// Development mode: the demo page at / gets a "mint a token" button (HTTP GET
    /// /dev/token mints tokens for anyone). Never use in production.
    #[arg(long)]
    pub dev: bool,
    /// Telemetry database (SQLite, created if missing). Default: streamwire-telemetry.db in
    /// the state directory.
    #[arg(long)]
    pub db: Option<PathBuf>,
    /// Telemetry retention (e.g. 30d); older data is purged at start and hourly.
    #[arg(long, default_value = "30d", value_parser = super::privacy::parse_retention)]
    pub retention: Duration,
}

fn dur(flag: &str, v: &str) -> anyhow::Result<Duration> {
    parse_ttl(v)
        .map_err(anyhow::Error::msg)
        .with_context(|| format!("--{flag}"))
}

/// Where the server keeps its secret and database.
pub struct StateFiles {
    /// The signalling secret.
    pub secret: PathBuf,
    /// The telemetry database.
    pub db: PathBuf,
}

/// The secret and database paths: the flags, else the state directory (created if a file
/// is to be there).
pub fn state_files(a: &ServeArgs) -> anyhow::Result<StateFiles> {
    let files = StateFiles {
        secret: a.state.file(a.secret_file.as_deref(), SECRET_FILE)?,
        db: a.state.file(a.db.as_deref(), DEFAULT_DB_FILE)?,
    };
    a.state.create_for(&files.secret)?;
    a.state.create_for(&files.db)?;
    Ok(files)
}

/// Build the server configuration from the arguments.
pub fn config(a: &ServeArgs, files: &StateFiles) -> anyhow::Result<ServerConfig> {
    let secret = load_secret(&files.secret, true)?;
    let mut cfg = ServerConfig::new(a.addr, secret);
    cfg.tls = a.tls_cert.clone().zip(a.tls_key.clone());
    cfg.dev = a.dev;
    cfg.limits.max_frame_bytes = a.max_frame_bytes;
    cfg.limits.max_payload_bytes = a.max_payload_bytes;
    cfg.limits.rate_per_sec = a.rate;
    cfg.limits.burst = a.burst;
    cfg.limits.max_peers_per_room = a.max_peers_per_room;
    cfg.grace = dur("grace", &a.grace)?;
    cfg.ping_interval = dur("ping-interval", &a.ping_interval)?;
    cfg.idle_timeout = dur("idle-timeout", &a.idle_timeout)?;
    cfg.ice_servers = a
        .ice_servers
        .iter()
        .map(|u| IceServer {
            urls: vec![u.clone()],
            username: None,
            credential: None,
        })
        .collect();
    if let Some(path) = &a.turn_secret_file {
        let ttl = dur("turn-ttl", &a.turn_ttl)?;
        cfg.turn = Some(
            TurnConfig::new(a.turn_urls.clone(), TurnConfig::read_secret(path)?, ttl)
                .context("--turn-url / --turn-secret-file / --turn-ttl")?,
        );
    }
    let mut telemetry = streamwire::server::TelemetryConfig::new(files.db.clone());
    telemetry.retention = a.retention;
    cfg.telemetry = Some(telemetry);
    Ok(cfg)
}

/// Run until Ctrl-C or SIGTERM.
pub fn run(a: ServeArgs) -> anyhow::Result<()> {
    let files = state_files(&a)?;
    let cfg = config(&a, &files)?;
    eprintln!(
        "streamwire serve: secret {}, telemetry database {}",
        files.secret.display(),
        files.db.display()
    );
    if let Some(turn) = &cfg.turn {
        eprintln!(
            "streamwire serve: TURN credentials for {} (lifetime {})",
            turn.urls().join(", "),
            humantime::format_duration(turn.ttl())
        );
    }
    let rt = tokio::runtime::Runtime::new().context("starting the tokio runtime")?;
    rt.block_on(async move {
        let server = Server::bind(cfg).await?;
        let handle = server.handle();
        let task = tokio::spawn(server.run());
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("installing the SIGTERM handler")?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r.context("waiting for Ctrl-C")?,
            _ = term.recv() => {}
        }
        tracing::info!("shutting down");
        handle.shutdown().await;
        let _ = task.await;
        Ok(())
    })
}
