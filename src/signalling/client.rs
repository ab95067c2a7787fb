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

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use async_tungstenite::WebSocketStream;
use async_tungstenite::tokio::TokioAdapter;
use async_tungstenite::tungstenite::Message;
use async_tungstenite::tungstenite::client::IntoClientRequest;
use async_tungstenite::tungstenite::protocol::WebSocketConfig;
use futures::StreamExt;
use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use tokio_rustls::rustls;

use super::protocol::telemetry::{Batch, Feedback};
use super::protocol::{
    ClientMsg, DeliveryStatus, ErrorCode, Grant, IceServer, LeaveReason, LimitsInfo,
    PROTOCOL_VERSION, Payload, PeerId, PeerInfo, ServerMsg, TrackInfo,
};
use gststreamwire::telemetry::Consent;

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

/// Connection state, surfaced as [`Event::State`] and through [`Client::state`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectionState {
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
    State(ConnectionState),
    /// A session started (first join, or a fresh join after the old session was lost:
    /// the peer id changed and all peer connections must be rebuilt).
    Joined(Box<Welcome>),
    /// The session resumed after a reconnect; missed frames follow, exactly once, in order.
    Resumed {
        /// Frames the server is replaying.
        replayed: u64,
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
}

/// Receiver of [`Event`]s.
pub struct Events(mpsc::Receiver<Event>);

impl Events {
    /// Next event; `None` once the client has ended.
    pub async fn recv(&mut self) -> Option<Event> {
        self.0.recv().await
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
}

/// Handle to a running client. Cheap to clone.
#[derive(Clone)]
pub struct Client {
    cmd: mpsc::UnboundedSender<Cmd>,
    state: watch::Receiver<ConnectionState>,
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
        let (state_tx, state_rx) = watch::channel(ConnectionState::Connecting);
        let welcome = Arc::new(Mutex::new(None));
        let (first_tx, first_rx) = oneshot::channel();
        let driver = Driver {
            cfg,
            cmd_rx,
            ev_tx,
            state_tx,
            welcome: welcome.clone(),
            first: Some(first_tx),
            resume_token: None,
            last_n: 0,
            acked_n: 0,
            next_seq: 1,
            inflight: BTreeMap::new(),
            signals: BTreeMap::new(),
            outbox: VecDeque::new(),
            url_index: 0,
            resend_from: 1,
        };
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
    pub fn state(&self) -> ConnectionState {
        self.state.borrow().clone()
    }

    /// A watch on the connection state.
    pub fn watch_state(&self) -> watch::Receiver<ConnectionState> {
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
        self.cmd.send(Cmd::Send(m)).map_err(|_| ClientError::Closed)
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

    /// Remove a peer (needs `admin`).
    pub fn kick(&self, peer_id: &str) -> Result<(), ClientError> {
        self.send(ClientMsg::Kick {
            peer_id: peer_id.to_owned(),
        })
    }

    /// Forward a telemetry batch (for example from `telemetry::batcher::Batcher::take_batch`,
    /// which yields nothing at consent `none`); the server answers with
    /// [`Event::TelemetryAck`]. A batch at consent `none` is refused here, before it is sent.
    ///
    /// ```no_run
    /// # async fn f(client: streamwire::signalling::client::Client) {
    /// use gststreamwire::telemetry::Consent;
    /// use streamwire::telemetry::batcher::{Batcher, PeerStats};
    /// let mut b = Batcher::new(Consent::Necessary);
    /// b.push_peer_stats("video0", &PeerStats { rtt_ms: Some(20.0), ..Default::default() }, 1);
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
        self.cmd
            .send(Cmd::Message {
                to: to.map(str::to_owned),
                payload,
                reply: tx,
            })
            .map_err(|_| ClientError::Closed)?;
        Ok(rx)
    }

