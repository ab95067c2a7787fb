//! One WebSocket connection: handshake, the connection loop (shutdown, join deadline,
//! stream flushing, keepalive), and the frames the hub sends on it. What each client frame
//! does is in `dispatch.rs`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use async_tungstenite::WebSocketStream;
use async_tungstenite::tokio::TokioAdapter;
use async_tungstenite::tungstenite::Message;
use async_tungstenite::tungstenite::error::{CapacityError, Error as WsError, ProtocolError};
use async_tungstenite::tungstenite::protocol::frame::CloseFrame;
use async_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;

use super::Hub;
use super::admission::Slot;
use super::bucket::Bucket;
use super::session::{Session, body, stamp};
use crate::signalling::protocol::{ErrorCode, LeaveReason, ServerMsg};

type Ws<S> = WebSocketStream<TokioAdapter<S>>;
pub(super) type WsResult<T> = Result<T, WsError>;

/// Frames written to the socket per flush, at most...
const FLUSH_BATCH: usize = 256;
/// ...and bytes (one larger frame is still written alone).
const FLUSH_BYTES: usize = 256 * 1024;

struct ConnGuard(Arc<Hub>);
impl Drop for ConnGuard {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, Ordering::Relaxed);
    }
}

pub(super) enum Flow {
    Continue,
    Close,
}

pub(super) struct Conn<S> {
    pub(super) ws: Ws<S>,
    pub(super) hub: Arc<Hub>,
    pub(super) remote: SocketAddr,
    pub(super) bucket: Bucket,
    /// The joined session and this connection's attachment generation.
    pub(super) session: Option<(Arc<Session>, u64)>,
    /// Admission as a not yet joined connection; released by the first successful join.
    pub(super) pending: Option<Slot>,
}

/// Serve one WebSocket connection (plain or TLS stream, already upgraded) until it closes.
/// `slot` is its admission as a connection that has not joined yet; it is released at the
/// first successful `join`/`resume`.
pub(crate) async fn serve<S>(hub: Arc<Hub>, ws: Ws<S>, remote: SocketAddr, slot: Slot)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    hub.connections.fetch_add(1, Ordering::Relaxed);
    let _guard = ConnGuard(hub.clone());
    let bucket = Bucket::new(hub.cfg.limits.rate_per_sec, hub.cfg.limits.burst);
    let mut conn = Conn {
        ws,
        hub: hub.clone(),
        remote,
        bucket,
        session: None,
        pending: Some(slot),
    };
    let result = conn.run().await;
    if let Some((s, g)) = conn.session.take() {
        hub.detach(&s, g);
    }
    Box::pin(conn.finish(result)).await;
}

/// The close frame RFC 6455 section 7.4.1 prescribes for a WebSocket-level failure, if the
/// failure is the peer's violation (not a lost connection).
fn close_for(e: &WsError) -> Option<CloseFrame> {
    let (code, reason) = match e {
        WsError::Utf8(_) => (
            CloseCode::Invalid,
            "invalid UTF-8 in a text message".to_owned(),
        ),
        WsError::Capacity(CapacityError::MessageTooLong { size, max_size }) => (
            CloseCode::Size,
            format!("message of {size} bytes exceeds the limit of {max_size} bytes"),
        ),
        WsError::Capacity(c) => (CloseCode::Size, c.to_string()),
        WsError::Protocol(
            ProtocolError::ResetWithoutClosingHandshake
            | ProtocolError::SendAfterClosing
            | ProtocolError::ReceivedAfterClosing,
        ) => return None,
        WsError::Protocol(p) => (CloseCode::Protocol, p.to_string()),
        _ => return None,
    };
    // A close frame's reason is at most 123 bytes.
    let mut reason = reason;
    while reason.len() > 123 {
        reason.pop();
    }
    Some(CloseFrame {
        code,
        reason: reason.into(),
    })
}

