//! Measuring cores of `streamwire bench ...`.

pub mod latency;
pub mod latency_process;
