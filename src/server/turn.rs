//! TURN with time-limited credentials: the server mints, for each peer, credentials in the
//! coturn REST-API form (`use-auth-secret` / `static-auth-secret` in `turnserver.conf`; the
//! form LiveKit and most TURN services use for external TURN):
//!
//! - `username = "<expiry>:<peer id>"`, the expiry in Unix seconds;
//! - `credential = base64(HMAC-SHA1(secret, username))`.
//!
//! The TURN server checks the HMAC with the same shared secret and refuses an expired
//! username, so no user database is shared and a leaked credential is useless after its
//! lifetime. The hub sends them in `welcome`, mints fresh ones in `resumed` and, for sessions
//! that last, pushes an `ice_servers` frame every half lifetime, so the credentials a client
//! holds are always valid for at least half the TTL.
//!
//! ```
//! use std::time::{Duration, UNIX_EPOCH};
//! use streamwire::server::turn::TurnConfig;
//! let turn = TurnConfig::new(
//!     vec!["turn:turn.example.org:3478".into(), "turns:turn.example.org:443?transport=tcp".into()],
//!     b"shared-secret".to_vec(),
//!     Duration::from_secs(3600),
//! )
//! .unwrap();
//! let s = turn.mint("a1b2c3-7", UNIX_EPOCH + Duration::from_secs(1_700_000_000));
//! assert_eq!(s.username.as_deref(), Some("1700003600:a1b2c3-7"));
//! assert_eq!(s.urls.len(), 2);
//! ```

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;

use crate::signalling::protocol::IceServer;
use crate::signalling::service::IceMinter;

/// Shortest credential lifetime accepted: the refresh runs every half lifetime.
pub const MIN_TTL: Duration = Duration::from_secs(10);
/// Default credential lifetime (`streamwire serve --turn-ttl`).
pub const DEFAULT_TTL: Duration = Duration::from_secs(3600);

/// What is wrong with a TURN configuration.
#[derive(Debug, thiserror::Error)]
pub enum TurnError {
    /// A TURN URL is unusable.
    #[error("TURN URL `{url}`: {detail}")]
    Url {
        /// The URL.
        url: String,
        /// What is wrong.
        detail: String,
    },
    /// The shared secret is empty.
    #[error("the TURN shared secret is empty{}", .0.as_ref().map(|p| format!(" ({p})")).unwrap_or_default())]
    EmptySecret(Option<String>),
    /// The shared secret file cannot be read.
    #[error("cannot read the TURN secret file {path}: {source}")]
    SecretFile {
        /// The file.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
    /// The lifetime is too short.
    #[error("TURN credential lifetime {0:?} is below the minimum of {MIN_TTL:?}")]
    Ttl(Duration),
    /// Credentials without a URL to use them with.
    #[error("a TURN secret needs at least one TURN URL (--turn-url)")]
    NoUrl,
}

/// TURN servers sharing one secret, and the lifetime of the credentials minted for them.
#[derive(Clone)]
pub struct TurnConfig {
    urls: Vec<String>,
    key: ring::hmac::Key,
    ttl: Duration,
}

impl std::fmt::Debug for TurnConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TurnConfig")
            .field("urls", &self.urls)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl TurnConfig {
    /// `urls`: `turn:HOST:PORT` or `turns:HOST:PORT`, optionally `?transport=udp|tcp` (the
    /// RTCIceServer form clients get); `secret`: the TURN server's `static-auth-secret`;
    /// `ttl`: lifetime of each minted credential (at least [`MIN_TTL`]).
    pub fn new(urls: Vec<String>, secret: Vec<u8>, ttl: Duration) -> Result<Self, TurnError> {
        if urls.is_empty() {
            return Err(TurnError::NoUrl);
        }
        for url in &urls {
            check_url(url)?;
        }
        if secret.is_empty() {
            return Err(TurnError::EmptySecret(None));
        }
        if ttl < MIN_TTL {
            return Err(TurnError::Ttl(ttl));
        }
        Ok(TurnConfig {
            urls,
            key: ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, &secret),
            ttl,
        })
    }

    /// Read the shared secret from `path` (surrounding whitespace removed, as coturn's
    /// `static-auth-secret` has none).
    pub fn read_secret(path: &Path) -> Result<Vec<u8>, TurnError> {
        let text = std::fs::read_to_string(path).map_err(|source| TurnError::SecretFile {
            path: path.display().to_string(),
            source,
        })?;
        let secret = text.trim();
        if secret.is_empty() {
            return Err(TurnError::EmptySecret(Some(path.display().to_string())));
        }
        Ok(secret.as_bytes().to_vec())
    }

