//! One WebSocket connection: handshake, join/resume, frame dispatch, stream flushing,
//! keepalive, rate limiting.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use async_tungstenite::WebSocketStream;
use async_tungstenite::tokio::TokioAdapter;
use async_tungstenite::tungstenite::Message;
use async_tungstenite::tungstenite::protocol::WebSocketConfig;
use async_tungstenite::tungstenite::protocol::frame::CloseFrame;
use async_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;

use super::hub::{Hub, Session, body, stamp};
use crate::signalling::protocol::{
    ClientMsg, DeliveryStatus, ErrorCode, Grant, LeaveReason, PROTOCOL_VERSION, ServerMsg,
    decode_client,
};
use crate::signalling::token;

type Ws<S> = WebSocketStream<TokioAdapter<S>>;
type WsResult<T> = Result<T, async_tungstenite::tungstenite::Error>;

const FLUSH_BATCH: usize = 256;

struct ConnGuard(Arc<Hub>);
impl Drop for ConnGuard {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Token bucket for the per-connection frame rate.
struct Bucket {
    tokens: f64,
    rate: f64,
    burst: f64,
    last: Instant,
    /// Error frames sent for rate limiting in the current second (they are limited too).
    complaints: u32,
    complaint_window: Instant,
}

impl Bucket {
    fn take(&mut self) -> bool {
        let now = Instant::now();
        let dt = now.duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + dt * self.rate).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
    fn may_complain(&mut self) -> bool {
        let now = Instant::now();
        if now.duration_since(self.complaint_window) > Duration::from_secs(1) {
            self.complaint_window = now;
            self.complaints = 0;
        }
        self.complaints += 1;
        self.complaints <= 10
    }
}

enum Flow {
    Continue,
    Close,
}

struct Conn<S> {
    ws: Ws<S>,
    hub: Arc<Hub>,
    remote: SocketAddr,
    bucket: Bucket,
    session: Option<(Arc<Session>, u64)>,
}

pub(super) async fn serve<S>(hub: Arc<Hub>, stream: S, remote: SocketAddr)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    hub.connections.fetch_add(1, Ordering::Relaxed);
    let _guard = ConnGuard(hub.clone());
    let hard = hub
        .cfg
        .limits
        .hard_frame_bytes
        .max(hub.cfg.limits.max_frame_bytes);
    // Small eagerly-allocated read buffer: idle connections must stay cheap.
    let ws_cfg = WebSocketConfig::default()
        .read_buffer_size(1024)
        .write_buffer_size(16 * 1024)
        .max_message_size(Some(hard))
        .max_frame_size(Some(hard));
    let ws = match tokio::time::timeout(
        hub.cfg.join_timeout,
        async_tungstenite::tokio::accept_async_with_config(stream, Some(ws_cfg)),
    )
    .await
    {
        Ok(Ok(ws)) => ws,
        Ok(Err(e)) => {
            tracing::debug!(%remote, error = %e, "WebSocket handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!(%remote, "WebSocket handshake timed out");
            return;
        }
    };
    let limits = &hub.cfg.limits;
    let bucket = Bucket {
        tokens: limits.burst as f64,
        rate: limits.rate_per_sec as f64,
        burst: limits.burst.max(1) as f64,
        last: Instant::now(),
        complaints: 0,
        complaint_window: Instant::now(),
    };
    let mut conn = Conn {
        ws,
        hub: hub.clone(),
        remote,
        bucket,
        session: None,
    };
    let result = conn.run().await;
    if let Err(e) = &result {
        tracing::debug!(%remote, error = %e, "connection ended with error");
    }
    if let Some((s, g)) = conn.session.take() {
        hub.detach(&s, g);
    }
}

impl<S> Conn<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    async fn send(&mut self, msg: &ServerMsg) -> WsResult<()> {
        self.ws
            .send(Message::Text(body(msg).to_string().into()))
            .await
    }

    async fn send_error(
        &mut self,
        code: ErrorCode,
        message: String,
        in_type: Option<&str>,
        field: Option<&str>,
    ) -> WsResult<()> {
        tracing::debug!(remote = %self.remote, %code, %message, "error frame");
        self.send(&ServerMsg::Error {
            code,
            message,
            in_type: in_type.map(str::to_owned),
            field: field.map(str::to_owned),
        })
        .await
    }

    async fn bye(&mut self, code: ErrorCode, message: &str, reconnect: bool) -> WsResult<()> {
        self.send(&ServerMsg::Bye {
            code,
            message: message.to_owned(),
            reconnect,
        })
        .await?;
        let close_code = match code {
            ErrorCode::Shutdown => CloseCode::Away,
            ErrorCode::IdleTimeout => CloseCode::Policy,
            _ => CloseCode::Normal,
        };
        self.ws
            .close(Some(CloseFrame {
                code: close_code,
                reason: code.as_str().into(),
            }))
            .await
    }

