//! The elements webrtcbin creates inside itself for repair, configured and watched as they
//! appear: `rtprtxsend` (bounded history), `rtpjitterbuffer` (retransmission deadline, adaptive
//! latency), `rtpulpfecdec` and `rtprtxreceive` (counters), and the transport bins whose RTP
//! pads the packet counters sit on.

use std::sync::Arc;
use std::time::Instant;

use gst::glib;
use gst::prelude::*;
use parking_lot::Mutex;

use super::counters::{Live, PacketClass, RepairCounters, RepairPayloadTypes};
use super::jitter::{
    JitterEstimator, RTX_DELAY_MS, RTX_MARGIN_MS, RTX_MIN_RETRY_MS, UPDATE, next_latency,
};
use super::{JitterBuffer, RepairConfig};

/// Shortest time (ms) between two recomputations of the pipeline latency for a jitter buffer
/// whose latency went down.
const RECALC_INTERVAL_MS: f64 = 2000.0;

/// What one peer connection's repair elements and counters are.
#[derive(Debug)]
pub(crate) struct Internals {
    config: RepairConfig,
    jitter: JitterBuffer,
    live: Arc<Live>,
    rtxsend: Mutex<Vec<glib::WeakRef<gst::Element>>>,
    rtxreceive: Mutex<Vec<glib::WeakRef<gst::Element>>>,
    fecdecs: Mutex<Vec<glib::WeakRef<gst::Element>>>,
    jitterbuffers: Mutex<Vec<glib::WeakRef<gst::Element>>>,
    /// The adaptive target (ms) of each jitter buffer of the connection; each buffer follows
    /// the highest, so audio and video keep one latency and rtpbin's lip sync holds.
    targets: Arc<Mutex<Vec<Target>>>,
    started: Instant,
}

impl Internals {
    /// Learn the repair payload types from the current local and remote descriptions.
    pub(crate) fn learn_payload_types(&self, webrtcbin: &gst::Element) {
        let pts = negotiated_payload_types(webrtcbin);
        tracing::debug!(?pts, "repair payload types");
        for rx in self.rtxreceive.lock().iter().filter_map(|w| w.upgrade()) {
            set_rtx_map(&rx, &pts);
        }
        *self.live.pts.lock() = pts;
    }

    /// The counters now.
    pub(crate) fn snapshot(&self, webrtcbin: &gst::Element) -> RepairCounters {
        let sum = |list: &Mutex<Vec<glib::WeakRef<gst::Element>>>, prop: &str| -> u64 {
            list.lock()
                .iter()
                .filter_map(|w| w.upgrade())
                .map(|e| u64::from(e.property::<u32>(prop)))
                .sum()
        };
        RepairCounters {
            sent: self.live.sent.snapshot(),
            received: self.live.received.snapshot(),
            rtx_requests_received: sum(&self.rtxsend, "num-rtx-requests"),
            fec_recovered: sum(&self.fecdecs, "recovered"),
            fec_percentage: super::fec::fec_transceivers(webrtcbin)
                .iter()
                .map(|t| t.property::<u32>("fec-percentage"))
                .collect(),
            jitter_latency_ms: self
                .jitterbuffers
                .lock()
                .iter()
                .filter_map(|w| w.upgrade())
                .map(|e| e.property::<u32>("latency"))
                .collect(),
        }
    }

    fn element_added(self: &Arc<Self>, element: &gst::Element) {
        let factory = element.factory().map(|f| f.name().to_string());
        match factory.as_deref() {
            Some("rtprtxsend") => {
                element.set_property("max-size-time", self.config.rtx_history_ms);
                element.set_property("max-size-packets", self.config.rtx_history_packets);
                self.rtxsend.lock().push(element.downgrade());
            }
            Some("rtprtxreceive") => {
                set_rtx_map(element, &self.live.pts.lock());
                self.rtxreceive.lock().push(element.downgrade());
            }
            Some("rtpulpfecdec") => self.fecdecs.lock().push(element.downgrade()),
            // RED without redundant blocks only wraps: media goes out as itself, so its
            // header extensions (CVO, TWCC), which rtpredenc 1.22 does not copy into the RED
            // packet, reach the receiver.
            // webrtcbin sets the property itself when it builds the encoder, possibly after
            // this: keep it false whenever it changes.
            Some("rtpredenc") => {
                element.set_property("allow-no-red-blocks", false);
                element.connect_notify(Some("allow-no-red-blocks"), |e, _| {
                    if e.property::<bool>("allow-no-red-blocks") {
                        e.set_property("allow-no-red-blocks", false);
                    }
                });
            }
            Some("rtpjitterbuffer") => self.jitterbuffer_added(element),
            Some("rtpsession") => configure_rtcp(element),
            _ => match element.type_().name() {
                "TransportSendBin" => self.count_on(element, "rtp_sink", Side::Sent),
                "TransportReceiveBin" => self.count_on(element, "rtp_src", Side::Received),
                _ => {}
            },
        }
    }

