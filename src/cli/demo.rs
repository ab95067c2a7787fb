//! `streamwire demo`: the embedded signalling server on 127.0.0.1, a publishing session (test
//! pattern + tone, or camera + microphone) and a subscribing session in one process; prints
//! frames received, capture-to-decode latency and stats every 2 s, then exits after `--for`.

use std::time::{Duration, Instant};

use crate::bench::latency::summarize;
use anyhow::Context;
use clap::Args as ClapArgs;
use streamwire::server::{Server, ServerConfig};
use streamwire::session::latency::FrameStamper;
use streamwire::session::{Session, SessionConfig, SessionEvent};
use streamwire::signalling::protocol::Grant;
use streamwire::signalling::token::{Claims, mint};
use streamwire::webrtc::MediaKind;
use streamwire::webrtc::publisher::{AudioSource, PublisherConfig, VideoSource};
use streamwire::webrtc::subscriber::{SubscriberConfig, VideoOutput};

/// Arguments of `streamwire demo`.
#[derive(Debug, ClapArgs)]
pub struct Args {
    /// Do not open a window (also implied when no display is available).
    #[arg(long)]
    pub headless: bool,
    /// Publish the camera and microphone instead of a test pattern and tone.
    #[arg(long)]
    pub camera: bool,
    /// Run this long, then leave and exit (e.g. 10s, 1m).
    #[arg(long = "for", value_name = "DURATION", value_parser = humantime::parse_duration, default_value = "10s")]
    pub run_for: Duration,
    /// Print one JSON object per status line and a JSON summary at the end.
    #[arg(long)]
    pub json: bool,
}

const ROOM: &str = "demo";

fn has_display() -> bool {
    std::env::var_os("DISPLAY").is_some() || std::env::var_os("WAYLAND_DISPLAY").is_some()
}

/// Run the demo.
pub fn execute(a: Args) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    rt.block_on(run(a))
}

