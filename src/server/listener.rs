//! The accept loop and each connection's handshake: admission (at most `max_pending`
//! connections that have not joined yet, `max_pending_per_ip` from one source), TLS, the HTTP
//! request head and the WebSocket upgrade under one deadline (`handshake_timeout`), then the
//! signalling hub (WebSocket) or the HTTP routes (anything else).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;

use super::handshake::{answer_and_close, check_upgrade, read_head, upgrade};
use super::{Server, http};
use crate::signalling::hub::{self, Hub, Slot};

/// What each connection's handshake needs.
#[derive(Clone)]
struct Shared {
    hub: Arc<Hub>,
    web: Arc<http::Context>,
    handshake_timeout: Duration,
    linger: Duration,
}

/// Accept connections until the hub shuts down.
pub(super) async fn accept_loop(server: Server) {
    let mut stop = server.hub.shutdown_rx();
    let shared = Shared {
        hub: server.hub.clone(),
        web: server.http.clone(),
        handshake_timeout: server.handshake_timeout,
        linger: server.hub.cfg.close_linger,
    };
    let refused_log = Throttle::default();
    let mut backoff = Backoff::default();
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            accepted = server.listener.accept() => match accepted {
                Ok((tcp, remote)) => {
                    backoff.reset();
                    let slot = match shared.hub.admit(remote.ip()) {
                        Ok(slot) => slot,
                        Err(full) => {
                            // Closed at once: an unauthenticated client holds nothing here.
                            if let Some(suppressed) = refused_log.ready() {
                                tracing::warn!(%remote, ?full, suppressed, "connection refused: too many connections waiting to join");
                            }
                            continue;
                        }
                    };
                    let _ = tcp.set_nodelay(true);
                    let shared = shared.clone();
                    let deadline = Instant::now() + shared.handshake_timeout;
                    // Separate spawns: one async block holding both the plain and the TLS
                    // handshake would size every plain connection's task for the (much
                    // larger) TLS variant.
                    match server.tls.clone() {
                        None => {
                            tokio::spawn(handshake(shared, tcp, remote, slot, deadline));
                        }
                        Some(acc) => {
                            tokio::spawn(async move {
                                match tokio::time::timeout_at(deadline, acc.accept(tcp)).await {
                                    Ok(Ok(s)) => Box::pin(handshake(shared, s, remote, slot, deadline)).await,
                                    Ok(Err(e)) => tracing::debug!(%remote, error = %e, "TLS handshake failed"),
                                    Err(_) => tracing::debug!(%remote, "TLS handshake timed out"),
                                }
                            });
                        }
                    }
                }
                Err(e) => backoff.wait(&e).await,
            }
        }
    }
    tracing::info!("signalling server stopped accepting");
}

/// Read the request head and upgrade to the signalling protocol, or answer it over HTTP,
/// all before `deadline`.
async fn handshake<S>(shared: Shared, mut s: S, remote: SocketAddr, slot: Slot, deadline: Instant)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let req = match tokio::time::timeout_at(deadline, read_head(&mut s)).await {
        Ok(Ok(req)) => req,
        Ok(Err(e)) => {
            tracing::debug!(%remote, error = ?e, "invalid request head");
            if let Some(resp) = e.response() {
                answer_and_close(s, &resp, shared.linger).await;
            }
            return;
        }
        Err(_) => {
            tracing::debug!(%remote, timeout = ?shared.handshake_timeout, "request head incomplete at the handshake deadline; closed");
            return;
        }
    };
    if !req.wants_websocket() {
        let resp = http::respond(&req, &shared.web, &mut s).await;
        answer_and_close(s, &resp, shared.linger).await;
        return;
    }
    let key = match check_upgrade(&req) {
        Ok(key) => key,
        Err(resp) => {
            tracing::debug!(%remote, "invalid WebSocket upgrade request");
            answer_and_close(s, &resp, shared.linger).await;
            return;
        }
    };
    let cfg = shared.hub.ws_config();
    match tokio::time::timeout_at(deadline, upgrade(s, &key, req.rest, cfg)).await {
        Ok(Ok(ws)) => {
            // Its own task, so the resident connection future stays as small as possible.
            tokio::spawn(hub::serve(shared.hub, ws, remote, slot));
        }
        Ok(Err(e)) => tracing::debug!(%remote, error = %e, "writing the upgrade answer failed"),
        Err(_) => {
            tracing::debug!(%remote, "upgrade answer not written before the handshake deadline")
        }
    }
}

/// Logs at most once per second, counting what it suppressed.
#[derive(Default)]
struct Throttle {
    last_s: AtomicU64,
    suppressed: AtomicU64,
}

impl Throttle {
    /// `Some(suppressed since the last log)` when a line may be logged now.
    fn ready(&self) -> Option<u64> {
        let now = epoch_s();
        let last = self.last_s.load(Ordering::Relaxed);
        if now > last
            && self
                .last_s
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            Some(self.suppressed.swap(0, Ordering::Relaxed))
        } else {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
            None
        }
    }
}

fn epoch_s() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Backoff of the accept loop when accepting fails (`EMFILE`, `ENFILE`, `ENOBUFS`,
/// `ENOMEM`): 10 ms doubling to 1 s while the failure lasts, one log line when it starts and
/// then at most one per 10 s, instead of spinning and logging every attempt.
#[derive(Default)]
struct Backoff {
    delay: Option<Duration>,
    failures: u64,
    last_log: Option<Instant>,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(10);
    const MAX: Duration = Duration::from_secs(1);

    fn reset(&mut self) {
        if self.failures > 0 {
            tracing::info!(
                failures = self.failures,
                "accepting connections again after failures"
            );
        }
        *self = Backoff::default();
    }

    async fn wait(&mut self, e: &std::io::Error) {
        // A connection the client aborted before accept is not a resource problem.
        if e.kind() == std::io::ErrorKind::ConnectionAborted {
            return;
        }
        self.failures += 1;
        let delay = self.delay.map_or(Self::FIRST, |d| (d * 2).min(Self::MAX));
        self.delay = Some(delay);
        if self
            .last_log
            .is_none_or(|t| t.elapsed() >= Duration::from_secs(10))
        {
            tracing::warn!(error = %e, failures = self.failures, next_try = ?delay, "accepting a connection failed; backing off");
            self.last_log = Some(Instant::now());
        }
        tokio::time::sleep(delay).await;
    }
}
