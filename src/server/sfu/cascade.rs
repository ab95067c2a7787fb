//! Rooms spanning several Janus instances (docs/sfu.md, "Several instances").
//!
//! A member joining a room goes to the first instance of the room that is not full
//! (`SfuConfig::instance_capacity`); when all are, the room takes one more instance, the
//! least-loaded one that is not full, and creates its Janus room there under the same room id.
//! Every publication is then forwarded from the instance its publisher is on to every other
//! instance of the room through VideoRoom remote publishers: `add_remote_publisher` on the
//! receiving instance (a publisher without a PeerConnection, under the same feed id, fed by
//! plain RTP on a port Janus opens on the instance's address) and `publish_remotely` on the
//! sending one (RTP forwarders to that port, with RTCP back for keyframe requests). Members
//! subscribe on their own instance, to local and remote publishers alike. An instance with no
//! member of the room left is released: forwarding to it stops and its room is destroyed.

use std::collections::HashMap;

use serde_json::{Value, json};

use super::janus::{Janus, JanusError};
use super::room::{Span, State};
use crate::signalling::protocol::PeerId;

/// The `remote_id` a publication forwarded to instance `to` has on its own instance.
fn remote_id(to: usize) -> String {
    format!("streamwire-instance-{to}")
}

impl State {
    /// The instance for a member joining (or placed again): the first connected instance of
    /// the room that is not full, else a further instance that is not full (the room spans
    /// it from now on), else, with every instance full, the room's least-loaded instance.
    /// `None` when the room is on no connected instance.
    pub(super) async fn place(&mut self) -> Option<usize> {
        let bridge = self.task.bridge.upgrade()?;
        let connected: Vec<usize> = self
            .spans
            .iter()
            .filter(|s| s.janus.alive())
            .map(|s| s.instance)
            .collect();
        for &i in &connected {
            if bridge.has_room_for(i) {
                match self.ensure_room(i).await {
                    Ok(()) => return Some(i),
                    Err(e) => tracing::warn!(room = %self.task.name, instance = i, error = %e,
                                             "cannot create the SFU room"),
                }
            }
        }
        let taken: Vec<usize> = self.spans.iter().map(|s| s.instance).collect();
        if !taken.is_empty()
            && let Some((i, janus)) = bridge.spill(&self.task.name, &taken)
        {
            let url = janus.url().to_owned();
            self.spans.push(Span {
                instance: i,
                janus,
                control: None,
            });
            match self.ensure_room(i).await {
                Ok(()) => {
                    tracing::info!(room = %self.task.name, instance = i, url,
                                   "the room spans one more SFU instance");
                    let publishers: Vec<PeerId> = self
                        .members
                        .iter()
                        .filter(|(_, m)| m.published)
                        .map(|(id, _)| id.clone())
                        .collect();
                    for p in publishers {
                        self.forward(&p, i).await;
                    }
                    return Some(i);
                }
                Err(e) => {
                    tracing::warn!(room = %self.task.name, instance = i, url, error = %e,
                                   "cannot create the SFU room on a further instance");
                    self.spans.pop();
                    self.report_load();
                }
            }
        }
        connected.into_iter().min_by_key(|i| bridge.members_on(*i))
    }

    /// Tell the bridge how many members each instance of the room serves.
    pub(super) fn report_load(&self) {
        let Some(bridge) = self.task.bridge.upgrade() else {
            return;
        };
        let mut load: HashMap<usize, usize> = self.spans.iter().map(|s| (s.instance, 0)).collect();
        for i in self.members.values().filter_map(|m| m.instance) {
            *load.entry(i).or_default() += 1;
        }
        bridge.set_load(&self.task.name, load);
    }

    /// The connection and control handle of the room on instance `i`.
    fn control_of(&self, i: usize) -> Result<(Janus, u64), JanusError> {
        self.spans
            .iter()
            .find(|s| s.instance == i)
            .and_then(|s| Some((s.janus.clone(), s.control?)))
            .ok_or_else(|| JanusError::Connection {
                url: format!("instance {i}"),
                detail: "the room has no Janus room there".into(),
            })
    }

