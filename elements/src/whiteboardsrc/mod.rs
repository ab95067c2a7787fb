// SPDX-License-Identifier: MIT OR Apache-2.0
//! `whiteboardsrc`: renders a whiteboard document ([`crate::whiteboard`]) to raw RGBA video,
//! from a saved update log (`location`, replayed on the stream's timeline) or live from the
//! updates an application pushes (`push-update`, e.g. a Streamwire session's whiteboard).
//!
//! A frame is painted only when the document changed since the previous one; otherwise the
//! previous picture is sent again. Live, frame N is painted when the clock reaches its time
//! (N / framerate) with every update pushed before; when downstream held the element past
//! the next frames' times, those frames are skipped, so a frame's time is always within one
//! frame interval of when it was painted.
//!
//! # Properties
//! | property | type | default | notes |
//! |---|---|---|---|
//! | `location` | path | none | update log to replay (`{"t_ms", "update"}` lines); the entry at `t_ms` is shown from the first frame at or after it |
//! | `page` | string | empty | page id to show; empty: the first page in order (or the page of the newest item when there is no page list) |
//! | `backgrounds` | path | none | directory of page backgrounds: a page's `bg` URL path ending in `DOC/N.png` is read from `backgrounds/DOC/N.png` |
//! | `is-live` | bool | false | live: frames follow the pipeline clock and `push-update` feeds the document |
//!
//! ```
//! use gst::prelude::*;
//! gst::init().unwrap();
//! gststreamwire::plugin_register_static().unwrap();
//! let e = gst::ElementFactory::make("whiteboardsrc").property("is-live", true).build().unwrap();
//! assert!(e.property::<bool>("is-live"));
//! ```

use gst::glib;
use gst::prelude::*;

mod imp;

glib::wrapper! {
    /// The `whiteboardsrc` element.
    pub struct WhiteboardSrc(ObjectSubclass<imp::WhiteboardSrc>)
        @extends gst_base::PushSrc, gst_base::BaseSrc, gst::Element, gst::Object;
}

/// Registers `whiteboardsrc` with `plugin`.
pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(
        Some(plugin),
        "whiteboardsrc",
        gst::Rank::NONE,
        WhiteboardSrc::static_type(),
    )
}
