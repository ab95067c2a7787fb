//! `cargo bench --bench encode`: the same measurement as `streamwire bench encode --json`
//! (chosen encoder per codec at 1280x720@30; fps and per-frame latency median/p95), printed as JSON.
//! Optional environment: `STREAMWIRE_BENCH_FRAMES` (default 300), `STREAMWIRE_BENCH_RUNS` (default 3).

use streamwire::bench::encode::{self, EncodeParams};
use streamwire::encoder::{Codec, SystemRegistry};

fn env_u32(name: &str, default: u32) -> u32 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    if let Err(e) = streamwire::gst_init::init() {
        eprintln!("cannot initialise GStreamer: {e}");
        std::process::exit(1);
    }
    let params = EncodeParams {
        frames: env_u32("STREAMWIRE_BENCH_FRAMES", 300).clamp(10, 100_000),
        runs: env_u32("STREAMWIRE_BENCH_RUNS", 3).clamp(1, 50),
        ..EncodeParams::default()
    };
    let report = encode::run(&params, &Codec::ALL, &SystemRegistry::new());
    match serde_json::to_string_pretty(&report) {
        Ok(json) => println!("{json}"),
        Err(e) => {
            eprintln!("cannot serialise the report: {e}");
            std::process::exit(1);
        }
    }
}
