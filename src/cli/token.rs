//! `streamwire token`: mint a room token from the server secret.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use super::state::StateArgs;
use streamwire::signalling::protocol::{Grant, validate_room};
use streamwire::signalling::token::{Claims, load_secret, mint, parse_ttl};

/// Arguments of `streamwire token`.
#[derive(Debug, Args)]
pub struct TokenArgs {
    /// Room the token admits to.
    #[arg(long)]
    pub room: String,
    /// User identity (the `sub` claim).
    #[arg(long)]
    pub user: String,
    /// Display name (defaults to the user id).
    #[arg(long)]
    pub name: Option<String>,
    /// Lifetime: 90s, 15m, 1h, 7d.
    #[arg(long, default_value = "1h")]
    pub ttl: String,
    /// Grants (repeat or comma-separate): publish, subscribe, message, admin.
    /// Default: publish,subscribe,message.
    #[arg(long = "grant", value_delimiter = ',')]
    pub grants: Vec<String>,
    /// File holding the server secret (same as `serve --secret-file`). Default:
    /// streamwire.secret in the state directory.
    #[arg(long)]
    pub secret_file: Option<PathBuf>,
    #[command(flatten)]
    pub state: StateArgs,
}

/// Print a token on stdout.
pub fn run(a: TokenArgs) -> anyhow::Result<()> {
    let secret = load_secret(
        &a.state
            .file(a.secret_file.as_deref(), super::state::SECRET_FILE)?,
        false,
    )?;
    let ttl = parse_ttl(&a.ttl)
        .map_err(anyhow::Error::msg)
        .context("--ttl")?;
    anyhow::ensure!(
        ttl >= std::time::Duration::from_secs(1),
        "--ttl {}: a token must live at least 1s (it would be expired when minted)",
        a.ttl
    );
    anyhow::ensure!(
        !a.user.is_empty(),
        "--user is empty; a token needs a user identity"
    );
    validate_room(&a.room).map_err(|why| anyhow::anyhow!("--room {why}"))?;
    let grants: Vec<Grant> = if a.grants.is_empty() {
        vec![Grant::Publish, Grant::Subscribe, Grant::Message]
    } else {
        a.grants
            .iter()
            .map(|g| g.trim().parse::<Grant>())
            .collect::<Result<_, _>>()
            .map_err(anyhow::Error::msg)
            .context("--grant")?
    };
    let name = a.name.clone().unwrap_or_else(|| a.user.clone());
    let claims = Claims::new(&a.room, &a.user, &name, ttl, &grants);
    println!("{}", mint(&secret, &claims)?);
    Ok(())
}
