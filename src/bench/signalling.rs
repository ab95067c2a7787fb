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

use std::path::PathBuf;
use std::time::Duration;

use async_tungstenite::WebSocketStream;
use async_tungstenite::tokio::TokioAdapter;
use async_tungstenite::tungstenite::Message;
use async_tungstenite::tungstenite::protocol::WebSocketConfig;
use futures::{SinkExt, StreamExt};
use serde::Serialize;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Instant;

use streamwire::signalling::protocol::Grant;
use streamwire::signalling::server::{Server, ServerConfig, ServerHandle};
use streamwire::signalling::token::{Claims, mint};

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

type Ws = WebSocketStream<TokioAdapter<TcpStream>>;

/// Raise the soft fd limit to the hard limit (5,000 peers need > 10,000 fds with an
/// in-process server). Returns the new soft limit.
pub fn raise_fd_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid pointer to a properly sized struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 0;
        }
        lim.rlim_cur = lim.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
    }
    lim.rlim_cur
}

fn rss_kib(pid: Option<u32>) -> Option<u64> {
    let path = match pid {
        Some(p) => format!("/proc/{p}/status"),
        None => "/proc/self/status".to_owned(),
    };
    let s = std::fs::read_to_string(path).ok()?;
    let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// CPU seconds (user + system) consumed so far by a process (`None` = this process).
fn cpu_secs(pid: Option<u32>) -> Option<f64> {
    let path = match pid {
        Some(p) => format!("/proc/{p}/stat"),
        None => "/proc/self/stat".to_owned(),
    };
    let s = std::fs::read_to_string(path).ok()?;
    let after = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    (hz > 0).then(|| ticks / hz as f64)
}

fn load_avg() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// CPU used by the server and by the load generator during one phase.
#[derive(Debug, Clone, Serialize)]
pub struct CpuReport {
    /// Server process CPU seconds (absent in-process or with `--url`).
    pub server_cpu_s: Option<f64>,
    /// Load generator (this process) CPU seconds; includes the server when in-process.
    pub generator_cpu_s: Option<f64>,
    /// 1-minute load average when the phase ended (other processes share the machine).
    pub load_avg_1m: Option<f64>,
}

struct CpuMark(Option<f64>, Option<f64>);

impl CpuMark {
    fn now(server: Option<u32>) -> CpuMark {
        CpuMark(server.and_then(|p| cpu_secs(Some(p))), cpu_secs(None))
    }
    fn since(&self, server: Option<u32>) -> CpuReport {
        let end = CpuMark::now(server);
        CpuReport {
            server_cpu_s: end.0.zip(self.0).map(|(b, a)| b - a),
            generator_cpu_s: end.1.zip(self.1).map(|(b, a)| b - a),
            load_avg_1m: load_avg(),
        }
    }
}

struct Running {
    url: String,
    secret: Vec<u8>,
    child: Option<std::process::Child>,
    in_process: Option<(ServerHandle, tokio::task::JoinHandle<()>)>,
    _secret_file: Option<TempFile>,
    /// The child server's telemetry database, removed afterwards.
    _telemetry_db: Option<TempDb>,
}

/// A SQLite file with its `-wal` and `-shm` companions, removed on drop.
struct TempDb(PathBuf);
impl Drop for TempDb {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let mut p = self.0.clone().into_os_string();
            p.push(suffix);
            let _ = std::fs::remove_file(p);
        }
    }
}

struct TempFile(PathBuf);
impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(c) = &mut self.child {
            let _ = c.kill();
            let _ = c.wait();
        }
        if let Some((_, t)) = &self.in_process {
            t.abort();
        }
    }
}

fn bench_secret() -> Vec<u8> {
    let mut raw = [0u8; 32];
    let _ = getrandom::getrandom(&mut raw);
    raw.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>()
        .into_bytes()
}

fn bench_server_config(addr: std::net::SocketAddr, secret: Vec<u8>) -> ServerConfig {
    let mut cfg = ServerConfig::new(addr, secret);
    cfg.limits.rate_per_sec = 1_000_000;
    cfg.limits.burst = 1_000_000;
    cfg.limits.max_peers_per_room = 1_000_000;
    cfg
}

