// SPDX-License-Identifier: MIT OR Apache-2.0
//! `rtphdrextcvo`: byte-level checks of the extension in RTP packets and round trips
//! through payloader/depayloader pairs (raw, VP8, H.264).

use std::sync::{Arc, Mutex};

use gst::prelude::*;
use gst_rtp::prelude::*;
use gststreamwire::meta;
use gststreamwire::orientation::{Orientation, Rotation};
use gststreamwire::rtphdrextcvo::{URI, cvo_byte};

const FRAME_NS: u64 = 33_333_333;

fn init() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        gst::init().unwrap();
        gststreamwire::plugin_register_static().unwrap();
    });
}

fn raw_frame(i: u64, o: Option<Orientation>) -> gst::Buffer {
    let mut buf = gst::Buffer::with_size(32 * 16 * 4).unwrap();
    {
        let b = buf.get_mut().unwrap();
        b.set_pts(gst::ClockTime::from_nseconds(i * FRAME_NS));
        b.set_duration(gst::ClockTime::from_nseconds(FRAME_NS));
        if let Some(o) = o {
            meta::set_orientation(b, o, None);
        }
    }
    buf
}

const RAW_CAPS: &str = "video/x-raw,format=RGBA,width=32,height=16,framerate=30/1";

/// Orientation used for frame `i` in the round-trip tests.
fn plan(i: u64) -> Orientation {
    let rotation = Rotation::from_quarter_turns((i / 5) as u32);
    Orientation {
        rotation,
        flip: i / 5 == 5,
    }
}

#[test]
fn extension_is_written_on_the_marker_packet_only() {
    init();
    for (id, two_byte) in [(3u8, false), (20u8, true)] {
        // Small MTU: every frame spans several packets.
        let mut h = gst_check::Harness::new_parse(&format!(
            "rtpvrawpay mtu=400 ! application/x-rtp,extmap-{id}=(string){URI} ! identity"
        ));
        h.set_src_caps_str(RAW_CAPS);
        let mut frames_checked = 0;
        for i in 0..8u64 {
            let o = Orientation {
                rotation: Rotation::from_quarter_turns(i as u32),
                flip: i >= 4,
            };
            h.push(raw_frame(i, Some(o))).unwrap();
            let mut packets = 0;
            while let Some(pkt) = h.try_pull() {
                packets += 1;
                let rtp = gst_rtp::RTPBuffer::from_buffer_readable(&pkt).unwrap();
                let data = if two_byte {
                    rtp.extension_twobytes_header(id, 0)
                        .map(|(_, d)| d.to_vec())
                } else {
                    rtp.extension_onebyte_header(id, 0).map(|d| d.to_vec())
                };
                if rtp.is_marker() {
                    assert_eq!(data, Some(vec![cvo_byte(o, None)]), "frame {i}");
                    let (bits, _) = rtp.extension_bytes().unwrap();
                    if two_byte {
                        assert_eq!(bits >> 4, 0x100, "two-byte header profile");
                    } else {
                        assert_eq!(bits, 0xBEDE, "one-byte header profile");
                    }
                    // 0 0 0 0 C F R1 R0
                    let b = data.unwrap()[0];
                    assert_eq!(b & 0b11, o.rotation.quarter_turns() as u8);
                    assert_eq!(b & 0b100 != 0, o.flip);
                    assert_eq!(b & 0b1111_1000, 0);
                    frames_checked += 1;
                } else {
                    assert_eq!(data, None, "frame {i}: CVO on a non-marker packet");
                }
            }
            assert!(packets > 1, "frame {i} should span several packets");
        }
        assert_eq!(frames_checked, 8);
    }
}

#[test]
fn last_orientation_is_kept_for_frames_without_meta() {
    init();
    let mut h = gst_check::Harness::new_parse(&format!(
        "rtpvrawpay ! application/x-rtp,extmap-1=(string){URI} ! identity"
    ));
    h.set_src_caps_str(RAW_CAPS);
    let mut bytes = Vec::new();
    for (i, o) in [None, Some(Orientation::rotated(Rotation::R270)), None, None]
        .into_iter()
        .enumerate()
    {
        h.push(raw_frame(i as u64, o)).unwrap();
        while let Some(pkt) = h.try_pull() {
            let rtp = gst_rtp::RTPBuffer::from_buffer_readable(&pkt).unwrap();
            if rtp.is_marker() {
                bytes.push(rtp.extension_onebyte_header(1, 0).unwrap()[0]);
            }
        }
    }
    assert_eq!(bytes, [0, 3, 3, 3]);
}

