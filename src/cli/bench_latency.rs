//! `streamwire bench latency`: drives the measuring core in `streamwire::bench::latency`
//! (a real publisher and N real subscribers over loopback: ICE, DTLS-SRTP, encode, decode).
//! The core carries SDP/ICE over in-process channels, not through the signalling server.

use streamwire::bench::latency::{LatencyOptions, run};
use streamwire::webrtc::encode::VideoCodec;

/// Arguments of `bench latency`.
#[derive(Debug, clap::Args)]
pub struct BenchLatencyArgs {
    /// Number of subscribers, each with its own pipeline and webrtcbin.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=16))]
    pub subscribers: u32,
    /// Video codec: vp8 or h264.
    #[arg(long, default_value = "vp8", value_parser = parse_codec)]
    pub codec: VideoCodec,
    /// Length of the measuring window in seconds (after a 2 s warm-up).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=600))]
    pub seconds: u32,
    /// Subscriber jitter-buffer latency (ms).
    #[arg(long, default_value_t = streamwire::webrtc::peer::DEFAULT_JITTER_LATENCY_MS)]
    pub jitter_ms: u32,
    /// Print the JSON report.
    #[arg(long)]
    pub json: bool,
}

fn parse_codec(s: &str) -> Result<VideoCodec, String> {
    s.parse::<VideoCodec>().map_err(|e| e.to_string())
}

/// Run the benchmark and print the report.
pub fn execute(a: BenchLatencyArgs) -> anyhow::Result<()> {
    let opts = LatencyOptions {
        subscribers: a.subscribers as usize,
        codec: a.codec,
        seconds: f64::from(a.seconds),
        jitter_latency_ms: a.jitter_ms,
        ..LatencyOptions::default()
    };
    let report = run(&opts)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        let s = |x: &streamwire::bench::latency::Summary| {
            format!(
                "p50 {:.1} ms  p95 {:.1} ms  max {:.1} ms  ({} samples)",
                x.p50_ms, x.p95_ms, x.max_ms, x.samples
            )
        };
        println!(
            "latency {}x{}@{} {:?}, {} subscriber(s), {} s",
            opts.width, opts.height, opts.fps, opts.codec, opts.subscribers, opts.seconds
        );
        println!("  decoded     {}", s(&report.decoded));
        println!("  rendered    {}", s(&report.rendered));
        println!("  first frame {}", s(&report.first_frame));
        println!(
            "  process CPU {:.2} s/s, rendered {:.1} fps per subscriber",
            report.process_cpu_per_s, report.rendered_fps_per_subscriber
        );
    }
    Ok(())
}
