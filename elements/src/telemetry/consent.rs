// SPDX-License-Identifier: MIT OR Apache-2.0
//! The end user's consent to telemetry: what [`Class`] of field each level lets
//! `devicetelemetry` read and report.

use std::fmt;

use gst::glib;

use super::registry::Class;

/// The end user's consent level: the one consent type of Streamwire, used by the
/// `devicetelemetry` element's `consent` property (GObject enum `GstDeviceTelemetryConsent`,
/// nicks `none`, `necessary`, `full`), the telemetry batcher, the wire format (the same
/// lowercase words) and presets.
///
/// ```
/// use gststreamwire::telemetry::Consent;
/// assert_eq!("necessary".parse::<Consent>(), Ok(Consent::Necessary));
/// assert_eq!(serde_json::to_string(&Consent::Full).unwrap(), "\"full\"");
/// assert!("all".parse::<Consent>().unwrap_err().contains("none, necessary or full"));
/// ```
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Default,
    glib::Enum,
    serde::Serialize,
    serde::Deserialize,
)]
#[repr(u32)]
#[enum_type(name = "GstDeviceTelemetryConsent")]
#[serde(rename_all = "lowercase")]
pub enum Consent {
    /// Nothing is read or reported.
    #[default]
    #[enum_value(name = "No consent: nothing is read or posted", nick = "none")]
    None = 0,
    /// Necessary fields only.
    #[enum_value(name = "Necessary fields only", nick = "necessary")]
    Necessary = 1,
    /// Necessary and optional fields.
    #[enum_value(name = "Necessary and optional fields", nick = "full")]
    Full = 2,
}

impl Consent {
    /// Whether a field of `class` may be read under this consent.
    pub fn allows(self, class: Class) -> bool {
        match (self, class) {
            (Consent::None, _) => false,
            (Consent::Necessary, Class::Necessary) => true,
            (Consent::Necessary, Class::Optional) => false,
            (Consent::Full, _) => true,
        }
    }

    /// `none`, `necessary` or `full` (also the element property's nick and the wire word).
    pub fn as_str(self) -> &'static str {
        match self {
            Consent::None => "none",
            Consent::Necessary => "necessary",
            Consent::Full => "full",
        }
    }
}

impl fmt::Display for Consent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Consent {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "none" => Ok(Consent::None),
            "necessary" => Ok(Consent::Necessary),
            "full" => Ok(Consent::Full),
            other => Err(format!(
                "unknown consent level {other:?} (expected none, necessary or full)"
            )),
        }
    }
}