async fn start_server(target: &ServerTarget) -> Result<Running, BenchError> {
    match target {
        ServerTarget::Url { url, secret } => Ok(Running {
            url: url.clone(),
            secret: secret.clone(),
            child: None,
            in_process: None,
            _secret_file: None,
            _telemetry_db: None,
        }),
        ServerTarget::InProcess => {
            let secret = bench_secret();
            let server = Server::bind(bench_server_config(
                ([127, 0, 0, 1], 0).into(),
                secret.clone(),
            ))
            .await
            .map_err(|e| BenchError::Server(e.to_string()))?;
            let url = format!("ws://{}", server.local_addr());
            let handle = server.handle();
            let task = tokio::spawn(server.run());
            Ok(Running {
                url,
                secret,
                child: None,
                in_process: Some((handle, task)),
                _secret_file: None,
                _telemetry_db: None,
            })
        }
        ServerTarget::Spawn(exe) => {
            let secret = bench_secret();
            let file = TempFile(
                std::env::temp_dir()
                    .join(format!("streamwire-bench-{}.secret", std::process::id())),
            );
            std::fs::write(&file.0, &secret)
                .map_err(|e| BenchError::Server(format!("{}: {e}", file.0.display())))?;
            let db = TempDb(std::env::temp_dir().join(format!(
                "streamwire-bench-{}-telemetry.db",
                std::process::id()
            )));
            // Pick a free loopback port (tiny race window; the child reports bind failures).
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map_err(|e| BenchError::Server(e.to_string()))?
                .port();
            let child = std::process::Command::new(exe)
                .args([
                    "serve",
                    "--addr",
                    &format!("127.0.0.1:{port}"),
                    "--rate",
                    "1000000",
                    "--burst",
                    "1000000",
                ])
                .args(["--max-peers-per-room", "1000000", "--secret-file"])
                .arg(&file.0)
                // Keep the telemetry database out of the working directory.
                .arg("--db")
                .arg(&db.0)
                .env(
                    "RUST_LOG",
                    std::env::var("STREAMWIRE_BENCH_SERVER_LOG").unwrap_or_else(|_| "warn".into()),
                )
                .stdin(std::process::Stdio::null())
                .spawn()
                .map_err(|e| BenchError::Server(format!("spawning {}: {e}", exe.display())))?;
            let url = format!("ws://127.0.0.1:{port}");
            let mut running = Running {
                url,
                secret,
                child: Some(child),
                in_process: None,
                _secret_file: Some(file),
                _telemetry_db: Some(db),
            };
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                if TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                    break;
                }
                if let Some(c) = &mut running.child
                    && let Ok(Some(st)) = c.try_wait()
                {
                    return Err(BenchError::Server(format!("server process exited: {st}")));
                }
                if Instant::now() > deadline {
                    return Err(BenchError::Server(
                        "server did not start listening within 20 s".into(),
                    ));
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Ok(running)
        }
    }
}

async fn connect_peer(
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
enum Send {
    None,
    Broadcast,
    Ice { to: String },
}

struct PeerJob {
    send: Send,
    /// Frames per tick.
    per_tick: u32,
    tick: Duration,
    send_until: Instant,
}

#[derive(Default)]
struct PeerOut {
    lat_us: Vec<u32>,
    received: u64,
    sent: u64,
}

/// Stream number of a stamped frame: `{"n":123,...`.
fn frame_n(t: &str) -> Option<u64> {
    let rest = t.strip_prefix("{\"n\":")?;
    let end = rest.find(',')?;
    rest[..end].parse().ok()
}

/// Timestamp marker `"T<micros>` written by the sender.
fn frame_stamp(t: &str) -> Option<u64> {
    let i = t.find("\"T")?;
    let digits: &str = &t[i + 2..];
    let end = digits
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    digits[..end].parse().ok()
}

async fn run_peer(
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

fn rand_u32() -> u32 {
    let mut b = [0u8; 4];
    let _ = getrandom::getrandom(&mut b);
    u32::from_le_bytes(b)
}

fn latency(mut v: Vec<u32>) -> Latency {
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
async fn phase(
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
