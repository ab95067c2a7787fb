//! What a [`Subscriber`](super::Subscriber) does with received media: [`SubscriberConfig`],
//! the video and audio outputs and the frame callbacks.

use std::sync::Arc;

use crate::webrtc::WebrtcError;
use crate::webrtc::room_recording::RoomRecordingConfig;

/// What to do with received video.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum VideoOutput {
    /// Show it (`autovideosink`, clock-synchronised).
    Display,
    /// Hand I420 frames to the callback set with [`Subscriber::on_video_sample`](super::Subscriber::on_video_sample).
    AppSink,
    /// Decode and count, then drop (`fakesink`); for headless use.
    #[default]
    Discard,
    /// Record each peer's video and audio, as sent (no re-encoding), into one Matroska file,
    /// `<dir>/<peer>.mkv` (`<peer>-N.mkv` when that exists), with timestamps from zero, the
    /// frame rate, and, once the peer leaves ([`Subscriber::detach`](super::Subscriber::detach)), the duration and
    /// index; readable while being written and after an abrupt stop. Received audio is
    /// recorded, not played ([`SubscriberConfig::audio`] does not apply). Counters count
    /// recorded frames and audio packets. See [`crate::webrtc::recording`].
    Record(std::path::PathBuf),
    /// Record the whole room into one Matroska file with fixed tracks: every peer's video
    /// decoded and composed into a grid, every peer's audio decoded and mixed, and the
    /// whiteboard when [`RoomRecordingConfig::whiteboard`] names one, all on the pipeline's
    /// clock (see [`crate::webrtc::room_recording`]). Received audio is recorded, not played
    /// ([`SubscriberConfig::audio`] does not apply). Built by
    /// [`Subscriber::prepare`](super::Subscriber::prepare), before the pipeline starts; a
    /// session feeds the board and finishes the file when it leaves.
    RecordRoom(RoomRecordingConfig),
}

/// What to do with decoded audio.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum AudioOutput {
    /// Play it: every received track is mixed (`audiomixer`, mono 48 kHz) into one
    /// `autoaudiosink`; with `echo_probe`, the mix passes a `webrtcechoprobe` of that name at
    /// the DSP's rate ([`crate::webrtc::dsp::echo_probe_chain`]) so a microphone publisher's
    /// `webrtcdsp` can cancel every remote member. The path stands from
    /// [`Subscriber::prepare`](super::Subscriber::prepare) (a session calls it before its
    /// publisher starts) or the first received audio track.
    Play {
        /// Name for the `webrtcechoprobe`.
        echo_probe: Option<String>,
    },
    /// Decode and drop.
    #[default]
    Discard,
}

/// Called with the remote peer id and each I420 sample the appsink releases
/// ([`SubscriberConfig::on_video_sample`]).
pub type VideoSampleCallback = Arc<dyn Fn(&str, &gst::Sample) + Send + Sync>;
/// Called with the remote peer id, each decoded video frame and its caps, at the decoder's
/// output ([`SubscriberConfig::on_decoded_video`]).
pub type DecodedVideoCallback = Arc<dyn Fn(&str, &gst::BufferRef, &gst::Caps) + Send + Sync>;

/// Subscriber configuration.
///
/// The frame callbacks belong here when they must see the first frame: set in the
/// configuration they are in place before any remote track is linked (the setters
/// [`Subscriber::on_video_sample`](super::Subscriber::on_video_sample) and [`Subscriber::on_decoded_video`](super::Subscriber::on_decoded_video) replace them later).
///
/// ```
/// use std::sync::Arc;
/// use streamwire::webrtc::subscriber::{SubscriberConfig, VideoOutput};
/// let cfg = SubscriberConfig {
///     video: VideoOutput::AppSink,
///     on_video_sample: Some(Arc::new(|peer, sample| {
///         println!("{peer}: {:?}", sample.caps());
///     })),
///     ..SubscriberConfig::default()
/// };
/// cfg.validate().unwrap();
/// let discard = SubscriberConfig { video: VideoOutput::Discard, ..cfg };
/// assert!(discard.validate().is_err()); // a sample callback needs the appsink
/// ```
#[derive(Clone, Default)]
pub struct SubscriberConfig {
    /// Video output.
    pub video: VideoOutput,
    /// Audio output.
    pub audio: AudioOutput,
    /// Synchronise app/fake sinks to the clock (display sinks always are). A synchronised
    /// video sink sits behind a queue, so the decoder (and
    /// [`on_decoded_video`](Self::on_decoded_video)) is never held back by the sink waiting
    /// for a frame's display time.
    pub sync: bool,
    /// Emit a [`SubscriberEvent::VideoFrame`](super::SubscriberEvent::VideoFrame) for every decoded frame.
    pub frame_events: bool,
    /// Called for every I420 sample the appsink releases; needs [`VideoOutput::AppSink`]
    /// (any other output is refused by [`SubscriberConfig::validate`]). Runs on a streaming
    /// thread: keep it short.
    pub on_video_sample: Option<VideoSampleCallback>,
    /// Called for every decoded video frame right at the decoder's output, before any clock
    /// synchronisation, whatever the output. Runs on a streaming thread: keep it short.
    pub on_decoded_video: Option<DecodedVideoCallback>,
}

impl std::fmt::Debug for SubscriberConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SubscriberConfig")
            .field("video", &self.video)
            .field("audio", &self.audio)
            .field("sync", &self.sync)
            .field("frame_events", &self.frame_events)
            .field("on_video_sample", &self.on_video_sample.is_some())
            .field("on_decoded_video", &self.on_decoded_video.is_some())
            .finish()
    }
}

impl SubscriberConfig {
    /// Refuse a configuration that could not do what it says: a sample callback without
    /// [`VideoOutput::AppSink`] would never be called.
    pub fn validate(&self) -> Result<(), WebrtcError> {
        if self.on_video_sample.is_some() {
            check_appsink(&self.video)?;
        }
        Ok(())
    }
}

/// `on_video_sample` needs the appsink output.
pub(super) fn check_appsink(video: &VideoOutput) -> Result<(), WebrtcError> {
    if *video == VideoOutput::AppSink {
        Ok(())
    } else {
        Err(WebrtcError::Config {
            field: "on_video_sample",
            detail: format!(
                "samples come from the appsink: set `video` to VideoOutput::AppSink (it is \
                 {video:?}), or use on_decoded_video"
            ),
        })
    }
}
