//! Configuration of a [`Peer`](super::Peer): its [`Role`] in the pair, ICE addresses and
//! servers, jitter buffer, loss repair and send-side congestion control.

use crate::webrtc::repair::{JitterBuffer, RepairConfig};
use crate::webrtc::{MediaKind, WebrtcError};

/// Which side of a pair creates the offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Creates the single offer for the pair.
    Offerer,
    /// Waits for the offer and answers it.
    Answerer,
}

impl Role {
    /// Role of the local peer for a pair: the peer that joined later (higher join sequence number)
    /// offers; equal sequence numbers are broken by comparing ids. Both sides compute the same
    /// split from the same two facts, so exactly one of them offers.
    ///
    /// ```
    /// use streamwire::webrtc::peer::Role;
    /// assert_eq!(Role::for_pair((2, "bob"), (1, "alice")), Role::Offerer);
    /// assert_eq!(Role::for_pair((1, "alice"), (2, "bob")), Role::Answerer);
    /// ```
    pub fn for_pair(local: (u64, &str), remote: (u64, &str)) -> Role {
        if local > remote {
            Role::Offerer
        } else {
            Role::Answerer
        }
    }
}

/// Send-side congestion control (Google Congestion Control over TWCC, `rtpgccbwe`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CongestionConfig {
    /// Lowest estimate, kbit/s.
    pub min_kbps: u32,
    /// Starting estimate, kbit/s.
    pub start_kbps: u32,
    /// Highest estimate, kbit/s.
    pub max_kbps: u32,
}

impl Default for CongestionConfig {
    fn default() -> Self {
        CongestionConfig {
            min_kbps: 150,
            start_kbps: 1500,
            max_kbps: 4000,
        }
    }
}

/// Which candidates ICE may use (webrtcbin's `ice-transport-policy`, `RTCIceTransportPolicy`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IceTransportPolicy {
    /// Every candidate: host, server-reflexive and relayed. The default.
    #[default]
    All,
    /// Relayed (TURN) candidates only: the peers' addresses never reach each other, and
    /// nothing flows without a TURN server.
    Relay,
}

impl IceTransportPolicy {
    /// webrtcbin's nick for the policy.
    pub(crate) fn nick(self) -> &'static str {
        match self {
            IceTransportPolicy::All => "all",
            IceTransportPolicy::Relay => "relay",
        }
    }
}

/// Configuration of one [`Peer`](super::Peer).
#[derive(Debug, Clone)]
pub struct PeerConfig {
    /// Offerer or answerer for this pair.
    pub role: Role,
    /// Local addresses ICE may gather on (`add-local-ip-address`). Empty (the default):
    /// libnice's choice, every interface that is up.
    pub local_addresses: Vec<String>,
    /// UDP ports ICE binds its candidates to, `(first, last)` inclusive (the ICE agent's
    /// `min-rtp-port`/`max-rtp-port`), e.g. the range a firewall opens. `None` (the default):
    /// any free port.
    pub ice_port_range: Option<(u16, u16)>,
    /// Which candidates ICE may use. Default [`IceTransportPolicy::All`].
    pub ice_transport_policy: IceTransportPolicy,
    /// Gather ICE-TCP candidates too (libnice's `ice-tcp`). Default true: a network that
    /// blocks UDP can still carry the call over TCP. Loss tests turn it off, or the connection
    /// may settle on a TCP pair that never loses a packet.
    pub ice_tcp: bool,
    /// STUN server, `stun://host:port`. None by default; never a public server implicitly.
    pub stun_server: Option<String>,
    /// TURN servers, `turn(s)://user:password@host:port`.
    pub turn_servers: Vec<String>,
    /// Receive jitter buffer: adaptive by default ([`JitterBuffer::default`]), or a fixed
    /// latency as an override.
    pub jitter_buffer: JitterBuffer,
    /// NACK/RTX, RED+ULPFEC and the retransmission history ([`RepairConfig::default`]).
    pub repair: RepairConfig,
    /// Tracks expected from the remote peer (offerer only: adds `recvonly` m-lines).
    pub receive: Vec<MediaKind>,
    /// Send-side congestion control; `None` disables it.
    pub congestion: Option<CongestionConfig>,
    /// Send RTCP as one compound packet per medium, as browsers do, instead of
    /// `rtpsession`'s one compound for all the bundled media. Needed towards Janus, which
    /// reads a compound from a peer that sends nothing as being about the medium of its first
    /// report block and drops a PLI without one (docs/sfu.md, "Simulcast"); the session's SFU
    /// connections set it. Default false.
    pub rtcp_per_medium: bool,
}

