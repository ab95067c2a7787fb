//! One SFU room spanning two Janus instances (docs/sfu.md, "Several instances"): with
//! `instance_capacity` 2, the first two members go to the first instance and the next two to
//! the second; every publication is forwarded to the other instance through VideoRoom remote
//! publishers (plain RTP between the instances), and every member decodes every other, at
//! the size it was sent. The second instance is then killed: its members go to the first
//! instance (over capacity: there is no other) and media comes back; when they leave the
//! room is on one instance again. The room's report (`/report`) shows its load on both
//! instances.
//! Run: unshare -n sh -c 'ip link set lo up; cargo test --test sfu_cascade'
//! (the test re-runs itself in a namespace of its own, where it adds a veth pair: Janus
//! gathers no ICE candidates on loopback).

mod common;
mod janus_support;
mod netns_support;
mod session_support;

use std::time::{Duration, Instant};

use janus_support::{ADMIN_KEY, API_SECRET, Janus, on_veth, sfu_status};
use netns_support::isolated;
use session_support::{Joined, join, join_as, small};
use streamwire::encoder::Codec;
use streamwire::server::TelemetryConfig;
use streamwire::server::sfu::SfuConfig;
use streamwire::signalling::protocol::Grant;
use streamwire::webrtc::MediaKind;

const T: Duration = Duration::from_secs(40);

fn size(j: &Joined, from: &str) -> (i32, i32) {
    let c = j.session.subscriber().counters(from, MediaKind::Video);
    (c.width, c.height)
}

/// `(instance, members, publishers, remote_publishers)` of each instance of the room.
fn spans(st: &serde_json::Value) -> Vec<(u64, u64, u64, u64)> {
    st["instances"]
        .as_array()
        .expect("instances")
        .iter()
        .map(|s| {
            let n = |k: &str| s[k].as_u64().expect(k);
            (
                n("instance"),
                n("members"),
                n("publishers"),
                n("remote_publishers"),
            )
        })
        .collect()
}

/// One telemetry record in `room` (so that it has a report), from a member who leaves at
/// once; then the room has no SFU room until the next member joins.
async fn seed_telemetry(server: &common::TestServer, room: &str) {
    let token = common::token(room, "seed", &common::all());
    let (mut r, _) = common::Raw::join(&server.url, room, &token).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    r.send_json(
        serde_json::json!({"type": "telemetry", "batch": {"consent": "necessary",
        "records": [{"ts_ms": now, "source": "device", "fields": {"cpu-usage": 12.5}}]}}),
    )
    .await;
    r.expect("telemetry_ack", |m| {
        matches!(
            m,
            streamwire::signalling::protocol::ServerMsg::TelemetryAck { stored: 1, .. }
        )
        .then_some(())
    })
    .await;
    r.send_json(serde_json::json!({"type": "leave"})).await;
    session_support::wait_until("the seeding member gone from the SFU", T, async || {
        sfu_status(server, room).await.is_null()
    })
    .await;
}

