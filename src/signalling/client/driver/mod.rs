//! The client's task: connects (rotating through the URLs with backoff), joins or resumes,
//! runs the frame loop, acknowledges the reliable stream, resends what the server has not
//! accepted after a resume, and turns server frames into [`Event`]s.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use async_tungstenite::tungstenite::Message;
use futures::StreamExt;
use parking_lot::Mutex;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use super::backlog::{Backlog, Backlogs};
use super::transport::{Ws, open, send};
use super::{ClientConfig, ClientError, Cmd, Delivery, Event, SignallingState, Welcome};
use crate::signalling::protocol::{ClientMsg, ErrorCode, IceServer, PROTOCOL_VERSION, ServerMsg};

mod inbound;

pub(super) struct Driver {
    cfg: ClientConfig,
    cmd_rx: mpsc::UnboundedReceiver<Cmd>,
    ev_tx: mpsc::Sender<Event>,
    state_tx: watch::Sender<SignallingState>,
    welcome: Arc<Mutex<Option<Welcome>>>,
    first: Option<oneshot::Sender<Result<(), ClientError>>>,
    resume_token: Option<String>,
    last_n: u64,
    acked_n: u64,
    next_seq: u64,
    /// Messages without a delivery result yet, by seq: the frame and who waits for it.
    inflight: BTreeMap<u64, (ClientMsg, oneshot::Sender<Result<Delivery, ClientError>>)>,
    /// Sequenced signalling frames (offer/answer/ice/publish/unpublish/set_metadata) not yet
    /// known to be accepted; resent after a resume if the server had not seen them.
    signals: BTreeMap<u64, ClientMsg>,
    /// Non-message frames queued while disconnected.
    outbox: VecDeque<ClientMsg>,
    /// Highest seq of `signals` written to a socket (the ones above it are unsent).
    sent_upto: u64,
    /// Frames held unsent, against `ClientConfig::max_backlog` (shared with the `Client`).
    backlog: Arc<Backlog>,
    /// `inflight`, against `ClientConfig::max_pending_messages` (shared with the `Client`).
    pending: Arc<Backlog>,
    url_index: usize,
    /// First inflight seq to resend after the handshake.
    resend_from: u64,
}

impl Driver {
    pub(super) fn new(
        cfg: ClientConfig,
        cmd_rx: mpsc::UnboundedReceiver<Cmd>,
        ev_tx: mpsc::Sender<Event>,
        state_tx: watch::Sender<SignallingState>,
        welcome: Arc<Mutex<Option<Welcome>>>,
        first: oneshot::Sender<Result<(), ClientError>>,
        backlogs: Backlogs,
    ) -> Self {
        Driver {
            cfg,
            cmd_rx,
            ev_tx,
            state_tx,
            welcome,
            first: Some(first),
            resume_token: None,
            last_n: 0,
            acked_n: 0,
            next_seq: 1,
            inflight: BTreeMap::new(),
            signals: BTreeMap::new(),
            outbox: VecDeque::new(),
            sent_upto: 0,
            backlog: backlogs.frames,
            pending: backlogs.messages,
            url_index: 0,
            resend_from: 1,
        }
    }
}

enum End {
    /// Reconnect (resume if possible).
    Lost(String),
    /// Stop for good.
    Stop(SignallingState),
}

/// Sent sequenced frames kept for a resend after a resume, at most (the oldest sent one goes
/// first; unsent ones are bounded by `ClientConfig::max_backlog`).
const RESEND_WINDOW: usize = 4096;

impl Driver {
    async fn emit(&self, ev: Event) {
        let _ = self.ev_tx.send(ev).await;
    }

    async fn set_state(&self, s: SignallingState) {
        if *self.state_tx.borrow() != s {
            self.state_tx.send_replace(s.clone());
            tracing::debug!(state = ?s, "signalling client state");
            self.emit(Event::State(s)).await;
        }
    }

