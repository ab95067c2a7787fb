//! A published track set, encoded once and shared by every remote peer.
//!
//! ```text
//! video: source -> videoconvert -> videoscale -> videorate -> caps -> queue -> encoder -> tee
//!            tee -> queue(per peer) -> rtpvp8pay/rtph264pay (+TWCC ext) -> webrtcbin(peer)
//! audio: source [-> webrtcdsp] -> audioconvert -> audioresample -> opusenc -> tee
//!            tee -> queue(per peer) -> rtpopuspay (+TWCC, audio level ext) -> webrtcbin(peer)
//! ```
//!
//! * A new peer gets a keyframe at once: when its connection becomes `connected`, an upstream
//!   force-key-unit event goes from its branch through the tee to the encoder.
//! * PLI/FIR from any receiver: `rtpsession` turns them into the same upstream event.
//! * The encoder's bitrate follows the LOWEST congestion-control estimate among the peers,
//!   clamped to [`PublisherConfig::floor_kbps`]..=[`PublisherConfig::ceiling_kbps`].
//! * Rotation metadata mode ([`PublisherConfig::rotation`]): a `sensorrotation` element before
//!   the encoder stamps each frame's orientation, and every peer's video payloader carries
//!   `rtphdrextcvo`, so the orientation travels as `urn:3gpp:video-orientation` (CVO) and the
//!   receiver (a browser, or `sensorrotation mode=follow-meta`) rotates the picture. The
//!   frames are encoded as captured.

mod branch;
pub(crate) use branch::{PayloadOf, payloader};
mod config;
mod rate;
mod resilience;
mod sources;

use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use gst::prelude::*;

pub use config::{
    AudioSource, CameraFacing, MAX_KEYFRAME_MIN_INTERVAL_MS, PublisherConfig, Rotation,
    RotationConfig, VideoSource,
};
pub use rate::BitrateChange;
pub use sources::ENCODER_QUEUE_NAME;

use super::WebrtcError;
use super::audio_dump::{AudioDump, AudioDumpConfig, DumpSidecar, MicTaps};
use branch::Branch;
use rate::{BitrateListener, RateState};
use sources::VideoChain;

struct Inner {
    bin: gst::Bin,
    config: PublisherConfig,
    video: Option<VideoChain>,
    /// `sensorrotation` in rotation metadata mode.
    rotation: Option<gst::Element>,
    audio_tee: Option<gst::Element>,
    /// A processed microphone's dump taps.
    mic: Option<MicTaps>,
    /// The running audio dump.
    dump: Mutex<Option<AudioDump>>,
    /// The Opus encoder (its expected loss follows the receivers' reports).
    opus: Option<gst::Element>,
    audio_loss: Mutex<resilience::AudioLoss>,
    keyframes_limit: Mutex<resilience::KeyframeLimiter>,
    /// Sequence number of the last keyframe request the publisher made itself.
    own_keyframe_seqnum: AtomicU32,
    keyframe_requests_deferred: AtomicU64,
    branches: Mutex<HashMap<String, Vec<Branch>>>,
    rate: Mutex<RateState>,
    listeners: Mutex<Vec<BitrateListener>>,
    /// Every capture/encode element (not the per-peer branches), for [`Publisher::start`] and
    /// [`Publisher::stop`].
    elements: Vec<gst::Element>,
    frames: AtomicU64,
    keyframes: AtomicU64,
}

/// A local track set shared by all peers.
#[derive(Clone)]
pub struct Publisher {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher")
            .field("codec", &self.inner.config.codec)
            .finish()
    }
}

