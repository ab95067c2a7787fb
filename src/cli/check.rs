//! `streamwire check PRESET [--set k=v]...`

use streamwire::pipeline::Plan;
use streamwire::preset::{Preset, RoomReceive, RoomRole, RoomSettings};

/// Arguments of `check`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Preset file, or the name of a bundled preset (see `streamwire presets`).
    pub preset: String,
    /// Override a preset value, e.g. --set video.codec=vp9 --set output=file:out.mkv
    #[arg(long = "set", value_name = "KEY.PATH=VALUE")]
    pub overrides: Vec<String>,
}

pub fn execute(args: Args) -> anyhow::Result<()> {
    let preset = Preset::load(&args.preset, &args.overrides)?;
    if let Some(room) = &preset.room {
        print_room(&preset, room);
        return Ok(());
    }
    let plan = Plan::new(&preset)?;
    println!("# preset: {} ({})", preset.source, preset.description);
    if let Some(s) = &plan.video_encoder {
        let skipped: Vec<String> = s
            .skipped
            .iter()
            .filter(|k| k.reason != "not installed")
            .map(|k| format!("{} ({})", k.factory, k.reason))
            .collect();
        println!(
            "# video encoder: {} ({}, {}){}",
            s.factory,
            s.candidate.family,
            if s.candidate.hardware {
                "hardware"
            } else {
                "software"
            },
            if skipped.is_empty() {
                String::new()
            } else {
                format!("; skipped: {}", skipped.join(", "))
            }
        );
    }
    if let Some(d) = plan.duration {
        println!("# stops after {}", humantime::format_duration(d));
    }
    for note in &plan.notes {
        println!("# note: {note}");
    }
    println!("{}", plan.description);
    Ok(())
}

/// What `run` would do with a room preset (the token's source is named, never the token).
fn print_room(preset: &Preset, room: &RoomSettings) {
    println!("# preset: {} ({})", preset.source, preset.description);
    println!("# session: join room `{}` on {}", room.room, room.server);
    println!("# token from {}", room.token.describe());
    if !room.ice_servers.is_empty() {
        println!("# extra ICE servers: {}", room.ice_servers.join(", "));
    }
    if room.ice_addresses.is_empty() {
        println!(
            "# ICE gathers on every interface; STUN/TURN only from the join reply and the preset"
        );
    } else {
        println!(
            "# ICE gathers on {} only; STUN/TURN only from the join reply and the preset",
            room.ice_addresses.join(", ")
        );
    }
    if let Some(d) = preset.duration {
        println!("# stops after {}", humantime::format_duration(d));
    }
    if let Some(t) = &preset.telemetry {
        println!(
            "# telemetry: consent {}, device sampled every {}, sent to the server with the \
             per-peer WebRTC statistics",
            t.consent.as_str(),
            humantime::format_duration(t.interval)
        );
    }
    match &room.role {
        RoomRole::Publish => {
            let video = match (&preset.input.video, &preset.video) {
                (v, Some(s)) => format!(
                    "video {v:?} -> {} {}x{}@{} at up to {} kbit/s (keyframe every {} frames)",
                    s.codec.name(),
                    s.width,
                    s.height,
                    s.framerate,
                    s.bitrate_kbps,
                    s.keyframe_interval
                ),
                _ => "no video".to_owned(),
            };
            let audio = match (&preset.input.audio, &preset.audio) {
                (a, Some(s)) => format!("audio {a:?} -> opus {} kbit/s", s.bitrate_kbps),
                _ => "no audio".to_owned(),
            };
            println!(
                "publish: {video}; {audio}; encoded once, sent to every member; receives nobody"
            );
            if let Some(r) = &preset.rotation {
                println!(
                    "rotation: {:?}, sent as metadata (CVO RTP header extension); the receiver rotates",
                    r.mode
                );
            }
        }
        RoomRole::Receive { audio, output } => {
            let what = match output {
                RoomReceive::Display => "a window per publisher".to_owned(),
                RoomReceive::Record(dir) => format!(
                    "each publisher's video and audio as sent (no re-encoding) to {}/<peer>.mkv",
                    dir.display()
                ),
                RoomReceive::Discard => "decode, count and drop".to_owned(),
            };
            let audio = match (audio, output) {
                (_, RoomReceive::Record(_)) => "audio recorded with the video",
                (true, RoomReceive::Display) => "audio played",
                (true, _) => "audio decoded and dropped",
                (false, _) => "audio not used",
            };
            println!("receive every publisher: video: {what}; {audio}");
        }
    }
}
