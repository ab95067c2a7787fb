//! `streamwire bench ...`: one variant per benchmark.

use crate::bench::encode::{self, EncodeParams};
use streamwire::encoder::{Codec, SystemRegistry};

/// Benchmarks.
#[derive(Debug, clap::Subcommand)]
pub enum BenchCommand {
    /// Encoder throughput and per-frame latency for the chosen encoder of each codec.
    Encode(EncodeArgs),
    /// Telemetry ingest records/s into SQLite and report generation time (1 h, 10 peers).
    Telemetry(TelemetryArgs),
    /// Signalling server load: room broadcasts and peer-to-peer relay.
    Signalling(super::bench_signalling::BenchSignallingArgs),
    /// Signalling join storm: N joins one after another, optionally against the reference
    /// server too.
    JoinStorm(super::bench_signalling::JoinStormArgs),
    /// WebRTC latency: capture to decoded / rendered frame, first frame, CPU.
    Latency(super::bench_latency::BenchLatencyArgs),
    /// Media under loss and jitter (run in a private network namespace): frames decoded,
    /// freezes, rendered latency, concealed audio, repair overhead per cell.
    Impairment(super::bench_impairment::BenchImpairmentArgs),
    /// SFU (Janus) against the mesh: publisher CPU and uplink, latency, first frame, SFU CPU,
    /// lowest frame rate, for N subscribers (run in a private network namespace).
    Sfu(super::bench_sfu::BenchSfuArgs),
    /// Whiteboard: stroke propagation from a pointer event in one Chromium page to painted in
    /// another, and between Rust members; a large board (join to synced, server memory,
    /// document and database size).
    Whiteboard(WhiteboardArgs),
}

/// Arguments of `bench whiteboard`.
#[derive(Debug, clap::Args)]
pub struct WhiteboardArgs {
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    /// Stroke latency samples, of the browser path and of the library path each.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub samples: u32,
    /// The Chromium binary that runs the two pages of the browser path (headless).
    #[arg(long, value_name = "PATH", default_value = crate::bench::chromium::DEFAULT_CHROMIUM)]
    pub browser: std::path::PathBuf,
    /// Skip the browser path (no Chromium needed): `stroke_latency` is then null and only
    /// `library_stroke_latency` is timed.
    #[arg(long, conflicts_with = "browser")]
    pub no_browser: bool,
    /// Strokes on the large board.
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub strokes: u32,
    /// Joins timed on the large board (the figure is their median).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=50))]
    pub joins: u32,
    /// A flag for the `streamwire serve` child (repeatable; e.g.
    /// `--serve-arg=--whiteboard-sync-chunk-bytes=1048576`). Default: its defaults.
    #[arg(long = "serve-arg", allow_hyphen_values = true)]
    pub serve_args: Vec<String>,
}

/// Arguments of `bench telemetry`.
#[derive(Debug, clap::Args)]
pub struct TelemetryArgs {
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    /// Runs (figures are medians over runs).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=50))]
    pub runs: u32,
    /// Batches per ingest run (100 samples x 6 fields each).
    #[arg(long, default_value_t = 400, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub batches: u32,
}

/// Arguments of `bench encode`.
#[derive(Debug, clap::Args)]
pub struct EncodeArgs {
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    /// Frames per run.
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u32).range(10..=100_000))]
    pub frames: u32,
    /// Runs per codec (figures are medians over runs).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=50))]
    pub runs: u32,
    /// Only these codecs (repeatable): h264, vp8, vp9, av1.
    #[arg(long = "codec", value_parser = parse_codec)]
    pub codecs: Vec<Codec>,
}

fn parse_codec(s: &str) -> Result<Codec, String> {
    Codec::from_name(s).ok_or_else(|| format!("unknown codec `{s}` (expected h264, vp8, vp9, av1)"))
}