    /// Leave the room (ends the session; no resume) and stop the client.
    pub async fn leave(&self) {
        let (tx, rx) = oneshot::channel();
        if self.cmd.send(Cmd::Leave(tx)).is_ok() {
            let _ = tokio::time::timeout(Duration::from_secs(5), rx).await;
        }
    }
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}
type Ws = WebSocketStream<TokioAdapter<Box<dyn Io>>>;

struct ParsedUrl {
    tls: bool,
    host: String,
    port: u16,
}

fn parse_url(url: &str) -> Result<ParsedUrl, ClientError> {
    let bad = |reason: &str| ClientError::Url {
        url: url.to_owned(),
        reason: reason.to_owned(),
    };
    let req = url.into_client_request().map_err(|e| bad(&e.to_string()))?;
    let uri = req.uri();
    let tls = match uri.scheme_str() {
        Some("ws") => false,
        Some("wss") => true,
        _ => return Err(bad("scheme must be ws:// or wss://")),
    };
    let host = uri.host().ok_or_else(|| bad("no host"))?;
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
    Ok(ParsedUrl { tls, host, port })
}

async fn open(url: &str, tls: Option<&Arc<rustls::ClientConfig>>) -> Result<Ws, String> {
    let p = parse_url(url).map_err(|e| e.to_string())?;
    let tcp = TcpStream::connect((p.host.as_str(), p.port))
        .await
        .map_err(|e| format!("TCP connect to {}:{}: {e}", p.host, p.port))?;
    let _ = tcp.set_nodelay(true);
    let io: Box<dyn Io> = if p.tls {
        let cfg = tls.ok_or("wss:// needs ClientConfig::tls (trust roots)")?;
        let name = rustls::pki_types::ServerName::try_from(p.host.clone())
            .map_err(|e| format!("invalid TLS server name `{}`: {e}", p.host))?;
        let s = tokio_rustls::TlsConnector::from(cfg.clone())
            .connect(name, tcp)
            .await
            .map_err(|e| format!("TLS handshake: {e}"))?;
        Box::new(s)
    } else {
        Box::new(tcp)
    };
    let ws_cfg = WebSocketConfig::default()
        .read_buffer_size(8 * 1024)
        .write_buffer_size(16 * 1024);
    let (ws, _) = async_tungstenite::tokio::client_async_with_config(url, io, Some(ws_cfg))
        .await
        .map_err(|e| format!("WebSocket handshake: {e}"))?;
    Ok(ws)
}

struct Driver {
    cfg: ClientConfig,
    cmd_rx: mpsc::UnboundedReceiver<Cmd>,
    ev_tx: mpsc::Sender<Event>,
    state_tx: watch::Sender<ConnectionState>,
    welcome: Arc<Mutex<Option<Welcome>>>,
    first: Option<oneshot::Sender<Result<(), ClientError>>>,
    resume_token: Option<String>,
    last_n: u64,
    acked_n: u64,
    next_seq: u64,
    /// Messages without a delivery result yet, by seq: the frame and who waits for it.
    inflight: BTreeMap<u64, (ClientMsg, oneshot::Sender<Result<Delivery, ClientError>>)>,
    /// Sequenced signalling frames (offer/answer/ice/publish/unpublish/set_metadata) not yet
    /// known to be accepted; resent after a resume if the server had not seen them.
    signals: BTreeMap<u64, ClientMsg>,
    /// Non-message frames queued while disconnected.
    outbox: VecDeque<ClientMsg>,
    url_index: usize,
    /// First inflight seq to resend after the handshake.
    resend_from: u64,
}

enum End {
    /// Reconnect (resume if possible).
    Lost(String),
    /// Stop for good.
    Stop(ConnectionState),
}

const OUTBOX_LIMIT: usize = 4096;

impl Driver {
    async fn emit(&self, ev: Event) {
        let _ = self.ev_tx.send(ev).await;
    }

    async fn set_state(&self, s: ConnectionState) {
        if *self.state_tx.borrow() != s {
            self.state_tx.send_replace(s.clone());
            tracing::debug!(state = ?s, "signalling client state");
            self.emit(Event::State(s)).await;
        }
    }