    /// Forward `peer`'s publication to instance `to` of the room (if it is published, on
    /// another instance, and not forwarded there yet), then subscribe the members served by
    /// `to` to it.
    pub(super) async fn forward(&mut self, peer: &str, to: usize) {
        let Some(m) = self.members.get(peer) else {
            return;
        };
        let (feed, streams) = (m.feed, m.streams.clone());
        let Some(from) = m.instance.filter(|f| *f != to && m.published) else {
            return;
        };
        if streams.is_empty() || self.remotes.get(&feed).is_some_and(|t| t.contains(&to)) {
            return;
        }
        if let Err(e) = self.start_forward(peer, feed, streams, from, to).await {
            tracing::warn!(room = %self.task.name, peer, from, to, error = %e,
                           "cannot forward a publication to another SFU instance");
            return;
        }
        self.remotes.entry(feed).or_default().push(to);
        let subscribers: Vec<PeerId> = self
            .members
            .iter()
            .filter(|(id, o)| id.as_str() != peer && o.instance == Some(to))
            .map(|(id, _)| id.clone())
            .collect();
        for s in subscribers {
            self.subscribe(&s, vec![feed]).await;
        }
    }

    async fn start_forward(
        &mut self,
        peer: &str,
        feed: u64,
        streams: Vec<Value>,
        from: usize,
        to: usize,
    ) -> Result<(), JanusError> {
        self.ensure_room(from).await?;
        self.ensure_room(to).await?;
        let (src, src_control) = self.control_of(from)?;
        let (dst, dst_control) = self.control_of(to)?;
        let room = self.task.janus_room;
        let address = dst.address().to_string();
        let added = dst
            .message(
                dst_control,
                json!({"request": "add_remote_publisher", "room": room, "id": feed,
                       "display": peer, "iface": address, "streams": streams}),
                None,
            )
            .await?;
        let port = added.data["port"].as_u64();
        let mut body = json!({"request": "publish_remotely", "room": room,
                              "publisher_id": feed, "remote_id": remote_id(to),
                              "host": address, "port": port,
                              "admin_key": self.task.admin_key});
        if let Some(rtcp) = added.data["rtcp_port"].as_u64() {
            body["rtcp_port"] = json!(rtcp);
        }
        let sent = match port {
            Some(_) => src.message(src_control, body, None).await.map(drop),
            None => Err(JanusError::Refused {
                request: "add_remote_publisher".into(),
                code: 0,
                reason: "the reply names no port".into(),
            }),
        };
        if let Err(e) = sent {
            remove_remote(&dst, dst_control, room, feed).await;
            return Err(e);
        }
        tracing::info!(room = %self.task.name, peer, feed, from, to, port,
                       "publication forwarded to another SFU instance");
        Ok(())
    }

    /// Stop forwarding `feed` (its publisher left or lost its instance): remove its remote
    /// publishers (their subscribers get a new offer without it).
    pub(super) async fn unforward(&mut self, feed: u64) {
        for to in self.remotes.remove(&feed).unwrap_or_default() {
            if let Ok((janus, control)) = self.control_of(to) {
                remove_remote(&janus, control, self.task.janus_room, feed).await;
            }
        }
        self.feed_gone(feed);
    }

    /// Release the instances of the room no member is served by (while another instance
    /// remains): stop forwarding to them and destroy their rooms.
    pub(super) async fn drop_empty_spans(&mut self) {
        while self.spans.len() > 1 {
            let Some(pos) = self.spans.iter().position(|s| {
                !self
                    .members
                    .values()
                    .any(|m| m.instance == Some(s.instance))
            }) else {
                break;
            };
            let span = self.spans.remove(pos);
            let i = span.instance;
            let mut stop = Vec::new();
            for (feed, targets) in &mut self.remotes {
                if targets.contains(&i) {
                    targets.retain(|t| *t != i);
                    let from = self
                        .members
                        .values()
                        .find(|m| m.feed == *feed)
                        .and_then(|m| m.instance);
                    stop.extend(from.map(|f| (*feed, f)));
                }
            }
            self.remotes.retain(|_, t| !t.is_empty());
            for (feed, from) in stop {
                if let Ok((janus, control)) = self.control_of(from) {
                    let body = json!({"request": "unpublish_remotely",
                                      "room": self.task.janus_room, "publisher_id": feed,
                                      "remote_id": remote_id(i),
                                      "admin_key": self.task.admin_key});
                    if let Err(e) = janus.message(control, body, None).await {
                        tracing::debug!(feed, error = %e, "unpublish_remotely");
                    }
                }
            }
            if let Some(h) = span.control {
                super::room::destroy(&span.janus, h, self.task.janus_room, &self.task.admin_key)
                    .await;
            }
            tracing::info!(room = %self.task.name, instance = i, url = span.janus.url(),
                           "the room left an SFU instance (no member there)");
        }
    }
}

