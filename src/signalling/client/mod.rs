//! Async signalling client: join a room, receive typed events, relay SDP/ICE, send real-time
//! messages awaiting their delivery result, publish/unpublish, and survive connection loss
//! with automatic reconnect (exponential backoff) and exactly-once, in-order resume.
//!
//! Built for the WebRTC session layer: one [`Client`] per session. The layer
//! - creates one `webrtcbin` per remote peer (mesh) from [`Welcome::peers`] and
//!   [`Event::PeerJoined`],
//! - sends offers to [`Welcome::offer_to`] (the newcomer offers; peers receiving
//!   [`Event::PeerJoined`] with `expect_offer: true` wait for the offer — no glare),
//! - routes [`Event::Offer`]/[`Event::Answer`]/[`Event::Ice`] by `from` to that peer's `webrtcbin`,
//! - configures ICE from [`Welcome::ice_servers`] (empty by default),
//! - on a second [`Event::Joined`] (the session was lost and a fresh one started, with a new
//!   peer id) tears down all peer connections and starts over; on [`Event::Resumed`] keeps them.
//!
//! This module holds the handle ([`Client`]), its configuration and its events; the task
//! behind the handle (connect, join/resume, frame loop, resend) is in `driver.rs`, URL parsing,
//! TLS and the WebSocket handshake in `transport.rs`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), streamwire::signalling::client::ClientError> {
//! use streamwire::signalling::client::{Client, ClientConfig, Event};
//! use streamwire::signalling::protocol::Payload;
//! let cfg = ClientConfig::new("ws://127.0.0.1:8443", "room1", "<jwt>");
//! let (client, mut events) = Client::connect(cfg).await?;
//! let delivery = client.send_message(None, Payload::Text("hello room".into())).await?;
//! println!("{delivery:?}");
//! while let Some(ev) = events.recv().await {
//!     if let Event::Offer { from, sdp } = ev {
//!         client.send_answer(&from, format!("answer to {}", sdp.len()))?;
//!     }
//! }
//! # Ok(()) }
//! ```

use std::sync::Arc;
use std::time::Duration;

use gststreamwire::telemetry::Consent;
use parking_lot::Mutex;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_rustls::rustls;

use super::protocol::telemetry::{Batch, Feedback};
use super::protocol::{
    ClientMsg, DeliveryStatus, ErrorCode, Grant, IceServer, LeaveReason, LimitsInfo, Payload,
    PeerId, PeerInfo, RoomTopology, SfuStream, TrackInfo,
};
use driver::Driver;
use transport::parse_url;

mod driver;
mod transport;

/// Client configuration.
#[derive(Clone)]
pub struct ClientConfig {
    /// Server URLs (`ws://` or `wss://`), tried in rotation when reconnecting.
    pub urls: Vec<String>,
    /// Room to join.
    pub room: String,
    /// Room token (HS256 JWT).
    pub token: String,
    /// Initial metadata.
    pub metadata: serde_json::Value,
    /// TLS client configuration for `wss://` (trust roots). Required for `wss://`.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// Timeout for TCP + TLS + WebSocket handshake + join reply. Default 5 s.
    pub connect_timeout: Duration,
    /// First reconnect delay. Default 100 ms; doubles up to `backoff_max`.
    pub backoff_initial: Duration,
    /// Largest reconnect delay. Default 5 s.
    pub backoff_max: Duration,
    /// Consecutive failed attempts before giving up (`Failed`). Default 20.
    pub max_attempts: u32,
    /// Send a WebSocket ping this often. Default 10 s.
    pub ping_interval: Duration,
    /// Consider the connection dead after this long without any frame. Default 30 s.
    pub idle_timeout: Duration,
    /// Acknowledge after this many stream frames... Default 32.
    pub ack_every: u64,
    /// ...or after this delay, whichever comes first. Default 50 ms.
    pub ack_delay: Duration,
    /// Capacity of the event channel (the driver waits when it is full). Default 4096.
    pub event_capacity: usize,
}

