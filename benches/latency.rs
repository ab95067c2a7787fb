//! `cargo bench --bench latency -- [--subscribers N] [--codec vp8|h264] [--seconds S]
//! [--jitter-ms MS] [--size WxH] [--separate-processes]`: runs `streamwire bench latency --json`
//! with these options (the benchmarks are part of the `streamwire` binary; see
//! `streamwire bench latency --help`).
//!
//! With `--separate-processes` each subscriber runs as a child process, so `process_cpu_per_s`
//! is the publisher's CPU alone. Every peer is a `Session` joined to an embedded signalling
//! server on 127.0.0.1 (Sessions always run send-side congestion control). Prints one JSON
//! report. Run it inside a loopback-only namespace:
//! `unshare -n sh -c 'ip link set lo up; cargo bench --bench latency -- ...'`.

use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    // `cargo bench` adds `--bench`; everything else is the command's own options.
    let options = std::env::args().skip(1).filter(|a| a != "--bench");
    let status = Command::new(env!("CARGO_BIN_EXE_streamwire"))
        .args(["bench", "latency", "--json"])
        .args(options)
        .status();
    match status {
        Ok(s) if s.success() => ExitCode::SUCCESS,
        Ok(s) => ExitCode::from(u8::try_from(s.code().unwrap_or(1)).unwrap_or(1)),
        Err(e) => {
            eprintln!("cannot run streamwire bench latency: {e}");
            ExitCode::FAILURE
        }
    }
}
