//! `streamwire bench sfu`: the publisher's CPU and uplink, latency, first frame, the SFU's CPU
//! and the lowest subscriber's frame rate for N subscribers through Janus, and the same
//! through the mesh in the same run ([`crate::bench::sfu`]). Each subscriber is this binary
//! re-executed with the hidden `--subscriber-child` flag.

use std::path::PathBuf;

use anyhow::Context;

use crate::bench::latency::{LatencyOptions, SfuTarget};
use crate::bench::latency_process::{run_separate, subscriber_child};
use crate::bench::sfu::{SfuRow, options, prepare_network, start_janus};
use streamwire::encoder::Codec;

/// Arguments of `bench sfu`.
#[derive(Debug, clap::Args)]
pub struct BenchSfuArgs {
    /// Subscriber counts, comma-separated (each 1..=32); one SFU row (and mesh row) each.
    #[arg(long, value_delimiter = ',', default_value = "1,4,16,32",
          value_parser = clap::value_parser!(u32).range(1..=32))]
    pub subscribers: Vec<u32>,
    /// Video codec: vp8 or h264.
    #[arg(long, default_value = "vp8", value_parser = parse_codec)]
    pub codec: Codec,
    /// Also measure the mesh (the same server without the SFU) for every count up to this
    /// one (0: no mesh rows).
    #[arg(long, default_value_t = 16)]
    pub mesh_up_to: u32,
    /// Length of each measuring window in seconds (after a 2 s warm-up).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=600))]
    pub seconds: u32,
    /// Use this Janus (WebSocket API) instead of starting one; it must gather ICE candidates
    /// in this network namespace (the sessions use 10.77.0.1). Needs --janus-api-secret-file
    /// and --janus-admin-key-file; its CPU is then not measured.
    #[arg(long, requires_all = ["janus_api_secret_file", "janus_admin_key_file"])]
    pub janus: Option<String>,
    /// File holding that Janus's api_secret.
    #[arg(long, requires = "janus")]
    pub janus_api_secret_file: Option<PathBuf>,
    /// File holding that Janus's VideoRoom admin_key.
    #[arg(long, requires = "janus")]
    pub janus_admin_key_file: Option<PathBuf>,
    /// Internal: run as one subscriber process.
    #[arg(long, hide = true)]
    pub subscriber_child: bool,
    /// Print JSON: one object per topology and count.
    #[arg(long)]
    pub json: bool,
}

fn parse_codec(s: &str) -> Result<Codec, String> {
    let codec = Codec::from_name(s)
        .ok_or_else(|| format!("unknown video codec `{s}` (expected vp8 or h264)"))?;
    streamwire::webrtc::encode::check_sendable(codec).map_err(|e| e.to_string())?;
    Ok(codec)
}

fn read_secret(flag: &str, path: &Option<PathBuf>) -> anyhow::Result<String> {
    let path = path
        .as_ref()
        .with_context(|| format!("--janus needs --{flag}"))?;
    let s =
        std::fs::read_to_string(path).with_context(|| format!("--{flag} {}", path.display()))?;
    Ok(s.trim().to_owned())
}

/// Run the benchmark and print the rows.
pub fn execute(a: BenchSfuArgs) -> anyhow::Result<()> {
    let base = LatencyOptions {
        codec: a.codec,
        seconds: f64::from(a.seconds),
        ..LatencyOptions::default()
    };
    if a.subscriber_child {
        subscriber_child(base.jitter_latency_ms, false)?;
        return Ok(());
    }
    prepare_network()?;
    let own = match &a.janus {
        Some(_) => None,
        None => Some(start_janus()?),
    };
    let target = match (&own, &a.janus) {
        (Some(j), _) => SfuTarget {
            url: j.url.clone(),
            api_secret: j.api_secret.clone(),
            admin_key: j.admin_key.clone(),
            pid: Some(j.pid()),
        },
        (None, Some(url)) => SfuTarget {
            url: url.clone(),
            api_secret: read_secret("janus-api-secret-file", &a.janus_api_secret_file)?,
            admin_key: read_secret("janus-admin-key-file", &a.janus_admin_key_file)?,
            pid: None,
        },
        (None, None) => anyhow::bail!("no Janus"),
    };
    let exe = std::env::current_exe()?;
    let child = move || {
        let mut cmd = std::process::Command::new(&exe);
        cmd.args(["bench", "sfu", "--subscriber-child"]);
        cmd
    };
    let mut rows = Vec::new();
    for &n in &a.subscribers {
        let n = n as usize;
        let sfu = run_separate(&options(&base, n, Some(target.clone())), &child)
            .with_context(|| format!("SFU run with {n} subscribers"))?;
        rows.push(SfuRow::from_report("sfu", &sfu));
        if n <= a.mesh_up_to as usize {
            // The comparison: a mesh too large for the machine leaves its row out, not the
            // SFU rows measured already.
            match run_separate(&options(&base, n, None), &child) {
                Ok(mesh) => rows.push(SfuRow::from_report("mesh", &mesh)),
                Err(e) => {
                    tracing::error!("mesh run with {n} subscribers failed, no mesh row: {e}")
                }
            }
        }
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    println!(
        "bench sfu: {}x{}@{} {:?} + audio, subscribers in separate processes, {} s windows",
        base.width, base.height, base.fps, base.codec, base.seconds
    );
    println!(
        "topology subs  pub CPU  uplink kbit/s  decoded p50  rendered p50  first p50  SFU CPU  min fps"
    );
    for r in &rows {
        let opt = |v: Option<f64>, d: usize| v.map_or("-".to_owned(), |x| format!("{x:.d$}"));
        println!(
            "{:<8} {:>4}  {:>7.2}  {:>13}  {:>8.1} ms  {:>9.1} ms  {:>6.0} ms  {:>7}  {:>7.1}",
            r.topology,
            r.subscribers,
            r.publisher_cpu_per_s,
            opt(r.publisher_uplink_kbps, 0),
            r.decoded.p50_ms,
            r.rendered.p50_ms,
            r.first_frame.p50_ms,
            opt(r.sfu_cpu_per_s, 2),
            r.min_fps
        );
    }
    Ok(())
}
