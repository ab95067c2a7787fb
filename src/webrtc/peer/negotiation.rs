//! Offer/answer negotiation of a [`Peer`]: the pair's offerer offers (and re-offers), the
//! answerer answers, and local tracks are attached to m-lines on the way.

use gst::prelude::*;
use gst_webrtc::{
    WebRTCRTPTransceiver, WebRTCRTPTransceiverDirection, WebRTCSDPType, WebRTCSessionDescription,
};

use super::{Peer, PeerEvent, Role, SendTrack, SignalIn, SignalOut};
use crate::webrtc::repair::setup_transceiver;
use crate::webrtc::sdp::{
    CVO_URI, LinkParams, TrackWanted, audio_level_extmap, find_mline_for, media_audio_level_id,
    media_codecs, media_twcc_id, parse_sdp, receive_caps, rtp_structure, video_codec_of, with_ssrc,
};
use crate::webrtc::{MediaKind, TWCC_URI, WebrtcError};

/// Where the pair's offer/answer exchange stands (one value instead of a flag per fact).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) enum Negotiation {
    /// Nothing exchanged yet: the offerer has not offered, the answerer has not answered.
    /// Remote ICE candidates are held.
    #[default]
    New,
    /// Offerer: an offer is out and its answer has not completed.
    Offered {
        /// A remote description is applied (an earlier answer, or this one's already):
        /// remote candidates go straight to webrtcbin.
        remote_set: bool,
        /// Another offer is due once this answer is applied.
        reoffer: bool,
    },
    /// A remote description is applied and no offer is outstanding.
    Stable,
}

impl Negotiation {
    /// Remote candidates must wait for a remote description.
    fn holds_candidates(self) -> bool {
        matches!(
            self,
            Negotiation::New
                | Negotiation::Offered {
                    remote_set: false,
                    ..
                }
        )
    }

    /// A remote description was applied.
    fn remote_applied(self) -> Negotiation {
        match self {
            Negotiation::New | Negotiation::Stable => Negotiation::Stable,
            Negotiation::Offered { reoffer, .. } => Negotiation::Offered {
                remote_set: true,
                reoffer,
            },
        }
    }
}

impl Peer {
    /// Attach a local track. The offerer links it at once to a new `sendonly` transceiver
    /// (after the first offer, [`Peer::renegotiate`] puts it in a new offer); the answerer
    /// links it to a matching `recvonly` m-line of the next remote offer when it arrives.
    pub(crate) fn add_send_track(&self, track: SendTrack) -> Result<(), WebrtcError> {
        match self.inner.config.role {
            Role::Offerer => {
                let pad = self
                    .inner
                    .webrtcbin
                    .request_pad_simple("sink_%u")
                    .ok_or_else(|| WebrtcError::Link {
                        what: format!("{} track to webrtcbin", track.kind.as_str()),
                        detail: "webrtcbin refused a sink pad".into(),
                    })?;
                let trans = pad.property::<WebRTCRTPTransceiver>("transceiver");
                trans.set_property("direction", WebRTCRTPTransceiverDirection::Sendonly);
                setup_transceiver(&trans, track.kind, &self.inner.config.repair);
                trans.set_property(
                    "codec-preferences",
                    with_ssrc(&track.offer_caps, track.ssrc),
                );
                let params = LinkParams {
                    ssrc: track.ssrc,
                    ..track.offer_params
                };
                (track.link)(&pad, params)
            }
            Role::Answerer => {
                self.inner.state.lock().pending_tracks.push(track);
                Ok(())
            }
        }
    }

    /// Start negotiation (offerer only): adds the `recvonly` m-lines for
    /// [`PeerConfig::receive`](super::PeerConfig::receive), creates the offer and emits it as [`SignalOut::Offer`].
    /// An answerer does nothing here: it negotiates when the offer arrives.
    pub fn negotiate(&self) -> Result<(), WebrtcError> {
        if self.inner.config.role == Role::Answerer {
            return Ok(());
        }
        {
            let mut st = self.inner.state.lock();
            if st.negotiation != Negotiation::New {
                return Ok(());
            }
            st.negotiation = Negotiation::Offered {
                remote_set: false,
                reoffer: false,
            };
        }
        self.add_receive_mlines(&self.inner.config.receive);
        self.send_offer();
        Ok(())
    }

