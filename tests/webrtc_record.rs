//! Subscriber records a remote peer's video, without re-encoding, to a playable file.
//! Run: unshare -n sh -c 'ip link set lo up; cargo test --test webrtc_record'

mod webrtc_support;

use std::time::Duration;

use gst_pbutils::prelude::*;
use streamwire::encoder::Codec;
use streamwire::webrtc::MediaKind;
use streamwire::webrtc::publisher::PublisherConfig;
use streamwire::webrtc::subscriber::{SubscriberConfig, VideoOutput};
use webrtc_support::{Endpoint, connect_pair, wait_for};

async fn record(codec: Codec) {
    let dir = tempfile::tempdir().unwrap();
    let camera = Endpoint::new(
        "camera",
        Some(PublisherConfig {
            codec,
            width: 320,
            height: 240,
            ..PublisherConfig::default()
        }),
        SubscriberConfig::default(),
    );
    let recorder = Endpoint::new(
        "recorder",
        None,
        SubscriberConfig {
            video: VideoOutput::Record(dir.path().to_owned()),
            ..SubscriberConfig::default()
        },
    );
    let (_pc, _pr, _e1, _e2) = connect_pair(&camera, &recorder, &[MediaKind::Video], |_| {});
    wait_for("recorded frames", Duration::from_secs(20), || {
        recorder
            .subscriber
            .counters("camera", MediaKind::Video)
            .decoded
            >= 60
    })
    .await;
    let path = dir.path().join("camera.mkv");
    let size = std::fs::metadata(&path).unwrap().len();
    assert!(size > 10_000, "recording is {size} bytes");

    // The file is readable as it stands (streamable Matroska), with the published size.
    let discoverer = gst_pbutils::Discoverer::new(gst::ClockTime::from_seconds(10)).unwrap();
    let uri = gst::glib::filename_to_uri(&path, None).unwrap();
    let info = discoverer.discover_uri(&uri).unwrap();
    let video = info.video_streams();
    assert_eq!(video.len(), 1, "one video stream");
    assert_eq!((video[0].width(), video[0].height()), (320, 240));
    let caps = video[0].caps().unwrap();
    let name = caps.structure(0).unwrap().name().to_string();
    let expected = match codec {
        Codec::Vp8 => "video/x-vp8",
        Codec::H264 => "video/x-h264",
        other => unreachable!("this test records VP8 and H.264, not {other}"),
    };
    assert_eq!(name, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_vp8_to_matroska() {
    record(Codec::Vp8).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_h264_to_matroska() {
    record(Codec::H264).await;
}
