// SPDX-License-Identifier: MIT OR Apache-2.0
//! Privacy-aware device and stream telemetry: the field [`REGISTRY`] (single source of
//! truth, from which `docs/privacy.md` is generated) and the consent-gated [`Sampler`]
//! used by the `devicetelemetry` element and available to the library.
//!
//! ```
//! use gststreamwire::telemetry::{Class, Consent, Field, REGISTRY};
//! let optional: Vec<&Field> = REGISTRY.iter().filter(|f| f.class == Class::Optional).collect();
//! assert!(optional.iter().all(|f| !Consent::Necessary.allows(f.class)));
//! ```

mod consent;
pub mod registry;
pub mod sampler;

pub use registry::{
    Class, Consent, Field, IP_HANDLING, LOCAL_DATA, LocalData, NEVER_COLLECTED, PEER_STATS,
    REGISTRY, Scope, allowed, any_field, field, privacy_markdown,
};
pub use sampler::{Ctx, READERS, Reader, Report, Sampler, StreamCounters, Value};

/// Name of the element message structure posted by `devicetelemetry`.
pub const MESSAGE_NAME: &str = "streamwire-telemetry";
