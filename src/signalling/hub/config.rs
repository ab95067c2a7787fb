//! The hub's limits and configuration: what `streamwire serve` flags and
//! `server::ServerConfig` set, and what each connection checks against.

use std::sync::Arc;
use std::time::Duration;

use crate::signalling::protocol::{DEFAULT_MAX_PAYLOAD, IceServer, LimitsInfo};
use crate::signalling::service::IceMinter;

/// Limits that protect the server. All configurable (`streamwire serve` flags, or
/// `server::ServerConfig::limits`).
///
/// ```
/// let mut limits = streamwire::signalling::Limits::default();
/// assert_eq!(limits.max_frame_bytes, 128 * 1024);
/// limits.max_peers_per_room = 8;
/// ```
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
    /// Bytes of unacknowledged frames held per session (written or not yet written to its
    /// socket, kept for resume). A session that would exceed it ends with `bye`
    /// `slow_consumer`; nothing is dropped silently. Default 4 MiB.
    pub max_queue_bytes: usize,
    /// Connections that have not joined yet (in the HTTP handshake or before `join`/`resume`),
    /// in all. Further connections are closed at once. Default 1024.
    pub max_pending: usize,
    /// Connections that have not joined yet from one source (an IPv4 address or an IPv6
    /// /64). Default 32.
    pub max_pending_per_ip: usize,
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
            max_queue_bytes: 4 * 1024 * 1024,
            max_pending: 1024,
            max_pending_per_ip: 32,
        }
    }
}

impl Limits {
    /// Whether the limits can work together; the error names the limit.
    ///
    /// ```
    /// let mut limits = streamwire::signalling::Limits::default();
    /// assert!(limits.check().is_ok());
    /// limits.max_queue_bytes = 1000;
    /// assert!(limits.check().unwrap_err().contains("max_queue_bytes"));
    /// ```
    pub fn check(&self) -> Result<(), String> {
        let positive = [
            ("max_frame_bytes", self.max_frame_bytes),
            ("max_payload_bytes", self.max_payload_bytes),
            ("rate_per_sec", self.rate_per_sec as usize),
            ("burst", self.burst as usize),
            ("max_peers_per_room", self.max_peers_per_room),
            ("max_pending", self.max_pending),
            ("max_pending_per_ip", self.max_pending_per_ip),
        ];
        if let Some((name, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return Err(format!("{name} must be at least 1"));
        }
        if self.hard_frame_bytes < self.max_frame_bytes {
            return Err(format!(
                "hard_frame_bytes ({}) must be at least max_frame_bytes ({})",
                self.hard_frame_bytes, self.max_frame_bytes
            ));
        }
        if self.max_queue_bytes < 2 * self.max_frame_bytes {
            return Err(format!(
                "max_queue_bytes ({}) must hold at least two frames of max_frame_bytes ({})",
                self.max_queue_bytes, self.max_frame_bytes
            ));
        }
        Ok(())
    }

    /// The limits as announced to clients in `welcome`.
    pub(crate) fn info(&self) -> LimitsInfo {
        LimitsInfo {
            max_frame_bytes: self.max_frame_bytes,
            max_payload_bytes: self.max_payload_bytes,
            rate_per_sec: self.rate_per_sec,
            burst: self.burst,
            max_peers_per_room: self.max_peers_per_room,
        }
    }
}

/// What the hub and its connections need of the server configuration (see
/// `server::ServerConfig` for each setting).
#[derive(Debug, Clone)]
pub(crate) struct HubConfig {
    /// HS256 secret tokens are verified with.
    pub secret: Vec<u8>,
    /// Limits.
    pub limits: Limits,
    /// How long a session survives a dropped connection.
    pub grace: Duration,
    /// WebSocket ping interval.
    pub ping_interval: Duration,
    /// Silence after which a connection is closed.
    pub idle_timeout: Duration,
    /// Time allowed between the WebSocket upgrade and `join`/`resume`.
    pub join_timeout: Duration,
    /// How long a closing connection is kept to deliver its last frames (`bye`, close frame).
    pub close_linger: Duration,
    /// ICE servers announced in `welcome`.
    pub ice_servers: Vec<IceServer>,
    /// Per-peer TURN credentials, after `ice_servers` in `welcome`, fresh in `resumed` and
    /// in an `ice_servers` frame every refresh period.
    pub turn: Option<Arc<dyn IceMinter>>,
}

impl HubConfig {
    /// The defaults (also those of `server::ServerConfig::new`) with `secret`.
    pub fn new(secret: Vec<u8>) -> Self {
        HubConfig {
            secret,
            limits: Limits::default(),
            grace: Duration::from_secs(30),
            ping_interval: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
            join_timeout: Duration::from_secs(10),
            close_linger: Duration::from_secs(2),
            ice_servers: Vec::new(),
            turn: None,
        }
    }
}
