// SPDX-License-Identifier: MIT OR Apache-2.0
#![allow(clippy::non_send_fields_in_send_ty, unused_doc_comments)]

//! Streamwire's GStreamer plugin (`streamwire`).
//!
//! Built as a `cdylib` so that `gst-inspect-1.0 streamwire` and `gst-launch-1.0`
//! find it through `GST_PLUGIN_PATH`, and as an `rlib` that the `streamwire`
//! library registers statically with [`plugin_register_static`].

fn plugin_init(_plugin: &gst::Plugin) -> Result<(), gst::glib::BoolError> {
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
