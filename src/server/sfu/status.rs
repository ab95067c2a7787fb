//! `GET /sfu/status?room=R`: what the SFU bridge holds for room `R`, as JSON, for a token of
//! that room with the `admin` grant (`Authorization: Bearer <jwt>` or the `token` query
//! parameter; docs/sfu.md, "Status").

use std::sync::Arc;

use serde::Serialize;
use tokio::sync::oneshot;

use super::Bridge;
use super::room::Cmd;

/// One room on the SFU, as `/sfu/status` shows it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct RoomStatus {
    /// The Streamwire room.
    pub room: String,
    /// The Janus instance it is on: its index in the configured list (`--sfu` order).
    pub instance: usize,
    /// Whether the server's connection to that instance is up.
    pub instance_connected: bool,
    /// The Janus VideoRoom id (as in Janus's own log).
    pub janus_room: u64,
    /// `up`, or `down`: the instance was lost and the room waits for one to be re-created on.
    pub state: &'static str,
    /// Times the room was re-created after its instance was lost.
    pub recreated: u64,
    /// Members of the room.
    pub members: usize,
    /// Members whose publishing connection to Janus is up.
    pub publishers: usize,
    /// Members with a subscribing connection.
    pub subscribers: usize,
    /// Media streams Janus forwards: over every subscribing connection, the m-lines carrying
    /// a member's media.
    pub forwarded_streams: usize,
}

/// How long the endpoint waits for the room's task.
const STATUS_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

impl Bridge {
    /// The status of `room`, if it is on the SFU now.
    pub(crate) async fn status(&self, room: &str) -> Option<RoomStatus> {
        let (tx, rx) = oneshot::channel();
        if !self.send(room, Cmd::Status(tx)) {
            return None;
        }
        tokio::time::timeout(STATUS_TIMEOUT, rx).await.ok()?.ok()
    }
}

/// The body of `/sfu/status` for `room` (the token was checked): `{"room": R, "sfu": null}`
/// when the room has no SFU room now (it is empty, or a mesh), else `{"room": R, "sfu":
/// RoomStatus}`.
pub(crate) async fn body(bridge: &Arc<Bridge>, room: &str) -> String {
    let status = bridge.status(room).await;
    serde_json::json!({ "room": room, "sfu": status }).to_string()
}
