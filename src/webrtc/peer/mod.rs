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
//! Gathering covers every interface unless [`PeerConfig::local_addresses`] restricts it
//! (the ICE agent's `add-local-ip-address` action; [`PeerConfig::loopback`] for tests); no
//! STUN/TURN server is configured unless given. Candidates
//! trickle out as [`SignalOut::Ice`] as soon as they are found; remote candidates arriving before
//! the remote description are held and applied right after it.

mod config;
mod negotiation;
mod signal;

use parking_lot::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use gst::glib;
use gst::prelude::*;
use gst_webrtc::{WebRTCPeerConnectionState, WebRTCRTPTransceiver};
use tokio::sync::mpsc::{UnboundedSender, unbounded_channel};

pub use config::{CongestionConfig, IceTransportPolicy, PeerConfig, Role};
pub use signal::{ConnectionState, PeerEvent, PeerIo, SignalIn, SignalOut};

use negotiation::Negotiation;

use super::repair::{Internals, RepairCounters, spawn_fec_control, watch_internals};
use super::sdp::LinkParams;
use super::{MediaKind, WebrtcError, make};

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
type LossListener = Arc<dyn Fn(MediaKind, f64) + Send + Sync>;

#[derive(Default)]
struct State {
    negotiation: Negotiation,
    /// Remote candidates held until a remote description is applied.
    pending_ice: Vec<(u32, String)>,
    /// Answerer: local tracks waiting for a `recvonly` m-line of a (re-)offer.
    pending_tracks: Vec<SendTrack>,
    /// Answerer: m-lines of the previous offers, already answered (a re-offer only appends).
    answered_mlines: usize,
    /// m-lines (index, kind) the remote side sends on, per the last remote description.
    remote_sending: Vec<(u32, MediaKind)>,
    state_listeners: Vec<StateListener>,
    estimate_listeners: Vec<EstimateListener>,
    negotiated_listeners: Vec<NegotiatedListener>,
    loss_listeners: Vec<LossListener>,
    last_estimate: Option<u32>,
}

/// Monotonic milliseconds since the first call (process-wide), never 0.
fn now_ms() -> u64 {
    static EPOCH: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    let epoch = *EPOCH.get_or_init(std::time::Instant::now);
    u64::try_from(epoch.elapsed().as_millis())
        .unwrap_or(u64::MAX)
        .max(1)
}

struct Inner {
    id: String,
    /// [`now_ms`] when a packet from the remote side last left the ICE transport (RTP, RTCP,
    /// DTLS, SCTP; STUN stays inside libnice); 0 before the first.
    last_rx_ms: AtomicU64,
    config: PeerConfig,
    webrtcbin: gst::Element,
    bin: gst::Bin,
    signals: UnboundedSender<SignalOut>,
    events: UnboundedSender<PeerEvent>,
    state: Mutex<State>,
    /// Repair elements inside the webrtcbin and their counters.
    repair: Arc<Internals>,
}

/// A [`Peer`] reference that does not keep it alive.
#[derive(Clone)]
pub(crate) struct WeakPeer(Weak<Inner>);

