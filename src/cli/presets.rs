//! `streamwire presets`

use streamwire::preset::Preset;

/// Arguments of `presets`.
#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn execute(_args: Args) -> anyhow::Result<()> {
    let list = Preset::bundled();
    let width = list.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
    for (name, desc) in list {
        match desc {
            Ok(d) => println!("{name:width$}  {d}"),
            Err(e) => println!("{name:width$}  (invalid: {e})"),
        }
    }
    Ok(())
}