impl ClientConfig {
    /// Defaults for one URL, a room and a token.
    pub fn new(url: &str, room: &str, token: &str) -> Self {
        ClientConfig {
            urls: vec![url.to_owned()],
            room: room.to_owned(),
            token: token.to_owned(),
            metadata: serde_json::Value::Null,
            tls: None,
            connect_timeout: Duration::from_secs(5),
            backoff_initial: Duration::from_millis(100),
            backoff_max: Duration::from_secs(5),
            max_attempts: 20,
            ping_interval: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
            ack_every: 32,
            ack_delay: Duration::from_millis(50),
            event_capacity: 4096,
        }
    }
}

/// State of the connection to the signalling server, surfaced as [`Event::State`] and through
/// [`Client::state`]. (A WebRTC peer connection's state is a different concept:
/// `webrtc::peer::ConnectionState`.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignallingState {
    /// First connection attempt in progress.
    Connecting,
    /// Joined (or resumed) and exchanging frames.
    Connected,
    /// Connection lost; retrying (attempt number, from 1).
    Reconnecting {
        /// Attempt number.
        attempt: u32,
    },
    /// Gave up or was refused; no more reconnects.
    Failed {
        /// Why.
        reason: String,
    },
    /// Closed by [`Client::leave`].
    Closed,
}

/// The server's `welcome`, kept by the client.
#[derive(Debug, Clone, PartialEq)]
pub struct Welcome {
    /// This peer's id.
    pub peer_id: PeerId,
    /// Room.
    pub room: String,
    /// User id.
    pub user: String,
    /// Display name.
    pub name: String,
    /// Grants.
    pub grants: Vec<Grant>,
    /// Other peers present at join time.
    pub peers: Vec<PeerInfo>,
    /// Peers to send offers to.
    pub offer_to: Vec<PeerId>,
    /// ICE servers for the WebRTC layer.
    pub ice_servers: Vec<IceServer>,
    /// Limits in force.
    pub limits: LimitsInfo,
    /// Resume grace period.
    pub grace: Duration,
    /// How the room's media flows.
    pub topology: RoomTopology,
}

/// Result of a real-time message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The message's per-sender sequence number.
    pub seq: u64,
    /// Delivered or failed.
    pub status: DeliveryStatus,
    /// Recipients reached.
    pub recipients: u32,
    /// Failure reason.
    pub reason: Option<ErrorCode>,
}

