//! Per-peer send branches of a [`Publisher`]: `tee -> queue -> payloader -> webrtcbin`, their
//! m-line parameters, and their removal in the order that cannot deadlock.

use std::sync::Arc;

use gst::prelude::*;
use gst_rtp::prelude::*;

use super::sources::{add_all, link_chain};
use super::{Inner, Publisher};
use crate::encoder::Codec;
use crate::webrtc::encode::{rtp_sendable, unsendable};
use crate::webrtc::peer::{ConnectionState, LinkFn, Peer, SendTrack};
use crate::webrtc::sdp::{
    AUDIO_LEVEL_EXT_ID, AUDIO_LEVEL_URI, CVO_EXT_ID, CVO_URI, LinkParams, OPUS_PT, TWCC_EXT_ID,
    new_ssrc, opus_caps, rtp_structure,
};
use crate::webrtc::{MediaKind, TWCC_URI, WebrtcError, make};

pub(super) struct Branch {
    tee_pad: gst::Pad,
    elements: Vec<gst::Element>,
}

impl Publisher {
    /// Send this publisher's tracks to `peer`. When offering, call it before `peer.negotiate()`,
    /// or follow it with `peer.renegotiate(&[])` on a negotiated peer; an answerer sends the
    /// tracks from its answer to the next offer with a matching `recvonly` m-line.
    pub fn attach(&self, peer: &Peer) -> Result<(), WebrtcError> {
        let mut video_ssrc = None;
        if let Some((_, tee, _)) = &self.inner.video {
            let (encoding_name, pt) = rtp_sendable(self.inner.config.codec)?;
            let ssrc = new_ssrc();
            video_ssrc = Some(ssrc);
            let cvo = self.inner.rotation.is_some();
            let mut s = rtp_structure(
                MediaKind::Video,
                encoding_name,
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
                encoding_name: encoding_name.to_owned(),
                offer_caps: gst::Caps::builder_full().structure(s).build(),
                offer_params: LinkParams {
                    pt,
                    twcc_id: Some(TWCC_EXT_ID),
                    ssrc,
                    cvo_id: cvo.then_some(CVO_EXT_ID),
                    audio_level_id: None,
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
                    audio_level_id: Some(AUDIO_LEVEL_EXT_ID),
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

        // Opus FEC follows the highest audio loss any receiver reports.
        let weak = Arc::downgrade(&self.inner);
        let id = peer.id().to_owned();
        peer.on_remote_loss(move |kind, pct| {
            if kind == MediaKind::Audio
                && let Some(inner) = weak.upgrade()
            {
                Publisher { inner }.update_audio_loss(&id, Some(pct));
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
        self.update_audio_loss(peer_id, None);
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
        MediaKind::Video => payloader(PayloadOf::Video(inner.config.codec), &params)?,
        MediaKind::Audio => payloader(
            PayloadOf::Opus {
                dtx: inner.config.audio_dtx,
            },
            &params,
        )?,
    };
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

/// What a payloader made by [`payloader`] carries.
#[derive(Debug, Clone, Copy)]
pub(crate) enum PayloadOf {
    /// Video of a codec WebRTC carries (VP8, H.264).
    Video(Codec),
    /// Opus audio; with `dtx`, silence frames are not sent.
    Opus {
        /// Opus DTX.
        dtx: bool,
    },
}

/// The RTP payloader of one send branch, as the m-line `params` say: payload type, SSRC,
/// MTU 1200, and the TWCC, CVO and audio level header extensions the m-line negotiated.
pub(crate) fn payloader(of: PayloadOf, params: &LinkParams) -> Result<gst::Element, WebrtcError> {
    let pay = match of {
        PayloadOf::Video(Codec::Vp8) => {
            let p = make("rtpvp8pay")?;
            p.set_property_from_str("picture-id-mode", "15-bit");
            p
        }
        PayloadOf::Video(Codec::H264) => {
            let p = make("rtph264pay")?;
            p.set_property("config-interval", -1i32);
            p.set_property_from_str("aggregate-mode", "zero-latency");
            p
        }
        PayloadOf::Video(other @ (Codec::Vp9 | Codec::Av1)) => return Err(unsendable(other)),
        PayloadOf::Opus { dtx } => {
            let p = make("rtpopuspay")?;
            // DTX: Opus's tiny silence frames are not sent at all.
            p.set_property("dtx", dtx);
            p
        }
    };
    pay.set_property("pt", u32::from(params.pt));
    // The SSRC the SDP announces for this m-line (see `peer::with_ssrc`).
    pay.set_property("ssrc", params.ssrc);
    pay.set_property("mtu", 1200u32);
    let extensions = [
        (params.twcc_id, TWCC_URI, "rtphdrexttwcc"),
        (params.cvo_id, CVO_URI, "rtphdrextcvo"),
        (
            params.audio_level_id,
            AUDIO_LEVEL_URI,
            "rtphdrextclientaudiolevel",
        ),
    ];
    // CVO reads the orientation meta `sensorrotation` put on the frames (kept by the
    // encoder); the audio level writes the `GstAudioLevelMeta` the audio chain puts on each
    // encoded buffer.
    for (id, uri, element) in extensions {
        let Some(id) = id else { continue };
        let ext = gst_rtp::RTPHeaderExtension::create_from_uri(uri)
            .ok_or_else(|| WebrtcError::MissingElement(element.into()))?;
        ext.set_id(u32::from(id));
        pay.emit_by_name::<()>("add-extension", &[&ext]);
    }
    Ok(pay)
}
