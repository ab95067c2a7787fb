//! `GET /sfu/status?room=R`: what the SFU bridge holds for room `R`, as JSON, for a token of
//! that room with the `admin` grant (`Authorization: Bearer <jwt>` or the `token` query
//! parameter; docs/sfu.md, "Status").

use std::sync::Arc;

use serde::Serialize;
use tokio::sync::oneshot;

use super::Bridge;
use super::room::{Cmd, State};

/// One room on the SFU, as `/sfu/status` shows it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct RoomStatus {
    /// The Streamwire room.
    pub room: String,
    /// The Janus instance it was created on: its index in the configured list (`--sfu`
    /// order).
    pub instance: usize,
    /// Whether the server's connection to that instance is up.
    pub instance_connected: bool,
    /// Every instance the room is on, the first one first.
    pub instances: Vec<SpanStatus>,
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

/// The room on one instance.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct SpanStatus {
    /// Index in the configured list.
    pub instance: usize,
    /// Whether the server's connection to it is up.
    pub connected: bool,
    /// Members it serves (their connections go to it).
    pub members: usize,
    /// Of those, members whose publishing connection is up.
    pub publishers: usize,
    /// Publications of members on other instances forwarded to it (its remote publishers).
    pub remote_publishers: usize,
}

impl State {
    /// What `/sfu/status` shows of the room.
    pub(super) fn status(&self) -> RoomStatus {
        let subscriptions = self
            .members
            .values()
            .filter_map(|m| m.subscription.as_ref());
        let instances: Vec<SpanStatus> = self
            .spans
            .iter()
            .map(|s| {
                let on = || {
                    self.members
                        .values()
                        .filter(|m| m.instance == Some(s.instance))
                };
                SpanStatus {
                    instance: s.instance,
                    connected: s.janus.alive(),
                    members: on().count(),
                    publishers: on().filter(|m| m.published).count(),
                    remote_publishers: self
                        .remotes
                        .values()
                        .filter(|t| t.contains(&s.instance))
                        .count(),
                }
            })
            .collect();
        RoomStatus {
            room: self.task.name.clone(),
            instance: instances.first().map_or(self.task.instance, |s| s.instance),
            instance_connected: instances.first().is_some_and(|s| s.connected),
            instances,
            janus_room: self.task.janus_room,
            state: if self.down { "down" } else { "up" },
            recreated: self.recreated,
            members: self.members.len(),
            publishers: self.members.values().filter(|m| m.published).count(),
            subscribers: subscriptions.clone().count(),
            forwarded_streams: subscriptions.map(|s| s.streams).sum(),
        }
    }
}

impl RoomStatus {
    /// The figures the room's report shows (`/report`).
    pub(crate) fn load(&self) -> crate::report::SfuLoad {
        crate::report::SfuLoad {
            state: self.state.to_owned(),
            members: self.members,
            publishers: self.publishers,
            subscribers: self.subscribers,
            forwarded_streams: self.forwarded_streams,
            recreated: self.recreated,
            instances: self
                .instances
                .iter()
                .map(|s| crate::report::SfuInstanceLoad {
                    instance: s.instance,
                    connected: s.connected,
                    members: s.members,
                    publishers: s.publishers,
                    remote_publishers: s.remote_publishers,
                })
                .collect(),
        }
    }
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
