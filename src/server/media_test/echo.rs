//! The echo test's media: every track the client sends comes back on the offer's `recvonly`
//! m-line of its kind, held for the echo delay, without decoding:
//!
//! ```text
//! webrtcbin src (VP8)  -> rtpvp8depay  -> queue -> identity sync ts-offset=delay -> rtpvp8pay  -> webrtcbin sink
//! webrtcbin src (H264) -> rtph264depay -> queue -> identity sync ts-offset=delay -> rtph264pay -> webrtcbin sink
//! webrtcbin src (OPUS) -> rtpopusdepay -> queue -> identity sync ts-offset=delay -> rtpopuspay -> webrtcbin sink
//! ```
//!
//! The `identity` releases each frame one delay after its time (a silence gap stays a gap),
//! then its timestamps move by the delay, so the sender reports of the echo tell the time it
//! is sent. A keyframe request from the client's receiver travels upstream through the chain
//! and reaches the client's sender as a PLI. Tracks of a kind with no `recvonly` m-line that
//! takes their codec, and further tracks of a kind, are received and dropped.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use gst::prelude::*;
use parking_lot::Mutex;

use super::link;
use crate::encoder::Codec;
use crate::webrtc::peer::{Peer, SendTrack};
use crate::webrtc::publisher::{PayloadOf, payloader};
use crate::webrtc::sdp::{
    LinkParams, TWCC_EXT_ID, media_codecs, new_ssrc, opus_caps, rtp_structure, video_codec_of,
};
use crate::webrtc::{MediaKind, WebrtcError, make};

/// At most this much media (besides the delay's worth) waits in an echo chain, bytes.
const QUEUE_BYTES: u32 = 16 * 1024 * 1024;

/// One kind's echo chain.
#[derive(Default)]
struct Slot {
    /// The chain's first pad, once the answer linked its end to webrtcbin.
    input: Option<gst::Pad>,
    /// A received pad that came before the chain, blocked by the probe until it is linked.
    waiting: Option<(gst::Pad, gst::PadProbeId)>,
}

pub(super) struct Echo {
    pipeline: gst::Pipeline,
    delay: Duration,
    slots: Mutex<HashMap<MediaKind, Slot>>,
}

/// The RTP encoding the client sends on each kind: the first codec the server takes of the
/// first m-line of that kind the offer sends on (the one the answer picks).
fn sent_encodings(offer: &gst_sdp::SDPMessage) -> Vec<(MediaKind, String)> {
    let mut sent: Vec<(MediaKind, String)> = Vec::new();
    for media in offer.medias() {
        let Some(kind) = media.media().and_then(MediaKind::from_sdp) else {
            continue;
        };
        let sends = media
            .attributes()
            .any(|a| a.key() == "sendonly" || a.key() == "sendrecv");
        if !sends || sent.iter().any(|(k, _)| *k == kind) {
            continue;
        }
        let codec = media_codecs(media)
            .into_iter()
            .map(|(_, enc, _)| enc)
            .find(|enc| match kind {
                MediaKind::Video => video_codec_of(enc).is_some(),
                MediaKind::Audio => enc.eq_ignore_ascii_case("OPUS"),
            });
        if let Some(enc) = codec {
            sent.push((kind, enc.to_ascii_uppercase()));
        }
    }
    sent
}

/// Whether the offer has a `recvonly` m-line of `kind` that takes `encoding`.
fn receives(offer: &gst_sdp::SDPMessage, kind: MediaKind, encoding: &str) -> bool {
    offer.medias().any(|m| {
        m.media() == Some(kind.as_str())
            && m.attributes().any(|a| a.key() == "recvonly")
            && media_codecs(m)
                .iter()
                .any(|(_, enc, _)| enc.eq_ignore_ascii_case(encoding))
    })
}

impl Echo {
    pub(super) fn new(pipeline: &gst::Pipeline, delay: Duration) -> Echo {
        Echo {
            pipeline: pipeline.clone(),
            delay,
            slots: Mutex::new(HashMap::new()),
        }
    }

