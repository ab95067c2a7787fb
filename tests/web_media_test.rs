//! The browser client's echo test and network probe (`client.startEchoTest()`,
//! `client.probeNetwork()`, web/streamwire-media-test.js) in headless Chromium against the
//! real server's media test peer on loopback: the echo comes back (frames decoded, audio
//! received) after the server's 2.5 s delay and the test ends by itself; the probe's first
//! report comes within 3 s with both bandwidth estimates; a server without media tests
//! refuses with `not_implemented`; the call page's two buttons, clicked.
//! Run: unshare -n sh -c 'ip link set lo up && cargo nextest run --offline --test web_media_test'

mod browser_support;
mod common;

use std::time::Duration;

use browser_support::{Browser, LIVE_CAPTURES, output_dir};
use serde_json::{Value, json};

const LONG: Duration = Duration::from_secs(30);

/// A server whose media test peer gathers ICE candidates on 127.0.0.1 (libnice leaves
/// loopback out of "every interface", and the test namespace has nothing else).
async fn server(dev: bool) -> common::TestServer {
    let mut cfg = common::config();
    cfg.dev = dev;
    cfg.media_test.local_addresses = vec!["127.0.0.1".into()];
    common::start(cfg).await
}

/// Open the call page (no token: it stays on the pre-join screen) and wait until it is ready.
async fn open_page(b: &mut Browser, addr: std::net::SocketAddr, room: &str) {
    b.goto(&format!("http://{addr}/?room={room}")).await;
    b.wait_for(
        "the pre-join page",
        "window.streamwireApp?.view === 'prejoin' && window.streamwireApp.ready",
        LONG,
    )
    .await;
}

/// JS: a client for `room` with `token` in `window.__c` (nothing connects yet).
fn make_client(room: &str, token: &str) -> String {
    format!(
        "(async () => {{ const m = await import('/streamwire.js');
           window.__c = new m.StreamwireClient({{ url: `ws://${{location.host}}/`, room: '{room}', token: '{token}' }});
           return true; }})()"
    )
}

/// JS: start a test (`echo` or `probe`) with `opts` (a JS object literal); the handle goes to
/// `window.__t`, its reports to `window.__reports` (with the page time of each), its summary
/// (or the rejection) to `window.__summary`. Returns what `media_test_ready` said.
fn start_test(kind: &str, opts: &str) -> String {
    let method = if kind == "echo" {
        "startEchoTest"
    } else {
        "probeNetwork"
    };
    format!(
        "(async () => {{
           window.__reports = []; window.__summary = null;
           window.__t0 = performance.now();
           const t = await window.__c.{method}({{ ...{opts},
             onReport: (r) => window.__reports.push({{ at: performance.now() - window.__t0, r }}) }});
           window.__t = t;
           t.done.then((s) => {{ window.__summary = {{ ...s, at: performance.now() - window.__t0 }}; }},
                       (e) => {{ window.__summary = {{ rejected: e.code, message: e.message }}; }});
           return {{ testId: t.testId, seconds: t.seconds, delayMs: t.delayMs, at: performance.now() - window.__t0 }};
         }})()"
    )
}

