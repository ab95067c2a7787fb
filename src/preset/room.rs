//! The `[room]` table: publishing to (`output = "room"`) or receiving from
//! (`input.video = "room"`) a room of the signalling service (what else such a preset may
//! hold: `room_roles.rs`). (A
//! `session::Session` runs such a preset; `SessionConfig::try_from` in `pipeline` converts.)

use std::path::{Path, PathBuf};

use super::doc::Value;
use super::error::{ErrorKind, PresetError};
use super::schema::{Section, invalid};

/// Environment variable read for the room token when the preset sets neither `room.token` nor
/// `room.token_file`.
pub const TOKEN_ENV: &str = "STREAMWIRE_TOKEN";

pub(crate) const ROOM_KEYS: &[&str] = &[
    "server",
    "room",
    "token",
    "token_file",
    "ice_servers",
    "ice_addresses",
];

/// The `[room]` table of a room preset.
///
/// ```
/// use streamwire::preset::{Preset, RoomRole, TokenSource};
///
/// let p = Preset::from_str(
///     "output = \"room\"\n[room]\nserver = \"ws://127.0.0.1:8443\"\nroom = \"demo\"\ntoken = \"jwt\"\n",
///     "p.toml",
///     &[],
/// )
/// .unwrap();
/// let room = p.room.unwrap();
/// assert_eq!(room.role, RoomRole::Publish);
/// assert_eq!(room.token, TokenSource::Inline("jwt".into()));
///
/// let e = Preset::from_str(
///     "output = \"room\"\n[room]\nserver = \"http://127.0.0.1:8443\"\nroom = \"demo\"\n",
///     "p.toml",
///     &[],
/// )
/// .unwrap_err();
/// assert_eq!(e.line_column(), Some((3, 10)));
/// assert!(e.to_string().contains("did you mean `ws://127.0.0.1:8443`"), "{e}");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomSettings {
    /// `room.server`: the signalling server's WebSocket URL (`ws://` or `wss://`).
    pub server: String,
    /// `room.room`: the room to join (the token must admit to it).
    pub room: String,
    /// Where the token comes from (`room.token`, `room.token_file`, or [`TOKEN_ENV`]).
    pub token: TokenSource,
    /// `room.ice_servers`: extra STUN/TURN servers in webrtcbin's form (`stun://host:port`,
    /// `turn://user:pass@host:port`, `turns://...`), added to those of the server's join reply.
    pub ice_servers: Vec<String>,
    /// `room.ice_addresses`: the local addresses ICE gathers candidates on; empty = every
    /// interface (`"all"`, the default). Loopback only (`["127.0.0.1"]`) is an explicit
    /// choice, for a room whose peers all run on this machine.
    pub ice_addresses: Vec<String>,
    /// Publish or receive.
    pub role: RoomRole,
}

/// Where the room token comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    /// `room.token` (also set with `--set room.token=...`).
    Inline(String),
    /// `room.token_file`: a file holding the token (checked to exist when the preset is loaded;
    /// relative paths resolve against the preset's directory).
    File(PathBuf),
    /// Neither: the [`TOKEN_ENV`] environment variable, read when the session starts.
    Env,
}

impl TokenSource {
    /// The token itself.
    ///
    /// ```
    /// use streamwire::preset::TokenSource;
    /// assert_eq!(TokenSource::Inline("abc".into()).resolve().unwrap(), "abc");
    /// let e = TokenSource::File("/nonexistent/token".into()).resolve().unwrap_err();
    /// assert!(e.to_string().contains("/nonexistent/token"));
    /// ```
    pub fn resolve(&self) -> Result<String, PresetError> {
        let token = match self {
            TokenSource::Inline(t) => t.trim().to_owned(),
            TokenSource::File(path) => std::fs::read_to_string(path)
                .map_err(|e| PresetError::Token {
                    reason: format!("cannot read token file {}: {e}", path.display()),
                })?
                .trim()
                .to_owned(),
            TokenSource::Env => match std::env::var(TOKEN_ENV) {
                Ok(t) => t.trim().to_owned(),
                Err(_) => {
                    return Err(PresetError::Token {
                        reason: format!(
                            "the preset sets neither `room.token` nor `room.token_file`, and \
                             {TOKEN_ENV} is not set (mint one with `streamwire token --room ROOM \
                             --user NAME`, then pass it with `--set room.token=TOKEN` or \
                             {TOKEN_ENV}=TOKEN)"
                        ),
                    });
                }
            },
        };
        if token.is_empty() {
            return Err(PresetError::Token {
                reason: format!("the token from {} is empty", self.describe()),
            });
        }
        Ok(token)
    }

