//! The validated preset: what a preset file says, in types.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::elements::{RotationSettings, TelemetrySettings};
use super::room::RoomSettings;
use super::whiteboard::WhiteboardSettings;
use crate::encoder::{Codec, HardwarePolicy};

/// A validated preset.
#[derive(Debug, Clone, PartialEq)]
pub struct Preset {
    /// Where it came from (a file path or `bundled:NAME`).
    pub source: String,
    /// One-line description.
    pub description: String,
    /// Stop after this long (clean EOS); `None` runs until EOS or Ctrl-C.
    pub duration: Option<Duration>,
    /// Sources.
    pub input: Input,
    /// Video settings; `None` when there is no video source.
    pub video: Option<VideoSettings>,
    /// Audio settings; `None` when there is no audio source.
    pub audio: Option<AudioSettings>,
    /// Where the media goes.
    pub output: Output,
    /// `[rotation]`: insert `sensorrotation` in the video branch; `None` without the table.
    pub rotation: Option<RotationSettings>,
    /// `[telemetry]`: insert `devicetelemetry` after the video encoder; in a room preset, the
    /// session's telemetry (`SessionConfig::telemetry`). `None` without the table.
    pub telemetry: Option<TelemetrySettings>,
    /// `[room]`: the preset publishes to (`output = "room"`) or receives from
    /// (`input.video = "room"`) a room and runs through a `session::Session` (converted by
    /// `SessionConfig::try_from` in `pipeline`), not a `pipeline::Plan`. Then `output` is a
    /// placeholder (`Fakesink` for publishing and recording, `Display` for displaying) and a
    /// receiving preset's `input` sources, `video` and `audio` are `None`: the room's
    /// publishers capture and encode.
    pub room: Option<RoomSettings>,
    /// `[whiteboard]`: a receiving room preset records the room's board
    /// ([`WhiteboardSettings`]); `None` without the table.
    pub whiteboard: Option<WhiteboardSettings>,
}

/// The `[input]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Input {
    /// `input.video`.
    pub video: VideoInput,
    /// `input.audio`.
    pub audio: AudioInput,
    /// `input.video_device`: which camera (name substring or index); default: the first one.
    pub video_device: Option<DeviceSelector>,
    /// `input.audio_device`: which microphone; default: the system default.
    pub audio_device: Option<DeviceSelector>,
}

/// What `input.video` says the video comes from. (What a WebRTC publisher captures is
/// `webrtc::publisher::VideoSource`; `PublisherConfig::try_from` in `pipeline` converts.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VideoInput {
    /// A capture device (`v4l2src`, `avfvideosrc`, ... chosen through the device monitor).
    Camera,
    /// The screen (`ximagesrc`, `avfvideosrc capture-screen=true`, `d3d11screencapturesrc`).
    Screen,
    /// `videotestsrc`.
    Test,
    /// The video stream of a media file (`decodebin`).
    File(PathBuf),
    /// No video.
    None,
}

/// What `input.audio` says the audio comes from. (What a WebRTC publisher captures is
/// `webrtc::publisher::AudioSource`.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AudioInput {
    /// A microphone (default source, or chosen through the device monitor).
    Mic,
    /// `audiotestsrc` (a 440 Hz tone).
    Test,
    /// The audio stream of a media file.
    File(PathBuf),
    /// No audio.
    None,
}

/// Device selection by index (0-based, in device-monitor order) or by name (case-insensitive substring).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceSelector {
    /// N-th device.
    Index(u32),
    /// First device whose display name contains this (case-insensitive).
    Name(String),
}

/// The `[video]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoSettings {
    /// Width in pixels (even, 16..=7680). Default 1280.
    pub width: u32,
    /// Height in pixels (even, 16..=4320). Default 720.
    pub height: u32,
    /// Frames per second (1..=240). Default 30.
    pub framerate: u32,
    /// Codec. Default vp8.
    pub codec: Codec,
    /// Target bitrate in kbit/s (16..=100000). Default 2000.
    pub bitrate_kbps: u32,
    /// Frames between keyframes (1..=3000). Default: two seconds of frames.
    pub keyframe_interval: u32,
    /// Hardware encoder policy. Default auto.
    pub hardware: HardwarePolicy,
}

/// Audio codecs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudioCodec {
    /// Opus (`opusenc`).
    Opus,
}

/// The `[audio]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioSettings {
    /// Codec. Default opus.
    pub codec: AudioCodec,
    /// Bitrate in kbit/s (6..=510). Default 64.
    pub bitrate_kbps: u32,
    /// Channels (1 or 2). Default 2.
    pub channels: u32,
    /// Microphone processing of a room publisher (`echo_cancel`, `delay_agnostic`,
    /// `noise_suppression`, `gain_control`, `high_pass_filter`). Default
    /// `AudioProcessing::default()`.
    pub processing: crate::webrtc::dsp::AudioProcessing,
    /// `audio.dump`: a room publisher's microphone is dumped into this directory from the
    /// start (see `webrtc::audio_dump`). Default none.
    pub dump: Option<PathBuf>,
}

/// Container formats for file output, chosen by extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Container {
    /// `.mp4` (`mp4mux`).
    Mp4,
    /// `.mkv` (`matroskamux`).
    Mkv,
    /// `.webm` (`webmmux`).
    Webm,
}

impl Container {
    /// Muxer element factory name.
    pub fn muxer(self) -> &'static str {
        match self {
            Container::Mp4 => "mp4mux",
            Container::Mkv => "matroskamux",
            Container::Webm => "webmmux",
        }
    }

    /// Video codecs this container carries.
    pub fn video_codecs(self) -> &'static [Codec] {
        match self {
            Container::Mp4 => &[Codec::H264, Codec::Vp9, Codec::Av1],
            Container::Mkv => &Codec::ALL,
            Container::Webm => &[Codec::Vp8, Codec::Vp9, Codec::Av1],
        }
    }

    pub(super) fn from_path(path: &Path) -> Option<Container> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "mp4" => Some(Container::Mp4),
            "mkv" => Some(Container::Mkv),
            "webm" => Some(Container::Webm),
            _ => None,
        }
    }
}

/// Where the media goes (`output`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Encode and write a file; the container follows the extension.
    File {
        /// File path.
        path: PathBuf,
        /// Container.
        container: Container,
    },
    /// Show the video (and play the audio) without encoding.
    Display,
    /// Encode and discard (for measurements).
    Fakesink,
}
