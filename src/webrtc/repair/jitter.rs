//! Adaptive jitter buffer: a target delay that follows the measured delay variation of each
//! received stream, like libwebrtc's video jitter estimator and NetEq, instead of one fixed
//! latency.
//!
//! For every packet that arrives at a stream's `rtpjitterbuffer` in order (retransmissions and
//! reordered packets excluded) the estimator takes its relative transit time, arrival time
//! minus RTP time, and keeps the last [`WINDOW`]. The delay variation of a packet is its
//! transit minus the smallest transit in the window (a jump of more than [`RESYNC_MS`]
//! restarts the window). The target is the 98th percentile of the window's delay variation
//! (so the last packet of a keyframe burst and network jitter are both covered); while packets
//! were lost in the last [`LOSS_MEMORY`] it is instead the larger of that and the repair delay
//! (the [`REPAIR_QUANTILE`] of how late the window's retransmitted packets arrived, measured
//! the same way, and at least twice the jitter buffer's mean retransmission round trip), plus
//! one more request (a NACK or its retransmission is lost too: the retry timeout,
//! [`JitterEstimator::retry_timeout_ms`], which the jitter buffer is given as its
//! `rtx-retry-timeout`, and a round trip) and [`RTX_MARGIN_MS`]; clamped to the configured
//! range. The packets of a stream's first
//! [`WARMUP`] are not taken (they include those held while the connection came up, released in
//! one burst). The buffer latency goes up to a higher target at once and down by an eighth of
//! the distance (at least [`STEP_DOWN_MS`]) per [`UPDATE`]. All the jitter buffers of one peer
//! connection follow the highest of their targets, so its audio and video keep one latency
//! (rtpbin's lip sync assumes it).

use std::collections::VecDeque;
use std::time::Duration;

/// Window of packets the delay variation is taken over.
pub const WINDOW: Duration = Duration::from_secs(10);
/// How long a lost packet keeps the retransmission allowance in the target.
pub const LOSS_MEMORY: Duration = Duration::from_secs(10);
/// Extra time for a retransmission besides the round trip: detecting the gap and sending
/// the NACK (ms).
pub const RTX_MARGIN_MS: f64 = 15.0;
/// Shortest time between two requests for the same packet (ms): `rtpjitterbuffer`'s
/// `rtx-min-retry-timeout` (its automatic value is the packet spacing, a whole frame interval
/// for video).
pub const RTX_MIN_RETRY_MS: u32 = 10;
/// Time a gap waits before its first request (ms, `rtpjitterbuffer` `rtx-delay`): packets
/// reordered by less than this are not requested (the automatic value is half a frame
/// interval for video).
pub const RTX_DELAY_MS: u32 = 5;
/// Quantile of the retransmitted packets' lateness the buffer waits for under loss: one
/// packet never repaired breaks its frame and, for VP8/H.264, every frame up to the next
/// keyframe, so the slow tail (a NACK or a retransmission lost, RTCP feedback waiting for its
/// interval) matters more than the median. 1.0: the slowest repair of the window.
pub const REPAIR_QUANTILE: f64 = 1.0;
/// How often the target is recomputed and applied.
pub const UPDATE: Duration = Duration::from_millis(250);
/// Smallest decrease of the buffer latency per [`UPDATE`] when above the target (ms); the
/// decrease is an eighth of the distance to the target when that is more.
pub const STEP_DOWN_MS: u32 = 2;
/// A stream's first packets not taken into the delay variation.
pub const WARMUP: Duration = Duration::from_secs(1);
/// A change of relative transit time between two packets larger than this (ms) restarts the
/// estimate.
pub const RESYNC_MS: f64 = 1000.0;
/// Highest latency an adaptive or fixed jitter buffer may be given (ms).
pub const MAX_JITTER_LATENCY_MS: u32 = 1000;

