//! Video freezes as the webrtc-stats specification defines them (`freezeCount`,
//! `totalFreezesDuration`): a freeze is an interval between two consecutive frames longer than
//! `max(3 × average frame duration, average frame duration + 150 ms)`, the average taken over
//! the last [`AVERAGE_OVER`] intervals that were not freezes.

use std::collections::VecDeque;

/// Number of recent inter-frame intervals the average frame duration is taken over.
pub const AVERAGE_OVER: usize = 30;

/// Counts freezes from the times frames are shown (or decoded).
///
/// ```
/// use streamwire::webrtc::freeze::FreezeDetector;
/// let mut d = FreezeDetector::default();
/// for i in 0..60 { d.frame(f64::from(i) * 33.3); }
/// d.frame(59.0 * 33.3 + 400.0); // 400 ms without a frame
/// assert_eq!(d.freezes(), 1);
/// assert!((d.total_freeze_ms() - 400.0).abs() < 1e-6);
/// ```
#[derive(Debug, Clone, Default)]
pub struct FreezeDetector {
    last_ms: Option<f64>,
    intervals: VecDeque<f64>,
    freezes: u64,
    total_ms: f64,
}

impl FreezeDetector {
    /// A frame was shown at `t_ms` (any monotonic clock).
    pub fn frame(&mut self, t_ms: f64) {
        let Some(last) = self.last_ms.replace(t_ms) else {
            return;
        };
        let interval = (t_ms - last).max(0.0);
        if !self.intervals.is_empty() {
            let avg = self.intervals.iter().sum::<f64>() / self.intervals.len() as f64;
            if interval > (3.0 * avg).max(avg + 150.0) {
                self.freezes += 1;
                self.total_ms += interval;
                return;
            }
        }
        self.intervals.push_back(interval);
        if self.intervals.len() > AVERAGE_OVER {
            self.intervals.pop_front();
        }
    }

    /// Freezes so far.
    pub fn freezes(&self) -> u64 {
        self.freezes
    }

    /// Total duration of the freezes so far (ms).
    pub fn total_freeze_ms(&self) -> f64 {
        self.total_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steady_frames_never_freeze() {
        let mut d = FreezeDetector::default();
        for i in 0..300 {
            // 30 fps with a few ms of jitter.
            d.frame(f64::from(i) * 33.3 + f64::from(i % 3) * 4.0);
        }
        assert_eq!(d.freezes(), 0);
    }

    #[test]
    fn the_threshold_is_max_of_three_times_and_plus_150_ms() {
        // At 30 fps the average is 33.3 ms: threshold max(100, 183.3) = 183.3 ms.
        let mut d = FreezeDetector::default();
        let mut t = 0.0;
        for _ in 0..40 {
            t += 33.3;
            d.frame(t);
        }
        t += 180.0;
        d.frame(t);
        assert_eq!(d.freezes(), 0, "180 ms is under the 183 ms threshold");
        t += 190.0;
        d.frame(t);
        assert_eq!(d.freezes(), 1);
        // At 5 fps (200 ms) the threshold is 3x: 600 ms.
        let mut d = FreezeDetector::default();
        let mut t = 0.0;
        for _ in 0..40 {
            t += 200.0;
            d.frame(t);
        }
        t += 590.0;
        d.frame(t);
        assert_eq!(d.freezes(), 0);
        // The 590 ms interval raised the average to 209.75 ms: threshold 629.25 ms.
        t += 625.0;
        d.frame(t);
        assert_eq!(d.freezes(), 0);
        t += 700.0;
        d.frame(t);
        assert_eq!(d.freezes(), 1);
        assert!((d.total_freeze_ms() - 700.0).abs() < 1e-9);
    }
}
