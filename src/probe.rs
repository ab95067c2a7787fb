//! What this machine offers: capture devices and, per codec, the encoder Streamwire would choose.
//!
//! ```no_run
//! streamwire::gst_init::init().unwrap();
//! let report = streamwire::probe::probe(&streamwire::encoder::SystemRegistry::new());
//! println!("{}", serde_json::to_string_pretty(&report).unwrap());
//! ```

use crate::encoder::{self, Codec, FactorySource, HardwarePolicy, Skipped};
use crate::pipeline::devices::{self, DeviceClass, DeviceInfo};

/// Everything `streamwire probe` reports.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ProbeReport {
    /// GStreamer runtime version.
    pub gstreamer: String,
    /// Cameras (`Video/Source`).
    pub cameras: Vec<DeviceInfo>,
    /// Microphones (`Audio/Source`).
    pub microphones: Vec<DeviceInfo>,
    /// One entry per codec.
    pub encoders: Vec<CodecReport>,
}

/// Encoder choice for one codec (policy `auto`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct CodecReport {
    /// Codec name.
    pub codec: &'static str,
    /// Chosen factory, if any.
    pub chosen: Option<String>,
    /// Whether the chosen encoder is hardware.
    pub hardware: Option<bool>,
    /// API family of the chosen encoder.
    pub family: Option<&'static str>,
    /// Candidates skipped before the choice (or all of them when nothing was usable), with reasons.
    pub skipped: Vec<Skipped>,
}

/// Probe devices and encoders.
pub fn probe(registry: &dyn FactorySource) -> ProbeReport {
    let encoders = Codec::ALL
        .iter()
        .map(
            |&codec| match encoder::select(codec, HardwarePolicy::Auto, registry) {
                Ok(s) => CodecReport {
                    codec: codec.name(),
                    chosen: Some(s.factory.clone()),
                    hardware: Some(s.candidate.hardware),
                    family: Some(s.candidate.family),
                    skipped: s.skipped,
                },
                Err(encoder::EncoderError::NoEncoder { searched, .. })
                | Err(encoder::EncoderError::NoHardware { searched, .. }) => CodecReport {
                    codec: codec.name(),
                    chosen: None,
                    hardware: None,
                    family: None,
                    skipped: searched,
                },
                Err(e) => CodecReport {
                    codec: codec.name(),
                    chosen: None,
                    hardware: None,
                    family: None,
                    skipped: vec![Skipped {
                        factory: String::new(),
                        hardware: false,
                        reason: e.to_string(),
                    }],
                },
            },
        )
        .collect();
    ProbeReport {
        gstreamer: gst::version_string().to_string(),
        cameras: devices::list(DeviceClass::Camera),
        microphones: devices::list(DeviceClass::Microphone),
        encoders,
    }
}
