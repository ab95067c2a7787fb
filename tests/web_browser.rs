//! The browser client (`web/`) in a real headless Chromium against a real server on loopback.
//! Run: unshare -n sh -c 'ip link set lo up; cargo test --test web_browser'

mod browser_support;
mod common;

use std::time::Duration;

use browser_support::{Browser, output_dir, page_url};
use serde_json::json;
use streamwire::signalling::client::{Client, ClientConfig, Event};
use streamwire::signalling::protocol::{DeliveryStatus, Grant, Payload};
use streamwire::signalling::token::{Claims, mint};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const LONG: Duration = Duration::from_secs(20);

async fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = String::new();
    common::within("http response", s.read_to_string(&mut out))
        .await
        .unwrap();
    out
}

#[tokio::test]
async fn serve_routes_http_and_websocket_on_one_port() {
    let srv = common::start(common::config()).await;
    let index = http_get(srv.addr, "/").await;
    assert!(index.starts_with("HTTP/1.1 200 OK"), "{index}");
    assert!(index.contains("Content-Type: text/html"), "{index}");
    assert!(index.contains("<script type=\"module\" src=\"app.js\">"));
    let js = http_get(srv.addr, "/streamwire.js").await;
    assert!(js.contains("Content-Type: text/javascript"), "{js}");
    assert!(js.contains("export class StreamwireClient"));
    // Every module the page imports, and the icon browsers ask for by themselves.
    for path in [
        "/app-call.js",
        "/app-chat.js",
        "/app-media.js",
        "/streamwire-util.js",
        "/streamwire-peer.js",
        "/streamwire-media.js",
        "/streamwire-audio-dump.js",
        "/streamwire-audio-dump-worklet.js",
        "/streamwire-media-test.js",
        "/streamwire-speaker.js",
        "/streamwire-frames.js",
        "/app-test.js",
        "/sfu.js",
        "/whiteboard/whiteboard.js",
        "/whiteboard/board.js",
        "/whiteboard/presence.js",
        "/whiteboard/paint.js",
        "/whiteboard/tools.js",
        "/whiteboard/export.js",
        "/vendor/yjs.js",
    ] {
        let r = http_get(srv.addr, path).await;
        assert!(r.starts_with("HTTP/1.1 200 OK"), "{path}: {r}");
        assert!(r.contains("Content-Type: text/javascript"), "{path}: {r}");
    }
    for path in ["/favicon.ico", "/favicon.svg"] {
        let r = http_get(srv.addr, path).await;
        assert!(r.starts_with("HTTP/1.1 200 OK"), "{path}: {r}");
        assert!(r.contains("Content-Type: image/svg+xml"), "{path}: {r}");
        assert!(r.contains("<svg"), "{path}: {r}");
    }
    let missing = http_get(srv.addr, "/nope.js").await;
    assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");
    assert!(missing.contains("no such page: /nope.js"));
    // Without --dev there is no token minting.
    let dev = http_get(srv.addr, "/dev/token?room=a").await;
    assert!(dev.starts_with("HTTP/1.1 404"), "{dev}");
    assert!(
        http_get(srv.addr, "/dev")
            .await
            .ends_with("{\"dev\":false}")
    );
    // The WebSocket protocol still works on the same port.
    let (_raw, welcome) =
        common::Raw::join(&srv.url, "r", &common::token("r", "u", &common::all())).await;
    assert!(matches!(
        welcome,
        streamwire::signalling::protocol::ServerMsg::Welcome { .. }
    ));
}

