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
use super::protocol::{ClientMsg, LimitsInfo, Payload, PeerId, TrackInfo};
use backlog::{Backlog, Backlogs};
use driver::Driver;
use transport::parse_url;

mod backlog;
mod driver;
mod error;
mod events;
pub(crate) mod transport;

pub use error::ClientError;
pub use events::{Delivery, Event, Events, SignallingState, Welcome};

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
    /// Frames other than `message` (offers, answers, candidates, publications, telemetry,
    /// whiteboard updates, ...) that no socket has taken yet, at most: those queued while
    /// disconnected and those on their way to the connection. A send beyond it fails with
    /// [`ClientError::Backlog`] and nothing is queued; nothing queued earlier is dropped.
    /// Default 4096.
    pub max_backlog: usize,
    /// `message` frames without a delivery result yet, at most: sent and not yet accepted,
    /// or queued while disconnected (each is sent again after a reconnection until the server
    /// accepts it). A `send_message` beyond it fails with [`ClientError::PendingMessages`]
    /// and nothing is queued. Default 4096.
    pub max_pending_messages: usize,
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
            max_backlog: 4096,
            max_pending_messages: 4096,
        }
    }
}

/// Bytes a `"seq":N,` stamped by the driver can add to a frame.
const SEQ_MARGIN: usize = 32;

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
    /// Acknowledge the frames received so far now (not after `ack_every` / `ack_delay`).
    Ack,
}

/// Handle to a running client. Cheap to clone.
#[derive(Clone)]
pub struct Client {
    cmd: mpsc::UnboundedSender<Cmd>,
    state: watch::Receiver<SignallingState>,
    welcome: Arc<Mutex<Option<Welcome>>>,
    backlog: Arc<Backlog>,
    /// `message` frames without a delivery result.
    pending: Arc<Backlog>,
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
        let backlog = Arc::new(Backlog::new(cfg.max_backlog));
        let pending = Arc::new(Backlog::messages(cfg.max_pending_messages));
        let backlogs = Backlogs {
            frames: backlog.clone(),
            messages: pending.clone(),
        };
        let driver = Driver::new(
            cfg,
            cmd_rx,
            ev_tx,
            state_tx,
            welcome.clone(),
            first_tx,
            backlogs,
        );
        tokio::spawn(driver.run());
        match first_rx.await {
            Ok(Ok(())) => Ok((
                Client {
                    cmd: cmd_tx,
                    state: state_rx,
                    welcome,
                    backlog,
                    pending,
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
        self.backlog.reserve()?;
        self.cmd.send(Cmd::Send(m)).map_err(|_| {
            self.backlog.cancel();
            ClientError::Closed
        })
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

    /// In an SFU room: the size (device pixels; 0×0 when hidden) at which this client renders
    /// the video of m-line `mid` of its `sfu-subscribe` connection. The server forwards the
    /// smallest simulcast layer covering it. Not sequenced: the latest size counts.
    pub fn sfu_view(&self, mid: &str, width: u32, height: u32) -> Result<(), ClientError> {
        self.send(ClientMsg::SfuView {
            mid: mid.to_owned(),
            width,
            height,
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
        self.pending.reserve()?;
        self.cmd
            .send(Cmd::Message {
                to: to.map(str::to_owned),
                payload,
                reply: tx,
            })
            .map_err(|_| {
                self.pending.cancel();
                ClientError::Closed
            })?;
        Ok(rx)
    }

    /// Acknowledge the server's frames received so far now rather than after
    /// [`ClientConfig::ack_every`] frames or [`ClientConfig::ack_delay`]: the server then
    /// releases them from this session's queue (a whiteboard's chunked sync answer is paced
    /// by it). Nothing happens while disconnected (a resume acknowledges).
    pub(crate) fn ack_received(&self) -> Result<(), ClientError> {
        self.cmd.send(Cmd::Ack).map_err(|_| ClientError::Closed)
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