    /// Where the token comes from, for `streamwire check` (never the token itself).
    pub fn describe(&self) -> String {
        match self {
            TokenSource::Inline(_) => "room.token".to_owned(),
            TokenSource::File(p) => format!("file {}", p.display()),
            TokenSource::Env => format!("environment variable {TOKEN_ENV}"),
        }
    }
}

/// Whether the preset publishes to the room or receives from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoomRole {
    /// `output = "room"`: the preset's capture (`[input]`, `[video]`, `[audio]`) is encoded once
    /// and sent to every member of the room.
    Publish,
    /// `input.video = "room"`: receive every publisher of the room.
    Receive {
        /// `input.audio = "room"`: receive audio too (played with `output = "display"`,
        /// decoded and dropped otherwise).
        audio: bool,
        /// What to do with received video (`output`).
        output: RoomReceive,
    },
}

/// What a receiving room preset does with the media (`output`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoomReceive {
    /// `"display"`: a window per publisher (and the speakers).
    Display,
    /// `"record:DIR"`: each publisher's video and audio, as sent (no re-encoding), in one
    /// Matroska file, `DIR/<peer>.mkv` (playable even after an abrupt stop); see
    /// [`VideoOutput::Record`](crate::webrtc::subscriber::VideoOutput::Record).
    Record(PathBuf),
    /// `"fakesink"`: decode, count and drop.
    Discard,
}

pub(super) fn bad_value(
    sec: &Section<'_>,
    node_key: &str,
    value: &str,
    expected: String,
) -> PresetError {
    let at = sec
        .node(node_key)
        .map(|n| n.at.clone())
        .unwrap_or(sec.at.clone());
    invalid(
        &at,
        ErrorKind::InvalidValue {
            key: sec.full_key(node_key),
            value: value.to_owned(),
            expected,
            suggestion: None,
        },
    )
}

fn required<'a>(sec: &Section<'a>, key: &str) -> Result<&'a str, PresetError> {
    match sec.string(key)? {
        Some((s, node)) if s.trim().is_empty() => Err(invalid(
            &node.at,
            ErrorKind::InvalidValue {
                key: sec.full_key(key),
                value: s.to_owned(),
                expected: "a non-empty string".to_owned(),
                suggestion: None,
            },
        )),
        Some((s, _)) => Ok(s.trim()),
        None => Err(invalid(
            &sec.at,
            ErrorKind::Missing {
                key: sec.full_key(key),
            },
        )),
    }
}

