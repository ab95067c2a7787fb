//! A member's subscribing connection on its instance (Janus multistream): created with the
//! feeds published there when first needed, extended with `subscribe` as members publish,
//! one negotiation at a time, and replaced by a new subscription once a feed of it went away
//! (docs/sfu.md, "Clients").

use std::collections::HashMap;

use serde_json::{Value, json};

use super::room::{State, Subscription, failed, invalid};
use crate::signalling::protocol::{Grant, PeerId, SFU_SUBSCRIBE, ServerMsg, SfuStream};
use crate::signalling::service::ServiceError;

impl State {
    /// Add `feeds` to `peer`'s subscribing connection (creating it if needed).
    pub(super) async fn subscribe(&mut self, peer: &str, feeds: Vec<u64>) {
        let Some(janus) = self.janus_of(peer) else {
            return;
        };
        let janus_room = self.task.janus_room;
        let events = self.events_tx.clone();
        let Some(m) = self.members.get_mut(peer) else {
            return;
        };
        if !m.grants.contains(&Grant::Subscribe) {
            return;
        }
        let result = match &mut m.subscription {
            Some(s) if s.awaiting_answer => {
                s.queued.extend(feeds);
                return;
            }
            Some(s) if !s.holes => {
                s.feeds.extend(&feeds);
                let streams: Vec<Value> = feeds.iter().map(|f| json!({"feed": f})).collect();
                let body = json!({"request": "subscribe", "streams": streams});
                janus.message(s.handle, body, None).await
            }
            // No subscription yet, or one with holes: Janus would put the new feeds on the
            // m-lines of the gone ones, and webrtcbin 1.22 cannot make an m-line it answered
            // `inactive` receive again. A new subscription carries the old feeds and the new.
            _ => {
                let mut all = Vec::new();
                if let Some(old) = m.subscription.take() {
                    all = old.feeds;
                    janus.detach(old.handle).await;
                }
                all.extend(feeds);
                all.sort_unstable();
                all.dedup();
                let h = match janus.attach(events).await {
                    Ok(h) => h,
                    Err(e) => {
                        tracing::warn!(peer, error = %e, "cannot attach a subscriber handle");
                        return;
                    }
                };
                let streams: Vec<Value> = all.iter().map(|f| json!({"feed": f})).collect();
                m.subscription = Some(Subscription {
                    handle: h,
                    awaiting_answer: false,
                    queued: Vec::new(),
                    started: false,
                    streams: 0,
                    feeds: all,
                    holes: false,
                    layers: HashMap::new(),
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

    /// Feed `feed` went away (its publisher left, or its remote publisher was removed): every
    /// subscription carrying it has a hole now.
    pub(super) fn feed_gone(&mut self, feed: u64) {
        for m in self.members.values_mut() {
            if let Some(s) = &mut m.subscription {
                s.queued.retain(|f| *f != feed);
                if let Some(i) = s.feeds.iter().position(|f| *f == feed) {
                    s.feeds.remove(i);
                    s.holes = true;
                }
            }
        }
    }

    /// Send Janus's offer on `peer`'s subscribing connection, after the stream map (saying
    /// whether it opens a new connection: a join offer to a member that had one).
    pub(super) fn offer_to(&mut self, peer: &str, data: &Value, jsep: Option<&Value>) {
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
        let mut simulcast = Vec::new();
        let streams: Vec<SfuStream> = data["streams"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter(|s| s["active"].as_bool() != Some(false))
                    .filter(|s| matches!(s["type"].as_str(), Some("audio" | "video")))
                    .filter_map(|s| {
                        let feed = s["feed_id"].as_u64()?;
                        let stream = SfuStream {
                            mid: s["mid"].as_str()?.to_owned(),
                            peer_id: names
                                .get(&feed)
                                .cloned()
                                .or_else(|| s["feed_display"].as_str().map(str::to_owned))?,
                            kind: s["type"].as_str()?.to_owned(),
                        };
                        if s["simulcast"].is_object() {
                            let sim = s["simulcast"].clone();
                            simulcast.push((stream.mid.clone(), stream.peer_id.clone(), sim));
                        }
                        Some(stream)
                    })
                    .collect()
            })
            .unwrap_or_default();
        let count = streams.len();
        let fresh = m.subscribed_before && m.subscription.as_ref().is_some_and(|s| !s.started);
        m.subscribed_before = true;
        (m.outbox)(ServerMsg::SfuStreams {
            n: 0,
            streams,
            fresh,
        });
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
        self.track_simulcast(peer, &simulcast);
    }

    /// The member's answer on its subscribing connection.
    pub(super) async fn answered(&mut self, peer: &str, sdp: String) -> Result<(), ServiceError> {
        let Some(janus) = self.janus_of(peer) else {
            return Err(invalid("to", "`sfu-subscribe` sent no offer to this peer"));
        };
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
}
