//! One Streamwire room on the SFU: a task that owns the room's Janus VideoRoom (one on each
//! instance the room spans, [`super::cascade`]) and every member's handles, and handles, one
//! at a time, members joining and leaving, the frames they send to the pseudo-peers, and the
//! events Janus sends on its own. Each member is served by one instance of the room.
//!
//! - A member with `publish` that offers to `sfu-publish` gets a publisher handle (joined
//!   with its peer id as the display name); its offer goes to Janus in `publish` (later
//!   `configure`), Janus's answer back `from` `sfu-publish`. A member without `publish` is
//!   refused: it never reaches Janus.
//! - A member with `subscribe` gets one subscriber handle carrying every other member's feed
//!   (Janus multistream): created with the feeds published when it is first needed, extended
//!   with `subscribe` as members publish. Janus offers; the offer goes out `from`
//!   `sfu-subscribe` after an `sfu_streams` frame saying whose media each m-line carries; the
//!   member's answer goes to Janus in `start`. One negotiation at a time: feeds published
//!   while an offer waits for its answer are subscribed after it ([`super::subscription`]).
//! - Losing an instance of the room: [`super::recovery`].

use std::collections::HashMap;
use std::sync::Weak;

use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

use super::downlink::DOWNLINK_POLL;
use super::janus::{HandleEvent, Janus, JanusError};
use super::layers::StreamLayer;
use super::status::RoomStatus;
use super::{Bridge, RECONNECT_INTERVAL, SfuAdmin};
use crate::signalling::protocol::ErrorCode;
use crate::signalling::protocol::{Grant, PeerId, SFU_PUBLISH, SFU_SUBSCRIBE, ServerMsg};
use crate::signalling::service::{Outbox, PseudoPeerSignal, ServiceError, SfuMember};

/// A command for a room's task.
pub(super) enum Cmd {
    Joined(SfuMember),
    Left(PeerId),
    Signal {
        peer: PeerId,
        to: String,
        signal: PseudoPeerSignal,
        reply: oneshot::Sender<Result<(), ServiceError>>,
    },
    /// What `/sfu/status` shows of the room.
    Status(oneshot::Sender<RoomStatus>),
    /// A member's camera capture size now (from its announced tracks).
    Camera(PeerId, Option<(u32, u32)>),
    /// A member renders `mid` of its subscription at `width`×`height`.
    View {
        peer: PeerId,
        mid: String,
        width: u32,
        height: u32,
    },
}

pub(super) struct Subscription {
    pub handle: u64,
    /// An offer went out and its answer has not come yet.
    pub awaiting_answer: bool,
    /// Feeds to subscribe to once the answer came.
    pub queued: Vec<u64>,
    /// The subscriber joined (Janus offered at least once).
    pub started: bool,
    /// Media streams (m-lines) of Janus's last offer that carry a member's media.
    pub streams: usize,
    /// The feeds it carries (subscribed, not gone).
    pub feeds: Vec<u64>,
    /// A feed of it went away, leaving m-lines Janus would reuse for the next feed; the
    /// next feed gets a new subscription instead (see [`State::subscribe`]).
    pub holes: bool,
    /// Its simulcast video streams by `mid`: the layer each forwards ([`super::layers`]).
    pub layers: HashMap<String, StreamLayer>,
}

pub(super) struct Member {
    pub grants: Vec<Grant>,
    pub outbox: Outbox,
    /// Janus feed id of this member's publisher: the same on every instance of the room
    /// (the remote publishers of other instances carry it too).
    pub feed: u64,
    /// The instance serving the member; `None` while the room is down.
    pub instance: Option<usize>,
    /// Publisher handle, once the member offered.
    pub publisher: Option<u64>,
    pub published: bool,
    /// A subscription was offered to it on its current SFU connections (a further join
    /// offer opens a new subscribing connection: `sfu_streams` `fresh`).
    pub subscribed_before: bool,
    /// The publication's streams as Janus holds them (`type`, `mindex`, `mid`, `codec`), the
    /// description a remote publisher of it needs on another instance.
    pub streams: Vec<Value>,
    pub subscription: Option<Subscription>,
    /// The capture size of its camera track (`width`×`height` of its video `publish`), which
    /// its full simulcast layer has.
    pub camera: Option<(u32, u32)>,
}

