//! `cargo bench --bench latency -- [--subscribers N] [--codec vp8|h264] [--seconds S]
//! [--jitter-ms MS] [--size WxH] [--no-congestion-control]`
//!
//! Prints one JSON report (see `streamwire::bench::latency`). Run it inside a loopback-only
//! namespace: `unshare -n sh -c 'ip link set lo up; cargo bench --bench latency -- ...'`.

use streamwire::bench::latency::{LatencyOptions, run};

fn main() {
    let mut opts = LatencyOptions::default();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = |flag: &str| {
            args.next().unwrap_or_else(|| {
                eprintln!("{flag} needs a value");
                std::process::exit(2)
            })
        };
        match a.as_str() {
            "--subscribers" => {
                opts.subscribers = value("--subscribers").parse().unwrap_or_else(|_| {
                    eprintln!("--subscribers: expected a number");
                    std::process::exit(2)
                })
            }
            "--codec" => {
                opts.codec = value("--codec").parse().unwrap_or_else(|e| {
                    eprintln!("--codec: {e}");
                    std::process::exit(2)
                })
            }
            "--seconds" => {
                opts.seconds = value("--seconds").parse().unwrap_or_else(|_| {
                    eprintln!("--seconds: expected a number");
                    std::process::exit(2)
                })
            }
            "--jitter-ms" => {
                opts.jitter_latency_ms = value("--jitter-ms").parse().unwrap_or_else(|_| {
                    eprintln!("--jitter-ms: expected a number");
                    std::process::exit(2)
                })
            }
            "--no-congestion-control" => opts.congestion_control = false,
            "--size" => {
                let v = value("--size");
                let parsed = v
                    .split_once('x')
                    .and_then(|(w, h)| Some((w.parse().ok()?, h.parse().ok()?)));
                match parsed {
                    Some((w, h)) => (opts.width, opts.height) = (w, h),
                    None => {
                        eprintln!("--size: expected WIDTHxHEIGHT, got `{v}`");
                        std::process::exit(2)
                    }
                }
            }
            // Added by `cargo bench`.
            "--bench" => {}
            other => {
                eprintln!("unknown argument `{other}`");
                std::process::exit(2)
            }
        }
    }
    match run(&opts) {
        Ok(report) => match serde_json::to_string(&report) {
            Ok(json) => println!("{json}"),
            Err(e) => {
                eprintln!("serialising the report: {e}");
                std::process::exit(1)
            }
        },
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1)
        }
    }
}