    /// The URLs.
    pub fn urls(&self) -> &[String] {
        &self.urls
    }

    /// Lifetime of each credential.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Credentials for `peer_id`, valid from `now` for the lifetime, for every URL.
    pub fn mint(&self, peer_id: &str, now: SystemTime) -> IceServer {
        let expiry = now
            .checked_add(self.ttl)
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs());
        let username = format!("{expiry}:{peer_id}");
        let tag = ring::hmac::sign(&self.key, username.as_bytes());
        IceServer {
            urls: self.urls.clone(),
            username: Some(username),
            credential: Some(base64::engine::general_purpose::STANDARD.encode(tag.as_ref())),
        }
    }
}

impl IceMinter for TurnConfig {
    fn mint_for(&self, peer_id: &str) -> IceServer {
        self.mint(peer_id, SystemTime::now())
    }

    fn refresh_every(&self) -> Duration {
        self.ttl / 2
    }
}

/// `turn:` / `turns:` with a host, and no query but `transport=udp|tcp`.
fn check_url(url: &str) -> Result<(), TurnError> {
    let bad = |detail: &str| TurnError::Url {
        url: url.to_owned(),
        detail: detail.to_owned(),
    };
    let rest = url
        .strip_prefix("turn:")
        .or_else(|| url.strip_prefix("turns:"))
        .ok_or_else(|| bad("must start with turn: or turns:"))?;
    let (host, query) = match rest.split_once('?') {
        Some((h, q)) => (h, Some(q)),
        None => (rest, None),
    };
    if host.is_empty() || host.starts_with("//") {
        return Err(bad("expected turn:HOST:PORT (no //)"));
    }
    match query {
        None | Some("transport=udp" | "transport=tcp") => Ok(()),
        Some(q) => Err(bad(&format!(
            "unsupported query `{q}` (only transport=udp or transport=tcp)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_in_the_coturn_rest_api_form() {
        let turn = TurnConfig::new(
            vec!["turn:10.0.0.1:3478?transport=tcp".into()],
            b"north".to_vec(),
            Duration::from_secs(600),
        )
        .unwrap();
        let s = turn.mint("p-1", UNIX_EPOCH + Duration::from_secs(1000));
        assert_eq!(s.urls, vec!["turn:10.0.0.1:3478?transport=tcp".to_string()]);
        assert_eq!(s.username.as_deref(), Some("1600:p-1"));
        // HMAC-SHA1("north", "1600:p-1"), base64: `printf %s 1600:p-1 | openssl dgst
        // -sha1 -hmac north -binary | base64`.
        assert_eq!(
            s.credential.as_deref(),
            Some("5XUFdXj9L9k8sgQQKGYHSVe7kV4=")
        );
        assert_eq!(turn.refresh_every(), Duration::from_secs(300));
    }

    #[test]
    fn bad_configurations_are_named() {
        let ok = || vec!["turn:h:3478".to_string()];
        let secret = || b"s".to_vec();
        let ttl = Duration::from_secs(60);
        for (urls, want) in [
            (vec![], "at least one TURN URL"),
            (
                vec!["stun:h:3478".into()],
                "`stun:h:3478`: must start with turn:",
            ),
            (vec!["turn://h:1".into()], "no //"),
            (vec!["turns:h:443?transport=sctp".into()], "transport=sctp"),
            (vec!["turn:".into()], "`turn:`"),
        ] {
            let e = TurnConfig::new(urls, secret(), ttl)
                .unwrap_err()
                .to_string();
            assert!(e.contains(want), "{e}");
        }
        let e = TurnConfig::new(ok(), Vec::new(), ttl).unwrap_err();
        assert!(e.to_string().contains("empty"), "{e}");
        let e = TurnConfig::new(ok(), secret(), Duration::from_secs(1)).unwrap_err();
        assert!(e.to_string().contains("minimum of 10s"), "{e}");
    }

    #[test]
    fn secret_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("turn.secret");
        std::fs::write(&p, "  s3cret\n").unwrap();
        assert_eq!(TurnConfig::read_secret(&p).unwrap(), b"s3cret");
        std::fs::write(&p, "\n").unwrap();
        let e = TurnConfig::read_secret(&p).unwrap_err().to_string();
        assert!(e.contains("empty") && e.contains("turn.secret"), "{e}");
        let e = TurnConfig::read_secret(&dir.path().join("gone"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("gone"), "{e}");
    }
}
