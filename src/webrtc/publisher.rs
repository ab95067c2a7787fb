//! A published track set, encoded once and shared by every remote peer.
//!
//! ```text
//! video: source -> videoconvert -> videoscale -> videorate -> caps -> queue -> encoder -> tee
//!            tee -> queue(per peer) -> rtpvp8pay/rtph264pay (+TWCC ext) -> webrtcbin(peer)
//! audio: source [-> webrtcdsp] -> audioconvert -> audioresample -> opusenc -> tee
//!            tee -> queue(per peer) -> rtpopuspay (+TWCC ext) -> webrtcbin(peer)
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

use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use gst::prelude::*;
use gst_rtp::prelude::*;

use super::encode::{VideoCodec, VideoEncodeParams, VideoEncoder, build_video_encoder};
use super::peer::{
    CVO_EXT_ID, CVO_URI, ConnectionState, LinkFn, LinkParams, OPUS_PT, Peer, SendTrack,
    TWCC_EXT_ID, new_ssrc, opus_caps, rtp_structure,
};
use super::{MediaKind, TWCC_URI, WebrtcError, make};
pub use gststreamwire::orientation::Rotation;

/// Name of the queue in front of the video encoder; its streaming thread, `swenc:src`, runs
/// the encoder (used to measure the shared encoder's CPU time).
pub const ENCODER_QUEUE_NAME: &str = "swenc";

/// Where published video comes from.
#[derive(Debug, Clone, Default)]
pub enum VideoSource {
    /// `videotestsrc is-live=true` (the given pattern name, e.g. `smpte`, `ball`).
    TestPattern(String),
    /// The default camera (`autovideosrc`).
    Camera,
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
    /// The default microphone (`autoaudiosrc`), processed by `webrtcdsp` (noise suppression,
    /// gain control, and echo cancellation against the named `webrtcechoprobe` when given).
    Microphone {
        /// Name of the `webrtcechoprobe` on the playback path, enabling echo cancellation.
        echo_probe: Option<String>,
    },
    /// An application element with an always `src` pad producing raw audio.
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
    /// while publishing with [`Publisher::set_rotation`].
    Fixed(Rotation),
    /// Follow the gravity sensor (`sensorrotation mode=follow-sensor`). Samples come from
    /// `replay_file` if set, else from the IIO accelerometer `iio_device` if set, else from the
    /// application through the element's `push-sample` action signal
    /// ([`Publisher::rotation_element`]).
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
    /// Video codec.
    pub codec: VideoCodec,
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
    /// Rotation metadata mode (CVO); `None` (default) sends no orientation.
    pub rotation: Option<RotationConfig>,
}

impl Default for PublisherConfig {
    /// Test pattern + test tone, VP8 640x360@30, 1000 kbit/s start, 150..=2500 kbit/s.
    fn default() -> Self {
        PublisherConfig {
            video: VideoSource::TestPattern("smpte".into()),
            audio: AudioSource::TestTone,
            codec: VideoCodec::Vp8,
            width: 640,
            height: 360,
            fps: 30,
            start_kbps: 1000,
            floor_kbps: 150,
            ceiling_kbps: 2500,
            keyframe_interval: 300,
            audio_bps: 32000,
            rotation: None,
        }
    }
}

/// Encoder bitrate change.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BitrateChange {
    /// New video bitrate (kbit/s).
    pub kbps: u32,
    /// Peer whose estimate is the lowest (None when clamped to the ceiling with no estimate).
    pub limited_by: Option<String>,
}

type BitrateListener = Arc<dyn Fn(&BitrateChange) + Send + Sync>;

struct Branch {
    tee_pad: gst::Pad,
    elements: Vec<gst::Element>,
}

struct RateState {
    estimates: HashMap<String, u32>,
    current_kbps: u32,
}

/// Shared encoder, its output tee and the raw video pad before it.
type VideoChain = (VideoEncoder, gst::Element, gst::Pad);

