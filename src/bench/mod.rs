//! Benchmarks run by `streamwire bench ...`; each prints JSON with `--json`.

pub mod signalling;
