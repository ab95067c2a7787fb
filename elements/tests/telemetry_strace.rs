// SPDX-License-Identifier: MIT OR Apache-2.0
//! What `devicetelemetry` touches, seen by `strace -f -e trace=%file,%network` on a
//! gst-launch-1.0 of the plugin built by this test run: nothing at `none`; at `necessary`
//! the interface kinds, but never a netlink dump or an `address` file (no MAC or IP).

use std::path::PathBuf;
use std::process::Command;

fn plugin_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(|d| d.parent()).unwrap().to_owned();
    assert!(
        dir.join("libgststreamwire.so").exists(),
        "{}",
        dir.display()
    );
    dir
}

/// Paths and calls the telemetry readers use (what `none` must not touch).
const READER_PATHS: &[&str] = &[
    "/proc/stat",
    "/proc/meminfo",
    "/proc/loadavg",
    "/proc/cpuinfo",
    "/sys/class/net",
    "/sys/class/power_supply",
    "/sys/class/dmi",
    "/sys/devices/system/cpu",
    "/etc/os-release",
];

/// Runs the pipeline under strace; returns (gst-launch stdout, strace log).
fn traced(consent: &str) -> (String, String) {
    let tmp = std::env::temp_dir();
    let id = format!("{}-{consent}", std::process::id());
    let log = tmp.join(format!("sw-strace-{id}.txt"));
    let registry = tmp.join(format!("sw-gst-registry-strace-{id}.bin"));
    // Build the registry first, so that plugin scanning is not in the trace.
    let scan = Command::new("gst-inspect-1.0")
        .arg("devicetelemetry")
        .env("GST_PLUGIN_PATH", plugin_dir())
        .env("GST_REGISTRY", &registry)
        .output()
        .unwrap();
    assert!(scan.status.success());
    let out = Command::new("strace")
        .args(["-f", "-e", "trace=%file,%network", "-o"])
        .arg(&log)
        .args([
            "gst-launch-1.0",
            "-m",
            "videotestsrc",
            "is-live=true",
            "num-buffers=24",
            "!",
            "video/x-raw,framerate=30/1,width=64,height=48",
            "!",
            "devicetelemetry",
        ])
        .arg(format!("consent={consent}"))
        .args(["interval=200", "!", "fakesink"])
        .env("GST_PLUGIN_PATH", plugin_dir())
        .env("GST_REGISTRY", &registry)
        .env("GST_REGISTRY_UPDATE", "no")
        .output()
        .expect("strace runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let trace = std::fs::read_to_string(&log).unwrap();
    let _ = std::fs::remove_file(&log);
    let _ = std::fs::remove_file(&registry);
    (stdout, trace)
}

/// Trace lines containing `needle`, each cut to 160 characters (netlink dumps are long).
fn lines_with(trace: &str, needle: &str) -> Vec<String> {
    trace
        .lines()
        .filter(|l| l.contains(needle))
        .map(|l| l.chars().take(160).collect())
        .collect()
}

#[test]
fn consent_none_reads_nothing() {
    let (stdout, trace) = traced("none");
    assert!(!stdout.contains("streamwire-telemetry"), "{stdout}");
    for p in READER_PATHS {
        assert!(
            lines_with(&trace, p).is_empty(),
            "{p}: {:?}",
            lines_with(&trace, p)
        );
    }
    assert!(lines_with(&trace, "AF_NETLINK").is_empty());
}

#[test]
fn network_type_reads_interface_kinds_only_never_addresses() {
    let (stdout, trace) = traced("necessary");
    // The message was posted with the field, so the readers really ran under the trace.
    assert!(stdout.contains("network-type="), "{stdout}");
    assert!(
        !lines_with(&trace, "/sys/class/net").is_empty(),
        "no sysfs read traced"
    );
    let netlink = lines_with(&trace, "AF_NETLINK");
    assert!(
        netlink.is_empty(),
        "netlink socket (address dump): {netlink:?}"
    );
    let addresses: Vec<String> = lines_with(&trace, "/address\"")
        .into_iter()
        .chain(lines_with(&trace, "/broadcast\""))
        .filter(|l| l.contains("/sys/"))
        .collect();
    assert!(addresses.is_empty(), "hardware address read: {addresses:?}");
    for f in ["/proc/net/", "if_inet6"] {
        assert!(
            lines_with(&trace, f).is_empty(),
            "{f}: {:?}",
            lines_with(&trace, f)
        );
    }
}
