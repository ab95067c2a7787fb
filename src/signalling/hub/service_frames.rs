//! Frames answered by the server's services and the media plane: whiteboard messages,
//! telemetry, feedback and privacy requests (passed to the [`Service`]), and SDP/ICE addressed
//! to the SFU's pseudo-peers (after the grant check).
//!
//! [`Service`]: crate::signalling::service::Service

use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::io::{AsyncRead, AsyncWrite};

use super::conn::{Conn, Flow, WsResult};
use super::media;
use super::session::Session;
use crate::signalling::protocol::whiteboard::valid_board;
use crate::signalling::protocol::{
    ClientMsg, ErrorCode, Grant, MAX_MID_LEN, MAX_VIEW_PIXELS, SFU_PUBLISH, SFU_SUBSCRIBE,
    TrackInfo,
};
use crate::signalling::service::{
    Caller, PseudoPeerSignal, Request, ServiceError, WhiteboardRequest,
};

/// The addressee and the signal of an `offer`, `answer` or `ice` (for a server pseudo-peer).
pub(super) fn pseudo_peer_signal(msg: &ClientMsg) -> Option<(String, PseudoPeerSignal)> {
    let (to, signal) = match msg {
        ClientMsg::Offer { to, sdp, .. } => (to, PseudoPeerSignal::Offer(sdp.clone())),
        ClientMsg::Answer { to, sdp, .. } => (to, PseudoPeerSignal::Answer(sdp.clone())),
        ClientMsg::Ice {
            to,
            candidate,
            sdp_mline_index,
            ..
        } => (
            to,
            PseudoPeerSignal::Ice {
                candidate: candidate.clone(),
                mline: *sdp_mline_index,
            },
        ),
        _ => return None,
    };
    Some((to.clone(), signal))
}

/// The pseudo-peer and the signal of an `offer`, `answer` or `ice` addressed to the SFU.
pub(super) fn sfu_signal(msg: &ClientMsg) -> Option<(String, PseudoPeerSignal)> {
    pseudo_peer_signal(msg).filter(|(to, _)| to == SFU_PUBLISH || to == SFU_SUBSCRIBE)
}

