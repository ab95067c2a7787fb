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
    /// The room's media goes through the SFU (from its first member, or since it grew past
    /// the `auto` mesh size; it stays there while it lives).
    pub sfu: std::sync::atomic::AtomicBool,
}

pub(crate) struct Session {
    pub peer_id: PeerId,
    pub user: String,
    pub name: String,
    pub grants: Vec<Grant>,
    /// The token's expiry (unix seconds): a kick bans the user until then by default.
    pub token_exp: u64,
    pub room: Arc<Room>,
    pub resume_token: String,
    pub inner: Mutex<Inner>,
    pub notify: Notify,
}

/// What one frame of the reliable stream is counted as against `max_queue_bytes`: its body and
/// the bookkeeping around it.
pub(crate) const FRAME_OVERHEAD: usize = 64;

pub(crate) struct Inner {
    /// Unacknowledged frames of the reliable stream, ascending `n`.
    pub buf: VecDeque<(u64, Arc<str>)>,
    /// Bytes of `buf` as counted against `max_queue_bytes` (bodies plus [`FRAME_OVERHEAD`]).
    pub buf_bytes: usize,
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
            grants: self.grants.clone(),
            tracks: if with_tracks {
                g.tracks.clone()
            } else {
                Vec::new()
            },
            metadata: g.metadata.clone(),
        }
    }

    /// Append a frame to the reliable stream. Returns false when it does not fit: the
    /// unacknowledged frames would exceed `max_bytes` (the peer reads or acknowledges too
    /// slowly, or has been away too long). Nothing is dropped silently; the caller ends the
    /// session with `slow_consumer`.
    pub fn push(&self, body: Arc<str>, max_bytes: usize) -> bool {
        let mut g = self.inner.lock();
        if g.ended.is_some() {
            return true;
        }
        let size = body.len() + FRAME_OVERHEAD;
        if g.buf_bytes + size > max_bytes {
            return false;
        }
        let n = g.next_n;
        g.next_n += 1;
        g.buf_bytes += size;
        g.buf.push_back((n, body));
        drop(g);
        self.notify.notify_one();
        true
    }

    /// Cumulative acknowledgement: frames up to `n` (and not beyond what was written) are
    /// released.
    pub fn ack(&self, n: u64) {
        let mut g = self.inner.lock();
        let n = n.min(g.sent_upto);
        g.release_upto(n);
    }
}

impl Inner {
    /// Drop the frames with `n <= upto` from the stream.
    pub fn release_upto(&mut self, upto: u64) {
        while let Some((_, b)) = self.buf.pop_front_if(|(f, _)| *f <= upto) {
            self.buf_bytes -= b.len() + FRAME_OVERHEAD;
        }
        if self.buf.is_empty() && self.buf.capacity() > 0 {
            // Idle sessions hold no queue memory (re-growing costs one allocation).
            self.buf = VecDeque::new();
        }
    }
}
