//! The SFU bridge: rooms whose media goes through Janus VideoRoom instead of a mesh.
//!
//! The server stays the control plane (tokens, grants, rooms, presence, messages, resume) and
//! drives Janus over Janus's own WebSocket API ([`janus`]) on a private address, with Janus's
//! `api_secret` (every request) and the VideoRoom `admin_key` (room creation) set, so clients
//! never talk to Janus: they exchange SDP and ICE with the pseudo-peers `sfu-publish` and
//! `sfu-subscribe` over their Streamwire connection (docs/protocol.md, "SFU rooms"). Each
//! Streamwire room is one Janus VideoRoom, placed on the instance serving the fewest members
//! when it is created, and driven by one task ([`room`]); a room outgrowing its instance
//! (`SfuConfig::instance_capacity`) spans further ones ([`cascade`]).
//!
//! ```no_run
//! # async fn demo() -> Result<(), streamwire::server::ServerError> {
//! use streamwire::server::{Server, ServerConfig, sfu::SfuConfig};
//! let mut cfg = ServerConfig::new("127.0.0.1:0".parse().unwrap(), vec![7; 32]);
//! cfg.sfu = Some(SfuConfig::new(vec!["ws://10.0.0.5:8188".into()], "api-secret", "admin-key"));
//! let server = Server::bind(cfg).await?; // connects to every Janus instance
//! # Ok(()) }
//! ```

mod admin;
mod cascade;
mod downlink;
mod janus;
mod layers;
mod recovery;
mod room;
pub(crate) mod status;
mod subscription;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use futures::future::BoxFuture;
use parking_lot::Mutex;
use tokio::sync::{mpsc, oneshot, watch};

use crate::signalling::protocol::{RoomTopology, TrackInfo};
use crate::signalling::service::{PseudoPeerSignal, ServiceError, Sfu, SfuMember};
pub use admin::SfuAdmin;
use janus::Janus;

/// Which rooms use the SFU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TopologyChoice {
    /// Every room is a mesh (the default; the SFU is not used).
    #[default]
    Mesh,
    /// Every room goes through the SFU.
    Sfu,
    /// A room is a mesh up to `mesh_max` members and moves to the SFU when it grows past
    /// that; it stays there while it lives.
    Auto {
        /// Largest mesh.
        mesh_max: usize,
    },
}

/// Largest mesh of [`TopologyChoice::Auto`] unless configured (`--auto-mesh-max`).
pub const DEFAULT_AUTO_MESH_MAX: usize = 4;

impl std::str::FromStr for TopologyChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "mesh" => Ok(TopologyChoice::Mesh),
            "sfu" => Ok(TopologyChoice::Sfu),
            "auto" => Ok(TopologyChoice::Auto {
                mesh_max: DEFAULT_AUTO_MESH_MAX,
            }),
            other => Err(format!(
                "unknown topology `{other}` (expected `mesh`, `sfu` or `auto`)"
            )),
        }
    }
}

/// How the server reaches its Janus instances.
#[derive(Debug, Clone)]
pub struct SfuConfig {
    /// Janus WebSocket API URLs (`ws://HOST:PORT`, on a private network).
    pub urls: Vec<String>,
    /// Janus's `api_secret` (janus.jcfg, `general.api_secret`).
    pub api_secret: String,
    /// The VideoRoom plugin's `admin_key` (janus.plugin.videoroom.jcfg, `general.admin_key`).
    pub admin_key: String,
    /// Which rooms use the SFU. Default [`TopologyChoice::Sfu`] (configuring an SFU means
    /// using it); `streamwire serve` sets it from `--topology`.
    pub topology: TopologyChoice,
    /// Most members one instance serves, over all its rooms (`--sfu-instance-capacity`).
    /// A member joining a room whose instances are full is placed on another instance,
    /// which then carries the room too: the room spans both, each publication forwarded
    /// between them (docs/sfu.md, "Several instances"). `None` (the default): no limit, a
    /// room stays on the instance it was created on.
    pub instance_capacity: Option<usize>,
    /// The instances' Admin API (`--sfu-admin-port`, `--sfu-admin-secret-file`), for the
    /// bitrates `/sfu/status` and the report show; `None` (the default): no bitrates.
    pub admin: Option<SfuAdmin>,
}

impl SfuConfig {
    /// Instances `urls` with their secrets; every room through the SFU.
    pub fn new(urls: Vec<String>, api_secret: &str, admin_key: &str) -> Self {
        SfuConfig {
            urls,
            api_secret: api_secret.to_owned(),
            admin_key: admin_key.to_owned(),
            topology: TopologyChoice::Sfu,
            instance_capacity: None,
            admin: None,
        }
    }
}

