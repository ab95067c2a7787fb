//! `streamwire bench join-storm`: N joins one after another against a `streamwire serve` child
//! process and, when given, the reference server (gst-plugins-rs
//! `gst-webrtc-signalling-server`) under the same load.
//!
//! One join is: TCP connect to 127.0.0.1, WebSocket upgrade, then
//! - streamwire: send `join` (a pre-minted token, rooms round-robin) and read `welcome`;
//! - reference: read the `welcome` the server sends on connect (it has no rooms or tokens,
//!   so its join does strictly less work).
//!
//! Each connection stays open until the storm ends, so the server holds N sessions at the
//! end. The next join starts when the previous `welcome` arrived. Bounded: N joins, each
//! within 30 s.

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_tungstenite::tungstenite::Message;
use async_tungstenite::tungstenite::protocol::WebSocketConfig;
use futures::StreamExt;
use serde::Serialize;
use tokio::net::TcpStream;
use tokio::time::Instant;

use streamwire::signalling::protocol::Grant;
use streamwire::signalling::token::{Claims, mint};

use super::peer::latency;
use super::server::{CpuMark, raise_fd_limit, start_server};
use super::{BenchError, Latency, ServerTarget, Ws};

/// Join-storm options.
#[derive(Debug, Clone)]
pub struct StormOptions {
    /// Joins, one after another.
    pub joins: usize,
    /// Rooms the streamwire joins are spread over (round-robin).
    pub rooms: usize,
    /// The `streamwire` binary to spawn as the server.
    pub streamwire: PathBuf,
    /// The reference `gst-webrtc-signalling-server` binary, if it is to be compared.
    pub reference: Option<PathBuf>,
}

/// One server's storm.
#[derive(Debug, Clone, Serialize)]
pub struct StormRun {
    /// Joins completed (all of them, or the run fails).
    pub joins: usize,
    /// Wall time of all joins, seconds.
    pub total_s: f64,
    /// Joins per second.
    pub joins_per_s: f64,
    /// Per-join time (connect → welcome).
    pub latency: Latency,
    /// Server process CPU seconds during the storm.
    pub server_cpu_s: Option<f64>,
    /// Load generator CPU seconds during the storm.
    pub generator_cpu_s: Option<f64>,
    /// 1-minute load average at the end.
    pub load_avg_1m: Option<f64>,
}

/// The report: streamwire, the reference, and their ratio.
#[derive(Debug, Clone, Serialize)]
pub struct StormReport {
    /// Joins per server.
    pub joins: usize,
    /// Rooms (streamwire).
    pub rooms: usize,
    /// `streamwire serve`.
    pub streamwire: StormRun,
    /// `gst-webrtc-signalling-server`, when `--reference-server` was given.
    pub reference: Option<StormRun>,
    /// streamwire total time / reference total time.
    pub ratio: Option<f64>,
}

const JOIN_TIMEOUT: Duration = Duration::from_secs(30);

fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(8 * 1024)
        .write_buffer_size(16 * 1024)
}

/// Connect and upgrade; the stream and the first text frame if `join` is `None`, else after
/// sending `join` the first text frame that follows.
async fn join_once(url: &str, join: Option<String>, index: usize) -> Result<Ws, BenchError> {
    let err = |reason: String| BenchError::Peer { index, reason };
    let fut = async {
        let host = url.trim_start_matches("ws://");
        let tcp = TcpStream::connect(host)
            .await
            .map_err(|e| err(format!("connect {host}: {e}")))?;
        let _ = tcp.set_nodelay(true);
        let (mut ws, _) =
            async_tungstenite::tokio::client_async_with_config(url, tcp, Some(ws_config()))
                .await
                .map_err(|e| err(e.to_string()))?;
        if let Some(j) = join {
            ws.send(Message::Text(j.into()))
                .await
                .map_err(|e| err(e.to_string()))?;
        }
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(t))) => {
                    // Both servers start their welcome frame with this type tag.
                    if t.as_str().contains("\"welcome\"") {
                        return Ok(ws);
                    }
                    return Err(err(format!("no welcome: {t}")));
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(err(e.to_string())),
                None => return Err(err("closed before welcome".into())),
            }
        }
    };
    tokio::time::timeout(JOIN_TIMEOUT, fut)
        .await
        .map_err(|_| err("no welcome within 30 s".into()))?
}

