//! `Session`: join a room through the signalling server and exchange media with every other
//! member over one `webrtcbin` per remote peer (mesh).
//!
//! A session drives one signalling [`Client`] and the peer connections of its topology
//! (today the mesh: one [`Peer`](crate::webrtc::peer::Peer) per remote member):
//! - on the server's `welcome`, it creates a peer for every member already present and offers
//!   to those listed in `offer_to` (the newcomer offers, so offers never cross);
//! - on `peer_joined` / `peer_left` it creates (answerer role when `expect_offer`) or closes;
//! - offers, answers and ICE candidates are routed by sender to the right peer, and each
//!   peer's outgoing signalling goes back out through the client;
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
//! # Structure
//! [`Session`] is a cheap handle. One actor (on its own thread) owns the session's
//! state and handles one message at a time: the handles' commands (answered through oneshot
//! channels, hence `async`), the signalling events, and posts from GStreamer callbacks, which
//! never wait for it. The actor drives a topology (an internal trait; the mesh today) that decides which peer
//! connections exist and where signalling goes.
//!
//! ```no_run
//! # async fn demo() -> Result<(), streamwire::session::SessionError> {
//! use streamwire::session::{Session, SessionConfig, SessionEvent};
//! use streamwire::webrtc::publisher::PublisherConfig;
//! let mut cfg = SessionConfig::new("wss://sig.example.org", "room1", "<jwt>");
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

mod actor;
mod config;
mod event;
pub(crate) mod ice;
mod kinds;
pub mod latency;
mod mesh;
mod recovery;
mod sfu;
pub mod telemetry;
mod topology;

use std::sync::Arc;

use gst::prelude::*;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use tokio::sync::oneshot;

pub use config::{DATA_CHANNEL_LABEL, SessionConfig, Subscribe};
pub use event::{SessionError, SessionEvent, Via};
pub use ice::ice_url_for_webrtcbin;
pub use kinds::NotMedia;
pub use recovery::{RebuildReason, Recovery, RecoveryConfig};

use crate::signalling::client::{Client, Delivery, Event};
use crate::signalling::protocol::{Payload, PeerId};
use crate::webrtc::WebrtcError;
use crate::webrtc::audio_dump::{AudioDumpConfig, DumpSidecar};
use crate::webrtc::peer::ConnectionState;
use crate::webrtc::publisher::{Publisher, PublisherConfig};
use crate::webrtc::stats::{STATS_INTERVAL, StatsCollector};
use crate::webrtc::subscriber::Subscriber;
use crate::whiteboard::Whiteboard;
use actor::{Actor, Command, Msg, Post};
use config::ConnectionSettings;
use event::Emitter;
use ice::{IceServers, validate_ice_url};
use topology::{Ctx, Poster, RemoteTracks};

/// What the handles and the actor both use; none of it is session state (each part
/// synchronises itself).
pub(crate) struct Shared {
    pipeline: gst::Pipeline,
    subscriber: Subscriber,
    client: Client,
    telemetry: telemetry::Forwarder,
    /// Whiteboards opened with [`Session::whiteboard`], by board name.
    whiteboards: parking_lot::Mutex<std::collections::HashMap<String, Whiteboard>>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

/// The actor's queue, as the handles hold it. When the last handle goes, the actor is told
/// to tear the session down.
struct ActorLink(UnboundedSender<Msg>);

impl Drop for ActorLink {
    fn drop(&mut self) {
        let _ = self.0.send(Msg::HandlesDropped);
    }
}

/// A joined room: one signalling client, one peer connection per remote member.
///
/// A cheap handle (clone it freely): the session's state belongs to its actor, which the
/// methods ask through a queue. Dropping the last handle without [`Session::leave`] closes
/// the peer connections and stops the pipeline.
#[derive(Clone)]
pub struct Session {
    shared: Arc<Shared>,
    actor: Arc<ActorLink>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("peer_id", &self.shared.client.peer_id())
            .finish_non_exhaustive()
    }
}

fn left() -> SessionError {
    SessionError::Publishing("the session has left the room".into())
}

