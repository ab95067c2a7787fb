//! The shared encoder's bitrate follows Google Congestion Control (rtpgccbwe over TWCC):
//! it backs off when the link is impaired and recovers when the impairment ends.
//! The impairment is a token-bucket policer on the receiver's ICE transport (packets dropped
//! before SRTP/rtpsession count as network loss in the transport-wide feedback).
//! Run: unshare -n sh -c 'ip link set lo up; cargo test --test webrtc_congestion'

mod webrtc_support;

use parking_lot::Mutex;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use streamwire::webrtc::MediaKind;
use streamwire::webrtc::peer::PeerEvent;
use streamwire::webrtc::publisher::PublisherConfig;
use streamwire::webrtc::subscriber::SubscriberConfig;
use webrtc_support::{Endpoint, connect_pair, police_incoming, wait_for};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bitrate_backs_off_under_impairment_and_recovers() {
    streamwire::gst_init::init().unwrap();
    let limit = Arc::new(AtomicU32::new(0));
    let receiver = Endpoint::new("viewer", None, SubscriberConfig::default());
    let sender = Endpoint::new(
        "camera",
        Some(PublisherConfig {
            width: 640,
            height: 360,
            start_kbps: 1200,
            floor_kbps: 100,
            ceiling_kbps: 2000,
            ..PublisherConfig::default()
        }),
        SubscriberConfig::default(),
    );
    let publisher = sender.publisher.clone().unwrap();
    let history = Arc::new(Mutex::new(Vec::new()));
    let h = history.clone();
    publisher.on_bitrate_change(move |c| h.lock().push(c.kbps));

    let (pv, pc, _ev, mut ec) = connect_pair(&receiver, &sender, &[], |_| {});
    wait_for("first frames", Duration::from_secs(20), || {
        receiver
            .subscriber
            .counters("camera", MediaKind::Video)
            .decoded
            > 10
    })
    .await;
    // The congestion controller reports estimates.
    let got_estimate = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(ev) = ec.recv().await {
            if let PeerEvent::EstimatedBitrate { bps, .. } = ev {
                return bps;
            }
        }
        0
    })
    .await
    .expect("an estimate within 10 s");
    assert!(got_estimate > 0);

    // Clean link for a few seconds: bitrate should be well above the impaired level.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let clean = publisher.video_bitrate_kbps().unwrap();
    eprintln!(
        "clean-link bitrate {clean} kbit/s, estimate {:?}",
        pc.estimated_bitrate()
    );
    assert!(clean >= 600, "clean-link bitrate {clean} kbit/s");

    // Impair: police the link to 300 kbit/s.
    assert!(
        police_incoming(&pv, limit.clone()),
        "receiver has an ICE transport"
    );
    limit.store(300, Ordering::Relaxed);
    let backoff = wait_for("bitrate to back off", Duration::from_secs(20), || {
        publisher.video_bitrate_kbps().unwrap() <= 350
    })
    .await;
    let impaired = publisher.video_bitrate_kbps().unwrap();
    eprintln!("backed off to {impaired} kbit/s after {backoff:?}");

    // Lift the impairment: the bitrate climbs again.
    limit.store(0, Ordering::Relaxed);
    let recovery = wait_for("bitrate to recover", Duration::from_secs(40), || {
        publisher.video_bitrate_kbps().unwrap() >= impaired * 2
    })
    .await;
    eprintln!(
        "recovered to {} kbit/s after {recovery:?}; changes: {:?}",
        publisher.video_bitrate_kbps().unwrap(),
        history.lock()
    );
    // Frames kept flowing throughout.
    let before = receiver
        .subscriber
        .counters("camera", MediaKind::Video)
        .decoded;
    wait_for("frames after recovery", Duration::from_secs(5), || {
        receiver
            .subscriber
            .counters("camera", MediaKind::Video)
            .decoded
            > before + 30
    })
    .await;
    if std::env::var_os("DUMP_STATS").is_some() {
        eprintln!("{:#?}", pc.raw_stats(Duration::from_secs(2)));
        eprintln!("{:#?}", pv.raw_stats(Duration::from_secs(2)));
    }
}
