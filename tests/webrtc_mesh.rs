//! Mesh of three peers (one webrtcbin per remote peer, encoder shared), a late subscriber that
//! gets a keyframe at once, PLI from a receiver forcing a keyframe, and leave + rejoin.
//! Run: unshare -n sh -c 'ip link set lo up; cargo test --test webrtc_mesh'

mod webrtc_support;

use std::time::{Duration, Instant};

use streamwire::encoder::Codec;
use streamwire::webrtc::MediaKind;
use streamwire::webrtc::publisher::PublisherConfig;
use streamwire::webrtc::subscriber::SubscriberConfig;
use webrtc_support::{Endpoint, connect_pair, wait_for};

const BOTH: &[MediaKind] = &[MediaKind::Video, MediaKind::Audio];

fn small(w: i32, h: i32, codec: Codec) -> Option<PublisherConfig> {
    Some(PublisherConfig {
        width: w,
        height: h,
        codec,
        start_kbps: 400,
        // Only forced keyframes (new peer, PLI) within a test run.
        keyframe_interval: 100_000,
        ..PublisherConfig::default()
    })
}

fn decoded(e: &Endpoint, from: &str) -> u64 {
    e.subscriber.counters(from, MediaKind::Video).decoded
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_peer_mesh_each_receives_the_other_two_then_leave_and_rejoin() {
    let a = Endpoint::new(
        "ann",
        small(320, 240, Codec::Vp8),
        SubscriberConfig::default(),
    );
    let b = Endpoint::new(
        "ben",
        small(256, 144, Codec::H264),
        SubscriberConfig::default(),
    );
    let c = Endpoint::new(
        "cat",
        small(176, 144, Codec::Vp8),
        SubscriberConfig::default(),
    );
    // Join order ann, ben, cat: the newer peer of each pair offers.
    let (_ab, _ba, _e1, _e2) = connect_pair(&a, &b, BOTH, |_| {});
    let (ac, _ca, _e3, _e4) = connect_pair(&a, &c, BOTH, |_| {});
    let (bc, _cb, _e5, _e6) = connect_pair(&b, &c, BOTH, |_| {});

    let t = Duration::from_secs(30);
    wait_for("every peer decodes the other two", t, || {
        decoded(&a, "ben") > 10
            && decoded(&a, "cat") > 10
            && decoded(&b, "ann") > 10
            && decoded(&b, "cat") > 10
            && decoded(&c, "ann") > 10
            && decoded(&c, "ben") > 10
    })
    .await;
    let size = |e: &Endpoint, from: &str| {
        let c = e.subscriber.counters(from, MediaKind::Video);
        (c.width, c.height)
    };
    assert_eq!(size(&b, "ann"), (320, 240));
    assert_eq!(size(&c, "ann"), (320, 240));
    assert_eq!(size(&a, "ben"), (256, 144));
    assert_eq!(size(&c, "ben"), (256, 144));
    assert_eq!(size(&a, "cat"), (176, 144));
    assert_eq!(size(&b, "cat"), (176, 144));
    wait_for("audio everywhere", Duration::from_secs(10), || {
        [
            (&a, "ben"),
            (&a, "cat"),
            (&b, "ann"),
            (&b, "cat"),
            (&c, "ann"),
            (&c, "ben"),
        ]
        .iter()
        .all(|(e, from)| e.subscriber.counters(from, MediaKind::Audio).decoded > 5)
    })
    .await;

    // cat leaves: ann and ben drop their peers to cat, cat's endpoint goes away.
    for (e, p) in [(&a, &ac), (&b, &bc)] {
        e.publisher.as_ref().unwrap().detach("cat");
        e.subscriber.detach("cat");
        p.close().unwrap();
    }
    drop(c);
    let before_a = decoded(&a, "ben");
    wait_for("ann still receives ben", Duration::from_secs(5), || {
        decoded(&a, "ben") > before_a + 15
    })
    .await;

    // cat rejoins (new endpoint, newest again: she offers to both).
    let c2 = Endpoint::new(
        "cat",
        small(176, 144, Codec::Vp8),
        SubscriberConfig::default(),
    );
    let (_ac2, _ca2, _e7, _e8) = connect_pair(&a, &c2, BOTH, |_| {});
    let (_bc2, _cb2, _e9, _e10) = connect_pair(&b, &c2, BOTH, |_| {});
    let (a_cat, b_cat) = (decoded(&a, "cat"), decoded(&b, "cat"));
    wait_for("media flows again after rejoin", t, || {
        decoded(&a, "cat") > a_cat + 10
            && decoded(&b, "cat") > b_cat + 10
            && decoded(&c2, "ann") > 10
            && decoded(&c2, "ben") > 10
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_subscriber_gets_a_keyframe_at_once_and_pli_forces_one() {
    let camera = Endpoint::new(
        "camera",
        small(320, 240, Codec::Vp8),
        SubscriberConfig::default(),
    );
    let first = Endpoint::new("first", None, SubscriberConfig::default());
    let (_p1, _q1, _e1, _e2) = connect_pair(&camera, &first, BOTH, |_| {});
    wait_for("first viewer decodes", Duration::from_secs(20), || {
        decoded(&first, "camera") > 10
    })
    .await;
    // Let the stream run well past its last keyframe.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let publisher = camera.publisher.clone().unwrap();
    let (_, keys_before) = publisher.video_frame_counts();

    let late = Endpoint::new("late", None, SubscriberConfig::default());
    let joined = Instant::now();
    let (_p2, _q2, _e3, _e4) = connect_pair(&camera, &late, BOTH, |_| {});
    wait_for("late viewer decodes", Duration::from_secs(10), || {
        decoded(&late, "camera") > 0
    })
    .await;
    let first_frame = joined.elapsed();
    let (_, keys_after_join) = publisher.video_frame_counts();
    eprintln!("late viewer: first frame {first_frame:?} after join");
    // With a 100000-frame keyframe interval, only a forced keyframe lets it decode.
    assert!(
        keys_after_join > keys_before,
        "a keyframe was forced for the new peer"
    );
    assert!(
        first_frame < Duration::from_secs(5),
        "first frame took {first_frame:?}"
    );

    // PLI from one receiver forces a keyframe for everyone.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (_, keys_before_pli) = publisher.video_frame_counts();
    assert!(first.subscriber.request_keyframe("camera"));
    wait_for("keyframe after PLI", Duration::from_secs(5), || {
        publisher.video_frame_counts().1 > keys_before_pli
    })
    .await;
}
