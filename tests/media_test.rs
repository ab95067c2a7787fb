//! Echo test and network probe against the server's media test peer: a real server, real
//! `webrtcbin` peers on both sides, loopback (or, for the rate limits, a veth pair into a
//! namespace of the test's own with `tc tbf` on each end).
//! Run: unshare -n sh -c 'ip link set lo up; cargo nextest run --test media_test'

mod common;
mod netns_support;

use std::time::{Duration, Instant};

use serde_json::json;
use streamwire::media_test::{MediaTestEnd, MediaTestError, MediaTestKind, TestConfig, run};
use streamwire::server::ServerConfig;
use streamwire::signalling::protocol::{ErrorCode, Grant, ServerMsg};
use streamwire::webrtc::publisher::{AudioSource, VideoSource};

fn server_config() -> ServerConfig {
    let mut cfg = common::config();
    cfg.media_test.local_addresses = vec!["127.0.0.1".into()];
    cfg
}

fn test_config(url: &str, user: &str, seconds: u32) -> TestConfig {
    let token = common::token("lobby", user, &[Grant::Subscribe]);
    let mut cfg = TestConfig::loopback(url, "lobby", &token);
    cfg.seconds = Some(seconds);
    cfg
}

async fn no_tests_left(server: &common::TestServer) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.handle.stats().media_tests > 0 {
        assert!(
            Instant::now() < deadline,
            "a media test was never torn down"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_returns_audio_and_video_after_the_delay_and_ends_by_itself() {
    let server = common::start(server_config()).await;
    let cfg = test_config(&server.url, "ann", 7);
    let started = Instant::now();
    let summary = run(MediaTestKind::Echo, &cfg, |_| {})
        .await
        .expect("echo test");
    let took = started.elapsed();
    assert_eq!(summary.end, MediaTestEnd::Time, "{}", summary.message);
    assert!(
        took >= Duration::from_secs(7) && took < Duration::from_secs(12),
        "a 7 s test took {took:?}"
    );
    assert_eq!(summary.delay_ms, 2500);
    assert!(summary.reports.len() >= 2, "{:?}", summary.reports);
    let last = summary.reports.last().unwrap();
    let echo = last.echo_delay_ms.expect("the echo arrived");
    assert!(
        (2400..4500).contains(&echo),
        "echo {echo} ms after the connection, the server holds 2500 ms"
    );
    // Test pattern (~1 Mbit/s) and tone go up and come back.
    assert!(last.uplink.kbps > 300.0, "{last:?}");
    assert!(last.downlink.kbps > 300.0, "{last:?}");
    assert!(last.rtt_ms.is_some() && last.quality >= 4, "{last:?}");
    assert_eq!(
        (last.uplink.estimate_kbps, last.downlink.bandwidth_kbps),
        (None, None),
        "no estimates in an echo test"
    );
    no_tests_left(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_follows_the_configured_delay_and_echoes_each_kind() {
    let mut cfg = server_config();
    cfg.media_test.echo_delay = Duration::from_millis(500);
    let server = common::start(cfg).await;
    // Audio alone: its echo arrives (the tone is about 40 kbit/s with its headers).
    let mut t = test_config(&server.url, "ann", 5);
    t.publish.video = VideoSource::None;
    let audio = run(MediaTestKind::Echo, &t, |_| {})
        .await
        .expect("audio echo");
    assert_eq!(audio.delay_ms, 500);
    let last = audio.reports.last().expect("reports");
    let echo = last.echo_delay_ms.expect("the audio echo arrived");
    assert!(
        (400..2000).contains(&echo),
        "echo after {echo} ms, delay 500 ms"
    );
    assert!(
        last.downlink.kbps > 15.0 && last.downlink.kbps < 200.0,
        "{last:?}"
    );
    // Video alone, once the first test's place is free (it is freed when its pipeline is
    // torn down, just after `media_test_ended`).
    no_tests_left(&server).await;
    let mut t = test_config(&server.url, "ann", 5);
    t.publish.audio = AudioSource::None;
    let video = run(MediaTestKind::Echo, &t, |_| {})
        .await
        .expect("video echo");
    let last = video.reports.last().expect("reports");
    assert!(last.echo_delay_ms.is_some(), "{last:?}");
    assert!(last.downlink.kbps > 300.0, "{last:?}");
    no_tests_left(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_played_echo_with_a_microphone_runs_through_the_echo_canceller() {
    // Playback on and a processed microphone: the test wires the DSP's far-end reference to
    // the playback path before the pipeline starts. Without it, webrtcdsp finds no probe,
    // fails, and no audio (hence no echo) comes back.
    let server = common::start(server_config()).await;
    // 8 s: a test's time counts from its start, reports from the media connection; on a
    // loaded machine (the full suite) 5 s left one report, 2.5 s after the connection, before
    // the processed audio's echo had arrived.
    let mut t = test_config(&server.url, "ann", 8);
    t.publish.video = VideoSource::None;
    let tone = gst::ElementFactory::make("audiotestsrc")
        .property("is-live", true)
        .build()
        .unwrap();
    t.publish.audio = AudioSource::MicrophoneElement {
        element: tone,
        echo_probe: None,
    };
    t.playback = true;
    let summary = run(MediaTestKind::Echo, &t, |_| {})
        .await
        .expect("echo test");
    assert_eq!(summary.end, MediaTestEnd::Time, "{}", summary.message);
    let last = summary.reports.last().expect("reports");
    assert!(
        last.echo_delay_ms.is_some(),
        "the processed audio came back: {last:?}"
    );
    assert!(last.downlink.kbps > 15.0, "{last:?}");
    no_tests_left(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_reports_within_three_seconds_and_every_two() {
    let server = common::start(server_config()).await;
    let cfg = test_config(&server.url, "ann", 6);
    let started = Instant::now();
    let mut first = None;
    let summary = run(MediaTestKind::Probe, &cfg, |_| {
        first.get_or_insert_with(|| started.elapsed());
    })
    .await
    .expect("probe");
    let first = first.expect("a report");
    assert!(
        first <= Duration::from_secs(3),
        "first report after {first:?}"
    );
    assert_eq!(summary.end, MediaTestEnd::Time);
    let gaps: Vec<u64> = summary
        .reports
        .windows(2)
        .map(|w| w[1].elapsed_ms - w[0].elapsed_ms)
        .collect();
    assert!(
        !gaps.is_empty() && gaps.iter().all(|g| (1500..=2600).contains(g)),
        "report gaps {gaps:?} ms"
    );
    let last = summary.reports.last().unwrap();
    for (name, path) in [("uplink", &last.uplink), ("downlink", &last.downlink)] {
        assert!(
            path.estimate_kbps.is_some_and(|e| e > 0),
            "{name}: {path:?}"
        );
        assert!(
            path.bandwidth_kbps.is_some_and(|b| b > 300.0),
            "{name}: {path:?}"
        );
        assert!(path.loss_pct < 1.0, "{name} on loopback: {path:?}");
    }
    no_tests_left(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cap_and_one_test_per_user_are_enforced() {
    let mut cfg = server_config();
    cfg.media_test.max_tests = 1;
    let server = common::start(cfg).await;
    let running = test_config(&server.url, "ann", 6);
    let url = server.url.clone();
    let first = tokio::spawn(async move { run(MediaTestKind::Probe, &running, |_| {}).await });
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.handle.stats().media_tests == 0 {
        assert!(Instant::now() < deadline, "the first test never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for user in ["ann", "bob"] {
        let e = run(MediaTestKind::Echo, &test_config(&url, user, 3), |_| {})
            .await
            .expect_err("refused at the cap");
        let MediaTestError::Refused { code, message } = e else {
            panic!("{user}: {e}");
        };
        assert_eq!(code, ErrorCode::MediaTestFull, "{user}: {message}");
        let why = if user == "ann" {
            "already runs"
        } else {
            "--max-media-tests"
        };
        assert!(message.contains(why), "{user}: {message}");
    }
    let summary = first.await.unwrap().expect("the first test ran");
    assert_eq!(summary.end, MediaTestEnd::Time);
    no_tests_left(&server).await;
    // The place is free again.
    let again = run(MediaTestKind::Echo, &test_config(&url, "bob", 2), |_| {}).await;
    assert!(again.is_ok(), "{again:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_test_whose_media_never_connects_fails_after_ten_seconds() {
    // The production default, every interface: in this namespace only loopback, which libnice
    // leaves out, so the media test peer has no candidate at all.
    let server = common::start(common::config()).await;
    let started = Instant::now();
    let summary = run(
        MediaTestKind::Probe,
        &test_config(&server.url, "ann", 30),
        |_| {},
    )
    .await
    .expect("the server ends it");
    let took = started.elapsed();
    assert_eq!(summary.end, MediaTestEnd::Failed, "{}", summary.message);
    assert!(
        summary.message.contains("no media connection within 10 s"),
        "{}",
        summary.message
    );
    assert!(
        took >= Duration::from_secs(10) && took < Duration::from_secs(16),
        "ended after {took:?}"
    );
    no_tests_left(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_without_media_tests_says_so() {
    let mut cfg = server_config();
    cfg.media_test.max_tests = 0;
    let server = common::start(cfg).await;
    let e = run(
        MediaTestKind::Echo,
        &test_config(&server.url, "ann", 2),
        |_| {},
    )
    .await
    .expect_err("no media tests");
    assert!(
        matches!(
            &e,
            MediaTestError::Refused {
                code: ErrorCode::NotImplemented,
                ..
            }
        ),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_protocol_refuses_bad_frames_and_nobody_in_the_room_sees_a_test() {
    let server = common::start(server_config()).await;
    let member = common::token("lobby", "member", &common::all());
    let (mut room, _welcome) = common::Raw::join(&server.url, "lobby", &member).await;

    let token = common::token("lobby", "ann", &[Grant::Subscribe]);
    let start = |extra: serde_json::Value| {
        let mut frame =
            json!({"type": "media_test", "v": 1, "room": "lobby", "token": token, "test": "echo"});
        for (k, v) in extra.as_object().unwrap() {
            frame[k] = v.clone();
        }
        frame
    };
    let mut raw = common::Raw::connect(&server.url).await;
    // Bounds, token, test kind: each named.
    raw.send_json(start(json!({"seconds": 0}))).await;
    let (code, _, field, message) = raw.error().await;
    assert_eq!(
        (code.as_str(), field.as_deref()),
        ("invalid_field", Some("seconds")),
        "{message}"
    );
    raw.send_json(start(json!({"seconds": 61}))).await;
    let (code, _, _, message) = raw.error().await;
    assert_eq!(code, "invalid_field");
    assert!(message.contains("1 to 60"), "{message}");
    raw.send_json(start(json!({"room": "other"}))).await;
    let (code, _, field, _) = raw.error().await;
    assert_eq!(
        (code.as_str(), field.as_deref()),
        ("token_wrong_room", Some("room"))
    );
    raw.send_json(start(json!({"test": "ping"}))).await;
    let (code, _, field, message) = raw.error().await;
    assert_eq!(
        (code.as_str(), field.as_deref()),
        ("invalid_field", Some("test")),
        "{message}"
    );
    // A good one.
    raw.send_json(start(json!({"seconds": 3}))).await;
    let ready = raw
        .expect("media_test_ready", |m| match m {
            ServerMsg::MediaTestReady {
                seconds,
                delay_ms,
                report_interval_ms,
                ..
            } => Some((*seconds, *delay_ms, *report_interval_ms)),
            _ => None,
        })
        .await;
    assert_eq!(ready, (3, 2500, 2000));
    // Only offer/ice to `media-test`, leave and ping.
    raw.send_json(json!({"type": "message", "seq": 1, "payload": {"text": "hi"}}))
        .await;
    let (code, in_type, _, _) = raw.error().await;
    assert_eq!(
        (code.as_str(), in_type.as_deref()),
        ("not_joined", Some("message"))
    );
    raw.send_json(json!({"type": "offer", "to": "someone", "sdp": "v=0"}))
        .await;
    let (code, _, field, _) = raw.error().await;
    assert_eq!(
        (code.as_str(), field.as_deref()),
        ("unknown_peer", Some("to"))
    );
    raw.send_json(json!({"type": "ping"})).await;
    raw.expect("pong", |m| matches!(m, ServerMsg::Pong {}).then_some(()))
        .await;
    // An offer with nothing to echo ends the test, named.
    let sdp = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=mid:0\r\n";
    raw.send_json(json!({"type": "offer", "to": "media-test", "sdp": sdp}))
        .await;
    let (code, _, field, message) = raw.error().await;
    assert_eq!(
        (code.as_str(), field.as_deref()),
        ("invalid_field", Some("sdp")),
        "{message}"
    );
    assert!(message.contains("sends no audio"), "{message}");
    let (reason, _) = raw
        .expect("media_test_ended", |m| match m {
            ServerMsg::MediaTestEnded { reason, message } => Some((*reason, message.clone())),
            _ => None,
        })
        .await;
    assert_eq!(reason, MediaTestEnd::Failed);
    no_tests_left(&server).await;

    // The member saw nothing of it.
    let seen = room.drain().await;
    assert!(
        !seen
            .iter()
            .any(|m| matches!(m, ServerMsg::PeerJoined { .. } | ServerMsg::PeerLeft { .. })),
        "{seen:?}"
    );
}

/// A probe from a client "host" (a namespace behind a veth pair) whose uplink is limited to
/// 500 kbit/s and downlink to 2 Mbit/s with `tc tbf`: the bandwidth figures land within
/// 30 % of the limits.
#[test]
fn probe_bandwidth_follows_tbf_limits() {
    if !netns_support::isolated("probe_bandwidth_follows_tbf_limits") {
        return;
    }
    let client = netns_support::Netns::new();
    client.link("mt0", "10.81.0.1/24", "10.81.0.2/24");
    netns_support::sh("tc qdisc add dev mt0 root tbf rate 2mbit burst 20kb latency 100ms");
    client.sh("tc qdisc add dev mt0p root tbf rate 500kbit burst 10kb latency 100ms");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let reports = rt.block_on(async {
        let mut cfg = common::config();
        cfg.addr = "10.81.0.1:0".parse().unwrap();
        cfg.media_test.local_addresses = vec!["10.81.0.1".into()];
        let server = streamwire::server::Server::bind(cfg).await.expect("bind");
        let url = format!("ws://{}", server.local_addr());
        tokio::spawn(server.run());
        let token = common::token("lobby", "ann", &[Grant::Subscribe]);
        let out = tokio::task::spawn_blocking(move || {
            client
                .command(env!("CARGO_BIN_EXE_streamwire"))
                .args(["net-probe", "--server", &url, "--token", &token])
                .args(["--seconds", "20", "--local-address", "10.81.0.2", "--json"])
                .output()
                .expect("net-probe")
        })
        .await
        .unwrap();
        assert!(
            out.status.success(),
            "net-probe failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    });
    let lines: Vec<serde_json::Value> = reports
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    let summary = lines.last().expect("output");
    assert_eq!(summary["end"], "time", "{summary}");
    let last = &lines[lines.len() - 2];
    let up = last["uplink"]["bandwidth_kbps"]
        .as_f64()
        .expect("uplink bandwidth");
    let down = last["downlink"]["bandwidth_kbps"]
        .as_f64()
        .expect("downlink bandwidth");
    eprintln!("bandwidth up {up:.0} kbit/s (limit 500), down {down:.0} kbit/s (limit 2000)");
    assert!(
        (350.0..=650.0).contains(&up),
        "uplink {up} kbit/s, limit 500: {reports}"
    );
    assert!(
        (1400.0..=2600.0).contains(&down),
        "downlink {down} kbit/s, limit 2000: {reports}"
    );
}

/// 5 % of the UDP datagrams dropped both ways (nftables, in a namespace of the test's own):
/// the probe's loss figures are within 2 points of it. TCP other than the signalling is
/// dropped, so ICE cannot settle on an ICE-TCP pair (which never loses a packet).
#[test]
fn probe_loss_matches_dropped_packets() {
    if !netns_support::isolated("probe_loss_matches_dropped_packets") {
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let server = common::start(server_config()).await;
        let port = server.addr.port();
        netns_support::sh(&format!(
            "nft add table inet t && nft add chain inet t in '{{ type filter hook input priority 0; }}' \
             && nft add rule inet t in tcp dport {port} accept \
             && nft add rule inet t in tcp sport {port} accept \
             && nft add rule inet t in meta l4proto tcp drop \
             && nft add rule inet t in meta l4proto udp numgen random mod 100 \\< 5 drop"
        ));
        // Up to 4 Mbit/s: several hundred packets an interval each way, so one interval's
        // loss is within about a point of the drop rate.
        let cfg = test_config(&server.url, "ann", 16);
        let summary = run(MediaTestKind::Probe, &cfg, |_| {})
            .await
            .expect("probe");
        // The first two reports (2.5 s) cover the start: the first keyframes and the
        // controllers' first steps. Of the rest, the median: one interval's figure can jump
        // when the machine stalls the receiver (late packets count as lost), seen once at
        // 18 % while the whole suite ran.
        let reports = &summary.reports[2..];
        assert!(reports.len() >= 4, "{:?}", summary.reports);
        let median = |mut v: Vec<f64>| {
            v.sort_by(f64::total_cmp);
            (v[(v.len() - 1) / 2] + v[v.len() / 2]) / 2.0
        };
        let up = median(reports.iter().map(|r| r.uplink.loss_pct).collect());
        let down = median(reports.iter().map(|r| r.downlink.loss_pct).collect());
        let each = |f: fn(&streamwire::media_test::TestReport) -> f64| -> Vec<String> {
            reports.iter().map(|r| format!("{:.1}", f(r))).collect()
        };
        eprintln!(
            "loss up {up:.1} % {:?}, down {down:.1} % {:?} (5 % dropped)",
            each(|r| r.uplink.loss_pct),
            each(|r| r.downlink.loss_pct)
        );
        assert!(
            (3.0..=7.0).contains(&up),
            "uplink loss {up} %: {:?}",
            summary.reports
        );
        assert!(
            (3.0..=7.0).contains(&down),
            "downlink loss {down} %: {:?}",
            summary.reports
        );
    });
}

#[test]
fn serve_refuses_an_echo_delay_above_five_seconds() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_streamwire"))
        .args(["serve", "--addr", "127.0.0.1:0", "--state-dir"])
        .arg(dir.path())
        .args(["--echo-delay", "9s"])
        .output()
        .expect("serve");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("--echo-delay") && err.contains("5000 ms"),
        "{err}"
    );
}
