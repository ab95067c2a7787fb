//! `streamwire demo --headless --json`: the publisher's side of the statistics is real, i.e.
//! its sent bitrate (from webrtcbin's outbound-rtp `bytes-sent` deltas) is above zero and close
//! to what the viewer receives.
//! Run: unshare -n sh -c 'ip link set lo up; cargo test --test session_demo_stats'

use std::process::Command;

#[test]
fn demo_json_reports_a_real_sent_bitrate() {
    let out = Command::new(env!("CARGO_BIN_EXE_streamwire"))
        .args(["demo", "--headless", "--for", "9s", "--json"])
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .output()
        .expect("run streamwire demo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "demo failed: {stdout}\n{stderr}");
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect();
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
