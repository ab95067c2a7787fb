//! Sessions through a real signalling server on 127.0.0.1 with real webrtcbin peers: audio +
//! video both ways with the expected frame sizes, data-channel and signalling messages, stats
//! events, and a killed signalling socket that does not stop media.
//! Run: unshare -n sh -c 'ip link set lo up; cargo test --test session_media'

mod common;
mod session_support;

use std::time::Duration;

use session_support::{join, small, wait_for, wait_until};
use streamwire::encoder::Codec;
use streamwire::session::{SessionEvent, Via};
use streamwire::signalling::client::SignallingState as SigState;
use streamwire::signalling::protocol::{DeliveryStatus, Payload};
use streamwire::webrtc::MediaKind;
use streamwire::webrtc::peer::ConnectionState;

const T: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_sessions_exchange_audio_video_and_messages_both_ways() {
    let server = common::start(common::config()).await;
    let alice = join(
        &server.url,
        "r",
        "alice",
        Some(small(320, 240, Codec::Vp8)),
        |_| {},
    )
    .await;
    let bob = join(
        &server.url,
        "r",
        "bob",
        Some(small(256, 144, Codec::H264)),
        |_| {},
    )
    .await;
    let a_id = alice.session.peer_id().unwrap();
    let b_id = bob.session.peer_id().unwrap();
    assert_ne!(a_id, b_id);

    wait_for("video decoded both ways", T, || {
        alice.decoded_from(&b_id, MediaKind::Video) > 10
            && bob.decoded_from(&a_id, MediaKind::Video) > 10
    })
    .await;
    let size = |j: &session_support::Joined, from: &str| {
        let c = j.session.subscriber().counters(from, MediaKind::Video);
        (c.width, c.height)
    };
    assert_eq!(size(&bob, &a_id), (320, 240));
    assert_eq!(size(&alice, &b_id), (256, 144));
    wait_for("audio decoded both ways", T, || {
        alice.decoded_from(&b_id, MediaKind::Audio) > 5
            && bob.decoded_from(&a_id, MediaKind::Audio) > 5
    })
    .await;
    assert_eq!(
        alice.session.connection_state(&b_id).await,
        Some(ConnectionState::Connected)
    );
    // Events: peer joined, tracks added, connection state, announcements.
    assert!(alice.any(|e| matches!(e, SessionEvent::PeerJoined { peer_id, user } if *peer_id == b_id && user == "bob")));
    assert!(bob.any(|e| matches!(e, SessionEvent::PeerJoined { peer_id, .. } if *peer_id == a_id)));
    assert!(alice.any(|e| matches!(e, SessionEvent::TrackAdded { peer_id, kind: MediaKind::Video, codec } if *peer_id == b_id && codec == "H264")));
    assert!(bob.any(|e| matches!(e, SessionEvent::TrackAdded { peer_id, kind: MediaKind::Audio, .. } if *peer_id == a_id)));
    assert!(bob.any(|e| matches!(e, SessionEvent::Connection { peer_id, state: ConnectionState::Connected } if *peer_id == a_id)));
    assert!(
        bob.any(|e| matches!(e, SessionEvent::TrackPublished { peer_id, .. } if *peer_id == a_id))
    );
    wait_for("alice sees bob's announcements", T, || {
        alice.any(|e| matches!(e, SessionEvent::TrackPublished { peer_id, .. } if *peer_id == b_id))
    })
    .await;

    // Data channel: both directions.
    wait_for("data channels open", T, || {
        alice.any(|e| matches!(e, SessionEvent::DataChannelOpen { .. }))
            && bob.any(|e| matches!(e, SessionEvent::DataChannelOpen { .. }))
    })
    .await;
    assert_eq!(
        alice
            .session
            .send_data(Some(&b_id), &Payload::Text("dc hello bob".into()))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        bob.session
            .send_data(None, &Payload::Binary(vec![1, 2, 3, 250]))
            .await
            .unwrap(),
        1
    );
    // Signalling path with a delivery result.
    let d = alice
        .session
        .send_message(Some(&b_id), Payload::Text("sig hello bob".into()))
        .await
        .unwrap();
    assert_eq!(d.status, DeliveryStatus::Delivered);
    assert_eq!(d.recipients, 1);
    wait_for("all messages arrive", T, || {
        bob.any(|e| matches!(e, SessionEvent::Message { from, via: Via::DataChannel, payload: Payload::Text(t) } if *from == a_id && t == "dc hello bob"))
            && bob.any(|e| matches!(e, SessionEvent::Message { from, via: Via::Signalling, payload: Payload::Text(t) } if *from == a_id && t == "sig hello bob"))
            && alice.any(|e| matches!(e, SessionEvent::Message { from, via: Via::DataChannel, payload: Payload::Binary(b) } if *from == b_id && b == &[1, 2, 3, 250]))
    })
    .await;
    // Sending to an unknown peer over the data channel is an error naming it.
    let err = alice
        .session
        .send_data(Some("nobody"), &Payload::Text("x".into()))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("`nobody`"), "{err}");

    // Stats events every 2 s with the received video size.
    wait_for("stats with a received video track", T, || {
        bob.any(|e| match e {
            SessionEvent::Stats(s) => {
                s.stats.peer == a_id
                    && s.stats
                        .tracks
                        .iter()
                        .any(|t| t.width == Some(320) && t.height == Some(240))
            }
            _ => false,
        })
    })
    .await;

    // Each side reported its channel open exactly once (the answerer's on-open handler and
    // its "already open" check must not both report it), well after it opened.
    let opens = |j: &session_support::Joined, from: &str| {
        j.events()
            .iter()
            .filter(|e| matches!(e, SessionEvent::DataChannelOpen { peer_id } if peer_id == from))
            .count()
    };
    assert_eq!((opens(&alice, &b_id), opens(&bob, &a_id)), (1, 1));

    // Bob leaves: alice closes her peer and reports the tracks removed.
    bob.session.leave().await;
    wait_for("alice sees bob leave", T, || {
        alice.any(|e| matches!(e, SessionEvent::PeerLeft { peer_id } if *peer_id == b_id))
            && alice.any(|e| matches!(e, SessionEvent::TrackRemoved { peer_id, kind: MediaKind::Video } if *peer_id == b_id))
    })
    .await;
    assert!(alice.session.peers().await.is_empty());
    alice.session.leave().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_signalling_socket_does_not_stop_media() {
    let server = common::start(common::config()).await;
    let proxy = common::Proxy::start(server.addr).await;
    let cam = join(
        &server.url,
        "r",
        "cam",
        Some(small(320, 240, Codec::Vp8)),
        |_| {},
    )
    .await;
    // The viewer's signalling goes through the proxy.
    let viewer = join(&proxy.url, "r", "viewer", None, |c| {
        c.signalling.backoff_initial = Duration::from_millis(50);
    })
    .await;
    let cam_id = cam.session.peer_id().unwrap();
    let viewer_id = viewer.session.peer_id().unwrap();
    wait_for("viewer decodes", T, || {
        viewer.decoded_from(&cam_id, MediaKind::Video) > 10
    })
    .await;

    let killed = proxy.kill();
    assert!(killed >= 1, "a live signalling connection was killed");
    let before = viewer.decoded_from(&cam_id, MediaKind::Video);
    wait_for("viewer resumes the signalling session", T, || {
        viewer.any(|e| matches!(e, SessionEvent::Resumed))
            && viewer.session.client().state() == SigState::Connected
    })
    .await;
    // Media kept flowing through and after the drop, on the same peer connection.
    wait_for("frames keep arriving", T, || {
        viewer.decoded_from(&cam_id, MediaKind::Video) > before + 30
    })
    .await;
    assert_eq!(viewer.session.peers().await, vec![cam_id.clone()]);
    assert_eq!(viewer.session.peer_id().unwrap(), viewer_id);
    assert!(
        !viewer.any(|e| matches!(e, SessionEvent::PeerLeft { .. })),
        "no peer was torn down"
    );
    // Signalling works again after the resume.
    let d = viewer
        .session
        .send_message(Some(&cam_id), Payload::Text("back".into()))
        .await
        .unwrap();
    assert_eq!(d.status, DeliveryStatus::Delivered);
    wait_for("cam gets the message", T, || {
        cam.any(|e| matches!(e, SessionEvent::Message { via: Via::Signalling, payload: Payload::Text(t), .. } if t == "back"))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn selective_subscription_receives_only_the_chosen_user() {
    use streamwire::session::Subscribe;
    let server = common::start(common::config()).await;
    let a = join(
        &server.url,
        "s",
        "a",
        Some(small(320, 240, Codec::Vp8)),
        |_| {},
    )
    .await;
    let b = join(
        &server.url,
        "s",
        "b",
        Some(small(256, 144, Codec::Vp8)),
        |_| {},
    )
    .await;
    // The viewer joins last (offers to both) and wants only `a`.
    let v = join(&server.url, "s", "v", None, |c| {
        c.subscribe = Subscribe::Users(vec!["a".into()]);
    })
    .await;
    let (a_id, b_id) = (a.session.peer_id().unwrap(), b.session.peer_id().unwrap());
    wait_for("viewer decodes a", T, || {
        v.decoded_from(&a_id, MediaKind::Video) > 20
    })
    .await;
    assert_eq!(v.decoded_from(&b_id, MediaKind::Video), 0);
    assert_eq!(v.decoded_from(&b_id, MediaKind::Audio), 0);
    // Still connected to b (messages, data channel), just not receiving its media.
    wait_until("connected to b too", T, async || {
        v.session.connection_state(&b_id).await == Some(ConnectionState::Connected)
    })
    .await;
    // a and b still receive each other.
    wait_for("a and b exchange media", T, || {
        a.decoded_from(&b_id, MediaKind::Video) > 10 && b.decoded_from(&a_id, MediaKind::Video) > 10
    })
    .await;

    // Answerer side: a viewer already in the room when a and b join (they offer to it).
    let server = common::start(common::config()).await;
    let v = join(&server.url, "s2", "v", None, |c| {
        c.subscribe = Subscribe::Users(vec!["a".into()]);
    })
    .await;
    let a = join(
        &server.url,
        "s2",
        "a",
        Some(small(320, 240, Codec::Vp8)),
        |_| {},
    )
    .await;
    let b = join(
        &server.url,
        "s2",
        "b",
        Some(small(256, 144, Codec::Vp8)),
        |_| {},
    )
    .await;
    let (a_id, b_id) = (a.session.peer_id().unwrap(), b.session.peer_id().unwrap());
    wait_until("answering viewer decodes a", T, async || {
        v.decoded_from(&a_id, MediaKind::Video) > 20
            && v.session.connection_state(&b_id).await == Some(ConnectionState::Connected)
    })
    .await;
    assert_eq!(v.decoded_from(&b_id, MediaKind::Video), 0);
    assert!(!v.any(|e| matches!(e, SessionEvent::TrackAdded { peer_id, .. } if *peer_id == b_id)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_signalling_session_rejoins_and_rebuilds_its_peers() {
    let mut cfg = common::config();
    cfg.grace = Duration::from_millis(300);
    let server = common::start(cfg).await;
    let proxy = common::Proxy::start(server.addr).await;
    let cam = join(
        &server.url,
        "g",
        "cam",
        Some(small(320, 240, Codec::Vp8)),
        |_| {},
    )
    .await;
    // First reconnect attempt after 1.5 s: the 300 ms grace period is over by then, so the
    // resume is refused and the client joins afresh with a new peer id.
    let viewer = join(&proxy.url, "g", "viewer", None, |c| {
        c.signalling.backoff_initial = Duration::from_millis(1500);
    })
    .await;
    let cam_id = cam.session.peer_id().unwrap();
    let old_id = viewer.session.peer_id().unwrap();
    wait_for("viewer decodes", T, || {
        viewer.decoded_from(&cam_id, MediaKind::Video) > 10
    })
    .await;
    assert!(proxy.kill() >= 1);
    wait_for("viewer joined again with a new id", T, || {
        viewer.session.peer_id().is_some_and(|id| id != old_id)
            && viewer
                .events()
                .iter()
                .filter(|e| matches!(e, SessionEvent::Joined { .. }))
                .count()
                == 2
    })
    .await;
    let new_id = viewer.session.peer_id().unwrap();
    // The old peer connection was torn down and a new one built; media flows on it.
    assert!(viewer.any(|e| matches!(e, SessionEvent::PeerLeft { peer_id } if *peer_id == cam_id)));
    wait_until(
        "cam sees the old viewer leave and the new one join",
        T,
        async || {
            cam.any(|e| matches!(e, SessionEvent::PeerLeft { peer_id } if *peer_id == old_id))
                && cam.session.peers().await == vec![new_id.clone()]
        },
    )
    .await;
    let before = viewer.decoded_from(&cam_id, MediaKind::Video);
    wait_until("media on the rebuilt peer", T, async || {
        viewer.session.connection_state(&cam_id).await == Some(ConnectionState::Connected)
            && viewer.decoded_from(&cam_id, MediaKind::Video) > before + 10
    })
    .await;
}