/// The room on one Janus instance.
pub(super) struct Span {
    /// Index in the configured instances.
    pub instance: usize,
    pub janus: Janus,
    /// Control handle (room create/destroy, remote publishers), while the Janus room exists.
    pub control: Option<u64>,
}

pub(super) struct RoomTask {
    pub name: String,
    /// The instance the room starts on.
    pub instance: usize,
    pub janus: Janus,
    pub janus_room: u64,
    pub admin_key: String,
    pub bridge: Weak<Bridge>,
    pub cmds: mpsc::UnboundedReceiver<Cmd>,
    pub next_feed: u64,
    /// The instances' Admin API, if configured: simulcast layers then follow each
    /// subscriber's downlink losses ([`super::downlink`]).
    pub admin: Option<SfuAdmin>,
}

pub(super) struct State {
    pub task: RoomTask,
    /// The instances the room is on; the first is where it was created. Empty while down.
    pub spans: Vec<Span>,
    pub members: HashMap<PeerId, Member>,
    /// For each feed published on one instance: the other instances holding a remote
    /// publisher of it (its media forwarded there).
    pub remotes: HashMap<u64, Vec<usize>>,
    pub events_tx: mpsc::UnboundedSender<HandleEvent>,
    /// Every instance of the room was lost and the room is not re-created yet.
    pub down: bool,
    /// Times the room was re-created after its instance was lost.
    pub recreated: u64,
    /// A reading of the subscribers' downlinks is under way ([`super::downlink`]).
    pub downlink_reading: bool,
}

/// How often simulcast layers are looked at for probes and unanswered layer changes
/// ([`super::layers`]).
const LAYER_TICK: std::time::Duration = std::time::Duration::from_millis(250);

pub(super) fn failed(e: JanusError) -> ServiceError {
    tracing::warn!(error = %e, "SFU request failed");
    ServiceError::Failed(e.to_string())
}

impl RoomTask {
    /// Run until the room is empty and no command is queued.
    pub(super) async fn run(self) {
        let (events_tx, mut events) = mpsc::unbounded_channel();
        let Some(mut reconnected) = self.bridge.upgrade().map(|b| b.reconnected.subscribe()) else {
            return;
        };
        let first = Span {
            instance: self.instance,
            janus: self.janus.clone(),
            control: None,
        };
        let mut st = State {
            task: self,
            spans: vec![first],
            members: HashMap::new(),
            remotes: HashMap::new(),
            events_tx,
            down: false,
            recreated: 0,
            downlink_reading: false,
        };
        let mut layer_tick = tokio::time::interval(LAYER_TICK);
        layer_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut downlink_tick = tokio::time::interval(DOWNLINK_POLL);
        downlink_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let (read_tx, mut read) = mpsc::unbounded_channel();
        let admin = st.task.admin.clone();
        loop {
            let watched: Vec<(usize, Janus)> = st
                .spans
                .iter()
                .map(|s| (s.instance, s.janus.clone()))
                .collect();
            let lost = async move {
                if watched.is_empty() {
                    return std::future::pending().await;
                }
                let each = watched.into_iter().map(|(i, j)| {
                    Box::pin(async move {
                        j.lost().await;
                        i
                    })
                });
                futures::future::select_all(each).await.0
            };
            tokio::select! {
                cmd = st.task.cmds.recv() => {
                    let Some(cmd) = cmd else { break };
                    st.command(cmd).await;
                    if st.members.is_empty() && st.close_if_idle().await {
                        break;
                    }
                }
                Some((handle, ev)) = events.recv() => st.janus_event(handle, ev).await,
                i = lost, if !st.down => st.instance_lost(i).await,
                // While down: as soon as an instance is back, and every second (an instance
                // may be connected but have refused to create the room).
                _ = reconnected.changed(), if st.down => st.recover().await,
                () = tokio::time::sleep(RECONNECT_INTERVAL), if st.down => st.recover().await,
                _ = layer_tick.tick(), if st.has_simulcast() => st.probe_layers().await,
                _ = downlink_tick.tick(), if admin.is_some() && st.has_simulcast() => {
                    if let Some(admin) = &admin {
                        st.read_downlinks(admin, &read_tx);
                    }
                }
                Some(reading) = read.recv() => st.downlinks_read(reading).await,
            }
        }
    }
}