/// Typed events.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// Connection state changed.
    State(SignallingState),
    /// A session started (first join, or a fresh join after the old session was lost:
    /// the peer id changed and all peer connections must be rebuilt).
    Joined(Box<Welcome>),
    /// The session resumed after a reconnect; missed frames follow, exactly once, in order.
    Resumed {
        /// Frames the server is replaying.
        replayed: u64,
    },
    /// Fresh ICE servers (re-minted TURN credentials) replace those of the welcome: sent by
    /// the server on resume and before the previous credentials expire.
    /// [`Client::welcome`] has them too.
    IceServers {
        /// The servers.
        ice_servers: Vec<IceServer>,
    },
    /// A peer joined.
    PeerJoined {
        /// The newcomer.
        peer: PeerInfo,
        /// It will send you an offer.
        expect_offer: bool,
    },
    /// A peer left.
    PeerLeft {
        /// Peer.
        peer_id: PeerId,
        /// Why.
        reason: LeaveReason,
    },
    /// A peer published a track.
    Published {
        /// Publisher.
        peer_id: PeerId,
        /// Track.
        track: TrackInfo,
    },
    /// A peer withdrew a track.
    Unpublished {
        /// Publisher.
        peer_id: PeerId,
        /// Track id.
        track_id: String,
    },
    /// A peer's metadata changed.
    MetadataChanged {
        /// Peer.
        peer_id: PeerId,
        /// New metadata.
        metadata: serde_json::Value,
    },
    /// The room moved to another topology (an `auto` room outgrew the mesh).
    Topology(RoomTopology),
    /// Which member's media each m-line of the next offer from
    /// [`SFU_SUBSCRIBE`](crate::signalling::protocol::SFU_SUBSCRIBE) carries.
    SfuStreams {
        /// The streams.
        streams: Vec<SfuStream>,
    },
    /// SDP offer from a peer.
    Offer {
        /// Sender.
        from: PeerId,
        /// SDP.
        sdp: String,
    },
    /// SDP answer from a peer.
    Answer {
        /// Sender.
        from: PeerId,
        /// SDP.
        sdp: String,
    },
    /// ICE candidate from a peer.
    Ice {
        /// Sender.
        from: PeerId,
        /// Candidate (empty: end of candidates).
        candidate: String,
        /// m-line index.
        sdp_mline_index: u32,
        /// Media id.
        sdp_mid: Option<String>,
    },
    /// Real-time message.
    Message {
        /// Sender.
        from: PeerId,
        /// Sender's sequence number.
        seq: u64,
        /// Sent to this peer alone.
        direct: bool,
        /// Payload.
        payload: Payload,
    },
    /// The server stored a telemetry batch.
    TelemetryAck {
        /// Field values stored.
        stored: u64,
        /// Field values dropped (undisclosed or above the batch's consent).
        dropped: u64,
    },
    /// The server stored the user's feedback.
    FeedbackAck,
    /// Answer to [`Client::privacy_export`].
    PrivacyExport {
        /// The user.
        user: String,
        /// Everything held about the user.
        data: serde_json::Value,
    },
    /// Answer to [`Client::privacy_delete`].
    PrivacyDeleted {
        /// The user.
        user: String,
        /// Rows removed from `records`.
        records: u64,
        /// Rows removed from `feedback`.
        feedback: u64,
        /// Rows removed from `sessions`.
        sessions: u64,
        /// Whiteboard items (strokes, shapes, text) of the user removed.
        strokes: u64,
    },
    /// A whiteboard message (y-protocols): a member's change, an awareness update, or the
    /// server's sync answer (`from: None`).
    Whiteboard {
        /// The member it comes from; `None`: the server.
        from: Option<PeerId>,
        /// Board name.
        board: String,
        /// The y-protocols message.
        data: Vec<u8>,
    },
    /// The server reported a problem with a frame this client sent.
    ServerError {
        /// Code.
        code: ErrorCode,
        /// Explanation.
        message: String,
        /// Offending message type.
        in_type: Option<String>,
        /// Offending field.
        field: Option<String>,
    },
}

/// Client errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// The server refused the join (token problems, room full, ...).
    #[error("join refused ({code}): {message}")]
    Refused {
        /// Code.
        code: ErrorCode,
        /// Explanation.
        message: String,
    },
    /// Could not connect within the attempt budget.
    #[error("could not connect: {0}")]
    Connect(String),
    /// The URL is unusable.
    #[error("invalid URL `{url}`: {reason}")]
    Url {
        /// URL.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// The client is closed or failed.
    #[error("client is closed")]
    Closed,
    /// The session was lost before the message got a result (it may or may not have arrived).
    #[error("session lost before a delivery result for seq {seq}")]
    SessionLost {
        /// The message's seq.
        seq: u64,
    },
    /// A telemetry batch at consent `none` was refused before anything was sent.
    #[error("telemetry at consent `none` is never sent")]
    NoConsent,
    /// A frame or payload above the server's limit (from `welcome.limits`) was refused before
    /// anything was sent.
    #[error("{what} of {bytes} bytes exceeds the server's {limit_name} = {limit}; not sent")]
    TooLarge {
        /// `message payload`, or the frame's type (`message`, `offer`, `telemetry`, ...).
        what: &'static str,
        /// Its size (for a frame, as sent, with its `seq`).
        bytes: usize,
        /// `max_payload_bytes` or `max_frame_bytes`.
        limit_name: &'static str,
        /// The limit.
        limit: usize,
    },
}

/// Bytes a `"seq":N,` stamped by the driver can add to a frame.
const SEQ_MARGIN: usize = 32;

/// Receiver of [`Event`]s.
pub struct Events(mpsc::Receiver<Event>);

