// SPDX-License-Identifier: MIT OR Apache-2.0
//! `sensorrotation` under gst_check::Harness: replayed traces, app and IIO sources, pixel mode.

mod support;

use gst::prelude::*;
use gststreamwire::meta;
use gststreamwire::orientation::{Orientation, Rotation};
use support::{drain_orientation_tags, init};

const TRACE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/rotation-trace.txt");
const FRAME_NS: u64 = 33_333_333;

fn harness(desc: &str, caps: &str) -> gst_check::Harness {
    let mut h = gst_check::Harness::new_parse(desc);
    h.set_src_caps_str(caps);
    h
}

/// The element under test inside the harness bin (found by factory name).
fn inner(h: &mut gst_check::Harness) -> gst::Element {
    h.find_element("sensorrotation")
        .expect("a sensorrotation element")
}

fn frame(h: &gst_check::Harness, i: u64) -> gst::Buffer {
    let caps = h.srcpad().unwrap().current_caps().unwrap();
    let info = gst_video::VideoInfo::from_caps(&caps).unwrap();
    let mut buf = gst::Buffer::with_size(info.size()).unwrap();
    {
        let b = buf.get_mut().unwrap();
        b.set_pts(gst::ClockTime::from_nseconds(i * FRAME_NS));
        b.set_duration(gst::ClockTime::from_nseconds(FRAME_NS));
    }
    buf
}

#[test]
fn replayed_trace_gives_exactly_one_tag_per_change() {
    init();
    let mut h = harness(
        &format!("sensorrotation replay-file={TRACE} hold-time=300 hysteresis=15"),
        "video/x-raw,format=I420,width=64,height=48,framerate=30/1",
    );
    // (frame time ms, tag value) for every orientation tag, and the meta of every buffer.
    let mut tags: Vec<(u64, String)> = Vec::new();
    let mut current: Option<String> = None;
    for i in 0..330u64 {
        let buf = frame(&h, i);
        h.push(buf).unwrap();
        for v in drain_orientation_tags(&mut h) {
            tags.push((i * FRAME_NS / 1_000_000, v.clone()));
            current = Some(v);
        }
        let out = h.pull().unwrap();
        let m = meta::orientation(&out).expect("every buffer carries the orientation meta");
        assert_eq!(
            Some(m.tag_value()),
            current.as_deref(),
            "frame {i}: meta and last tag disagree"
        );
    }
    let values: Vec<&str> = tags.iter().map(|(_, v)| v.as_str()).collect();
    assert_eq!(
        values,
        [
            "rotate-0",
            "rotate-90",
            "rotate-0",
            "rotate-270",
            "rotate-180"
        ],
        "tags: {tags:?}"
    );
    // Changes land after the movement plus the hold time, never during the 45-degree jitter.
    let windows = [
        (0, 0),
        (3300, 3400),
        (6300, 6400),
        (7300, 7400),
        (9300, 9400),
    ];
    for ((t, v), (lo, hi)) in tags.iter().zip(windows) {
        assert!((lo..=hi).contains(t), "{v} at {t} ms, expected {lo}..={hi}");
    }
}

#[test]
fn follow_app_sends_one_tag_per_rotation_change() {
    init();
    let mut h = harness(
        "sensorrotation mode=follow-app rotation=90",
        "video/x-raw,format=RGBA,width=16,height=8,framerate=30/1",
    );
    let sr = inner(&mut h);
    let mut seen = Vec::new();
    let plan = [90u32, 90, 270, 270, 270, 0, 0, 180];
    for (i, deg) in plan.iter().enumerate() {
        sr.set_property_from_str("rotation", &deg.to_string());
        let buf = frame(&h, i as u64);
        h.push(buf).unwrap();
        seen.extend(drain_orientation_tags(&mut h));
        let out = h.pull().unwrap();
        assert_eq!(
            meta::orientation(&out).map(|o| o.rotation.degrees()),
            Some(*deg)
        );
        assert_eq!(sr.property::<u32>("orientation"), *deg);
    }
    assert_eq!(seen, ["rotate-90", "rotate-270", "rotate-0", "rotate-180"]);
}

