//! Frame callbacks set in the session's configuration: they see every frame from the first,
//! the decoded-frame callback is not held back by a clock-synchronised sink, and a sample
//! callback that could never fire is refused. Real server on 127.0.0.1, real webrtcbin peers.
//! Run: unshare -n sh -c 'ip link set lo up; cargo test --test session_callbacks'

mod common;
mod session_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use session_support::{join, small, wait_for};
use streamwire::encoder::Codec;
use streamwire::session::{Session, SessionConfig, SessionError};
use streamwire::webrtc::subscriber::{SubscriberConfig, VideoOutput};
use streamwire::webrtc::{MediaKind, WebrtcError};

const T: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callbacks_in_the_config_see_every_frame_and_decoding_runs_ahead_of_a_synchronised_sink() {
    let server = common::start(common::config()).await;
    let decoded = Arc::new(AtomicU64::new(0));
    let sampled = Arc::new(AtomicU64::new(0));
    // Largest lead of decoded over rendered frames seen at a rendered frame.
    let lead = Arc::new(AtomicU64::new(0));
    let output = SubscriberConfig {
        video: VideoOutput::AppSink,
        sync: true,
        on_decoded_video: Some({
            let decoded = decoded.clone();
            Arc::new(move |_, _, _| {
                decoded.fetch_add(1, Ordering::Relaxed);
            })
        }),
        on_video_sample: Some({
            let (decoded, sampled, lead) = (decoded.clone(), sampled.clone(), lead.clone());
            Arc::new(move |_, _| {
                let s = sampled.fetch_add(1, Ordering::Relaxed) + 1;
                let d = decoded.load(Ordering::Relaxed);
                lead.fetch_max(d.saturating_sub(s), Ordering::Relaxed);
            })
        }),
        ..SubscriberConfig::default()
    };
    // 500 ms of jitter buffer: the synchronised appsink shows each frame about half a second
    // after it was decoded, so about 15 frames (30 fps) are decoded and waiting. Were the
    // decoder held back by the sink, it could run at most a frame or two ahead.
    let viewer = join(&server.url, "r", "viewer", None, |cfg| {
        cfg.output = output;
        cfg.jitter_buffer = streamwire::webrtc::repair::JitterBuffer::Fixed(500);
        cfg.data_channel = false;
    })
    .await;
    let camera = join(
        &server.url,
        "r",
        "camera",
        Some(small(320, 240, Codec::Vp8)),
        |cfg| cfg.data_channel = false,
    )
    .await;
    let cam_id = camera.session.peer_id().unwrap();
    wait_for("60 frames shown by the synchronised appsink", T, || {
        sampled.load(Ordering::Relaxed) >= 60
    })
    .await;
    assert!(
        lead.load(Ordering::Relaxed) >= 6,
        "decoding ran at most {} frames ahead of the synchronised sink",
        lead.load(Ordering::Relaxed)
    );
    // The decoded-frame callback was in place for the first frame: it counted exactly what
    // the subscriber's own counter did (both at the decoder's output).
    camera.session.leave().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        decoded.load(Ordering::Relaxed),
        viewer.decoded_from(&cam_id, MediaKind::Video)
    );
    viewer.session.leave().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sample_callback_without_the_appsink_output_is_refused() {
    let server = common::start(common::config()).await;
    let token = common::token("r", "viewer", &common::all());
    let mut cfg = SessionConfig::loopback(&server.url, "r", &token);
    cfg.output = SubscriberConfig {
        video: VideoOutput::Discard,
        on_video_sample: Some(Arc::new(|_, _| {})),
        ..SubscriberConfig::default()
    };
    let err = Session::join(cfg).await.unwrap_err();
    assert!(
        matches!(
            &err,
            SessionError::Media(WebrtcError::Config {
                field: "on_video_sample",
                ..
            })
        ),
        "{err}"
    );
    assert!(err.to_string().contains("VideoOutput::AppSink"), "{err}");
    assert_eq!(server.handle.stats().sessions, 0, "refused before joining");

    // The setter refuses it too, instead of never calling the callback.
    let joined = join(&server.url, "r", "viewer", None, |_| {}).await;
    let err = joined
        .session
        .subscriber()
        .on_video_sample(|_, _| {})
        .unwrap_err();
    assert!(err.to_string().contains("on_video_sample"), "{err}");
    joined.session.leave().await;
}
