// SPDX-License-Identifier: MIT OR Apache-2.0
//! Per-buffer cost at 1280x720@30 (I420) in metadata mode, through gst_check::Harness.
//! `identity` is the baseline for the harness's own push/pull cost.
//!
//! `cargo bench -p gst-plugin-streamwire --bench per_buffer`

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};

const CAPS: &str = "video/x-raw,format=I420,width=1280,height=720,framerate=30/1";

fn bench(c: &mut Criterion) {
    gst::init().unwrap();
    gststreamwire::plugin_register_static().unwrap();
    let frame = gst::Buffer::with_size(1280 * 720 * 3 / 2).unwrap();
    let mem = frame.peek_memory(0).to_owned();
    let mut group = c.benchmark_group("per_buffer_1280x720");
    for (name, desc) in [
        ("identity", "identity"),
        (
            "sensorrotation_follow_sensor",
            "sensorrotation mode=follow-sensor",
        ),
        (
            "sensorrotation_follow_app",
            "sensorrotation mode=follow-app rotation=90",
        ),
        (
            "devicetelemetry_full_1s",
            "devicetelemetry consent=full interval=1000",
        ),
    ] {
        let mut h = gst_check::Harness::new_parse(desc);
        h.set_src_caps_str(CAPS);
        let mut pts = 0u64;
        group.bench_function(name, |b| {
            b.iter_batched(
                || {
                    // A fresh writable buffer sharing the frame's memory, as from a pool.
                    let mut buf = gst::Buffer::new();
                    {
                        let b = buf.get_mut().unwrap();
                        b.append_memory(mem.clone());
                        b.set_pts(gst::ClockTime::from_nseconds(pts * 33_333_333));
                    }
                    pts += 1;
                    buf
                },
                |buf| {
                    h.push(buf).unwrap();
                    h.pull().unwrap()
                },
                BatchSize::SmallInput,
            )
        });
    }
    // The orientation meta alone (what sensorrotation adds to each buffer), no harness.
    group.bench_function("meta_set_orientation", |b| {
        b.iter_batched(
            gst::Buffer::new,
            |mut buf| {
                gststreamwire::meta::set_orientation(
                    buf.get_mut().unwrap(),
                    gststreamwire::orientation::Orientation::rotated(
                        gststreamwire::orientation::Rotation::R90,
                    ),
                    Some(gststreamwire::orientation::CameraFacing::Back),
                );
                buf
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(60)
        .measurement_time(std::time::Duration::from_secs(4))
        .warm_up_time(std::time::Duration::from_secs(1));
    targets = bench
}
criterion_main!(benches);
