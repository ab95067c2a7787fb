//! The frames: what a client sends ([`ClientMsg`]) and what the server sends ([`ServerMsg`]).

use serde::{Deserialize, Serialize};

use super::telemetry::{Batch, Feedback};
use super::{
    DeliveryStatus, ErrorCode, Grant, IceServer, LeaveReason, LimitsInfo, Payload, PeerId,
    PeerInfo, RoomTopology, SfuStream, TrackInfo,
};

/// Frames a client sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMsg {
    /// First frame of a new session.
    Join {
        /// Protocol version, must be [`PROTOCOL_VERSION`](super::PROTOCOL_VERSION).
        v: u32,
        /// Room to join; must match the token's `room` claim.
        room: String,
        /// HS256 JWT minted from the server secret.
        token: String,
        /// Initial metadata visible to other peers.
        #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
        metadata: serde_json::Value,
    },
    /// First frame of a media test connection, instead of `join` (the connection never
    /// joins the room; see [`media_test`](super::media_test)).
    MediaTest {
        /// Protocol version.
        v: u32,
        /// The room the token is for.
        room: String,
        /// HS256 JWT for that room (any grants).
        token: String,
        /// Echo test or network probe.
        test: super::media_test::MediaTestKind,
        /// How long the test runs, s (default
        /// [`DEFAULT_TEST_SECONDS`](super::media_test::DEFAULT_TEST_SECONDS), at most the
        /// server's `--media-test-max-seconds`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        seconds: Option<u32>,
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
    /// Remove a peer from the room (needs `admin`). Its user stays out of the room (joins are
    /// refused with `banned`) until its token expires, or for `ban_ms` when given.
    Kick {
        /// Peer to remove.
        peer_id: PeerId,
        /// How long the user is kept out, ms; `0` removes without a ban. Default: until the
        /// kicked peer's token expires.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ban_ms: Option<u64>,
    },
    /// Leave the room and end the session (no resume).
    Leave {},
    /// Application-level liveness probe; answered with `pong`.
    Ping {},
    /// A batch of telemetry records at the app's consent level; answered with
    /// `telemetry_ack`. Never sent at consent `none`.
    Telemetry {
        /// The batch.
        batch: Batch,
    },
    /// Optional end-user feedback about this session (`rating`, `comment` on the wire);
    /// answered with `feedback_ack`.
    Feedback(Feedback),
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
    /// One y-protocols message for a whiteboard of the room (see
    /// [`whiteboard`](super::whiteboard)). Changes need the `draw` or `publish` grant; a
    /// refused one is answered with an `error` naming the reason.
    Whiteboard {
        /// Optional per-sender sequence number shared with `message.seq`; when present the
        /// frame is accepted exactly once across resumes (see `resumed.last_seq`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        seq: Option<u64>,
        /// Board name ([`valid_board`](super::whiteboard::valid_board)).
        board: String,
        /// The y-protocols message, standard base64 on the wire.
        #[serde(with = "super::b64")]
        data: Vec<u8>,
    },
    /// In an SFU room: the size at which this client renders the video of m-line `mid` of its
    /// `sfu-subscribe` connection, in device pixels (0×0: not shown). The SFU forwards the
    /// smallest simulcast layer covering it. Ignored in a mesh room.
    SfuView {
        /// The m-line's `a=mid`, at most [`MAX_MID_LEN`](super::MAX_MID_LEN) bytes.
        mid: String,
        /// Rendered width, at most [`MAX_VIEW_PIXELS`](super::MAX_VIEW_PIXELS).
        width: u32,
        /// Rendered height, at most [`MAX_VIEW_PIXELS`](super::MAX_VIEW_PIXELS).
        height: u32,
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
            | ClientMsg::SetMetadata { seq, .. }
            | ClientMsg::Whiteboard { seq, .. } => *seq,
            _ => None,
        }
    }

    /// The `type` tag of this message.
    pub fn type_name(&self) -> &'static str {
        match self {
            ClientMsg::Join { .. } => "join",
            ClientMsg::MediaTest { .. } => "media_test",
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
            ClientMsg::Whiteboard { .. } => "whiteboard",
            ClientMsg::SfuView { .. } => "sfu_view",
        }
    }
}

