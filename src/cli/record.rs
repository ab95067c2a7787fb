//! `streamwire record --server URL --room R --out F.mkv [--whiteboard NAME] [--for DURATION]`:
//! joins the room as a receiving member and records it into one Matroska file (every member's
//! video composed, every member's audio mixed, the whiteboard;
//! `streamwire::webrtc::room_recording`) until `--for` expires or Ctrl-C, then finishes the
//! file (duration and index) and leaves. Never overwrites a file.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use streamwire::preset::{RoomReceive, RoomRole, RoomSettings, TOKEN_ENV, TokenSource};
use streamwire::session::SessionConfig;
use streamwire::webrtc::room_recording::{MAX_FPS, MAX_SIDE, RoomRecordingConfig};
use streamwire::webrtc::subscriber::{SubscriberConfig, VideoOutput};

/// Arguments of `record`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Signalling server URL (ws:// or wss://).
    #[arg(long)]
    pub server: String,
    /// The room to record.
    #[arg(long)]
    pub room: String,
    /// Room token with the `subscribe` grant; default: the STREAMWIRE_TOKEN environment variable.
    #[arg(long)]
    pub token: Option<String>,
    /// The Matroska file to write; refused when it exists.
    #[arg(long, value_name = "FILE.mkv")]
    pub out: PathBuf,
    /// Record this whiteboard of the room (`main` is the one the browser shows) as a track.
    #[arg(long, value_name = "NAME")]
    pub whiteboard: Option<String>,
    /// Stop after this long (e.g. 30s, 1h) and finish the file; default: until Ctrl-C.
    #[arg(long = "for", value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub run_for: Option<Duration>,
    /// Width of the video tracks, pixels.
    #[arg(long, default_value_t = 1280, value_parser = clap::value_parser!(u32).range(16..=i64::from(MAX_SIDE)))]
    pub width: u32,
    /// Height of the video tracks, pixels.
    #[arg(long, default_value_t = 720, value_parser = clap::value_parser!(u32).range(16..=i64::from(MAX_SIDE)))]
    pub height: u32,
    /// Frame rate of the video tracks.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_FPS)))]
    pub fps: u32,
    /// Bitrate of each video track, kbit/s.
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u32).range(100..=50_000))]
    pub video_kbps: u32,
    /// A local address ICE may gather on (repeatable); default: every interface.
    #[arg(long = "local-address", value_name = "ADDR")]
    pub local_addresses: Vec<std::net::IpAddr>,
    /// No live status line.
    #[arg(short, long)]
    pub quiet: bool,
}

/// `record`.
pub fn execute(a: Args) -> anyhow::Result<()> {
    if a.out.exists() {
        bail!(
            "--out {}: the file exists; streamwire record never overwrites a file (choose \
             another name or remove it)",
            a.out.display()
        );
    }
    let token = match a.token {
        Some(t) => TokenSource::Inline(t),
        None if std::env::var_os(TOKEN_ENV).is_some() => TokenSource::Env,
        None => bail!(
            "no room token: give --token or set {TOKEN_ENV} (mint one with `streamwire token \
             --room ROOM --user NAME --grant subscribe`)"
        ),
    }
    .resolve()?;
    let mut cfg = SessionConfig::new(&a.server, &a.room, &token);
    cfg.local_addresses = a.local_addresses.iter().map(|x| x.to_string()).collect();
    cfg.output = SubscriberConfig {
        video: VideoOutput::RecordRoom(RoomRecordingConfig {
            path: a.out.clone(),
            width: a.width,
            height: a.height,
            fps: a.fps,
            video_kbps: a.video_kbps,
            whiteboard: a.whiteboard.clone(),
        }),
        ..SubscriberConfig::default()
    };
    let room = RoomSettings {
        server: a.server.clone(),
        room: a.room.clone(),
        token: TokenSource::Inline(token),
        ice_servers: Vec::new(),
        ice_addresses: cfg.local_addresses.clone(),
        role: RoomRole::Receive {
            audio: true,
            output: RoomReceive::Record(a.out.clone()),
        },
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    eprintln!(
        "recording room `{}` into {}{}",
        a.room,
        a.out.display(),
        match &a.whiteboard {
            Some(b) => format!(" with whiteboard `{b}`"),
            None => String::new(),
        }
    );
    rt.block_on(super::run_room::run(cfg, &room, a.run_for, a.quiet, None))?;
    if !a.out.exists() {
        bail!("{}: no file was written", a.out.display());
    }
    eprintln!("wrote {}", a.out.display());
    Ok(())
}
