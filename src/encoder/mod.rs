//! Video encoder selection and configuration.
//!
//! One table ([`CANDIDATES`]) describes every encoder element Streamwire can drive. [`select`] walks
//! it for a codec, hardware first regardless of GStreamer rank, and returns the choice together with
//! every candidate skipped and why. Hardware encoders are started once on a tiny frame before being
//! chosen; one that fails falls back to software with a warning. [`Encoder`] builds a configured
//! real-time element and changes its bitrate while playing.
//!
//! ```no_run
//! use streamwire::encoder::{self, Codec, EncoderConfig, HardwarePolicy, SystemRegistry};
//!
//! streamwire::gst_init::init().unwrap();
//! let selection = encoder::select(Codec::Vp8, HardwarePolicy::Auto, &SystemRegistry::new()).unwrap();
//! println!("{} (hardware: {})", selection.factory, selection.candidate.hardware);
//! let cfg = EncoderConfig { width: 1280, height: 720, fps: 30, bitrate_kbps: 2000, keyframe_interval: 60 };
//! let enc = selection.build(&cfg, Some("venc")).unwrap();
//! // ... add enc.element() to a pipeline, play, then under congestion:
//! enc.set_bitrate(800).unwrap();
//! ```

mod registry;
mod table;

use std::fmt;

use gst::prelude::*;

pub use registry::{FactoryList, FactorySource, SystemRegistry};
pub use table::{BitrateControl, BitrateUnit, CANDIDATES, Candidate, KeyframeControl};

/// Video codecs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Codec {
    /// H.264 / AVC.
    H264,
    /// VP8.
    Vp8,
    /// VP9.
    Vp9,
    /// AV1.
    Av1,
}

impl Codec {
    /// All codecs, in the order reports list them.
    pub const ALL: [Codec; 4] = [Codec::H264, Codec::Vp8, Codec::Vp9, Codec::Av1];

    /// Preset spelling (`h264`, `vp8`, `vp9`, `av1`).
    pub fn name(self) -> &'static str {
        match self {
            Codec::H264 => "h264",
            Codec::Vp8 => "vp8",
            Codec::Vp9 => "vp9",
            Codec::Av1 => "av1",
        }
    }

    /// Parse the preset spelling (case-insensitive; `h.264` and `avc` are accepted for H.264).
    pub fn from_name(s: &str) -> Option<Codec> {
        match s.to_ascii_lowercase().as_str() {
            "h264" | "h.264" | "avc" => Some(Codec::H264),
            "vp8" => Some(Codec::Vp8),
            "vp9" => Some(Codec::Vp9),
            "av1" => Some(Codec::Av1),
            _ => None,
        }
    }

    /// GStreamer media type of the encoded stream.
    pub fn caps_name(self) -> &'static str {
        match self {
            Codec::H264 => "video/x-h264",
            Codec::Vp8 => "video/x-vp8",
            Codec::Vp9 => "video/x-vp9",
            Codec::Av1 => "video/x-av1",
        }
    }

    /// Parser element to put after the encoder before a muxer, if one is needed.
    pub fn parser(self) -> Option<&'static str> {
        match self {
            Codec::H264 => Some("h264parse"),
            Codec::Vp9 => Some("vp9parse"),
            Codec::Av1 => Some("av1parse"),
            Codec::Vp8 => None,
        }
    }
}

impl fmt::Display for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Whether to use hardware encoders (`video.hardware` in presets).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HardwarePolicy {
    /// Hardware if one works, else software.
    #[default]
    Auto,
    /// Hardware only; an error if none works.
    Require,
    /// Software only.
    Off,
}

/// Settings for building an encoder.
///
/// The picture size and frame rate themselves are negotiated through caps from upstream; here
/// they describe the stream the encoder is configured for (`fps` converts the keyframe interval for
/// encoders that count it in seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncoderConfig {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Frames per second.
    pub fps: u32,
    /// Target bitrate, kbit/s.
    pub bitrate_kbps: u32,
    /// Frames between keyframes.
    pub keyframe_interval: u32,
}

