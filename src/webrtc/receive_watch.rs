//! What the subscriber watches on a received video track before its depayloader: frames
//! received (one per new RTP timestamp) and keyframe requests repeated while repair failed.
//!
//! The depayloader (`request-keyframe`, `wait-for-keyframe`) asks for a keyframe once when it
//! finds a frame missing, then drops frames until one comes. That request is an RTCP PLI, and
//! RTCP is lost like anything else: when [`STALL_FRAMES`] frames arrived with none decoded, the
//! request is repeated, at most once per [`KEYFRAME_RETRY`] (the publisher rate-limits
//! keyframes anyway, `PublisherConfig::keyframe_min_interval_ms`).

use std::time::{Duration, Instant};

use gst::prelude::*;
use parking_lot::Mutex;

/// Frames received without one decoded before the keyframe request is repeated.
pub const STALL_FRAMES: u64 = 10;
/// Shortest time between two repeated keyframe requests.
pub const KEYFRAME_RETRY: Duration = Duration::from_millis(300);

#[derive(Default)]
struct Watch {
    last_ts: Option<u32>,
    last_decoded: u64,
    received_at_decode: u64,
    last_request: Option<Instant>,
}

/// Watch the RTP packets reaching the depayloader's sink `pad`. For each new frame (RTP
/// timestamp) `on_frame` counts it and returns (frames received, frames decoded) of the track,
/// or `None` when the track is gone (the probe is removed).
pub(super) fn watch_received_frames(
    pad: &gst::Pad,
    on_frame: impl Fn() -> Option<(u64, u64)> + Send + Sync + 'static,
) {
    let state = Mutex::new(Watch::default());
    pad.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
        let ts = info
            .buffer()
            .and_then(|b| gst_rtp::RTPBuffer::from_buffer_readable(b).ok())
            .map(|rtp| rtp.timestamp());
        let Some(ts) = ts else {
            return gst::PadProbeReturn::Ok;
        };
        let mut st = state.lock();
        if st.last_ts.replace(ts) == Some(ts) {
            return gst::PadProbeReturn::Ok;
        }
        let Some((received, decoded)) = on_frame() else {
            return gst::PadProbeReturn::Remove;
        };
        if decoded != st.last_decoded {
            st.last_decoded = decoded;
            st.received_at_decode = received;
            return gst::PadProbeReturn::Ok;
        }
        let stalled = received.saturating_sub(st.received_at_decode) >= STALL_FRAMES;
        let due = st
            .last_request
            .is_none_or(|t| t.elapsed() >= KEYFRAME_RETRY);
        if stalled && due {
            st.last_request = Some(Instant::now());
            drop(st);
            tracing::debug!(
                received,
                decoded,
                "no frame decoded: keyframe request repeated"
            );
            let ev = gst_video::UpstreamForceKeyUnitEvent::builder()
                .all_headers(false)
                .build();
            let _ = pad.push_event(ev);
        }
        gst::PadProbeReturn::Ok
    });
}
