//! `streamwire bench whiteboard` through the binary, small: the browser path (a real pointer
//! stroke in one headless Chromium page, painted in another) and the library path give sane
//! JSON figures; `--no-browser` skips the browser; a missing browser is named.
//! Run: unshare -n sh -c 'ip link set lo up; cargo test --test bench_whiteboard_cli'

use std::process::{Command, Output};

fn bench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_streamwire"))
        .args(["bench", "whiteboard"])
        .args(args)
        .output()
        .expect("run streamwire bench whiteboard")
}

fn report(out: &Output) -> serde_json::Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&stdout).expect("one JSON report")
}

fn ms(v: &serde_json::Value, key: &str) -> f64 {
    v[key].as_f64().unwrap_or_else(|| panic!("no {key} in {v}"))
}

#[test]
fn bench_whiteboard_times_strokes_from_one_page_to_another() {
    // 125 strokes: past the 120 spots of the page, so the drawer clears the page once.
    let out = bench(&[
        "--samples",
        "125",
        "--strokes",
        "100",
        "--joins",
        "1",
        "--json",
    ]);
    let v = report(&out);
    let s = &v["stroke_latency"];
    assert_eq!(s["samples"], 125, "{v}");
    assert!(s["path"].as_str().unwrap().contains("page B"), "{v}");
    let (p50, p95) = (ms(s, "p50_ms"), ms(s, "p95_ms"));
    // Loopback, one machine: more than nothing, less than a second.
    assert!(p50 > 0.0 && p50 <= p95 && p95 < 1000.0, "{v}");
    // The bench's clock bounds the pages' clock from above, stroke by stroke.
    let outer = &v["stroke_latency_bench_clock"];
    assert_eq!(outer["samples"], 125, "{v}");
    assert!(ms(outer, "p50_ms") >= p50, "{v}");
    assert!(ms(outer, "p95_ms") >= p95, "{v}");
    // Applied to page B's board before painted there.
    let applied = &v["stroke_latency_applied"];
    assert_eq!(applied["samples"], 125, "{v}");
    assert!(
        ms(applied, "p50_ms") > 0.0 && ms(applied, "p50_ms") <= p50,
        "{v}"
    );
    assert!(v["browser"].as_str().unwrap().contains("Chrome/"), "{v}");
    // The library path is timed apart, and is the faster one (no input, no paint).
    let lib = &v["library_stroke_latency"];
    assert_eq!(lib["samples"], 125, "{v}");
    assert!(ms(lib, "p50_ms") > 0.0 && ms(lib, "p50_ms") < p50, "{v}");
    assert_eq!(v["board"]["strokes"], 225, "{v}");
}

#[test]
fn bench_whiteboard_without_a_browser() {
    let v = report(&bench(&[
        "--no-browser",
        "--samples",
        "5",
        "--strokes",
        "10",
        "--joins",
        "1",
        "--json",
    ]));
    assert!(v["stroke_latency"].is_null(), "{v}");
    assert!(v["browser"].is_null(), "{v}");
    assert_eq!(v["library_stroke_latency"]["samples"], 5, "{v}");
}

#[test]
fn bench_whiteboard_names_a_missing_browser() {
    let out = bench(&[
        "--browser",
        "/nonexistent/chromium",
        "--samples",
        "5",
        "--strokes",
        "10",
        "--joins",
        "1",
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("/nonexistent/chromium")
            && stderr.contains("--browser")
            && stderr.contains("--no-browser"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    // Both at once is refused before anything runs.
    let out = bench(&["--no-browser", "--browser", "/usr/bin/chromium"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--browser"), "{stderr}");
}
