//! The capture and encode chains of a [`Publisher`](super::Publisher): raw video through the
//! shared encoder into a tee, raw audio through Opus into a tee.

use gst::prelude::*;

use super::config::{AudioSource, PublisherConfig, RotationConfig, VideoSource};
use crate::webrtc::audio_dump::MicTaps;
use crate::webrtc::encode::{VideoEncodeParams, VideoEncoder, build_video_encoder};
use crate::webrtc::{WebrtcError, make};

/// Name of the queue in front of the video encoder; its streaming thread, `swenc:src`, runs
/// the encoder (used to measure the shared encoder's CPU time).
pub const ENCODER_QUEUE_NAME: &str = "swenc";

/// Shared encoder, its output tee and the raw video pad before it.
pub(super) type VideoChain = (VideoEncoder, gst::Element, gst::Pad);

/// The video chain (encoder, tee, raw pad) and the rotation element, if any.
pub(super) fn build_video(
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
        VideoSource::Noise => noise()?,
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
    let rotation = config
        .rotation
        .as_ref()
        .map(|r| build_rotation(r, config))
        .transpose()?;
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

/// The audio chain's ends the publisher keeps.
pub(super) struct AudioChain {
    /// The Opus encoder (its expected loss follows the receivers' reports).
    pub encoder: gst::Element,
    /// The output tee, one branch per peer.
    pub tee: gst::Element,
    /// A processed microphone's dump taps.
    pub mic: Option<MicTaps>,
}

/// The audio chain: source, processing for a microphone, Opus encoder and output tee.
pub(super) fn build_audio(
    bin: &gst::Bin,
    config: &PublisherConfig,
    elements: &mut Vec<gst::Element>,
) -> Result<Option<AudioChain>, WebrtcError> {
    let mut chain = Vec::new();
    let mut mic = None;
    let mut processed = |chain: &mut Vec<gst::Element>,
                         source: gst::Element,
                         probe: &Option<String>|
     -> Result<(), WebrtcError> {
        let dsp_chain = config.audio_processing.chain(probe.as_deref())?;
        mic = Some(MicTaps {
            source: source.clone(),
            dsp: dsp_chain[dsp_chain.len() - 1].clone(),
            probe: probe.clone(),
            processing: config.audio_processing,
        });
        chain.push(source);
        chain.extend(dsp_chain);
        Ok(())
    };
    match &config.audio {
        AudioSource::None => return Ok(None),
        AudioSource::TestTone => {
            let s = make("audiotestsrc")?;
            s.set_property("is-live", true);
            s.set_property("volume", 0.1f64);
            chain.push(s);
        }
        AudioSource::Microphone { echo_probe } => {
            processed(&mut chain, make("autoaudiosrc")?, echo_probe)?
        }
        AudioSource::MicrophoneElement {
            element,
            echo_probe,
        } => processed(&mut chain, element.clone(), echo_probe)?,
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
    chain.push(caps.clone());
    let enc = make("opusenc")?;
    enc.set_property("bitrate", config.audio_bps);
    enc.set_property_from_str("frame-size", "20");
    // In-band FEC sized by `packet-loss-percentage` (set from the receivers' reports).
    enc.set_property("inband-fec", config.audio_fec);
    enc.set_property("dtx", config.audio_dtx);
    chain.push(enc.clone());
    let tee = make("tee")?;
    tee.set_property("allow-not-linked", true);
    chain.push(tee.clone());
    add_all(bin, &chain)?;
    elements.extend(chain.iter().cloned());
    link_chain(&chain, "audio capture and encoder")?;
    // The level of the raw audio travels with each encoded packet (RFC 6464).
    if let (Some(raw), Some(encoded)) = (caps.static_pad("src"), tee.static_pad("sink")) {
        crate::webrtc::audio_level::stamp_levels(&raw, &encoded);
    }
    Ok(Some(AudioChain {
        encoder: enc,
        tee,
        mic,
    }))
}

/// The `sensorrotation` element for rotation metadata mode (output `metadata`: tags + meta),
/// with the camera of `config`.
fn build_rotation(
    cfg: &RotationConfig,
    config: &PublisherConfig,
) -> Result<gst::Element, WebrtcError> {
    let el = make("sensorrotation")?;
    el.set_property_from_str("output", "metadata");
    el.set_property("camera-facing", config.camera_facing);
    el.set_property_from_str(
        "sensor-orientation",
        &config.sensor_orientation.degrees().to_string(),
    );
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

pub(super) fn link_chain(chain: &[gst::Element], what: &str) -> Result<(), WebrtcError> {
    gst::Element::link_many(chain).map_err(|e| WebrtcError::Link {
        what: what.to_owned(),
        detail: e.to_string(),
    })
}

pub(super) fn add_all(bin: &gst::Bin, els: &[gst::Element]) -> Result<(), WebrtcError> {
    bin.add_many(els)
        .map_err(|e| WebrtcError::State(format!("adding elements: {e}")))
}

/// [`VideoSource::Noise`]: a bin of `videotestsrc is-live=true pattern=snow ! videobalance
/// contrast=0.2` with a ghost `src` pad.
fn noise() -> Result<gst::Element, WebrtcError> {
    let bin = gst::Bin::with_name("noise");
    let src = make("videotestsrc")?;
    src.set_property("is-live", true);
    src.set_property_from_str("pattern", "snow");
    let balance = make("videobalance")?;
    balance.set_property("contrast", 0.2f64);
    bin.add_many([&src, &balance])
        .map_err(|e| WebrtcError::State(format!("noise source: {e}")))?;
    src.link(&balance).map_err(|e| WebrtcError::Link {
        what: "noise source".into(),
        detail: e.to_string(),
    })?;
    let out = balance
        .static_pad("src")
        .ok_or_else(|| WebrtcError::MissingElement("videobalance src pad".into()))?;
    let ghost = gst::GhostPad::with_target(&out)
        .map_err(|e| WebrtcError::State(format!("noise source: {e}")))?;
    bin.add_pad(&ghost)
        .map_err(|e| WebrtcError::State(format!("noise source: {e}")))?;
    Ok(bin.upcast())
}
