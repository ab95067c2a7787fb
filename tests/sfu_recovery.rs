//! An SFU room outlives its Janus instance: Janus killed (SIGKILL, as a crash) mid-call and
//! started again, and, with two instances, the room moving to the other one. The server
//! re-creates the room and the members re-publish and re-subscribe by themselves; the test
//! checks that media stopped and came back, within bounds, for every member.
//! Run: unshare -n sh -c 'ip link set lo up; cargo test --test sfu_recovery'
//! (each test re-runs itself in a namespace of its own, where it adds a veth pair: Janus
//! gathers no ICE candidates on loopback).

mod common;
mod janus_support;
mod netns_support;
mod session_support;

use std::time::{Duration, Instant};

use janus_support::{ADMIN_KEY, API_SECRET, Janus, on_veth, sfu_status};
use netns_support::isolated;
use session_support::{Joined, join, small};
use streamwire::encoder::Codec;
use streamwire::server::sfu::SfuConfig;
use streamwire::session::SessionEvent;
use streamwire::signalling::protocol::Grant;
use streamwire::webrtc::MediaKind;

const T: Duration = Duration::from_secs(40);

/// How long media may take to come back once an instance can take the room: the server
/// notices the loss at once (the WebSocket closes), reconnects within a second, and the
/// members then negotiate both SFU connections afresh.
const BACK: Duration = Duration::from_secs(15);

/// Video frames each member decoded from each other member.
fn decoded(members: &[&Joined]) -> Vec<u64> {
    let ids: Vec<String> = members
        .iter()
        .map(|j| j.session.peer_id().unwrap())
        .collect();
    let mut out = Vec::new();
    for (i, j) in members.iter().enumerate() {
        for (k, id) in ids.iter().enumerate() {
            if i != k {
                out.push(j.decoded_from(id, MediaKind::Video));
            }
        }
    }
    out
}

/// Every pair decodes frames: wait until each count grew by more than 10 over `base`.
async fn all_receive(what: &str, members: &[&Joined], base: &[u64], within: Duration) -> Duration {
    session_support::wait_for(what, within, || {
        decoded(members)
            .iter()
            .zip(base)
            .all(|(now, before)| *now > before + 10)
    })
    .await
}

/// After the instance is gone no pair decodes any more: the counts stand still for 1 s.
async fn media_stopped(members: &[&Joined]) {
    session_support::wait_until("media to stop", Duration::from_secs(10), async || {
        let before = decoded(members);
        tokio::time::sleep(Duration::from_secs(1)).await;
        decoded(members) == before
    })
    .await;
}

/// A member's tracks ended and came back (the session rebuilt its subscribing connection).
fn tracks_came_back(j: &Joined, from: &str) -> bool {
    let ev = j.events();
    let removed = ev.iter().position(|e| {
        matches!(e, SessionEvent::TrackRemoved { peer_id, kind: MediaKind::Video } if peer_id == from)
    });
    removed.is_some_and(|r| {
        ev[r..].iter().any(|e| {
            matches!(e, SessionEvent::TrackAdded { peer_id, kind: MediaKind::Video, .. } if peer_id == from)
        })
    })
}

#[test]
fn janus_killed_and_restarted_mid_call() {
    if !isolated("janus_killed_and_restarted_mid_call") {
        return;
    }
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .try_init();
    janus_support::veth();
    let mut janus = Janus::start("40000-40100");
    janus_support::runtime().block_on(async {
        let mut cfg = common::config();
        cfg.sfu = Some(janus.sfu_config());
        let server = common::start(cfg).await;
        let url = server.url.clone();
        let ann = join(&url, "r", "ann", Some(small(320, 240, Codec::Vp8)), on_veth).await;
        let ben = join(&url, "r", "ben", Some(small(256, 144, Codec::Vp8)), on_veth).await;
        let cat = join(&url, "r", "cat", Some(small(176, 144, Codec::Vp8)), on_veth).await;
        let members = [&ann, &ben, &cat];
        let zero = vec![0; 6];
        all_receive("each decodes the other two", &members, &zero, T).await;
        // Janus's `bytes_lastsec` of a stream stays 0 until the stream has sent for a whole
        // second: a subscription that just started shows no rate yet.
        let mut st = sfu_status(&server, "r").await;
        for _ in 0..50 {
            if st["forward_kbps"].as_f64().is_some_and(|f| f > 30.0) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            st = sfu_status(&server, "r").await;
        }
        assert_eq!(st["state"], "up", "{st}");
        assert_eq!(st["members"], 3, "{st}");
        assert_eq!(st["publishers"], 3, "{st}");
        assert_eq!(st["subscribers"], 3, "{st}");
        // Each receives the other two's video and audio.
        assert_eq!(st["forwarded_streams"], 12, "{st}");
        assert_eq!(st["recreated"], 0, "{st}");
        // Bitrates from Janus's Admin API: three publishers in, each member receiving two.
        // (What comes in includes the publishers' bandwidth probing, so it is not half of
        // what goes out.)
        let kbps = |v: &serde_json::Value| v.as_f64().unwrap_or_else(|| panic!("a rate: {st}"));
        let (ingest, forward) = (kbps(&st["ingest_kbps"]), kbps(&st["forward_kbps"]));
        eprintln!("Admin API: ingest {ingest} kbit/s, forward {forward} kbit/s");
        assert!(ingest > 30.0, "{st}");
        assert!(forward > 30.0, "{st}");
        assert_eq!(st["instances"][0]["ingest_kbps"], st["ingest_kbps"], "{st}");
        let old_room = st["janus_room"].clone();

        janus.kill();
        media_stopped(&members).await;
        let st = sfu_status(&server, "r").await;
        assert_eq!(st["state"], "down", "{st}");
        assert_eq!(st["instance_connected"], false, "{st}");
        // Down for a while: the server keeps trying, the members keep their signalling.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let stalled = decoded(&members);
        janus.restart();
        let restarted = Instant::now();
        all_receive("media back after the restart", &members, &stalled, BACK).await;
        eprintln!(
            "janus restarted: media back in every pair after {:?}",
            restarted.elapsed()
        );
        let st = sfu_status(&server, "r").await;
        assert_eq!(st["state"], "up", "{st}");
        assert_eq!(st["recreated"], 1, "{st}");
        assert_ne!(st["janus_room"], old_room, "a fresh Janus room id");
        let a = ann.session.peer_id().unwrap();
        let b = ben.session.peer_id().unwrap();
        assert!(tracks_came_back(&ben, &a), "{:?}", ben.events());
        assert!(tracks_came_back(&ann, &b), "{:?}", ann.events());
        // The signalling sessions were never interrupted: nobody left the room.
        for j in members {
            assert!(
                !j.any(|e| matches!(e, SessionEvent::PeerLeft { .. })),
                "{:?}",
                j.events()
            );
        }
        for j in members {
            j.session.leave().await;
        }
    });
}