    async fn run(mut self) {
        let mut attempt: u32 = 0;
        let mut delay = self.cfg.backoff_initial;
        let final_state = loop {
            let url = self.cfg.urls[self.url_index % self.cfg.urls.len()].clone();
            match self.session(&url).await {
                Ok(End::Stop(s)) => break s,
                Ok(End::Lost(why)) => {
                    tracing::info!(%url, reason = %why, "signalling connection lost; reconnecting");
                    attempt = 0;
                    delay = self.cfg.backoff_initial;
                }
                Err(SessionFail::Refused(code, message)) => {
                    break ConnectionState::Failed {
                        reason: format!("{code}: {message}"),
                    };
                }
                Err(SessionFail::Io(why)) => {
                    tracing::debug!(%url, reason = %why, attempt, "signalling connect attempt failed");
                    if attempt >= self.cfg.max_attempts {
                        break ConnectionState::Failed {
                            reason: format!("gave up after {attempt} attempts: {why}"),
                        };
                    }
                }
            }
            attempt += 1;
            self.url_index += 1;
            if self.first.is_none() {
                self.set_state(ConnectionState::Reconnecting { attempt })
                    .await;
            }
            // Backoff with ±25% jitter; keep serving commands meanwhile (queue them).
            let jitter = 0.75 + (Instant::now().elapsed().subsec_nanos() % 500) as f64 / 1000.0;
            let wait = delay.mul_f64(jitter);
            delay = (delay * 2).min(self.cfg.backoff_max);
            let until = Instant::now() + wait;
            loop {
                tokio::select! {
                    _ = tokio::time::sleep_until(until) => break,
                    cmd = self.cmd_rx.recv() => match cmd {
                        None => { return self.finish(ConnectionState::Closed).await; }
                        Some(Cmd::Leave(done)) => { let _ = done.send(()); return self.finish(ConnectionState::Closed).await; }
                        Some(c) => self.queue(c),
                    }
                }
            }
        };
        self.finish(final_state).await;
    }

    async fn finish(mut self, state: ConnectionState) {
        let reason = match &state {
            ConnectionState::Failed { reason } => reason.clone(),
            _ => "closed".into(),
        };
        if let Some(first) = self.first.take() {
            let _ = first.send(Err(match &state {
                ConnectionState::Failed { .. } => refusal_from(&reason),
                _ => ClientError::Closed,
            }));
        }
        for (_, (_, reply)) in std::mem::take(&mut self.inflight) {
            let _ = reply.send(Err(ClientError::Closed));
        }
        self.set_state(state).await;
    }

    /// Give relayed signalling frames the next per-sender `seq` and keep them until the
    /// server is known to have accepted them.
    fn stamp_seq(&mut self, mut m: ClientMsg) -> ClientMsg {
        match &mut m {
            ClientMsg::Offer { seq, .. }
            | ClientMsg::Answer { seq, .. }
            | ClientMsg::Ice { seq, .. }
            | ClientMsg::Publish { seq, .. }
            | ClientMsg::Unpublish { seq, .. }
            | ClientMsg::SetMetadata { seq, .. } => {
                let n = self.next_seq;
                self.next_seq += 1;
                *seq = Some(n);
                if self.signals.len() >= OUTBOX_LIMIT {
                    self.signals.pop_first();
                }
                self.signals.insert(n, m.clone());
            }
            _ => {}
        }
        m
    }

    /// Everything with seq <= `seq` was accepted by the server (it processes in order).
    fn accepted_upto(&mut self, seq: u64) {
        self.signals = self.signals.split_off(&(seq + 1));
    }

    fn queue(&mut self, c: Cmd) {
        match c {
            Cmd::Send(m) => {
                let m = self.stamp_seq(m);
                if m.seq().is_some() {
                    return; // kept in `signals`, sent after the handshake
                }
                if self.outbox.len() >= OUTBOX_LIMIT {
                    tracing::warn!(
                        "signalling outbox full while disconnected; dropping oldest frame"
                    );
                    self.outbox.pop_front();
                }
                self.outbox.push_back(m);
            }
            Cmd::Message { to, payload, reply } => {
                let seq = self.next_seq;
                self.next_seq += 1;
                self.inflight
                    .insert(seq, (ClientMsg::Message { seq, to, payload }, reply));
            }
            Cmd::Leave(done) => {
                let _ = done.send(());
            }
        }
    }

