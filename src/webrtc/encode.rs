//! Video codecs carried over RTP and the publisher's encoder chain.
//!
//! The encoder itself comes from the shared [`crate::encoder`] module (selection, real-time
//! configuration, runtime bitrate); this file only adds what RTP needs around it.

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
///
/// The encoder element comes from the shared [`crate::encoder`] module: chosen by
/// [`crate::encoder::select`] (hardware first when it works, else software), configured for
/// real time from its table row, and retargeted with [`crate::encoder::Encoder::set_bitrate`]
/// by the congestion controller. For H.264 a parser and a caps filter follow it so that
/// `rtph264pay` gets constrained-baseline byte-stream access units with SPS/PPS on every IDR.
#[derive(Debug, Clone)]
pub struct VideoEncoder {
    codec: VideoCodec,
    encoder: crate::encoder::Encoder,
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
        self.encoder.element()
    }

    /// Retarget the encoder's bitrate (kbit/s); takes effect while playing.
    pub fn set_bitrate(&self, kbps: u32) {
        if let Err(e) = self.encoder.set_bitrate(kbps) {
            tracing::warn!("cannot retarget the video encoder: {e}");
        }
    }

    /// Current bitrate target in kbit/s.
    pub fn bitrate(&self) -> u32 {
        self.encoder.bitrate_kbps().unwrap_or(0)
    }
}

impl VideoCodec {
    /// The shared encoder module's codec.
    pub fn encoder_codec(self) -> crate::encoder::Codec {
        match self {
            VideoCodec::Vp8 => crate::encoder::Codec::Vp8,
            VideoCodec::H264 => crate::encoder::Codec::H264,
        }
    }
}

/// Picture and rate settings of a published video track.
#[derive(Debug, Clone, Copy)]
pub(crate) struct VideoEncodeParams {
    pub width: i32,
    pub height: i32,
    pub fps: i32,
    pub kbps: u32,
    /// Frames between keyframes; receivers that miss one ask with PLI/FIR, so the interval
    /// only bounds recovery when feedback is lost.
    pub keyframe_interval: u32,
}

/// Select and build a real-time encoder for `codec` through [`crate::encoder`].
pub(crate) fn build_video_encoder(
    codec: VideoCodec,
    policy: crate::encoder::HardwarePolicy,
    p: VideoEncodeParams,
) -> Result<VideoEncoder, WebrtcError> {
    let cfg = crate::encoder::EncoderConfig {
        width: u32::try_from(p.width).unwrap_or(0),
        height: u32::try_from(p.height).unwrap_or(0),
        fps: u32::try_from(p.fps).unwrap_or(30),
        bitrate_kbps: p.kbps,
        keyframe_interval: p.keyframe_interval,
    };
    let encoder =
        crate::encoder::Encoder::new(codec.encoder_codec(), policy, &cfg).map_err(|e| {
            WebrtcError::Config {
                field: "codec",
                detail: e.to_string(),
            }
        })?;
    let mut elements = vec![encoder.element().clone()];
    if codec == VideoCodec::H264 {
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
        elements.push(parse);
        elements.push(caps);
    }
    Ok(VideoEncoder {
        codec,
        encoder,
        elements,
    })
}
