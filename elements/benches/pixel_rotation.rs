// SPDX-License-Identifier: MIT OR Apache-2.0
//! Per-frame cost of `sensorrotation output=pixels` beside `videoflip` for a quarter turn
//! (the case that swaps width and height), 1280x720 and 1920x1080, I420 / NV12 / RGBA.
//!
//! Each element runs in its own gst_check::Harness (push one frame, pull the rotated one).
//! The two are timed in alternation, frame by frame, so that load from other processes on a
//! shared machine hits both alike; the figures are medians over the rounds. One JSON line
//! per case on stdout.
//!
//! `cargo bench -p gst-plugin-streamwire --bench pixel_rotation -- [ROUNDS]` (default 200).

use std::time::Instant;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn frame_us(h: &mut gst_check::Harness, mem: &gst::Memory, pts: u64) -> f64 {
    let mut buf = gst::Buffer::new();
    {
        let b = buf.get_mut().unwrap();
        b.append_memory(mem.clone());
        b.set_pts(gst::ClockTime::from_nseconds(pts));
    }
    let t = Instant::now();
    h.push(buf).unwrap();
    let out = h.pull().unwrap();
    let us = t.elapsed().as_secs_f64() * 1e6;
    drop(out);
    us
}

fn main() {
    let rounds: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(200);
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
            let mut ours = gst_check::Harness::new_parse(
                "sensorrotation mode=follow-app rotation=90 output=pixels",
            );
            let mut flip = gst_check::Harness::new_parse("videoflip video-direction=90r");
            ours.set_src_caps_str(&caps);
            flip.set_src_caps_str(&caps);
            let (mut a, mut b) = (Vec::with_capacity(rounds), Vec::with_capacity(rounds));
            for i in 0..rounds + 10 {
                let pts = i as u64 * 33_333_333;
                // Alternate which goes first, too.
                let (x, y) = if i % 2 == 0 {
                    let x = frame_us(&mut ours, &mem, pts);
                    (x, frame_us(&mut flip, &mem, pts))
                } else {
                    let y = frame_us(&mut flip, &mem, pts);
                    (frame_us(&mut ours, &mem, pts), y)
                };
                if i >= 10 {
                    a.push(x);
                    b.push(y);
                }
            }
            let (ma, mb) = (median(a), median(b));
            println!(
                "{{\"format\":\"{format}\",\"width\":{w},\"height\":{h},\"rounds\":{rounds},\
                 \"sensorrotation_us\":{ma:.0},\"videoflip_us\":{mb:.0},\"ratio\":{:.2}}}",
                ma / mb
            );
        }
    }
}
