//! The demo page "by hand", automated: runs the real `streamwire demo` binary (embedded
//! signalling server on 127.0.0.1, a Rust publisher and a Rust viewer), opens the page URL it
//! prints in headless Chromium (its token makes the page join by itself), and checks that the
//! Rust publisher's tile plays; then presses Leave. Saves a screenshot (`tests/output/demo-page.png`, the source of
//! `docs/web-demo.png`).
//! Run: unshare -n sh -c 'ip link set lo up; cargo test --test web_demo'

mod browser_support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use browser_support::{Browser, output_dir};

const LONG: Duration = Duration::from_secs(30);

/// The `streamwire demo` child process, killed on drop.
struct Demo {
    child: Child,
    /// Every stdout line so far (for failure messages).
    lines: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Demo {
    /// Start `streamwire demo --headless --for 120s` and return it with the page URL it prints.
    async fn start() -> (Demo, String) {
        let mut child = Command::new(env!("CARGO_BIN_EXE_streamwire"))
            .args(["demo", "--headless", "--for", "120s"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start streamwire demo");
        let stdout = child.stdout.take().expect("stdout");
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let seen = lines.clone();
        // Hand over the page URL, then keep draining stdout so the demo never blocks on it.
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(rest) = line.strip_prefix("web demo page (same server): ")
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(rest.trim().to_owned());
                }
                seen.lock().unwrap().push(line);
            }
        });
        let demo = Demo { child, lines };
        let url = tokio::task::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(30)))
            .await
            .expect("join");
        let url = url.unwrap_or_else(|_| {
            panic!(
                "streamwire demo printed no page URL within 30 s; stdout: {:?}",
                demo.lines.lock().unwrap()
            )
        });
        (demo, url)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_page_from_streamwire_demo_plays_the_rust_publisher() {
    let (demo, url) = Demo::start().await;
    assert!(
        url.starts_with("http://127.0.0.1:") && url.contains("room=demo") && url.contains("token="),
        "unexpected page URL: {url}"
    );
    let mut b = Browser::launch().await;
    b.goto(&url).await;
    // The URL carries a token, so the page joins by itself (camera and microphone on).
    b.wait_for(
        "the page to join",
        "window.streamwireApp?.view === 'call' && window.streamwireApp.client.state === 'joined'",
        LONG,
    )
    .await;
    // The demo's publisher tile: named "publisher", its <video> playing.
    const PUBLISHER_VIDEO: &str = "(() => { const t = [...document.querySelectorAll('.tile')].find(t => t.querySelector('.name')?.textContent === 'publisher'); const v = t?.querySelector('video'); return v ? {w: v.videoWidth, h: v.videoHeight, t: v.currentTime} : null; })()";
    let first = b
        .wait_for(
            "the publisher's video to play",
            &format!(
                "(() => {{ const s = {PUBLISHER_VIDEO}; return s && s.w > 0 && s.t > 0 && s; }})()"
            ),
            LONG,
        )
        .await;
    assert_eq!(
        (first["w"].as_i64(), first["h"].as_i64()),
        (Some(640), Some(360)),
        "{first}"
    );
    let t0 = first["t"].as_f64().unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let later = b.eval(PUBLISHER_VIDEO).await;
    let t1 = later["t"].as_f64().unwrap();
    assert!(t1 > t0 + 0.5, "currentTime did not advance: {t0} -> {t1}");
    // The publisher has a tile; the viewer, which publishes nothing, is an avatar chip.
    let tiles = b
        .eval("[...document.querySelectorAll('#grid .tile .name')].map(n => n.textContent)")
        .await;
    assert!(
        tiles.as_array().unwrap().iter().any(|v| v == "publisher"),
        "no `publisher` tile: {tiles}"
    );
    let chips = b
        .eval("[...document.querySelectorAll('#people .name')].map(n => n.textContent)")
        .await;
    assert_eq!(chips, serde_json::json!(["viewer"]), "tiles {tiles}");
    // Let the stats overlay fill, then keep the picture.
    b.wait_for(
        "the publisher tile's stats overlay",
        "[...document.querySelectorAll('.tile')].find(t => t.querySelector('.name')?.textContent === 'publisher')?.querySelector('.stats')?.textContent.includes('quality')",
        LONG,
    )
    .await;
    b.screenshot(&output_dir().join("demo-page.png")).await;
    // Leave by clicking: back to the pre-join screen, camera and microphone released.
    b.click("#leave").await;
    b.wait_for(
        "the pre-join screen",
        "window.streamwireApp.view === 'prejoin'",
        LONG,
    )
    .await;
    assert_eq!(
        b.eval(browser_support::LIVE_CAPTURES).await,
        serde_json::json!(0)
    );
    b.assert_no_console_errors().await;
    // The demo itself is still running and receiving (its own viewer decodes the publisher).
    let lines = demo.lines.lock().unwrap().clone();
    assert!(
        lines
            .iter()
            .any(|l| l.contains(" frames ") && !l.contains("frames 0 ")),
        "the demo's status lines show no received frames: {lines:?}"
    );
}
