//! Stats every interval per peer and track, a quality score that reacts to loss, and JSON.
//! Run: unshare -n sh -c 'ip link set lo up; cargo test --test webrtc_stats'

mod webrtc_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use streamwire::webrtc::MediaKind;
use streamwire::webrtc::publisher::PublisherConfig;
use streamwire::webrtc::stats::{Direction, StatsCollector, StatsEvent};
use streamwire::webrtc::subscriber::SubscriberConfig;
use tokio::sync::mpsc::UnboundedReceiver;
use webrtc_support::{Endpoint, connect_pair, police_incoming, wait_for};

async fn next(rx: &mut UnboundedReceiver<StatsEvent>) -> StatsEvent {
    tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("a stats event within 5 s")
        .expect("collector alive")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_report_rates_sizes_rtt_and_quality() {
    let viewer = Endpoint::new("viewer", None, SubscriberConfig::default());
    let camera = Endpoint::new(
        "camera",
        Some(PublisherConfig {
            width: 320,
            height: 240,
            ..PublisherConfig::default()
        }),
        SubscriberConfig::default(),
    );
    let (pv, pc, _e1, _e2) = connect_pair(&viewer, &camera, &[], |_| {});
    wait_for("frames", Duration::from_secs(20), || {
        viewer
            .subscriber
            .counters("camera", MediaKind::Video)
            .decoded
            > 10
    })
    .await;

    let interval = Duration::from_millis(1000);
    let (rx_collector, mut rx_events) =
        StatsCollector::start(interval, None, Some(viewer.subscriber.clone()));
    rx_collector.watch(&pv);
    let (tx_collector, mut tx_events) =
        StatsCollector::start(interval, camera.publisher.clone(), None);
    tx_collector.watch(&pc);

    // Skip the first sample (no rates yet), then check a clean-link sample.
    let _ = next(&mut rx_events).await;
    let _ = next(&mut tx_events).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rx = next(&mut rx_events).await.stats;
    // RTT needs an RTCP receiver report (randomised RTCP intervals, several seconds apart on a
    // loaded machine): wait for a sample that has one, bounded in time rather than in samples,
    // since samples queued while the receiver side was read arrive in a burst.
    let mut tx = next(&mut tx_events).await.stats;
    let rtt_deadline = std::time::Instant::now() + Duration::from_secs(25);
    while tx.rtt_ms.is_none() && std::time::Instant::now() < rtt_deadline {
        tx = next(&mut tx_events).await.stats;
    }
    eprintln!("{}\n{}", rx.status_line(), tx.status_line());

    let video_in = rx
        .tracks
        .iter()
        .find(|t| t.direction == Direction::Receive && t.kind == Some(MediaKind::Video))
        .expect("a received video track");
    assert_eq!((video_in.width, video_in.height), (Some(320), Some(240)));
    let fps = video_in.fps.expect("fps");
    // The machine is shared: only require that frames flow at a plausible rate.
    assert!((3.0..=40.0).contains(&fps), "receive fps {fps}");
    assert!(
        video_in.bitrate_kbps > 50.0,
        "video in {} kbit/s",
        video_in.bitrate_kbps
    );
    assert!(
        rx.tracks
            .iter()
            .any(|t| t.direction == Direction::Receive && t.kind == Some(MediaKind::Audio)),
        "a received audio track"
    );
    assert_eq!(rx.quality, 5, "clean loopback: {rx:?}");

    let video_out = tx
        .tracks
        .iter()
        .find(|t| t.direction == Direction::Send && t.kind == Some(MediaKind::Video))
        .expect("a sent video track");
    assert!(video_out.bitrate_kbps > 50.0);
    assert!(tx.send_kbps >= video_out.bitrate_kbps);
    let rtt = tx.rtt_ms.expect("RTT from receiver reports");
    assert!(rtt < 100.0, "loopback RTT {rtt} ms");
    assert!(tx.estimated_kbps.is_some(), "congestion estimate present");

    // JSON for the CLI / apps.
    let json = serde_json::to_value(&rx).unwrap();
    assert_eq!(json["peer"], "camera");
    assert!(json["tracks"][0]["bitrate_kbps"].is_number());
    assert!(json["quality"].is_u64());

    // Heavy loss: the score drops.
    let limit = Arc::new(AtomicU32::new(0));
    assert!(police_incoming(&pv, limit.clone()));
    limit.store(150, Ordering::Relaxed);
    // Receive counters move at RTCP intervals: allow a few samples (bounded).
    let mut worst = 5;
    for _ in 0..12 {
        let s = next(&mut rx_events).await.stats;
        worst = worst.min(s.quality);
        eprintln!("impaired: {}", s.status_line());
        if worst <= 3 {
            break;
        }
    }
    assert!(worst <= 3, "quality under heavy loss was {worst}");
}
