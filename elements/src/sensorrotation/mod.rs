// SPDX-License-Identifier: MIT OR Apache-2.0
//! `sensorrotation`: follows the gravity sensor (or the app, or an upstream orientation meta)
//! and signals the picture orientation downstream, or rotates the pixels itself.
//!
//! Properties, pads and the exact rules are in `docs/elements.md` (generated from the
//! element by [`crate::docs`]). In short: `mode` picks where the orientation comes from
//! (`follow-sensor`, `follow-app`, `follow-meta`, `off`), `camera-facing` and
//! `sensor-orientation` turn the device rotation into the picture orientation with Android's
//! camera rule ([`crate::orientation::camera_orientation`]), and `output` either signals it
//! (`image-orientation` tag on each change plus the [`crate::meta`] orientation meta on every
//! buffer) or rotates the pixels here ([`pixels`]).
//!
//! ```
//! use gst::prelude::*;
//! gst::init().unwrap();
//! gststreamwire::plugin_register_static().unwrap();
//! let e = gst::ElementFactory::make("sensorrotation")
//!     .property_from_str("camera-facing", "front")
//!     .property_from_str("sensor-orientation", "270")
//!     .build()
//!     .unwrap();
//! assert_eq!(e.property::<u32>("hold-time"), 300);
//! ```

use gst::glib;
use gst::prelude::*;

mod imp;
pub mod pixels;
pub mod rotate;
mod settings;
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

/// A quarter-turn angle, clockwise degrees (`rotation`, `sensor-orientation`).
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
    crate::orientation::CameraFacing::static_type();
    gst::Element::register(
        Some(plugin),
        "sensorrotation",
        gst::Rank::NONE,
        SensorRotation::static_type(),
    )
}
