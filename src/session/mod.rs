//! `Session`: join a room through the signalling server and exchange media with every other
//! member over one `webrtcbin` per remote peer (mesh).
//!
//! A session drives one signalling [`Client`] and one [`Peer`] per remote peer:
//! - on the server's `welcome`, it creates a peer for every member already present and offers
//!   to those listed in `offer_to` (the newcomer offers, so offers never cross);
//! - on `peer_joined` / `peer_left` it creates (answerer role when `expect_offer`) or closes;
//! - offers, answers and ICE candidates are routed by sender to the right [`Peer`], and each
//!   peer's [`SignalOut`] goes back out through the client;
//! - local tracks are encoded once ([`Publisher`]) and announced with `publish`; they can also
//!   be published after join and withdrawn without leaving ([`Session::publish`],
//!   [`Session::unpublish`]), which renegotiates every peer connection;
//! - remote tracks are decoded by one shared [`Subscriber`] (display, appsink, record or discard);
//! - real-time messages go through the signalling server (reliable, with a delivery result,
//!   [`Session::send_message`]) or over a WebRTC data channel (fast path,
//!   [`Session::send_data`]): the offerer of each pair creates the channel before offering, the
//!   answerer receives it through `on-data-channel`;
//! - a signalling reconnect that resumes the session keeps every peer connection: media never
//!   passes through the signalling socket, so it keeps flowing; a fresh join (the old session
//!   expired) rebuilds all peers.
//!
//! ```no_run
//! # async fn demo() -> Result<(), streamwire::session::SessionError> {
//! use streamwire::session::{Session, SessionConfig, SessionEvent};
//! use streamwire::webrtc::publisher::PublisherConfig;
//! let mut cfg = SessionConfig::new("ws://127.0.0.1:8443", "room1", "<jwt>");
//! cfg.publish = Some(PublisherConfig::default());
//! let (session, mut events) = Session::join(cfg).await?;
//! while let Some(ev) = events.recv().await {
//!     if let SessionEvent::Stats(s) = &ev {
//!         println!("{}", s.stats.status_line());
//!     }
//! }
//! session.leave().await;
//! # Ok(()) }
//! ```

pub mod latency;
pub mod telemetry;

use parking_lot::Mutex;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use gst::prelude::*;
use gst_webrtc::{WebRTCDataChannel, WebRTCDataChannelState};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

use crate::signalling::client::{
    Client, ClientConfig, ClientError, ConnectionState as SignallingState, Delivery, Event, Events,
};
use crate::signalling::protocol::{IceServer, Payload, PeerId, TrackInfo, TrackKind};
use crate::webrtc::peer::{
    ConnectionState, DEFAULT_JITTER_LATENCY_MS, Peer, PeerConfig, PeerEvent, PeerIo, Role,
    SignalIn, SignalOut,
};
use crate::webrtc::publisher::{AudioSource, Publisher, PublisherConfig, VideoSource};
use crate::webrtc::stats::{STATS_INTERVAL, StatsCollector, StatsEvent};
use crate::webrtc::subscriber::{Subscriber, SubscriberConfig, SubscriberEvent};
use crate::webrtc::{MediaKind, WebrtcError};

/// Label of the data channel every pair opens.
pub const DATA_CHANNEL_LABEL: &str = "streamwire";

/// Which remote peers to receive media from.
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
    fn wants(&self, user: &str) -> bool {
        match self {
            Subscribe::Auto => true,
            Subscribe::Users(list) => list.iter().any(|u| u == user),
        }
    }
}

/// Configuration of [`Session::join`].
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
    /// Addresses ICE gathers on. Default: `127.0.0.1` only.
    pub local_addresses: Vec<String>,
    /// Extra ICE servers (`stun://host:port`, `turn(s)://user:pass@host:port`), added to those
    /// of the server's join reply.
    pub ice_servers: Vec<String>,
    /// Jitter-buffer latency (ms). Default [`DEFAULT_JITTER_LATENCY_MS`].
    pub jitter_latency_ms: u32,
    /// Open a data channel to every peer. Default true.
    pub data_channel: bool,
    /// Telemetry forwarding (default consent `none`: nothing read, nothing sent).
    pub telemetry: telemetry::TelemetryConfig,
}

impl SessionConfig {
    /// Receive-only, loopback-only defaults for a server URL, room and token.
    ///
    /// ```
    /// let cfg = streamwire::session::SessionConfig::new("ws://127.0.0.1:8443", "room", "jwt");
    /// assert_eq!(cfg.local_addresses, vec!["127.0.0.1".to_string()]);
    /// ```
    pub fn new(url: &str, room: &str, token: &str) -> Self {
        SessionConfig {
            signalling: ClientConfig::new(url, room, token),
            publish: None,
            subscribe: Subscribe::Auto,
            output: SubscriberConfig::default(),
            local_addresses: vec!["127.0.0.1".to_owned()],
            ice_servers: Vec::new(),
            jitter_latency_ms: DEFAULT_JITTER_LATENCY_MS,
            data_channel: true,
            telemetry: telemetry::TelemetryConfig::default(),
        }
    }
}

