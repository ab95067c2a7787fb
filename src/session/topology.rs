//! The seam between the session actor and the layout of its media connections.
//!
//! The actor ([`super::actor`]) owns everything a session holds and drives a [`Topology`]
//! with what happens in the room (welcome, members joining and leaving, signalling messages,
//! local publish/unpublish, events of the connections it built). The topology decides which
//! peer connections exist, who offers, and where offers, answers and ICE candidates go; it
//! builds them with the shared parts the actor lends it in a [`Ctx`]. Today's topology is the
//! mesh ([`super::mesh::Mesh`]: one connection per remote member); an SFU topology (one
//! publishing and one subscribing connection to a pseudo-peer) plugs in beside it without
//! changing the session's public API.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use gst_webrtc::WebRTCDataChannel;
use tokio::sync::mpsc::UnboundedSender;

use crate::signalling::client::Welcome;
use crate::signalling::protocol::{PeerId, PeerInfo, RoomTopology, SfuStream};
use crate::webrtc::MediaKind;
use crate::webrtc::peer::{ConnectionState, PeerEvent, SignalIn};
use crate::webrtc::publisher::{Publisher, PublisherConfig};
use crate::webrtc::stats::StatsCollector;

use super::Shared;
use super::actor::{Msg, Post};
use super::config::ConnectionSettings;
use super::event::{Emitter, SessionEvent};
use super::ice::IceServers;

/// Identifies one peer connection a topology built, for the lifetime of the session: events
/// of a connection that was closed (or replaced by a new one to the same member) are
/// recognised as stale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct ConnId(pub u64);

/// Posts into the actor's queue. Never blocks: GStreamer callbacks (streaming threads,
/// webrtcbin signals) use it, and nothing they run may wait for the actor.
#[derive(Debug, Clone)]
pub(crate) struct Poster(UnboundedSender<Msg>);

impl Poster {
    pub(crate) fn new(tx: UnboundedSender<Msg>) -> Self {
        Poster(tx)
    }

    /// Queue `post` for the actor (dropped if the actor has ended); whether it was queued.
    pub(crate) fn post(&self, post: Post) -> bool {
        self.0.send(Msg::Post(post)).is_ok()
    }
}

/// Media kinds received from each remote member (what [`SessionEvent::TrackAdded`] reported
/// and no [`SessionEvent::TrackRemoved`] withdrew yet).
#[derive(Debug, Default)]
pub(crate) struct RemoteTracks(HashMap<PeerId, HashSet<MediaKind>>);

impl RemoteTracks {
    /// Media of `kind` started arriving from `peer`.
    pub(crate) fn added(&mut self, peer: &str, kind: MediaKind) {
        self.0.entry(peer.to_owned()).or_default().insert(kind);
    }

    /// `peer` stopped sending `kind`: reports [`SessionEvent::TrackRemoved`] if it was known.
    pub(crate) fn ended(&mut self, events: &Emitter, peer: &str, kind: MediaKind) {
        let had = self
            .0
            .get_mut(peer)
            .is_some_and(|kinds| kinds.remove(&kind));
        if had {
            events.emit(SessionEvent::TrackRemoved {
                peer_id: peer.to_owned(),
                kind,
            });
        }
    }

    /// `peer` is gone: reports [`SessionEvent::TrackRemoved`] for each of its tracks.
    pub(crate) fn member_gone(&mut self, events: &Emitter, peer: &str) {
        for kind in self.0.remove(peer).unwrap_or_default() {
            events.emit(SessionEvent::TrackRemoved {
                peer_id: peer.to_owned(),
                kind,
            });
        }
    }
}

/// What the actor owns besides the topology, lent to it for each call.
pub(crate) struct Ctx {
    /// Pipeline, subscriber, signalling client (shared with the handle).
    pub shared: Arc<Shared>,
    /// Samples every connection's statistics.
    pub stats: StatsCollector,
    /// Settings of every new connection.
    pub settings: ConnectionSettings,
    /// ICE servers of every new connection (from the last join reply and the configuration).
    pub ice: IceServers,
    /// The published track set, if any.
    pub publisher: Option<(Publisher, PublisherConfig)>,
    /// Remote tracks being received.
    pub tracks: RemoteTracks,
    /// The application's event channel.
    pub events: Emitter,
    /// The actor's own queue, for callbacks.
    pub posts: Poster,
    /// Runtime of the forwarding tasks (signalling out, connection events in).
    pub runtime: tokio::runtime::Handle,
    /// The last [`ConnId`] given out ([`Ctx::new_conn`]).
    pub last_conn: u64,
}