struct Inner {
    bin: gst::Bin,
    config: PublisherConfig,
    video: Option<VideoChain>,
    /// `sensorrotation` in rotation metadata mode.
    rotation: Option<gst::Element>,
    audio_tee: Option<gst::Element>,
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

fn link_chain(chain: &[gst::Element], what: &str) -> Result<(), WebrtcError> {
    gst::Element::link_many(chain).map_err(|e| WebrtcError::Link {
        what: what.to_owned(),
        detail: e.to_string(),
    })
}

fn add_all(bin: &gst::Bin, els: &[gst::Element]) -> Result<(), WebrtcError> {
    bin.add_many(els)
        .map_err(|e| WebrtcError::State(format!("adding elements: {e}")))
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
        let start = config
            .start_kbps
            .clamp(config.floor_kbps, config.ceiling_kbps);
        let mut elements = Vec::new();
        let (video, rotation) = match Self::build_video(&bin, &config, start, &mut elements)? {
            Some((v, r)) => (Some(v), r),
            None => (None, None),
        };
        let audio_tee = Self::build_audio(&bin, &config, &mut elements)?;
        let publisher = Publisher {
            inner: Arc::new(Inner {
                bin,
                config,
                video,
                rotation,
                audio_tee,
                branches: Mutex::new(HashMap::new()),
                rate: Mutex::new(RateState {
                    estimates: HashMap::new(),
                    current_kbps: start,
                }),
                listeners: Mutex::new(Vec::new()),
                elements,
                frames: AtomicU64::new(0),
                keyframes: AtomicU64::new(0),
            }),
        };
        publisher.count_frames();
        Ok(publisher)
    }

    /// The video chain (encoder, tee, raw pad) and the rotation element, if any.
    fn build_video(
        bin: &gst::Bin,
        config: &PublisherConfig,
        start_kbps: u32,
        elements: &mut Vec<gst::Element>,
    ) -> Result<Option<(VideoChain, Option<gst::Element>)>, WebrtcError> {
        let src = match &config.video {
            VideoSource::None => return Ok(None),
            VideoSource::TestPattern(pattern) => {
                let s = make("videotestsrc")?;
                s.set_property("is-live", true);
                s.set_property_from_str("pattern", pattern);
                s
            }
            VideoSource::Camera => make("autovideosrc")?,
            VideoSource::Element(e) => e.clone(),
        };
        let convert = make("videoconvert")?;
        let scale = make("videoscale")?;
        let rate = make("videorate")?;
        rate.set_property("drop-only", true);
        let caps = make("capsfilter")?;
        caps.set_property(
            "caps",
            gst::Caps::builder("video/x-raw")
                .field("format", "I420")
                .field("width", config.width)
                .field("height", config.height)
                .field("framerate", gst::Fraction::new(config.fps, 1))
                .build(),
        );
        let queue = make("queue")?;
        // Its streaming thread (named `swenc:src`) runs the shared encoder.
        queue.set_property("name", ENCODER_QUEUE_NAME);
        queue.set_property("max-size-buffers", 2u32);
        queue.set_property("max-size-bytes", 0u32);
        queue.set_property("max-size-time", 0u64);
        queue.set_property_from_str("leaky", "downstream");
        let encoder = build_video_encoder(
            config.codec,
            crate::encoder::HardwarePolicy::Auto,
            VideoEncodeParams {
                width: config.width,
                height: config.height,
                fps: config.fps,
                kbps: start_kbps,
                keyframe_interval: config.keyframe_interval,
            },
        )?;
        let tee = make("tee")?;
        tee.set_property("allow-not-linked", true);
        let rotation = config.rotation.as_ref().map(build_rotation).transpose()?;
        let mut chain = vec![src, convert, scale, rate, caps.clone()];
        chain.extend(rotation.iter().cloned());
        chain.push(queue);
        chain.extend(encoder.elements().iter().cloned());
        chain.push(tee.clone());
        add_all(bin, &chain)?;
        elements.extend(chain.iter().cloned());
        link_chain(&chain, "video capture and encoder")?;
        let raw_pad = caps
            .static_pad("src")
            .ok_or_else(|| WebrtcError::MissingElement("capsfilter src pad".into()))?;
        Ok(Some(((encoder, tee, raw_pad), rotation)))
    }