#[test]
fn raw_round_trip_sets_meta_and_follow_meta_tags() {
    init();
    let mut h = gst_check::Harness::new_parse(&format!(
        "rtpvrawpay mtu=400 ! application/x-rtp,extmap-7=(string){URI} ! rtpvrawdepay ! \
         sensorrotation mode=follow-meta"
    ));
    h.set_src_caps_str(RAW_CAPS);
    let mut tags = Vec::new();
    for i in 0..30u64 {
        h.push(raw_frame(i, Some(plan(i)))).unwrap();
        while let Some(ev) = h.try_pull_event() {
            if let gst::EventView::Tag(t) = ev.view()
                && let Some(v) = t.tag().get::<gst::tags::ImageOrientation>()
            {
                tags.push(v.get().to_owned());
            }
        }
        let out = h.pull().unwrap();
        assert_eq!(meta::orientation(&out), Some(plan(i)), "frame {i}");
    }
    assert_eq!(
        tags,
        [
            "rotate-0",
            "rotate-90",
            "rotate-180",
            "rotate-270",
            "rotate-0",
            "flip-rotate-90"
        ]
    );
}

/// A real pipeline: sensor replay -> encoder -> payloader -> depayloader -> decoder ->
/// sensorrotation follow-meta; returns the orientation tags seen at the sink.
fn encoded_round_trip(enc: &str, pay: &str, depay: &str, dec: &str) -> Vec<String> {
    let trace = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/rotation-trace.txt");
    let pipeline = gst::parse::launch(&format!(
        "videotestsrc num-buffers=330 ! video/x-raw,format=I420,width=64,height=48,\
         framerate=30/1 ! sensorrotation replay-file={trace} ! {enc} ! {pay} ! \
         application/x-rtp,extmap-4=(string){URI} ! {depay} ! {dec} ! \
         sensorrotation mode=follow-meta ! fakesink name=sink"
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let tags = Arc::new(Mutex::new(Vec::new()));
    let sinkpad = pipeline
        .by_name("sink")
        .unwrap()
        .static_pad("sink")
        .unwrap();
    let t2 = tags.clone();
    sinkpad.add_probe(gst::PadProbeType::EVENT_DOWNSTREAM, move |_, info| {
        if let Some(gst::PadProbeData::Event(ev)) = &info.data
            && let gst::EventView::Tag(t) = ev.view()
            && let Some(v) = t.tag().get::<gst::tags::ImageOrientation>()
        {
            t2.lock().unwrap().push(v.get().to_owned());
        }
        gst::PadProbeReturn::Ok
    });
    pipeline.set_state(gst::State::Playing).unwrap();
    let bus = pipeline.bus().unwrap();
    let msg = bus
        .timed_pop_filtered(
            gst::ClockTime::from_seconds(60),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        )
        .expect("EOS within 60 s");
    if let gst::MessageView::Error(e) = msg.view() {
        panic!("{}: {:?}", e.error(), e.debug());
    }
    pipeline.set_state(gst::State::Null).unwrap();
    tags.lock().unwrap().clone()
}

const EXPECTED: [&str; 5] = [
    "rotate-0",
    "rotate-90",
    "rotate-0",
    "rotate-270",
    "rotate-180",
];

#[test]
fn vp8_round_trip_carries_the_orientation() {
    init();
    let tags = encoded_round_trip(
        "vp8enc deadline=1 keyframe-max-dist=30",
        "rtpvp8pay",
        "rtpvp8depay",
        "vp8dec",
    );
    assert_eq!(tags, EXPECTED);
}

#[test]
fn h264_round_trip_carries_the_orientation() {
    init();
    let tags = encoded_round_trip(
        "x264enc tune=zerolatency speed-preset=ultrafast key-int-max=30",
        "rtph264pay",
        "rtph264depay",
        "avdec_h264",
    );
    assert_eq!(tags, EXPECTED);
}

#[test]
fn extension_is_found_by_uri() {
    init();
    // How payloaders/depayloaders with auto-header-extension and webrtcbin find it.
    let ext = gst_rtp::RTPHeaderExtension::create_from_uri(URI).expect("found by URI");
    assert_eq!(RTPHeaderExtensionExt::uri(&ext).as_deref(), Some(URI));
    assert_eq!(ext.factory().unwrap().name(), "rtphdrextcvo");
    assert!(gst_rtp::RTPHeaderExtensionFlags::ONE_BYTE.intersects(ext.supported_flags()));
}
