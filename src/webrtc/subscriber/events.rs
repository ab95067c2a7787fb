//! What a [`Subscriber`](super::Subscriber) reports: [`SubscriberEvent`], [`MemberLevel`] and
//! the per-track [`TrackCounters`].

use crate::webrtc::MediaKind;

/// Receive-side events.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum SubscriberEvent {
    /// A remote track started arriving.
    TrackAdded {
        /// Remote peer id.
        peer: String,
        /// Track kind.
        kind: MediaKind,
        /// RTP encoding name.
        codec: String,
    },
    /// A video frame was decoded (only with [`SubscriberConfig::frame_events`](super::SubscriberConfig::frame_events), and always for
    /// the first frame of each track).
    VideoFrame {
        /// Remote peer id.
        peer: String,
        /// Width in pixels.
        width: i32,
        /// Height in pixels.
        height: i32,
        /// Frames decoded on this track so far.
        count: u64,
    },
    /// The first audio buffer of a track was decoded.
    FirstAudio {
        /// Remote peer id.
        peer: String,
    },
    /// A recording file was started ([`VideoOutput::Record`](super::VideoOutput::Record)).
    Recording {
        /// Remote peer id.
        peer: String,
        /// The file.
        path: std::path::PathBuf,
    },
    /// A remote track could not be decoded.
    Unsupported {
        /// Remote peer id.
        peer: String,
        /// Why.
        reason: String,
    },
    /// The audio level of every member whose audio is received (RFC 6464 header extension),
    /// at most one per [`LEVEL_EVENT_INTERVAL`](crate::webrtc::audio_level::LEVEL_EVENT_INTERVAL).
    AudioLevels {
        /// One entry per member, by id.
        levels: Vec<MemberLevel>,
    },
    /// Another member became the active speaker (see [`crate::webrtc::audio_level`] for the
    /// hysteresis); `None` when the active speaker's audio ended.
    ActiveSpeakerChanged {
        /// The new active speaker.
        peer: Option<String>,
    },
}

/// One member's received audio level.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MemberLevel {
    /// Remote peer id.
    pub peer: String,
    /// Level in dBov: 0 is the loudest, 127
    /// ([`SILENCE_DBOV`](crate::webrtc::audio_level::SILENCE_DBOV)) silence.
    pub dbov: u8,
}

/// Per-track receive counters.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct TrackCounters {
    /// Frames (video) or buffers (audio) decoded.
    pub decoded: u64,
    /// Last decoded width (video).
    pub width: i32,
    /// Last decoded height (video).
    pub height: i32,
    /// Video frames that reached the depayloader (distinct RTP timestamps, complete or not).
    pub frames_received: u64,
    /// Freezes at the decoder output (webrtc-stats definition,
    /// [`FreezeDetector`](crate::webrtc::freeze::FreezeDetector)).
    pub freezes: u64,
    /// Their total duration (ms).
    pub freeze_ms: f64,
    /// Audio samples decoded (48 kHz), concealed ones included.
    pub samples: u64,
    /// Audio samples the decoder concealed (PLC) because packets were missing.
    pub concealed_samples: u64,
    /// Last received audio level (dBov, RFC 6464 header extension), if the sender sends it.
    pub audio_level: Option<u8>,
}
