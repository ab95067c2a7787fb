//! The signalling wire protocol: versioned JSON, one message type per `type` tag.
//!
//! This is the single definition of every frame exchanged between the server
//! (`streamwire::server`, whose signalling hub speaks it) and the client
//! ([`crate::signalling::client`]). `docs/protocol.md` documents the same messages for
//! implementers in other languages.
//!
//! - this module: the vocabulary (grants, tracks, peers, payloads, error codes);
//! - [`ClientMsg`] / [`ServerMsg`]: the frames;
//! - [`decode_client`]: decoding with a diagnosis naming the type and field at fault;
//! - [`telemetry`]: the payloads of the telemetry messages (batches, records, feedback) and
//!   the splitting of a batch under the frame limit;
//! - [`whiteboard`]: board names and the y-protocols payload of the `whiteboard` messages.
//!
//! Frames the server sends after a successful `join`/`resume` that belong to the
//! session's reliable stream carry a per-recipient sequence number `n` (starting at 1).
//! The client acknowledges them with [`ClientMsg::Ack`]; after a reconnect it resumes
//! with the last `n` it processed and the server replays the rest, exactly once, in order.
//!
//! ```
//! use streamwire::signalling::protocol::{decode_client, ClientMsg};
//! let msg = decode_client(r#"{"type":"ack","n":7}"#).unwrap();
//! assert_eq!(msg, ClientMsg::Ack { n: 7 });
//! let err = decode_client(r#"{"type":"offer","to":"p1"}"#).unwrap_err();
//! assert_eq!(err.field.as_deref(), Some("sdp"));
//! ```

use serde::{Deserialize, Serialize};

mod decode;
pub mod media_test;
mod messages;
pub mod telemetry;
#[cfg(test)]
mod tests;
pub mod whiteboard;

pub use decode::{DecodeError, decode_client};
pub use messages::{CLIENT_TYPES, ClientMsg, RESERVED_TYPES, ServerMsg};

/// Protocol version spoken by this implementation; sent in `join`/`resume` as `v`.
pub const PROTOCOL_VERSION: u32 = 1;

/// Default maximum decoded size of a real-time message payload (64 KiB).
pub const DEFAULT_MAX_PAYLOAD: usize = 64 * 1024;

/// Deepest nesting of arrays and objects in a frame, the frame object itself being level 1
/// (what serde_json's recursion limit allows); deeper frames are `bad_json`.
pub const MAX_NESTING: usize = 127;

/// Longest room name, bytes.
pub const MAX_ROOM_LEN: usize = 64;

/// Check a room name: 1 to [`MAX_ROOM_LEN`] characters, each an ASCII letter, digit or one of
/// `-_.~:@` (safe in URLs, file names and logs). The error says what is wrong.
///
/// ```
/// use streamwire::signalling::protocol::validate_room;
/// assert!(validate_room("standup-2").is_ok());
/// assert!(validate_room("").is_err());
/// assert!(validate_room("a\u{0}b").unwrap_err().contains("U+0000"));
/// ```
pub fn validate_room(room: &str) -> Result<(), String> {
    if room.is_empty() {
        return Err("is empty".into());
    }
    if room.len() > MAX_ROOM_LEN {
        return Err(format!(
            "is {} bytes long, at most {MAX_ROOM_LEN} allowed",
            room.len()
        ));
    }
    if let Some((i, c)) = room
        .char_indices()
        .find(|(_, c)| !(c.is_ascii_alphanumeric() || "-_.~:@".contains(*c)))
    {
        return Err(format!(
            "has the character U+{:04X} at byte {i}; allowed are ASCII letters, digits and -_.~:@",
            c as u32
        ));
    }
    Ok(())
}

/// A peer id assigned by the server (opaque string, unique per server run).
pub type PeerId = String;

/// Permissions carried by a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Grant {
    /// May announce tracks (`publish` / `unpublish`).
    Publish,
    /// Sees other peers' published tracks (in `welcome`, `peer_joined`, `published`, `unpublished`).
    Subscribe,
    /// May send real-time messages.
    Message,
    /// May remove other peers from the room (`kick`); on the whiteboard: the presenter, who
    /// may change or delete anyone's content and import documents.
    Admin,
    /// May change the room's whiteboards (also implied by `publish`).
    Draw,
}

impl Grant {
    /// All grants, in a stable order.
    pub const ALL: [Grant; 5] = [
        Grant::Publish,
        Grant::Subscribe,
        Grant::Message,
        Grant::Admin,
        Grant::Draw,
    ];

    /// The wire name of the grant.
    pub fn as_str(self) -> &'static str {
        match self {
            Grant::Publish => "publish",
            Grant::Subscribe => "subscribe",
            Grant::Message => "message",
            Grant::Admin => "admin",
            Grant::Draw => "draw",
        }
    }
}

