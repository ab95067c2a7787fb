//! The seam between the signalling hub and the services the server composes beside it.
//!
//! The hub speaks the protocol, enforces grants and knows rooms and sessions; it stores
//! nothing. Requests that need a service (telemetry, feedback, the privacy operations and the
//! whiteboards) go through a [`Service`] the server hands to the hub, which answers each with
//! the reply frame (whiteboard messages: with the frames for the caller and the frame to relay
//! to the rest of the room). Without a service the hub answers them with `not_implemented`.
//! A service that must reach a room on its own (a document imported over HTTP, a privacy
//! deletion) does so through the [`RoomRelay`] the hub gives it.

use std::net::IpAddr;

use futures::future::BoxFuture;

use super::protocol::telemetry::{Batch, Feedback};
use super::protocol::{ErrorCode, ServerMsg};

/// Who sent a request: the joined session's room, peer id, token subject and display name, and
/// address.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    /// Room name.
    pub room: String,
    /// Server-assigned peer id (also the session id of the telemetry store).
    pub peer: String,
    /// The token's user identity (`sub`).
    pub user: String,
    /// The token's display name (`name`).
    pub name: String,
    /// The connection's remote address.
    pub addr: IpAddr,
}

/// A request the hub passes on. Grants are already checked (the privacy operations need
/// `admin`).
#[derive(Debug, Clone)]
pub(crate) enum Request {
    /// `telemetry`: store a batch.
    Telemetry(Batch),
    /// `feedback`: store the user's feedback.
    Feedback(Feedback),
    /// `privacy_export`: everything held about `user`.
    PrivacyExport {
        /// User identity.
        user: String,
    },
    /// `privacy_delete`: delete everything held about `user`.
    PrivacyDelete {
        /// User identity.
        user: String,
    },
}

/// Why a service refused or failed a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ServiceError {
    /// Part of the request is invalid; answered with `invalid_field` naming `what`, the
    /// dotted path of the value in the frame, as the field.
    #[error("{what}: {reason}")]
    Invalid {
        /// `batch`, `records[3].ts_ms`, `feedback.rating`, ...
        what: String,
        /// What is wrong.
        reason: String,
    },
    /// The service failed (already logged by the service); answered with `internal`.
    #[error("{0}")]
    Failed(String),
    /// The request is refused with `code` (`forbidden`, `not_implemented`, ...); `reason`
    /// names why, and `field` the offending field when there is one.
    #[error("{code}: {reason}")]
    Refused {
        /// Error code of the answer.
        code: ErrorCode,
        /// What is wrong.
        reason: String,
        /// Offending field.
        field: Option<&'static str>,
    },
}

/// A member's whiteboard message, with what the hub knows of the member's grants.
#[derive(Debug, Clone)]
pub(crate) struct WhiteboardRequest {
    /// Board name (already checked by the hub).
    pub board: String,
    /// One y-protocols message.
    pub data: Vec<u8>,
    /// The token has `draw` or `publish`.
    pub can_draw: bool,
    /// The token has `admin` (the presenter).
    pub admin: bool,
}

/// What a whiteboard message produced.
#[derive(Debug, Clone, Default)]
pub(crate) struct WhiteboardOutcome {
    /// Frames for the caller's reliable stream (the answers to its sync step 1).
    pub reply: Vec<ServerMsg>,
    /// A frame for every other member of the room (an accepted change, an awareness update).
    pub relay: Option<ServerMsg>,
}

/// How a service reaches the members of a room without a request of theirs.
pub(crate) trait RoomRelay: Send + Sync + 'static {
    /// Append `frame` to the reliable stream of every member of `room`; returns how many.
    fn to_room(&self, room: &str, frame: &ServerMsg) -> u32;
}

/// Answers the requests the hub does not handle itself.
pub(crate) trait Service: Send + Sync + 'static {
    /// Handle one request and return the reply frame for the caller.
    fn call(
        &self,
        from: Caller,
        request: Request,
    ) -> BoxFuture<'static, Result<ServerMsg, ServiceError>>;

    /// Handle one whiteboard message of a member.
    fn whiteboard(
        &self,
        from: Caller,
        request: WhiteboardRequest,
    ) -> BoxFuture<'static, Result<WhiteboardOutcome, ServiceError>>;

    /// The hub's way to reach rooms; given once, when the hub is built.
    fn attach_relay(&self, relay: std::sync::Weak<dyn RoomRelay>);

    /// The last member left `room` (the service may drop what it holds in memory for it).
    fn room_closed(&self, room: &str);
}

/// Mints per-peer ICE server credentials (TURN with time-limited credentials; the server's
/// `server::turn::TurnConfig`). The hub adds them to `welcome`, mints fresh ones for
/// `resumed`, and pushes an `ice_servers` frame to every live session each
/// [`IceMinter::refresh_every`].
pub(crate) trait IceMinter: Send + Sync + std::fmt::Debug {
    /// Credentials for `peer_id`, valid from now.
    fn mint_for(&self, peer_id: &str) -> super::protocol::IceServer;
    /// How often a live session gets fresh credentials.
    fn refresh_every(&self) -> std::time::Duration;
}

