//! The signalling wire protocol: versioned JSON, one message type per `type` tag.
//!
//! This is the single definition of every frame exchanged between the server
//! ([`crate::signalling::server`]) and the client ([`crate::signalling::client`]).
//! `docs/protocol.md` documents the same messages for implementers in other languages.
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

/// Protocol version spoken by this implementation; sent in `join`/`resume` as `v`.
pub const PROTOCOL_VERSION: u32 = 1;

/// Default maximum decoded size of a real-time message payload (64 KiB).
pub const DEFAULT_MAX_PAYLOAD: usize = 64 * 1024;

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
    /// May remove other peers from the room (`kick`).
    Admin,
}

impl Grant {
    /// All grants, in a stable order.
    pub const ALL: [Grant; 4] = [
        Grant::Publish,
        Grant::Subscribe,
        Grant::Message,
        Grant::Admin,
    ];

    /// The wire name of the grant.
    pub fn as_str(self) -> &'static str {
        match self {
            Grant::Publish => "publish",
            Grant::Subscribe => "subscribe",
            Grant::Message => "message",
            Grant::Admin => "admin",
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
                format!("unknown grant `{s}` (expected publish, subscribe, message or admin)")
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

mod b64 {
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
    /// No frame arrived within the idle timeout.
    IdleTimeout,
    /// The peer's outgoing queue overflowed.
    SlowConsumer,
    /// The message type is reserved for a later protocol revision.
    NotImplemented,
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
            ErrorCode::IdleTimeout => "idle_timeout",
            ErrorCode::SlowConsumer => "slow_consumer",
            ErrorCode::NotImplemented => "not_implemented",
            ErrorCode::Internal => "internal",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Frames a client sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMsg {
    /// First frame of a new session.
    Join {
        /// Protocol version, must be [`PROTOCOL_VERSION`].
        v: u32,
        /// Room to join; must match the token's `room` claim.
        room: String,
        /// HS256 JWT minted from the server secret.
        token: String,
        /// Initial metadata visible to other peers.
        #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
        metadata: serde_json::Value,
    },
    /// First frame of a reconnect within the grace period.
    Resume {
        /// Protocol version.
        v: u32,
        /// The `resume_token` from `welcome`.
        resume_token: String,
        /// Highest `n` the client has processed (0 if none).
        last_n: u64,
    },
    /// Cumulative acknowledgement of sequenced frames up to and including `n`.
    Ack {
        /// Highest processed `n`.
        n: u64,
    },
    /// SDP offer for one peer of the room.
    Offer {
        /// Optional per-sender sequence number shared with `message.seq`; when present the
        /// frame is accepted exactly once across resumes (see `resumed.last_seq`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        seq: Option<u64>,
        /// Recipient peer id.
        to: PeerId,
        /// SDP text.
        sdp: String,
    },
    /// SDP answer for one peer of the room.
    Answer {
        /// Optional per-sender sequence number shared with `message.seq`; when present the
        /// frame is accepted exactly once across resumes (see `resumed.last_seq`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        seq: Option<u64>,
        /// Recipient peer id.
        to: PeerId,
        /// SDP text.
        sdp: String,
    },
    /// Trickle ICE candidate for one peer of the room. An empty `candidate` means end of candidates.
    Ice {
        /// Optional per-sender sequence number shared with `message.seq`; when present the
        /// frame is accepted exactly once across resumes (see `resumed.last_seq`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        seq: Option<u64>,
        /// Recipient peer id.
        to: PeerId,
        /// `candidate:` line (without `a=`).
        candidate: String,
        /// m-line index the candidate belongs to.
        sdp_mline_index: u32,
        /// Media id, when known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sdp_mid: Option<String>,
    },
    /// Real-time message to the room (no `to`) or to one peer.
    Message {
        /// Per-sender sequence number: 1 for the first message of a session, then +1.
        seq: u64,
        /// Recipient peer id; absent for a room broadcast.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to: Option<PeerId>,
        /// Text or binary payload.
        payload: Payload,
    },
    /// Announce a published track.
    Publish {
        /// Optional per-sender sequence number shared with `message.seq`; when present the
        /// frame is accepted exactly once across resumes (see `resumed.last_seq`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        seq: Option<u64>,
        /// The track.
        track: TrackInfo,
    },
    /// Withdraw a published track.
    Unpublish {
        /// Optional per-sender sequence number shared with `message.seq`; when present the
        /// frame is accepted exactly once across resumes (see `resumed.last_seq`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        seq: Option<u64>,
        /// Id of the track.
        track_id: String,
    },
    /// Replace this peer's metadata.
    SetMetadata {
        /// Optional per-sender sequence number shared with `message.seq`; when present the
        /// frame is accepted exactly once across resumes (see `resumed.last_seq`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        seq: Option<u64>,
        /// Any JSON value.
        metadata: serde_json::Value,
    },
    /// Remove a peer from the room (needs `admin`).
    Kick {
        /// Peer to remove.
        peer_id: PeerId,
    },
    /// Leave the room and end the session (no resume).
    Leave {},
    /// Application-level liveness probe; answered with `pong`.
    Ping {},
    /// A batch of telemetry records at the app's consent level; answered with
    /// `telemetry_ack`. Never sent at consent `none`.
    Telemetry {
        /// The batch.
        batch: crate::telemetry::wire::Batch,
    },
    /// Optional end-user feedback about this session; answered with `feedback_ack`.
    Feedback {
        /// Rating 1 (bad) to 5 (excellent).
        rating: u8,
        /// Free-text comment.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        comment: Option<String>,
    },
    /// Everything the telemetry store holds about `user` (needs `admin`); answered with
    /// `privacy_export`.
    PrivacyExport {
        /// User identity (token subject).
        user: String,
    },
    /// Delete everything the telemetry store holds about `user` (needs `admin`); answered
    /// with `privacy_deleted`.
    PrivacyDelete {
        /// User identity (token subject).
        user: String,
    },
}

impl ClientMsg {
    /// The per-sender sequence number of a relayed frame, if it carries one.
    pub fn seq(&self) -> Option<u64> {
        match self {
            ClientMsg::Message { seq, .. } => Some(*seq),
            ClientMsg::Offer { seq, .. }
            | ClientMsg::Answer { seq, .. }
            | ClientMsg::Ice { seq, .. }
            | ClientMsg::Publish { seq, .. }
            | ClientMsg::Unpublish { seq, .. }
            | ClientMsg::SetMetadata { seq, .. } => *seq,
            _ => None,
        }
    }

    /// The `type` tag of this message.
    pub fn type_name(&self) -> &'static str {
        match self {
            ClientMsg::Join { .. } => "join",
            ClientMsg::Resume { .. } => "resume",
            ClientMsg::Ack { .. } => "ack",
            ClientMsg::Offer { .. } => "offer",
            ClientMsg::Answer { .. } => "answer",
            ClientMsg::Ice { .. } => "ice",
            ClientMsg::Message { .. } => "message",
            ClientMsg::Publish { .. } => "publish",
            ClientMsg::Unpublish { .. } => "unpublish",
            ClientMsg::SetMetadata { .. } => "set_metadata",
            ClientMsg::Kick { .. } => "kick",
            ClientMsg::Leave {} => "leave",
            ClientMsg::Ping {} => "ping",
            ClientMsg::Telemetry { .. } => "telemetry",
            ClientMsg::Feedback { .. } => "feedback",
            ClientMsg::PrivacyExport { .. } => "privacy_export",
            ClientMsg::PrivacyDelete { .. } => "privacy_delete",
        }
    }
}

/// Known client message types (for diagnostics).
pub const CLIENT_TYPES: &[&str] = &[
    "join",
    "resume",
    "ack",
    "offer",
    "answer",
    "ice",
    "message",
    "publish",
    "unpublish",
    "set_metadata",
    "kick",
    "leave",
    "ping",
    "telemetry",
    "feedback",
    "privacy_export",
    "privacy_delete",
];

/// Types reserved for later revisions; the server answers them with `not_implemented`
/// instead of `unknown_type`.
pub const RESERVED_TYPES: &[&str] = &[];

/// Frames the server sends.
///
/// Variants with an `n` field are part of the session's reliable stream; `n` is 0 (and
/// omitted on the wire) until the server stamps it for a particular recipient.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMsg {
    /// Reply to a successful `join`.
    Welcome {
        /// Protocol version.
        v: u32,
        /// This peer's id.
        peer_id: PeerId,
        /// The room.
        room: String,
        /// User id from the token.
        user: String,
        /// Display name from the token.
        name: String,
        /// Grants from the token.
        grants: Vec<Grant>,
        /// Secret for `resume`.
        resume_token: String,
        /// How long the session survives a dropped connection, ms.
        grace_ms: u64,
        /// Other peers currently in the room.
        peers: Vec<PeerInfo>,
        /// Peers this peer must send an SDP offer to (the newcomer offers; avoids glare).
        offer_to: Vec<PeerId>,
        /// ICE servers for the WebRTC layer (empty unless the server is configured with some).
        ice_servers: Vec<IceServer>,
        /// Limits in force.
        limits: LimitsInfo,
    },
    /// Reply to a successful `resume`; replayed frames follow.
    Resumed {
        /// This peer's id (unchanged).
        peer_id: PeerId,
        /// Highest `message.seq` the server accepted from this peer.
        last_seq: u64,
        /// Number of frames about to be replayed.
        replay: u64,
    },
    /// A peer joined the room.
    PeerJoined {
        /// Stream sequence number.
        #[serde(default, skip_serializing_if = "is_zero")]
        n: u64,
        /// The newcomer.
        peer: PeerInfo,
        /// True: the newcomer will send you an offer; do not offer to it.
        expect_offer: bool,
    },
    /// A peer left the room.
    PeerLeft {
        /// Stream sequence number.
        #[serde(default, skip_serializing_if = "is_zero")]
        n: u64,
        /// The peer.
        peer_id: PeerId,
        /// Why.
        reason: LeaveReason,
    },
    /// A peer published a track.
    Published {
        /// Stream sequence number.
        #[serde(default, skip_serializing_if = "is_zero")]
        n: u64,
        /// The publisher.
        peer_id: PeerId,
        /// The track.
        track: TrackInfo,
    },
    /// A peer withdrew a track.
    Unpublished {
        /// Stream sequence number.
        #[serde(default, skip_serializing_if = "is_zero")]
        n: u64,
        /// The publisher.
        peer_id: PeerId,
        /// Track id.
        track_id: String,
    },
    /// A peer changed its metadata.
    MetadataChanged {
        /// Stream sequence number.
        #[serde(default, skip_serializing_if = "is_zero")]
        n: u64,
        /// The peer.
        peer_id: PeerId,
        /// New metadata.
        metadata: serde_json::Value,
    },
    /// Relayed SDP offer.
    Offer {
        /// Stream sequence number.
        #[serde(default, skip_serializing_if = "is_zero")]
        n: u64,
        /// Sender.
        from: PeerId,
        /// SDP text.
        sdp: String,
    },
    /// Relayed SDP answer.
    Answer {
        /// Stream sequence number.
        #[serde(default, skip_serializing_if = "is_zero")]
        n: u64,
        /// Sender.
        from: PeerId,
        /// SDP text.
        sdp: String,
    },
    /// Relayed ICE candidate.
    Ice {
        /// Stream sequence number.
        #[serde(default, skip_serializing_if = "is_zero")]
        n: u64,
        /// Sender.
        from: PeerId,
        /// Candidate line; empty means end of candidates.
        candidate: String,
        /// m-line index.
        sdp_mline_index: u32,
        /// Media id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sdp_mid: Option<String>,
    },
    /// A real-time message from another peer.
    Message {
        /// Stream sequence number.
        #[serde(default, skip_serializing_if = "is_zero")]
        n: u64,
        /// Sender.
        from: PeerId,
        /// Sender's per-session sequence number.
        seq: u64,
        /// True when sent to you alone; false for a room broadcast.
        direct: bool,
        /// Payload.
        payload: Payload,
    },
    /// Result for a `message` this peer sent.
    Delivery {
        /// Stream sequence number.
        #[serde(default, skip_serializing_if = "is_zero")]
        n: u64,
        /// The message's `seq`.
        seq: u64,
        /// Delivered or failed.
        status: DeliveryStatus,
        /// Number of recipients it was delivered to.
        recipients: u32,
        /// Why it failed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<ErrorCode>,
    },
    /// Something was wrong with a frame, or a join/resume was refused. The connection stays
    /// open unless a `bye` follows.
    Error {
        /// Machine-readable code.
        code: ErrorCode,
        /// Human-readable explanation naming what is wrong.
        message: String,
        /// `type` of the offending client frame, when known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        in_type: Option<String>,
        /// Offending field, when known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        field: Option<String>,
    },
    /// The server is closing this connection; `reconnect` says whether joining again makes sense.
    Bye {
        /// Why.
        code: ErrorCode,
        /// Human-readable explanation.
        message: String,
        /// Whether the client should reconnect (possibly to another server).
        reconnect: bool,
    },
    /// Answer to `ping`.
    Pong {},
    /// Answer to `telemetry`: field values stored, and dropped as undisclosed or unconsented.
    TelemetryAck {
        /// Values stored.
        stored: u64,
        /// Values dropped.
        dropped: u64,
    },
    /// Answer to `feedback`: it was stored.
    FeedbackAck {},
    /// Answer to `privacy_export`.
    PrivacyExport {
        /// The user.
        user: String,
        /// Everything held about the user (see `streamwire privacy export`).
        data: serde_json::Value,
    },
    /// Answer to `privacy_delete`: rows removed; only an audit entry (action, time, row
    /// count) remains.
    PrivacyDeleted {
        /// The user.
        user: String,
        /// Rows removed from `records`.
        records: u64,
        /// Rows removed from `feedback`.
        feedback: u64,
        /// Rows removed from `sessions`.
        sessions: u64,
    },
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl ServerMsg {
    /// The stream sequence number, for frames of the reliable stream.
    pub fn n(&self) -> Option<u64> {
        match self {
            ServerMsg::PeerJoined { n, .. }
            | ServerMsg::PeerLeft { n, .. }
            | ServerMsg::Published { n, .. }
            | ServerMsg::Unpublished { n, .. }
            | ServerMsg::MetadataChanged { n, .. }
            | ServerMsg::Offer { n, .. }
            | ServerMsg::Answer { n, .. }
            | ServerMsg::Ice { n, .. }
            | ServerMsg::Message { n, .. }
            | ServerMsg::Delivery { n, .. } => Some(*n),
            _ => None,
        }
    }

    /// Convenience constructor for an error frame.
    pub fn error(code: ErrorCode, message: impl Into<String>) -> Self {
        ServerMsg::Error {
            code,
            message: message.into(),
            in_type: None,
            field: None,
        }
    }
}

/// A client frame that could not be decoded: names the message type and field when known.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct DecodeError {
    /// `bad_json`, `unknown_type`, `missing_field`, `invalid_field`, `not_implemented`.
    pub code: ErrorCode,
    /// What is wrong.
    pub message: String,
    /// The frame's `type`, when it has one.
    pub in_type: Option<String>,
    /// The offending field, when known.
    pub field: Option<String>,
}

impl DecodeError {
    /// The error frame to send back.
    pub fn to_server_msg(&self) -> ServerMsg {
        ServerMsg::Error {
            code: self.code,
            message: self.message.clone(),
            in_type: self.in_type.clone(),
            field: self.field.clone(),
        }
    }
}

/// Decode a client frame; on failure, diagnose which message type and field is wrong.
pub fn decode_client(text: &str) -> Result<ClientMsg, DecodeError> {
    match serde_json::from_str::<ClientMsg>(text) {
        Ok(m) => Ok(m),
        Err(first) => Err(diagnose(text, &first)),
    }
}

fn err(
    code: ErrorCode,
    message: String,
    in_type: Option<&str>,
    field: Option<&str>,
) -> DecodeError {
    DecodeError {
        code,
        message,
        in_type: in_type.map(str::to_owned),
        field: field.map(str::to_owned),
    }
}

fn missing_field_name(e: &serde_json::Error) -> Option<String> {
    let s = e.to_string();
    let rest = s.strip_prefix("missing field `")?;
    Some(rest.split('`').next()?.to_owned())
}

fn diagnose(text: &str, first: &serde_json::Error) -> DecodeError {
    let value: serde_json::Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            return err(
                ErrorCode::BadJson,
                format!("frame is not valid JSON: {e}"),
                None,
                None,
            );
        }
    };
    let Some(obj) = value.as_object() else {
        return err(
            ErrorCode::BadJson,
            "frame must be a JSON object".into(),
            None,
            None,
        );
    };
    let ty = match obj.get("type") {
        None => {
            return err(
                ErrorCode::MissingField,
                "frame has no `type` field".into(),
                None,
                Some("type"),
            );
        }
        Some(serde_json::Value::String(t)) => t.as_str(),
        Some(_) => {
            return err(
                ErrorCode::InvalidField,
                "`type` must be a string".into(),
                None,
                Some("type"),
            );
        }
    };
    if RESERVED_TYPES.contains(&ty) {
        return err(
            ErrorCode::NotImplemented,
            format!("message type `{ty}` is reserved and not implemented by this server"),
            Some(ty),
            None,
        );
    }
    if !CLIENT_TYPES.contains(&ty) {
        return err(
            ErrorCode::UnknownType,
            format!(
                "unknown message type `{ty}` (known: {})",
                CLIENT_TYPES.join(", ")
            ),
            Some(ty),
            None,
        );
    }
    if let Some(field) = missing_field_name(first) {
        return err(
            ErrorCode::MissingField,
            format!("`{ty}` is missing required field `{field}`"),
            Some(ty),
            Some(&field),
        );
    }
    // Find the culprit: drop one field at a time; the one whose removal turns the error into
    // "missing field `k`" (or makes it decode) is the field with the invalid value.
    for (k, _) in obj.iter().filter(|(k, _)| k.as_str() != "type").take(32) {
        let mut probe = obj.clone();
        probe.remove(k);
        match serde_json::from_value::<ClientMsg>(serde_json::Value::Object(probe)) {
            Ok(_) => {
                return err(
                    ErrorCode::InvalidField,
                    format!("`{ty}` field `{k}` is invalid: {first}"),
                    Some(ty),
                    Some(k),
                );
            }
            Err(e) if missing_field_name(&e).as_deref() == Some(k.as_str()) => {
                return err(
                    ErrorCode::InvalidField,
                    format!("`{ty}` field `{k}` is invalid: {first}"),
                    Some(ty),
                    Some(k),
                );
            }
            Err(_) => {}
        }
    }
    err(
        ErrorCode::InvalidField,
        format!("`{ty}` is invalid: {first}"),
        Some(ty),
        None,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_diagnostics() {
        let m = ClientMsg::Message {
            seq: 1,
            to: None,
            payload: Payload::Binary(vec![0, 1, 2, 255]),
        };
        let s = serde_json::to_string(&m).unwrap();
        assert_eq!(
            s,
            r#"{"type":"message","seq":1,"payload":{"binary":"AAEC/w=="}}"#
        );
        assert_eq!(decode_client(&s).unwrap(), m);

        let e = decode_client("{nope").unwrap_err();
        assert_eq!(e.code, ErrorCode::BadJson);
        let e = decode_client("[1]").unwrap_err();
        assert_eq!(e.code, ErrorCode::BadJson);
        let e = decode_client(r#"{"to":"x"}"#).unwrap_err();
        assert_eq!(
            (e.code, e.field.as_deref()),
            (ErrorCode::MissingField, Some("type"))
        );
        let e = decode_client(r#"{"type":"dance"}"#).unwrap_err();
        assert_eq!(
            (e.code, e.in_type.as_deref()),
            (ErrorCode::UnknownType, Some("dance"))
        );
        let e = decode_client(r#"{"type":"telemetry"}"#).unwrap_err();
        assert_eq!(
            (e.code, e.field.as_deref()),
            (ErrorCode::MissingField, Some("batch"))
        );
        let e = decode_client(r#"{"type":"feedback","rating":"great"}"#).unwrap_err();
        assert_eq!(
            (e.code, e.field.as_deref()),
            (ErrorCode::InvalidField, Some("rating"))
        );
        let e =
            decode_client(r#"{"type":"ice","to":"a","candidate":"c","sdp_mline_index":"zero"}"#)
                .unwrap_err();
        assert_eq!(
            (e.code, e.in_type.as_deref(), e.field.as_deref()),
            (
                ErrorCode::InvalidField,
                Some("ice"),
                Some("sdp_mline_index")
            )
        );
        let e =
            decode_client(r#"{"type":"message","seq":1,"payload":{"binary":"!!"}}"#).unwrap_err();
        assert_eq!(
            (e.code, e.field.as_deref()),
            (ErrorCode::InvalidField, Some("payload"))
        );
        let e = decode_client(r#"{"type":"ack"}"#).unwrap_err();
        assert_eq!(
            (e.code, e.field.as_deref()),
            (ErrorCode::MissingField, Some("n"))
        );
    }

    #[test]
    fn server_n_is_omitted_when_zero() {
        let m = ServerMsg::PeerLeft {
            n: 0,
            peer_id: "a".into(),
            reason: LeaveReason::Left,
        };
        let s = serde_json::to_string(&m).unwrap();
        assert_eq!(s, r#"{"type":"peer_left","peer_id":"a","reason":"left"}"#);
        let stamped = format!("{{\"n\":5,{}", &s[1..]);
        let back: ServerMsg = serde_json::from_str(&stamped).unwrap();
        assert_eq!(back.n(), Some(5));
    }
}
