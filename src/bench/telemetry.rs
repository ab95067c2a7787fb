//! Telemetry benchmarks: ingest throughput (field values per second, batched, into a SQLite
//! file in WAL mode) of the store alone and of the whole server path (real signalling server
//! on 127.0.0.1, real clients sending `telemetry` frames, acknowledged after the commit), and
//! report generation time for one hour of data from 10 peers.
//!
//! A *record* here is one stored field value (one row of `records`); a *sample* is one
//! [`Record`] of the wire format (several field values taken at one time).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::TempDb;
use streamwire::report::ReportError;
use streamwire::signalling::protocol::telemetry::{Batch, FieldValue, Record, Source};
use streamwire::telemetry::Consent;
use streamwire::telemetry::store::{Store, Tags};

/// Parameters.
#[derive(Debug, Clone)]
pub struct TelemetryParams {
    /// Batches per ingest run.
    pub batches: u32,
    /// Samples per batch (each with 6 peer-stats fields).
    pub samples_per_batch: u32,
    /// Runs of each benchmark; figures are medians over runs.
    pub runs: u32,
    /// Peers in the report data set.
    pub report_peers: u32,
    /// Seconds of data per peer in the report data set (1 sample per second).
    pub report_seconds: u32,
    /// Directory for the temporary databases.
    pub dir: PathBuf,
    /// Concurrent clients of the server-path ingest run (0 skips it).
    pub server_clients: u32,
    /// Batches each client sends in the server-path run.
    pub server_batches: u32,
}

impl Default for TelemetryParams {
    fn default() -> Self {
        Self {
            batches: 400,
            samples_per_batch: 100,
            runs: 5,
            report_peers: 10,
            report_seconds: 3600,
            dir: std::env::temp_dir(),
            server_clients: 4,
            server_batches: 50,
        }
    }
}

/// Results (JSON output of `streamwire bench telemetry --json`).
#[derive(Debug, Clone, Serialize)]
pub struct TelemetryReport {
    /// Field values stored per ingest run.
    pub ingest_records_per_run: u64,
    /// Records per batch.
    pub ingest_records_per_batch: u64,
    /// Records per second of each run.
    pub ingest_records_per_s: Vec<f64>,
    /// Median over runs.
    pub ingest_records_per_s_median: f64,
    /// Rows in the report data set.
    pub report_rows: u64,
    /// Peers in the report data set.
    pub report_peers: u32,
    /// Seconds of data per peer.
    pub report_seconds: u32,
    /// Report generation time of each run (query + charts + HTML), milliseconds.
    pub report_ms: Vec<f64>,
    /// Median over runs.
    pub report_ms_median: f64,
    /// Size of the generated HTML, bytes.
    pub report_bytes: usize,
    /// Clients of the server-path ingest run.
    pub server_clients: u32,
    /// Field values stored per server-path run.
    pub server_records_per_run: u64,
    /// Server path: records per second of each run, from the first frame sent to the last
    /// `telemetry_ack` received.
    pub server_records_per_s: Vec<f64>,
    /// Median over runs.
    pub server_records_per_s_median: f64,
}

/// Errors of the telemetry benchmark.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryBenchError {
    /// Store or report failure.
    #[error(transparent)]
    Report(#[from] ReportError),
    /// The server-path run failed.
    #[error("server ingest run: {0}")]
    Server(String),
}

/// Deterministic pseudo-random numbers (xorshift), so runs see the same data.
struct Rng(u64);

