//! `streamwire run` on a room preset (`output = "room"` or `input.video = "room"`): joins the
//! room through a [`Session`], prints a status line every 2 s (peers, frames, bitrate, network
//! quality), stops after the preset's duration or `--for`, and leaves cleanly on Ctrl-C.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use anyhow::Context;
use streamwire::preset::{Preset, RoomReceive, RoomRole, RoomSettings};
use streamwire::session::{Recovery, Session, SessionConfig, SessionEvent};
use streamwire::signalling::client::SignallingState;
use streamwire::webrtc::MediaKind;
use streamwire::webrtc::stats::PeerStats;
use streamwire::webrtc::subscriber::SubscriberEvent;

/// Status line interval.
const STATUS_EVERY: Duration = Duration::from_secs(2);

/// Run `preset` (whose room settings are `room`) until `run_for`, Ctrl-C, or a fatal
/// signalling failure.
pub fn execute(
    preset: &Preset,
    room: &RoomSettings,
    run_for: Option<Duration>,
    quiet: bool,
    audio_dump: Option<std::path::PathBuf>,
) -> anyhow::Result<()> {
    let audio_dump = audio_dump.or_else(|| preset.audio.as_ref().and_then(|a| a.dump.clone()));
    if audio_dump.is_some()
        && !(room.role == RoomRole::Publish
            && preset.input.audio == streamwire::preset::AudioInput::Mic)
    {
        anyhow::bail!(
            "--audio-dump: `{}` does not publish a microphone (the audio dump needs \
             output = \"room\" and input.audio = \"mic\")",
            preset.source
        );
    }
    // Resolving the token is part of reading the preset: its errors are usage errors (exit 2).
    let cfg = SessionConfig::try_from(preset)?;
    if let RoomRole::Receive {
        output: RoomReceive::Display,
        ..
    } = &room.role
        && cfg!(target_os = "linux")
        && !["DISPLAY", "WAYLAND_DISPLAY"]
            .iter()
            .any(|v| std::env::var_os(v).is_some_and(|x| !x.is_empty()))
    {
        return Err(streamwire::pipeline::PipelineError::NoDisplay.into());
    }
    if let RoomRole::Receive {
        output: RoomReceive::Record(dir),
        ..
    } = &room.role
    {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating the recording directory {}", dir.display()))?;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    rt.block_on(run(cfg, room, run_for, quiet, audio_dump))
}

/// Latest figures per remote peer.
#[derive(Default)]
struct Status {
    stats: BTreeMap<String, PeerStats>,
    users: BTreeMap<String, String>,
}

pub(super) async fn run(
    cfg: SessionConfig,
    room: &RoomSettings,
    run_for: Option<Duration>,
    quiet: bool,
    audio_dump: Option<std::path::PathBuf>,
) -> anyhow::Result<()> {
    let publishing = room.role == RoomRole::Publish;
    let (session, mut events) = Session::join(cfg)
        .await
        .with_context(|| format!("joining room `{}` on {}", room.room, room.server))?;
    if let Some(dir) = &audio_dump {
        session
            .start_audio_dump(dir)
            .await
            .with_context(|| format!("starting the audio dump into {}", dir.display()))?;
        eprintln!("audio dump: {}", dir.display());
    }
    eprintln!(
        "joined room `{}` on {} as {} ({})",
        room.room,
        room.server,
        session.peer_id().unwrap_or_default(),
        if publishing {
            "publishing"
        } else {
            "receiving"
        }
    );
    let started = Instant::now();
    let deadline = run_for.map(|d| tokio::time::Instant::now() + d);
    let mut tick = tokio::time::interval(STATUS_EVERY);
    tick.tick().await;
    let tty = std::io::stderr().is_terminal();
    let mut status = Status::default();
    let mut failure: Option<String> = None;
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        tokio::select! {
            _ = async { match deadline { Some(d) => tokio::time::sleep_until(d).await, None => std::future::pending().await } } => break,
            r = &mut ctrl_c => {
                if r.is_ok() {
                    eprintln!("\nleaving the room (press Ctrl-C again to force)");
                    tokio::spawn(async {
                        if tokio::signal::ctrl_c().await.is_ok() {
                            eprintln!("forced exit");
                            std::process::exit(130);
                        }
                    });
                }
                break;
            }
            ev = events.recv() => match ev {
                None => {
                    failure = Some("the session ended unexpectedly".into());
                    break;
                }
                Some(ev) => {
                    if let Some(reason) = on_event(&ev, &mut status, tty) {
                        failure = Some(reason);
                        break;
                    }
                }
            },
            _ = tick.tick() => {
                if !quiet {
                    let line = status_line(&session, &status, publishing, started).await;
                    let mut err = std::io::stderr();
                    if tty {
                        let _ = write!(err, "\r{line}   ");
                    } else {
                        let _ = writeln!(err, "{line}");
                    }
                    let _ = err.flush();
                }
            }
        }
    }
    if tty && !quiet {
        eprintln!();
    }
    let (frames, what) = frames(&session, publishing).await;
    if audio_dump.is_some() {
        match session.stop_audio_dump().await {
            Ok(Some(d)) => eprintln!(
                "audio dump: {} samples per file ({})",
                d.samples[0],
                d.stopped.unwrap_or("stopped")
            ),
            Ok(None) => {}
            Err(e) => eprintln!("audio dump: {e}"),
        }
    }
    session.leave().await;
    if let Some(reason) = failure {
        anyhow::bail!("room `{}` on {}: {reason}", room.room, room.server);
    }
    eprintln!(
        "left room `{}` ({frames} video frames {what} in {:.1} s)",
        room.room,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Handle one session event; `Some(reason)` ends the run with an error.
fn on_event(ev: &SessionEvent, status: &mut Status, tty: bool) -> Option<String> {
    let say = |msg: String| {
        if tty {
            eprintln!("\r{msg}");
        } else {
            eprintln!("{msg}");
        }
    };
    match ev {
        SessionEvent::PeerJoined { peer_id, user } => {
            status.users.insert(peer_id.clone(), user.clone());
            say(format!("peer {peer_id} ({user}) joined"));
        }
        SessionEvent::PeerLeft { peer_id } => {
            status.stats.remove(peer_id);
            let user = status.users.remove(peer_id).unwrap_or_default();
            say(format!("peer {peer_id} ({user}) left"));
        }
        SessionEvent::TrackAdded {
            peer_id,
            kind,
            codec,
        } => {
            let user = status.users.get(peer_id).cloned().unwrap_or_default();
            say(format!(
                "receiving {} ({codec}) from {peer_id} ({user})",
                kind.as_str()
            ));
        }
        SessionEvent::Receive(SubscriberEvent::Recording { peer, path }) => {
            let user = status.users.get(peer).cloned().unwrap_or_default();
            say(format!("recording {peer} ({user}) to {}", path.display()));
        }
        SessionEvent::Receive(SubscriberEvent::Unsupported { peer, reason }) => {
            say(format!("cannot decode a track of {peer}: {reason}"));
        }
        SessionEvent::Stats(s) => {
            status.stats.insert(s.stats.peer.clone(), s.stats.clone());
        }
        SessionEvent::ActiveSpeakerChanged { peer: Some(peer) } => {
            let user = status.users.get(peer).cloned().unwrap_or_default();
            say(format!("active speaker: {peer} ({user})"));
        }
        SessionEvent::ActiveSpeakerChanged { peer: None } => say("no active speaker".into()),
        SessionEvent::Signalling(SignallingState::Failed { reason }) => {
            return Some(format!("signalling failed: {reason}"));
        }
        SessionEvent::Signalling(SignallingState::Reconnecting { attempt }) => {
            say(format!(
                "signalling connection lost; reconnecting (attempt {attempt})"
            ));
        }
        SessionEvent::Resumed => say("signalling resumed; media kept flowing".into()),
        SessionEvent::Recovery { peer_id, recovery } => {
            let user = status.users.get(peer_id).cloned().unwrap_or_default();
            say(match recovery {
                Recovery::Stalled { silent_ms } => {
                    format!("connection to {peer_id} ({user}) lost: nothing for {silent_ms} ms")
                }
                Recovery::Rebuilding { attempt, reason } => format!(
                    "rebuilding the connection to {peer_id} ({user}): attempt {attempt}, {}",
                    serde_json::to_value(reason)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default()
                ),
                Recovery::Recovered { after_ms, rebuilt } => format!(
                    "connection to {peer_id} ({user}) recovered after {after_ms} ms{}",
                    if *rebuilt { " (rebuilt)" } else { "" }
                ),
            });
        }
        SessionEvent::Error { context, detail } => {
            tracing::warn!("{context}: {detail}");
        }
        _ => {}
    }
    None
}

/// Video frames encoded (publishing) or decoded/recorded from all peers (receiving).
async fn frames(session: &Session, publishing: bool) -> (u64, &'static str) {
    if publishing {
        let n = session
            .publisher()
            .await
            .map(|p| p.video_frame_counts().0)
            .unwrap_or(0);
        (n, "sent")
    } else {
        let n = session
            .peers()
            .await
            .iter()
            .map(|p| session.subscriber().counters(p, MediaKind::Video).decoded)
            .sum();
        (n, "received")
    }
}

async fn status_line(
    session: &Session,
    status: &Status,
    publishing: bool,
    started: Instant,
) -> String {
    let peers = session.peers().await.len();
    let (frames, what) = frames(session, publishing).await;
    let kbps: f64 = status
        .stats
        .values()
        .map(|s| if publishing { s.send_kbps } else { s.recv_kbps })
        .fold(0.0, |a, b| a + b);
    let quality = status
        .stats
        .values()
        .map(|s| s.quality)
        .min()
        .map(|q| format!("q{q}/5"))
        .unwrap_or_else(|| "q-".into());
    let rtt = status
        .stats
        .values()
        .filter_map(|s| s.rtt_ms)
        .fold(None, |acc: Option<f64>, r| {
            Some(acc.map_or(r, |a| a.max(r)))
        })
        .map(|r| format!(" rtt {r:.0} ms"))
        .unwrap_or_default();
    format!(
        "[{:>5.1}s] peers {peers} | {frames} frames {what} | {} {kbps:.0} kbit/s | {quality}{rtt}",
        started.elapsed().as_secs_f64(),
        if publishing { "up" } else { "down" },
    )
}
