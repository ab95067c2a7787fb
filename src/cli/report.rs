//! `streamwire report`: a self-contained HTML performance report of a room.

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;

use super::state::StateArgs;
use streamwire::telemetry::store::{DEFAULT_DB_FILE, DEFAULT_RETENTION};

/// Arguments of `report`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Room to report on.
    #[arg(long)]
    pub room: String,
    /// Start of the period: a duration back from now (`1h`, `2d`) or an RFC 3339 time
    /// (`2026-11-23T04:00:00Z`). Default: everything held.
    #[arg(long, value_parser = parse_since)]
    pub since: Option<i64>,
    /// Output HTML file.
    #[arg(long)]
    pub out: PathBuf,
    /// Telemetry database. Default: streamwire-telemetry.db in the state directory.
    #[arg(long)]
    pub db: Option<PathBuf>,
    #[command(flatten)]
    pub state: StateArgs,
}

/// `1h` (back from now) or an RFC 3339 time, as milliseconds since the Unix epoch.
fn parse_since(s: &str) -> Result<i64, String> {
    let t = if let Ok(d) = humantime::parse_duration(s) {
        SystemTime::now()
            .checked_sub(d)
            .ok_or_else(|| format!("--since {s} reaches before 1970"))?
    } else {
        humantime::parse_rfc3339_weak(s).map_err(|_| {
            format!(
                "invalid --since `{s}`: expected a duration (1h, 2d) or an RFC 3339 time \
                 (2026-11-23T04:00:00Z)"
            )
        })?
    };
    let ms = t
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_millis();
    i64::try_from(ms).map_err(|_| format!("--since {s} is too far in the future"))
}

pub fn execute(a: Args) -> anyhow::Result<()> {
    let store = super::privacy::open_existing(
        &a.state.file(a.db.as_deref(), DEFAULT_DB_FILE)?,
        DEFAULT_RETENTION,
    )?;
    let html = streamwire::report::generate(&store, &a.room, a.since.unwrap_or(0), None)?;
    std::fs::write(&a.out, html).with_context(|| format!("writing {}", a.out.display()))?;
    eprintln!("report written to {}", a.out.display());
    Ok(())
}
