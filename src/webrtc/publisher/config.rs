//! What a [`Publisher`](super::Publisher) publishes: [`PublisherConfig`] and its sources.

use crate::encoder::Codec;
use crate::webrtc::dsp::AudioProcessing;
pub use gststreamwire::orientation::{CameraFacing, Rotation};

/// Where published video comes from.
#[derive(Debug, Clone, Default)]
pub enum VideoSource {
    /// `videotestsrc is-live=true` (the given pattern name, e.g. `smpte`, `ball`).
    TestPattern(String),
    /// The default camera (`autovideosrc`).
    Camera,
    /// Low-contrast noise (`videotestsrc pattern=snow` through `videobalance contrast=0.2`):
    /// every frame is new, yet the encoder meets its target from 150 kbit/s to 4 Mbit/s
    /// (full-contrast noise costs VP8 over 6 Mbit/s at 640x360 at any target), so the sent
    /// rate follows the congestion estimate. The network probe sends it.
    Noise,
    /// An application element (e.g. `appsrc`) with an always `src` pad producing raw video.
    Element(gst::Element),
    /// No video track.
    #[default]
    None,
}

/// Where published audio comes from.
#[derive(Debug, Clone, Default)]
pub enum AudioSource {
    /// `audiotestsrc is-live=true` (a quiet sine tone).
    TestTone,
    /// The default microphone (`autoaudiosrc`), processed by `webrtcdsp` with
    /// [`PublisherConfig::audio_processing`] (echo cancellation against the named
    /// `webrtcechoprobe` when given, see [`crate::webrtc::dsp`]).
    Microphone {
        /// Name of the `webrtcechoprobe` on the playback path, enabling echo cancellation.
        echo_probe: Option<String>,
    },
    /// An application element standing in for the microphone (e.g. an `appsrc` or a chosen
    /// capture device) with an always `src` pad producing raw audio, processed like
    /// [`AudioSource::Microphone`].
    MicrophoneElement {
        /// The capture element.
        element: gst::Element,
        /// Name of the `webrtcechoprobe` on the playback path, enabling echo cancellation.
        echo_probe: Option<String>,
    },
    /// An application element with an always `src` pad producing raw audio, sent unprocessed.
    Element(gst::Element),
    /// No audio track.
    #[default]
    None,
}

/// Rotation metadata mode: where the picture orientation comes from. The frames are encoded
/// as captured; the orientation is sent beside them in the CVO RTP header extension
/// (`urn:3gpp:video-orientation`) on every peer's video stream.
///
/// ```
/// use streamwire::webrtc::publisher::{PublisherConfig, Rotation, RotationConfig};
/// let cfg = PublisherConfig {
///     rotation: Some(RotationConfig::Fixed(Rotation::R90)),
///     ..PublisherConfig::default()
/// };
/// assert!(cfg.rotation.is_some());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RotationConfig {
    /// A fixed angle chosen by the application (`sensorrotation mode=follow-app`); change it
    /// while publishing with [`Publisher::set_rotation`](super::Publisher::set_rotation).
    Fixed(Rotation),
    /// Follow the gravity sensor (`sensorrotation mode=follow-sensor`). Samples come from
    /// `replay_file` if set, else from the IIO accelerometer `iio_device` if set, else from the
    /// application through the element's `push-sample` action signal
    /// ([`Publisher::rotation_element`](super::Publisher::rotation_element)).
    Sensor {
        /// Sensor samples `t_ms x y z` per line, replayed in real time.
        replay_file: Option<String>,
        /// An IIO accelerometer, e.g. `/sys/bus/iio/devices/iio:device0`.
        iio_device: Option<String>,
    },
}

/// Publisher configuration.
#[derive(Debug, Clone)]
pub struct PublisherConfig {
    /// Video input.
    pub video: VideoSource,
    /// Audio input.
    pub audio: AudioSource,
    /// Video codec. WebRTC carries VP8 and H.264; [`Publisher::new`](super::Publisher::new)
    /// refuses the others with [`WebrtcError::Config`](crate::webrtc::WebrtcError::Config)
    /// (field `codec`).
    pub codec: Codec,
    /// Encoded width (pixels).
    pub width: i32,
    /// Encoded height (pixels).
    pub height: i32,
    /// Frames per second.
    pub fps: i32,
    /// Bitrate before any congestion estimate arrives (kbit/s).
    pub start_kbps: u32,
    /// Lowest video bitrate the controller may set (kbit/s).
    pub floor_kbps: u32,
    /// Highest video bitrate the controller may set (kbit/s).
    pub ceiling_kbps: u32,
    /// Keyframe interval in frames (receivers also request keyframes with PLI/FIR).
    pub keyframe_interval: u32,
    /// Opus bitrate (bit/s).
    pub audio_bps: i32,
    /// Microphone processing (`webrtcdsp`) for [`AudioSource::Microphone`] and
    /// [`AudioSource::MicrophoneElement`]; other sources are sent unprocessed. Default
    /// [`AudioProcessing::default`].
    pub audio_processing: AudioProcessing,
    /// Rotation metadata mode (CVO); `None` (default) sends no orientation.
    pub rotation: Option<RotationConfig>,
    /// With [`rotation`](Self::rotation): which way the camera faces (`sensorrotation
    /// camera-facing`: the rotation rule, a front camera's mirror, the CVO `C` bit, which is
    /// 1 for `Back` only). Default `Back`, the element's.
    pub camera_facing: CameraFacing,
    /// With [`rotation`](Self::rotation) following the sensor: the camera sensor's mounting
    /// (`sensorrotation sensor-orientation`). Default 0 degrees.
    pub sensor_orientation: Rotation,
    /// Opus in-band FEC, its amount set from the loss the receivers report. Default on.
    pub audio_fec: bool,
    /// Opus DTX: during silence only a few small packets are sent. Default off: a recording
    /// of a DTX stream (`VideoOutput::Record`) has its audio out of step with the video.
    pub audio_dtx: bool,
    /// Shortest time between two keyframes requested by receivers (PLI/FIR), ms
    /// (0..=[`MAX_KEYFRAME_MIN_INTERVAL_MS`], 0 = no limit). Default 250 (8 frames at 30 fps). Requests inside the
    /// interval get one keyframe at its end.
    pub keyframe_min_interval_ms: u32,
}

/// Highest [`PublisherConfig::keyframe_min_interval_ms`].
pub const MAX_KEYFRAME_MIN_INTERVAL_MS: u32 = 10_000;

impl Default for PublisherConfig {
    /// Test pattern + test tone, VP8 640x360@30, 1000 kbit/s start, 150..=2500 kbit/s.
    fn default() -> Self {
        PublisherConfig {
            video: VideoSource::TestPattern("smpte".into()),
            audio: AudioSource::TestTone,
            codec: Codec::Vp8,
            width: 640,
            height: 360,
            fps: 30,
            start_kbps: 1000,
            floor_kbps: 150,
            ceiling_kbps: 2500,
            keyframe_interval: 300,
            audio_bps: 32000,
            audio_processing: AudioProcessing::default(),
            rotation: None,
            camera_facing: CameraFacing::Back,
            sensor_orientation: Rotation::R0,
            audio_fec: true,
            audio_dtx: false,
            keyframe_min_interval_ms: 250,
        }
    }
}
