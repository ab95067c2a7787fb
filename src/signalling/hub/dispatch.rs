//! What each client frame does: `join`/`resume` before joining, then relay, messages,
//! tracks, metadata, kicks and the service requests (telemetry, feedback, privacy).

use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite};

use super::conn::{Conn, Flow, WsResult};
use super::session::Session;
use crate::signalling::protocol::whiteboard::valid_board;
use crate::signalling::protocol::{
    ClientMsg, DeliveryStatus, ErrorCode, Grant, LeaveReason, PROTOCOL_VERSION, ServerMsg,
    decode_client,
};
use crate::signalling::service::{Caller, Request, ServiceError, WhiteboardRequest};
use crate::signalling::token;

impl<S> Conn<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    pub(super) async fn on_text(&mut self, text: &str) -> WsResult<Flow> {
        let limits = self.hub.cfg.limits.clone();
        if text.len() > limits.max_frame_bytes {
            self.send_error(
                ErrorCode::FrameTooLarge,
                format!(
                    "frame of {} bytes exceeds max_frame_bytes = {}",
                    text.len(),
                    limits.max_frame_bytes
                ),
                None,
                None,
            )
            .await?;
            return Ok(Flow::Continue);
        }
        let msg = match decode_client(text) {
            Ok(m) => m,
            Err(e) => {
                if self.bucket.take() || self.bucket.may_complain() {
                    tracing::debug!(remote = %self.remote, error = %e, "undecodable frame");
                    self.send(&e.to_server_msg()).await?;
                }
                return Ok(Flow::Continue);
            }
        };
        let allowed = self.bucket.take();
        let Some((session, _)) = self.session.clone() else {
            // Boxed: keeps the resident per-connection future small (idle connections).
            return Box::pin(self.before_join(msg)).await;
        };
        if !allowed {
            if let Some(seq) = msg.seq() {
                let consumed = {
                    let mut g = session.inner.lock();
                    if seq == g.last_seq + 1 {
                        g.last_seq = seq;
                        true
                    } else {
                        false
                    }
                };
                if consumed && matches!(msg, ClientMsg::Message { .. }) {
                    self.push_self(
                        &session,
                        ServerMsg::Delivery {
                            n: 0,
                            seq,
                            status: DeliveryStatus::Failed,
                            recipients: 0,
                            reason: Some(ErrorCode::RateLimited),
                        },
                    );
                    return Ok(Flow::Continue);
                }
            }
            if self.bucket.may_complain() {
                self.send_error(
                    ErrorCode::RateLimited,
                    format!(
                        "more than {}/s frames (burst {}); `{}` dropped",
                        limits.rate_per_sec,
                        limits.burst,
                        msg.type_name()
                    ),
                    Some(msg.type_name()),
                    None,
                )
                .await?;
            }
            return Ok(Flow::Continue);
        }
        Box::pin(self.after_join(&session, msg)).await
    }

    async fn before_join(&mut self, msg: ClientMsg) -> WsResult<Flow> {
        match msg {
            ClientMsg::Join {
                v,
                room,
                token,
                metadata,
            } => {
                if v != PROTOCOL_VERSION {
                    self.send_error(ErrorCode::UnsupportedVersion, format!("protocol version {v} is not supported (this server speaks {PROTOCOL_VERSION})"), Some("join"), Some("v")).await?;
                    return Ok(Flow::Continue);
                }
                let claims = match token::verify(&self.hub.cfg.secret, &token, &room) {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::info!(remote = %self.remote, %room, error = %e, "join refused");
                        self.send_error(
                            e.code(),
                            format!("join refused: {e}"),
                            Some("join"),
                            Some(if matches!(e, token::TokenError::WrongRoom { .. }) {
                                "room"
                            } else {
                                "token"
                            }),
                        )
                        .await?;
                        return Ok(Flow::Continue);
                    }
                };
                match self.hub.join(claims, metadata) {
                    Ok((s, welcome)) => {
                        self.send(&welcome).await?;
                        self.session = Some((s.clone(), 1));
                        if let Flow::Close = self.flush(&s, Some(1)).await? {
                            return Ok(Flow::Close);
                        }
                    }
                    Err(r) => {
                        self.send_error(r.code, r.message, Some("join"), None)
                            .await?
                    }
                }
            }
            ClientMsg::Resume {
                v,
                resume_token,
                last_n,
            } => {
                if v != PROTOCOL_VERSION {
                    self.send_error(ErrorCode::UnsupportedVersion, format!("protocol version {v} is not supported (this server speaks {PROTOCOL_VERSION})"), Some("resume"), Some("v")).await?;
                    return Ok(Flow::Continue);
                }
                match self.hub.resume(&resume_token, last_n) {
                    Ok((s, g, reply)) => {
                        self.send(&reply).await?;
                        self.session = Some((s.clone(), g));
                        if let Flow::Close = self.flush(&s, Some(g)).await? {
                            return Ok(Flow::Close);
                        }
                    }
                    Err(r) => {
                        let field = match r.code {
                            ErrorCode::InvalidField | ErrorCode::ResumeGap => "last_n",
                            _ => "resume_token",
                        };
                        self.send_error(r.code, r.message, Some("resume"), Some(field))
                            .await?
                    }
                }
            }
            ClientMsg::Ping {} => self.send(&ServerMsg::Pong {}).await?,
            other => {
                let t = other.type_name();
                self.send_error(
                    ErrorCode::NotJoined,
                    format!("`{t}` before `join`/`resume`"),
                    Some(t),
                    None,
                )
                .await?;
            }
        }
        Ok(Flow::Continue)
    }

    async fn after_join(&mut self, s: &Arc<Session>, msg: ClientMsg) -> WsResult<Flow> {
        let t = msg.type_name();
        let hub = self.hub.clone();
        // Sequenced relayed frames (offer/answer/ice/publish/unpublish/set_metadata with
        // `seq`) share the sender's counter with `message`: exactly once across resumes.
        if !matches!(msg, ClientMsg::Message { .. })
            && let Some(seq) = msg.seq()
        {
            let last = s.inner.lock().last_seq;
            if seq <= last {
                return Ok(Flow::Continue); // resent after a resume; already applied
            }
            if seq != last + 1 {
                self.send_error(
                    ErrorCode::BadSequence,
                    format!("`{t}` field `seq` = {seq}, expected {}", last + 1),
                    Some(t),
                    Some("seq"),
                )
                .await?;
                return Ok(Flow::Continue);
            }
            s.inner.lock().last_seq = seq;
        }
        match msg {
            ClientMsg::Join { .. } | ClientMsg::Resume { .. } => {
                self.send_error(
                    ErrorCode::AlreadyJoined,
                    format!("`{t}` on a connection that already joined as {}", s.peer_id),
                    Some(t),
                    None,
                )
                .await?;
            }
            ClientMsg::Ack { n } => s.ack(n),
            ClientMsg::Ping {} => self.send(&ServerMsg::Pong {}).await?,
            ClientMsg::Offer { to, sdp, .. } => {
                let f = ServerMsg::Offer {
                    n: 0,
                    from: s.peer_id.clone(),
                    sdp,
                };
                if hub.relay(s, &to, &f).is_err() {
                    self.unknown_peer(t, "to", &to).await?;
                }
            }
            ClientMsg::Answer { to, sdp, .. } => {
                let f = ServerMsg::Answer {
                    n: 0,
                    from: s.peer_id.clone(),
                    sdp,
                };
                if hub.relay(s, &to, &f).is_err() {
                    self.unknown_peer(t, "to", &to).await?;
                }
            }
            ClientMsg::Ice {
                to,
                candidate,
                sdp_mline_index,
                sdp_mid,
                ..
            } => {
                let f = ServerMsg::Ice {
                    n: 0,
                    from: s.peer_id.clone(),
                    candidate,
                    sdp_mline_index,
                    sdp_mid,
                };
                if hub.relay(s, &to, &f).is_err() {
                    self.unknown_peer(t, "to", &to).await?;
                }
            }
            ClientMsg::Message { seq, to, payload } => {
                let last = s.inner.lock().last_seq;
                if seq <= last {
                    // A resend after resume of something already accepted: its delivery result
                    // is already in the stream. Exactly once: ignore.
                    return Ok(Flow::Continue);
                }
                let fail = |reason| ServerMsg::Delivery {
                    n: 0,
                    seq,
                    status: DeliveryStatus::Failed,
                    recipients: 0,
                    reason: Some(reason),
                };
                let result = if seq != last + 1 {
                    fail(ErrorCode::BadSequence)
                } else {
                    s.inner.lock().last_seq = seq;
                    if !s.has(Grant::Message) {
                        fail(ErrorCode::Forbidden)
                    } else if payload.len() > hub.cfg.limits.max_payload_bytes {
                        fail(ErrorCode::PayloadTooLarge)
                    } else {
                        hub.message(s, seq, to.as_deref(), payload)
                    }
                };
                self.push_self(s, result);
            }
            ClientMsg::Publish { track, .. } => {
                if !s.has(Grant::Publish) {
                    return self.forbidden(t, "publish").await;
                }
                {
                    let mut g = s.inner.lock();
                    g.tracks.retain(|x| x.id != track.id);
                    g.tracks.push(track.clone());
                }
                hub.broadcast(
                    s,
                    &ServerMsg::Published {
                        n: 0,
                        peer_id: s.peer_id.clone(),
                        track,
                    },
                    true,
                );
            }
            ClientMsg::Unpublish { track_id, .. } => {
                if !s.has(Grant::Publish) {
                    return self.forbidden(t, "publish").await;
                }
                let removed = {
                    let mut g = s.inner.lock();
                    let before = g.tracks.len();
                    g.tracks.retain(|x| x.id != track_id);
                    before != g.tracks.len()
                };
                if removed {
                    hub.broadcast(
                        s,
                        &ServerMsg::Unpublished {
                            n: 0,
                            peer_id: s.peer_id.clone(),
                            track_id,
                        },
                        true,
                    );
                } else {
                    self.send_error(
                        ErrorCode::InvalidField,
                        format!("no published track with id `{track_id}`"),
                        Some(t),
                        Some("track_id"),
                    )
                    .await?;
                }
            }
            ClientMsg::SetMetadata { metadata, .. } => {
                s.inner.lock().metadata = metadata.clone();
                hub.broadcast(
                    s,
                    &ServerMsg::MetadataChanged {
                        n: 0,
                        peer_id: s.peer_id.clone(),
                        metadata,
                    },
                    false,
                );
            }
            ClientMsg::Kick { peer_id } => {
                if !s.has(Grant::Admin) {
                    return self.forbidden(t, "admin").await;
                }
                match hub.peer_in_room(s, &peer_id) {
                    Some(target) if target.peer_id != s.peer_id => {
                        tracing::info!(by = %s.peer_id, peer = %peer_id, "peer kicked");
                        hub.terminate(&target, LeaveReason::Kicked, ErrorCode::Kicked);
                    }
                    _ => self.unknown_peer(t, "peer_id", &peer_id).await?,
                }
            }
            ClientMsg::Telemetry { .. }
            | ClientMsg::Feedback { .. }
            | ClientMsg::PrivacyExport { .. }
            | ClientMsg::PrivacyDelete { .. } => {
                return Box::pin(self.on_service(s, msg)).await;
            }
            ClientMsg::Whiteboard { board, data, .. } => {
                return Box::pin(self.on_whiteboard(s, board, data)).await;
            }
            ClientMsg::Leave {} => {
                self.session = None;
                hub.terminate(s, LeaveReason::Left, ErrorCode::Shutdown);
                self.close().await?;
                return Ok(Flow::Close);
            }
        }
        Ok(Flow::Continue)
    }

    /// A whiteboard message: the server's whiteboard service applies, answers and relays it.
    async fn on_whiteboard(
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
                let field = what.rsplit('.').next().map(str::to_owned);
                self.send_error(
                    ErrorCode::InvalidField,
                    format!("`{t}` {what}: {reason}"),
                    Some(t),
                    field.as_deref(),
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

    /// Telemetry, feedback and the admin privacy operations: passed to the server's service.
    async fn on_service(&mut self, s: &Arc<Session>, msg: ClientMsg) -> WsResult<Flow> {
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
            addr: self.remote.ip(),
        };
        match service.call(caller, request).await {
            Ok(reply) => self.send(&reply).await?,
            Err(e) => self.service_error(t, e).await?,
        }
        Ok(Flow::Continue)
    }
}
