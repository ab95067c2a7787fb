//! Media interop between headless Chromium (the `web/` client) and Streamwire's webrtcbin
//! engine, through a real signalling server on loopback.
//! Run: unshare -n sh -c 'ip link set lo up; cargo test --test web_media'
//!
//! The Rust side is the product API, `streamwire::session::Session` (signalling client +
//! WebRTC engine), with the negotiation roles of docs/webrtc.md: the newcomer offers, one
//! offer per pair.

mod browser_support;
mod common;

use std::time::Duration;

use browser_support::{Browser, output_dir};
use gst::prelude::*;
use serde_json::json;
use streamwire::session::{Session, SessionConfig, SessionEvent};
use streamwire::webrtc::MediaKind;
use streamwire::webrtc::publisher::{PublisherConfig, Rotation, RotationConfig};
use tokio::sync::mpsc::UnboundedReceiver;

const LONG: Duration = Duration::from_secs(30);

/// The Rust peer of a test: a `Session` (the product API) joined to `room` as `user`,
/// publishing `publish` (None: receive only) and receiving from everyone. Keep the event
/// receiver alive for the session's lifetime.
async fn join_session(
    url: &str,
    room: &str,
    user: &str,
    publish: Option<PublisherConfig>,
) -> (Session, UnboundedReceiver<SessionEvent>) {
    let mut cfg = SessionConfig::loopback(url, room, &common::token(room, user, &common::all()));
    cfg.publish = publish;
    Session::join(cfg).await.expect("rust session joins")
}

/// webrtcbin `get-stats` of every peer connection in the session's pipeline (debug dump).
fn webrtcbin_stats(session: &Session) -> Vec<String> {
    let mut out = Vec::new();
    for el in session.pipeline().iterate_elements().into_iter().flatten() {
        if el.factory().map(|f| f.name() == "webrtcbin") != Some(true) {
            continue;
        }
        let (tx, rx) = std::sync::mpsc::channel();
        let promise = gst::Promise::with_change_func(move |r| {
            let _ = tx.send(r.ok().flatten().map(|s| s.to_string()));
        });
        el.emit_by_name::<()>("get-stats", &[&None::<gst::Pad>, &promise]);
        if let Ok(Some(s)) = rx.recv_timeout(Duration::from_secs(2)) {
            out.push(s);
        }
    }
    out
}

/// The `a=ssrc` of every audio/video m-line the Rust peer sends on, from its SDP as the
/// browser applied it (remote description); panics if one has none.
async fn rust_sdp_send_ssrcs(br: &mut Browser, rust_id: &str) -> Vec<u64> {
    let sdp = br
        .eval(&format!(
            "window.streamwireApp.client.pcs.get('{rust_id}').pc.remoteDescription.sdp"
        ))
        .await;
    let sdp = sdp.as_str().expect("SDP text");
    sdp.split("\r\nm=")
        .skip(1)
        .filter(|s| s.contains("a=sendonly") && (s.starts_with("audio") || s.starts_with("video")))
        .map(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("a=ssrc:"))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or_else(|| panic!("Rust m-line without a=ssrc:\nm={s}"))
        })
        .collect()
}

fn page_url(srv: &common::TestServer, room: &str, user: &str, publish: bool) -> String {
    let token = common::token(room, user, &common::all());
    browser_support::page_url(srv.addr, room, &token, user, publish)
}

