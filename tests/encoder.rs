//! Encoder selection against given factory lists and the real registry, and live bitrate changes.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use gst::prelude::*;
use streamwire::encoder::{
    CANDIDATES, Codec, Encoder, EncoderConfig, EncoderError, FactoryList, HardwarePolicy,
    SystemRegistry, select,
};

fn init() {
    streamwire::gst_init::init().unwrap();
}

const CFG: EncoderConfig = EncoderConfig {
    width: 320,
    height: 240,
    fps: 30,
    bitrate_kbps: 1000,
    keyframe_interval: 60,
};

#[test]
fn table_lists_hardware_before_software_for_every_codec() {
    for codec in Codec::ALL {
        let rows: Vec<_> = CANDIDATES.iter().filter(|c| c.codec == codec).collect();
        assert!(rows.iter().any(|c| !c.hardware), "{codec}: no software");
        let first_sw = rows.iter().position(|c| !c.hardware).unwrap();
        assert!(
            rows[first_sw..].iter().all(|c| !c.hardware),
            "{codec}: hardware after software"
        );
    }
}

#[test]
fn hardware_preferred_regardless_of_listing_order() {
    // vah264enc has rank NONE in GStreamer 1.22; rank must not matter.
    let machine = FactoryList::new([("x264enc", Codec::H264), ("vah264enc", Codec::H264)]);
    let s = select(Codec::H264, HardwarePolicy::Auto, &machine).unwrap();
    assert_eq!(s.factory, "vah264enc");
    assert!(s.candidate.hardware);
    assert!(s.skipped.is_empty(), "{:?}", s.skipped);

    let machine = FactoryList::new([
        ("openh264enc", Codec::H264),
        ("x264enc", Codec::H264),
        ("nvh264enc", Codec::H264),
    ]);
    let s = select(Codec::H264, HardwarePolicy::Auto, &machine).unwrap();
    assert_eq!(s.factory, "nvh264enc");
    let reasons: Vec<_> = s
        .skipped
        .iter()
        .map(|k| (k.factory.as_str(), k.reason.as_str()))
        .collect();
    assert!(
        reasons.contains(&("vah264enc", "not installed")),
        "{reasons:?}"
    );
    assert!(
        reasons.contains(&("amcvidenc-*", "not installed")),
        "{reasons:?}"
    );
}

#[test]
fn pattern_candidates_match_by_prefix() {
    let machine = FactoryList::new([
        ("vp8enc", Codec::Vp8),
        ("amcvidenc-omxgooglevp8encoder", Codec::Vp8),
    ]);
    let s = select(Codec::Vp8, HardwarePolicy::Auto, &machine).unwrap();
    assert_eq!(s.factory, "amcvidenc-omxgooglevp8encoder");
    assert_eq!(s.candidate.family, "MediaCodec");
}

#[test]
fn software_order_is_x264_then_openh264() {
    let machine = FactoryList::new([("openh264enc", Codec::H264), ("x264enc", Codec::H264)]);
    let s = select(Codec::H264, HardwarePolicy::Auto, &machine).unwrap();
    assert_eq!(s.factory, "x264enc");
    let machine = FactoryList::new([("openh264enc", Codec::H264)]);
    assert_eq!(
        select(Codec::H264, HardwarePolicy::Auto, &machine)
            .unwrap()
            .factory,
        "openh264enc"
    );
}

#[test]
fn require_without_hardware_lists_what_was_searched() {
    let machine = FactoryList::new([("x264enc", Codec::H264), ("vp8enc", Codec::Vp8)]);
    let e = select(Codec::H264, HardwarePolicy::Require, &machine).unwrap_err();
    let EncoderError::NoHardware { codec, searched } = &e else {
        panic!("{e:?}")
    };
    assert_eq!(*codec, Codec::H264);
    let names: Vec<&str> = searched.iter().map(|s| s.factory.as_str()).collect();
    for want in [
        "vah264enc",
        "vaapih264enc",
        "vtenc_h264_hw",
        "nvh264enc",
        "qsvh264enc",
        "v4l2h264enc",
        "x264enc",
    ] {
        assert!(names.contains(&want), "{want} not in {names:?}");
    }
    let msg = e.to_string();
    assert!(msg.starts_with("no usable hardware h264 encoder"), "{msg}");
    assert!(
        msg.contains("x264enc (software, hardware = \"require\")"),
        "{msg}"
    );
    assert!(msg.contains("vah264enc (not installed)"), "{msg}");
}

