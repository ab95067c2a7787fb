//! SDP and RTP caps helpers shared by the peer connection and the publisher: payload types,
//! header-extension ids and URIs, SSRCs, the caps of offered and received m-lines, and
//! reading codecs and extensions out of a remote description.

use gst::glib;

use super::{MediaKind, TWCC_URI, WebrtcError};
use crate::encoder::Codec;

/// Parameters an m-line imposes on a send track.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LinkParams {
    /// RTP payload type.
    pub pt: u8,
    /// TWCC header-extension id, if negotiated.
    pub twcc_id: Option<u8>,
    /// SSRC the payloader must send with: the one written as `a=ssrc` in the SDP.
    pub ssrc: u32,
    /// CVO (`urn:3gpp:video-orientation`) header-extension id, if negotiated.
    pub cvo_id: Option<u8>,
    /// Audio level (RFC 6464) header-extension id, if negotiated (audio only).
    pub audio_level_id: Option<u8>,
}

/// Parse the SDP text of a remote `context` (offer / answer); it must have an m-line.
pub(crate) fn parse_sdp(
    sdp: &str,
    context: &'static str,
) -> Result<gst_sdp::SDPMessage, WebrtcError> {
    let msg = gst_sdp::SDPMessage::parse_buffer(sdp.as_bytes()).map_err(|e| WebrtcError::Sdp {
        context,
        detail: format!("field `sdp` does not parse: {e}"),
    })?;
    if msg.medias_len() == 0 {
        return Err(WebrtcError::Sdp {
            context,
            detail: "field `sdp` has no m= line".into(),
        });
    }
    Ok(msg)
}

/// Video codecs carried over RTP (sent and received), in the order a `recvonly` m-line
/// offers them.
pub(crate) const RTP_VIDEO_CODECS: [Codec; 2] = [Codec::Vp8, Codec::H264];

/// RTP encoding name (as in SDP) and offerer payload type of `codec`; `None` for a codec this
/// engine does not carry over RTP.
pub(crate) fn rtp_video_codec(codec: Codec) -> Option<(&'static str, u8)> {
    match codec {
        Codec::Vp8 => Some(("VP8", 96)),
        Codec::H264 => Some(("H264", 102)),
        Codec::Vp9 | Codec::Av1 => None,
    }
}

/// The carried video codec of an RTP encoding name (case-insensitive).
pub(crate) fn video_codec_of(encoding_name: &str) -> Option<Codec> {
    RTP_VIDEO_CODECS.into_iter().find(|c| {
        rtp_video_codec(*c).is_some_and(|(name, _)| name.eq_ignore_ascii_case(encoding_name))
    })
}

/// Caps offered for a `recvonly` m-line: every codec this side decodes.
pub(crate) fn receive_caps(kind: MediaKind) -> gst::Caps {
    match kind {
        MediaKind::Video => {
            let mut caps = gst::Caps::new_empty();
            let caps_mut = caps.make_mut();
            for (name, pt) in RTP_VIDEO_CODECS.into_iter().filter_map(rtp_video_codec) {
                caps_mut.append_structure(rtp_structure(
                    MediaKind::Video,
                    name,
                    90000,
                    pt,
                    Some(TWCC_EXT_ID),
                ));
            }
            caps
        }
        MediaKind::Audio => opus_caps(),
    }
}

/// RTP caps for Opus at [`OPUS_PT`] with the TWCC and audio level header extensions: what
/// this side offers to send and to receive.
pub(crate) fn opus_caps() -> gst::Caps {
    let mut s = rtp_structure(MediaKind::Audio, "OPUS", 48000, OPUS_PT, Some(TWCC_EXT_ID));
    s.set(format!("extmap-{AUDIO_LEVEL_EXT_ID}"), audio_level_extmap());
    gst::Caps::builder_full().structure(s).build()
}

/// The caps value of the audio level `extmap-N` field: `rtphdrextclientaudiolevel` writes it
/// as (direction, URI, attributes) with `vad=on` into the payloader's caps, and webrtcbin's
/// sink pad accepts only caps that match the transceiver's codec preferences, so these carry
/// the same value (the SDP gets `a=extmap:N urn:ietf:params:rtp-hdrext:ssrc-audio-level vad=on`).
pub(crate) fn audio_level_extmap() -> gst::Array {
    gst::Array::new(["", AUDIO_LEVEL_URI, "vad=on"])
}

