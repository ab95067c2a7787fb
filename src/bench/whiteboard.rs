//! `streamwire bench whiteboard`: the whiteboard against a `streamwire serve` child process on
//! loopback (its own state directory and SQLite file):
//!
//! - stroke latency: a real pointer event in one headless Chromium page until the stroke is
//!   painted on another page's whiteboard canvas (`whiteboard_browser`; left out with
//!   `--no-browser`);
//! - library stroke latency: one Rust member draws a stroke, the time until another Rust
//!   member has applied it (library to library through the server; no browser, no rendering);
//! - a board of `--strokes` strokes (8 points each): the time from connecting to a fully
//!   synced board for a new member (median of `--joins`), the server's RSS growth while the
//!   board was filled, the encoded document size and the SQLite file size.
//!
//! The server runs with the default signalling limits (`--max-queue-bytes` 4 MiB): a board
//! larger than that reaches the joiners in sync chunks (docs/whiteboard.md).

use std::path::Path;
use std::time::{Duration, Instant};

use gststreamwire::whiteboard::Item;
use serde::Serialize;
use streamwire::signalling::client::{Client, ClientConfig, Event};
use streamwire::signalling::protocol::Grant;
use streamwire::signalling::token::{Claims, mint};
use streamwire::whiteboard::Whiteboard;

use super::signalling::rss_kib;
use super::{median, percentile};

/// What to run.
#[derive(Debug, Clone)]
pub struct WhiteboardOptions {
    /// Latency samples (of each path).
    pub samples: usize,
    /// The Chromium binary for the browser path; `None` skips it.
    pub browser: Option<std::path::PathBuf>,
    /// Strokes on the big board.
    pub strokes: usize,
    /// Joins timed on the big board.
    pub joins: usize,
    /// More `streamwire serve` flags (e.g. `--whiteboard-sync-chunk-bytes`).
    pub server_args: Vec<String>,
}

/// Percentiles of the stroke latency.
#[derive(Debug, Clone, Serialize)]
pub struct StrokeLatency {
    /// Median, ms.
    pub p50_ms: f64,
    /// 95th percentile, ms.
    pub p95_ms: f64,
    /// Samples.
    pub samples: usize,
    /// What was timed.
    pub path: &'static str,
}

/// The big board.
#[derive(Debug, Clone, Serialize)]
pub struct BigBoard {
    /// Strokes on it.
    pub strokes: usize,
    /// Connect, open, synced (the whole board applied): median over the joins, ms. Counting
    /// the strokes afterwards (to check them) is not timed.
    pub join_synced_ms: f64,
    /// Each join, ms.
    pub join_synced_runs_ms: Vec<f64>,
    /// Where each join's time went (sync answers in chunks only).
    pub join_breakdown: Vec<JoinBreakdown>,
    /// Server RSS growth while the board was filled, KiB.
    pub server_rss_growth_kib: Option<u64>,
    /// The whole document encoded as one Yjs update, bytes.
    pub document_bytes: usize,
    /// The server's SQLite file (with its WAL) after the fill, bytes.
    pub db_bytes: u64,
}

/// One join of the big board, taken apart.
#[derive(Debug, Clone, Serialize)]
pub struct JoinBreakdown {
    /// Connect, join, open, to the first sync chunk received (server: encoding the board
    /// unless cached, the first frames), ms.
    pub to_first_chunk_ms: f64,
    /// First chunk to last (transfer, JSON and base64, confirmations), ms.
    pub receive_ms: f64,
    /// Decoding and applying the update (yrs), ms.
    pub apply_ms: f64,
    /// Applied to synced (step 1 again and its small answer), ms.
    pub tail_ms: f64,
    /// Chunks.
    pub chunks: usize,
}

/// The report.
#[derive(Debug, Clone, Serialize)]
pub struct WhiteboardReport {
    /// Stroke propagation in the browser: pointer event in one page to painted in another,
    /// on the pages' clock (`None` with `--no-browser`).
    pub stroke_latency: Option<StrokeLatency>,
    /// The same strokes on the bench process's clock: an upper bound of `stroke_latency`.
    pub stroke_latency_bench_clock: Option<StrokeLatency>,
    /// The same strokes until applied to the other page's board model (before its paint).
    pub stroke_latency_applied: Option<StrokeLatency>,
    /// The browser that ran the pages (`Browser.getVersion` product).
    pub browser: Option<String>,
    /// Stroke propagation between two Rust members (library to library).
    pub library_stroke_latency: StrokeLatency,
    /// The big board.
    pub board: BigBoard,
}