#[test]
fn require_picks_working_hardware() {
    let machine = FactoryList::new([("x264enc", Codec::H264), ("qsvh264enc", Codec::H264)]);
    let s = select(Codec::H264, HardwarePolicy::Require, &machine).unwrap();
    assert_eq!(s.factory, "qsvh264enc");
}

#[test]
fn hardware_off_skips_hardware_with_reason() {
    let machine = FactoryList::new([("vah264enc", Codec::H264), ("x264enc", Codec::H264)]);
    let s = select(Codec::H264, HardwarePolicy::Off, &machine).unwrap();
    assert_eq!(s.factory, "x264enc");
    assert!(
        s.skipped
            .iter()
            .any(|k| k.factory == "vah264enc" && k.reason == "hardware = \"off\""),
        "{:?}",
        s.skipped
    );
}

#[test]
fn hardware_that_fails_to_start_falls_back_to_software() {
    let machine = FactoryList::new([("vah264enc", Codec::H264), ("x264enc", Codec::H264)])
        .failing("vah264enc", "no VA display");
    let s = select(Codec::H264, HardwarePolicy::Auto, &machine).unwrap();
    assert_eq!(s.factory, "x264enc");
    let failed: Vec<_> = s.failed_hardware().collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].reason, "failed to start: no VA display");
    // With require, the failure is an error that says why.
    let e = select(Codec::H264, HardwarePolicy::Require, &machine).unwrap_err();
    assert!(
        e.to_string()
            .contains("vah264enc (failed to start: no VA display)"),
        "{e}"
    );
}

#[test]
fn real_start_check_fails_for_absent_hardware_and_falls_back() {
    init();
    // Listed as present, but the real start check runs and fails (the element does not exist here).
    let registry = SystemRegistry::new().pretend_available("vah264enc", Codec::H264);
    let s = select(Codec::H264, HardwarePolicy::Auto, &registry).unwrap();
    assert!(!s.candidate.hardware || s.factory != "vah264enc");
    if gst::ElementFactory::find("vah264enc").is_none() {
        let va = s.skipped.iter().find(|k| k.factory == "vah264enc").unwrap();
        assert!(va.reason.starts_with("failed to start"), "{va:?}");
    }
}

#[test]
fn real_registry_picks_installed_encoders() {
    init();
    let reg = SystemRegistry::new();
    // Software choices are deterministic given the installed plugins (Debian 12: ugly + good).
    assert_eq!(
        select(Codec::H264, HardwarePolicy::Off, &reg)
            .unwrap()
            .factory,
        "x264enc"
    );
    assert_eq!(
        select(Codec::Vp8, HardwarePolicy::Off, &reg)
            .unwrap()
            .factory,
        "vp8enc"
    );
    assert_eq!(
        select(Codec::Vp9, HardwarePolicy::Off, &reg)
            .unwrap()
            .factory,
        "vp9enc"
    );
    let without_x264 = SystemRegistry::new().without(["x264enc"]);
    assert_eq!(
        select(Codec::H264, HardwarePolicy::Off, &without_x264)
            .unwrap()
            .factory,
        "openh264enc"
    );
    // Auto picks something from the table that really starts.
    for codec in [Codec::H264, Codec::Vp8] {
        let s = select(codec, HardwarePolicy::Auto, &reg).unwrap();
        assert_eq!(s.candidate.codec, codec);
        assert!(gst::ElementFactory::find(&s.factory).is_some());
    }
}

