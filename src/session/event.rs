//! What a [`Session`](super::Session) reports: [`SessionEvent`], [`Via`] and [`SessionError`].

use tokio::sync::mpsc::UnboundedSender;

use crate::signalling::client::{ClientError, Event, SignallingState};
use crate::signalling::protocol::{Payload, PeerId, TrackInfo};
use crate::webrtc::peer::ConnectionState;
use crate::webrtc::stats::StatsEvent;
use crate::webrtc::subscriber::{MemberLevel, SubscriberEvent};
use crate::webrtc::{MediaKind, WebrtcError};

/// How a real-time message arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Via {
    /// Through the signalling server (reliable, resumable).
    Signalling,
    /// Over the WebRTC data channel of the pair.
    DataChannel,
}

/// Events of a [`Session`](super::Session).
#[derive(Debug, Clone)]
pub enum SessionEvent {
    /// Joined the room (also after a fresh re-join with a new id; all peers were rebuilt).
    Joined {
        /// This peer's id.
        peer_id: PeerId,
    },
    /// The signalling connection resumed after a drop; peers and media were kept.
    Resumed,
    /// Signalling connection state.
    Signalling(SignallingState),
    /// A remote peer is now connected to this session's mesh (present at join or joined later).
    PeerJoined {
        /// Its id.
        peer_id: PeerId,
        /// Its user id.
        user: String,
    },
    /// A remote peer left; its peer connection is closed.
    PeerLeft {
        /// Its id.
        peer_id: PeerId,
    },
    /// A peer announced a track through signalling.
    TrackPublished {
        /// Publisher.
        peer_id: PeerId,
        /// Track.
        track: TrackInfo,
    },
    /// A peer withdrew an announced track.
    TrackUnpublished {
        /// Publisher.
        peer_id: PeerId,
        /// Track id.
        track_id: String,
    },
    /// Media of a remote track started arriving.
    TrackAdded {
        /// Sender.
        peer_id: PeerId,
        /// Kind.
        kind: MediaKind,
        /// RTP encoding name.
        codec: String,
    },
    /// A remote track ended (its peer left or the session ended).
    TrackRemoved {
        /// Sender.
        peer_id: PeerId,
        /// Kind.
        kind: MediaKind,
    },
    /// Receive-side event (decoded frames, first audio, unsupported track). The subscriber's
    /// audio level and active speaker events come as [`SessionEvent::AudioLevels`] and
    /// [`SessionEvent::ActiveSpeakerChanged`] instead.
    Receive(SubscriberEvent),
    /// The audio level of every member whose audio this session receives, at most one event
    /// per [`LEVEL_EVENT_INTERVAL`](crate::webrtc::audio_level::LEVEL_EVENT_INTERVAL) (250 ms).
    AudioLevels {
        /// One entry per member (dBov: 0 loudest, 127 silence).
        levels: Vec<MemberLevel>,
    },
    /// Another member became the active speaker: loudest by
    /// [`ACTIVE_SPEAKER_MARGIN_DB`](crate::webrtc::audio_level::ACTIVE_SPEAKER_MARGIN_DB) for
    /// [`ACTIVE_SPEAKER_HOLD`](crate::webrtc::audio_level::ACTIVE_SPEAKER_HOLD); `None` when
    /// the active speaker's audio ended.
    ActiveSpeakerChanged {
        /// The new active speaker.
        peer: Option<PeerId>,
    },
    /// The server's answer to a telemetry, feedback or privacy request the app sent through
    /// [`Session::client`](super::Session::client): [`Event::TelemetryAck`],
    /// [`Event::FeedbackAck`], [`Event::PrivacyExport`] or [`Event::PrivacyDeleted`].
    ServiceReply(Event),
    /// Peer connection state.
    Connection {
        /// Remote peer.
        peer_id: PeerId,
        /// New state.
        state: ConnectionState,
    },
    /// The path of the connection to a peer was lost, is being recovered, or recovered
    /// (see [`Recovery`](super::Recovery)).
    Recovery {
        /// Remote peer.
        peer_id: PeerId,
        /// What happened.
        recovery: super::recovery::Recovery,
    },
    /// The data channel to a peer is open.
    DataChannelOpen {
        /// Remote peer.
        peer_id: PeerId,
    },
    /// Per-peer statistics, every [`STATS_INTERVAL`](crate::webrtc::stats::STATS_INTERVAL).
    Stats(StatsEvent),
    /// A real-time message.
    Message {
        /// Sender.
        from: PeerId,
        /// Path it took.
        via: Via,
        /// Content.
        payload: Payload,
    },
    /// Something went wrong with one peer or message; the session continues.
    Error {
        /// What was being done.
        context: String,
        /// What went wrong.
        detail: String,
    },
}

/// Errors of the session layer.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The signalling client failed (refused join, connection, closed).
    #[error("signalling: {0}")]
    Signalling(#[from] ClientError),
    /// The media engine failed.
    #[error("media: {0}")]
    Media(#[from] WebrtcError),
    /// An ICE server URL from the join reply or the configuration is unusable.
    #[error("ICE server `{url}`: {detail}")]
    IceServer {
        /// The URL.
        url: String,
        /// What is wrong.
        detail: String,
    },
    /// No open data channel to the addressed peer(s).
    #[error("no open data channel to {0}")]
    NoDataChannel(String),
    /// [`Session::publish`](super::Session::publish) while already publishing,
    /// [`Session::unpublish`](super::Session::unpublish) with nothing published, or either
    /// after [`Session::leave`](super::Session::leave).
    #[error("publish: {0}")]
    Publishing(String),
    /// A whiteboard could not be opened.
    #[error("whiteboard: {0}")]
    Whiteboard(String),
}

/// The application's event channel, as the session's parts use it.
#[derive(Debug, Clone)]
pub(crate) struct Emitter(UnboundedSender<SessionEvent>);

impl Emitter {
    pub(crate) fn new(tx: UnboundedSender<SessionEvent>) -> Self {
        Emitter(tx)
    }

    /// Hand `ev` to the application (dropped if it no longer listens).
    pub(crate) fn emit(&self, ev: SessionEvent) {
        let _ = self.0.send(ev);
    }

    /// Log and report a problem with one peer or message; the session continues.
    pub(crate) fn error(&self, context: String, detail: String) {
        tracing::warn!(%context, %detail, "session");
        self.emit(SessionEvent::Error { context, detail });
    }

    /// The raw sender (for the telemetry forwarder).
    pub(crate) fn sender(&self) -> UnboundedSender<SessionEvent> {
        self.0.clone()
    }
}