    fn count_on(&self, bin: &gst::Element, pad: &str, side: Side) {
        let Some(pad) = bin.static_pad(pad) else {
            tracing::warn!(pad, "transport bin without its RTP pad: no repair counters");
            return;
        };
        count_rtp(&pad, Arc::downgrade(&self.live), side);
    }

    fn jitterbuffer_added(self: &Arc<Self>, jb: &gst::Element) {
        // Retransmissions are requested only while they can arrive before the packet's playout
        // deadline, which is the buffer's latency (-1 = follow it). The retry period starts
        // automatic (the latency less the retry timeout); the adaptive update below sets both.
        jb.set_property("rtx-deadline", -1i32);
        jb.set_property("rtx-retry-period", -1i32);
        // Loss is a gap in the sequence numbers. Guessing when the next packet is due asks, at
        // every pause between two video frames, for a packet not sent yet.
        jb.set_property("rtx-next-seqnum", false);
        // Ask soon after a gap and again soon after a lost request: the automatic values are
        // half and a whole frame interval for video, which a short buffer cannot wait for.
        jb.set_property("rtx-delay", RTX_DELAY_MS as i32);
        jb.set_property("rtx-min-retry-timeout", RTX_MIN_RETRY_MS as i32);
        self.jitterbuffers.lock().push(jb.downgrade());
        let adaptive = match self.jitter {
            JitterBuffer::Adaptive { min_ms, max_ms } => Some((min_ms, max_ms)),
            JitterBuffer::Fixed(_) => None,
        };
        let nack = self.config.nack;
        let Some(sink) = jb.static_pad("sink") else {
            return;
        };
        let started = self.started;
        let targets = self.targets.clone();
        if let Some((min_ms, _)) = adaptive {
            targets.lock().push((jb.downgrade(), min_ms));
        }
        let state = Mutex::new(Adapt {
            estimator: None,
            next_update: 0.0,
            applied_ms: 0,
            applied_at_ms: 0.0,
        });
        let jb_weak = jb.downgrade();
        sink.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            let Some(buf) = info.buffer() else {
                return gst::PadProbeReturn::Ok;
            };
            let retransmitted =
                buf.flags().bits() & gst_rtp::RTPBufferFlags::RETRANSMISSION.bits() != 0;
            let Ok(rtp) = gst_rtp::RTPBuffer::from_buffer_readable(buf) else {
                return gst::PadProbeReturn::Ok;
            };
            let now_ms = started.elapsed().as_secs_f64() * 1000.0;
            let mut guard = state.lock();
            let st = &mut *guard;
            if st.estimator.is_none() {
                // The pad's caps name only the SSRC; the payload's caps come from rtpbin's
                // payload-type map, as the jitter buffer itself gets them.
                let Some(jb) = jb_weak.upgrade() else {
                    return gst::PadProbeReturn::Remove;
                };
                let caps = jb.emit_by_name::<Option<gst::Caps>>(
                    "request-pt-map",
                    &[&u32::from(rtp.payload_type())],
                );
                let s = caps.as_ref().and_then(|c| c.structure(0));
                let rate = s
                    .and_then(|s| s.get::<i32>("clock-rate").ok())
                    .and_then(|r| u32::try_from(r).ok());
                let Some(rate) = rate else {
                    return gst::PadProbeReturn::Ok;
                };
                let video = s.and_then(|s| s.get::<&str>("media").ok()) == Some("video");
                // webrtcbin sets `do-retransmission` from the transceiver it finds for the
                // m-line, which for an answerer is the one it made while applying the offer
                // (without `do-nack`), not the one the answer was built from: set it here.
                jb.set_property("do-retransmission", video && nack);
                st.estimator = Some(JitterEstimator::new(rate));
            }
            let Some((min_ms, max_ms)) = adaptive else {
                return gst::PadProbeReturn::Remove;
            };
            let Some(est) = st.estimator.as_mut() else {
                return gst::PadProbeReturn::Ok;
            };
            if retransmitted {
                est.retransmitted(now_ms, rtp.timestamp());
            } else {
                est.packet(now_ms, rtp.timestamp(), rtp.seq());
            }
            drop(rtp);
            if now_ms < st.next_update {
                return gst::PadProbeReturn::Ok;
            }
            st.next_update = now_ms + UPDATE.as_secs_f64() * 1000.0;
            let Some(jb) = jb_weak.upgrade() else {
                return gst::PadProbeReturn::Remove;
            };
            let rtt_ms = jb
                .property::<gst::Structure>("stats")
                .get::<u64>("rtx-rtt")
                .map(|ns| ns as f64 / 1e6)
                .unwrap_or(0.0);
            let own = est.target_ms(now_ms, rtt_ms, min_ms, max_ms);
            let retry_ms = est.retry_timeout_ms(rtt_ms);
            let target = {
                let mut all = targets.lock();
                all.retain(|(w, _)| w.upgrade().is_some());
                for (w, t) in all.iter_mut() {
                    if w.upgrade().as_ref() == Some(&jb) {
                        *t = own;
                    }
                }
                all.iter().map(|(_, t)| *t).max().unwrap_or(own)
            };
            let current = jb.property::<u32>("latency");
            let next = next_latency(current, target);
            // Only for the trace below (sorting the window is not free).
            let (variation, repair_p99, recent_loss) = if tracing::enabled!(tracing::Level::TRACE) {
                (
                    est.delay_variation_ms(0.98),
                    est.repair_delay_ms(super::jitter::REPAIR_QUANTILE),
                    est.recent_loss(now_ms),
                )
            } else {
                (0.0, 0.0, false)
            };
            // The sinks render at the pipeline's latency, which GStreamer recomputes only when
            // asked: at once when the buffer holds packets longer (they would reach the sinks
            // late), at most every RECALC_INTERVAL when it holds them shorter (each recompute
            // moves every sink's render time).
            let recalc = next > st.applied_ms
                || (next < st.applied_ms && now_ms - st.applied_at_ms >= RECALC_INTERVAL_MS);
            if recalc {
                st.applied_ms = next;
                st.applied_at_ms = now_ms;
            }
            drop(guard);
            // Ask again after `retry_ms`, and keep asking while a retransmission sent now can
            // still arrive before the packet's deadline (the latency): one round trip and the
            // margin before it. rtpjitterbuffer's automatic period, the latency minus its retry
            // timeout, stopped after the first request whenever that timeout was long.
            let period = f64::from(next) - rtt_ms.max(0.0) - RTX_MARGIN_MS;
            // Both within 0..=MAX_JITTER_LATENCY_MS: the casts cannot truncate.
            let period = period.max(0.0) as i32;
            let retry = i32::try_from(retry_ms).unwrap_or(i32::MAX);
            if jb.property::<i32>("rtx-retry-timeout") != retry {
                jb.set_property("rtx-retry-timeout", retry);
            }
            if jb.property::<i32>("rtx-retry-period") != period {
                jb.set_property("rtx-retry-period", period);
            }
            if next != current {
                tracing::trace!(
                    current,
                    own,
                    target,
                    next,
                    rtt_ms,
                    delay_variation_p98_ms = variation,
                    repair_delay_p99_ms = repair_p99,
                    recent_loss,
                    "jitter buffer latency"
                );
                jb.set_property("latency", next);
            }
            if recalc {
                crate::webrtc::recalculate_pipeline_latency(&jb);
            }
            gst::PadProbeReturn::Ok
        });
    }
}

