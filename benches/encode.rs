//! `cargo bench --bench encode`: runs `streamwire bench encode --json` (the benchmarks are part
//! of the `streamwire` binary): the chosen encoder per codec at 1280x720@30; fps and per-frame
//! latency median/p95, printed as JSON.
//! Optional environment: `STREAMWIRE_BENCH_FRAMES` (default 300, 10..=100000),
//! `STREAMWIRE_BENCH_RUNS` (default 3, 1..=50).

use std::process::{Command, ExitCode};

fn env_u32(name: &str, default: u32) -> u32 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() -> ExitCode {
    let frames = env_u32("STREAMWIRE_BENCH_FRAMES", 300).clamp(10, 100_000);
    let runs = env_u32("STREAMWIRE_BENCH_RUNS", 3).clamp(1, 50);
    let status = Command::new(env!("CARGO_BIN_EXE_streamwire"))
        .args(["bench", "encode", "--json", "--frames"])
        .arg(frames.to_string())
        .arg("--runs")
        .arg(runs.to_string())
        .status();
    match status {
        Ok(s) if s.success() => ExitCode::SUCCESS,
        Ok(s) => {
            eprintln!("streamwire bench encode: {s}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("cannot run streamwire bench encode: {e}");
            ExitCode::FAILURE
        }
    }
}