/// How a real-time message arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Via {
    /// Through the signalling server (reliable, resumable).
    Signalling,
    /// Over the WebRTC data channel of the pair.
    DataChannel,
}

/// Events of a [`Session`].
#[derive(Debug, Clone)]
pub enum SessionEvent {
    /// Joined the room (also after a fresh re-join with a new id; all peers were rebuilt).
    Joined {
        /// This peer's id.
        peer_id: PeerId,
    },
    /// The signalling connection resumed after a drop; peers and media were kept.
    Resumed,
    /// Signalling connection state.
    Signalling(SignallingState),
    /// A remote peer is now connected to this session's mesh (present at join or joined later).
    PeerJoined {
        /// Its id.
        peer_id: PeerId,
        /// Its user id.
        user: String,
    },
    /// A remote peer left; its peer connection is closed.
    PeerLeft {
        /// Its id.
        peer_id: PeerId,
    },
    /// A peer announced a track through signalling.
    TrackPublished {
        /// Publisher.
        peer_id: PeerId,
        /// Track.
        track: TrackInfo,
    },
    /// A peer withdrew an announced track.
    TrackUnpublished {
        /// Publisher.
        peer_id: PeerId,
        /// Track id.
        track_id: String,
    },
    /// Media of a remote track started arriving.
    TrackAdded {
        /// Sender.
        peer_id: PeerId,
        /// Kind.
        kind: MediaKind,
        /// RTP encoding name.
        codec: String,
    },
    /// A remote track ended (its peer left or the session ended).
    TrackRemoved {
        /// Sender.
        peer_id: PeerId,
        /// Kind.
        kind: MediaKind,
    },
    /// Receive-side event (decoded frames, first audio, unsupported track).
    Receive(SubscriberEvent),
    /// The server's answer to a telemetry, feedback or privacy request the app sent through
    /// [`Session::client`]: [`Event::TelemetryAck`], [`Event::FeedbackAck`],
    /// [`Event::PrivacyExport`] or [`Event::PrivacyDeleted`].
    ServiceReply(Event),
    /// Peer connection state.
    Connection {
        /// Remote peer.
        peer_id: PeerId,
        /// New state.
        state: ConnectionState,
    },
    /// The data channel to a peer is open.
    DataChannelOpen {
        /// Remote peer.
        peer_id: PeerId,
    },
    /// Per-peer statistics, every [`STATS_INTERVAL`].
    Stats(StatsEvent),
    /// A real-time message.
    Message {
        /// Sender.
        from: PeerId,
        /// Path it took.
        via: Via,
        /// Content.
        payload: Payload,
    },
    /// Something went wrong with one peer or message; the session continues.
    Error {
        /// What was being done.
        context: String,
        /// What went wrong.
        detail: String,
    },
}

/// Errors of the session layer.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The signalling client failed (refused join, connection, closed).
    #[error("signalling: {0}")]
    Signalling(#[from] ClientError),
    /// The media engine failed.
    #[error("media: {0}")]
    Media(#[from] WebrtcError),
    /// An ICE server URL from the join reply or the configuration is unusable.
    #[error("ICE server `{url}`: {detail}")]
    IceServer {
        /// The URL.
        url: String,
        /// What is wrong.
        detail: String,
    },
    /// No open data channel to the addressed peer(s).
    #[error("no open data channel to {0}")]
    NoDataChannel(String),
    /// [`Session::publish`] while already publishing, or [`Session::unpublish`] with nothing
    /// published.
    #[error("publish: {0}")]
    Publishing(String),
}

struct PeerEntry {
    peer: Peer,
    user: String,
    channel: Arc<Mutex<Option<WebRTCDataChannel>>>,
}

struct Inner {
    pipeline: gst::Pipeline,
    /// The local track set and its configuration; lock order: `publisher`, then `peers`.
    publisher: Mutex<Option<(Publisher, PublisherConfig)>>,
    subscriber: Subscriber,
    client: Client,
    subscribe: Subscribe,
    local_addresses: Vec<String>,
    extra_ice: Vec<String>,
    jitter_latency_ms: u32,
    data_channel: bool,
    peers: Mutex<HashMap<PeerId, PeerEntry>>,
    tracks: Mutex<HashMap<PeerId, HashSet<MediaKind>>>,
    ice: Mutex<(Option<String>, Vec<String>)>,
    stats: StatsCollector,
    telemetry: telemetry::Forwarder,
    events: UnboundedSender<SessionEvent>,
    /// Serialises GStreamer teardown and setup of peers with `leave` (true once left). Two
    /// state changes at once deadlocked: `leave` taking the pipeline to NULL (sinks back in
    /// PAUSED block streaming threads in preroll) while the event task took a departed peer's
    /// branch to NULL (waiting for a queue's streaming thread blocked behind that preroll).
    teardown: Mutex<bool>,
}

/// A joined room: one signalling client, one peer connection per remote member.
#[derive(Clone)]
pub struct Session {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("peer_id", &self.inner.client.peer_id())
            .finish_non_exhaustive()
    }
}