/// Give the connection's `rtpsession` an RTCP budget that lets feedback out when it is due.
///
/// With `bandwidth` 0, `rtpsession` derives its RTCP bandwidth from what the connection itself
/// sends, at least 64 kbit/s, of which RTCP gets 5 %: a connection that only receives (or only
/// sends audio) gets about 3 kbit/s, so its RTCP interval is 0.3-1 s. Under the feedback
/// profile's rules (RFC 4585 3.5.2) one early packet is allowed per interval and every other
/// NACK or PLI waits for the next regular report, which `rtcp-min-interval` (5 s) pushes 2.5 to
/// 7.5 s away: the jitter buffer's deadline passes first and the NACK is dropped unsent.
/// [`RTCP_BANDWIDTH`](super::RTCP_BANDWIDTH) and
/// [`RTCP_REPORT_INTERVAL`](super::RTCP_REPORT_INTERVAL) fix both, whatever the connection sends.
fn configure_rtcp(session: &gst::Element) {
    session.set_property("rtcp-fraction", f64::from(super::RTCP_BANDWIDTH));
    let interval = u64::try_from(super::RTCP_REPORT_INTERVAL.as_nanos()).unwrap_or(u64::MAX);
    session.set_property("rtcp-min-interval", interval);
}

/// Give `rtprtxreceive` every negotiated (original, rtx) payload-type pair. webrtcbin 1.22
/// fills its map from the transceiver it finds for the m-line, which on an answerer is not
/// always the one the answer was built from (without RTX): then retransmissions are dropped.
fn set_rtx_map(rtxreceive: &gst::Element, pts: &RepairPayloadTypes) {
    if pts.apt.is_empty() {
        return;
    }
    let mut map = rtxreceive
        .property::<Option<gst::Structure>>("payload-type-map")
        .unwrap_or_else(|| gst::Structure::new_empty("application/x-rtp-pt-map"));
    for (apt, rtx) in &pts.apt {
        map.set(apt.to_string(), u32::from(*rtx));
    }
    rtxreceive.set_property("payload-type-map", map);
}

