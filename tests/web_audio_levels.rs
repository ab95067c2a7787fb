//! RFC 6464 audio levels between headless Chromium (the `web/` client) and a Rust `Session`,
//! through a real signalling server on loopback, with either side offering: Chromium reads the
//! Rust tone's level from the header extension (`RTCRtpReceiver.getSynchronizationSources`),
//! and the Rust side reads the level Chromium sends with its audio.
//! Run: unshare -n sh -c 'ip link set lo up; cargo nextest run --test web_audio_levels'

mod browser_support;
mod common;

use std::time::Duration;

use browser_support::Browser;
use streamwire::session::{Session, SessionConfig, SessionEvent};
use streamwire::webrtc::MediaKind;
use streamwire::webrtc::publisher::{AudioSource, PublisherConfig, VideoSource};
use tokio::sync::mpsc::UnboundedReceiver;

const LONG: Duration = Duration::from_secs(30);

async fn join_session(url: &str, room: &str) -> (Session, UnboundedReceiver<SessionEvent>) {
    let mut cfg = SessionConfig::loopback(url, room, &common::token(room, "rust", &common::all()));
    cfg.publish = Some(PublisherConfig {
        video: VideoSource::None,
        audio: AudioSource::TestTone,
        ..PublisherConfig::default()
    });
    Session::join(cfg).await.expect("rust session joins")
}

/// JS: the audio level (0..1, linear) Chromium received in the extension from `rust_id`'s
/// audio, or null.
fn browser_level(rust_id: &str) -> String {
    format!(
        "(() => {{ const e = window.streamwireApp.client.pcs.get('{rust_id}'); if (!e) return null; \
         for (const r of e.pc.getReceivers()) {{ if (r.track.kind !== 'audio') continue; \
         const s = r.getSynchronizationSources(); \
         if (s.length && typeof s[0].audioLevel === 'number') return s[0].audioLevel; }} \
         return null; }})()"
    )
}

async fn check(rust_first: bool, room: &str) {
    let srv = common::start(common::config()).await;
    let mut rust = None;
    if rust_first {
        rust = Some(join_session(&srv.url, room).await);
    }
    let mut b = Browser::launch().await;
    let token = common::token(room, "web", &common::all());
    b.goto(&browser_support::page_url(
        srv.addr, room, &token, "web", true,
    ))
    .await;
    b.wait_for(
        "browser joined",
        "window.streamwireApp?.client?.state === 'joined'",
        LONG,
    )
    .await;
    let (rust, _events) = match rust {
        Some(r) => r,
        None => join_session(&srv.url, room).await,
    };
    let browser_id = b.eval("window.streamwireApp.client.peerId").await;
    let browser_id = browser_id.as_str().unwrap().to_owned();
    let rust_id = rust.peer_id().unwrap();

    // The tone is 23 dBov: 10^(-23/20) = 0.071 linear. Silence or no extension reads as
    // 0 / null.
    let level = b
        .wait_for(
            "Chromium reads the Rust tone's level",
            &format!(
                "(() => {{ const l = {}; return l !== null && l > 0.02 && l; }})()",
                browser_level(&rust_id)
            ),
            LONG,
        )
        .await;
    let level = level.as_f64().unwrap();
    assert!(
        (0.04..0.13).contains(&level),
        "tone level {level} in Chromium"
    );

    // Chromium's fake microphone (a beep) sends its level; the Rust side reads it.
    let deadline = tokio::time::Instant::now() + LONG;
    loop {
        let c = rust.subscriber().counters(&browser_id, MediaKind::Audio);
        if c.audio_level.is_some() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no audio level read from Chromium's audio ({} buffers decoded)",
            c.decoded
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    rust.leave().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_and_rust_read_each_others_levels_rust_offering() {
    check(false, "al1").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_and_rust_read_each_others_levels_browser_offering() {
    check(true, "al2").await;
}