pub fn execute(cmd: BenchCommand) -> anyhow::Result<()> {
    match cmd {
        BenchCommand::Telemetry(a) => {
            let params = crate::bench::telemetry::TelemetryParams {
                runs: a.runs,
                batches: a.batches,
                ..Default::default()
            };
            let r = crate::bench::telemetry::run(&params)?;
            if a.json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                println!(
                    "telemetry ingest: {:.0} records/s median ({} records per run, {} per batch); \
                     through the server ({} clients): {:.0} records/s median; \
                     report for {} peers x {} s ({} rows): {:.0} ms median",
                    r.ingest_records_per_s_median,
                    r.ingest_records_per_run,
                    r.ingest_records_per_batch,
                    r.server_clients,
                    r.server_records_per_s_median,
                    r.report_peers,
                    r.report_seconds,
                    r.report_rows,
                    r.report_ms_median
                );
            }
            Ok(())
        }
        BenchCommand::Encode(a) => {
            let params = EncodeParams {
                frames: a.frames,
                runs: a.runs,
                ..EncodeParams::default()
            };
            let codecs = if a.codecs.is_empty() {
                Codec::ALL.to_vec()
            } else {
                a.codecs
            };
            let report = encode::run(&params, &codecs, &SystemRegistry::new());
            if a.json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                println!(
                    "encode {}x{}@{} {} kbit/s, {} frames x {} runs (medians over runs)",
                    params.width,
                    params.height,
                    params.fps,
                    params.bitrate_kbps,
                    params.frames,
                    params.runs
                );
                for r in &report.results {
                    match (&r.encoder, r.fps_median) {
                        (Some(e), Some(fps)) => println!(
                            "  {:5} {:12} {:7.1} fps  latency median {:6.2} ms  p95 {:6.2} ms",
                            r.codec,
                            e,
                            fps,
                            r.latency_ms_median.unwrap_or(0.0),
                            r.latency_ms_p95.unwrap_or(0.0)
                        ),
                        _ => println!(
                            "  {:5} error: {}",
                            r.codec,
                            r.error.as_deref().unwrap_or("no result")
                        ),
                    }
                }
            }
            if let Some(r) = report.results.iter().find(|r| r.error.is_some()) {
                anyhow::bail!(
                    "bench encode: {} failed: {}",
                    r.codec,
                    r.error.as_deref().unwrap_or("")
                );
            }
            Ok(())
        }
        BenchCommand::Signalling(a) => super::bench_signalling::run_cli(a),
        BenchCommand::JoinStorm(a) => super::bench_signalling::run_storm_cli(a),
        BenchCommand::Latency(a) => super::bench_latency::execute(a),
        BenchCommand::Impairment(a) => super::bench_impairment::execute(a),
        BenchCommand::Sfu(a) => super::bench_sfu::execute(a),
        BenchCommand::Whiteboard(a) => {
            use anyhow::Context;
            let exe = std::env::current_exe().context("locating the streamwire binary")?;
            let opts = crate::bench::whiteboard::WhiteboardOptions {
                samples: a.samples as usize,
                browser: (!a.no_browser).then(|| a.browser.clone()),
                strokes: a.strokes as usize,
                joins: a.joins as usize,
                server_args: a.serve_args.clone(),
            };
            let rt = tokio::runtime::Runtime::new().context("starting the tokio runtime")?;
            let r = rt.block_on(crate::bench::whiteboard::run(&exe, &opts))?;
            if a.json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                for (name, l) in [
                    ("stroke latency", r.stroke_latency.as_ref()),
                    (
                        "  on the bench's clock",
                        r.stroke_latency_bench_clock.as_ref(),
                    ),
                    ("  until applied", r.stroke_latency_applied.as_ref()),
                    ("library stroke latency", Some(&r.library_stroke_latency)),
                ] {
                    if let Some(l) = l {
                        println!(
                            "{name} ({}): p50 {:.2} ms, p95 {:.2} ms over {} strokes",
                            l.path, l.p50_ms, l.p95_ms, l.samples
                        );
                    }
                }
                if let Some(b) = &r.browser {
                    println!("browser: {b}");
                } else {
                    println!("stroke latency: not timed (--no-browser)");
                }
                println!(
                    "board of {} strokes: join -> synced {:.0} ms (median of {}), server RSS +{} KiB, document {} bytes, database {} bytes",
                    r.board.strokes,
                    r.board.join_synced_ms,
                    r.board.join_synced_runs_ms.len(),
                    r.board
                        .server_rss_growth_kib
                        .map_or("?".into(), |k| k.to_string()),
                    r.board.document_bytes,
                    r.board.db_bytes
                );
            }
            Ok(())
        }
    }
}