/// Why the bridge could not start.
#[derive(Debug, thiserror::Error)]
pub enum SfuError {
    /// No instance configured.
    #[error("the SFU configuration lists no Janus instance")]
    NoInstance,
    /// An instance could not be reached or refused the API secret.
    #[error("cannot use the SFU: {0}")]
    Connect(String),
}

/// How long after losing an instance the bridge tries to connect to it again, and then
/// between attempts.
pub const RECONNECT_INTERVAL: Duration = Duration::from_secs(1);

struct RoomEntry {
    cmds: mpsc::UnboundedSender<room::Cmd>,
    /// The instances the room is on, with how many of its members each serves.
    load: HashMap<usize, usize>,
}

/// The bridge between the hub and the Janus instances.
pub(crate) struct Bridge {
    cfg: SfuConfig,
    /// The current connection to each configured instance (replaced when it reconnects).
    instances: Vec<Mutex<Janus>>,
    /// Bumped each time an instance is connected again after it was lost.
    reconnected: watch::Sender<u64>,
    rooms: Mutex<HashMap<String, RoomEntry>>,
    next_room: AtomicU64,
}

impl Bridge {
    /// Connect to every configured instance.
    pub(crate) async fn connect(cfg: SfuConfig) -> Result<Arc<Bridge>, SfuError> {
        if cfg.urls.is_empty() {
            return Err(SfuError::NoInstance);
        }
        let mut instances = Vec::new();
        for url in &cfg.urls {
            let j = Janus::connect(url, &cfg.api_secret)
                .await
                .map_err(|e| SfuError::Connect(e.to_string()))?;
            instances.push(Mutex::new(j));
        }
        // Janus room ids of this server start at a random point: several servers may share
        // an instance.
        let mut b = [0u8; 4];
        getrandom::getrandom(&mut b).map_err(|e| SfuError::Connect(e.to_string()))?;
        let base = u64::from(u32::from_le_bytes(b)) << 16;
        let bridge = Arc::new(Bridge {
            cfg,
            instances,
            reconnected: watch::Sender::new(0),
            rooms: Mutex::new(HashMap::new()),
            next_room: AtomicU64::new(base),
        });
        for i in 0..bridge.instances.len() {
            tokio::spawn(Bridge::supervise(Arc::downgrade(&bridge), i));
        }
        Ok(bridge)
    }

    /// Keep instance `i` connected: whenever its connection is lost (Janus stopped, died or
    /// timed the session out), connect again every [`RECONNECT_INTERVAL`] until it answers,
    /// then tell the rooms waiting for an instance ([`Bridge::reconnected`]).
    async fn supervise(bridge: Weak<Bridge>, i: usize) {
        loop {
            let Some(janus) = bridge.upgrade().map(|b| b.instance(i)) else {
                return;
            };
            janus.lost().await;
            let url = janus.url().to_owned();
            drop(janus);
            let mut attempts = 0u64;
            let fresh = loop {
                tokio::time::sleep(RECONNECT_INTERVAL).await;
                let Some(b) = bridge.upgrade() else { return };
                attempts += 1;
                match Janus::connect(&url, &b.cfg.api_secret).await {
                    Ok(j) => break j,
                    // Once a minute is enough to say it is still down.
                    Err(e) if attempts % 60 == 1 => {
                        tracing::warn!(url, error = %e, "Janus instance still unreachable")
                    }
                    Err(_) => {}
                }
            };
            let Some(b) = bridge.upgrade() else { return };
            tracing::info!(url, attempts, "Janus instance connected again");
            *b.instances[i].lock() = fresh;
            b.reconnected.send_modify(|n| *n += 1);
        }
    }

    /// The current connection to instance `i`.
    fn instance(&self, i: usize) -> Janus {
        self.instances[i].lock().clone()
    }

    /// Members instance `i` serves, over all rooms.
    fn load(rooms: &HashMap<String, RoomEntry>, i: usize) -> usize {
        rooms.values().filter_map(|r| r.load.get(&i)).sum()
    }

    /// Whether instance `i` may take one more member (`instance_capacity`).
    fn fits(&self, rooms: &HashMap<String, RoomEntry>, i: usize) -> bool {
        self.cfg
            .instance_capacity
            .is_none_or(|c| Bridge::load(rooms, i) < c)
    }

    /// The connected instance serving the fewest members (then: holding the fewest rooms),
    /// if any is connected.
    fn least_loaded(&self, rooms: &HashMap<String, RoomEntry>) -> Option<usize> {
        (0..self.instances.len())
            .filter(|i| self.instance(*i).alive())
            .min_by_key(|i| {
                let on = rooms.values().filter(|r| r.load.contains_key(i)).count();
                (Bridge::load(rooms, *i), on)
            })
    }

