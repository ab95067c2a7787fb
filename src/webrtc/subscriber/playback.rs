//! The standing playback path of [`AudioOutput::Play`](super::AudioOutput::Play): one
//! `audiomixer` mixes every received audio track, then the far-end reference (the
//! `webrtcechoprobe` of `echo_probe`, at the DSP's rate) or plain converters, then the audio
//! sink:
//!
//! ```text
//! opusdec -> audioconvert -> audioresample -> caps (S16LE, mono, 48 kHz) ----+
//! opusdec -> ...                                                            --+-> audiomixer
//!     -> [audioconvert -> audioresample -> caps (S16LE, mono, 48 kHz) -> webrtcechoprobe]
//!     (or audioconvert -> audioresample)
//!     -> autoaudiosink
//! ```
//!
//! It exists from [`Subscriber::prepare`](super::Subscriber::prepare) on (a session builds it
//! before its publisher starts), so the probe is there when a microphone's `webrtcdsp`
//! looks it up, and the reference carries every remote member at once.

use gst::prelude::*;

use super::live_sink;
use crate::webrtc::{WebrtcError, make};

/// What each received track is converted to before the mixer (every mixer input must agree):
/// the DSP's format (S16LE, mono, 48 kHz), which the far-end reference needs anyway.
pub(super) fn mix_caps() -> gst::Caps {
    crate::webrtc::dsp::dsp_caps()
}

/// The mixer and what follows it.
pub(super) struct Playback {
    mixer: gst::Element,
}

impl Playback {
    /// Build the path in `bin` and start it with the bin.
    pub(super) fn build(bin: &gst::Bin, echo_probe: Option<&str>) -> Result<Playback, WebrtcError> {
        let mixer = make("audiomixer")?;
        // The mixer exists long before its first input: its output starts with the first
        // buffer, not at running time 0. `ignore-inactive-pads` stays off: with it, a mixer
        // whose only input arrived seconds in took one buffer and stalled
        // (tests/session_playback.rs). A member whose audio stalls holds the others back for
        // at most the mixer's latency (live aggregation times out).
        mixer.set_property_from_str("start-time-selection", "first");
        let mut chain = vec![mixer.clone()];
        match echo_probe {
            Some(name) => chain.extend(crate::webrtc::dsp::echo_probe_chain(name)?),
            None => {
                chain.push(make("audioconvert")?);
                chain.push(make("audioresample")?);
            }
        }
        chain.push(live_sink(make("autoaudiosink")?));
        bin.add_many(&chain)
            .map_err(|e| WebrtcError::State(format!("adding the playback path: {e}")))?;
        gst::Element::link_many(&chain).map_err(|e| WebrtcError::Link {
            what: "playback path".into(),
            detail: e.to_string(),
        })?;
        for e in chain.iter().rev() {
            e.sync_state_with_parent()
                .map_err(|e| WebrtcError::State(format!("starting the playback path: {e}")))?;
        }
        Ok(Playback { mixer })
    }

    /// Mix the branch ending in `tail` (its output in [`mix_caps`]).
    pub(super) fn add(&self, tail: &gst::Element) -> Result<(), WebrtcError> {
        let pad = self
            .mixer
            .request_pad_simple("sink_%u")
            .ok_or_else(|| WebrtcError::Link {
                what: "playback mixer".into(),
                detail: "audiomixer gave no sink pad".into(),
            })?;
        let src = tail
            .static_pad("src")
            .ok_or_else(|| WebrtcError::MissingElement("receive branch src pad".into()))?;
        src.link(&pad).map(|_| ()).map_err(|e| WebrtcError::Link {
            what: "receive branch to the playback mixer".into(),
            detail: format!("{e:?}"),
        })
    }

    /// Give back the mixer pad the branch ending in `tail` fed (after the branch stopped).
    pub(super) fn remove(&self, tail: &gst::Element) {
        let Some(src) = tail.static_pad("src") else {
            return;
        };
        if let Some(pad) = src.peer() {
            let _ = src.unlink(&pad);
            self.mixer.release_request_pad(&pad);
        }
    }
}