impl State {
    async fn command(&mut self, cmd: Cmd) {
        match cmd {
            Cmd::Joined(m) => self.joined(m).await,
            Cmd::Left(peer) => self.left(&peer).await,
            Cmd::Signal {
                peer,
                to,
                signal,
                reply,
            } => {
                let r = self.signal(&peer, &to, signal).await;
                let _ = reply.send(r);
            }
            Cmd::Status(reply) => {
                let _ = reply.send(self.status());
            }
            Cmd::Camera(peer, size) => {
                if let Some(m) = self.members.get_mut(&peer) {
                    m.camera = size;
                }
            }
            Cmd::View {
                peer,
                mid,
                width,
                height,
            } => self.view(&peer, &mid, width, height).await,
        }
    }

    /// The connection to instance `i`, if the room is on it.
    pub(super) fn janus_at(&self, i: usize) -> Option<Janus> {
        self.spans
            .iter()
            .find(|s| s.instance == i)
            .map(|s| s.janus.clone())
    }

    /// The connection to the instance serving `peer`.
    pub(super) fn janus_of(&self, peer: &str) -> Option<Janus> {
        self.janus_at(self.members.get(peer)?.instance?)
    }

    /// Create the Janus room on instance `i` of the room if it does not exist there yet.
    pub(super) async fn ensure_room(&mut self, i: usize) -> Result<(), JanusError> {
        let Some(span) = self.spans.iter().find(|s| s.instance == i) else {
            return Err(JanusError::Connection {
                url: format!("instance {i}"),
                detail: "the room is not on this instance".into(),
            });
        };
        if span.control.is_some() {
            return Ok(());
        }
        let janus = span.janus.clone();
        let handle = janus.attach(self.events_tx.clone()).await?;
        let body = json!({
            "request": "create",
            "room": self.task.janus_room,
            "admin_key": self.task.admin_key,
            "description": self.task.name,
            "is_private": true,
            "publishers": 1000,
            "videocodec": "vp8,h264",
            "audiocodec": "opus",
            "notify_joining": false,
        });
        if let Err(e) = janus.message(handle, body, None).await {
            janus.detach(handle).await;
            return Err(e);
        }
        tracing::info!(room = %self.task.name, janus_room = self.task.janus_room, url = janus.url(), "SFU room created");
        if let Some(span) = self.spans.iter_mut().find(|s| s.instance == i) {
            span.control = Some(handle);
        }
        Ok(())
    }

    async fn joined(&mut self, m: SfuMember) {
        let instance = if self.down { None } else { self.place().await };
        self.task.next_feed += 1;
        let feed = self.task.next_feed;
        let peer = m.peer_id.clone();
        self.members.insert(
            peer.clone(),
            Member {
                grants: m.grants,
                outbox: m.outbox,
                feed,
                instance,
                publisher: None,
                published: false,
                subscribed_before: false,
                streams: Vec::new(),
                subscription: None,
                camera: super::layers::camera_size(&m.tracks),
            },
        );
        self.report_load();
        let feeds = self.published_feeds_for(&peer);
        if !feeds.is_empty() {
            self.subscribe(&peer, feeds).await;
        }
    }

    /// The feeds `peer` can subscribe to on its instance: the other members' publications
    /// there, and the remote publishers of those elsewhere.
    pub(super) fn published_feeds_for(&self, peer: &str) -> Vec<u64> {
        let Some(at) = self.members.get(peer).and_then(|m| m.instance) else {
            return Vec::new();
        };
        self.members
            .iter()
            .filter(|(id, m)| id.as_str() != peer && m.published)
            .filter(|(_, m)| {
                m.instance == Some(at) || self.remotes.get(&m.feed).is_some_and(|t| t.contains(&at))
            })
            .map(|(_, m)| m.feed)
            .collect()
    }

    async fn left(&mut self, peer: &str) {
        let Some(m) = self.members.remove(peer) else {
            return;
        };
        if let Some(janus) = m.instance.and_then(|i| self.janus_at(i)) {
            if let Some(h) = m.publisher {
                janus.detach(h).await;
            }
            if let Some(s) = m.subscription {
                janus.detach(s.handle).await;
            }
        }
        self.unforward(m.feed).await;
        if !self.members.is_empty() {
            self.drop_empty_spans().await;
        }
        self.report_load();
    }