impl Rng {
    fn next_f64(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn peer_sample(rng: &mut Rng, ts_ms: i64, track: &str) -> Record {
    let loss = rng.next_f64() * 2.0;
    let rtt = 20.0 + rng.next_f64() * 80.0;
    let jitter = rng.next_f64() * 20.0;
    Record {
        ts_ms,
        source: Source::Peer,
        track: track.into(),
        fields: BTreeMap::from([
            (
                "bitrate".to_owned(),
                FieldValue::Num(1.5e6 + rng.next_f64() * 5e5),
            ),
            (
                "fps".to_owned(),
                FieldValue::Num(28.0 + rng.next_f64() * 2.0),
            ),
            ("rtt".to_owned(), FieldValue::Num(rtt)),
            ("packet-loss".to_owned(), FieldValue::Num(loss)),
            ("jitter".to_owned(), FieldValue::Num(jitter)),
            (
                "quality-score".to_owned(),
                FieldValue::Num(streamwire::telemetry::batcher::quality_score(
                    Some(rtt),
                    Some(loss),
                    Some(jitter),
                )),
            ),
        ]),
    }
}

fn device_sample(rng: &mut Rng, ts_ms: i64) -> Record {
    Record {
        ts_ms,
        source: Source::Device,
        track: String::new(),
        fields: BTreeMap::from([
            (
                "cpu-usage".to_owned(),
                FieldValue::Num(20.0 + rng.next_f64() * 40.0),
            ),
            (
                "memory-used".to_owned(),
                FieldValue::Num(4e9 + rng.next_f64() * 1e8),
            ),
            (
                "stream-fps".to_owned(),
                FieldValue::Num(29.0 + rng.next_f64()),
            ),
            (
                "stream-bitrate".to_owned(),
                FieldValue::Num(1.8e6 + rng.next_f64() * 2e5),
            ),
        ]),
    }
}

fn median(v: &[f64]) -> f64 {
    super::median(v).unwrap_or(0.0)
}

/// Runs both benchmarks.
pub fn run(p: &TelemetryParams) -> Result<TelemetryReport, TelemetryBenchError> {
    let retention = Duration::from_secs(30 * 86400);
    let now = streamwire::telemetry::store::now_ms();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);

    // Ingest: prepared batches, timed from the first ingest call to the last commit.
    let mut ingest_rates = Vec::new();
    let mut per_run = 0;
    let per_batch = u64::from(p.samples_per_batch) * 6;
    for run in 0..p.runs {
        let db = TempDb::new(&p.dir, "ingest");
        let mut store = Store::open(&db.0, retention).map_err(ReportError::from)?;
        let batches: Vec<Batch> = (0..p.batches)
            .map(|b| Batch {
                consent: Consent::Necessary,
                records: (0..p.samples_per_batch)
                    .map(|i| {
                        let ts = now - 3_600_000 + i64::from(b * p.samples_per_batch + i);
                        peer_sample(&mut rng, ts, "video0")
                    })
                    .collect(),
            })
            .collect();
        let peer = format!("peer-{run}");
        let tags = Tags {
            room: "bench",
            session: "s",
            peer: &peer,
            user: "bench-user",
            name: "bench-user",
            addr: Some(std::net::IpAddr::from([127, 0, 0, 1])),
        };
        let start = Instant::now();
        let mut stored = 0;
        for b in &batches {
            stored += store
                .ingest(&tags, b, now)
                .map_err(ReportError::from)?
                .stored;
        }
        let secs = start.elapsed().as_secs_f64();
        per_run = stored;
        ingest_rates.push(stored as f64 / secs);
    }

    // Report: 1 h from `report_peers` peers, 1 sample/s of device fields and two tracks.
    let db = TempDb::new(&p.dir, "report");
    let mut store = Store::open(&db.0, retention).map_err(ReportError::from)?;
    let t0 = now - i64::from(p.report_seconds) * 1000;
    let mut rows = 0;
    for peer_i in 0..p.report_peers {
        let peer = format!("peer-{peer_i:02}");
        let user = format!("user-{peer_i:02}");
        let tags = Tags {
            room: "bench-report",
            session: &peer,
            peer: &peer,
            user: &user,
            name: &user,
            addr: None,
        };
        for chunk in (0..p.report_seconds).collect::<Vec<_>>().chunks(300) {
            let mut records = Vec::with_capacity(chunk.len() * 3);
            for s in chunk {
                let ts = t0 + i64::from(*s) * 1000;
                records.push(device_sample(&mut rng, ts));
                records.push(peer_sample(&mut rng, ts, "video0"));
                let mut audio = peer_sample(&mut rng, ts, "audio0");
                audio.fields.remove("fps");
                records.push(audio);
            }
            rows += store
                .ingest(
                    &tags,
                    &Batch {
                        consent: Consent::Necessary,
                        records,
                    },
                    now,
                )
                .map_err(ReportError::from)?
                .stored;
        }
    }
    let mut report_ms = Vec::new();
    let mut bytes = 0;
    for _ in 0..p.runs {
        let start = Instant::now();
        let html = streamwire::report::generate(&store, "bench-report", t0, None)?;
        report_ms.push(start.elapsed().as_secs_f64() * 1000.0);
        bytes = html.len();
    }

    let mut server_rates = Vec::new();
    let mut server_per_run = 0;
    if p.server_clients > 0 {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| TelemetryBenchError::Server(format!("tokio runtime: {e}")))?;
        for _ in 0..p.runs {
            let (stored, secs) = rt.block_on(server_run(p, &mut rng))?;
            server_per_run = stored;
            server_rates.push(stored as f64 / secs);
        }
    }

