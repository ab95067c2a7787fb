//! What the benchmarks read of the machine: process, thread and other processes' CPU time
//! (`getrusage`, Linux `/proc`), and the RTP bytes a pipeline's `webrtcbin`s sent.

use std::time::Duration;

use gst::prelude::*;

/// CPU seconds (user + system) of this process so far.
pub(crate) fn process_cpu_seconds() -> f64 {
    // SAFETY: getrusage only writes into the zero-initialised struct we pass.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointer to a rusage struct, RUSAGE_SELF is a valid `who`.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    if rc != 0 {
        return 0.0;
    }
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// User + system CPU seconds in a `/proc/.../stat` line.
fn stat_cpu_seconds(stat: &str, ticks: f64) -> Option<f64> {
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / ticks)
}

/// CPU seconds of process `pid` (Linux `/proc/PID/stat`).
pub(crate) fn pid_cpu_seconds(pid: u32) -> Option<f64> {
    // SAFETY: sysconf has no memory-safety preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    (ticks > 0).then_some(())?;
    stat_cpu_seconds(&stat, ticks as f64)
}

/// RTP payload bytes every `webrtcbin` of `pipeline` sent so far (`outbound-rtp` stats).
pub(crate) fn rtp_bytes_sent(pipeline: &gst::Pipeline) -> Option<u64> {
    let mut total = 0u64;
    for el in pipeline.iterate_recurse().into_iter().flatten() {
        if el.factory().is_none_or(|f| f.name() != "webrtcbin") {
            continue;
        }
        let (tx, rx) = std::sync::mpsc::channel();
        let promise = gst::Promise::with_change_func(move |r| {
            let _ = tx.send(r.ok().flatten().map(|s| s.to_owned()));
        });
        el.emit_by_name::<()>("get-stats", &[&None::<gst::Pad>, &promise]);
        let stats = rx.recv_timeout(Duration::from_secs(2)).ok().flatten()?;
        for (_, v) in stats.iter() {
            if let Ok(s) = v.get::<gst::Structure>()
                && s.get::<gst_webrtc::WebRTCStatsType>("type")
                    == Ok(gst_webrtc::WebRTCStatsType::OutboundRtp)
            {
                total += s.get::<u64>("bytes-sent").unwrap_or(0);
            }
        }
    }
    Some(total)
}

/// CPU seconds of the threads whose name is `name` (Linux `/proc/self/task`).
pub(crate) fn thread_cpu_seconds(name: &str) -> Option<f64> {
    // SAFETY: sysconf has no memory-safety preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks <= 0 {
        return None;
    }
    let mut total = None;
    for entry in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        let path = entry.path();
        let comm = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
        if comm.trim() != name {
            continue;
        }
        let stat = std::fs::read_to_string(path.join("stat")).ok()?;
        *total.get_or_insert(0.0) += stat_cpu_seconds(&stat, ticks as f64)?;
    }
    total
}