impl Publisher {
    /// Build the capture and encode chains inside `bin` (the pipeline). Nothing is sent until
    /// [`Publisher::attach`] links a peer.
    ///
    /// ```no_run
    /// use streamwire::webrtc::publisher::{Publisher, PublisherConfig};
    /// streamwire::gst_init::init().unwrap();
    /// let pipeline = gst::Pipeline::new();
    /// let publisher = Publisher::new(&pipeline, PublisherConfig::default()).unwrap();
    /// assert_eq!(publisher.video_bitrate_kbps(), Some(1000));
    /// ```
    pub fn new(bin: &impl IsA<gst::Bin>, config: PublisherConfig) -> Result<Self, WebrtcError> {
        let bin = bin.as_ref().clone();
        if config.width <= 0 || config.height <= 0 || config.fps <= 0 {
            return Err(WebrtcError::Config {
                field: "width/height/fps",
                detail: format!(
                    "must be positive, got {}x{}@{}",
                    config.width, config.height, config.fps
                ),
            });
        }
        if config.floor_kbps > config.ceiling_kbps {
            return Err(WebrtcError::Config {
                field: "floor_kbps",
                detail: format!(
                    "floor {} kbit/s is above ceiling {} kbit/s",
                    config.floor_kbps, config.ceiling_kbps
                ),
            });
        }
        if !matches!(config.video, VideoSource::None) {
            crate::webrtc::encode::check_sendable(config.codec)?;
        }
        let start = config
            .start_kbps
            .clamp(config.floor_kbps, config.ceiling_kbps);
        let mut elements = Vec::new();
        let (video, rotation) = match sources::build_video(&bin, &config, start, &mut elements)? {
            Some((v, r)) => (Some(v), r),
            None => (None, None),
        };
        if config.keyframe_min_interval_ms > MAX_KEYFRAME_MIN_INTERVAL_MS {
            return Err(WebrtcError::Config {
                field: "keyframe_min_interval_ms",
                detail: format!(
                    "{} ms is above {MAX_KEYFRAME_MIN_INTERVAL_MS} ms",
                    config.keyframe_min_interval_ms
                ),
            });
        }
        let (opus, audio_tee, mic) = match sources::build_audio(&bin, &config, &mut elements)? {
            Some(a) => (Some(a.encoder), Some(a.tee), a.mic),
            None => (None, None, None),
        };
        let publisher = Publisher {
            inner: Arc::new(Inner {
                bin,
                config,
                video,
                rotation,
                audio_tee,
                mic,
                dump: Mutex::new(None),
                opus,
                audio_loss: Mutex::new(HashMap::new()),
                keyframes_limit: Mutex::new(resilience::KeyframeLimiter::default()),
                own_keyframe_seqnum: AtomicU32::new(0),
                keyframe_requests_deferred: AtomicU64::new(0),
                branches: Mutex::new(HashMap::new()),
                rate: Mutex::new(RateState::new(start)),
                listeners: Mutex::new(Vec::new()),
                elements,
                frames: AtomicU64::new(0),
                keyframes: AtomicU64::new(0),
            }),
        };
        publisher.count_frames();
        publisher.limit_keyframe_requests();
        Ok(publisher)
    }

