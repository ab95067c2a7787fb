// SPDX-License-Identifier: MIT OR Apache-2.0
//! `sensorrotation` over its life cycle: NULL/READY-only properties refused while running,
//! seeks into a replayed trace, the first frames of a device already turned, one caps
//! negotiation for a fixed rotation in pixel output, and a live sensor failing.

mod support;

use gst::prelude::*;
use support::{FRAME_NS, Gray, drain_orientation_tags, init, push_sample};

const TRACE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/rotation-trace.txt");

fn inner(h: &mut gst_check::Harness) -> gst::Element {
    h.find_element("sensorrotation").unwrap()
}

/// Warnings logged by sensorrotation while `f` runs.
fn logged_warnings(f: impl FnOnce()) -> Vec<String> {
    let seen = std::sync::Arc::new(parking_lot::Mutex::new(Vec::new()));
    let sink = seen.clone();
    gst::log::set_threshold_for_name("sensorrotation", gst::DebugLevel::Warning);
    let id = gst::log::add_log_function(move |cat, level, _, _, _, _, msg| {
        if cat.name() == "sensorrotation" && level == gst::DebugLevel::Warning {
            sink.lock()
                .push(msg.get().map(|s| s.to_string()).unwrap_or_default());
        }
    });
    f();
    gst::log::remove_log_function(id);
    seen.lock().clone()
}

#[test]
fn ready_only_properties_are_refused_while_playing() {
    init();
    let raw = Gray::pattern(8, 6);
    let mut h = gst_check::Harness::new_parse("sensorrotation mode=follow-app rotation=90");
    h.set_src_caps_str(&raw.caps());
    h.push(raw.to_buffer(0)).unwrap();
    let _ = h.pull().unwrap();
    let e = inner(&mut h);
    let warnings = logged_warnings(|| {
        e.set_property_from_str("output", "pixels");
        e.set_property("replay-file", TRACE);
        e.set_property("iio-device", "/nonexistent");
        e.set_property("iio-poll-interval", 20u32);
    });
    assert_eq!(warnings.len(), 4, "{warnings:?}");
    assert!(warnings[0].contains("`output`"), "{warnings:?}");
    assert_eq!(
        e.property_value("output")
            .get::<gststreamwire::sensorrotation::Output>()
            .unwrap(),
        gststreamwire::sensorrotation::Output::Metadata
    );
    assert_eq!(e.property::<Option<String>>("replay-file"), None);
    assert_eq!(e.property::<Option<String>>("iio-device"), None);
    assert_eq!(e.property::<u32>("iio-poll-interval"), 50);
    // The picture is still the unrotated input with its own caps.
    h.push(raw.to_buffer(FRAME_NS)).unwrap();
    let out = h.pull().unwrap();
    let caps = h.sinkpad().unwrap().current_caps().unwrap();
    assert_eq!(Gray::from_buffer(&out, &caps), raw);
    // Properties that may change while playing still do, without a warning.
    let warnings = logged_warnings(|| e.set_property_from_str("rotation", "180"));
    assert!(warnings.is_empty(), "{warnings:?}");
    // Back in READY the change is accepted.
    e.set_state(gst::State::Ready).unwrap();
    e.set_property_from_str("output", "pixels");
    assert_eq!(
        e.property_value("output")
            .get::<gststreamwire::sensorrotation::Output>()
            .unwrap(),
        gststreamwire::sensorrotation::Output::Pixels
    );
}

fn seek_segment(h: &mut gst_check::Harness, start_ms: u64) {
    assert!(h.push_event(gst::event::FlushStart::new()));
    assert!(h.push_event(gst::event::FlushStop::new(true)));
    let mut segment = gst::FormattedSegment::<gst::ClockTime>::new();
    let start = gst::ClockTime::from_mseconds(start_ms);
    segment.set_start(start);
    segment.set_time(start);
    segment.set_position(start);
    assert!(h.push_event(gst::event::Segment::new(&segment)));
}

fn i420(pts_ns: u64) -> gst::Buffer {
    let mut buf = gst::Buffer::with_size(64 * 48 * 3 / 2).unwrap();
    buf.get_mut()
        .unwrap()
        .set_pts(gst::ClockTime::from_nseconds(pts_ns));
    buf
}

#[test]
fn a_seek_lands_on_the_trace_orientation_at_the_new_position() {
    init();
    // The trace: upright until 3 s, 90 from 3 s, upright again from ~5 s, 270 from 7 s,
    // 180 from 9 s.
    let mut h = gst_check::Harness::new_parse(&format!("sensorrotation replay-file={TRACE}"));
    h.set_src_caps_str("video/x-raw,format=I420,width=64,height=48,framerate=30/1");
    h.push(i420(0)).unwrap();
    assert_eq!(drain_orientation_tags(&mut h), ["rotate-0"]);
    let _ = h.pull();
    for (pos_ms, want) in [
        (8000u64, "rotate-270"),
        (3500, "rotate-90"),
        (9500, "rotate-180"),
    ] {
        seek_segment(&mut h, pos_ms);
        // Running time restarts at 0 after the flush; the stream time is the position.
        h.push(i420(pos_ms * 1_000_000)).unwrap();
        assert_eq!(
            drain_orientation_tags(&mut h),
            [want],
            "seek to {pos_ms} ms"
        );
        let _ = h.pull();
        for i in 1..10 {
            h.push(i420(pos_ms * 1_000_000 + i * FRAME_NS)).unwrap();
            let _ = h.pull();
        }
        assert!(
            drain_orientation_tags(&mut h).is_empty(),
            "seek to {pos_ms} ms"
        );
    }
}