impl Session {
    /// Build the local pipeline (publisher, subscriber), join the room and start the mesh.
    /// Returns once the server welcomed this peer; events arrive on the receiver.
    pub async fn join(
        cfg: SessionConfig,
    ) -> Result<(Session, UnboundedReceiver<SessionEvent>), SessionError> {
        crate::gst_init::init().map_err(|e| WebrtcError::State(format!("GStreamer init: {e}")))?;
        for url in &cfg.ice_servers {
            validate_ice_url(url)?;
        }
        let pipeline = gst::Pipeline::with_name("streamwire-session");
        let publisher = match &cfg.publish {
            Some(p) => Some(Publisher::new(&pipeline, p.clone())?),
            None => None,
        };
        let (subscriber, sub_events) = Subscriber::new(cfg.output.clone());
        pipeline
            .set_state(gst::State::Playing)
            .map_err(|e| WebrtcError::State(format!("starting the session pipeline: {e}")))?;
        let (client, client_events) = match Client::connect(cfg.signalling.clone()).await {
            Ok(c) => c,
            Err(e) => {
                let _ = pipeline.set_state(gst::State::Null);
                return Err(e.into());
            }
        };
        let (stats, stats_rx) =
            StatsCollector::start(STATS_INTERVAL, publisher.clone(), Some(subscriber.clone()));
        let (tx, rx) = unbounded_channel();
        let telemetry =
            match telemetry::Forwarder::start(client.clone(), &cfg.telemetry, tx.clone()) {
                Ok(t) => t,
                Err(e) => {
                    client.leave().await;
                    let _ = pipeline.set_state(gst::State::Null);
                    return Err(e.into());
                }
            };
        let inner = Arc::new(Inner {
            pipeline,
            publisher: Mutex::new(publisher.zip(cfg.publish)),
            subscriber,
            client,
            subscribe: cfg.subscribe,
            local_addresses: cfg.local_addresses,
            extra_ice: cfg.ice_servers,
            jitter_latency_ms: cfg.jitter_latency_ms,
            data_channel: cfg.data_channel,
            peers: Mutex::new(HashMap::new()),
            tracks: Mutex::new(HashMap::new()),
            ice: Mutex::new((None, Vec::new())),
            stats,
            telemetry,
            events: tx,
            teardown: Mutex::new(false),
        });
        let session = Session { inner };
        session.spawn_forwarders(sub_events, stats_rx);
        tokio::spawn(session.clone().run(client_events));
        Ok((session, rx))
    }

    /// This peer's id in the room.
    pub fn peer_id(&self) -> Option<PeerId> {
        self.inner.client.peer_id()
    }

    /// The signalling client (for metadata, kick, ...).
    pub fn client(&self) -> &Client {
        &self.inner.client
    }

    /// The local publisher, if any.
    pub fn publisher(&self) -> Option<Publisher> {
        self.inner.publisher.lock().as_ref().map(|(p, _)| p.clone())
    }

    /// Publish a local track set after join (when nothing is published): the capture and
    /// encode chains start in the running pipeline, every peer connection is renegotiated to
    /// carry the new tracks (as the pair's offerer: new `sendonly` m-lines and a new offer; as
    /// answerer: the `publish` announcement asks the offerer to re-offer with `recvonly`
    /// m-lines, which this side then sends on), and the tracks are announced. Media already
    /// flowing is not interrupted; remote sides get [`SessionEvent::TrackAdded`].
    ///
    /// ```no_run
    /// # async fn demo(session: streamwire::session::Session) -> Result<(), streamwire::session::SessionError> {
    /// use streamwire::webrtc::publisher::PublisherConfig;
    /// session.publish(PublisherConfig::default())?; // camera on
    /// session.unpublish()?; // camera off, still in the room
    /// # Ok(()) }
    /// ```
    pub fn publish(&self, cfg: PublisherConfig) -> Result<(), SessionError> {
        // Serialised with peer setup/teardown and `leave` (see `Inner::teardown`).
        let left = self.inner.teardown.lock();
        if *left {
            return Err(SessionError::Publishing(
                "the session has left the room".into(),
            ));
        }
        let mut slot = self.inner.publisher.lock();
        if slot.is_some() {
            return Err(SessionError::Publishing(
                "a track set is already published; call unpublish() first".into(),
            ));
        }
        let publisher = Publisher::new(&self.inner.pipeline, cfg.clone())?;
        if let Err(e) = publisher.start() {
            publisher.stop();
            return Err(e.into());
        }
        *slot = Some((publisher.clone(), cfg));
        self.inner.stats.set_publisher(Some(publisher.clone()));
        let peers: Vec<Peer> = self
            .inner
            .peers
            .lock()
            .values()
            .map(|e| e.peer.clone())
            .collect();
        for peer in peers {
            let res = publisher.attach(&peer).and_then(|()| match peer.role() {
                Role::Offerer => peer.renegotiate(&[]),
                // The announcement below asks the offerer for a re-offer.
                Role::Answerer => Ok(()),
            });
            if let Err(e) = res {
                self.error(format!("publishing to peer `{}`", peer.id()), e.to_string());
            }
        }
        drop(slot);
        self.announce_tracks();
        Ok(())
    }

