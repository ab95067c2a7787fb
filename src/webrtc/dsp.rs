//! Microphone processing (`webrtcdsp`: echo cancellation, noise suppression, gain control,
//! high-pass filter) and the far-end reference it cancels against (`webrtcechoprobe` on the
//! playback path of received audio).
//!
//! `webrtcdsp` cancels the echo of what the loudspeaker plays: a `webrtcechoprobe` on the
//! playback path hands it the played (far-end) audio. Both run at [`DSP_RATE`], mono, 16-bit
//! ([`dsp_caps`]): the DSP refuses a probe at another rate.
//!
//! ```
//! use streamwire::webrtc::dsp::{AudioProcessing, EchoCancel, EchoSuppression};
//! let p = AudioProcessing::default();
//! assert_eq!(p.echo_cancel, EchoCancel::On(EchoSuppression::Moderate));
//! assert!(p.delay_agnostic);
//! ```

use gst::prelude::*;

use super::{WebrtcError, make};

/// Sample rate of the microphone processing and of the far-end reference (Hz).
pub const DSP_RATE: i32 = 48000;

/// Echo suppressor aggressiveness (`webrtcdsp echo-suppression-level`): a higher level
/// suppresses more residual echo and attenuates more near-end speech during double talk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EchoSuppression {
    /// `low`.
    Low,
    /// `moderate` (the element's default).
    #[default]
    Moderate,
    /// `high`.
    High,
}

impl EchoSuppression {
    /// The element's enum nick (`low`, `moderate`, `high`), also the preset word.
    pub fn nick(self) -> &'static str {
        match self {
            EchoSuppression::Low => "low",
            EchoSuppression::Moderate => "moderate",
            EchoSuppression::High => "high",
        }
    }
}

/// Echo cancellation (`webrtcdsp echo-cancel`, `echo-suppression-level`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EchoCancel {
    /// No echo cancellation.
    Off,
    /// Cancel the echo of the far-end reference, with this suppression level. Takes effect
    /// only with a far-end reference (a `webrtcechoprobe`, see [`echo_probe_chain`]); without
    /// one the canceller is switched off.
    On(EchoSuppression),
}

/// Noise suppression aggressiveness (`webrtcdsp noise-suppression-level`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoiseSuppression {
    /// `low`.
    Low,
    /// `moderate` (the element's default).
    Moderate,
    /// `high`.
    High,
    /// `very-high`.
    VeryHigh,
}

impl NoiseSuppression {
    /// The element's enum nick (`low`, `moderate`, `high`, `very-high`), also the preset word.
    pub fn nick(self) -> &'static str {
        match self {
            NoiseSuppression::Low => "low",
            NoiseSuppression::Moderate => "moderate",
            NoiseSuppression::High => "high",
            NoiseSuppression::VeryHigh => "very-high",
        }
    }
}

/// `webrtcdsp` settings for a published microphone (`PublisherConfig::audio_processing`,
/// the preset's `[audio.processing]` table).
///
/// The defaults were chosen from the simulated echo-path measurements in `docs/audio.md`
/// (test `tests/audio_echo.rs`): echo cancellation on at `moderate` suppression (ERLE
/// 24-29 dB; `low` attenuates the near end less in double talk but lets ERLE fall to 18 dB),
/// `delay-agnostic` on (the canceller estimates the echo delay itself instead of trusting
/// the timestamps and latency reports), noise suppression `moderate`, the high-pass filter
/// on, gain control off.
///
/// ```
/// use streamwire::webrtc::dsp::{AudioProcessing, EchoCancel, NoiseSuppression};
/// let quiet_room = AudioProcessing {
///     noise_suppression: None,
///     gain_control: false,
///     ..AudioProcessing::default()
/// };
/// assert_ne!(quiet_room, AudioProcessing::default());
/// assert_eq!(AudioProcessing::OFF.echo_cancel, EchoCancel::Off);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AudioProcessing {
    /// Echo cancellation and its suppression level. Default on, `moderate`.
    pub echo_cancel: EchoCancel,
    /// `delay-agnostic`: the canceller finds the echo delay itself. Default on.
    pub delay_agnostic: bool,
    /// Noise suppression level; `None` switches it off. Default `moderate`.
    pub noise_suppression: Option<NoiseSuppression>,
    /// Automatic digital gain control (`gain-control`, adaptive digital, up to +9 dB). Default
    /// off: it raises the residual echo with the speech (measured ERLE 13-17 dB with it on,
    /// 24-29 dB off).
    pub gain_control: bool,
    /// High-pass filter (removes DC and rumble below ~80 Hz). Default on.
    pub high_pass_filter: bool,
}

impl AudioProcessing {
    /// Every stage off (the DSP passes the microphone through unchanged).
    pub const OFF: AudioProcessing = AudioProcessing {
        echo_cancel: EchoCancel::Off,
        delay_agnostic: false,
        noise_suppression: None,
        gain_control: false,
        high_pass_filter: false,
    };

