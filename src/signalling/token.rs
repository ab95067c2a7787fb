//! Room tokens: HS256 JWTs minted from the server secret.
//!
//! ```
//! use std::time::Duration;
//! use streamwire::signalling::protocol::Grant;
//! use streamwire::signalling::token::{mint, verify, Claims, TokenError};
//! let secret = b"0123456789abcdef0123456789abcdef";
//! let claims = Claims::new("room1", "alice", "Alice", Duration::from_secs(3600), &[Grant::Message]);
//! let jwt = mint(secret, &claims).unwrap();
//! assert_eq!(verify(secret, &jwt, "room1").unwrap().sub, "alice");
//! assert!(matches!(verify(secret, &jwt, "room2"), Err(TokenError::WrongRoom { .. })));
//! assert!(matches!(verify(b"another secret, also 32 bytes!!", &jwt, "room1"), Err(TokenError::Forged)));
//! ```

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use super::protocol::{ErrorCode, Grant, validate_room};

/// Minimum accepted secret length in bytes (HS256 wants at least 256 bits).
pub const MIN_SECRET_LEN: usize = 32;

/// Claims of a room token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Room the token admits to.
    pub room: String,
    /// User identity.
    pub sub: String,
    /// Display name.
    pub name: String,
    /// Expiry, seconds since the Unix epoch.
    pub exp: u64,
    /// Issued at, seconds since the Unix epoch.
    pub iat: u64,
    /// Permissions.
    pub grants: Vec<Grant>,
}

impl Claims {
    /// Claims valid for `ttl` from now.
    pub fn new(room: &str, user: &str, name: &str, ttl: Duration, grants: &[Grant]) -> Self {
        let now = now_secs();
        Claims {
            room: room.to_owned(),
            sub: user.to_owned(),
            name: name.to_owned(),
            exp: now.saturating_add(ttl.as_secs()),
            iat: now,
            grants: grants.to_vec(),
        }
    }

    /// Whether the token carries `g`.
    pub fn has(&self, g: Grant) -> bool {
        self.grants.contains(&g)
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// No token given.
    #[error("no token given")]
    Missing,
    /// `exp` is now or in the past.
    #[error("token expired at {exp} (unix seconds)")]
    Expired {
        /// The expiry claim.
        exp: u64,
    },
    /// The signature does not verify.
    #[error("token signature does not verify with the server secret")]
    Forged,
    /// Valid token for another room.
    #[error("token is for room `{token_room}`, not `{requested}`")]
    WrongRoom {
        /// Room in the token.
        token_room: String,
        /// Room requested.
        requested: String,
    },
    /// Malformed token or claims.
    #[error("token is malformed: {0}")]
    Invalid(String),
    /// The secret is unusable (too short).
    #[error("secret must be at least {MIN_SECRET_LEN} bytes, got {0}")]
    WeakSecret(usize),
}

impl TokenError {
    /// The protocol error code for this refusal.
    pub fn code(&self) -> ErrorCode {
        match self {
            TokenError::Missing => ErrorCode::TokenMissing,
            TokenError::Expired { .. } => ErrorCode::TokenExpired,
            TokenError::Forged => ErrorCode::TokenForged,
            TokenError::WrongRoom { .. } => ErrorCode::TokenWrongRoom,
            TokenError::Invalid(_) | TokenError::WeakSecret(_) => ErrorCode::TokenInvalid,
        }
    }
}

/// Sign `claims` with `secret` (HS256).
pub fn mint(secret: &[u8], claims: &Claims) -> Result<String, TokenError> {
    if secret.len() < MIN_SECRET_LEN {
        return Err(TokenError::WeakSecret(secret.len()));
    }
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret),
    )
    .map_err(|e| TokenError::Invalid(e.to_string()))
}

/// Verify `token` with `secret` for `room`; distinguishes missing, expired, forged and wrong-room.
pub fn verify(secret: &[u8], token: &str, room: &str) -> Result<Claims, TokenError> {
    if token.is_empty() {
        return Err(TokenError::Missing);
    }
    let mut validation = Validation::new(Algorithm::HS256);
    validation.leeway = 0;
    validation.set_required_spec_claims(&["exp"]);
    let data =
        jsonwebtoken::decode::<Claims>(token, &DecodingKey::from_secret(secret), &validation)
            .map_err(|e| match e.kind() {
                ErrorKind::InvalidSignature | ErrorKind::InvalidAlgorithm => TokenError::Forged,
                ErrorKind::ExpiredSignature => TokenError::Expired {
                    exp: expiry_of(token).unwrap_or(0),
                },
                _ => TokenError::Invalid(e.to_string()),
            })?;
    let claims = data.claims;
    // RFC 7519 section 4.1.4: the token must not be accepted on or after `exp`.
    if claims.exp <= now_secs() {
        return Err(TokenError::Expired { exp: claims.exp });
    }
    if claims.sub.is_empty() {
        return Err(TokenError::Invalid("claim `sub` is empty".into()));
    }
    if let Err(why) = validate_room(&claims.room) {
        return Err(TokenError::Invalid(format!("claim `room`: {why}")));
    }
    if claims.room != room {
        return Err(TokenError::WrongRoom {
            token_room: claims.room,
            requested: room.to_owned(),
        });
    }
    Ok(claims)
}

fn expiry_of(token: &str) -> Option<u64> {
    use base64::Engine;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    v.get("exp")?.as_u64()
}

