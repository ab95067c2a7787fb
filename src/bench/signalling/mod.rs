//! `streamwire bench signalling`: load on the signalling server with real WebSocket peers
//! over loopback.
//!
//! Phases (all bounded in count and time):
//! 1. Start the server: by default a separate `streamwire serve` process (so its RSS is the
//!    server's alone), or in-process, or an existing server (`--url`).
//! 2. Connect N peers across R rooms (each joins with a token) and measure server RSS before
//!    and after: memory per idle connection = ΔRSS / N.
//! 3. Room broadcasts: peers send `message` frames (a send timestamp in the payload) at a
//!    fixed total rate; every other peer of the room receives them. Deliveries/s and latency
//!    p50/p99 (send call → frame parsed by the recipient).
//! 4. Peer-to-peer relay: pairs (in rooms of their own) exchange `ice` frames at fixed total
//!    rates while the N peers stay connected and idle. Relays/s and p50/p99 per rate.
//!
//! The load generator parses only what it needs (the stream number `n` for acks and the
//! timestamp) to leave the CPU to the server; it acks every 64 frames like a real client.

mod peer;
mod server;
mod storm;

use std::path::PathBuf;
use std::time::Duration;

use async_tungstenite::WebSocketStream;
use async_tungstenite::tokio::TokioAdapter;
use futures::StreamExt;
use serde::Serialize;
use tokio::net::TcpStream;
use tokio::time::Instant;

use peer::{PeerJob, Send, connect_peer, latency, phase};
pub use server::CpuReport;
pub(crate) use server::rss_kib;
use server::{CpuMark, raise_fd_limit, start_server};
pub use storm::{StormOptions, StormRun, run_storm};

/// Where the server under test runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerTarget {
    /// Spawn `<exe> serve` as a child process on a free loopback port (memory measured in it).
    Spawn(PathBuf),
    /// Run the server inside this process (memory delta then includes the load generator).
    InProcess,
    /// An existing server; `secret` must be its secret (for minting tokens).
    Url {
        /// `ws://` URL.
        url: String,
        /// Server secret.
        secret: Vec<u8>,
    },
}

/// Benchmark options.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Peers connected and held.
    pub peers: usize,
    /// Rooms they are spread over.
    pub rooms: usize,
    /// Duration of the broadcast phase and of each relay rate step.
    pub duration: Duration,
    /// Total broadcast messages per second offered (0 skips the broadcast phase).
    pub broadcast_rate: u32,
    /// Peer pairs for the relay phase.
    pub relay_pairs: usize,
    /// Total relay rates to step through (relays/s); empty skips the relay phase.
    pub relay_rates: Vec<u32>,
    /// Server under test.
    pub server: ServerTarget,
}

impl Default for BenchOptions {
    fn default() -> Self {
        BenchOptions {
            peers: 1000,
            rooms: 100,
            duration: Duration::from_secs(10),
            broadcast_rate: 6000,
            relay_pairs: 50,
            relay_rates: vec![20_000, 50_000, 100_000],
            server: ServerTarget::InProcess,
        }
    }
}

/// Benchmark failures.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// Server start failed.
    #[error("server: {0}")]
    Server(String),
    /// A peer could not connect or join.
    #[error("peer {index}: {reason}")]
    Peer {
        /// Peer index.
        index: usize,
        /// Why.
        reason: String,
    },
    /// Bad options.
    #[error("invalid options: {0}")]
    Options(String),
}

/// Latency summary, milliseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    /// Samples.
    pub samples: usize,
    /// Median.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Maximum.
    pub max_ms: f64,
}

/// Broadcast phase result.
#[derive(Debug, Clone, Serialize)]
pub struct BroadcastReport {
    /// Messages sent per second (offered).
    pub offered_msgs_per_s: f64,
    /// Deliveries expected (messages × other peers in the room).
    pub expected_deliveries: u64,
    /// Deliveries received.
    pub deliveries: u64,
    /// Received deliveries per second of the send phase.
    pub deliveries_per_s: f64,
    /// Latency send → receive.
    pub latency: Latency,
    /// CPU used during the phase (send window + 1.5 s drain).
    pub cpu: CpuReport,
}

/// One relay rate step.
#[derive(Debug, Clone, Serialize)]
pub struct RelayReport {
    /// Offered relays/s.
    pub offered_per_s: u32,
    /// Relays sent.
    pub sent: u64,
    /// Relays received.
    pub received: u64,
    /// Received per second of the send phase.
    pub relays_per_s: f64,
    /// Latency send → receive.
    pub latency: Latency,
    /// CPU used during the step (send window + 1.5 s drain).
    pub cpu: CpuReport,
}