    /// Set these settings on a `webrtcdsp`; `probe` is the name of the far-end reference's
    /// `webrtcechoprobe` (echo cancellation is off without one). Call before the element
    /// leaves the NULL state.
    pub fn apply(&self, dsp: &gst::Element, probe: Option<&str>) {
        match (self.echo_cancel, probe) {
            (EchoCancel::On(level), Some(name)) => {
                dsp.set_property("echo-cancel", true);
                dsp.set_property_from_str("echo-suppression-level", level.nick());
                dsp.set_property("probe", name);
            }
            _ => dsp.set_property("echo-cancel", false),
        }
        dsp.set_property("delay-agnostic", self.delay_agnostic);
        match self.noise_suppression {
            Some(level) => {
                dsp.set_property("noise-suppression", true);
                dsp.set_property_from_str("noise-suppression-level", level.nick());
            }
            None => dsp.set_property("noise-suppression", false),
        }
        dsp.set_property("gain-control", self.gain_control);
        dsp.set_property("high-pass-filter", self.high_pass_filter);
    }

    /// The processing chain for raw microphone audio: convert and resample to [`dsp_caps`],
    /// then `webrtcdsp` with these settings (`probe`: see [`AudioProcessing::apply`]). Link the
    /// microphone source to the first element; the last one (the DSP) outputs processed audio.
    pub fn chain(&self, probe: Option<&str>) -> Result<Vec<gst::Element>, WebrtcError> {
        let caps = make("capsfilter")?;
        caps.set_property("caps", dsp_caps());
        let dsp = make("webrtcdsp")?;
        self.apply(&dsp, probe);
        Ok(vec![
            make("audioconvert")?,
            make("audioresample")?,
            caps,
            dsp,
        ])
    }
}

impl Default for AudioProcessing {
    fn default() -> Self {
        AudioProcessing {
            echo_cancel: EchoCancel::On(EchoSuppression::Moderate),
            delay_agnostic: true,
            noise_suppression: Some(NoiseSuppression::Moderate),
            gain_control: false,
            high_pass_filter: true,
        }
    }
}

/// Caps of the processed microphone and of the far-end reference: S16LE, mono, [`DSP_RATE`].
pub fn dsp_caps() -> gst::Caps {
    gst::Caps::builder("audio/x-raw")
        .field("format", "S16LE")
        .field("layout", "interleaved")
        .field("rate", DSP_RATE)
        .field("channels", 1i32)
        .build()
}

/// The far-end reference for a playback path: convert and resample to [`dsp_caps`], then a
/// `webrtcechoprobe` named `name` (what the microphone's `webrtcdsp` names as its probe).
/// Put it right before the audio sink, so the probe sees exactly what is played.
pub fn echo_probe_chain(name: &str) -> Result<Vec<gst::Element>, WebrtcError> {
    let caps = make("capsfilter")?;
    caps.set_property("caps", dsp_caps());
    let probe = make("webrtcechoprobe")?;
    probe.set_property("name", name);
    Ok(vec![
        make("audioconvert")?,
        make("audioresample")?,
        caps,
        probe,
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nick(e: &gst::Element, prop: &str) -> String {
        let v = e.property_value(prop);
        gst::glib::EnumValue::from_value(&v)
            .unwrap()
            .1
            .nick()
            .to_owned()
    }

    #[test]
    fn apply_sets_every_stage_and_needs_a_probe_for_echo_cancellation() {
        crate::gst_init::init().unwrap();
        let dsp = make("webrtcdsp").unwrap();
        let p = AudioProcessing {
            echo_cancel: EchoCancel::On(EchoSuppression::High),
            delay_agnostic: true,
            noise_suppression: Some(NoiseSuppression::VeryHigh),
            gain_control: false,
            high_pass_filter: false,
        };
        p.apply(&dsp, Some("far"));
        assert!(dsp.property::<bool>("echo-cancel"));
        assert_eq!(nick(&dsp, "echo-suppression-level"), "high");
        assert_eq!(dsp.property::<String>("probe"), "far");
        assert!(dsp.property::<bool>("delay-agnostic"));
        assert!(dsp.property::<bool>("noise-suppression"));
        assert_eq!(nick(&dsp, "noise-suppression-level"), "very-high");
        assert!(!dsp.property::<bool>("gain-control"));
        assert!(!dsp.property::<bool>("high-pass-filter"));

        let dsp = make("webrtcdsp").unwrap();
        p.apply(&dsp, None);
        assert!(!dsp.property::<bool>("echo-cancel"));
        AudioProcessing::OFF.apply(&dsp, Some("far"));
        assert!(!dsp.property::<bool>("echo-cancel"));
        assert!(!dsp.property::<bool>("noise-suppression"));
        assert!(!dsp.property::<bool>("gain-control"));
    }
}