    /// Renegotiate (offerer only): add a `recvonly` m-line for each of `receive` (tracks the
    /// answerer has started to publish) and send a new offer on the running connection. It also
    /// carries every send track attached or detached since the last offer. Existing m-lines keep
    /// their index, direction and SSRC, so media already flowing does not stop. If an offer is
    /// still waiting for its answer, the new one follows right after that answer. Before the
    /// first [`Peer::negotiate`] the m-lines simply join the first offer.
    ///
    /// Errors with [`WebrtcError::Signal`] on the answerer: only the pair's offerer offers (the
    /// answerer's `publish`/`unpublish` announcement asks the offerer to re-offer; see
    /// docs/webrtc.md, "Renegotiation").
    ///
    /// ```no_run
    /// use streamwire::webrtc::{MediaKind, peer::{Peer, PeerConfig, Role}};
    /// streamwire::gst_init::init().unwrap();
    /// let pipeline = gst::Pipeline::new();
    /// let (peer, _io) = Peer::new(&pipeline, "bob", PeerConfig::loopback(Role::Offerer)).unwrap();
    /// peer.negotiate().unwrap();
    /// // later, when "bob" announces a new video track:
    /// peer.renegotiate(&[MediaKind::Video]).unwrap();
    /// ```
    pub fn renegotiate(&self, receive: &[MediaKind]) -> Result<(), WebrtcError> {
        if self.inner.config.role == Role::Answerer {
            return Err(WebrtcError::Signal {
                message: "offer",
                detail: format!(
                    "the local side answers for the pair with `{}`: only the offerer re-offers",
                    self.inner.id
                ),
            });
        }
        self.add_receive_mlines(receive);
        {
            let mut st = self.inner.state.lock();
            match &mut st.negotiation {
                // The first offer (negotiate) will carry everything.
                Negotiation::New => return Ok(()),
                Negotiation::Offered { reoffer, .. } => {
                    *reoffer = true;
                    return Ok(());
                }
                Negotiation::Stable => {
                    st.negotiation = Negotiation::Offered {
                        remote_set: true,
                        reoffer: false,
                    }
                }
            }
        }
        tracing::debug!(peer = %self.inner.id, "renegotiating");
        self.send_offer();
        Ok(())
    }

    fn add_receive_mlines(&self, kinds: &[MediaKind]) {
        for kind in kinds {
            let caps = receive_caps(*kind);
            let t = self.inner.webrtcbin.emit_by_name::<WebRTCRTPTransceiver>(
                "add-transceiver",
                &[&WebRTCRTPTransceiverDirection::Recvonly, &caps],
            );
            setup_transceiver(&t, *kind, &self.inner.config.repair);
        }
    }

    /// Offerer: create an offer, set it locally and send it (the caller has moved the state to
    /// [`Negotiation::Offered`]).
    fn send_offer(&self) {
        self.create_local_description("offer", |peer, sdp| {
            tracing::debug!(peer = %peer.inner.id, %sdp, "offer created");
            let _ = peer.inner.signals.send(SignalOut::Offer { sdp });
        });
    }

    /// A negotiation completed: tell the listeners, and (offerer) send a queued re-offer.
    fn negotiated(&self) {
        self.inner.repair.learn_payload_types(&self.inner.webrtcbin);
        let (listeners, reoffer) = {
            let mut st = self.inner.state.lock();
            let reoffer = matches!(st.negotiation, Negotiation::Offered { reoffer: true, .. });
            st.negotiation = if reoffer {
                Negotiation::Offered {
                    remote_set: true,
                    reoffer: false,
                }
            } else {
                Negotiation::Stable
            };
            (st.negotiated_listeners.clone(), reoffer)
        };
        for l in listeners {
            l();
        }
        if reoffer {
            tracing::debug!(peer = %self.inner.id, "sending the queued re-offer");
            self.send_offer();
        }
    }