    /// Stop publishing without leaving: every peer's send branches are released and their
    /// m-lines renegotiated to `inactive` (the offerer re-offers at once; an answerer's
    /// `unpublish` announcement asks its offerer to), the tracks are withdrawn with
    /// `unpublish`, and the capture and encode chains are removed from the pipeline. Remote
    /// sides get [`SessionEvent::TrackRemoved`]. [`Session::publish`] may follow.
    pub fn unpublish(&self) -> Result<(), SessionError> {
        let left = self.inner.teardown.lock();
        if *left {
            return Err(SessionError::Publishing(
                "the session has left the room".into(),
            ));
        }
        let Some((publisher, cfg)) = self.inner.publisher.lock().take() else {
            return Err(SessionError::Publishing("nothing is published".into()));
        };
        self.inner.stats.set_publisher(None);
        let peers: Vec<Peer> = self
            .inner
            .peers
            .lock()
            .values()
            .map(|e| e.peer.clone())
            .collect();
        for peer in &peers {
            publisher.detach(peer.id());
            if peer.role() == Role::Offerer
                && let Err(e) = peer.renegotiate(&[])
            {
                self.error(
                    format!("unpublishing towards peer `{}`", peer.id()),
                    e.to_string(),
                );
            }
        }
        for (id, _) in published_tracks(&cfg) {
            if let Err(e) = self.inner.client.unpublish(id) {
                self.error(format!("unpublishing track `{id}`"), e.to_string());
            }
        }
        publisher.stop();
        Ok(())
    }

    /// The shared subscriber (counters, frame callbacks, keyframe requests).
    pub fn subscriber(&self) -> &Subscriber {
        &self.inner.subscriber
    }

    /// The session's GStreamer pipeline.
    pub fn pipeline(&self) -> &gst::Pipeline {
        &self.inner.pipeline
    }

    /// Ids of the remote peers currently in the mesh.
    pub fn peers(&self) -> Vec<PeerId> {
        let mut v: Vec<PeerId> = self.inner.peers.lock().keys().cloned().collect();
        v.sort();
        v
    }

    /// Connection state of the peer connection to `peer_id`.
    pub fn connection_state(&self, peer_id: &str) -> Option<ConnectionState> {
        self.inner
            .peers
            .lock()
            .get(peer_id)
            .map(|e| e.peer.connection_state())
    }

    /// Send a real-time message through the signalling server to the room (`to = None`) or
    /// one peer, and wait for its delivery result (survives signalling reconnects).
    pub async fn send_message(
        &self,
        to: Option<&str>,
        payload: Payload,
    ) -> Result<Delivery, SessionError> {
        Ok(self.inner.client.send_message(to, payload).await?)
    }

    /// Send a message over the data channel to one peer or (`to = None`) every peer with an
    /// open channel. Returns how many peers it was handed to.
    pub fn send_data(&self, to: Option<&str>, payload: &Payload) -> Result<usize, SessionError> {
        let channels: Vec<(PeerId, WebRTCDataChannel)> = self
            .inner
            .peers
            .lock()
            .iter()
            .filter(|(id, _)| to.is_none_or(|t| t == id.as_str()))
            .filter_map(|(id, e)| e.channel.lock().clone().map(|c| (id.clone(), c)))
            .filter(|(_, c)| c.ready_state() == WebRTCDataChannelState::Open)
            .collect();
        if channels.is_empty() {
            return Err(SessionError::NoDataChannel(
                to.map(|t| format!("peer `{t}`"))
                    .unwrap_or_else(|| "any peer".into()),
            ));
        }
        for (id, c) in &channels {
            let res = match payload {
                Payload::Text(t) => c.send_string_full(Some(t)),
                Payload::Binary(b) => c.send_data_full(Some(&gst::glib::Bytes::from(b.as_slice()))),
            };
            if let Err(e) = res {
                return Err(SessionError::NoDataChannel(format!("peer `{id}` ({e})")));
            }
        }
        Ok(channels.len())
    }

    /// The end user's telemetry consent currently applied.
    pub fn consent(&self) -> gststreamwire::telemetry::Consent {
        self.inner.telemetry.consent()
    }

    /// Change the telemetry consent at runtime: lowering it strips pending records of what
    /// the new level does not allow; at `none` nothing more is read or sent.
    pub fn set_consent(&self, consent: gststreamwire::telemetry::Consent) {
        self.inner.telemetry.set_consent(consent);
    }