    Ok(TelemetryReport {
        server_clients: p.server_clients,
        server_records_per_run: server_per_run,
        server_records_per_s_median: median(&server_rates),
        server_records_per_s: server_rates,
        ingest_records_per_run: per_run,
        ingest_records_per_batch: per_batch,
        ingest_records_per_s_median: median(&ingest_rates),
        ingest_records_per_s: ingest_rates,
        report_rows: rows,
        report_peers: p.report_peers,
        report_seconds: p.report_seconds,
        report_ms_median: median(&report_ms),
        report_ms,
        report_bytes: bytes,
    })
}

/// One server-path run: a real server on 127.0.0.1:0 with a fresh store, `server_clients`
/// clients each sending `server_batches` prepared batches as fast as the acks allow (all
/// frames queued at once). Returns (field values stored, seconds).
async fn server_run(p: &TelemetryParams, rng: &mut Rng) -> Result<(u64, f64), TelemetryBenchError> {
    use streamwire::server::{Server, ServerConfig, TelemetryConfig};
    use streamwire::signalling::client::{Client, ClientConfig, Event};
    use streamwire::signalling::protocol::Grant;
    use streamwire::signalling::token::{Claims, mint};

    let err =
        |what: &str, e: &dyn std::fmt::Display| TelemetryBenchError::Server(format!("{what}: {e}"));
    let db = TempDb::new(&p.dir, "server");
    let secret = b"bench-telemetry-secret-0123456789abcdef".to_vec();
    let mut cfg = ServerConfig::new(
        std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        secret.clone(),
    );
    cfg.telemetry = Some(TelemetryConfig::new(db.0.clone()));
    // The bench measures ingest, not the per-connection flood protection.
    cfg.limits.rate_per_sec = 100_000;
    cfg.limits.burst = 100_000;
    let server = Server::bind(cfg).await.map_err(|e| err("bind", &e))?;
    let url = format!("ws://{}", server.local_addr());
    let handle = server.handle();
    let task = tokio::spawn(server.run());

    let now = streamwire::telemetry::store::now_ms();
    let mut clients = Vec::new();
    for c in 0..p.server_clients {
        let user = format!("bench-{c}");
        let claims = Claims::new(
            "bench",
            &user,
            &user,
            Duration::from_secs(600),
            &[Grant::Publish],
        );
        let token = mint(&secret, &claims).map_err(|e| err("token", &e))?;
        let (client, events) = Client::connect(ClientConfig::new(&url, "bench", &token))
            .await
            .map_err(|e| err("connect", &e))?;
        let batches: Vec<Batch> = (0..p.server_batches)
            .map(|b| Batch {
                consent: Consent::Necessary,
                records: (0..p.samples_per_batch)
                    .map(|i| {
                        let ts = now - 3_600_000 + i64::from(b * p.samples_per_batch + i);
                        peer_sample(rng, ts, "video0")
                    })
                    .collect(),
            })
            .collect();
        clients.push((client, events, batches));
    }
    let start = Instant::now();
    let mut waits = Vec::new();
    for (client, mut events, batches) in clients {
        let n = batches.len();
        for b in batches {
            client.send_telemetry(b).map_err(|e| err("send", &e))?;
        }
        waits.push(tokio::spawn(async move {
            let mut stored = 0u64;
            let mut acks = 0;
            while acks < n {
                match tokio::time::timeout(Duration::from_secs(60), events.recv()).await {
                    Ok(Some(Event::TelemetryAck { stored: s, .. })) => {
                        stored += s;
                        acks += 1;
                    }
                    Ok(Some(Event::ServerError { code, message, .. })) => {
                        return Err(format!("server error {code:?}: {message}"));
                    }
                    Ok(Some(_)) => {}
                    Ok(None) => return Err("connection closed".to_owned()),
                    Err(_) => return Err(format!("no ack within 60 s ({acks} of {n})")),
                }
            }
            client.leave().await;
            Ok(stored)
        }));
    }
    let mut stored = 0;
    let mut elapsed = 0.0f64;
    for w in waits {
        stored += w
            .await
            .map_err(|e| err("client task", &e))?
            .map_err(TelemetryBenchError::Server)?;
        elapsed = elapsed.max(start.elapsed().as_secs_f64());
    }
    handle.shutdown().await;
    let _ = task.await;
    Ok((stored, elapsed))
}
