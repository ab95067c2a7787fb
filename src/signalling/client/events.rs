//! What the client tells its application: the connection state, the server's `welcome`,
//! delivery results and the typed [`Event`] stream.

use std::time::Duration;

use tokio::sync::mpsc;

use super::super::protocol::{
    DeliveryStatus, ErrorCode, Grant, IceServer, LeaveReason, LimitsInfo, Payload, PeerId,
    PeerInfo, RoomTopology, SfuStream, TrackInfo,
};

/// State of the connection to the signalling server, surfaced as [`Event::State`] and through
/// [`Client::state`]. (A WebRTC peer connection's state is a different concept:
/// `webrtc::peer::ConnectionState`.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignallingState {
    /// First connection attempt in progress.
    Connecting,
    /// Joined (or resumed) and exchanging frames.
    Connected,
    /// Connection lost; retrying (attempt number, from 1).
    Reconnecting {
        /// Attempt number.
        attempt: u32,
    },
    /// Gave up or was refused; no more reconnects.
    Failed {
        /// Why.
        reason: String,
    },
    /// Closed by [`Client::leave`].
    Closed,
}

/// The server's `welcome`, kept by the client.
#[derive(Debug, Clone, PartialEq)]
pub struct Welcome {
    /// This peer's id.
    pub peer_id: PeerId,
    /// Room.
    pub room: String,
    /// User id.
    pub user: String,
    /// Display name.
    pub name: String,
    /// Grants.
    pub grants: Vec<Grant>,
    /// Other peers present at join time.
    pub peers: Vec<PeerInfo>,
    /// Peers to send offers to.
    pub offer_to: Vec<PeerId>,
    /// ICE servers for the WebRTC layer.
    pub ice_servers: Vec<IceServer>,
    /// Limits in force.
    pub limits: LimitsInfo,
    /// Resume grace period.
    pub grace: Duration,
    /// How the room's media flows.
    pub topology: RoomTopology,
}

/// Result of a real-time message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The message's per-sender sequence number.
    pub seq: u64,
    /// Delivered or failed.
    pub status: DeliveryStatus,
    /// Recipients reached.
    pub recipients: u32,
    /// Failure reason.
    pub reason: Option<ErrorCode>,
}

/// Typed events.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// Connection state changed.
    State(SignallingState),
    /// A session started (first join, or a fresh join after the old session was lost:
    /// the peer id changed and all peer connections must be rebuilt).
    Joined(Box<Welcome>),
    /// The session resumed after a reconnect; missed frames follow, exactly once, in order.
    Resumed {
        /// Frames the server is replaying.
        replayed: u64,
    },
    /// Fresh ICE servers (re-minted TURN credentials) replace those of the welcome: sent by
    /// the server on resume and before the previous credentials expire.
    /// [`Client::welcome`] has them too.
    IceServers {
        /// The servers.
        ice_servers: Vec<IceServer>,
    },
    /// A peer joined.
    PeerJoined {
        /// The newcomer.
        peer: PeerInfo,
        /// It will send you an offer.
        expect_offer: bool,
    },
    /// A peer left.
    PeerLeft {
        /// Peer.
        peer_id: PeerId,
        /// Why.
        reason: LeaveReason,
    },
    /// A peer published a track.
    Published {
        /// Publisher.
        peer_id: PeerId,
        /// Track.
        track: TrackInfo,
    },
    /// A peer withdrew a track.
    Unpublished {
        /// Publisher.
        peer_id: PeerId,
        /// Track id.
        track_id: String,
    },
    /// A peer's metadata changed.
    MetadataChanged {
        /// Peer.
        peer_id: PeerId,
        /// New metadata.
        metadata: serde_json::Value,
    },
    /// The room moved to another topology (an `auto` room outgrew the mesh).
    Topology(RoomTopology),
    /// Which member's media each m-line of the next offer from
    /// [`SFU_SUBSCRIBE`](crate::signalling::protocol::SFU_SUBSCRIBE) carries.
    SfuStreams {
        /// The streams.
        streams: Vec<SfuStream>,
        /// The offer opens a new subscribing connection (close the current one first).
        fresh: bool,
    },
    /// SDP offer from a peer.
    Offer {
        /// Sender.
        from: PeerId,
        /// SDP.
        sdp: String,
    },
    /// SDP answer from a peer.
    Answer {
        /// Sender.
        from: PeerId,
        /// SDP.
        sdp: String,
    },
    /// ICE candidate from a peer.
    Ice {
        /// Sender.
        from: PeerId,
        /// Candidate (empty: end of candidates).
        candidate: String,
        /// m-line index.
        sdp_mline_index: u32,
        /// Media id.
        sdp_mid: Option<String>,
    },
    /// Real-time message.
    Message {
        /// Sender.
        from: PeerId,
        /// Sender's sequence number.
        seq: u64,
        /// Sent to this peer alone.
        direct: bool,
        /// Payload.
        payload: Payload,
    },
    /// The server stored a telemetry batch.
    TelemetryAck {
        /// Field values stored.
        stored: u64,
        /// Field values dropped (undisclosed or above the batch's consent).
        dropped: u64,
    },
    /// The server stored the user's feedback.
    FeedbackAck,
    /// Answer to [`Client::privacy_export`].
    PrivacyExport {
        /// The user.
        user: String,
        /// Everything held about the user.
        data: serde_json::Value,
    },
    /// Answer to [`Client::privacy_delete`].
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
        strokes: u64,
    },
    /// A whiteboard message (y-protocols): a member's change, an awareness update, or the
    /// server's sync answer (`from: None`).
    Whiteboard {
        /// The member it comes from; `None`: the server.
        from: Option<PeerId>,
        /// Board name.
        board: String,
        /// The y-protocols message.
        data: Vec<u8>,
    },
    /// The server reported a problem with a frame this client sent.
    ServerError {
        /// Code.
        code: ErrorCode,
        /// Explanation.
        message: String,
        /// Offending message type.
        in_type: Option<String>,
        /// Offending field.
        field: Option<String>,
    },
}

/// Receiver of [`Event`]s.
pub struct Events(pub(super) mpsc::Receiver<Event>);

impl Events {
    /// Next event; `None` once the client has ended.
    pub async fn recv(&mut self) -> Option<Event> {
        self.0.recv().await
    }

    /// The next event if one is queued, without waiting.
    pub fn try_recv(&mut self) -> Option<Event> {
        self.0.try_recv().ok()
    }
}

impl futures::Stream for Events {
    type Item = Event;
    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Event>> {
        self.0.poll_recv(cx)
    }
}
