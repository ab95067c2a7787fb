//! An SFU room losing an instance: its members placed again on the room's other instances,
//! or, when it was the room's only instance, the whole room re-created on another (or the
//! same one once back) under a fresh Janus room id (docs/sfu.md, "When Janus stops or dies").

use super::room::{Span, State};
use crate::signalling::protocol::{PeerId, RoomTopology, ServerMsg};

impl State {
    /// The connection to instance `i` of the room was lost (Janus stopped or died, or the
    /// connection to it broke): the Janus room there, its handles and its members' SFU
    /// connections went with it. Its members are placed again (on the room's other
    /// instances, or a further one); with no instance left the whole room is re-created.
    pub(super) async fn instance_lost(&mut self, i: usize) {
        let Some(pos) = self.spans.iter().position(|s| s.instance == i) else {
            return;
        };
        let span = self.spans.remove(pos);
        tracing::warn!(room = %self.task.name, url = span.janus.url(),
                       "an SFU instance of this room was lost; placing its members again");
        for feeds in self.remotes.values_mut() {
            feeds.retain(|t| *t != i);
        }
        let moved: Vec<PeerId> = self
            .members
            .iter()
            .filter(|(_, m)| m.instance == Some(i))
            .map(|(id, _)| id.clone())
            .collect();
        for peer in &moved {
            let Some(m) = self.members.get_mut(peer) else {
                continue;
            };
            let feed = m.feed;
            m.instance = None;
            m.publisher = None;
            m.published = false;
            m.subscription = None;
            m.subscribed_before = false;
            self.unforward(feed).await;
        }
        if self.spans.is_empty() {
            self.down = true;
            self.recover().await;
            return;
        }
        for peer in moved {
            self.replace_member(&peer).await;
        }
        self.report_load();
    }

    /// Re-create the lost room on the least-loaded connected instance (the same one once it
    /// is back, or another), under a fresh Janus room id, and send every member `topology`
    /// `sfu`: they close their SFU connections and connect again, which re-publishes and
    /// re-subscribes everything. With no instance connected the room stays down.
    pub(super) async fn recover(&mut self) {
        let Some(bridge) = self.task.bridge.upgrade() else {
            return;
        };
        let Some((instance, janus)) = bridge.replace_instance(&self.task.name) else {
            tracing::debug!(room = %self.task.name, "no SFU instance connected yet");
            return;
        };
        self.task.janus_room = bridge.room_id();
        self.spans = vec![Span {
            instance,
            janus,
            control: None,
        }];
        if let Err(e) = self.ensure_room(instance).await {
            tracing::warn!(room = %self.task.name, instance, error = %e,
                           "cannot re-create the SFU room yet");
            self.spans.clear();
            return;
        }
        self.down = false;
        self.recreated += 1;
        self.remotes.clear();
        tracing::info!(room = %self.task.name, url = self.spans[0].janus.url(),
                       members = self.members.len(), "SFU room re-created");
        let peers: Vec<PeerId> = self.members.keys().cloned().collect();
        for m in self.members.values_mut() {
            m.instance = None;
            m.publisher = None;
            m.published = false;
            m.subscription = None;
            m.subscribed_before = false;
        }
        for peer in peers {
            self.replace_member(&peer).await;
        }
        self.report_load();
    }

    /// Give `peer`, whose SFU connections are void, an instance and a fresh feed id, and tell
    /// it to connect again (`topology` `sfu`), then offer it what is published there.
    async fn replace_member(&mut self, peer: &str) {
        let instance = self.place().await;
        self.task.next_feed += 1;
        let feed = self.task.next_feed;
        let Some(m) = self.members.get_mut(peer) else {
            return;
        };
        m.instance = instance;
        m.feed = feed;
        (m.outbox)(ServerMsg::Topology {
            n: 0,
            topology: RoomTopology::Sfu,
        });
        let feeds = self.published_feeds_for(peer);
        if !feeds.is_empty() {
            self.subscribe(peer, feeds).await;
        }
    }
}
