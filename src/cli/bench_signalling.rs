//! `streamwire bench signalling`: the command line of [`crate::bench::signalling`].

use std::time::Duration;

use crate::bench::signalling::{
    BenchOptions, BenchReport, ServerTarget, StormOptions, StormRun, run, run_storm,
};
use anyhow::Context;
use clap::Args;
use streamwire::signalling::token::{load_secret, parse_ttl};

/// Arguments of `streamwire bench signalling`.
#[derive(Debug, Args)]
pub struct BenchSignallingArgs {
    /// Peers connected and held.
    #[arg(long, default_value_t = 1000)]
    pub peers: usize,
    /// Rooms the peers are spread over.
    #[arg(long, default_value_t = 100)]
    pub rooms: usize,
    /// Duration of the broadcast phase and of each relay step (e.g. 10s).
    #[arg(long, default_value = "10s")]
    pub duration: String,
    /// Total room broadcast messages per second offered (0 skips the phase).
    #[arg(long, default_value_t = 6000)]
    pub broadcast_rate: u32,
    /// Peer pairs for the relay phase.
    #[arg(long, default_value_t = 50)]
    pub relay_pairs: usize,
    /// Relay rates to step through, relays/s (comma-separated; empty skips the phase).
    #[arg(long, value_delimiter = ',', default_value = "20000,50000,100000")]
    pub relay_rates: Vec<u32>,
    /// Benchmark an existing server (ws:// only) instead of starting one.
    #[arg(long, requires = "secret_file")]
    pub url: Option<String>,
    /// That server's secret file (to mint tokens).
    #[arg(long)]
    pub secret_file: Option<std::path::PathBuf>,
    /// Run the server inside the benchmark process instead of a child process
    /// (memory per connection then includes the load generator's share).
    #[arg(long)]
    pub in_process: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Run and print the report.
pub fn run_args(a: BenchSignallingArgs) -> anyhow::Result<BenchReport> {
    let server = match (&a.url, a.in_process) {
        (Some(url), _) => ServerTarget::Url {
            url: url.clone(),
            secret: load_secret(a.secret_file.as_deref().context("--secret-file")?, false)?,
        },
        (None, true) => ServerTarget::InProcess,
        (None, false) => {
            ServerTarget::Spawn(std::env::current_exe().context("locating the streamwire binary")?)
        }
    };
    let opts = BenchOptions {
        peers: a.peers,
        rooms: a.rooms,
        duration: parse_ttl(&a.duration)
            .map_err(anyhow::Error::msg)
            .context("--duration")?
            .max(Duration::from_secs(1)),
        broadcast_rate: a.broadcast_rate,
        relay_pairs: a.relay_pairs,
        relay_rates: a.relay_rates.clone(),
        server,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    Ok(rt.block_on(run(&opts))?)
}

/// Entry point.
pub fn run_cli(a: BenchSignallingArgs) -> anyhow::Result<()> {
    let json = a.json;
    let r = run_args(a)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&r)?);
        return Ok(());
    }
    println!(
        "peers {} in {} rooms, connected in {:.2} s, {} connections held",
        r.peers, r.rooms, r.connect_s, r.connections_held
    );
    if let Some(m) = &r.memory {
        println!(
            "server memory per idle connection: {:.1} KiB ({}: RSS {} -> {} KiB)",
            m.per_connection_kib, m.method, m.rss_before_kib, m.rss_after_kib
        );
    }
    if let Some(b) = &r.broadcast {
        println!(
            "broadcast: {:.0} msgs/s offered, {:.0} deliveries/s ({} of {} expected), p50 {:.2} ms, p99 {:.2} ms",
            b.offered_msgs_per_s,
            b.deliveries_per_s,
            b.deliveries,
            b.expected_deliveries,
            b.latency.p50_ms,
            b.latency.p99_ms
        );
        println!(
            "  cpu: server {:?} s, generator {:?} s, load average {:?}",
            b.cpu.server_cpu_s, b.cpu.generator_cpu_s, b.cpu.load_avg_1m
        );
    }
    for x in &r.relay {
        println!(
            "relay @ {}/s: {:.0} relays/s ({} of {} sent), p50 {:.2} ms, p99 {:.2} ms",
            x.offered_per_s, x.relays_per_s, x.received, x.sent, x.latency.p50_ms, x.latency.p99_ms
        );
        println!(
            "  cpu: server {:?} s, generator {:?} s, load average {:?}",
            x.cpu.server_cpu_s, x.cpu.generator_cpu_s, x.cpu.load_avg_1m
        );
    }
    Ok(())
}

/// Arguments of `streamwire bench join-storm`.
#[derive(Debug, Args)]
pub struct JoinStormArgs {
    /// Joins, one after another (each connection is held until the end).
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub joins: u64,
    /// Rooms the joins are spread over, round-robin.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub rooms: u64,
    /// The reference server binary (gst-plugins-rs `gst-webrtc-signalling-server`) to run
    /// the same storm against.
    #[arg(long)]
    pub reference_server: Option<std::path::PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Run `bench join-storm` and print the report.
pub fn run_storm_cli(a: JoinStormArgs) -> anyhow::Result<()> {
    let opts = StormOptions {
        joins: usize::try_from(a.joins)?,
        rooms: usize::try_from(a.rooms)?,
        streamwire: std::env::current_exe().context("locating the streamwire binary")?,
        reference: a.reference_server.clone(),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let r = rt.block_on(run_storm(&opts))?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
        return Ok(());
    }
    let line = |name: &str, s: &StormRun| {
        println!(
            "{name}: {} joins in {:.2} s ({:.0}/s), per join p50 {:.2} ms, p99 {:.2} ms, server cpu {:?} s",
            s.joins, s.total_s, s.joins_per_s, s.latency.p50_ms, s.latency.p99_ms, s.server_cpu_s
        );
    };
    line("streamwire", &r.streamwire);
    if let Some(x) = &r.reference {
        line("reference", x);
    }
    if let Some(q) = r.ratio {
        println!("streamwire / reference time: {q:.2}");
    }
    Ok(())
}
