//! Streamwire: a real-time audio/video framework on GStreamer.
//!
//! Capture, hardware encode and WebRTC transport are GStreamer pipelines;
//! signalling, rooms and real-time messages are a Rust layer on tokio.

pub mod encoder;
pub mod gst_init;
pub mod impair;
pub mod pipeline;
pub mod preset;
pub mod probe;
pub mod report;
pub mod server;
pub mod session;
pub mod signalling;
pub mod telemetry;
pub mod webrtc;