impl Events {
    /// Next event; `None` once the client has ended.
    pub async fn recv(&mut self) -> Option<Event> {
        self.0.recv().await
    }

    /// The next event if one is queued, without waiting.
    pub fn try_recv(&mut self) -> Option<Event> {
        self.0.try_recv().ok()
    }
}

impl futures::Stream for Events {
    type Item = Event;
    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Event>> {
        self.0.poll_recv(cx)
    }
}

enum Cmd {
    Send(ClientMsg),
    Message {
        to: Option<PeerId>,
        payload: Payload,
        reply: oneshot::Sender<Result<Delivery, ClientError>>,
    },
    Leave(oneshot::Sender<()>),
    /// Drop the connection and resume on a new one now.
    Reconnect,
}

/// Handle to a running client. Cheap to clone.
#[derive(Clone)]
pub struct Client {
    cmd: mpsc::UnboundedSender<Cmd>,
    state: watch::Receiver<SignallingState>,
    welcome: Arc<Mutex<Option<Welcome>>>,
}

impl Client {
    /// Connect and join. Returns once joined, or with the refusal / connection error.
    pub async fn connect(cfg: ClientConfig) -> Result<(Client, Events), ClientError> {
        if cfg.urls.is_empty() {
            return Err(ClientError::Url {
                url: String::new(),
                reason: "no URL given".into(),
            });
        }
        for u in &cfg.urls {
            parse_url(u)?;
        }
        let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
        let (ev_tx, ev_rx) = mpsc::channel(cfg.event_capacity.max(16));
        let (state_tx, state_rx) = watch::channel(SignallingState::Connecting);
        let welcome = Arc::new(Mutex::new(None));
        let (first_tx, first_rx) = oneshot::channel();
        let driver = Driver::new(cfg, cmd_rx, ev_tx, state_tx, welcome.clone(), first_tx);
        tokio::spawn(driver.run());
        match first_rx.await {
            Ok(Ok(())) => Ok((
                Client {
                    cmd: cmd_tx,
                    state: state_rx,
                    welcome,
                },
                Events(ev_rx),
            )),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(ClientError::Closed),
        }
    }

    /// Current connection state.
    pub fn state(&self) -> SignallingState {
        self.state.borrow().clone()
    }

    /// A watch on the connection state.
    pub fn watch_state(&self) -> watch::Receiver<SignallingState> {
        self.state.clone()
    }

    /// The current session's welcome (peer id, ICE servers, ...).
    pub fn welcome(&self) -> Option<Welcome> {
        self.welcome.lock().clone()
    }

    /// This peer's current id.
    pub fn peer_id(&self) -> Option<PeerId> {
        self.welcome().map(|w| w.peer_id)
    }

    fn send(&self, m: ClientMsg) -> Result<(), ClientError> {
        self.check_size(&m)?;
        self.cmd.send(Cmd::Send(m)).map_err(|_| ClientError::Closed)
    }

    /// Refuse, before sending, a frame the server would refuse for its size: the limits are
    /// those of the current session's `welcome` (`limits.max_frame_bytes`,
    /// `limits.max_payload_bytes`).
    fn check_size(&self, m: &ClientMsg) -> Result<(), ClientError> {
        let margin = if driver::stamped(m) { SEQ_MARGIN } else { 0 };
        self.check_frame(m.type_name(), m, margin)
    }