impl WeakPeer {
    /// The peer, if it still exists.
    pub(crate) fn upgrade(&self) -> Option<Peer> {
        self.0.upgrade().map(|inner| Peer { inner })
    }
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
        crate::webrtc::early_rtp::guard(&webrtcbin);
        // Sender reports tie RTP time to the capture time of the packets, not to when they
        // were sent. With send time (rtpbin's default) GStreamer 1.22 inside webrtcbin
        // advances the reports' RTP time at twice the real rate, and every receiver's lip sync
        // (rtpbin's, a browser's, a recording's) follows a drifting clock.
        if let Some(rtpbin) = webrtcbin
            .downcast_ref::<gst::Bin>()
            .and_then(|b| b.by_name("rtpbin"))
        {
            rtpbin.set_property("rtcp-sync-send-time", false);
            if config.rtcp_per_medium {
                crate::webrtc::rtcp_split::split_per_media(&rtpbin);
            }
        }
        webrtcbin.set_property_from_str("bundle-policy", "max-bundle");
        // Every new stream's jitter buffer starts here; an adaptive one then follows its own
        // measured delay variation (repair::watch_internals).
        webrtcbin.set_property("latency", config.jitter_buffer.initial_ms());
        let repair = watch_internals(&webrtcbin, config.repair, config.jitter_buffer);
        webrtcbin.set_property_from_str("ice-transport-policy", config.ice_transport_policy.nick());
        if let Some(agent) = webrtcbin.property::<Option<gst::glib::Object>>("ice-agent") {
            agent.set_property("ice-tcp", config.ice_tcp);
        }
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
        if let Some((first, last)) = config.ice_port_range {
            // Checked by `validate`: 1 <= first <= last.
            agent.set_property("max-rtp-port", u32::from(last));
            agent.set_property("min-rtp-port", u32::from(first));
        }
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
            last_rx_ms: AtomicU64::new(0),
            config,
            webrtcbin: webrtcbin.clone(),
            bin: bin.as_ref().clone(),
            signals: sig_tx,
            events: ev_tx,
            state: Mutex::new(State::default()),
            repair,
        });
        let peer = Peer { inner };
        peer.connect_signals();
        spawn_fec_control(&peer, peer.inner.config.repair.fec_max_pct);

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

    /// A reference that does not keep the peer alive.
    pub(crate) fn downgrade(&self) -> WeakPeer {
        WeakPeer(self.weak())
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

        // Liveness: every packet the ICE transport delivers (nicesrc is created inside
        // webrtcbin with each transport).
        let weak = self.weak();
        webrtcbin.connect("deep-element-added", false, move |values| {
            let element = values.get(2)?.get::<gst::Element>().ok()?;
            let is_nicesrc = element.factory().is_some_and(|f| f.name() == "nicesrc");
            if let (true, Some(pad)) = (is_nicesrc, element.static_pad("src")) {
                let weak = weak.clone();
                pad.add_probe(
                    gst::PadProbeType::BUFFER | gst::PadProbeType::BUFFER_LIST,
                    move |_, _| match weak.upgrade() {
                        Some(inner) => {
                            inner.last_rx_ms.store(now_ms(), Ordering::Relaxed);
                            gst::PadProbeReturn::Ok
                        }
                        None => gst::PadProbeReturn::Remove,
                    },
                );
            }
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

    /// Consume every stream this peer receives without decoding it: each new source pad of
    /// its webrtcbin goes to a `fakesink` in the peer's bin ([`super::discard`]). For a peer
    /// whose received media nobody wants (webrtcbin's statistics still count it).
    pub(crate) fn discard_received(&self) {
        let bin = self.bin().downgrade();
        let id = self.id().to_owned();
        self.webrtcbin().connect_pad_added(move |_, pad| {
            if pad.direction() != gst::PadDirection::Src {
                return;
            }
            let Some(bin) = bin.upgrade() else {
                return;
            };
            if let Err(e) = super::discard(&bin, pad) {
                tracing::warn!(peer = %id, error = %e, "a received stream is not consumed");
            }
        });
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

    /// How long since the remote side's last packet arrived over the ICE transport (media,
    /// RTCP, DTLS or data channel; ICE's own STUN checks do not count); `None` before the
    /// first. A connection carrying media in either direction is never silent for long
    /// (RTP, or the receiver's RTCP feedback), so a long silence means the path is gone.
    pub fn silence(&self) -> Option<Duration> {
        match self.inner.last_rx_ms.load(Ordering::Relaxed) {
            0 => None,
            t => Some(Duration::from_millis(now_ms().saturating_sub(t))),
        }
    }

    /// Whether the negotiated session (the current local description) has an audio or
    /// video m-line that is not `inactive`, so packets (media, or the receiver's RTCP
    /// feedback) flow both ways.
    pub fn carries_media(&self) -> bool {
        self.active_mline(&["audio", "video"])
    }

    /// Whether the current local description has any m-line (audio, video or data channel)
    /// that is not `inactive`: there is something for ICE and DTLS to connect.
    pub fn has_transport(&self) -> bool {
        self.active_mline(&["audio", "video", "application"])
    }

    fn active_mline(&self, kinds: &[&str]) -> bool {
        let Some(desc) = self
            .inner
            .webrtcbin
            .property::<Option<gst_webrtc::WebRTCSessionDescription>>("current-local-description")
        else {
            return false;
        };
        desc.sdp().medias().any(|m| {
            m.media().is_some_and(|k| kinds.contains(&k))
                && (m.media() == Some("application")
                    || m.attributes()
                        .any(|a| matches!(a.key(), "sendonly" | "recvonly" | "sendrecv")))
        })
    }

    /// The remote side's ICE username fragment, from the applied remote description.
    pub fn remote_ice_ufrag(&self) -> Option<String> {
        let desc = self
            .inner
            .webrtcbin
            .property::<Option<gst_webrtc::WebRTCSessionDescription>>(
                "current-remote-description",
            )?;
        super::sdp::ice_ufrag(desc.sdp())
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

    /// Call `f` with the loss (%) the remote side reports for what this side sends, per
    /// kind, about once a second (smoothed: up at once, down slowly). The publisher feeds the
    /// audio figure to Opus (`packet-loss-percentage`).
    pub fn on_remote_loss(&self, f: impl Fn(MediaKind, f64) + Send + Sync + 'static) {
        self.inner.state.lock().loss_listeners.push(Arc::new(f));
    }

    pub(crate) fn remote_loss(&self, kind: MediaKind, pct: f64) {
        let listeners = self.inner.state.lock().loss_listeners.clone();
        for l in listeners {
            l(kind, pct);
        }
    }

    /// Repair counters of this connection: media, RTX and FEC packets sent and received,
    /// retransmission requests served, packets FEC recovered, the current ULPFEC overhead
    /// and jitter-buffer latencies.
    pub fn repair_counters(&self) -> RepairCounters {
        self.inner.repair.snapshot(&self.inner.webrtcbin)
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