async fn wait_rust(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + LONG;
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

const DUMP: &str = "(async () => { const out = {}; for (const [id, e] of window.streamwireApp.client.pcs) { const st = []; (await e.pc.getStats()).forEach(x => { if (x.type === 'inbound-rtp' || x.type === 'outbound-rtp') st.push({type: x.type, kind: x.kind, ssrc: x.ssrc, mid: x.mid, pr: x.packetsReceived, ps: x.packetsSent, fd: x.framesDecoded, fe: x.framesEncoded, codec: x.codecId}); }); out[id] = {offerer: e.offerer, remote: e.pc.remoteDescription?.sdp, local: e.pc.localDescription?.sdp, tr: e.pc.getTransceivers().map(t => ({mid: t.mid, dir: t.direction, cur: t.currentDirection, rtrack: t.receiver.track.kind, muted: t.receiver.track.muted})), st, streams: e.stream.getTracks().map(t => t.kind + ':' + t.muted)}; } return out; })()";

/// JS: the first remote tile's video as {w, h, t} once it is playing.
const VIDEO_STATE: &str =
    "(() => { const v = [...document.querySelectorAll('.tile:not([data-peer=local]) video')];
    return v.map(x => ({w: x.videoWidth, h: x.videoHeight, t: x.currentTime})); })()";

/// Issue test 1: the browser publishes, a Rust subscriber decodes frames of its resolution.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_publishes_rust_decodes_its_resolution() {
    let srv = common::start(common::config()).await;
    let mut b = Browser::launch().await;
    b.goto(&page_url(&srv, "m1", "web", true)).await;
    b.wait_for(
        "browser joined",
        "window.streamwireApp?.client?.state === 'joined'",
        LONG,
    )
    .await;
    let browser_id = b.eval("window.streamwireApp.client.peerId").await;
    let browser_id = browser_id.as_str().unwrap().to_owned();
    let (rust, _events) = join_session(&srv.url, "m1", "rust", None).await;
    let sub = rust.subscriber().clone();
    let id = browser_id.clone();
    wait_rust("640x480 frames decoded from the browser", move || {
        let c = sub.counters(&id, MediaKind::Video);
        c.decoded >= 30 && c.width == 640 && c.height == 480
    })
    .await;
    let c = rust.subscriber().counters(&browser_id, MediaKind::Video);
    assert_eq!((c.width, c.height), (640, 480));
    let audio = rust.subscriber().counters(&browser_id, MediaKind::Audio);
    assert!(audio.decoded > 0, "no audio decoded from the browser");
    rust.leave().await;
}

/// Issue test 2: a Rust publisher, the browser's <video> plays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_publishes_browser_video_plays() {
    let srv = common::start(common::config()).await;
    let mut b = Browser::launch().await;
    b.goto(&page_url(&srv, "m2", "web", false)).await;
    b.wait_for(
        "browser joined",
        "window.streamwireApp?.client?.state === 'joined'",
        LONG,
    )
    .await;
    let (rust, _events) =
        join_session(&srv.url, "m2", "rust", Some(PublisherConfig::default())).await;
    let first = b
        .wait_for(
            "the browser's video to play",
            &format!("(() => {{ const s = {VIDEO_STATE}; return s.length === 1 && s[0].w > 0 && s[0].t > 0 && s[0]; }})()"),
            LONG,
        )
        .await;
    assert_eq!(first["w"], json!(640));
    assert_eq!(first["h"], json!(360));
    let t0 = first["t"].as_f64().unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let later = b.eval(VIDEO_STATE).await;
    let t1 = later[0]["t"].as_f64().unwrap();
    assert!(t1 > t0 + 0.5, "currentTime did not advance: {t0} -> {t1}");
    // The stats overlay is filled from getStats.
    let stats = b
        .wait_for(
            "stats overlay",
            "document.querySelector('.tile:not([data-peer=local]) .stats').textContent",
            LONG,
        )
        .await;
    assert!(stats.as_str().unwrap().contains("quality"), "{stats}");
    rust.leave().await;
}

/// Issue test 5: two browsers and one Rust peer in one room: everyone sees everyone, with the
/// Rust peer joining first (both browsers offer to it) and last (it offers to both browsers).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_browsers_and_rust_peer_all_see_each_other() {
    all_see_each_other("m5", true).await;
}

/// Issue test 5, the other join order: the Rust peer joins last and offers to both browsers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_browsers_and_rust_peer_joining_last_all_see_each_other() {
    all_see_each_other("m5last", false).await;
}

