//! One Streamwire room on one Janus instance: a task that owns the room's Janus VideoRoom and
//! every member's handles, and handles, one at a time, members joining and leaving, the
//! frames they send to the pseudo-peers, and the events Janus sends on its own.
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
//!   while an offer waits for its answer are subscribed after it.

use std::collections::HashMap;
use std::sync::Weak;

use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

use super::janus::{HandleEvent, Janus, JanusError};
use super::status::RoomStatus;
use super::{Bridge, RECONNECT_INTERVAL};
use crate::signalling::protocol::ErrorCode;
use crate::signalling::protocol::{
    Grant, PeerId, RoomTopology, SFU_PUBLISH, SFU_SUBSCRIBE, ServerMsg, SfuStream,
};
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
}

struct Subscription {
    handle: u64,
    /// An offer went out and its answer has not come yet.
    awaiting_answer: bool,
    /// Feeds to subscribe to once the answer came.
    queued: Vec<u64>,
    /// The subscriber joined (Janus offered at least once).
    started: bool,
    /// Media streams (m-lines) of Janus's last offer that carry a member's media.
    streams: usize,
}

struct Member {
    grants: Vec<Grant>,
    outbox: Outbox,
    /// Janus feed id of this member's publisher.
    feed: u64,
    /// Publisher handle, once the member offered.
    publisher: Option<u64>,
    published: bool,
    subscription: Option<Subscription>,
}

pub(super) struct RoomTask {
    pub name: String,
    pub janus: Janus,
    pub janus_room: u64,
    pub admin_key: String,
    pub bridge: Weak<Bridge>,
    pub cmds: mpsc::UnboundedReceiver<Cmd>,
    pub next_feed: u64,
}

struct State {
    task: RoomTask,
    members: HashMap<PeerId, Member>,
    /// Control handle (room create/destroy), while the Janus room exists.
    control: Option<u64>,
    events_tx: mpsc::UnboundedSender<HandleEvent>,
    /// The room's instance was lost and the room is not re-created yet.
    down: bool,
    /// Times the room was re-created after its instance was lost.
    recreated: u64,
}

