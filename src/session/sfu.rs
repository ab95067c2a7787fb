//! The SFU topology: two `webrtcbin` connections, both to the server's SFU, whatever the
//! room's size (docs/sfu.md).
//!
//! - **Publishing** (pseudo-peer `sfu-publish`): opened when the session joins with a track
//!   set, or publishes later, and its token has `publish`. This side offers (one `sendonly`
//!   m-line per track, encoded once as in the mesh); the SFU answers. Unpublishing closes it.
//! - **Subscribing** (pseudo-peer `sfu-subscribe`): opened on the SFU's first offer, which
//!   comes when another member publishes (only to a session whose token has `subscribe`). It
//!   carries every other member's media (Janus multistream); each offer follows an
//!   `sfu_streams` frame naming the member of each m-line, so tracks are reported and counted
//!   under that member's id ([`SessionEvent::TrackAdded`] as in the mesh). The SFU re-offers
//!   as members publish and leave; this side answers each. When media went away and more
//!   comes, the SFU starts a new subscription instead (`sfu_streams` with `fresh`): this side
//!   closes the connection (its tracks end) and answers the offer on a new one.
//! - Members are known from presence only; no data channel (real-time messages go through
//!   the signalling server).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use gst_webrtc::{WebRTCDataChannel, WebRTCRTPTransceiver};
use parking_lot::Mutex;

use crate::signalling::client::Welcome;
use crate::signalling::protocol::{
    Grant, PeerId, PeerInfo, RoomTopology, SFU_PUBLISH, SFU_SUBSCRIBE, SfuStream,
};
use crate::webrtc::MediaKind;
use crate::webrtc::peer::{ConnectionState, Peer, PeerConfig, PeerEvent, Role, SignalIn};
use crate::webrtc::publisher::Publisher;

use super::event::{SessionError, SessionEvent};
use super::mesh::{own_grants, spawn_io};
use super::topology::{ConnId, ConnectionPost, Ctx, Topology};

use gst::prelude::*;

/// One connection to the SFU.
struct Leg {
    peer: Peer,
    conn: ConnId,
}

/// Member of each m-line of the subscribing connection, by `mid`.
type Mids = Arc<Mutex<HashMap<String, PeerId>>>;

/// The SFU topology.
#[derive(Default)]
pub(crate) struct Sfu {
    publishing: Option<Leg>,
    subscribing: Option<Leg>,
    mids: Mids,
    /// The video m-lines of the subscribing connection: `mid` → member.
    video_mids: HashMap<String, PeerId>,
    /// The size the app renders each member's video at ([`Topology::rendered_size`]).
    views: HashMap<PeerId, (u32, u32)>,
    /// Room members (presence), by id, with their user.
    members: BTreeMap<PeerId, String>,
}

impl Sfu {
    pub(crate) fn new() -> Self {
        Sfu::default()
    }

    fn config(cx: &Ctx, role: Role) -> PeerConfig {
        let mut cfg = PeerConfig::new(role);
        cfg.local_addresses = cx.settings.local_addresses.clone();
        cfg.ice_port_range = cx.settings.ice_port_range;
        cfg.ice_transport_policy = cx.settings.ice_transport_policy;
        cfg.ice_tcp = cx.settings.ice_tcp;
        cfg.stun_server = cx.ice.stun.clone();
        cfg.turn_servers = cx.ice.turns.clone();
        cfg.jitter_buffer = cx.settings.jitter_buffer;
        cfg.repair = cx.settings.repair;
        cfg.rtcp_per_medium = true;
        cfg
    }

    /// The connection that carries `peer_id`'s media.
    fn leg_of(&self, peer_id: &str) -> Option<&Leg> {
        match peer_id {
            SFU_PUBLISH => self.publishing.as_ref(),
            SFU_SUBSCRIBE => self.subscribing.as_ref(),
            other if self.members.contains_key(other) => self.subscribing.as_ref(),
            _ => None,
        }
    }

    /// Open the publishing connection for `publisher` and offer.
    fn open_publishing(&mut self, cx: &mut Ctx, publisher: &Publisher) -> Result<(), SessionError> {
        if self.publishing.is_some() || !own_grants(cx).contains(&Grant::Publish) {
            return Ok(());
        }
        let (peer, io) = Peer::new(
            &cx.shared.pipeline,
            SFU_PUBLISH,
            Self::config(cx, Role::Offerer),
        )?;
        if let Err(e) = publisher.attach(&peer) {
            let _ = peer.close();
            return Err(e.into());
        }
        let conn = cx.new_conn();
        cx.stats.watch(&peer);
        spawn_io(cx, SFU_PUBLISH, conn, io);
        self.publishing = Some(Leg {
            peer: peer.clone(),
            conn,
        });
        peer.negotiate()?;
        Ok(())
    }

