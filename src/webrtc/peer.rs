//! One `webrtcbin` per remote peer, with a transport-agnostic signalling interface.
//!
//! # Negotiation design (no glare)
//! Each pair of peers has fixed roles chosen by the caller before anything is sent (see
//! [`Role::for_pair`]: the peer that joined later offers). Only the [`Role::Offerer`] ever creates
//! an offer, and it describes both directions in that one offer: one `sendonly` m-line per local
//! track and one `recvonly` m-line per track it expects from the answerer
//! ([`PeerConfig::receive`]). The answerer attaches its own tracks to those `recvonly` m-lines
//! and answers. Because an answerer never offers, two offers can never cross. An offer arriving
//! at an offerer (or an answer at an answerer) is rejected with [`WebrtcError::Signal`].
//!
//! # ICE
//! Gathering is restricted to [`PeerConfig::local_addresses`] through the ICE agent's
//! `add-local-ip-address` action; no STUN/TURN server is configured unless given. Candidates
//! trickle out as [`SignalOut::Ice`] as soon as they are found; remote candidates arriving before
//! the remote description are held and applied right after it.

use parking_lot::Mutex;
use std::sync::{Arc, Weak};
use std::time::Duration;

use gst::glib;
use gst::prelude::*;
use gst_webrtc::{
    WebRTCPeerConnectionState, WebRTCRTPTransceiver, WebRTCRTPTransceiverDirection, WebRTCSDPType,
    WebRTCSessionDescription,
};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

use super::{MediaKind, TWCC_URI, WebrtcError, make};

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

/// Signalling message produced by a [`Peer`], to be carried to the remote peer.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum SignalOut {
    /// SDP offer text.
    Offer {
        /// The SDP.
        sdp: String,
    },
    /// SDP answer text.
    Answer {
        /// The SDP.
        sdp: String,
    },
    /// A trickled local ICE candidate.
    Ice {
        /// m-line index the candidate belongs to.
        mline: u32,
        /// `candidate:` attribute text.
        candidate: String,
    },
}

/// Signalling message received from the remote peer, applied with [`Peer::apply`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum SignalIn {
    /// The remote offer.
    Offer {
        /// The SDP.
        sdp: String,
    },
    /// The remote answer.
    Answer {
        /// The SDP.
        sdp: String,
    },
    /// A remote ICE candidate.
    Ice {
        /// m-line index.
        mline: u32,
        /// `candidate:` attribute text.
        candidate: String,
    },
}

impl From<SignalOut> for SignalIn {
    fn from(s: SignalOut) -> Self {
        match s {
            SignalOut::Offer { sdp } => SignalIn::Offer { sdp },
            SignalOut::Answer { sdp } => SignalIn::Answer { sdp },
            SignalOut::Ice { mline, candidate } => SignalIn::Ice { mline, candidate },
        }
    }
}

/// Peer connection state (mirrors `RTCPeerConnectionState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConnectionState {
    /// Nothing happened yet.
    New,
    /// ICE/DTLS in progress.
    Connecting,
    /// Media can flow.
    Connected,
    /// Connectivity lost, may recover.
    Disconnected,
    /// Failed for good.
    Failed,
    /// Closed locally.
    Closed,
}

impl From<WebRTCPeerConnectionState> for ConnectionState {
    fn from(s: WebRTCPeerConnectionState) -> Self {
        match s {
            WebRTCPeerConnectionState::Connecting => ConnectionState::Connecting,
            WebRTCPeerConnectionState::Connected => ConnectionState::Connected,
            WebRTCPeerConnectionState::Disconnected => ConnectionState::Disconnected,
            WebRTCPeerConnectionState::Failed => ConnectionState::Failed,
            WebRTCPeerConnectionState::Closed => ConnectionState::Closed,
            _ => ConnectionState::New,
        }
    }
}

