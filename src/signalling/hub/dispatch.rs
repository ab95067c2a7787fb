//! What each client frame does: `join`/`resume` before joining, then relay, messages,
//! tracks, metadata and kicks (service requests and SFU signalling: `service_frames.rs`).

use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite};

use super::conn::{Conn, Flow, WsResult};
use super::service_frames::sfu_signal;
use super::session::Session;
use crate::signalling::protocol::{
    CLIENT_TYPES, ClientMsg, DeliveryStatus, ErrorCode, Grant, LeaveReason, PROTOCOL_VERSION,
    ServerMsg, decode_client, validate_room,
};
use crate::signalling::token;

/// How a sender `seq` relates to the session's counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SeqCheck {
    /// The next one: consumed now.
    Next,
    /// Already consumed (a resend after a resume).
    Duplicate,
    /// Skips ahead of the next one.
    Gap {
        /// The next `seq` the server expects.
        expected: u64,
    },
    /// `seq: 0` (sequence numbers start at 1).
    Zero,
}

/// A failed delivery result for `seq`.
fn failed(seq: u64, reason: ErrorCode) -> ServerMsg {
    ServerMsg::Delivery {
        n: 0,
        seq,
        status: DeliveryStatus::Failed,
        recipients: 0,
        reason: Some(reason),
    }
}

/// The `type` and `seq` of a frame too large to process, without building its tree.
fn peek_type_and_seq(text: &str) -> (Option<String>, Option<u64>) {
    #[derive(serde::Deserialize)]
    struct Peek {
        #[serde(rename = "type")]
        ty: Option<String>,
        seq: Option<u64>,
    }
    match serde_json::from_str::<Peek>(text) {
        Ok(p) => (p.ty.filter(|t| CLIENT_TYPES.contains(&t.as_str())), p.seq),
        Err(_) => (None, None),
    }
}