impl Session {
    /// Build the local pipeline (publisher, subscriber), join the room and start the mesh.
    /// Returns once the server welcomed this peer; events arrive on the receiver.
    ///
    /// The event receiver is unbounded, on purpose: events come from GStreamer's streaming
    /// threads and signal handlers, which must never wait for the application. So the
    /// application must drain it: what it does not read stays queued in memory. Dropping
    /// the receiver is fine (events are then discarded). Steady rates: one
    /// [`SessionEvent::Stats`] per peer every 2 s; [`SessionEvent::Receive`] once per track,
    /// or per decoded frame with [`SubscriberConfig::frame_events`](crate::webrtc::subscriber::SubscriberConfig::frame_events)
    /// (30/s per 30 fps video track); one [`SessionEvent::Message`] per message received;
    /// everything else per change of state.
    pub async fn join(
        cfg: SessionConfig,
    ) -> Result<(Session, UnboundedReceiver<SessionEvent>), SessionError> {
        crate::gst_init::init().map_err(|e| WebrtcError::State(format!("GStreamer init: {e}")))?;
        // Every peer connection waits for the DTLS certificate: generate it while joining.
        crate::gst_init::prepare_dtls_certificate();
        let joined = Session::start(cfg).await;
        if joined.is_err() {
            // The application may exit right after a failed join: not while OpenSSL works.
            certificate_settled().await;
        }
        joined
    }

