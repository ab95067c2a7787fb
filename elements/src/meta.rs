// SPDX-License-Identifier: MIT OR Apache-2.0
//! The orientation buffer meta shared by `sensorrotation` and `rtphdrextcvo`.
//!
//! It is a GStreamer *custom meta* (`gst_meta_register_custom`, GStreamer >= 1.20) named
//! [`ORIENTATION_META_NAME`], carrying a structure with `rotation` (`u32`, clockwise degrees
//! 0/90/180/270), `flip` (`bool`) and, when known, `camera` ([`CameraFacing`]: the CVO `C`
//! bit). A custom meta needs no unsafe code, is copied by
//! `gst_buffer_copy` and, being tagged `video` + `orientation`, survives video encoders and
//! decoders (their default `transform_meta` keeps metas with only those tags) and is dropped
//! by elements that really rotate the picture (`videoflip`), which is exactly right.
//!
//! ```
//! use gststreamwire::{meta, orientation::{CameraFacing, Orientation, Rotation}};
//! gst::init().unwrap();
//! meta::register();
//! let mut buf = gst::Buffer::new();
//! let o = Orientation::rotated(Rotation::R270);
//! meta::set_orientation(buf.get_mut().unwrap(), o, Some(CameraFacing::Back));
//! assert_eq!(meta::orientation(&buf).unwrap().rotation, Rotation::R270);
//! assert_eq!(meta::camera(&buf), Some(CameraFacing::Back));
//! ```

use gst::glib;

use crate::orientation::{CameraFacing, Orientation, Rotation};

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

/// The camera recorded in the orientation meta of `buffer`, if any.
pub fn camera(buffer: &gst::BufferRef) -> Option<CameraFacing> {
    let meta = gst::meta::CustomMeta::from_buffer(buffer, ORIENTATION_META_NAME).ok()?;
    meta.structure().get::<CameraFacing>("camera").ok()
}

/// Sets (adds or replaces) the orientation meta of `buffer`, with the camera when known.
///
/// This runs for every buffer in `sensorrotation`'s metadata output, so it avoids the
/// per-call string-to-quark lookups: the field names are interned once.
pub fn set_orientation(buffer: &mut gst::BufferRef, o: Orientation, camera: Option<CameraFacing>) {
    static FIELDS: std::sync::LazyLock<(glib::Quark, glib::Quark, glib::Quark)> =
        std::sync::LazyLock::new(|| {
            (
                glib::Quark::from_str("rotation"),
                glib::Quark::from_str("flip"),
                glib::Quark::from_str("camera"),
            )
        });
    register();
    // Only look for an existing meta when the buffer has any meta at all.
    let existing = if buffer.iter_meta::<gst::Meta>().next().is_some() {
        gst::meta::CustomMeta::from_mut_buffer(buffer, ORIENTATION_META_NAME).ok()
    } else {
        None
    };
    let mut meta = match existing {
        Some(m) => m,
        None => match gst::meta::CustomMeta::add(buffer, ORIENTATION_META_NAME) {
            Ok(m) => m,
            Err(_) => return,
        },
    };
    let s = meta.mut_structure();
    let (rotation, flip, camera_q) = *FIELDS;
    // The quark-keyed setters are deprecated in favour of IdStr ones, which need
    // GStreamer 1.26 to avoid the lookup; 1.22 is our floor.
    #[allow(deprecated)]
    {
        s.set_by_quark(rotation, o.rotation.degrees());
        s.set_by_quark(flip, o.flip);
        match camera {
            Some(c) => s.set_by_quark(camera_q, c),
            None => s.remove_field("camera"),
        }
    }
}

/// Removes the orientation meta of `buffer`, if any.
pub fn remove_orientation(buffer: &mut gst::BufferRef) {
    if let Ok(m) = gst::meta::CustomMeta::from_mut_buffer(buffer, ORIENTATION_META_NAME) {
        let _ = m.remove();
    }
}