/// A candidate that was not chosen, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Skipped {
    /// Factory name (or pattern such as `amcvidenc-*` when nothing matched it).
    pub factory: String,
    /// Whether it is a hardware encoder.
    pub hardware: bool,
    /// Why it was skipped.
    pub reason: String,
}

/// The result of [`select`].
#[derive(Debug, Clone)]
pub struct Selection {
    /// Codec asked for.
    pub codec: Codec,
    /// Chosen element factory name.
    pub factory: String,
    /// The table row for it.
    pub candidate: &'static Candidate,
    /// Every candidate tried before it, in order, with the reason.
    pub skipped: Vec<Skipped>,
}

impl Selection {
    /// Hardware encoders that were installed but failed to start (the reason for a fallback).
    pub fn failed_hardware(&self) -> impl Iterator<Item = &Skipped> {
        self.skipped
            .iter()
            .filter(|s| s.hardware && s.reason.starts_with("failed to start"))
    }

    /// Build the chosen encoder, configured for real time with `cfg`.
    pub fn build(&self, cfg: &EncoderConfig, name: Option<&str>) -> Result<Encoder, EncoderError> {
        let element = build_element(&self.factory, self.candidate, cfg, name)?;
        Ok(Encoder {
            element,
            candidate: self.candidate,
        })
    }

    /// The properties `build` would set, as `(name, value)` in gst-launch syntax. Properties the
    /// installed element lacks are left out.
    pub fn launch_properties(&self, cfg: &EncoderConfig) -> Vec<(String, String)> {
        let probe = gst::ElementFactory::make(&self.factory).build().ok();
        wanted_properties(self.candidate, cfg)
            .into_iter()
            .filter(|(k, _)| probe.as_ref().is_none_or(|e| e.find_property(k).is_some()))
            .collect()
    }
}

/// Errors from encoder selection and configuration.
#[derive(Debug, thiserror::Error)]
pub enum EncoderError {
    /// `hardware = "require"` and no hardware encoder is usable.
    #[error(
        "no usable hardware {codec} encoder (hardware = \"require\"); searched: {}",
        list(searched)
    )]
    NoHardware {
        /// Codec.
        codec: Codec,
        /// Every candidate searched, with the reason it was not used.
        searched: Vec<Skipped>,
    },
    /// No encoder at all for the codec.
    #[error("no usable {codec} encoder; searched: {}", list(searched))]
    NoEncoder {
        /// Codec.
        codec: Codec,
        /// Every candidate searched, with the reason.
        searched: Vec<Skipped>,
    },
    /// The element could not be created.
    #[error("cannot create encoder element `{factory}`: {reason}")]
    Create {
        /// Factory.
        factory: String,
        /// Reason.
        reason: String,
    },
    /// A property value was rejected.
    #[error("encoder `{factory}`: cannot set `{property}` to {value}: {reason}")]
    Property {
        /// Factory.
        factory: String,
        /// Property.
        property: String,
        /// Value tried.
        value: String,
        /// Why.
        reason: String,
    },
    /// An element that is not in the candidate table.
    #[error("`{factory}` is not an encoder Streamwire knows how to drive")]
    Unknown {
        /// Factory.
        factory: String,
    },
}

