//! Telemetry service: the SQLite store ([`store`]), the wire format of batches and feedback
//! ([`wire`]), the consent-aware client batcher ([`batcher`]) and IP coarsening ([`ip`]).
//!
//! What may be collected is decided by the field registry of the elements crate
//! ([`gststreamwire::telemetry::REGISTRY`] and [`gststreamwire::telemetry::PEER_STATS`]);
//! both the client batcher and the store filter every key through it.
//!
//! ```
//! use streamwire::telemetry::wire::field_allowed;
//! use streamwire::telemetry::Consent;
//! assert!(!field_allowed("cpu-usage", Consent::None));
//! ```

pub mod batcher;
pub mod ip;
pub mod store;
pub mod wire;

/// The end user's consent level (one type from the elements crate's field registry).
pub use gststreamwire::telemetry::Consent;
pub use store::{DEFAULT_RETENTION, Store, StoreError, Tags};
