// SPDX-License-Identifier: MIT OR Apache-2.0
//! Pixel output of `sensorrotation`: which raw formats can be rotated, their caps, and the
//! per-frame rotation of every plane.
//!
//! A format can be rotated plane by plane when each plane's components share one element
//! size and are subsampled equally across and down (4:4:4, 4:2:0, 4:1:0; packed RGB and
//! grey): a rotated plane then has the same layout. Packed 4:2:2 (`YUY2`, `UYVY`), 4:1:1,
//! tiled, palettised and other "complex" formats cannot and are left out of the caps, so
//! such a stream fails to negotiate in pixel output instead of being corrupted (metadata
//! output takes any format and memory).
//!
//! ```
//! use gststreamwire::sensorrotation::pixels::supported_formats;
//! use gst_video::VideoFormat;
//! gst::init().unwrap();
//! assert!(supported_formats().contains(&VideoFormat::I420));
//! assert!(!supported_formats().contains(&VideoFormat::Yuy2));
//! ```

use std::sync::LazyLock;

use gst_video::prelude::*;

use super::rotate::{PlaneGeom, RotateError, rotate_plane};
use crate::orientation::Orientation;

fn rotatable(format: gst_video::VideoFormat) -> bool {
    if format.to_str() == "UNKNOWN" || format.to_str().is_empty() {
        return false;
    }
    let info = gst_video::VideoFormatInfo::from_format(format);
    if info.format() != format || info.is_complex() || info.is_tiled() || info.has_palette() {
        return false;
    }
    let n = info.n_components() as usize;
    if n == 0 {
        return false;
    }
    let (w_sub, h_sub, planes, strides) = (
        info.w_sub(),
        info.h_sub(),
        info.plane(),
        info.pixel_stride(),
    );
    (0..n).all(|c| {
        w_sub[c] == h_sub[c]
            && strides[c] > 0
            && (0..n)
                .filter(|&o| planes[o] == planes[c])
                .all(|o| w_sub[o] == w_sub[c] && strides[o] == strides[c])
    })
}

static FORMATS: LazyLock<Vec<gst_video::VideoFormat>> = LazyLock::new(|| {
    gst_video::VideoFormat::iter_raw()
        .filter(|f| rotatable(*f))
        .collect()
});

/// The raw formats pixel output rotates, in GStreamer's order of preference.
pub fn supported_formats() -> &'static [gst_video::VideoFormat] {
    &FORMATS
}

/// Caps pixel output accepts: system-memory progressive video in [`supported_formats`].
pub fn caps() -> gst::Caps {
    gst_video::VideoCapsBuilder::new()
        .format_list(supported_formats().iter().copied())
        .field("interlace-mode", "progressive")
        .build()
}

/// Swaps width/height (and inverts the pixel aspect ratio) in every structure of `caps`.
pub fn swap_dimensions(caps: &mut gst::Caps) {
    for s in caps.make_mut().iter_mut() {
        let w = s.value("width").ok().cloned();
        let h = s.value("height").ok().cloned();
        if let (Some(w), Some(h)) = (w, h) {
            s.set_value("width", h);
            s.set_value("height", w);
        }
        if let Ok(par) = s.get::<gst::Fraction>("pixel-aspect-ratio")
            && par.numer() > 0
        {
            s.set(
                "pixel-aspect-ratio",
                gst::Fraction::new(par.denom(), par.numer()),
            );
        }
    }
}

/// A plane that could not be rotated.
#[derive(Debug)]
pub struct FrameError {
    /// Plane index.
    pub plane: u32,
    /// Why.
    pub error: RotateError,
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "plane {}: {}", self.plane, self.error)
    }
}

/// Rotates every plane of `inframe` into `outframe` (whose geometry is the rotated one).
pub fn transform_frame(
    inframe: &gst_video::VideoFrameRef<&gst::BufferRef>,
    outframe: &mut gst_video::VideoFrameRef<&mut gst::BufferRef>,
    o: Orientation,
) -> Result<(), FrameError> {
    let finfo = inframe.format_info();
    let to_usize = |v: i32| usize::try_from(v).unwrap_or(0);
    for plane in 0..inframe.n_planes() {
        let err = |error| FrameError { plane, error };
        let Some(comp) = (0..inframe.n_components()).find(|&c| finfo.plane()[c as usize] == plane)
        else {
            continue;
        };
        let elem = to_usize(finfo.pixel_stride()[comp as usize]);
        let s = PlaneGeom {
            width: inframe.comp_width(comp) as usize,
            height: inframe.comp_height(comp) as usize,
            elem,
            stride: to_usize(inframe.plane_stride()[plane as usize]),
        };
        let d = PlaneGeom {
            width: outframe.comp_width(comp) as usize,
            height: outframe.comp_height(comp) as usize,
            elem,
            stride: to_usize(outframe.plane_stride()[plane as usize]),
        };
        let src = inframe
            .plane_data(plane)
            .map_err(|_| err(RotateError::TooSmall))?;
        let dst = outframe
            .plane_data_mut(plane)
            .map_err(|_| err(RotateError::TooSmall))?;
        rotate_plane(src, s, dst, d, o).map_err(err)?;
    }
    Ok(())
}