impl std::str::FromStr for Grant {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Grant::ALL
            .into_iter()
            .find(|g| g.as_str() == s)
            .ok_or_else(|| {
                format!("unknown grant `{s}` (expected publish, subscribe, message, admin or draw)")
            })
    }
}

/// Kind of a published track.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrackKind {
    /// An audio track.
    Audio,
    /// A video track.
    Video,
    /// A data channel.
    Data,
}

/// A track a peer announces it publishes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackInfo {
    /// Track id, unique per peer (e.g. the WebRTC `mid` or a stream label).
    pub id: String,
    /// Media kind.
    pub kind: TrackKind,
    /// Optional human-readable label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Video: the capture width in pixels, when known (an SFU maps a subscriber's rendered
    /// size to a simulcast layer with it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    /// Video: the capture height in pixels, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
}

/// How a room's media flows, announced in `welcome`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RoomTopology {
    /// Every member connects to every other member (the default).
    #[default]
    Mesh,
    /// Every member connects to the SFU only: one connection to the pseudo-peer
    /// [`SFU_PUBLISH`] to publish on (the member offers), one from [`SFU_SUBSCRIBE`] carrying
    /// every other member's media (the SFU offers).
    Sfu,
}

impl RoomTopology {
    /// `mesh` or `sfu`.
    pub fn as_str(self) -> &'static str {
        match self {
            RoomTopology::Mesh => "mesh",
            RoomTopology::Sfu => "sfu",
        }
    }
}

/// Largest `width`/`height` of an `sfu_view` frame.
pub const MAX_VIEW_PIXELS: u32 = 16_384;

/// Longest `mid` of an `sfu_view` frame, in bytes.
pub const MAX_MID_LEN: usize = 64;

/// Pseudo-peer of the SFU connection a member publishes on: the member sends its `offer` and
/// ICE candidates `to` it; the server relays the SFU's `answer` `from` it.
pub const SFU_PUBLISH: &str = "sfu-publish";

/// Pseudo-peer of the SFU connection that carries every other member's media to a member:
/// the server relays the SFU's `offer` (after an `sfu_streams` frame) `from` it; the member
/// sends its `answer` and ICE candidates `to` it.
pub const SFU_SUBSCRIBE: &str = "sfu-subscribe";

/// One stream of a member's [`SFU_SUBSCRIBE`] connection: which member's media an m-line
/// carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SfuStream {
    /// The m-line's `a=mid`.
    pub mid: String,
    /// The member whose media it carries.
    pub peer_id: PeerId,
    /// `audio` or `video`.
    pub kind: String,
}

/// A peer as seen by other peers in the room.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeerInfo {
    /// Server-assigned peer id.
    pub peer_id: PeerId,
    /// User id from the token (`sub`).
    pub user: String,
    /// Display name from the token.
    pub name: String,
    /// The peer's grants (from its token): a client offers media to it only with
    /// `subscribe`, and expects media from it only with `publish`.
    #[serde(default)]
    pub grants: Vec<Grant>,
    /// Published tracks (empty when the recipient lacks the `subscribe` grant).
    #[serde(default)]
    pub tracks: Vec<TrackInfo>,
    /// Free-form metadata set with `set_metadata`.
    #[serde(default)]
    pub metadata: serde_json::Value,
}

/// An ICE server entry for `RTCPeerConnection`/`webrtcbin` configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IceServer {
    /// `stun:` / `turn:` / `turns:` URLs.
    pub urls: Vec<String>,
    /// TURN username, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// TURN credential, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

/// Limits the server enforces, announced in `welcome`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LimitsInfo {
    /// Largest accepted WebSocket message, bytes.
    pub max_frame_bytes: usize,
    /// Largest real-time message payload (decoded), bytes.
    pub max_payload_bytes: usize,
    /// Sustained frames per second per connection.
    pub rate_per_sec: u32,
    /// Burst allowance, frames.
    pub burst: u32,
    /// Maximum peers per room.
    pub max_peers_per_room: usize,
}

/// A real-time message payload: text or binary (base64 on the wire).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Payload {
    /// UTF-8 text: `{"text":"hello"}`.
    Text(String),
    /// Bytes, standard base64 with padding on the wire: `{"binary":"AAEC"}`.
    Binary(#[serde(with = "b64")] Vec<u8>),
}

impl Payload {
    /// Decoded payload size in bytes.
    pub fn len(&self) -> usize {
        match self {
            Payload::Text(t) => t.len(),
            Payload::Binary(b) => b.len(),
        }
    }
    /// True when the payload is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

pub(crate) mod b64 {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(v))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        STANDARD
            .decode(s.as_bytes())
            .map_err(|e| serde::de::Error::custom(format!("invalid base64: {e}")))
    }
}

