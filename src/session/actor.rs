//! The session actor: one thread owns everything a session holds (the topology's peer
//! connections, the published track set, the remote tracks, the ICE servers, whether it has
//! left) and handles one message at a time from a single queue:
//!
//! - [`Command`]s from the [`Session`](super::Session) handles (publish, unpublish,
//!   send_data, leave, and queries answered through a oneshot channel);
//! - signalling [`Event`]s, forwarded from the client by a task;
//! - [`Post`]s from GStreamer callbacks and the connections' event channels.
//!
//! Nothing else touches that state, so there is no lock and no lock order. Teardown (a
//! member leaving, a fresh re-join, leave) is serialised with every setup by construction.
//! The actor runs on its own thread, not on the async runtime: it makes blocking GStreamer
//! state changes (closing a `webrtcbin`, stopping branches, the pipeline to NULL), and those
//! wait for streaming threads. No streaming thread or signal handler ever waits for the
//! actor: they only post into its unbounded queue, which never blocks. So a state change
//! in the actor can always complete, and the runtime's tasks (signalling, the handles
//! awaiting replies) keep running meanwhile.

use gst::prelude::*;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::sync::oneshot;

use crate::signalling::client::{Event, SignallingState};
use crate::signalling::protocol::{Grant, Payload, PeerId, RoomTopology, TrackInfo};
use crate::webrtc::MediaKind;
use crate::webrtc::peer::{ConnectionState, SignalIn};
use crate::webrtc::publisher::{Publisher, PublisherConfig};
use crate::webrtc::subscriber::SubscriberEvent;

use super::event::{SessionError, SessionEvent, Via};
use super::ice::IceServers;
use super::recovery::Addresses;
use super::topology::{ConnId, ConnectionPost, Ctx, Topology};

/// A request of a [`Session`](super::Session) handle.
pub(crate) enum Command {
    Publish(PublisherConfig, oneshot::Sender<Result<(), SessionError>>),
    Unpublish(oneshot::Sender<Result<(), SessionError>>),
    SendData {
        to: Option<String>,
        payload: Payload,
        reply: oneshot::Sender<Result<usize, SessionError>>,
    },
    Publisher(oneshot::Sender<Option<Publisher>>),
    Peers(oneshot::Sender<Vec<PeerId>>),
    ConnectionState(String, oneshot::Sender<Option<ConnectionState>>),
    RepairCounters(
        String,
        oneshot::Sender<Option<crate::webrtc::repair::RepairCounters>>,
    ),
    /// The app renders `peer`'s video at this size ([`super::Session::set_rendered_size`]).
    RenderedSize {
        peer: String,
        width: u32,
        height: u32,
    },
    /// Close everything and end the actor; the reply says it is done.
    Leave(oneshot::Sender<()>),
}

/// Something a callback or a forwarding task reports.
#[derive(Debug)]
pub(crate) enum Post {
    /// About one connection of the topology.
    Connection(ConnId, ConnectionPost),
    /// From the shared subscriber.
    Subscriber(SubscriberEvent),
    /// Time to look at the connections ([`TICK`]).
    Tick,
}

/// How often the actor looks at its connections and the machine's addresses.
pub(crate) const TICK: std::time::Duration = std::time::Duration::from_millis(250);

/// Everything the actor's queue carries.
pub(crate) enum Msg {
    Command(Command),
    Signalling(Event),
    Post(Post),
    /// The last [`Session`](super::Session) handle was dropped without `leave`.
    HandlesDropped,
}

pub(crate) struct Actor {
    cx: Ctx,
    topology: Box<dyn Topology>,
    /// ICE servers of the configuration, added to those of every join reply.
    extra_ice: Vec<String>,
    joined_once: bool,
    /// The machine's addresses at the last tick.
    addresses: Addresses,
}

impl Actor {
    pub(crate) fn new(cx: Ctx, topology: Box<dyn Topology>, extra_ice: Vec<String>) -> Self {
        Actor {
            cx,
            topology,
            extra_ice,
            joined_once: false,
            addresses: Addresses::now(),
        }
    }

    /// Start the actor on its own thread.
    pub(crate) fn spawn(self, queue: UnboundedReceiver<Msg>) -> std::io::Result<()> {
        std::thread::Builder::new()
            .name("sw-session".into())
            .spawn(move || self.run(queue))
            .map(|_| ())
    }

