// SPDX-License-Identifier: MIT OR Apache-2.0
//! Pixel output: every supported format, two sizes, all eight orientations, bit-exact
//! against a per-element reference and against `videoflip` (where videoflip has the format);
//! unsupported formats fail to negotiate in pixel output and pass in metadata output; other
//! memory (DMABuf) passes through metadata output without a copy.

mod support;

use gst::prelude::*;
use gst_video::prelude::*;
use gststreamwire::orientation::{Orientation, Rotation};
use gststreamwire::sensorrotation::pixels::supported_formats;
use support::{FRAME_NS, init};

/// A frame of `info` whose every byte differs from its neighbours.
fn filled(info: &gst_video::VideoInfo, seed: usize) -> gst::Buffer {
    let data: Vec<u8> = (0..info.size())
        .map(|i| ((i * 37 + seed * 11 + i / 253) % 256) as u8)
        .collect();
    let mut buf = gst::Buffer::from_mut_slice(data);
    gst_video::VideoMeta::add_full(
        buf.get_mut().unwrap(),
        gst_video::VideoFrameFlags::empty(),
        info.format(),
        info.width(),
        info.height(),
        info.offset(),
        info.stride(),
    )
    .unwrap();
    buf.get_mut().unwrap().set_pts(gst::ClockTime::ZERO);
    buf
}

/// One plane of a frame: element size, width, height, stride and data.
struct Plane<'a> {
    e: usize,
    w: usize,
    h: usize,
    stride: usize,
    data: &'a [u8],
}

fn each_plane<T>(buf: &gst::Buffer, info: &gst_video::VideoInfo, f: impl Fn(Plane) -> T) -> Vec<T> {
    let frame = gst_video::VideoFrameRef::from_buffer_ref_readable(buf, info).unwrap();
    let finfo = info.format_info();
    (0..frame.n_planes())
        .map(|p| {
            let comp = (0..frame.n_components())
                .find(|&c| finfo.plane()[c as usize] == p)
                .unwrap();
            f(Plane {
                e: finfo.pixel_stride()[comp as usize] as usize,
                w: frame.comp_width(comp) as usize,
                h: frame.comp_height(comp) as usize,
                stride: frame.plane_stride()[p as usize] as usize,
                data: frame.plane_data(p).unwrap(),
            })
        })
        .collect()
}

/// The meaningful bytes of every plane (rows without padding), plane by plane.
fn planes(buf: &gst::Buffer, info: &gst_video::VideoInfo) -> Vec<Vec<u8>> {
    each_plane(buf, info, |p| {
        (0..p.h)
            .flat_map(|y| p.data[y * p.stride..y * p.stride + p.w * p.e].to_vec())
            .collect()
    })
}

/// Reference: per element, mirror first, then rotate clockwise.
fn reference(buf: &gst::Buffer, info: &gst_video::VideoInfo, o: Orientation) -> Vec<Vec<u8>> {
    each_plane(buf, info, |p| {
        let (sw, sh, e) = (p.w, p.h, p.e);
        let (dw, dh) = if o.rotation.swaps_dimensions() {
            (sh, sw)
        } else {
            (sw, sh)
        };
        let mut out = Vec::with_capacity(dw * dh * e);
        for y in 0..dh {
            for x in 0..dw {
                let (mut ux, uy) = match o.rotation {
                    Rotation::R0 => (x, y),
                    Rotation::R90 => (y, sh - 1 - x),
                    Rotation::R180 => (sw - 1 - x, sh - 1 - y),
                    Rotation::R270 => (sw - 1 - y, x),
                };
                if o.flip {
                    ux = sw - 1 - ux;
                }
                let off = uy * p.stride + ux * e;
                out.extend_from_slice(&p.data[off..off + e]);
            }
        }
        out
    })
}

/// Pushes `input` through `desc` and returns the output buffer and its video info.
fn through(desc: &str, caps: &str, input: gst::Buffer) -> (gst::Buffer, gst_video::VideoInfo) {
    let mut h = gst_check::Harness::new_parse(desc);
    h.set_src_caps_str(caps);
    h.push(input).unwrap();
    let out = h.pull().unwrap();
    let caps = h.sinkpad().unwrap().current_caps().unwrap();
    (out, gst_video::VideoInfo::from_caps(&caps).unwrap())
}

fn videoflip_formats() -> Vec<String> {
    let f = gst::ElementFactory::find("videoflip").unwrap();
    let t = f
        .static_pad_templates()
        .into_iter()
        .find(|t| t.direction() == gst::PadDirection::Sink)
        .unwrap();
    let caps = t.caps();
    let s = caps.structure(0).unwrap();
    s.get::<gst::List>("format")
        .unwrap()
        .iter()
        .map(|v| v.get::<String>().unwrap())
        .collect()
}

