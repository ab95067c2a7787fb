// SPDX-License-Identifier: MIT OR Apache-2.0
//! `devicetelemetry`: a pass-through element (any caps, in place, no copies) that every
//! `interval` posts an element message `streamwire-telemetry` on the bus with the device and
//! stream fields of [`crate::telemetry::REGISTRY`] that the `consent` level allows.
//!
//! Sampling runs on the element's own timer thread; the streaming thread only adds to two
//! atomic counters per buffer. With consent `none` (the default) nothing is read or posted.
//!
//! # Properties (all can be mapped from a pipeline preset)
//! | property | type | default | notes |
//! |---|---|---|---|
//! | `consent` | `none` / `necessary` / `full` | `none` | changeable while playing |
//! | `interval` | uint 100..3600000 ms | 5000 | changeable while playing |
//! | `screen-resolution` | `WIDTHxHEIGHT` | `$STREAMWIRE_SCREEN_RESOLUTION` or none | provided by the app |
//!
//! ```
//! use gst::prelude::*;
//! gst::init().unwrap();
//! gststreamwire::plugin_register_static().unwrap();
//! let e = gst::ElementFactory::make("devicetelemetry")
//!     .property_from_str("consent", "necessary")
//!     .property("interval", 1000u32)
//!     .build()
//!     .unwrap();
//! assert_eq!(e.property::<u32>("interval"), 1000);
//! ```

use gst::glib;
use gst::prelude::*;

mod imp;

glib::wrapper! {
    /// The `devicetelemetry` element.
    pub struct DeviceTelemetry(ObjectSubclass<imp::DeviceTelemetry>)
        @extends gst_base::BaseTransform, gst::Element, gst::Object;
}

/// Registers `devicetelemetry` with `plugin`.
pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    crate::telemetry::Consent::static_type();
    gst::Element::register(
        Some(plugin),
        "devicetelemetry",
        gst::Rank::NONE,
        DeviceTelemetry::static_type(),
    )
}
