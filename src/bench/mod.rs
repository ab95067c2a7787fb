//! Benchmarks run by `streamwire bench ...`; each prints JSON. Figures go to `docs/benchmarks.md`
//! with the command that produced them.
//!
//! Part of the `streamwire` binary, not of the library: they use only the library's public API
//! (`cargo bench --bench NAME` runs the same code through this binary).

pub mod chromium;
pub mod encode;
pub mod impairment;
#[cfg(feature = "reference-pair")]
pub mod impairment_reference;
pub mod latency;
pub mod latency_breakdown;
pub mod latency_process;
pub mod sfu;
pub mod signalling;
pub mod telemetry;
pub mod usage;
pub mod whiteboard;
pub mod whiteboard_browser;

use std::path::{Path, PathBuf};

/// A benchmark's SQLite file (with its `-wal` and `-shm` companions), removed on drop.
pub(crate) struct TempDb(pub(crate) PathBuf);

impl TempDb {
    /// A fresh file name under `dir` for the database `name`.
    pub(crate) fn new(dir: &Path, name: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        Self(dir.join(format!(
            "streamwire-bench-{name}-{}-{nanos}.db",
            std::process::id()
        )))
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let mut p = self.0.clone().into_os_string();
            p.push(suffix);
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Median of `values` (sorted copy); `None` when empty.
pub fn median(values: &[f64]) -> Option<f64> {
    percentile(values, 50.0)
}

/// Nearest-rank percentile `p` (0..=100) of `values`; `None` when empty.
pub fn percentile(values: &[f64], p: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * v.len() as f64).ceil().max(1.0) as usize;
    v.get(rank.min(v.len()) - 1).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        assert_eq!(percentile(&[1.0, 2.0, 3.0, 4.0], 50.0), Some(2.0));
        assert_eq!(percentile(&[1.0, 2.0, 3.0, 4.0], 95.0), Some(4.0));
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(percentile(&[], 50.0), None);
    }
}