    /// Compare the m-lines the remote side sends on in `remote` (its offer or answer) with the
    /// previous remote description, and report the ones it stopped sending on.
    fn track_remote_sending(&self, remote: &gst_sdp::SDPMessage) {
        let now: Vec<(u32, MediaKind)> = remote
            .medias()
            .enumerate()
            .filter_map(|(idx, m)| {
                let kind = m.media().and_then(MediaKind::from_sdp)?;
                let sends = m
                    .attributes()
                    .any(|a| a.key() == "sendonly" || a.key() == "sendrecv");
                // (Port 0 does not mean rejected here: BUNDLE-only m-lines carry port 0.)
                sends.then_some((u32::try_from(idx).ok()?, kind))
            })
            .collect();
        let before = std::mem::replace(&mut self.inner.state.lock().remote_sending, now.clone());
        for (mline, kind) in before {
            if !now.contains(&(mline, kind)) {
                tracing::debug!(peer = %self.inner.id, mline, kind = kind.as_str(), "remote track ended");
                let _ = self.inner.events.send(PeerEvent::RemoteTrackEnded {
                    peer: self.inner.id.clone(),
                    kind,
                    mline,
                });
            }
        }
    }

    /// Emits `create-offer` or `create-answer` (`kind` is "offer" or "answer"), sets the result as
    /// the local description and hands its SDP text to `then`; a missing result fails the
    /// negotiation instead.
    fn create_local_description(
        &self,
        kind: &'static str,
        then: impl FnOnce(&Peer, String) + Send + 'static,
    ) {
        let weak = self.weak();
        let promise = gst::Promise::with_change_func(move |reply| {
            let Some(inner) = weak.upgrade() else { return };
            let peer = Peer { inner };
            let description = match reply {
                Ok(Some(s)) => s.get::<WebRTCSessionDescription>(kind).ok(),
                _ => None,
            };
            let Some(description) = description else {
                peer.fail(&format!("create-{kind} returned no {kind}"));
                return;
            };
            let text = description.sdp().as_text().unwrap_or_default();
            // `then` runs once the description is applied: what it reads back from webrtcbin
            // (`current-*-description`, the repair payload types) is set by then.
            let weak = peer.weak();
            let applied = gst::Promise::with_change_func(move |_| {
                if let Some(inner) = weak.upgrade() {
                    then(&Peer { inner }, text);
                }
            });
            peer.inner
                .webrtcbin
                .emit_by_name::<()>("set-local-description", &[&description, &applied]);
        });
        self.inner.webrtcbin.emit_by_name::<()>(
            &format!("create-{kind}"),
            &[&None::<gst::Structure>, &promise],
        );
    }

    fn fail(&self, reason: &str) {
        tracing::warn!(peer = %self.inner.id, reason, "negotiation failed");
        let _ = self.inner.events.send(PeerEvent::NegotiationFailed {
            peer: self.inner.id.clone(),
            reason: reason.to_owned(),
        });
    }