fn list(s: &[Skipped]) -> String {
    s.iter()
        .map(|s| format!("{} ({})", s.factory, s.reason))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Choose the encoder for `codec` under `policy` from `source`.
///
/// Candidates are tried in table order (hardware first, whatever their rank). Hardware candidates
/// are started once before being chosen; one that fails is skipped with a warning and selection
/// falls back to the next candidate.
///
/// ```
/// use streamwire::encoder::{select, Codec, FactoryList, HardwarePolicy};
///
/// let machine = FactoryList::new([("x264enc", Codec::H264), ("vah264enc", Codec::H264)]);
/// let s = select(Codec::H264, HardwarePolicy::Auto, &machine).unwrap();
/// assert_eq!(s.factory, "vah264enc");
/// ```
pub fn select(
    codec: Codec,
    policy: HardwarePolicy,
    source: &dyn FactorySource,
) -> Result<Selection, EncoderError> {
    let installed = source.encoders(codec);
    let mut skipped = Vec::new();
    for candidate in CANDIDATES.iter().filter(|c| c.codec == codec) {
        let matching: Vec<&String> = installed.iter().filter(|n| candidate.matches(n)).collect();
        if matching.is_empty() {
            skipped.push(Skipped {
                factory: candidate.factory.to_owned(),
                hardware: candidate.hardware,
                reason: "not installed".to_owned(),
            });
            continue;
        }
        for name in matching {
            let reason = match (candidate.hardware, policy) {
                (true, HardwarePolicy::Off) => Some("hardware = \"off\"".to_owned()),
                (false, HardwarePolicy::Require) => {
                    Some("software, hardware = \"require\"".to_owned())
                }
                (true, _) => match source.try_start(name, candidate) {
                    Ok(()) => None,
                    Err(e) => {
                        tracing::warn!(
                            "hardware encoder {name} ({}) failed to start: {e}; trying the next candidate",
                            candidate.family
                        );
                        Some(format!("failed to start: {e}"))
                    }
                },
                (false, _) => None,
            };
            match reason {
                Some(reason) => skipped.push(Skipped {
                    factory: name.clone(),
                    hardware: candidate.hardware,
                    reason,
                }),
                None => {
                    let selection = Selection {
                        codec,
                        factory: name.clone(),
                        candidate,
                        skipped,
                    };
                    if !candidate.hardware {
                        for failed in selection.failed_hardware() {
                            tracing::warn!(
                                "falling back to software encoder {name}: hardware {} {}",
                                failed.factory,
                                failed.reason
                            );
                        }
                    }
                    return Ok(selection);
                }
            }
        }
    }
    if policy == HardwarePolicy::Require {
        Err(EncoderError::NoHardware {
            codec,
            searched: skipped,
        })
    } else {
        Err(EncoderError::NoEncoder {
            codec,
            searched: skipped,
        })
    }
}

/// A configured encoder element and the table row that drives it.
#[derive(Debug, Clone)]
pub struct Encoder {
    element: gst::Element,
    candidate: &'static Candidate,
}

impl Encoder {
    /// Select and build in one step: the usual entry point for other modules.
    ///
    /// ```no_run
    /// use streamwire::encoder::{Encoder, Codec, EncoderConfig, HardwarePolicy};
    /// streamwire::gst_init::init().unwrap();
    /// let cfg = EncoderConfig { width: 640, height: 480, fps: 30, bitrate_kbps: 1000, keyframe_interval: 60 };
    /// let enc = Encoder::new(Codec::Vp8, HardwarePolicy::Auto, &cfg).unwrap();
    /// assert_eq!(enc.bitrate_kbps(), Some(1000));
    /// ```
    pub fn new(
        codec: Codec,
        policy: HardwarePolicy,
        cfg: &EncoderConfig,
    ) -> Result<Encoder, EncoderError> {
        select(codec, policy, &SystemRegistry::new())?.build(cfg, None)
    }

    /// Wrap an encoder element found in a running pipeline (e.g. by name from a parsed description).
    pub fn from_element(element: gst::Element) -> Result<Encoder, EncoderError> {
        let factory = element
            .factory()
            .map(|f| f.name().to_string())
            .unwrap_or_default();
        let candidate = CANDIDATES
            .iter()
            .find(|c| {
                c.matches(&factory)
                    && element
                        .static_pad("src")
                        .and_then(|p| {
                            p.pad_template_caps()
                                .structure(0)
                                .map(|s| s.name().to_string())
                        })
                        .is_none_or(|n| n == c.codec.caps_name() || c.factory.ends_with('*'))
            })
            .ok_or(EncoderError::Unknown { factory })?;
        Ok(Encoder { element, candidate })
    }

    /// The GStreamer element.
    pub fn element(&self) -> &gst::Element {
        &self.element
    }

    /// The table row.
    pub fn candidate(&self) -> &'static Candidate {
        self.candidate
    }

    /// Change the target bitrate; works while playing.
    pub fn set_bitrate(&self, kbps: u32) -> Result<(), EncoderError> {
        set_bitrate_property(&self.element, self.candidate, kbps)
    }

    /// Current target bitrate in kbit/s, read back from the element.
    pub fn bitrate_kbps(&self) -> Option<u32> {
        match self.candidate.bitrate {
            BitrateControl::Property(name, unit) => {
                self.element.find_property(name)?;
                let v = self.element.property_value(name);
                let n: u64 = v
                    .get::<u32>()
                    .map(u64::from)
                    .or_else(|_| v.get::<i32>().map(|x| x.max(0) as u64))
                    .or_else(|_| v.get::<u64>())
                    .or_else(|_| v.get::<i64>().map(|x| x.max(0) as u64))
                    .ok()?;
                Some(match unit {
                    BitrateUnit::KilobitsPerSecond => n as u32,
                    BitrateUnit::BitsPerSecond => (n / 1000) as u32,
                })
            }
            BitrateControl::V4l2Control(field) => {
                let s = self
                    .element
                    .property::<Option<gst::Structure>>("extra-controls")?;
                s.get::<i32>(field).ok().map(|b| (b.max(0) / 1000) as u32)
            }
        }
    }
}