    fn close_publishing(&mut self, cx: &mut Ctx) {
        let Some(leg) = self.publishing.take() else {
            return;
        };
        cx.stats.unwatch(SFU_PUBLISH);
        let publisher = cx.publisher().cloned();
        if let Some(p) = &publisher {
            p.cut_off(SFU_PUBLISH);
        }
        if let Err(e) = leg.peer.close() {
            cx.error(
                "closing the SFU publishing connection".into(),
                e.to_string(),
            );
        }
        if let Some(p) = &publisher {
            p.detach(SFU_PUBLISH);
        }
    }

    /// The subscribing connection, opened on the SFU's first offer.
    fn subscribing(&mut self, cx: &mut Ctx) -> Result<&Leg, SessionError> {
        if self.subscribing.is_none() {
            let cfg = Self::config(cx, Role::Answerer);
            let (peer, io) = Peer::new(&cx.shared.pipeline, SFU_SUBSCRIBE, cfg)?;
            let mids = self.mids.clone();
            cx.shared.subscriber.attach_mapped(&peer, move |pad| {
                let mid = pad
                    .property::<Option<WebRTCRTPTransceiver>>("transceiver")?
                    .mid()?;
                mids.lock().get(mid.as_str()).cloned()
            });
            let conn = cx.new_conn();
            cx.stats.watch(&peer);
            spawn_io(cx, SFU_SUBSCRIBE, conn, io);
            self.subscribing = Some(Leg { peer, conn });
        }
        self.subscribing
            .as_ref()
            .ok_or_else(|| SessionError::Publishing("no subscribing connection".into()))
    }

    fn close_subscribing(&mut self, cx: &mut Ctx) {
        let Some(leg) = self.subscribing.take() else {
            return;
        };
        cx.stats.unwatch(SFU_SUBSCRIBE);
        if let Err(e) = leg.peer.close() {
            cx.error(
                "closing the SFU subscribing connection".into(),
                e.to_string(),
            );
        }
        self.video_mids.clear();
        let members: Vec<PeerId> = self.mids.lock().drain().map(|(_, p)| p).collect();
        for m in members {
            cx.shared.subscriber.detach(&m);
            cx.tracks.member_gone(&cx.events, &m);
        }
    }

    /// An `sfu_view` for video m-line `mid`, if the app gave its member's rendered size.
    fn send_view(&self, cx: &mut Ctx, mid: &str) {
        let Some((w, h)) = self.video_mids.get(mid).and_then(|p| self.views.get(p)) else {
            return;
        };
        if let Err(e) = cx.shared.client.sfu_view(mid, *w, *h) {
            cx.error(
                format!("sending the rendered size of `{mid}`"),
                e.to_string(),
            );
        }
    }

    /// The member whose media m-line `mline` of the subscribing connection carries.
    fn member_of_mline(&self, mline: u32) -> Option<PeerId> {
        let leg = self.subscribing.as_ref()?;
        let pads = leg.peer.src_pads_for_mline(mline);
        let mid = pads.first().and_then(|p| {
            p.property::<Option<WebRTCRTPTransceiver>>("transceiver")?
                .mid()
        })?;
        self.mids.lock().get(mid.as_str()).cloned()
    }

    fn leg(&self, conn: ConnId) -> Option<&Leg> {
        [&self.publishing, &self.subscribing]
            .into_iter()
            .flatten()
            .find(|l| l.conn == conn)
    }
}

impl Topology for Sfu {
    fn kind(&self) -> RoomTopology {
        RoomTopology::Sfu
    }

    fn handover(&mut self, cx: &mut Ctx) -> Vec<(PeerId, String)> {
        self.close_publishing(cx);
        self.close_subscribing(cx);
        std::mem::take(&mut self.members).into_iter().collect()
    }

    fn adopt(&mut self, cx: &mut Ctx, members: Vec<(PeerId, String)>) {
        self.members.extend(members);
        if let Some(p) = cx.publisher().cloned()
            && let Err(e) = self.open_publishing(cx, &p)
        {
            cx.error("publishing to the SFU".into(), e.to_string());
        }
    }

    fn member_present(&mut self, cx: &mut Ctx, member: &PeerInfo, _w: &Welcome) {
        self.member_joined(cx, member, false);
    }

    fn member_joined(&mut self, cx: &mut Ctx, member: &PeerInfo, _expect_offer: bool) {
        if self
            .members
            .insert(member.peer_id.clone(), member.user.clone())
            .is_none()
        {
            cx.events.emit(SessionEvent::PeerJoined {
                peer_id: member.peer_id.clone(),
                user: member.user.clone(),
            });
        }
    }

    fn member_left(&mut self, cx: &mut Ctx, peer_id: &str) {
        self.views.remove(peer_id);
        if self.members.remove(peer_id).is_some() {
            // Its m-lines go inactive in the SFU's next offer (their pads are released
            // then); its tracks are gone now.
            cx.tracks.member_gone(&cx.events, peer_id);
            cx.events.emit(SessionEvent::PeerLeft {
                peer_id: peer_id.to_owned(),
            });
        }
    }

    /// The SFU subscribes this session to every publishing member by itself.
    fn remote_track(&mut self, _cx: &mut Ctx, _peer_id: &str, _kind: Option<MediaKind>) {}

