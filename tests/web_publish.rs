//! A Rust peer that starts publishing after join plays in the browser (`web/streamwire.js`),
//! whichever side is the pair's offerer:
//! - the Rust `Session` joins after the browser (so it offers) and re-offers itself;
//! - the Rust `Session` joins first (the browser offers): its `published` announcement makes the
//!   browser re-offer with a receive m-line, and `unpublished` makes it re-offer again.
//!
//! And the browser publishing after join is decoded by the Rust side, in both roles.
//!
//! Run: unshare -n sh -c 'ip link set lo up; cargo test --test web_publish'

mod browser_support;
mod common;

use std::time::Duration;

use browser_support::{Browser, LIVE_CAPTURES, page_url};
use serde_json::json;
use streamwire::session::{Session, SessionConfig, SessionEvent, Via};
use streamwire::signalling::protocol::Payload;
use streamwire::webrtc::MediaKind;
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
    let token = common::token(room, "web", &common::all());
    b.goto(&page_url(srv.addr, room, &token, "web", false))
        .await;
    b.wait_for(
        "browser joined",
        "window.streamwireApp?.client?.state === 'joined'",
        LONG,
    )
    .await;
    let cfg = SessionConfig::loopback(&srv.url, room, &common::token(room, "rust", &common::all()));
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
    .await
    .expect("publish after join");
    assert_plays_320x240(&mut b).await;
    rust.leave().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_peer_publishing_after_join_plays_in_the_browser_that_offered() {
    let srv = common::start(common::config()).await;
    let room = "lp2";
    let cfg = SessionConfig::loopback(&srv.url, room, &common::token(room, "rust", &common::all()));
    let (rust, _events) = Session::join(cfg).await.expect("rust session joins");
    let mut b = Browser::launch().await;
    let token = common::token(room, "web", &common::all());
    b.goto(&page_url(srv.addr, room, &token, "web", false))
        .await;
    // The browser joined last, so it is the pair's offerer; with no media on either side its
    // first offer carries only the data channel, and the pair connects.
    b.wait_for(
        "the browser's media-less connection as offerer to the Rust peer",
        "[...window.streamwireApp.client.pcs.values()].some(e => e.offerer && e.pc.connectionState === 'connected' && e.pc.getTransceivers().length === 0)",
        LONG,
    )
    .await;
    rust.publish(PublisherConfig {
        width: 320,
        height: 240,
        ..PublisherConfig::default()
    })
    .await
    .expect("publish after join");
    assert_plays_320x240(&mut b).await;

    // Unpublish: the browser forgets the tracks and re-offers; the Rust side answers
    // `inactive` for them, so the browser's receivers end up inactive.
    rust.unpublish().await.expect("unpublish");
    b.wait_for(
        "the browser to drop the unpublished tracks and renegotiate them inactive",
        "(() => { const c = window.streamwireApp.client;
           const p = [...c.peers.values()][0];
           const e = [...c.pcs.values()][0];
           const video = e.pc.getTransceivers().filter(t => t.receiver.track.kind === 'video');
           return p.tracks.length === 0 && e.pc.signalingState === 'stable' && video.length > 0
             && video.every(t => t.currentDirection === 'inactive'); })()",
        LONG,
    )
    .await;
    rust.leave().await;
}

/// Wait until exactly one remote video plays at 320x240 and check that it keeps playing.
async fn assert_plays_320x240(b: &mut Browser) {
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
}