/// JS: the inbound streams of the running test's peer connection, by kind.
const INBOUND: &str = "(async () => { const out = {}; (await window.__t.pc.getStats()).forEach((s) => {
    if (s.type === 'inbound-rtp') out[s.kind] = { frames: s.framesDecoded ?? 0, packets: s.packetsReceived ?? 0,
      samples: s.totalSamplesReceived ?? 0, width: s.frameWidth ?? 0 }; }); return out; })()";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_test_plays_back_audio_and_video_after_the_delay_and_ends_by_itself() {
    let srv = server(false).await;
    let mut b = Browser::launch().await;
    open_page(&mut b, srv.addr, "mt1").await;
    let token = common::token("mt1", "ann", &common::all());
    b.eval(&make_client("mt1", &token)).await;
    // 6 s: reports come 0.5, 2.5 and 4.5 s after the connection is up (about 0.5 s after
    // ready), so the last one falls after the echo's arrival (2.5 s).
    let ready = b.eval(&start_test("echo", "{ seconds: 6 }")).await;
    assert_eq!(ready["seconds"], json!(6), "{ready}");
    assert_eq!(ready["delayMs"], json!(2500), "{ready}");
    assert!(ready["testId"].as_str().is_some_and(|s| !s.is_empty()));
    assert_eq!(b.eval(LIVE_CAPTURES).await, json!(2), "camera + microphone");

    // A second test from the same client while this one runs: refused here, nothing opened.
    let second = b
        .eval(
            "window.__c.probeNetwork({ seconds: 3 }).then(() => 'started', (e) => [e.name, e.code, e.message])",
        )
        .await;
    assert_eq!(second[0], json!("StreamwireError"), "{second}");
    assert_eq!(second[1], json!("media_test_running"), "{second}");
    assert!(
        second[2].as_str().unwrap().contains("already running"),
        "{second}"
    );

    // The echo on a <video>: frames decoded from the remote stream, and audio received.
    b.eval(
        "(() => { const v = document.createElement('video'); v.muted = true; v.autoplay = true;
           v.playsInline = true; v.srcObject = window.__t.remoteStream; document.body.append(v);
           window.__v = v; return true; })()",
    )
    .await;
    // Recorded in the page every 100 ms while the test runs (the echo starts 2.5 s into a
    // 6 s test): the most seen of each figure.
    b.eval(&format!(
        "(() => {{ window.__seen = {{ width: 0, frames: 0, packets: 0, samples: 0 }};
           window.__poll = setInterval(async () => {{ try {{ const i = await {INBOUND}; const s = window.__seen;
             s.width = Math.max(s.width, window.__v.videoWidth, i.video?.width ?? 0);
             s.frames = Math.max(s.frames, i.video?.frames ?? 0);
             s.packets = Math.max(s.packets, i.audio?.packets ?? 0);
             s.samples = Math.max(s.samples, i.audio?.samples ?? 0); }} catch {{}} }}, 100); return true; }})()"
    ))
    .await;
    b.wait_for(
        "echoed video frames decoded, or the end",
        "(window.__seen.frames > 5 && window.__seen.width > 0) || window.__summary !== null",
        Duration::from_secs(15),
    )
    .await;
    assert_eq!(
        b.eval("window.__t.remoteStream.getTracks().map((t) => t.kind).sort()")
            .await,
        json!(["audio", "video"])
    );
    let echo_ms = b.eval("window.__t.echoDelayMs").await;
    let echo_ms = echo_ms.as_f64().expect("echo arrival measured");
    assert!(
        (2000.0..6000.0).contains(&echo_ms),
        "the echo arrived {echo_ms} ms after the connection came up (server delay 2500 ms)"
    );

    eprintln!("echo arrived {echo_ms} ms after the connection came up");
    let summary = b
        .wait_for("the test to end by itself", "window.__summary", LONG)
        .await;
    assert_eq!(summary["reason"], json!("time"), "{summary}");
    let at = summary["at"].as_f64().unwrap();
    let started = ready["at"].as_f64().unwrap();
    assert!(
        (5500.0..10000.0).contains(&(at - started)),
        "ended {} ms after media_test_ready (6 s granted)",
        at - started
    );
    let seen = b.eval("clearInterval(window.__poll), window.__seen").await;
    assert_eq!(seen["width"], json!(640), "{seen}");
    let timings = b.eval("window.__t.timings").await;
    assert!(
        seen["frames"].as_i64().unwrap() > 0,
        "echoed frames decoded: {seen}, steps {timings}"
    );
    assert!(
        seen["packets"].as_i64().unwrap() > 0,
        "echoed audio packets: {seen}, steps {timings}"
    );
    assert!(seen["samples"].as_i64().unwrap() > 0, "{seen}");
    let reports = summary["reports"].as_array().expect("reports");
    assert!(!reports.is_empty(), "{summary}");
    let last = &summary["report"];
    assert_eq!(last["test"], json!("echo"));
    assert_eq!(
        last["echo_delay_ms"],
        json!(echo_ms.round() as i64),
        "{last}"
    );
    assert!(last["uplink"]["kbps"].as_f64().unwrap() > 0.0, "{last}");
    assert!(last["downlink"]["kbps"].as_f64().unwrap() > 0.0, "{last}");
    assert_eq!(last["uplink"]["estimate_kbps"], Value::Null, "{last}");
    assert!(last["rtt_ms"].as_f64().is_some(), "{last}");
    let q = last["quality"].as_i64().unwrap();
    assert!((3..=5).contains(&q), "loopback quality {q}: {last}");
    // Everything released: the camera, the peer connection; a new test may start.
    assert_eq!(b.eval(LIVE_CAPTURES).await, json!(0));
    assert_eq!(
        b.eval("[window.__t.pc.connectionState, window.__c._mediaTest]")
            .await,
        json!(["closed", null])
    );
    b.assert_no_console_errors().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_reports_within_3_s_with_both_estimates_then_stops() {
    let srv = server(false).await;
    let mut b = Browser::launch().await;
    open_page(&mut b, srv.addr, "mt2").await;
    let token = common::token("mt2", "bob", &common::all());
    b.eval(&make_client("mt2", &token)).await;
    let ready = b.eval(&start_test("probe", "{ seconds: 20 }")).await;
    assert_eq!(ready["delayMs"], json!(0), "{ready}");
    // No camera for a probe.
    assert_eq!(b.eval("window.__captured.length").await, json!(0));
    let first = b
        .wait_for("the first report", "window.__reports[0]", LONG)
        .await;
    let first_at = first["at"].as_f64().unwrap();
    let timings = b.eval("window.__t.timings").await;
    assert!(
        first_at < 3000.0,
        "first report {first_at} ms after probeNetwork(): {first}, steps {timings}"
    );
    let both = b
        .wait_for(
            "a report with both estimates",
            "window.__reports.map((x) => x.r).find((r) => r.uplink.estimate_kbps > 0 && r.downlink.estimate_kbps > 0)",
            Duration::from_secs(15),
        )
        .await;
    eprintln!("probe: first report after {first_at} ms (steps {timings}): {first}; both: {both}");
    assert_eq!(both["test"], json!("probe"));
    assert!(both["uplink"]["kbps"].as_f64().unwrap() > 0.0, "{both}");
    assert!(both["downlink"]["kbps"].as_f64().unwrap() > 0.0, "{both}");
    assert!(both["rtt_ms"].as_f64().is_some(), "{both}");
    assert_eq!(both["echo_delay_ms"], Value::Null);
    let q = both["quality"].as_i64().unwrap();
    assert!((0..=5).contains(&q), "{both}");
    // Reports every 2 s.
    let n = b.eval("window.__reports.length").await.as_i64().unwrap();
    b.wait_for(
        "the next report",
        &format!("window.__reports.length > {n}"),
        Duration::from_secs(5),
    )
    .await;

    let summary = b.eval("window.__t.stop()").await;
    assert_eq!(summary["reason"], json!("left"), "{summary}");
    assert_eq!(summary["test"], json!("probe"), "{summary}");
    assert!(
        summary["reports"].as_array().unwrap().len() >= 2,
        "{summary}"
    );
    assert_eq!(
        b.eval("window.__t.localStream.getTracks().every((t) => t.readyState === 'ended')")
            .await,
        json!(true),
        "the noise stream stopped"
    );
    b.assert_no_console_errors().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_without_media_tests_refuses_with_not_implemented() {
    let srv = common::ServeProcess::spawn(
        &[
            "--max-media-tests",
            "0",
            "--media-test-address",
            "127.0.0.1",
        ],
        None,
    )
    .await;
    let mut b = Browser::launch().await;
    open_page(&mut b, srv.addr, "mt3").await;
    let token = common::token("mt3", "cy", &common::all());
    b.eval(&make_client("mt3", &token)).await;
    for kind in ["echo", "probe"] {
        let r = b
            .eval(&format!(
                "{}.then(() => 'started', (e) => [e.name, e.code, e.message])",
                start_test(kind, "{ seconds: 5 }")
            ))
            .await;
        assert_eq!(r[0], json!("StreamwireError"), "{kind}: {r}");
        assert_eq!(r[1], json!("not_implemented"), "{kind}: {r}");
        assert!(
            r[2].as_str().unwrap().contains("--max-media-tests 0"),
            "{kind}: {r}"
        );
        // Nothing held: the capture released, the client free for another test.
        assert_eq!(b.eval(LIVE_CAPTURES).await, json!(0), "{kind}");
        assert_eq!(b.eval("window.__c._mediaTest").await, Value::Null, "{kind}");
    }
    // A bad length is refused here, before anything is opened.
    let r = b
        .eval("window.__c.startEchoTest({ seconds: 0 }).then(() => 'started', (e) => [e.code, e.field])")
        .await;
    assert_eq!(r, json!(["invalid_field", "seconds"]));
    b.assert_no_console_errors().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prejoin_buttons_run_the_echo_test_and_the_network_probe() {
    let srv = server(true).await;
    let mut b = Browser::launch().await;
    b.set_viewport(1280, 900, false).await;
    open_page(&mut b, srv.addr, "mt4").await;

    b.click("#echo-test-btn").await;
    b.wait_for(
        "the echo playing in the page",
        "document.getElementById('mt-video').videoWidth > 0 && !document.getElementById('mt-panel').hidden",
        LONG,
    )
    .await;
    let figures = b
        .wait_for(
            "the echo test's figures",
            "(() => { const t = document.getElementById('mt-figures').textContent; return /Round trip/.test(t) && /Echo after/.test(t) && t; })()",
            LONG,
        )
        .await;
    assert!(figures.as_str().unwrap().contains("Quality"), "{figures}");
    // One test at a time: both buttons are disabled while it runs.
    assert_eq!(
        b.eval("[document.getElementById('echo-test-btn').disabled, document.getElementById('probe-btn').disabled]")
            .await,
        json!([true, true])
    );
    b.screenshot(&output_dir().join("web-echo-test.png")).await;
    b.click("#mt-stop").await;
    b.wait_for(
        "the echo test stopped",
        &format!("{LIVE_CAPTURES} === 0 && !document.getElementById('probe-btn').disabled"),
        LONG,
    )
    .await;
    let status = b
        .eval("document.getElementById('mt-status').textContent")
        .await;
    assert!(status.as_str().unwrap().contains("stopped"), "{status}");

    b.click("#probe-btn").await;
    let figures = b
        .wait_for(
            "the probe's estimates both ways",
            "(() => { const t = document.getElementById('mt-figures').textContent; return /Upload\\s*[1-9]\\d* kbit\\/s/.test(t) && /Download\\s*[1-9]\\d* kbit\\/s/.test(t) && t; })()",
            LONG,
        )
        .await;
    assert!(figures.as_str().unwrap().contains("Quality"), "{figures}");
    assert_eq!(
        b.eval("window.__captured.length").await,
        json!(2),
        "the probe opens no camera"
    );
    b.click("#mt-stop").await;
    b.wait_for(
        "the probe stopped",
        "!document.getElementById('echo-test-btn').disabled",
        LONG,
    )
    .await;
    b.assert_no_console_errors().await;
}
