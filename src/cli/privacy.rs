//! `streamwire privacy export|delete|purge`: data-subject requests and retention on the
//! telemetry database.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;

use super::state::StateArgs;
use streamwire::telemetry::store::{DEFAULT_DB_FILE, DEFAULT_RETENTION, Scope, Store, now_ms};

/// Privacy operations.
#[derive(Debug, clap::Subcommand)]
pub enum PrivacyCommand {
    /// Write everything held about a user as JSON (every room: for the operator).
    Export(ExportArgs),
    /// Delete everything held about a user, in every room (leaves only a non-identifying
    /// audit entry).
    Delete(DeleteArgs),
    /// Delete everything older than the retention now (the server also does this hourly).
    Purge(PurgeArgs),
}

/// Arguments of `privacy export`.
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// The user identity (the room token's subject).
    #[arg(long)]
    pub user: String,
    /// Only what is held about the user in this room (default: every room).
    #[arg(long)]
    pub room: Option<String>,
    /// Telemetry database. Default: streamwire-telemetry.db in the state directory.
    #[arg(long)]
    pub db: Option<PathBuf>,
    #[command(flatten)]
    pub state: StateArgs,
    /// Output file (default: standard output).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Arguments of `privacy delete`.
#[derive(Debug, clap::Args)]
pub struct DeleteArgs {
    /// The user identity (the room token's subject).
    #[arg(long)]
    pub user: String,
    /// Only what is held about the user in this room (default: every room).
    #[arg(long)]
    pub room: Option<String>,
    /// Telemetry database. Default: streamwire-telemetry.db in the state directory.
    #[arg(long)]
    pub db: Option<PathBuf>,
    #[command(flatten)]
    pub state: StateArgs,
}

/// Arguments of `privacy purge`.
#[derive(Debug, clap::Args)]
pub struct PurgeArgs {
    /// Telemetry database. Default: streamwire-telemetry.db in the state directory.
    #[arg(long)]
    pub db: Option<PathBuf>,
    #[command(flatten)]
    pub state: StateArgs,
    /// Retention, e.g. `30d`, `12h`.
    #[arg(long, default_value = "30d", value_parser = parse_retention)]
    pub retention: Duration,
}

/// Parses a retention such as `30d` (at least one second).
pub fn parse_retention(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s)
        .map_err(|e| format!("invalid retention `{s}`: {e} (examples: 30d, 12h)"))?;
    if d < Duration::from_secs(1) {
        return Err(format!("retention `{s}` is shorter than one second"));
    }
    Ok(d)
}

/// Opens an existing telemetry database (a typo in `--db` must not create an empty one).
pub fn open_existing(db: &Path, retention: Duration) -> anyhow::Result<Store> {
    anyhow::ensure!(
        db.is_file(),
        "telemetry database {} does not exist (pass --db PATH)",
        db.display()
    );
    Ok(Store::open(db, retention)?)
}

/// The operator's requests cover every room unless `--room` narrows them.
fn scope(room: Option<&str>) -> Scope<'_> {
    room.map_or(Scope::Everywhere, Scope::Room)
}

pub fn execute(cmd: PrivacyCommand) -> anyhow::Result<()> {
    match cmd {
        PrivacyCommand::Export(a) => {
            let mut store = open_existing(
                &a.state.file(a.db.as_deref(), DEFAULT_DB_FILE)?,
                DEFAULT_RETENTION,
            )?;
            let json = store.export_user(&a.user, scope(a.room.as_deref()))?;
            let text = serde_json::to_string_pretty(&json)?;
            match a.out {
                Some(path) => std::fs::write(&path, text + "\n")
                    .with_context(|| format!("writing {}", path.display()))?,
                None => println!("{text}"),
            }
        }
        PrivacyCommand::Delete(a) => {
            let mut store = open_existing(
                &a.state.file(a.db.as_deref(), DEFAULT_DB_FILE)?,
                DEFAULT_RETENTION,
            )?;
            let removed = store.delete_user(&a.user, scope(a.room.as_deref()), now_ms())?;
            println!("{}", serde_json::to_string(&removed)?);
        }
        PrivacyCommand::Purge(a) => {
            let mut store = open_existing(
                &a.state.file(a.db.as_deref(), DEFAULT_DB_FILE)?,
                a.retention,
            )?;
            let removed = store.purge(now_ms())?;
            println!("{}", serde_json::to_string(&removed)?);
        }
    }
    Ok(())
}
