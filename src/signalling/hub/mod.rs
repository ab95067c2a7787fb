//! The signalling hub: rooms, sessions, the per-session reliable stream, and the protocol
//! state machine of each WebSocket connection ([`serve`]).
//!
//! The hub stores nothing: telemetry, feedback and privacy requests go to the
//! [`Service`](crate::signalling::service::Service) the server gives it.
//!
//! Lock order (never reversed): `Hub::rooms` → `Room::peers` → `Session::inner`;
//! `Hub::resumable` is only taken alone or after `Hub::rooms`.

mod admission;
mod bucket;
mod config;
mod conn;
mod deliver;
mod dispatch;
mod media;
mod media_test;
mod service_frames;
mod session;

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use async_tungstenite::tungstenite::protocol::WebSocketConfig;
use parking_lot::Mutex;
use tokio::sync::{Notify, watch};

pub(crate) use admission::{Full, Slot};
pub(crate) use config::HubConfig;
pub use config::Limits;
pub(crate) use conn::{drain_and_close, serve};
use session::{Inner, Room, Session, body};

use crate::signalling::protocol::{
    ErrorCode, Grant, IceServer, LeaveReason, PROTOCOL_VERSION, PeerInfo, RoomTopology, ServerMsg,
};
use crate::signalling::service::{
    IceMinter, MediaTests, Outbox, RoomRelay, Service, Sfu, SfuMember,
};
use crate::signalling::token::Claims;

pub(crate) struct Hub {
    pub cfg: HubConfig,
    rooms: Mutex<HashMap<String, Arc<Room>>>,
    resumable: Mutex<HashMap<String, Arc<Session>>>,
    /// Users kicked from a room, by (room, user), with the unix second their ban ends.
    bans: Mutex<HashMap<(String, String), u64>>,
    shutdown_tx: watch::Sender<bool>,
    pub connections: AtomicUsize,
    next_peer: AtomicU64,
    peer_prefix: String,
    /// Answers telemetry, feedback and privacy requests; `None`: `not_implemented`.
    pub service: Option<Arc<dyn Service>>,
    /// The media plane of `sfu` rooms; `None`: every room is a mesh.
    pub sfu: Option<Arc<dyn Sfu>>,
    /// The media test peer (echo test, network probe); `None`: `not_implemented`.
    pub media_tests: Option<Arc<dyn MediaTests>>,
    admission: Arc<admission::Admission>,
}

