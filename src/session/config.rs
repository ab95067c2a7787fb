//! What a [`Session`](super::Session) is built from: [`SessionConfig`] and [`Subscribe`].

use crate::signalling::client::ClientConfig;
use crate::webrtc::peer::IceTransportPolicy;
use crate::webrtc::publisher::PublisherConfig;
use crate::webrtc::repair::{JitterBuffer, RepairConfig};
use crate::webrtc::subscriber::SubscriberConfig;

use super::recovery::RecoveryConfig;
use super::telemetry::TelemetryConfig;

/// Label of the data channel every pair opens.
pub const DATA_CHANNEL_LABEL: &str = "streamwire";

/// Which remote peers to receive media from.
///
/// ```
/// use streamwire::session::Subscribe;
/// let only_cam = Subscribe::Users(vec!["cam".into()]);
/// assert_ne!(only_cam, Subscribe::default());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Subscribe {
    /// Every peer of the room.
    #[default]
    Auto,
    /// Only peers whose user id (token `sub`) is listed; media from others is not requested
    /// when this side offers, and is dropped unseen when it answers.
    Users(Vec<String>),
}

impl Subscribe {
    /// Whether media from `user` is wanted.
    pub(crate) fn wants(&self, user: &str) -> bool {
        match self {
            Subscribe::Auto => true,
            Subscribe::Users(list) => list.iter().any(|u| u == user),
        }
    }
}

/// Configuration of [`Session::join`](super::Session::join).
#[derive(Clone)]
pub struct SessionConfig {
    /// Signalling client configuration (server URLs, room, token, reconnect policy).
    pub signalling: ClientConfig,
    /// Local tracks to publish (None: receive only).
    pub publish: Option<PublisherConfig>,
    /// Whose media to receive.
    pub subscribe: Subscribe,
    /// What to do with received media.
    pub output: SubscriberConfig,
    /// Addresses ICE gathers on. Default: empty, every interface that is up (what a real
    /// deployment needs); [`SessionConfig::loopback`] restricts it to `127.0.0.1`. A session
    /// restricted to loopback addresses while its signalling server is not on loopback logs a
    /// warning at join: its peers elsewhere could never reach it.
    pub local_addresses: Vec<String>,
    /// UDP ports ICE binds to, `(first, last)` inclusive (e.g. the range a firewall opens;
    /// [`PeerConfig::ice_port_range`](crate::webrtc::peer::PeerConfig::ice_port_range)).
    /// Default `None`: any free port. Every connection of the session takes ports from it.
    pub ice_port_range: Option<(u16, u16)>,
    /// Extra ICE servers in webrtcbin's form (`stun://host:port`,
    /// `turn(s)://user:pass@host:port[?transport=udp|tcp]`), added to those of the server's
    /// join reply (which come first).
    pub ice_servers: Vec<String>,
    /// Which candidates ICE may use. Default [`IceTransportPolicy::All`];
    /// [`IceTransportPolicy::Relay`] sends everything through TURN.
    pub ice_transport_policy: IceTransportPolicy,
    /// Gather ICE-TCP candidates too ([`PeerConfig::ice_tcp`](crate::webrtc::peer::PeerConfig::ice_tcp)).
    /// Default true.
    pub ice_tcp: bool,
    /// Receive jitter buffer. Default adaptive ([`JitterBuffer::default`]); a fixed latency
    /// is the override.
    pub jitter_buffer: JitterBuffer,
    /// Loss repair of every connection (NACK/RTX, RED+ULPFEC). Default [`RepairConfig::default`].
    pub repair: RepairConfig,
    /// Open a data channel to every peer. Default true.
    pub data_channel: bool,
    /// Telemetry forwarding (default consent `none`: nothing read, nothing sent).
    pub telemetry: TelemetryConfig,
    /// Rebuilding peer connections whose path is gone (address change, cut path); on by
    /// default.
    pub recovery: RecoveryConfig,
}

impl SessionConfig {
    /// Receive-only production defaults for a server URL, room and token: ICE on every
    /// interface, with the STUN/TURN servers of the server's join reply.
    ///
    /// ```
    /// let cfg = streamwire::session::SessionConfig::new("wss://sig.example.org", "room", "jwt");
    /// assert!(cfg.local_addresses.is_empty()); // every interface
    /// ```
    pub fn new(url: &str, room: &str, token: &str) -> Self {
        SessionConfig {
            signalling: ClientConfig::new(url, room, token),
            publish: None,
            subscribe: Subscribe::Auto,
            output: SubscriberConfig::default(),
            local_addresses: Vec::new(),
            ice_port_range: None,
            ice_servers: Vec::new(),
            ice_transport_policy: IceTransportPolicy::All,
            ice_tcp: true,
            jitter_buffer: JitterBuffer::default(),
            repair: RepairConfig::default(),
            data_channel: true,
            telemetry: TelemetryConfig::default(),
            recovery: RecoveryConfig::default(),
        }
    }

    /// [`SessionConfig::new`] with ICE restricted to `127.0.0.1`: the explicit choice of
    /// tests, benchmarks and `streamwire demo`, whose peers all run on this machine.
    ///
    /// ```
    /// let cfg = streamwire::session::SessionConfig::loopback("ws://127.0.0.1:8443", "room", "jwt");
    /// assert_eq!(cfg.local_addresses, vec!["127.0.0.1".to_string()]);
    /// ```
    pub fn loopback(url: &str, room: &str, token: &str) -> Self {
        SessionConfig {
            local_addresses: vec!["127.0.0.1".to_owned()],
            ..SessionConfig::new(url, room, token)
        }
    }
}

/// The per-connection settings the topology applies to every peer connection it builds.
#[derive(Debug, Clone)]
pub(crate) struct ConnectionSettings {
    pub subscribe: Subscribe,
    pub local_addresses: Vec<String>,
    pub ice_port_range: Option<(u16, u16)>,
    pub ice_transport_policy: IceTransportPolicy,
    pub ice_tcp: bool,
    pub jitter_buffer: JitterBuffer,
    pub repair: RepairConfig,
    pub data_channel: bool,
    pub recovery: RecoveryConfig,
}