/// A jitter buffer of the connection and its own adaptive target (ms).
type Target = (glib::WeakRef<gst::Element>, u32);

struct Adapt {
    estimator: Option<JitterEstimator>,
    next_update: f64,
    /// The latency (ms) the pipeline last recomputed its own with, and when (ms).
    applied_ms: u32,
    applied_at_ms: f64,
}

/// Which direction a packet probe counts.
#[derive(Debug, Clone, Copy)]
pub(super) enum Side {
    Sent,
    Received,
}

/// Count every RTP packet through `pad` (a transport bin's RTP pad) into `live`'s `side` tally,
/// classified by the payload types `live` knows at the time; the probe goes away with `live`.
pub(super) fn count_rtp(pad: &gst::Pad, live: std::sync::Weak<Live>, side: Side) {
    pad.add_probe(
        gst::PadProbeType::BUFFER | gst::PadProbeType::BUFFER_LIST,
        move |_, info| {
            let Some(live) = live.upgrade() else {
                return gst::PadProbeReturn::Remove;
            };
            let pts = live.pts.lock().clone();
            let tally = match side {
                Side::Sent => &live.sent,
                Side::Received => &live.received,
            };
            let count = |buf: &gst::BufferRef| {
                if let Some((class, size)) = classify(&pts, buf) {
                    tally.add(class, size);
                }
            };
            match &info.data {
                Some(gst::PadProbeData::Buffer(b)) => count(b),
                Some(gst::PadProbeData::BufferList(l)) => l.iter().for_each(count),
                _ => {}
            }
            gst::PadProbeReturn::Ok
        },
    );
}

/// Class and size (RTP header + payload) of an RTP packet; `None` for anything that is not RTP
/// (an RTCP packet on a muxed path).
fn classify(pts: &RepairPayloadTypes, buf: &gst::BufferRef) -> Option<(PacketClass, usize)> {
    let rtp = gst_rtp::RTPBuffer::from_buffer_readable(buf).ok()?;
    let pt = rtp.payload_type();
    // RTCP packet types 192..=223 read as RTP payload types 64..=95 (RFC 5761).
    if (64..=95).contains(&pt) {
        return None;
    }
    let class = pts.classify(pt, rtp.payload().unwrap_or(&[]));
    Some((class, buf.size()))
}

/// The repair payload types of `webrtcbin`'s current local and remote descriptions.
pub(super) fn negotiated_payload_types(webrtcbin: &gst::Element) -> RepairPayloadTypes {
    let mut pts = RepairPayloadTypes::default();
    for prop in ["current-local-description", "current-remote-description"] {
        if let Some(desc) = webrtcbin.property::<Option<gst_webrtc::WebRTCSessionDescription>>(prop)
        {
            pts.merge(RepairPayloadTypes::from_sdp(desc.sdp()));
        }
    }
    pts
}

/// Configure and watch the repair elements webrtcbin creates inside `webrtcbin`.
pub(crate) fn watch_internals(
    webrtcbin: &gst::Element,
    config: RepairConfig,
    jitter: JitterBuffer,
) -> Arc<Internals> {
    let internals = Arc::new(Internals {
        config,
        jitter,
        live: Arc::default(),
        rtxsend: Mutex::new(Vec::new()),
        rtxreceive: Mutex::new(Vec::new()),
        fecdecs: Mutex::new(Vec::new()),
        jitterbuffers: Mutex::new(Vec::new()),
        targets: Arc::new(Mutex::new(Vec::new())),
        started: Instant::now(),
    });
    let Ok(bin) = webrtcbin.clone().downcast::<gst::Bin>() else {
        return internals;
    };
    let weak = Arc::downgrade(&internals);
    bin.connect_deep_element_added(move |_, _, element| {
        let Some(me) = weak.upgrade() else { return };
        // GStreamer emits this for the children of an added bin as well (webrtcbin's aux
        // sender and receiver bins arrive with their elements inside).
        me.element_added(element);
    });
    internals
}