    /// One connection: handshake, then the frame loop.
    async fn session(&mut self, url: &str) -> Result<End, SessionFail> {
        let timeout = self.cfg.connect_timeout;
        let mut ws = match tokio::time::timeout(timeout, open(url, self.cfg.tls.as_ref())).await {
            Ok(Ok(ws)) => ws,
            Ok(Err(e)) => return Err(SessionFail::Io(e)),
            Err(_) => {
                return Err(SessionFail::Io(format!(
                    "connect timed out after {timeout:?}"
                )));
            }
        };
        match tokio::time::timeout(timeout, self.handshake(&mut ws)).await {
            Ok(r) => r?,
            Err(_) => return Err(SessionFail::Io("no join reply in time".into())),
        }
        self.set_state(ConnectionState::Connected).await;
        if let Some(first) = self.first.take() {
            let _ = first.send(Ok(()));
        }
        // Resend what the server has not accepted yet, in order, then queued frames.
        let mut pending: Vec<(u64, ClientMsg)> = self
            .inflight
            .range(self.resend_from..)
            .map(|(k, (m, _))| (*k, m.clone()))
            .chain(
                self.signals
                    .range(self.resend_from..)
                    .map(|(k, m)| (*k, m.clone())),
            )
            .collect();
        pending.sort_by_key(|(k, _)| *k);
        let pending: Vec<ClientMsg> = pending.into_iter().map(|(_, m)| m).collect();
        self.resend_from = 1;
        for m in pending.iter().chain(self.outbox.iter()) {
            if let Err(e) = send(&mut ws, m).await {
                return Ok(End::Lost(e));
            }
        }
        self.outbox.clear();
        self.frame_loop(&mut ws).await
    }

    async fn handshake(&mut self, ws: &mut Ws) -> Result<(), SessionFail> {
        if let Some(token) = self.resume_token.clone() {
            send(
                ws,
                &ClientMsg::Resume {
                    v: PROTOCOL_VERSION,
                    resume_token: token,
                    last_n: self.last_n,
                },
            )
            .await
            .map_err(SessionFail::Io)?;
            match read_reply(ws).await? {
                ServerMsg::Resumed {
                    last_seq, replay, ..
                } => {
                    // Messages the server accepted keep their result in the replayed stream.
                    self.resent_after(last_seq);
                    self.emit(Event::Resumed { replayed: replay }).await;
                    return Ok(());
                }
                ServerMsg::Error { code, message, .. } => {
                    tracing::info!(%code, %message, "resume refused; joining afresh");
                    self.session_lost();
                }
                other => {
                    return Err(SessionFail::Io(format!(
                        "unexpected reply to resume: {other:?}"
                    )));
                }
            }
        }
        send(
            ws,
            &ClientMsg::Join {
                v: PROTOCOL_VERSION,
                room: self.cfg.room.clone(),
                token: self.cfg.token.clone(),
                metadata: self.cfg.metadata.clone(),
            },
        )
        .await
        .map_err(SessionFail::Io)?;
        match read_reply(ws).await? {
            ServerMsg::Welcome {
                peer_id,
                room,
                user,
                name,
                grants,
                resume_token,
                grace_ms,
                peers,
                offer_to,
                ice_servers,
                limits,
                ..
            } => {
                self.resume_token = Some(resume_token);
                self.last_n = 0;
                self.acked_n = 0;
                let w = Welcome {
                    peer_id,
                    room,
                    user,
                    name,
                    grants,
                    peers,
                    offer_to,
                    ice_servers,
                    limits,
                    grace: Duration::from_millis(grace_ms),
                };
                *self.welcome.lock() = Some(w.clone());
                self.emit(Event::Joined(Box::new(w))).await;
                Ok(())
            }
            ServerMsg::Error { code, message, .. } => match code {
                ErrorCode::Shutdown | ErrorCode::Internal => {
                    Err(SessionFail::Io(format!("{code}: {message}")))
                }
                _ => Err(SessionFail::Refused(code, message)),
            },
            other => Err(SessionFail::Io(format!(
                "unexpected reply to join: {other:?}"
            ))),
        }
    }

    /// After a resume: messages with seq <= last_seq were accepted (their results are in the
    /// replayed stream); the rest are resent.
    fn resent_after(&mut self, last_seq: u64) {
        tracing::debug!(
            last_seq,
            inflight = self.inflight.len(),
            "resumed; resending unaccepted messages"
        );
        self.resend_from = last_seq + 1;
        self.accepted_upto(last_seq);
    }

    /// The old session is gone: messages without a result fail, seq restarts.
    fn session_lost(&mut self) {
        self.resume_token = None;
        self.last_n = 0;
        self.acked_n = 0;
        let inflight = std::mem::take(&mut self.inflight);
        // Sequenced signalling belongs to the old session (old peer ids): void.
        self.signals.clear();
        // Frames for peers of the old session are meaningless now.
        self.outbox.retain(|m| {
            !matches!(
                m,
                ClientMsg::Offer { .. }
                    | ClientMsg::Answer { .. }
                    | ClientMsg::Ice { .. }
                    | ClientMsg::Ack { .. }
            )
        });
        for (seq, (_, reply)) in inflight {
            let _ = reply.send(Err(ClientError::SessionLost { seq }));
        }
        self.next_seq = 1;
    }

