//! Rooms through a real Janus VideoRoom (SFU mode): three Rust sessions receive each other's
//! video and audio through the SFU; a member without `publish` is refused by the server when
//! it offers to publish, and still receives everybody; a subscriber's keyframe request (RTCP
//! PLI) reaches the publisher through Janus.
//! Run: unshare -n sh -c 'ip link set lo up; cargo test --test session_sfu'
//! (each test re-runs itself in a namespace of its own, where it adds a veth pair: Janus
//! gathers no ICE candidates on loopback).

mod common;
mod janus_support;
mod netns_support;
mod session_support;

use std::time::Duration;

use janus_support::{Janus, on_veth};
use netns_support::isolated;
use session_support::{Joined, join, join_as, small};
use streamwire::encoder::Codec;
use streamwire::server::sfu::TopologyChoice;
use streamwire::session::SessionEvent;
use streamwire::signalling::protocol::{Grant, ServerMsg};
use streamwire::webrtc::MediaKind;
use streamwire::webrtc::peer::ConnectionState;

const T: Duration = Duration::from_secs(40);
/// Keyframe requests a subscriber makes in `a_subscribers_keyframe_request_reaches_the_publisher`.
const REQUESTS: usize = 5;

fn size(j: &Joined, from: &str) -> (i32, i32) {
    let c = j.session.subscriber().counters(from, MediaKind::Video);
    (c.width, c.height)
}

async fn sfu_server(janus: &Janus) -> common::TestServer {
    let mut cfg = common::config();
    cfg.sfu = Some(janus.sfu_config());
    common::start(cfg).await
}

