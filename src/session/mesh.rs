//! The mesh topology: one `webrtcbin` peer connection per remote member.
//!
//! - On the server's `welcome`, a connection is built for every member already present; this
//!   side offers to those listed in `offer_to` (the newcomer offers, so offers never cross).
//! - On `peer_joined` a connection is built (answerer when `expect_offer`); on `peer_left` it
//!   is closed.
//! - Offers, answers and ICE candidates are routed by sender to that member's connection, and
//!   each connection's [`SignalOut`] goes back out through the signalling client.
//! - Publishing after join attaches the track set to every connection: the pair's offerer
//!   re-offers; an answerer's `publish` announcement asks its offerer to re-offer
//!   ([`Topology::remote_track`] on the other side).
//! - The offerer of each pair creates the data channel before offering; the answerer receives
//!   it through `on-data-channel`.
//! - Recovery ([`super::recovery`]): every tick, each connection's [`Watch`] decides; a lost
//!   path rebuilds that one member's connection (same role, fresh `webrtcbin`), and an offer
//!   with new ICE credentials rebuilds the answerer's before it is applied.

use std::collections::HashMap;
use std::time::Instant;

use gst::prelude::*;
use gst_webrtc::{WebRTCDataChannel, WebRTCDataChannelState};

use crate::signalling::client::Welcome;
use crate::signalling::protocol::{Grant, Payload, PeerId, PeerInfo, RoomTopology};
use crate::webrtc::MediaKind;
use crate::webrtc::peer::{
    ConnectionState, Peer, PeerConfig, PeerEvent, PeerIo, Role, SignalIn, SignalOut,
};
use crate::webrtc::publisher::Publisher;

use super::config::DATA_CHANNEL_LABEL;
use super::event::{Emitter, SessionError, SessionEvent, Via};
use super::recovery::{Decision, RebuildReason, Recovery, Sample, Watch};
use super::topology::{ConnId, ConnectionPost, Ctx, Topology};

/// One remote member and the connection to it.
struct Member {
    peer: Peer,
    user: String,
    /// Its grants from presence: this side sends it media only if it may `subscribe`.
    grants: Vec<Grant>,
    conn: ConnId,
    /// The pair's data channel, once created (offerer) or received (answerer).
    channel: Option<WebRTCDataChannel>,
    /// [`SessionEvent::DataChannelOpen`] was reported.
    channel_open: bool,
    /// Recovery state, kept across rebuilds of the connection.
    watch: Watch,
}

/// The mesh: a connection per remote member.
#[derive(Default)]
pub(crate) struct Mesh {
    members: HashMap<PeerId, Member>,
}

impl Mesh {
    pub(crate) fn new() -> Self {
        Mesh::default()
    }

    fn add(&mut self, cx: &mut Ctx, member: &PeerInfo, role: Role) {
        let (id, user) = (member.peer_id.as_str(), member.user.as_str());
        if self.members.contains_key(id) {
            return;
        }
        match self.connect(cx, id, user, &member.grants, role) {
            Ok(()) => cx.events.emit(SessionEvent::PeerJoined {
                peer_id: id.to_owned(),
                user: user.to_owned(),
            }),
            Err(e) => cx.error(format!("connecting to peer `{id}`"), e.to_string()),
        }
    }