    async fn frame_loop(&mut self, ws: &mut Ws) -> Result<End, SessionFail> {
        let mut ping = tokio::time::interval(self.cfg.ping_interval);
        ping.tick().await;
        let mut last_rx = Instant::now();
        let ack_timer = tokio::time::sleep(self.cfg.ack_delay);
        tokio::pin!(ack_timer);
        let mut ack_armed = false;
        loop {
            tokio::select! {
                frame = ws.next() => {
                    last_rx = Instant::now();
                    let text = match frame {
                        None => return Ok(End::Lost("connection closed".into())),
                        Some(Err(e)) => return Ok(End::Lost(e.to_string())),
                        Some(Ok(Message::Text(t))) => t,
                        Some(Ok(Message::Close(_))) => return Ok(End::Lost("server closed the connection".into())),
                        Some(Ok(_)) => continue,
                    };
                    let msg: ServerMsg = match serde_json::from_str(text.as_str()) {
                        Ok(m) => m,
                        Err(e) => {
                            tracing::warn!(error = %e, "undecodable server frame ignored");
                            continue;
                        }
                    };
                    if let Some(n) = msg.n() {
                        if n <= self.last_n {
                            continue; // already processed (replay overlap)
                        }
                        self.last_n = n;
                    }
                    if let Some(end) = self.on_server(msg).await {
                        if let End::Stop(_) = &end {
                            let _ = ws.close(None).await;
                        }
                        return Ok(end);
                    }
                    if self.last_n - self.acked_n >= self.cfg.ack_every {
                        if let Err(e) = self.ack(ws).await { return Ok(End::Lost(e)); }
                        ack_armed = false;
                    } else if self.last_n > self.acked_n && !ack_armed {
                        ack_timer.as_mut().reset(Instant::now() + self.cfg.ack_delay);
                        ack_armed = true;
                    }
                }
                _ = &mut ack_timer, if ack_armed => {
                    ack_armed = false;
                    if let Err(e) = self.ack(ws).await { return Ok(End::Lost(e)); }
                }
                cmd = self.cmd_rx.recv() => {
                    let Some(cmd) = cmd else {
                        let _ = send(ws, &ClientMsg::Leave {}).await;
                        let _ = ws.close(None).await;
                        return Ok(End::Stop(ConnectionState::Closed));
                    };
                    let r = match cmd {
                        Cmd::Send(m) => {
                            let m = self.stamp_seq(m);
                            send(ws, &m).await
                        }
                        Cmd::Message { to, payload, reply } => {
                            let seq = self.next_seq;
                            self.next_seq += 1;
                            let m = ClientMsg::Message { seq, to, payload };
                            let r = send(ws, &m).await;
                            self.inflight.insert(seq, (m, reply));
                            r
                        }
                        Cmd::Leave(done) => {
                            let _ = send(ws, &ClientMsg::Leave {}).await;
                            let _ = tokio::time::timeout(Duration::from_secs(2), ws.close(None)).await;
                            let _ = done.send(());
                            return Ok(End::Stop(ConnectionState::Closed));
                        }
                    };
                    if let Err(e) = r { return Ok(End::Lost(e)); }
                }
                _ = ping.tick() => {
                    if last_rx.elapsed() > self.cfg.idle_timeout {
                        return Ok(End::Lost(format!("no frame from the server for {:?}", self.cfg.idle_timeout)));
                    }
                    if let Err(e) = ws.send(Message::Ping(Vec::new().into())).await {
                        return Ok(End::Lost(e.to_string()));
                    }
                }
            }
        }
    }

    async fn ack(&mut self, ws: &mut Ws) -> Result<(), String> {
        send(ws, &ClientMsg::Ack { n: self.last_n }).await?;
        self.acked_n = self.last_n;
        Ok(())
    }

