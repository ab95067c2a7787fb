//! Capture-to-decode latency of a session's video, measured in the picture itself.
//!
//! [`FrameStamper`] paints a frame counter into the luma plane of every raw frame right before
//! the publisher's encoder (the same 24-bit counter + check byte as the latency benchmark,
//! `crate::bench::latency`) and records its capture time; a subscriber in the same process
//! reads the counter back at its decoder's output. Both ends use GStreamer's monotonic system
//! clock, so the difference is the decoded latency.
//!
//! ```no_run
//! # async fn f(session_a: &streamwire::session::Session, session_b: &streamwire::session::Session) {
//! use streamwire::session::latency::FrameStamper;
//! let stamper = FrameStamper::new();
//! stamper.stamp(&session_a.publisher().await.unwrap());
//! stamper.measure(session_b.subscriber());
//! // later
//! println!("{:?}", stamper.take_samples_ms());
//! # }
//! ```

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::bench::latency::{luma_of, now_ns, remember_capture, stamp_frames};
use crate::webrtc::publisher::Publisher;
use crate::webrtc::subscriber::Subscriber;

#[derive(Default)]
struct Shared {
    captured: Mutex<HashMap<u32, u64>>,
    samples: Mutex<Vec<f64>>,
}

/// Stamps published frames and measures when subscribers decode them.
#[derive(Clone)]
pub struct FrameStamper {
    clock: gst::Clock,
    shared: Arc<Shared>,
}

impl Default for FrameStamper {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for FrameStamper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameStamper").finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl FrameStamper {
    /// A stamper on GStreamer's system clock.
    pub fn new() -> Self {
        FrameStamper {
            clock: gst::SystemClock::obtain(),
            shared: Arc::default(),
        }
    }

    /// Paint the counter into every raw frame of `publisher` before encoding. Returns false if
    /// the publisher has no video.
    pub fn stamp(&self, publisher: &Publisher) -> bool {
        let Some(raw) = publisher.raw_video_pad() else {
            return false;
        };
        let shared = self.shared.clone();
        stamp_frames(&raw, self.clock.clone(), move |n, t| {
            remember_capture(&shared.captured, n, t)
        });
        true
    }

    /// Read the counter back from every frame `subscriber` decodes (replaces its decoded-video
    /// callback).
    pub fn measure(&self, subscriber: &Subscriber) {
        let clock = self.clock.clone();
        let shared = self.shared.clone();
        subscriber.on_decoded_video(move |_, buf, caps| {
            let t = now_ns(&clock);
            let Some(n) = luma_of(buf, caps) else { return };
            let Some(t0) = lock(&shared.captured).get(&n).copied() else {
                return;
            };
            lock(&shared.samples).push(t.saturating_sub(t0) as f64 / 1e6);
        });
    }

    /// Latency samples (ms) collected since the last call.
    pub fn take_samples_ms(&self) -> Vec<f64> {
        std::mem::take(&mut *lock(&self.shared.samples))
    }
}
