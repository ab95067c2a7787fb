// SPDX-License-Identifier: MIT OR Apache-2.0
//! `sensorrotation` with front, back and external cameras: Android's camera rule through all
//! four device orientations, checked on a simulated capture shown by
//! `videoflip video-direction=auto` (metadata output) and by the element's own pixel output,
//! and the CVO `C`/`F` bits on the wire.

mod support;

use gst::prelude::*;
use gststreamwire::meta;
use gststreamwire::orientation::CameraFacing;
use gststreamwire::rtphdrextcvo::URI;
use support::{FRAME_NS, Gray, drain_orientation_tags, init, push_sample};

fn inner(h: &mut gst_check::Harness) -> gst::Element {
    h.find_element("sensorrotation").unwrap()
}

/// What a camera captures of `scene` (the upright picture of what it sees) when mounted
/// `sensor` degrees off and the device is turned `device` degrees clockwise.
///
/// `SENSOR_ORIENTATION` is the clockwise turn that makes the image upright in the device's
/// natural orientation, so there the capture is the scene turned back by `sensor`. Turning
/// the device clockwise turns a back camera (looking the way the user does) clockwise too,
/// so its image of the world turns the other way; a front camera looks back at the user, so
/// it sees the device turn the other way, and its image turns with the device.
fn capture(scene: &Gray, facing: CameraFacing, sensor: u32, device: u32) -> Gray {
    let turn = match facing {
        CameraFacing::Back => 720 - sensor - device,
        CameraFacing::Front => 360 + device - sensor,
        CameraFacing::External => 360 - sensor,
    };
    scene.rotated(turn % 360)
}

/// What the viewer must see: the scene, mirrored for a front camera (as its preview is).
fn expected_view(scene: &Gray, facing: CameraFacing) -> Gray {
    match facing {
        CameraFacing::Front => scene.mirrored(),
        _ => scene.clone(),
    }
}

fn nick(facing: CameraFacing) -> &'static str {
    match facing {
        CameraFacing::Front => "front",
        CameraFacing::Back => "back",
        CameraFacing::External => "external",
    }
}

/// Runs one captured frame through `desc` (starting with sensorrotation) with the device at
/// `device` degrees and returns the picture at the end.
fn run(desc: &str, raw: &Gray, device: u32) -> Gray {
    let mut h = gst_check::Harness::new_parse(desc);
    h.set_src_caps_str(&raw.caps());
    push_sample(&inner(&mut h), device);
    h.push(raw.to_buffer(0)).unwrap();
    let out = h.pull().unwrap();
    let caps = h.sinkpad().unwrap().current_caps().unwrap();
    Gray::from_buffer(&out, &caps)
}

#[test]
fn every_facing_sensor_mount_and_device_orientation_is_shown_upright() {
    init();
    let scene = Gray::pattern(6, 4);
    let mut cases = 0;
    for facing in [
        CameraFacing::Back,
        CameraFacing::Front,
        CameraFacing::External,
    ] {
        for sensor in [0, 90, 180, 270] {
            for device in [0, 90, 180, 270] {
                let raw = capture(&scene, facing, sensor, device);
                let want = expected_view(&scene, facing);
                let props = format!(
                    "sensorrotation camera-facing={} sensor-orientation={sensor} hold-time=0",
                    nick(facing)
                );
                let shown = run(
                    &format!("{props} ! videoflip video-direction=auto"),
                    &raw,
                    device,
                );
                assert_eq!(
                    shown, want,
                    "metadata: {facing:?} sensor {sensor} device {device}"
                );
                let rotated = run(&format!("{props} output=pixels"), &raw, device);
                assert_eq!(
                    rotated, want,
                    "pixels: {facing:?} sensor {sensor} device {device}"
                );
                cases += 1;
            }
        }
    }
    assert_eq!(cases, 48);
}