    /// Route the peer's received pads into the echo chains.
    pub(super) fn attach(self: &Arc<Self>, peer: &Peer) {
        let weak = Arc::downgrade(self);
        peer.webrtcbin().connect_pad_added(move |_, pad| {
            if pad.direction() != gst::PadDirection::Src {
                return;
            }
            let Some(echo) = weak.upgrade() else { return };
            if let Err(e) = echo.received(pad) {
                tracing::warn!(error = %e, pad = %pad.name(), "echo: received pad not linked");
            }
        });
    }

    /// Before the offer is applied: one send track per kind the client sends and can receive
    /// back in the same codec. Errors say why the offer cannot be echoed.
    pub(super) fn prepare(
        self: &Arc<Self>,
        peer: &Peer,
        offer: &gst_sdp::SDPMessage,
    ) -> Result<(), String> {
        let sent = sent_encodings(offer);
        if sent.is_empty() {
            return Err(
                "the offer sends no audio (Opus) or video (VP8, H264) on a `sendonly` or \
                        `sendrecv` m-line"
                    .into(),
            );
        }
        let echoed: Vec<(MediaKind, String)> = sent
            .into_iter()
            .filter(|(kind, enc)| receives(offer, *kind, enc))
            .collect();
        if echoed.is_empty() {
            return Err(
                "the offer has no `recvonly` m-line that takes the codec it sends: offer \
                        one per kind to receive the echo on"
                    .into(),
            );
        }
        let mut used_ssrcs = Vec::new();
        for (kind, encoding) in echoed {
            let mut ssrc = new_ssrc();
            while used_ssrcs.contains(&ssrc) {
                ssrc = new_ssrc();
            }
            used_ssrcs.push(ssrc);
            let offer_caps = match kind {
                MediaKind::Audio => opus_caps(),
                MediaKind::Video => gst::Caps::builder_full()
                    .structure(rtp_structure(kind, &encoding, 90000, 96, Some(TWCC_EXT_ID)))
                    .build(),
            };
            let of = match kind {
                MediaKind::Audio => PayloadOf::Opus { dtx: false },
                MediaKind::Video => {
                    PayloadOf::Video(video_codec_of(&encoding).unwrap_or(Codec::Vp8))
                }
            };
            let weak = Arc::downgrade(self);
            let track = SendTrack {
                kind,
                ssrc,
                cvo: false,
                encoding_name: encoding.clone(),
                offer_caps,
                offer_params: LinkParams {
                    pt: 96,
                    twcc_id: Some(TWCC_EXT_ID),
                    ssrc,
                    cvo_id: None,
                    audio_level_id: None,
                },
                link: Box::new(move |sink: &gst::Pad, params: LinkParams| {
                    let echo = weak
                        .upgrade()
                        .ok_or_else(|| WebrtcError::State("echo test ended".into()))?;
                    echo.build_chain(kind, of, sink, &params)
                }),
            };
            peer.add_send_track(track)
                .map_err(|e| format!("echo of the {} track: {e}", kind.as_str()))?;
            self.slots.lock().entry(kind).or_default();
        }
        Ok(())
    }

