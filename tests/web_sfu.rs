//! The browser client (`web/streamwire.js` + `web/sfu.js`) in an SFU room through a real
//! Janus: a browser and a Rust session each publish, and each receives the other through the
//! SFU (one publishing and one subscribing connection on each side, no direct connection);
//! both keep receiving each other when Janus is killed mid-call and started again; and the
//! browser plays a member who publishes after the Rust member left (on a new subscribing
//! connection: `sfu_streams` `fresh`).
//! Run: unshare -n sh -c 'ip link set lo up; cargo test --test web_sfu'
//! (the test re-runs itself in a namespace of its own and adds a veth pair there: Janus
//! gathers no ICE candidates on loopback).

mod browser_support;
mod common;
mod janus_support;
mod netns_support;
mod session_support;

use std::time::Duration;

use browser_support::{Browser, page_url};
use janus_support::{Janus, on_veth};
use netns_support::isolated;
use serde_json::json;
use session_support::Joined;
use session_support::{join, small};
use streamwire::encoder::Codec;
use streamwire::webrtc::MediaKind;

const LONG: Duration = Duration::from_secs(40);

#[test]
fn browser_and_rust_through_janus() {
    if !isolated("browser_and_rust_through_janus") {
        return;
    }
    through_janus(Then::Leave);
}

/// Janus is killed (SIGKILL) once media flows both ways, and started again: the server
/// re-creates the room and both sides rebuild their SFU connections by themselves.
#[test]
fn browser_and_rust_recover_when_janus_restarts() {
    if !isolated("browser_and_rust_recover_when_janus_restarts") {
        return;
    }
    through_janus(Then::RestartJanus);
}

/// The Rust member leaves and another joins: Janus would carry the newcomer on the m-lines
/// the first one's media left, so the server opens a new subscription, and the browser plays
/// the newcomer on a new subscribing connection.
#[test]
fn browser_receives_a_member_who_joins_after_one_left() {
    if !isolated("browser_receives_a_member_who_joins_after_one_left") {
        return;
    }
    through_janus(Then::AnotherJoins);
}

/// What happens once media flows both ways.
#[derive(PartialEq)]
enum Then {
    Leave,
    RestartJanus,
    AnotherJoins,
}

/// Frames the browser decoded on its subscribing connection.
const FRAMES_DECODED: &str = "(async () => { const l = window.streamwireApp.client.pcs.get('sfu-subscribe');
    if (!l) return 0; let n = 0;
    (await l.pc.getStats()).forEach(r => { if (r.type === 'inbound-rtp' && r.kind === 'video') n += r.framesDecoded ?? 0; });
    return n; })()";