    /// Send the pending telemetry now instead of at the next interval (also done by
    /// [`Session::leave`]).
    pub fn flush_telemetry(&self) {
        self.inner.telemetry.flush();
    }

    /// The session's `devicetelemetry` element (None when `telemetry.device` is false).
    pub fn telemetry_element(&self) -> Option<&gst::Element> {
        self.inner.telemetry.element()
    }

    /// What telemetry forwarding has sent so far.
    pub fn telemetry_counters(&self) -> telemetry::TelemetryCounters {
        self.inner.telemetry.counters()
    }

    /// Leave the room: send pending telemetry, tell the server, close every peer connection,
    /// stop the pipeline.
    pub async fn leave(&self) {
        self.inner.telemetry.finish();
        self.inner.client.leave().await;
        let mut left = self.inner.teardown.lock();
        *left = true;
        let ids: Vec<PeerId> = self.inner.peers.lock().keys().cloned().collect();
        for id in ids {
            self.remove_peer_locked(&id);
        }
        let _ = self.inner.pipeline.set_state(gst::State::Null);
    }

    fn emit(&self, ev: SessionEvent) {
        let _ = self.inner.events.send(ev);
    }

    fn error(&self, context: String, detail: String) {
        tracing::warn!(%context, %detail, "session");
        self.emit(SessionEvent::Error { context, detail });
    }

    fn spawn_forwarders(
        &self,
        mut sub_events: UnboundedReceiver<SubscriberEvent>,
        mut stats_rx: UnboundedReceiver<StatsEvent>,
    ) {
        let s = self.clone();
        tokio::spawn(async move {
            while let Some(ev) = sub_events.recv().await {
                if let SubscriberEvent::TrackAdded { peer, kind, codec } = &ev {
                    s.inner
                        .tracks
                        .lock()
                        .entry(peer.clone())
                        .or_default()
                        .insert(*kind);
                    s.emit(SessionEvent::TrackAdded {
                        peer_id: peer.clone(),
                        kind: *kind,
                        codec: codec.clone(),
                    });
                }
                s.emit(SessionEvent::Receive(ev));
            }
        });
        let s = self.clone();
        tokio::spawn(async move {
            while let Some(ev) = stats_rx.recv().await {
                s.inner.telemetry.push_stats(&ev.stats);
                s.emit(SessionEvent::Stats(ev));
            }
        });
    }

    async fn run(self, mut events: Events) {
        let mut joined_once = false;
        while let Some(ev) = events.recv().await {
            match ev {
                Event::State(st) => {
                    let closed =
                        matches!(st, SignallingState::Closed | SignallingState::Failed { .. });
                    self.emit(SessionEvent::Signalling(st));
                    if closed {
                        break;
                    }
                }
                Event::Joined(w) => {
                    if joined_once {
                        // The old session is gone: every peer connection is void.
                        let ids: Vec<PeerId> = self.inner.peers.lock().keys().cloned().collect();
                        for id in ids {
                            self.remove_peer(&id);
                        }
                    }
                    joined_once = true;
                    if let Err(e) = self.set_ice_servers(&w.ice_servers) {
                        self.error("ICE servers of the join reply".into(), e.to_string());
                    }
                    self.emit(SessionEvent::Joined {
                        peer_id: w.peer_id.clone(),
                    });
                    self.announce_tracks();
                    for p in &w.peers {
                        let role = if w.offer_to.contains(&p.peer_id) {
                            Role::Offerer
                        } else {
                            Role::Answerer
                        };
                        self.add_peer(&p.peer_id, &p.user, role);
                        for t in &p.tracks {
                            self.emit(SessionEvent::TrackPublished {
                                peer_id: p.peer_id.clone(),
                                track: t.clone(),
                            });
                        }
                    }
                }
                Event::Resumed { .. } => self.emit(SessionEvent::Resumed),
                Event::PeerJoined { peer, expect_offer } => {
                    let role = if expect_offer {
                        Role::Answerer
                    } else {
                        Role::Offerer
                    };
                    self.add_peer(&peer.peer_id, &peer.user, role);
                }
                Event::PeerLeft { peer_id, .. } => self.remove_peer(&peer_id),
                Event::Published { peer_id, track } => {
                    let kind = match track.kind {
                        TrackKind::Video => Some(MediaKind::Video),
                        TrackKind::Audio => Some(MediaKind::Audio),
                        _ => None,
                    };
                    self.reoffer_for(&peer_id, kind);
                    self.emit(SessionEvent::TrackPublished { peer_id, track })
                }
                Event::Unpublished { peer_id, track_id } => {
                    self.reoffer_for(&peer_id, None);
                    self.emit(SessionEvent::TrackUnpublished { peer_id, track_id })
                }
                Event::MetadataChanged { .. } => {}
                ev @ (Event::TelemetryAck { .. }
                | Event::FeedbackAck
                | Event::PrivacyExport { .. }
                | Event::PrivacyDeleted { .. }) => self.emit(SessionEvent::ServiceReply(ev)),
                Event::Offer { from, sdp } => self.route(&from, "offer", SignalIn::Offer { sdp }),
                Event::Answer { from, sdp } => {
                    self.route(&from, "answer", SignalIn::Answer { sdp })
                }
                Event::Ice {
                    from,
                    candidate,
                    sdp_mline_index,
                    ..
                } => self.route(
                    &from,
                    "ice",
                    SignalIn::Ice {
                        mline: sdp_mline_index,
                        candidate,
                    },
                ),
                Event::Message { from, payload, .. } => self.emit(SessionEvent::Message {
                    from,
                    via: Via::Signalling,
                    payload,
                }),
                Event::ServerError {
                    code,
                    message,
                    in_type,
                    field,
                } => self.error(
                    format!(
                        "server error on `{}`{}",
                        in_type.unwrap_or_default(),
                        field.map(|f| format!(" field `{f}`")).unwrap_or_default()
                    ),
                    format!("{code}: {message}"),
                ),
            }
        }
    }

