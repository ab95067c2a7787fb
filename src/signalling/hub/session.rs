//! One session of the hub: its room, its identity and grants, and its reliable stream of
//! frames (buffered until acknowledged, replayed on resume).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::Notify;

use crate::signalling::protocol::{ErrorCode, Grant, PeerId, PeerInfo, ServerMsg, TrackInfo};

/// Serialize a server frame once; shared by every recipient.
pub(crate) fn body(msg: &ServerMsg) -> Arc<str> {
    match serde_json::to_string(msg) {
        Ok(s) => Arc::from(s),
        Err(e) => {
            tracing::error!(error = %e, "cannot serialize server frame");
            Arc::from(r#"{"type":"error","code":"internal","message":"serialization failed"}"#)
        }
    }
}

/// `{"n":N,` + body without its leading `{`.
pub(crate) fn stamp(n: u64, body: &str) -> String {
    let mut s = String::with_capacity(body.len() + 24);
    s.push_str("{\"n\":");
    s.push_str(&n.to_string());
    s.push(',');
    s.push_str(body.get(1..).unwrap_or(""));
    s
}

pub(crate) struct Room {
    pub name: String,
    pub peers: Mutex<HashMap<PeerId, Arc<Session>>>,
}

pub(crate) struct Session {
    pub peer_id: PeerId,
    pub user: String,
    pub name: String,
    pub grants: Vec<Grant>,
    pub room: Arc<Room>,
    pub resume_token: String,
    pub inner: Mutex<Inner>,
    pub notify: Notify,
}

pub(crate) struct Inner {
    /// Unacknowledged frames of the reliable stream, ascending `n`.
    pub buf: VecDeque<(u64, Arc<str>)>,
    pub next_n: u64,
    /// Highest `n` handed to the current socket.
    pub sent_upto: u64,
    pub tracks: Vec<TrackInfo>,
    pub metadata: serde_json::Value,
    /// Highest `message.seq` accepted from this peer.
    pub last_seq: u64,
    /// Attachment generation; bumped by each join/resume.
    pub gen_: u64,
    pub attached: bool,
    /// Set once the session is over; the attached connection says `bye` with this code.
    pub ended: Option<ErrorCode>,
}

impl Session {
    pub fn has(&self, g: Grant) -> bool {
        self.grants.contains(&g)
    }

    pub(super) fn info(&self, with_tracks: bool) -> PeerInfo {
        let g = self.inner.lock();
        PeerInfo {
            peer_id: self.peer_id.clone(),
            user: self.user.clone(),
            name: self.name.clone(),
            tracks: if with_tracks {
                g.tracks.clone()
            } else {
                Vec::new()
            },
            metadata: g.metadata.clone(),
        }
    }

    /// Append a frame to the reliable stream. Returns false when the queue overflowed with
    /// frames never written to a socket (the peer is too slow or gone too long).
    pub fn push(&self, body: Arc<str>, limit: usize) -> bool {
        let mut g = self.inner.lock();
        if g.ended.is_some() {
            return true;
        }
        if g.buf.len() >= limit.max(1) {
            match g.buf.front() {
                Some((front_n, _)) if *front_n > g.sent_upto => return false,
                _ => {
                    g.buf.pop_front();
                }
            }
        }
        let n = g.next_n;
        g.next_n += 1;
        g.buf.push_back((n, body));
        drop(g);
        self.notify.notify_one();
        true
    }

    pub fn ack(&self, n: u64) {
        let mut g = self.inner.lock();
        let n = n.min(g.sent_upto);
        while g.buf.front().is_some_and(|(f, _)| *f <= n) {
            g.buf.pop_front();
        }
        if g.buf.is_empty() && g.buf.capacity() > 0 {
            // Idle sessions hold no queue memory (re-growing costs one allocation).
            g.buf = VecDeque::new();
        }
    }
}
