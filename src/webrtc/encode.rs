//! Software video encoder used by the publisher.
//!
//! Deliberately small and private to the WebRTC module: one function builds a low-latency
//! VP8 (`vp8enc`) or H.264 (`x264enc`) encoder, and [`VideoEncoder::set_bitrate`] retargets
//! it. The shared encoder-selection module replaces this at merge time.

use gst::prelude::*;

use super::{WebrtcError, make};

/// Video codec carried over RTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VideoCodec {
    /// VP8 (`vp8enc`, `rtpvp8pay`, `vp8dec`).
    Vp8,
    /// H.264 constrained baseline (`x264enc`, `rtph264pay`, `avdec_h264`).
    H264,
}

impl VideoCodec {
    /// RTP encoding name as it appears in SDP.
    pub fn encoding_name(self) -> &'static str {
        match self {
            VideoCodec::Vp8 => "VP8",
            VideoCodec::H264 => "H264",
        }
    }

    /// Payload type this side uses when it is the offerer.
    pub fn default_payload_type(self) -> u8 {
        match self {
            VideoCodec::Vp8 => 96,
            VideoCodec::H264 => 102,
        }
    }

    /// Parse an RTP encoding name (case-insensitive).
    pub fn from_encoding_name(name: &str) -> Option<Self> {
        match name.to_ascii_uppercase().as_str() {
            "VP8" => Some(VideoCodec::Vp8),
            "H264" => Some(VideoCodec::H264),
            _ => None,
        }
    }
}

impl std::str::FromStr for VideoCodec {
    type Err = WebrtcError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_encoding_name(s).ok_or_else(|| WebrtcError::Config {
            field: "codec",
            detail: format!("unknown video codec `{s}` (expected vp8 or h264)"),
        })
    }
}

/// A built encoder chain: link `elements` in order (raw video in, encoded video out).
#[derive(Debug, Clone)]
pub struct VideoEncoder {
    codec: VideoCodec,
    encoder: gst::Element,
    elements: Vec<gst::Element>,
}

impl VideoEncoder {
    /// The codec this encoder produces.
    pub fn codec(&self) -> VideoCodec {
        self.codec
    }

    /// Elements to add and link in order.
    pub fn elements(&self) -> &[gst::Element] {
        &self.elements
    }

    /// The encoder element itself.
    pub fn encoder(&self) -> &gst::Element {
        &self.encoder
    }

    /// Retarget the encoder's bitrate (kbit/s); takes effect while playing.
    pub fn set_bitrate(&self, kbps: u32) {
        match self.codec {
            VideoCodec::Vp8 => {
                let bps = i32::try_from(u64::from(kbps) * 1000).unwrap_or(i32::MAX);
                self.encoder.set_property("target-bitrate", bps);
            }
            VideoCodec::H264 => self.encoder.set_property("bitrate", kbps),
        }
    }

    /// Current bitrate target in kbit/s.
    pub fn bitrate(&self) -> u32 {
        match self.codec {
            VideoCodec::Vp8 => {
                u32::try_from(self.encoder.property::<i32>("target-bitrate") / 1000).unwrap_or(0)
            }
            VideoCodec::H264 => self.encoder.property::<u32>("bitrate"),
        }
    }
}

/// Build a low-latency software encoder for `codec`.
///
/// `keyframe_interval` is in frames; receivers that miss a keyframe ask for one with PLI/FIR,
/// so the interval only bounds recovery when feedback is lost.
pub(crate) fn build_video_encoder(
    codec: VideoCodec,
    kbps: u32,
    keyframe_interval: u32,
) -> Result<VideoEncoder, WebrtcError> {
    let (encoder, elements) = match codec {
        VideoCodec::Vp8 => {
            let enc = make("vp8enc")?;
            enc.set_property("deadline", 1i64);
            enc.set_property("cpu-used", 16i32);
            enc.set_property("threads", 2i32);
            enc.set_property("lag-in-frames", 0i32);
            enc.set_property_from_str("end-usage", "cbr");
            enc.set_property_from_str("error-resilient", "default");
            enc.set_property(
                "keyframe-max-dist",
                i32::try_from(keyframe_interval).unwrap_or(i32::MAX),
            );
            // Small rate-control buffer: react quickly to bitrate changes.
            enc.set_property("buffer-size", 300i32);
            enc.set_property("buffer-initial-size", 200i32);
            enc.set_property("buffer-optimal-size", 250i32);
            (enc.clone(), vec![enc])
        }
        VideoCodec::H264 => {
            let enc = make("x264enc")?;
            enc.set_property_from_str("tune", "zerolatency");
            enc.set_property_from_str("speed-preset", "ultrafast");
            enc.set_property("bframes", 0u32);
            enc.set_property("key-int-max", keyframe_interval);
            enc.set_property("threads", 2u32);
            let parse = make("h264parse")?;
            parse.set_property("config-interval", -1i32);
            // Byte-stream access units: what rtph264pay packs without an avcC round trip.
            let caps = make("capsfilter")?;
            caps.set_property(
                "caps",
                gst::Caps::builder("video/x-h264")
                    .field("stream-format", "byte-stream")
                    .field("alignment", "au")
                    .field("profile", "constrained-baseline")
                    .build(),
            );
            (enc.clone(), vec![enc, parse, caps])
        }
    };
    let built = VideoEncoder {
        codec,
        encoder,
        elements,
    };
    built.set_bitrate(kbps);
    Ok(built)
}
