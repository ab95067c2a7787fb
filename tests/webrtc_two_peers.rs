//! Two peers in one process exchange audio and video over loopback.
//! Run: unshare -n sh -c 'ip link set lo up; cargo test --test webrtc_two_peers'

mod webrtc_support;

use std::time::Duration;

use streamwire::encoder::Codec;
use streamwire::webrtc::MediaKind;
use streamwire::webrtc::peer::ConnectionState;
use streamwire::webrtc::publisher::PublisherConfig;
use streamwire::webrtc::subscriber::SubscriberConfig;
use webrtc_support::{Endpoint, connect_pair, wait_for};

fn publish(codec: Codec, w: i32, h: i32) -> PublisherConfig {
    PublisherConfig {
        codec,
        width: w,
        height: h,
        ..PublisherConfig::default()
    }
}

async fn one_way(codec: Codec) {
    let a = Endpoint::new(
        "alice",
        Some(publish(codec, 640, 360)),
        SubscriberConfig::default(),
    );
    let b = Endpoint::new("bob", None, SubscriberConfig::default());
    // bob joined later: he offers, and expects alice's audio and video.
    let (pa, pb, _ea, _eb) = connect_pair(&a, &b, &[MediaKind::Video, MediaKind::Audio], |_| {});
    wait_for("video frames at bob", Duration::from_secs(20), || {
        b.subscriber.counters("alice", MediaKind::Video).decoded >= 30
    })
    .await;
    wait_for("audio at bob", Duration::from_secs(10), || {
        b.subscriber.counters("alice", MediaKind::Audio).decoded >= 10
    })
    .await;
    let v = b.subscriber.counters("alice", MediaKind::Video);
    assert_eq!((v.width, v.height), (640, 360), "decoded frame size");
    assert_eq!(pa.connection_state(), ConnectionState::Connected);
    assert_eq!(pb.connection_state(), ConnectionState::Connected);
    // alice receives nothing: she publishes only.
    assert_eq!(a.subscriber.counters("bob", MediaKind::Video).decoded, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vp8_and_opus_one_way() {
    one_way(Codec::Vp8).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h264_and_opus_one_way() {
    one_way(Codec::H264).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_directions_on_one_webrtcbin() {
    let a = Endpoint::new(
        "alice",
        Some(publish(Codec::Vp8, 320, 240)),
        SubscriberConfig::default(),
    );
    let b = Endpoint::new(
        "bob",
        Some(publish(Codec::H264, 352, 288)),
        SubscriberConfig::default(),
    );
    let (_pa, _pb, _ea, _eb) = connect_pair(&a, &b, &[MediaKind::Video, MediaKind::Audio], |_| {});
    wait_for("alice's video at bob", Duration::from_secs(20), || {
        b.subscriber.counters("alice", MediaKind::Video).decoded >= 15
    })
    .await;
    wait_for("bob's video at alice", Duration::from_secs(20), || {
        a.subscriber.counters("bob", MediaKind::Video).decoded >= 15
    })
    .await;
    wait_for("audio both ways", Duration::from_secs(10), || {
        a.subscriber.counters("bob", MediaKind::Audio).decoded >= 10
            && b.subscriber.counters("alice", MediaKind::Audio).decoded >= 10
    })
    .await;
    let at_b = b.subscriber.counters("alice", MediaKind::Video);
    let at_a = a.subscriber.counters("bob", MediaKind::Video);
    assert_eq!((at_b.width, at_b.height), (320, 240));
    assert_eq!((at_a.width, at_a.height), (352, 288));
}