/// Payload type for Opus when offering.
pub(crate) const OPUS_PT: u8 = 111;
/// TWCC extension id used when offering.
pub(crate) const TWCC_EXT_ID: u8 = 1;
/// CVO extension id used when offering (rotation metadata mode).
pub(crate) const CVO_EXT_ID: u8 = 3;
/// Audio level (RFC 6464) extension id used when offering (every Opus m-line).
pub(crate) const AUDIO_LEVEL_EXT_ID: u8 = 4;
pub(crate) use super::audio_level::AUDIO_LEVEL_URI;
/// URI of the Coordination of Video Orientation header extension (`rtphdrextcvo`).
pub(crate) const CVO_URI: &str = gststreamwire::rtphdrextcvo::URI;

/// RTP caps with the feedback this engine uses: NACK, PLI, FIR and transport-cc.
pub(crate) fn rtp_structure(
    kind: MediaKind,
    encoding_name: &str,
    clock_rate: i32,
    pt: u8,
    twcc_id: Option<u8>,
) -> gst::Structure {
    let mut s = gst::Structure::builder("application/x-rtp")
        .field("media", kind.as_str())
        .field("encoding-name", encoding_name)
        .field("clock-rate", clock_rate)
        .field("payload", i32::from(pt))
        .build();
    if kind == MediaKind::Video {
        s.set("rtcp-fb-nack", true);
        s.set("rtcp-fb-nack-pli", true);
        s.set("rtcp-fb-ccm-fir", true);
    }
    if encoding_name == "OPUS" {
        s.set("encoding-params", "2");
        s.set("sprop-stereo", "0");
        // This side decodes in-band FEC (opusdec use-inband-fec) and DTX.
        s.set("useinbandfec", "1");
        s.set("usedtx", "1");
    }
    if encoding_name == "H264" {
        s.set("packetization-mode", "1");
        s.set("profile-level-id", "42e01f");
    }
    if let Some(id) = twcc_id {
        s.set("rtcp-fb-transport-cc", true);
        s.set(format!("extmap-{id}"), TWCC_URI);
    }
    s
}

/// A random SSRC for a local track (never 0).
pub(crate) fn new_ssrc() -> u32 {
    loop {
        let ssrc = glib::random_int();
        if ssrc != 0 {
            return ssrc;
        }
    }
}

/// `caps` with `ssrc` set on every structure.
///
/// webrtcbin 1.22 writes `a=ssrc` for a send m-line only from caps that carry an `ssrc`
/// field: the transceiver's codec preferences, or the caps that already reached its sink pad.
/// A branch linked just before `create-offer`/`create-answer` has not pushed caps yet, so
/// without this the SDP names no SSRC for it. Chromium then has to route that stream under
/// BUNDLE without a MID header extension (webrtcbin 1.22 sends none) and without a signalled
/// SSRC, and drops it: the browser plays nothing. Putting the SSRC in the codec preferences
/// (and the same value on the payloader) makes the SDP deterministic.
pub(crate) fn with_ssrc(caps: &gst::Caps, ssrc: u32) -> gst::Caps {
    let mut caps = caps.clone();
    for s in caps.make_mut().iter_mut() {
        s.set("ssrc", ssrc);
    }
    caps
}

/// What a local send track needs from an offered m-line.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TrackWanted<'a> {
    pub kind: MediaKind,
    /// RTP encoding name (`VP8`, `H264`, `OPUS`).
    pub encoding_name: &'a str,
    /// The track's SSRC towards this peer.
    pub ssrc: u32,
    /// The track sends the CVO header extension (kept if the offer lists it).
    pub cvo: bool,
}

/// Find the offer's first unused `recvonly` m-line for `track`'s kind and codec.
pub(crate) fn find_mline_for(
    offer: &gst_sdp::SDPMessage,
    track: &TrackWanted<'_>,
    used: &[u32],
) -> Option<(u32, LinkParams)> {
    for (idx, media) in offer.medias().enumerate() {
        let idx = u32::try_from(idx).ok()?;
        if used.contains(&idx) || media.media() != Some(track.kind.as_str()) {
            continue;
        }
        let recvonly = media.attributes().any(|a| a.key() == "recvonly");
        if !recvonly {
            continue;
        }
        let Some(pt) = media_codecs(media)
            .into_iter()
            .find(|(_, enc, _)| enc.eq_ignore_ascii_case(track.encoding_name))
            .map(|(pt, _, _)| pt)
        else {
            continue;
        };
        let twcc_id = media_twcc_id(media);
        let cvo_id = if track.cvo {
            media_ext_id(media, CVO_URI)
        } else {
            None
        };
        let audio_level_id = if track.kind == MediaKind::Audio {
            media_audio_level_id(media)
        } else {
            None
        };
        return Some((
            idx,
            LinkParams {
                pt,
                twcc_id,
                ssrc: track.ssrc,
                cvo_id,
                audio_level_id,
            },
        ));
    }
    None
}

