// SPDX-License-Identifier: MIT OR Apache-2.0
//! `sensorrotation`: follows the gravity sensor (or the app, or an upstream orientation meta)
//! and signals the picture orientation downstream, or rotates the pixels itself.
//!
//! # Properties (all can be mapped from a pipeline preset)
//! | property | type | default | notes |
//! |---|---|---|---|
//! | `mode` | `follow-sensor` / `follow-app` / `follow-meta` / `off` | `follow-sensor` | changeable while playing |
//! | `rotation` | `0` / `90` / `180` / `270` | `0` | used in `follow-app`; changeable while playing |
//! | `output` | `metadata` / `pixels` | `metadata` | changeable in NULL/READY only |
//! | `hysteresis` | double 0..44 degrees | 15 | past the 45-degree boundary |
//! | `hold-time` | uint 0..10000 ms | 300 | a new orientation must persist this long |
//! | `replay-file` | path | none | sensor samples `t_ms x y z` per line |
//! | `iio-device` | path | none | e.g. `/sys/bus/iio/devices/iio:device0` |
//! | `iio-poll-interval` | uint 10..1000 ms | 50 | |
//! | `orientation` | uint (read-only) | 0 | degrees currently signalled |
//!
//! Sensor source: `replay-file` if set, else `iio-device` if set, else samples pushed by the
//! application with the action signal `push-sample(x, y, z)` (doubles, device axes).
//!
//! In `metadata` output, every change of orientation sends exactly one `image-orientation`
//! tag event downstream (merged with upstream stream tags) before the first buffer with the
//! new orientation, and every buffer carries the [`crate::meta`] orientation meta. Upstream
//! tag updates are forwarded with any `image-orientation` removed (unless `mode=off`). In
//! `pixels` output the element rotates the frames itself (width and height swap at 90/270,
//! renegotiating on change) and sends no orientation tag; a horizontal flip carried by an
//! incoming orientation meta (`follow-meta`) is not applied there, only the rotation.
//!
//! ```
//! use gst::prelude::*;
//! gst::init().unwrap();
//! gststreamwire::plugin_register_static().unwrap();
//! let e = gst::ElementFactory::make("sensorrotation")
//!     .property_from_str("mode", "follow-app")
//!     .property_from_str("rotation", "90")
//!     .build()
//!     .unwrap();
//! assert_eq!(e.property::<u32>("hold-time"), 300);
//! ```

use gst::glib;
use gst::prelude::*;

mod imp;
pub mod rotate;
pub mod source;

/// How the orientation is decided.
#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, Default, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstSensorRotationMode")]
pub enum Mode {
    /// Follow the accelerometer.
    #[default]
    #[enum_value(name = "Follow the gravity sensor", nick = "follow-sensor")]
    FollowSensor = 0,
    /// Fixed rotation set by the application (`rotation` property), changeable at any time.
    #[enum_value(
        name = "Follow the application (rotation property)",
        nick = "follow-app"
    )]
    FollowApp = 1,
    /// Follow the orientation meta on incoming buffers (e.g. set by `rtphdrextcvo` on receive).
    #[enum_value(
        name = "Follow the orientation meta on incoming buffers (e.g. from rtphdrextcvo)",
        nick = "follow-meta"
    )]
    FollowMeta = 2,
    /// Do nothing: pass buffers and tags through untouched.
    #[enum_value(name = "Off (pass-through)", nick = "off")]
    Off = 3,
}

/// What the element produces.
#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, Default, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstSensorRotationOutput")]
pub enum Output {
    /// Tag + meta only; receivers rotate (videoflip video-direction=auto, CVO).
    #[default]
    #[enum_value(
        name = "Metadata only: image-orientation tag and buffer meta",
        nick = "metadata"
    )]
    Metadata = 0,
    /// Rotate the pixels here, for receivers that cannot rotate.
    #[enum_value(
        name = "Rotate the pixels (width/height swap at 90/270)",
        nick = "pixels"
    )]
    Pixels = 1,
}

/// Rotation for `follow-app`, clockwise degrees.
#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, Default, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstSensorRotationAngle")]
pub enum Angle {
    /// Upright.
    #[default]
    #[enum_value(name = "0 degrees", nick = "0")]
    R0 = 0,
    /// 90 degrees clockwise.
    #[enum_value(name = "90 degrees clockwise", nick = "90")]
    R90 = 90,
    /// 180 degrees.
    #[enum_value(name = "180 degrees", nick = "180")]
    R180 = 180,
    /// 270 degrees clockwise.
    #[enum_value(name = "270 degrees clockwise", nick = "270")]
    R270 = 270,
}

impl From<Angle> for crate::orientation::Rotation {
    fn from(a: Angle) -> Self {
        crate::orientation::Rotation::from_degrees(a as u32).unwrap_or_default()
    }
}

glib::wrapper! {
    /// The `sensorrotation` element.
    pub struct SensorRotation(ObjectSubclass<imp::SensorRotation>)
        @extends gst_video::VideoFilter, gst_base::BaseTransform, gst::Element, gst::Object;
}

/// Registers `sensorrotation` and its enum types with `plugin`.
pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    Mode::static_type();
    Output::static_type();
    Angle::static_type();
    gst::Element::register(
        Some(plugin),
        "sensorrotation",
        gst::Rank::NONE,
        SensorRotation::static_type(),
    )
}
