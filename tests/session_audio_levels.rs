//! Audio levels (RFC 6464 header extension) and the active speaker, through a real signalling
//! server on 127.0.0.1 with real webrtcbin peers: one member publishes a tone, one silence,
//! one listens. The listener's levels, stats and active speaker come only from the levels the
//! senders put in their RTP packets.
//! The same through a real Janus VideoRoom (SFU mode), whose test re-runs itself in a
//! namespace of its own with a veth pair (as `tests/session_sfu.rs`).
//! Run: unshare -n sh -c 'ip link set lo up; cargo nextest run --test session_audio_levels'

mod common;
mod janus_support;
mod netns_support;
mod session_support;

use std::time::Duration;

use session_support::{Joined, join, wait_for};
use streamwire::session::SessionEvent;
use streamwire::webrtc::MediaKind;
use streamwire::webrtc::audio_level::{ACTIVE_SPEAKER_HOLD, SILENCE_DBOV};
use streamwire::webrtc::publisher::{AudioSource, PublisherConfig, VideoSource};
use streamwire::webrtc::subscriber::MemberLevel;

const T: Duration = Duration::from_secs(30);

fn tone() -> PublisherConfig {
    PublisherConfig {
        video: VideoSource::None,
        audio: AudioSource::TestTone,
        ..PublisherConfig::default()
    }
}

fn silence() -> PublisherConfig {
    streamwire::gst_init::init().unwrap();
    let src = gst::ElementFactory::make("audiotestsrc")
        .property("is-live", true)
        .property_from_str("wave", "silence")
        .build()
        .unwrap();
    PublisherConfig {
        video: VideoSource::None,
        audio: AudioSource::Element(src),
        // Without DTX every 20 ms packet is sent, each with its level (127).
        audio_dtx: false,
        ..PublisherConfig::default()
    }
}

fn levels_of(j: &Joined) -> Vec<Vec<MemberLevel>> {
    j.events()
        .into_iter()
        .filter_map(|e| match e {
            SessionEvent::AudioLevels { levels } => Some(levels),
            _ => None,
        })
        .collect()
}

fn speakers_of(j: &Joined) -> Vec<Option<String>> {
    j.events()
        .into_iter()
        .filter_map(|e| match e {
            SessionEvent::ActiveSpeakerChanged { peer } => Some(peer),
            _ => None,
        })
        .collect()
}

fn dbov(levels: &[MemberLevel], peer: &str) -> Option<u8> {
    levels.iter().find(|m| m.peer == peer).map(|m| m.dbov)
}

/// The listener sees the tone loud and the silence quiet, in events, counters and (`stats`)
/// the stats, and names the tone member the active speaker (and never the silent one).
async fn check(listener: &Joined, tone_id: &str, silent_id: &str, stats: bool) {
    wait_for("audio decoded from both", T, || {
        listener.decoded_from(tone_id, MediaKind::Audio) > 5
            && listener.decoded_from(silent_id, MediaKind::Audio) > 5
    })
    .await;
    wait_for("levels: tone loud, silence quiet", T, || {
        levels_of(listener).iter().any(|l| {
            dbov(l, tone_id).is_some_and(|d| d < 40) && dbov(l, silent_id).is_some_and(|d| d >= 100)
        })
    })
    .await;
    // Both levels were received from the packets (not made up for a member without them).
    let counters = |p: &str| listener.session.subscriber().counters(p, MediaKind::Audio);
    let tone_level = counters(tone_id).audio_level.expect("tone level received");
    assert!(tone_level < 40, "tone at {tone_level} dBov");
    assert_eq!(counters(silent_id).audio_level, Some(SILENCE_DBOV));

    wait_for("the tone member becomes the active speaker", T, || {
        speakers_of(listener).contains(&Some(tone_id.to_owned()))
    })
    .await;
    assert_eq!(speakers_of(listener), vec![Some(tone_id.to_owned())]);

    // Through an SFU the stats are per connection (`sfu-subscribe`), not per member.
    wait_for("stats carry the tone member's level", T, || {
        !stats
            || listener.any(|e| match e {
                SessionEvent::Stats(s) => {
                    s.stats.peer == tone_id
                        && s.stats
                            .tracks
                            .iter()
                            .any(|t| t.playout.audio_level.is_some_and(|d| d < 40))
                }
                _ => false,
            })
    })
    .await;

    // Rate: at most 4 level events per second.
    let before = levels_of(listener).len();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let n = levels_of(listener).len() - before;
    assert!((8..=13).contains(&n), "{n} level events in 3 s");
}

// The waits for the active speaker allow for a hold time of at most 5 s.
const _: () = assert!(ACTIVE_SPEAKER_HOLD.as_millis() <= 5_000);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_listener_sees_the_tone_loud_the_silence_quiet_and_the_tone_speaking() {
    // The listener joins last: it offers to both (they answer with their audio).
    let server = common::start(common::config()).await;
    let a = join(&server.url, "lv", "tone", Some(tone()), |_| {}).await;
    let b = join(&server.url, "lv", "quiet", Some(silence()), |_| {}).await;
    let l = join(&server.url, "lv", "listener", None, |_| {}).await;
    let (a_id, b_id) = (a.session.peer_id().unwrap(), b.session.peer_id().unwrap());
    check(&l, &a_id, &b_id, true).await;
    // The tone member leaves: the active speaker is gone.
    a.session.leave().await;
    wait_for("no active speaker once the tone member left", T, || {
        speakers_of(&l).last() == Some(&None)
    })
    .await;
    for j in [b, l] {
        j.session.leave().await;
    }

    // The listener is already there: the publishers offer to it.
    let server = common::start(common::config()).await;
    let l = join(&server.url, "lv2", "listener", None, |_| {}).await;
    let a = join(&server.url, "lv2", "tone", Some(tone()), |_| {}).await;
    let b = join(&server.url, "lv2", "quiet", Some(silence()), |_| {}).await;
    let (a_id, b_id) = (a.session.peer_id().unwrap(), b.session.peer_id().unwrap());
    check(&l, &a_id, &b_id, true).await;
    for j in [a, b, l] {
        j.session.leave().await;
    }
}

#[test]
fn through_janus_the_listener_sees_the_same() {
    use janus_support::{CLIENT_ADDR, Janus};
    if !netns_support::isolated("through_janus_the_listener_sees_the_same") {
        return;
    }
    janus_support::veth();
    let janus = Janus::start("40000-40100");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut cfg = common::config();
        cfg.sfu = Some(janus.sfu_config());
        let server = common::start(cfg).await;
        let on_veth = |c: &mut streamwire::session::SessionConfig| {
            c.local_addresses = vec![CLIENT_ADDR.to_owned()];
        };
        let a = join(&server.url, "ls", "tone", Some(tone()), on_veth).await;
        let b = join(&server.url, "ls", "quiet", Some(silence()), on_veth).await;
        let l = join(&server.url, "ls", "listener", None, on_veth).await;
        let (a_id, b_id) = (a.session.peer_id().unwrap(), b.session.peer_id().unwrap());
        check(&l, &a_id, &b_id, false).await;
        for j in [a, b, l] {
            j.session.leave().await;
        }
    });
}
