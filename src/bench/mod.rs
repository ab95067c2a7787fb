//! Measuring cores of `streamwire bench ...`.

pub mod latency;
