//! A media test connection: after a verified `media_test` frame, the connection belongs to one
//! test of the server's media test peer until the test ends. It never joins the room: no
//! session, no stream, no presence; it relays the client's `offer`/`ice` to the test and the
//! test's frames (`answer`, `ice`, `media_test_report`, `media_test_ended`) to the client.

use std::time::Duration;

use async_tungstenite::tungstenite::Message;
use async_tungstenite::tungstenite::protocol::frame::CloseFrame;
use async_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use futures::StreamExt;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::conn::{Conn, Flow, WsResult};
use super::service_frames::pseudo_peer_signal;
use crate::signalling::protocol::media_test::{
    DEFAULT_TEST_SECONDS, MEDIA_TEST_PEER, MediaTestEnd, MediaTestKind, REPORT_INTERVAL,
};
use crate::signalling::protocol::{ClientMsg, ErrorCode, ServerMsg, decode_client};
use crate::signalling::service::{
    Caller, MediaTestRequest, MediaTestRun, PseudoPeerSignal, ServiceError,
};
use crate::signalling::token::Claims;

/// Frames from the test to the client waiting to be written (the test sends its answer, a
/// handful of candidates and one report per interval; the answer and candidates wait for
/// room, a report that does not fit is dropped).
const TO_CLIENT_QUEUE: usize = 64;

