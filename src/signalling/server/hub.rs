//! Shared server state: rooms, sessions, the per-session reliable stream.
//!
//! Lock order (never reversed): `Hub::rooms` → `Room::peers` → `Session::inner`;
//! `Hub::resumable` is only taken alone or after `Hub::rooms`.

use parking_lot::Mutex;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use tokio::sync::{Notify, watch};

use super::ServerConfig;
use crate::signalling::protocol::{
    DeliveryStatus, ErrorCode, Grant, LeaveReason, PROTOCOL_VERSION, Payload, PeerId, PeerInfo,
    ServerMsg, TrackInfo,
};
use crate::signalling::token::Claims;

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

    fn info(&self, with_tracks: bool) -> PeerInfo {
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

pub(crate) struct Hub {
    pub cfg: ServerConfig,
    rooms: Mutex<HashMap<String, Arc<Room>>>,
    resumable: Mutex<HashMap<String, Arc<Session>>>,
    shutdown_tx: watch::Sender<bool>,
    pub connections: AtomicUsize,
    next_peer: AtomicU64,
    peer_prefix: String,
    /// Telemetry store, when the server was configured with one.
    pub telemetry: std::sync::OnceLock<Arc<Mutex<crate::telemetry::Store>>>,
}

/// A refused join/resume.
pub(crate) struct Refusal {
    pub code: ErrorCode,
    pub message: String,
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    if let Err(e) = getrandom::getrandom(&mut buf) {
        // No OS randomness: refuse to hand out guessable tokens.
        tracing::error!(error = %e, "OS random number generator failed");
        return String::new();
    }
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

impl Hub {
    pub fn new(cfg: ServerConfig) -> Arc<Hub> {
        let (shutdown_tx, _) = super::shutdown_channel();
        Arc::new(Hub {
            cfg,
            rooms: Mutex::new(HashMap::new()),
            resumable: Mutex::new(HashMap::new()),
            shutdown_tx,
            connections: AtomicUsize::new(0),
            next_peer: AtomicU64::new(1),
            peer_prefix: random_hex(3),
            telemetry: std::sync::OnceLock::new(),
        })
    }

    pub fn shutdown_rx(&self) -> watch::Receiver<bool> {
        self.shutdown_tx.subscribe()
    }

    pub fn is_shutting_down(&self) -> bool {
        *self.shutdown_tx.borrow()
    }

    pub fn begin_shutdown(&self) {
        self.shutdown_tx.send_replace(true);
        // Sessions cannot outlive the server: drop everything so nothing resumes here.
        let rooms = std::mem::take(&mut *self.rooms.lock());
        self.resumable.lock().clear();
        for room in rooms.values() {
            for s in room.peers.lock().values() {
                s.inner.lock().ended = Some(ErrorCode::Shutdown);
                s.notify.notify_one();
            }
        }
    }

    pub fn stats(&self) -> super::ServerStats {
        let rooms = self.rooms.lock();
        super::ServerStats {
            connections: self.connections.load(Ordering::Relaxed),
            sessions: self.resumable.lock().len(),
            rooms: rooms.len(),
        }
    }

    /// Admit a peer whose token verified. Replaces an older session of the same user.
    pub fn join(
        self: &Arc<Self>,
        claims: Claims,
        metadata: serde_json::Value,
    ) -> Result<(Arc<Session>, ServerMsg), Refusal> {
        if self.is_shutting_down() {
            return Err(Refusal {
                code: ErrorCode::Shutdown,
                message: "server is shutting down".into(),
            });
        }
        // Replace an older session of the same user first (it is told why).
        let old = {
            let rooms = self.rooms.lock();
            rooms.get(&claims.room).and_then(|r| {
                r.peers
                    .lock()
                    .values()
                    .find(|s| s.user == claims.sub)
                    .cloned()
            })
        };
        if let Some(old) = old {
            tracing::info!(room = %claims.room, user = %claims.sub, old_peer = %old.peer_id, "same user joined again; replacing older connection");
            self.terminate(&old, LeaveReason::Replaced, ErrorCode::Replaced);
        }
        let resume_token = random_hex(16);
        if resume_token.is_empty() {
            return Err(Refusal {
                code: ErrorCode::Internal,
                message: "no randomness for a resume token".into(),
            });
        }
        let peer_id = format!(
            "{}-{}",
            self.peer_prefix,
            self.next_peer.fetch_add(1, Ordering::Relaxed)
        );
        let limit = self.cfg.limits.replay_frames;
        let mut rooms = self.rooms.lock();
        let room = rooms
            .entry(claims.room.clone())
            .or_insert_with(|| {
                tracing::debug!(room = %claims.room, "room created");
                Arc::new(Room {
                    name: claims.room.clone(),
                    peers: Mutex::new(HashMap::new()),
                })
            })
            .clone();
        let mut peers = room.peers.lock();
        if peers.len() >= self.cfg.limits.max_peers_per_room {
            let empty = peers.is_empty();
            drop(peers);
            if empty {
                rooms.remove(&claims.room);
            }
            return Err(Refusal {
                code: ErrorCode::RoomFull,
                message: format!(
                    "room `{}` already holds the maximum of {} peers",
                    claims.room, self.cfg.limits.max_peers_per_room
                ),
            });
        }
        let can_sub = claims.has(Grant::Subscribe);
        let session = Arc::new(Session {
            peer_id: peer_id.clone(),
            user: claims.sub.clone(),
            name: claims.name.clone(),
            grants: claims.grants.clone(),
            room: room.clone(),
            resume_token: resume_token.clone(),
            inner: Mutex::new(Inner {
                buf: VecDeque::new(),
                next_n: 1,
                sent_upto: 0,
                tracks: Vec::new(),
                metadata: metadata.clone(),
                last_seq: 0,
                gen_: 1,
                attached: true,
                ended: None,
            }),
            notify: Notify::new(),
        });
        let existing: Vec<PeerInfo> = peers.values().map(|s| s.info(can_sub)).collect();
        let joined = body(&ServerMsg::PeerJoined {
            n: 0,
            peer: session.info(false),
            expect_offer: true,
        });
        let mut overflowed = Vec::new();
        for s in peers.values() {
            if !s.push(joined.clone(), limit) {
                overflowed.push(s.clone());
            }
        }
        peers.insert(peer_id.clone(), session.clone());
        drop(peers);
        drop(rooms);
        self.resumable
            .lock()
            .insert(resume_token.clone(), session.clone());
        for s in overflowed {
            self.terminate(&s, LeaveReason::SlowConsumer, ErrorCode::SlowConsumer);
        }
        tracing::info!(room = %claims.room, user = %claims.sub, peer = %peer_id, "peer joined");
        let offer_to = existing.iter().map(|p| p.peer_id.clone()).collect();
        let welcome = ServerMsg::Welcome {
            v: PROTOCOL_VERSION,
            peer_id,
            room: claims.room,
            user: claims.sub,
            name: claims.name,
            grants: claims.grants,
            resume_token,
            grace_ms: self.cfg.grace.as_millis() as u64,
            peers: existing,
            offer_to,
            ice_servers: self.cfg.ice_servers.clone(),
            limits: self.cfg.limits_info(),
        };
        Ok((session, welcome))
    }

    /// Re-attach a session within its grace period. Returns the session, the new
    /// attachment generation, and the `resumed` reply.
    pub fn resume(
        &self,
        token: &str,
        last_n: u64,
    ) -> Result<(Arc<Session>, u64, ServerMsg), Refusal> {
        let unknown = || Refusal {
            code: ErrorCode::ResumeUnknown,
            message: "unknown or expired resume token; join again".into(),
        };
        let session = self
            .resumable
            .lock()
            .get(token)
            .cloned()
            .ok_or_else(unknown)?;
        let mut g = session.inner.lock();
        if g.ended.is_some() {
            return Err(unknown());
        }
        if last_n >= g.next_n {
            return Err(Refusal {
                code: ErrorCode::InvalidField,
                message: format!(
                    "resume field `last_n` = {last_n} is beyond the last frame sent ({})",
                    g.next_n - 1
                ),
            });
        }
        while g.buf.front().is_some_and(|(f, _)| *f <= last_n) {
            g.buf.pop_front();
        }
        let first_needed = last_n + 1;
        let first_held = g.buf.front().map(|(f, _)| *f).unwrap_or(g.next_n);
        if first_held > first_needed {
            return Err(Refusal {
                code: ErrorCode::ResumeGap,
                message: format!(
                    "frames {first_needed}..{} are no longer held (replay buffer limit); join again",
                    first_held - 1
                ),
            });
        }
        g.gen_ += 1;
        g.attached = true;
        g.sent_upto = last_n;
        let gen_ = g.gen_;
        let reply = ServerMsg::Resumed {
            peer_id: session.peer_id.clone(),
            last_seq: g.last_seq,
            replay: g.next_n - 1 - last_n,
        };
        drop(g);
        // Wake a still-attached older connection so it notices it was superseded.
        session.notify.notify_waiters();
        tracing::info!(room = %session.room.name, peer = %session.peer_id, last_n, "session resumed");
        Ok((session, gen_, reply))
    }

    /// The connection of attachment `gen_` is gone; keep the session for the grace period.
    pub fn detach(self: &Arc<Self>, session: &Arc<Session>, gen_: u64) {
        {
            let mut g = session.inner.lock();
            if g.gen_ != gen_ || g.ended.is_some() {
                return;
            }
            g.attached = false;
        }
        tracing::debug!(peer = %session.peer_id, "connection lost; session kept for resume");
        let hub = self.clone();
        let s = session.clone();
        let grace = self.cfg.grace;
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            let expired = {
                let g = s.inner.lock();
                g.gen_ == gen_ && !g.attached && g.ended.is_none()
            };
            if expired {
                tracing::info!(peer = %s.peer_id, "resume grace period expired");
                hub.terminate(&s, LeaveReason::Timeout, ErrorCode::IdleTimeout);
            }
        });
    }

    /// End a session: remove it from its room, tell the others, drop an empty room.
    pub fn terminate(&self, session: &Arc<Session>, reason: LeaveReason, code: ErrorCode) {
        {
            let mut g = session.inner.lock();
            if g.ended.is_some() {
                return;
            }
            g.ended = Some(code);
        }
        session.notify.notify_one();
        self.resumable.lock().remove(&session.resume_token);
        let mut overflowed = Vec::new();
        {
            let mut rooms = self.rooms.lock();
            let mut peers = session.room.peers.lock();
            if peers
                .get(&session.peer_id)
                .is_some_and(|s| Arc::ptr_eq(s, session))
            {
                peers.remove(&session.peer_id);
            }
            let left = body(&ServerMsg::PeerLeft {
                n: 0,
                peer_id: session.peer_id.clone(),
                reason,
            });
            for s in peers.values() {
                if !s.push(left.clone(), self.cfg.limits.replay_frames) {
                    overflowed.push(s.clone());
                }
            }
            if peers.is_empty()
                && rooms
                    .get(&session.room.name)
                    .is_some_and(|r| Arc::ptr_eq(r, &session.room))
            {
                rooms.remove(&session.room.name);
                tracing::debug!(room = %session.room.name, "room dropped (empty)");
            }
        }
        tracing::info!(room = %session.room.name, peer = %session.peer_id, ?reason, "peer left");
        for s in overflowed {
            self.terminate(&s, LeaveReason::SlowConsumer, ErrorCode::SlowConsumer);
        }
    }

    /// Push one frame to one peer of the sender's room.
    pub fn relay(&self, from: &Session, to: &str, frame: &ServerMsg) -> Result<(), ErrorCode> {
        let target = from.room.peers.lock().get(to).cloned();
        match target {
            Some(t) if t.peer_id != from.peer_id => {
                if !t.push(body(frame), self.cfg.limits.replay_frames) {
                    self.terminate(&t, LeaveReason::SlowConsumer, ErrorCode::SlowConsumer);
                    return Err(ErrorCode::SlowConsumer);
                }
                Ok(())
            }
            _ => Err(ErrorCode::UnknownPeer),
        }
    }

    /// Push one frame to every other peer of the sender's room (optionally only to subscribers).
    pub fn broadcast(&self, from: &Session, frame: &ServerMsg, subscribers_only: bool) -> u32 {
        let b = body(frame);
        let mut count = 0u32;
        let mut overflowed = Vec::new();
        {
            let peers = from.room.peers.lock();
            for s in peers.values() {
                if s.peer_id == from.peer_id || (subscribers_only && !s.has(Grant::Subscribe)) {
                    continue;
                }
                if s.push(b.clone(), self.cfg.limits.replay_frames) {
                    count += 1;
                } else {
                    overflowed.push(s.clone());
                }
            }
        }
        for s in overflowed {
            self.terminate(&s, LeaveReason::SlowConsumer, ErrorCode::SlowConsumer);
        }
        count
    }

    /// Deliver a real-time message and return the delivery result for the sender.
    pub fn message(
        &self,
        from: &Session,
        seq: u64,
        to: Option<&str>,
        payload: Payload,
    ) -> ServerMsg {
        let failed = |reason| ServerMsg::Delivery {
            n: 0,
            seq,
            status: DeliveryStatus::Failed,
            recipients: 0,
            reason: Some(reason),
        };
        let frame = ServerMsg::Message {
            n: 0,
            from: from.peer_id.clone(),
            seq,
            direct: to.is_some(),
            payload,
        };
        let recipients = match to {
            Some(to) => match self.relay(from, to, &frame) {
                Ok(()) => 1,
                Err(code) => return failed(code),
            },
            None => self.broadcast(from, &frame, false),
        };
        ServerMsg::Delivery {
            n: 0,
            seq,
            status: DeliveryStatus::Delivered,
            recipients,
            reason: None,
        }
    }

    /// Find a peer of the sender's room.
    pub fn peer_in_room(&self, from: &Session, id: &str) -> Option<Arc<Session>> {
        from.room.peers.lock().get(id).cloned()
    }
}
