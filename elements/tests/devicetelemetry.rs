// SPDX-License-Identifier: MIT OR Apache-2.0
//! `devicetelemetry`: consent levels in real pipelines, zero-copy pass-through.

use std::time::{Duration, Instant};

use gst::prelude::*;
use gststreamwire::telemetry::{Class, MESSAGE_NAME, REGISTRY, field};

fn init() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        gst::init().unwrap();
        gststreamwire::plugin_register_static().unwrap();
    });
}

/// Runs a live 320x240@30 pipeline through `devicetelemetry` for `run` and returns the
/// telemetry structures posted.
fn collect(consent: &str, interval_ms: u32, run: Duration) -> Vec<gst::Structure> {
    let pipeline = gst::parse::launch(&format!(
        "videotestsrc is-live=true ! video/x-raw,format=I420,width=320,height=240,framerate=30/1 ! \
         devicetelemetry name=t consent={consent} interval={interval_ms} \
         screen-resolution=1080x2340 ! fakesink"
    ))
    .unwrap();
    let bus = pipeline.bus().unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let deadline = Instant::now() + run;
    let mut out = Vec::new();
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        let Some(msg) = bus.timed_pop_filtered(
            gst::ClockTime::from_nseconds(left.as_nanos() as u64),
            &[gst::MessageType::Element, gst::MessageType::Error],
        ) else {
            break;
        };
        match msg.view() {
            gst::MessageView::Error(e) => panic!("{}: {:?}", e.error(), e.debug()),
            gst::MessageView::Element(e) => {
                if let Some(s) = e.structure()
                    && s.name() == MESSAGE_NAME
                {
                    out.push(s.to_owned());
                }
            }
            _ => {}
        }
    }
    pipeline.set_state(gst::State::Null).unwrap();
    out
}

fn keys(s: &gst::Structure) -> Vec<String> {
    s.fields()
        .map(|f| f.to_string())
        .filter(|k| k != "consent")
        .collect()
}

#[test]
fn consent_none_posts_nothing() {
    init();
    let msgs = collect("none", 100, Duration::from_millis(700));
    assert!(msgs.is_empty(), "{msgs:?}");
}

#[test]
fn consent_necessary_posts_only_necessary_fields() {
    init();
    let msgs = collect("necessary", 200, Duration::from_millis(1300));
    assert!(msgs.len() >= 4, "only {} messages", msgs.len());
    for s in &msgs {
        assert_eq!(s.get::<&str>("consent").unwrap(), "necessary");
        for k in keys(s) {
            let f = field(&k).unwrap_or_else(|| panic!("{k} is not in the registry"));
            assert_eq!(f.class, Class::Necessary, "{k} posted under necessary");
        }
    }
    let last = msgs.last().unwrap();
    for k in [
        "cpu-model",
        "cpu-usage",
        "memory-used",
        "memory-total",
        "thread-count",
        "network-type",
        "os-name",
        "stream-fps",
        "stream-bitrate",
    ] {
        assert!(last.has_field(k), "{k} missing from {last}");
    }
    assert_eq!(last.get::<&str>("screen-resolution").unwrap(), "1080x2340");
    assert_eq!(last.get::<&str>("stream-resolution").unwrap(), "320x240");
    let fps = last.get::<f64>("stream-fps").unwrap();
    assert!((20.0..=40.0).contains(&fps), "fps {fps}");
    // I420 320x240 at ~30 fps is ~27.6 Mbit/s of raw video.
    let bitrate = last.get::<u64>("stream-bitrate").unwrap();
    assert!(
        (18_000_000..=37_000_000).contains(&bitrate),
        "bitrate {bitrate}"
    );
    let total = last.get::<u64>("memory-total").unwrap();
    let used = last.get::<u64>("memory-used").unwrap();
    assert!(used > 0 && used <= total);
}

