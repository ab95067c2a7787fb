//! `streamwire bench latency`: drives the measuring core in [`crate::bench::latency`]
//! (a real publisher and N real subscribers, all `Session`s joined to an embedded signalling
//! server on 127.0.0.1: ICE, DTLS-SRTP, encode, decode). With `--separate-processes` each
//! subscriber is this binary re-executed with the hidden `--subscriber-child` flag.

use crate::bench::latency::{LatencyOptions, run};
use crate::bench::latency_process::{run_separate, subscriber_child};
use streamwire::encoder::Codec;

/// Arguments of `bench latency`.
#[derive(Debug, clap::Args)]
pub struct BenchLatencyArgs {
    /// Number of subscribers, each with its own pipeline and webrtcbin.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=16))]
    pub subscribers: u32,
    /// Video codec: vp8 or h264.
    #[arg(long, default_value = "vp8", value_parser = parse_codec)]
    pub codec: Codec,
    /// Length of the measuring window in seconds (after a 2 s warm-up).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=600))]
    pub seconds: u32,
    /// Fixed subscriber jitter-buffer latency (ms, at most 1000); without it the buffer is
    /// adaptive.
    #[arg(long, value_parser = clap::value_parser!(u32).range(0..=1000))]
    pub jitter_ms: Option<u32>,
    /// Frame size, WIDTHxHEIGHT (default 640x360; at least 144 pixels wide for the frame
    /// counter).
    #[arg(long, value_name = "WxH", value_parser = parse_size)]
    pub size: Option<(i32, i32)>,
    /// Run each subscriber in its own process, so the process CPU figure is the publisher's
    /// alone.
    #[arg(long)]
    pub separate_processes: bool,
    /// Measure an application's first call: each subscriber is a fresh process that joins
    /// right after initialising the library, without waiting for its DTLS certificate
    /// (implies --separate-processes; run with --subscribers N for N first calls).
    #[arg(long)]
    pub cold: bool,
    /// Internal: run as one subscriber process of `--separate-processes`.
    #[arg(long, hide = true)]
    pub subscriber_child: bool,
    /// Print the JSON report.
    #[arg(long)]
    pub json: bool,
}

fn parse_codec(s: &str) -> Result<Codec, String> {
    let codec = Codec::from_name(s)
        .ok_or_else(|| format!("unknown video codec `{s}` (expected vp8 or h264)"))?;
    streamwire::webrtc::encode::check_sendable(codec).map_err(|e| e.to_string())?;
    Ok(codec)
}

fn parse_size(s: &str) -> Result<(i32, i32), String> {
    s.split_once('x')
        .and_then(|(w, h)| Some((w.parse().ok()?, h.parse().ok()?)))
        .filter(|&(w, h): &(i32, i32)| w > 0 && h > 0)
        .ok_or_else(|| format!("expected WIDTHxHEIGHT, got `{s}`"))
}

/// Run the benchmark and print the report.
pub fn execute(a: BenchLatencyArgs) -> anyhow::Result<()> {
    let mut opts = LatencyOptions {
        subscribers: a.subscribers as usize,
        codec: a.codec,
        seconds: f64::from(a.seconds),
        jitter_latency_ms: a.jitter_ms,
        cold: a.cold,
        ..LatencyOptions::default()
    };
    if let Some((width, height)) = a.size {
        (opts.width, opts.height) = (width, height);
    }
    if a.subscriber_child {
        subscriber_child(a.jitter_ms, a.cold)?;
        return Ok(());
    }
    let report = if a.separate_processes || a.cold {
        let exe = std::env::current_exe()?;
        let jitter = a.jitter_ms.map(|ms| ms.to_string());
        let cold = a.cold;
        let child = move || {
            let mut cmd = std::process::Command::new(&exe);
            cmd.args(["bench", "latency", "--subscriber-child"]);
            if let Some(ms) = &jitter {
                cmd.args(["--jitter-ms", ms]);
            }
            if cold {
                cmd.arg("--cold");
            }
            cmd
        };
        run_separate(&opts, &child)?
    } else {
        run(&opts)?
    };
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        let s = |x: &crate::bench::latency::Summary| {
            format!(
                "p50 {:.1} ms  p95 {:.1} ms  max {:.1} ms  ({} samples)",
                x.p50_ms, x.p95_ms, x.max_ms, x.samples
            )
        };
        println!(
            "latency {}x{}@{} {:?}, {} subscriber(s){}, {} s, through the signalling server",
            opts.width,
            opts.height,
            opts.fps,
            opts.codec,
            opts.subscribers,
            match (a.cold, a.separate_processes) {
                (true, _) => " in fresh processes (cold first call)",
                (false, true) => " in separate processes",
                (false, false) => "",
            },
            opts.seconds
        );
        println!("  decoded     {}", s(&report.decoded));
        println!("  rendered    {}", s(&report.rendered));
        println!("  first frame {}", s(&report.first_frame));
        if let Some(b) = &report.first_frame_breakdown {
            let steps: Vec<String> = b
                .median_ms
                .iter()
                .map(|(k, v)| format!("{k} {v:.0}"))
                .collect();
            println!("    steps (median ms after join): {}", steps.join(", "));
        }
        println!(
            "  process CPU {:.2} s/s, rendered {:.1} fps per subscriber",
            report.process_cpu_per_s, report.rendered_fps_per_subscriber
        );
    }
    Ok(())
}