    /// With no member left: destroy the Janus rooms and, if nothing is queued, end the task
    /// (true). The bridge's room table is locked while deciding, so a member joining now
    /// either reaches this task first or finds no task and starts a new one.
    async fn close_if_idle(&mut self) -> bool {
        for span in &mut self.spans {
            if let Some(h) = span.control.take() {
                destroy(&span.janus, h, self.task.janus_room, &self.task.admin_key).await;
                tracing::info!(room = %self.task.name, url = span.janus.url(),
                               "SFU room destroyed (empty)");
            }
        }
        let Some(bridge) = self.task.bridge.upgrade() else {
            return true;
        };
        let mut rooms = bridge.rooms.lock();
        if !self.task.cmds.is_empty() {
            return false;
        }
        rooms.remove(&self.task.name);
        self.task.cmds.close();
        true
    }

    async fn signal(
        &mut self,
        peer: &str,
        to: &str,
        signal: PseudoPeerSignal,
    ) -> Result<(), ServiceError> {
        let Some(m) = self.members.get(peer) else {
            return Err(ServiceError::Failed(format!(
                "peer `{peer}` is not a member of this SFU room"
            )));
        };
        let Some(janus) = self.janus_of(peer) else {
            return Err(ServiceError::Failed(
                "the SFU room is being re-created (its instance was lost); wait for `topology`"
                    .into(),
            ));
        };
        match (to, signal) {
            (SFU_PUBLISH, PseudoPeerSignal::Offer(sdp)) => self.publish(peer, sdp).await,
            (SFU_PUBLISH, PseudoPeerSignal::Ice { candidate, mline }) => match m.publisher {
                Some(h) => {
                    tracing::debug!(peer, candidate, mline, "trickle to the SFU");
                    janus.trickle(h, ice(&candidate, mline));
                    Ok(())
                }
                None => Err(invalid("to", "no offer was sent to `sfu-publish` yet")),
            },
            (SFU_SUBSCRIBE, PseudoPeerSignal::Answer(sdp)) => self.answered(peer, sdp).await,
            (SFU_SUBSCRIBE, PseudoPeerSignal::Ice { candidate, mline }) => {
                match m.subscription.as_ref().map(|s| s.handle) {
                    Some(h) => {
                        janus.trickle(h, ice(&candidate, mline));
                        Ok(())
                    }
                    None => Err(invalid("to", "`sfu-subscribe` sent no offer to this peer")),
                }
            }
            (SFU_PUBLISH, PseudoPeerSignal::Answer(_)) => Err(invalid(
                "to",
                "`sfu-publish` answers, it takes no answer (answer `sfu-subscribe`'s offers)",
            )),
            (_, PseudoPeerSignal::Offer(_)) => Err(invalid(
                "to",
                "`sfu-subscribe` offers, it takes no offer (offer to `sfu-publish`)",
            )),
            (other, _) => Err(invalid("to", &format!("unknown SFU pseudo-peer `{other}`"))),
        }
    }