async fn all_see_each_other(room: &str, rust_first: bool) {
    let srv = common::start(common::config()).await;
    let join_rust = || join_session(&srv.url, room, "rust", Some(PublisherConfig::default()));
    let mut rust = None;
    if rust_first {
        rust = Some(join_rust().await);
    }
    let mut a = Browser::launch().await;
    a.goto(&page_url(&srv, room, "alice", true)).await;
    a.wait_for(
        "alice joined",
        "window.streamwireApp?.client?.state === 'joined'",
        LONG,
    )
    .await;
    let mut b = Browser::launch().await;
    b.goto(&page_url(&srv, room, "bob", true)).await;
    b.wait_for(
        "bob joined",
        "window.streamwireApp?.client?.state === 'joined'",
        LONG,
    )
    .await;
    let (rust, _events) = match rust {
        Some(r) => r,
        None => join_rust().await,
    };
    if std::env::var_os("SW_DEBUG").is_some() {
        tokio::time::sleep(Duration::from_secs(8)).await;
        for (n, br) in [("alice", &mut a), ("bob", &mut b)] {
            let v = br.eval(DUMP).await;
            println!("===== {n}\n{}", serde_json::to_string_pretty(&v).unwrap());
        }
        for s in webrtcbin_stats(&rust) {
            println!("===== rust webrtcbin\n{s}");
        }
    }
    let playing2 = "(() => { const s = ".to_owned()
        + VIDEO_STATE
        + "; return s.length === 2 && s.every(x => x.w > 0 && x.t > 0) && s; })()";
    let sa = a.wait_for("alice sees bob and rust", &playing2, LONG).await;
    let sb = b.wait_for("bob sees alice and rust", &playing2, LONG).await;
    // Each browser plays the other browser (fake camera 640x480; Chrome may adapt it down,
    // keeping 4:3) and the Rust peer (640x360, 16:9).
    for s in [&sa, &sb] {
        let sizes: Vec<(i64, i64)> = s
            .as_array()
            .unwrap()
            .iter()
            .map(|x| (x["w"].as_i64().unwrap(), x["h"].as_i64().unwrap()))
            .collect();
        assert!(sizes.contains(&(640, 360)), "no Rust tile: {s}");
        assert!(
            sizes.iter().any(|&(w, h)| w * 3 == h * 4),
            "no 4:3 browser tile: {s}"
        );
    }
    let ida = a.eval("window.streamwireApp.client.peerId").await;
    let idb = b.eval("window.streamwireApp.client.peerId").await;
    for id in [
        ida.as_str().unwrap().to_owned(),
        idb.as_str().unwrap().to_owned(),
    ] {
        let sub = rust.subscriber().clone();
        wait_rust("rust decodes both browsers", move || {
            sub.counters(&id, MediaKind::Video).decoded >= 10
        })
        .await;
    }
    assert_eq!(rust.peers().await.len(), 2);
    // Every m-line the Rust peer sends on names its SSRC in its SDP (offer when it joined
    // last, answer when first), and that is the SSRC the browser receives. The Rust-last
    // failure was webrtcbin writing no `a=ssrc` for branches whose caps had not reached it
    // yet; Chromium could not route those streams and dropped them.
    let rust_id = rust.peer_id().expect("rust peer id");
    for br in [&mut a, &mut b] {
        let announced = rust_sdp_send_ssrcs(br, &rust_id).await;
        assert_eq!(
            announced.len(),
            2,
            "Rust audio + video SSRCs: {announced:?}"
        );
        let received = br
            .eval(&format!(
                "(async () => {{ const r = []; (await window.streamwireApp.client.pcs.get('{rust_id}').pc.getStats()).forEach(s => {{ if (s.type === 'inbound-rtp' && s.packetsReceived > 0) r.push(s.ssrc); }}); return r; }})()"
            ))
            .await;
        for ssrc in &announced {
            assert!(
                received.as_array().unwrap().contains(&json!(ssrc)),
                "announced SSRC {ssrc} not received: {received}"
            );
        }
    }
    // Screenshot of the demo page with live tiles.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let name = if rust_first {
        "demo-live-tiles.png"
    } else {
        "demo-live-tiles-rust-last.png"
    };
    a.screenshot(&output_dir().join(name)).await;
    rust.leave().await;
}

