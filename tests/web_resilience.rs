//! Loss repair negotiated between headless Chromium (the `web/` client) and a Rust peer
//! (`streamwire::session::Session`) through a real signalling server on loopback: both
//! directions of the offer/answer keep RTX (`apt=` of the chosen video codec), RED and ULPFEC
//! on video and Opus in-band FEC, and media flows.
//! Run: unshare -n sh -c 'ip link set lo up; cargo test --test web_resilience'

mod browser_support;
mod common;

use std::time::Duration;

use browser_support::Browser;
use streamwire::session::{Session, SessionConfig, SessionEvent};
use streamwire::webrtc::MediaKind;
use streamwire::webrtc::publisher::PublisherConfig;
use tokio::sync::mpsc::UnboundedReceiver;

const LONG: Duration = Duration::from_secs(30);

async fn join_rust(
    url: &str,
    room: &str,
    publish: bool,
) -> (Session, UnboundedReceiver<SessionEvent>) {
    let mut cfg = SessionConfig::loopback(url, room, &common::token(room, "rust", &common::all()));
    cfg.publish = publish.then(PublisherConfig::default);
    Session::join(cfg).await.expect("rust session joins")
}

async fn open_browser(srv: &common::TestServer, room: &str, publish: bool) -> Browser {
    let token = common::token(room, "web", &common::all());
    let mut b = Browser::launch().await;
    b.goto(&browser_support::page_url(
        srv.addr, room, &token, "web", publish,
    ))
    .await;
    b.wait_for(
        "browser joined",
        "window.streamwireApp?.client?.state === 'joined'",
        LONG,
    )
    .await;
    b
}

/// The browser's (local, remote) description of its connection to `rust_id`, once both are set.
async fn descriptions(b: &mut Browser, rust_id: &str) -> (String, String) {
    let pc = format!("window.streamwireApp.client.pcs.get('{rust_id}')?.pc");
    let v = b
        .wait_for(
            "both descriptions",
            &format!(
                "(() => {{ const pc = {pc}; return pc?.localDescription?.sdp && pc?.remoteDescription?.sdp \
                 && pc.signalingState === 'stable' && [pc.localDescription.sdp, pc.remoteDescription.sdp]; }})()"
            ),
            LONG,
        )
        .await;
    let text = |i: usize| v[i].as_str().expect("SDP text").to_owned();
    (text(0), text(1))
}

/// The active (port not 0) m-line sections of `kind` in `sdp`.
fn sections<'a>(sdp: &'a str, kind: &str) -> Vec<&'a str> {
    sdp.split("\r\nm=")
        .skip(1)
        .filter(|s| s.starts_with(kind) && !s.starts_with(&format!("{kind} 0 ")))
        .collect()
}

/// Payload type of the `rtpmap` named `name` (case-insensitive) in an m-line section.
fn pt_of(section: &str, name: &str) -> Option<String> {
    section.lines().find_map(|l| {
        let (pt, enc) = l.strip_prefix("a=rtpmap:")?.split_once(' ')?;
        enc.to_ascii_lowercase()
            .starts_with(&format!("{}/", name.to_ascii_lowercase()))
            .then(|| pt.to_owned())
    })
}

/// `what`'s video sections each offer RTX for their first (preferred) codec, RED and ULPFEC,
/// with NACK feedback; its audio sections Opus with in-band FEC.
fn assert_repair(what: &str, sdp: &str) {
    let videos = sections(sdp, "video");
    assert!(!videos.is_empty(), "{what}: no video m-line\n{sdp}");
    for m in videos {
        let first = m
            .lines()
            .next()
            .and_then(|l| l.split_whitespace().nth(3))
            .unwrap_or_else(|| panic!("{what}: m-line format list\n{m}"));
        assert!(
            m.lines()
                .any(|l| l.starts_with("a=fmtp:") && l.ends_with(&format!("apt={first}"))),
            "{what}: RTX (apt={first}) for the first video codec\n{m}"
        );
        assert!(
            m.contains(&format!("a=rtcp-fb:{first} nack\r")),
            "{what}: NACK\n{m}"
        );
        assert!(pt_of(m, "red").is_some(), "{what}: RED\n{m}");
        assert!(pt_of(m, "ulpfec").is_some(), "{what}: ULPFEC\n{m}");
    }
    for m in sections(sdp, "audio") {
        let opus = pt_of(m, "opus").unwrap_or_else(|| panic!("{what}: Opus\n{m}"));
        assert!(
            m.lines()
                .any(|l| l.starts_with(&format!("a=fmtp:{opus} ")) && l.contains("useinbandfec=1")),
            "{what}: Opus in-band FEC\n{m}"
        );
    }
}

/// The browser offers (it joins after the Rust peer) and publishes; the Rust answer keeps RTX,
/// RED and ULPFEC and the Rust peer decodes the browser's video.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_offer_rust_answer_keep_rtx_red_ulpfec() {
    let srv = common::start(common::config()).await;
    let (rust, _events) = join_rust(&srv.url, "res1", false).await;
    let mut b = open_browser(&srv, "res1", true).await;
    let rust_id = rust.peer_id().expect("rust peer id").to_string();
    let (offer, answer) = descriptions(&mut b, &rust_id).await;
    assert_repair("browser offer", &offer);
    assert_repair("Rust answer", &answer);
    let browser_id = b.eval("window.streamwireApp.client.peerId").await;
    let browser_id = browser_id.as_str().expect("browser peer id").to_owned();
    let deadline = tokio::time::Instant::now() + LONG;
    while rust
        .subscriber()
        .counters(&browser_id, MediaKind::Video)
        .decoded
        < 30
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no video decoded from the browser"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    rust.leave().await;
}

/// The Rust peer offers (it joins last) and publishes; the browser's answer keeps RTX, RED and
/// ULPFEC and the browser decodes the Rust video.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_offer_browser_answer_keep_rtx_red_ulpfec() {
    let srv = common::start(common::config()).await;
    let mut b = open_browser(&srv, "res2", false).await;
    let (rust, _events) = join_rust(&srv.url, "res2", true).await;
    let rust_id = rust.peer_id().expect("rust peer id").to_string();
    let (answer, offer) = descriptions(&mut b, &rust_id).await;
    assert_repair("Rust offer", &offer);
    assert_repair("browser answer", &answer);
    let decoded = b
        .wait_for(
            "the browser to decode the Rust video",
            &format!(
                "(async () => {{ let n = 0; (await window.streamwireApp.client.pcs.get('{rust_id}').pc.getStats()).forEach(x => {{ if (x.type === 'inbound-rtp' && x.kind === 'video') n += x.framesDecoded || 0; }}); return n >= 30 && n; }})()"
            ),
            LONG,
        )
        .await;
    assert!(decoded.as_u64().unwrap_or(0) >= 30, "{decoded}");
    rust.leave().await;
}