fn bitrate_value(unit: BitrateUnit, kbps: u32) -> u64 {
    match unit {
        BitrateUnit::KilobitsPerSecond => u64::from(kbps),
        BitrateUnit::BitsPerSecond => u64::from(kbps) * 1000,
    }
}

/// The full property list for a candidate and config: real-time settings, bitrate, keyframes.
fn wanted_properties(c: &Candidate, cfg: &EncoderConfig) -> Vec<(String, String)> {
    let mut props: Vec<(String, String)> = c
        .realtime
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let mut controls = Vec::new();
    match c.bitrate {
        BitrateControl::Property(name, unit) => props.push((
            name.to_owned(),
            bitrate_value(unit, cfg.bitrate_kbps).to_string(),
        )),
        BitrateControl::V4l2Control(field) => controls.push(format!(
            "{field}=(int){}",
            u64::from(cfg.bitrate_kbps) * 1000
        )),
    }
    match c.keyframe {
        KeyframeControl::Frames(name) => {
            props.push((name.to_owned(), cfg.keyframe_interval.to_string()))
        }
        KeyframeControl::Seconds(name) => props.push((
            name.to_owned(),
            cfg.keyframe_interval.div_ceil(cfg.fps.max(1)).to_string(),
        )),
        KeyframeControl::V4l2Control(field) => {
            controls.push(format!("{field}=(int){}", cfg.keyframe_interval))
        }
    }
    if !controls.is_empty() {
        props.push((
            "extra-controls".to_owned(),
            format!("controls,{}", controls.join(",")),
        ));
    }
    props
}

fn set_from_str(
    element: &gst::Element,
    factory: &str,
    name: &str,
    value: &str,
) -> Result<(), EncoderError> {
    let err = |reason: String| EncoderError::Property {
        factory: factory.to_owned(),
        property: name.to_owned(),
        value: value.to_owned(),
        reason,
    };
    let Some(pspec) = element.find_property(name) else {
        tracing::debug!("{factory} has no property `{name}`; skipped");
        return Ok(());
    };
    let v = glib_value_from_str(value, &pspec).map_err(err)?;
    element.set_property_from_value(name, &v);
    Ok(())
}