    pub(super) async fn run(mut self) {
        let mut attempt: u32 = 0;
        let mut delay = self.cfg.backoff_initial;
        let final_state = loop {
            let url = self.cfg.urls[self.url_index % self.cfg.urls.len()].clone();
            match self.session(&url).await {
                Ok(End::Stop(s)) => break s,
                Ok(End::Lost(why)) => {
                    tracing::info!(%url, reason = ?why, "signalling connection lost; reconnecting");
                    attempt = 0;
                    delay = self.cfg.backoff_initial;
                }
                Err(SessionFail::Refused(code, message)) => {
                    break SignallingState::Failed {
                        reason: format!("{code}: {message}"),
                    };
                }
                Err(SessionFail::Io(why)) => {
                    tracing::debug!(%url, reason = ?why, attempt, "signalling connect attempt failed");
                    if attempt >= self.cfg.max_attempts {
                        break SignallingState::Failed {
                            reason: format!("gave up after {attempt} attempts: {why}"),
                        };
                    }
                }
            }
            attempt += 1;
            self.url_index += 1;
            if self.first.is_none() {
                self.set_state(SignallingState::Reconnecting { attempt })
                    .await;
            }
            // Backoff with ±25% jitter; keep serving commands meanwhile (queue them).
            let wait = jittered(delay);
            delay = (delay * 2).min(self.cfg.backoff_max);
            let until = Instant::now() + wait;
            loop {
                tokio::select! {
                    _ = tokio::time::sleep_until(until) => break,
                    cmd = self.cmd_rx.recv() => match cmd {
                        None => { return self.finish(SignallingState::Closed).await; }
                        Some(Cmd::Leave(done)) => { let _ = done.send(()); return self.finish(SignallingState::Closed).await; }
                        Some(Cmd::Reconnect) => break,
                        Some(c) => self.queue(c),
                    }
                }
            }
        };
        self.finish(final_state).await;
    }

    async fn finish(mut self, state: SignallingState) {
        let reason = match &state {
            SignallingState::Failed { reason } => reason.clone(),
            _ => "closed".into(),
        };
        if let Some(first) = self.first.take() {
            let _ = first.send(Err(match &state {
                SignallingState::Failed { .. } => refusal_from(&reason),
                _ => ClientError::Closed,
            }));
        }
        for (_, (_, reply)) in std::mem::take(&mut self.inflight) {
            let _ = reply.send(Err(ClientError::Closed));
        }
        self.pending.set_unsent(0);
        self.set_state(state).await;
    }

    /// Give relayed signalling frames the next per-sender `seq` and keep them until the
    /// server is known to have accepted them.
    fn stamp_seq(&mut self, mut m: ClientMsg) -> ClientMsg {
        if !stamped(&m) {
            return m;
        }
        match &mut m {
            ClientMsg::Offer { seq, .. }
            | ClientMsg::Answer { seq, .. }
            | ClientMsg::Ice { seq, .. }
            | ClientMsg::Publish { seq, .. }
            | ClientMsg::Unpublish { seq, .. }
            | ClientMsg::SetMetadata { seq, .. }
            | ClientMsg::Whiteboard { seq, .. } => {
                let n = self.next_seq;
                self.next_seq += 1;
                *seq = Some(n);
                if self.signals.len() >= RESEND_WINDOW
                    && self
                        .signals
                        .first_key_value()
                        .is_some_and(|(k, _)| *k <= self.sent_upto)
                {
                    self.signals.pop_first();
                }
                self.signals.insert(n, m.clone());
            }
            _ => {}
        }
        m
    }

    /// Everything with seq <= `seq` was accepted by the server (it processes in order).
    fn accepted_upto(&mut self, seq: u64) {
        self.signals = self.signals.split_off(&(seq + 1));
        self.sent_upto = self.sent_upto.max(seq);
        self.backlog.set_unsent(self.unsent());
    }

    /// Frames held that no socket has taken: the outbox and the unsent sequenced frames.
    fn unsent(&self) -> usize {
        self.outbox.len() + self.signals.range(self.sent_upto + 1..).count()
    }

    fn queue(&mut self, c: Cmd) {
        match c {
            Cmd::Send(m) => {
                let m = self.stamp_seq(m);
                // A sequenced frame is kept in `signals` and sent after the handshake.
                if m.seq().is_none() {
                    self.outbox.push_back(m);
                }
                self.backlog.taken(self.unsent());
            }
            Cmd::Message { to, payload, reply } => {
                let seq = self.next_seq;
                self.next_seq += 1;
                self.inflight
                    .insert(seq, (ClientMsg::Message { seq, to, payload }, reply));
                self.pending.taken(self.inflight.len());
            }
            Cmd::Leave(done) => {
                let _ = done.send(());
            }
            Cmd::Reconnect | Cmd::Ack => {}
        }
    }