impl PeerConfig {
    /// The production defaults: ICE gathers on every interface, no STUN/TURN server (add
    /// those of the deployment), default jitter buffer, congestion control on.
    ///
    /// ```
    /// use streamwire::webrtc::peer::{IceTransportPolicy, PeerConfig, Role};
    /// let cfg = PeerConfig::new(Role::Offerer);
    /// assert!(cfg.local_addresses.is_empty()); // every interface
    /// assert_eq!(cfg.ice_transport_policy, IceTransportPolicy::All);
    /// ```
    pub fn new(role: Role) -> Self {
        PeerConfig {
            role,
            local_addresses: Vec::new(),
            ice_port_range: None,
            ice_transport_policy: IceTransportPolicy::All,
            ice_tcp: true,
            stun_server: None,
            turn_servers: Vec::new(),
            jitter_buffer: JitterBuffer::default(),
            repair: RepairConfig::default(),
            receive: Vec::new(),
            congestion: Some(CongestionConfig::default()),
            rtcp_per_medium: false,
        }
    }

    /// Loopback only, the explicit choice of tests and benchmarks: [`PeerConfig::new`] with
    /// ICE gathering on 127.0.0.1 alone.
    ///
    /// ```
    /// use streamwire::webrtc::{MediaKind, peer::{PeerConfig, Role}};
    /// let cfg = PeerConfig::loopback(Role::Offerer).receiving(&[MediaKind::Video]);
    /// assert_eq!(cfg.local_addresses, vec!["127.0.0.1".to_string()]);
    /// ```
    pub fn loopback(role: Role) -> Self {
        PeerConfig {
            local_addresses: vec!["127.0.0.1".to_owned()],
            ..PeerConfig::new(role)
        }
    }

    /// Set the tracks expected from the remote peer.
    pub fn receiving(mut self, kinds: &[MediaKind]) -> Self {
        self.receive = kinds.to_vec();
        self
    }

    pub(super) fn validate(&self) -> Result<(), WebrtcError> {
        self.jitter_buffer.validate()?;
        self.repair.validate()?;
        if let Some((first, last)) = self.ice_port_range
            && (first == 0 || first > last)
        {
            return Err(WebrtcError::Config {
                field: "ice_port_range",
                detail: format!("{first}-{last} is not a range of ports (1-65535, first <= last)"),
            });
        }
        if let Some(stun) = &self.stun_server
            && !stun.starts_with("stun://")
        {
            return Err(WebrtcError::Config {
                field: "stun_server",
                detail: format!("`{stun}` must start with stun://"),
            });
        }
        for turn in &self.turn_servers {
            if !(turn.starts_with("turn://") || turn.starts_with("turns://")) {
                return Err(WebrtcError::Config {
                    field: "turn_servers",
                    detail: format!("`{turn}` must start with turn:// or turns://"),
                });
            }
        }
        for addr in &self.local_addresses {
            if addr.parse::<std::net::IpAddr>().is_err() {
                return Err(WebrtcError::Config {
                    field: "local_addresses",
                    detail: format!("`{addr}` is not an IP address"),
                });
            }
        }
        if let Some(cc) = self.congestion
            && !(cc.min_kbps <= cc.start_kbps && cc.start_kbps <= cc.max_kbps)
        {
            return Err(WebrtcError::Config {
                field: "congestion",
                detail: format!(
                    "need min <= start <= max, got {}/{}/{} kbit/s",
                    cc.min_kbps, cc.start_kbps, cc.max_kbps
                ),
            });
        }
        Ok(())
    }
}
