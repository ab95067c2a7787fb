//! Streamwire: a real-time audio/video framework on GStreamer.
//!
//! Capture, hardware encode and WebRTC transport are GStreamer pipelines;
//! signalling, rooms and real-time messages are a Rust layer on tokio.
//!
//! The GStreamer bindings the API uses are re-exported ([`gst`], [`gst_app`], [`gst_video`]),
//! so an application uses the same versions as the library without pinning them itself:
//!
//! ```
//! use streamwire::gst;
//! use streamwire::gst::prelude::*;
//! streamwire::gst_init::init().unwrap();
//! let src = gst::ElementFactory::make("appsrc").build().unwrap();
//! let src = src.downcast::<streamwire::gst_app::AppSrc>().unwrap();
//! let info = streamwire::gst_video::VideoInfo::builder(streamwire::gst_video::VideoFormat::I420, 320, 240)
//!     .build()
//!     .unwrap();
//! src.set_caps(Some(&info.to_caps().unwrap()));
//! ```

/// The GStreamer core bindings (`gstreamer`) the library is built with.
pub use gst;
/// The `gstreamer-app` bindings (`AppSrc` for `VideoSource::Element`, `AppSink`).
pub use gst_app;
/// The `gstreamer-video` bindings (`VideoInfo`, `VideoFrame` for received samples).
pub use gst_video;

pub mod encoder;
pub mod gst_init;
pub mod impair;
pub mod media_test;
pub mod pipeline;
pub mod preset;
pub mod probe;
pub mod report;
pub mod server;
pub mod session;
pub mod signalling;
pub mod telemetry;
pub mod webrtc;
pub mod whiteboard;