    fn run(mut self, mut queue: UnboundedReceiver<Msg>) {
        // The queue cannot close while the actor runs: its own `Poster` holds a sender.
        while let Some(msg) = queue.blocking_recv() {
            match msg {
                Msg::Command(c) => {
                    if !self.command(c) {
                        break;
                    }
                }
                Msg::HandlesDropped => {
                    self.teardown();
                    break;
                }
                Msg::Signalling(ev) => self.signalling(ev),
                Msg::Post(p) => self.post(p),
            }
        }
        // Dropping the actor drops the connections, the publisher and the statistics thread;
        // commands still queued get no reply, which their handles read as "left".
    }

    /// Handle a command; false once the actor is to end (leave).
    fn command(&mut self, c: Command) -> bool {
        match c {
            Command::Publish(cfg, reply) => {
                let _ = reply.send(self.publish(cfg));
            }
            Command::Unpublish(reply) => {
                let _ = reply.send(self.unpublish());
            }
            Command::SendData { to, payload, reply } => {
                let _ = reply.send(self.send_data(to.as_deref(), &payload));
            }
            Command::Publisher(reply) => {
                let _ = reply.send(self.cx.publisher().cloned());
            }
            Command::Peers(reply) => {
                let _ = reply.send(self.topology.members());
            }
            Command::ConnectionState(peer, reply) => {
                let _ = reply.send(self.topology.connection_state(&peer));
            }
            Command::RepairCounters(peer, reply) => {
                let _ = reply.send(self.topology.repair_counters(&peer));
            }
            Command::RenderedSize {
                peer,
                width,
                height,
            } => self
                .topology
                .rendered_size(&mut self.cx, &peer, (width, height)),
            Command::Leave(done) => {
                self.teardown();
                let _ = done.send(());
                return false;
            }
        }
        true
    }

    fn publish(&mut self, cfg: PublisherConfig) -> Result<(), SessionError> {
        if self.cx.publisher.is_some() {
            return Err(SessionError::Publishing(
                "a track set is already published; call unpublish() first".into(),
            ));
        }
        let publisher = Publisher::new(&self.cx.shared.pipeline, cfg.clone())?;
        if let Err(e) = publisher.start() {
            publisher.stop();
            return Err(e.into());
        }
        self.cx.publisher = Some((publisher.clone(), cfg));
        self.cx.stats.set_publisher(Some(publisher.clone()));
        self.topology.publish(&mut self.cx, &publisher);
        self.announce_tracks();
        Ok(())
    }

    fn unpublish(&mut self) -> Result<(), SessionError> {
        let Some((publisher, cfg)) = self.cx.publisher.take() else {
            return Err(SessionError::Publishing("nothing is published".into()));
        };
        self.cx.stats.set_publisher(None);
        self.topology.unpublish(&mut self.cx, &publisher);
        for (id, _) in published_tracks(&cfg) {
            if let Err(e) = self.cx.shared.client.unpublish(id) {
                self.cx
                    .error(format!("unpublishing track `{id}`"), e.to_string());
            }
        }
        publisher.stop();
        Ok(())
    }

