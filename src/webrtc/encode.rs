//! Which video codecs WebRTC carries, and the publisher's encoder chain.
//!
//! The encoder itself comes from the shared [`crate::encoder`] module (selection, real-time
//! configuration, runtime bitrate); this file only adds what RTP needs around it.

use gst::prelude::*;

use super::sdp::{RTP_VIDEO_CODECS, rtp_video_codec};
use super::{WebrtcError, make};
use crate::encoder::Codec;

/// Check that `codec` can be sent over WebRTC: VP8 and H.264 can; VP9 and AV1 are refused
/// with [`WebrtcError::Config`] (field `codec`) naming the codec. [`Publisher::new`] runs the
/// same check; call it to validate a configuration before building anything.
///
/// [`Publisher::new`]: super::publisher::Publisher::new
///
/// ```
/// use streamwire::encoder::Codec;
/// use streamwire::webrtc::encode::check_sendable;
/// assert!(check_sendable(Codec::H264).is_ok());
/// let e = check_sendable(Codec::Vp9).unwrap_err();
/// assert!(e.to_string().contains("`vp9`"), "{e}");
/// ```
pub fn check_sendable(codec: Codec) -> Result<(), WebrtcError> {
    rtp_sendable(codec).map(|_| ())
}

/// RTP encoding name and offerer payload type of a codec WebRTC carries, or the error of
/// [`check_sendable`].
pub(crate) fn rtp_sendable(codec: Codec) -> Result<(&'static str, u8), WebrtcError> {
    rtp_video_codec(codec).ok_or_else(|| unsendable(codec))
}

/// The error for a codec WebRTC does not carry.
pub(crate) fn unsendable(codec: Codec) -> WebrtcError {
    let carried: Vec<&str> = RTP_VIDEO_CODECS.iter().map(|c| c.name()).collect();
    WebrtcError::Config {
        field: "codec",
        detail: format!(
            "`{codec}` cannot be sent over WebRTC (it carries {})",
            carried.join(" and ")
        ),
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
    codec: Codec,
    encoder: crate::encoder::Encoder,
    elements: Vec<gst::Element>,
}

impl VideoEncoder {
    /// The codec this encoder produces.
    pub fn codec(&self) -> Codec {
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
    codec: Codec,
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
        crate::encoder::Encoder::new(codec, policy, &cfg).map_err(|e| WebrtcError::Config {
            field: "codec",
            detail: e.to_string(),
        })?;
    let mut elements = vec![encoder.element().clone()];
    if codec == Codec::H264 {
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
