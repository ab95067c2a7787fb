//! `streamwire serve`: run the server (signalling, telemetry store, browser client) until
//! Ctrl-C / SIGTERM, then shut down gracefully (peers are told and can reconnect elsewhere).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::state::{SECRET_FILE, StateArgs};
use anyhow::Context;
use clap::Args;
use streamwire::server::sfu::{SfuConfig, TopologyChoice};
use streamwire::server::turn::TurnConfig;
use streamwire::server::{Server, ServerConfig};
use streamwire::signalling::Limits;
use streamwire::signalling::protocol::IceServer;
use streamwire::signalling::token::{load_secret, parse_ttl};
use streamwire::telemetry::store::DEFAULT_DB_FILE;

use super::serve_config::{Origins, resolve};

/// Arguments of `streamwire serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Read settings from a TOML file: each key is one of these flags without `--`
    /// (`max-frame-bytes = 65536`, `dev = true`, `ice-server = ["turn:..."]`); flags given on
    /// the command line override the file.
    #[arg(long)]
    pub config: Option<PathBuf>,
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
    /// Largest WebSocket message processed, bytes; a larger one (up to --hard-frame-bytes)
    /// fails with `frame_too_large` and the connection goes on.
    #[arg(long, default_value_t = Limits::default().max_frame_bytes)]
    pub max_frame_bytes: usize,
    /// WebSocket messages above this size close the connection (close code 1009), bytes.
    #[arg(long, default_value_t = Limits::default().hard_frame_bytes)]
    pub hard_frame_bytes: usize,
    /// Largest real-time message payload, bytes.
    #[arg(long, default_value_t = Limits::default().max_payload_bytes)]
    pub max_payload_bytes: usize,
    /// Sustained frames per second per connection.
    #[arg(long, default_value_t = Limits::default().rate_per_sec)]
    pub rate: u32,
    /// Burst of frames per connection.
    #[arg(long, default_value_t = Limits::default().burst)]
    pub burst: u32,
    /// Maximum peers per room.
    #[arg(long, default_value_t = Limits::default().max_peers_per_room)]
    pub max_peers_per_room: usize,
    /// Bytes of unacknowledged frames held per peer (for resume); more ends the session
    /// with `bye` `slow_consumer`.
    #[arg(long, default_value_t = Limits::default().max_queue_bytes)]
    pub max_queue_bytes: usize,
    /// Connections that have not joined yet, in all; more are closed at once.
    #[arg(long, default_value_t = Limits::default().max_pending)]
    pub max_pending: usize,
    /// Connections that have not joined yet from one IPv4 address or IPv6 /64.
    #[arg(long, default_value_t = Limits::default().max_pending_per_ip)]
    pub max_pending_per_ip: usize,
    /// Time from accept to the end of the HTTP handshake (TLS, request head, upgrade).
    #[arg(long, default_value = "10s")]
    pub handshake_timeout: String,
    /// Time from the WebSocket upgrade to a successful join/resume.
    #[arg(long, default_value = "10s")]
    pub join_timeout: String,
    /// How long a closing connection is kept to deliver its last frames.
    #[arg(long, default_value = "2s")]
    pub close_linger: String,
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
    /// Janus instance (WebSocket API, ws://HOST:PORT on a private network) for rooms in SFU
    /// mode (repeatable: a new room goes to the instance serving the fewest members; needs
    /// --sfu-api-secret-file and --sfu-admin-key-file). See docs/sfu.md.
    #[arg(long = "sfu", requires_all = ["sfu_api_secret_file", "sfu_admin_key_file"])]
    pub sfu_urls: Vec<String>,
    /// File holding Janus's api_secret (janus.jcfg, general.api_secret).
    #[arg(long, requires = "sfu_urls")]
    pub sfu_api_secret_file: Option<PathBuf>,
    /// File holding the VideoRoom plugin's admin_key (janus.plugin.videoroom.jcfg).
    #[arg(long, requires = "sfu_urls")]
    pub sfu_admin_key_file: Option<PathBuf>,
    /// How rooms' media flows: `mesh` (every member to every member), `sfu` (through
    /// Janus; needs --sfu) or `auto` (a mesh up to --auto-mesh-max members, then the SFU;
    /// needs --sfu). Default: `sfu` with --sfu, else `mesh`.
    #[arg(long)]
    pub topology: Option<TopologyChoice>,
    /// Largest mesh of `--topology auto`: the member joining past it moves the room to the
    /// SFU (at least 1).
    #[arg(long, default_value_t = streamwire::server::sfu::DEFAULT_AUTO_MESH_MAX,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub auto_mesh_max: usize,
    /// Most members one Janus instance serves, over all its rooms: a member joining a room
    /// whose instances are full goes to another instance, and the room spans both, its
    /// media forwarded between them (docs/sfu.md, "Several instances"). Default: no limit
    /// (a room stays on one instance).
    #[arg(long, requires = "sfu_urls",
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub sfu_instance_capacity: Option<usize>,
    /// Port of every Janus instance's Admin API WebSocket (janus.transport.websockets.jcfg
    /// `admin.admin_ws_port`, on the host of its --sfu URL); with
    /// --sfu-admin-secret-file, /sfu/status and the report show bitrates. Default: none.
    #[arg(long, requires_all = ["sfu_urls", "sfu_admin_secret_file"])]
    pub sfu_admin_port: Option<u16>,
    /// File holding Janus's admin_secret (janus.jcfg, general.admin_secret).
    #[arg(long, requires = "sfu_admin_port")]
    pub sfu_admin_secret_file: Option<PathBuf>,
    /// Development mode: the demo page at / gets a "mint a token" button (HTTP GET
    /// /dev/token mints tokens for anyone). Never use in production.
    #[arg(long)]
    pub dev: bool,
    /// Database (SQLite, created if missing): telemetry and the whiteboards. Default:
    /// streamwire-telemetry.db in the state directory.
    #[arg(long)]
    pub db: Option<PathBuf>,
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
    /// A whiteboard sync answer (a joining member's copy of the board) larger than this
    /// many bytes goes in chunks of this size, paced by the member's confirmations (lowered
    /// so that --whiteboard-sync-window chunks take at most half of --max-queue-bytes).
    #[arg(long, default_value_t = 512 * 1024,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1024..))]
    pub whiteboard_sync_chunk_bytes: usize,
    /// Chunks of a whiteboard sync answer sent ahead of the member's confirmations.
    #[arg(long, default_value_t = 2,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub whiteboard_sync_window: usize,
    /// Echo tests and network probes running at once (0: none; `media_test` is then
    /// answered `not_implemented`). Each is one GStreamer pipeline on this server.
    #[arg(long, default_value_t = 8,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(0..=1024))]
    pub max_media_tests: usize,
    /// Longest echo test or network probe, s.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u32).range(1..=3600))]
    pub media_test_max_seconds: u32,
    /// How long the echo test holds the media before sending it back (e.g. 2500ms, 2s;
    /// at most 5s).
    #[arg(long, default_value = "2500ms", value_parser = humantime::parse_duration)]
    pub echo_delay: Duration,
    /// Highest rate of the network probe's stream to the client, kbit/s (the downlink
    /// estimate stops there).
    #[arg(long, default_value_t = 4000, value_parser = clap::value_parser!(u32).range(300..=100_000))]
    pub probe_max_kbps: u32,
    /// A local address the media tests' ICE gathers on (repeatable); default: every
    /// interface.
    #[arg(long = "media-test-address", value_name = "ADDR")]
    pub media_test_addresses: Vec<std::net::IpAddr>,
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