    async fn run(&mut self) -> WsResult<()> {
        let mut stop = self.hub.shutdown_rx();
        if *stop.borrow() {
            return self
                .bye(ErrorCode::Shutdown, "server is shutting down", true)
                .await;
        }
        let join_deadline = tokio::time::sleep(self.hub.cfg.join_timeout);
        tokio::pin!(join_deadline);
        let mut ping = tokio::time::interval(self.hub.cfg.ping_interval);
        ping.tick().await;
        let mut last_rx = Instant::now();
        loop {
            let session = self.session.as_ref().map(|(s, _)| s.clone());
            let notified = async {
                match &session {
                    Some(s) => s.notify.notified().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                _ = stop.changed() => {
                    if let Some((s, _)) = self.session.take() {
                        // Deliver what is queued, then say goodbye.
                        let _ = self.flush(&s, None).await;
                    }
                    return self.bye(ErrorCode::Shutdown, "server is shutting down; reconnect later or elsewhere", true).await;
                }
                _ = &mut join_deadline, if self.session.is_none() => {
                    self.send_error(ErrorCode::NotJoined, format!("no join/resume within {:?}", self.hub.cfg.join_timeout), None, None).await?;
                    return self.ws.close(None).await;
                }
                _ = notified => {
                    if let Some((s, g)) = self.session.clone()
                        && let Flow::Close = self.flush(&s, Some(g)).await?
                    {
                        return Ok(());
                    }
                }
                frame = self.ws.next() => {
                    last_rx = Instant::now();
                    match frame {
                        None => return Ok(()),
                        Some(Err(e)) => return Err(e),
                        Some(Ok(Message::Text(t))) => {
                            if let Flow::Close = Box::pin(self.on_text(t.as_str())).await? {
                                return Ok(());
                            }
                        }
                        Some(Ok(Message::Binary(b))) => {
                            if self.bucket.take() || self.bucket.may_complain() {
                                self.send_error(ErrorCode::BadJson, format!("binary WebSocket frames ({} bytes) are not accepted; send JSON text frames (binary payloads go base64 in `payload.binary`)", b.len()), None, None).await?;
                            }
                        }
                        Some(Ok(Message::Close(_))) => return Ok(()),
                        Some(Ok(_)) => {} // ping/pong: tungstenite answers pings itself
                    }
                }
                _ = ping.tick() => {
                    if last_rx.elapsed() > self.hub.cfg.idle_timeout {
                        tracing::info!(remote = %self.remote, "idle timeout; closing");
                        if let Some((s, g)) = self.session.take() {
                            self.hub.detach(&s, g);
                        }
                        return self.bye(ErrorCode::IdleTimeout, "no frames received within the idle timeout", true).await;
                    }
                    self.ws.send(Message::Ping(Vec::new().into())).await?;
                }
            }
        }
    }

    /// Write pending stream frames. `gen_ == None` means "regardless of attachment" (shutdown).
    async fn flush(&mut self, s: &Arc<Session>, gen_: Option<u64>) -> WsResult<Flow> {
        loop {
            let taken = {
                let mut g = s.inner.lock();
                if gen_.is_some_and(|x| x != g.gen_) {
                    None
                } else {
                    let start = g.sent_upto;
                    let frames: Vec<(u64, Arc<str>)> = g
                        .buf
                        .iter()
                        .skip_while(|(n, _)| *n <= start)
                        .take(FLUSH_BATCH)
                        .cloned()
                        .collect();
                    if let Some((last, _)) = frames.last() {
                        g.sent_upto = *last;
                    }
                    Some((frames, g.ended))
                }
            };
            let Some((frames, ended)) = taken else {
                // A newer connection resumed this session.
                self.session = None;
                let _ = self.ws.close(None).await;
                return Ok(Flow::Close);
            };
            let more = frames.len() == FLUSH_BATCH;
            for (n, b) in &frames {
                self.ws.feed(Message::Text(stamp(*n, b).into())).await?;
            }
            if !frames.is_empty() {
                self.ws.flush().await?;
            }
            if more {
                continue;
            }
            if let Some(code) = ended
                && gen_.is_some()
            {
                self.session = None;
                let (msg, reconnect) = match code {
                    ErrorCode::Replaced => {
                        ("the same user joined again from another connection", false)
                    }
                    ErrorCode::Kicked => ("removed from the room by an admin", false),
                    ErrorCode::SlowConsumer => ("outgoing queue overflowed; join again", true),
                    ErrorCode::Shutdown => (
                        "server is shutting down; reconnect later or elsewhere",
                        true,
                    ),
                    _ => ("session ended", true),
                };
                self.bye(code, msg, reconnect).await?;
                return Ok(Flow::Close);
            }
            return Ok(Flow::Continue);
        }
    }

    async fn on_text(&mut self, text: &str) -> WsResult<Flow> {
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

    fn push_self(&self, session: &Arc<Session>, msg: ServerMsg) {
        if !session.push(body(&msg), self.hub.cfg.limits.replay_frames) {
            self.hub
                .terminate(session, LeaveReason::SlowConsumer, ErrorCode::SlowConsumer);
        }
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
                return Box::pin(self.on_telemetry(s, msg)).await;
            }
            ClientMsg::Leave {} => {
                self.session = None;
                hub.terminate(s, LeaveReason::Left, ErrorCode::Shutdown);
                self.ws.close(None).await?;
                return Ok(Flow::Close);
            }
        }
        Ok(Flow::Continue)
    }

