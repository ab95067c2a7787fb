//! A 6-member mesh: five headless Chromium pages (the call page, joined by their URL token,
//! 320x240 at 5 fps to fit a 2-core machine: 15 pairs, each page encodes for five peers) and one Rust `Session` (320x240 video, no audio).
//! Everyone sees everyone; four pages mute their microphone by clicking Mute, and every page
//! marks the fifth as the speaking, active member. Screenshots of the call at 1280x800 and
//! 390x844 (`tests/output/web-call-*.png`, the source of `docs/web-call-*.png`).
//! Run: unshare -n sh -c 'ip link set lo up; cargo nextest run --test web_mesh'

mod browser_support;
mod common;

use std::time::Duration;

use browser_support::{Browser, output_dir};
use serde_json::{Value, json};
use streamwire::session::{Session, SessionConfig};
use streamwire::webrtc::MediaKind;
use streamwire::webrtc::publisher::{AudioSource, PublisherConfig};

/// Bound of every wait: the whole mesh negotiates 15 pairs on two cores.
const LONG: Duration = Duration::from_secs(90);
const ROOM: &str = "mesh6";
const PAGES: usize = 5;

/// JS: the remote camera tiles whose video plays, by member name.
const PLAYING: &str = "[...document.querySelectorAll('.tile[data-kind=camera]:not([data-peer=local])')]
    .filter(t => t.querySelector('video').videoWidth > 0).map(t => t.querySelector('.name').textContent).sort()";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn six_member_mesh_everyone_sees_everyone_and_the_speaker_is_marked() {
    let srv = common::start(common::config()).await;
    let mut cfg =
        SessionConfig::loopback(&srv.url, ROOM, &common::token(ROOM, "rust", &common::all()));
    cfg.publish = Some(PublisherConfig {
        width: 320,
        height: 240,
        fps: 5,
        audio: AudioSource::None,
        ..PublisherConfig::default()
    });
    let (rust, _events) = Session::join(cfg).await.expect("rust session joins");

    let t0 = std::time::Instant::now();
    let names: Vec<String> = (1..=PAGES).map(|i| format!("page{i}")).collect();
    // Start the five browsers at once (their start-up is most of the time on a loaded machine),
    // then join them one after another.
    let launched = futures::future::join_all((0..PAGES).map(|_| Browser::launch())).await;
    eprintln!("{PAGES} browsers started at {:?}", t0.elapsed());
    let mut pages = Vec::new();
    for (name, mut b) in names.iter().zip(launched) {
        let token = common::token(ROOM, name, &common::all());
        b.goto(&format!(
            "http://{}/?room={ROOM}&token={token}&name={name}&res=320x240&fps=5",
            srv.addr
        ))
        .await;
        b.wait_for(
            &format!("{name} in the call"),
            "window.streamwireApp?.view === 'call'",
            LONG,
        )
        .await;
        let tracks = b
            .eval("[window.streamwireApp.client.localStream?.getTracks().length, window.streamwireApp.notice, window.streamwireApp.errors]")
            .await;
        assert_eq!(
            tracks[0],
            json!(2),
            "{name} publishes camera and microphone: {tracks}"
        );
        eprintln!("{name} joined at {:?}", t0.elapsed());
        // Everyone but page1 mutes: page1 is the one speaking (the fake microphone beeps).
        if name != "page1" {
            b.click("#mic-btn").await;
            assert_eq!(
                b.eval("document.getElementById('mic-btn').getAttribute('aria-pressed')")
                    .await,
                json!("true")
            );
        }
        pages.push(b);
    }

    // Every page plays the four other pages and the Rust peer.
    for (b, me) in pages.iter_mut().zip(&names) {
        eprintln!(
            "waiting for {me} at {:?}: {}",
            t0.elapsed(),
            b.eval(&format!("JSON.stringify({PLAYING})")).await
        );
        let mut want: Vec<String> = names.iter().filter(|n| *n != me).cloned().collect();
        want.push("rust".into());
        want.sort();
        let want = json!(want);
        b.wait_for(
            &format!("{me} to play everyone"),
            &format!("JSON.stringify({PLAYING}) === '{want}'"),
            LONG,
        )
        .await;
    }
    // ... and keeps playing: currentTime advances on every remote tile.
    let times = "[...document.querySelectorAll('.tile:not([data-peer=local]) video')].map(v => v.currentTime)";
    let before: Vec<Value> = {
        let mut v = Vec::new();
        for b in pages.iter_mut() {
            v.push(b.eval(times).await);
        }
        v
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    for (i, b) in pages.iter_mut().enumerate() {
        let after = b.eval(times).await;
        for (t0, t1) in before[i]
            .as_array()
            .unwrap()
            .iter()
            .zip(after.as_array().unwrap())
        {
            assert!(
                t1.as_f64().unwrap() > t0.as_f64().unwrap(),
                "{}: a remote video stopped: {} -> {}",
                names[i],
                before[i],
                after
            );
        }
    }
    eprintln!("everyone plays everyone at {:?}", t0.elapsed());
    // The Rust peer decodes all five pages.
    let mut ids = Vec::new();
    for b in pages.iter_mut() {
        ids.push(
            b.eval("window.streamwireApp.client.peerId")
                .await
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let deadline = tokio::time::Instant::now() + LONG;
    loop {
        let decoded: Vec<u64> = ids
            .iter()
            .map(|id| rust.subscriber().counters(id, MediaKind::Video).decoded)
            .collect();
        if decoded.iter().all(|&d| d >= 10) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the Rust peer decoded {decoded:?} frames of the five pages"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(rust.peers().await.len(), PAGES);
    eprintln!("the Rust peer decodes everyone at {:?}", t0.elapsed());

    // The speaking member: page1 is the active speaker everywhere, marked on its tile, and the
    // muted members show the muted mark.
    let speaker = ids[0].clone();
    for (b, me) in pages.iter_mut().zip(&names).skip(1) {
        eprintln!("speaker marks on {me} at {:?}", t0.elapsed());
        b.wait_for(
            &format!("{me} to mark page1 as the active speaker"),
            &format!(
                "window.streamwireApp.activeSpeaker === '{speaker}'
                 && document.querySelector('.tile[data-peer=\"{speaker}\"][data-kind=camera]').classList.contains('active')"
            ),
            LONG,
        )
        .await;
        b.wait_for(
            &format!("{me} to see page1 speaking"),
            &format!("document.querySelector('.tile[data-peer=\"{speaker}\"][data-kind=camera]').classList.contains('speaking')"),
            LONG,
        )
        .await;
        let muted = b
            .eval("[...document.querySelectorAll('.tile[data-kind=camera]:not([data-peer=local])')].filter(t => t.querySelector('.mic-off')).map(t => t.querySelector('.name').textContent).sort()")
            .await;
        let mut want: Vec<&str> = names[1..]
            .iter()
            .map(String::as_str)
            .filter(|n| n != me)
            .collect();
        want.sort();
        assert_eq!(muted, json!(want), "{me}: muted marks");
    }
    {
        let b = &mut pages[0];
        b.wait_for(
            "page1 to mark itself speaking",
            "window.streamwireApp.activeSpeaker === 'local' && document.querySelector('.tile[data-peer=local]').classList.contains('speaking')",
            LONG,
        )
        .await;
    }
    // Nobody else is marked speaking anywhere (the Rust peer sends no audio, the others are muted).
    for (b, me) in pages.iter_mut().zip(&names).skip(1) {
        let speaking = b
            .eval("[...document.querySelectorAll('.speaking')].map(e => e.dataset.peer)")
            .await;
        assert!(
            speaking
                .as_array()
                .unwrap()
                .iter()
                .all(|p| *p == json!(speaker)),
            "{me}: others marked speaking: {speaking}"
        );
    }

    // Screenshots of a call as a member sees it (page2).
    let b = &mut pages[1];
    b.wait_for(
        "quality marks on every remote tile",
        "[...document.querySelectorAll('.tile:not([data-peer=local]) .quality')].every(q => q.dataset.q !== '')",
        LONG,
    )
    .await;
    for (w, h, mobile) in [(1280, 800, false), (390, 844, true)] {
        b.set_viewport(w, h, mobile).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let sw = b.eval("document.documentElement.scrollWidth").await;
        assert!(
            sw.as_i64().unwrap() <= i64::from(w),
            "the call is {sw} px wide at {w} px"
        );
        b.screenshot(&output_dir().join(format!("web-call-{w}.png")))
            .await;
    }
    for b in pages.iter_mut() {
        b.assert_no_console_errors().await;
    }
    rust.leave().await;
}