    fn welcomed(&mut self, cx: &mut Ctx, _w: &Welcome) {
        if let Some(p) = cx.publisher().cloned()
            && let Err(e) = self.open_publishing(cx, &p)
        {
            cx.error("publishing to the SFU".into(), e.to_string());
        }
    }

    fn sfu_streams(&mut self, cx: &mut Ctx, streams: Vec<SfuStream>, fresh: bool) {
        if fresh {
            // The SFU replaced this session's subscription: the next offer is for a new
            // connection; the current one's tracks end.
            self.close_subscribing(cx);
        }
        let mut fresh_video = Vec::new();
        {
            let mut mids = self.mids.lock();
            for s in streams {
                if s.kind == "video"
                    && self
                        .video_mids
                        .insert(s.mid.clone(), s.peer_id.clone())
                        .as_ref()
                        != Some(&s.peer_id)
                {
                    fresh_video.push(s.mid.clone());
                }
                mids.insert(s.mid, s.peer_id);
            }
        }
        // The sizes the app gave hold for the member's new m-lines too.
        for mid in fresh_video {
            self.send_view(cx, &mid);
        }
    }

    fn rendered_size(&mut self, cx: &mut Ctx, peer: &str, size: (u32, u32)) {
        self.views.insert(peer.to_owned(), size);
        let mids: Vec<String> = self
            .video_mids
            .iter()
            .filter(|(_, p)| p.as_str() == peer)
            .map(|(m, _)| m.clone())
            .collect();
        for mid in mids {
            self.send_view(cx, &mid);
        }
    }

    fn signal(&mut self, cx: &mut Ctx, from: &str, msg: SignalIn) {
        let res = match (from, &msg) {
            (SFU_PUBLISH, _) => match &self.publishing {
                Some(l) => l.peer.apply(msg).map_err(SessionError::from),
                None => Ok(()),
            },
            (SFU_SUBSCRIBE, _) => self
                .subscribing(cx)
                .and_then(|l| l.peer.apply(msg).map_err(SessionError::from)),
            _ => Err(SessionError::Publishing(format!(
                "signalling from `{from}` in an SFU room (only `{SFU_PUBLISH}` and `{SFU_SUBSCRIBE}` signal)"
            ))),
        };
        if let Err(e) = res {
            cx.error(format!("signal from `{from}`"), e.to_string());
        }
    }

    fn publish(&mut self, cx: &mut Ctx, publisher: &Publisher) {
        if let Err(e) = self.open_publishing(cx, publisher) {
            cx.error("publishing to the SFU".into(), e.to_string());
        }
    }

    fn unpublish(&mut self, cx: &mut Ctx, _publisher: &Publisher) {
        self.close_publishing(cx);
    }

    fn connection(&mut self, cx: &mut Ctx, conn: ConnId, post: ConnectionPost) {
        let Some(leg) = self.leg(conn) else {
            return;
        };
        let id = leg.peer.id().to_owned();
        match post {
            ConnectionPost::Peer(PeerEvent::ConnectionState { state, .. }) => cx
                .events
                .emit(SessionEvent::Connection { peer_id: id, state }),
            ConnectionPost::Peer(PeerEvent::RemoteTrackEnded { kind, mline, .. }) => {
                let Some(member) = self.member_of_mline(mline) else {
                    return;
                };
                if let Some(leg) = &self.subscribing {
                    for pad in leg.peer.src_pads_for_mline(mline) {
                        cx.shared.subscriber.release_pad(&member, &pad);
                    }
                }
                cx.tracks.ended(&cx.events, &member, kind);
            }
            ConnectionPost::Peer(PeerEvent::NegotiationFailed { reason, .. }) => {
                cx.error(format!("negotiation with `{id}`"), reason)
            }
            ConnectionPost::Peer(PeerEvent::EstimatedBitrate { .. })
            | ConnectionPost::DataChannel(_)
            | ConnectionPost::ChannelOpen => {}
        }
    }

    fn tick(&mut self, _cx: &mut Ctx, _now: Instant, _addresses_changed: bool) {}

    fn close_all(&mut self, cx: &mut Ctx) {
        self.close_publishing(cx);
        self.close_subscribing(cx);
        let members = std::mem::take(&mut self.members);
        for id in members.into_keys() {
            cx.tracks.member_gone(&cx.events, &id);
            cx.events.emit(SessionEvent::PeerLeft { peer_id: id });
        }
    }

    fn members(&self) -> Vec<PeerId> {
        self.members.keys().cloned().collect()
    }

    fn connection_state(&self, peer_id: &str) -> Option<ConnectionState> {
        self.leg_of(peer_id).map(|l| l.peer.connection_state())
    }

    fn repair_counters(&self, peer_id: &str) -> Option<crate::webrtc::repair::RepairCounters> {
        self.leg_of(peer_id).map(|l| l.peer.repair_counters())
    }

    fn open_channels(&self, _to: Option<&str>) -> Vec<(PeerId, WebRTCDataChannel)> {
        Vec::new()
    }
}
