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
//! - `whiteboardsrc`: renders a whiteboard document ([`whiteboard`]) to raw video, from a
//!   saved update log or live.
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
pub mod whiteboard;
pub mod whiteboardsrc;

pub mod docs;

/// Where the elements are documented: `docs/elements.md` in the Streamwire source tree,
/// generated from this plugin (see [`docs::elements_markdown`]). Streamwire has no public
/// home page, so this in-tree path is both the plugin's origin and each element's `doc-uri`.
pub const DOC_PATH: &str = "docs/elements.md";

/// Element metadata with the project's author line and a `doc-uri` pointing at the
/// element's section of [`DOC_PATH`].
pub(crate) fn element_metadata(
    long_name: &str,
    classification: &str,
    description: &str,
    element: &str,
) -> gst::subclass::ElementMetadata {
    let doc = format!("{DOC_PATH}#{element}");
    gst::subclass::ElementMetadata::with_additional(
        long_name,
        classification,
        description,
        env!("CARGO_PKG_AUTHORS"),
        &[("doc-uri", doc.as_str())],
    )
}

fn plugin_init(plugin: &gst::Plugin) -> Result<(), gst::glib::BoolError> {
    meta::register();
    sensorrotation::register(plugin)?;
    rtphdrextcvo::register(plugin)?;
    devicetelemetry::register(plugin)?;
    whiteboardsrc::register(plugin)?;
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
    // The origin: Streamwire has no public URL; this names where the plugin is documented.
    "Streamwire source tree, docs/elements.md",
    env!("BUILD_REL_DATE")
);