    /// A member's offer on its publishing connection.
    async fn publish(&mut self, peer: &str, sdp: String) -> Result<(), ServiceError> {
        let (Some(instance), Some(janus)) = (
            self.members.get(peer).and_then(|m| m.instance),
            self.janus_of(peer),
        ) else {
            return Err(ServiceError::Failed(
                "the SFU room is being re-created (its instance was lost); wait for `topology`"
                    .into(),
            ));
        };
        let janus_room = self.task.janus_room;
        self.ensure_room(instance).await.map_err(failed)?;
        let events = self.events_tx.clone();
        let Some(m) = self.members.get_mut(peer) else {
            return Ok(());
        };
        if !m.grants.contains(&Grant::Publish) {
            return Err(ServiceError::Refused {
                code: ErrorCode::Forbidden,
                reason:
                    "publishing through the SFU needs the `publish` grant, which your token lacks"
                        .into(),
                field: Some("sdp"),
            });
        }
        let handle = match m.publisher {
            Some(h) => h,
            None => {
                let h = janus.attach(events).await.map_err(failed)?;
                let body = json!({"request": "join", "ptype": "publisher", "room": janus_room,
                                  "id": m.feed, "display": peer});
                if let Err(e) = janus.message(h, body, None).await {
                    janus.detach(h).await;
                    return Err(failed(e));
                }
                m.publisher = Some(h);
                h
            }
        };
        let request = if m.published { "configure" } else { "publish" };
        let reply = janus
            .message(
                handle,
                json!({"request": request}),
                Some(json!({"type": "offer", "sdp": sdp})),
            )
            .await
            .map_err(failed)?;
        let Some(answer) = reply.jsep.as_ref().and_then(|j| j["sdp"].as_str()) else {
            return Err(ServiceError::Failed(format!(
                "Janus answered `{request}` without an SDP answer"
            )));
        };
        tracing::debug!(peer, sdp = answer, "SFU answer");
        m.streams = super::cascade::published_streams(answer);
        (m.outbox)(ServerMsg::Answer {
            n: 0,
            from: SFU_PUBLISH.into(),
            sdp: answer.to_owned(),
        });
        Ok(())
    }

    /// `peer`'s publishing connection is up (Janus's `webrtcup`): Janus accepts
    /// subscriptions to its feed only from now on.
    async fn media_up(&mut self, peer: &str) {
        let Some(m) = self.members.get_mut(peer) else {
            return;
        };
        if m.published {
            return;
        }
        m.published = true;
        let (feed, at) = (m.feed, m.instance);
        let subscribers: Vec<PeerId> = self
            .members
            .iter()
            .filter(|(id, o)| id.as_str() != peer && o.instance == at)
            .map(|(id, _)| id.clone())
            .collect();
        for s in subscribers {
            self.subscribe(&s, vec![feed]).await;
        }
        let others: Vec<usize> = self
            .spans
            .iter()
            .map(|s| s.instance)
            .filter(|i| Some(*i) != at)
            .collect();
        for to in others {
            self.forward(peer, to).await;
        }
    }

    /// Something Janus sent on its own: a publishing connection is up (`webrtcup`), or a new
    /// offer on a subscribing connection (a feed went away) goes to its member.
    async fn janus_event(&mut self, handle: u64, ev: Value) {
        if ev["janus"] == "webrtcup" {
            let publisher = self
                .members
                .iter()
                .find(|(_, m)| m.publisher == Some(handle))
                .map(|(id, _)| id.clone());
            if let Some(peer) = publisher {
                self.media_up(&peer).await;
            }
            return;
        }
        if ev["janus"] == "slowlink" {
            if ev["media"] == "video"
                && let Some(mid) = ev["mid"].as_str()
            {
                let lost = ev["lost"].as_u64().unwrap_or(0);
                self.slow_link(handle, mid, lost).await;
            }
            return;
        }
        let data = &ev["plugindata"]["data"];
        if let (Some(mid), Some(sub)) = (data["mid"].as_str(), data["substream"].as_u64())
            && let Ok(sub) = u8::try_from(sub)
        {
            self.forwarded(handle, mid, sub);
        }
        let Some(jsep) = ev.get("jsep") else {
            tracing::debug!(room = %self.task.name, handle, event = %ev, "Janus event");
            return;
        };
        if let Some(peer) = self.subscriber_of(handle) {
            let data = ev["plugindata"]["data"].clone();
            self.offer_to(&peer, &data, Some(jsep));
        }
    }
}

/// Destroy Janus room `room` (with its remote publishers) and detach its control handle.
pub(super) async fn destroy(janus: &Janus, control: u64, room: u64, admin_key: &str) {
    let body = json!({"request": "destroy", "room": room, "admin_key": admin_key});
    if let Err(e) = janus.message(control, body, None).await {
        tracing::debug!(room, error = %e, "destroying the SFU room");
    }
    janus.detach(control).await;
}

fn ice(candidate: &str, mline: u32) -> Option<(&str, u32)> {
    let c = candidate.trim();
    (!c.is_empty()).then_some((c.strip_prefix("a=").unwrap_or(c), mline))
}

pub(super) fn invalid(what: &str, reason: &str) -> ServiceError {
    ServiceError::Invalid {
        what: what.to_owned(),
        reason: reason.to_owned(),
    }
}
