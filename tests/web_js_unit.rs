//! The browser client's unit tests that need no browser (`web/test/*.test.mjs`: the state
//! machine against a scripted WebSocket, back-off, limits, SDP helpers), run with node's
//! built-in test runner (`node --test`, Debian package `nodejs`; `NODE` overrides the path).
//! Run: cargo test --test web_js_unit

use std::path::Path;
use std::process::Command;

#[test]
fn js_unit_tests_pass_under_node() {
    let node = std::env::var("NODE").unwrap_or_else(|_| "node".to_owned());
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("web");
    // Name the files: how `node --test` treats a directory argument differs between versions.
    let mut files: Vec<String> = std::fs::read_dir(dir.join("test"))
        .expect("web/test")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".test.mjs"))
        .map(|n| format!("test/{n}"))
        .collect();
    files.sort();
    assert!(files.len() >= 2, "no web/test/*.test.mjs files: {files:?}");
    let out = Command::new(&node)
        .args(["--test", "--test-reporter=tap"])
        .args(&files)
        .current_dir(&dir)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run `{node}` (install Debian's `nodejs`, or set NODE): {e}")
        });
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "node --test failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    // The runner found and ran the tests (a wrong directory would pass with zero).
    let count = |key: &str| -> u32 {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(&format!("# {key} ")))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or_else(|| panic!("no `# {key}` line in node's TAP output:\n{stdout}"))
    };
    assert!(count("pass") >= 20, "too few JS tests ran:\n{stdout}");
    assert_eq!(count("fail"), 0, "{stdout}");
}