#[test]
fn one_room_across_two_instances() {
    if !isolated("one_room_across_two_instances") {
        return;
    }
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .try_init();
    janus_support::veth();
    let first = Janus::start("40000-40100");
    let mut second = Janus::start("40200-40300");
    janus_support::runtime().block_on(async {
        let mut sfu = SfuConfig::new(
            vec![first.url.clone(), second.url.clone()],
            API_SECRET,
            ADMIN_KEY,
        );
        sfu.instance_capacity = Some(2);
        let mut cfg = common::config();
        cfg.sfu = Some(sfu);
        let db = tempfile::tempdir().unwrap();
        cfg.telemetry = Some(TelemetryConfig::new(db.path().join("telemetry.db")));
        let server = common::start(cfg).await;
        let url = server.url.clone();
        seed_telemetry(&server, "c").await;
        let ann = join(&url, "c", "ann", Some(small(320, 240, Codec::Vp8)), on_veth).await;
        let ben = join(&url, "c", "ben", Some(small(256, 144, Codec::Vp8)), on_veth).await;
        let cat = join(&url, "c", "cat", Some(small(176, 144, Codec::Vp8)), on_veth).await;
        let dan = join_as(
            &url,
            "c",
            "dan",
            &[Grant::Subscribe, Grant::Message],
            None,
            on_veth,
        )
        .await;
        let (a, b, c) = (
            ann.session.peer_id().unwrap(),
            ben.session.peer_id().unwrap(),
            cat.session.peer_id().unwrap(),
        );
        // Publications forwarded both ways: ann and ben (first instance) to cat and dan
        // (second), cat (second) to ann and ben.
        let pairs = [
            (&ann, &b),
            (&ann, &c),
            (&ben, &a),
            (&ben, &c),
            (&cat, &a),
            (&cat, &b),
            (&dan, &a),
            (&dan, &b),
            (&dan, &c),
        ];
        let decoded = || -> Vec<u64> {
            pairs
                .iter()
                .map(|(j, from)| j.decoded_from(from, MediaKind::Video))
                .collect()
        };
        session_support::wait_for("everyone decodes every publisher", T, || {
            decoded().iter().all(|n| *n > 10)
        })
        .await;
        assert_eq!(size(&cat, &a), (320, 240));
        assert_eq!(size(&dan, &b), (256, 144));
        assert_eq!(size(&ann, &c), (176, 144));
        assert_eq!(size(&dan, &c), (176, 144));
        session_support::wait_for("audio across the instances", T, || {
            [(&cat, &a), (&dan, &b), (&ann, &c)]
                .iter()
                .all(|(j, from)| j.decoded_from(from, MediaKind::Audio) > 5)
        })
        .await;
        let st = sfu_status(&server, "c").await;
        assert_eq!(st["members"], 4, "{st}");
        assert_eq!(st["publishers"], 3, "{st}");
        // First instance: ann and ben, with cat's publication forwarded to it; second: cat
        // and dan, with ann's and ben's.
        assert_eq!(spans(&st), vec![(0, 2, 2, 1), (1, 2, 1, 2)], "{st}");
        // The report shows the same load.
        let token = common::token("c", "operator", &[Grant::Admin]);
        let (status, html) = common::http_get(
            server.addr,
            "/report?room=c",
            &format!("Authorization: Bearer {token}\r\n"),
        )
        .await;
        assert!(status.contains("200"), "{status}: {html}");
        assert!(
            html.contains("the room is up on 2 Janus instances, 4 members, 3 publishing"),
            "{html}"
        );
        for row in [
            "<tr><td>0</td><td>yes</td><td>2</td><td>2</td><td>1</td><td>not known</td><td>not known</td></tr>",
            "<tr><td>1</td><td>yes</td><td>2</td><td>1</td><td>2</td><td>not known</td><td>not known</td></tr>",
        ] {
            assert!(html.contains(row), "{row} in {html}");
        }

        // The second instance dies: cat and dan go to the first (the only one left, over
        // its capacity) and receive again; ann and ben see cat again.
        let before = decoded();
        second.kill();
        let killed = Instant::now();
        session_support::wait_for("media back on the first instance", T, || {
            decoded().iter().zip(&before).all(|(now, b)| *now > b + 10)
        })
        .await;
        eprintln!(
            "second instance killed: media back in every pair after {:?}",
            killed.elapsed()
        );
        let st = sfu_status(&server, "c").await;
        assert_eq!(spans(&st), vec![(0, 4, 3, 0)], "{st}");
        assert_eq!(st["state"], "up", "{st}");

        dan.session.leave().await;
        cat.session.leave().await;
        let st = sfu_status(&server, "c").await;
        assert_eq!(st["members"], 2, "{st}");
        for j in [&ann, &ben] {
            j.session.leave().await;
        }
    });
}

/// Members leaving the further instance release it: forwarding to it stops and the room is
/// on its first instance alone.
#[test]
fn an_instance_without_members_is_released() {
    if !isolated("an_instance_without_members_is_released") {
        return;
    }
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .try_init();
    janus_support::veth();
    let first = Janus::start("40000-40100");
    let second = Janus::start("40200-40300");
    janus_support::runtime().block_on(async {
        let mut sfu = SfuConfig::new(
            vec![first.url.clone(), second.url.clone()],
            API_SECRET,
            ADMIN_KEY,
        );
        sfu.instance_capacity = Some(1);
        let mut cfg = common::config();
        cfg.sfu = Some(sfu);
        let server = common::start(cfg).await;
        let url = server.url.clone();
        let ann = join(&url, "d", "ann", Some(small(320, 240, Codec::Vp8)), on_veth).await;
        let ben = join(&url, "d", "ben", Some(small(256, 144, Codec::Vp8)), on_veth).await;
        let (a, b) = (
            ann.session.peer_id().unwrap(),
            ben.session.peer_id().unwrap(),
        );
        session_support::wait_for("each decodes the other across instances", T, || {
            ann.decoded_from(&b, MediaKind::Video) > 10
                && ben.decoded_from(&a, MediaKind::Video) > 10
        })
        .await;
        assert_eq!(size(&ben, &a), (320, 240));
        assert_eq!(size(&ann, &b), (256, 144));
        let st = sfu_status(&server, "d").await;
        assert_eq!(spans(&st), vec![(0, 1, 1, 1), (1, 1, 1, 1)], "{st}");

        ben.session.leave().await;
        session_support::wait_until("the second instance released", T, async || {
            spans(&sfu_status(&server, "d").await) == vec![(0, 1, 1, 0)]
        })
        .await;
        // A member joining now goes to the second instance again (the first is full), and
        // the room spans both once more.
        let cat = join(&url, "d", "cat", Some(small(176, 144, Codec::Vp8)), on_veth).await;
        let c = cat.session.peer_id().unwrap();
        session_support::wait_for("cat decodes ann", T, || {
            cat.decoded_from(&a, MediaKind::Video) > 10
        })
        .await;
        session_support::wait_for("ann decodes cat", T, || {
            ann.decoded_from(&c, MediaKind::Video) > 10
        })
        .await;
        let st = sfu_status(&server, "d").await;
        assert_eq!(spans(&st), vec![(0, 1, 1, 1), (1, 1, 1, 1)], "{st}");
        for j in [&ann, &cat] {
            j.session.leave().await;
        }
    });
}