    /// Open a connection to member `id` (`user`, with `grants` from presence) in `role`.
    fn connect(
        &mut self,
        cx: &mut Ctx,
        id: &str,
        user: &str,
        grants: &[Grant],
        role: Role,
    ) -> Result<(), SessionError> {
        // The server relays media only as the grants allow (docs/protocol.md, "Grants"):
        // expect media from the member only if it may publish and this side may subscribe;
        // send it media only if this side may publish and it may subscribe.
        let wants = cx.settings.subscribe.wants(user)
            && own_grants(cx).contains(&Grant::Subscribe)
            && grants.contains(&Grant::Publish);
        let mut cfg = PeerConfig::new(role);
        cfg.local_addresses = cx.settings.local_addresses.clone();
        cfg.ice_port_range = cx.settings.ice_port_range;
        cfg.ice_transport_policy = cx.settings.ice_transport_policy;
        cfg.ice_tcp = cx.settings.ice_tcp;
        cfg.stun_server = cx.ice.stun.clone();
        cfg.turn_servers = cx.ice.turns.clone();
        cfg.jitter_buffer = cx.settings.jitter_buffer;
        cfg.repair = cx.settings.repair;
        if wants {
            cfg.receive = vec![MediaKind::Video, MediaKind::Audio];
        }
        let (peer, io) = Peer::new(&cx.shared.pipeline, id, cfg)?;
        if let Some(p) = cx.publisher().filter(|_| may_send(cx, grants))
            && let Err(e) = p.attach(&peer)
        {
            let _ = peer.close();
            return Err(e.into());
        }
        if wants {
            cx.shared.subscriber.attach(&peer);
        } else {
            peer.discard_received();
        }
        let conn = cx.new_conn();
        let mut channel = None;
        if cx.settings.data_channel {
            match role {
                Role::Offerer => {
                    let dc = peer.webrtcbin().emit_by_name::<Option<WebRTCDataChannel>>(
                        "create-data-channel",
                        &[&DATA_CHANNEL_LABEL, &None::<gst::Structure>],
                    );
                    match dc {
                        Some(dc) => {
                            hook_channel(cx, id, conn, &dc);
                            channel = Some(dc);
                        }
                        None => cx.error(
                            format!("data channel to peer `{id}`"),
                            "webrtcbin refused create-data-channel".into(),
                        ),
                    }
                }
                Role::Answerer => {
                    let posts = cx.posts.clone();
                    let events = cx.events.clone();
                    let pid = id.to_owned();
                    peer.webrtcbin()
                        .connect("on-data-channel", false, move |v| {
                            let dc = v.get(1)?.get::<WebRTCDataChannel>().ok()?;
                            // Messages are handed to the application from here on, so none
                            // is lost before the actor stores the channel.
                            hook_messages(&events, &pid, &dc);
                            hook_open(&posts, conn, &dc);
                            posts.post(super::actor::Post::Connection(
                                conn,
                                ConnectionPost::DataChannel(dc),
                            ));
                            None
                        });
                }
            }
        }
        cx.stats.watch(&peer);
        spawn_io(cx, id, conn, io);
        self.members.insert(
            id.to_owned(),
            Member {
                peer: peer.clone(),
                user: user.to_owned(),
                grants: grants.to_vec(),
                conn,
                channel,
                channel_open: false,
                watch: Watch::new(Instant::now()),
            },
        );
        if role == Role::Offerer {
            peer.negotiate()?;
        }
        Ok(())
    }

    fn remove(&mut self, cx: &mut Ctx, id: &str) {
        let Some(member) = self.members.remove(id) else {
            return;
        };
        tracing::debug!(peer = %id, user = %member.user, "closing peer");
        teardown(cx, id, &member);
        cx.events.emit(SessionEvent::PeerLeft {
            peer_id: id.to_owned(),
        });
    }

    /// Replace the connection to `id` with a new one of the same role (its path is gone, or
    /// the remote side restarted ICE); the other members are not touched.
    fn rebuild(&mut self, cx: &mut Ctx, id: &str, reason: RebuildReason) {
        let Some(member) = self.members.remove(id) else {
            return;
        };
        let role = member.peer.role();
        let mut watch = member.watch.clone();
        let now = Instant::now();
        if let Some(stalled) = watch.replaced_before_connecting(now) {
            cx.events.emit(SessionEvent::Recovery {
                peer_id: id.to_owned(),
                recovery: stalled,
            });
        }
        let attempt = watch.rebuilding(now);
        tracing::info!(peer = %id, attempt, ?reason, "rebuilding the peer connection");
        teardown(cx, id, &member);
        cx.events.emit(SessionEvent::Recovery {
            peer_id: id.to_owned(),
            recovery: Recovery::Rebuilding { attempt, reason },
        });
        match self.connect(cx, id, &member.user, &member.grants, role) {
            Ok(()) => {
                if let Some(m) = self.members.get_mut(id) {
                    m.watch = watch;
                }
            }
            Err(e) => {
                // Without a connection the member is gone for this session.
                cx.error(
                    format!("rebuilding the connection to peer `{id}`"),
                    e.to_string(),
                );
                cx.events.emit(SessionEvent::PeerLeft {
                    peer_id: id.to_owned(),
                });
            }
        }
    }