#[test]
fn tags_follow_the_device_through_a_full_turn_for_both_facings() {
    init();
    // Typical phone mounts: back camera at 90, front camera at 270.
    for (facing, sensor, want) in [
        (
            "back",
            90,
            ["rotate-90", "rotate-180", "rotate-270", "rotate-0"],
        ),
        (
            "front",
            270,
            [
                "flip-rotate-90",
                "flip-rotate-180",
                "flip-rotate-270",
                "flip-rotate-0",
            ],
        ),
    ] {
        let mut h = gst_check::Harness::new_parse(&format!(
            "sensorrotation camera-facing={facing} sensor-orientation={sensor} hold-time=0"
        ));
        h.set_src_caps_str("video/x-raw,format=I420,width=64,height=48,framerate=30/1");
        let e = inner(&mut h);
        let mut tags = Vec::new();
        for (i, device) in [0, 90, 180, 270].into_iter().enumerate() {
            push_sample(&e, device);
            let mut buf = gst::Buffer::with_size(64 * 48 * 3 / 2).unwrap();
            buf.get_mut()
                .unwrap()
                .set_pts(gst::ClockTime::from_nseconds(i as u64 * FRAME_NS));
            h.push(buf).unwrap();
            tags.extend(drain_orientation_tags(&mut h));
            while h.try_pull().is_some() {}
        }
        assert_eq!(tags, want, "{facing}");
    }
}

#[test]
fn camera_rides_the_meta_and_the_cvo_camera_and_flip_bits() {
    init();
    for (facing, byte) in [
        // follow-app rotation=90: R = 01; front is mirrored (F = 1), back sets C = 1.
        ("front", 0b0000_0101u8),
        ("back", 0b0000_1001u8),
        ("external", 0b0000_0001u8),
    ] {
        let mut h = gst_check::Harness::new_parse(&format!(
            "sensorrotation mode=follow-app rotation=90 camera-facing={facing} ! \
             rtpvrawpay mtu=400 ! application/x-rtp,extmap-5=(string){URI} ! identity"
        ));
        h.set_src_caps_str("video/x-raw,format=RGBA,width=32,height=16,framerate=30/1");
        let mut markers = 0;
        for i in 0..3u64 {
            let mut buf = gst::Buffer::with_size(32 * 16 * 4).unwrap();
            buf.get_mut()
                .unwrap()
                .set_pts(gst::ClockTime::from_nseconds(i * FRAME_NS));
            h.push(buf).unwrap();
            while let Some(pkt) = h.try_pull() {
                let rtp = gst_rtp::RTPBuffer::from_buffer_readable(&pkt).unwrap();
                let ext = rtp.extension_onebyte_header(5, 0).map(|d| d.to_vec());
                if rtp.is_marker() {
                    markers += 1;
                    assert_eq!(ext, Some(vec![byte]), "{facing}");
                } else {
                    assert_eq!(ext, None, "{facing}: CVO on a non-marker packet");
                }
            }
        }
        assert_eq!(markers, 3, "{facing}");
    }
}

#[test]
fn metadata_output_records_the_camera_on_every_buffer() {
    init();
    let mut h =
        gst_check::Harness::new_parse("sensorrotation camera-facing=front sensor-orientation=270");
    let raw = Gray::pattern(8, 4);
    h.set_src_caps_str(&raw.caps());
    h.push(raw.to_buffer(0)).unwrap();
    let out = h.pull().unwrap();
    assert_eq!(meta::camera(&out), Some(CameraFacing::Front));
    assert_eq!(
        meta::orientation(&out).unwrap().tag_value(),
        "flip-rotate-90"
    );
    // Switching cameras while playing applies from the next buffer.
    inner(&mut h).set_property_from_str("camera-facing", "back");
    h.push(raw.to_buffer(FRAME_NS)).unwrap();
    let out = h.pull().unwrap();
    assert_eq!(meta::camera(&out), Some(CameraFacing::Back));
    assert_eq!(meta::orientation(&out).unwrap().tag_value(), "rotate-270");
}

#[test]
fn the_camera_survives_payloading_and_depayloading() {
    init();
    for (facing, want) in [("back", CameraFacing::Back), ("front", CameraFacing::Front)] {
        let mut h = gst_check::Harness::new_parse(&format!(
            "sensorrotation mode=follow-app rotation=270 camera-facing={facing} ! \
             rtpvrawpay mtu=400 ! application/x-rtp,extmap-7=(string){URI} ! rtpvrawdepay ! \
             identity"
        ));
        h.set_src_caps_str("video/x-raw,format=RGBA,width=32,height=16,framerate=30/1");
        for i in 0..2u64 {
            let mut buf = gst::Buffer::with_size(32 * 16 * 4).unwrap();
            buf.get_mut()
                .unwrap()
                .set_pts(gst::ClockTime::from_nseconds(i * FRAME_NS));
            h.push(buf).unwrap();
        }
        let out = h.pull().unwrap();
        assert_eq!(meta::camera(&out), Some(want), "{facing}");
        let o = meta::orientation(&out).unwrap();
        assert_eq!(o.rotation.degrees(), 270, "{facing}");
        assert_eq!(o.flip, facing == "front");
    }
}
