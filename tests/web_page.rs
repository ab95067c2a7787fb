//! The call page used as a person would: real clicks and key presses in headless Chromium
//! against a real server on loopback. The pre-join screen, the camera's life cycle (nothing
//! captured before a successful join or a chosen preview, everything released on leave and on
//! a refused join), chat, mute, keyboard-only use, phone widths, grants and limits.
//! Run: unshare -n sh -c 'ip link set lo up; cargo nextest run --test web_page'

mod browser_support;
mod common;

use std::time::Duration;

use browser_support::{Browser, LIVE_CAPTURES, output_dir, page_url};
use serde_json::json;
use streamwire::session::{Session, SessionConfig};
use streamwire::signalling::client::{Client, ClientConfig, Event};
use streamwire::signalling::protocol::{Grant, LeaveReason};
use streamwire::webrtc::publisher::{AudioSource, PublisherConfig};

const LONG: Duration = Duration::from_secs(30);

async fn dev_server() -> common::TestServer {
    let mut cfg = common::config();
    cfg.dev = true;
    common::start(cfg).await
}

async fn wait_view(b: &mut Browser, view: &str) {
    b.wait_for(
        &format!("the {view} view"),
        &format!("window.streamwireApp?.view === '{view}' && window.streamwireApp.ready"),
        LONG,
    )
    .await;
}

async fn live_captures(b: &mut Browser) -> i64 {
    b.eval(LIVE_CAPTURES).await.as_i64().expect("count")
}

async fn captures(b: &mut Browser) -> i64 {
    b.eval("window.__captured.length")
        .await
        .as_i64()
        .expect("count")
}

/// The whole pre-join -> call -> leave -> join again cycle, by clicks and typing, with the
/// camera's state checked at each step.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prejoin_preview_join_chat_mute_leave_by_clicks() {
    let srv = dev_server().await;
    let mut b = Browser::launch().await;
    b.set_viewport(1280, 800, false).await;
    b.goto(&format!("http://{}/?room=pj", srv.addr)).await;
    wait_view(&mut b, "prejoin").await;
    // --dev: no token field; nothing captured just by opening the page.
    assert_eq!(
        b.eval("document.getElementById('token-field').hidden")
            .await,
        json!(true)
    );
    assert_eq!(
        captures(&mut b).await,
        0,
        "the page opened the camera by itself"
    );

    b.type_text("#name", "Ann Lee").await;
    b.click("#preview-btn").await;
    b.wait_for(
        "the preview to play",
        "document.getElementById('preview').videoWidth > 0",
        LONG,
    )
    .await;
    b.wait_for(
        "the level meter to move",
        "Number(document.getElementById('pj-meter').getAttribute('aria-valuenow')) > 0",
        LONG,
    )
    .await;
    assert_eq!(
        live_captures(&mut b).await,
        2,
        "preview: camera + microphone"
    );
    b.wait_for(
        "the device lists",
        "document.getElementById('pj-cam').options.length > 0 && !document.getElementById('pj-devices').hidden",
        LONG,
    )
    .await;
    b.screenshot(&output_dir().join("web-prejoin-1280.png"))
        .await;

    b.click("#joinbtn").await;
    wait_view(&mut b, "call").await;
    b.wait_for(
        "the own tile to play",
        "document.querySelector('.tile[data-peer=local] video')?.videoWidth > 0",
        LONG,
    )
    .await;
    let status = b.eval("window.streamwireApp.status").await;
    assert_eq!(status, json!("Joined room pj as Ann Lee."));
    // The preview became the published stream: no second capture.
    assert_eq!(captures(&mut b).await, 2);
    assert_eq!(live_captures(&mut b).await, 2);

    // Chat: type and press Enter.
    b.type_text("#text", "hello room").await;
    b.press("Enter").await;
    let d = b
        .wait_for("the delivery", "window.streamwireApp.deliveries[0]", LONG)
        .await;
    assert_eq!(d["status"], json!("delivered"), "{d}");
    let log = b.eval("document.getElementById('log').textContent").await;
    assert!(log.as_str().unwrap().contains("me: hello room"), "{log}");

    // Mute: the microphone sends silence; camera off releases the camera.
    b.click("#mic-btn").await;
    assert_eq!(
        b.eval("[document.getElementById('mic-btn').getAttribute('aria-pressed'), window.streamwireApp.client.localStream.getAudioTracks()[0].enabled]").await,
        json!(["true", false])
    );
    b.click("#cam-btn").await;
    b.wait_for(
        "the camera released",
        &format!("{LIVE_CAPTURES} === 1 && document.getElementById('cam-btn').textContent === 'Camera on'"),
        LONG,
    )
    .await;
    b.click("#cam-btn").await;
    b.wait_for(
        "the camera back",
        &format!("{LIVE_CAPTURES} === 2 && document.getElementById('cam-btn').getAttribute('aria-pressed') === 'false'"),
        LONG,
    )
    .await;
    assert_eq!(captures(&mut b).await, 3, "one new camera capture");

    // Leave: everything released, back to the pre-join screen, Join usable.
    b.click("#leave").await;
    wait_view(&mut b, "prejoin").await;
    assert_eq!(
        live_captures(&mut b).await,
        0,
        "camera or microphone left on after Leave"
    );
    assert_eq!(
        b.eval("document.getElementById('joinbtn').disabled").await,
        json!(false)
    );
    assert_eq!(
        b.eval("window.streamwireApp.status").await,
        json!("You left the room.")
    );

    // Join again without a preview: captured after the join, once; released again on Leave.
    b.click("#joinbtn").await;
    wait_view(&mut b, "call").await;
    b.wait_for("the capture", &format!("{LIVE_CAPTURES} === 2"), LONG)
        .await;
    assert_eq!(captures(&mut b).await, 5);
    b.click("#leave").await;
    wait_view(&mut b, "prejoin").await;
    assert_eq!(live_captures(&mut b).await, 0);
    b.assert_no_console_errors().await;
}