    /// One connection: handshake, then the frame loop.
    async fn session(&mut self, url: &str) -> Result<End, SessionFail> {
        let timeout = self.cfg.connect_timeout;
        let mut ws = match tokio::time::timeout(timeout, open(url, self.cfg.tls.as_ref())).await {
            Ok(Ok(ws)) => ws,
            Ok(Err(e)) => return Err(SessionFail::Io(e)),
            Err(_) => {
                return Err(SessionFail::Io(format!(
                    "connect timed out after {timeout:?}"
                )));
            }
        };
        match tokio::time::timeout(timeout, self.handshake(&mut ws)).await {
            Ok(r) => r?,
            Err(_) => return Err(SessionFail::Io("no join reply in time".into())),
        }
        self.set_state(SignallingState::Connected).await;
        if let Some(first) = self.first.take() {
            let _ = first.send(Ok(()));
        }
        // Resend what the server has not accepted yet, in order, then queued frames.
        let mut pending: Vec<(u64, ClientMsg)> = self
            .inflight
            .range(self.resend_from..)
            .map(|(k, (m, _))| (*k, m.clone()))
            .chain(
                self.signals
                    .range(self.resend_from..)
                    .map(|(k, m)| (*k, m.clone())),
            )
            .collect();
        pending.sort_by_key(|(k, _)| *k);
        let pending: Vec<ClientMsg> = pending.into_iter().map(|(_, m)| m).collect();
        self.resend_from = 1;
        for m in pending.iter().chain(self.outbox.iter()) {
            if let Err(e) = send(&mut ws, m).await {
                return Ok(End::Lost(e));
            }
        }
        self.outbox.clear();
        if let Some((k, _)) = self.signals.last_key_value() {
            self.sent_upto = self.sent_upto.max(*k);
        }
        self.backlog.set_unsent(self.unsent());
        self.frame_loop(&mut ws).await
    }

    async fn handshake(&mut self, ws: &mut Ws) -> Result<(), SessionFail> {
        if let Some(token) = self.resume_token.clone() {
            send(
                ws,
                &ClientMsg::Resume {
                    v: PROTOCOL_VERSION,
                    resume_token: token,
                    last_n: self.last_n,
                },
            )
            .await
            .map_err(SessionFail::Io)?;
            match read_reply(ws).await? {
                ServerMsg::Resumed {
                    last_seq,
                    replay,
                    ice_servers,
                    ..
                } => {
                    // Messages the server accepted keep their result in the replayed stream.
                    self.resent_after(last_seq);
                    self.emit(Event::Resumed { replayed: replay }).await;
                    if !ice_servers.is_empty() {
                        self.new_ice_servers(ice_servers).await;
                    }
                    return Ok(());
                }
                ServerMsg::Error { code, message, .. } => {
                    tracing::info!(%code, ?message, "resume refused; joining afresh");
                    self.session_lost();
                }
                other => {
                    return Err(SessionFail::Io(format!(
                        "unexpected reply to resume: {other:?}"
                    )));
                }
            }
        }
        send(
            ws,
            &ClientMsg::Join {
                v: PROTOCOL_VERSION,
                room: self.cfg.room.clone(),
                token: self.cfg.token.clone(),
                metadata: self.cfg.metadata.clone(),
            },
        )
        .await
        .map_err(SessionFail::Io)?;
        match read_reply(ws).await? {
            ServerMsg::Welcome {
                peer_id,
                room,
                user,
                name,
                grants,
                resume_token,
                grace_ms,
                peers,
                offer_to,
                ice_servers,
                limits,
                topology,
                ..
            } => {
                self.resume_token = Some(resume_token);
                self.last_n = 0;
                self.acked_n = 0;
                let w = Welcome {
                    peer_id,
                    room,
                    user,
                    name,
                    grants,
                    peers,
                    offer_to,
                    ice_servers,
                    limits,
                    grace: Duration::from_millis(grace_ms),
                    topology,
                };
                *self.welcome.lock() = Some(w.clone());
                self.emit(Event::Joined(Box::new(w))).await;
                Ok(())
            }
            ServerMsg::Error { code, message, .. } => match code {
                ErrorCode::Shutdown | ErrorCode::Internal => {
                    Err(SessionFail::Io(format!("{code}: {message}")))
                }
                _ => Err(SessionFail::Refused(code, message)),
            },
            other => Err(SessionFail::Io(format!(
                "unexpected reply to join: {other:?}"
            ))),
        }
    }

    /// The server sent fresh ICE servers: keep them in the welcome and tell the session.
    async fn new_ice_servers(&self, ice_servers: Vec<IceServer>) {
        if let Some(w) = self.welcome.lock().as_mut() {
            w.ice_servers = ice_servers.clone();
        }
        self.emit(Event::IceServers { ice_servers }).await;
    }