/// Two instances: the room is on one; that one dies and stays dead; the room moves to the
/// other and media comes back there.
#[test]
fn room_moves_to_the_other_instance() {
    if !isolated("room_moves_to_the_other_instance") {
        return;
    }
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .try_init();
    janus_support::veth();
    let mut first = Janus::start("40000-40100");
    let second = Janus::start("40200-40300");
    janus_support::runtime().block_on(async {
        let mut cfg = common::config();
        cfg.sfu = Some(SfuConfig::new(
            vec![first.url.clone(), second.url.clone()],
            API_SECRET,
            ADMIN_KEY,
        ));
        let server = common::start(cfg).await;
        let url = server.url.clone();
        let ann = join(&url, "r", "ann", Some(small(320, 240, Codec::Vp8)), on_veth).await;
        let ben = join(&url, "r", "ben", Some(small(256, 144, Codec::Vp8)), on_veth).await;
        let members = [&ann, &ben];
        all_receive("each decodes the other", &members, &[0, 0], T).await;
        // The room went to the first instance (both were empty: the first one is taken).
        assert_eq!(sfu_status(&server, "r").await["instance"], 0);

        let stalled = decoded(&members);
        first.kill();
        let killed = Instant::now();
        all_receive(
            "media back on the second instance",
            &members,
            &stalled,
            BACK,
        )
        .await;
        eprintln!(
            "first instance killed: media back in every pair after {:?}",
            killed.elapsed()
        );
        let st = sfu_status(&server, "r").await;
        assert_eq!(st["instance"], 1, "{st}");
        assert_eq!(st["instance_connected"], true, "{st}");
        assert_eq!(st["recreated"], 1, "{st}");
        for j in members {
            j.session.leave().await;
        }
    });
}

/// `/sfu/status` answers a token of the room with `admin` only; a room without an SFU room
/// is `null`; a server without `--sfu` has no such endpoint.
#[test]
fn sfu_status_needs_an_admin_token_of_the_room() {
    if !isolated("sfu_status_needs_an_admin_token_of_the_room") {
        return;
    }
    let janus = Janus::start("40000-40100");
    janus_support::runtime().block_on(async {
        let mut cfg = common::config();
        cfg.sfu = Some(janus.sfu_config());
        let server = common::start(cfg).await;
        let get = async |token: Option<String>| {
            let h = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
            common::http_get(server.addr, "/sfu/status?room=r", &h).await
        };
        let (status, body) = get(None).await;
        assert!(status.contains("401"), "{status}: {body}");
        assert!(body.contains("`admin` grant is required"), "{body}");
        let (status, body) = get(Some(common::token("other", "op", &[Grant::Admin]))).await;
        assert!(status.contains("403"), "{status}: {body}");
        let (status, body) = get(Some(common::token("r", "op", &[Grant::Subscribe]))).await;
        assert!(status.contains("403"), "{status}: {body}");
        assert!(body.contains("lacks the `admin` grant"), "{body}");
        assert_eq!(sfu_status(&server, "r").await, serde_json::Value::Null);
        let (status, body) = common::http_get(server.addr, "/sfu/status", "").await;
        assert!(status.contains("400"), "{status}: {body}");

        let plain = common::start(common::config()).await;
        let token = common::token("r", "op", &[Grant::Admin]);
        let (status, body) = common::http_get(
            plain.addr,
            "/sfu/status?room=r",
            &format!("Authorization: Bearer {token}\r\n"),
        )
        .await;
        assert!(status.contains("404"), "{status}: {body}");
        assert!(body.contains("no SFU"), "{body}");
    });
}
