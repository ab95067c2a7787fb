//! Publishing after join and unpublishing without leaving (renegotiation), through a real
//! signalling server on 127.0.0.1 with real webrtcbin peers, in both join orders (the late
//! publisher being the pair's offerer, then its answerer): the other side decodes the new
//! frames at the expected size while media in the other direction keeps flowing; unpublish
//! gives the other side `TrackRemoved` and stops the frames; publishing again works.
//! Run: unshare -n sh -c 'ip link set lo up; cargo test --test session_publish'

mod common;
mod session_support;

use std::time::{Duration, Instant};

use session_support::{Joined, join, small, wait_for};
use streamwire::encoder::Codec;
use streamwire::session::{SessionError, SessionEvent};
use streamwire::webrtc::MediaKind;
use streamwire::webrtc::peer::Role;
use streamwire::webrtc::stats::Direction;

const T: Duration = Duration::from_secs(30);

fn size(j: &Joined, from: &str) -> (i32, i32) {
    let c = j.session.subscriber().counters(from, MediaKind::Video);
    (c.width, c.height)
}

fn count(j: &Joined, f: impl Fn(&SessionEvent) -> bool) -> usize {
    j.events().iter().filter(|e| f(e)).count()
}

/// Events without stats and receive details, for failure messages.
fn brief(j: &Joined) -> Vec<SessionEvent> {
    j.events()
        .into_iter()
        .filter(|e| !matches!(e, SessionEvent::Stats(_) | SessionEvent::Receive(_)))
        .collect()
}