#[tokio::test]
async fn dev_mode_mints_tokens_that_join() {
    let mut cfg = common::config();
    cfg.dev = true;
    let srv = common::start(cfg).await;
    let r = http_get(srv.addr, "/dev/token?room=lab%3A1&name=Ann").await;
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    let body: serde_json::Value =
        serde_json::from_str(r.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    let token = body["token"].as_str().unwrap();
    let claims =
        streamwire::signalling::token::verify(common::SECRET, token, "lab:1").expect("valid token");
    assert_eq!(claims.name, "Ann");
    // `user=`: the page's per-browser id becomes the token's subject (a rejoin replaces it).
    let r = http_get(srv.addr, "/dev/token?room=lab&name=Ann&user=b0e2-x_9").await;
    let body: serde_json::Value =
        serde_json::from_str(r.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    let claims = streamwire::signalling::token::verify(
        common::SECRET,
        body["token"].as_str().unwrap(),
        "lab",
    )
    .expect("valid token");
    assert_eq!(claims.sub, "dev-b0e2-x_9");
    let bad_user = http_get(srv.addr, "/dev/token?room=lab&user=a%20b").await;
    assert!(bad_user.starts_with("HTTP/1.1 400"), "{bad_user}");
    assert!(bad_user.contains("`user` must be"), "{bad_user}");
    let bad = http_get(srv.addr, "/dev/token?name=x").await;
    assert!(bad.starts_with("HTTP/1.1 400"), "{bad}");
    assert!(bad.contains("`room` is missing"));
}

/// Issue test 6: an expired token shows a readable error on the page.
#[tokio::test]
async fn page_shows_readable_error_for_expired_token() {
    let srv = common::start(common::config()).await;
    let mut claims = Claims::new("r6", "ann", "Ann", Duration::from_secs(60), &Grant::ALL);
    claims.exp = claims.iat - 120;
    claims.iat -= 3600;
    let token = mint(common::SECRET, &claims).unwrap();
    let mut b = Browser::launch().await;
    b.goto(&page_url(srv.addr, "r6", &token, "Ann", false))
        .await;
    let text = b
        .wait_for(
            "the error message",
            "document.getElementById('status').className === 'error' && document.getElementById('status').textContent",
            LONG,
        )
        .await;
    let text = text.as_str().unwrap();
    assert!(text.contains("token has expired"), "status: {text}");
    assert!(text.contains("Ask for a new token"), "status: {text}");
    assert_eq!(
        b.eval("window.streamwireApp.error.code").await,
        json!("token_expired")
    );
    // The form is usable again for a corrected join.
    assert_eq!(
        b.eval("document.getElementById('joinbtn').disabled").await,
        json!(false)
    );
    b.screenshot(&output_dir().join("expired-token.png")).await;
}

/// Issue test 4: real-time messages browser <-> Rust peer, in order, with delivery results.
#[tokio::test]
async fn messages_round_trip_between_browser_and_rust_peer() {
    let srv = common::start(common::config()).await;
    let mut b = Browser::launch().await;
    let tok = common::token("r4", "web", &common::all());
    b.goto(&page_url(srv.addr, "r4", &tok, "web", false)).await;
    b.wait_for(
        "browser joined",
        "window.streamwireApp?.client?.state === 'joined'",
        LONG,
    )
    .await;

    let (rust, mut events) = Client::connect(ClientConfig::new(
        &srv.url,
        "r4",
        &common::token("r4", "rust", &common::all()),
    ))
    .await
    .expect("rust client joins");
    b.wait_for(
        "browser sees the Rust peer",
        "window.streamwireApp.client.peers.size === 1",
        LONG,
    )
    .await;

    // Browser -> Rust: 20 messages, delivery results awaited in the page.
    let deliveries = b
        .eval(
            "(async () => { const c = window.streamwireApp.client; const ps = [];
               for (let i = 1; i <= 20; i++) ps.push(c.sendMessage('b' + i));
               return await Promise.all(ps); })()",
        )
        .await;
    let deliveries = deliveries.as_array().unwrap();
    assert_eq!(deliveries.len(), 20);
    for (i, d) in deliveries.iter().enumerate() {
        assert_eq!(d["seq"], json!(i + 1));
        assert_eq!(d["status"], json!("delivered"), "{d}");
        assert_eq!(d["recipients"], json!(1), "{d}");
    }
    let browser_id = b.eval("window.streamwireApp.client.peerId").await;
    let mut got = Vec::new();
    while got.len() < 20 {
        let ev = common::within("messages at the Rust peer", events.recv())
            .await
            .expect("events");
        if let Event::Message {
            from, seq, payload, ..
        } = ev
        {
            assert_eq!(json!(from), browser_id);
            let Payload::Text(t) = payload else {
                panic!("binary payload")
            };
            got.push((seq, t));
        }
    }
    let want: Vec<(u64, String)> = (1..=20).map(|i| (i, format!("b{i}"))).collect();
    assert_eq!(got, want);

    // Rust -> browser: in order, with delivered results at the Rust side.
    for i in 1..=20 {
        let d = common::within(
            "delivery",
            rust.send_message(None, Payload::Text(format!("r{i}"))),
        )
        .await
        .expect("delivery");
        assert_eq!(d.seq, i);
        assert_eq!(d.status, DeliveryStatus::Delivered);
        assert_eq!(d.recipients, 1);
    }
    let texts = b
        .wait_for(
            "20 messages in the page",
            "window.streamwireApp.messages.length >= 20 && window.streamwireApp.messages.map(m => m.text)",
            LONG,
        )
        .await;
    let want: Vec<String> = (1..=20).map(|i| format!("r{i}")).collect();
    assert_eq!(texts, json!(want));
    // And they are shown in the chat panel.
    let shown = b.eval("document.getElementById('log').textContent").await;
    assert!(shown.as_str().unwrap().contains("rust: r20"), "{shown}");
    rust.leave().await;
}