async fn run(a: Args) -> anyhow::Result<()> {
    streamwire::gst_init::init().context("initialising GStreamer")?;
    let mut secret = vec![0u8; 32];
    getrandom::getrandom(&mut secret)
        .map_err(|e| anyhow::anyhow!("reading random bytes for the demo's server secret: {e}"))?;
    let mut server_cfg = ServerConfig::new(
        "127.0.0.1:0".parse().context("loopback address")?,
        secret.clone(),
    );
    // The demo page may mint its own tokens: the embedded server listens on 127.0.0.1 only.
    server_cfg.dev = true;
    let server = Server::bind(server_cfg)
        .await
        .context("starting the embedded signalling server on 127.0.0.1")?;
    let url = format!("ws://{}", server.local_addr());
    let page_url = format!("http://{}/", server.local_addr());
    let server_task = tokio::spawn(server.run());
    let token = |user: &str| {
        mint(
            &secret,
            &Claims::new(ROOM, user, user, Duration::from_secs(3600), &Grant::ALL),
        )
        .context("minting a room token")
    };

    let (video, audio) = if a.camera {
        (
            VideoSource::Camera,
            AudioSource::Microphone { echo_probe: None },
        )
    } else {
        (
            VideoSource::TestPattern("ball".into()),
            AudioSource::TestTone,
        )
    };
    let mut pub_cfg = SessionConfig::loopback(&url, ROOM, &token("publisher")?);
    pub_cfg.publish = Some(PublisherConfig {
        video,
        audio,
        ..PublisherConfig::default()
    });
    let (publisher, mut pub_events) = Session::join(pub_cfg)
        .await
        .context("joining as the publisher")?;
    let stamper = FrameStamper::new();
    if let Some(p) = publisher.publisher().await {
        stamper.stamp(&p);
    }

    let display = !a.headless && has_display();
    let mut sub_cfg = SessionConfig::loopback(&url, ROOM, &token("viewer")?);
    sub_cfg.output = SubscriberConfig {
        video: if display {
            VideoOutput::Display
        } else {
            VideoOutput::Discard
        },
        ..SubscriberConfig::default()
    };
    let joined = Instant::now();
    let (viewer, mut events) = Session::join(sub_cfg)
        .await
        .context("joining as the viewer")?;
    stamper.measure(viewer.subscriber());
    let publisher_id = publisher.peer_id().unwrap_or_default();
    if !a.json {
        println!(
            "streamwire demo: server {url}, room `{ROOM}`, publisher {publisher_id}, viewer {} ({})",
            viewer.peer_id().unwrap_or_default(),
            if display { "display" } else { "headless" }
        );
        println!(
            "web demo page (same server): {page_url}?room={ROOM}&name=browser&token={}",
            token("browser")?
        );
    }

    let deadline = tokio::time::Instant::now() + a.run_for;
    let mut tick = tokio::time::interval(Duration::from_secs(2));
    tick.tick().await;
    let mut first_frame_ms: Option<f64> = None;
    let mut all_latency = Vec::new();
    let mut last_stats = None;
    let mut pub_stats = None;
    let mut sent_kbps: Vec<f64> = Vec::new();
    let viewer_id = viewer.peer_id().unwrap_or_default();
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => break,
            ev = events.recv() => match ev {
                Some(SessionEvent::Receive(streamwire::webrtc::subscriber::SubscriberEvent::VideoFrame { .. })) => {
                    if first_frame_ms.is_none() {
                        first_frame_ms = Some(joined.elapsed().as_secs_f64() * 1000.0);
                    }
                }
                Some(SessionEvent::Stats(s)) if s.stats.peer == publisher_id => last_stats = Some(s.stats),
                Some(SessionEvent::Error { context, detail }) => tracing::warn!("{context}: {detail}"),
                Some(_) => {}
                None => anyhow::bail!("the viewer session ended unexpectedly"),
            },
            ev = pub_events.recv() => match ev {
                Some(SessionEvent::Stats(s)) if s.stats.peer == viewer_id => {
                    if s.stats.send_kbps > 0.0 {
                        sent_kbps.push(s.stats.send_kbps);
                    }
                    pub_stats = Some(s.stats);
                }
                Some(SessionEvent::Error { context, detail }) => tracing::warn!("publisher: {context}: {detail}"),
                Some(_) => {}
                None => anyhow::bail!("the publisher session ended unexpectedly"),
            },
            _ = tick.tick() => {
                let frames = viewer.subscriber().counters(&publisher_id, MediaKind::Video);
                let audio = viewer.subscriber().counters(&publisher_id, MediaKind::Audio).decoded;
                let lat = stamper.take_samples_ms();
                all_latency.extend_from_slice(&lat);
                let s = summarize(lat);
                if a.json {
                    let line = serde_json::json!({
                        "t_s": joined.elapsed().as_secs_f64(),
                        "frames": frames.decoded, "width": frames.width, "height": frames.height,
                        "audio_buffers": audio,
                        "latency_ms": {"p50": s.p50_ms, "p95": s.p95_ms, "max": s.max_ms, "samples": s.samples},
                        "stats": last_stats,
                        "publisher_stats": pub_stats,
                    });
                    println!("{line}");
                } else {
                    println!(
                        "[{:>4.1}s] frames {} ({}x{}) audio {} | latency p50 {:.1} ms p95 {:.1} ms | viewer {} | publisher {}",
                        joined.elapsed().as_secs_f64(),
                        frames.decoded, frames.width, frames.height, audio,
                        s.p50_ms, s.p95_ms,
                        last_stats.as_ref().map(|s| s.status_line()).unwrap_or_else(|| "stats pending".into()),
                        pub_stats.as_ref().map(|s| s.status_line()).unwrap_or_else(|| "stats pending".into())
                    );
                }
            }
        }
    }
    let frames = viewer
        .subscriber()
        .counters(&publisher_id, MediaKind::Video);
    all_latency.extend(stamper.take_samples_ms());
    let s = summarize(all_latency);
    viewer.leave().await;
    publisher.leave().await;
    server_task.abort();
    if a.json {
        let line = serde_json::json!({
            "summary": {
                "frames_received": frames.decoded, "width": frames.width, "height": frames.height,
                "first_frame_ms": first_frame_ms,
                "sent_kbps": mean(&sent_kbps),
                "latency_ms": {"p50": s.p50_ms, "p95": s.p95_ms, "max": s.max_ms, "samples": s.samples},
            }
        });
        println!("{line}");
    } else {
        println!(
            "done: {} frames received ({}x{}), first frame {} after join, decoded latency p50 {:.1} ms p95 {:.1} ms max {:.1} ms",
            frames.decoded,
            frames.width,
            frames.height,
            first_frame_ms
                .map(|f| format!("{f:.0} ms"))
                .unwrap_or_else(|| "never".into()),
            s.p50_ms,
            s.p95_ms,
            s.max_ms
        );
    }
    anyhow::ensure!(
        frames.decoded > 0,
        "no video frame was received in {:?}",
        a.run_for
    );
    Ok(())
}

/// Mean of the publisher's per-interval sent bitrates (None before the first full interval).
fn mean(v: &[f64]) -> Option<f64> {
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}
