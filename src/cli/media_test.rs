//! `streamwire echo-test` and `streamwire net-probe`: the media tests against a server's
//! media test peer (`docs/audio.md`).

use anyhow::{Context, bail};
use streamwire::media_test::{MediaTestEnd, MediaTestKind, TestConfig, TestReport, run};
use streamwire::signalling::token::room_claim;
use streamwire::webrtc::publisher::{AudioSource, VideoSource};

/// What both tests take.
#[derive(Debug, clap::Args)]
pub struct Common {
    /// Signalling server URL (ws:// or wss://).
    #[arg(long)]
    pub server: String,
    /// Room token (any grants); the test does not join the room.
    #[arg(long)]
    pub token: String,
    /// The token's room; default: the token's `room` claim.
    #[arg(long)]
    pub room: Option<String>,
    /// How long the test runs, s (default: the server's, 20 s; at most the server's
    /// --media-test-max-seconds).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=3600))]
    pub seconds: Option<u32>,
    /// A local address ICE may gather on (repeatable); default: every interface.
    #[arg(long = "local-address", value_name = "ADDR")]
    pub local_addresses: Vec<std::net::IpAddr>,
    /// Print each report, then the summary, as one JSON object per line.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `echo-test`.
#[derive(Debug, clap::Args)]
pub struct EchoArgs {
    #[command(flatten)]
    pub common: Common,
    /// What video to send: the camera, the test pattern, or none.
    #[arg(long, default_value = "camera", value_parser = ["camera", "test", "none"])]
    pub video: String,
    /// What audio to send: the microphone (processed), a test tone, or none.
    #[arg(long, default_value = "mic", value_parser = ["mic", "tone", "none"])]
    pub audio: String,
    /// Drop the echo instead of playing it.
    #[arg(long)]
    pub no_playback: bool,
}

/// Arguments of `net-probe`.
#[derive(Debug, clap::Args)]
pub struct ProbeArgs {
    #[command(flatten)]
    pub common: Common,
    /// Highest rate of the probe stream sent, kbit/s (the uplink estimate stops there).
    #[arg(long, default_value_t = 4000, value_parser = clap::value_parser!(u32).range(300..=100_000))]
    pub max_kbps: u32,
}

fn config(c: &Common) -> anyhow::Result<TestConfig> {
    let room = match &c.room {
        Some(r) => r.clone(),
        None => room_claim(&c.token).context(
            "--token has no readable `room` claim (is it a Streamwire token?); give --room",
        )?,
    };
    let mut cfg = TestConfig::new(&c.server, &room, &c.token);
    cfg.seconds = c.seconds;
    cfg.local_addresses = c.local_addresses.iter().map(|a| a.to_string()).collect();
    Ok(cfg)
}

/// `echo-test`.
pub fn echo(a: EchoArgs) -> anyhow::Result<()> {
    let mut cfg = config(&a.common)?;
    cfg.publish.video = match a.video.as_str() {
        "camera" => VideoSource::Camera,
        "test" => VideoSource::TestPattern("smpte".into()),
        _ => VideoSource::None,
    };
    cfg.publish.audio = match a.audio.as_str() {
        "mic" => AudioSource::Microphone { echo_probe: None },
        "tone" => AudioSource::TestTone,
        _ => AudioSource::None,
    };
    if matches!(cfg.publish.video, VideoSource::None)
        && matches!(cfg.publish.audio, AudioSource::None)
    {
        bail!("--video none and --audio none: the echo test needs something to send");
    }
    cfg.playback = !a.no_playback;
    execute(MediaTestKind::Echo, &cfg, a.common.json)
}

/// `net-probe`.
pub fn probe(a: ProbeArgs) -> anyhow::Result<()> {
    let mut cfg = config(&a.common)?;
    cfg.probe_max_kbps = a.max_kbps;
    execute(MediaTestKind::Probe, &cfg, a.common.json)
}

fn execute(test: MediaTestKind, cfg: &TestConfig, json: bool) -> anyhow::Result<()> {
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let summary = rt.block_on(run(test, cfg, |r| {
        if json {
            match serde_json::to_string(r) {
                Ok(line) => println!("{line}"),
                Err(e) => tracing::warn!(error = %e, "report not printed"),
            }
        } else {
            println!("{}", line(r));
        }
    }))?;
    if json {
        println!(
            "{}",
            serde_json::json!({
                "test": summary.test,
                "test_id": summary.test_id,
                "delay_ms": summary.delay_ms,
                "end": summary.end,
                "message": summary.message,
                "reports": summary.reports.len(),
            })
        );
    } else {
        println!(
            "{} test ended ({:?}): {}",
            test, summary.end, summary.message
        );
    }
    if summary.end == MediaTestEnd::Failed {
        bail!("the {test} test failed: {}", summary.message);
    }
    Ok(())
}

fn line(r: &TestReport) -> String {
    let est = |p: &streamwire::media_test::PathReport| {
        let mut s = String::new();
        if let Some(b) = p.bandwidth_kbps {
            s += &format!("bandwidth {b:.0} kbit/s, ");
        }
        if let Some(k) = p.estimate_kbps {
            s += &format!("est {k} kbit/s, ");
        }
        s
    };
    let rtt = r.rtt_ms.map_or("-".to_owned(), |v| format!("{v:.1} ms"));
    let echo = r
        .echo_delay_ms
        .map_or(String::new(), |d| format!(", echo after {d} ms"));
    format!(
        "{:>5.1} s  up: {}{:.0} kbit/s, loss {:.1} %, jitter {:.1} ms  down: {}{:.0} kbit/s, loss {:.1} %, jitter {:.1} ms  rtt {rtt}  quality {}{echo}",
        r.elapsed_ms as f64 / 1000.0,
        est(&r.uplink),
        r.uplink.kbps,
        r.uplink.loss_pct,
        r.uplink.jitter_ms,
        est(&r.downlink),
        r.downlink.kbps,
        r.downlink.loss_pct,
        r.downlink.jitter_ms,
        r.quality,
    )
}