impl Ctx {
    /// A [`ConnId`] never given out before in this session, whatever the topology: events
    /// of a connection a replaced topology built are then never taken for its successor's.
    pub(crate) fn new_conn(&mut self) -> ConnId {
        self.last_conn += 1;
        ConnId(self.last_conn)
    }

    /// The published track set, if any.
    pub(crate) fn publisher(&self) -> Option<&Publisher> {
        self.publisher.as_ref().map(|(p, _)| p)
    }

    /// Report a problem with one peer or message; the session continues.
    pub(crate) fn error(&self, context: String, detail: String) {
        self.events.error(context, detail);
    }
}

/// A post about one connection of the topology.
#[derive(Debug)]
pub(crate) enum ConnectionPost {
    /// An event of the connection's [`Peer`](crate::webrtc::peer::Peer).
    Peer(PeerEvent),
    /// The remote side opened a data channel (answerer).
    DataChannel(WebRTCDataChannel),
    /// The connection's data channel reported `open`.
    ChannelOpen,
}

/// How the session's media connections are laid out. Every method runs on the actor, which
/// serialises them with each other and with teardown.
pub(crate) trait Topology: Send {
    /// Which room topology this is.
    fn kind(&self) -> RoomTopology;
    /// The session (re-)joined; called after [`Topology::member_present`] for every member.
    fn welcomed(&mut self, _cx: &mut Ctx, _w: &Welcome) {}
    /// The room moves to another topology: close every connection (their tracks end) and
    /// return the members, (peer id, user), which stay in the room.
    fn handover(&mut self, cx: &mut Ctx) -> Vec<(PeerId, String)>;
    /// Take over `members` from the previous topology (no `PeerJoined`: they were there) and
    /// connect as this topology does.
    fn adopt(&mut self, cx: &mut Ctx, members: Vec<(PeerId, String)>);
    /// The server said whose media the m-lines of the SFU's next offer carry; `fresh`: that
    /// offer opens a new subscribing connection.
    fn sfu_streams(&mut self, _cx: &mut Ctx, _streams: Vec<SfuStream>, _fresh: bool) {}
    /// The app renders `peer`'s video at `size` (an SFU picks the simulcast layer by it; a
    /// mesh receives one layer whatever the size).
    fn rendered_size(&mut self, _cx: &mut Ctx, _peer: &str, _size: (u32, u32)) {}
    /// A member that was in the room when this session (re-)joined. `w` is the join reply.
    fn member_present(&mut self, cx: &mut Ctx, member: &PeerInfo, w: &Welcome);
    /// A member joined after this session; `expect_offer`: the server told it to offer.
    fn member_joined(&mut self, cx: &mut Ctx, member: &PeerInfo, expect_offer: bool);
    /// A member left the room.
    fn member_left(&mut self, cx: &mut Ctx, peer_id: &str);
    /// A member announced a track of `kind` (`Some`) or withdrew one (`None`).
    fn remote_track(&mut self, cx: &mut Ctx, peer_id: &str, kind: Option<MediaKind>);
    /// An offer, answer or ICE candidate arrived from `from` through signalling.
    fn signal(&mut self, cx: &mut Ctx, from: &str, msg: SignalIn);
    /// The local track set `publisher` was just created and started: send it.
    fn publish(&mut self, cx: &mut Ctx, publisher: &Publisher);
    /// The local track set `publisher` is withdrawn (it is stopped right after).
    fn unpublish(&mut self, cx: &mut Ctx, publisher: &Publisher);
    /// Something happened on connection `conn` (it may be closed by now).
    fn connection(&mut self, cx: &mut Ctx, conn: ConnId, post: ConnectionPost);
    /// Periodic look at every connection (recovery of lost paths); `addresses_changed`: an
    /// address of this machine appeared or disappeared since the last tick.
    fn tick(&mut self, cx: &mut Ctx, now: std::time::Instant, addresses_changed: bool);
    /// Close every connection (a fresh re-join, or the session ends).
    fn close_all(&mut self, cx: &mut Ctx);
    /// Remote members this session exchanges media with, sorted.
    fn members(&self) -> Vec<PeerId>;
    /// State of the connection that carries `peer_id`'s media.
    fn connection_state(&self, peer_id: &str) -> Option<ConnectionState>;
    /// Loss-repair counters of the connection that carries `peer_id`'s media.
    fn repair_counters(&self, peer_id: &str) -> Option<crate::webrtc::repair::RepairCounters>;
    /// Open data channels to `to` (`None`: every member).
    fn open_channels(&self, to: Option<&str>) -> Vec<(PeerId, WebRTCDataChannel)>;
}