    /// Apply a message received from the remote peer.
    pub fn apply(&self, msg: SignalIn) -> Result<(), WebrtcError> {
        match msg {
            SignalIn::Offer { sdp } => {
                if self.inner.config.role != Role::Answerer {
                    return Err(WebrtcError::Signal {
                        message: "offer",
                        detail: format!(
                            "peer `{}` sent an offer but the local side is the offerer for this pair",
                            self.inner.id
                        ),
                    });
                }
                let msg = parse_sdp(&sdp, "offer")?;
                let desc = WebRTCSessionDescription::new(WebRTCSDPType::Offer, msg.clone());
                let weak = self.weak();
                let promise = gst::Promise::with_change_func(move |_reply| {
                    let Some(inner) = weak.upgrade() else { return };
                    let peer = Peer { inner };
                    peer.track_remote_sending(&msg);
                    // Leave webrtcbin's thread before requesting pads / creating the answer.
                    std::thread::spawn(move || peer.answer(&msg));
                });
                self.inner
                    .webrtcbin
                    .emit_by_name::<()>("set-remote-description", &[&desc, &promise]);
                Ok(())
            }
            SignalIn::Answer { sdp } => {
                if self.inner.config.role != Role::Offerer {
                    return Err(WebrtcError::Signal {
                        message: "answer",
                        detail: format!(
                            "peer `{}` sent an answer but the local side is the answerer",
                            self.inner.id
                        ),
                    });
                }
                if self.inner.state.lock().negotiation == Negotiation::New {
                    return Err(WebrtcError::Signal {
                        message: "answer",
                        detail: "no offer was sent".into(),
                    });
                }
                let msg = parse_sdp(&sdp, "answer")?;
                let desc = WebRTCSessionDescription::new(WebRTCSDPType::Answer, msg.clone());
                let weak = self.weak();
                let promise = gst::Promise::with_change_func(move |_reply| {
                    if let Some(inner) = weak.upgrade() {
                        let peer = Peer { inner };
                        peer.remote_applied();
                        peer.track_remote_sending(&msg);
                        // Leave webrtcbin's thread before creating a queued re-offer.
                        std::thread::spawn(move || peer.negotiated());
                    }
                });
                self.inner
                    .webrtcbin
                    .emit_by_name::<()>("set-remote-description", &[&desc, &promise]);
                Ok(())
            }
            SignalIn::Ice { mline, candidate } => {
                if candidate.trim().is_empty() {
                    // End-of-candidates marker: nothing to add.
                    return Ok(());
                }
                if !candidate.starts_with("candidate:") && !candidate.starts_with("a=candidate:") {
                    return Err(WebrtcError::Signal {
                        message: "ice",
                        detail: format!(
                            "field `candidate` must start with `candidate:`, got `{candidate}`"
                        ),
                    });
                }
                let mut st = self.inner.state.lock();
                if !st.negotiation.holds_candidates() {
                    drop(st);
                    self.inner
                        .webrtcbin
                        .emit_by_name::<()>("add-ice-candidate", &[&mline, &candidate]);
                } else {
                    st.pending_ice.push((mline, candidate));
                }
                Ok(())
            }
        }
    }

    fn remote_applied(&self) {
        let pending = {
            let mut st = self.inner.state.lock();
            st.negotiation = st.negotiation.remote_applied();
            std::mem::take(&mut st.pending_ice)
        };
        for (mline, cand) in pending {
            self.inner
                .webrtcbin
                .emit_by_name::<()>("add-ice-candidate", &[&mline, &cand]);
        }
    }