#[test]
fn three_sessions_through_janus() {
    if !isolated("three_sessions_through_janus") {
        return;
    }
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .try_init();
    janus_support::veth();
    let janus = Janus::start("40000-40100");
    janus_support::runtime().block_on(async {
        let server = sfu_server(&janus).await;
        let url = server.url.clone();
        let ann = join(&url, "s", "ann", Some(small(320, 240, Codec::Vp8)), on_veth).await;
        let ben = join(&url, "s", "ben", Some(small(256, 144, Codec::Vp8)), on_veth).await;
        let cat = join(&url, "s", "cat", Some(small(176, 144, Codec::Vp8)), on_veth).await;
        let (a, b, c) = (
            ann.session.peer_id().unwrap(),
            ben.session.peer_id().unwrap(),
            cat.session.peer_id().unwrap(),
        );
        let pairs = [
            (&ann, &b),
            (&ann, &c),
            (&ben, &a),
            (&ben, &c),
            (&cat, &a),
            (&cat, &b),
        ];
        session_support::wait_for("each decodes the other two", T, || {
            pairs
                .iter()
                .all(|(j, from)| j.decoded_from(from, MediaKind::Video) > 10)
        })
        .await;
        assert_eq!(size(&ben, &a), (320, 240));
        assert_eq!(size(&cat, &a), (320, 240));
        assert_eq!(size(&ann, &b), (256, 144));
        assert_eq!(size(&cat, &b), (256, 144));
        assert_eq!(size(&ann, &c), (176, 144));
        assert_eq!(size(&ben, &c), (176, 144));
        session_support::wait_for("audio everywhere", T, || {
            pairs
                .iter()
                .all(|(j, from)| j.decoded_from(from, MediaKind::Audio) > 5)
        })
        .await;
        // One publishing connection and one subscribing connection each, whatever the size.
        for j in [&ann, &ben, &cat] {
            assert_eq!(
                j.session.subscriber().counters("sfu-subscribe", MediaKind::Video).decoded,
                0,
                "every track is counted under its member, not the pseudo-peer"
            );
        }

        // A member without `publish`: the server refuses its offer to the SFU (nothing of
        // it reaches Janus), and it still receives everybody.
        let token = common::token("s", "dan", &[Grant::Subscribe, Grant::Message]);
        let (mut raw, w) = common::Raw::join(&url, "s", &token).await;
        assert!(matches!(w, ServerMsg::Welcome { .. }));
        let sdp = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n\
                   m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:0\r\na=sendonly\r\na=rtpmap:96 VP8/90000\r\n";
        raw.send_json(serde_json::json!({"type": "offer", "to": "sfu-publish", "sdp": sdp}))
            .await;
        let (code, in_type, field, message) = raw.error().await;
        assert_eq!(code, "forbidden", "{message}");
        assert_eq!(in_type.as_deref(), Some("offer"));
        assert_eq!(field.as_deref(), Some("sdp"));
        assert!(message.contains("`publish` grant"), "{message}");
        // (dan's session stays in the room for its resume grace period.)
        let d = raw.peer_id.clone();
        drop(raw);

        let eve = join_as(
            &url,
            "s",
            "eve",
            &[Grant::Subscribe, Grant::Message],
            None,
            on_veth,
        )
        .await;
        session_support::wait_for("the subscriber-only member decodes all three", T, || {
            [&a, &b, &c]
                .iter()
                .all(|from| eve.decoded_from(from, MediaKind::Video) > 10)
        })
        .await;
        assert_eq!(size(&eve, &a), (320, 240));
        assert_eq!(size(&eve, &c), (176, 144));

        // cat leaves: the others see its tracks go and keep receiving each other.
        cat.session.leave().await;
        drop(cat);
        session_support::wait_for("cat's tracks removed everywhere", T, || {
            [&ann, &ben, &eve].iter().all(|j| {
                j.any(|e| {
                    matches!(e, SessionEvent::TrackRemoved { peer_id, kind: MediaKind::Video }
                        if *peer_id == c)
                })
            })
        })
        .await;
        let (ab, ba) = (
            ann.decoded_from(&b, MediaKind::Video),
            ben.decoded_from(&a, MediaKind::Video),
        );
        session_support::wait_for("ann and ben still receive each other", T, || {
            ann.decoded_from(&b, MediaKind::Video) > ab + 15
                && ben.decoded_from(&a, MediaKind::Video) > ba + 15
        })
        .await;
        assert_eq!(ann.session.peers().await, {
            let mut v = vec![b.clone(), d.clone(), eve.session.peer_id().unwrap()];
            v.sort();
            v
        });

        // A member publishing after one left: Janus would carry it on the m-lines cat's media
        // left (webrtcbin cannot receive on those again), so the server gives each member a
        // new subscribing connection (`sfu_streams` `fresh`); everybody decodes fay, at her
        // size, and keeps decoding the others.
        let gaps = session_support::FrameGaps::watch(vec![
            (ann.session.clone(), b.clone()),
            (ben.session.clone(), a.clone()),
        ]);
        let fay = join(&url, "s", "fay", Some(small(160, 120, Codec::Vp8)), on_veth).await;
        let f = fay.session.peer_id().unwrap();
        let (ab, ba) = (
            ann.decoded_from(&b, MediaKind::Video),
            ben.decoded_from(&a, MediaKind::Video),
        );
        session_support::wait_for("everyone decodes the member who joined last", T, || {
            [&ann, &ben, &eve]
                .iter()
                .all(|j| j.decoded_from(&f, MediaKind::Video) > 10)
                && fay.decoded_from(&a, MediaKind::Video) > 10
                && fay.decoded_from(&b, MediaKind::Video) > 10
        })
        .await;
        session_support::wait_for("ann and ben receive each other afterwards", T, || {
            ann.decoded_from(&b, MediaKind::Video) > ab + 15
                && ben.decoded_from(&a, MediaKind::Video) > ba + 15
        })
        .await;
        let gaps = gaps.finish().await;
        eprintln!("subscriptions replaced: longest pause of ann<-ben, ben<-ann video: {gaps:?}");
        assert_eq!(size(&ann, &f), (160, 120));
        assert_eq!(size(&eve, &f), (160, 120));
        for j in [&ann, &ben, &eve, &fay] {
            j.session.leave().await;
        }
    });
}

