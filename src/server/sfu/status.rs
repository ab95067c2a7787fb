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
    /// Media Janus received from the room's publishers in the last second, kbit/s (its
    /// Admin API); `None` without `SfuConfig::admin` or when an instance did not answer.
    pub ingest_kbps: Option<f64>,
    /// Media Janus sent to the room's members in the last second, kbit/s (likewise).
    pub forward_kbps: Option<f64>,
    /// Every simulcast stream of the room's subscriptions: the layer Janus forwards to each
    /// subscriber and why (docs/sfu.md, "Simulcast").
    pub simulcast: Vec<super::layers::LayerStatus>,
    /// The members' handles, for the Admin API's figures.
    #[serde(skip)]
    pub handles: Vec<HandleRef>,
}

/// One member's handle on an instance.
#[derive(Debug, Clone)]
pub(crate) struct HandleRef {
    pub instance: usize,
    pub handle: u64,
    /// A publishing connection (else a subscribing one).
    pub publisher: bool,
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
    /// Media it received from its publishers in the last second, kbit/s (`None`: no Admin
    /// API, or it did not answer).
    pub ingest_kbps: Option<f64>,
    /// Media it sent to its members in the last second, kbit/s.
    pub forward_kbps: Option<f64>,
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
                    ingest_kbps: None,
                    forward_kbps: None,
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
            ingest_kbps: None,
            forward_kbps: None,
            simulcast: self.layer_status(),
            handles: self
                .members
                .values()
                .filter_map(|m| Some((m.instance?, m)))
                .flat_map(|(instance, m)| {
                    let publisher = m.publisher.map(|handle| HandleRef {
                        instance,
                        handle,
                        publisher: true,
                    });
                    let subscriber = m.subscription.as_ref().map(|s| HandleRef {
                        instance,
                        handle: s.handle,
                        publisher: false,
                    });
                    publisher.into_iter().chain(subscriber)
                })
                .collect(),
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
            ingest_kbps: self.ingest_kbps,
            forward_kbps: self.forward_kbps,
            instances: self
                .instances
                .iter()
                .map(|s| crate::report::SfuInstanceLoad {
                    instance: s.instance,
                    connected: s.connected,
                    members: s.members,
                    publishers: s.publishers,
                    remote_publishers: s.remote_publishers,
                    ingest_kbps: s.ingest_kbps,
                    forward_kbps: s.forward_kbps,
                })
                .collect(),
        }
    }
}

/// How long the endpoint waits for the room's task.
const STATUS_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

impl Bridge {
    /// The status of `room`, if it is on the SFU now, with bitrates when the Admin API is
    /// configured.
    pub(crate) async fn status(&self, room: &str) -> Option<RoomStatus> {
        let (tx, rx) = oneshot::channel();
        if !self.send(room, Cmd::Status(tx)) {
            return None;
        }
        let mut st = tokio::time::timeout(STATUS_TIMEOUT, rx).await.ok()?.ok()?;
        if let Some(admin) = &self.cfg.admin {
            self.add_rates(&mut st, admin).await;
        }
        Some(st)
    }

    /// Ask each instance of the room for its handles' bitrates (`handle_info`).
    async fn add_rates(&self, st: &mut RoomStatus, admin: &super::SfuAdmin) {
        let (mut ingest, mut forward, mut all) = (0.0, 0.0, true);
        for span in &mut st.instances {
            let janus = self.instance(span.instance);
            let handles: Vec<&HandleRef> = st
                .handles
                .iter()
                .filter(|h| h.instance == span.instance)
                .collect();
            let ids: Vec<u64> = handles.iter().map(|h| h.handle).collect();
            match super::admin::rates(janus.address(), admin, janus.session_id(), &ids).await {
                Ok(rates) => {
                    let sum = |publisher: bool, pick: fn(&(u64, u64)) -> u64| {
                        handles
                            .iter()
                            .filter(|h| h.publisher == publisher)
                            .filter_map(|h| rates.get(&h.handle))
                            .map(pick)
                            .sum::<u64>() as f64
                            / 1000.0
                    };
                    let (i, f) = (sum(true, |r| r.0), sum(false, |r| r.1));
                    span.ingest_kbps = Some(i);
                    span.forward_kbps = Some(f);
                    ingest += i;
                    forward += f;
                }
                Err(e) => {
                    tracing::warn!(instance = span.instance, error = %e,
                                   "no bitrates from the Janus Admin API");
                    all = false;
                }
            }
        }
        if all {
            st.ingest_kbps = Some(ingest);
            st.forward_kbps = Some(forward);
        }
    }
}

/// The body of `/sfu/status` for `room` (the token was checked): `{"room": R, "sfu": null}`
/// when the room has no SFU room now (it is empty, or a mesh), else `{"room": R, "sfu":
/// RoomStatus}`.
pub(crate) async fn body(bridge: &Arc<Bridge>, room: &str) -> String {
    let status = bridge.status(room).await;
    serde_json::json!({ "room": room, "sfu": status }).to_string()
}
