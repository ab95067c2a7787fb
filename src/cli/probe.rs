//! `streamwire probe [--json]`

use streamwire::encoder::SystemRegistry;

/// Arguments of `probe`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

pub fn execute(args: Args) -> anyhow::Result<()> {
    let report = streamwire::probe::probe(&SystemRegistry::new());
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    println!("{}", report.gstreamer);
    for (title, list) in [
        ("Cameras", &report.cameras),
        ("Microphones", &report.microphones),
    ] {
        println!("{title}:");
        if list.is_empty() {
            println!("  (none found)");
        }
        for d in list {
            println!(
                "  {}: {}  [{}]",
                d.index,
                d.name,
                d.launch.as_deref().unwrap_or("no element")
            );
        }
    }
    println!("Encoders:");
    for c in &report.encoders {
        match &c.chosen {
            Some(f) => println!(
                "  {:5} {} ({}, {})",
                c.codec,
                f,
                c.family.unwrap_or(""),
                if c.hardware == Some(true) {
                    "hardware"
                } else {
                    "software"
                }
            ),
            None => println!("  {:5} none usable", c.codec),
        }
        for s in c.skipped.iter().filter(|s| s.reason != "not installed") {
            println!("        skipped {}: {}", s.factory, s.reason);
        }
        let missing: Vec<&str> = c
            .skipped
            .iter()
            .filter(|s| s.reason == "not installed")
            .map(|s| s.factory.as_str())
            .collect();
        if !missing.is_empty() {
            println!("        not installed: {}", missing.join(", "));
        }
    }
    Ok(())
}