#[test]
fn upstream_tags_are_kept_and_their_orientation_replaced() {
    init();
    let mut h = harness(
        "sensorrotation mode=follow-app rotation=180",
        "video/x-raw,format=RGBA,width=16,height=8,framerate=30/1",
    );
    let tag_event = |title: &str| {
        let mut tags = gst::TagList::new();
        {
            let t = tags.get_mut().unwrap();
            t.add::<gst::tags::Title>(&title, gst::TagMergeMode::Append);
            t.add::<gst::tags::ImageOrientation>(&"rotate-90", gst::TagMergeMode::Append);
        }
        gst::event::Tag::new(tags)
    };
    let pull_tags = |h: &mut gst_check::Harness| {
        let mut out = Vec::new();
        while let Some(ev) = h.try_pull_event() {
            if let gst::EventView::Tag(t) = ev.view() {
                let t = t.tag();
                out.push((
                    t.get::<gst::tags::Title>().map(|v| v.get().to_owned()),
                    t.get::<gst::tags::ImageOrientation>()
                        .map(|v| v.get().to_owned()),
                ));
            }
        }
        out
    };
    // Before the first buffer: forwarded without the upstream orientation.
    assert!(h.push_event(tag_event("before")));
    let buf = frame(&h, 0);
    h.push(buf).unwrap();
    let _ = h.pull().unwrap();
    let tags = pull_tags(&mut h);
    assert_eq!(
        tags,
        [
            (Some("before".into()), None),
            (Some("before".into()), Some("rotate-180".into()))
        ]
    );
    // An update later: forwarded without orientation, no duplicate orientation tag.
    assert!(h.push_event(tag_event("later")));
    let buf = frame(&h, 1);
    h.push(buf).unwrap();
    let _ = h.pull().unwrap();
    assert_eq!(pull_tags(&mut h), [(Some("later".into()), None)]);
    // The next change carries the latest upstream tags.
    inner(&mut h).set_property_from_str("rotation", "90");
    let buf = frame(&h, 2);
    h.push(buf).unwrap();
    let _ = h.pull().unwrap();
    assert_eq!(
        pull_tags(&mut h),
        [(Some("later".into()), Some("rotate-90".into()))]
    );
}

#[test]
fn pushed_samples_drive_the_orientation() {
    init();
    let mut h = harness(
        "sensorrotation hold-time=0",
        "video/x-raw,format=RGBA,width=16,height=8,framerate=30/1",
    );
    let el = inner(&mut h);
    let push = |x: f64, y: f64| {
        el.emit_by_name::<()>("push-sample", &[&x, &y, &0.0f64]);
    };
    let mut seen = Vec::new();
    for (i, (x, y)) in [
        (0.0, 9.8),
        (-9.8, 0.0),
        (-9.7, 0.5),
        (9.8, 0.0),
        (0.0, -9.8),
    ]
    .into_iter()
    .enumerate()
    {
        push(x, y);
        let buf = frame(&h, i as u64);
        h.push(buf).unwrap();
        seen.extend(drain_orientation_tags(&mut h));
        let _ = h.pull().unwrap();
    }
    assert_eq!(seen, ["rotate-0", "rotate-90", "rotate-270", "rotate-180"]);
}

