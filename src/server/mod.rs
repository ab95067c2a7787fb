//! The service behind `streamwire serve`: one listening port composing
//!
//! - the signalling hub (rooms, presence, SDP/ICE relay, real-time messages with delivery
//!   results, resumable sessions, keepalive, limits; [`crate::signalling`]),
//! - the telemetry service: ingest of telemetry, feedback and privacy requests into the
//!   SQLite store, and the hourly retention purge (`telemetry.rs`),
//! - the whiteboard service: the authoritative document of every room's whiteboards, their
//!   persistence and compaction, documents imported as pages (`whiteboard/`); composed with
//!   the telemetry service into the hub's one service seam (`services.rs`),
//! - plain HTTP on the same port: the browser client's files (`web.rs`), the room report
//!   (`report.rs`) and, with `--dev`, token minting (`http.rs`),
//! - the accept loop with optional TLS (`listener.rs`, [`tls`]), and graceful shutdown,
//! - TURN credentials minted per peer ([`turn`]),
//! - the media test peer: echo tests and network probes, one GStreamer pipeline each
//!   (`media_test/`).
//!
//! ```no_run
//! # async fn demo() -> Result<(), streamwire::server::ServerError> {
//! use streamwire::server::{Server, ServerConfig};
//! let cfg = ServerConfig::new("127.0.0.1:0".parse().unwrap(), b"0123456789abcdef0123456789abcdef".to_vec());
//! let server = Server::bind(cfg).await?;
//! println!("listening on {}", server.local_addr());
//! let handle = server.handle();
//! tokio::spawn(server.run());
//! // ... later:
//! handle.shutdown().await;
//! # Ok(()) }
//! ```

mod handshake;
mod http;
mod listener;
mod media_test;
mod report;
mod room_admin;
mod services;
pub mod sfu;
mod telemetry;
pub mod tls;
pub mod turn;
mod web;
mod whiteboard;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::signalling::Limits;
use crate::signalling::hub::{Hub, HubConfig};
use crate::signalling::protocol::IceServer;
use crate::signalling::service::{MediaTests, Service, Sfu};
use crate::signalling::token::MIN_SECRET_LEN;
pub use media_test::{MAX_ECHO_DELAY, MIN_PROBE_MAX_KBPS, MediaTestConfig};
pub use telemetry::TelemetryConfig;
pub use whiteboard::{WhiteboardConfig, WhiteboardError};

/// Server configuration.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Listen address.
    pub addr: SocketAddr,
    /// HS256 secret tokens are verified with (at least 32 bytes).
    pub secret: Vec<u8>,
    /// PEM certificate chain and private key; `None` serves plain `ws://`.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Limits: frame and payload sizes, frame rate, room size, replay buffer.
    pub limits: Limits,
    /// How long a session survives a dropped connection. Default 30 s.
    pub grace: Duration,
    /// WebSocket ping interval. Default 10 s.
    pub ping_interval: Duration,
    /// A connection with no incoming frame (pongs count) for this long is closed. Default 30 s.
    pub idle_timeout: Duration,
    /// Time allowed from accept to the end of the HTTP handshake (TLS, the complete request
    /// head, the upgrade answer), whatever arrives or not. Default 10 s.
    pub handshake_timeout: Duration,
    /// Time allowed between the WebSocket upgrade and a successful `join`/`resume`. Default 10 s.
    pub join_timeout: Duration,
    /// How long a closing connection is kept to deliver its last frames (`bye`, close frame)
    /// before the socket is closed. Default 2 s.
    pub close_linger: Duration,
    /// How long shutdown waits for connections to close (longer than `close_linger`, so a
    /// peer slow to read its `bye` still gets it). Default 3 s.
    pub shutdown_drain: Duration,
    /// ICE servers announced in `welcome` (empty by default; never a public STUN server).
    pub ice_servers: Vec<IceServer>,
    /// TURN with time-limited credentials minted per peer (after `ice_servers` in `welcome`,
    /// re-minted in `resumed` and every half lifetime); `None` by default.
    pub turn: Option<turn::TurnConfig>,
    /// Development mode: plain HTTP `GET /dev/token?room=&name=` mints tokens for anyone
    /// (the demo page's "mint a token" button). Never enable in production. Default off.
    pub dev: bool,
    /// Telemetry store; `None` (the library default) answers telemetry, feedback and
    /// privacy messages with `not_implemented`. `streamwire serve` always sets one.
    pub telemetry: Option<TelemetryConfig>,
    /// Janus instances for rooms in SFU mode (`docs/sfu.md`); `None` (the default): every
    /// room is a mesh.
    pub sfu: Option<sfu::SfuConfig>,
    /// Whiteboards: where they are stored (default: in memory) and their limits.
    pub whiteboard: WhiteboardConfig,
    /// Echo tests and network probes (`docs/protocol.md`, "Media tests"); on by default,
    /// off with `max_tests: 0`.
    pub media_test: MediaTestConfig,
}