    /// After a resume: messages with seq <= last_seq were accepted (their results are in the
    /// replayed stream); the rest are resent.
    fn resent_after(&mut self, last_seq: u64) {
        tracing::debug!(
            last_seq,
            inflight = self.inflight.len(),
            "resumed; resending unaccepted messages"
        );
        self.resend_from = last_seq + 1;
        self.accepted_upto(last_seq);
    }

    /// The old session is gone: messages without a result fail, seq restarts.
    fn session_lost(&mut self) {
        self.resume_token = None;
        self.last_n = 0;
        self.acked_n = 0;
        let inflight = std::mem::take(&mut self.inflight);
        // Sequenced signalling belongs to the old session (old peer ids): void.
        self.signals.clear();
        self.sent_upto = 0;
        // Frames for peers of the old session are meaningless now.
        self.outbox.retain(|m| {
            !matches!(
                m,
                ClientMsg::Offer { .. }
                    | ClientMsg::Answer { .. }
                    | ClientMsg::Ice { .. }
                    | ClientMsg::Ack { .. }
            )
        });
        self.backlog.set_unsent(self.unsent());
        self.pending.set_unsent(0);
        for (seq, (_, reply)) in inflight {
            let _ = reply.send(Err(ClientError::SessionLost { seq }));
        }
        self.next_seq = 1;
    }

    async fn frame_loop(&mut self, ws: &mut Ws) -> Result<End, SessionFail> {
        // First ping one interval from now (`interval`'s first tick is not immediate: tokio
        // rounds deadlines up to the next millisecond).
        let every = self.cfg.ping_interval;
        let mut ping = tokio::time::interval_at(Instant::now() + every, every);
        let mut last_rx = Instant::now();
        let ack_timer = tokio::time::sleep(self.cfg.ack_delay);
        tokio::pin!(ack_timer);
        let mut ack_armed = false;
        loop {
            tokio::select! {
                frame = ws.next() => {
                    last_rx = Instant::now();
                    let text = match frame {
                        None => return Ok(End::Lost("connection closed".into())),
                        Some(Err(e)) => return Ok(End::Lost(e.to_string())),
                        Some(Ok(Message::Text(t))) => t,
                        Some(Ok(Message::Close(_))) => return Ok(End::Lost("server closed the connection".into())),
                        Some(Ok(_)) => continue,
                    };
                    let msg: ServerMsg = match serde_json::from_str(text.as_str()) {
                        Ok(m) => m,
                        Err(e) => {
                            tracing::warn!(error = %e, "undecodable server frame ignored");
                            continue;
                        }
                    };
                    if let Some(n) = msg.n() {
                        if n <= self.last_n {
                            continue; // already processed (replay overlap)
                        }
                        self.last_n = n;
                    }
                    if let Some(end) = self.on_server(msg).await {
                        if let End::Stop(_) = &end {
                            let _ = ws.close(None).await;
                        }
                        return Ok(end);
                    }
                    if self.last_n - self.acked_n >= self.cfg.ack_every {
                        if let Err(e) = self.ack(ws).await { return Ok(End::Lost(e)); }
                        ack_armed = false;
                    } else if self.last_n > self.acked_n && !ack_armed {
                        ack_timer.as_mut().reset(Instant::now() + self.cfg.ack_delay);
                        ack_armed = true;
                    }
                }
                _ = &mut ack_timer, if ack_armed => {
                    ack_armed = false;
                    if let Err(e) = self.ack(ws).await { return Ok(End::Lost(e)); }
                }
                cmd = self.cmd_rx.recv() => {
                    let Some(cmd) = cmd else {
                        let _ = send(ws, &ClientMsg::Leave {}).await;
                        let _ = ws.close(None).await;
                        return Ok(End::Stop(SignallingState::Closed));
                    };
                    let r = match cmd {
                        Cmd::Send(m) => {
                            let m = self.stamp_seq(m);
                            let r = send(ws, &m).await;
                            match (m.seq(), &r) {
                                (Some(n), Ok(())) => self.sent_upto = n,
                                // Not lost: sent after the next handshake.
                                (None, Err(_)) => self.outbox.push_back(m),
                                _ => {}
                            }
                            self.backlog.taken(self.unsent());
                            r
                        }
                        Cmd::Message { to, payload, reply } => {
                            let seq = self.next_seq;
                            self.next_seq += 1;
                            let m = ClientMsg::Message { seq, to, payload };
                            let r = send(ws, &m).await;
                            self.inflight.insert(seq, (m, reply));
                            self.pending.taken(self.inflight.len());
                            r
                        }
                        Cmd::Reconnect => {
                            return Ok(End::Lost("reconnect requested".into()));
                        }
                        Cmd::Ack => {
                            if self.last_n > self.acked_n {
                                ack_armed = false;
                                self.ack(ws).await
                            } else {
                                Ok(())
                            }
                        }
                        Cmd::Leave(done) => {
                            let _ = send(ws, &ClientMsg::Leave {}).await;
                            let _ = tokio::time::timeout(Duration::from_secs(2), ws.close(None)).await;
                            let _ = done.send(());
                            return Ok(End::Stop(SignallingState::Closed));
                        }
                    };
                    if let Err(e) = r { return Ok(End::Lost(e)); }
                }
                _ = ping.tick() => {
                    if last_rx.elapsed() > self.cfg.idle_timeout {
                        return Ok(End::Lost(format!("no frame from the server for {:?}", self.cfg.idle_timeout)));
                    }
                    if let Err(e) = ws.send(Message::Ping(Vec::new().into())).await {
                        return Ok(End::Lost(e.to_string()));
                    }
                }
            }
        }
    }

