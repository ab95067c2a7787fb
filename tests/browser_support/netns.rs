//! A namespace of its own for a browser test that changes the network (nftables rules), so
//! that it cannot disturb the other tests of the suite, which share the suite's namespace.

use std::process::Command;

const CHILD_ENV: &str = "STREAMWIRE_BROWSER_TEST_ISOLATED";

/// Run `sh -c script`; panics with its output if it fails.
pub fn sh(script: &str) {
    let out = Command::new("sh")
        .arg("-c")
        .arg(script)
        .output()
        .expect("sh");
    assert!(
        out.status.success(),
        "`{script}` failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Whether the calling test `name` should run its body now: true inside the namespace made
/// for it. Otherwise runs this test binary again with only that test, under `unshare -n`
/// (only `lo`, up; Chromium and the server started by the test live there too), asserts that
/// it passed, and returns false. Needs root, `unshare` and `ip`.
pub fn isolated(name: &str) -> bool {
    if std::env::var(CHILD_ENV).as_deref() == Ok(name) {
        return true;
    }
    let exe = std::env::current_exe().expect("test binary");
    let status = Command::new("unshare")
        .arg("-n")
        .arg("sh")
        .arg("-c")
        .arg("ip link set lo up && exec \"$0\" --exact \"$1\" --nocapture --test-threads=1")
        .arg(&exe)
        .arg(name)
        .env(CHILD_ENV, name)
        .status()
        .expect("unshare");
    assert!(status.success(), "{name} failed in its own namespace");
    false
}