/// The browser publishes after join (`client.publish()` on a joined client); the Rust side
/// decodes its fake-camera frames (4:3, at most 640x480). `browser_joins_last` makes the browser the pair's
/// offerer (it re-offers with send-only m-lines); otherwise it answers and its `publish`
/// announcement makes the Rust offerer re-offer. `rust_signalling_delay` delays what the
/// server sends the Rust peer (a proxy in between).
async fn browser_publishes_after_join(browser_joins_last: bool, rust_signalling_delay: Duration) {
    let srv = common::start(common::config()).await;
    let proxy =
        browser_support::delay_proxy::DelayProxy::start(srv.addr, rust_signalling_delay).await;
    let room = match (browser_joins_last, rust_signalling_delay.is_zero()) {
        (true, _) => "bp2",
        (false, true) => "bp1",
        (false, false) => "bp1slow",
    };
    let rust_cfg = SessionConfig::loopback(
        &proxy.url,
        room,
        &common::token(room, "rust", &common::all()),
    );
    let mut rust = None;
    if browser_joins_last {
        rust = Some(
            Session::join(rust_cfg.clone())
                .await
                .expect("rust session joins"),
        );
    }
    let mut b = Browser::launch().await;
    let token = common::token(room, "web", &common::all());
    b.goto(&page_url(srv.addr, room, &token, "web", false))
        .await;
    b.wait_for(
        "browser joined",
        "window.streamwireApp?.client?.state === 'joined'",
        LONG,
    )
    .await;
    let (rust, mut events) = match rust {
        Some(r) => r,
        None => Session::join(rust_cfg).await.expect("rust session joins"),
    };
    let browser_id = b.eval("window.streamwireApp.client.peerId").await;
    let browser_id = browser_id.as_str().expect("browser peer id").to_owned();
    b.wait_for(
        "the browser's peer connection to the Rust peer",
        "window.streamwireApp.client.pcs.size === 1",
        LONG,
    )
    .await;
    let offerer = b
        .eval("[...window.streamwireApp.client.pcs.values()][0].offerer")
        .await;
    assert_eq!(offerer, json!(browser_joins_last), "the newcomer offers");
    if !browser_joins_last {
        // Publish after the first negotiation is complete (the Rust offer carries a data
        // channel, so the pair connects with no media), not in the middle of it.
        b.wait_for(
            "the Rust peer's first offer answered and connected",
            "[...window.streamwireApp.client.pcs.values()][0].pc.connectionState === 'connected'",
            LONG,
        )
        .await;
    }
    assert_eq!(
        rust.subscriber()
            .counters(&browser_id, MediaKind::Video)
            .decoded,
        0,
        "nothing published yet"
    );

    b.eval("window.streamwireApp.client.publish().then(() => true)")
        .await;
    // Chromium starts a new video send at a reduced resolution and raises it as its bandwidth
    // estimate grows (seconds to reach 640x480 here): require the fake camera's 4:3 picture,
    // not a particular step of that ramp.
    let deadline = std::time::Instant::now() + LONG;
    loop {
        let c = rust.subscriber().counters(&browser_id, MediaKind::Video);
        if c.decoded >= 30 && c.width > 0 && c.width * 3 == c.height * 4 && c.width <= 640 {
            break;
        }
        if std::time::Instant::now() >= deadline {
            let browser = b
                .eval("JSON.stringify([...window.streamwireApp.client.pcs.values()].map(e => ({signaling: e.pc.signalingState, connection: e.pc.connectionState, transceivers: e.pc.getTransceivers().map(t => [t.mid, t.direction, t.currentDirection, t.sender.track && t.sender.track.kind]), remote: e.pc.remoteDescription && e.pc.remoteDescription.sdp})))")
                .await;
            let mut rust_events = Vec::new();
            while let Ok(e) = events.try_recv() {
                if !matches!(e, streamwire::session::SessionEvent::Stats(_)) {
                    rust_events.push(format!("{e:?}"));
                }
            }
            panic!(
                "the Rust side decoded {} frames of {}x{} from the browser's late publish\n\
                 browser: {browser}\nrust events: {rust_events:#?}",
                c.decoded, c.width, c.height
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        rust.subscriber()
            .counters(&browser_id, MediaKind::Audio)
            .decoded
            > 0,
        "audio from the browser's late publish"
    );
    // A second publish is refused by the client.
    let second = b
        .eval("window.streamwireApp.client.publish().then(() => 'ok', e => e.code)")
        .await;
    assert_eq!(second, json!("already_published"));
    rust.leave().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_publishing_after_join_as_answerer_is_decoded() {
    browser_publishes_after_join(false, Duration::ZERO).await;
}

/// The same, with the browser's answer reaching the Rust offerer 500 ms after the browser
/// started sending on the new m-lines (its first RTP arrives before webrtcbin has linked its
/// receive path). This used to stop webrtcbin's `nicesrc` ("streaming stopped, reason
/// not-linked"), so the browser's ICE went `failed` a few seconds later; it was the flake of
/// the test above under load (src/webrtc/early_rtp.rs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_answer_arriving_after_its_media_is_decoded() {
    browser_publishes_after_join(false, Duration::from_millis(500)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_publishing_after_join_as_offerer_is_decoded() {
    browser_publishes_after_join(true, Duration::ZERO).await;
}

/// The browser stops publishing without leaving (`client.unpublish()`), and publishes again:
/// the Rust side sees the tracks go (`TrackRemoved`) and decodes the new ones; the camera is
/// released in between. `browser_offers`: the browser joined last (it offers for the pair).
async fn browser_unpublishes_and_publishes_again(browser_offers: bool) {
    let srv = common::start(common::config()).await;
    let room = if browser_offers { "up2" } else { "up1" };
    let cfg = SessionConfig::loopback(&srv.url, room, &common::token(room, "rust", &common::all()));
    let mut early = None;
    if browser_offers {
        early = Some(Session::join(cfg.clone()).await.expect("rust joins"));
    }
    let mut b = Browser::launch().await;
    let token = common::token(room, "web", &common::all());
    b.goto(&page_url(srv.addr, room, &token, "web", true)).await;
    b.wait_for(
        "browser joined and publishing",
        "window.streamwireApp?.client?.state === 'joined' && window.streamwireApp.client.localStream",
        LONG,
    )
    .await;
    let (rust, mut events) = match early {
        Some(r) => r,
        None => Session::join(cfg).await.expect("rust joins"),
    };
    let id = b.eval("window.streamwireApp.client.peerId").await;
    let id = id.as_str().unwrap().to_owned();
    let decoded = |rust: &Session| rust.subscriber().counters(&id, MediaKind::Video).decoded;
    wait_until("the Rust side decodes the browser", LONG, || {
        decoded(&rust) >= 10
    })
    .await;

    b.eval("window.streamwireApp.client.unpublish().then(() => true)")
        .await;
    assert_eq!(
        b.eval(LIVE_CAPTURES).await,
        json!(0),
        "camera still on after unpublish"
    );
    let mut removed = Vec::new();
    let deadline = tokio::time::Instant::now() + LONG;
    while removed.len() < 2 {
        let ev = tokio::time::timeout_at(deadline, events.recv())
            .await
            .unwrap_or_else(|_| panic!("TrackRemoved not seen; got {removed:?}"))
            .expect("events");
        if let SessionEvent::TrackRemoved { peer_id, kind } = ev
            && peer_id == id
        {
            removed.push(kind);
        }
    }
    removed.sort_by_key(|k| k.as_str());
    assert_eq!(removed, vec![MediaKind::Audio, MediaKind::Video]);
    let stalled = decoded(&rust);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        decoded(&rust) <= stalled + 2,
        "frames still arrive after unpublish"
    );
    assert_eq!(
        b.eval("window.streamwireApp.client.pcs.size").await,
        json!(1),
        "the call goes on"
    );

    b.eval("window.streamwireApp.client.publish().then(() => true)")
        .await;
    let again = decoded(&rust);
    wait_until("the Rust side decodes the new tracks", LONG, || {
        decoded(&rust) >= again + 10
    })
    .await;
    rust.leave().await;
}

async fn wait_until(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + timeout;
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_unpublishes_as_answerer_and_publishes_again() {
    browser_unpublishes_and_publishes_again(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_unpublishes_as_offerer_and_publishes_again() {
    browser_unpublishes_and_publishes_again(true).await;
}

/// The pair's data channel (label `streamwire`) carries messages both ways, whichever side
/// offered: Rust `send_data` arrives as a `message` with `via: 'datachannel'` (shown in the
/// chat), the browser's `sendData` as a `Message` with `Via::DataChannel`.
async fn data_channel_both_ways(browser_offers: bool) {
    let srv = common::start(common::config()).await;
    let room = if browser_offers { "dc2" } else { "dc1" };
    let cfg = SessionConfig::loopback(&srv.url, room, &common::token(room, "rust", &common::all()));
    let mut early = None;
    if browser_offers {
        early = Some(Session::join(cfg.clone()).await.expect("rust joins"));
    }
    let mut b = Browser::launch().await;
    let token = common::token(room, "web", &common::all());
    b.goto(&page_url(srv.addr, room, &token, "web", false))
        .await;
    b.wait_for(
        "browser joined",
        "window.streamwireApp?.client?.state === 'joined'",
        LONG,
    )
    .await;
    let (rust, mut events) = match early {
        Some(r) => r,
        None => Session::join(cfg).await.expect("rust joins"),
    };
    b.wait_for(
        "the data channel open",
        "[...window.streamwireApp.client.pcs.values()].some(l => l.channel?.readyState === 'open')",
        LONG,
    )
    .await;
    let deadline = tokio::time::Instant::now() + LONG;
    loop {
        if let Ok(n) = rust
            .send_data(None, &Payload::Text("over the channel".into()))
            .await
            && n == 1
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the Rust data channel never opened"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let got = b
        .wait_for(
            "the message in the page",
            "window.streamwireApp.messages.find(m => m.via === 'datachannel')",
            LONG,
        )
        .await;
    assert_eq!(got["text"], json!("over the channel"), "{got}");
    let log = b.eval("document.getElementById('log').textContent").await;
    assert!(
        log.as_str().unwrap().contains("rust: over the channel"),
        "{log}"
    );
    let n = b
        .eval("window.streamwireApp.client.sendData('from the page')")
        .await;
    assert_eq!(n, json!(1));
    let deadline = tokio::time::Instant::now() + LONG;
    loop {
        let ev = tokio::time::timeout_at(deadline, events.recv())
            .await
            .expect("no data channel message at the Rust side")
            .expect("events");
        if let SessionEvent::Message { via, payload, .. } = ev {
            assert_eq!(via, Via::DataChannel);
            assert_eq!(payload, Payload::Text("from the page".into()));
            break;
        }
    }
    rust.leave().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_channel_both_ways_rust_offers() {
    data_channel_both_ways(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_channel_both_ways_browser_offers() {
    data_channel_both_ways(true).await;
}