/// Join without a token on a server without --dev: a readable error, nothing captured, the
/// client `failed` (not stuck `connecting`), and a corrected join works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_join_captures_nothing_and_can_be_corrected() {
    let srv = common::start(common::config()).await;
    let mut b = Browser::launch().await;
    b.goto(&format!("http://{}/?room=rj", srv.addr)).await;
    wait_view(&mut b, "prejoin").await;
    assert_eq!(
        b.eval("document.getElementById('token-field').hidden")
            .await,
        json!(false),
        "without --dev the page asks for a token"
    );
    b.click("#joinbtn").await;
    let text = b
        .wait_for(
            "the error",
            "document.getElementById('status').className === 'error' && document.getElementById('status').textContent",
            LONG,
        )
        .await;
    assert_eq!(text, json!("Cannot join: A room token is required."));
    assert_eq!(
        b.eval("window.streamwireApp.client.state").await,
        json!("failed")
    );
    assert_eq!(
        captures(&mut b).await,
        0,
        "a refused join opened the camera"
    );
    assert_eq!(
        b.eval("document.getElementById('joinbtn').disabled").await,
        json!(false)
    );
    let token = common::token("rj", "ann", &common::all());
    b.type_text("#token", &token).await;
    b.type_text("#name", "Ann").await;
    b.click("#joinbtn").await;
    wait_view(&mut b, "call").await;
    b.wait_for("the capture", &format!("{LIVE_CAPTURES} === 2"), LONG)
        .await;
    b.click("#leave").await;
    wait_view(&mut b, "prejoin").await;
    assert_eq!(live_captures(&mut b).await, 0);
    b.assert_no_console_errors().await;
}

/// Keyboard only: Tab to Join, Enter joins; focus lands on Leave; Enter leaves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyboard_only_join_and_leave() {
    let srv = dev_server().await;
    let mut b = Browser::launch().await;
    b.goto(&format!("http://{}/?room=kb&name=Kim", srv.addr))
        .await;
    wait_view(&mut b, "prejoin").await;
    let mut path = Vec::new();
    for _ in 0..20 {
        b.press("Tab").await;
        let id = b.eval("document.activeElement.id").await;
        path.push(id.as_str().unwrap_or("").to_owned());
        if id == json!("joinbtn") {
            break;
        }
    }
    assert_eq!(
        path.last().map(String::as_str),
        Some("joinbtn"),
        "tab order: {path:?}"
    );
    // Every control on the way is reachable and named.
    for id in ["preview-btn", "name", "cam-on", "mic-on"] {
        assert!(
            path.iter().any(|p| p == id),
            "{id} not in the tab order {path:?}"
        );
    }
    b.press("Enter").await;
    wait_view(&mut b, "call").await;
    assert_eq!(b.eval("document.activeElement.id").await, json!("leave"));
    b.press("Enter").await;
    wait_view(&mut b, "prejoin").await;
    assert_eq!(b.eval("document.activeElement.id").await, json!("joinbtn"));
    b.assert_no_console_errors().await;
}