/// A refused join/resume.
pub(crate) struct Refusal {
    pub code: ErrorCode,
    pub message: String,
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
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
    pub fn new(
        cfg: HubConfig,
        service: Option<Arc<dyn Service>>,
        sfu: Option<Arc<dyn Sfu>>,
        media_tests: Option<Arc<dyn MediaTests>>,
    ) -> Arc<Hub> {
        let (shutdown_tx, _) = watch::channel(false);
        let hub = Arc::new(Hub {
            cfg,
            rooms: Mutex::new(HashMap::new()),
            resumable: Mutex::new(HashMap::new()),
            bans: Mutex::new(HashMap::new()),
            shutdown_tx,
            connections: AtomicUsize::new(0),
            next_peer: AtomicU64::new(1),
            peer_prefix: random_hex(3),
            service,
            sfu,
            media_tests,
            admission: Arc::default(),
        });
        if let Some(service) = &hub.service {
            let relay: Arc<dyn RoomRelay> = hub.clone();
            service.attach_relay(Arc::downgrade(&relay));
        }
        hub
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

    /// Admit a new connection from `ip` (it holds the slot until it joins), unless
    /// `max_pending` or `max_pending_per_ip` connections are already waiting to join.
    pub fn admit(&self, ip: std::net::IpAddr) -> Result<Slot, Full> {
        self.admission.admit(
            ip,
            self.cfg.limits.max_pending,
            self.cfg.limits.max_pending_per_ip,
        )
    }

    /// Connections admitted that have not joined yet.
    pub fn pending_count(&self) -> usize {
        self.admission.pending()
    }

    /// The WebSocket settings of every connection: message size limits and small buffers.
    pub fn ws_config(&self) -> WebSocketConfig {
        let hard = self
            .cfg
            .limits
            .hard_frame_bytes
            .max(self.cfg.limits.max_frame_bytes);
        // Small eagerly-allocated read buffer: idle connections must stay cheap.
        WebSocketConfig::default()
            .read_buffer_size(1024)
            .write_buffer_size(16 * 1024)
            .max_message_size(Some(hard))
            .max_frame_size(Some(hard))
    }

    /// Open WebSocket connections.
    pub fn connection_count(&self) -> usize {
        self.connections.load(Ordering::Relaxed)
    }

    /// Live sessions (attached or within the grace period).
    pub fn session_count(&self) -> usize {
        self.resumable.lock().len()
    }

    /// Rooms with at least one peer.
    pub fn room_count(&self) -> usize {
        self.rooms.lock().len()
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
        if let Some(until) = self.banned_until(&claims.room, &claims.sub) {
            return Err(Refusal {
                code: ErrorCode::Banned,
                message: format!(
                    "an admin removed this user from room `{}`; joins are refused until {until} (unix seconds)",
                    claims.room
                ),
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
            tracing::info!(room = %claims.room, user = ?claims.sub, old_peer = %old.peer_id, "same user joined again; replacing older connection");
            self.terminate(&old, LeaveReason::Replaced, ErrorCode::Replaced);
        }
        let resume_token = random_hex(16);
        if resume_token.is_empty() {
            return Err(Refusal {
                code: ErrorCode::Internal,
                message: "no randomness for a resume token".into(),
            });
        }
        let peer_id = self.new_id("");
        let limit = self.cfg.limits.max_queue_bytes;
        let mut rooms = self.rooms.lock();
        let room = rooms
            .entry(claims.room.clone())
            .or_insert_with(|| {
                tracing::debug!(room = %claims.room, "room created");
                Arc::new(Room {
                    name: claims.room.clone(),
                    peers: Mutex::new(HashMap::new()),
                    sfu: std::sync::atomic::AtomicBool::new(false),
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
            token_exp: claims.exp,
            room: room.clone(),
            resume_token: resume_token.clone(),
            inner: Mutex::new(Inner {
                buf: VecDeque::new(),
                buf_bytes: 0,
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
        tracing::info!(room = %claims.room, user = ?claims.sub, peer = %peer_id, "peer joined");
        if let Some(turn) = &self.cfg.turn {
            self.refresh_ice_servers(&session, turn.clone());
        }
        let members = existing.len() + 1;
        let topology = match &self.sfu {
            _ if room.sfu.load(Ordering::Relaxed) => RoomTopology::Sfu,
            Some(sfu) => sfu.topology(&claims.room, members),
            None => RoomTopology::Mesh,
        };
        if topology == RoomTopology::Sfu && !room.sfu.swap(true, Ordering::Relaxed) {
            self.move_to_sfu(&room, &peer_id);
        }
        // In an SFU room nobody offers to anybody: media goes through the SFU's pseudo-peers.
        let offer_to = match topology {
            RoomTopology::Mesh => existing.iter().map(|p| p.peer_id.clone()).collect(),
            RoomTopology::Sfu => Vec::new(),
        };
        if let (Some(sfu), RoomTopology::Sfu) = (&self.sfu, topology) {
            sfu.joined(SfuMember {
                room: claims.room.clone(),
                peer_id: peer_id.clone(),
                grants: claims.grants.clone(),
                outbox: self.outbox(&session),
                tracks: Vec::new(),
            });
        }
        let ice_servers = self.ice_servers_for(&peer_id);
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
            ice_servers,
            limits: self.cfg.limits.info(),
            topology,
        };
        Ok((session, welcome))
    }

    /// `room` (a mesh so far) grew past the mesh size: its members (all but the newcomer
    /// `except`) join the SFU and are told to move (`topology` frame).
    fn move_to_sfu(self: &Arc<Self>, room: &Arc<Room>, except: &str) {
        let Some(sfu) = &self.sfu else { return };
        let members: Vec<Arc<Session>> = room
            .peers
            .lock()
            .values()
            .filter(|s| s.peer_id != except)
            .cloned()
            .collect();
        if !members.is_empty() {
            tracing::info!(room = %room.name, members = members.len(), "room moves to the SFU");
        }
        for s in members {
            sfu.joined(SfuMember {
                room: room.name.clone(),
                peer_id: s.peer_id.clone(),
                grants: s.grants.clone(),
                outbox: self.outbox(&s),
                tracks: s.inner.lock().tracks.clone(),
            });
            (self.outbox(&s))(ServerMsg::Topology {
                n: 0,
                topology: RoomTopology::Sfu,
            });
        }
    }

    /// A way for a service to push frames into `session`'s reliable stream (a session whose
    /// queue overflows ends with `slow_consumer`, as for relayed frames).
    fn outbox(self: &Arc<Self>, session: &Arc<Session>) -> Outbox {
        let hub = Arc::downgrade(self);
        let s = Arc::downgrade(session);
        Arc::new(move |msg: ServerMsg| {
            let (Some(hub), Some(s)) = (hub.upgrade(), s.upgrade()) else {
                return false;
            };
            if s.inner.lock().ended.is_some() {
                return false;
            }
            if !s.push(body(&msg), hub.cfg.limits.max_queue_bytes) {
                hub.terminate(&s, LeaveReason::SlowConsumer, ErrorCode::SlowConsumer);
                return false;
            }
            true
        })
    }

    /// Remove `target` from its room and keep its user out until `ban_until` (unix seconds;
    /// `None`: until its token expires, `Some(0)`: no ban).
    pub fn kick(&self, target: &Arc<Session>, ban_ms: Option<u64>) {
        let now = unix_now();
        let until = match ban_ms {
            None => target.token_exp,
            Some(ms) => now.saturating_add(ms.div_ceil(1000)),
        };
        if until > now {
            let mut bans = self.bans.lock();
            bans.retain(|_, t| *t > now);
            bans.insert((target.room.name.clone(), target.user.clone()), until);
        }
        self.terminate(target, LeaveReason::Kicked, ErrorCode::Kicked);
    }

    /// The end of `user`'s ban from `room`, if one is in force.
    fn banned_until(&self, room: &str, user: &str) -> Option<u64> {
        let now = unix_now();
        self.bans
            .lock()
            .get(&(room.to_owned(), user.to_owned()))
            .copied()
            .filter(|t| *t > now)
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
        g.release_upto(last_n);
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
            ice_servers: match &self.cfg.turn {
                Some(_) => self.ice_servers_for(&session.peer_id),
                None => Vec::new(),
            },
        };
        drop(g);
        // Wake a still-attached older connection so it notices it was superseded.
        session.notify.notify_waiters();
        tracing::info!(room = %session.room.name, peer = %session.peer_id, last_n, "session resumed");
        Ok((session, gen_, reply))
    }

    /// A new server-unique id: `<prefix>-<kind><n>` (peers have no kind, media tests `mt`).
    pub(super) fn new_id(&self, kind: &str) -> String {
        format!(
            "{}-{kind}{}",
            self.peer_prefix,
            self.next_peer.fetch_add(1, Ordering::Relaxed)
        )
    }

    /// The configured ICE servers, then TURN credentials minted for `peer_id` now.
    pub(super) fn ice_servers_for(&self, peer_id: &str) -> Vec<IceServer> {
        let mut servers = self.cfg.ice_servers.clone();
        servers.extend(self.cfg.turn.as_ref().map(|t| t.mint_for(peer_id)));
        servers
    }

    /// While `session` lives, push fresh ICE servers into its stream every refresh period,
    /// so its credentials never expire under it.
    fn refresh_ice_servers(self: &Arc<Self>, session: &Arc<Session>, turn: Arc<dyn IceMinter>) {
        let hub = Arc::downgrade(self);
        let s = session.clone();
        tokio::spawn(async move {
            let every = turn.refresh_every().max(Duration::from_secs(1));
            loop {
                tokio::time::sleep(every).await;
                let Some(hub) = hub.upgrade() else { return };
                if s.inner.lock().ended.is_some() {
                    return;
                }
                let frame = body(&ServerMsg::IceServers {
                    n: 0,
                    ice_servers: hub.ice_servers_for(&s.peer_id),
                });
                if !s.push(frame, hub.cfg.limits.max_queue_bytes) {
                    hub.terminate(&s, LeaveReason::SlowConsumer, ErrorCode::SlowConsumer);
                    return;
                }
            }
        });
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
        if code == ErrorCode::SlowConsumer {
            // Its backlog is what overflowed: free it now, the `bye` goes out alone.
            let mut g = session.inner.lock();
            let upto = g.next_n;
            g.release_upto(upto);
            g.sent_upto = upto - 1;
        }
        session.notify.notify_one();
        self.resumable.lock().remove(&session.resume_token);
        let mut overflowed = Vec::new();
        let mut closed = false;
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
                if !s.push(left.clone(), self.cfg.limits.max_queue_bytes) {
                    overflowed.push(s.clone());
                }
            }
            if peers.is_empty()
                && rooms
                    .get(&session.room.name)
                    .is_some_and(|r| Arc::ptr_eq(r, &session.room))
            {
                rooms.remove(&session.room.name);
                closed = true;
                tracing::debug!(room = %session.room.name, "room dropped (empty)");
            }
        }
        if let Some(sfu) = &self.sfu {
            sfu.left(&session.room.name, &session.peer_id);
        }
        if closed && let Some(service) = &self.service {
            service.room_closed(&session.room.name);
        }
        tracing::info!(room = %session.room.name, peer = %session.peer_id, ?reason, "peer left");
        for s in overflowed {
            self.terminate(&s, LeaveReason::SlowConsumer, ErrorCode::SlowConsumer);
        }
    }
}