    fn build_audio(
        bin: &gst::Bin,
        config: &PublisherConfig,
        elements: &mut Vec<gst::Element>,
    ) -> Result<Option<gst::Element>, WebrtcError> {
        let mut chain = Vec::new();
        match &config.audio {
            AudioSource::None => return Ok(None),
            AudioSource::TestTone => {
                let s = make("audiotestsrc")?;
                s.set_property("is-live", true);
                s.set_property("volume", 0.1f64);
                chain.push(s);
            }
            AudioSource::Microphone { echo_probe } => {
                chain.push(make("autoaudiosrc")?);
                chain.push(make("audioconvert")?);
                chain.push(make("audioresample")?);
                // webrtcdsp wants 16-bit (or float) interleaved at 48 kHz, 10 ms frames.
                let dsp = make("webrtcdsp")?;
                dsp.set_property("noise-suppression", true);
                dsp.set_property("gain-control", true);
                match echo_probe {
                    Some(name) => {
                        dsp.set_property("echo-cancel", true);
                        dsp.set_property("probe", name);
                    }
                    None => dsp.set_property("echo-cancel", false),
                }
                chain.push(dsp);
            }
            AudioSource::Element(e) => chain.push(e.clone()),
        }
        chain.push(make("audioconvert")?);
        chain.push(make("audioresample")?);
        let caps = make("capsfilter")?;
        caps.set_property(
            "caps",
            gst::Caps::builder("audio/x-raw")
                .field("rate", 48000i32)
                .field("channels", 1i32)
                .build(),
        );
        chain.push(caps);
        let enc = make("opusenc")?;
        enc.set_property("bitrate", config.audio_bps);
        enc.set_property_from_str("frame-size", "20");
        chain.push(enc);
        let tee = make("tee")?;
        tee.set_property("allow-not-linked", true);
        chain.push(tee.clone());
        add_all(bin, &chain)?;
        elements.extend(chain.iter().cloned());
        link_chain(&chain, "audio capture and encoder")?;
        Ok(Some(tee))
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

    /// Call `f` whenever the controller changes the encoder bitrate.
    pub fn on_bitrate_change(&self, f: impl Fn(&BitrateChange) + Send + Sync + 'static) {
        self.inner.listeners.lock().push(Arc::new(f));
    }

    /// Ask the encoder for a keyframe now.
    pub fn force_keyframe(&self) {
        if let Some((_, tee, _)) = &self.inner.video
            && let Some(pad) = tee.static_pad("sink")
        {
            let ev = gst_video::UpstreamForceKeyUnitEvent::builder()
                .all_headers(true)
                .build();
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

    /// Stop publishing: detach every peer (see [`Publisher::detach`]), stop the capture and
    /// encode chains and remove them from the bin. The publisher is unusable afterwards.
    pub fn stop(&self) {
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

    /// Send this publisher's tracks to `peer`. When offering, call it before `peer.negotiate()`,
    /// or follow it with `peer.renegotiate(&[])` on a negotiated peer; an answerer sends the
    /// tracks from its answer to the next offer with a matching `recvonly` m-line.
    pub fn attach(&self, peer: &Peer) -> Result<(), WebrtcError> {
        let codec = self.inner.config.codec;
        let mut video_ssrc = None;
        if let Some((_, tee, _)) = &self.inner.video {
            let pt = codec.default_payload_type();
            let ssrc = new_ssrc();
            video_ssrc = Some(ssrc);
            let cvo = self.inner.rotation.is_some();
            let mut s = rtp_structure(
                MediaKind::Video,
                codec.encoding_name(),
                90000,
                pt,
                Some(TWCC_EXT_ID),
            );
            if cvo {
                s.set(format!("extmap-{CVO_EXT_ID}"), CVO_URI);
            }
            let track = SendTrack {
                kind: MediaKind::Video,
                ssrc,
                cvo,
                encoding_name: codec.encoding_name().to_owned(),
                offer_caps: gst::Caps::builder_full().structure(s).build(),
                offer_params: LinkParams {
                    pt,
                    twcc_id: Some(TWCC_EXT_ID),
                    ssrc,
                    cvo_id: cvo.then_some(CVO_EXT_ID),
                },
                link: self.branch_linker(peer.id(), tee.clone(), MediaKind::Video),
            };
            peer.add_send_track(track)?;
        }
        if let Some(tee) = &self.inner.audio_tee {
            let mut ssrc = new_ssrc();
            while Some(ssrc) == video_ssrc {
                ssrc = new_ssrc();
            }
            let track = SendTrack {
                kind: MediaKind::Audio,
                ssrc,
                cvo: false,
                encoding_name: "OPUS".into(),
                offer_caps: opus_caps(),
                offer_params: LinkParams {
                    pt: OPUS_PT,
                    twcc_id: Some(TWCC_EXT_ID),
                    ssrc,
                    cvo_id: None,
                },
                link: self.branch_linker(peer.id(), tee.clone(), MediaKind::Audio),
            };
            peer.add_send_track(track)?;
        }

        // New subscriber: keyframe as soon as media can reach it.
        let weak = Arc::downgrade(&self.inner);
        peer.on_connection_state(move |state| {
            if state == ConnectionState::Connected
                && let Some(inner) = weak.upgrade()
            {
                tracing::debug!("peer connected: forcing a keyframe");
                Publisher { inner }.force_keyframe();
            }
        });
        // Tracks added by a renegotiation on a connected peer: keyframe once it is negotiated
        // (what the branch pushed before was dropped by webrtcbin).
        let weak = Arc::downgrade(&self.inner);
        peer.on_negotiated(move || {
            if let Some(inner) = weak.upgrade() {
                Publisher { inner }.force_keyframe();
            }
        });
        // And already when ICE starts checking, so encoding it (tens of ms) overlaps the ICE
        // and DTLS handshakes: in the measured runs (docs/benchmarks.md, "First frame") this is
        // the keyframe decoded first. Should it be dropped before DTLS is up, the one at
        // `connected` above is the fallback.
        let weak = Arc::downgrade(&self.inner);
        peer.webrtcbin()
            .connect_notify(Some("ice-connection-state"), move |bin, _| {
                use gst_webrtc::WebRTCICEConnectionState as Ice;
                if bin.property::<Ice>("ice-connection-state") == Ice::Checking
                    && let Some(inner) = weak.upgrade()
                {
                    tracing::debug!("ICE checking: forcing a keyframe");
                    Publisher { inner }.force_keyframe();
                }
            });

        // Congestion control: lowest receiver wins.
        let weak = Arc::downgrade(&self.inner);
        let id = peer.id().to_owned();
        peer.on_estimated_bitrate(move |bps| {
            if let Some(inner) = weak.upgrade() {
                Publisher { inner }.update_estimate(&id, Some(bps));
            }
        });
        Ok(())
    }

    fn branch_linker(&self, peer_id: &str, tee: gst::Element, kind: MediaKind) -> LinkFn {
        let weak = Arc::downgrade(&self.inner);
        let peer_id = peer_id.to_owned();
        Box::new(move |sink: &gst::Pad, params: LinkParams| {
            let inner = weak
                .upgrade()
                .ok_or_else(|| WebrtcError::State("publisher dropped".into()))?;
            let branch = build_branch(&inner, &tee, kind, sink, params)?;
            inner
                .branches
                .lock()
                .entry(peer_id)
                .or_default()
                .push(branch);
            Ok(())
        })
    }

    /// Feed a congestion-control estimate (bit/s to peer `peer`, `None` removes the peer) and
    /// retarget the encoder to the lowest estimate, clamped to floor..=ceiling.
    pub fn update_estimate(&self, peer: &str, bps: Option<u32>) {
        let Some((encoder, _, _)) = &self.inner.video else {
            return;
        };
        let cfg = &self.inner.config;
        let change = {
            let mut rate = self.inner.rate.lock();
            match bps {
                Some(b) => {
                    rate.estimates.insert(peer.to_owned(), b);
                }
                None => {
                    rate.estimates.remove(peer);
                }
            }
            let lowest = rate
                .estimates
                .iter()
                .min_by_key(|(_, b)| **b)
                .map(|(p, b)| (p.clone(), *b));
            // The estimate covers everything sent to the peer: leave room for audio and RTP
            // overhead (about 5 %).
            let audio_kbps = if self.inner.audio_tee.is_some() {
                u32::try_from(cfg.audio_bps / 1000).unwrap_or(0) + 8
            } else {
                0
            };
            let (kbps, limited_by) = match lowest {
                Some((p, b)) => (
                    (b / 1000).saturating_mul(95) / 100
                        - audio_kbps.min((b / 1000).saturating_mul(95) / 100),
                    Some(p),
                ),
                None => (cfg.start_kbps, None),
            };
            let kbps = kbps.clamp(cfg.floor_kbps, cfg.ceiling_kbps);
            // Ignore changes under 3 % to avoid churning the rate controller.
            let diff = kbps.abs_diff(rate.current_kbps);
            if diff * 100 < rate.current_kbps * 3 {
                None
            } else {
                rate.current_kbps = kbps;
                Some(BitrateChange { kbps, limited_by })
            }
        };
        if let Some(change) = change {
            tracing::debug!(kbps = change.kbps, limited_by = ?change.limited_by, "encoder bitrate");
            encoder.set_bitrate(change.kbps);
            let listeners = self.inner.listeners.lock().clone();
            for l in listeners {
                l(&change);
            }
        }
    }

    /// First step of [`Publisher::detach`]: unlink `peer_id`'s branches from the shared tees, so
    /// no more data enters them. Before closing a peer, call this, then `Peer::close`, then
    /// `detach`: a branch stopped while its thread waits inside a running webrtcbin can
    /// deadlock, and a branch left on the tee while webrtcbin flushes would return `flushing`
    /// to the tee and stall the shared encoder for every peer.
    pub fn cut_off(&self, peer_id: &str) {
        let branches = self.inner.branches.lock();
        for b in branches.get(peer_id).into_iter().flatten() {
            release_tee_pad(&b.tee_pad);
        }
    }

    /// Stop sending to `peer_id`: unlink and remove its branches, and turn their transceivers
    /// `inactive` so that the next offer or answer withdraws the tracks. Call before
    /// `Peer::close`, or before `Peer::renegotiate` to unpublish on a live connection.
    pub fn detach(&self, peer_id: &str) {
        let branches = self
            .inner
            .branches
            .lock()
            .remove(peer_id)
            .unwrap_or_default();
        for b in branches {
            release_tee_pad(&b.tee_pad);
            let webrtc_sink = b
                .elements
                .last()
                .and_then(|pay| pay.static_pad("src"))
                .and_then(|src| src.peer().map(|sink| (src, sink)));
            if let Some((src, sink)) = webrtc_sink {
                let _ = src.unlink(&sink);
                if sink.has_property("transceiver") {
                    let trans = sink.property::<gst_webrtc::WebRTCRTPTransceiver>("transceiver");
                    trans.set_property(
                        "direction",
                        gst_webrtc::WebRTCRTPTransceiverDirection::Inactive,
                    );
                }
            }
            for e in &b.elements {
                let _ = e.set_state(gst::State::Null);
                let _ = self.inner.bin.remove(e);
            }
        }
        self.update_estimate(peer_id, None);
    }
}

/// Unlink a branch's tee pad and give it back to the tee (no-op once released).
fn release_tee_pad(tee_pad: &gst::Pad) {
    if let Some(tee) = tee_pad.parent_element() {
        if let Some(peer) = tee_pad.peer() {
            let _ = tee_pad.unlink(&peer);
        }
        tee.release_request_pad(tee_pad);
    }
}

/// The `sensorrotation` element for rotation metadata mode (output `metadata`: tags + meta).
fn build_rotation(cfg: &RotationConfig) -> Result<gst::Element, WebrtcError> {
    let el = make("sensorrotation")?;
    el.set_property_from_str("output", "metadata");
    match cfg {
        RotationConfig::Fixed(r) => {
            el.set_property_from_str("mode", "follow-app");
            el.set_property_from_str("rotation", &r.degrees().to_string());
        }
        RotationConfig::Sensor {
            replay_file,
            iio_device,
        } => {
            el.set_property_from_str("mode", "follow-sensor");
            if let Some(f) = replay_file {
                el.set_property("replay-file", f);
            }
            if let Some(d) = iio_device {
                el.set_property("iio-device", d);
            }
        }
    }
    Ok(el)
}

fn build_branch(
    inner: &Inner,
    tee: &gst::Element,
    kind: MediaKind,
    sink: &gst::Pad,
    params: LinkParams,
) -> Result<Branch, WebrtcError> {
    let queue = make("queue")?;
    // Per-peer buffer: a slow peer drops its own packets instead of stalling the shared encoder.
    queue.set_property("max-size-buffers", 0u32);
    queue.set_property("max-size-bytes", 0u32);
    queue.set_property("max-size-time", 500_000_000u64);
    queue.set_property_from_str("leaky", "downstream");
    let pay = match kind {
        MediaKind::Video => match inner.config.codec {
            VideoCodec::Vp8 => {
                let p = make("rtpvp8pay")?;
                p.set_property_from_str("picture-id-mode", "15-bit");
                p
            }
            VideoCodec::H264 => {
                let p = make("rtph264pay")?;
                p.set_property("config-interval", -1i32);
                p.set_property_from_str("aggregate-mode", "zero-latency");
                p
            }
        },
        MediaKind::Audio => make("rtpopuspay")?,
    };
    pay.set_property("pt", u32::from(params.pt));
    // The SSRC the SDP announces for this m-line (see `peer::with_ssrc`).
    pay.set_property("ssrc", params.ssrc);
    pay.set_property("mtu", 1200u32);
    if let Some(id) = params.twcc_id {
        let ext = gst_rtp::RTPHeaderExtension::create_from_uri(TWCC_URI)
            .ok_or_else(|| WebrtcError::MissingElement("rtphdrexttwcc".into()))?;
        ext.set_id(u32::from(id));
        pay.emit_by_name::<()>("add-extension", &[&ext]);
    }
    if let Some(id) = params.cvo_id {
        // Reads the orientation meta `sensorrotation` put on the frames (kept by the encoder).
        let ext = gst_rtp::RTPHeaderExtension::create_from_uri(CVO_URI)
            .ok_or_else(|| WebrtcError::MissingElement("rtphdrextcvo".into()))?;
        ext.set_id(u32::from(id));
        pay.emit_by_name::<()>("add-extension", &[&ext]);
    }
    let els = vec![queue.clone(), pay.clone()];
    add_all(&inner.bin, &els)?;
    link_chain(&els, "per-peer queue to payloader")?;
    let pay_src = pay
        .static_pad("src")
        .ok_or_else(|| WebrtcError::MissingElement("payloader src pad".into()))?;
    pay_src.link(sink).map_err(|e| WebrtcError::Link {
        what: format!("{} payloader to webrtcbin", kind.as_str()),
        detail: format!("{e:?}"),
    })?;
    for e in &els {
        e.sync_state_with_parent()
            .map_err(|e| WebrtcError::State(format!("starting branch: {e}")))?;
    }
    let tee_pad = tee
        .request_pad_simple("src_%u")
        .ok_or_else(|| WebrtcError::Link {
            what: "tee".into(),
            detail: "no src pad".into(),
        })?;
    let q_sink = queue
        .static_pad("sink")
        .ok_or_else(|| WebrtcError::MissingElement("queue sink pad".into()))?;
    tee_pad.link(&q_sink).map_err(|e| WebrtcError::Link {
        what: "tee to per-peer queue".into(),
        detail: format!("{e:?}"),
    })?;
    Ok(Branch {
        tee_pad,
        elements: els,
    })
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
