//! What a [`Peer`](super::Peer) exchanges with its surroundings: signalling messages out
//! ([`SignalOut`]) and in ([`SignalIn`]), its events ([`PeerEvent`], [`ConnectionState`]) and the
//! channels that carry them ([`PeerIo`]).

use gst_webrtc::WebRTCPeerConnectionState;
use tokio::sync::mpsc::UnboundedReceiver;

use crate::webrtc::MediaKind;

/// Signalling message produced by a [`Peer`](super::Peer), to be carried to the remote peer.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum SignalOut {
    /// SDP offer text.
    Offer {
        /// The SDP.
        sdp: String,
    },
    /// SDP answer text.
    Answer {
        /// The SDP.
        sdp: String,
    },
    /// A trickled local ICE candidate.
    Ice {
        /// m-line index the candidate belongs to.
        mline: u32,
        /// `candidate:` attribute text.
        candidate: String,
    },
}

/// Signalling message received from the remote peer, applied with [`Peer::apply`](super::Peer::apply).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum SignalIn {
    /// The remote offer.
    Offer {
        /// The SDP.
        sdp: String,
    },
    /// The remote answer.
    Answer {
        /// The SDP.
        sdp: String,
    },
    /// A remote ICE candidate.
    Ice {
        /// m-line index.
        mline: u32,
        /// `candidate:` attribute text.
        candidate: String,
    },
}

impl From<SignalOut> for SignalIn {
    fn from(s: SignalOut) -> Self {
        match s {
            SignalOut::Offer { sdp } => SignalIn::Offer { sdp },
            SignalOut::Answer { sdp } => SignalIn::Answer { sdp },
            SignalOut::Ice { mline, candidate } => SignalIn::Ice { mline, candidate },
        }
    }
}

/// Peer connection state (mirrors `RTCPeerConnectionState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConnectionState {
    /// Nothing happened yet.
    New,
    /// ICE/DTLS in progress.
    Connecting,
    /// Media can flow.
    Connected,
    /// Connectivity lost, may recover.
    Disconnected,
    /// Failed for good.
    Failed,
    /// Closed locally.
    Closed,
}

impl From<WebRTCPeerConnectionState> for ConnectionState {
    fn from(s: WebRTCPeerConnectionState) -> Self {
        match s {
            WebRTCPeerConnectionState::Connecting => ConnectionState::Connecting,
            WebRTCPeerConnectionState::Connected => ConnectionState::Connected,
            WebRTCPeerConnectionState::Disconnected => ConnectionState::Disconnected,
            WebRTCPeerConnectionState::Failed => ConnectionState::Failed,
            WebRTCPeerConnectionState::Closed => ConnectionState::Closed,
            _ => ConnectionState::New,
        }
    }
}

/// Events of a [`Peer`](super::Peer).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum PeerEvent {
    /// The connection state changed.
    ConnectionState {
        /// Remote peer id.
        peer: String,
        /// New state.
        state: ConnectionState,
    },
    /// The congestion controller's send-rate estimate towards this peer changed.
    EstimatedBitrate {
        /// Remote peer id.
        peer: String,
        /// Estimate in bit/s (all media to this peer).
        bps: u32,
    },
    /// The remote side stopped sending on an m-line it sent on before (its track was
    /// unpublished: the m-line became `inactive` or `recvonly` in a renegotiation).
    RemoteTrackEnded {
        /// Remote peer id.
        peer: String,
        /// Kind of the ended track.
        kind: MediaKind,
        /// Its m-line index.
        mline: u32,
    },
    /// Negotiation failed.
    NegotiationFailed {
        /// Remote peer id.
        peer: String,
        /// What failed.
        reason: String,
    },
}

/// Receiving channels of a [`Peer`](super::Peer).
#[derive(Debug)]
pub struct PeerIo {
    /// Outgoing signalling messages, to carry to the remote peer.
    pub signals: UnboundedReceiver<SignalOut>,
    /// Connection-state and congestion events.
    pub events: UnboundedReceiver<PeerEvent>,
}