fn glib_value_from_str(
    value: &str,
    pspec: &gst::glib::ParamSpec,
) -> Result<gst::glib::Value, String> {
    use gst::glib::{ParamSpecInt, ParamSpecInt64, ParamSpecUInt, ParamSpecUInt64};
    // Numbers are range-checked here: GObject would only log a warning and ignore the value.
    let out_of_range = |min: String, max: String| format!("outside {min}..={max}");
    if let Some(p) = pspec.downcast_ref::<ParamSpecUInt>() {
        let n: u32 = value.parse().map_err(|e| format!("{e}"))?;
        if n < p.minimum() || n > p.maximum() {
            return Err(out_of_range(
                p.minimum().to_string(),
                p.maximum().to_string(),
            ));
        }
        return Ok(n.to_value());
    }
    if let Some(p) = pspec.downcast_ref::<ParamSpecInt>() {
        let n: i32 = value.parse().map_err(|e| format!("{e}"))?;
        if n < p.minimum() || n > p.maximum() {
            return Err(out_of_range(
                p.minimum().to_string(),
                p.maximum().to_string(),
            ));
        }
        return Ok(n.to_value());
    }
    if let Some(p) = pspec.downcast_ref::<ParamSpecUInt64>() {
        let n: u64 = value.parse().map_err(|e| format!("{e}"))?;
        if n < p.minimum() || n > p.maximum() {
            return Err(out_of_range(
                p.minimum().to_string(),
                p.maximum().to_string(),
            ));
        }
        return Ok(n.to_value());
    }
    if let Some(p) = pspec.downcast_ref::<ParamSpecInt64>() {
        let n: i64 = value.parse().map_err(|e| format!("{e}"))?;
        if n < p.minimum() || n > p.maximum() {
            return Err(out_of_range(
                p.minimum().to_string(),
                p.maximum().to_string(),
            ));
        }
        return Ok(n.to_value());
    }
    <gst::glib::Value as gst::prelude::GstValueExt>::deserialize_with_pspec(value, pspec)
        .map_err(|e| e.to_string())
}

/// Create `factory` and configure it from `candidate` for `cfg`.
pub(crate) fn build_element(
    factory: &str,
    candidate: &Candidate,
    cfg: &EncoderConfig,
    name: Option<&str>,
) -> Result<gst::Element, EncoderError> {
    let mut builder = gst::ElementFactory::make(factory);
    if let Some(name) = name {
        builder = builder.name(name);
    }
    let element = builder.build().map_err(|e| EncoderError::Create {
        factory: factory.to_owned(),
        reason: e.to_string(),
    })?;
    for (k, v) in wanted_properties(candidate, cfg) {
        set_from_str(&element, factory, &k, &v)?;
    }
    Ok(element)
}

fn set_bitrate_property(
    element: &gst::Element,
    c: &Candidate,
    kbps: u32,
) -> Result<(), EncoderError> {
    let factory = element
        .factory()
        .map(|f| f.name().to_string())
        .unwrap_or_default();
    match c.bitrate {
        BitrateControl::Property(name, unit) => {
            if element.find_property(name).is_none() {
                return Err(EncoderError::Property {
                    factory,
                    property: name.to_owned(),
                    value: kbps.to_string(),
                    reason: "the element has no such property".to_owned(),
                });
            }
            set_from_str(
                element,
                &factory,
                name,
                &bitrate_value(unit, kbps).to_string(),
            )
        }
        BitrateControl::V4l2Control(field) => {
            let mut s = element
                .property::<Option<gst::Structure>>("extra-controls")
                .unwrap_or_else(|| gst::Structure::new_empty("controls"));
            s.set(field, (u64::from(kbps) * 1000).min(i32::MAX as u64) as i32);
            element.set_property("extra-controls", s);
            Ok(())
        }
    }
}