/// `(payload type, encoding name, clock rate)` of every `rtpmap` in an m-line.
pub(crate) fn media_codecs(media: &gst_sdp::SDPMediaRef) -> Vec<(u8, String, i32)> {
    media
        .attributes()
        .filter(|a| a.key() == "rtpmap")
        .filter_map(|a| {
            let v = a.value()?;
            let mut parts = v.split_whitespace();
            let pt = parts.next()?.parse::<u8>().ok()?;
            let mut enc = parts.next()?.split('/');
            let name = enc.next()?.to_owned();
            let clock = enc.next()?.parse::<i32>().ok()?;
            Some((pt, name, clock))
        })
        .collect()
}

/// The ICE username fragment of a description: the first media's `a=ice-ufrag`, else the
/// session-level one. A new value in an offer means the offerer restarted ICE.
pub(crate) fn ice_ufrag(sdp: &gst_sdp::SDPMessageRef) -> Option<String> {
    sdp.medias()
        .find_map(|m| m.attribute_val("ice-ufrag"))
        .or_else(|| sdp.attribute_val("ice-ufrag"))
        .map(str::to_owned)
}

/// The TWCC header-extension id an m-line declares, if any.
pub(crate) fn media_twcc_id(media: &gst_sdp::SDPMediaRef) -> Option<u8> {
    media_ext_id(media, TWCC_URI)
}

/// The audio level header-extension id an m-line declares, if any.
pub(crate) fn media_audio_level_id(media: &gst_sdp::SDPMediaRef) -> Option<u8> {
    media_ext_id(media, AUDIO_LEVEL_URI)
}

/// The id an m-line's `a=extmap` gives to the header extension `uri`, if any.
fn media_ext_id(media: &gst_sdp::SDPMediaRef, uri: &str) -> Option<u8> {
    media
        .attributes()
        .filter(|a| a.key() == "extmap")
        .filter_map(|a| a.value())
        .find(|v| v.split_whitespace().nth(1) == Some(uri))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|id| id.split('/').next())
        .and_then(|id| id.parse::<u8>().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_vp8_and_h264_are_carried_over_rtp() {
        assert_eq!(rtp_video_codec(Codec::Vp8), Some(("VP8", 96)));
        assert_eq!(rtp_video_codec(Codec::H264), Some(("H264", 102)));
        assert_eq!(rtp_video_codec(Codec::Vp9), None);
        assert_eq!(rtp_video_codec(Codec::Av1), None);
        assert_eq!(video_codec_of("vp8"), Some(Codec::Vp8));
        assert_eq!(video_codec_of("H264"), Some(Codec::H264));
        assert_eq!(video_codec_of("VP9"), None);
    }

    #[test]
    fn an_answer_keeps_the_offers_audio_level_id_for_audio_only() {
        // As Chromium offers it: its own ids, no `vad` attribute.
        let sdp = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
                   m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\n\
                   a=recvonly\r\na=rtpmap:111 opus/48000/2\r\n\
                   a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n\
                   a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01\r\n\
                   m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\n\
                   a=recvonly\r\na=rtpmap:96 VP8/90000\r\n\
                   a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n";
        gst::init().unwrap();
        let offer = parse_sdp(sdp, "offer").unwrap();
        let want = |kind, encoding_name| TrackWanted {
            kind,
            encoding_name,
            ssrc: 7,
            cvo: false,
        };
        let (idx, p) = find_mline_for(&offer, &want(MediaKind::Audio, "OPUS"), &[]).unwrap();
        assert_eq!(
            (idx, p.pt, p.twcc_id, p.audio_level_id),
            (0, 111, Some(3), Some(1))
        );
        let (idx, p) = find_mline_for(&offer, &want(MediaKind::Video, "VP8"), &[]).unwrap();
        assert_eq!((idx, p.audio_level_id), (1, None));
    }

    #[test]
    fn the_audio_level_id_is_read_from_string_and_array_caps_fields() {
        gst::init().unwrap();
        let caps = opus_caps();
        let s = caps.structure(0).unwrap();
        assert_eq!(
            crate::webrtc::audio_level::ext_id_in_caps(s),
            Some(AUDIO_LEVEL_EXT_ID)
        );
        let s = gst::Structure::builder("application/x-rtp")
            .field("extmap-1", TWCC_URI)
            .field("extmap-5", AUDIO_LEVEL_URI)
            .build();
        assert_eq!(crate::webrtc::audio_level::ext_id_in_caps(&s), Some(5));
    }
}