/// Build the server configuration from the arguments; `origins` names where the values read
/// from a config file were written, for the errors.
pub fn config(
    a: &ServeArgs,
    origins: &Origins,
    files: &StateFiles,
) -> anyhow::Result<ServerConfig> {
    let dur = |flag: &str, v: &str| -> anyhow::Result<Duration> {
        parse_ttl(v).map_err(|e| match origins.snippet(flag) {
            Some(s) => anyhow::anyhow!("{}: {e}\n{s}", origins.describe(flag)),
            None => anyhow::anyhow!("{}: {e}", origins.describe(flag)),
        })
    };
    // Values first: a bad one is reported before the secret file is created.
    let handshake_timeout = dur("handshake-timeout", &a.handshake_timeout)?;
    let join_timeout = dur("join-timeout", &a.join_timeout)?;
    let close_linger = dur("close-linger", &a.close_linger)?;
    let grace = dur("grace", &a.grace)?;
    let ping_interval = dur("ping-interval", &a.ping_interval)?;
    let idle_timeout = dur("idle-timeout", &a.idle_timeout)?;
    let echo_delay = a.echo_delay;
    if echo_delay > streamwire::server::MAX_ECHO_DELAY {
        anyhow::bail!(
            "{}: {} ms is above the highest echo delay, {} ms",
            origins.describe("echo-delay"),
            echo_delay.as_millis(),
            streamwire::server::MAX_ECHO_DELAY.as_millis()
        );
    }
    let sfu = sfu_config(a)?;
    let secret = load_secret(&files.secret, true)?;
    let mut cfg = ServerConfig::new(a.addr, secret);
    cfg.handshake_timeout = handshake_timeout;
    cfg.join_timeout = join_timeout;
    cfg.close_linger = close_linger;
    cfg.grace = grace;
    cfg.ping_interval = ping_interval;
    cfg.idle_timeout = idle_timeout;
    cfg.tls = a.tls_cert.clone().zip(a.tls_key.clone());
    cfg.dev = a.dev;
    cfg.limits.max_frame_bytes = a.max_frame_bytes;
    cfg.limits.hard_frame_bytes = a.hard_frame_bytes;
    cfg.limits.max_payload_bytes = a.max_payload_bytes;
    cfg.limits.rate_per_sec = a.rate;
    cfg.limits.burst = a.burst;
    cfg.limits.max_peers_per_room = a.max_peers_per_room;
    cfg.limits.max_queue_bytes = a.max_queue_bytes;
    cfg.limits.max_pending = a.max_pending;
    cfg.limits.max_pending_per_ip = a.max_pending_per_ip;
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
    cfg.sfu = sfu;
    let mut telemetry = streamwire::server::TelemetryConfig::new(files.db.clone());
    telemetry.retention = a.retention;
    cfg.telemetry = Some(telemetry);
    cfg.whiteboard.db = Some(files.db.clone());
    cfg.whiteboard.retention = a.whiteboard_retention;
    cfg.whiteboard.compact_after = a.whiteboard_compact_after as usize;
    cfg.whiteboard.max_boards_per_room = a.whiteboard_max_boards as usize;
    cfg.whiteboard.awareness_per_sec = a.whiteboard_awareness_rate;
    cfg.whiteboard.max_document_bytes = a.whiteboard_max_document_bytes;
    cfg.whiteboard.max_document_pages = a.whiteboard_max_document_pages as usize;
    cfg.whiteboard.sync_chunk_bytes = a.whiteboard_sync_chunk_bytes;
    cfg.whiteboard.sync_window = a.whiteboard_sync_window;
    cfg.media_test = streamwire::server::MediaTestConfig {
        max_tests: a.max_media_tests,
        max_seconds: a.media_test_max_seconds,
        echo_delay,
        probe_max_kbps: a.probe_max_kbps,
        local_addresses: a
            .media_test_addresses
            .iter()
            .map(|a| a.to_string())
            .collect(),
    };
    Ok(cfg)
}

