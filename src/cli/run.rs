//! `streamwire run PRESET [--set k=v]... [--for DURATION]`

use std::io::{IsTerminal, Write};
use std::time::Duration;

use anyhow::Context;
use streamwire::pipeline::{Plan, StopHandle};
use streamwire::preset::{Output, Preset};

/// Arguments of `run`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Preset file, or the name of a bundled preset (see `streamwire presets`).
    pub preset: String,
    /// Override a preset value, e.g. --set video.codec=vp9 --set output=file:out.mkv
    #[arg(long = "set", value_name = "KEY.PATH=VALUE")]
    pub overrides: Vec<String>,
    /// Stop cleanly after this long (e.g. 2s, 1m30s); overrides the preset's duration.
    #[arg(long = "for", value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub run_for: Option<Duration>,
    /// No live status line.
    #[arg(short, long)]
    pub quiet: bool,
    /// Dump the published microphone (raw, far-end reference, processed WAVs and dump.json)
    /// into DIR from the start; room publishers with `input.audio = "mic"` only. Overrides
    /// the preset's `audio.dump`.
    #[arg(long = "audio-dump", value_name = "DIR")]
    pub audio_dump: Option<std::path::PathBuf>,
}

fn install_ctrl_c(stop: StopHandle) {
    let spawned = std::thread::Builder::new()
        .name("ctrl-c".into())
        .spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_io()
                .build()
            else {
                tracing::warn!("cannot create the Ctrl-C handler runtime");
                return;
            };
            rt.block_on(async move {
                while tokio::signal::ctrl_c().await.is_ok() {
                    if stop.stop() {
                        eprintln!("\nforced exit; the output file may be unplayable");
                        std::process::exit(130);
                    }
                    eprintln!("\nstopping cleanly (EOS); press Ctrl-C again to force");
                }
            });
        });
    if let Err(e) = spawned {
        tracing::warn!("cannot install the Ctrl-C handler: {e}");
    }
}

pub fn execute(args: Args) -> anyhow::Result<()> {
    let preset = Preset::load(&args.preset, &args.overrides)?;
    if let Some(room) = &preset.room {
        return super::run_room::execute(
            &preset,
            room,
            args.run_for.or(preset.duration),
            args.quiet,
            args.audio_dump,
        );
    }
    if args.audio_dump.is_some() {
        anyhow::bail!(
            "--audio-dump: `{}` is not a room publisher; the audio dump is of a room \
             publisher's microphone (output = \"room\", input.audio = \"mic\")",
            preset.source
        );
    }
    let plan = Plan::new(&preset)?;
    for note in &plan.notes {
        eprintln!("note: {note}");
    }
    if let Some(s) = &plan.video_encoder {
        eprintln!(
            "video encoder: {} ({}, {})",
            s.factory,
            s.candidate.family,
            if s.candidate.hardware {
                "hardware"
            } else {
                "software"
            }
        );
    }
    tracing::info!("pipeline: {}", plan.description);
    let running = plan.start().context("starting the pipeline")?;
    install_ctrl_c(running.stop_handle());
    let tty = std::io::stderr().is_terminal();
    let quiet = args.quiet;
    let summary = running
        .run(args.run_for.or(plan.duration), |status| {
            if quiet {
                return;
            }
            let mut err = std::io::stderr();
            if tty {
                let _ = write!(err, "\r{status}   ");
            } else {
                let _ = writeln!(err, "{status}");
            }
            let _ = err.flush();
        })
        .context("running the pipeline")?;
    if tty && !quiet {
        eprintln!();
    }
    let secs = summary.elapsed.as_secs_f64();
    match &preset.output {
        Output::File { path, .. } => eprintln!(
            "wrote {} ({} video frames in {:.1} s)",
            path.display(),
            summary.frames,
            secs
        ),
        _ => eprintln!("done ({} video frames in {:.1} s)", summary.frames, secs),
    }
    Ok(())
}