/// A failed run.
#[derive(Debug, thiserror::Error)]
#[error("bench whiteboard: {0}")]
pub struct WhiteboardBenchError(String);

impl WhiteboardBenchError {
    pub(crate) fn new(what: String) -> Self {
        Self(what)
    }
}

fn err(what: &str, e: impl std::fmt::Display) -> WhiteboardBenchError {
    WhiteboardBenchError(format!("{what}: {e}"))
}

/// The server child process, killed on drop.
struct Child(std::process::Child);
impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_server(
    exe: &Path,
    dir: &Path,
    extra: &[String],
) -> Result<(Child, String, Vec<u8>), WhiteboardBenchError> {
    let secret: Vec<u8> = {
        let mut raw = [0u8; 32];
        getrandom::getrandom(&mut raw).map_err(|e| err("secret", e))?;
        raw.iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
            .into_bytes()
    };
    let secret_file = dir.join("secret");
    std::fs::write(&secret_file, &secret).map_err(|e| err("secret file", e))?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| err("free port", e))?
        .port();
    let child = std::process::Command::new(exe)
        .args(["serve", "--addr", &format!("127.0.0.1:{port}")])
        .args(["--rate", "1000000", "--burst", "1000000"])
        .args(extra)
        .arg("--state-dir")
        .arg(dir)
        .arg("--secret-file")
        .arg(&secret_file)
        .arg("--db")
        .arg(dir.join("wb.db"))
        .env("RUST_LOG", "warn")
        .stdin(std::process::Stdio::null())
        .spawn()
        .map_err(|e| err("spawning streamwire serve", e))?;
    Ok((Child(child), format!("ws://127.0.0.1:{port}"), secret))
}

async fn member(
    url: &str,
    secret: &[u8],
    user: &str,
) -> Result<(Client, Whiteboard), WhiteboardBenchError> {
    let token = mint(
        secret,
        &Claims::new(
            "bench",
            user,
            user,
            Duration::from_secs(3600),
            &[Grant::Draw],
        ),
    )
    .map_err(|e| err("token", e))?;
    let (client, mut events) = Client::connect(ClientConfig::new(url, "bench", &token))
        .await
        .map_err(|e| err("connect", e))?;
    let board = Whiteboard::open(&client, "main", user).map_err(|e| err("open", e))?;
    let b = board.clone();
    tokio::spawn(async move {
        while let Some(ev) = events.recv().await {
            if let Event::Whiteboard { data, .. } = ev
                && let Err(e) = b.receive(&data)
            {
                tracing::warn!(error = %e, "bench whiteboard: update not applied");
            }
        }
    });
    tokio::time::timeout(Duration::from_secs(60), board.synced())
        .await
        .map_err(|_| err("sync", "no answer within 60 s"))?;
    Ok((client, board))
}

fn stroke(id: String, i: usize) -> Item {
    let x = (i % 1500) as f32;
    let y = ((i / 1500) % 800) as f32;
    let pts: Vec<[f32; 3]> = (0..8)
        .map(|k| [x + k as f32 * 4.0, y + k as f32 * 2.0, 0.5])
        .collect();
    Item::pen(&id, "p1", "", "#1f1f1f", 3.0, &pts)
}