    /// Move room `name` to the least-loaded connected instance: its index and connection, or
    /// `None` while no instance is connected.
    fn replace_instance(&self, name: &str) -> Option<(usize, Janus)> {
        let mut rooms = self.rooms.lock();
        let i = self.least_loaded(&rooms)?;
        if let Some(r) = rooms.get_mut(name) {
            r.load = HashMap::from([(i, 0)]);
        }
        Some((i, self.instance(i)))
    }

    /// Whether instance `i` is connected and may take one more member.
    fn has_room_for(&self, i: usize) -> bool {
        let rooms = self.rooms.lock();
        self.instance(i).alive() && self.fits(&rooms, i)
    }

    /// A further instance for room `name`, which is on the instances `taken` and full
    /// there: the least-loaded connected instance that is not full, if there is one.
    fn spill(&self, name: &str, taken: &[usize]) -> Option<(usize, Janus)> {
        let mut rooms = self.rooms.lock();
        let i = (0..self.instances.len())
            .filter(|i| !taken.contains(i) && self.instance(*i).alive() && self.fits(&rooms, *i))
            .min_by_key(|i| Bridge::load(&rooms, *i))?;
        if let Some(r) = rooms.get_mut(name) {
            r.load.insert(i, 0);
        }
        Some((i, self.instance(i)))
    }

    /// Record where room `name`'s members are: members per instance of the room.
    fn set_load(&self, name: &str, load: HashMap<usize, usize>) {
        if let Some(r) = self.rooms.lock().get_mut(name) {
            r.load = load;
        }
    }

    /// Members instance `i` serves now, over all rooms.
    fn members_on(&self, i: usize) -> usize {
        Bridge::load(&self.rooms.lock(), i)
    }

    /// A fresh Janus room id.
    fn room_id(&self) -> u64 {
        self.next_room.fetch_add(1, Ordering::Relaxed)
    }

    fn send(&self, room: &str, cmd: room::Cmd) -> bool {
        self.rooms
            .lock()
            .get(room)
            .is_some_and(|r| r.cmds.send(cmd).is_ok())
    }
}

impl Sfu for Arc<Bridge> {
    fn topology(&self, _room: &str, members: usize) -> RoomTopology {
        match self.cfg.topology {
            TopologyChoice::Mesh => RoomTopology::Mesh,
            TopologyChoice::Sfu => RoomTopology::Sfu,
            TopologyChoice::Auto { mesh_max } if members > mesh_max => RoomTopology::Sfu,
            TopologyChoice::Auto { .. } => RoomTopology::Mesh,
        }
    }

    fn joined(&self, member: SfuMember) {
        let mut rooms = self.rooms.lock();
        let name = member.room.clone();
        let entry = rooms.get(&name).filter(|r| !r.cmds.is_closed());
        let cmd = room::Cmd::Joined(member);
        if let Some(e) = entry {
            let _ = e.cmds.send(cmd);
            return;
        }
        // With no instance connected, the room starts on the first one and waits for an
        // instance like a room whose instance was lost.
        let instance = self.least_loaded(&rooms).unwrap_or(0);
        let (tx, rx) = mpsc::unbounded_channel();
        let _ = tx.send(cmd);
        let task = room::RoomTask {
            name: name.clone(),
            instance,
            janus: self.instance(instance),
            janus_room: self.room_id(),
            admin_key: self.cfg.admin_key.clone(),
            bridge: Arc::downgrade(self),
            cmds: rx,
            next_feed: 0,
            admin: self.cfg.admin.clone(),
        };
        rooms.insert(
            name,
            RoomEntry {
                cmds: tx,
                load: HashMap::from([(instance, 0)]),
            },
        );
        tokio::spawn(task.run());
    }

    fn left(&self, room: &str, peer_id: &str) {
        self.send(room, room::Cmd::Left(peer_id.to_owned()));
    }

    fn tracks(&self, room: &str, peer_id: &str, tracks: Vec<TrackInfo>) {
        let camera = layers::camera_size(&tracks);
        self.send(room, room::Cmd::Camera(peer_id.to_owned(), camera));
    }

    fn view(&self, room: &str, peer_id: &str, mid: &str, width: u32, height: u32) {
        self.send(
            room,
            room::Cmd::View {
                peer: peer_id.to_owned(),
                mid: mid.to_owned(),
                width,
                height,
            },
        );
    }

    fn signal(
        &self,
        room: &str,
        peer_id: &str,
        to: &str,
        signal: PseudoPeerSignal,
    ) -> BoxFuture<'static, Result<(), ServiceError>> {
        let (reply, rx) = oneshot::channel();
        let sent = self.send(
            room,
            room::Cmd::Signal {
                peer: peer_id.to_owned(),
                to: to.to_owned(),
                signal,
                reply,
            },
        );
        Box::pin(async move {
            if !sent {
                return Err(ServiceError::Failed("this room is not on the SFU".into()));
            }
            rx.await
                .unwrap_or_else(|_| Err(ServiceError::Failed("the SFU room task ended".into())))
        })
    }
}
