//! Telemetry service: the SQLite store ([`store`]), the consent-aware client batcher
//! ([`batcher`]) and IP coarsening ([`ip`]). What travels on the wire (batches, records,
//! feedback) is part of the signalling protocol:
//! [`crate::signalling::protocol::telemetry`].
//!
//! What may be collected is decided by the field registry of the elements crate
//! ([`gststreamwire::telemetry::REGISTRY`] and [`gststreamwire::telemetry::PEER_STATS`]);
//! both the client batcher and the store filter every key through it.
//!
//! ```
//! use streamwire::telemetry::{Consent, field_allowed};
//! assert!(!field_allowed("cpu-usage", Consent::None));
//! ```

pub mod batcher;
pub mod ip;
pub mod store;
mod subject;

use gststreamwire::telemetry::any_field;

/// The end user's consent level (one type from the elements crate's field registry).
pub use gststreamwire::telemetry::Consent;
pub use store::{DEFAULT_RETENTION, Store, StoreError, Tags};

/// Whether `key` may be sent or stored under `consent`: it must be a disclosed field
/// (registry or peer stats) whose class the consent allows.
///
/// ```
/// use gststreamwire::telemetry::Consent;
/// use streamwire::telemetry::field_allowed;
/// assert!(field_allowed("cpu-usage", Consent::Necessary));
/// assert!(!field_allowed("process-memory", Consent::Necessary));
/// assert!(!field_allowed("ip-address", Consent::Full));
/// ```
pub fn field_allowed(key: &str, consent: Consent) -> bool {
    any_field(key).is_some_and(|f| consent.allows(f.class))
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
