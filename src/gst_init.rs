//! One-time GStreamer initialisation, including Streamwire's own elements.

use std::sync::OnceLock;

/// Error returned when GStreamer or Streamwire's elements cannot be initialised.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// `gst::init` failed (usually a broken GStreamer installation).
    #[error("GStreamer failed to initialise: {0}")]
    Gst(String),
    /// Registering the `streamwire` plugin failed.
    #[error("registering the streamwire elements failed: {0}")]
    Elements(String),
}

/// Initialise GStreamer and register Streamwire's elements statically.
///
/// Safe to call any number of times from any thread; only the first call does work.
///
/// ```
/// streamwire::gst_init::init().expect("GStreamer is installed");
/// ```
pub fn init() -> Result<(), InitError> {
    static RESULT: OnceLock<Result<(), String>> = OnceLock::new();
    RESULT
        .get_or_init(|| {
            gst::init().map_err(|e| format!("gst: {e}"))?;
            gststreamwire::plugin_register_static().map_err(|e| format!("elements: {e}"))?;
            // `rtpgccbwe` (Google Congestion Control) for the WebRTC publisher.
            gstrsrtp::plugin_register_static().map_err(|e| format!("elements: rtp: {e}"))
        })
        .clone()
        .map_err(|e| match e.strip_prefix("gst: ") {
            Some(rest) => InitError::Gst(rest.to_owned()),
            None => InitError::Elements(e.trim_start_matches("elements: ").to_owned()),
        })
}
