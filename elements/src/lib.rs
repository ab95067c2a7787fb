// SPDX-License-Identifier: MIT OR Apache-2.0
#![allow(clippy::non_send_fields_in_send_ty, unused_doc_comments)]

//! Streamwire's GStreamer plugin (`streamwire`).
//!
//! Built as a `cdylib` so that `gst-inspect-1.0 streamwire` and `gst-launch-1.0`
//! find it through `GST_PLUGIN_PATH`, and as an `rlib` that the `streamwire`
//! library registers statically with [`plugin_register_static`].
//!
//! Elements:
//! - `sensorrotation`: follows the gravity sensor (or the app, or an orientation meta) and
//!   signals the picture orientation downstream (`image-orientation` tag plus
//!   [`meta`] on every buffer), or rotates the pixels itself.
//! - `rtphdrextcvo`: the `urn:3gpp:video-orientation` (CVO) RTP header extension.
//! - `devicetelemetry`: pass-through element posting consent-gated device and stream
//!   telemetry; the fields are defined once in [`telemetry::REGISTRY`].
//!
//! ```
//! gst::init().unwrap();
//! gststreamwire::plugin_register_static().unwrap();
//! assert!(gst::ElementFactory::find("sensorrotation").is_some());
//! ```

pub mod devicetelemetry;
pub mod meta;
pub mod orientation;
pub mod rtphdrextcvo;
pub mod sensorrotation;
pub mod telemetry;

fn plugin_init(plugin: &gst::Plugin) -> Result<(), gst::glib::BoolError> {
    meta::register();
    sensorrotation::register(plugin)?;
    rtphdrextcvo::register(plugin)?;
    devicetelemetry::register(plugin)?;
    Ok(())
}

gst::plugin_define!(
    streamwire,
    env!("CARGO_PKG_DESCRIPTION"),
    plugin_init,
    concat!(env!("CARGO_PKG_VERSION"), "-", env!("COMMIT_ID")),
    "MIT/X11",
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_REPOSITORY"),
    env!("BUILD_REL_DATE")
);