async fn remove_remote(janus: &Janus, control: u64, room: u64, feed: u64) {
    let body = json!({"request": "remove_remote_publisher", "room": room, "id": feed});
    if let Err(e) = janus.message(control, body, None).await {
        tracing::debug!(feed, error = %e, "remove_remote_publisher");
    }
}

/// What Janus needs to know of a publication to carry it as a remote publisher elsewhere,
/// read from Janus's answer to the publisher: one stream per m-line in order (Janus numbers
/// the streams of a remote publisher by their position, and the forwarded RTP by the source
/// stream's m-line index), with its kind, the codec Janus accepted (the first payload type of
/// the m-line) and whether it is simulcast; a rejected m-line is a disabled stream.
pub(super) fn published_streams(answer: &str) -> Vec<Value> {
    let mut out = Vec::new();
    for (mindex, section) in answer.split("\nm=").skip(1).enumerate() {
        let mut lines = section.lines().map(str::trim);
        let header: Vec<&str> = lines.next().unwrap_or_default().split(' ').collect();
        let kind = match header.first().copied() {
            Some("audio") => "audio",
            Some("video") => "video",
            Some("application") => "data",
            _ => continue,
        };
        let accepted = header.get(1).is_some_and(|p| *p != "0");
        let first_pt = header.get(3).copied().unwrap_or_default();
        let (mut mid, mut codec, mut simulcast) = (mindex.to_string(), None, false);
        for l in lines {
            if let Some(m) = l.strip_prefix("a=mid:") {
                mid = m.to_owned();
            } else if let Some(map) = l.strip_prefix("a=rtpmap:") {
                let (pt, name) = map.split_once(' ').unwrap_or_default();
                if pt == first_pt {
                    codec = name.split('/').next().map(str::to_ascii_lowercase);
                }
            } else if l.starts_with("a=simulcast:") {
                simulcast = true;
            }
        }
        let mut s = json!({"type": kind, "mindex": mindex, "mid": mid});
        if kind != "data" {
            let fallback = if kind == "audio" { "opus" } else { "vp8" };
            s["codec"] = json!(codec.as_deref().unwrap_or(fallback));
        }
        if !accepted {
            s["disabled"] = json!(true);
        }
        if simulcast {
            s["simulcast"] = json!(true);
        }
        out.push(s);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_of_an_answer_in_mline_order() {
        let answer = "v=0\r\no=- 1 1 IN IP4 10.0.0.5\r\ns=VideoRoom\r\nt=0 0\r\n\
            m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:a0\r\na=rtpmap:111 opus/48000/2\r\n\
            m=video 0 UDP/TLS/RTP/SAVPF 0\r\na=mid:skip\r\n\
            m=video 9 UDP/TLS/RTP/SAVPF 96 97\r\na=mid:v1\r\na=rtpmap:97 rtx/90000\r\n\
            a=rtpmap:96 VP8/90000\r\na=simulcast:recv h;m;l\r\n";
        let s = published_streams(answer);
        assert_eq!(s.len(), 3);
        assert_eq!(
            s[0],
            json!({"type": "audio", "mindex": 0, "mid": "a0", "codec": "opus"})
        );
        assert_eq!(s[1]["disabled"], json!(true));
        assert_eq!(s[1]["codec"], json!("vp8"));
        assert_eq!(
            s[2],
            json!({"type": "video", "mindex": 2, "mid": "v1", "codec": "vp8", "simulcast": true})
        );
    }
}