#[test]
fn a_device_already_in_landscape_is_landscape_from_the_first_frame() {
    init();
    let mut h = gst_check::Harness::new_parse("sensorrotation hold-time=300");
    h.set_src_caps_str("video/x-raw,format=I420,width=64,height=48,framerate=30/1");
    push_sample(&inner(&mut h), 90);
    h.push(i420(0)).unwrap();
    assert_eq!(drain_orientation_tags(&mut h), ["rotate-90"]);
    assert_eq!(inner(&mut h).property::<u32>("orientation"), 90);
}

#[test]
fn a_fixed_rotation_in_pixel_output_negotiates_caps_once() {
    init();
    let raw = Gray::pattern(8, 6);
    let mut h =
        gst_check::Harness::new_parse("sensorrotation mode=follow-app rotation=90 output=pixels");
    h.set_src_caps_str(&raw.caps());
    for i in 0..5 {
        h.push(raw.to_buffer(i * FRAME_NS)).unwrap();
        let _ = h.pull().unwrap();
    }
    let mut caps_events = Vec::new();
    while let Some(ev) = h.try_pull_event() {
        if let gst::EventView::Caps(c) = ev.view() {
            caps_events.push(c.caps_owned());
        }
    }
    assert_eq!(caps_events.len(), 1, "{caps_events:?}");
    let s = caps_events[0].structure(0).unwrap();
    assert_eq!(
        (
            s.get::<i32>("width").unwrap(),
            s.get::<i32>("height").unwrap()
        ),
        (6, 8)
    );
}

/// A fake IIO accelerometer directory.
struct FakeIio(std::path::PathBuf);

impl FakeIio {
    fn new(tag: &str, raw: [i32; 3], matrix: Option<&str>) -> FakeIio {
        let dir = std::env::temp_dir().join(format!("sw-iio-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = FakeIio(dir);
        f.set(raw);
        std::fs::write(f.0.join("in_accel_scale"), "0.00981\n").unwrap();
        if let Some(m) = matrix {
            std::fs::write(f.0.join("in_accel_mount_matrix"), m).unwrap();
        }
        f
    }

    fn set(&self, raw: [i32; 3]) {
        for (axis, v) in ["x", "y", "z"].iter().zip(raw) {
            std::fs::write(
                self.0.join(format!("in_accel_{axis}_raw")),
                format!("{v}\n"),
            )
            .unwrap();
        }
    }
}

impl Drop for FakeIio {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn the_iio_mount_matrix_is_applied() {
    init();
    // The chip is mounted a quarter turn off: its y axis is the device's -x axis. Upright
    // in chip axes reads as right-edge-down (90) in device axes.
    let iio = FakeIio::new("mount", [0, 1000, 0], Some("0, -1, 0; 1, 0, 0; 0, 0, 1\n"));
    let mut h =
        gst_check::Harness::new_parse(&format!("sensorrotation iio-device={}", iio.0.display()));
    h.set_src_caps_str("video/x-raw,format=I420,width=64,height=48,framerate=30/1");
    h.push(i420(0)).unwrap();
    assert_eq!(drain_orientation_tags(&mut h), ["rotate-90"]);
}

#[test]
fn a_failing_sensor_posts_a_warning_and_keeps_the_orientation() {
    init();
    let iio = FakeIio::new("fail", [-1000, 0, 0], None);
    let pipeline = gst::parse::launch(&format!(
        "videotestsrc is-live=true num-buffers=40 ! video/x-raw,width=64,height=48,framerate=50/1 ! \
         sensorrotation name=rot iio-device={} iio-poll-interval=10 ! fakesink sync=true",
        iio.0.display()
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let bus = pipeline.bus().unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    // Running, landscape (90): now the sensor returns garbage, then disappears.
    std::thread::sleep(std::time::Duration::from_millis(200));
    std::fs::write(iio.0.join("in_accel_x_raw"), "garbage\n").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(150));
    std::fs::write(iio.0.join("in_accel_x_raw"), "-1000\n").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(100));
    std::fs::remove_file(iio.0.join("in_accel_x_raw")).unwrap();
    let mut warnings = Vec::new();
    while let Some(msg) = bus.timed_pop_filtered(
        gst::ClockTime::from_seconds(5),
        &[
            gst::MessageType::Warning,
            gst::MessageType::Eos,
            gst::MessageType::Error,
        ],
    ) {
        match msg.view() {
            gst::MessageView::Warning(w) => warnings.push(w.error().message().to_owned()),
            gst::MessageView::Error(e) => panic!("error: {}", e.error()),
            _ => break,
        }
    }
    let rot = pipeline.by_name("rot").unwrap();
    assert_eq!(
        rot.property::<u32>("orientation"),
        90,
        "the last orientation stays"
    );
    pipeline.set_state(gst::State::Null).unwrap();
    // One warning per episode: garbage, then the missing file.
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(
        warnings[0].contains("does not hold a number"),
        "{warnings:?}"
    );
    assert!(warnings[1].contains("in_accel_x_raw"), "{warnings:?}");
}