#[test]
fn built_encoder_is_configured_for_real_time() {
    init();
    let reg = SystemRegistry::new();
    let x264 = select(Codec::H264, HardwarePolicy::Off, &reg)
        .unwrap()
        .build(&CFG, None)
        .unwrap();
    let e = x264.element();
    assert_eq!(e.property::<u32>("bframes"), 0);
    assert_eq!(e.property::<u32>("key-int-max"), 60);
    assert_eq!(e.property::<u32>("bitrate"), 1000);
    let tune = e.property_value("tune").serialize().unwrap();
    assert!(
        tune.to_lowercase().replace(' ', "").contains("zerolatency"),
        "tune = {tune}"
    );

    let vp8 = select(Codec::Vp8, HardwarePolicy::Off, &reg)
        .unwrap()
        .build(&CFG, None)
        .unwrap();
    let e = vp8.element();
    assert_eq!(e.property::<i32>("target-bitrate"), 1_000_000);
    assert_eq!(e.property::<i64>("deadline"), 1);
    assert_eq!(e.property::<i32>("keyframe-max-dist"), 60);
    assert_eq!(vp8.bitrate_kbps(), Some(1000));

    let props = select(Codec::Vp8, HardwarePolicy::Off, &reg)
        .unwrap()
        .launch_properties(&CFG);
    assert!(
        props.contains(&("target-bitrate".into(), "1000000".into())),
        "{props:?}"
    );
    assert!(
        props.contains(&("end-usage".into(), "cbr".into())),
        "{props:?}"
    );
}

#[test]
fn out_of_range_bitrate_is_an_error_not_ignored() {
    init();
    let enc = Encoder::new(Codec::H264, HardwarePolicy::Off, &CFG).unwrap();
    let e = enc.set_bitrate(3_000_000).unwrap_err();
    assert!(matches!(e, EncoderError::Property { .. }), "{e}");
    assert!(e.to_string().contains("outside 1..=2048000"), "{e}");
    assert_eq!(enc.bitrate_kbps(), Some(1000));
}

/// Encode non-live test frames; switch the bitrate from high to low after `switch_at` frames
/// (from the encoder's input side, while PLAYING) and return (bytes per frame before, after).
fn bytes_per_frame_before_after(codec: Codec) -> (f64, f64) {
    init();
    let cfg = EncoderConfig {
        width: 640,
        height: 360,
        fps: 30,
        bitrate_kbps: 4000,
        keyframe_interval: 1000,
    };
    let enc = Encoder::new(codec, HardwarePolicy::Off, &cfg).unwrap();
    let pipeline = gst::Pipeline::new();
    let src = gst::ElementFactory::make("videotestsrc")
        .property("num-buffers", 240i32)
        .property_from_str("pattern", "zone-plate")
        .property("kx2", 20i32)
        .property("ky2", 20i32)
        .property("kt", 1i32)
        .property("kt2", 1i32)
        .build()
        .unwrap();
    let caps = gst::ElementFactory::make("capsfilter")
        .property(
            "caps",
            gst::Caps::builder("video/x-raw")
                .field("format", "I420")
                .field("width", 640i32)
                .field("height", 360i32)
                .field("framerate", gst::Fraction::new(30, 1))
                .build(),
        )
        .build()
        .unwrap();
    let sink = gst::ElementFactory::make("fakesink").build().unwrap();
    let e = enc.element().clone();
    pipeline.add_many([&src, &caps, &e, &sink]).unwrap();
    gst::Element::link_many([&src, &caps, &e, &sink]).unwrap();

    let switch_at = 120u64;
    let seen_in = Arc::new(AtomicU64::new(0));
    let enc2 = Encoder::from_element(e.clone()).unwrap();
    let seen = seen_in.clone();
    e.static_pad("sink")
        .unwrap()
        .add_probe(gst::PadProbeType::BUFFER, move |_, _| {
            if seen.fetch_add(1, Ordering::SeqCst) == switch_at {
                enc2.set_bitrate(300).unwrap();
            }
            gst::PadProbeReturn::Ok
        });
    let out: Arc<parking_lot::Mutex<Vec<usize>>> = Arc::default();
    let out2 = out.clone();
    e.static_pad("src")
        .unwrap()
        .add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            if let Some(b) = info.buffer() {
                out2.lock().push(b.size());
            }
            gst::PadProbeReturn::Ok
        });
    pipeline.set_state(gst::State::Playing).unwrap();
    let msg = pipeline
        .bus()
        .unwrap()
        .timed_pop_filtered(
            gst::ClockTime::from_seconds(120),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        )
        .expect("pipeline finished");
    assert!(matches!(msg.view(), gst::MessageView::Eos(_)), "{msg:?}");
    pipeline.set_state(gst::State::Null).unwrap();
    assert_eq!(enc.bitrate_kbps(), Some(300), "read back after live change");
    let sizes = out.lock().clone();
    assert_eq!(sizes.len(), 240);
    // Skip the first keyframe and let rate control settle after the switch.
    let avg = |s: &[usize]| s.iter().sum::<usize>() as f64 / s.len() as f64;
    (avg(&sizes[30..120]), avg(&sizes[180..240]))
}

