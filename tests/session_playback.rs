//! Played audio in a session: every received track is mixed into one standing playback path
//! whose far-end reference (`webrtcechoprobe`) exists before the publisher's `webrtcdsp`
//! starts, so a microphone publisher with echo cancellation joins a mesh call, and the
//! reference carries every remote member. Three sessions through a real signalling server on
//! 127.0.0.1: the listener publishes a processed "microphone" (300 Hz), two members send
//! 440 Hz and 1000 Hz; the listener's audio dump shows the far-end reference holding both.
//! Run: unshare -n sh -c 'ip link set lo up; cargo nextest run --test session_playback'

mod common;
mod session_support;
mod tone_support;

use std::time::Duration;

use session_support::{join, wait_for};
use streamwire::webrtc::MediaKind;
use streamwire::webrtc::publisher::{AudioSource, PublisherConfig, VideoSource};
use streamwire::webrtc::subscriber::{AudioOutput, SubscriberConfig};
use tone_support::energy_at;

const T: Duration = Duration::from_secs(30);

fn tone(freq: f64) -> gst::Element {
    streamwire::gst_init::init().unwrap();
    gst::ElementFactory::make("audiotestsrc")
        .property("is-live", true)
        .property("freq", freq)
        .property("volume", 0.3f64)
        .property_from_str("wave", "sine")
        .build()
        .unwrap()
}

fn sends(freq: f64) -> PublisherConfig {
    PublisherConfig {
        video: VideoSource::None,
        audio: AudioSource::Element(tone(freq)),
        ..PublisherConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_remote_member_reaches_the_far_end_reference() {
    let server = common::start(common::config()).await;
    let mic = PublisherConfig {
        video: VideoSource::None,
        audio: AudioSource::MicrophoneElement {
            element: tone(300.0),
            echo_probe: Some("far".into()),
        },
        ..PublisherConfig::default()
    };
    // Before the standing path, this join failed: the DSP started before any probe existed.
    let listener = join(&server.url, "call", "listener", Some(mic), |cfg| {
        cfg.output = SubscriberConfig {
            audio: AudioOutput::Play {
                echo_probe: Some("far".into()),
            },
            ..SubscriberConfig::default()
        };
    })
    .await;
    let a = join(&server.url, "call", "a", Some(sends(440.0)), |_| {}).await;
    let b = join(&server.url, "call", "b", Some(sends(1000.0)), |_| {}).await;
    let (a_id, b_id) = (a.session.peer_id().unwrap(), b.session.peer_id().unwrap());
    let start = std::time::Instant::now();
    while !(listener.decoded_from(&a_id, MediaKind::Audio) > 20
        && listener.decoded_from(&b_id, MediaKind::Audio) > 20)
    {
        assert!(
            start.elapsed() < T,
            "the listener decoded {} and {} audio buffers: {:?}",
            listener.decoded_from(&a_id, MediaKind::Audio),
            listener.decoded_from(&b_id, MediaKind::Audio),
            listener.events()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let dir = tempfile::tempdir().unwrap();
    let dump = dir.path().join("dump");
    listener
        .session
        .start_audio_dump(&dump)
        .await
        .expect("dump starts");
    tokio::time::sleep(Duration::from_secs(2)).await;
    listener
        .session
        .stop_audio_dump()
        .await
        .expect("dump stops");
    let read = |name: &str| -> Vec<i16> {
        let mut r = hound::WavReader::open(dump.join(name)).expect(name);
        r.samples::<i16>().map(Result::unwrap).collect()
    };
    let far = read("far-end.wav");
    assert!(far.len() > 48_000, "{} far-end samples", far.len());
    // The last second: both remote tones, far above a frequency nobody sends.
    let tail = &far[far.len() - 48_000..];
    let quiet = energy_at(tail, 700.0);
    for f in [440.0, 1000.0] {
        let e = energy_at(tail, f);
        assert!(
            e > 100.0 * quiet,
            "{f} Hz: {e:.3e} against {quiet:.3e} at 700 Hz"
        );
    }
    // The listener's own voice is not in the reference.
    assert!(energy_at(tail, 300.0) < energy_at(tail, 440.0) / 100.0);

    // A member leaving gives its mixer input back; the other stays in the reference.
    b.session.leave().await;
    wait_for("b to leave", T, || {
        listener.any(|e| {
            matches!(e, streamwire::session::SessionEvent::PeerLeft { peer_id, .. } if *peer_id == b_id)
        })
    })
    .await;
    // The mixer's input for b goes with its branch.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let dump2 = dir.path().join("dump2");
    listener.session.start_audio_dump(&dump2).await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    listener.session.stop_audio_dump().await.unwrap();
    let mut r = hound::WavReader::open(dump2.join("far-end.wav")).unwrap();
    let far2: Vec<i16> = r.samples::<i16>().map(Result::unwrap).collect();
    let tail = &far2[far2.len().saturating_sub(48_000)..];
    let quiet = energy_at(tail, 700.0);
    assert!(energy_at(tail, 440.0) > 100.0 * quiet, "a still heard");
    assert!(
        energy_at(tail, 1000.0) < energy_at(tail, 440.0) / 100.0,
        "b gone"
    );
    drop(a);
}
