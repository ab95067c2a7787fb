//! Three sessions in one room form a mesh where each receives the other two; one leaves and
//! rejoins (a new peer id, offering to both again) and media flows again everywhere.
//! Run: unshare -n sh -c 'ip link set lo up; cargo test --test session_mesh'

mod common;
mod session_support;

use std::time::Duration;

use session_support::{Joined, join, small, wait_for, wait_until};
use streamwire::encoder::Codec;
use streamwire::session::SessionEvent;
use streamwire::webrtc::MediaKind;

const T: Duration = Duration::from_secs(40);

fn size(j: &Joined, from: &str) -> (i32, i32) {
    let c = j.session.subscriber().counters(from, MediaKind::Video);
    (c.width, c.height)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_sessions_mesh_then_one_leaves_and_rejoins() {
    let server = common::start(common::config()).await;
    let url = server.url.clone();
    let ann = join(&url, "m", "ann", Some(small(320, 240, Codec::Vp8)), |_| {}).await;
    let ben = join(&url, "m", "ben", Some(small(256, 144, Codec::H264)), |_| {}).await;
    let cat = join(&url, "m", "cat", Some(small(176, 144, Codec::Vp8)), |_| {}).await;
    let (a, b, c) = (
        ann.session.peer_id().unwrap(),
        ben.session.peer_id().unwrap(),
        cat.session.peer_id().unwrap(),
    );
    wait_for("each decodes the other two", T, || {
        ann.decoded_from(&b, MediaKind::Video) > 10
            && ann.decoded_from(&c, MediaKind::Video) > 10
            && ben.decoded_from(&a, MediaKind::Video) > 10
            && ben.decoded_from(&c, MediaKind::Video) > 10
            && cat.decoded_from(&a, MediaKind::Video) > 10
            && cat.decoded_from(&b, MediaKind::Video) > 10
    })
    .await;
    assert_eq!(size(&ben, &a), (320, 240));
    assert_eq!(size(&cat, &a), (320, 240));
    assert_eq!(size(&ann, &b), (256, 144));
    assert_eq!(size(&cat, &b), (256, 144));
    assert_eq!(size(&ann, &c), (176, 144));
    assert_eq!(size(&ben, &c), (176, 144));
    wait_for("audio everywhere", T, || {
        [
            (&ann, &b),
            (&ann, &c),
            (&ben, &a),
            (&ben, &c),
            (&cat, &a),
            (&cat, &b),
        ]
        .iter()
        .all(|(j, from)| j.decoded_from(from, MediaKind::Audio) > 5)
    })
    .await;
    assert_eq!(ann.session.peers().await.len(), 2);

    // cat leaves.
    cat.session.leave().await;
    drop(cat);
    wait_until("ann and ben drop cat", T, async || {
        ann.session.peers().await == vec![b.clone()] && ben.session.peers().await == vec![a.clone()]
    })
    .await;
    assert!(ann.any(|e| matches!(e, SessionEvent::PeerLeft { peer_id } if *peer_id == c)));
    let before = ann.decoded_from(&b, MediaKind::Video);
    wait_for("ann still receives ben", T, || {
        ann.decoded_from(&b, MediaKind::Video) > before + 15
    })
    .await;

    // cat rejoins: a new session with a new peer id.
    let cat2 = join(&url, "m", "cat", Some(small(176, 144, Codec::Vp8)), |_| {}).await;
    let c2 = cat2.session.peer_id().unwrap();
    assert_ne!(c2, c, "a fresh join gets a new peer id");
    wait_for("media flows again after rejoin", T, || {
        ann.decoded_from(&c2, MediaKind::Video) > 10
            && ben.decoded_from(&c2, MediaKind::Video) > 10
            && cat2.decoded_from(&a, MediaKind::Video) > 10
            && cat2.decoded_from(&b, MediaKind::Video) > 10
    })
    .await;
    assert_eq!(size(&cat2, &b), (256, 144));
    assert_eq!(size(&ann, &c2), (176, 144));
    for j in [&ann, &ben, &cat2] {
        j.session.leave().await;
    }
}
