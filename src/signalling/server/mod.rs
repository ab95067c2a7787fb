//! The signalling server behind `streamwire serve`.
//!
//! Rooms, presence, SDP/ICE relay within a room, real-time messages with delivery results,
//! resumable sessions, keepalive, limits, graceful shutdown, optional TLS.
//!
//! ```no_run
//! # async fn demo() -> Result<(), streamwire::signalling::server::ServerError> {
//! use streamwire::signalling::server::{Server, ServerConfig};
//! let cfg = ServerConfig::new("127.0.0.1:0".parse().unwrap(), b"0123456789abcdef0123456789abcdef".to_vec());
//! let server = Server::bind(cfg).await?;
//! println!("listening on {}", server.local_addr());
//! let handle = server.handle();
//! tokio::spawn(server.run());
//! // ... later:
//! handle.shutdown().await;
//! # Ok(()) }
//! ```

mod conn;
mod http;
mod hub;
pub mod tls;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;

use super::protocol::{DEFAULT_MAX_PAYLOAD, IceServer, LimitsInfo};
use hub::Hub;

/// Limits that protect the server. All configurable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest WebSocket message the server processes; larger ones (up to
    /// `hard_frame_bytes`) get a `frame_too_large` error frame and are dropped. Default 128 KiB.
    pub max_frame_bytes: usize,
    /// Messages above this size close the connection at the WebSocket layer without being
    /// buffered further. Default 1 MiB.
    pub hard_frame_bytes: usize,
    /// Largest real-time message payload (decoded). Default 64 KiB.
    pub max_payload_bytes: usize,
    /// Sustained frames per second per connection (token bucket). Default 200.
    pub rate_per_sec: u32,
    /// Token bucket size. Default 400.
    pub burst: u32,
    /// Maximum peers per room. Default 100.
    pub max_peers_per_room: usize,
    /// Frames kept per session for resume (unacknowledged). Default 4096.
    pub replay_frames: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_frame_bytes: 128 * 1024,
            hard_frame_bytes: 1024 * 1024,
            max_payload_bytes: DEFAULT_MAX_PAYLOAD,
            rate_per_sec: 200,
            burst: 400,
            max_peers_per_room: 100,
            replay_frames: 4096,
        }
    }
}

/// Server configuration.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Listen address.
    pub addr: SocketAddr,
    /// HS256 secret tokens are verified with (at least 32 bytes).
    pub secret: Vec<u8>,
    /// PEM certificate chain and private key; `None` serves plain `ws://`.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Limits.
    pub limits: Limits,
    /// How long a session survives a dropped connection. Default 30 s.
    pub grace: Duration,
    /// WebSocket ping interval. Default 10 s.
    pub ping_interval: Duration,
    /// A connection with no incoming frame (pongs count) for this long is closed. Default 30 s.
    pub idle_timeout: Duration,
    /// Time allowed between accept and `join`/`resume`. Default 10 s.
    pub join_timeout: Duration,
    /// How long shutdown waits for connections to close. Default 2 s.
    pub shutdown_drain: Duration,
    /// ICE servers announced in `welcome` (empty by default; never a public STUN server).
    pub ice_servers: Vec<IceServer>,
    /// Development mode: plain HTTP `GET /dev/token?room=&name=` mints tokens for anyone
    /// (the demo page's "mint a token" button). Never enable in production. Default off.
    pub dev: bool,
    /// Telemetry store; `None` (the library default) answers telemetry, feedback and
    /// privacy messages with `not_implemented`. `streamwire serve` always sets one.
    pub telemetry: Option<TelemetryConfig>,
}

/// Where and how long the server keeps telemetry.
#[derive(Debug, Clone)]
pub struct TelemetryConfig {
    /// SQLite database file.
    pub db: PathBuf,
    /// Retention; expired data is purged at start and every [`TelemetryConfig::purge_every`].
    pub retention: Duration,
    /// Interval of the automatic purge. Default 1 h.
    pub purge_every: Duration,
}

impl TelemetryConfig {
    /// `db` with the default retention (30 days) and an hourly purge.
    pub fn new(db: PathBuf) -> Self {
        Self {
            db,
            retention: crate::telemetry::DEFAULT_RETENTION,
            purge_every: Duration::from_secs(3600),
        }
    }
}

impl ServerConfig {
    /// Defaults for everything but the address and secret.
    pub fn new(addr: SocketAddr, secret: Vec<u8>) -> Self {
        ServerConfig {
            addr,
            secret,
            tls: None,
            limits: Limits::default(),
            grace: Duration::from_secs(30),
            ping_interval: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
            join_timeout: Duration::from_secs(10),
            shutdown_drain: Duration::from_secs(2),
            ice_servers: Vec::new(),
            dev: false,
            telemetry: None,
        }
    }