/// Known client message types (for diagnostics).
pub const CLIENT_TYPES: &[&str] = &[
    "join",
    "media_test",
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
    "whiteboard",
    "sfu_view",
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
        /// How the room's media flows (`mesh` when absent).
        #[serde(default)]
        topology: RoomTopology,
    },
    /// Reply to a successful `resume`; replayed frames follow.
    Resumed {
        /// This peer's id (unchanged).
        peer_id: PeerId,
        /// Highest `message.seq` the server accepted from this peer.
        last_seq: u64,
        /// Number of frames about to be replayed.
        replay: u64,
        /// Fresh ICE servers (TURN credentials minted now), replacing those of `welcome`;
        /// empty (and omitted) when the server has no TURN secret.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        ice_servers: Vec<IceServer>,
    },
    /// Fresh ICE servers for a long session (TURN credentials re-minted before the previous
    /// ones expire), replacing those of `welcome`/`resumed`/the previous `ice_servers`.
    IceServers {
        /// Stream sequence number.
        #[serde(default, skip_serializing_if = "is_zero")]
        n: u64,
        /// The servers, as in `welcome`.
        ice_servers: Vec<IceServer>,
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
    /// The room moved to another topology (an `auto` room outgrew the mesh): close the
    /// connections of the old one and connect as the new one says.
    Topology {
        /// Stream sequence number.
        #[serde(default, skip_serializing_if = "is_zero")]
        n: u64,
        /// The new topology.
        topology: RoomTopology,
    },
    /// Which member's media each m-line of the next offer `from` `sfu-subscribe` carries
    /// (every active stream of that connection, not only the new ones).
    SfuStreams {
        /// Stream sequence number.
        #[serde(default, skip_serializing_if = "is_zero")]
        n: u64,
        /// The streams.
        streams: Vec<SfuStream>,
        /// The next offer opens a new subscribing connection: close the current one first
        /// (its tracks end). The SFU replaces a member's subscription rather than reuse the
        /// m-lines of media that went away, which `webrtcbin` 1.22 cannot take back.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        fresh: bool,
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
    /// Answer to a successful `media_test`: the test runs; offer to
    /// [`MEDIA_TEST_PEER`](super::media_test::MEDIA_TEST_PEER) next.
    MediaTestReady {
        /// The test.
        test: super::media_test::MediaTestKind,
        /// The server's id of this test (in its logs).
        test_id: String,
        /// How long the test runs from now, s (the test then ends by itself).
        seconds: u32,
        /// Echo: how long the server holds the media before sending it back, ms (0 for a
        /// probe).
        delay_ms: u32,
        /// How often `media_test_report` comes, ms.
        report_interval_ms: u32,
        /// ICE servers for the test's connection, as in `welcome`.
        ice_servers: Vec<IceServer>,
    },
    /// What the server measured (media tests), every `report_interval_ms`.
    MediaTestReport {
        /// The figures.
        #[serde(flatten)]
        report: super::media_test::ServerReport,
    },
    /// The media test is over; the server closes the connection next.
    MediaTestEnded {
        /// Why.
        reason: super::media_test::MediaTestEnd,
        /// Human-readable detail.
        message: String,
    },
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
        /// Whiteboard items (strokes, shapes, text) of the user removed.
        #[serde(default)]
        strokes: u64,
    },
    /// A y-protocols message of a whiteboard: a member's accepted change relayed, or the
    /// server's answer to this peer's sync step 1.
    Whiteboard {
        /// Stream sequence number.
        #[serde(default, skip_serializing_if = "is_zero")]
        n: u64,
        /// The member whose change this is; absent when the server sends it (sync).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from: Option<PeerId>,
        /// Board name.
        board: String,
        /// The y-protocols message, standard base64 on the wire.
        #[serde(with = "super::b64")]
        data: Vec<u8>,
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
            | ServerMsg::SfuStreams { n, .. }
            | ServerMsg::Topology { n, .. }
            | ServerMsg::Offer { n, .. }
            | ServerMsg::Answer { n, .. }
            | ServerMsg::Ice { n, .. }
            | ServerMsg::Message { n, .. }
            | ServerMsg::IceServers { n, .. }
            | ServerMsg::Delivery { n, .. }
            | ServerMsg::Whiteboard { n, .. } => Some(*n),
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