/// The SFU settings of `--sfu`, `--sfu-*-file` and `--topology`.
fn sfu_config(a: &ServeArgs) -> anyhow::Result<Option<SfuConfig>> {
    let read = |flag: &str, path: &Option<PathBuf>| -> anyhow::Result<String> {
        let path = path
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("--sfu needs --{flag}"))?;
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("--{flag} {}", path.display()))?;
        let secret = text.trim().to_owned();
        anyhow::ensure!(
            !secret.is_empty(),
            "--{flag} {}: the file is empty",
            path.display()
        );
        Ok(secret)
    };
    if a.sfu_urls.is_empty() {
        if let Some(t @ (TopologyChoice::Sfu | TopologyChoice::Auto { .. })) = a.topology {
            let name = if t == TopologyChoice::Sfu {
                "sfu"
            } else {
                "auto"
            };
            anyhow::bail!("--topology {name} needs a Janus instance (--sfu ws://HOST:PORT)");
        }
        return Ok(None);
    }
    let mut cfg = SfuConfig::new(
        a.sfu_urls.clone(),
        &read("sfu-api-secret-file", &a.sfu_api_secret_file)?,
        &read("sfu-admin-key-file", &a.sfu_admin_key_file)?,
    );
    cfg.topology = match a.topology.unwrap_or(TopologyChoice::Sfu) {
        TopologyChoice::Auto { .. } => TopologyChoice::Auto {
            mesh_max: a.auto_mesh_max,
        },
        other => other,
    };
    cfg.instance_capacity = a.sfu_instance_capacity;
    if let Some(port) = a.sfu_admin_port {
        cfg.admin = Some(streamwire::server::sfu::SfuAdmin {
            port,
            secret: read("sfu-admin-secret-file", &a.sfu_admin_secret_file)?,
        });
    }
    Ok(Some(cfg))
}

/// Run until Ctrl-C or SIGTERM.
pub fn run(a: ServeArgs) -> anyhow::Result<()> {
    let (a, origins) = match &a.config {
        Some(path) => resolve(path, std::env::args_os().collect())?,
        None => (a, Origins::default()),
    };
    let files = state_files(&a)?;
    let cfg = config(&a, &origins, &files)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The flags' defaults are the library's: one source for every default.
    #[test]
    fn flag_defaults_are_the_library_defaults() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cmd {
            #[command(flatten)]
            serve: ServeArgs,
        }
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().to_str().unwrap();
        let cmd = Cmd::parse_from(["serve", "--state-dir", state]);
        let files = state_files(&cmd.serve).unwrap();
        let cfg = config(&cmd.serve, &Origins::default(), &files).unwrap();
        let lib = ServerConfig::new(cfg.addr, cfg.secret.clone());
        assert_eq!(cfg.limits, lib.limits);
        assert_eq!(
            (
                cfg.handshake_timeout,
                cfg.join_timeout,
                cfg.close_linger,
                cfg.grace,
                cfg.ping_interval,
                cfg.idle_timeout
            ),
            (
                lib.handshake_timeout,
                lib.join_timeout,
                lib.close_linger,
                lib.grace,
                lib.ping_interval,
                lib.idle_timeout
            )
        );
        assert!(cfg.ice_servers.is_empty() && !cfg.dev);
    }
}