/// Events of a [`Peer`].
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum PeerEvent {
    /// The connection state changed.
    ConnectionState {
        /// Remote peer id.
        peer: String,
        /// New state.
        state: ConnectionState,
    },
    /// The congestion controller's send-rate estimate towards this peer changed.
    EstimatedBitrate {
        /// Remote peer id.
        peer: String,
        /// Estimate in bit/s (all media to this peer).
        bps: u32,
    },
    /// The remote side stopped sending on an m-line it sent on before (its track was
    /// unpublished: the m-line became `inactive` or `recvonly` in a renegotiation).
    RemoteTrackEnded {
        /// Remote peer id.
        peer: String,
        /// Kind of the ended track.
        kind: MediaKind,
        /// Its m-line index.
        mline: u32,
    },
    /// Negotiation failed.
    NegotiationFailed {
        /// Remote peer id.
        peer: String,
        /// What failed.
        reason: String,
    },
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

/// Default jitter-buffer latency in milliseconds.
///
/// 30 ms. Measured with `cargo bench --bench latency` (H.264 720p30, loopback): webrtcbin 1.22's
/// jitter buffer adds its configured latency almost in full to every frame (decoded-latency p50
/// 11 ms at 10 ms, 21 ms at 30 ms, 41 ms at 50 ms), so the value is a direct latency/robustness
/// trade. On a LAN-class link delay variation is a few ms and a NACK retransmission round trip
/// under 10 ms, so 30 ms absorbs jitter of about one frame interval plus one retransmission
/// while keeping decoded latency near 20 ms; webrtcbin's 200 ms default is far too much for a
/// call. Raise [`PeerConfig::jitter_latency_ms`] for Wi-Fi or long paths.
pub const DEFAULT_JITTER_LATENCY_MS: u32 = 30;

/// Configuration of one [`Peer`].
#[derive(Debug, Clone)]
pub struct PeerConfig {
    /// Offerer or answerer for this pair.
    pub role: Role,
    /// Local addresses ICE may gather on (`add-local-ip-address`). Empty: libnice's default
    /// (every interface).
    pub local_addresses: Vec<String>,
    /// STUN server, `stun://host:port`. None by default; never a public server implicitly.
    pub stun_server: Option<String>,
    /// TURN servers, `turn(s)://user:password@host:port`.
    pub turn_servers: Vec<String>,
    /// Jitter-buffer latency (ms); default [`DEFAULT_JITTER_LATENCY_MS`].
    pub jitter_latency_ms: u32,
    /// Tracks expected from the remote peer (offerer only: adds `recvonly` m-lines).
    pub receive: Vec<MediaKind>,
    /// Send-side congestion control; `None` disables it.
    pub congestion: Option<CongestionConfig>,
}

impl PeerConfig {
    /// Loopback-only configuration: ICE gathers on 127.0.0.1, no STUN/TURN.
    ///
    /// ```
    /// use streamwire::webrtc::{MediaKind, peer::{PeerConfig, Role}};
    /// let cfg = PeerConfig::loopback(Role::Offerer).receiving(&[MediaKind::Video]);
    /// assert_eq!(cfg.local_addresses, vec!["127.0.0.1".to_string()]);
    /// ```
    pub fn loopback(role: Role) -> Self {
        PeerConfig {
            role,
            local_addresses: vec!["127.0.0.1".to_owned()],
            stun_server: None,
            turn_servers: Vec::new(),
            jitter_latency_ms: DEFAULT_JITTER_LATENCY_MS,
            receive: Vec::new(),
            congestion: Some(CongestionConfig::default()),
        }
    }

    /// Set the tracks expected from the remote peer.
    pub fn receiving(mut self, kinds: &[MediaKind]) -> Self {
        self.receive = kinds.to_vec();
        self
    }

    fn validate(&self) -> Result<(), WebrtcError> {
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

/// Receiving channels of a [`Peer`].
#[derive(Debug)]
pub struct PeerIo {
    /// Outgoing signalling messages, to carry to the remote peer.
    pub signals: UnboundedReceiver<SignalOut>,
    /// Connection-state and congestion events.
    pub events: UnboundedReceiver<PeerEvent>,
}

/// Parameters an m-line imposes on a send track.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LinkParams {
    /// RTP payload type.
    pub pt: u8,
    /// TWCC header-extension id, if negotiated.
    pub twcc_id: Option<u8>,
    /// SSRC the payloader must send with: the one written as `a=ssrc` in the SDP.
    pub ssrc: u32,
    /// CVO (`urn:3gpp:video-orientation`) header-extension id, if negotiated.
    pub cvo_id: Option<u8>,
}

pub(crate) type LinkFn = Box<dyn FnOnce(&gst::Pad, LinkParams) -> Result<(), WebrtcError> + Send>;

/// A local track waiting to be attached to an m-line.
pub(crate) struct SendTrack {
    pub kind: MediaKind,
    /// SSRC of this track towards this peer, announced in the SDP (see [`new_ssrc`]).
    pub ssrc: u32,
    /// The track signals its orientation with the CVO header extension (rotation metadata
    /// mode): offered in `offer_caps`; when answering, kept if the offer lists it.
    pub cvo: bool,
    pub encoding_name: String,
    /// Full RTP caps used as codec preferences when offering.
    pub offer_caps: gst::Caps,
    pub offer_params: LinkParams,
    pub link: LinkFn,
}

type StateListener = Arc<dyn Fn(ConnectionState) + Send + Sync>;
type EstimateListener = Arc<dyn Fn(u32) + Send + Sync>;
type NegotiatedListener = Arc<dyn Fn() + Send + Sync>;

#[derive(Default)]
struct State {
    remote_set: bool,
    pending_ice: Vec<(u32, String)>,
    /// Answerer: local tracks waiting for a `recvonly` m-line of a (re-)offer.
    pending_tracks: Vec<SendTrack>,
    offered: bool,
    /// Offerer: an offer is out and its answer has not been applied yet.
    awaiting_answer: bool,
    /// Offerer: another offer is due once the current answer is applied.
    reoffer_queued: bool,
    /// Answerer: m-lines of the previous offers, already answered (a re-offer only appends).
    answered_mlines: usize,
    /// m-lines (index, kind) the remote side sends on, per the last remote description.
    remote_sending: Vec<(u32, MediaKind)>,
    state_listeners: Vec<StateListener>,
    estimate_listeners: Vec<EstimateListener>,
    negotiated_listeners: Vec<NegotiatedListener>,
    last_estimate: Option<u32>,
}

struct Inner {
    id: String,
    config: PeerConfig,
    webrtcbin: gst::Element,
    bin: gst::Bin,
    signals: UnboundedSender<SignalOut>,
    events: UnboundedSender<PeerEvent>,
    state: Mutex<State>,
}

/// One remote peer: a `webrtcbin` in the local pipeline.
#[derive(Clone)]
pub struct Peer {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Peer")
            .field("id", &self.inner.id)
            .field("role", &self.inner.config.role)
            .finish()
    }
}

impl Peer {
    /// Create the `webrtcbin` for remote peer `id` inside `bin` (usually the pipeline).
    ///
    /// ```no_run
    /// use streamwire::webrtc::peer::{Peer, PeerConfig, Role};
    /// streamwire::gst_init::init().unwrap();
    /// let pipeline = gst::Pipeline::new();
    /// let (peer, mut io) = Peer::new(&pipeline, "bob", PeerConfig::loopback(Role::Answerer)).unwrap();
    /// // forward io.signals to "bob" through the signalling layer, feed his messages to peer.apply()
    /// ```
    pub fn new(
        bin: &impl IsA<gst::Bin>,
        id: &str,
        config: PeerConfig,
    ) -> Result<(Peer, PeerIo), WebrtcError> {
        config.validate()?;
        let webrtcbin = make("webrtcbin")?;
        webrtcbin.set_property_from_str("bundle-policy", "max-bundle");
        webrtcbin.set_property("latency", config.jitter_latency_ms);
        if let Some(stun) = &config.stun_server {
            webrtcbin.set_property("stun-server", stun);
        }
        for turn in &config.turn_servers {
            let ok = webrtcbin.emit_by_name::<bool>("add-turn-server", &[turn]);
            if !ok {
                return Err(WebrtcError::Config {
                    field: "turn_servers",
                    detail: format!("webrtcbin rejected `{turn}`"),
                });
            }
        }
        let agent = webrtcbin.property::<glib::Object>("ice-agent");
        for addr in &config.local_addresses {
            if !agent.emit_by_name::<bool>("add-local-ip-address", &[addr]) {
                return Err(WebrtcError::Config {
                    field: "local_addresses",
                    detail: format!("ICE agent rejected `{addr}`"),
                });
            }
        }

        let (sig_tx, sig_rx) = unbounded_channel();
        let (ev_tx, ev_rx) = unbounded_channel();
        let inner = Arc::new(Inner {
            id: id.to_owned(),
            config,
            webrtcbin: webrtcbin.clone(),
            bin: bin.as_ref().clone(),
            signals: sig_tx,
            events: ev_tx,
            state: Mutex::new(State::default()),
        });
        let peer = Peer { inner };
        peer.connect_signals();

        bin.as_ref()
            .add(&webrtcbin)
            .map_err(|e| WebrtcError::State(format!("adding webrtcbin for {id}: {e}")))?;
        webrtcbin
            .sync_state_with_parent()
            .map_err(|e| WebrtcError::State(format!("starting webrtcbin for {id}: {e}")))?;
        Ok((
            peer,
            PeerIo {
                signals: sig_rx,
                events: ev_rx,
            },
        ))
    }

    fn weak(&self) -> Weak<Inner> {
        Arc::downgrade(&self.inner)
    }

    fn connect_signals(&self) {
        let webrtcbin = &self.inner.webrtcbin;
        let weak = self.weak();
        webrtcbin.connect("on-ice-candidate", false, move |values| {
            let inner = weak.upgrade()?;
            let mline = values.get(1).and_then(|v| v.get::<u32>().ok())?;
            let candidate = values.get(2).and_then(|v| v.get::<String>().ok())?;
            let _ = inner.signals.send(SignalOut::Ice { mline, candidate });
            None
        });

        let weak = self.weak();
        webrtcbin.connect_notify(Some("connection-state"), move |bin, _| {
            let Some(inner) = weak.upgrade() else { return };
            let state: ConnectionState = bin
                .property::<WebRTCPeerConnectionState>("connection-state")
                .into();
            tracing::debug!(peer = %inner.id, ?state, "connection state");
            let _ = inner.events.send(PeerEvent::ConnectionState {
                peer: inner.id.clone(),
                state,
            });
            let listeners = inner.state.lock().state_listeners.clone();
            for l in listeners {
                l(state);
            }
        });

        if self.inner.config.congestion.is_some() {
            let weak = self.weak();
            webrtcbin.connect("request-aux-sender", false, move |_values| {
                let none = || Some(None::<gst::Element>.to_value());
                let Some(inner) = weak.upgrade() else {
                    return none();
                };
                let peer = Peer { inner };
                match peer.build_aux_sender() {
                    Ok(el) => Some(el.to_value()),
                    Err(e) => {
                        tracing::warn!("no send-side congestion control: {e}");
                        none()
                    }
                }
            });
        }
    }

    /// The element webrtcbin inserts on the send path (GStreamer 1.22: before `rtpsession`):
    /// `rtpgccbwe`, which paces the RTP packets to its estimate and reads the transport-wide
    /// feedback `rtpsession` sends upstream as `RTPTWCCPackets` events.
    fn build_aux_sender(&self) -> Result<gst::Element, WebrtcError> {
        let cc = self.inner.config.congestion.unwrap_or_default();
        let gcc = make("rtpgccbwe")?;
        gcc.set_property("min-bitrate", cc.min_kbps.saturating_mul(1000));
        gcc.set_property("max-bitrate", cc.max_kbps.saturating_mul(1000));
        gcc.set_property("estimated-bitrate", cc.start_kbps.saturating_mul(1000));
        let weak = self.weak();
        gcc.connect_notify(Some("estimated-bitrate"), move |gcc, _| {
            let Some(inner) = weak.upgrade() else { return };
            let bps = gcc.property::<u32>("estimated-bitrate");
            let listeners = {
                let mut st = inner.state.lock();
                st.last_estimate = Some(bps);
                st.estimate_listeners.clone()
            };
            let _ = inner.events.send(PeerEvent::EstimatedBitrate {
                peer: inner.id.clone(),
                bps,
            });
            for l in listeners {
                l(bps);
            }
        });
        Ok(gcc)
    }

    /// Remote peer id.
    pub fn id(&self) -> &str {
        &self.inner.id
    }

    /// This side's role.
    pub fn role(&self) -> Role {
        self.inner.config.role
    }

    /// The underlying `webrtcbin`.
    pub fn webrtcbin(&self) -> &gst::Element {
        &self.inner.webrtcbin
    }

    /// The bin (pipeline) the peer lives in.
    pub fn bin(&self) -> &gst::Bin {
        &self.inner.bin
    }

    /// Configuration the peer was created with.
    pub fn config(&self) -> &PeerConfig {
        &self.inner.config
    }

    /// Current connection state.
    pub fn connection_state(&self) -> ConnectionState {
        self.inner
            .webrtcbin
            .property::<WebRTCPeerConnectionState>("connection-state")
            .into()
    }

    /// Latest congestion-control estimate (bit/s), if any.
    pub fn estimated_bitrate(&self) -> Option<u32> {
        self.inner.state.lock().last_estimate
    }

    /// Call `f` on every connection-state change.
    pub fn on_connection_state(&self, f: impl Fn(ConnectionState) + Send + Sync + 'static) {
        self.inner.state.lock().state_listeners.push(Arc::new(f));
    }

    /// Call `f` with every new congestion-control estimate (bit/s).
    pub fn on_estimated_bitrate(&self, f: impl Fn(u32) + Send + Sync + 'static) {
        self.inner.state.lock().estimate_listeners.push(Arc::new(f));
    }

    /// Call `f` each time a negotiation completes (the remote answer, or the local answer to a
    /// remote offer, is applied), e.g. to send a keyframe on tracks added by a renegotiation.
    pub fn on_negotiated(&self, f: impl Fn() + Send + Sync + 'static) {
        self.inner
            .state
            .lock()
            .negotiated_listeners
            .push(Arc::new(f));
    }

    /// Attach a local track. The offerer links it at once to a new `sendonly` transceiver
    /// (after the first offer, [`Peer::renegotiate`] puts it in a new offer); the answerer
    /// links it to a matching `recvonly` m-line of the next remote offer when it arrives.
    pub(crate) fn add_send_track(&self, track: SendTrack) -> Result<(), WebrtcError> {
        match self.inner.config.role {
            Role::Offerer => {
                let pad = self
                    .inner
                    .webrtcbin
                    .request_pad_simple("sink_%u")
                    .ok_or_else(|| WebrtcError::Link {
                        what: format!("{} track to webrtcbin", track.kind.as_str()),
                        detail: "webrtcbin refused a sink pad".into(),
                    })?;
                let trans = pad.property::<WebRTCRTPTransceiver>("transceiver");
                trans.set_property("direction", WebRTCRTPTransceiverDirection::Sendonly);
                trans.set_property(
                    "codec-preferences",
                    with_ssrc(&track.offer_caps, track.ssrc),
                );
                let params = LinkParams {
                    ssrc: track.ssrc,
                    ..track.offer_params
                };
                (track.link)(&pad, params)
            }
            Role::Answerer => {
                self.inner.state.lock().pending_tracks.push(track);
                Ok(())
            }
        }
    }

    /// Start negotiation (offerer only): adds the `recvonly` m-lines for
    /// [`PeerConfig::receive`], creates the offer and emits it as [`SignalOut::Offer`].
    /// An answerer does nothing here: it negotiates when the offer arrives.
    pub fn negotiate(&self) -> Result<(), WebrtcError> {
        if self.inner.config.role == Role::Answerer {
            return Ok(());
        }
        {
            let mut st = self.inner.state.lock();
            if st.offered {
                return Ok(());
            }
            st.offered = true;
        }
        self.add_receive_mlines(&self.inner.config.receive);
        self.send_offer();
        Ok(())
    }

    /// Renegotiate (offerer only): add a `recvonly` m-line for each of `receive` (tracks the
    /// answerer has started to publish) and send a new offer on the running connection. It also
    /// carries every send track attached or detached since the last offer. Existing m-lines keep
    /// their index, direction and SSRC, so media already flowing does not stop. If an offer is
    /// still waiting for its answer, the new one follows right after that answer. Before the
    /// first [`Peer::negotiate`] the m-lines simply join the first offer.
    ///
    /// Errors with [`WebrtcError::Signal`] on the answerer: only the pair's offerer offers (the
    /// answerer's `publish`/`unpublish` announcement asks the offerer to re-offer; see
    /// docs/webrtc.md, "Renegotiation").
    ///
    /// ```no_run
    /// use streamwire::webrtc::{MediaKind, peer::{Peer, PeerConfig, Role}};
    /// streamwire::gst_init::init().unwrap();
    /// let pipeline = gst::Pipeline::new();
    /// let (peer, _io) = Peer::new(&pipeline, "bob", PeerConfig::loopback(Role::Offerer)).unwrap();
    /// peer.negotiate().unwrap();
    /// // later, when "bob" announces a new video track:
    /// peer.renegotiate(&[MediaKind::Video]).unwrap();
    /// ```
    pub fn renegotiate(&self, receive: &[MediaKind]) -> Result<(), WebrtcError> {
        if self.inner.config.role == Role::Answerer {
            return Err(WebrtcError::Signal {
                message: "offer",
                detail: format!(
                    "the local side answers for the pair with `{}`: only the offerer re-offers",
                    self.inner.id
                ),
            });
        }
        self.add_receive_mlines(receive);
        {
            let mut st = self.inner.state.lock();
            if !st.offered {
                // The first offer (negotiate) will carry everything.
                return Ok(());
            }
            if st.awaiting_answer {
                st.reoffer_queued = true;
                return Ok(());
            }
        }
        tracing::debug!(peer = %self.inner.id, "renegotiating");
        self.send_offer();
        Ok(())
    }

    fn add_receive_mlines(&self, kinds: &[MediaKind]) {
        for kind in kinds {
            let caps = receive_caps(*kind);
            let _t = self.inner.webrtcbin.emit_by_name::<WebRTCRTPTransceiver>(
                "add-transceiver",
                &[&WebRTCRTPTransceiverDirection::Recvonly, &caps],
            );
        }
    }

    /// Offerer: create an offer, set it locally and send it.
    fn send_offer(&self) {
        self.inner.state.lock().awaiting_answer = true;
        self.create_local_description("offer", |peer, sdp| {
            tracing::debug!(peer = %peer.inner.id, %sdp, "offer created");
            let _ = peer.inner.signals.send(SignalOut::Offer { sdp });
        });
    }

    /// A negotiation completed: tell the listeners, and (offerer) send a queued re-offer.
    fn negotiated(&self) {
        let (listeners, reoffer) = {
            let mut st = self.inner.state.lock();
            st.awaiting_answer = false;
            let reoffer = std::mem::take(&mut st.reoffer_queued);
            (st.negotiated_listeners.clone(), reoffer)
        };
        for l in listeners {
            l();
        }
        if reoffer && self.inner.config.role == Role::Offerer {
            tracing::debug!(peer = %self.inner.id, "sending the queued re-offer");
            self.send_offer();
        }
    }

    /// Compare the m-lines the remote side sends on in `remote` (its offer or answer) with the
    /// previous remote description, and report the ones it stopped sending on.
    fn track_remote_sending(&self, remote: &gst_sdp::SDPMessage) {
        let now: Vec<(u32, MediaKind)> = remote
            .medias()
            .enumerate()
            .filter_map(|(idx, m)| {
                let kind = match m.media() {
                    Some("video") => MediaKind::Video,
                    Some("audio") => MediaKind::Audio,
                    _ => return None,
                };
                let sends = m
                    .attributes()
                    .any(|a| a.key() == "sendonly" || a.key() == "sendrecv");
                // (Port 0 does not mean rejected here: BUNDLE-only m-lines carry port 0.)
                sends.then_some((u32::try_from(idx).ok()?, kind))
            })
            .collect();
        let before = std::mem::replace(&mut self.inner.state.lock().remote_sending, now.clone());
        for (mline, kind) in before {
            if !now.contains(&(mline, kind)) {
                tracing::debug!(peer = %self.inner.id, mline, kind = kind.as_str(), "remote track ended");
                let _ = self.inner.events.send(PeerEvent::RemoteTrackEnded {
                    peer: self.inner.id.clone(),
                    kind,
                    mline,
                });
            }
        }
    }

    /// Emits `create-offer` or `create-answer` (`kind` is "offer" or "answer"), sets the result as
    /// the local description and hands its SDP text to `then`; a missing result fails the
    /// negotiation instead.
    fn create_local_description(
        &self,
        kind: &'static str,
        then: impl FnOnce(&Peer, String) + Send + 'static,
    ) {
        let weak = self.weak();
        let promise = gst::Promise::with_change_func(move |reply| {
            let Some(inner) = weak.upgrade() else { return };
            let peer = Peer { inner };
            let description = match reply {
                Ok(Some(s)) => s.get::<WebRTCSessionDescription>(kind).ok(),
                _ => None,
            };
            let Some(description) = description else {
                peer.fail(&format!("create-{kind} returned no {kind}"));
                return;
            };
            let text = description.sdp().as_text().unwrap_or_default();
            peer.inner.webrtcbin.emit_by_name::<()>(
                "set-local-description",
                &[&description, &None::<gst::Promise>],
            );
            then(&peer, text);
        });
        self.inner.webrtcbin.emit_by_name::<()>(
            &format!("create-{kind}"),
            &[&None::<gst::Structure>, &promise],
        );
    }

    fn fail(&self, reason: &str) {
        tracing::warn!(peer = %self.inner.id, reason, "negotiation failed");
        let _ = self.inner.events.send(PeerEvent::NegotiationFailed {
            peer: self.inner.id.clone(),
            reason: reason.to_owned(),
        });
    }

    /// Apply a message received from the remote peer.
    pub fn apply(&self, msg: SignalIn) -> Result<(), WebrtcError> {
        match msg {
            SignalIn::Offer { sdp } => {
                if self.inner.config.role != Role::Answerer {
                    return Err(WebrtcError::Signal {
                        message: "offer",
                        detail: format!(
                            "peer `{}` sent an offer but the local side is the offerer for this pair",
                            self.inner.id
                        ),
                    });
                }
                let msg = parse_sdp(&sdp, "offer")?;
                let desc = WebRTCSessionDescription::new(WebRTCSDPType::Offer, msg.clone());
                let weak = self.weak();
                let promise = gst::Promise::with_change_func(move |_reply| {
                    let Some(inner) = weak.upgrade() else { return };
                    let peer = Peer { inner };
                    peer.track_remote_sending(&msg);
                    // Leave webrtcbin's thread before requesting pads / creating the answer.
                    std::thread::spawn(move || peer.answer(&msg));
                });
                self.inner
                    .webrtcbin
                    .emit_by_name::<()>("set-remote-description", &[&desc, &promise]);
                Ok(())
            }
            SignalIn::Answer { sdp } => {
                if self.inner.config.role != Role::Offerer {
                    return Err(WebrtcError::Signal {
                        message: "answer",
                        detail: format!(
                            "peer `{}` sent an answer but the local side is the answerer",
                            self.inner.id
                        ),
                    });
                }
                if !self.inner.state.lock().offered {
                    return Err(WebrtcError::Signal {
                        message: "answer",
                        detail: "no offer was sent".into(),
                    });
                }
                let msg = parse_sdp(&sdp, "answer")?;
                let desc = WebRTCSessionDescription::new(WebRTCSDPType::Answer, msg.clone());
                let weak = self.weak();
                let promise = gst::Promise::with_change_func(move |_reply| {
                    if let Some(inner) = weak.upgrade() {
                        let peer = Peer { inner };
                        peer.remote_applied();
                        peer.track_remote_sending(&msg);
                        // Leave webrtcbin's thread before creating a queued re-offer.
                        std::thread::spawn(move || peer.negotiated());
                    }
                });
                self.inner
                    .webrtcbin
                    .emit_by_name::<()>("set-remote-description", &[&desc, &promise]);
                Ok(())
            }
            SignalIn::Ice { mline, candidate } => {
                if candidate.trim().is_empty() {
                    // End-of-candidates marker: nothing to add.
                    return Ok(());
                }
                if !candidate.starts_with("candidate:") && !candidate.starts_with("a=candidate:") {
                    return Err(WebrtcError::Signal {
                        message: "ice",
                        detail: format!(
                            "field `candidate` must start with `candidate:`, got `{candidate}`"
                        ),
                    });
                }
                let mut st = self.inner.state.lock();
                if st.remote_set {
                    drop(st);
                    self.inner
                        .webrtcbin
                        .emit_by_name::<()>("add-ice-candidate", &[&mline, &candidate]);
                } else {
                    st.pending_ice.push((mline, candidate));
                }
                Ok(())
            }
        }
    }

    fn remote_applied(&self) {
        let pending = {
            let mut st = self.inner.state.lock();
            st.remote_set = true;
            std::mem::take(&mut st.pending_ice)
        };
        for (mline, cand) in pending {
            self.inner
                .webrtcbin
                .emit_by_name::<()>("add-ice-candidate", &[&mline, &cand]);
        }
    }

    /// Answerer: attach pending local tracks to the offer's `recvonly` m-lines, then answer.
    fn answer(&self, offer: &gst_sdp::SDPMessage) {
        // Receive side: one recvonly transceiver per m-line the remote sends on, whose codec
        // preferences carry the offer's TWCC extension so that the answer keeps it and this
        // side's rtpsession returns transport-wide feedback. A re-offer keeps the earlier
        // m-lines (already answered) and appends new ones: only those need transceivers.
        let answered = self.inner.state.lock().answered_mlines;
        for media in offer.medias().skip(answered) {
            let sends = media
                .attributes()
                .any(|a| a.key() == "sendonly" || a.key() == "sendrecv");
            let kind = match media.media() {
                Some("video") => MediaKind::Video,
                Some("audio") => MediaKind::Audio,
                _ => continue,
            };
            if !sends {
                continue;
            }
            let twcc_id = media_twcc_id(media);
            let mut caps = gst::Caps::new_empty();
            for (pt, enc, clock) in media_codecs(media) {
                let supported = match kind {
                    MediaKind::Video => {
                        super::encode::VideoCodec::from_encoding_name(&enc).is_some()
                    }
                    MediaKind::Audio => enc.eq_ignore_ascii_case("OPUS"),
                };
                if supported {
                    caps.make_mut().append_structure(rtp_structure(
                        kind,
                        &enc.to_ascii_uppercase(),
                        clock,
                        pt,
                        twcc_id,
                    ));
                }
            }
            if caps.is_empty() {
                continue;
            }
            let _t = self.inner.webrtcbin.emit_by_name::<WebRTCRTPTransceiver>(
                "add-transceiver",
                &[&WebRTCRTPTransceiverDirection::Recvonly, &caps],
            );
        }

        let tracks = std::mem::take(&mut self.inner.state.lock().pending_tracks);
        let mut used: Vec<u32> = (0..u32::try_from(answered).unwrap_or(u32::MAX)).collect();
        let mut unmatched = Vec::new();
        for track in tracks {
            let Some((idx, params)) = find_mline_for(offer, &track, &used) else {
                tracing::info!(
                    peer = %self.inner.id,
                    kind = track.kind.as_str(),
                    codec = %track.encoding_name,
                    "the offer has no recvonly m-line for this track; kept for the next offer"
                );
                unmatched.push(track);
                continue;
            };
            used.push(idx);
            if let Err(e) = self.link_for_answer(idx, track, params) {
                self.fail(&format!("attaching a track to m-line {idx}: {e}"));
            }
        }
        {
            let mut st = self.inner.state.lock();
            // Tracks attached while this answer was being built stay pending too.
            unmatched.append(&mut st.pending_tracks);
            st.pending_tracks = unmatched;
            st.answered_mlines = offer.medias_len() as usize;
        }
        self.create_local_description("answer", |peer, sdp| {
            tracing::debug!(peer = %peer.inner.id, %sdp, "answer created");
            let _ = peer.inner.signals.send(SignalOut::Answer { sdp });
            peer.remote_applied();
            let peer = peer.clone();
            std::thread::spawn(move || peer.negotiated());
        });
    }

    /// Answerer: give `track` its own `sendonly` transceiver whose codec preferences carry the
    /// offer's payload type and TWCC id; webrtcbin associates it with the matching `recvonly`
    /// m-line (`idx`) while creating the answer.
    fn link_for_answer(
        &self,
        idx: u32,
        track: SendTrack,
        params: LinkParams,
    ) -> Result<(), WebrtcError> {
        let mut caps = with_ssrc(&track.offer_caps, params.ssrc);
        {
            let caps = caps.make_mut();
            for s in caps.iter_mut() {
                s.set("payload", i32::from(params.pt));
                let ext_fields: Vec<String> = s
                    .fields()
                    .filter(|f| f.starts_with("extmap-"))
                    .map(|f| f.to_string())
                    .collect();
                for f in ext_fields {
                    s.remove_field(f.as_str());
                }
                match params.twcc_id {
                    Some(id) => s.set(format!("extmap-{id}"), TWCC_URI),
                    None => s.remove_field("rtcp-fb-transport-cc"),
                }
                if let Some(id) = params.cvo_id {
                    s.set(format!("extmap-{id}"), CVO_URI);
                }
            }
        }
        let tmpl = self
            .inner
            .webrtcbin
            .pad_template("sink_%u")
            .ok_or_else(|| WebrtcError::MissingElement("webrtcbin sink_%u template".into()))?;
        let pad = self
            .inner
            .webrtcbin
            .request_pad(&tmpl, None, Some(&caps))
            .ok_or_else(|| WebrtcError::Link {
                what: format!("track for m-line {idx}"),
                detail: "webrtcbin refused the sink pad".into(),
            })?;
        let trans = pad.property::<WebRTCRTPTransceiver>("transceiver");
        trans.set_property("direction", WebRTCRTPTransceiverDirection::Sendonly);
        trans.set_property("codec-preferences", &caps);
        (track.link)(&pad, params)
    }

    /// The webrtcbin source pads (remote tracks) of m-line `mline`.
    pub fn src_pads_for_mline(&self, mline: u32) -> Vec<gst::Pad> {
        self.inner
            .webrtcbin
            .src_pads()
            .into_iter()
            .filter(|p| {
                p.has_property("transceiver")
                    && p.property::<Option<WebRTCRTPTransceiver>>("transceiver")
                        .is_some_and(|t| t.mlineindex() == mline)
            })
            .collect()
    }

    /// Fetch webrtcbin's statistics (`get-stats`), waiting at most `timeout`.
    pub fn raw_stats(&self, timeout: Duration) -> Option<gst::Structure> {
        let (tx, rx) = std::sync::mpsc::channel();
        let promise = gst::Promise::with_change_func(move |reply| {
            let s = match reply {
                Ok(Some(s)) => Some(s.to_owned()),
                _ => None,
            };
            let _ = tx.send(s);
        });
        self.inner
            .webrtcbin
            .emit_by_name::<()>("get-stats", &[&None::<gst::Pad>, &promise]);
        rx.recv_timeout(timeout).ok().flatten()
    }

    /// Close the connection and remove the `webrtcbin` from its bin. Detach publishers and
    /// subscribers first.
    pub fn close(&self) -> Result<(), WebrtcError> {
        let w = &self.inner.webrtcbin;
        w.set_state(gst::State::Null)
            .map_err(|e| WebrtcError::State(format!("stopping webrtcbin: {e}")))?;
        self.inner
            .bin
            .remove(w)
            .map_err(|e| WebrtcError::State(format!("removing webrtcbin: {e}")))?;
        Ok(())
    }
}

fn parse_sdp(sdp: &str, context: &'static str) -> Result<gst_sdp::SDPMessage, WebrtcError> {
    let msg = gst_sdp::SDPMessage::parse_buffer(sdp.as_bytes()).map_err(|e| WebrtcError::Sdp {
        context,
        detail: format!("field `sdp` does not parse: {e}"),
    })?;
    if msg.medias_len() == 0 {
        return Err(WebrtcError::Sdp {
            context,
            detail: "field `sdp` has no m= line".into(),
        });
    }
    Ok(msg)
}

/// Caps offered for a `recvonly` m-line: every codec this side decodes.
pub(crate) fn receive_caps(kind: MediaKind) -> gst::Caps {
    use super::encode::VideoCodec;
    match kind {
        MediaKind::Video => {
            let mut caps = gst::Caps::new_empty();
            let caps_mut = caps.make_mut();
            for codec in [VideoCodec::Vp8, VideoCodec::H264] {
                caps_mut.append_structure(rtp_structure(
                    MediaKind::Video,
                    codec.encoding_name(),
                    90000,
                    codec.default_payload_type(),
                    Some(TWCC_EXT_ID),
                ));
            }
            caps
        }
        MediaKind::Audio => opus_caps(),
    }
}

/// RTP caps for Opus at [`OPUS_PT`] with the TWCC header extension: what this side offers to
/// send and to receive.
pub(crate) fn opus_caps() -> gst::Caps {
    gst::Caps::builder_full()
        .structure(rtp_structure(
            MediaKind::Audio,
            "OPUS",
            48000,
            OPUS_PT,
            Some(TWCC_EXT_ID),
        ))
        .build()
}

/// Payload type for Opus when offering.
pub(crate) const OPUS_PT: u8 = 111;
/// TWCC extension id used when offering.
pub(crate) const TWCC_EXT_ID: u8 = 1;
/// CVO extension id used when offering (rotation metadata mode).
pub(crate) const CVO_EXT_ID: u8 = 3;
/// URI of the Coordination of Video Orientation header extension (`rtphdrextcvo`).
pub(crate) const CVO_URI: &str = gststreamwire::rtphdrextcvo::URI;

/// RTP caps with the feedback this engine uses: NACK, PLI, FIR and transport-cc.
pub(crate) fn rtp_structure(
    kind: MediaKind,
    encoding_name: &str,
    clock_rate: i32,
    pt: u8,
    twcc_id: Option<u8>,
) -> gst::Structure {
    let mut s = gst::Structure::builder("application/x-rtp")
        .field("media", kind.as_str())
        .field("encoding-name", encoding_name)
        .field("clock-rate", clock_rate)
        .field("payload", i32::from(pt))
        .build();
    if kind == MediaKind::Video {
        s.set("rtcp-fb-nack", true);
        s.set("rtcp-fb-nack-pli", true);
        s.set("rtcp-fb-ccm-fir", true);
    }
    if encoding_name == "OPUS" {
        s.set("encoding-params", "2");
        s.set("sprop-stereo", "0");
    }
    if encoding_name == "H264" {
        s.set("packetization-mode", "1");
        s.set("profile-level-id", "42e01f");
    }
    if let Some(id) = twcc_id {
        s.set("rtcp-fb-transport-cc", true);
        s.set(format!("extmap-{id}"), TWCC_URI);
    }
    s
}

/// A random SSRC for a local track (never 0).
pub(crate) fn new_ssrc() -> u32 {
    loop {
        let ssrc = glib::random_int();
        if ssrc != 0 {
            return ssrc;
        }
    }
}

/// `caps` with `ssrc` set on every structure.
///
/// webrtcbin 1.22 writes `a=ssrc` for a send m-line only from caps that carry an `ssrc`
/// field: the transceiver's codec preferences, or the caps that already reached its sink pad.
/// A branch linked just before `create-offer`/`create-answer` has not pushed caps yet, so
/// without this the SDP names no SSRC for it. Chromium then has to route that stream under
/// BUNDLE without a MID header extension (webrtcbin 1.22 sends none) and without a signalled
/// SSRC, and drops it: the browser plays nothing. Putting the SSRC in the codec preferences
/// (and the same value on the payloader) makes the SDP deterministic.
pub(crate) fn with_ssrc(caps: &gst::Caps, ssrc: u32) -> gst::Caps {
    let mut caps = caps.clone();
    for s in caps.make_mut().iter_mut() {
        s.set("ssrc", ssrc);
    }
    caps
}

/// Find the offer's first unused `recvonly` m-line for `track`'s kind and codec.
fn find_mline_for(
    offer: &gst_sdp::SDPMessage,
    track: &SendTrack,
    used: &[u32],
) -> Option<(u32, LinkParams)> {
    for (idx, media) in offer.medias().enumerate() {
        let idx = u32::try_from(idx).ok()?;
        if used.contains(&idx) || media.media() != Some(track.kind.as_str()) {
            continue;
        }
        let recvonly = media.attributes().any(|a| a.key() == "recvonly");
        if !recvonly {
            continue;
        }
        let Some(pt) = media_codecs(media)
            .into_iter()
            .find(|(_, enc, _)| enc.eq_ignore_ascii_case(&track.encoding_name))
            .map(|(pt, _, _)| pt)
        else {
            continue;
        };
        let twcc_id = media_twcc_id(media);
        let cvo_id = if track.cvo {
            media_ext_id(media, CVO_URI)
        } else {
            None
        };
        return Some((
            idx,
            LinkParams {
                pt,
                twcc_id,
                ssrc: track.ssrc,
                cvo_id,
            },
        ));
    }
    None
}

/// `(payload type, encoding name, clock rate)` of every `rtpmap` in an m-line.
fn media_codecs(media: &gst_sdp::SDPMediaRef) -> Vec<(u8, String, i32)> {
    media
        .attributes()
        .filter(|a| a.key() == "rtpmap")
        .filter_map(|a| {
            let v = a.value()?;
            let mut parts = v.split_whitespace();
            let pt = parts.next()?.parse::<u8>().ok()?;
            let mut enc = parts.next()?.split('/');
            let name = enc.next()?.to_owned();
            let clock = enc.next()?.parse::<i32>().ok()?;
            Some((pt, name, clock))
        })
        .collect()
}

/// The TWCC header-extension id an m-line declares, if any.
fn media_twcc_id(media: &gst_sdp::SDPMediaRef) -> Option<u8> {
    media_ext_id(media, TWCC_URI)
}

/// The id an m-line's `a=extmap` gives to the header extension `uri`, if any.
fn media_ext_id(media: &gst_sdp::SDPMediaRef, uri: &str) -> Option<u8> {
    media
        .attributes()
        .filter(|a| a.key() == "extmap")
        .filter_map(|a| a.value())
        .find(|v| v.split_whitespace().nth(1) == Some(uri))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|id| id.split('/').next())
        .and_then(|id| id.parse::<u8>().ok())
}
