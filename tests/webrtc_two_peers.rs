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

/// The local candidates a lone offerer gathers on 127.0.0.1 with `ice_tcp` and
/// `ice_port_range` (gathering ends or 5 s pass).
async fn gathered(ice_tcp: bool, ice_port_range: Option<(u16, u16)>) -> Vec<String> {
    use streamwire::webrtc::peer::{PeerConfig, Role, SignalOut};
    let a = Endpoint::new(
        "alice",
        Some(publish(Codec::Vp8, 320, 240)),
        SubscriberConfig::default(),
    );
    let cfg = PeerConfig {
        ice_tcp,
        ice_port_range,
        ..PeerConfig::loopback(Role::Offerer)
    };
    let (peer, mut io) = a.peer("bob", cfg);
    peer.negotiate().unwrap();
    let mut candidates = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    // Host candidates on loopback come within milliseconds; stop a second after the last.
    while let Ok(Some(msg)) = tokio::time::timeout_at(
        deadline.min(tokio::time::Instant::now() + Duration::from_secs(1)),
        io.signals.recv(),
    )
    .await
    {
        if let SignalOut::Ice { candidate, .. } = msg {
            candidates.push(candidate);
        }
    }
    candidates
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ice_tcp_off_gathers_udp_candidates_only() {
    let is_tcp = |c: &String| c.to_ascii_uppercase().contains(" TCP ");
    let with = gathered(true, None).await;
    assert!(with.iter().any(is_tcp), "ICE-TCP on by default: {with:?}");
    assert!(!with.iter().all(is_tcp), "UDP too: {with:?}");
    let without = gathered(false, None).await;
    assert!(!without.is_empty(), "no candidates at all");
    assert!(!without.iter().any(is_tcp), "ice_tcp = false: {without:?}");
}

/// `ice_port_range` bounds the UDP ports of every candidate (a firewall's open range).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ice_port_range_bounds_candidate_ports() {
    let range = (0x5100, 0x511f);
    let candidates = gathered(false, Some(range)).await;
    assert!(!candidates.is_empty(), "no candidates at all");
    for c in &candidates {
        // `candidate:F 1 udp PRIO ADDR PORT typ host ...`
        let port: u16 = c
            .split_whitespace()
            .nth(5)
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no port in `{c}`"));
        assert!(
            (range.0..=range.1).contains(&port),
            "{port} outside {range:?}: {c}"
        );
    }
}

/// A range that is not one is refused, naming the field.
#[test]
fn ice_port_range_must_be_a_range() {
    use streamwire::webrtc::peer::{Peer, PeerConfig, Role};
    gst::init().unwrap();
    for bad in [(0, 10), (5000, 4000)] {
        let cfg = PeerConfig {
            ice_port_range: Some(bad),
            ..PeerConfig::loopback(Role::Offerer)
        };
        let pipeline = gst::Pipeline::new();
        let Err(err) = Peer::new(&pipeline, "bob", cfg) else {
            panic!("{bad:?} accepted");
        };
        assert!(err.to_string().contains("ice_port_range"), "{err}");
    }
}