#[test]
fn bitrate_changes_while_playing_x264() {
    let (before, after) = bytes_per_frame_before_after(Codec::H264);
    assert!(
        after < before / 3.0,
        "before {before:.0} B/frame, after {after:.0} B/frame"
    );
}

#[test]
fn bitrate_changes_while_playing_vp8() {
    let (before, after) = bytes_per_frame_before_after(Codec::Vp8);
    assert!(
        after < before / 3.0,
        "before {before:.0} B/frame, after {after:.0} B/frame"
    );
}

#[test]
fn every_codec_choice_really_encodes_720p() {
    // Catches configurations an encoder library rejects or aborts on (libaom asserts in CBR
    // with the element's default quantizer range).
    init();
    let cfg = EncoderConfig {
        width: 1280,
        height: 720,
        fps: 30,
        bitrate_kbps: 2000,
        keyframe_interval: 60,
    };
    for codec in Codec::ALL {
        let enc = match Encoder::new(codec, HardwarePolicy::Auto, &cfg) {
            Ok(e) => e,
            Err(EncoderError::NoEncoder { .. }) => continue, // codec not installed here
            Err(e) => panic!("{codec}: {e}"),
        };
        let pipeline = gst::parse::launch(
            "videotestsrc num-buffers=15 pattern=smpte ! video/x-raw,format=I420,width=1280,height=720,framerate=30/1 ! identity name=in",
        )
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
        let sink = gst::ElementFactory::make("fakesink").build().unwrap();
        let count = Arc::new(AtomicU64::new(0));
        let c = count.clone();
        sink.static_pad("sink")
            .unwrap()
            .add_probe(gst::PadProbeType::BUFFER, move |_, _| {
                c.fetch_add(1, Ordering::SeqCst);
                gst::PadProbeReturn::Ok
            });
        pipeline.add_many([enc.element(), &sink]).unwrap();
        pipeline.by_name("in").unwrap().link(enc.element()).unwrap();
        enc.element().link(&sink).unwrap();
        pipeline.set_state(gst::State::Playing).unwrap();
        let msg = pipeline
            .bus()
            .unwrap()
            .timed_pop_filtered(
                gst::ClockTime::from_seconds(120),
                &[gst::MessageType::Eos, gst::MessageType::Error],
            )
            .expect("finished");
        pipeline.set_state(gst::State::Null).unwrap();
        assert!(
            matches!(msg.view(), gst::MessageView::Eos(_)),
            "{codec}: {msg:?}"
        );
        assert_eq!(
            count.load(Ordering::SeqCst),
            15,
            "{codec}: every frame encoded"
        );
    }
}
