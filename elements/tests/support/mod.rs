// SPDX-License-Identifier: MIT OR Apache-2.0
//! Helpers shared by the element tests: plugin set-up, tight frame images, tags.
#![allow(dead_code)]

use gst::prelude::*;
use gst_video::prelude::*;

pub const FRAME_NS: u64 = 33_333_333;

pub fn init() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        gst::init().unwrap();
        gststreamwire::plugin_register_static().unwrap();
    });
}

/// A single-plane 8-bit image, rows tight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gray {
    pub w: usize,
    pub h: usize,
    pub px: Vec<u8>,
}

impl Gray {
    /// Every pixel different.
    pub fn pattern(w: usize, h: usize) -> Gray {
        Gray {
            w,
            h,
            px: (0..w * h).map(|i| (i * 5 + 1) as u8).collect(),
        }
    }

    pub fn at(&self, x: usize, y: usize) -> u8 {
        self.px[y * self.w + x]
    }

    /// Rotated `deg` degrees clockwise.
    pub fn rotated(&self, deg: u32) -> Gray {
        let mut g = self.clone();
        for _ in 0..(deg / 90) % 4 {
            let (w, h) = (g.h, g.w);
            // dst(x, y) = src(y, H-1-x)
            let px = (0..h)
                .flat_map(|y| (0..w).map(move |x| (x, y)))
                .map(|(x, y)| g.at(y, g.h - 1 - x))
                .collect();
            g = Gray { w, h, px };
        }
        g
    }

    /// Mirrored left-right.
    pub fn mirrored(&self) -> Gray {
        let px = (0..self.h)
            .flat_map(|y| (0..self.w).map(move |x| (x, y)))
            .map(|(x, y)| self.at(self.w - 1 - x, y))
            .collect();
        Gray {
            w: self.w,
            h: self.h,
            px,
        }
    }

    /// As a GRAY8 buffer with GStreamer's default stride (rows padded to 4 bytes).
    pub fn to_buffer(&self, pts: u64) -> gst::Buffer {
        let stride = self.w.div_ceil(4) * 4;
        let mut data = vec![0u8; stride * self.h];
        for y in 0..self.h {
            data[y * stride..y * stride + self.w]
                .copy_from_slice(&self.px[y * self.w..(y + 1) * self.w]);
        }
        let mut buf = gst::Buffer::from_mut_slice(data);
        {
            let b = buf.get_mut().unwrap();
            b.set_pts(gst::ClockTime::from_nseconds(pts));
            b.set_duration(gst::ClockTime::from_nseconds(FRAME_NS));
        }
        buf
    }

    pub fn caps(&self) -> String {
        format!(
            "video/x-raw,format=GRAY8,width={},height={},framerate=30/1",
            self.w, self.h
        )
    }

    /// Reads a GRAY8 buffer with `caps`.
    pub fn from_buffer(buf: &gst::Buffer, caps: &gst::Caps) -> Gray {
        let info = gst_video::VideoInfo::from_caps(caps).unwrap();
        assert_eq!(info.format(), gst_video::VideoFormat::Gray8);
        let frame = gst_video::VideoFrameRef::from_buffer_ref_readable(buf, &info).unwrap();
        let (w, h) = (info.width() as usize, info.height() as usize);
        let stride = frame.plane_stride()[0] as usize;
        let data = frame.plane_data(0).unwrap();
        let px = (0..h)
            .flat_map(|y| data[y * stride..y * stride + w].to_vec())
            .collect();
        Gray { w, h, px }
    }
}

/// The directory of the plugin built by this test run (the cdylib next to the test binary):
/// target/<profile>/deps/<test binary> -> target/<profile>.
pub fn plugin_dir() -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(|d| d.parent()).unwrap().to_owned();
    assert!(
        dir.join("libgststreamwire.so").exists(),
        "{} has no libgststreamwire.so",
        dir.display()
    );
    dir
}

/// Image-orientation values of the tag events waiting in the harness, in order.
pub fn drain_orientation_tags(h: &mut gst_check::Harness) -> Vec<String> {
    let mut out = Vec::new();
    while let Some(ev) = h.try_pull_event() {
        if let gst::EventView::Tag(t) = ev.view()
            && let Some(v) = t.tag().get::<gst::tags::ImageOrientation>()
        {
            out.push(v.get().to_owned());
        }
    }
    out
}

/// Gravity reaction of a device turned `deg` degrees clockwise from upright.
pub fn gravity(deg: u32) -> (f64, f64, f64) {
    let r = f64::from(deg).to_radians();
    (-9.81 * r.sin(), 9.81 * r.cos(), 0.0)
}

pub fn push_sample(e: &gst::Element, deg: u32) {
    let (x, y, z) = gravity(deg);
    e.emit_by_name::<()>("push-sample", &[&x, &y, &z]);
}