impl<S> Conn<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    pub(super) async fn send(&mut self, msg: &ServerMsg) -> WsResult<()> {
        self.ws
            .send(Message::Text(body(msg).to_string().into()))
            .await
    }

    pub(super) async fn send_error(
        &mut self,
        code: ErrorCode,
        message: String,
        in_type: Option<&str>,
        field: Option<&str>,
    ) -> WsResult<()> {
        tracing::debug!(remote = %self.remote, %code, ?message, "error frame");
        self.send(&ServerMsg::Error {
            code,
            message,
            in_type: in_type.map(str::to_owned),
            field: field.map(str::to_owned),
        })
        .await
    }

    pub(super) async fn bye(
        &mut self,
        code: ErrorCode,
        message: &str,
        reconnect: bool,
    ) -> WsResult<()> {
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
        // First ping one interval from now. (Awaiting `interval`'s immediate first tick would
        // not be immediate: tokio rounds timer deadlines up to the next millisecond, which
        // delayed every join's first frame by up to 1 ms.)
        let every = self.hub.cfg.ping_interval;
        let mut ping = tokio::time::interval_at(Instant::now() + every, every);
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
                    let why = format!("no successful join/resume within {:?} of connecting", self.hub.cfg.join_timeout);
                    return self.bye(ErrorCode::NotJoined, &why, true).await;
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
                            self.bucket.take_waiting().await;
                            self.send_error(ErrorCode::BadJson, format!("binary WebSocket frames ({} bytes) are not accepted; send JSON text frames (binary payloads go base64 in `payload.binary`)", b.len()), None, None).await?;
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
    pub(super) async fn flush(&mut self, s: &Arc<Session>, gen_: Option<u64>) -> WsResult<Flow> {
        loop {
            let taken = {
                let mut g = s.inner.lock();
                if gen_.is_some_and(|x| x != g.gen_) {
                    None
                } else {
                    let start = g.sent_upto;
                    let mut bytes = 0;
                    let frames: Vec<(u64, Arc<str>)> = g
                        .buf
                        .iter()
                        .skip_while(|(n, _)| *n <= start)
                        .take(FLUSH_BATCH)
                        .take_while(|(_, b)| {
                            let first = bytes == 0;
                            bytes += b.len();
                            first || bytes <= FLUSH_BYTES
                        })
                        .cloned()
                        .collect();
                    if let Some((last, _)) = frames.last() {
                        g.sent_upto = *last;
                    }
                    Some((frames, g.ended))
                }
            };
            let Some((frames, ended)) = taken else {
                // A newer connection resumed this session: this one is told and closed.
                self.session = None;
                self.bye(
                    ErrorCode::Replaced,
                    "this session was resumed on another connection",
                    false,
                )
                .await?;
                return Ok(Flow::Close);
            };
            let more = {
                let g = s.inner.lock();
                g.buf.back().is_some_and(|(n, _)| *n > g.sent_upto)
            };
            if !frames.is_empty() {
                // A peer that stops reading blocks the write; it gets `idle_timeout`, like a
                // peer that stops sending.
                let timeout = self.hub.cfg.idle_timeout;
                let ws = &mut self.ws;
                let written = tokio::time::timeout(timeout, async {
                    for (n, b) in &frames {
                        ws.feed(Message::Text(stamp(*n, b).into())).await?;
                    }
                    ws.flush().await
                })
                .await;
                match written {
                    Ok(r) => r?,
                    Err(_) => {
                        return Err(WsError::Io(std::io::Error::new(
                            std::io::ErrorKind::TimedOut,
                            format!("peer read nothing for {timeout:?}"),
                        )));
                    }
                }
            }
            if more && !frames.is_empty() {
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
                    ErrorCode::SlowConsumer => (
                        "more unacknowledged frames than max_queue_bytes allows; join again",
                        true,
                    ),
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

    /// Close the WebSocket (no `bye`).
    pub(super) async fn close(&mut self) -> WsResult<()> {
        self.ws.close(None).await
    }

    /// After the connection loop: close so that what was sent last (a `bye`, the close frame)
    /// reaches the peer, within `close_linger`. A WebSocket-level violation by the peer gets
    /// the close code RFC 6455 prescribes (1007 invalid UTF-8, 1009 too big, 1002 protocol).
    async fn finish(mut self, result: WsResult<()>) {
        let linger = self.hub.cfg.close_linger;
        match result {
            Ok(()) => {
                // Our close frame is out (or the peer's arrived): complete the closing
                // handshake, reading and discarding what the peer still sends, so that closing
                // the socket does not reset it with our last frames unread.
                let _ = tokio::time::timeout(linger, async {
                    let _ = self.ws.close(None).await;
                    while let Some(Ok(_)) = self.ws.next().await {}
                })
                .await;
            }
            Err(e) => {
                let Some(frame) = close_for(&e) else {
                    tracing::debug!(remote = %self.remote, error = %e, "connection ended with error");
                    return;
                };
                tracing::debug!(remote = %self.remote, error = %e, code = %frame.code, "WebSocket protocol violation; closing");
                let _ = tokio::time::timeout(linger, self.ws.close(Some(frame))).await;
                // The frame stream may be out of step now: drain raw bytes instead.
                drain_and_close(self.ws.get_mut().get_mut(), linger).await;
            }
        }
    }

    pub(super) fn push_self(&self, session: &Arc<Session>, msg: ServerMsg) {
        if !session.push(body(&msg), self.hub.cfg.limits.max_queue_bytes) {
            self.hub
                .terminate(session, LeaveReason::SlowConsumer, ErrorCode::SlowConsumer);
        }
    }

    pub(super) async fn unknown_peer(&mut self, t: &str, field: &str, id: &str) -> WsResult<()> {
        self.send_error(
            ErrorCode::UnknownPeer,
            format!("`{t}` field `{field}`: no peer `{id}` in this room"),
            Some(t),
            Some(field),
        )
        .await
    }

    pub(super) async fn forbidden(&mut self, t: &str, grant: &str) -> WsResult<Flow> {
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

/// Half-close the write side, then read and discard until the peer closes or `linger` passes,
/// so that closing does not reset the connection while the peer has our last bytes unread.
pub(crate) async fn drain_and_close<S>(s: &mut S, linger: std::time::Duration)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let _ = tokio::time::timeout(linger, async {
        let _ = s.shutdown().await;
        let mut sink = [0u8; 1024];
        loop {
            match s.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    })
    .await;
}

#[cfg(test)]
mod size_probe {
    /// Every idle connection keeps its `serve` future resident; keep it small (the per-frame
    /// handlers are boxed for that reason). Regressions here show up as memory per idle
    /// connection in `streamwire bench signalling`.
    #[test]
    fn resident_connection_future_stays_small() {
        let hub = super::Hub::new(super::super::HubConfig::new(vec![0; 32]), None, None, None);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let size = rt.block_on(async {
            // An in-memory stream (a TcpStream is of similar size: a few words).
            let (a, _b) = tokio::io::duplex(64);
            let ws = async_tungstenite::WebSocketStream::from_raw_socket(
                super::TokioAdapter::new(a),
                async_tungstenite::tungstenite::protocol::Role::Server,
                Some(hub.ws_config()),
            )
            .await;
            let slot = hub.admit("127.0.0.1".parse().unwrap()).ok().unwrap();
            let f = super::serve(hub, ws, "127.0.0.1:1".parse().unwrap(), slot);
            std::mem::size_of_val(&f)
        });
        assert!(size <= 2048, "per-connection future is {size} bytes");
    }
}