    fn count_frames(&self) {
        let Some((_, tee, _)) = &self.inner.video else {
            return;
        };
        let Some(pad) = tee.static_pad("sink") else {
            return;
        };
        let weak = Arc::downgrade(&self.inner);
        pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            if let (Some(inner), Some(buf)) = (weak.upgrade(), info.buffer()) {
                inner.frames.fetch_add(1, Ordering::Relaxed);
                if !buf.flags().contains(gst::BufferFlags::DELTA_UNIT) {
                    inner.keyframes.fetch_add(1, Ordering::Relaxed);
                }
            }
            gst::PadProbeReturn::Ok
        });
    }

    /// Encoded video frames so far and how many of them were keyframes.
    pub fn video_frame_counts(&self) -> (u64, u64) {
        (
            self.inner.frames.load(Ordering::Relaxed),
            self.inner.keyframes.load(Ordering::Relaxed),
        )
    }

    /// The raw (I420, configured size) video pad before the encoder: probes here see every
    /// captured frame (e.g. to paint a frame counter).
    pub fn raw_video_pad(&self) -> Option<gst::Pad> {
        self.inner.video.as_ref().map(|(_, _, p)| p.clone())
    }

    /// The `sensorrotation` element of rotation metadata mode, if configured (e.g. to push
    /// sensor samples with its `push-sample` action signal, or read `orientation`).
    pub fn rotation_element(&self) -> Option<gst::Element> {
        self.inner.rotation.clone()
    }

    /// Change the signalled rotation while publishing (rotation metadata mode): the element
    /// switches to the application's fixed angle (`mode=follow-app`). Errors when the
    /// publisher was built without [`PublisherConfig::rotation`].
    pub fn set_rotation(&self, rotation: Rotation) -> Result<(), WebrtcError> {
        let el = self.inner.rotation.as_ref().ok_or(WebrtcError::Config {
            field: "rotation",
            detail:
                "the publisher has no rotation metadata mode (PublisherConfig::rotation is None)"
                    .into(),
        })?;
        el.set_property_from_str("mode", "follow-app");
        el.set_property_from_str("rotation", &rotation.degrees().to_string());
        Ok(())
    }

    /// Encoded video size (width, height), if there is a video track.
    pub fn video_size(&self) -> Option<(i32, i32)> {
        self.inner
            .video
            .as_ref()
            .map(|_| (self.inner.config.width, self.inner.config.height))
    }

    /// Current video bitrate target (kbit/s).
    pub fn video_bitrate_kbps(&self) -> Option<u32> {
        self.inner.video.as_ref().map(|(e, _, _)| e.bitrate())
    }

    /// Ask the encoder for a keyframe now.
    pub fn force_keyframe(&self) {
        if let Some((_, tee, _)) = &self.inner.video
            && let Some(pad) = tee.static_pad("sink")
        {
            let ev = gst_video::UpstreamForceKeyUnitEvent::builder()
                .all_headers(true)
                .build();
            resilience::mark_own(&self.inner, &ev);
            // Travels upstream from the tee's sink pad to the encoder.
            let _ = pad.push_event(ev);
        }
    }

    /// Start the capture and encode chains in a running pipeline (when publishing after the
    /// session's pipeline is already playing). Not needed when the pipeline starts afterwards.
    pub fn start(&self) -> Result<(), WebrtcError> {
        // Downstream first, so nothing pushes into an element that is not running yet.
        for e in self.inner.elements.iter().rev() {
            e.sync_state_with_parent()
                .map_err(|err| WebrtcError::State(format!("starting `{}`: {err}", e.name())))?;
        }
        Ok(())
    }

    /// Start an audio dump of the published microphone (see [`crate::webrtc::audio_dump`]):
    /// raw, far-end reference and processed audio as WAV files plus `dump.json` in
    /// `cfg.dir`. Errors when the audio is not a processed microphone
    /// ([`AudioSource::Microphone`], [`AudioSource::MicrophoneElement`]), when a dump is
    /// already running, or when the directory cannot be written or already holds a dump.
    ///
    /// ```no_run
    /// use streamwire::webrtc::audio_dump::AudioDumpConfig;
    /// use streamwire::webrtc::publisher::{AudioSource, Publisher, PublisherConfig};
    /// streamwire::gst_init::init().unwrap();
    /// let pipeline = gst::Pipeline::new();
    /// let cfg = PublisherConfig {
    ///     audio: AudioSource::Microphone { echo_probe: None },
    ///     ..PublisherConfig::default()
    /// };
    /// let publisher = Publisher::new(&pipeline, cfg).unwrap();
    /// publisher.start_audio_dump(&AudioDumpConfig::new("/tmp/dump")).unwrap();
    /// // ... later
    /// let sidecar = publisher.stop_audio_dump().unwrap();
    /// println!("{} samples", sidecar.unwrap().samples[0]);
    /// ```
    pub fn start_audio_dump(&self, cfg: &AudioDumpConfig) -> Result<(), WebrtcError> {
        let taps = self.inner.mic.as_ref().ok_or(WebrtcError::Config {
            field: "audio",
            detail: "an audio dump needs a processed microphone (AudioSource::Microphone or \
                     MicrophoneElement)"
                .into(),
        })?;
        let mut dump = self.inner.dump.lock();
        if let Some(d) = dump.as_ref() {
            return Err(WebrtcError::Config {
                field: "audio_dump",
                detail: format!("a dump into {} is already running", d.dir().display()),
            });
        }
        *dump = Some(AudioDump::start(&self.inner.bin, taps, cfg)?);
        Ok(())
    }

    /// Stop the running audio dump, finalising its files; returns its sidecar, or `None`
    /// when no dump was running.
    pub fn stop_audio_dump(&self) -> Result<Option<DumpSidecar>, WebrtcError> {
        let dump = self.inner.dump.lock().take();
        dump.map(AudioDump::stop).transpose()
    }

    /// Stop publishing: detach every peer (see [`Publisher::detach`]), stop the capture and
    /// encode chains and remove them from the bin. The publisher is unusable afterwards.
    pub fn stop(&self) {
        if let Err(e) = self.stop_audio_dump() {
            tracing::warn!("stopping the audio dump: {e}");
        }
        let peers: Vec<String> = self.inner.branches.lock().keys().cloned().collect();
        for p in peers {
            self.detach(&p);
        }
        // Sources first: their streaming threads stop before the rest is torn down.
        for e in &self.inner.elements {
            let _ = e.set_state(gst::State::Null);
        }
        for e in &self.inner.elements {
            let _ = self.inner.bin.remove(e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_mode_puts_sensorrotation_before_the_encoder_and_follows_set_rotation() {
        crate::gst_init::init().unwrap();
        let pipeline = gst::Pipeline::new();
        let p = Publisher::new(
            &pipeline,
            PublisherConfig {
                rotation: Some(RotationConfig::Fixed(Rotation::R90)),
                audio: AudioSource::None,
                ..PublisherConfig::default()
            },
        )
        .unwrap();
        let rot = p
            .rotation_element()
            .expect("sensorrotation in rotation mode");
        assert_eq!(rot.factory().unwrap().name(), "sensorrotation");
        let angle = |e: &gst::Element| {
            let v = e.property_value("rotation");
            gst::glib::EnumValue::from_value(&v)
                .unwrap()
                .1
                .nick()
                .to_owned()
        };
        assert_eq!(angle(&rot), "90");
        // Downstream of the raw caps, upstream of the encoder queue.
        let next = rot.static_pad("src").unwrap().peer().unwrap();
        assert_eq!(next.parent_element().unwrap().name(), ENCODER_QUEUE_NAME);
        p.set_rotation(Rotation::R180).unwrap();
        assert_eq!(angle(&rot), "180");
    }

    #[test]
    fn set_rotation_without_rotation_mode_is_a_config_error() {
        crate::gst_init::init().unwrap();
        let pipeline = gst::Pipeline::new();
        let p = Publisher::new(
            &pipeline,
            PublisherConfig {
                audio: AudioSource::None,
                ..PublisherConfig::default()
            },
        )
        .unwrap();
        assert!(p.rotation_element().is_none());
        let e = p.set_rotation(Rotation::R90).unwrap_err();
        assert!(
            matches!(
                e,
                WebrtcError::Config {
                    field: "rotation",
                    ..
                }
            ),
            "{e}"
        );
    }
}