/// The pre-join screen and the call fit a phone: no horizontal scrolling at 390 and 360 px.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_fits_phone_widths() {
    let srv = dev_server().await;
    let (rust, _ev) = Session::join({
        let mut c =
            SessionConfig::loopback(&srv.url, "ph", &common::token("ph", "rust", &common::all()));
        c.publish = Some(PublisherConfig {
            width: 320,
            height: 240,
            ..PublisherConfig::default()
        });
        c
    })
    .await
    .expect("rust joins");
    let mut b = Browser::launch().await;
    for (w, h) in [(390, 844), (360, 740)] {
        b.set_viewport(w, h, true).await;
        b.goto(&format!("http://{}/?room=ph&name=Pat", srv.addr))
            .await;
        wait_view(&mut b, "prejoin").await;
        let sw = b.eval("document.documentElement.scrollWidth").await;
        assert!(
            sw.as_i64().unwrap() <= i64::from(w),
            "pre-join is {sw} px wide at {w} px"
        );
        if w == 390 {
            b.screenshot(&output_dir().join("web-prejoin-390.png"))
                .await;
        }
        b.click("#joinbtn").await;
        wait_view(&mut b, "call").await;
        b.wait_for(
            "the Rust tile to play",
            "[...document.querySelectorAll('.tile:not([data-peer=local]) video')].some(v => v.videoWidth > 0)",
            LONG,
        )
        .await;
        let sw = b.eval("document.documentElement.scrollWidth").await;
        assert!(
            sw.as_i64().unwrap() <= i64::from(w),
            "the call is {sw} px wide at {w} px"
        );
        // The chat opens over the stage and closes again.
        b.click("#chat-btn").await;
        assert_eq!(
            b.eval("document.getElementById('chat-btn').getAttribute('aria-expanded')")
                .await,
            json!("true")
        );
        b.click("#chat-btn").await;
        b.click("#leave").await;
        wait_view(&mut b, "prejoin").await;
    }
    b.assert_no_console_errors().await;
    rust.leave().await;
}

/// A token without `publish`: the page joins without ever opening the camera and says why;
/// without `message` the chat input is off; without `subscribe` no media is received.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grants_limit_what_the_page_captures_and_receives() {
    let srv = common::start(common::config()).await;
    let room = "gr";
    let (rust, _ev) = Session::join({
        let mut c =
            SessionConfig::loopback(&srv.url, room, &common::token(room, "rust", &common::all()));
        c.publish = Some(PublisherConfig {
            width: 320,
            height: 240,
            audio: AudioSource::None,
            ..PublisherConfig::default()
        });
        c
    })
    .await
    .expect("rust joins");
    let mut b = Browser::launch().await;
    let tok = common::token(room, "viewer", &[Grant::Subscribe]);
    b.goto(&page_url(srv.addr, room, &tok, "viewer", true))
        .await;
    wait_view(&mut b, "call").await;
    b.wait_for(
        "the Rust tile to play",
        "[...document.querySelectorAll('.tile:not([data-peer=local]) video')].some(v => v.videoWidth > 0)",
        LONG,
    )
    .await;
    let log = b
        .wait_for(
            "the publish notice",
            "document.getElementById('log').textContent.includes('does not allow publishing') && document.getElementById('log').textContent",
            LONG,
        )
        .await;
    assert!(
        log.as_str()
            .unwrap()
            .contains("without camera and microphone"),
        "{log}"
    );
    assert_eq!(
        captures(&mut b).await,
        0,
        "captured without the publish grant"
    );
    assert_eq!(
        b.eval("[document.getElementById('text').disabled, document.getElementById('screen-btn').disabled, document.getElementById('mic-btn').disabled]").await,
        json!([true, true, true])
    );
    b.assert_no_console_errors().await;
    drop(b);

    // No subscribe: the browser offers or answers without any receiving m-line.
    let mut b = Browser::launch().await;
    let tok = common::token(room, "blind", &[Grant::Publish, Grant::Message]);
    b.goto(&page_url(srv.addr, room, &tok, "blind", true)).await;
    wait_view(&mut b, "call").await;
    b.wait_for(
        "the connection to the Rust peer",
        "[...window.streamwireApp.client.pcs.values()].some(l => l.pc.connectionState === 'connected')",
        LONG,
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let dirs = b
        .eval("[...window.streamwireApp.client.pcs.values()].flatMap(l => l.pc.getTransceivers().map(t => t.currentDirection))")
        .await;
    assert!(
        dirs.as_array()
            .unwrap()
            .iter()
            .all(|d| d != "recvonly" && d != "sendrecv"),
        "a receiving transceiver without subscribe: {dirs}"
    );
    let inbound = b
        .eval("(async () => { let n = 0; for (const l of window.streamwireApp.client.pcs.values()) (await l.pc.getStats()).forEach(s => { if (s.type === 'inbound-rtp') n += s.packetsReceived; }); return n; })()")
        .await;
    assert_eq!(inbound, json!(0), "media received without subscribe");
    b.assert_no_console_errors().await;
    rust.leave().await;
}

