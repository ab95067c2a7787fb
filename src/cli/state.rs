//! The state directory: where `streamwire serve` keeps its secret and telemetry database
//! unless told otherwise, and where `token`, `report` and `privacy` find them. Never the
//! current directory by surprise.
//!
//! Resolution: `--state-dir DIR`, else `$STREAMWIRE_STATE_DIR`, else `$XDG_STATE_HOME/streamwire`,
//! else `$HOME/.local/state/streamwire` (the XDG base-directory default).

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;

/// Name of the signalling secret in the state directory.
pub const SECRET_FILE: &str = "streamwire.secret";

/// The `--state-dir` option shared by the commands that use the server's files.
#[derive(Debug, Clone, Args)]
pub struct StateArgs {
    /// Directory of the server's state: the secret (streamwire.secret) and the telemetry
    /// database, unless --secret-file / --db say otherwise. Default: $STREAMWIRE_STATE_DIR,
    /// else $XDG_STATE_HOME/streamwire, else ~/.local/state/streamwire.
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
}

impl StateArgs {
    /// The state directory (not created).
    pub fn dir(&self) -> anyhow::Result<PathBuf> {
        let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
        if let Some(d) = &self.state_dir {
            return Ok(d.clone());
        }
        if let Some(d) = var("STREAMWIRE_STATE_DIR") {
            return Ok(PathBuf::from(d));
        }
        if let Some(d) = var("XDG_STATE_HOME") {
            return Ok(PathBuf::from(d).join("streamwire"));
        }
        let home = var("HOME").context(
            "no state directory: set --state-dir (or STREAMWIRE_STATE_DIR, XDG_STATE_HOME, HOME)",
        )?;
        Ok(PathBuf::from(home).join(".local/state/streamwire"))
    }

    /// `given`, or `name` in the state directory.
    pub fn file(&self, given: Option<&Path>, name: &str) -> anyhow::Result<PathBuf> {
        match given {
            Some(p) => Ok(p.to_owned()),
            None => Ok(self.dir()?.join(name)),
        }
    }

    /// Create the state directory (owner-only) if `path` lies in it and it is missing.
    pub fn create_for(&self, path: &Path) -> anyhow::Result<()> {
        let dir = self.dir()?;
        if path.parent() != Some(dir.as_path()) || dir.is_dir() {
            return Ok(());
        }
        let mut b = std::fs::DirBuilder::new();
        b.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            b.mode(0o700);
        }
        b.create(&dir)
            .with_context(|| format!("creating the state directory {}", dir.display()))
    }
}