    pub(crate) fn limits_info(&self) -> LimitsInfo {
        LimitsInfo {
            max_frame_bytes: self.limits.max_frame_bytes,
            max_payload_bytes: self.limits.max_payload_bytes,
            rate_per_sec: self.limits.rate_per_sec,
            burst: self.limits.burst,
            max_peers_per_room: self.limits.max_peers_per_room,
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
    /// TLS configuration failed.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    /// Opening the telemetry store failed.
    #[error(transparent)]
    Telemetry(#[from] crate::telemetry::StoreError),
}

/// A bound, not yet running server.
pub struct Server {
    listener: TcpListener,
    hub: Arc<Hub>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    local_addr: SocketAddr,
}

/// Controls a running server: statistics and graceful shutdown.
#[derive(Clone)]
pub struct ServerHandle {
    hub: Arc<Hub>,
    local_addr: SocketAddr,
}

/// Point-in-time counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerStats {
    /// Open WebSocket connections.
    pub connections: usize,
    /// Live sessions (attached or within the grace period).
    pub sessions: usize,
    /// Rooms with at least one peer.
    pub rooms: usize,
}

impl Server {
    /// Bind the listen address and load TLS material.
    pub async fn bind(cfg: ServerConfig) -> Result<Server, ServerError> {
        if cfg.secret.len() < super::token::MIN_SECRET_LEN {
            return Err(ServerError::WeakSecret {
                min: super::token::MIN_SECRET_LEN,
                got: cfg.secret.len(),
            });
        }
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
        let store = match &cfg.telemetry {
            Some(t) => Some(crate::telemetry::Store::open(&t.db, t.retention)?),
            None => None,
        };
        tracing::info!(%local_addr, tls = tls.is_some(), "signalling server listening");
        let hub = Hub::new(cfg);
        if let Some(store) = store {
            let _ = hub.telemetry.set(Arc::new(parking_lot::Mutex::new(store)));
        }
        Ok(Server {
            listener,
            hub,
            tls,
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
            local_addr: self.local_addr,
        }
    }

    /// Accept connections until [`ServerHandle::shutdown`] is called.
    pub async fn run(self) {
        if let (Some(store), Some(t)) = (self.hub.telemetry.get(), &self.hub.cfg.telemetry) {
            tokio::spawn(purge_task(
                store.clone(),
                t.purge_every,
                self.hub.shutdown_rx(),
            ));
        }
        let mut stop = self.hub.shutdown_rx();
        loop {
            tokio::select! {
                _ = stop.changed() => break,
                accepted = self.listener.accept() => match accepted {
                    Ok((tcp, remote)) => {
                        let _ = tcp.set_nodelay(true);
                        let hub = self.hub.clone();
                        let tls = self.tls.clone();
                        // Separate spawns: one async block holding both the plain and the
                        // TLS connection futures would size every plain connection's task
                        // for the (much larger) TLS variant.
                        match tls {
                            None => {
                                // Plain: route by the request head (WebSocket upgrade, or the
                                // browser client's files over HTTP). The WebSocket connection
                                // gets its own task so its size stays as small as before.
                                tokio::spawn(async move {
                                    match http::classify(&tcp, hub.cfg.join_timeout).await {
                                        http::Route::WebSocket => {
                                            tokio::spawn(conn::serve(hub, tcp, remote));
                                        }
                                        http::Route::Http => {
                                            let store = hub.telemetry.get().cloned();
                                            http::serve(tcp, hub.cfg.secret.clone(), hub.cfg.dev, store).await
                                        }
                                    }
                                });
                            }
                            Some(acc) => {
                                tokio::spawn(async move {
                                    match tokio::time::timeout(hub.cfg.join_timeout, acc.accept(tcp)).await {
                                        Ok(Ok(s)) => Box::pin(conn::serve(hub, s, remote)).await,
                                        Ok(Err(e)) => tracing::debug!(%remote, error = %e, "TLS handshake failed"),
                                        Err(_) => tracing::debug!(%remote, "TLS handshake timed out"),
                                    }
                                });
                            }
                        }
                    }
                    Err(e) => {
                        // EMFILE and friends: back off briefly instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            }
        }
        tracing::info!("signalling server stopped accepting");
    }
}

impl ServerHandle {
    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Current counters.
    pub fn stats(&self) -> ServerStats {
        self.hub.stats()
    }

    /// Stop accepting, tell every peer (`bye` with code `shutdown`, `reconnect: true`), and
    /// wait up to `shutdown_drain` for connections to close.
    pub async fn shutdown(&self) {
        self.hub.begin_shutdown();
        let deadline = tokio::time::Instant::now() + self.hub.cfg.shutdown_drain;
        while self.hub.stats().connections > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tracing::info!(
            remaining = self.hub.stats().connections,
            "signalling server shut down"
        );
    }
}

/// Purges expired telemetry now and then every `every`, until shutdown.
async fn purge_task(
    store: Arc<parking_lot::Mutex<crate::telemetry::Store>>,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(every.max(Duration::from_secs(1)));
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            _ = tick.tick() => {
                let store = store.clone();
                let res = tokio::task::spawn_blocking(move || {
                    let mut s = store.lock();
                    s.purge(crate::telemetry::store::now_ms())
                })
                .await;
                match res {
                    Ok(Ok(r)) => tracing::info!(records = r.records, feedback = r.feedback, sessions = r.sessions, "telemetry retention purge"),
                    Ok(Err(e)) => tracing::warn!(error = %e, "telemetry retention purge failed"),
                    Err(e) => tracing::warn!(error = %e, "telemetry purge task panicked"),
                }
            }
        }
    }
}

/// A watch channel that flips once on shutdown.
pub(crate) fn shutdown_channel() -> (watch::Sender<bool>, watch::Receiver<bool>) {
    watch::channel(false)
}
