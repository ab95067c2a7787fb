//! Network namespaces for tests that change the network (cut a path, change addresses, put
//! peers on "hosts" with no route between them): such a test must not disturb the other tests
//! of the suite, which share the namespace the suite runs in.
//!
//! - [`isolated`] re-runs the calling test in a fresh namespace of its own (only `lo`, up).
//! - [`Netns`] is a further namespace held by a `sleep` process, joined to the test's
//!   namespace by a veth pair; commands run in it through `nsenter`.
//!
//! Everything vanishes with the processes. Needs root, `unshare`, `nsenter` and `ip`.
#![allow(dead_code)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CHILD_ENV: &str = "STREAMWIRE_TEST_ISOLATED";

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

/// Whether the calling test, `name` (its path inside the test binary, e.g. `cut_path`),
/// should run its body now: true inside the namespace made for it. Otherwise runs this test
/// binary again with only that test in a new namespace, asserts that it passed, and returns
/// false.
pub fn isolated(name: &str) -> bool {
    if std::env::var(CHILD_ENV).as_deref() == Ok(name) {
        return true;
    }
    let exe = std::env::current_exe().expect("test binary");
    let status = Command::new("unshare")
        .arg("-n")
        .arg("sh")
        .arg("-c")
        // No IPv6 link-local addresses appearing on new links in the middle of a test.
        .arg(
            "ip link set lo up && sysctl -qw net.ipv6.conf.default.disable_ipv6=1 \
             && exec \"$0\" --exact \"$1\" --nocapture --test-threads=1",
        )
        .arg(&exe)
        .arg(name)
        .env(CHILD_ENV, name)
        .status()
        .expect("unshare");
    assert!(status.success(), "{name} failed in its own namespace");
    false
}

/// A namespace held by a `sleep` process (ended on drop).
pub struct Netns {
    holder: Child,
}

impl Netns {
    /// A new namespace with `lo` up.
    pub fn new() -> Netns {
        let holder = Command::new("unshare")
            .args(["-n", "sleep", "600"])
            .stdin(Stdio::null())
            .spawn()
            .expect("unshare");
        let pid = holder.id();
        let ours = std::fs::read_link("/proc/self/ns/net").expect("own namespace");
        let start = Instant::now();
        while std::fs::read_link(format!("/proc/{pid}/ns/net"))
            .ok()
            .as_ref()
            == Some(&ours)
        {
            assert!(
                start.elapsed() < Duration::from_secs(5),
                "unshare did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let ns = Netns { holder };
        ns.sh("ip link set lo up && sysctl -qw net.ipv6.conf.default.disable_ipv6=1");
        ns
    }

    /// Process id holding the namespace.
    pub fn pid(&self) -> u32 {
        self.holder.id()
    }

    /// Run `sh -c script` inside the namespace; panics if it fails.
    pub fn sh(&self, script: &str) {
        sh(&format!(
            "nsenter -t {} -n sh -c '{}'",
            self.pid(),
            script.replace('\'', r"'\''")
        ));
    }

    /// A command that runs `program` inside the namespace.
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new("nsenter");
        c.arg("-t")
            .arg(self.pid().to_string())
            .arg("-n")
            .arg(program);
        c
    }

    /// Join this namespace to the test's by a veth pair: `ours` (CIDR) on the test's end,
    /// named `name`, and `theirs` (CIDR) on this namespace's end, named `name`p.
    pub fn link(&self, name: &str, ours: &str, theirs: &str) {
        sh(&format!(
            "ip link add {name} type veth peer name {name}p && ip link set {name}p netns {pid} \
             && ip addr add {ours} dev {name} && ip link set {name} up",
            pid = self.pid()
        ));
        self.sh(&format!(
            "ip addr add {theirs} dev {name}p && ip link set {name}p up"
        ));
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}