/// Run `joins` sequential joins; `frame(i)` is the join frame of join `i` (`None`: wait for
/// the server's own welcome).
async fn storm(
    url: &str,
    server_pid: Option<u32>,
    frames: Vec<Option<String>>,
) -> Result<StormRun, BenchError> {
    let joins = frames.len();
    let mut held = Vec::with_capacity(joins);
    let mut times = Vec::with_capacity(joins);
    let cpu = CpuMark::now(server_pid);
    let start = Instant::now();
    for (i, frame) in frames.into_iter().enumerate() {
        let t = Instant::now();
        held.push(join_once(url, frame, i).await?);
        times.push(u32::try_from(t.elapsed().as_micros()).unwrap_or(u32::MAX));
    }
    let total = start.elapsed().as_secs_f64();
    let cpu = cpu.since(server_pid);
    drop(held);
    Ok(StormRun {
        joins,
        total_s: total,
        joins_per_s: joins as f64 / total,
        latency: latency(times),
        server_cpu_s: cpu.server_cpu_s,
        generator_cpu_s: cpu.generator_cpu_s,
        load_avg_1m: cpu.load_avg_1m,
    })
}

/// A running reference server, killed on drop.
struct Reference(std::process::Child);

impl Drop for Reference {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn spawn_reference(exe: &Path) -> Result<(Reference, u16), BenchError> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| BenchError::Server(e.to_string()))?
        .port();
    let child = std::process::Command::new(exe)
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        // Its default log level is `info`, a line per connection; streamwire runs at `warn`.
        .env("WEBRTCSINK_SIGNALLING_SERVER_LOG", "warn")
        .stdin(std::process::Stdio::null())
        .spawn()
        .map_err(|e| BenchError::Server(format!("spawning {}: {e}", exe.display())))?;
    let mut r = Reference(child);
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).await.is_err() {
        if let Ok(Some(st)) = r.0.try_wait() {
            return Err(BenchError::Server(format!("reference server exited: {st}")));
        }
        if Instant::now() > deadline {
            return Err(BenchError::Server(
                "reference server did not listen within 20 s".into(),
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok((r, port))
}

/// Run the storm against streamwire, then against the reference if given.
pub async fn run_storm(opts: &StormOptions) -> Result<StormReport, BenchError> {
    if opts.joins == 0 || opts.rooms == 0 {
        return Err(BenchError::Options(
            "--joins and --rooms must be > 0".into(),
        ));
    }
    // One descriptor per held connection in this process, plus headroom; each server is a
    // child process with its own descriptor table (and the same limit).
    let need = (opts.joins + 256) as u64;
    let have = raise_fd_limit();
    if have < need {
        return Err(BenchError::Options(format!(
            "{} joins need {need} file descriptors, the limit is {have}",
            opts.joins
        )));
    }
    let ours = {
        let srv = start_server(&ServerTarget::Spawn(opts.streamwire.clone())).await?;
        let pid = srv.child.as_ref().map(|c| c.id());
        // Tokens are minted before the clock starts: the client's cost is not the server's.
        let mut frames = Vec::with_capacity(opts.joins);
        for i in 0..opts.joins {
            let room = format!("storm{}", i % opts.rooms);
            let user = format!("u{i}");
            let token = mint(
                &srv.secret,
                &Claims::new(&room, &user, &user, Duration::from_secs(3600), &Grant::ALL),
            )
            .map_err(|e| BenchError::Peer {
                index: i,
                reason: e.to_string(),
            })?;
            frames.push(Some(
                serde_json::json!({"type":"join","v":1,"room":room,"token":token}).to_string(),
            ));
        }
        storm(&srv.url, pid, frames).await?
    };
    let reference = match &opts.reference {
        Some(exe) => {
            let (r, port) = spawn_reference(exe).await?;
            let url = format!("ws://127.0.0.1:{port}");
            Some(storm(&url, Some(r.0.id()), vec![None; opts.joins]).await?)
        }
        None => None,
    };
    let ratio = reference.as_ref().map(|r| ours.total_s / r.total_s);
    Ok(StormReport {
        joins: opts.joins,
        rooms: opts.rooms,
        streamwire: ours,
        reference,
        ratio,
    })
}