/// A dropped connection shows "reconnecting", resumes the session (same peer id) and delivers
/// what was sent meanwhile exactly once; a server that is gone is reported as such.
#[tokio::test]
async fn page_reconnects_with_resume_then_reports_server_gone() {
    let srv = common::start(common::config()).await;
    let proxy = common::Proxy::start(srv.addr).await;
    let proxy_http = proxy.url.replacen("ws://", "http://", 1);
    let tok = common::token("rr", "web", &common::all());
    let mut b = Browser::launch().await;
    b.goto(&format!(
        "{proxy_http}/?room=rr&token={tok}&name=web&publish=0&autojoin=1&attempts=3"
    ))
    .await;
    b.wait_for(
        "joined",
        "window.streamwireApp?.client?.state === 'joined'",
        LONG,
    )
    .await;
    let id_before = b.eval("window.streamwireApp.client.peerId").await;
    let (rust, mut rust_events) = Client::connect(ClientConfig::new(
        &srv.url,
        "rr",
        &common::token("rr", "rust", &common::all()),
    ))
    .await
    .unwrap();
    b.wait_for(
        "peer seen",
        "window.streamwireApp.client.peers.size === 1",
        LONG,
    )
    .await;

    // Cut the browser's connection; a message sent now reaches it after the resume.
    let mut states = Vec::new();
    b.eval("window.__states = []; window.streamwireApp.client.addEventListener('state', e => window.__states.push(e.detail.state)); 1").await;
    assert!(proxy.kill() >= 1);
    // The browser sends while its socket is dead: kept and resent after the resume.
    b.eval("window.__away = window.streamwireApp.client.sendMessage('from away'); 1")
        .await;
    let d = common::within(
        "delivery",
        rust.send_message(None, Payload::Text("while away".into())),
    )
    .await
    .unwrap();
    assert_eq!(
        d.status,
        DeliveryStatus::Delivered,
        "kept for the resuming peer"
    );
    b.wait_for(
        "resumed",
        "window.streamwireApp.client.state === 'resumed'",
        LONG,
    )
    .await;
    states.extend(
        b.eval("window.__states")
            .await
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned()),
    );
    assert_eq!(
        states.first().map(String::as_str),
        Some("reconnecting"),
        "{states:?}"
    );
    assert!(states.contains(&"resumed".to_owned()), "{states:?}");
    assert_eq!(
        b.eval("window.streamwireApp.client.peerId").await,
        id_before
    );
    let msgs = b
        .wait_for(
            "the message sent while away",
            "window.streamwireApp.messages.length >= 1 && window.streamwireApp.messages.map(m => m.text)",
            LONG,
        )
        .await;
    assert_eq!(msgs, json!(["while away"]), "exactly once");
    let status = b
        .eval("document.getElementById('status').textContent")
        .await;
    assert!(
        status.as_str().unwrap().contains("session resumed"),
        "{status}"
    );
    let d = b.eval("window.__away").await;
    assert_eq!(d["status"], json!("delivered"), "{d}");
    let mut got = Vec::new();
    while let Ok(Some(ev)) =
        tokio::time::timeout(Duration::from_millis(1500), rust_events.recv()).await
    {
        if let Event::Message { payload, .. } = ev {
            got.push(payload);
        }
    }
    assert_eq!(got, vec![Payload::Text("from away".into())], "exactly once");

    // The server goes away for good: after its reconnect attempts the page says so.
    srv.handle.shutdown().await;
    drop(srv);
    let text = b
        .wait_for(
            "server gone",
            "document.getElementById('status').className === 'error' && document.getElementById('status').textContent",
            Duration::from_secs(30),
        )
        .await;
    assert!(text.as_str().unwrap().starts_with("Server gone"), "{text}");
    // Back on the pre-join screen with Join usable (no Leave needed first), nothing captured.
    assert_eq!(
        b.eval("[window.streamwireApp.view, document.getElementById('joinbtn').disabled]")
            .await,
        json!(["prejoin", false])
    );
    assert_eq!(
        b.eval(browser_support::LIVE_CAPTURES).await,
        json!(0),
        "a capture survived the lost session"
    );
}

