//! The per-connection frame rate limit: a token bucket, and a limit on how often the
//! connection is told it was limited.

use std::time::Duration;

use tokio::time::Instant;

/// Token bucket for the per-connection frame rate.
pub(super) struct Bucket {
    tokens: f64,
    rate: f64,
    burst: f64,
    last: Instant,
    /// Error frames sent for rate limiting in the current second (they are limited too).
    complaints: u32,
    complaint_window: Instant,
}

impl Bucket {
    /// A full bucket of `burst` tokens refilled at `rate_per_sec`.
    pub(super) fn new(rate_per_sec: u32, burst: u32) -> Self {
        Bucket {
            tokens: burst as f64,
            rate: rate_per_sec as f64,
            burst: burst.max(1) as f64,
            last: Instant::now(),
            complaints: 0,
            complaint_window: Instant::now(),
        }
    }

    /// Takes one token; false when the frame is over the rate.
    pub(super) fn take(&mut self) -> bool {
        let now = Instant::now();
        let dt = now.duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + dt * self.rate).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
    /// Whether another rate-limit error frame may be sent this second (at most 10).
    pub(super) fn may_complain(&mut self) -> bool {
        let now = Instant::now();
        if now.duration_since(self.complaint_window) > Duration::from_secs(1) {
            self.complaint_window = now;
            self.complaints = 0;
        }
        self.complaints += 1;
        self.complaints <= 10
    }
}