    async fn ack(&mut self, ws: &mut Ws) -> Result<(), String> {
        send(ws, &ClientMsg::Ack { n: self.last_n }).await?;
        self.acked_n = self.last_n;
        Ok(())
    }
}

/// `delay` scaled by a factor drawn uniformly from 0.75..1.25 (the OS random number
/// generator), so that clients cut off together (a server restart) do not retry together.
fn jittered(delay: Duration) -> Duration {
    let mut b = [0u8; 4];
    // Without OS randomness, no jitter (the delay itself) rather than a fixed factor.
    let r = match getrandom::getrandom(&mut b) {
        Ok(()) => f64::from(u32::from_le_bytes(b)) / f64::from(u32::MAX),
        Err(_) => 0.5,
    };
    delay.mul_f64(0.75 + 0.5 * r)
}

enum SessionFail {
    Refused(ErrorCode, String),
    Io(String),
}

fn refusal_from(reason: &str) -> ClientError {
    // "code: message" as produced in run(); fall back to a connect error.
    if let Some((code, message)) = reason.split_once(": ")
        && let Ok(code) =
            serde_json::from_value::<ErrorCode>(serde_json::Value::String(code.to_owned()))
    {
        return ClientError::Refused {
            code,
            message: message.to_owned(),
        };
    }
    ClientError::Connect(reason.to_owned())
}

async fn read_reply(ws: &mut Ws) -> Result<ServerMsg, SessionFail> {
    loop {
        match ws.next().await {
            None => return Err(SessionFail::Io("connection closed during join".into())),
            Some(Err(e)) => return Err(SessionFail::Io(e.to_string())),
            Some(Ok(Message::Text(t))) => {
                return serde_json::from_str(t.as_str())
                    .map_err(|e| SessionFail::Io(format!("bad reply from server: {e}")));
            }
            Some(Ok(Message::Close(_))) => {
                return Err(SessionFail::Io("server closed during join".into()));
            }
            Some(Ok(_)) => {}
        }
    }
}

/// Whether the driver stamps a `seq` on `m` (the relayed signalling frames; `message` carries
/// its own).
pub(super) fn stamped(m: &ClientMsg) -> bool {
    matches!(
        m,
        ClientMsg::Offer { .. }
            | ClientMsg::Answer { .. }
            | ClientMsg::Ice { .. }
            | ClientMsg::Publish { .. }
            | ClientMsg::Unpublish { .. }
            | ClientMsg::SetMetadata { .. }
            | ClientMsg::Whiteboard { .. }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_jitter_spreads_over_plus_minus_25_percent() {
        let d = Duration::from_millis(1000);
        let waits: Vec<u128> = (0..2000).map(|_| jittered(d).as_millis()).collect();
        assert!(waits.iter().all(|w| (750..=1250).contains(w)), "{waits:?}");
        // Uniform over 500 ms: 2000 draws cover both ends and the middle.
        assert!(waits.iter().any(|&w| w < 800), "none below 800 ms");
        assert!(waits.iter().any(|&w| w > 1200), "none above 1200 ms");
        let mean = waits.iter().sum::<u128>() as f64 / waits.len() as f64;
        assert!((950.0..1050.0).contains(&mean), "mean {mean}");
        let mut distinct = waits.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert!(distinct.len() > 300, "{} distinct waits", distinct.len());
    }
}
