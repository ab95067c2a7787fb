//! Server frames turned into [`Event`]s (and delivery results into the waiting sender's
//! reply).

use super::{Driver, End};
use crate::signalling::client::{Delivery, Event, SignallingState};
use crate::signalling::protocol::ServerMsg;

impl Driver {
    /// Handle one frame of the reliable stream or a control frame; `Some` ends the session.
    pub(super) async fn on_server(&mut self, msg: ServerMsg) -> Option<End> {
        let ev = match msg {
            ServerMsg::PeerJoined {
                peer, expect_offer, ..
            } => Event::PeerJoined { peer, expect_offer },
            ServerMsg::PeerLeft {
                peer_id, reason, ..
            } => Event::PeerLeft { peer_id, reason },
            ServerMsg::Published { peer_id, track, .. } => Event::Published { peer_id, track },
            ServerMsg::Unpublished {
                peer_id, track_id, ..
            } => Event::Unpublished { peer_id, track_id },
            ServerMsg::MetadataChanged {
                peer_id, metadata, ..
            } => Event::MetadataChanged { peer_id, metadata },
            ServerMsg::SfuStreams { streams, fresh, .. } => Event::SfuStreams { streams, fresh },
            ServerMsg::Topology { topology, .. } => Event::Topology(topology),
            ServerMsg::Offer { from, sdp, .. } => Event::Offer { from, sdp },
            ServerMsg::Answer { from, sdp, .. } => Event::Answer { from, sdp },
            ServerMsg::Ice {
                from,
                candidate,
                sdp_mline_index,
                sdp_mid,
                ..
            } => Event::Ice {
                from,
                candidate,
                sdp_mline_index,
                sdp_mid,
            },
            ServerMsg::Message {
                from,
                seq,
                direct,
                payload,
                ..
            } => Event::Message {
                from,
                seq,
                direct,
                payload,
            },
            ServerMsg::Delivery {
                seq,
                status,
                recipients,
                reason,
                ..
            } => {
                self.accepted_upto(seq);
                if let Some((_, reply)) = self.inflight.remove(&seq) {
                    self.pending.set_unsent(self.inflight.len());
                    let _ = reply.send(Ok(Delivery {
                        seq,
                        status,
                        recipients,
                        reason,
                    }));
                }
                return None;
            }
            ServerMsg::Error {
                code,
                message,
                in_type,
                field,
            } => {
                tracing::warn!(%code, ?message, "signalling server reported an error");
                Event::ServerError {
                    code,
                    message,
                    in_type,
                    field,
                }
            }
            ServerMsg::Bye {
                code,
                message,
                reconnect,
            } => {
                tracing::info!(%code, ?message, reconnect, "server said bye");
                if reconnect {
                    // The server dropped our session (shutdown, overflow): join afresh elsewhere.
                    self.session_lost();
                    return Some(End::Lost(format!("{code}: {message}")));
                }
                self.emit(Event::ServerError {
                    code,
                    message: message.clone(),
                    in_type: None,
                    field: None,
                })
                .await;
                return Some(End::Stop(SignallingState::Failed {
                    reason: format!("{code}: {message}"),
                }));
            }
            ServerMsg::Whiteboard {
                from, board, data, ..
            } => Event::Whiteboard { from, board, data },
            ServerMsg::IceServers { ice_servers, .. } => {
                self.new_ice_servers(ice_servers).await;
                return None;
            }
            ServerMsg::TelemetryAck { stored, dropped } => Event::TelemetryAck { stored, dropped },
            ServerMsg::FeedbackAck {} => Event::FeedbackAck,
            ServerMsg::PrivacyExport { user, data } => Event::PrivacyExport { user, data },
            ServerMsg::PrivacyDeleted {
                user,
                records,
                feedback,
                sessions,
                strokes,
            } => Event::PrivacyDeleted {
                user,
                records,
                feedback,
                sessions,
                strokes,
            },
            // Media test frames come only on a media test connection (`crate::media_test`).
            ServerMsg::Pong {}
            | ServerMsg::Welcome { .. }
            | ServerMsg::Resumed { .. }
            | ServerMsg::MediaTestReady { .. }
            | ServerMsg::MediaTestReport { .. }
            | ServerMsg::MediaTestEnded { .. } => {
                return None;
            }
        };
        self.emit(ev).await;
        None
    }
}
