//! The network probe's media: the client's probe stream is received (its packets counted by
//! webrtcbin's stats) and dropped without decoding; the server sends noise video
//! ([`VideoSource::Noise`]), VP8 at the rate of its congestion controller's estimate, so the
//! estimate climbs to the path's capacity (up to the probe's highest rate).

use crate::encoder::Codec;
use crate::webrtc::publisher::{AudioSource, Publisher, PublisherConfig, VideoSource};
use crate::webrtc::sdp::{media_codecs, video_codec_of};
use crate::webrtc::{WebrtcError, peer::Peer};

/// The probe stream's size and rate: enough pixels that noise needs megabits.
const WIDTH: i32 = 640;
const HEIGHT: i32 = 360;
const FPS: i32 = 30;

pub(super) struct Probe {
    publisher: Publisher,
}

impl Probe {
    /// The noise publisher, its bitrate within 150 kbit/s..`max_kbps`.
    pub(super) fn new(pipeline: &gst::Pipeline, max_kbps: u32) -> Result<Probe, WebrtcError> {
        let defaults = PublisherConfig::default();
        let cfg = PublisherConfig {
            video: VideoSource::Noise,
            audio: AudioSource::None,
            codec: Codec::Vp8,
            width: WIDTH,
            height: HEIGHT,
            fps: FPS,
            start_kbps: defaults.start_kbps.min(max_kbps),
            ceiling_kbps: max_kbps,
            ..defaults
        };
        Ok(Probe {
            publisher: Publisher::new(pipeline, cfg)?,
        })
    }

    /// Send the noise to `peer` and drop what it receives.
    pub(super) fn attach(&self, peer: &Peer) -> Result<(), WebrtcError> {
        self.publisher.attach(peer)?;
        peer.discard_received();
        Ok(())
    }

    /// The offer must send a probe stream and offer a `recvonly` VP8 video m-line.
    pub(super) fn check_offer(&self, offer: &gst_sdp::SDPMessage) -> Result<(), String> {
        let sends = offer.medias().any(|m| {
            matches!(m.media(), Some("video" | "audio"))
                && m.attributes()
                    .any(|a| a.key() == "sendonly" || a.key() == "sendrecv")
        });
        if !sends {
            return Err("the offer sends no probe stream: offer a `sendonly` video m-line".into());
        }
        let receives = offer.medias().any(|m| {
            m.media() == Some("video")
                && m.attributes().any(|a| a.key() == "recvonly")
                && media_codecs(m)
                    .iter()
                    .any(|(_, enc, _)| video_codec_of(enc) == Some(Codec::Vp8))
        });
        if !receives {
            return Err(
                "the offer has no `recvonly` video m-line with VP8 for the server's probe stream"
                    .into(),
            );
        }
        Ok(())
    }
}
