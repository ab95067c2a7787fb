//! `streamwire demo --headless` through the binary: it starts its own server on 127.0.0.1,
//! receives frames and exits cleanly after `--for`; its `--json` lines carry the publisher's
//! own statistics.
//! Run: unshare -n sh -c 'ip link set lo up; cargo test --test session_demo'

use std::process::Command;

/// Run `streamwire demo --headless --for SECS --json` without a display; its JSON lines and
/// stdout (for failure messages).
fn demo_json(secs: u32) -> (Vec<serde_json::Value>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_streamwire"))
        .args(["demo", "--headless", "--for", &format!("{secs}s"), "--json"])
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .output()
        .expect("run streamwire demo");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "demo failed: {stdout}\n{stderr}");
    let lines = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect();
    (lines, stdout)
}

#[test]
fn demo_headless_receives_frames_and_exits_cleanly() {
    let (lines, stdout) = demo_json(4);
    // Status lines every 2 s, then the summary.
    assert!(lines.len() >= 2, "{stdout}");
    assert!(lines[0].get("frames").is_some(), "{stdout}");
    let summary = &lines.last().unwrap()["summary"];
    let frames = summary["frames_received"].as_u64().unwrap();
    assert!(frames > 30, "only {frames} frames in 4 s: {stdout}");
    assert_eq!(summary["width"], 640);
    assert_eq!(summary["height"], 360);
    assert!(summary["first_frame_ms"].as_f64().is_some(), "{stdout}");
    assert!(
        summary["latency_ms"]["samples"].as_u64().unwrap() > 0,
        "the painted counter was read back: {stdout}"
    );

    // Human-readable mode prints the status line and the final line.
    let out = Command::new(env!("CARGO_BIN_EXE_streamwire"))
        .args(["demo", "--headless", "--for", "3s"])
        .output()
        .expect("run streamwire demo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("frames "), "{stdout}");
    assert!(stdout.contains("done: "), "{stdout}");
}

#[test]
fn demo_rejects_a_bad_duration_naming_it() {
    let out = Command::new(env!("CARGO_BIN_EXE_streamwire"))
        .args(["demo", "--for", "soon"])
        .output()
        .expect("run streamwire demo");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--for"), "{stderr}");
}

/// The publisher's side of the statistics is real: its sent bitrate (webrtcbin's outbound-rtp
/// `bytes-sent` deltas) is above zero and close to what the viewer receives.
#[test]
fn demo_json_reports_a_real_sent_bitrate() {
    let (lines, stdout) = demo_json(9);
    // Status lines whose publisher and viewer figures both cover a full interval.
    let sampled: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|l| {
            l["publisher_stats"]["send_kbps"].as_f64().unwrap_or(0.0) > 0.0
                && l["stats"]["recv_kbps"].as_f64().unwrap_or(0.0) > 0.0
        })
        .collect();
    assert!(
        !sampled.is_empty(),
        "no status line with a sent and a received bitrate: {stdout}"
    );
    let last = sampled.last().unwrap();
    let sent = last["publisher_stats"]["send_kbps"].as_f64().unwrap();
    let received = last["stats"]["recv_kbps"].as_f64().unwrap();
    // Sent and received count the same payload over (nearly) the same interval on loopback.
    assert!(
        sent > 0.5 * received && sent < 2.0 * received,
        "sent {sent} kbit/s vs received {received} kbit/s: {last}"
    );
    // Per track: the publisher sends video and audio.
    let tracks = last["publisher_stats"]["tracks"].as_array().unwrap();
    for kind in ["video", "audio"] {
        let t = tracks
            .iter()
            .find(|t| t["direction"] == "send" && t["kind"] == kind)
            .unwrap_or_else(|| panic!("no sent {kind} track: {last}"));
        assert!(t["bitrate_kbps"].as_f64().unwrap() > 0.0, "{kind}: {t}");
    }
    // The summary carries the publisher's average sent bitrate too.
    let summary = &lines.last().unwrap()["summary"];
    assert!(
        summary["sent_kbps"].as_f64().unwrap_or(0.0) > 0.0,
        "{summary}"
    );
}