    fn send_data(&self, to: Option<&str>, payload: &Payload) -> Result<usize, SessionError> {
        let channels = self.topology.open_channels(to);
        if channels.is_empty() {
            return Err(no_data_channel(to));
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

    fn teardown(&mut self) {
        // The room recording ends first, with every member still in it (`Session::leave` has
        // already done it; this is for the last handle dropped without leaving); the muxer
        // writes the duration and the index before anything stops.
        if let Some(r) = self.cx.shared.subscriber.room_recording() {
            r.finish();
        }
        self.topology.close_all(&mut self.cx);
        let _ = self.cx.shared.pipeline.set_state(gst::State::Null);
    }

    fn announce_tracks(&self) {
        let Some((_, cfg)) = &self.cx.publisher else {
            return;
        };
        let may_publish = self
            .cx
            .shared
            .client
            .welcome()
            .is_some_and(|w| w.grants.contains(&Grant::Publish));
        if !may_publish {
            // The server would refuse the announcements and any SDP that sends; the mesh
            // attaches the tracks to no connection (docs/protocol.md, "Grants").
            self.cx.error(
                "publishing".into(),
                "the token lacks the `publish` grant: local tracks are neither announced nor sent"
                    .into(),
            );
            return;
        }
        for (id, kind) in published_tracks(cfg) {
            let (width, height) = match kind {
                MediaKind::Video => (
                    u32::try_from(cfg.width).ok(),
                    u32::try_from(cfg.height).ok(),
                ),
                MediaKind::Audio => (None, None),
            };
            let track = TrackInfo {
                id: id.into(),
                kind: kind.into(),
                label: None,
                width,
                height,
            };
            if let Err(e) = self.cx.shared.client.publish(track) {
                self.cx
                    .error(format!("publishing track `{id}`"), e.to_string());
            }
        }
    }

    fn post(&mut self, p: Post) {
        match p {
            Post::Connection(conn, post) => self.topology.connection(&mut self.cx, conn, post),
            Post::Subscriber(ev) => {
                if let SubscriberEvent::TrackAdded { peer, kind, codec } = &ev {
                    self.cx.tracks.added(peer, *kind);
                    self.cx.events.emit(SessionEvent::TrackAdded {
                        peer_id: peer.clone(),
                        kind: *kind,
                        codec: codec.clone(),
                    });
                }
                let ev = match ev {
                    SubscriberEvent::AudioLevels { levels } => SessionEvent::AudioLevels { levels },
                    SubscriberEvent::ActiveSpeakerChanged { peer } => {
                        SessionEvent::ActiveSpeakerChanged { peer }
                    }
                    other => SessionEvent::Receive(other),
                };
                self.cx.events.emit(ev);
            }
            Post::Tick => self.tick(),
        }
    }

    /// Recovery: notice an address change (the signalling socket may be bound to a vanished
    /// address: reconnect it now), and let the topology look at its connections.
    fn tick(&mut self) {
        if !self.cx.settings.recovery.enabled {
            return;
        }
        let changed = self.addresses.update(Addresses::now());
        if changed && let Err(e) = self.cx.shared.client.reconnect() {
            tracing::debug!(error = %e, "no signalling reconnect after an address change");
        }
        self.topology
            .tick(&mut self.cx, std::time::Instant::now(), changed);
    }

    fn signalling(&mut self, ev: Event) {
        let cx = &mut self.cx;
        match ev {
            Event::State(st) => cx.events.emit(SessionEvent::Signalling(st)),
            Event::Joined(w) => {
                if self.joined_once {
                    // The old session is gone: every peer connection is void.
                    self.topology.close_all(cx);
                    // The whiteboards sync afresh with the new session.
                    let boards: Vec<_> = cx.shared.whiteboards.lock().values().cloned().collect();
                    for wb in boards {
                        if let Err(e) = wb.resync() {
                            cx.error(format!("whiteboard `{}`", wb.board()), e.to_string());
                        }
                    }
                }
                if self.topology.kind() != w.topology {
                    self.topology.close_all(cx);
                    self.topology = match w.topology {
                        RoomTopology::Mesh => Box::new(super::mesh::Mesh::new()),
                        RoomTopology::Sfu => Box::new(super::sfu::Sfu::new()),
                    };
                }
                self.joined_once = true;
                self.ice_servers(&w.ice_servers, "ICE servers of the join reply");
                let cx = &mut self.cx;
                cx.events.emit(SessionEvent::Joined {
                    peer_id: w.peer_id.clone(),
                });
                self.announce_tracks();
                let cx = &mut self.cx;
                for p in &w.peers {
                    self.topology.member_present(cx, p, &w);
                    for t in &p.tracks {
                        cx.events.emit(SessionEvent::TrackPublished {
                            peer_id: p.peer_id.clone(),
                            track: t.clone(),
                        });
                    }
                }
                self.topology.welcomed(cx, &w);
            }
            Event::SfuStreams { streams, fresh } => self.topology.sfu_streams(cx, streams, fresh),
            // Also `sfu` in an SFU room: the server re-created the room's SFU room (its
            // Janus instance was lost), so both SFU connections are void; connect afresh.
            Event::Topology(t) if t != self.topology.kind() || t == RoomTopology::Sfu => {
                tracing::info!(
                    topology = t.as_str(),
                    "the room's media path is set up anew"
                );
                let members = self.topology.handover(cx);
                self.topology = match t {
                    RoomTopology::Mesh => Box::new(super::mesh::Mesh::new()),
                    RoomTopology::Sfu => Box::new(super::sfu::Sfu::new()),
                };
                self.topology.adopt(cx, members);
            }
            Event::Topology(_) => {}
            Event::Resumed { .. } => cx.events.emit(SessionEvent::Resumed),
            // Handled where the session forwards the client's events (`Session::start`).
            Event::Whiteboard { .. } => {}
            // Used by every connection built from now on; running ones keep the TURN
            // allocations they made (webrtcbin 1.22 cannot change a running ICE agent's
            // servers).
            Event::IceServers { ice_servers } => {
                self.ice_servers(&ice_servers, "fresh ICE servers from the server")
            }
            Event::PeerJoined { peer, expect_offer } => {
                self.topology.member_joined(cx, &peer, expect_offer)
            }
            Event::PeerLeft { peer_id, .. } => self.topology.member_left(cx, &peer_id),
            Event::Published { peer_id, track } => {
                let kind = MediaKind::try_from(track.kind).ok();
                self.topology.remote_track(cx, &peer_id, kind);
                cx.events
                    .emit(SessionEvent::TrackPublished { peer_id, track })
            }
            Event::Unpublished { peer_id, track_id } => {
                self.topology.remote_track(cx, &peer_id, None);
                cx.events
                    .emit(SessionEvent::TrackUnpublished { peer_id, track_id })
            }
            Event::MetadataChanged { .. } => {}
            ev @ (Event::TelemetryAck { .. }
            | Event::FeedbackAck
            | Event::PrivacyExport { .. }
            | Event::PrivacyDeleted { .. }) => cx.events.emit(SessionEvent::ServiceReply(ev)),
            Event::Offer { from, sdp } => self.topology.signal(cx, &from, SignalIn::Offer { sdp }),
            Event::Answer { from, sdp } => {
                self.topology.signal(cx, &from, SignalIn::Answer { sdp })
            }
            Event::Ice {
                from,
                candidate,
                sdp_mline_index,
                ..
            } => self.topology.signal(
                cx,
                &from,
                SignalIn::Ice {
                    mline: sdp_mline_index,
                    candidate,
                },
            ),
            Event::Message { from, payload, .. } => cx.events.emit(SessionEvent::Message {
                from,
                via: Via::Signalling,
                payload,
            }),
            Event::ServerError {
                code,
                message,
                in_type,
                field,
            } => cx.error(
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

impl Actor {
    /// Configure every new connection with `servers` (from the server) and the configured
    /// extra ones; report each problem with them under `context`.
    fn ice_servers(&mut self, servers: &[crate::signalling::protocol::IceServer], context: &str) {
        let (ice, problems) =
            IceServers::resolve(servers, &self.extra_ice, std::time::SystemTime::now());
        self.cx.ice = ice;
        for e in problems {
            self.cx.error(context.to_owned(), e.to_string());
        }
    }
}

/// Whether a signalling state ends the client (no event follows it).
pub(crate) fn signalling_ended(st: &SignallingState) -> bool {
    matches!(st, SignallingState::Closed | SignallingState::Failed { .. })
}

/// The error of [`Session::send_data`](super::Session::send_data) when nothing can carry it.
pub(crate) fn no_data_channel(to: Option<&str>) -> SessionError {
    SessionError::NoDataChannel(
        to.map(|t| format!("peer `{t}`"))
            .unwrap_or_else(|| "any peer".into()),
    )
}

/// Track ids and kinds a publisher configuration announces.
fn published_tracks(cfg: &PublisherConfig) -> Vec<(&'static str, MediaKind)> {
    use crate::webrtc::publisher::{AudioSource, VideoSource};
    let mut tracks = Vec::new();
    if !matches!(cfg.video, VideoSource::None) {
        tracks.push(("video", MediaKind::Video));
    }
    if !matches!(cfg.audio, AudioSource::None) {
        tracks.push(("audio", MediaKind::Audio));
    }
    tracks
}