/// Validate `[room]` for a preset with the given role.
pub(crate) fn room(
    sec: &Section<'_>,
    base: &Path,
    role: RoomRole,
) -> Result<RoomSettings, PresetError> {
    sec.check_keys(ROOM_KEYS, &[])?;
    let server = required(sec, "server")?;
    let has_host = |rest: &str| !rest.is_empty() && !rest.starts_with('/');
    let ok = match server.split_once("://") {
        Some(("ws" | "wss", rest)) => has_host(rest),
        _ => false,
    };
    if !ok {
        let suggestion = match server.split_once("://") {
            Some(("http", rest)) if has_host(rest) => Some(format!("ws://{rest}")),
            Some(("https", rest)) if has_host(rest) => Some(format!("wss://{rest}")),
            None if has_host(server) => Some(format!("ws://{server}")),
            _ => None,
        };
        let at = sec
            .node("server")
            .map(|n| n.at.clone())
            .unwrap_or(sec.at.clone());
        return Err(invalid(
            &at,
            ErrorKind::InvalidValue {
                key: sec.full_key("server"),
                value: server.to_owned(),
                expected: "a ws:// or wss:// URL with a host, e.g. \"ws://127.0.0.1:8443\""
                    .to_owned(),
                suggestion,
            },
        ));
    }
    let room = required(sec, "room")?;

    let token = sec.string("token")?;
    let token_file = sec.string("token_file")?;
    let token = match (token, token_file) {
        (Some(_), Some((f, _))) => {
            return Err(bad_value(
                sec,
                "token_file",
                f,
                "either `room.token` or `room.token_file`, not both".to_owned(),
            ));
        }
        (Some((t, node)), None) => {
            if t.trim().is_empty() {
                return Err(invalid(
                    &node.at,
                    ErrorKind::InvalidValue {
                        key: sec.full_key("token"),
                        value: t.to_owned(),
                        expected: "a non-empty token".to_owned(),
                        suggestion: None,
                    },
                ));
            }
            TokenSource::Inline(t.trim().to_owned())
        }
        (None, Some((f, _))) => {
            let path = base.join(f);
            if !path.is_file() {
                return Err(bad_value(
                    sec,
                    "token_file",
                    f,
                    format!(
                        "an existing token file (`{}` does not exist; relative paths are \
                         resolved against the preset's directory)",
                        path.display()
                    ),
                ));
            }
            TokenSource::File(path)
        }
        (None, None) => TokenSource::Env,
    };

    let mut ice_servers = Vec::new();
    if let Some(node) = sec.node("ice_servers") {
        let items: Vec<&super::doc::Node> = match &node.value {
            Value::Array(items) => items.iter().collect(),
            Value::String(_) => vec![node],
            other => {
                return Err(invalid(
                    &node.at,
                    ErrorKind::WrongType {
                        key: sec.full_key("ice_servers"),
                        expected: "an array of strings",
                        found: other.type_name(),
                    },
                ));
            }
        };
        for item in items {
            let Value::String(url) = &item.value else {
                return Err(invalid(
                    &item.at,
                    ErrorKind::WrongType {
                        key: sec.full_key("ice_servers"),
                        expected: "an array of strings",
                        found: item.value.type_name(),
                    },
                ));
            };
            let ok = match url.split_once("://") {
                Some(("stun" | "turn" | "turns", rest)) => has_host(rest),
                _ => false,
            };
            if !ok {
                let suggestion = ["stun", "turn", "turns"].iter().find_map(|s| {
                    url.strip_prefix(s)
                        .and_then(|r| r.strip_prefix(':'))
                        .filter(|r| !r.starts_with('/') && !r.is_empty())
                        .map(|r| format!("{s}://{r}"))
                });
                return Err(invalid(
                    &item.at,
                    ErrorKind::InvalidValue {
                        key: sec.full_key("ice_servers"),
                        value: url.clone(),
                        expected: "stun://host:port, turn://user:pass@host:port or \
                                   turns://user:pass@host:port"
                            .to_owned(),
                        suggestion,
                    },
                ));
            }
            ice_servers.push(url.clone());
        }
    }
    let ice_addresses = ice_addresses(sec)?;
    Ok(RoomSettings {
        server: server.to_owned(),
        room: room.to_owned(),
        token,
        ice_servers,
        ice_addresses,
        role,
    })
}

/// `room.ice_addresses`: `"all"`, or an array of IP addresses; see
/// [`RoomSettings::ice_addresses`] for the default.
fn ice_addresses(sec: &Section<'_>) -> Result<Vec<String>, PresetError> {
    let expected = "\"all\" or an array of IP addresses, e.g. [\"192.168.1.20\"]";
    let Some(node) = sec.node("ice_addresses") else {
        return Ok(Vec::new());
    };
    let items: Vec<&super::doc::Node> = match &node.value {
        Value::String(s) if s == "all" => return Ok(Vec::new()),
        Value::String(_) => vec![node],
        Value::Array(items) if !items.is_empty() => items.iter().collect(),
        Value::Array(_) => {
            return Err(invalid(
                &node.at,
                ErrorKind::InvalidValue {
                    key: sec.full_key("ice_addresses"),
                    value: "[]".to_owned(),
                    expected: format!("{expected} (an empty list would gather nothing)"),
                    suggestion: Some("all".to_owned()),
                },
            ));
        }
        other => {
            return Err(invalid(
                &node.at,
                ErrorKind::WrongType {
                    key: sec.full_key("ice_addresses"),
                    expected: "a string or an array of strings",
                    found: other.type_name(),
                },
            ));
        }
    };
    let mut out = Vec::new();
    for item in items {
        let Value::String(addr) = &item.value else {
            return Err(invalid(
                &item.at,
                ErrorKind::WrongType {
                    key: sec.full_key("ice_addresses"),
                    expected: "an array of strings",
                    found: item.value.type_name(),
                },
            ));
        };
        if addr.parse::<std::net::IpAddr>().is_err() {
            return Err(invalid(
                &item.at,
                ErrorKind::InvalidValue {
                    key: sec.full_key("ice_addresses"),
                    value: addr.clone(),
                    expected: expected.to_owned(),
                    suggestion: None,
                },
            ));
        }
        out.push(addr.clone());
    }
    Ok(out)
}
