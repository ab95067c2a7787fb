//! One WebSocket connection: handshake, the connection loop (shutdown, join deadline,
//! stream flushing, keepalive), and the frames the hub sends on it. What each client frame
//! does is in `dispatch.rs`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use async_tungstenite::WebSocketStream;
use async_tungstenite::tokio::TokioAdapter;
use async_tungstenite::tungstenite::Message;
use async_tungstenite::tungstenite::protocol::WebSocketConfig;
use async_tungstenite::tungstenite::protocol::frame::CloseFrame;
use async_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;

use super::Hub;
use super::bucket::Bucket;
use super::session::{Session, body, stamp};
use crate::signalling::protocol::{ErrorCode, LeaveReason, ServerMsg};

type Ws<S> = WebSocketStream<TokioAdapter<S>>;
pub(super) type WsResult<T> = Result<T, async_tungstenite::tungstenite::Error>;

const FLUSH_BATCH: usize = 256;

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
    ws: Ws<S>,
    pub(super) hub: Arc<Hub>,
    pub(super) remote: SocketAddr,
    pub(super) bucket: Bucket,
    /// The joined session and this connection's attachment generation.
    pub(super) session: Option<(Arc<Session>, u64)>,
}

/// Serve one WebSocket connection (plain or TLS stream) until it closes.
pub(crate) async fn serve<S>(hub: Arc<Hub>, stream: S, remote: SocketAddr)
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
    let bucket = Bucket::new(hub.cfg.limits.rate_per_sec, hub.cfg.limits.burst);
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
        tracing::debug!(remote = %self.remote, %code, %message, "error frame");
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
    pub(super) async fn flush(&mut self, s: &Arc<Session>, gen_: Option<u64>) -> WsResult<Flow> {
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

    /// Close the WebSocket (no `bye`).
    pub(super) async fn close(&mut self) -> WsResult<()> {
        self.ws.close(None).await
    }

    pub(super) fn push_self(&self, session: &Arc<Session>, msg: ServerMsg) {
        if !session.push(body(&msg), self.hub.cfg.limits.replay_frames) {
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

#[cfg(test)]
mod size_probe {
    /// Every idle connection keeps its `serve` future resident; keep it small (the per-frame
    /// handlers are boxed for that reason). Regressions here show up as memory per idle
    /// connection in `streamwire bench signalling`.
    #[test]
    fn resident_connection_future_stays_small() {
        let hub = super::Hub::new(super::super::HubConfig::new(vec![0; 32]), None);
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