impl ServerConfig {
    /// Defaults for everything but the address and secret.
    pub fn new(addr: SocketAddr, secret: Vec<u8>) -> Self {
        let hub = HubConfig::new(secret);
        ServerConfig {
            addr,
            secret: hub.secret,
            tls: None,
            limits: hub.limits,
            grace: hub.grace,
            ping_interval: hub.ping_interval,
            idle_timeout: hub.idle_timeout,
            handshake_timeout: Duration::from_secs(10),
            join_timeout: hub.join_timeout,
            close_linger: hub.close_linger,
            shutdown_drain: Duration::from_secs(3),
            ice_servers: hub.ice_servers,
            turn: None,
            dev: false,
            telemetry: None,
            sfu: None,
            whiteboard: WhiteboardConfig::default(),
            media_test: MediaTestConfig::default(),
        }
    }

    /// The part of the configuration the signalling hub runs on.
    fn hub_config(&self) -> HubConfig {
        HubConfig {
            secret: self.secret.clone(),
            limits: self.limits.clone(),
            grace: self.grace,
            ping_interval: self.ping_interval,
            idle_timeout: self.idle_timeout,
            join_timeout: self.join_timeout,
            close_linger: self.close_linger,
            ice_servers: self.ice_servers.clone(),
            turn: self
                .turn
                .clone()
                .map(|t| Arc::new(t) as Arc<dyn crate::signalling::service::IceMinter>),
        }
    }
}