#[test]
fn iio_device_is_read_through_sysfs_files() {
    init();
    let dir = std::env::temp_dir().join(format!("sw-iio-elem-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let write = |x: &str, y: &str| {
        std::fs::write(dir.join("in_accel_x_raw"), x).unwrap();
        std::fs::write(dir.join("in_accel_y_raw"), y).unwrap();
    };
    write("0\n", "1000\n");
    std::fs::write(dir.join("in_accel_z_raw"), "0\n").unwrap();
    std::fs::write(dir.join("in_accel_scale"), "0.009806\n").unwrap();
    let mut h = harness(
        &format!(
            "sensorrotation iio-device={} hold-time=0 iio-poll-interval=10",
            dir.display()
        ),
        "video/x-raw,format=RGBA,width=16,height=8,framerate=30/1",
    );
    let mut seen = Vec::new();
    for (i, (x, y)) in [("0", "1000"), ("-1000", "0"), ("0", "-1000")]
        .into_iter()
        .enumerate()
    {
        write(x, y);
        std::thread::sleep(std::time::Duration::from_millis(25));
        let buf = frame(&h, i as u64);
        h.push(buf).unwrap();
        seen.extend(drain_orientation_tags(&mut h));
        let _ = h.pull().unwrap();
    }
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(seen, ["rotate-0", "rotate-90", "rotate-180"]);
}

fn gray_frame(w: usize, h: usize, pts: u64) -> gst::Buffer {
    // GRAY8 rows are padded to 4 bytes; value = x + 16 * y identifies each pixel.
    let stride = w.div_ceil(4) * 4;
    let mut data = vec![0u8; stride * h];
    for y in 0..h {
        for x in 0..w {
            data[y * stride + x] = (x + 16 * y) as u8;
        }
    }
    let mut buf = gst::Buffer::from_mut_slice(data);
    buf.get_mut()
        .unwrap()
        .set_pts(gst::ClockTime::from_nseconds(pts * FRAME_NS));
    buf
}

fn pixel(buf: &gst::Buffer, caps: &gst::Caps, x: usize, y: usize) -> u8 {
    let info = gst_video::VideoInfo::from_caps(caps).unwrap();
    let map = buf.map_readable().unwrap();
    map[y * info.stride()[0] as usize + x]
}

#[test]
fn pixel_mode_rotates_frames_and_swaps_dimensions() {
    init();
    let (w, hgt) = (6usize, 4usize);
    let mut h = harness(
        "sensorrotation mode=follow-app output=pixels",
        &format!("video/x-raw,format=GRAY8,width={w},height={hgt},framerate=30/1"),
    );
    let el = inner(&mut h);
    for (i, deg) in [0u32, 90, 180, 270, 0].into_iter().enumerate() {
        el.set_property_from_str("rotation", &deg.to_string());
        h.push(gray_frame(w, hgt, i as u64)).unwrap();
        let out = h.pull().unwrap();
        let caps = h.sinkpad().unwrap().current_caps().unwrap();
        let s = caps.structure(0).unwrap();
        let (ow, oh) = (
            s.get::<i32>("width").unwrap() as usize,
            s.get::<i32>("height").unwrap() as usize,
        );
        if deg == 90 || deg == 270 {
            assert_eq!((ow, oh), (hgt, w), "at {deg}");
        } else {
            assert_eq!((ow, oh), (w, hgt), "at {deg}");
        }
        // Where source pixel (x, y) lands after a clockwise rotation.
        for y in 0..hgt {
            for x in 0..w {
                let (dx, dy) = match deg {
                    0 => (x, y),
                    90 => (hgt - 1 - y, x),
                    180 => (w - 1 - x, hgt - 1 - y),
                    _ => (y, w - 1 - x),
                };
                assert_eq!(
                    pixel(&out, &caps, dx, dy),
                    (x + 16 * y) as u8,
                    "{deg}: ({x},{y})"
                );
            }
        }
        // Pixel output sends no orientation tag and no meta: the picture is upright.
        assert!(drain_orientation_tags(&mut h).is_empty());
        assert!(meta::orientation(&out).is_none());
    }
}

#[test]
fn pixel_mode_follows_the_replayed_trace() {
    init();
    let mut h = harness(
        &format!("sensorrotation replay-file={TRACE} output=pixels"),
        "video/x-raw,format=I420,width=64,height=48,framerate=30/1",
    );
    let mut dims = Vec::new();
    for i in 0..330u64 {
        let buf = frame(&h, i);
        h.push(buf).unwrap();
        let out = h.pull().unwrap();
        let caps = h.sinkpad().unwrap().current_caps().unwrap();
        let info = gst_video::VideoInfo::from_caps(&caps).unwrap();
        assert_eq!(out.size(), info.size());
        let d = (info.width(), info.height());
        if dims.last() != Some(&d) {
            dims.push(d);
        }
    }
    // 0 -> 90 -> 0 -> 270 -> 180
    assert_eq!(dims, [(64, 48), (48, 64), (64, 48), (48, 64), (64, 48)]);
}

#[test]
fn off_mode_passes_buffers_and_tags_untouched() {
    init();
    let mut h = harness(
        "sensorrotation mode=off",
        "video/x-raw,format=RGBA,width=16,height=8,framerate=30/1",
    );
    let mut input = frame(&h, 0);
    meta::set_orientation(
        input.get_mut().unwrap(),
        Orientation::rotated(Rotation::R270),
        None,
    );
    let ptr = input.as_ptr();
    h.push(input).unwrap();
    let out = h.pull().unwrap();
    assert_eq!(out.as_ptr(), ptr, "passthrough must not copy");
    assert_eq!(meta::orientation(&out).unwrap().rotation, Rotation::R270);
    assert!(drain_orientation_tags(&mut h).is_empty());
}

/// The error message (not only the debug string) of starting `sensorrotation` with a replay
/// file holding `content`.
fn replay_error(content: &str) -> (String, String) {
    init();
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let path = std::env::temp_dir().join(format!("sw-bad-trace-{}-{n}.txt", std::process::id()));
    std::fs::write(&path, content).unwrap();
    let pipeline = gst::parse::launch(&format!(
        "videotestsrc num-buffers=1 ! sensorrotation replay-file={} ! fakesink",
        path.display()
    ))
    .unwrap();
    assert!(pipeline.set_state(gst::State::Paused).is_err());
    let bus = pipeline.bus().unwrap();
    let msg = bus
        .timed_pop_filtered(gst::ClockTime::from_seconds(5), &[gst::MessageType::Error])
        .expect("an error message");
    let text = match msg.view() {
        gst::MessageView::Error(err) => err.error().message().to_owned(),
        _ => unreachable!(),
    };
    pipeline.set_state(gst::State::Null).unwrap();
    std::fs::remove_file(&path).unwrap();
    (text, path.display().to_string())
}

#[test]
fn bad_replay_file_fails_with_file_and_line() {
    let (text, path) = replay_error("0 0 9.8 0\n10 0 nine 0\n");
    assert!(text.contains(&format!("{path}:2:")), "{text}");
    assert!(text.contains("y `nine` is not a number"), "{text}");
    assert!(!text.contains("Could not open resource"), "{text}");
}

#[test]
fn empty_replay_file_is_refused() {
    let (text, path) = replay_error("# a header and nothing else\n\n");
    assert!(
        text.contains(&path) && text.contains("no samples"),
        "{text}"
    );
}

#[test]
fn trailing_comment_on_a_data_line_is_a_comment() {
    init();
    let path = std::env::temp_dir().join(format!("sw-comment-trace-{}.txt", std::process::id()));
    std::fs::write(&path, "0 -9.81 0 0   # already landscape\n").unwrap();
    let mut h = harness(
        &format!("sensorrotation replay-file={}", path.display()),
        "video/x-raw,format=I420,width=64,height=48,framerate=30/1",
    );
    let buf = frame(&h, 0);
    h.push(buf).unwrap();
    assert_eq!(drain_orientation_tags(&mut h), ["rotate-90"]);
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn pixel_mode_switched_off_restores_the_input_geometry() {
    init();
    let (w, hgt) = (6usize, 4usize);
    let mut h = harness(
        "sensorrotation mode=follow-app rotation=90 output=pixels",
        &format!("video/x-raw,format=GRAY8,width={w},height={hgt},framerate=30/1"),
    );
    let dims = |h: &gst_check::Harness| {
        let caps = h.sinkpad().unwrap().current_caps().unwrap();
        let info = gst_video::VideoInfo::from_caps(&caps).unwrap();
        (info.width(), info.height())
    };
    h.push(gray_frame(w, hgt, 0)).unwrap();
    let _ = h.pull().unwrap();
    assert_eq!(dims(&h), (4, 6));
    inner(&mut h).set_property_from_str("mode", "off");
    let input = gray_frame(w, hgt, 1);
    let ptr = input.as_ptr();
    h.push(input).unwrap();
    let out = h.pull().unwrap();
    assert_eq!(dims(&h), (6, 4));
    assert_eq!(out.as_ptr(), ptr, "off is a pass-through");
}

#[test]
fn flush_replays_the_trace_again() {
    init();
    let mut h = harness(
        &format!("sensorrotation replay-file={TRACE}"),
        "video/x-raw,format=I420,width=64,height=48,framerate=30/1",
    );
    let mut before = Vec::new();
    for i in 0..120u64 {
        let buf = frame(&h, i);
        h.push(buf).unwrap();
        before.extend(drain_orientation_tags(&mut h));
        let _ = h.pull().unwrap();
    }
    assert_eq!(before, ["rotate-0", "rotate-90"]);
    // Seek back to the start: flush, new segment at 0.
    assert!(h.push_event(gst::event::FlushStart::new()));
    assert!(h.push_event(gst::event::FlushStop::new(true)));
    let segment = gst::FormattedSegment::<gst::ClockTime>::new();
    assert!(h.push_event(gst::event::Segment::new(&segment)));
    let mut after = Vec::new();
    for i in 0..120u64 {
        let buf = frame(&h, i);
        h.push(buf).unwrap();
        after.extend(drain_orientation_tags(&mut h));
        let _ = h.pull().unwrap();
    }
    assert_eq!(after, ["rotate-0", "rotate-90"]);
}