impl<S> Conn<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    /// A verified `media_test`: start the test, answer `media_test_ready` and serve the
    /// connection until the test ends (or refuse it with an `error`; the connection stays).
    pub(super) async fn media_test(
        &mut self,
        claims: Claims,
        test: MediaTestKind,
        seconds: Option<u32>,
    ) -> WsResult<Flow> {
        let t = "media_test";
        let Some(tests) = self.hub.media_tests.clone() else {
            self.send_error(
                ErrorCode::NotImplemented,
                format!("`{t}`: this server runs no media tests (--max-media-tests 0)"),
                Some(t),
                None,
            )
            .await?;
            return Ok(Flow::Continue);
        };
        let max = tests.max_seconds();
        let seconds = seconds.unwrap_or(DEFAULT_TEST_SECONDS.min(max));
        if seconds == 0 || seconds > max {
            self.send_error(
                ErrorCode::InvalidField,
                format!(
                    "`{t}` field `seconds` is {seconds}; a test runs 1 to {max} s on this server"
                ),
                Some(t),
                Some("seconds"),
            )
            .await?;
            return Ok(Flow::Continue);
        }
        let (to_client, mut from_test) = mpsc::channel(TO_CLIENT_QUEUE);
        let id = self.hub.new_id("mt");
        let ice_servers = self.hub.ice_servers_for(&id);
        let request = MediaTestRequest {
            id: id.clone(),
            ice_servers: ice_servers.clone(),
            from: Caller {
                room: claims.room.clone(),
                peer: id,
                user: claims.sub.clone(),
                name: claims.name.clone(),
                addr: self.remote.ip(),
            },
            test,
        };
        let run = match tests.start(request, to_client) {
            Ok(run) => run,
            Err(e) => {
                let (code, reason) = match e {
                    ServiceError::Refused { code, reason, .. } => (code, reason),
                    ServiceError::Invalid { what, reason } => {
                        (ErrorCode::InvalidField, format!("{what}: {reason}"))
                    }
                    ServiceError::Failed(why) => (ErrorCode::Internal, why),
                };
                self.send_error(code, format!("`{t}` refused: {reason}"), Some(t), None)
                    .await?;
                return Ok(Flow::Continue);
            }
        };
        // Authenticated and counted by the test cap from here on.
        self.pending = None;
        tracing::info!(
            remote = %self.remote, room = %claims.room, user = %claims.sub, test = %test,
            id = run.id(), seconds, "media test started"
        );
        self.send(&ServerMsg::MediaTestReady {
            test,
            test_id: run.id().to_owned(),
            seconds,
            delay_ms: run.delay_ms(),
            report_interval_ms: u32::try_from(REPORT_INTERVAL.as_millis()).unwrap_or(u32::MAX),
            ice_servers,
        })
        .await?;
        let (end, message) = self
            .serve_media_test(run.as_ref(), &mut from_test, seconds)
            .await?;
        drop(run);
        tracing::info!(remote = %self.remote, end = end.as_str(), %message, "media test ended");
        self.send(&ServerMsg::MediaTestEnded {
            reason: end,
            message,
        })
        .await?;
        self.ws
            .close(Some(CloseFrame {
                code: CloseCode::Normal,
                reason: "media_test_ended".into(),
            }))
            .await?;
        Ok(Flow::Close)
    }

    /// The test connection's loop: until the time is up, the client leaves, the test ends
    /// itself (its `media_test_ended` is returned, not sent), or the server shuts down.
    async fn serve_media_test(
        &mut self,
        run: &dyn MediaTestRun,
        from_test: &mut mpsc::Receiver<ServerMsg>,
        seconds: u32,
    ) -> WsResult<(MediaTestEnd, String)> {
        let mut stop = self.hub.shutdown_rx();
        let deadline = tokio::time::sleep(Duration::from_secs(u64::from(seconds)));
        tokio::pin!(deadline);
        let every = self.hub.cfg.ping_interval;
        let mut ping = tokio::time::interval_at(Instant::now() + every, every);
        let mut last_rx = Instant::now();
        let mut offered = false;
        loop {
            tokio::select! {
                biased;
                _ = stop.changed() => {
                    return Ok((MediaTestEnd::Shutdown, "the server is shutting down".into()));
                }
                _ = &mut deadline => {
                    return Ok((MediaTestEnd::Time, format!("the test ran its {seconds} s")));
                }
                frame = from_test.recv() => match frame {
                    Some(ServerMsg::MediaTestEnded { reason, message }) => {
                        return Ok((reason, message));
                    }
                    Some(frame) => self.send(&frame).await?,
                    None => {
                        return Ok((MediaTestEnd::Failed, "the media test peer stopped".into()));
                    }
                },
                frame = self.ws.next() => {
                    last_rx = Instant::now();
                    let text = match frame {
                        None | Some(Ok(Message::Close(_))) => {
                            return Ok((MediaTestEnd::Left, "the client closed the connection".into()));
                        }
                        Some(Err(e)) => return Err(e),
                        Some(Ok(Message::Text(t))) => t,
                        Some(Ok(Message::Binary(b))) => {
                            self.bucket.take_waiting().await;
                            self.send_error(ErrorCode::BadJson, format!("binary WebSocket frames ({} bytes) are not accepted; send JSON text frames", b.len()), None, None).await?;
                            continue;
                        }
                        Some(Ok(_)) => continue,
                    };
                    if let Some(end) = self.on_test_frame(run, text.as_str(), &mut offered).await? {
                        return Ok(end);
                    }
                }
                _ = ping.tick() => {
                    if last_rx.elapsed() > self.hub.cfg.idle_timeout {
                        return Ok((MediaTestEnd::Left, "nothing received within the idle timeout".into()));
                    }
                    self.ws.send(Message::Ping(Vec::new().into())).await?;
                }
            }
        }
    }

    /// One client frame on a test connection; `Some` ends the test.
    async fn on_test_frame(
        &mut self,
        run: &dyn MediaTestRun,
        text: &str,
        offered: &mut bool,
    ) -> WsResult<Option<(MediaTestEnd, String)>> {
        let max_frame = self.hub.cfg.limits.max_frame_bytes;
        self.bucket.take_waiting().await;
        if text.len() > max_frame {
            self.send_error(
                ErrorCode::FrameTooLarge,
                format!(
                    "frame of {} bytes exceeds max_frame_bytes = {max_frame}; not processed",
                    text.len()
                ),
                None,
                None,
            )
            .await?;
            return Ok(None);
        }
        let msg = match decode_client(text) {
            Ok(m) => m,
            Err(e) => {
                self.send(&e.to_server_msg()).await?;
                return Ok(None);
            }
        };
        let t = msg.type_name();
        let (to, signal) = match msg {
            ClientMsg::Leave {} => return Ok(Some((MediaTestEnd::Left, "the client left".into()))),
            ClientMsg::Ping {} => {
                self.send(&ServerMsg::Pong {}).await?;
                return Ok(None);
            }
            ClientMsg::Offer { .. } | ClientMsg::Ice { .. } => match pseudo_peer_signal(&msg) {
                Some(s) => s,
                None => return Ok(None),
            },
            _ => {
                self.send_error(
                    ErrorCode::NotJoined,
                    format!(
                        "`{t}` on a media test connection (it takes `offer`, `ice`, `leave` and \
                         `ping`; join the room on a connection of its own)"
                    ),
                    Some(t),
                    None,
                )
                .await?;
                return Ok(None);
            }
        };
        if to != MEDIA_TEST_PEER {
            self.send_error(
                ErrorCode::UnknownPeer,
                format!("`{t}` field `to`: a media test connection reaches only `{MEDIA_TEST_PEER}`, not `{to}`"),
                Some(t),
                Some("to"),
            )
            .await?;
            return Ok(None);
        }
        let field = match &signal {
            PseudoPeerSignal::Offer(_) => {
                if *offered {
                    self.send_error(
                        ErrorCode::InvalidField,
                        format!("`{t}` field `sdp`: a media test takes one offer"),
                        Some(t),
                        Some("sdp"),
                    )
                    .await?;
                    return Ok(None);
                }
                *offered = true;
                "sdp"
            }
            _ => "candidate",
        };
        match run.signal(signal) {
            Ok(()) => Ok(None),
            Err(ServiceError::Invalid { reason, .. }) => {
                self.send_error(
                    ErrorCode::InvalidField,
                    format!("`{t}` field `{field}`: {reason}"),
                    Some(t),
                    Some(field),
                )
                .await?;
                // An offer the peer cannot use ends the test; a bad candidate does not.
                Ok((field == "sdp").then_some((MediaTestEnd::Failed, reason)))
            }
            Err(ServiceError::Refused { code, reason, .. }) => {
                self.send_error(code, format!("`{t}`: {reason}"), Some(t), None)
                    .await?;
                Ok(None)
            }
            Err(ServiceError::Failed(why)) => Ok(Some((MediaTestEnd::Failed, why))),
        }
    }
}
