//! `streamwire bench latency` through the binary: a short run prints a JSON report with
//! decoded, rendered and first-frame figures (peers joined through the embedded signalling
//! server), in one process or with subscribers in child processes; bad options are named.
//! Run: unshare -n sh -c 'ip link set lo up; cargo test --test bench_latency_cli'

use std::process::Command;

#[test]
fn bench_latency_prints_a_json_report() {
    let out = Command::new(env!("CARGO_BIN_EXE_streamwire"))
        .args(["bench", "latency", "--seconds", "2", "--json"])
        .output()
        .expect("run streamwire bench latency");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_str(&stdout).expect("one JSON report");
    assert!(v["decoded"]["samples"].as_u64().unwrap() > 10, "{stdout}");
    assert!(v["rendered"]["samples"].as_u64().unwrap() > 10, "{stdout}");
    assert_eq!(v["first_frame"]["samples"], 1, "{stdout}");
    let p50 = v["decoded"]["p50_ms"].as_f64().unwrap();
    assert!(p50 > 0.0 && p50 < 1000.0, "{stdout}");
    assert!(v["process_cpu_per_s"].as_f64().unwrap() > 0.0, "{stdout}");
    // Every peer joined the embedded signalling server on loopback.
    let server = v["signalling_server"].as_str().unwrap();
    assert!(server.starts_with("ws://127.0.0.1:"), "{stdout}");
    assert_eq!(v["options"]["separate_processes"], false, "{stdout}");
    // The first-frame breakdown: every step seen, in causal order, ending at the first frame.
    let b = &v["first_frame_breakdown"];
    let steps = b["subscribers"][0]["steps"].as_array().expect("steps");
    let at = |name: &str| {
        steps
            .iter()
            .find(|s| s[0] == name)
            .and_then(|s| s[1].as_f64())
            .unwrap_or_else(|| panic!("step {name} missing: {stdout}"))
    };
    let order = [
        "joined",
        "webrtcbin_created",
        "negotiated",
        "ice_connected",
        "pc_connected",
        "first_rtp",
        "first_depay_in",
        "first_frame_out",
        "first_decoded",
    ];
    for pair in order.windows(2) {
        assert!(at(pair[0]) <= at(pair[1]), "{pair:?}: {stdout}");
    }
    assert!(at("dtls_connected") <= at("pc_connected"), "{stdout}");
    // A keyframe left the encoder before the subscriber's first frame.
    assert!(at("keyframe_out") <= at("first_frame_out"), "{stdout}");
    let first = v["first_frame"]["p50_ms"].as_f64().unwrap();
    assert!((at("first_decoded") - first).abs() < 50.0, "{stdout}");
    assert!(
        b["median_ms"].as_array().unwrap().len() >= order.len(),
        "{stdout}"
    );
}

#[test]
fn bench_latency_with_subscribers_in_separate_processes() {
    let out = Command::new(env!("CARGO_BIN_EXE_streamwire"))
        .args([
            "bench",
            "latency",
            "--seconds",
            "2",
            "--subscribers",
            "2",
            "--separate-processes",
            "--json",
        ])
        .output()
        .expect("run streamwire bench latency");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_str(&stdout).expect("one JSON report");
    assert_eq!(v["options"]["separate_processes"], true, "{stdout}");
    // Both child processes joined through the server and decoded frames.
    assert_eq!(v["first_frame"]["samples"], 2, "{stdout}");
    assert!(v["decoded"]["samples"].as_u64().unwrap() > 20, "{stdout}");
    assert!(v["rendered"]["samples"].as_u64().unwrap() > 20, "{stdout}");
    assert!(
        v["signalling_server"]
            .as_str()
            .unwrap()
            .starts_with("ws://127.0.0.1:"),
        "{stdout}"
    );
}

#[test]
fn bench_latency_names_a_bad_codec() {
    let out = Command::new(env!("CARGO_BIN_EXE_streamwire"))
        .args(["bench", "latency", "--codec", "theora"])
        .output()
        .expect("run streamwire bench latency");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--codec") && stderr.contains("theora"),
        "{stderr}"
    );
}