    /// A remote peer announced (`Some(kind)`) or withdrew (`None`) a track. If this side offers
    /// for the pair, that announcement is the answerer's request for a re-offer: a new
    /// `recvonly` m-line for an announced track this side subscribes to, and in any case a new
    /// offer so the answerer can change its m-lines' directions.
    fn reoffer_for(&self, peer_id: &str, kind: Option<MediaKind>) {
        let Some((peer, user)) = self
            .inner
            .peers
            .lock()
            .get(peer_id)
            .map(|e| (e.peer.clone(), e.user.clone()))
        else {
            return;
        };
        if peer.role() != Role::Offerer {
            return;
        }
        let receive: Vec<MediaKind> = kind
            .filter(|_| self.inner.subscribe.wants(&user))
            .into_iter()
            .collect();
        if let Err(e) = peer.renegotiate(&receive) {
            self.error(format!("re-offering to peer `{peer_id}`"), e.to_string());
        }
    }

    fn route(&self, from: &str, what: &str, msg: SignalIn) {
        let peer = self.inner.peers.lock().get(from).map(|e| e.peer.clone());
        match peer {
            Some(p) => {
                if let Err(e) = p.apply(msg) {
                    self.error(format!("{what} from peer `{from}`"), e.to_string());
                }
            }
            None => self.error(
                format!("{what} from peer `{from}`"),
                "no such peer in this session".into(),
            ),
        }
    }

    fn announce_tracks(&self) {
        let Some(cfg) = self.inner.publisher.lock().as_ref().map(|(_, c)| c.clone()) else {
            return;
        };
        for (id, kind) in published_tracks(&cfg) {
            let track = TrackInfo {
                id: id.into(),
                kind,
                label: None,
            };
            if let Err(e) = self.inner.client.publish(track) {
                self.error(format!("publishing track `{id}`"), e.to_string());
            }
        }
    }

