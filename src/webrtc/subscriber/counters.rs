//! What the subscriber counts per received track: frames and samples at the decoder's output
//! (with the first-frame and per-frame events and freeze detection), and the audio level
//! extension of each audio packet (the room's `Speakers`).

use std::sync::Arc;

use gst::prelude::*;

use super::{Inner, MediaKind, SubscriberEvent};
use crate::webrtc::audio_level::rtp_level;

/// Read the audio level extension `id` from the RTP packets reaching `depay_sink`: the
/// track's counters and the room's [`Speakers`].
pub(super) fn read_levels(inner: &Arc<Inner>, peer_id: &str, id: u8, depay_sink: &gst::Pad) {
    let weak = Arc::downgrade(inner);
    let peer = peer_id.to_owned();
    depay_sink.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        let Some(inner) = weak.upgrade() else {
            return gst::PadProbeReturn::Remove;
        };
        if let Some((level, _voice)) = info.buffer().and_then(|b| rtp_level(b, id)) {
            inner
                .counters
                .lock()
                .entry((peer.clone(), MediaKind::Audio))
                .or_default()
                .audio_level = Some(level);
            let evs = inner
                .speakers
                .lock()
                .observe(&peer, level, std::time::Instant::now());
            for ev in evs {
                let _ = inner.events.send(ev);
            }
        }
        gst::PadProbeReturn::Ok
    });
}

/// Count what leaves `pad` (a decoder's output, or the last element before a recording).
pub(super) fn install_counter(inner: &Arc<Inner>, peer_id: &str, kind: MediaKind, pad: &gst::Pad) {
    let weak = Arc::downgrade(inner);
    let key = (peer_id.to_owned(), kind);
    pad.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
        let Some(inner) = weak.upgrade() else {
            return gst::PadProbeReturn::Remove;
        };
        if kind == MediaKind::Video {
            let cb = inner.on_decoded.lock().clone();
            if let (Some(cb), Some(buf), Some(caps)) = (cb, info.buffer(), pad.current_caps()) {
                cb(&key.0, buf, &caps);
            }
        }
        let (w, h) = if kind == MediaKind::Video {
            pad.current_caps()
                .and_then(|c| {
                    let s = c.structure(0)?;
                    Some((s.get::<i32>("width").ok()?, s.get::<i32>("height").ok()?))
                })
                .unwrap_or((0, 0))
        } else {
            (0, 0)
        };
        let freezes = (kind == MediaKind::Video).then(|| {
            let mut map = inner.freezes.lock();
            let d = map.entry(key.clone()).or_default();
            d.frame(inner.started.elapsed().as_secs_f64() * 1000.0);
            (d.freezes(), d.total_freeze_ms())
        });
        let samples = info
            .buffer()
            .and_then(|b| b.duration())
            .map(|d| d.nseconds() * 48_000 / 1_000_000_000)
            .unwrap_or(0);
        let count = {
            let mut map = inner.counters.lock();
            let c = map.entry(key.clone()).or_default();
            c.decoded += 1;
            c.width = w;
            c.height = h;
            if let Some((n, ms)) = freezes {
                c.freezes = n;
                c.freeze_ms = ms;
            }
            if kind == MediaKind::Audio {
                c.samples += samples;
            }
            c.decoded
        };
        match kind {
            MediaKind::Video if count == 1 || inner.config.frame_events => {
                let _ = inner.events.send(SubscriberEvent::VideoFrame {
                    peer: key.0.clone(),
                    width: w,
                    height: h,
                    count,
                });
            }
            MediaKind::Audio if count == 1 => {
                let _ = inner.events.send(SubscriberEvent::FirstAudio {
                    peer: key.0.clone(),
                });
            }
            _ => {}
        }
        gst::PadProbeReturn::Ok
    });
}
