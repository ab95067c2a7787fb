//! `cargo bench --bench latency -- [--subscribers N] [--codec vp8|h264] [--seconds S]
//! [--jitter-ms MS] [--size WxH] [--separate-processes]`
//! (`--no-congestion-control` is refused: the peers are Sessions, which always run it)
//!
//! With `--separate-processes` each subscriber runs as a child process (this binary with
//! `--subscriber-child`), so `process_cpu_per_s` is the publisher's CPU alone.
//!
//! Every peer is a `Session` joined to an embedded signalling server on 127.0.0.1.
//! Prints one JSON report (see `streamwire::bench::latency`). Run it inside a loopback-only
//! namespace: `unshare -n sh -c 'ip link set lo up; cargo bench --bench latency -- ...'`.

use streamwire::bench::latency::{LatencyOptions, run};
use streamwire::bench::latency_process::{run_separate, subscriber_child};

fn main() {
    let mut opts = LatencyOptions::default();
    let mut separate = false;
    let mut child = false;
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
                let v = value("--codec");
                opts.codec = streamwire::encoder::Codec::from_name(&v)
                    .filter(|c| streamwire::webrtc::encode::check_sendable(*c).is_ok())
                    .unwrap_or_else(|| {
                        eprintln!("--codec: `{v}` is not vp8 or h264");
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
            // Subscribers in child processes: process CPU is then the publisher's alone.
            "--separate-processes" => separate = true,
            // Internal: run as one such child.
            "--subscriber-child" => child = true,
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
    if child {
        if let Err(e) = subscriber_child(opts.jitter_latency_ms) {
            eprintln!("{e}");
            std::process::exit(1)
        }
        return;
    }
    let result = if separate {
        let jitter = opts.jitter_latency_ms.to_string();
        let spawn = move || {
            let exe = std::env::current_exe().unwrap_or_else(|e| {
                eprintln!("cannot find the benchmark executable: {e}");
                std::process::exit(1)
            });
            let mut cmd = std::process::Command::new(exe);
            cmd.args(["--subscriber-child", "--jitter-ms", &jitter]);
            cmd
        };
        run_separate(&opts, &spawn)
    } else {
        run(&opts)
    };
    match result {
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