    /// Telemetry, feedback and the admin privacy operations, on the blocking pool (SQLite).
    async fn on_telemetry(&mut self, s: &Arc<Session>, msg: ClientMsg) -> WsResult<Flow> {
        use crate::telemetry::store::{Tags, now_ms};
        let t = msg.type_name();
        let Some(store) = self.hub.telemetry.get().cloned() else {
            self.send_error(
                ErrorCode::NotImplemented,
                format!("`{t}`: this server stores no telemetry (start it with --db)"),
                Some(t),
                None,
            )
            .await?;
            return Ok(Flow::Continue);
        };
        if matches!(
            msg,
            ClientMsg::PrivacyExport { .. } | ClientMsg::PrivacyDelete { .. }
        ) && !s.has(Grant::Admin)
        {
            return self.forbidden(t, "admin").await;
        }
        let room = s.room.name.clone();
        let peer = s.peer_id.clone();
        let user = s.user.clone();
        let addr = self.remote.ip();
        let result = tokio::task::spawn_blocking(move || {
            let mut st = store.lock();
            let tags = Tags {
                room: &room,
                session: &peer,
                peer: &peer,
                user: &user,
                addr: Some(addr),
            };
            match msg {
                ClientMsg::Telemetry { batch } => {
                    st.ingest(&tags, &batch, now_ms())
                        .map(|r| ServerMsg::TelemetryAck {
                            stored: r.stored,
                            dropped: r.dropped,
                        })
                }
                ClientMsg::Feedback(feedback) => st
                    .add_feedback(&tags, &feedback, now_ms())
                    .map(|()| ServerMsg::FeedbackAck {}),
                ClientMsg::PrivacyExport { user } => st
                    .export_user(&user)
                    .map(|data| ServerMsg::PrivacyExport { user, data }),
                ClientMsg::PrivacyDelete { user } => {
                    st.delete_user(&user, now_ms())
                        .map(|r| ServerMsg::PrivacyDeleted {
                            user,
                            records: r.records,
                            feedback: r.feedback,
                            sessions: r.sessions,
                        })
                }
                _ => Ok(ServerMsg::Pong {}),
            }
        })
        .await;
        match result {
            Ok(Ok(reply)) => self.send(&reply).await?,
            Ok(Err(crate::telemetry::StoreError::Invalid { what, reason })) => {
                let field = what.rsplit('.').next().map(str::to_owned);
                self.send_error(
                    ErrorCode::InvalidField,
                    format!("`{t}` {what}: {reason}"),
                    Some(t),
                    field.as_deref(),
                )
                .await?
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "telemetry store failed");
                self.send_error(
                    ErrorCode::Internal,
                    format!("`{t}`: telemetry store failed"),
                    Some(t),
                    None,
                )
                .await?
            }
            Err(e) => {
                tracing::warn!(error = %e, "telemetry task failed");
                self.send_error(ErrorCode::Internal, format!("`{t}` failed"), Some(t), None)
                    .await?
            }
        }
        Ok(Flow::Continue)
    }

    async fn unknown_peer(&mut self, t: &str, field: &str, id: &str) -> WsResult<()> {
        self.send_error(
            ErrorCode::UnknownPeer,
            format!("`{t}` field `{field}`: no peer `{id}` in this room"),
            Some(t),
            Some(field),
        )
        .await
    }

    async fn forbidden(&mut self, t: &str, grant: &str) -> WsResult<Flow> {
        self.send_error(
            ErrorCode::Forbidden,
            format!("`{t}` needs the `{grant}` grant, which your token lacks"),
            Some(t),
            None,
        )
        .await?;
        Ok(Flow::Continue)
    }
}

#[cfg(test)]
mod size_probe {
    /// Every idle connection keeps its `serve` future resident; keep it small (the per-frame
    /// handlers are boxed for that reason). Regressions here show up as memory per idle
    /// connection in `streamwire bench signalling`.
    #[test]
    fn resident_connection_future_stays_small() {
        let hub = super::Hub::new(crate::signalling::server::ServerConfig::new(
            "127.0.0.1:0".parse().unwrap(),
            vec![0; 32],
        ));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let size = rt.block_on(async {
            // An in-memory stream (a TcpStream is of similar size: a few words).
            let (a, _b) = tokio::io::duplex(64);
            let f = super::serve(hub, a, "127.0.0.1:1".parse().unwrap());
            std::mem::size_of_val(&f)
        });
        assert!(size <= 2048, "per-connection future is {size} bytes");
    }
}