    fn check_message_size(&self, to: Option<&str>, payload: &Payload) -> Result<(), ClientError> {
        /// A `message` frame as the driver sends it, without copying the payload.
        #[derive(serde::Serialize)]
        struct MessageFrame<'a> {
            #[serde(rename = "type")]
            ty: &'static str,
            #[serde(skip_serializing_if = "Option::is_none")]
            to: Option<&'a str>,
            payload: &'a Payload,
        }
        let Some(limits) = self.limits() else {
            return Ok(());
        };
        if payload.len() > limits.max_payload_bytes {
            return Err(ClientError::TooLarge {
                what: "message payload",
                bytes: payload.len(),
                limit_name: "max_payload_bytes",
                limit: limits.max_payload_bytes,
            });
        }
        let frame = MessageFrame {
            ty: "message",
            to,
            payload,
        };
        self.check_frame("message", &frame, SEQ_MARGIN)
    }

    fn limits(&self) -> Option<LimitsInfo> {
        self.welcome.lock().as_ref().map(|w| w.limits.clone())
    }

    /// `frame` as sent, plus `margin` bytes (the `seq` the driver stamps, if it does), must
    /// fit `max_frame_bytes`.
    fn check_frame(
        &self,
        what: &'static str,
        frame: &impl serde::Serialize,
        margin: usize,
    ) -> Result<(), ClientError> {
        struct Count(usize);
        impl std::io::Write for Count {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0 += b.len();
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let Some(limits) = self.limits() else {
            return Ok(());
        };
        let mut n = Count(0);
        let _ = serde_json::to_writer(&mut n, frame);
        let bytes = n.0 + margin;
        if bytes > limits.max_frame_bytes {
            return Err(ClientError::TooLarge {
                what,
                bytes,
                limit_name: "max_frame_bytes",
                limit: limits.max_frame_bytes,
            });
        }
        Ok(())
    }

    /// Send an SDP offer to a peer of the room.
    pub fn send_offer(&self, to: &str, sdp: String) -> Result<(), ClientError> {
        self.send(ClientMsg::Offer {
            seq: None,
            to: to.to_owned(),
            sdp,
        })
    }

    /// Send an SDP answer to a peer of the room.
    pub fn send_answer(&self, to: &str, sdp: String) -> Result<(), ClientError> {
        self.send(ClientMsg::Answer {
            seq: None,
            to: to.to_owned(),
            sdp,
        })
    }

    /// Send a trickle ICE candidate (empty `candidate` = end of candidates).
    pub fn send_ice(
        &self,
        to: &str,
        candidate: String,
        sdp_mline_index: u32,
        sdp_mid: Option<String>,
    ) -> Result<(), ClientError> {
        self.send(ClientMsg::Ice {
            seq: None,
            to: to.to_owned(),
            candidate,
            sdp_mline_index,
            sdp_mid,
        })
    }

    /// Announce a published track.
    pub fn publish(&self, track: TrackInfo) -> Result<(), ClientError> {
        self.send(ClientMsg::Publish { track, seq: None })
    }

    /// Withdraw a published track.
    pub fn unpublish(&self, track_id: &str) -> Result<(), ClientError> {
        self.send(ClientMsg::Unpublish {
            seq: None,
            track_id: track_id.to_owned(),
        })
    }

    /// Replace this peer's metadata.
    pub fn set_metadata(&self, metadata: serde_json::Value) -> Result<(), ClientError> {
        self.send(ClientMsg::SetMetadata {
            metadata,
            seq: None,
        })
    }

    /// Remove a peer (needs `admin`). Its user is refused (`banned`) when joining this room
    /// again until its token expires, or for `ban` when given (`Duration::ZERO`: no ban).
    pub fn kick(&self, peer_id: &str, ban: Option<Duration>) -> Result<(), ClientError> {
        self.send(ClientMsg::Kick {
            peer_id: peer_id.to_owned(),
            ban_ms: ban.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        })
    }

    /// Forward a telemetry batch (for example from `telemetry::batcher::Batcher::take_batch`,
    /// which yields nothing at consent `none`); the server answers with
    /// [`Event::TelemetryAck`]. A batch at consent `none` is refused here, before it is sent.
    ///
    /// ```no_run
    /// # async fn f(client: streamwire::signalling::client::Client) {
    /// use gststreamwire::telemetry::Consent;
    /// use streamwire::telemetry::batcher::{Batcher, TrackSample};
    /// let mut b = Batcher::new(Consent::Necessary);
    /// b.push_track_sample("video0", &TrackSample { rtt_ms: Some(20.0), ..Default::default() }, 1);
    /// if let Some(batch) = b.take_batch() {
    ///     client.send_telemetry(batch).unwrap();
    /// }
    /// # }
    /// ```
    pub fn send_telemetry(&self, batch: Batch) -> Result<(), ClientError> {
        if batch.consent == Consent::None {
            return Err(ClientError::NoConsent);
        }
        self.send(ClientMsg::Telemetry { batch })
    }

    /// Send the end user's feedback (rating 1-5, optional comment); stored only because it
    /// was sent. The server answers with [`Event::FeedbackAck`].
    pub fn send_feedback(&self, rating: u8, comment: Option<String>) -> Result<(), ClientError> {
        self.send(ClientMsg::Feedback(Feedback { rating, comment }))
    }

    /// Ask for everything held about `user` (needs `admin`); answered with
    /// [`Event::PrivacyExport`] or a `forbidden` [`Event::ServerError`].
    pub fn privacy_export(&self, user: &str) -> Result<(), ClientError> {
        self.send(ClientMsg::PrivacyExport {
            user: user.to_owned(),
        })
    }

    /// Delete everything held about `user` (needs `admin`); answered with
    /// [`Event::PrivacyDeleted`] or a `forbidden` [`Event::ServerError`].
    pub fn privacy_delete(&self, user: &str) -> Result<(), ClientError> {
        self.send(ClientMsg::PrivacyDelete {
            user: user.to_owned(),
        })
    }

    /// Send one y-protocols message for a whiteboard of the room; exactly once across
    /// reconnects (it carries a `seq`). A refused change comes back as an
    /// [`Event::ServerError`] with `in_type` `whiteboard`.
    pub fn send_whiteboard(&self, board: &str, data: Vec<u8>) -> Result<(), ClientError> {
        self.send(ClientMsg::Whiteboard {
            seq: None,
            board: board.to_owned(),
            data,
        })
    }

    /// Send a raw protocol frame (escape hatch; `message` frames must go through
    /// [`Client::send_message`] so sequence numbers stay consistent).
    pub fn send_raw(&self, m: ClientMsg) -> Result<(), ClientError> {
        if matches!(
            m,
            ClientMsg::Message { .. } | ClientMsg::Join { .. } | ClientMsg::Resume { .. }
        ) {
            return Err(ClientError::Closed);
        }
        self.send(m)
    }

    /// Send a real-time message to the room (`to = None`) or one peer, and wait for its
    /// delivery result. Survives reconnects: the message is resent after a resume if needed,
    /// and recipients get it exactly once.
    pub async fn send_message(
        &self,
        to: Option<&str>,
        payload: Payload,
    ) -> Result<Delivery, ClientError> {
        self.start_message(to, payload)?
            .await
            .map_err(|_| ClientError::Closed)?
    }

    /// Queue a message and return a receiver for its result (pipelining many messages).
    pub fn start_message(
        &self,
        to: Option<&str>,
        payload: Payload,
    ) -> Result<oneshot::Receiver<Result<Delivery, ClientError>>, ClientError> {
        let (tx, rx) = oneshot::channel();
        self.check_message_size(to, &payload)?;
        self.cmd
            .send(Cmd::Message {
                to: to.map(str::to_owned),
                payload,
                reply: tx,
            })
            .map_err(|_| ClientError::Closed)?;
        Ok(rx)
    }

    /// Drop the current connection and resume the session on a new one now (for example
    /// when a local address went away and the socket may be bound to it: a dead socket is
    /// otherwise noticed only after `idle_timeout`). Frames in flight are resent as after
    /// any reconnect. While disconnected, it cuts the back-off wait short.
    pub fn reconnect(&self) -> Result<(), ClientError> {
        self.cmd
            .send(Cmd::Reconnect)
            .map_err(|_| ClientError::Closed)
    }

    /// Leave the room (ends the session; no resume) and stop the client.
    pub async fn leave(&self) {
        let (tx, rx) = oneshot::channel();
        if self.cmd.send(Cmd::Leave(tx)).is_ok() {
            let _ = tokio::time::timeout(Duration::from_secs(5), rx).await;
        }
    }
}