/// How the receive jitter buffer's latency is chosen.
///
/// ```
/// use streamwire::webrtc::repair::JitterBuffer;
/// assert_eq!(JitterBuffer::default(), JitterBuffer::Adaptive { min_ms: 10, max_ms: 400 });
/// assert_eq!(JitterBuffer::Fixed(30).initial_ms(), 30);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JitterBuffer {
    /// Follow the measured delay variation (see the module documentation), between `min_ms`
    /// and `max_ms`.
    Adaptive {
        /// Lowest latency (ms).
        min_ms: u32,
        /// Highest latency (ms), at most [`MAX_JITTER_LATENCY_MS`].
        max_ms: u32,
    },
    /// One fixed latency (ms), at most [`MAX_JITTER_LATENCY_MS`].
    Fixed(u32),
}

impl Default for JitterBuffer {
    /// Adaptive between 10 and 400 ms.
    fn default() -> Self {
        JitterBuffer::Adaptive {
            min_ms: 10,
            max_ms: 400,
        }
    }
}

impl JitterBuffer {
    /// The latency a new stream starts with (ms): the fixed value, or the adaptive minimum.
    pub fn initial_ms(self) -> u32 {
        match self {
            JitterBuffer::Adaptive { min_ms, .. } => min_ms,
            JitterBuffer::Fixed(ms) => ms,
        }
    }

    pub(crate) fn validate(self) -> Result<(), crate::webrtc::WebrtcError> {
        let err = |detail: String| {
            Err(crate::webrtc::WebrtcError::Config {
                field: "jitter_buffer",
                detail,
            })
        };
        match self {
            JitterBuffer::Adaptive { min_ms, max_ms } if min_ms > max_ms => {
                err(format!("min {min_ms} ms is above max {max_ms} ms"))
            }
            JitterBuffer::Adaptive { max_ms: ms, .. } | JitterBuffer::Fixed(ms)
                if ms > MAX_JITTER_LATENCY_MS =>
            {
                err(format!("{ms} ms is above {MAX_JITTER_LATENCY_MS} ms"))
            }
            _ => Ok(()),
        }
    }
}

/// Delay-variation estimator of one received stream (pure arithmetic; times in ms on any
/// monotonic clock).
#[derive(Debug, Clone)]
pub struct JitterEstimator {
    clock_rate: f64,
    /// (arrival ms, relative transit ms) of the packets in the window.
    samples: VecDeque<(f64, f64)>,
    /// Extended RTP timestamp of the last packet, for unwrapping.
    last_rtp: Option<(u32, i64)>,
    /// Arrival of the last lost packet (ms).
    last_loss_ms: Option<f64>,
    /// Next expected sequence number.
    next_seq: Option<u16>,
    /// Arrival of the stream's first packet (ms).
    first_ms: Option<f64>,
    /// (arrival ms, relative transit ms) of the retransmitted packets in the window.
    repaired: VecDeque<(f64, f64)>,
}

impl JitterEstimator {
    /// A new estimator for an RTP clock of `clock_rate` Hz.
    ///
    /// ```
    /// use streamwire::webrtc::repair::JitterEstimator;
    /// let mut e = JitterEstimator::new(90_000);
    /// // 30 fps, packets on time except one 40 ms late.
    /// for i in 0..300u32 {
    ///     let late = if i == 150 { 40.0 } else { 0.0 };
    ///     e.packet(f64::from(i) * 100.0 / 3.0 + late, i * 3000, i as u16);
    /// }
    /// assert!(e.delay_variation_ms(0.5) < 1.0);
    /// ```
    pub fn new(clock_rate: u32) -> Self {
        JitterEstimator {
            clock_rate: f64::from(clock_rate.max(1)),
            samples: VecDeque::new(),
            last_rtp: None,
            last_loss_ms: None,
            next_seq: None,
            first_ms: None,
            repaired: VecDeque::new(),
        }
    }