/// The page's quality score is the one src/webrtc/stats.rs computes.
#[tokio::test]
async fn js_quality_score_matches_rust() {
    let srv = common::start(common::config()).await;
    let mut b = Browser::launch().await;
    b.goto(&format!("http://{}/", srv.addr)).await;
    b.wait_for("module loaded", "window.streamwireApp !== undefined", LONG)
        .await;
    let cases: [(f64, Option<f64>, f64); 8] = [
        (0.0, Some(5.0), 1.0),
        (4.0, Some(5.0), 1.0),
        (20.0, Some(400.0), 100.0),
        (1.0, None, 0.0),
        (3.0, Some(260.0), 45.0),
        (0.9, Some(151.0), 31.0),
        (7.5, Some(300.0), 60.0),
        (100.0, Some(0.0), 0.0),
    ];
    for (loss, rtt, jitter) in cases {
        let rtt_js = rtt.map_or("null".to_owned(), |r| r.to_string());
        let js = b
            .eval(&format!(
                "import('/streamwire.js').then(m => m.qualityScore({loss}, {rtt_js}, {jitter}))"
            ))
            .await;
        let rust = streamwire::webrtc::stats::quality_score(loss, rtt, jitter);
        assert_eq!(js, json!(rust), "loss {loss} rtt {rtt:?} jitter {jitter}");
    }
}

/// A denied camera is reported on the page, and the user still joins (without publishing).
#[tokio::test]
async fn page_reports_denied_camera_and_joins_without_publishing() {
    let srv = common::start(common::config()).await;
    let mut b = Browser::launch_with(false).await;
    let origin = format!("http://{}", srv.addr);
    let tok = common::token("rc", "web", &common::all());
    b.goto(&format!(
        "{origin}/?room=rc&token={tok}&name=web&publish=1&autojoin=1"
    ))
    .await;
    b.wait_for(
        "joined",
        "window.streamwireApp?.client?.state === 'joined'",
        LONG,
    )
    .await;
    let notice = b
        .wait_for(
            "the camera notice",
            "document.getElementById('notice').textContent",
            LONG,
        )
        .await;
    assert!(
        notice
            .as_str()
            .unwrap()
            .starts_with("Camera/microphone denied"),
        "{notice}"
    );
    let status = b
        .eval("document.getElementById('status').textContent")
        .await;
    assert!(
        status.as_str().unwrap().starts_with("Joined room rc"),
        "{status}"
    );
    assert_eq!(
        b.eval("window.streamwireApp.client.localStream").await,
        json!(null)
    );
}