impl<S> Conn<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    /// A whiteboard message: the server's whiteboard service applies, answers and relays it.
    pub(super) async fn on_whiteboard(
        &mut self,
        s: &Arc<Session>,
        board: String,
        data: Vec<u8>,
    ) -> WsResult<Flow> {
        let t = "whiteboard";
        if let Err(why) = valid_board(&board) {
            self.send_error(
                ErrorCode::InvalidField,
                format!("`{t}` field `board`: {why}"),
                Some(t),
                Some("board"),
            )
            .await?;
            return Ok(Flow::Continue);
        }
        let max = self.hub.cfg.limits.max_payload_bytes;
        if data.len() > max {
            self.send_error(
                ErrorCode::PayloadTooLarge,
                format!(
                    "`{t}` field `data` is {} bytes decoded, max_payload_bytes = {max}",
                    data.len()
                ),
                Some(t),
                Some("data"),
            )
            .await?;
            return Ok(Flow::Continue);
        }
        let Some(service) = self.hub.service.clone() else {
            self.send_error(
                ErrorCode::NotImplemented,
                format!("`{t}`: this server keeps no whiteboards"),
                Some(t),
                None,
            )
            .await?;
            return Ok(Flow::Continue);
        };
        let request = WhiteboardRequest {
            board,
            data,
            can_draw: s.has(Grant::Draw) || s.has(Grant::Publish),
            admin: s.has(Grant::Admin),
        };
        let caller = Caller {
            room: s.room.name.clone(),
            peer: s.peer_id.clone(),
            user: s.user.clone(),
            name: s.name.clone(),
            addr: self.remote.ip(),
        };
        match service.whiteboard(caller, request).await {
            Ok(outcome) => {
                for frame in outcome.reply {
                    self.push_self(s, frame);
                }
                if let Some(frame) = outcome.relay {
                    self.hub.relay_room(s, &frame);
                }
            }
            Err(e) => self.service_error(t, e).await?,
        }
        Ok(Flow::Continue)
    }

    /// The error frame for a service's refusal or failure.
    async fn service_error(&mut self, t: &str, e: ServiceError) -> WsResult<()> {
        match e {
            ServiceError::Invalid { what, reason } => {
                // `what` is the dotted path within the frame (`batch.records[3].ts_ms`), or
                // within the feedback, whose fields are the frame's own (`rating`).
                let field = what.strip_prefix("feedback.").unwrap_or(&what).to_owned();
                self.send_error(
                    ErrorCode::InvalidField,
                    format!("`{t}` field `{field}`: {reason}"),
                    Some(t),
                    Some(&field),
                )
                .await
            }
            ServiceError::Failed(what) => {
                self.send_error(ErrorCode::Internal, format!("`{t}`: {what}"), Some(t), None)
                    .await
            }
            ServiceError::Refused {
                code,
                reason,
                field,
            } => {
                self.send_error(code, format!("`{t}`: {reason}"), Some(t), field)
                    .await
            }
        }
    }

    /// Grants on media: an SDP that would send audio/video from a peer without `publish`, or
    /// to a peer without `subscribe`, is refused (`forbidden`, field `sdp`) and not relayed.
    pub(super) async fn media_allowed(
        &mut self,
        s: &Arc<Session>,
        t: &str,
        to: &str,
        sdp: &str,
    ) -> WsResult<bool> {
        let sending = media::sending(sdp);
        let Some(m) = sending.first() else {
            return Ok(true);
        };
        let what = format!("m-line {} ({}) is `{}`", m.index, m.kind, m.direction);
        let problem = if !s.has(Grant::Publish) {
            Some(format!(
                "{what}, but your token lacks the `publish` grant: offer or answer audio and \
                 video only `recvonly` or `inactive`"
            ))
        } else {
            match self.hub.peer_in_room(s, to) {
                Some(target) if !target.has(Grant::Subscribe) => Some(format!(
                    "{what}, but peer `{to}` lacks the `subscribe` grant: offer or answer it \
                     audio and video only `recvonly` or `inactive`"
                )),
                // Unknown peers are reported by the relay.
                _ => None,
            }
        };
        let Some(problem) = problem else {
            return Ok(true);
        };
        self.send_error(
            ErrorCode::Forbidden,
            format!("`{t}` field `sdp`: {problem}"),
            Some(t),
            Some("sdp"),
        )
        .await?;
        Ok(false)
    }

    /// An `offer`, `answer` or `ice` to an SFU pseudo-peer: handed to the server's SFU, which
    /// enforces the grants (only `publish` publishes, only `subscribe` subscribes).
    pub(super) async fn on_sfu(
        &mut self,
        s: &Arc<Session>,
        t: &str,
        (to, signal): (String, PseudoPeerSignal),
    ) -> WsResult<Flow> {
        let Some(sfu) = self.hub.sfu.clone() else {
            self.unknown_peer(t, "to", &to).await?;
            return Ok(Flow::Continue);
        };
        let field = match signal {
            PseudoPeerSignal::Ice { .. } => "candidate",
            _ => "sdp",
        };
        match sfu.signal(&s.room.name, &s.peer_id, &to, signal).await {
            Ok(()) => {}
            Err(ServiceError::Invalid { what, reason }) => {
                self.send_error(
                    ErrorCode::InvalidField,
                    format!("`{t}` field `{what}`: {reason}"),
                    Some(t),
                    Some(&what),
                )
                .await?
            }
            Err(ServiceError::Refused {
                code,
                reason,
                field: refused,
            }) => {
                let field = refused.unwrap_or(field);
                self.send_error(
                    code,
                    format!("`{t}` field `{field}`: {reason}"),
                    Some(t),
                    Some(field),
                )
                .await?
            }
            Err(ServiceError::Failed(why)) => {
                self.send_error(
                    ErrorCode::Internal,
                    format!("`{t}` to `{to}`: {why}"),
                    Some(t),
                    None,
                )
                .await?
            }
        }
        Ok(Flow::Continue)
    }

    /// `sfu_view`: checked, then passed to the SFU in an SFU room (ignored in a mesh).
    pub(super) async fn on_sfu_view(
        &mut self,
        s: &Arc<Session>,
        mid: String,
        width: u32,
        height: u32,
    ) -> WsResult<Flow> {
        let t = "sfu_view";
        let bad = if mid.is_empty() || mid.len() > MAX_MID_LEN {
            Some(("mid", format!("must be 1 to {MAX_MID_LEN} bytes")))
        } else if width > MAX_VIEW_PIXELS {
            Some(("width", format!("{width} is above {MAX_VIEW_PIXELS}")))
        } else if height > MAX_VIEW_PIXELS {
            Some(("height", format!("{height} is above {MAX_VIEW_PIXELS}")))
        } else {
            None
        };
        if let Some((field, why)) = bad {
            self.send_error(
                ErrorCode::InvalidField,
                format!("`{t}` field `{field}`: {why}"),
                Some(t),
                Some(field),
            )
            .await?;
            return Ok(Flow::Continue);
        }
        if let Some(sfu) = &self.hub.sfu
            && s.room.sfu.load(Ordering::Relaxed)
        {
            sfu.view(&s.room.name, &s.peer_id, &mid, width, height);
        }
        Ok(Flow::Continue)
    }

    /// In an SFU room, the SFU learns `s`'s published tracks (their capture sizes).
    pub(super) fn sfu_tracks(&self, s: &Arc<Session>, tracks: Vec<TrackInfo>) {
        if let Some(sfu) = &self.hub.sfu
            && s.room.sfu.load(Ordering::Relaxed)
        {
            sfu.tracks(&s.room.name, &s.peer_id, tracks);
        }
    }

    /// Telemetry, feedback and the admin privacy operations: passed to the server's service.
    pub(super) async fn on_service(&mut self, s: &Arc<Session>, msg: ClientMsg) -> WsResult<Flow> {
        let t = msg.type_name();
        let Some(service) = self.hub.service.clone() else {
            self.send_error(
                ErrorCode::NotImplemented,
                format!("`{t}`: this server stores no telemetry (start it with --db)"),
                Some(t),
                None,
            )
            .await?;
            return Ok(Flow::Continue);
        };
        let request = match msg {
            ClientMsg::Telemetry { batch } => Request::Telemetry(batch),
            ClientMsg::Feedback(feedback) => Request::Feedback(feedback),
            ClientMsg::PrivacyExport { .. } | ClientMsg::PrivacyDelete { .. }
                if !s.has(Grant::Admin) =>
            {
                return self.forbidden(t, "admin").await;
            }
            ClientMsg::PrivacyExport { user } => Request::PrivacyExport { user },
            ClientMsg::PrivacyDelete { user } => Request::PrivacyDelete { user },
            _ => return Ok(Flow::Continue),
        };
        let caller = Caller {
            room: s.room.name.clone(),
            peer: s.peer_id.clone(),
            user: s.user.clone(),
            name: s.name.clone(),
            addr: self.remote.ip(),
        };
        match service.call(caller, request).await {
            Ok(reply) => self.send(&reply).await?,
            Err(e) => self.service_error(t, e).await?,
        }
        Ok(Flow::Continue)
    }
}