fn failed(e: JanusError) -> ServiceError {
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
        let mut st = State {
            task: self,
            members: HashMap::new(),
            control: None,
            events_tx,
            down: false,
            recreated: 0,
        };
        loop {
            let janus = st.task.janus.clone();
            tokio::select! {
                cmd = st.task.cmds.recv() => {
                    let Some(cmd) = cmd else { break };
                    st.command(cmd).await;
                    if st.members.is_empty() && st.close_if_idle().await {
                        break;
                    }
                }
                Some((handle, ev)) = events.recv() => st.janus_event(handle, ev).await,
                () = janus.lost(), if !st.down => st.instance_lost().await,
                // While down: as soon as an instance is back, and every second (an instance
                // may be connected but have refused to create the room).
                _ = reconnected.changed(), if st.down => st.recover().await,
                () = tokio::time::sleep(RECONNECT_INTERVAL), if st.down => st.recover().await,
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
        }
    }

    /// The room's Janus connection was lost (Janus stopped or died, or the connection to it
    /// broke): the Janus room, every handle and every member's SFU connection went with it.
    /// Forget them and re-create the room where it can be.
    async fn instance_lost(&mut self) {
        tracing::warn!(room = %self.task.name, url = self.task.janus.url(),
                       "the SFU instance of this room was lost; re-creating the room");
        self.control = None;
        for m in self.members.values_mut() {
            m.publisher = None;
            m.published = false;
            m.subscription = None;
        }
        self.down = true;
        self.recover().await;
    }

    /// Re-create the lost room on the least-loaded connected instance (the same one once it
    /// is back, or another), under a fresh Janus room id, and send every member `topology`
    /// `sfu`: they close their SFU connections and connect again, which re-publishes and
    /// re-subscribes everything. With no instance connected the room stays down.
    async fn recover(&mut self) {
        let Some(bridge) = self.task.bridge.upgrade() else {
            return;
        };
        let Some((instance, janus)) = bridge.replace_instance(&self.task.name) else {
            tracing::debug!(room = %self.task.name, "no SFU instance connected yet");
            return;
        };
        self.task.janus = janus;
        self.task.janus_room = bridge.room_id();
        if let Err(e) = self.ensure_room().await {
            tracing::warn!(room = %self.task.name, instance, error = %e,
                           "cannot re-create the SFU room yet");
            return;
        }
        self.down = false;
        self.recreated += 1;
        tracing::info!(room = %self.task.name, url = self.task.janus.url(),
                       members = self.members.len(), "SFU room re-created");
        for m in self.members.values() {
            (m.outbox)(ServerMsg::Topology {
                n: 0,
                topology: RoomTopology::Sfu,
            });
        }
    }

    fn status(&self) -> RoomStatus {
        let subscriptions = self
            .members
            .values()
            .filter_map(|m| m.subscription.as_ref());
        RoomStatus {
            room: self.task.name.clone(),
            instance: self
                .task
                .bridge
                .upgrade()
                .and_then(|b| b.rooms.lock().get(&self.task.name).map(|r| r.instance))
                .unwrap_or(0),
            instance_connected: self.task.janus.alive(),
            janus_room: self.task.janus_room,
            state: if self.down { "down" } else { "up" },
            recreated: self.recreated,
            members: self.members.len(),
            publishers: self.members.values().filter(|m| m.published).count(),
            subscribers: subscriptions.clone().count(),
            forwarded_streams: subscriptions.map(|s| s.streams).sum(),
        }
    }

    /// Create the Janus room if it does not exist yet.
    async fn ensure_room(&mut self) -> Result<(), JanusError> {
        if self.control.is_some() {
            return Ok(());
        }
        let janus = self.task.janus.clone();
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
        self.control = Some(handle);
        Ok(())
    }

    async fn joined(&mut self, m: SfuMember) {
        if let Err(e) = self.ensure_room().await {
            tracing::warn!(room = %self.task.name, error = %e, "cannot create the SFU room");
        }
        self.task.next_feed += 1;
        let feed = self.task.next_feed;
        let peer = m.peer_id.clone();
        self.members.insert(
            peer.clone(),
            Member {
                grants: m.grants,
                outbox: m.outbox,
                feed,
                publisher: None,
                published: false,
                subscription: None,
            },
        );
        let feeds = self.published_feeds_except(&peer);
        if !feeds.is_empty() {
            self.subscribe(&peer, feeds).await;
        }
    }

    fn published_feeds_except(&self, peer: &str) -> Vec<u64> {
        self.members
            .iter()
            .filter(|(id, m)| id.as_str() != peer && m.published)
            .map(|(_, m)| m.feed)
            .collect()
    }

    async fn left(&mut self, peer: &str) {
        let Some(m) = self.members.remove(peer) else {
            return;
        };
        let janus = self.task.janus.clone();
        if let Some(h) = m.publisher {
            janus.detach(h).await;
        }
        if let Some(s) = m.subscription {
            janus.detach(s.handle).await;
        }
        for other in self.members.values_mut() {
            if let Some(s) = &mut other.subscription {
                s.queued.retain(|f| *f != m.feed);
            }
        }
    }

    /// With no member left: destroy the Janus room and, if nothing is queued, end the task
    /// (true). The bridge's room table is locked while deciding, so a member joining now
    /// either reaches this task first or finds no task and starts a new one.
    async fn close_if_idle(&mut self) -> bool {
        if let Some(h) = self.control.take() {
            let janus = self.task.janus.clone();
            let body = json!({"request": "destroy", "room": self.task.janus_room,
                              "admin_key": self.task.admin_key});
            if let Err(e) = janus.message(h, body, None).await {
                tracing::debug!(room = %self.task.name, error = %e, "destroying the SFU room");
            }
            janus.detach(h).await;
            tracing::info!(room = %self.task.name, "SFU room destroyed (empty)");
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
        let janus = self.task.janus.clone();
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
        let janus = self.task.janus.clone();
        let janus_room = self.task.janus_room;
        self.ensure_room().await.map_err(failed)?;
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
        let feed = m.feed;
        let subscribers: Vec<PeerId> = self
            .members
            .iter()
            .filter(|(id, o)| id.as_str() != peer && o.grants.contains(&Grant::Subscribe))
            .map(|(id, _)| id.clone())
            .collect();
        for s in subscribers {
            self.subscribe(&s, vec![feed]).await;
        }
    }

    /// Add `feeds` to `peer`'s subscribing connection (creating it if needed).
    async fn subscribe(&mut self, peer: &str, feeds: Vec<u64>) {
        let janus = self.task.janus.clone();
        let janus_room = self.task.janus_room;
        let events = self.events_tx.clone();
        let Some(m) = self.members.get_mut(peer) else {
            return;
        };
        if !m.grants.contains(&Grant::Subscribe) {
            return;
        }
        let streams: Vec<Value> = feeds.iter().map(|f| json!({"feed": f})).collect();
        let result = match &mut m.subscription {
            Some(s) if s.awaiting_answer => {
                s.queued.extend(feeds);
                return;
            }
            Some(s) => {
                let body = json!({"request": "subscribe", "streams": streams});
                janus.message(s.handle, body, None).await
            }
            None => {
                let h = match janus.attach(events).await {
                    Ok(h) => h,
                    Err(e) => {
                        tracing::warn!(peer, error = %e, "cannot attach a subscriber handle");
                        return;
                    }
                };
                m.subscription = Some(Subscription {
                    handle: h,
                    awaiting_answer: false,
                    queued: Vec::new(),
                    started: false,
                    streams: 0,
                });
                let body = json!({"request": "join", "ptype": "subscriber", "room": janus_room,
                                  "streams": streams});
                janus.message(h, body, None).await
            }
        };
        match result {
            Ok(reply) => self.offer_to(peer, &reply.data, reply.jsep.as_ref()),
            Err(e) => {
                tracing::warn!(peer, error = %e, "SFU subscription failed");
                // A subscriber handle whose join failed is of no use: start afresh next time.
                if let Some(m) = self.members.get_mut(peer)
                    && let Some(s) = m.subscription.take_if(|s| !s.started)
                {
                    janus.detach(s.handle).await;
                }
            }
        }
    }

    /// Send Janus's offer on `peer`'s subscribing connection, after the stream map.
    fn offer_to(&mut self, peer: &str, data: &Value, jsep: Option<&Value>) {
        let Some(sdp) = jsep
            .filter(|j| j["type"] == "offer")
            .and_then(|j| j["sdp"].as_str())
        else {
            return;
        };
        let names: HashMap<u64, PeerId> = self
            .members
            .iter()
            .map(|(id, m)| (m.feed, id.clone()))
            .collect();
        let Some(m) = self.members.get_mut(peer) else {
            return;
        };
        let streams: Vec<SfuStream> = data["streams"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter(|s| s["active"].as_bool() != Some(false))
                    .filter(|s| matches!(s["type"].as_str(), Some("audio" | "video")))
                    .filter_map(|s| {
                        let feed = s["feed_id"].as_u64()?;
                        Some(SfuStream {
                            mid: s["mid"].as_str()?.to_owned(),
                            peer_id: names
                                .get(&feed)
                                .cloned()
                                .or_else(|| s["feed_display"].as_str().map(str::to_owned))?,
                            kind: s["type"].as_str()?.to_owned(),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        let count = streams.len();
        (m.outbox)(ServerMsg::SfuStreams { n: 0, streams });
        (m.outbox)(ServerMsg::Offer {
            n: 0,
            from: SFU_SUBSCRIBE.into(),
            sdp: sdp.to_owned(),
        });
        if let Some(s) = &mut m.subscription {
            s.awaiting_answer = true;
            s.started = true;
            s.streams = count;
        }
    }

    /// The member's answer on its subscribing connection.
    async fn answered(&mut self, peer: &str, sdp: String) -> Result<(), ServiceError> {
        let janus = self.task.janus.clone();
        let Some(s) = self
            .members
            .get_mut(peer)
            .and_then(|m| m.subscription.as_mut())
        else {
            return Err(invalid("to", "`sfu-subscribe` sent no offer to this peer"));
        };
        let reply = janus
            .message(
                s.handle,
                json!({"request": "start"}),
                Some(json!({"type": "answer", "sdp": sdp})),
            )
            .await;
        s.awaiting_answer = false;
        let queued = std::mem::take(&mut s.queued);
        reply.map_err(failed)?;
        if !queued.is_empty() {
            self.subscribe(peer, queued).await;
        }
        Ok(())
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
        let Some(jsep) = ev.get("jsep") else {
            tracing::debug!(room = %self.task.name, handle, event = %ev, "Janus event");
            return;
        };
        let owner = self
            .members
            .iter()
            .find(|(_, m)| m.subscription.as_ref().is_some_and(|s| s.handle == handle))
            .map(|(id, _)| id.clone());
        if let Some(peer) = owner {
            let data = ev["plugindata"]["data"].clone();
            self.offer_to(&peer, &data, Some(jsep));
        }
    }
}

fn ice(candidate: &str, mline: u32) -> Option<(&str, u32)> {
    let c = candidate.trim();
    (!c.is_empty()).then_some((c.strip_prefix("a=").unwrap_or(c), mline))
}

fn invalid(what: &str, reason: &str) -> ServiceError {
    ServiceError::Invalid {
        what: what.to_owned(),
        reason: reason.to_owned(),
    }
}
