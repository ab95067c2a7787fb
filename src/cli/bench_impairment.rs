//! `streamwire bench impairment`: drives [`crate::bench::impairment`] (publisher and subscriber
//! through the embedded signalling server, loss and jitter applied per cell). Run it in a
//! private network namespace: `unshare -n sh -c 'ip link set lo up; streamwire bench
//! impairment --loss 5 --seconds 15 --json'`.

use crate::bench::impairment::{ImpairmentOptions, run};
use streamwire::encoder::Codec;

/// Arguments of `bench impairment`.
#[derive(Debug, clap::Args)]
pub struct BenchImpairmentArgs {
    /// Loss of each cell (%, comma-separated, each at most 50).
    #[arg(long, value_delimiter = ',', default_value = "0,2,5,10")]
    pub loss: Vec<u32>,
    /// Jitter of each cell (ms, comma-separated, each at most 500).
    #[arg(long, value_delimiter = ',', default_value = "0,20,50")]
    pub jitter_ms: Vec<u32>,
    /// Loss in Gilbert–Elliott bursts (mean 4 packets) on the media path instead of random
    /// loss both ways.
    #[arg(long)]
    pub burst: bool,
    /// Video codec: vp8 or h264.
    #[arg(long, default_value = "vp8", value_parser = parse_codec)]
    pub codec: Codec,
    /// Measuring window per cell in seconds (after the joins and a 3 s warm-up).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=600))]
    pub seconds: u32,
    /// Measure only Streamwire, not also the gst-plugins-rs `webrtcsink` → `webrtcsrc`
    /// reference pair in every cell.
    #[arg(long)]
    pub no_reference: bool,
    /// Print one JSON object per cell and stack (a JSON array).
    #[arg(long)]
    pub json: bool,
}

fn parse_codec(s: &str) -> Result<Codec, String> {
    let codec = Codec::from_name(s)
        .ok_or_else(|| format!("unknown video codec `{s}` (expected vp8 or h264)"))?;
    streamwire::webrtc::encode::check_sendable(codec).map_err(|e| e.to_string())?;
    Ok(codec)
}

/// Run the benchmark and print the cells.
pub fn execute(a: BenchImpairmentArgs) -> anyhow::Result<()> {
    let opts = ImpairmentOptions {
        loss_pct: a.loss,
        jitter_ms: a.jitter_ms,
        burst: a.burst,
        codec: a.codec,
        seconds: f64::from(a.seconds),
        reference: !a.no_reference,
        ..ImpairmentOptions::default()
    };
    let cells = run(&opts)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&cells)?);
        return Ok(());
    }
    println!(
        "impairment {}x{}@{} {:?}, {} s per cell{}",
        opts.width,
        opts.height,
        opts.fps,
        opts.codec,
        opts.seconds,
        if opts.burst { ", burst loss" } else { "" }
    );
    println!(
        "{:<21} {:>6} {:>7} {:>9} {:>8} {:>10} {:>10} {:>10} {:>9} {:>9}",
        "stack",
        "loss%",
        "jitter",
        "decoded%",
        "freezes",
        "freeze ms",
        "rend p50",
        "rend p95",
        "conceal%",
        "overhead%"
    );
    let pct = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.1}"));
    for c in &cells {
        println!(
            "{:<21} {:>6} {:>7} {:>9.1} {:>8} {:>10.0} {:>10.1} {:>10.1} {:>9} {:>9}",
            c.stack,
            c.loss_pct,
            c.jitter_ms,
            c.frames_decoded_pct,
            c.freezes,
            c.freeze_ms,
            c.rendered.p50_ms,
            c.rendered.p95_ms,
            pct(c.audio_concealed_pct),
            pct(c.overhead_pct)
        );
    }
    Ok(())
}