/// Errors starting the server.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// Binding the listen address failed.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// Address.
        addr: SocketAddr,
        /// Cause.
        source: std::io::Error,
    },
    /// The secret is too short.
    #[error("server secret must be at least {min} bytes, got {got}")]
    WeakSecret {
        /// Minimum.
        min: usize,
        /// Given.
        got: usize,
    },
    /// The limits contradict each other or one is zero.
    #[error("invalid limits: {0}")]
    Limits(String),
    /// TLS configuration failed.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    /// Opening the telemetry store failed.
    #[error(transparent)]
    Telemetry(#[from] crate::telemetry::StoreError),
    /// Reaching the SFU failed.
    #[error(transparent)]
    Sfu(#[from] sfu::SfuError),
    /// Opening the whiteboard store failed.
    #[error(transparent)]
    Whiteboard(#[from] WhiteboardError),
    /// The media test settings are out of bounds, or GStreamer, which runs the tests, could
    /// not start.
    #[error("media tests: {0}")]
    MediaTest(String),
}

/// A bound, not yet running server.
pub struct Server {
    listener: TcpListener,
    hub: Arc<Hub>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    http: Arc<http::Context>,
    telemetry: Option<(Arc<telemetry::TelemetryService>, Duration)>,
    whiteboard: Arc<whiteboard::WhiteboardService>,
    media_tests: Option<Arc<media_test::MediaTestService>>,
    handshake_timeout: Duration,
    shutdown_drain: Duration,
    local_addr: SocketAddr,
}

/// Controls a running server: statistics and graceful shutdown.
#[derive(Clone)]
pub struct ServerHandle {
    hub: Arc<Hub>,
    media_tests: Option<Arc<media_test::MediaTestService>>,
    whiteboard: Arc<whiteboard::WhiteboardService>,
    shutdown_drain: Duration,
    local_addr: SocketAddr,
}

/// Point-in-time counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerStats {
    /// Open WebSocket connections.
    pub connections: usize,
    /// Connections (HTTP or WebSocket) that have not joined yet.
    pub pending: usize,
    /// Live sessions (attached or within the grace period).
    pub sessions: usize,
    /// Rooms with at least one peer.
    pub rooms: usize,
    /// Media tests running (their pipelines not yet torn down).
    pub media_tests: usize,
}

impl Server {
    /// Bind the listen address, load TLS material and open the telemetry store.
    pub async fn bind(cfg: ServerConfig) -> Result<Server, ServerError> {
        if cfg.secret.len() < MIN_SECRET_LEN {
            return Err(ServerError::WeakSecret {
                min: MIN_SECRET_LEN,
                got: cfg.secret.len(),
            });
        }
        cfg.limits.check().map_err(ServerError::Limits)?;
        let mut cfg = cfg;
        cfg.whiteboard
            .fit(cfg.limits.max_queue_bytes)
            .map_err(ServerError::Limits)?;
        let tls = match &cfg.tls {
            Some((cert, key)) => Some(tls::acceptor(cert, key)?),
            None => None,
        };
        let listener = TcpListener::bind(cfg.addr)
            .await
            .map_err(|source| ServerError::Bind {
                addr: cfg.addr,
                source,
            })?;
        let local_addr = listener.local_addr().map_err(|source| ServerError::Bind {
            addr: cfg.addr,
            source,
        })?;
        let telemetry = match &cfg.telemetry {
            Some(t) => Some((
                Arc::new(telemetry::TelemetryService::open(t)?),
                t.purge_every,
            )),
            None => None,
        };
        let sfu_bridge = match &cfg.sfu {
            Some(c) => Some(sfu::Bridge::connect(c.clone()).await?),
            None => None,
        };
        let bridge = sfu_bridge.clone().map(|b| Arc::new(b) as Arc<dyn Sfu>);
        let whiteboard = Arc::new(whiteboard::WhiteboardService::open(cfg.whiteboard.clone())?);
        let media_tests = if cfg.media_test.max_tests > 0 {
            cfg.media_test.check().map_err(ServerError::MediaTest)?;
            crate::gst_init::init().map_err(|e| ServerError::MediaTest(e.to_string()))?;
            Some(Arc::new(media_test::MediaTestService::new(
                cfg.media_test.clone(),
            )))
        } else {
            None
        };
        tracing::info!(%local_addr, tls = tls.is_some(), "signalling server listening");
        let service: Arc<dyn Service> = Arc::new(services::Services {
            telemetry: telemetry.as_ref().map(|(t, _)| t.clone()),
            whiteboard: whiteboard.clone(),
        });
        let http = Arc::new(http::Context {
            secret: cfg.secret.clone(),
            dev: cfg.dev,
            store: telemetry.as_ref().map(|(t, _)| t.store()),
            whiteboard: whiteboard.clone(),
            sfu: sfu_bridge,
        });
        Ok(Server {
            listener,
            hub: Hub::new(
                cfg.hub_config(),
                Some(service),
                bridge,
                media_tests.clone().map(|m| m as Arc<dyn MediaTests>),
            ),
            media_tests,
            tls,
            http,
            telemetry,
            whiteboard,
            handshake_timeout: cfg.handshake_timeout,
            shutdown_drain: cfg.shutdown_drain,
            local_addr,
        })
    }

    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// A handle for stats and shutdown.
    pub fn handle(&self) -> ServerHandle {
        ServerHandle {
            hub: self.hub.clone(),
            media_tests: self.media_tests.clone(),
            whiteboard: self.whiteboard.clone(),
            shutdown_drain: self.shutdown_drain,
            local_addr: self.local_addr,
        }
    }

    /// Accept connections until [`ServerHandle::shutdown`] is called.
    pub async fn run(self) {
        if let Some((service, every)) = &self.telemetry {
            tokio::spawn(telemetry::purge_task(
                service.store(),
                *every,
                self.hub.shutdown_rx(),
            ));
        }
        tokio::spawn(whiteboard_purge(
            self.whiteboard.clone(),
            self.hub.shutdown_rx(),
        ));
        listener::accept_loop(self).await;
    }
}

/// Deletes boards past their retention at start and then hourly, until shutdown.
async fn whiteboard_purge(
    wb: Arc<whiteboard::WhiteboardService>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(3600));
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            _ = tick.tick() => {
                let wb = wb.clone();
                match tokio::task::spawn_blocking(move || wb.purge()).await {
                    Ok(Ok(n)) => tracing::info!(boards = n, "whiteboard retention purge"),
                    Ok(Err(e)) => tracing::warn!(error = %e, "whiteboard retention purge failed"),
                    Err(e) => tracing::warn!(error = %e, "whiteboard purge task failed"),
                }
            }
        }
    }
}

impl ServerHandle {
    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Current counters.
    pub fn stats(&self) -> ServerStats {
        ServerStats {
            connections: self.hub.connection_count(),
            pending: self.hub.pending_count(),
            sessions: self.hub.session_count(),
            rooms: self.hub.room_count(),
            media_tests: self.media_tests.as_ref().map_or(0, |m| m.running()),
        }
    }

    /// Bytes the server stores for a whiteboard (compacted snapshot plus the updates since).
    pub fn whiteboard_stored_bytes(&self, room: &str, board: &str) -> Result<u64, WhiteboardError> {
        self.whiteboard.stored_bytes(room, board)
    }

    /// Stop accepting, tell every peer (`bye` with code `shutdown`, `reconnect: true`), and
    /// wait up to `shutdown_drain` for connections to close.
    pub async fn shutdown(&self) {
        self.hub.begin_shutdown();
        let deadline = tokio::time::Instant::now() + self.shutdown_drain;
        while self.hub.connection_count() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tracing::info!(
            remaining = self.hub.connection_count(),
            "signalling server shut down"
        );
    }
}