#[test]
fn every_supported_format_rotates_bit_exactly() {
    init();
    let flip_formats = videoflip_formats();
    let mut cases = 0;
    let mut against_videoflip = 0;
    for &format in supported_formats() {
        for (w, h) in [(16u32, 8u32), (26, 14)] {
            let caps = format!(
                "video/x-raw,format={},width={w},height={h},framerate=30/1",
                format.to_str()
            );
            let info = gst_video::VideoInfo::builder(format, w, h).build().unwrap();
            let input = filled(&info, cases);
            for facing in ["back", "front"] {
                for rotation in Rotation::ALL {
                    let o = Orientation {
                        rotation,
                        flip: facing == "front",
                    };
                    let props = format!(
                        "sensorrotation mode=follow-app rotation={} camera-facing={facing}",
                        rotation.degrees()
                    );
                    let (out, out_info) =
                        through(&format!("{props} output=pixels"), &caps, input.copy());
                    let (ew, eh) = if rotation.swaps_dimensions() {
                        (h, w)
                    } else {
                        (w, h)
                    };
                    assert_eq!((out_info.width(), out_info.height()), (ew, eh));
                    let got = planes(&out, &out_info);
                    assert_eq!(got, reference(&input, &info, o), "{format:?} {w}x{h} {o:?}");
                    if flip_formats.iter().any(|f| f == format.to_str()) {
                        let (vf, vf_info) = through(
                            &format!("{props} ! videoflip video-direction=auto"),
                            &caps,
                            input.copy(),
                        );
                        assert_eq!(
                            got,
                            planes(&vf, &vf_info),
                            "videoflip differs: {format:?} {w}x{h} {o:?}"
                        );
                        against_videoflip += 1;
                    }
                    cases += 1;
                }
            }
        }
    }
    // The supported list is what the docs list: it must not shrink unnoticed.
    assert!(supported_formats().len() >= 40, "{:?}", supported_formats());
    assert_eq!(cases, supported_formats().len() * 16);
    assert!(against_videoflip >= 16 * 16, "{against_videoflip}");
}

#[test]
fn unsupported_formats_do_not_negotiate_in_pixel_output_but_pass_in_metadata_output() {
    init();
    for format in ["YUY2", "UYVY", "NV16", "Y41B", "v210"] {
        assert!(!supported_formats().iter().any(|f| f.to_str() == format));
        let caps = format!("video/x-raw,format={format},width=64,height=48,framerate=30/1");
        let info = gst_video::VideoInfo::from_caps(&caps.parse::<gst::Caps>().unwrap()).unwrap();
        let mut h = gst_check::Harness::new_parse(
            "sensorrotation mode=follow-app rotation=90 output=pixels",
        );
        h.set_src_caps_str(&caps);
        let buf = gst::Buffer::with_size(info.size()).unwrap();
        assert_eq!(h.push(buf), Err(gst::FlowError::NotNegotiated), "{format}");

        let mut h = gst_check::Harness::new_parse("sensorrotation mode=follow-app rotation=90");
        h.set_src_caps_str(&caps);
        let buf = gst::Buffer::with_size(info.size()).unwrap();
        h.push(buf).unwrap();
        assert!(h.pull().is_ok(), "{format}");
    }
}

#[test]
fn metadata_output_passes_other_memory_in_place() {
    init();
    for features in ["memory:DMABuf", "memory:GLMemory"] {
        let mut h = gst_check::Harness::new_parse("sensorrotation mode=follow-app rotation=270");
        h.set_src_caps_str(&format!(
            "video/x-raw({features}),format=NV12,width=64,height=48,framerate=30/1"
        ));
        let mut buf = gst::Buffer::with_size(64 * 48 * 3 / 2).unwrap();
        buf.get_mut()
            .unwrap()
            .set_pts(gst::ClockTime::from_nseconds(FRAME_NS));
        let data = buf.peek_memory(0).as_ptr();
        h.push(buf).unwrap();
        let out = h.pull().unwrap();
        assert_eq!(
            out.peek_memory(0).as_ptr(),
            data,
            "{features}: memory was copied"
        );
        assert_eq!(
            gststreamwire::meta::orientation(&out).unwrap().rotation,
            Rotation::R270
        );
        let caps = h.sinkpad().unwrap().current_caps().unwrap();
        assert!(caps.features(0).unwrap().contains(features), "{caps}");
    }
}
