// SPDX-License-Identifier: MIT OR Apache-2.0
//! The orientation buffer meta shared by `sensorrotation` and `rtphdrextcvo`.
//!
//! It is a GStreamer *custom meta* (`gst_meta_register_custom`, GStreamer >= 1.20) named
//! [`ORIENTATION_META_NAME`], carrying a structure with `rotation` (`u32`, clockwise degrees
//! 0/90/180/270) and `flip` (`bool`). A custom meta needs no unsafe code, is copied by
//! `gst_buffer_copy` and, being tagged `video` + `orientation`, survives video encoders and
//! decoders (their default `transform_meta` keeps metas with only those tags) and is dropped
//! by elements that really rotate the picture (`videoflip`), which is exactly right.
//!
//! ```
//! use gststreamwire::{meta, orientation::{Orientation, Rotation}};
//! gst::init().unwrap();
//! meta::register();
//! let mut buf = gst::Buffer::new();
//! meta::set_orientation(buf.get_mut().unwrap(), Orientation::rotated(Rotation::R270));
//! assert_eq!(meta::orientation(&buf).unwrap().rotation, Rotation::R270);
//! ```

use crate::orientation::{Orientation, Rotation};

/// Name of the custom meta (also its structure name).
pub const ORIENTATION_META_NAME: &str = "StreamwireOrientationMeta";

/// Registers the meta; idempotent and thread-safe. Called by the plugin's init.
pub fn register() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if !gst::meta::CustomMeta::is_registered(ORIENTATION_META_NAME) {
            gst::meta::CustomMeta::register(ORIENTATION_META_NAME, &["video", "orientation"]);
        }
    });
}

/// Reads the orientation meta of `buffer`, if any and well-formed.
pub fn orientation(buffer: &gst::BufferRef) -> Option<Orientation> {
    let meta = gst::meta::CustomMeta::from_buffer(buffer, ORIENTATION_META_NAME).ok()?;
    let s = meta.structure();
    let rotation = Rotation::from_degrees(s.get::<u32>("rotation").ok()?)?;
    let flip = s.get::<bool>("flip").unwrap_or(false);
    Some(Orientation { rotation, flip })
}

/// Sets (adds or replaces) the orientation meta of `buffer`.
pub fn set_orientation(buffer: &mut gst::BufferRef, o: Orientation) {
    register();
    let mut meta = match gst::meta::CustomMeta::from_mut_buffer(buffer, ORIENTATION_META_NAME) {
        Ok(m) => m,
        Err(_) => match gst::meta::CustomMeta::add(buffer, ORIENTATION_META_NAME) {
            Ok(m) => m,
            Err(_) => return,
        },
    };
    let s = meta.mut_structure();
    s.set("rotation", o.rotation.degrees());
    s.set("flip", o.flip);
}

/// Removes the orientation meta of `buffer`, if any.
pub fn remove_orientation(buffer: &mut gst::BufferRef) {
    if let Ok(m) = gst::meta::CustomMeta::from_mut_buffer(buffer, ORIENTATION_META_NAME) {
        let _ = m.remove();
    }
}