impl<S> Conn<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    pub(super) async fn on_text(&mut self, text: &str) -> WsResult<Flow> {
        let max_frame = self.hub.cfg.limits.max_frame_bytes;
        if text.len() > max_frame {
            return Box::pin(self.frame_too_large(text)).await;
        }
        let msg = match decode_client(text) {
            Ok(m) => m,
            Err(e) => {
                // Answered like any frame: at most `rate_per_sec` answers per second.
                self.bucket.take_waiting().await;
                tracing::debug!(remote = %self.remote, error = ?e, "undecodable frame");
                self.send(&e.to_server_msg()).await?;
                return Ok(Flow::Continue);
            }
        };
        // Rate limit: `ack` and `leave` are free; a `message` over the rate fails (with its
        // delivery result); every other frame waits for its token (the connection is not read
        // meanwhile, so TCP pushes back on the sender) and is never dropped.
        let over_rate = match &msg {
            ClientMsg::Ack { .. } | ClientMsg::Leave {} => false,
            ClientMsg::Message { .. } => !self.bucket.try_take(),
            _ => {
                self.bucket.take_waiting().await;
                false
            }
        };
        let Some((session, _)) = self.session.clone() else {
            // Boxed: keeps the resident per-connection future small (idle connections).
            return Box::pin(self.before_join(msg)).await;
        };
        if let ClientMsg::Message { seq, to, payload } = msg {
            return Box::pin(self.on_message(&session, seq, to, payload, over_rate)).await;
        }
        Box::pin(self.after_join(&session, msg)).await
    }

    /// A frame above `max_frame_bytes` (and within the WebSocket limit): it is not processed,
    /// but a `seq` it carries is consumed, so the sender's sequence stays intact. A `message`
    /// gets a failed `delivery` (`frame_too_large`), anything else an `error`.
    async fn frame_too_large(&mut self, text: &str) -> WsResult<Flow> {
        self.bucket.take_waiting().await;
        let max_frame = self.hub.cfg.limits.max_frame_bytes;
        let (ty, seq) = peek_type_and_seq(text);
        let message = format!(
            "frame of {} bytes exceeds max_frame_bytes = {max_frame}; not processed",
            text.len()
        );
        if let (Some((s, _)), Some(seq)) = (self.session.clone(), seq)
            && self.take_seq(&s, seq) == SeqCheck::Next
        {
            if ty.as_deref() == Some("message") {
                self.push_self(&s, failed(seq, ErrorCode::FrameTooLarge));
                return Ok(Flow::Continue);
            }
            let t = ty.as_deref().unwrap_or("frame");
            self.send_error(
                ErrorCode::FrameTooLarge,
                format!("{message} (`{t}` seq {seq} is consumed)"),
                ty.as_deref(),
                None,
            )
            .await?;
            return Ok(Flow::Continue);
        }
        self.send_error(ErrorCode::FrameTooLarge, message, ty.as_deref(), None)
            .await?;
        Ok(Flow::Continue)
    }

    /// Check a sender `seq` against the session's counter and consume it when it is the next.
    pub(super) fn take_seq(&self, s: &Session, seq: u64) -> SeqCheck {
        let mut g = s.inner.lock();
        if seq == 0 {
            SeqCheck::Zero
        } else if seq <= g.last_seq {
            SeqCheck::Duplicate
        } else if seq != g.last_seq + 1 {
            SeqCheck::Gap {
                expected: g.last_seq + 1,
            }
        } else {
            g.last_seq = seq;
            SeqCheck::Next
        }
    }

    /// `message`: every one gets a `delivery` in the stream, except a resend of one already
    /// accepted (its result is already there) and `seq: 0` (an `error`).
    async fn on_message(
        &mut self,
        s: &Arc<Session>,
        seq: u64,
        to: Option<String>,
        payload: crate::signalling::protocol::Payload,
        over_rate: bool,
    ) -> WsResult<Flow> {
        let hub = self.hub.clone();
        let result = match self.take_seq(s, seq) {
            SeqCheck::Duplicate => return Ok(Flow::Continue),
            SeqCheck::Zero => {
                self.seq_zero("message").await?;
                return Ok(Flow::Continue);
            }
            SeqCheck::Gap { .. } => failed(seq, ErrorCode::BadSequence),
            SeqCheck::Next if over_rate => failed(seq, ErrorCode::RateLimited),
            SeqCheck::Next if !s.has(Grant::Message) => failed(seq, ErrorCode::Forbidden),
            SeqCheck::Next if payload.len() > hub.cfg.limits.max_payload_bytes => {
                failed(seq, ErrorCode::PayloadTooLarge)
            }
            SeqCheck::Next => hub.message(s, seq, to.as_deref(), payload),
        };
        self.push_self(s, result);
        Ok(Flow::Continue)
    }

    async fn seq_zero(&mut self, t: &str) -> WsResult<()> {
        self.send_error(
            ErrorCode::InvalidField,
            format!("`{t}` field `seq` is 0; sequence numbers start at 1"),
            Some(t),
            Some("seq"),
        )
        .await
    }

    async fn before_join(&mut self, msg: ClientMsg) -> WsResult<Flow> {
        match msg {
            ClientMsg::Join {
                v,
                room,
                token,
                metadata,
            } => {
                let Some(claims) = self.verified("join", v, &room, &token).await? else {
                    return Ok(Flow::Continue);
                };
                match self.hub.join(claims, metadata) {
                    Ok((s, welcome)) => {
                        self.send(&welcome).await?;
                        self.session = Some((s.clone(), 1));
                        self.pending = None;
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
                        self.pending = None;
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
            ClientMsg::MediaTest {
                v,
                room,
                token,
                test,
                seconds,
            } => {
                let Some(claims) = self.verified("media_test", v, &room, &token).await? else {
                    return Ok(Flow::Continue);
                };
                return Box::pin(self.media_test(claims, test, seconds)).await;
            }
            ClientMsg::Ping {} => self.send(&ServerMsg::Pong {}).await?,
            other => {
                let t = other.type_name();
                self.send_error(
                    ErrorCode::NotJoined,
                    format!("`{t}` before `join`/`resume`/`media_test`"),
                    Some(t),
                    None,
                )
                .await?;
            }
        }
        Ok(Flow::Continue)
    }

    /// The version, room and token of a `join` or `media_test` (`t`): the token's claims, or
    /// `None` once the refusal is sent.
    async fn verified(
        &mut self,
        t: &str,
        v: u32,
        room: &str,
        token: &str,
    ) -> WsResult<Option<token::Claims>> {
        if v != PROTOCOL_VERSION {
            self.send_error(
                ErrorCode::UnsupportedVersion,
                format!(
                    "protocol version {v} is not supported (this server speaks {PROTOCOL_VERSION})"
                ),
                Some(t),
                Some("v"),
            )
            .await?;
            return Ok(None);
        }
        if let Err(why) = validate_room(room) {
            self.send_error(
                ErrorCode::InvalidField,
                format!("`{t}` field `room` {why}"),
                Some(t),
                Some("room"),
            )
            .await?;
            return Ok(None);
        }
        match token::verify(&self.hub.cfg.secret, token, room) {
            Ok(c) => Ok(Some(c)),
            Err(e) => {
                tracing::info!(remote = %self.remote, %room, error = ?e.to_string(), "{t} refused");
                let field = if matches!(e, token::TokenError::WrongRoom { .. }) {
                    "room"
                } else {
                    "token"
                };
                self.send_error(e.code(), format!("{t} refused: {e}"), Some(t), Some(field))
                    .await?;
                Ok(None)
            }
        }
    }

    async fn after_join(&mut self, s: &Arc<Session>, msg: ClientMsg) -> WsResult<Flow> {
        let t = msg.type_name();
        let hub = self.hub.clone();
        // Sequenced relayed frames (offer/answer/ice/publish/unpublish/set_metadata with
        // `seq`) share the sender's counter with `message`: exactly once across resumes.
        if let Some(seq) = msg.seq() {
            match self.take_seq(s, seq) {
                SeqCheck::Next => {}
                SeqCheck::Duplicate => return Ok(Flow::Continue), // resent after a resume
                SeqCheck::Zero => {
                    self.seq_zero(t).await?;
                    return Ok(Flow::Continue);
                }
                SeqCheck::Gap { expected } => {
                    self.send_error(
                        ErrorCode::BadSequence,
                        format!("`{t}` field `seq` = {seq}, expected {expected}"),
                        Some(t),
                        Some("seq"),
                    )
                    .await?;
                    return Ok(Flow::Continue);
                }
            }
        }
        if let Some(signal) = sfu_signal(&msg) {
            return Box::pin(self.on_sfu(s, t, signal)).await;
        }
        match msg {
            ClientMsg::Join { .. } | ClientMsg::Resume { .. } | ClientMsg::MediaTest { .. } => {
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
                if !self.media_allowed(s, t, &to, &sdp).await? {
                    return Ok(Flow::Continue);
                }
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
                if !self.media_allowed(s, t, &to, &sdp).await? {
                    return Ok(Flow::Continue);
                }
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
            // Handled by `on_message` before this match.
            ClientMsg::Message { .. } => {}
            ClientMsg::Publish { track, .. } => {
                if !s.has(Grant::Publish) {
                    return self.forbidden(t, "publish").await;
                }
                let tracks = {
                    let mut g = s.inner.lock();
                    g.tracks.retain(|x| x.id != track.id);
                    g.tracks.push(track.clone());
                    g.tracks.clone()
                };
                self.sfu_tracks(s, tracks);
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
                let (removed, tracks) = {
                    let mut g = s.inner.lock();
                    let before = g.tracks.len();
                    g.tracks.retain(|x| x.id != track_id);
                    (before != g.tracks.len(), g.tracks.clone())
                };
                if removed {
                    self.sfu_tracks(s, tracks);
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
            ClientMsg::Kick { peer_id, ban_ms } => {
                if !s.has(Grant::Admin) {
                    return self.forbidden(t, "admin").await;
                }
                match hub.peer_in_room(s, &peer_id) {
                    Some(target) if target.peer_id != s.peer_id => {
                        tracing::info!(by = %s.peer_id, peer = %peer_id, "peer kicked");
                        hub.kick(&target, ban_ms);
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
            ClientMsg::SfuView { mid, width, height } => {
                return self.on_sfu_view(s, mid, width, height).await;
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
}