/// A message over the server's payload limit fails in the page with a clear line and leaves
/// the session working: a normal message is delivered after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_message_fails_locally_and_the_session_goes_on() {
    let srv = common::start(common::config()).await;
    let room = "big";
    let mut b = Browser::launch().await;
    let tok = common::token(room, "ann", &common::all());
    b.goto(&page_url(srv.addr, room, &tok, "ann", false)).await;
    wait_view(&mut b, "call").await;
    // 200 kB typed into the chat (the input's own maxlength is lifted for the test).
    b.eval("document.getElementById('text').removeAttribute('maxlength'), 1")
        .await;
    b.type_text("#text", &"x".repeat(200_000)).await;
    b.click("#send").await;
    let line = b
        .wait_for(
            "the local failure",
            "[...document.querySelectorAll('#log li')].map(l => l.textContent).find(t => t.startsWith('Not sent'))",
            LONG,
        )
        .await;
    assert_eq!(
        line,
        json!(
            "Not sent: The message is 200000 bytes; the server accepts at most 65536 bytes per message (welcome.limits.max_payload_bytes). Nothing was sent."
        )
    );
    b.type_text("#text", "small one").await;
    b.press("Enter").await;
    let d = b
        .wait_for(
            "the delivery",
            "window.streamwireApp.deliveries.find(d => d.status === 'delivered')",
            LONG,
        )
        .await;
    assert_eq!(
        d["seq"],
        json!(1),
        "the refused message consumed no seq: {d}"
    );
    b.assert_no_console_errors().await;
}

/// Reloading the page leaves the room at once (pagehide): the other side sees `left`, not a
/// member frozen for the 30 s grace period.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_leaves_at_once() {
    let srv = common::start(common::config()).await;
    let room = "rl";
    let (rust, mut events) = Client::connect(ClientConfig::new(
        &srv.url,
        room,
        &common::token(room, "rust", &common::all()),
    ))
    .await
    .expect("rust joins");
    let mut b = Browser::launch().await;
    let tok = common::token(room, "ann", &common::all());
    b.goto(&page_url(srv.addr, room, &tok, "ann", false)).await;
    wait_view(&mut b, "call").await;
    let first = b.eval("window.streamwireApp.client.peerId").await;
    b.cmd("Page.reload", json!({})).await;
    let t0 = tokio::time::Instant::now();
    let reason = loop {
        let ev = tokio::time::timeout_at(t0 + LONG, events.recv())
            .await
            .expect("no peer_left within 30 s")
            .expect("events");
        if let Event::PeerLeft { peer_id, reason } = ev
            && json!(peer_id) == first
        {
            break reason;
        }
    };
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "left after {:?}",
        t0.elapsed()
    );
    assert_eq!(reason, LeaveReason::Left);
    wait_view(&mut b, "call").await;
    rust.leave().await;
}
