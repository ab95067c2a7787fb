//! What a session sends to the telemetry service: batches of records and user feedback.
//! These are the JSON payloads of the signalling protocol's telemetry messages.

use std::collections::BTreeMap;

use gststreamwire::telemetry::{Consent, any_field};
use serde::{Deserialize, Serialize};

/// Where a record comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// A `devicetelemetry` element's `streamwire-telemetry` message.
    Device,
    /// Per-peer WebRTC statistics of one track.
    Peer,
}

impl Source {
    /// `device` or `peer`.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Device => "device",
            Source::Peer => "peer",
        }
    }
}

/// One field value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum FieldValue {
    /// A number (counts, rates, percentages, milliseconds, bytes).
    Num(f64),
    /// Text (model names, resolutions, network type).
    Text(String),
}

/// One sample: the fields read at one time from one source (and, for peer stats, one
/// remote peer's track).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Milliseconds since the Unix epoch.
    pub ts_ms: i64,
    /// Device or peer statistics.
    pub source: Source,
    /// Track name for peer statistics (e.g. `video0`), empty for device records.
    #[serde(default)]
    pub track: String,
    /// Field key (from the registry) to value.
    pub fields: BTreeMap<String, FieldValue>,
}

/// A batch of records sent at one consent level.
///
/// ```
/// use streamwire::telemetry::wire::Batch;
/// let b: Batch = serde_json::from_str(
///     r#"{"consent":"necessary","records":[{"ts_ms":1,"source":"device","fields":{"cpu-usage":12.5}}]}"#,
/// ).unwrap();
/// assert_eq!(b.records.len(), 1);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Batch {
    /// The app's consent level when the records were taken: `necessary` or `full`.
    pub consent: ConsentLevel,
    /// The records.
    pub records: Vec<Record>,
}

/// Consent level on the wire (`none`, `necessary`, `full`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ConsentLevel {
    /// Nothing may be sent.
    #[default]
    None,
    /// Necessary fields only.
    Necessary,
    /// Necessary and optional fields.
    Full,
}

impl From<ConsentLevel> for Consent {
    fn from(c: ConsentLevel) -> Self {
        match c {
            ConsentLevel::None => Consent::None,
            ConsentLevel::Necessary => Consent::Necessary,
            ConsentLevel::Full => Consent::Full,
        }
    }
}

impl From<Consent> for ConsentLevel {
    fn from(c: Consent) -> Self {
        match c {
            Consent::None => ConsentLevel::None,
            Consent::Necessary => ConsentLevel::Necessary,
            Consent::Full => ConsentLevel::Full,
        }
    }
}

impl std::str::FromStr for ConsentLevel {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "none" => Ok(Self::None),
            "necessary" => Ok(Self::Necessary),
            "full" => Ok(Self::Full),
            other => Err(format!(
                "unknown consent level {other:?} (expected none, necessary or full)"
            )),
        }
    }
}

/// Optional end-user feedback about a session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Feedback {
    /// Rating 1 (bad) to 5 (excellent).
    pub rating: u8,
    /// Free-text comment, at most [`MAX_COMMENT_CHARS`] characters.
    #[serde(default)]
    pub comment: Option<String>,
}

/// Longest accepted feedback comment, in characters.
pub const MAX_COMMENT_CHARS: usize = 2000;

/// Whether `key` may be sent or stored under `consent`: it must be a disclosed field
/// (registry or peer stats) whose class the consent allows.
///
/// ```
/// use gststreamwire::telemetry::Consent;
/// use streamwire::telemetry::wire::field_allowed;
/// assert!(field_allowed("cpu-usage", Consent::Necessary));
/// assert!(!field_allowed("process-memory", Consent::Necessary));
/// assert!(!field_allowed("ip-address", Consent::Full));
/// ```
pub fn field_allowed(key: &str, consent: Consent) -> bool {
    any_field(key).is_some_and(|f| consent.allows(f.class))
}
