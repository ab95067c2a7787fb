//! What the publisher does against loss: Opus in-band FEC sized by the loss the receivers
//! report, and keyframe requests (PLI/FIR) rate-limited at the shared encoder.
//!
//! * Opus: `inband-fec` on, `packet-loss-percentage` set to the highest audio loss any peer
//!   reports (so the encoder spends bits on FEC only when it is needed), DTX when asked
//!   ([`PublisherConfig::audio_dtx`](super::PublisherConfig::audio_dtx)): silence costs almost
//!   nothing.
//! * Keyframes: at most one per
//!   [`PublisherConfig::keyframe_min_interval_ms`](super::PublisherConfig::keyframe_min_interval_ms)
//!   from receivers' requests. A request inside the interval is not dropped but deferred to its
//!   end (one keyframe for all of them), so a receiver that lost its reference always gets
//!   one. The publisher's own keyframes (a peer connecting, a renegotiation) are not limited.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use gst::glib::translate::IntoGlib;
use gst::prelude::*;

use super::{Inner, Publisher};

/// Keyframe-request limiter state.
#[derive(Debug, Default)]
pub(super) struct KeyframeLimiter {
    /// When the last receiver-requested keyframe was let through.
    last: Option<Instant>,
    /// A deferred keyframe is scheduled.
    deferred: bool,
}

/// Highest audio loss (%) per peer.
pub(super) type AudioLoss = HashMap<String, f64>;

impl Publisher {
    /// Feed the audio loss (%) `peer` reports (`None` removes the peer) and set the Opus
    /// encoder's expected loss to the highest among the peers.
    pub(super) fn update_audio_loss(&self, peer: &str, pct: Option<f64>) {
        let Some(enc) = &self.inner.opus else {
            return;
        };
        let highest = {
            let mut map = self.inner.audio_loss.lock();
            match pct {
                Some(p) => {
                    map.insert(peer.to_owned(), p);
                }
                None => {
                    map.remove(peer);
                }
            }
            map.values().copied().fold(0.0, f64::max)
        };
        // Clamped to 0..=100: the cast cannot truncate.
        let want = highest.round().clamp(0.0, 100.0) as i32;
        if enc.property::<i32>("packet-loss-percentage") != want {
            tracing::debug!(pct = want, "Opus expected packet loss");
            enc.set_property("packet-loss-percentage", want);
        }
    }

    /// Rate-limit the keyframe requests that reach the encoder from the receivers (through
    /// the tee's sink pad).
    pub(super) fn limit_keyframe_requests(&self) {
        let Some((_, tee, _)) = &self.inner.video else {
            return;
        };
        let Some(pad) = tee.static_pad("sink") else {
            return;
        };
        let interval = Duration::from_millis(u64::from(self.inner.config.keyframe_min_interval_ms));
        if interval.is_zero() {
            return;
        }
        let weak = Arc::downgrade(&self.inner);
        pad.add_probe(gst::PadProbeType::EVENT_UPSTREAM, move |_, info| {
            let Some(ev) = info.event() else {
                return gst::PadProbeReturn::Ok;
            };
            if gst_video::UpstreamForceKeyUnitEvent::parse(ev).is_err() {
                return gst::PadProbeReturn::Ok;
            }
            let Some(inner) = weak.upgrade() else {
                return gst::PadProbeReturn::Ok;
            };
            if ev.seqnum().into_glib() == inner.own_keyframe_seqnum.load(Ordering::Relaxed) {
                return gst::PadProbeReturn::Ok;
            }
            let now = Instant::now();
            let mut lim = inner.keyframes_limit.lock();
            let wait = lim
                .last
                .map(|t| interval.saturating_sub(now.duration_since(t)))
                .unwrap_or_default();
            if wait.is_zero() {
                lim.last = Some(now);
                return gst::PadProbeReturn::Ok;
            }
            inner
                .keyframe_requests_deferred
                .fetch_add(1, Ordering::Relaxed);
            if !lim.deferred {
                lim.deferred = true;
                let weak = Arc::downgrade(&inner);
                let spawned = std::thread::Builder::new()
                    .name("sw-keyframe".into())
                    .spawn(move || {
                        std::thread::sleep(wait);
                        if let Some(inner) = weak.upgrade() {
                            {
                                let mut lim = inner.keyframes_limit.lock();
                                lim.deferred = false;
                                lim.last = Some(Instant::now());
                            }
                            tracing::debug!("deferred keyframe request");
                            Publisher { inner }.force_keyframe();
                        }
                    });
                if spawned.is_err() {
                    lim.deferred = false;
                    return gst::PadProbeReturn::Ok;
                }
            }
            gst::PadProbeReturn::Drop
        });
    }

    /// Receiver keyframe requests held back by the limiter so far (each folded into a
    /// deferred keyframe).
    pub fn keyframe_requests_deferred(&self) -> u64 {
        self.inner
            .keyframe_requests_deferred
            .load(Ordering::Relaxed)
    }
}

/// Remember `ev` as the publisher's own keyframe request (not rate-limited).
pub(super) fn mark_own(inner: &Inner, ev: &gst::Event) {
    inner
        .own_keyframe_seqnum
        .store(ev.seqnum().into_glib(), Ordering::Relaxed);
}
