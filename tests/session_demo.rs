//! `streamwire demo --headless` through the binary: it starts its own server on 127.0.0.1,
//! receives frames and exits cleanly after `--for`.
//! Run: unshare -n sh -c 'ip link set lo up; cargo test --test session_demo'

use std::process::Command;

#[test]
fn demo_headless_receives_frames_and_exits_cleanly() {
    let out = Command::new(env!("CARGO_BIN_EXE_streamwire"))
        .args(["demo", "--headless", "--for", "4s", "--json"])
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