/// Wait (bounded) until `done` holds while checking, every 50 ms, that `watcher` keeps
/// decoding video from `from`: returns the longest time without a new frame.
async fn longest_stall_while(
    what: &str,
    watcher: &Joined,
    other: &Joined,
    from: &str,
    mut done: impl FnMut() -> bool,
) -> Duration {
    let start = Instant::now();
    let mut last = watcher.decoded_from(from, MediaKind::Video);
    let mut last_change = Instant::now();
    let mut longest = Duration::ZERO;
    loop {
        let now = watcher.decoded_from(from, MediaKind::Video);
        if now != last {
            last = now;
            last_change = Instant::now();
        }
        longest = longest.max(last_change.elapsed());
        if done() {
            return longest;
        }
        assert!(
            start.elapsed() < T,
            "timed out after {T:?} waiting for {what}; events of the watcher: {:?}; of the other side: {:?}",
            brief(watcher),
            brief(other)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `late` joined receive-only and `cam` publishes 256x144 H.264; `late` then publishes
/// 320x240 VP8, unpublishes and publishes again, with `late` in `late_role` for the pair.
async fn publish_after_join(late: Joined, cam: Joined, late_role: Role) {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .try_init();
    let late_id = late.session.peer_id().unwrap();
    let cam_id = cam.session.peer_id().unwrap();
    wait_for("the receive-only peer decodes the camera", T, || {
        late.decoded_from(&cam_id, MediaKind::Video) > 10
    })
    .await;
    assert_eq!(size(&late, &cam_id), (256, 144));
    assert!(late.session.publisher().await.is_none());
    assert_eq!(cam.decoded_from(&late_id, MediaKind::Video), 0);
    // Nothing published yet: unpublish is a clear error.
    let err = late.session.unpublish().await.unwrap_err();
    assert!(matches!(err, SessionError::Publishing(_)), "{err}");

    // 1. Publish after join: the camera side decodes the new track, while the late side
    //    keeps decoding the camera through the renegotiation.
    late.session
        .publish(small(320, 240, Codec::Vp8))
        .await
        .expect("publish after join");
    assert!(late.session.publisher().await.is_some());
    let stall = longest_stall_while(
        "the camera side decodes the late publisher",
        &late,
        &cam,
        &cam_id,
        || cam.decoded_from(&late_id, MediaKind::Video) > 30,
    )
    .await;
    assert!(
        stall < Duration::from_secs(1),
        "the camera's frames stalled for {stall:?} at the late publisher during renegotiation"
    );
    assert_eq!(size(&cam, &late_id), (320, 240));
    wait_for("audio from the late publisher", T, || {
        cam.decoded_from(&late_id, MediaKind::Audio) > 5
    })
    .await;
    assert!(cam.any(|e| matches!(e, SessionEvent::TrackAdded { peer_id, kind: MediaKind::Video, codec } if *peer_id == late_id && codec == "VP8")));
    assert!(
        cam.any(
            |e| matches!(e, SessionEvent::TrackPublished { peer_id, .. } if *peer_id == late_id)
        )
    );
    assert_eq!(size(&late, &cam_id), (256, 144));
    // The late publisher's own stats describe what it now sends (size from the publisher
    // added after join, a real sent bitrate).
    wait_for("the late publisher's stats of its sent video", T, || {
        late.any(|e| {
            matches!(e, SessionEvent::Stats(s) if s.stats.tracks.iter().any(|t| {
                t.direction == Direction::Send
                    && t.kind == Some(MediaKind::Video)
                    && (t.width, t.height) == (Some(320), Some(240))
                    && t.bitrate_kbps > 0.0
            }))
        })
    })
    .await;
    // Publishing twice is refused.
    let err = late
        .session
        .publish(small(320, 240, Codec::Vp8))
        .await
        .unwrap_err();
    assert!(matches!(err, SessionError::Publishing(_)), "{err}");
    assert_eq!(
        late.session.connection_state(&cam_id).await,
        Some(streamwire::webrtc::peer::ConnectionState::Connected)
    );
    let role = if late_role == Role::Offerer {
        "offerer"
    } else {
        "answerer"
    };
    assert!(
        !late.any(|e| matches!(e, SessionEvent::Error { .. }))
            && !cam.any(|e| matches!(e, SessionEvent::Error { .. })),
        "no session errors with the late publisher as {role}: {:?} / {:?}",
        late.events()
            .into_iter()
            .filter(|e| matches!(e, SessionEvent::Error { .. }))
            .collect::<Vec<_>>(),
        cam.events()
            .into_iter()
            .filter(|e| matches!(e, SessionEvent::Error { .. }))
            .collect::<Vec<_>>()
    );

    // 2. Unpublish: the camera side gets TrackRemoved and no more frames; the camera's
    //    frames keep reaching the late side.
    late.session.unpublish().await.expect("unpublish");
    assert!(late.session.publisher().await.is_none());
    let stall = longest_stall_while("TrackRemoved at the camera side", &late, &cam, &cam_id, || {
        cam.any(|e| matches!(e, SessionEvent::TrackRemoved { peer_id, kind: MediaKind::Video } if *peer_id == late_id))
            && cam.any(|e| matches!(e, SessionEvent::TrackRemoved { peer_id, kind: MediaKind::Audio } if *peer_id == late_id))
    })
    .await;
    assert!(
        stall < Duration::from_secs(1),
        "camera frames stalled {stall:?}"
    );
    assert!(cam.any(
        |e| matches!(e, SessionEvent::TrackUnpublished { peer_id, .. } if *peer_id == late_id)
    ));
    let after_removed = cam.decoded_from(&late_id, MediaKind::Video);
    let before = late.decoded_from(&cam_id, MediaKind::Video);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        cam.decoded_from(&late_id, MediaKind::Video),
        after_removed,
        "frames from the unpublished track still arrive"
    );
    assert!(
        late.decoded_from(&cam_id, MediaKind::Video) > before + 20,
        "the camera's frames keep arriving after the unpublish"
    );
    assert!(
        late.session.peers().await.contains(&cam_id),
        "still in the room"
    );

    // 3. Publish again: a new track, decoded again.
    late.session
        .publish(small(320, 240, Codec::Vp8))
        .await
        .expect("publish again");
    wait_for("frames from the second publish", T, || {
        cam.decoded_from(&late_id, MediaKind::Video) > after_removed + 30
    })
    .await;
    assert_eq!(size(&cam, &late_id), (320, 240));
    wait_for("a second TrackAdded", T, || {
        count(&cam, |e| matches!(e, SessionEvent::TrackAdded { peer_id, kind: MediaKind::Video, .. } if *peer_id == late_id)) >= 2
    })
    .await;
    assert!(late.decoded_from(&cam_id, MediaKind::Video) > before + 20);
    late.session.leave().await;
    cam.session.leave().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_publisher_joined_first_is_the_answerer() {
    let server = common::start(common::config()).await;
    // Joined first: the camera (joining later) offers to it.
    let late = join(&server.url, "p", "late", None, |_| {}).await;
    let cam = join(
        &server.url,
        "p",
        "cam",
        Some(small(256, 144, Codec::H264)),
        |_| {},
    )
    .await;
    publish_after_join(late, cam, Role::Answerer).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_publisher_joined_last_is_the_offerer() {
    let server = common::start(common::config()).await;
    let cam = join(
        &server.url,
        "p",
        "cam",
        Some(small(256, 144, Codec::H264)),
        |_| {},
    )
    .await;
    let late = join(&server.url, "p", "late", None, |_| {}).await;
    publish_after_join(late, cam, Role::Offerer).await;
}
