//! `streamwire check PRESET [--set k=v]...`

use streamwire::pipeline::Plan;
use streamwire::preset::Preset;

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
