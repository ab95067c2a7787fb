// SPDX-License-Identifier: MIT OR Apache-2.0
//! Per-frame cost of `sensorrotation output=pixels` beside `videoflip` for a quarter turn
//! (the case that swaps width and height), 1280x720 and 1920x1080, I420 / NV12 / RGBA,
//! through gst_check::Harness (push one frame, pull the rotated one).
//!
//! `cargo bench -p gst-plugin-streamwire --bench pixel_rotation`
//! Figures: `target/criterion/pixel_rotation_<format>_<size>/<element>/new/estimates.json`.

use std::time::Duration;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};

fn bench(c: &mut Criterion) {
    gst::init().unwrap();
    gststreamwire::plugin_register_static().unwrap();
    for (w, h) in [(1280u32, 720u32), (1920, 1080)] {
        for format in ["I420", "NV12", "RGBA"] {
            let caps = format!("video/x-raw,format={format},width={w},height={h},framerate=30/1");
            let info =
                gst_video::VideoInfo::from_caps(&caps.parse::<gst::Caps>().unwrap()).unwrap();
            // A frame with content, so neither side can take a shortcut on zeroes.
            let mut frame = gst::Buffer::with_size(info.size()).unwrap();
            {
                let mut map = frame.get_mut().unwrap().map_writable().unwrap();
                for (i, b) in map.iter_mut().enumerate() {
                    *b = (i * 31 % 251) as u8;
                }
            }
            let mem = frame.peek_memory(0).to_owned();
            let mut group = c.benchmark_group(format!("pixel_rotation_{format}_{w}x{h}"));
            group
                .sample_size(30)
                .warm_up_time(Duration::from_secs(1))
                .measurement_time(Duration::from_secs(4));
            for (name, desc) in [
                (
                    "sensorrotation",
                    "sensorrotation mode=follow-app rotation=90 output=pixels",
                ),
                ("videoflip", "videoflip video-direction=90r"),
            ] {
                let mut harness = gst_check::Harness::new_parse(desc);
                harness.set_src_caps_str(&caps);
                let mut pts = 0u64;
                group.bench_function(name, |b| {
                    b.iter_batched(
                        || {
                            let mut buf = gst::Buffer::new();
                            {
                                let b = buf.get_mut().unwrap();
                                b.append_memory(mem.clone());
                                b.set_pts(gst::ClockTime::from_nseconds(pts));
                            }
                            pts += 33_333_333;
                            buf
                        },
                        |buf| {
                            harness.push(buf).unwrap();
                            harness.pull().unwrap()
                        },
                        BatchSize::SmallInput,
                    )
                });
            }
            group.finish();
        }
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