    fn set_ice_servers(&self, servers: &[IceServer]) -> Result<(), SessionError> {
        let mut stun = None;
        let mut turns = Vec::new();
        let from_reply = servers.iter().flat_map(|s| {
            s.urls.iter().map(move |u| {
                ice_url_for_webrtcbin(u, s.username.as_deref(), s.credential.as_deref())
            })
        });
        let mut first_err = None;
        for url in from_reply.chain(self.inner.extra_ice.iter().map(|u| Ok(u.clone()))) {
            match url {
                Ok(u) if u.starts_with("stun://") => {
                    stun.get_or_insert(u);
                }
                Ok(u) => turns.push(u),
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        *self.inner.ice.lock() = (stun, turns);
        match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn add_peer(&self, id: &str, user: &str, role: Role) {
        let left = self.inner.teardown.lock();
        if *left || self.inner.peers.lock().contains_key(id) {
            return;
        }
        match self.create_peer(id, user, role) {
            Ok(()) => self.emit(SessionEvent::PeerJoined {
                peer_id: id.to_owned(),
                user: user.to_owned(),
            }),
            Err(e) => self.error(format!("connecting to peer `{id}`"), e.to_string()),
        }
    }

    fn create_peer(&self, id: &str, user: &str, role: Role) -> Result<(), SessionError> {
        let inner = &self.inner;
        let wants = inner.subscribe.wants(user);
        let (stun, turns) = inner.ice.lock().clone();
        let mut cfg = PeerConfig::loopback(role);
        cfg.local_addresses = inner.local_addresses.clone();
        cfg.stun_server = stun;
        cfg.turn_servers = turns;
        cfg.jitter_latency_ms = inner.jitter_latency_ms;
        if wants {
            cfg.receive = vec![MediaKind::Video, MediaKind::Audio];
        }
        // Held until the peer is in the map, so a concurrent publish() attaches exactly once.
        let publisher = inner.publisher.lock();
        let (peer, io) = Peer::new(&inner.pipeline, id, cfg)?;
        if let Some((p, _)) = publisher.as_ref()
            && let Err(e) = p.attach(&peer)
        {
            let _ = peer.close();
            return Err(e.into());
        }
        if wants {
            inner.subscriber.attach(&peer);
        } else {
            discard_remote_pads(&peer);
        }
        let channel = Arc::new(Mutex::new(None));
        if inner.data_channel {
            match role {
                Role::Offerer => {
                    let dc = peer.webrtcbin().emit_by_name::<Option<WebRTCDataChannel>>(
                        "create-data-channel",
                        &[&DATA_CHANNEL_LABEL, &None::<gst::Structure>],
                    );
                    match dc {
                        Some(dc) => {
                            self.hook_channel(id, &dc);
                            *channel.lock() = Some(dc);
                        }
                        None => self.error(
                            format!("data channel to peer `{id}`"),
                            "webrtcbin refused create-data-channel".into(),
                        ),
                    }
                }
                Role::Answerer => {
                    let weak = Arc::downgrade(&self.inner);
                    let slot = channel.clone();
                    let pid = id.to_owned();
                    peer.webrtcbin()
                        .connect("on-data-channel", false, move |v| {
                            let inner = weak.upgrade()?;
                            let dc = v.get(1)?.get::<WebRTCDataChannel>().ok()?;
                            Session { inner }.hook_channel(&pid, &dc);
                            *slot.lock() = Some(dc);
                            None
                        });
                }
            }
        }
        inner.stats.watch(&peer);
        self.spawn_peer_io(id, io);
        inner.peers.lock().insert(
            id.to_owned(),
            PeerEntry {
                peer: peer.clone(),
                user: user.to_owned(),
                channel,
            },
        );
        drop(publisher);
        if role == Role::Offerer {
            peer.negotiate()?;
        }
        Ok(())
    }

    fn hook_channel(&self, peer_id: &str, dc: &WebRTCDataChannel) {
        let ev = self.inner.events.clone();
        let pid = peer_id.to_owned();
        dc.connect_on_open(move |_| {
            let _ = ev.send(SessionEvent::DataChannelOpen {
                peer_id: pid.clone(),
            });
        });
        // webrtcbin 1.22 may report the channel open before on-open is connected (answerer).
        if dc.ready_state() == WebRTCDataChannelState::Open {
            self.emit(SessionEvent::DataChannelOpen {
                peer_id: peer_id.to_owned(),
            });
        }
        let ev = self.inner.events.clone();
        let pid = peer_id.to_owned();
        dc.connect_on_message_string(move |_, s| {
            let _ = ev.send(SessionEvent::Message {
                from: pid.clone(),
                via: Via::DataChannel,
                payload: Payload::Text(s.unwrap_or_default().to_owned()),
            });
        });
        let ev = self.inner.events.clone();
        let pid = peer_id.to_owned();
        dc.connect_on_message_data(move |_, b| {
            let _ = ev.send(SessionEvent::Message {
                from: pid.clone(),
                via: Via::DataChannel,
                payload: Payload::Binary(b.map(|b| b.to_vec()).unwrap_or_default()),
            });
        });
    }

    fn spawn_peer_io(&self, id: &str, mut io: PeerIo) {
        let client = self.inner.client.clone();
        let to = id.to_owned();
        let s = self.clone();
        tokio::spawn(async move {
            while let Some(msg) = io.signals.recv().await {
                let res = match msg {
                    SignalOut::Offer { sdp } => client.send_offer(&to, sdp),
                    SignalOut::Answer { sdp } => client.send_answer(&to, sdp),
                    SignalOut::Ice { mline, candidate } => {
                        client.send_ice(&to, candidate, mline, None)
                    }
                };
                if let Err(e) = res {
                    s.error(format!("signalling to peer `{to}`"), e.to_string());
                    break;
                }
            }
        });
        let s = self.clone();
        tokio::spawn(async move {
            while let Some(ev) = io.events.recv().await {
                match ev {
                    PeerEvent::ConnectionState { peer, state } => {
                        s.emit(SessionEvent::Connection {
                            peer_id: peer,
                            state,
                        })
                    }
                    PeerEvent::EstimatedBitrate { .. } => {}
                    PeerEvent::RemoteTrackEnded { peer, kind, mline } => {
                        let p = s.inner.peers.lock().get(&peer).map(|e| e.peer.clone());
                        for pad in p.map(|p| p.src_pads_for_mline(mline)).unwrap_or_default() {
                            s.inner.subscriber.release_pad(&peer, &pad);
                        }
                        let had = s
                            .inner
                            .tracks
                            .lock()
                            .get_mut(&peer)
                            .is_some_and(|kinds| kinds.remove(&kind));
                        if had {
                            s.emit(SessionEvent::TrackRemoved {
                                peer_id: peer,
                                kind,
                            });
                        }
                    }
                    PeerEvent::NegotiationFailed { peer, reason } => {
                        s.error(format!("negotiation with peer `{peer}`"), reason)
                    }
                }
            }
        });
    }

    fn remove_peer(&self, id: &str) {
        let _teardown = self.inner.teardown.lock();
        self.remove_peer_locked(id);
    }

    /// [`Session::remove_peer`] with the teardown lock already held.
    fn remove_peer_locked(&self, id: &str) {
        let Some(entry) = self.inner.peers.lock().remove(id) else {
            return;
        };
        tracing::debug!(peer = %id, user = %entry.user, "closing peer");
        self.inner.stats.unwatch(id);
        if let Some(dc) = entry.channel.lock().take() {
            dc.close();
        }
        // Cut the send branches off the tees, stop webrtcbin (its pads flush, so no branch
        // thread is left waiting inside it), then remove the branches: stopping a branch queue
        // while its thread was blocked inside the live webrtcbin deadlocked once in
        // tests/session_publish.rs (see Publisher::cut_off).
        let publisher = self.publisher();
        if let Some(p) = &publisher {
            p.cut_off(id);
        }
        if let Err(e) = entry.peer.close() {
            self.error(format!("closing peer `{id}`"), e.to_string());
        }
        if let Some(p) = &publisher {
            p.detach(id);
        }
        self.inner.subscriber.detach(id);
        let kinds = self.inner.tracks.lock().remove(id).unwrap_or_default();
        for kind in kinds {
            self.emit(SessionEvent::TrackRemoved {
                peer_id: id.to_owned(),
                kind,
            });
        }
        self.emit(SessionEvent::PeerLeft {
            peer_id: id.to_owned(),
        });
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

/// Link every remote pad of an unsubscribed peer to a `fakesink` so webrtcbin never sees
/// `not-linked`.
fn discard_remote_pads(peer: &Peer) {
    let bin = peer.bin().clone();
    peer.webrtcbin().connect_pad_added(move |_, pad| {
        if pad.direction() != gst::PadDirection::Src {
            return;
        }
        let Ok(sink) = gst::ElementFactory::make("fakesink")
            .property("sync", false)
            .property("async", false)
            .build()
        else {
            return;
        };
        if bin.add(&sink).is_ok() {
            let _ = sink.sync_state_with_parent();
            if let Some(sp) = sink.static_pad("sink") {
                let _ = pad.link(&sp);
            }
        }
    });
}

/// Track ids and kinds a publisher configuration announces.
fn published_tracks(cfg: &PublisherConfig) -> Vec<(&'static str, TrackKind)> {
    let mut tracks = Vec::new();
    if !matches!(cfg.video, VideoSource::None) {
        tracks.push(("video", TrackKind::Video));
    }
    if !matches!(cfg.audio, AudioSource::None) {
        tracks.push(("audio", TrackKind::Audio));
    }
    tracks
}

fn validate_ice_url(url: &str) -> Result<(), SessionError> {
    if url.starts_with("stun://") || url.starts_with("turn://") || url.starts_with("turns://") {
        Ok(())
    } else {
        Err(SessionError::IceServer {
            url: url.to_owned(),
            detail: "must start with stun://, turn:// or turns://".into(),
        })
    }
}

/// Convert an RTCIceServer URL (`stun:host:port`, `turn:host:port?transport=udp`) with optional
/// credentials to webrtcbin's form (`stun://host:port`, `turn://user:pass@host:port`).
///
/// ```
/// use streamwire::session::ice_url_for_webrtcbin;
/// assert_eq!(ice_url_for_webrtcbin("stun:127.0.0.1:3478", None, None).unwrap(), "stun://127.0.0.1:3478");
/// assert_eq!(
///     ice_url_for_webrtcbin("turn:127.0.0.1:3478", Some("u"), Some("p")).unwrap(),
///     "turn://u:p@127.0.0.1:3478"
/// );
/// ```
pub fn ice_url_for_webrtcbin(
    url: &str,
    username: Option<&str>,
    credential: Option<&str>,
) -> Result<String, SessionError> {
    let bad = |detail: &str| SessionError::IceServer {
        url: url.to_owned(),
        detail: detail.to_owned(),
    };
    let (scheme, rest) = url
        .split_once(':')
        .ok_or_else(|| bad("no scheme (stun:, turn:, turns:)"))?;
    let rest = rest.trim_start_matches("//");
    let host = rest.split('?').next().unwrap_or_default();
    if host.is_empty() {
        return Err(bad("no host"));
    }
    match scheme {
        "stun" => Ok(format!("stun://{host}")),
        "turn" | "turns" => {
            let (Some(u), Some(c)) = (username, credential) else {
                return Err(bad("TURN needs `username` and `credential`"));
            };
            let enc = |s: &str| {
                s.chars()
                    .map(|ch| match ch {
                        ':' | '@' | '/' | '%' => format!("%{:02X}", ch as u32),
                        c => c.to_string(),
                    })
                    .collect::<String>()
            };
            Ok(format!("{scheme}://{}:{}@{host}", enc(u), enc(c)))
        }
        other => Err(bad(&format!("unknown scheme `{other}`"))),
    }
}