/// Run against a fresh `exe serve` on loopback.
pub async fn run(
    exe: &Path,
    opts: &WhiteboardOptions,
) -> Result<WhiteboardReport, WhiteboardBenchError> {
    if let Some(path) = &opts.browser {
        super::chromium::check(path).map_err(|e| err("browser", e))?;
    }
    let dir = tempfile::tempdir().map_err(|e| err("state directory", e))?;
    let (child, url, secret) = spawn_server(exe, dir.path(), &opts.server_args)?;
    let pid = child.0.id();
    let deadline = Instant::now() + Duration::from_secs(20);
    while tokio::net::TcpStream::connect(url.trim_start_matches("ws://"))
        .await
        .is_err()
    {
        if Instant::now() > deadline {
            return Err(err("server", "not listening within 20 s"));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (_wc, writer) = member(&url, &secret, "writer").await?;
    let (_oc, observer) = member(&url, &secret, "observer").await?;

    // Stroke latency: one stroke at a time, timed until the observer applied it.
    let mut changes = observer.changes();
    let mut lat = Vec::with_capacity(opts.samples);
    for i in 0..opts.samples {
        let t0 = Instant::now();
        writer
            .draw(&stroke(format!("l{i}"), i))
            .map_err(|e| err("draw", e))?;
        loop {
            let c = tokio::time::timeout(Duration::from_secs(10), changes.recv())
                .await
                .map_err(|_| err("latency", "stroke not received within 10 s"))?
                .ok_or_else(|| err("latency", "observer closed"))?;
            if c.remote {
                break;
            }
        }
        lat.push(t0.elapsed().as_secs_f64() * 1000.0);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    drop(changes);

    // The browser path, in a room of its own; the browser is gone before the board is filled.
    let browser = match &opts.browser {
        Some(path) => Some(
            super::whiteboard_browser::run(
                path,
                &url.replacen("ws://", "http://", 1),
                &secret,
                opts.samples,
            )
            .await?,
        ),
        None => None,
    };

    // The big board: strokes in batches of 200 (one update each). Each batch waits until the
    // observer has applied the one before: the relayed updates then stay within the
    // observer's queue limit (the default 4 MiB), as a real member drawing would.
    let rss0 = rss_kib(Some(pid));
    let total = opts.samples + opts.strokes;
    let mut changes = observer.changes();
    let mut batch = Vec::with_capacity(200);
    let mut in_flight = 0usize;
    for i in 0..opts.strokes {
        batch.push(stroke(format!("s{i}"), i));
        if batch.len() == 200 || i + 1 == opts.strokes {
            while in_flight > 0 {
                let c = tokio::time::timeout(Duration::from_secs(30), changes.recv())
                    .await
                    .map_err(|_| err("fill", "a batch was not relayed within 30 s"))?
                    .ok_or_else(|| err("fill", "observer closed"))?;
                if c.remote {
                    in_flight -= 1;
                }
            }
            writer.draw_all(&batch);
            batch.clear();
            in_flight += 1;
        }
    }
    while in_flight > 0 {
        let c = tokio::time::timeout(Duration::from_secs(30), changes.recv())
            .await
            .map_err(|_| err("fill", "the last batch was not relayed within 30 s"))?
            .ok_or_else(|| err("fill", "observer closed"))?;
        if c.remote {
            in_flight -= 1;
        }
    }
    drop(changes);
    let have = observer.items(None).len();
    if have != total {
        return Err(err(
            "fill",
            format!("the observer holds {have} of {total} strokes"),
        ));
    }
    let rss1 = rss_kib(Some(pid));
    let mut joins = Vec::with_capacity(opts.joins);
    let mut breakdown = Vec::with_capacity(opts.joins);
    let mut document_bytes = 0;
    for j in 0..opts.joins {
        let t0 = Instant::now();
        let (c, b) = member(&url, &secret, &format!("late{j}")).await?;
        let end = Instant::now();
        joins.push((end - t0).as_secs_f64() * 1000.0);
        if let Some(c) = b.chunked_sync() {
            let ms = |a: Instant, b: Instant| b.saturating_duration_since(a).as_secs_f64() * 1000.0;
            breakdown.push(JoinBreakdown {
                to_first_chunk_ms: ms(t0, c.first_chunk),
                receive_ms: ms(c.first_chunk, c.last_chunk),
                apply_ms: ms(c.last_chunk, c.applied),
                tail_ms: ms(c.applied, end),
                chunks: c.chunks,
            });
        }
        let n = b.items(None).len();
        if n != total {
            return Err(err("join", format!("synced with {n} of {total} strokes")));
        }
        document_bytes = b.encode_state().len();
        c.leave().await;
    }
    let db_bytes = ["wb.db", "wb.db-wal"]
        .iter()
        .filter_map(|f| std::fs::metadata(dir.path().join(f)).ok())
        .map(|m| m.len())
        .sum();
    drop(child);
    Ok(WhiteboardReport {
        stroke_latency: browser.as_ref().map(|b| b.page_clock.clone()),
        stroke_latency_bench_clock: browser.as_ref().map(|b| b.bench_clock.clone()),
        stroke_latency_applied: browser.as_ref().map(|b| b.applied.clone()),
        browser: browser.map(|b| b.browser),
        library_stroke_latency: StrokeLatency {
            p50_ms: percentile(&lat, 50.0).unwrap_or(f64::NAN),
            p95_ms: percentile(&lat, 95.0).unwrap_or(f64::NAN),
            samples: lat.len(),
            path: "Rust member draws -> server -> Rust member applied (loopback, no browser)",
        },
        board: BigBoard {
            strokes: total,
            join_synced_ms: median(&joins).unwrap_or(f64::NAN),
            join_synced_runs_ms: joins,
            join_breakdown: breakdown,
            server_rss_growth_kib: rss0.zip(rss1).map(|(a, b)| b.saturating_sub(a)),
            document_bytes,
            db_bytes,
        },
    })
}