    /// A packet with RTP timestamp `rtp` and sequence number `seq` arrived at `arrival_ms`.
    /// A packet older than one already seen (a retransmission, or reordered) does not count
    /// towards the delay variation: its lateness is repair, not jitter.
    pub fn packet(&mut self, arrival_ms: f64, rtp: u32, seq: u16) {
        if self
            .next_seq
            .is_some_and(|next| seq.wrapping_sub(next) >= 0x8000)
        {
            return;
        }
        let ext = match self.last_rtp {
            None => i64::from(rtp),
            Some((last, last_ext)) => last_ext + i64::from(rtp.wrapping_sub(last) as i32),
        };
        self.last_rtp = Some((rtp, ext));
        // A jump forward (less than half the sequence space) is a gap: lost packets.
        if self.next_seq.is_some_and(|next| seq != next) {
            self.last_loss_ms = Some(arrival_ms);
        }
        self.next_seq = Some(seq.wrapping_add(1));
        let first = *self.first_ms.get_or_insert(arrival_ms);
        if arrival_ms - first < WARMUP.as_secs_f64() * 1000.0 {
            return;
        }
        let transit = arrival_ms - ext as f64 * 1000.0 / self.clock_rate;
        // A jump of more than RESYNC_MS is a new timeline (the stream restarted, or its first
        // packets waited for the connection), not delay: start the window again.
        if self
            .samples
            .back()
            .is_some_and(|(_, last)| (transit - last).abs() > RESYNC_MS)
        {
            self.samples.clear();
        }
        self.samples.push_back((arrival_ms, transit));
        let horizon = arrival_ms - WINDOW.as_secs_f64() * 1000.0;
        while self.samples.front().is_some_and(|(t, _)| *t < horizon) {
            self.samples.pop_front();
        }
    }

    /// A retransmitted packet with RTP timestamp `rtp` arrived at `arrival_ms`: how late it
    /// came (against the window's earliest transit) is what the buffer must wait for repair.
    pub fn retransmitted(&mut self, arrival_ms: f64, rtp: u32) {
        let Some((last, last_ext)) = self.last_rtp else {
            return;
        };
        if self.samples.is_empty() {
            return;
        }
        let ext = last_ext + i64::from(rtp.wrapping_sub(last) as i32);
        let transit = arrival_ms - ext as f64 * 1000.0 / self.clock_rate;
        self.repaired.push_back((arrival_ms, transit));
        let horizon = arrival_ms - WINDOW.as_secs_f64() * 1000.0;
        while self.repaired.front().is_some_and(|(t, _)| *t < horizon) {
            self.repaired.pop_front();
        }
    }

    fn min_transit(&self) -> Option<f64> {
        let min = self
            .samples
            .iter()
            .map(|(_, t)| *t)
            .fold(f64::INFINITY, f64::min);
        min.is_finite().then_some(min)
    }

    /// The `q` quantile (0..=1) of the window's delay variation (ms).
    pub fn delay_variation_ms(&self, q: f64) -> f64 {
        let Some(min) = self.min_transit() else {
            return 0.0;
        };
        quantile(self.samples.iter().map(|(_, t)| t - min).collect(), q)
    }

    /// The `q` quantile (0..=1) of how late the window's retransmitted packets arrived (ms);
    /// 0 without any.
    pub fn repair_delay_ms(&self, q: f64) -> f64 {
        let Some(min) = self.min_transit() else {
            return 0.0;
        };
        quantile(self.repaired.iter().map(|(_, t)| t - min).collect(), q)
    }

    /// Whether a packet was lost within [`LOSS_MEMORY`] before `now_ms`.
    pub fn recent_loss(&self, now_ms: f64) -> bool {
        self.last_loss_ms
            .is_some_and(|t| now_ms - t <= LOSS_MEMORY.as_secs_f64() * 1000.0)
    }