    /// The member whose current connection is `conn`.
    fn by_conn(&mut self, conn: ConnId) -> Option<(&PeerId, &mut Member)> {
        self.members.iter_mut().find(|(_, m)| m.conn == conn)
    }
}

impl Topology for Mesh {
    fn kind(&self) -> RoomTopology {
        RoomTopology::Mesh
    }

    fn handover(&mut self, cx: &mut Ctx) -> Vec<(PeerId, String)> {
        let members: Vec<(PeerId, Member)> = self.members.drain().collect();
        members
            .into_iter()
            .map(|(id, m)| {
                teardown(cx, &id, &m);
                (id, m.user)
            })
            .collect()
    }

    /// The server never moves a room back to a mesh; the members' connections come with
    /// their next `peer_joined`/`welcome`.
    fn adopt(&mut self, _cx: &mut Ctx, _members: Vec<(PeerId, String)>) {}

    fn member_present(&mut self, cx: &mut Ctx, member: &PeerInfo, w: &Welcome) {
        let role = if w.offer_to.contains(&member.peer_id) {
            Role::Offerer
        } else {
            Role::Answerer
        };
        self.add(cx, member, role);
    }

    fn member_joined(&mut self, cx: &mut Ctx, member: &PeerInfo, expect_offer: bool) {
        let role = if expect_offer {
            Role::Answerer
        } else {
            Role::Offerer
        };
        self.add(cx, member, role);
    }

    fn member_left(&mut self, cx: &mut Ctx, peer_id: &str) {
        self.remove(cx, peer_id);
    }

    /// If this side offers for the pair, the announcement is the answerer's request for a
    /// re-offer: a new `recvonly` m-line for an announced track this side subscribes to, and
    /// in any case a new offer so the answerer can change its m-lines' directions.
    fn remote_track(&mut self, cx: &mut Ctx, peer_id: &str, kind: Option<MediaKind>) {
        let Some(member) = self.members.get(peer_id) else {
            return;
        };
        if member.peer.role() != Role::Offerer {
            return;
        }
        let receive: Vec<MediaKind> = kind
            .filter(|_| cx.settings.subscribe.wants(&member.user))
            .filter(|_| {
                own_grants(cx).contains(&Grant::Subscribe)
                    && member.grants.contains(&Grant::Publish)
            })
            .into_iter()
            .collect();
        if let Err(e) = member.peer.renegotiate(&receive) {
            cx.error(format!("re-offering to peer `{peer_id}`"), e.to_string());
        }
    }

    fn signal(&mut self, cx: &mut Ctx, from: &str, msg: SignalIn) {
        let what = match &msg {
            SignalIn::Offer { .. } => "offer",
            SignalIn::Answer { .. } => "answer",
            SignalIn::Ice { .. } => "ice",
        };
        if let SignalIn::Offer { sdp } = &msg
            && self
                .members
                .get(from)
                .is_some_and(|m| remote_restarted(&m.peer, sdp))
        {
            self.rebuild(cx, from, RebuildReason::RemoteRestart);
        }
        match self.members.get(from) {
            Some(m) => {
                if let Err(e) = m.peer.apply(msg) {
                    cx.error(format!("{what} from peer `{from}`"), e.to_string());
                }
            }
            None => cx.error(
                format!("{what} from peer `{from}`"),
                "no such peer in this session".into(),
            ),
        }
    }

    fn publish(&mut self, cx: &mut Ctx, publisher: &Publisher) {
        for m in self.members.values().filter(|m| may_send(cx, &m.grants)) {
            let res = publisher
                .attach(&m.peer)
                .and_then(|()| match m.peer.role() {
                    Role::Offerer => m.peer.renegotiate(&[]),
                    // The announcement that follows asks the offerer for a re-offer.
                    Role::Answerer => Ok(()),
                });
            if let Err(e) = res {
                cx.error(
                    format!("publishing to peer `{}`", m.peer.id()),
                    e.to_string(),
                );
            }
        }
    }

    fn unpublish(&mut self, cx: &mut Ctx, publisher: &Publisher) {
        for m in self.members.values() {
            publisher.detach(m.peer.id());
            if m.peer.role() == Role::Offerer
                && let Err(e) = m.peer.renegotiate(&[])
            {
                cx.error(
                    format!("unpublishing towards peer `{}`", m.peer.id()),
                    e.to_string(),
                );
            }
        }
    }

