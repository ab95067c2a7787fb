//! An application publishes its own frames (an `appsrc`, `VideoSource::Element`) through a
//! `Session`; a second session, joined to the same real signalling server on 127.0.0.1, decodes
//! them into an `appsink` and sees the size and colour the application pushed.
//! Run: unshare -n sh -c 'ip link set lo up; cargo test --test session_appsrc'

mod common;
mod session_support;

use parking_lot::Mutex;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use gst::prelude::*;
use gst_video::prelude::*;
use session_support::{join, wait_for};
use streamwire::encoder::Codec;
use streamwire::session::SessionEvent;
use streamwire::webrtc::MediaKind;
use streamwire::webrtc::publisher::{AudioSource, PublisherConfig, VideoSource};
use streamwire::webrtc::subscriber::{SubscriberConfig, VideoOutput};

const W: i32 = 352;
const H: i32 = 288;
/// A saturated green in BT.601 limited-range YUV.
const YUV: [u8; 3] = [145, 54, 34];
const T: Duration = Duration::from_secs(30);

/// A decoded frame: width, height, centre (Y, U, V).
type Seen = (i32, i32, [u8; 3]);

/// Push solid-colour I420 frames at 30 fps until `stop` (at most 60 s); returns frames pushed.
fn pusher(src: gst_app::AppSrc, stop: Arc<AtomicBool>, pushed: Arc<AtomicU64>) {
    let info = gst_video::VideoInfo::builder(gst_video::VideoFormat::I420, W as u32, H as u32)
        .fps(gst::Fraction::new(30, 1))
        .build()
        .unwrap();
    let started = Instant::now();
    let mut next = started;
    while !stop.load(Ordering::Relaxed) && started.elapsed() < Duration::from_secs(60) {
        let mut buffer = gst::Buffer::with_size(info.size()).unwrap();
        {
            let buf = buffer.get_mut().unwrap();
            let mut frame = gst_video::VideoFrameRef::from_buffer_ref_writable(buf, &info).unwrap();
            for plane in 0..3u32 {
                frame
                    .plane_data_mut(plane)
                    .unwrap()
                    .fill(YUV[plane as usize]);
            }
        }
        if src.push_buffer(buffer).is_err() {
            break; // flushing / stopped
        }
        pushed.fetch_add(1, Ordering::Relaxed);
        next += Duration::from_millis(33);
        if let Some(d) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(d);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_frames_through_appsrc_arrive_with_their_size_and_colour() {
    streamwire::gst_init::init().unwrap();
    let server = common::start(common::config()).await;

    let caps = gst_video::VideoInfo::builder(gst_video::VideoFormat::I420, W as u32, H as u32)
        .fps(gst::Fraction::new(30, 1))
        .build()
        .unwrap()
        .to_caps()
        .unwrap();
    let appsrc = gst_app::AppSrc::builder()
        .caps(&caps)
        .is_live(true)
        .do_timestamp(true)
        .format(gst::Format::Time)
        .build();
    let publish = PublisherConfig {
        video: VideoSource::Element(appsrc.clone().upcast()),
        audio: AudioSource::None,
        codec: Codec::Vp8,
        width: W,
        height: H,
        start_kbps: 600,
        ..PublisherConfig::default()
    };
    let app = join(&server.url, "r", "app", Some(publish), |_| {}).await;
    let stop = Arc::new(AtomicBool::new(false));
    let pushed = Arc::new(AtomicU64::new(0));
    let thread = {
        let (stop, pushed) = (stop.clone(), pushed.clone());
        std::thread::spawn(move || pusher(appsrc, stop, pushed))
    };

    // Every frame the viewer's appsink got, from the first: the callback is in the
    // configuration, so it is in place before the track is linked.
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let on_sample = {
        let seen = seen.clone();
        move |_peer: &str, sample: &gst::Sample| {
            let (Some(caps), Some(buffer)) = (sample.caps(), sample.buffer()) else {
                return;
            };
            let Ok(info) = gst_video::VideoInfo::from_caps(caps) else {
                return;
            };
            let Ok(frame) = gst_video::VideoFrameRef::from_buffer_ref_readable(buffer, &info)
            else {
                return;
            };
            let (w, h) = (info.width() as usize, info.height() as usize);
            let px = |plane: u32, x: usize, y: usize| {
                let stride = frame.plane_stride()[plane as usize] as usize;
                frame
                    .plane_data(plane)
                    .map(|d| d[y * stride + x])
                    .unwrap_or(0)
            };
            let yuv = [
                px(0, w / 2, h / 2),
                px(1, w / 4, h / 4),
                px(2, w / 4, h / 4),
            ];
            seen.lock().push((w as i32, h as i32, yuv));
        }
    };
    let viewer = join(&server.url, "r", "viewer", None, |cfg| {
        cfg.output = SubscriberConfig {
            video: VideoOutput::AppSink,
            on_video_sample: Some(Arc::new(on_sample)),
            ..SubscriberConfig::default()
        };
    })
    .await;

    let app_id = app.session.peer_id().unwrap();
    wait_for("60 app frames decoded by the viewer", T, || {
        viewer.decoded_from(&app_id, MediaKind::Video) >= 60
    })
    .await;
    wait_for("frames at the viewer's appsink", T, || {
        seen.lock().len() >= 30
    })
    .await;
    stop.store(true, Ordering::Relaxed);

    let frames = seen.lock().clone();
    for (w, h, yuv) in &frames {
        assert_eq!((*w, *h), (W, H), "decoded size");
        for (got, want) in yuv.iter().zip(YUV) {
            assert!(
                got.abs_diff(want) <= 12,
                "decoded colour {yuv:?}, pushed {YUV:?}"
            );
        }
    }
    assert!(pushed.load(Ordering::Relaxed) >= 60);
    assert!(viewer.any(|e| matches!(
        e,
        SessionEvent::TrackAdded { peer_id, kind: MediaKind::Video, codec } if *peer_id == app_id && codec == "VP8"
    )));
    // The app's frames are what the publisher encoded: no frames invented upstream.
    let encoded = app
        .session
        .publisher()
        .await
        .unwrap()
        .video_frame_counts()
        .0;
    assert!(
        encoded <= pushed.load(Ordering::Relaxed),
        "encoded {encoded} > pushed {}",
        pushed.load(Ordering::Relaxed)
    );

    viewer.session.leave().await;
    app.session.leave().await;
    thread.join().unwrap();
}