    /// How long the jitter buffer waits for a requested packet before it asks again (ms), for
    /// a mean retransmission round trip of `rtt_ms`: the round trip and twice the median delay
    /// variation, at least [`RTX_MIN_RETRY_MS`]. Set as `rtpjitterbuffer`'s
    /// `rtx-retry-timeout`: its automatic value takes twice its own jitter estimate, which for
    /// video counts the spread of a frame's packets (tens of ms for a keyframe), so a retry
    /// came too late to be sent at all.
    ///
    /// ```
    /// use streamwire::webrtc::repair::JitterEstimator;
    /// let e = JitterEstimator::new(90_000);
    /// assert_eq!(e.retry_timeout_ms(25.0), 25);
    /// assert_eq!(e.retry_timeout_ms(1.0), 10);
    /// ```
    pub fn retry_timeout_ms(&self, rtt_ms: f64) -> u32 {
        let t =
            (rtt_ms.max(0.0) + 2.0 * self.delay_variation_ms(0.5)).max(f64::from(RTX_MIN_RETRY_MS));
        // Finite and non-negative; the cast saturates.
        t.ceil() as u32
    }

    /// The target latency (ms) at `now_ms` for a mean retransmission round trip of `rtt_ms`,
    /// within `min_ms..=max_ms`.
    pub fn target_ms(&self, now_ms: f64, rtt_ms: f64, min_ms: u32, max_ms: u32) -> u32 {
        let mut t = self.delay_variation_ms(0.98);
        if self.recent_loss(now_ms) {
            let rtt = rtt_ms.max(0.0);
            let repair = self.repair_delay_ms(REPAIR_QUANTILE).max(2.0 * rtt);
            t = t.max(repair) + f64::from(self.retry_timeout_ms(rtt)) + rtt + RTX_MARGIN_MS;
        }
        // Finite and non-negative; the cast saturates.
        (t.ceil() as u32).clamp(min_ms, max_ms)
    }
}

