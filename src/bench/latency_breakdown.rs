//! Where join → first decoded frame goes: timestamps of each step of one subscriber's start,
//! in milliseconds after its `Session::join` call, reported as an optional breakdown in
//! `streamwire bench latency --json` (`first_frame_breakdown`).
//!
//! Subscriber side (hooks on the subscriber session's pipeline, including elements created
//! later inside `webrtcbin`):
//! * `joined`: `Session::join` returned (WebSocket connected, `welcome` received);
//! * `ice_connected`: `webrtcbin` `ice-connection-state` became connected/completed;
//! * `dtls_connected`: the first `dtlsdec` `connection-state` became connected;
//! * `pc_connected`: `webrtcbin` `connection-state` became connected (ICE and DTLS);
//! * `first_rtp`: the first RTP packet (audio or video) entered a jitter buffer (decrypted);
//! * `src_pad_added`: `webrtcbin` added its first source pad (a remote track's media arrived
//!   past the jitter buffer; the subscriber builds the receive branch then);
//! * `first_depay_in`: that packet left the jitter buffer into the depayloader;
//! * `first_frame_out`: the depayloader's first complete frame (it waits for a keyframe);
//! * `first_decoded`: the decoder's first frame.
//!
//! Publisher side (probes on the shared video encoder's source pad):
//! * `keyframe_request`: the first force-key-unit request reaching the encoder after the
//!   subscriber's `webrtcbin_created` (the publisher's "new peer" request, or a receiver's
//!   PLI/FIR; with several subscribers joining together it may be another subscriber's);
//! * `keyframe_out`: the first keyframe leaving the encoder after `webrtcbin_created`.
//!
//! Plus `video_packets_dropped_before_keyframe`: video RTP packets the depayloader received
//! before its first frame (delta frames dropped while waiting for a keyframe).

use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use gst::prelude::*;

/// Step timestamps of one subscriber (first occurrence of each step only).
#[derive(Debug)]
pub struct Marks {
    t0: Instant,
    marks: Mutex<BTreeMap<&'static str, Instant>>,
    packets_before_frame: AtomicU64,
}

impl Marks {
    /// Start the clock: the subscriber calls `Session::join` now.
    pub fn start() -> Arc<Marks> {
        Arc::new(Marks {
            t0: Instant::now(),
            marks: Mutex::new(BTreeMap::new()),
            packets_before_frame: AtomicU64::new(0),
        })
    }

    /// Record `step` now, unless it was recorded before.
    pub fn mark(&self, step: &'static str) {
        let mut m = self.marks.lock();
        if !m.contains_key(step) {
            let now = Instant::now();
            tracing::debug!(
                step,
                ms = now.duration_since(self.t0).as_secs_f64() * 1000.0,
                "first-frame step"
            );
            m.insert(step, now);
        }
    }

    fn at(&self, step: &str) -> Option<Instant> {
        self.marks.lock().get(step).copied()
    }

    fn ms(&self, t: Instant) -> f64 {
        t.saturating_duration_since(self.t0).as_secs_f64() * 1000.0
    }
}

/// Keyframe requests and keyframes of the publisher's shared encoder.
#[derive(Debug, Default)]
pub struct EncoderLog {
    requests: Mutex<Vec<Instant>>,
    keyframes: Mutex<Vec<Instant>>,
}

impl EncoderLog {
    /// Probe every video encoder of `pipeline` (the publisher session's): force-key-unit
    /// requests arriving upstream and keyframes leaving. Returns how many encoders were hooked.
    pub fn hook(self: &Arc<Self>, pipeline: &gst::Pipeline) -> usize {
        let mut hooked = 0;
        let mut it = pipeline.iterate_recurse();
        while let Ok(Some(el)) = it.next() {
            let Some(factory) = el.factory() else {
                continue;
            };
            if !factory
                .metadata(gst::ELEMENT_METADATA_KLASS)
                .is_some_and(|k| k.contains("Encoder") && k.contains("Video"))
            {
                continue;
            }
            let Some(src) = el.static_pad("src") else {
                continue;
            };
            let log = self.clone();
            src.add_probe(
                gst::PadProbeType::BUFFER | gst::PadProbeType::EVENT_UPSTREAM,
                move |_, info| {
                    match &info.data {
                        Some(gst::PadProbeData::Buffer(b))
                            if !b.flags().contains(gst::BufferFlags::DELTA_UNIT) =>
                        {
                            log.keyframes.lock().push(Instant::now());
                        }
                        Some(gst::PadProbeData::Event(e))
                            if gst_video::ForceKeyUnitEvent::is(e) =>
                        {
                            log.requests.lock().push(Instant::now());
                        }
                        _ => {}
                    }
                    gst::PadProbeReturn::Ok
                },
            );
            hooked += 1;
        }
        hooked
    }

    fn first_at_or_after(v: &Mutex<Vec<Instant>>, t: Instant) -> Option<Instant> {
        v.lock().iter().copied().find(|x| *x >= t)
    }
}

/// Hook the subscriber session's `pipeline` so that `marks` gets the subscriber-side steps.
/// Elements already in the pipeline are hooked now, later ones when they are added.
pub fn hook_subscriber_pipeline(pipeline: &gst::Pipeline, marks: &Arc<Marks>) {
    let m = marks.clone();
    pipeline.connect_deep_element_added(move |_, _, el| hook_element(el, &m));
    let mut it = pipeline.iterate_recurse();
    while let Ok(Some(el)) = it.next() {
        hook_element(&el, marks);
    }
}

fn first_buffer(pad: &gst::Pad, marks: &Arc<Marks>, step: &'static str) {
    let m = marks.clone();
    pad.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
        m.mark(step);
        gst::PadProbeReturn::Remove
    });
}