    fn connection(&mut self, cx: &mut Ctx, conn: ConnId, post: ConnectionPost) {
        match post {
            ConnectionPost::Peer(PeerEvent::ConnectionState { peer, state }) => {
                cx.events.emit(SessionEvent::Connection {
                    peer_id: peer,
                    state,
                })
            }
            ConnectionPost::Peer(PeerEvent::EstimatedBitrate { .. }) => {}
            ConnectionPost::Peer(PeerEvent::RemoteTrackEnded { peer, kind, mline }) => {
                let Some((_, m)) = self.by_conn(conn) else {
                    return;
                };
                for pad in m.peer.src_pads_for_mline(mline) {
                    cx.shared.subscriber.release_pad(&peer, &pad);
                }
                cx.tracks.ended(&cx.events, &peer, kind);
            }
            ConnectionPost::Peer(PeerEvent::NegotiationFailed { peer, reason }) => {
                cx.error(format!("negotiation with peer `{peer}`"), reason)
            }
            ConnectionPost::DataChannel(dc) => {
                let Some((id, m)) = self.by_conn(conn) else {
                    return;
                };
                // webrtcbin 1.22 may report the channel open before on-open is connected.
                let open = dc.ready_state() == WebRTCDataChannelState::Open;
                m.channel = Some(dc);
                if open && !m.channel_open {
                    m.channel_open = true;
                    cx.events.emit(SessionEvent::DataChannelOpen {
                        peer_id: id.clone(),
                    });
                }
            }
            ConnectionPost::ChannelOpen => {
                let Some((id, m)) = self.by_conn(conn) else {
                    return;
                };
                if m.channel.is_some() && !m.channel_open {
                    m.channel_open = true;
                    cx.events.emit(SessionEvent::DataChannelOpen {
                        peer_id: id.clone(),
                    });
                }
            }
        }
    }

    fn tick(&mut self, cx: &mut Ctx, now: Instant, addresses_changed: bool) {
        let cfg = cx.settings.recovery.clone();
        let mut rebuild = Vec::new();
        for (id, m) in &mut self.members {
            let offerer = m.peer.role() == Role::Offerer;
            let sample = Sample {
                state: m.peer.connection_state(),
                silence: m.peer.silence(),
                carries_media: m.peer.carries_media(),
                has_transport: m.peer.has_transport(),
            };
            let mut reason =
                (addresses_changed && offerer).then_some(RebuildReason::AddressChanged);
            for d in m.watch.tick(&cfg, now, offerer, sample) {
                match d {
                    Decision::Report(recovery) => cx.events.emit(SessionEvent::Recovery {
                        peer_id: id.clone(),
                        recovery,
                    }),
                    Decision::Rebuild(r) => reason = reason.or(Some(r)),
                }
            }
            if let Some(r) = reason {
                rebuild.push((id.clone(), r));
            }
        }
        for (id, reason) in rebuild {
            self.rebuild(cx, &id, reason);
        }
    }

    fn close_all(&mut self, cx: &mut Ctx) {
        let ids: Vec<PeerId> = self.members.keys().cloned().collect();
        for id in ids {
            self.remove(cx, &id);
        }
    }

    fn members(&self) -> Vec<PeerId> {
        let mut v: Vec<PeerId> = self.members.keys().cloned().collect();
        v.sort();
        v
    }

    fn connection_state(&self, peer_id: &str) -> Option<ConnectionState> {
        self.members.get(peer_id).map(|m| m.peer.connection_state())
    }

    fn repair_counters(&self, peer_id: &str) -> Option<crate::webrtc::repair::RepairCounters> {
        self.members.get(peer_id).map(|m| m.peer.repair_counters())
    }

    fn open_channels(&self, to: Option<&str>) -> Vec<(PeerId, WebRTCDataChannel)> {
        self.members
            .iter()
            .filter(|(id, _)| to.is_none_or(|t| t == id.as_str()))
            .filter_map(|(id, m)| m.channel.clone().map(|c| (id.clone(), c)))
            .filter(|(_, c)| c.ready_state() == WebRTCDataChannelState::Open)
            .collect()
    }
}

/// This session's grants, from its `welcome`.
pub(super) fn own_grants(cx: &Ctx) -> Vec<Grant> {
    cx.shared
        .client
        .welcome()
        .map(|w| w.grants)
        .unwrap_or_default()
}