    /// The chain of `kind` into webrtcbin's `sink` pad, as the answer's m-line says.
    fn build_chain(
        &self,
        kind: MediaKind,
        of: PayloadOf,
        sink: &gst::Pad,
        params: &LinkParams,
    ) -> Result<(), WebrtcError> {
        let depay = match of {
            PayloadOf::Opus { .. } => make("rtpopusdepay")?,
            PayloadOf::Video(Codec::H264) => make("rtph264depay")?,
            PayloadOf::Video(_) => make("rtpvp8depay")?,
        };
        if depay.has_property("request-keyframe") {
            // A lost packet asks the client for a keyframe rather than echoing a broken one.
            depay.set_property("request-keyframe", true);
            depay.set_property("wait-for-keyframe", true);
        }
        let delay_ns = u64::try_from(self.delay.as_nanos()).unwrap_or(u64::MAX);
        let queue = make("queue")?;
        queue.set_property("max-size-buffers", 0u32);
        queue.set_property("max-size-bytes", QUEUE_BYTES);
        queue.set_property("max-size-time", delay_ns + 1_000_000_000);
        queue.set_property_from_str("leaky", "downstream");
        let hold = make("identity")?;
        hold.set_property("sync", true);
        hold.set_property("ts-offset", i64::try_from(delay_ns).unwrap_or(i64::MAX));
        let shift = gst::ClockTime::from_nseconds(delay_ns);
        if let Some(src) = hold.static_pad("src") {
            src.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
                if let Some(gst::PadProbeData::Buffer(buffer)) = info.data.as_mut() {
                    let b = buffer.make_mut();
                    b.set_pts(b.pts().map(|t| t + shift));
                    b.set_dts(b.dts().map(|t| t + shift));
                }
                gst::PadProbeReturn::Ok
            });
        }
        let pay = payloader(of, params)?;
        let chain = [depay.clone(), queue, hold, pay.clone()];
        self.pipeline
            .add_many(chain.iter())
            .map_err(|e| WebrtcError::Link {
                what: "echo chain".into(),
                detail: e.to_string(),
            })?;
        gst::Element::link_many(chain.iter()).map_err(|e| WebrtcError::Link {
            what: "echo chain".into(),
            detail: e.to_string(),
        })?;
        let pay_src = pay
            .static_pad("src")
            .ok_or_else(|| WebrtcError::MissingElement("payloader src pad".into()))?;
        pay_src.link(sink).map_err(|e| WebrtcError::Link {
            what: format!("echo {} payloader to webrtcbin", kind.as_str()),
            detail: format!("{e:?}"),
        })?;
        for e in chain.iter().rev() {
            e.sync_state_with_parent()
                .map_err(|e| WebrtcError::State(format!("starting the echo chain: {e}")))?;
        }
        let input = depay
            .static_pad("sink")
            .ok_or_else(|| WebrtcError::MissingElement("depayloader sink pad".into()))?;
        let waiting = {
            let mut slots = self.slots.lock();
            let slot = slots.entry(kind).or_default();
            slot.input = Some(input.clone());
            slot.waiting.take()
        };
        if let Some((src, block)) = waiting {
            link(&src, &input)?;
            src.remove_probe(block);
        }
        tracing::debug!(kind = kind.as_str(), pt = params.pt, "echo chain ready");
        Ok(())
    }

    /// A received pad: into its kind's chain (now, or once the chain exists), else dropped.
    fn received(&self, pad: &gst::Pad) -> Result<(), WebrtcError> {
        let kind = pad.current_caps().and_then(|c| {
            c.structure(0)
                .and_then(|s| s.get::<&str>("media").ok())
                .and_then(MediaKind::from_sdp)
        });
        let target = {
            let mut slots = self.slots.lock();
            match kind.and_then(|k| slots.get_mut(&k)) {
                Some(slot) => match &slot.input {
                    Some(input) if !input.is_linked() => Some(input.clone()),
                    Some(_) => None,
                    None if slot.waiting.is_none() => {
                        // Nothing may flow into the unlinked pad meanwhile.
                        if let Some(block) = pad
                            .add_probe(gst::PadProbeType::BLOCK_DOWNSTREAM, |_, _| {
                                gst::PadProbeReturn::Ok
                            })
                        {
                            slot.waiting = Some((pad.clone(), block));
                            return Ok(());
                        }
                        None
                    }
                    None => None,
                },
                None => None,
            }
        };
        match target {
            Some(input) => link(pad, &input),
            None => crate::webrtc::discard(self.pipeline.upcast_ref(), pad),
        }
    }
}