/// Pushes a frame into one session's reliable stream; false when the session has ended (or
/// just ended because its queue overflowed).
pub(crate) type Outbox = std::sync::Arc<dyn Fn(ServerMsg) -> bool + Send + Sync>;

/// A member of a room whose media goes through the SFU.
pub(crate) struct SfuMember {
    /// Room name.
    pub room: String,
    /// Server-assigned peer id.
    pub peer_id: super::protocol::PeerId,
    /// The token's grants: only `publish` publishes, only `subscribe` subscribes.
    pub grants: Vec<super::protocol::Grant>,
    /// The member's reliable stream.
    pub outbox: Outbox,
    /// The tracks it announced so far (a room moving to the SFU has members publishing).
    pub tracks: Vec<super::protocol::TrackInfo>,
}

/// A frame a client sent to one of the server's pseudo-peers: `sfu-publish`/`sfu-subscribe`
/// (the SFU) or `media-test` (the media test peer).
#[derive(Debug, Clone)]
pub(crate) enum PseudoPeerSignal {
    /// `offer` (to `sfu-publish`).
    Offer(String),
    /// `answer` (to `sfu-subscribe`).
    Answer(String),
    /// `ice`; an empty candidate is the end of candidates.
    Ice {
        /// Candidate line.
        candidate: String,
        /// m-line index.
        mline: u32,
    },
}

/// The media plane of rooms that run through an SFU (the server's `server::sfu`). The hub
/// tells it who joins and leaves and hands it the frames addressed to the pseudo-peers
/// `sfu-publish`/`sfu-subscribe`; it answers through each member's [`Outbox`].
pub(crate) trait Sfu: Send + Sync + 'static {
    /// The topology of `room`, a mesh so far, once it has `members` members (the newcomer
    /// included); `sfu` moves it to the SFU for the rest of its life.
    fn topology(&self, room: &str, members: usize) -> super::protocol::RoomTopology;
    /// A member joined a room whose topology is `sfu`.
    fn joined(&self, member: SfuMember);
    /// A member of an `sfu` room left.
    fn left(&self, room: &str, peer_id: &str);
    /// A member of an `sfu` room announces `tracks` now (after a `publish` or `unpublish`).
    fn tracks(&self, room: &str, peer_id: &str, tracks: Vec<super::protocol::TrackInfo>);
    /// A member of an `sfu` room renders its subscription's m-line `mid` at
    /// `width`×`height` (`sfu_view`).
    fn view(&self, room: &str, peer_id: &str, mid: &str, width: u32, height: u32);
    /// `peer_id` of `room` sent `signal` to the pseudo-peer `to`. Resolves once the SFU took
    /// it (an offer: once the answer is in the member's stream).
    fn signal(
        &self,
        room: &str,
        peer_id: &str,
        to: &str,
        signal: PseudoPeerSignal,
    ) -> BoxFuture<'static, Result<(), ServiceError>>;
}

/// A media test a client asked for (the hub checked the token, and ends the test after its
/// `seconds`, within [`MediaTests::max_seconds`], by dropping its [`MediaTestRun`]).
#[derive(Debug, Clone)]
pub(crate) struct MediaTestRequest {
    /// The test's id (the server's unique peer id form).
    pub id: String,
    /// Who asks: the token's room and user; `peer` is the test's id (the connection never
    /// joins).
    pub from: Caller,
    /// The ICE servers of the test's connection, as the client gets them in
    /// `media_test_ready` (TURN credentials minted for the test): the media test peer uses
    /// them too.
    pub ice_servers: Vec<super::protocol::IceServer>,
    /// Echo or probe.
    pub test: super::protocol::media_test::MediaTestKind,
}

/// One running media test; dropping it stops the test and frees its place.
pub(crate) trait MediaTestRun: Send + Sync {
    /// The server's id of the test.
    fn id(&self) -> &str;
    /// Echo: how long the media is held, ms; 0 for a probe.
    fn delay_ms(&self) -> u32;
    /// The client's `offer` or `ice` to the media test peer.
    fn signal(&self, signal: PseudoPeerSignal) -> Result<(), ServiceError>;
}

/// The server's media test peer (`server::media_test`): echo tests and network probes.
pub(crate) trait MediaTests: Send + Sync + 'static {
    /// The longest test it runs, s.
    fn max_seconds(&self) -> u32;
    /// Start a test. Frames for the client (`answer`, `ice`, `media_test_report`,
    /// `media_test_ended`) go to `to_client`; after `media_test_ended` nothing more comes.
    /// Refused with [`ServiceError::Refused`] `media_test_full` at the cap.
    fn start(
        &self,
        request: MediaTestRequest,
        to_client: tokio::sync::mpsc::Sender<ServerMsg>,
    ) -> Result<Box<dyn MediaTestRun>, ServiceError>;
}
