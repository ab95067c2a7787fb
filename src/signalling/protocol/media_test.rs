//! The vocabulary of media tests: the echo test and the pre-call network probe.
//!
//! A media test is a connection of its own, opened instead of a `join`: its first frame is
//! `media_test` ([`ClientMsg::MediaTest`](super::ClientMsg::MediaTest)) with a room token.
//! The connection never joins the room (no presence, no stream, nothing relayed to or from
//! members); it negotiates one WebRTC connection with the server's media peer, the
//! pseudo-peer [`MEDIA_TEST_PEER`], and ends by itself after the granted `seconds`.
//!
//! - **Echo**: the server sends every received audio and video track back, delayed by
//!   `delay_ms`, on the offer's `recvonly` m-lines.
//! - **Probe**: the server receives the client's probe stream and sends one of its own (noise
//!   video whose bitrate follows the server's congestion controller), and reports what it
//!   measures: its estimate of the path to the client, and loss and jitter of what it
//!   receives.
//!
//! The full exchange is in `docs/protocol.md` ("Media tests").
//!
//! ```
//! use streamwire::signalling::protocol::media_test::{MediaTestKind, MEDIA_TEST_PEER};
//! assert_eq!(MediaTestKind::Echo.as_str(), "echo");
//! assert_eq!(MEDIA_TEST_PEER, "media-test");
//! ```

use serde::{Deserialize, Serialize};

/// The pseudo-peer of a media test connection: the client sends its `offer` and `ice` `to`
/// it; the server's `answer` and `ice` come `from` it.
pub const MEDIA_TEST_PEER: &str = "media-test";

/// How long a test runs when `media_test.seconds` is absent, s.
pub const DEFAULT_TEST_SECONDS: u32 = 20;

/// How often the server reports (`media_test_ready.report_interval_ms`).
pub const REPORT_INTERVAL: std::time::Duration = std::time::Duration::from_secs(2);

/// Which media test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaTestKind {
    /// The server plays the client's audio and video back after a delay.
    Echo,
    /// The server measures the network both ways with probe streams.
    Probe,
}

impl MediaTestKind {
    /// `echo` or `probe`.
    pub fn as_str(self) -> &'static str {
        match self {
            MediaTestKind::Echo => "echo",
            MediaTestKind::Probe => "probe",
        }
    }
}

impl std::fmt::Display for MediaTestKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the server measured on one track it receives from the client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReceivedTrack {
    /// `audio` or `video`.
    pub kind: String,
    /// Receive rate over the last report interval, kbit/s.
    pub kbps: f64,
    /// Loss over the last report interval, percent: packets the server's jitter buffer
    /// gave up on (after retransmission), as in the stats (`docs/webrtc.md`).
    pub loss_pct: f64,
    /// Interarrival jitter (RFC 3550), ms.
    pub jitter_ms: f64,
}

/// The server's side of a test, every `report_interval_ms`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerReport {
    /// Time since the media connection came up, ms.
    pub elapsed_ms: u64,
    /// Probe: the server's congestion controller's estimate of the path to the client,
    /// kbit/s; absent for an echo test or before the first estimate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimate_kbps: Option<u32>,
    /// What the server sent over the last interval, kbit/s.
    pub sent_kbps: f64,
    /// Round-trip time from the server's RTCP, ms, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtt_ms: Option<f64>,
    /// What the server receives, per track.
    pub received: Vec<ReceivedTrack>,
}

/// Why a media test ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaTestEnd {
    /// The granted `seconds` passed.
    Time,
    /// The client sent `leave`.
    Left,
    /// The media connection failed or the offer could not be used (`message` says why).
    Failed,
    /// The server is shutting down.
    Shutdown,
}

impl MediaTestEnd {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            MediaTestEnd::Time => "time",
            MediaTestEnd::Left => "left",
            MediaTestEnd::Failed => "failed",
            MediaTestEnd::Shutdown => "shutdown",
        }
    }
}
