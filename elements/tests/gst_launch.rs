// SPDX-License-Identifier: MIT OR Apache-2.0
//! Runs the gst-launch-1.0 examples of README.md's "GStreamer elements" section against the
//! plugin built by this test run (the cdylib next to the test binary).

mod support;

use std::path::PathBuf;

use std::process::Command;
use std::time::{Duration, Instant};
use support::plugin_dir;

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_owned()
}

/// `(expected output, command)` for every example in the section.
fn examples() -> Vec<(Option<String>, String)> {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    let section = readme
        .split("## GStreamer elements")
        .nth(1)
        .expect("README has a GStreamer elements section");
    let section = section.split("\n## ").next().unwrap_or(section);
    let mut out = Vec::new();
    let mut expect = None;
    for line in section.lines() {
        if let Some(e) = line.strip_prefix("# expect: ") {
            expect = Some(e.to_owned());
        } else if line.starts_with("gst-launch-1.0 ") {
            out.push((expect.take(), line.to_owned()));
        }
    }
    out
}

fn run(cmd: &str) -> (bool, String) {
    let registry = std::env::temp_dir().join(format!("sw-gst-registry-{}.bin", std::process::id()));
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!("{cmd} 2>&1"))
        .current_dir(repo_root())
        .env("GST_PLUGIN_PATH", plugin_dir())
        .env("GST_REGISTRY", &registry)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn readme_examples_run() {
    let examples = examples();
    assert!(examples.len() >= 4, "expected an example per element");
    for (expect, cmd) in &examples {
        let (ok, output) = run(cmd);
        assert!(ok, "`{cmd}` failed:\n{output}");
        assert!(!output.contains("ERROR"), "`{cmd}`:\n{output}");
        if let Some(e) = expect {
            assert!(
                output.contains(e.as_str()),
                "`{cmd}` did not print `{e}`:\n{output}"
            );
        }
    }
}

#[test]
fn inspect_lists_all_elements() {
    let registry =
        std::env::temp_dir().join(format!("sw-gst-registry-i-{}.bin", std::process::id()));
    let out = Command::new("gst-inspect-1.0")
        .arg("streamwire")
        .env("GST_PLUGIN_PATH", plugin_dir())
        .env("GST_REGISTRY", &registry)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    for e in ["sensorrotation", "rtphdrextcvo", "devicetelemetry"] {
        assert!(text.contains(e), "{e} missing:\n{text}");
    }
}