/// The `q` quantile of `v` (0 when empty).
fn quantile(mut v: Vec<f64>, q: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    // In 1..=len: the cast cannot truncate meaningfully.
    let idx = ((q.clamp(0.0, 1.0) * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1;
    v[idx]
}

/// The next latency to apply when the buffer is at `current` and the estimator asks for
/// `target`: up at once, down by an eighth of the distance, at least [`STEP_DOWN_MS`].
pub(crate) fn next_latency(current: u32, target: u32) -> u32 {
    if target >= current {
        target
    } else {
        let gap = current - target;
        current - gap.min((gap / 8).max(STEP_DOWN_MS))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(e: &mut JitterEstimator, n: u32, jitter: impl Fn(u32) -> f64) {
        for i in 0..n {
            e.packet(f64::from(i) * 10.0 + jitter(i), i * 900, i as u16);
        }
    }

    #[test]
    fn clean_stream_stays_at_the_minimum() {
        let mut e = JitterEstimator::new(90_000);
        feed(&mut e, 500, |_| 0.0);
        assert_eq!(e.target_ms(5000.0, 1.0, 10, 400), 10);
        assert!(!e.recent_loss(5000.0));
    }

    #[test]
    fn target_covers_the_delay_variation() {
        let mut e = JitterEstimator::new(90_000);
        // Delays 0..50 ms spread evenly (a uniform jitter of 50 ms).
        feed(&mut e, 1000, |i| f64::from((i * 37) % 50));
        let t = e.target_ms(10_000.0, 1.0, 10, 400);
        assert!((47..=50).contains(&t), "{t}");
    }

    #[test]
    fn loss_adds_a_retransmission_round_trip() {
        let mut e = JitterEstimator::new(90_000);
        for i in 0..200u32 {
            if i == 100 {
                continue; // lost
            }
            e.packet(f64::from(i) * 10.0, i * 900, i as u16);
        }
        assert!(e.recent_loss(2000.0));
        // 2 x 20 ms round trip, a retry (20 ms) and its round trip (20 ms), the margin.
        assert_eq!(e.target_ms(2000.0, 20.0, 10, 400), 95);
        assert!(!e.recent_loss(2000.0 + 10_001.0));
    }

    #[test]
    fn late_retransmissions_raise_the_target() {
        let mut e = JitterEstimator::new(90_000);
        for i in 0..300u32 {
            if i % 20 == 10 {
                continue; // lost; its retransmission comes 70 ms after it was due
            }
            e.packet(f64::from(i) * 10.0, i * 900, i as u16);
        }
        for i in (110..300u32).step_by(20) {
            e.retransmitted(f64::from(i) * 10.0 + 70.0, i * 900);
        }
        assert!((e.repair_delay_ms(0.95) - 70.0).abs() < 1e-6);
        // 70 ms, a retry (at least 10 ms) and its 5 ms round trip, the margin.
        assert_eq!(e.target_ms(3000.0, 5.0, 10, 400), 100);
    }

    #[test]
    fn a_gap_is_loss_and_wraparound_is_not() {
        let mut e = JitterEstimator::new(48_000);
        let seqs = [65534u16, 65535, 0, 2, 1, 3];
        for (i, s) in seqs.iter().enumerate() {
            e.packet(
                i as f64 * 20.0,
                (u32::MAX - 960).wrapping_add(i as u32 * 960),
                *s,
            );
        }
        // 0 -> 2 skips 1: a gap when 2 arrives (1 comes late, as a reordered packet).
        assert!(e.recent_loss(200.0));
        let mut clean = JitterEstimator::new(48_000);
        for (i, s) in [65534u16, 65535, 0, 1, 2].iter().enumerate() {
            clean.packet(
                i as f64 * 20.0,
                (u32::MAX - 960).wrapping_add(i as u32 * 960),
                *s,
            );
        }
        assert!(!clean.recent_loss(200.0));
        assert!(clean.delay_variation_ms(1.0) < 1e-6);
    }

    #[test]
    fn a_timeline_jump_restarts_the_window() {
        let mut e = JitterEstimator::new(90_000);
        // On time, then the stream restarts 3 s back on its RTP timeline.
        for i in 0..200u32 {
            e.packet(f64::from(i) * 10.0, i * 900, i as u16);
        }
        for i in 200..400u32 {
            e.packet(
                f64::from(i) * 10.0,
                (i * 900).wrapping_sub(270_000),
                i as u16,
            );
        }
        assert!(
            e.delay_variation_ms(1.0) < 1.0,
            "{}",
            e.delay_variation_ms(1.0)
        );
    }

    #[test]
    fn the_connection_burst_is_not_jitter() {
        let mut e = JitterEstimator::new(90_000);
        // The first 30 packets (300 ms) were held while the connection came up and arrive
        // together at 300 ms; then on time.
        for i in 0..30u32 {
            e.packet(300.0, i * 900, i as u16);
        }
        for i in 30..500u32 {
            e.packet(f64::from(i) * 10.0, i * 900, i as u16);
        }
        assert_eq!(e.target_ms(5000.0, 1.0, 10, 400), 10);
    }

    #[test]
    fn latency_goes_up_at_once_and_down_slowly() {
        assert_eq!(next_latency(10, 60), 60);
        assert_eq!(next_latency(60, 10), 54);
        assert_eq!(next_latency(20, 10), 18);
        assert_eq!(next_latency(11, 10), 10);
        // A 400 ms spike over a 20 ms target is under 60 ms within 20 updates (5 s).
        let mut l = 400;
        for _ in 0..20 {
            l = next_latency(l, 20);
        }
        assert!(l < 60, "{l}");
    }

    #[test]
    fn configuration_limits() {
        assert!(JitterBuffer::default().validate().is_ok());
        assert!(
            JitterBuffer::Adaptive {
                min_ms: 50,
                max_ms: 20
            }
            .validate()
            .is_err()
        );
        assert!(
            JitterBuffer::Fixed(MAX_JITTER_LATENCY_MS + 1)
                .validate()
                .is_err()
        );
        assert!(
            JitterBuffer::Fixed(MAX_JITTER_LATENCY_MS)
                .validate()
                .is_ok()
        );
    }
}
