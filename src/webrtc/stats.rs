//! Per-peer, per-track statistics (filled in below).
