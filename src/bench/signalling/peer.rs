//! The load generator's peers: connect and join, send and receive stamped frames for one phase.

use std::time::Duration;

use async_tungstenite::tungstenite::Message;
use async_tungstenite::tungstenite::protocol::WebSocketConfig;
use futures::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Instant;

use streamwire::signalling::protocol::Grant;
use streamwire::signalling::token::{Claims, mint};

use super::{BenchError, Latency, Ws};

pub(super) async fn connect_peer(
    url: &str,
    secret: &[u8],
    room: &str,
    user: &str,
    index: usize,
) -> Result<(Ws, String), BenchError> {
    let err = |reason: String| BenchError::Peer { index, reason };
    let token = mint(
        secret,
        &Claims::new(room, user, user, Duration::from_secs(3600), &Grant::ALL),
    )
    .map_err(|e| err(e.to_string()))?;
    let cfg = WebSocketConfig::default()
        .read_buffer_size(8 * 1024)
        .write_buffer_size(16 * 1024);
    let fut = async {
        let host = url.trim_start_matches("ws://");
        let tcp = TcpStream::connect(host)
            .await
            .map_err(|e| err(format!("connect {host}: {e}")))?;
        let _ = tcp.set_nodelay(true);
        let (mut ws, _) = async_tungstenite::tokio::client_async_with_config(url, tcp, Some(cfg))
            .await
            .map_err(|e| err(e.to_string()))?;
        let join = serde_json::json!({"type":"join","v":1,"room":room,"token":token}).to_string();
        ws.send(Message::Text(join.into()))
            .await
            .map_err(|e| err(e.to_string()))?;
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(t))) => {
                    let v: serde_json::Value =
                        serde_json::from_str(t.as_str()).map_err(|e| err(e.to_string()))?;
                    if v["type"] == "welcome" {
                        let id = v["peer_id"].as_str().unwrap_or_default().to_owned();
                        return Ok((ws, id));
                    }
                    return Err(err(format!("join refused: {t}")));
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(err(e.to_string())),
                None => return Err(err("closed during join".into())),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), fut)
        .await
        .map_err(|_| err("connect/join timed out".into()))?
}

#[derive(Clone)]
pub(super) enum Send {
    None,
    Broadcast,
    Ice { to: String },
}

pub(super) struct PeerJob {
    pub(super) send: Send,
    /// Frames per tick.
    pub(super) per_tick: u32,
    pub(super) tick: Duration,
    pub(super) send_until: Instant,
}

#[derive(Default)]
pub(super) struct PeerOut {
    pub(super) lat_us: Vec<u32>,
    pub(super) received: u64,
    pub(super) sent: u64,
}

/// Stream number of a stamped frame: `{"n":123,...`.
pub(super) fn frame_n(t: &str) -> Option<u64> {
    let rest = t.strip_prefix("{\"n\":")?;
    let end = rest.find(',')?;
    rest[..end].parse().ok()
}

/// Timestamp marker `"T<micros>` written by the sender.
pub(super) fn frame_stamp(t: &str) -> Option<u64> {
    let i = t.find("\"T")?;
    let digits: &str = &t[i + 2..];
    let end = digits
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    digits[..end].parse().ok()
}

pub(super) async fn run_peer(
    mut ws: Ws,
    job: PeerJob,
    epoch: Instant,
    mut stop: watch::Receiver<bool>,
) -> (Ws, PeerOut) {
    let mut out = PeerOut::default();
    let mut last_n = 0u64;
    let mut acked = 0u64;
    let mut seq = 0u64;
    let sending = !matches!(job.send, Send::None);
    // Random phase so senders do not tick in lockstep.
    let phase = Duration::from_micros(u64::from(rand_u32() % job.tick.as_micros().max(1) as u32));
    let mut tick = tokio::time::interval_at(Instant::now() + phase, job.tick);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            _ = tick.tick(), if sending && Instant::now() < job.send_until => {
                // The precondition was checked when the select started; re-check now.
                if Instant::now() >= job.send_until {
                    continue;
                }
                for _ in 0..job.per_tick {
                    let ts = epoch.elapsed().as_micros() as u64;
                    let text = match &job.send {
                        Send::Broadcast => {
                            seq += 1;
                            format!("{{\"type\":\"message\",\"seq\":{seq},\"payload\":{{\"text\":\"T{ts}\"}}}}")
                        }
                        Send::Ice { to } => format!("{{\"type\":\"ice\",\"to\":\"{to}\",\"candidate\":\"T{ts}\",\"sdp_mline_index\":0}}"),
                        Send::None => break,
                    };
                    if ws.feed(Message::Text(text.into())).await.is_err() {
                        return (ws, out);
                    }
                    out.sent += 1;
                }
                if ws.flush().await.is_err() {
                    return (ws, out);
                }
            }
            frame = ws.next() => {
                let Some(Ok(Message::Text(t))) = frame else {
                    match frame {
                        Some(Ok(_)) => continue,
                        _ => return (ws, out),
                    }
                };
                let t = t.as_str();
                if let Some(n) = frame_n(t) {
                    last_n = n;
                    if (t.contains("\"type\":\"message\"") || t.contains("\"type\":\"ice\""))
                        && let Some(ts) = frame_stamp(t)
                    {
                        let now = epoch.elapsed().as_micros() as u64;
                        out.lat_us.push(now.saturating_sub(ts).min(u32::MAX as u64) as u32);
                        out.received += 1;
                    }
                    if last_n - acked >= 64 {
                        let ack = format!("{{\"type\":\"ack\",\"n\":{last_n}}}");
                        if ws.send(Message::Text(ack.into())).await.is_err() {
                            return (ws, out);
                        }
                        acked = last_n;
                    }
                }
            }
        }
    }
    if last_n > acked {
        let _ = ws
            .send(Message::Text(
                format!("{{\"type\":\"ack\",\"n\":{last_n}}}").into(),
            ))
            .await;
    }
    (ws, out)
}

pub(super) fn rand_u32() -> u32 {
    let mut b = [0u8; 4];
    let _ = getrandom::getrandom(&mut b);
    u32::from_le_bytes(b)
}

pub(super) fn latency(mut v: Vec<u32>) -> Latency {
    if v.is_empty() {
        return Latency {
            samples: 0,
            p50_ms: 0.0,
            p99_ms: 0.0,
            max_ms: 0.0,
        };
    }
    v.sort_unstable();
    let q = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize] as f64 / 1000.0;
    Latency {
        samples: v.len(),
        p50_ms: q(0.50),
        p99_ms: q(0.99),
        max_ms: q(1.0),
    }
}

/// Run one phase: every peer in `jobs` runs until `until + drain`, then hands its socket back.
pub(super) async fn phase(
    peers: Vec<(Ws, PeerJob)>,
    epoch: Instant,
    until: Instant,
) -> (Vec<Ws>, Vec<PeerOut>) {
    let (stop_tx, stop_rx) = watch::channel(false);
    let handles: Vec<_> = peers
        .into_iter()
        .map(|(ws, job)| tokio::spawn(run_peer(ws, job, epoch, stop_rx.clone())))
        .collect();
    tokio::time::sleep_until(until + Duration::from_millis(1500)).await;
    stop_tx.send_replace(true);
    let mut wss = Vec::new();
    let mut outs = Vec::new();
    for h in handles {
        if let Ok((ws, out)) = h.await {
            wss.push(ws);
            outs.push(out);
        }
    }
    (wss, outs)
}