fn through_janus(then: Then) {
    janus_support::veth();
    let mut janus = Janus::start("40000-40100");
    janus_support::runtime().block_on(async {
        let mut cfg = common::config();
        cfg.sfu = Some(janus.sfu_config());
        let srv = common::start(cfg).await;
        let room = "ws";
        let rust = join(&srv.url, room, "rust", Some(small(320, 240, Codec::Vp8)), on_veth).await;
        let mut b = Browser::launch().await;
        let token = common::token(room, "web", &common::all());
        b.goto(&page_url(srv.addr, room, &token, "web", true)).await;
        b.wait_for(
            "browser joined",
            "window.streamwireApp?.client?.state === 'joined'",
            LONG,
        )
        .await;
        let web_id = b.eval("window.streamwireApp.client.peerId").await;
        let web_id = web_id.as_str().unwrap().to_owned();

        // The browser plays the Rust member's video, reported under the member's id.
        let played = b
            .wait_for(
                "the Rust member's video playing in the browser",
                "(() => { const v = [...document.querySelectorAll('.tile:not([data-peer=local]) video')]
                   .filter(x => x.videoWidth > 0 && x.currentTime > 0);
                   return v.length === 1 && {w: v[0].videoWidth, h: v[0].videoHeight,
                     peer: v[0].closest('.tile').dataset.peer}; })()",
                LONG,
            )
            .await;
        assert_eq!(played["w"], json!(320));
        assert_eq!(played["h"], json!(240));
        let rust_id = rust.session.peer_id().unwrap();
        assert_eq!(played["peer"], json!(rust_id));
        let links = b
            .eval("[...window.streamwireApp.client.pcs.keys()].sort()")
            .await;
        assert_eq!(links, json!(["sfu-publish", "sfu-subscribe"]));
        b.eval("window.__oldSubscribe = window.streamwireApp.client.pcs.get('sfu-subscribe'); true")
            .await;

        // The Rust member decodes the browser's fake camera.
        session_support::wait_for("the browser's video decoded by the Rust member", LONG, || {
            rust.decoded_from(&web_id, MediaKind::Video) > 10
        })
        .await;
        let c = rust.session.subscriber().counters(&web_id, MediaKind::Video);
        assert!(c.width > 0 && c.height > 0 && c.width * 3 == c.height * 4, "{c:?}");
        session_support::wait_for("the browser's audio decoded by the Rust member", LONG, || {
            rust.decoded_from(&web_id, MediaKind::Audio) > 5
        })
        .await;
        match then {
            Then::Leave => rust.session.leave().await,
            Then::RestartJanus => {
                restart_janus(&mut janus, &mut b, &rust, &web_id).await;
                rust.session.leave().await;
            }
            Then::AnotherJoins => {
                rust.session.leave().await;
                b.wait_for(
                    "the first member's tile gone",
                    "document.querySelectorAll('.tile:not([data-peer=local])').length === 0",
                    LONG,
                )
                .await;
                let next =
                    join(&srv.url, room, "next", Some(small(256, 144, Codec::Vp8)), on_veth).await;
                let next_id = next.session.peer_id().unwrap();
                let played = b
                    .wait_for(
                        "the newcomer's video playing in the browser",
                        "(() => { const v = [...document.querySelectorAll('.tile:not([data-peer=local]) video')]
                           .filter(x => x.videoWidth > 0 && x.currentTime > 0 && !x.paused);
                           return v.length === 1 && {w: v[0].videoWidth, h: v[0].videoHeight,
                             peer: v[0].closest('.tile').dataset.peer}; })()",
                        LONG,
                    )
                    .await;
                assert_eq!(played["w"], json!(256));
                assert_eq!(played["h"], json!(144));
                assert_eq!(played["peer"], json!(next_id));
                let replaced = b
                    .eval("window.streamwireApp.client.pcs.get('sfu-subscribe') !== window.__oldSubscribe")
                    .await;
                assert_eq!(replaced, json!(true), "a new subscribing connection");
                session_support::wait_for("the newcomer decodes the browser", LONG, || {
                    next.decoded_from(&web_id, MediaKind::Video) > 10
                })
                .await;
                b.assert_no_console_errors().await;
                next.session.leave().await;
            }
        }
    });
}

async fn restart_janus(janus: &mut Janus, b: &mut Browser, rust: &Joined, web_id: &str) {
    janus.kill();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rust_before = rust.decoded_from(web_id, MediaKind::Video);
    janus.restart();
    // The browser's old subscribing connection is replaced by a new one: its decoded frames
    // count from zero again.
    b.wait_for(
        "the browser decoding the Rust member's video again",
        &format!("{FRAMES_DECODED}.then(n => n > 10 && window.streamwireApp.client.pcs.get('sfu-subscribe') !== window.__oldSubscribe)"),
        LONG,
    )
    .await;
    b.wait_for(
        "the Rust member's video playing in the browser again",
        "[...document.querySelectorAll('.tile:not([data-peer=local]) video')]
           .filter(x => x.videoWidth === 320 && x.currentTime > 0 && !x.paused).length === 1",
        LONG,
    )
    .await;
    session_support::wait_for(
        "the browser's video decoded again by the Rust member",
        LONG,
        || rust.decoded_from(web_id, MediaKind::Video) > rust_before + 10,
    )
    .await;
    b.assert_no_console_errors().await;
}