/// Why a peer left or a connection was closed by the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeaveReason {
    /// The peer sent `leave`.
    Left,
    /// The connection dropped and the resume grace period expired.
    Timeout,
    /// The same user joined again; the older connection was replaced.
    Replaced,
    /// An admin removed the peer.
    Kicked,
    /// The server is shutting down.
    Shutdown,
    /// The peer did not read its frames fast enough and its queue overflowed.
    SlowConsumer,
}

/// Delivery status of a real-time message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Accepted into every recipient's reliable, ordered stream.
    Delivered,
    /// Not delivered; `reason` says why.
    Failed,
}

/// Error codes carried by `error` frames, refused joins and failed deliveries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The frame is not valid JSON, or not a JSON object, or a binary WebSocket frame.
    BadJson,
    /// The `type` tag names no known message.
    UnknownType,
    /// A required field is missing (`field` names it).
    MissingField,
    /// A field has the wrong type or an invalid value (`field` names it).
    InvalidField,
    /// The `v` in `join`/`resume` is not supported.
    UnsupportedVersion,
    /// A message other than `join`/`resume` arrived before joining.
    NotJoined,
    /// `join`/`resume` arrived on an already joined connection.
    AlreadyJoined,
    /// `join` without a token (empty string).
    TokenMissing,
    /// The token's `exp` is in the past.
    TokenExpired,
    /// The token's signature does not verify with the server secret.
    TokenForged,
    /// The token is for another room than the one requested.
    TokenWrongRoom,
    /// The token is malformed or lacks required claims.
    TokenInvalid,
    /// The token lacks the grant this action needs.
    Forbidden,
    /// The addressed peer is not in the sender's room.
    UnknownPeer,
    /// The WebSocket message exceeds `max_frame_bytes`.
    FrameTooLarge,
    /// A message payload exceeds `max_payload_bytes`.
    PayloadTooLarge,
    /// The connection exceeded its frame rate; the frame was dropped.
    RateLimited,
    /// The room already holds `max_peers_per_room` peers.
    RoomFull,
    /// A `message` `seq` was not the sender's previous `seq` + 1.
    BadSequence,
    /// `resume` with an unknown or expired resume token.
    ResumeUnknown,
    /// `resume` asked for frames the server no longer holds.
    ResumeGap,
    /// This connection was replaced by a newer one of the same user.
    Replaced,
    /// The server is shutting down.
    Shutdown,
    /// An admin removed this peer.
    Kicked,
    /// `join` refused: an admin removed this user from the room and the ban has not expired.
    Banned,
    /// No frame arrived within the idle timeout.
    IdleTimeout,
    /// The peer's outgoing queue overflowed.
    SlowConsumer,
    /// The message type is reserved for a later protocol revision.
    NotImplemented,
    /// `media_test` refused: the server runs its `--max-media-tests` tests, or this user
    /// already runs one in this room.
    MediaTestFull,
    /// A server-side failure.
    Internal,
}

impl ErrorCode {
    /// The wire name (snake_case).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadJson => "bad_json",
            ErrorCode::UnknownType => "unknown_type",
            ErrorCode::MissingField => "missing_field",
            ErrorCode::InvalidField => "invalid_field",
            ErrorCode::UnsupportedVersion => "unsupported_version",
            ErrorCode::NotJoined => "not_joined",
            ErrorCode::AlreadyJoined => "already_joined",
            ErrorCode::TokenMissing => "token_missing",
            ErrorCode::TokenExpired => "token_expired",
            ErrorCode::TokenForged => "token_forged",
            ErrorCode::TokenWrongRoom => "token_wrong_room",
            ErrorCode::TokenInvalid => "token_invalid",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::UnknownPeer => "unknown_peer",
            ErrorCode::FrameTooLarge => "frame_too_large",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::RoomFull => "room_full",
            ErrorCode::BadSequence => "bad_sequence",
            ErrorCode::ResumeUnknown => "resume_unknown",
            ErrorCode::ResumeGap => "resume_gap",
            ErrorCode::Replaced => "replaced",
            ErrorCode::Shutdown => "shutdown",
            ErrorCode::Kicked => "kicked",
            ErrorCode::Banned => "banned",
            ErrorCode::IdleTimeout => "idle_timeout",
            ErrorCode::SlowConsumer => "slow_consumer",
            ErrorCode::NotImplemented => "not_implemented",
            ErrorCode::MediaTestFull => "media_test_full",
            ErrorCode::Internal => "internal",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