fn hook_element(el: &gst::Element, marks: &Arc<Marks>) {
    let Some(factory) = el.factory() else { return };
    match factory.name().as_str() {
        "webrtcbin" => {
            marks.mark("webrtcbin_created");
            let m = marks.clone();
            el.connect_pad_added(move |_, pad| {
                if pad.direction() == gst::PadDirection::Src {
                    m.mark("src_pad_added");
                }
            });
            let m = marks.clone();
            el.connect_notify(Some("signaling-state"), move |bin, _| {
                use gst_webrtc::WebRTCSignalingState as S;
                match bin.property::<S>("signaling-state") {
                    S::HaveRemoteOffer => m.mark("remote_offer_applied"),
                    S::HaveLocalOffer => m.mark("local_offer_applied"),
                    S::Stable => m.mark("negotiated"),
                    _ => {}
                }
            });
            let m = marks.clone();
            el.connect_notify(Some("ice-gathering-state"), move |bin, _| {
                use gst_webrtc::WebRTCICEGatheringState as S;
                if bin.property::<S>("ice-gathering-state") == S::Complete {
                    m.mark("ice_gathering_complete");
                }
            });
            let m = marks.clone();
            el.connect_notify(Some("ice-connection-state"), move |bin, _| {
                let s =
                    bin.property::<gst_webrtc::WebRTCICEConnectionState>("ice-connection-state");
                if s == gst_webrtc::WebRTCICEConnectionState::Checking {
                    m.mark("ice_checking");
                }
                if matches!(
                    s,
                    gst_webrtc::WebRTCICEConnectionState::Connected
                        | gst_webrtc::WebRTCICEConnectionState::Completed
                ) {
                    m.mark("ice_connected");
                }
            });
            let m = marks.clone();
            el.connect_notify(Some("connection-state"), move |bin, _| {
                let s = bin.property::<gst_webrtc::WebRTCPeerConnectionState>("connection-state");
                if s == gst_webrtc::WebRTCPeerConnectionState::Connected {
                    m.mark("pc_connected");
                }
            });
        }
        "dtlsdec" => {
            let m = marks.clone();
            el.connect_notify(Some("connection-state"), move |el, _| {
                let v = el.property_value("connection-state");
                if let Some((_, e)) = gst::glib::EnumValue::from_value(&v)
                    && e.nick() == "connected"
                {
                    m.mark("dtls_connected");
                }
            });
        }
        "rtpjitterbuffer" => {
            if let Some(p) = el.static_pad("sink") {
                first_buffer(&p, marks, "first_rtp");
            }
        }
        "rtpvp8depay" | "rtph264depay" => {
            if let (Some(sink), Some(src)) = (el.static_pad("sink"), el.static_pad("src")) {
                first_buffer(&sink, marks, "first_depay_in");
                let m = marks.clone();
                sink.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
                    if m.at("first_frame_out").is_some() {
                        return gst::PadProbeReturn::Remove;
                    }
                    m.packets_before_frame.fetch_add(1, Ordering::Relaxed);
                    gst::PadProbeReturn::Ok
                });
                first_buffer(&src, marks, "first_frame_out");
            }
        }
        "vp8dec" | "avdec_h264" | "openh264dec" => {
            if let Some(p) = el.static_pad("src") {
                first_buffer(&p, marks, "first_decoded");
            }
        }
        _ => {}
    }
}

/// One subscriber's steps, ms after its join call (`None`: not seen).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Breakdown {
    /// Step name → ms after the join call, in time order.
    pub steps: Vec<(String, f64)>,
    /// Video RTP packets the depayloader received before its first complete frame.
    pub video_packets_dropped_before_keyframe: u64,
}

/// Medians over subscribers of each step, and every subscriber's steps.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct BreakdownReport {
    /// Step name → median ms after the join call (over subscribers that saw the step), in
    /// time order.
    pub median_ms: Vec<(String, f64)>,
    /// Per subscriber, in join order.
    pub subscribers: Vec<Breakdown>,
}

/// One subscriber's breakdown, with the publisher's encoder log placed on its timeline.
pub fn breakdown(marks: &Marks, enc: &EncoderLog) -> Breakdown {
    let mut steps: Vec<(String, f64)> = marks
        .marks
        .lock()
        .iter()
        .map(|(k, t)| ((*k).to_owned(), marks.ms(*t)))
        .collect();
    if let Some(c) = marks.at("webrtcbin_created") {
        if let Some(t) = EncoderLog::first_at_or_after(&enc.requests, c) {
            steps.push(("keyframe_request".into(), marks.ms(t)));
        }
        if let Some(t) = EncoderLog::first_at_or_after(&enc.keyframes, c) {
            steps.push(("keyframe_out".into(), marks.ms(t)));
        }
    }
    steps.sort_by(|a, b| a.1.total_cmp(&b.1));
    Breakdown {
        steps,
        video_packets_dropped_before_keyframe: marks.packets_before_frame.load(Ordering::Relaxed),
    }
}

/// Medians per step over `subs`.
pub fn report(subs: Vec<Breakdown>) -> BreakdownReport {
    let mut by_step: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for b in &subs {
        for (k, v) in &b.steps {
            by_step.entry(k.clone()).or_default().push(*v);
        }
    }
    let mut median_ms: Vec<(String, f64)> = by_step
        .into_iter()
        .filter_map(|(k, v)| super::median(&v).map(|m| (k, m)))
        .collect();
    median_ms.sort_by(|a, b| a.1.total_cmp(&b.1));
    BreakdownReport {
        median_ms,
        subscribers: subs,
    }
}