    async fn on_server(&mut self, msg: ServerMsg) -> Option<End> {
        let ev = match msg {
            ServerMsg::PeerJoined {
                peer, expect_offer, ..
            } => Event::PeerJoined { peer, expect_offer },
            ServerMsg::PeerLeft {
                peer_id, reason, ..
            } => Event::PeerLeft { peer_id, reason },
            ServerMsg::Published { peer_id, track, .. } => Event::Published { peer_id, track },
            ServerMsg::Unpublished {
                peer_id, track_id, ..
            } => Event::Unpublished { peer_id, track_id },
            ServerMsg::MetadataChanged {
                peer_id, metadata, ..
            } => Event::MetadataChanged { peer_id, metadata },
            ServerMsg::Offer { from, sdp, .. } => Event::Offer { from, sdp },
            ServerMsg::Answer { from, sdp, .. } => Event::Answer { from, sdp },
            ServerMsg::Ice {
                from,
                candidate,
                sdp_mline_index,
                sdp_mid,
                ..
            } => Event::Ice {
                from,
                candidate,
                sdp_mline_index,
                sdp_mid,
            },
            ServerMsg::Message {
                from,
                seq,
                direct,
                payload,
                ..
            } => Event::Message {
                from,
                seq,
                direct,
                payload,
            },
            ServerMsg::Delivery {
                seq,
                status,
                recipients,
                reason,
                ..
            } => {
                self.accepted_upto(seq);
                if let Some((_, reply)) = self.inflight.remove(&seq) {
                    let _ = reply.send(Ok(Delivery {
                        seq,
                        status,
                        recipients,
                        reason,
                    }));
                }
                return None;
            }
            ServerMsg::Error {
                code,
                message,
                in_type,
                field,
            } => {
                tracing::warn!(%code, %message, "signalling server reported an error");
                Event::ServerError {
                    code,
                    message,
                    in_type,
                    field,
                }
            }
            ServerMsg::Bye {
                code,
                message,
                reconnect,
            } => {
                tracing::info!(%code, %message, reconnect, "server said bye");
                if reconnect {
                    // The server dropped our session (shutdown, overflow): join afresh elsewhere.
                    self.session_lost();
                    return Some(End::Lost(format!("{code}: {message}")));
                }
                self.emit(Event::ServerError {
                    code,
                    message: message.clone(),
                    in_type: None,
                    field: None,
                })
                .await;
                return Some(End::Stop(ConnectionState::Failed {
                    reason: format!("{code}: {message}"),
                }));
            }
            ServerMsg::TelemetryAck { stored, dropped } => Event::TelemetryAck { stored, dropped },
            ServerMsg::FeedbackAck {} => Event::FeedbackAck,
            ServerMsg::PrivacyExport { user, data } => Event::PrivacyExport { user, data },
            ServerMsg::PrivacyDeleted {
                user,
                records,
                feedback,
                sessions,
            } => Event::PrivacyDeleted {
                user,
                records,
                feedback,
                sessions,
            },
            ServerMsg::Pong {} | ServerMsg::Welcome { .. } | ServerMsg::Resumed { .. } => {
                return None;
            }
        };
        self.emit(ev).await;
        None
    }
}

enum SessionFail {
    Refused(ErrorCode, String),
    Io(String),
}

fn refusal_from(reason: &str) -> ClientError {
    // "code: message" as produced in run(); fall back to a connect error.
    if let Some((code, message)) = reason.split_once(": ")
        && let Ok(code) =
            serde_json::from_value::<ErrorCode>(serde_json::Value::String(code.to_owned()))
    {
        return ClientError::Refused {
            code,
            message: message.to_owned(),
        };
    }
    ClientError::Connect(reason.to_owned())
}

async fn send(ws: &mut Ws, m: &ClientMsg) -> Result<(), String> {
    let text = serde_json::to_string(m).map_err(|e| e.to_string())?;
    ws.send(Message::Text(text.into()))
        .await
        .map_err(|e| e.to_string())
}

async fn read_reply(ws: &mut Ws) -> Result<ServerMsg, SessionFail> {
    loop {
        match ws.next().await {
            None => return Err(SessionFail::Io("connection closed during join".into())),
            Some(Err(e)) => return Err(SessionFail::Io(e.to_string())),
            Some(Ok(Message::Text(t))) => {
                return serde_json::from_str(t.as_str())
                    .map_err(|e| SessionFail::Io(format!("bad reply from server: {e}")));
            }
            Some(Ok(Message::Close(_))) => {
                return Err(SessionFail::Io("server closed during join".into()));
            }
            Some(Ok(_)) => {}
        }
    }
}
