//! The latency `opusdec` reports with in-band FEC, corrected to what it holds back.
//!
//! With `use-inband-fec`, `opusdec` decodes every packet one packet late: a lost packet is
//! rebuilt from the FEC data of the packet after it. It reports the largest possible Opus
//! packet (120 ms) as its latency for that, and a pipeline's latency is the highest of its
//! sinks': every sink of a subscriber's pipeline, video too, then renders 120 ms later than
//! it needs to, where a WebRTC sender's packet is 20 ms (measured here: rendered latency
//! 157 ms instead of 55 ms on a clean loopback link). [`report_held_packet`] answers the
//! latency query through the decoder with the longest packet it has decoded instead of its own
//! figure (20 ms until a packet is seen), and has the pipeline recompute its latency when a
//! longer packet comes.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use gst::prelude::*;
use gst_audio::prelude::*;

/// What the decoder is assumed to hold before it decoded a packet (ns): the 20 ms packet
/// of WebRTC senders (Chromium's, Firefox's and Streamwire's `opusenc` default).
pub const ASSUMED_PACKET_NS: u64 = 20_000_000;

/// Correct the latency `dec` (an `opusdec` with `use-inband-fec`) reports: see the module
/// documentation. Does nothing to a decoder that reports no more than one packet.
pub(crate) fn report_held_packet(dec: &gst::Element) {
    let Some(decoder) = dec.dynamic_cast_ref::<gst_audio::AudioDecoder>() else {
        return;
    };
    let Some(src) = dec.static_pad("src") else {
        return;
    };
    let longest = Arc::new(AtomicU64::new(ASSUMED_PACKET_NS));
    {
        // Each output buffer is one packet's audio (or its concealment).
        let (longest, dec) = (longest.clone(), dec.downgrade());
        src.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            let d = info
                .buffer()
                .and_then(|b| b.duration())
                .map_or(0, |d| d.nseconds());
            if d > longest.fetch_max(d, Ordering::Relaxed)
                && let Some(dec) = dec.upgrade()
            {
                tracing::debug!(
                    packet_ms = d / 1_000_000,
                    "longer Opus packets: new latency"
                );
                super::recalculate_pipeline_latency(&dec);
            }
            gst::PadProbeReturn::Ok
        });
    }
    let decoder = decoder.downgrade();
    // The answer on its way back downstream (after upstream and the decoder added theirs).
    src.add_probe(
        gst::PadProbeType::QUERY_UPSTREAM | gst::PadProbeType::PULL,
        move |_, info| {
            let Some(decoder) = decoder.upgrade() else {
                return gst::PadProbeReturn::Remove;
            };
            let Some(gst::PadProbeData::Query(query)) = &mut info.data else {
                return gst::PadProbeReturn::Ok;
            };
            if let gst::QueryViewMut::Latency(q) = query.view_mut() {
                let (own, _) = decoder.latency();
                let held = gst::ClockTime::from_nseconds(longest.load(Ordering::Relaxed));
                let extra = own.saturating_sub(held);
                if extra > gst::ClockTime::ZERO {
                    let (live, min, max) = q.result();
                    q.set(
                        live,
                        min.saturating_sub(extra),
                        max.map(|m| m.saturating_sub(extra)),
                    );
                }
            }
            gst::PadProbeReturn::Ok
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The pipeline latency of `audiotestsrc ! opusenc ! opusdec use-inband-fec=… ! fakesink`.
    fn pipeline_latency(fec: bool, corrected: bool) -> gst::ClockTime {
        crate::gst_init::init().unwrap();
        let p = gst::parse::launch(&format!(
            "audiotestsrc is-live=true ! opusenc inband-fec=true \
             ! opusdec name=dec use-inband-fec={fec} ! fakesink sync=true"
        ))
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
        if corrected {
            report_held_packet(&p.by_name("dec").unwrap());
        }
        p.set_state(gst::State::Playing).unwrap();
        let bus = p.bus().unwrap();
        // Wait until playing and a few packets through (the latency is configured then).
        let _ = bus.timed_pop_filtered(
            gst::ClockTime::from_seconds(5),
            &[gst::MessageType::AsyncDone],
        );
        std::thread::sleep(std::time::Duration::from_millis(300));
        let mut q = gst::query::Latency::new();
        assert!(p.query(&mut q));
        p.set_state(gst::State::Null).unwrap();
        q.result().1
    }

    #[test]
    fn the_decoder_reports_one_packet_not_120_ms() {
        let plain = pipeline_latency(false, false);
        let fec = pipeline_latency(true, false);
        let corrected = pipeline_latency(true, true);
        // opusdec adds 120 ms with FEC; corrected, it adds the 20 ms packet it holds.
        assert!(
            fec >= plain + gst::ClockTime::from_mseconds(100),
            "{plain} {fec}"
        );
        let held = corrected.saturating_sub(plain);
        assert_eq!(
            held,
            gst::ClockTime::from_mseconds(20),
            "{plain} {corrected}"
        );
    }
}
