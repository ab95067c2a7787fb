//! The payloads of the protocol's telemetry messages: batches of records
//! ([`ClientMsg::Telemetry`]) and user feedback ([`ClientMsg::Feedback`]), and how a batch
//! is split under the server's frame limit.
//!
//! Which keys a record may carry at which consent is decided by the telemetry field registry
//! (`streamwire::telemetry::field_allowed`); the protocol only carries them.

use std::collections::BTreeMap;

use gststreamwire::telemetry::Consent;
use serde::{Deserialize, Serialize};

use super::ClientMsg;

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
/// use streamwire::signalling::protocol::telemetry::Batch;
/// let b: Batch = serde_json::from_str(
///     r#"{"consent":"necessary","records":[{"ts_ms":1,"source":"device","fields":{"cpu-usage":12.5}}]}"#,
/// ).unwrap();
/// assert_eq!(b.records.len(), 1);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Batch {
    /// The app's consent level when the records were taken: `necessary` or `full`.
    pub consent: Consent,
    /// The records.
    pub records: Vec<Record>,
}

/// Optional end-user feedback about a session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Feedback {
    /// Rating 1 (bad) to 5 (excellent).
    pub rating: u8,
    /// Free-text comment, at most [`MAX_COMMENT_CHARS`] characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

/// Longest accepted feedback comment, in characters.
pub const MAX_COMMENT_CHARS: usize = 2000;

/// A record too large to fit in one frame on its own (see [`Batch::split`]).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error(
    "telemetry record at {ts_ms} ms ({source_name}, track `{track}`) is {bytes} bytes as a \
     frame, above the server's max_frame_bytes = {max}"
)]
pub struct RecordTooLarge {
    /// Timestamp of the record.
    pub ts_ms: i64,
    /// `device` or `peer`.
    pub source_name: &'static str,
    /// Track of the record.
    pub track: String,
    /// Size of a frame carrying only this record.
    pub bytes: usize,
    /// The limit.
    pub max: usize,
}

impl Batch {
    /// Size in bytes of this batch as a `telemetry` frame of the signalling protocol (the
    /// exact text the client sends).
    ///
    /// ```
    /// use streamwire::signalling::protocol::telemetry::Batch;
    /// use streamwire::telemetry::Consent;
    /// let b = Batch { consent: Consent::Full, records: vec![] };
    /// assert_eq!(b.frame_len(), r#"{"type":"telemetry","batch":{"consent":"full","records":[]}}"#.len());
    /// ```
    pub fn frame_len(&self) -> usize {
        frame_text(self).len()
    }

    /// Splits this batch, in order and without losing a record, into batches whose
    /// `telemetry` frames are each at most `max_frame_bytes` long. A record that cannot fit
    /// into a frame on its own is returned as an error (with everything else still split).
    ///
    /// ```
    /// use std::collections::BTreeMap;
    /// use streamwire::telemetry::Consent;
    /// use streamwire::signalling::protocol::telemetry::{Batch, FieldValue, Record, Source};
    /// let rec = |i| Record { ts_ms: i, source: Source::Peer, track: "p/video".into(),
    ///     fields: BTreeMap::from([("rtt".to_string(), FieldValue::Num(1.0))]) };
    /// let b = Batch { consent: Consent::Necessary, records: (0..1000).map(rec).collect() };
    /// let (parts, too_big) = b.clone().split(4096);
    /// assert!(too_big.is_empty());
    /// assert!(parts.len() > 1 && parts.iter().all(|p| p.frame_len() <= 4096));
    /// let back: Vec<Record> = parts.into_iter().flat_map(|p| p.records).collect();
    /// assert_eq!(back, b.records);
    /// ```
    pub fn split(self, max_frame_bytes: usize) -> (Vec<Batch>, Vec<RecordTooLarge>) {
        let consent = self.consent;
        let empty = Batch {
            consent,
            records: Vec::new(),
        };
        let overhead = empty.frame_len();
        let mut out = Vec::new();
        let mut too_big = Vec::new();
        let mut cur: Vec<Record> = Vec::new();
        let mut cur_len = overhead;
        for r in self.records {
            // Records serialise the same inside the array as alone; a comma separates them.
            let len = serde_json::to_string(&r).map_or(usize::MAX / 2, |s| s.len());
            if overhead + len > max_frame_bytes {
                too_big.push(RecordTooLarge {
                    ts_ms: r.ts_ms,
                    source_name: r.source.as_str(),
                    track: r.track.clone(),
                    bytes: overhead + len,
                    max: max_frame_bytes,
                });
                continue;
            }
            let sep = usize::from(!cur.is_empty());
            if cur_len + sep + len > max_frame_bytes {
                out.push(Batch {
                    consent,
                    records: std::mem::take(&mut cur),
                });
                cur_len = overhead;
            }
            cur_len += usize::from(!cur.is_empty()) + len;
            cur.push(r);
        }
        if !cur.is_empty() {
            out.push(Batch {
                consent,
                records: cur,
            });
        }
        (out, too_big)
    }
}

fn frame_text(b: &Batch) -> String {
    // Same serialisation as the client's `ClientMsg::Telemetry` frame.
    serde_json::to_string(&ClientMsg::Telemetry { batch: b.clone() }).unwrap_or_default()
}