/// Issue test 3: a Rust publisher in rotation metadata mode (CVO) at 90 degrees, through the
/// product API (`Session` with `PublisherConfig::rotation`), joining after the browser so it
/// offers: its offer carries `urn:3gpp:video-orientation`, the browser keeps it in its answer
/// and shows the video upright: `videoWidth`/`videoHeight` are swapped relative to the
/// encoded 640x360 frames. Turning the rotation back to 0 while playing un-swaps them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_cvo_publisher_at_90_degrees_shows_upright_in_browser() {
    cvo_publisher_rotates_in_browser("m3", false).await;
}

/// Issue test 3, the other join order: the Rust publisher is in the room first, the browser
/// offers (its offer lists CVO) and the Rust answer keeps the extension for its video.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_cvo_publisher_answering_browser_offer_shows_upright() {
    cvo_publisher_rotates_in_browser("m3first", true).await;
}

async fn cvo_publisher_rotates_in_browser(room: &str, rust_first: bool) {
    let srv = common::start(common::config()).await;
    let join_rust = || {
        let publish = PublisherConfig {
            rotation: Some(RotationConfig::Fixed(Rotation::R90)),
            ..PublisherConfig::default()
        };
        join_session(&srv.url, room, "rust", Some(publish))
    };
    let mut early = None;
    if rust_first {
        early = Some(join_rust().await);
    }
    let mut b = Browser::launch().await;
    b.goto(&page_url(&srv, room, "web", false)).await;
    b.wait_for(
        "browser joined",
        "window.streamwireApp?.client?.state === 'joined'",
        LONG,
    )
    .await;
    let (session, _events) = match early {
        Some(s) => s,
        None => join_rust().await,
    };
    let publisher = session.publisher().await.expect("publisher");
    assert_eq!(publisher.video_size(), Some((640, 360)));

    let first = b
        .wait_for(
            "the rotated video to play",
            &format!("(() => {{ const s = {VIDEO_STATE}; return s.length === 1 && s[0].w > 0 && s[0].t > 0 && s[0]; }})()"),
            LONG,
        )
        .await;
    // Encoded 640x360; rotated 90 degrees by the browser from the CVO extension.
    assert_eq!(
        (first["w"].clone(), first["h"].clone()),
        (json!(360), json!(640)),
        "{first}"
    );
    // The Rust SDP names the extension on its video m-line, and the browser's SDP keeps it.
    let rust_id = session.peer_id().expect("rust peer id");
    let pc = format!("window.streamwireApp.client.pcs.get('{rust_id}').pc");
    for (which, side) in [
        ("Rust", "remoteDescription"),
        ("browser", "localDescription"),
    ] {
        let sdp = b.eval(&format!("{pc}.{side}.sdp")).await;
        let video = sdp
            .as_str()
            .expect("SDP")
            .split("\r\nm=")
            .find(|m| {
                m.starts_with("video")
                    && m.contains(if which == "Rust" {
                        "a=sendonly"
                    } else {
                        "a=recvonly"
                    })
            })
            .unwrap_or_else(|| panic!("no Rust video m-line in the {which} SDP:\n{sdp}"))
            .to_owned();
        assert!(
            video.contains("urn:3gpp:video-orientation"),
            "the {which} SDP lacks the CVO extmap on the video m-line:\nm={video}"
        );
    }
    b.screenshot(&output_dir().join(format!("cvo-rotated-{room}.png")))
        .await;

    // The orientation is metadata: back to 0 degrees, the browser shows 640x360 again
    // without renegotiation.
    publisher.set_rotation(Rotation::R0).unwrap();
    b.wait_for(
        "the video back at 640x360",
        &format!("(() => {{ const s = {VIDEO_STATE}; return s.length === 1 && s[0].w === 640 && s[0].h === 360 && s[0]; }})()"),
        LONG,
    )
    .await;
    session.leave().await;
}
