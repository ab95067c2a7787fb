//! The browser client (`web/streamwire.js`) accepts a re-offer from a Rust peer that starts
//! publishing after join: the browser joins receive-only, the Rust `Session` joins
//! receive-only after it (so the Rust side offers for the pair), then calls
//! `Session::publish`; the browser's `<video>` plays the new track at its size.
//! Run: unshare -n sh -c 'ip link set lo up; cargo test --test web_publish'

mod browser_support;
mod common;

use std::time::Duration;

use browser_support::Browser;
use serde_json::json;
use streamwire::session::{Session, SessionConfig};
use streamwire::webrtc::publisher::PublisherConfig;

const LONG: Duration = Duration::from_secs(30);

/// JS: every remote tile's video as {w, h, t}.
const VIDEO_STATE: &str =
    "(() => { const v = [...document.querySelectorAll('.tile:not([data-peer=local]) video')];
    return v.map(x => ({w: x.videoWidth, h: x.videoHeight, t: x.currentTime})); })()";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_peer_publishing_after_join_plays_in_the_browser() {
    let srv = common::start(common::config()).await;
    let mut b = Browser::launch().await;
    let room = "lp";
    b.goto(&format!(
        "http://{}/?room={room}&token={}&name=web&publish=0&autojoin=1",
        srv.addr,
        common::token(room, "web", &common::all())
    ))
    .await;
    b.wait_for(
        "browser joined",
        "window.streamwireApp?.client?.state === 'joined'",
        LONG,
    )
    .await;
    let cfg = SessionConfig::new(&srv.url, room, &common::token(room, "rust", &common::all()));
    let (rust, _events) = Session::join(cfg).await.expect("rust session joins");
    // The pair is connected before anything is published (the data channel needs it).
    b.wait_for(
        "the browser's peer connection to the Rust peer",
        "[...window.streamwireApp.client.pcs.values()].some(e => e.pc.connectionState === 'connected')",
        LONG,
    )
    .await;
    let playing = b
        .eval(&format!("{VIDEO_STATE}.filter(s => s.w > 0).length"))
        .await;
    assert_eq!(playing, json!(0), "no video before publish");

    rust.publish(PublisherConfig {
        width: 320,
        height: 240,
        ..PublisherConfig::default()
    })
    .expect("publish after join");
    let first = b
        .wait_for(
            "the browser's video to play after the re-offer",
            &format!("(() => {{ const s = {VIDEO_STATE}.filter(s => s.w > 0 && s.t > 0); return s.length === 1 && s[0]; }})()"),
            LONG,
        )
        .await;
    assert_eq!(first["w"], json!(320));
    assert_eq!(first["h"], json!(240));
    let t0 = first["t"].as_f64().unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let later = b.eval(&format!("{VIDEO_STATE}.filter(s => s.w > 0)")).await;
    let t1 = later[0]["t"].as_f64().unwrap();
    assert!(t1 > t0 + 0.5, "currentTime did not advance: {t0} -> {t1}");
    rust.leave().await;
}