/// Memory measurement.
#[derive(Debug, Clone, Serialize)]
pub struct MemoryReport {
    /// `child-process` (server alone) or `in-process` (server + load generator).
    pub method: &'static str,
    /// Server RSS before connecting peers, KiB.
    pub rss_before_kib: u64,
    /// RSS with all peers connected and idle, KiB.
    pub rss_after_kib: u64,
    /// (after − before) / peers, KiB.
    pub per_connection_kib: f64,
}

/// Full report (printed as JSON with `--json`).
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    /// Peers requested.
    pub peers: usize,
    /// Rooms.
    pub rooms: usize,
    /// Connections held at the end of the run.
    pub connections_held: usize,
    /// Seconds to connect and join all peers.
    pub connect_s: f64,
    /// Server memory per idle connection (absent with `--url`).
    pub memory: Option<MemoryReport>,
    /// Broadcast phase.
    pub broadcast: Option<BroadcastReport>,
    /// Relay phase, one entry per rate.
    pub relay: Vec<RelayReport>,
}

/// A joined peer's WebSocket.
type Ws = WebSocketStream<TokioAdapter<TcpStream>>;

/// Run the benchmark.
pub async fn run(opts: &BenchOptions) -> Result<BenchReport, BenchError> {
    if opts.rooms == 0 || opts.peers < 2 * opts.rooms {
        return Err(BenchError::Options(format!(
            "need at least 2 peers per room (peers = {}, rooms = {})",
            opts.peers, opts.rooms
        )));
    }
    if opts.duration > Duration::from_secs(300) {
        return Err(BenchError::Options("duration is capped at 300 s".into()));
    }
    let nofile = raise_fd_limit();
    let srv = start_server(&opts.server).await?;
    let server_pid = srv.child.as_ref().map(|c| c.id());
    let method = match &opts.server {
        ServerTarget::Spawn(_) => Some("child-process"),
        ServerTarget::InProcess => Some("in-process"),
        ServerTarget::Url { .. } => None,
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rss_before = method.and_then(|_| rss_kib(server_pid));
    tracing::info!(peers = opts.peers, rooms = opts.rooms, nofile, url = %srv.url, "connecting peers");

    // Connect N peers across R rooms, 64 handshakes in flight at a time.
    let t0 = Instant::now();
    let mut peers: Vec<(usize, Ws, String)> = futures::stream::iter(0..opts.peers)
        .map(|i| {
            let (url, secret) = (srv.url.clone(), srv.secret.clone());
            async move {
                let room = format!("bench-room-{}", i % opts.rooms);
                connect_peer(&url, &secret, &room, &format!("u{i}"), i)
                    .await
                    .map(|(ws, id)| (i, ws, id))
            }
        })
        .buffer_unordered(64)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
    peers.sort_by_key(|(i, _, _)| *i);
    let connect_s = t0.elapsed().as_secs_f64();
    let epoch = Instant::now();

    // Let presence traffic settle (idle peers read and ack), then measure memory.
    let (wss, _) = phase(
        peers
            .into_iter()
            .map(|(_, ws, _)| {
                (
                    ws,
                    PeerJob {
                        send: Send::None,
                        per_tick: 0,
                        tick: Duration::from_secs(1),
                        send_until: Instant::now(),
                    },
                )
            })
            .collect(),
        epoch,
        Instant::now(),
    )
    .await;
    let rss_after = method.and_then(|_| rss_kib(server_pid));
    let memory = match (method, rss_before, rss_after) {
        (Some(method), Some(b), Some(a)) => Some(MemoryReport {
            method,
            rss_before_kib: b,
            rss_after_kib: a,
            per_connection_kib: (a as f64 - b as f64) / opts.peers as f64,
        }),
        _ => None,
    };

    // Broadcast phase.
    let per_room = opts.peers / opts.rooms;
    let mut wss = wss;
    let broadcast = if opts.broadcast_rate > 0 {
        // Spread the total rate over all peers; each sends per_tick frames every `tick`
        // (or one frame every k ticks, approximated by a longer tick).
        let per_peer_per_s = opts.broadcast_rate as f64 / opts.peers as f64;
        // Batches about every 10 ms at most; per_tick / tick is exactly the per-peer rate.
        let per_tick = (per_peer_per_s * 0.01).ceil().max(1.0) as u32;
        let tick = Duration::from_secs_f64(per_tick as f64 / per_peer_per_s.max(0.01));
        let start = Instant::now();
        let until = start + opts.duration;
        let jobs = wss
            .into_iter()
            .map(|ws| {
                (
                    ws,
                    PeerJob {
                        send: Send::Broadcast,
                        per_tick,
                        tick,
                        send_until: until,
                    },
                )
            })
            .collect();
        let mark = CpuMark::now(server_pid);
        let (back, outs) = phase(jobs, epoch, until).await;
        let cpu = mark.since(server_pid);
        wss = back;
        let sent: u64 = outs.iter().map(|o| o.sent).sum();
        let received: u64 = outs.iter().map(|o| o.received).sum();
        // Rooms get peers round-robin; room r has per_room or per_room + 1 peers.
        let extra = opts.peers % opts.rooms;
        let mut expected = 0u64;
        for (i, o) in outs.iter().enumerate() {
            let room = i % opts.rooms;
            let size = per_room + usize::from(room < extra);
            expected += o.sent * (size as u64 - 1);
        }
        let secs = opts.duration.as_secs_f64();
        let lat = latency(outs.into_iter().flat_map(|o| o.lat_us).collect());
        Some(BroadcastReport {
            offered_msgs_per_s: sent as f64 / secs,
            expected_deliveries: expected,
            deliveries: received,
            deliveries_per_s: received as f64 / secs,
            latency: lat,
            cpu,
        })
    } else {
        None
    };

    // Relay phase: pairs in their own rooms; the N peers stay connected and idle.
    let mut relay = Vec::new();
    if !opts.relay_rates.is_empty() && opts.relay_pairs > 0 {
        let mut pairs: Vec<(Ws, String, Ws, String)> = Vec::new();
        for p in 0..opts.relay_pairs {
            let room = format!("bench-pair-{p}");
            let (a, aid) =
                connect_peer(&srv.url, &srv.secret, &room, "pa", opts.peers + 2 * p).await?;
            let (b, bid) =
                connect_peer(&srv.url, &srv.secret, &room, "pb", opts.peers + 2 * p + 1).await?;
            pairs.push((a, aid, b, bid));
        }
        for &rate in &opts.relay_rates {
            let senders = 2 * opts.relay_pairs;
            let per_sender = rate as f64 / senders as f64;
            // Batches of `per_tick` frames about every 5 ms; the tick is then stretched so
            // that per_tick / tick is exactly the per-sender rate.
            let per_tick = (per_sender * 0.005).ceil().max(1.0) as u32;
            let tick = Duration::from_secs_f64(per_tick as f64 / per_sender.max(0.01));
            let start = Instant::now();
            let until = start + opts.duration;
            let mut jobs = Vec::new();
            let mut ids = Vec::new();
            for (a, aid, b, bid) in pairs.drain(..) {
                jobs.push((
                    a,
                    PeerJob {
                        send: Send::Ice { to: bid.clone() },
                        per_tick,
                        tick,
                        send_until: until,
                    },
                ));
                jobs.push((
                    b,
                    PeerJob {
                        send: Send::Ice { to: aid.clone() },
                        per_tick,
                        tick,
                        send_until: until,
                    },
                ));
                ids.push((aid, bid));
            }
            let idle_count = wss.len();
            for ws in wss.drain(..) {
                jobs.push((
                    ws,
                    PeerJob {
                        send: Send::None,
                        per_tick: 0,
                        tick,
                        send_until: start,
                    },
                ));
            }
            let mark = CpuMark::now(server_pid);
            let (mut back, outs) = phase(jobs, epoch, until).await;
            let cpu = mark.since(server_pid);
            let sent: u64 = outs.iter().map(|o| o.sent).sum();
            let received: u64 = outs.iter().map(|o| o.received).sum();
            let lat = latency(outs.into_iter().flat_map(|o| o.lat_us).collect());
            relay.push(RelayReport {
                offered_per_s: rate,
                sent,
                received,
                relays_per_s: received as f64 / opts.duration.as_secs_f64(),
                latency: lat,
                cpu,
            });
            if back.len() != 2 * ids.len() + idle_count {
                return Err(BenchError::Server(format!(
                    "connections dropped during the relay phase ({} of {} left)",
                    back.len(),
                    2 * ids.len() + idle_count
                )));
            }
            wss = back.split_off(2 * ids.len());
            let mut it = back.into_iter();
            for (aid, bid) in ids {
                if let (Some(a), Some(b)) = (it.next(), it.next()) {
                    pairs.push((a, aid, b, bid));
                }
            }
        }
        wss.extend(pairs.into_iter().flat_map(|(a, _, b, _)| [a, b]));
    }
    let connections_held = match &srv.in_process {
        Some((h, _)) => h.stats().connections,
        None => wss.len(),
    };
    drop(wss);
    Ok(BenchReport {
        peers: opts.peers,
        rooms: opts.rooms,
        connections_held,
        connect_s,
        memory,
        broadcast,
        relay,
    })
}