    async fn start(
        cfg: SessionConfig,
    ) -> Result<(Session, UnboundedReceiver<SessionEvent>), SessionError> {
        for url in &cfg.ice_servers {
            validate_ice_url(url)?;
        }
        ice::warn_if_loopback_only(&cfg.local_addresses, &cfg.signalling.urls).await;
        let pipeline = gst::Pipeline::with_name("streamwire-session");
        let publisher = match &cfg.publish {
            Some(p) => Some(Publisher::new(&pipeline, p.clone())?),
            None => None,
        };
        let (subscriber, mut sub_events) = Subscriber::new(cfg.output.clone())?;
        // Played audio goes through one standing path, built before the publisher starts: a
        // microphone's echo canceller finds its far-end reference there.
        subscriber.prepare(pipeline.upcast_ref())?;
        pipeline
            .set_state(gst::State::Playing)
            .map_err(|e| WebrtcError::State(format!("starting the session pipeline: {e}")))?;
        let (client, mut client_events) = match Client::connect(cfg.signalling.clone()).await {
            Ok(c) => c,
            Err(e) => {
                let _ = pipeline.set_state(gst::State::Null);
                abandon_room_recording(&subscriber);
                return Err(e.into());
            }
        };
        let (stats, mut stats_rx) =
            StatsCollector::start(STATS_INTERVAL, publisher.clone(), Some(subscriber.clone()));
        let (tx, rx) = unbounded_channel();
        let events = Emitter::new(tx);
        let telemetry =
            match telemetry::Forwarder::start(client.clone(), &cfg.telemetry, events.sender()) {
                Ok(t) => t,
                Err(e) => {
                    client.leave().await;
                    let _ = pipeline.set_state(gst::State::Null);
                    abandon_room_recording(&subscriber);
                    return Err(e.into());
                }
            };
        let shared = Arc::new(Shared {
            pipeline,
            subscriber,
            client,
            telemetry,
            whiteboards: parking_lot::Mutex::new(std::collections::HashMap::new()),
        });
        let (queue_tx, queue_rx) = unbounded_channel();
        let posts = Poster::new(queue_tx.clone());
        let cx = Ctx {
            shared: shared.clone(),
            stats,
            settings: ConnectionSettings {
                subscribe: cfg.subscribe,
                local_addresses: cfg.local_addresses,
                ice_port_range: cfg.ice_port_range,
                ice_transport_policy: cfg.ice_transport_policy,
                ice_tcp: cfg.ice_tcp,
                jitter_buffer: cfg.jitter_buffer,
                repair: cfg.repair,
                data_channel: cfg.data_channel,
                recovery: cfg.recovery,
            },
            ice: IceServers::default(),
            publisher: publisher.zip(cfg.publish),
            tracks: RemoteTracks::default(),
            last_conn: 0,
            events: events.clone(),
            posts: posts.clone(),
            runtime: tokio::runtime::Handle::current(),
        };
        if let Err(e) = Actor::new(cx, Box::new(mesh::Mesh::new()), cfg.ice_servers).spawn(queue_rx)
        {
            shared.client.leave().await;
            let _ = shared.pipeline.set_state(gst::State::Null);
            abandon_room_recording(&shared.subscriber);
            return Err(WebrtcError::State(format!("starting the session thread: {e}")).into());
        }
        // Signalling events, in order, to the actor; the client sends nothing after it ended.
        // Whiteboard messages go straight to their board (it holds no session state and
        // synchronises itself), not behind the actor's GStreamer work: a room recording
        // paints each update as it arrives (docs/whiteboard.md, "Recording").
        let queue = queue_tx.clone();
        let boards = shared.clone();
        let board_errors = events.clone();
        tokio::spawn(async move {
            while let Some(ev) = client_events.recv().await {
                if let Event::Whiteboard { board, data, .. } = &ev {
                    let wb = boards.whiteboards.lock().get(board).cloned();
                    if let Some(wb) = wb
                        && let Err(e) = wb.receive(data)
                    {
                        board_errors.error(format!("whiteboard `{board}`"), e.to_string());
                    }
                    continue;
                }
                let end = matches!(&ev, Event::State(st) if actor::signalling_ended(st));
                if queue.send(Msg::Signalling(ev)).is_err() || end {
                    break;
                }
            }
        });
        let ticks = posts.clone();
        tokio::spawn(async move {
            while let Some(ev) = sub_events.recv().await {
                posts.post(Post::Subscriber(ev));
            }
        });
        tokio::spawn(async move {
            let mut every = tokio::time::interval(actor::TICK);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                every.tick().await;
                if !ticks.post(Post::Tick) {
                    break;
                }
            }
        });
        // Statistics touch no session state: straight to telemetry and the application.
        let s = shared.clone();
        tokio::spawn(async move {
            while let Some(ev) = stats_rx.recv().await {
                s.telemetry.push_stats(&ev.stats);
                events.emit(SessionEvent::Stats(ev));
            }
        });
        let session = Session {
            shared,
            actor: Arc::new(ActorLink(queue_tx)),
        };
        // A room recording's board track renders the room's board from now on.
        let room = session.shared.subscriber.room_recording();
        if let Some((name, element)) = room.as_ref().and_then(|r| {
            r.config()
                .whiteboard
                .as_deref()
                .zip(r.board_element().cloned())
        }) {
            match session.whiteboard(name) {
                Ok(board) => board.feed(&element),
                Err(e) => {
                    session.leave().await;
                    return Err(e);
                }
            }
        }
        Ok((session, rx))
    }

    /// Send `command` (built around a reply channel) to the actor and wait for the reply;
    /// `None` once the session has left (the actor has ended).
    async fn ask<T>(&self, command: impl FnOnce(oneshot::Sender<T>) -> Command) -> Option<T> {
        let (reply, answer) = oneshot::channel();
        self.actor.0.send(Msg::Command(command(reply))).ok()?;
        answer.await.ok()
    }

    /// This peer's id in the room.
    pub fn peer_id(&self) -> Option<PeerId> {
        self.shared.client.peer_id()
    }

    /// The signalling client (for metadata, kick, ...).
    pub fn client(&self) -> &Client {
        &self.shared.client
    }

    /// The room's whiteboard `board` (`main` is the one the browser client shows): the shared
    /// document, synced with the server; opened on first use, the same handle afterwards.
    /// See [`crate::whiteboard`] for an example.
    pub fn whiteboard(&self, board: &str) -> Result<Whiteboard, SessionError> {
        let mut boards = self.shared.whiteboards.lock();
        if let Some(b) = boards.get(board) {
            return Ok(b.clone());
        }
        let user = self
            .shared
            .client
            .welcome()
            .map(|w| w.user)
            .unwrap_or_default();
        let b = Whiteboard::open(&self.shared.client, board, &user)
            .map_err(|e| SessionError::Whiteboard(e.to_string()))?;
        boards.insert(board.to_owned(), b.clone());
        Ok(b)
    }

    /// The local publisher, if any.
    ///
    /// ```no_run
    /// # async fn demo(session: streamwire::session::Session) {
    /// if let Some(p) = session.publisher().await {
    ///     println!("sending {:?}", p.video_size());
    /// }
    /// # }
    /// ```
    pub async fn publisher(&self) -> Option<Publisher> {
        self.ask(Command::Publisher).await.flatten()
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
    /// session.publish(PublisherConfig::default()).await?; // camera on
    /// session.unpublish().await?; // camera off, still in the room
    /// # Ok(()) }
    /// ```
    pub async fn publish(&self, cfg: PublisherConfig) -> Result<(), SessionError> {
        self.ask(|reply| Command::Publish(cfg, reply))
            .await
            .unwrap_or_else(|| Err(left()))
    }

    /// Stop publishing without leaving: every peer's send branches are released and their
    /// m-lines renegotiated to `inactive` (the offerer re-offers at once; an answerer's
    /// `unpublish` announcement asks its offerer to), the tracks are withdrawn with
    /// `unpublish`, and the capture and encode chains are removed from the pipeline. Remote
    /// sides get [`SessionEvent::TrackRemoved`]. [`Session::publish`] may follow.
    pub async fn unpublish(&self) -> Result<(), SessionError> {
        self.ask(Command::Unpublish)
            .await
            .unwrap_or_else(|| Err(left()))
    }

    /// Start an audio dump of the published microphone into `dir` (created; it must not
    /// already hold a dump) with the default size limit: raw, far-end reference and processed
    /// audio as sample-aligned WAV files plus `dump.json` (format in
    /// [`crate::webrtc::audio_dump`]). Raw voice that stays on the device: off until the
    /// application calls this. Errors when nothing is published or the published audio is
    /// not a processed microphone, or a dump is already running.
    ///
    /// ```no_run
    /// # async fn demo(session: streamwire::session::Session) -> Result<(), streamwire::session::SessionError> {
    /// session.start_audio_dump("/tmp/call-dump").await?;
    /// // ... reproduce the echo ...
    /// let sidecar = session.stop_audio_dump().await?;
    /// # Ok(()) }
    /// ```
    pub async fn start_audio_dump(
        &self,
        dir: impl Into<std::path::PathBuf>,
    ) -> Result<(), SessionError> {
        self.start_audio_dump_with(&AudioDumpConfig::new(dir)).await
    }

    /// [`Session::start_audio_dump`] with a chosen size limit.
    pub async fn start_audio_dump_with(&self, cfg: &AudioDumpConfig) -> Result<(), SessionError> {
        let publisher = self.publisher().await.ok_or_else(|| {
            SessionError::Publishing("an audio dump needs a published microphone".into())
        })?;
        Ok(publisher.start_audio_dump(cfg)?)
    }

    /// Stop the running audio dump and finalise its files; returns its sidecar (`None` when
    /// no dump was running).
    pub async fn stop_audio_dump(&self) -> Result<Option<DumpSidecar>, SessionError> {
        match self.publisher().await {
            Some(p) => Ok(p.stop_audio_dump()?),
            None => Ok(None),
        }
    }

    /// The shared subscriber (counters, frame callbacks, keyframe requests).
    pub fn subscriber(&self) -> &Subscriber {
        &self.shared.subscriber
    }

    /// The session's GStreamer pipeline.
    pub fn pipeline(&self) -> &gst::Pipeline {
        &self.shared.pipeline
    }

    /// Ids of the remote peers currently in the mesh, sorted (empty once left).
    ///
    /// ```no_run
    /// # async fn demo(session: streamwire::session::Session) {
    /// println!("{} peers", session.peers().await.len());
    /// # }
    /// ```
    pub async fn peers(&self) -> Vec<PeerId> {
        self.ask(Command::Peers).await.unwrap_or_default()
    }

    /// Tell the server the size (pixels; 0×0 when not shown) at which the app renders
    /// `peer_id`'s video. In an SFU room the server then forwards the smallest of the
    /// publisher's simulcast layers covering it (docs/sfu.md, "Simulcast"); the size holds
    /// until changed, across a replaced subscription. In a mesh room it has no effect.
    ///
    /// ```no_run
    /// # fn demo(session: &streamwire::session::Session) {
    /// // A thumbnail: the quarter-size layer of a 1280×720 camera is enough.
    /// session.set_rendered_size("alice", 320, 180);
    /// # }
    /// ```
    pub fn set_rendered_size(&self, peer_id: &str, width: u32, height: u32) {
        let _ = self.actor.0.send(Msg::Command(Command::RenderedSize {
            peer: peer_id.to_owned(),
            width,
            height,
        }));
    }

    /// Connection state of the peer connection to `peer_id`.
    pub async fn connection_state(&self, peer_id: &str) -> Option<ConnectionState> {
        self.ask(|reply| Command::ConnectionState(peer_id.to_owned(), reply))
            .await
            .flatten()
    }

    /// Loss-repair counters (media, RTX and FEC packets and bytes each way, retransmission
    /// requests, jitter-buffer latencies) of the connection that carries `peer_id`'s media.
    ///
    /// ```no_run
    /// # async fn demo(session: streamwire::session::Session) {
    /// if let Some(c) = session.repair_counters("alice").await {
    ///     println!("{} retransmissions sent", c.sent.rtx_packets);
    /// }
    /// # }
    /// ```
    pub async fn repair_counters(
        &self,
        peer_id: &str,
    ) -> Option<crate::webrtc::repair::RepairCounters> {
        self.ask(|reply| Command::RepairCounters(peer_id.to_owned(), reply))
            .await
            .flatten()
    }

    /// Send a real-time message through the signalling server to the room (`to = None`) or
    /// one peer, and wait for its delivery result (survives signalling reconnects).
    pub async fn send_message(
        &self,
        to: Option<&str>,
        payload: Payload,
    ) -> Result<Delivery, SessionError> {
        Ok(self.shared.client.send_message(to, payload).await?)
    }

    /// Send a message over the data channel to one peer or (`to = None`) every peer with an
    /// open channel. Returns how many peers it was handed to.
    ///
    /// ```no_run
    /// # async fn demo(session: streamwire::session::Session) -> Result<(), streamwire::session::SessionError> {
    /// use streamwire::signalling::protocol::Payload;
    /// let n = session.send_data(None, &Payload::Text("hi".into())).await?;
    /// # Ok(()) }
    /// ```
    pub async fn send_data(
        &self,
        to: Option<&str>,
        payload: &Payload,
    ) -> Result<usize, SessionError> {
        let target = to.map(str::to_owned);
        self.ask(|reply| Command::SendData {
            to: target,
            payload: payload.clone(),
            reply,
        })
        .await
        .unwrap_or_else(|| Err(actor::no_data_channel(to)))
    }

    /// The end user's telemetry consent currently applied.
    pub fn consent(&self) -> gststreamwire::telemetry::Consent {
        self.shared.telemetry.consent()
    }

    /// Change the telemetry consent at runtime: lowering it strips pending records of what
    /// the new level does not allow; at `none` nothing more is read or sent.
    pub fn set_consent(&self, consent: gststreamwire::telemetry::Consent) {
        self.shared.telemetry.set_consent(consent);
    }

    /// Send the pending telemetry now instead of at the next interval (also done by
    /// [`Session::leave`]).
    pub fn flush_telemetry(&self) {
        self.shared.telemetry.flush();
    }

    /// The session's `devicetelemetry` element (None when `telemetry.device` is false).
    pub fn telemetry_element(&self) -> Option<&gst::Element> {
        self.shared.telemetry.element()
    }

    /// What telemetry forwarding has sent so far.
    pub fn telemetry_counters(&self) -> telemetry::TelemetryCounters {
        self.shared.telemetry.counters()
    }

    /// Leave the room: finish a room recording ([`VideoOutput::RecordRoom`](crate::webrtc::subscriber::VideoOutput::RecordRoom)), send pending
    /// telemetry, tell the server, close every peer connection,
    /// stop the pipeline. Later calls of [`Session::publish`] and [`Session::unpublish`] fail
    /// with [`SessionError::Publishing`].
    pub async fn leave(&self) {
        // A room recording ends before the room hears that this member leaves (the others
        // then stop sending): its file ends with everyone still in it.
        if let Some(r) = self.shared.subscriber.room_recording() {
            let _ = tokio::task::spawn_blocking(move || r.finish()).await;
        }
        self.shared.telemetry.finish();
        self.shared.client.leave().await;
        let _ = self.ask(Command::Leave).await;
        // Alone in the room, no connection waited for the certificate: the application may
        // exit now, so not while it is being generated.
        certificate_settled().await;
    }
}

/// A join that failed after the room recording was built: its file holds no room; remove it,
/// so the same path can be used again.
fn abandon_room_recording(subscriber: &Subscriber) {
    if let Some(r) = subscriber.room_recording()
        && let Err(e) = std::fs::remove_file(r.path())
    {
        tracing::warn!(path = %r.path().display(), error = %e, "removing the unused room recording");
    }
}

/// Wait (off the runtime's threads) until the DTLS certificate thread has finished.
async fn certificate_settled() {
    let done = tokio::task::spawn_blocking(crate::gst_init::dtls_certificate_ready).await;
    if let Ok(Err(e)) = done {
        tracing::debug!(error = %e, "DTLS certificate");
    }
}