/// `auto`: a room of three is a mesh; when it grows past four members it moves to the SFU
/// and all six receive each other.
/// A Rust subscriber's keyframe requests (`Subscriber::request_keyframe`, RTCP PLI) reach the
/// Rust publisher through Janus, each within a fraction of a second. (The session's SFU
/// connections send RTCP per medium, `PeerConfig::rtcp_per_medium`, docs/sfu.md,
/// "Simulcast". This subscription carries video first, and here the requests arrived without
/// that too; the subscriptions of a browser's feed, audio first, are where they did not.)
#[test]
fn a_subscribers_keyframe_request_reaches_the_publisher() {
    if !isolated("a_subscribers_keyframe_request_reaches_the_publisher") {
        return;
    }
    janus_support::veth();
    let janus = Janus::start("40000-40100");
    janus_support::runtime().block_on(async {
        let server = sfu_server(&janus).await;
        // No periodic keyframes: only requests make one.
        let publish = streamwire::webrtc::publisher::PublisherConfig {
            keyframe_interval: 100_000,
            ..small(320, 240, Codec::Vp8)
        };
        let ann = join(&server.url, "k", "ann", Some(publish), on_veth).await;
        let ben = join(&server.url, "k", "ben", None, on_veth).await;
        let a = ann.session.peer_id().unwrap();
        session_support::wait_for("ben decodes ann", T, || {
            ben.decoded_from(&a, MediaKind::Video) > 10
        })
        .await;
        let publisher = ann.session.publisher().await.expect("ann publishes");
        let keys = || publisher.video_frame_counts().1;
        // Janus's own requests (a subscriber started) are over: no keyframe comes by itself.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let before = keys();
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(keys(), before, "no keyframe without a request");
        // Every request makes a keyframe, none comes by itself.
        for i in 0..REQUESTS {
            let before = keys();
            assert!(ben.session.subscriber().request_keyframe(&a));
            let took =
                session_support::wait_for("a keyframe after ben's PLI", T / 8, || keys() > before)
                    .await;
            eprintln!("request {i}: keyframe {took:?} after it");
            tokio::time::sleep(Duration::from_millis(600)).await;
        }
        for j in [ann, ben] {
            j.session.leave().await;
        }
    });
}

#[test]
fn auto_room_moves_to_the_sfu_when_it_grows() {
    if !isolated("auto_room_moves_to_the_sfu_when_it_grows") {
        return;
    }
    janus_support::veth();
    let janus = Janus::start("40000-40100");
    janus_support::runtime().block_on(async {
        let mut cfg = common::config();
        let mut sfu = janus.sfu_config();
        sfu.topology = TopologyChoice::Auto { mesh_max: 4 };
        cfg.sfu = Some(sfu);
        let server = common::start(cfg).await;
        let url = server.url.clone();
        let mut members = Vec::new();
        for user in ["m1", "m2", "m3"] {
            members.push(
                join(
                    &url,
                    "auto",
                    user,
                    Some(small(176, 144, Codec::Vp8)),
                    on_veth,
                )
                .await,
            );
        }
        let ids = |ms: &[Joined]| -> Vec<String> {
            ms.iter().map(|j| j.session.peer_id().unwrap()).collect()
        };
        let all_receive =
            |ms: &[Joined], base: &std::collections::HashMap<(usize, String), u64>| {
                let ids = ids(ms);
                ms.iter().enumerate().all(|(i, j)| {
                    ids.iter().filter(|id| **id != ids[i]).all(|id| {
                        j.decoded_from(id, MediaKind::Video)
                            > base.get(&(i, id.clone())).copied().unwrap_or(0) + 10
                    })
                })
            };
        let none = std::collections::HashMap::new();
        session_support::wait_for("three members in a mesh", T, || {
            all_receive(&members, &none)
        })
        .await;
        for j in &members {
            assert_eq!(
                j.session.connection_state("sfu-publish").await,
                None,
                "a mesh so far"
            );
        }
        // The pause of the first three members' video across the move.
        let first = ids(&members);
        let mut pairs = Vec::new();
        for (i, j) in members.iter().enumerate() {
            for (k, id) in first.iter().enumerate() {
                if i != k {
                    pairs.push((j.session.clone(), id.clone()));
                }
            }
        }
        let gaps = session_support::FrameGaps::watch(pairs);
        for user in ["m4", "m5", "m6"] {
            members.push(
                join(
                    &url,
                    "auto",
                    user,
                    Some(small(176, 144, Codec::Vp8)),
                    on_veth,
                )
                .await,
            );
        }
        let now: std::collections::HashMap<(usize, String), u64> = {
            let ids = ids(&members);
            members
                .iter()
                .enumerate()
                .flat_map(|(i, j)| {
                    ids.iter()
                        .map(move |id| ((i, id.clone()), j.decoded_from(id, MediaKind::Video)))
                })
                .collect()
        };
        session_support::wait_for(
            "six members through the SFU",
            Duration::from_secs(60),
            || all_receive(&members, &now),
        )
        .await;
        let gaps = gaps.finish().await;
        eprintln!(
            "mesh -> SFU: longest pause of the first three members' video, per pair: {gaps:?}"
        );
        for j in &members {
            assert_eq!(
                j.session.connection_state("sfu-publish").await,
                Some(ConnectionState::Connected),
                "every member publishes to the SFU"
            );
        }
        for j in &members {
            j.session.leave().await;
        }
    });
}
