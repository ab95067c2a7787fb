//! The SFU bridge: rooms whose media goes through Janus VideoRoom instead of a mesh.
//!
//! The server stays the control plane (tokens, grants, rooms, presence, messages, resume) and
//! drives Janus over Janus's own WebSocket API ([`janus`]) on a private address, with Janus's
//! `api_secret` (every request) and the VideoRoom `admin_key` (room creation) set, so clients
//! never talk to Janus: they exchange SDP and ICE with the pseudo-peers `sfu-publish` and
//! `sfu-subscribe` over their Streamwire connection (docs/protocol.md, "SFU rooms"). Each
//! Streamwire room is one Janus VideoRoom, placed on the instance holding the fewest rooms
//! when it is created, and driven by one task ([`room`]).
//!
//! ```no_run
//! # async fn demo() -> Result<(), streamwire::server::ServerError> {
//! use streamwire::server::{Server, ServerConfig, sfu::SfuConfig};
//! let mut cfg = ServerConfig::new("127.0.0.1:0".parse().unwrap(), vec![7; 32]);
//! cfg.sfu = Some(SfuConfig::new(vec!["ws://10.0.0.5:8188".into()], "api-secret", "admin-key"));
//! let server = Server::bind(cfg).await?; // connects to every Janus instance
//! # Ok(()) }
//! ```

mod janus;
mod room;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures::future::BoxFuture;
use parking_lot::Mutex;
use tokio::sync::{mpsc, oneshot};

use crate::signalling::protocol::RoomTopology;
use crate::signalling::service::{PseudoPeerSignal, ServiceError, Sfu, SfuMember};
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
}

impl SfuConfig {
    /// Instances `urls` with their secrets; every room through the SFU.
    pub fn new(urls: Vec<String>, api_secret: &str, admin_key: &str) -> Self {
        SfuConfig {
            urls,
            api_secret: api_secret.to_owned(),
            admin_key: admin_key.to_owned(),
            topology: TopologyChoice::Sfu,
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

struct RoomEntry {
    cmds: mpsc::UnboundedSender<room::Cmd>,
    instance: usize,
}

/// The bridge between the hub and the Janus instances.
pub(crate) struct Bridge {
    cfg: SfuConfig,
    instances: Vec<Janus>,
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
            instances.push(j);
        }
        // Janus room ids of this server start at a random point: several servers may share
        // an instance.
        let mut b = [0u8; 4];
        getrandom::getrandom(&mut b).map_err(|e| SfuError::Connect(e.to_string()))?;
        let base = u64::from(u32::from_le_bytes(b)) << 16;
        Ok(Arc::new(Bridge {
            cfg,
            instances,
            rooms: Mutex::new(HashMap::new()),
            next_room: AtomicU64::new(base),
        }))
    }

    /// The instance with the fewest rooms (among those still connected).
    fn least_loaded(rooms: &HashMap<String, RoomEntry>, instances: &[Janus]) -> usize {
        (0..instances.len())
            .min_by_key(|i| {
                let load = rooms.values().filter(|r| r.instance == *i).count();
                (!instances[*i].alive(), load)
            })
            .unwrap_or(0)
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
        let instance = Bridge::least_loaded(&rooms, &self.instances);
        let (tx, rx) = mpsc::unbounded_channel();
        let _ = tx.send(cmd);
        let task = room::RoomTask {
            name: name.clone(),
            janus: self.instances[instance].clone(),
            janus_room: self.next_room.fetch_add(1, Ordering::Relaxed),
            admin_key: self.cfg.admin_key.clone(),
            bridge: Arc::downgrade(self),
            cmds: rx,
            next_feed: 0,
        };
        rooms.insert(name, RoomEntry { cmds: tx, instance });
        tokio::spawn(task.run());
    }

    fn left(&self, room: &str, peer_id: &str) {
        self.send(room, room::Cmd::Left(peer_id.to_owned()));
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
