// SPDX-License-Identifier: MIT OR Apache-2.0
//! CPU share of the devicetelemetry sampler at a 1 s interval, measured with
//! getrusage(RUSAGE_SELF) over a fixed wall time, against the same idle pipeline with
//! consent=none as baseline. Prints JSON.
//!
//! `cargo bench -p gst-plugin-streamwire --bench telemetry_cpu -- [seconds] [runs]`
//! (defaults: 20 s, 3 runs per consent level)

use std::time::{Duration, Instant};

use gst::prelude::*;

fn cpu_seconds() -> f64 {
    // SAFETY: getrusage only writes into the zeroed struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    assert_eq!(rc, 0, "getrusage failed");
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// Process CPU seconds per wall second while a pipeline holding only `devicetelemetry`
/// (started, no data flowing) runs for `secs`, and the number of messages posted.
fn measure(consent: &str, secs: u64) -> (f64, usize) {
    let pipeline = gst::Pipeline::new();
    let element = gst::ElementFactory::make("devicetelemetry")
        .property_from_str("consent", consent)
        .property("interval", 1000u32)
        .build()
        .unwrap();
    pipeline.add(&element).unwrap();
    let bus = pipeline.bus().unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let (c0, t0) = (cpu_seconds(), Instant::now());
    let deadline = t0 + Duration::from_secs(secs);
    let mut messages = 0;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        if let Some(msg) = bus.timed_pop_filtered(
            gst::ClockTime::from_nseconds(left.as_nanos() as u64),
            &[gst::MessageType::Element],
        ) && msg
            .structure()
            .is_some_and(|s| s.name() == "streamwire-telemetry")
        {
            messages += 1;
        }
    }
    let share = (cpu_seconds() - c0) / t0.elapsed().as_secs_f64();
    pipeline.set_state(gst::State::Null).unwrap();
    (share, messages)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    gst::init().unwrap();
    gststreamwire::plugin_register_static().unwrap();
    // `cargo bench` passes `--bench`; numeric arguments are ours.
    let nums: Vec<u64> = std::env::args().filter_map(|a| a.parse().ok()).collect();
    let secs = nums.first().copied().unwrap_or(20).clamp(2, 600);
    let runs = nums.get(1).copied().unwrap_or(3).clamp(1, 10);
    let mut full = Vec::new();
    let mut none = Vec::new();
    let mut msgs = Vec::new();
    for _ in 0..runs {
        let (s, m) = measure("full", secs);
        full.push(s);
        msgs.push(m);
        none.push(measure("none", secs).0);
    }
    let (mf, mn) = (median(full.clone()), median(none.clone()));
    println!(
        "{}",
        serde_json::json!({
            "bench": "devicetelemetry_sampler_cpu",
            "interval_ms": 1000,
            "seconds_per_run": secs,
            "runs": runs,
            "messages_per_run": msgs,
            "cpu_share_full": full,
            "cpu_share_none": none,
            "median_cpu_share_full_percent_of_one_core": mf * 100.0,
            "median_cpu_share_none_percent_of_one_core": mn * 100.0,
            "median_sampler_share_percent_of_one_core": (mf - mn) * 100.0,
        })
    );
}
