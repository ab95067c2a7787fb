//! The per-connection frame rate limit: a token bucket of `burst` tokens refilled at
//! `rate_per_sec`.
//!
//! What takes a token is decided by the dispatcher: a `message` that finds the bucket empty
//! fails with a delivery result, every other counted frame waits for its token.

use std::time::Duration;

use tokio::time::Instant;

/// Token bucket for the per-connection frame rate.
pub(super) struct Bucket {
    tokens: f64,
    rate: f64,
    burst: f64,
    last: Instant,
}

impl Bucket {
    /// A full bucket of `burst` tokens refilled at `rate_per_sec` (both at least 1).
    pub(super) fn new(rate_per_sec: u32, burst: u32) -> Self {
        let burst = burst.max(1) as f64;
        Bucket {
            tokens: burst,
            rate: rate_per_sec.max(1) as f64,
            burst,
            last: Instant::now(),
        }
    }

    fn refill(&mut self) {
        let now = Instant::now();
        let dt = now.duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + dt * self.rate).min(self.burst);
    }

    /// Takes one token if there is one; false when the frame is over the rate.
    pub(super) fn try_take(&mut self) -> bool {
        self.refill();
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Takes one token, waiting for it when the bucket is empty (at most `1 / rate_per_sec`).
    pub(super) async fn take_waiting(&mut self) {
        while !self.try_take() {
            let missing = 1.0 - self.tokens;
            tokio::time::sleep(Duration::from_secs_f64(missing / self.rate)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_burst_then_the_rate() {
        let mut b = Bucket::new(100, 3);
        assert!(b.try_take() && b.try_take() && b.try_take());
        assert!(!b.try_take());
        let t0 = Instant::now();
        for _ in 0..5 {
            b.take_waiting().await;
        }
        let waited = t0.elapsed();
        // Waiting never returns early; a loaded machine may make it later.
        assert!(
            waited >= Duration::from_millis(45),
            "5 tokens at 100/s: {waited:?}"
        );
    }
}