#[test]
fn consent_full_adds_optional_fields() {
    init();
    let msgs = collect("full", 200, Duration::from_millis(1300));
    assert!(msgs.len() >= 4);
    let last = msgs.last().unwrap();
    for k in keys(last) {
        assert!(field(&k).is_some(), "{k} is not in the registry");
    }
    for k in [
        "process-cpu-usage",
        "process-memory",
        "os-name",
        "stream-fps",
    ] {
        assert!(last.has_field(k), "{k} missing from {last}");
    }
    assert!(
        REGISTRY
            .iter()
            .filter(|f| f.class == Class::Optional)
            .any(|f| last.has_field(f.key))
    );
}

#[test]
fn consent_can_be_withdrawn_while_playing() {
    init();
    let pipeline = gst::parse::launch(
        "videotestsrc is-live=true ! devicetelemetry name=t consent=necessary interval=100 ! \
         fakesink",
    )
    .unwrap()
    .downcast::<gst::Bin>()
    .unwrap();
    let bus = pipeline.bus().unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let first = bus.timed_pop_filtered(
        gst::ClockTime::from_seconds(5),
        &[gst::MessageType::Element],
    );
    assert!(first.is_some(), "no telemetry under necessary");
    pipeline
        .by_name("t")
        .unwrap()
        .set_property_from_str("consent", "none");
    // A sample already being read may still arrive; then nothing more.
    std::thread::sleep(Duration::from_millis(250));
    while bus.pop_filtered(&[gst::MessageType::Element]).is_some() {}
    let late = bus.timed_pop_filtered(
        gst::ClockTime::from_mseconds(600),
        &[gst::MessageType::Element],
    );
    assert!(late.is_none(), "telemetry after consent was withdrawn");
    pipeline.set_state(gst::State::Null).unwrap();
}

#[test]
fn buffers_pass_through_without_copies() {
    init();
    let mut h = gst_check::Harness::new("devicetelemetry");
    h.set_src_caps_str("application/x-anything");
    for i in 0..10u64 {
        let mut buf = gst::Buffer::with_size(1000).unwrap();
        buf.get_mut()
            .unwrap()
            .set_pts(gst::ClockTime::from_mseconds(i));
        let ptr = buf.as_ptr();
        let mem = buf.peek_memory(0).as_ptr();
        h.push(buf).unwrap();
        let out = h.pull().unwrap();
        assert_eq!(out.as_ptr(), ptr, "buffer {i} was copied");
        assert_eq!(out.peek_memory(0).as_ptr(), mem);
    }
}

#[test]
fn interval_averages_are_in_the_first_message() {
    init();
    let msgs = collect("full", 400, Duration::from_millis(1000));
    assert!(!msgs.is_empty());
    let first = &msgs[0];
    for key in ["cpu-usage", "process-cpu-usage"] {
        let v = first
            .get::<f64>(key)
            .unwrap_or_else(|_| panic!("{key} in {first}"));
        assert!((0.0..=100.0 * 64.0).contains(&v), "{key} = {v}");
    }
}

#[test]
fn consent_raised_while_playing_starts_a_primed_interval() {
    init();
    let pipeline = gst::parse::launch(
        "videotestsrc is-live=true ! devicetelemetry name=t consent=none interval=400 ! fakesink",
    )
    .unwrap()
    .downcast::<gst::Bin>()
    .unwrap();
    let bus = pipeline.bus().unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let raised = Instant::now();
    pipeline
        .by_name("t")
        .unwrap()
        .set_property_from_str("consent", "necessary");
    let msg = bus
        .timed_pop_filtered(
            gst::ClockTime::from_seconds(5),
            &[gst::MessageType::Element],
        )
        .expect("telemetry after consent was given");
    // One full interval after the change, with the interval average in it.
    assert!(
        raised.elapsed() >= Duration::from_millis(380),
        "{:?}",
        raised.elapsed()
    );
    let s = msg.structure().unwrap();
    assert!(s.get::<f64>("cpu-usage").is_ok(), "{s}");
    pipeline.set_state(gst::State::Null).unwrap();
}