/// Whether this side may send media to a member with `grants`.
fn may_send(cx: &Ctx, grants: &[Grant]) -> bool {
    own_grants(cx).contains(&Grant::Publish) && grants.contains(&Grant::Subscribe)
}

/// Stop `member`'s connection and everything attached to it (the member stays in the room).
fn teardown(cx: &mut Ctx, id: &str, member: &Member) {
    cx.stats.unwatch(id);
    if let Some(dc) = &member.channel {
        dc.close();
    }
    // Cut the send branches off the tees, stop webrtcbin (its pads flush, so no branch
    // thread is left waiting inside it), then remove the branches: stopping a branch queue
    // while its thread was blocked inside the live webrtcbin deadlocked once in
    // tests/session_publish.rs (see Publisher::cut_off).
    let publisher = cx.publisher().cloned();
    if let Some(p) = &publisher {
        p.cut_off(id);
    }
    if let Err(e) = member.peer.close() {
        cx.error(format!("closing peer `{id}`"), e.to_string());
    }
    if let Some(p) = &publisher {
        p.detach(id);
    }
    cx.shared.subscriber.detach(id);
    cx.tracks.member_gone(&cx.events, id);
}

/// Whether `offer` carries other ICE credentials than the remote description `peer` applied
/// (the remote side restarted ICE, RFC 8839 §4.4.1.1.1, here: rebuilt its connection).
fn remote_restarted(peer: &Peer, offer: &str) -> bool {
    let Some(old) = peer.remote_ice_ufrag() else {
        return false;
    };
    gst_sdp::SDPMessage::parse_buffer(offer.as_bytes())
        .ok()
        .and_then(|m| crate::webrtc::sdp::ice_ufrag(&m))
        .is_some_and(|new| new != old)
}

/// Hand the channel's messages to the application, and tell the actor when it opens.
fn hook_channel(cx: &Ctx, peer_id: &str, conn: ConnId, dc: &WebRTCDataChannel) {
    hook_messages(&cx.events, peer_id, dc);
    hook_open(&cx.posts, conn, dc);
}

fn hook_open(posts: &super::topology::Poster, conn: ConnId, dc: &WebRTCDataChannel) {
    let posts = posts.clone();
    dc.connect_on_open(move |_| {
        posts.post(super::actor::Post::Connection(
            conn,
            ConnectionPost::ChannelOpen,
        ));
    });
}

fn hook_messages(events: &Emitter, peer_id: &str, dc: &WebRTCDataChannel) {
    let ev = events.clone();
    let pid = peer_id.to_owned();
    dc.connect_on_message_string(move |_, s| {
        ev.emit(SessionEvent::Message {
            from: pid.clone(),
            via: Via::DataChannel,
            payload: Payload::Text(s.unwrap_or_default().to_owned()),
        });
    });
    let ev = events.clone();
    let pid = peer_id.to_owned();
    dc.connect_on_message_data(move |_, b| {
        ev.emit(SessionEvent::Message {
            from: pid.clone(),
            via: Via::DataChannel,
            payload: Payload::Binary(b.map(|b| b.to_vec()).unwrap_or_default()),
        });
    });
}

/// Carry the connection's signalling out through the client, and its events to the actor.
pub(super) fn spawn_io(cx: &Ctx, id: &str, conn: ConnId, mut io: PeerIo) {
    let client = cx.shared.client.clone();
    let events = cx.events.clone();
    let to = id.to_owned();
    cx.runtime.spawn(async move {
        while let Some(msg) = io.signals.recv().await {
            let res = match msg {
                SignalOut::Offer { sdp } => client.send_offer(&to, sdp),
                SignalOut::Answer { sdp } => client.send_answer(&to, sdp),
                SignalOut::Ice { mline, candidate } => client.send_ice(&to, candidate, mline, None),
            };
            if let Err(e) = res {
                events.error(format!("signalling to peer `{to}`"), e.to_string());
                break;
            }
        }
    });
    let posts = cx.posts.clone();
    cx.runtime.spawn(async move {
        while let Some(ev) = io.events.recv().await {
            posts.post(super::actor::Post::Connection(
                conn,
                ConnectionPost::Peer(ev),
            ));
        }
    });
}