    /// Answerer: attach pending local tracks to the offer's `recvonly` m-lines, then answer.
    fn answer(&self, offer: &gst_sdp::SDPMessage) {
        // Receive side: one recvonly transceiver per m-line the remote sends on, whose codec
        // preferences carry the offer's TWCC extension so that the answer keeps it and this
        // side's rtpsession returns transport-wide feedback. A re-offer keeps the earlier
        // m-lines (already answered) and appends new ones: only those need transceivers.
        let answered = self.inner.state.lock().answered_mlines;
        for media in offer.medias().skip(answered) {
            let sends = media
                .attributes()
                .any(|a| a.key() == "sendonly" || a.key() == "sendrecv");
            let Some(kind) = media.media().and_then(MediaKind::from_sdp) else {
                continue;
            };
            if !sends {
                continue;
            }
            let twcc_id = media_twcc_id(media);
            let mut caps = gst::Caps::new_empty();
            for (pt, enc, clock) in media_codecs(media) {
                let supported = match kind {
                    MediaKind::Video => video_codec_of(&enc).is_some(),
                    MediaKind::Audio => enc.eq_ignore_ascii_case("OPUS"),
                };
                if supported {
                    let mut s = rtp_structure(kind, &enc.to_ascii_uppercase(), clock, pt, twcc_id);
                    // Keep the sender's audio levels (the subscriber reads them).
                    if kind == MediaKind::Audio
                        && let Some(id) = media_audio_level_id(media)
                    {
                        s.set(format!("extmap-{id}"), audio_level_extmap());
                    }
                    caps.make_mut().append_structure(s);
                }
            }
            if caps.is_empty() {
                continue;
            }
            let t = self.inner.webrtcbin.emit_by_name::<WebRTCRTPTransceiver>(
                "add-transceiver",
                &[&WebRTCRTPTransceiverDirection::Recvonly, &caps],
            );
            // The answer then keeps the offer's RTX, RED and ULPFEC for the chosen codec.
            setup_transceiver(&t, kind, &self.inner.config.repair);
        }

        let tracks = std::mem::take(&mut self.inner.state.lock().pending_tracks);
        let mut used: Vec<u32> = (0..u32::try_from(answered).unwrap_or(u32::MAX)).collect();
        let mut unmatched = Vec::new();
        for track in tracks {
            let Some((idx, params)) = find_mline_for(
                offer,
                &TrackWanted {
                    kind: track.kind,
                    encoding_name: &track.encoding_name,
                    ssrc: track.ssrc,
                    cvo: track.cvo,
                },
                &used,
            ) else {
                tracing::info!(
                    peer = %self.inner.id,
                    kind = track.kind.as_str(),
                    codec = %track.encoding_name,
                    "the offer has no recvonly m-line for this track; kept for the next offer"
                );
                unmatched.push(track);
                continue;
            };
            used.push(idx);
            if let Err(e) = self.link_for_answer(idx, track, params) {
                self.fail(&format!("attaching a track to m-line {idx}: {e}"));
            }
        }
        {
            let mut st = self.inner.state.lock();
            // Tracks attached while this answer was being built stay pending too.
            unmatched.append(&mut st.pending_tracks);
            st.pending_tracks = unmatched;
            st.answered_mlines = offer.medias_len() as usize;
        }
        self.create_local_description("answer", |peer, sdp| {
            tracing::debug!(peer = %peer.inner.id, %sdp, "answer created");
            let _ = peer.inner.signals.send(SignalOut::Answer { sdp });
            peer.remote_applied();
            let peer = peer.clone();
            std::thread::spawn(move || peer.negotiated());
        });
    }

    /// Answerer: give `track` its own `sendonly` transceiver whose codec preferences carry the
    /// offer's payload type and TWCC id; webrtcbin associates it with the matching `recvonly`
    /// m-line (`idx`) while creating the answer.
    fn link_for_answer(
        &self,
        idx: u32,
        track: SendTrack,
        params: LinkParams,
    ) -> Result<(), WebrtcError> {
        let mut caps = with_ssrc(&track.offer_caps, params.ssrc);
        {
            let caps = caps.make_mut();
            for s in caps.iter_mut() {
                s.set("payload", i32::from(params.pt));
                let ext_fields: Vec<String> = s
                    .fields()
                    .filter(|f| f.starts_with("extmap-"))
                    .map(|f| f.to_string())
                    .collect();
                for f in ext_fields {
                    s.remove_field(f.as_str());
                }
                match params.twcc_id {
                    Some(id) => s.set(format!("extmap-{id}"), TWCC_URI),
                    None => s.remove_field("rtcp-fb-transport-cc"),
                }
                if let Some(id) = params.cvo_id {
                    s.set(format!("extmap-{id}"), CVO_URI);
                }
                if let Some(id) = params.audio_level_id {
                    s.set(format!("extmap-{id}"), audio_level_extmap());
                }
            }
        }
        let tmpl = self
            .inner
            .webrtcbin
            .pad_template("sink_%u")
            .ok_or_else(|| WebrtcError::MissingElement("webrtcbin sink_%u template".into()))?;
        let pad = self
            .inner
            .webrtcbin
            .request_pad(&tmpl, None, Some(&caps))
            .ok_or_else(|| WebrtcError::Link {
                what: format!("track for m-line {idx}"),
                detail: "webrtcbin refused the sink pad".into(),
            })?;
        let trans = pad.property::<WebRTCRTPTransceiver>("transceiver");
        trans.set_property("direction", WebRTCRTPTransceiverDirection::Sendonly);
        setup_transceiver(&trans, track.kind, &self.inner.config.repair);
        trans.set_property("codec-preferences", &caps);
        (track.link)(&pad, params)
    }
}
