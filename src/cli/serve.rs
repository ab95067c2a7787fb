//! `streamwire serve`: run the server (signalling, telemetry store, browser client) until
//! Ctrl-C / SIGTERM, then shut down gracefully (peers are told and can reconnect elsewhere).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use streamwire::server::{Server, ServerConfig};
use streamwire::signalling::protocol::IceServer;
use streamwire::signalling::token::{load_secret, parse_ttl};

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
    /// File holding the HS256 secret; created with a random secret if missing.
    #[arg(long, default_value = "streamwire.secret")]
    pub secret_file: PathBuf,
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
    /// Development mode: the demo page at / gets a "mint a token" button (HTTP GET
    /// /dev/token mints tokens for anyone). Never use in production.
    #[arg(long)]
    pub dev: bool,
    /// Database (SQLite, created if missing): telemetry and the whiteboards.
    #[arg(long, default_value = streamwire::telemetry::store::DEFAULT_DB_FILE)]
    pub db: PathBuf,
    /// Telemetry retention (e.g. 30d); older data is purged at start and hourly.
    #[arg(long, default_value = "30d", value_parser = super::privacy::parse_retention)]
    pub retention: Duration,
    /// A whiteboard not changed for this long (e.g. 30d) is deleted (hourly check).
    #[arg(long, default_value = "30d", value_parser = super::privacy::parse_retention)]
    pub whiteboard_retention: Duration,
    /// Stored updates after which a whiteboard is compacted into one snapshot.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    pub whiteboard_compact_after: u32,
    /// Whiteboards per room.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub whiteboard_max_boards: u32,
    /// Awareness updates (cursor, laser pointer) relayed per member and second.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub whiteboard_awareness_rate: u32,
    /// Largest document imported as whiteboard pages, bytes.
    #[arg(long, default_value_t = 50 * 1024 * 1024)]
    pub whiteboard_max_document_bytes: usize,
    /// Most pages of an imported document.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..=10000))]
    pub whiteboard_max_document_pages: u32,
}

fn dur(flag: &str, v: &str) -> anyhow::Result<Duration> {
    parse_ttl(v)
        .map_err(anyhow::Error::msg)
        .with_context(|| format!("--{flag}"))
}

/// Build the server configuration from the arguments.
pub fn config(a: &ServeArgs) -> anyhow::Result<ServerConfig> {
    let secret = load_secret(&a.secret_file, true)?;
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
    let mut telemetry = streamwire::server::TelemetryConfig::new(a.db.clone());
    telemetry.retention = a.retention;
    cfg.telemetry = Some(telemetry);
    cfg.whiteboard.db = Some(a.db.clone());
    cfg.whiteboard.retention = a.whiteboard_retention;
    cfg.whiteboard.compact_after = a.whiteboard_compact_after as usize;
    cfg.whiteboard.max_boards_per_room = a.whiteboard_max_boards as usize;
    cfg.whiteboard.awareness_per_sec = a.whiteboard_awareness_rate;
    cfg.whiteboard.max_document_bytes = a.whiteboard_max_document_bytes;
    cfg.whiteboard.max_document_pages = a.whiteboard_max_document_pages as usize;
    Ok(cfg)
}

/// Run until Ctrl-C or SIGTERM.
pub fn run(a: ServeArgs) -> anyhow::Result<()> {
    let cfg = config(&a)?;
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