/// Problems with the secret file.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// Reading or creating the file failed.
    #[error("secret file {path}: {source}")]
    Io {
        /// File.
        path: std::path::PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The file holds too few bytes.
    #[error("secret file {path}: holds {got} bytes after trimming, need at least {MIN_SECRET_LEN}")]
    TooShort {
        /// File.
        path: std::path::PathBuf,
        /// Bytes found.
        got: usize,
    },
}

/// Read the server secret from `path` (surrounding whitespace trimmed). When the file does not
/// exist and `create` is true, write a fresh random secret (64 hex characters, mode 0600).
///
/// ```
/// let dir = std::env::temp_dir().join(format!("sw-secret-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let path = dir.join("secret");
/// let a = streamwire::signalling::token::load_secret(&path, true).unwrap();
/// let b = streamwire::signalling::token::load_secret(&path, false).unwrap();
/// assert_eq!(a, b);
/// assert_eq!(a.len(), 64);
/// ```
pub fn load_secret(path: &std::path::Path, create: bool) -> Result<Vec<u8>, SecretError> {
    let io = |source| SecretError::Io {
        path: path.to_owned(),
        source,
    };
    if create && !path.exists() {
        let mut raw = [0u8; 32];
        getrandom::getrandom(&mut raw).map_err(|e| io(std::io::Error::other(e.to_string())))?;
        let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
        use std::io::Write;
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(path).map_err(io)?;
        f.write_all(hex.as_bytes()).map_err(io)?;
        tracing::info!(path = %path.display(), "created a new random signalling secret");
    }
    let raw = std::fs::read(path).map_err(io)?;
    let trimmed = raw.trim_ascii().to_vec();
    if trimmed.len() < MIN_SECRET_LEN {
        return Err(SecretError::TooShort {
            path: path.to_owned(),
            got: trimmed.len(),
        });
    }
    Ok(trimmed)
}

/// The `room` claim of a token, read without verifying it (a client learning which room its
/// token is for; only the server can verify a token). `None` when it is not a JWT with a
/// string `room` claim.
///
/// ```
/// use std::time::Duration;
/// use streamwire::signalling::protocol::Grant;
/// use streamwire::signalling::token::{mint, room_claim, Claims};
/// let claims = Claims::new("lobby", "ann", "Ann", Duration::from_secs(60), &[Grant::Subscribe]);
/// let token = mint(b"0123456789abcdef0123456789abcdef", &claims).unwrap();
/// assert_eq!(room_claim(&token).as_deref(), Some("lobby"));
/// assert_eq!(room_claim("not a token"), None);
/// ```
pub fn room_claim(token: &str) -> Option<String> {
    use base64::Engine;
    let payload = token.split('.').nth(1)?;
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let v: serde_json::Value = serde_json::from_slice(&json).ok()?;
    v.get("room")?.as_str().map(str::to_owned)
}

/// Parse a duration like `90s`, `15m`, `1h`, `7d` or plain seconds.
pub fn parse_ttl(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, mult) = match s.char_indices().last() {
        Some((i, 's')) => (&s[..i], 1),
        Some((i, 'm')) => (&s[..i], 60),
        Some((i, 'h')) => (&s[..i], 3600),
        Some((i, 'd')) => (&s[..i], 86400),
        _ => (s, 1),
    };
    let n: u64 = num
        .parse()
        .map_err(|_| format!("invalid duration `{s}` (examples: 90s, 15m, 1h, 7d)"))?;
    Ok(Duration::from_secs(n.saturating_mul(mult)))
}

#[cfg(test)]
mod tests {
    use super::*;
    const S: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn refusals_are_distinct() {
        let c = Claims::new("r", "u", "U", Duration::from_secs(60), &Grant::ALL);
        let t = mint(S, &c).unwrap();
        assert_eq!(verify(S, &t, "r").unwrap(), c);
        assert_eq!(verify(S, "", "r"), Err(TokenError::Missing));
        assert!(matches!(verify(S, "abc", "r"), Err(TokenError::Invalid(_))));
        let mut expired = c.clone();
        expired.exp = now_secs() - 10;
        let te = mint(S, &expired).unwrap();
        assert_eq!(
            verify(S, &te, "r"),
            Err(TokenError::Expired { exp: expired.exp })
        );
        // `exp` equal to the current second is expired too (RFC 7519: now must be before it).
        let mut now = c.clone();
        now.exp = now_secs();
        let tn = mint(S, &now).unwrap();
        assert_eq!(
            verify(S, &tn, "r"),
            Err(TokenError::Expired { exp: now.exp })
        );
        let mut nobody = c.clone();
        nobody.sub = String::new();
        let t0 = mint(S, &nobody).unwrap();
        assert!(matches!(verify(S, &t0, "r"), Err(TokenError::Invalid(m)) if m.contains("sub")));
        let mut bell = c.clone();
        bell.room = "a\u{7}b".into();
        let tb = mint(S, &bell).unwrap();
        assert!(
            matches!(verify(S, &tb, "a\u{7}b"), Err(TokenError::Invalid(m)) if m.contains("room"))
        );
        let forged = mint(b"another secret of thirty-two b..", &c).unwrap();
        assert_eq!(verify(S, &forged, "r"), Err(TokenError::Forged));
        assert_eq!(mint(b"short", &c), Err(TokenError::WeakSecret(5)));
        assert_eq!(parse_ttl("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse_ttl("0s").unwrap(), Duration::ZERO);
        assert!(parse_ttl("xh").is_err());
    }
}
