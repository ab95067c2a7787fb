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

/// Initialise GStreamer and register Streamwire's elements statically, and start generating
/// the process's DTLS certificate in the background.
///
/// Safe to call any number of times from any thread; only the first call does work.
///
/// The DTLS elements of every peer connection share one certificate per process, generated
/// when the first of them is created (an RSA key: 50–700 ms here, more on a busy machine). The
/// first call therefore starts that on a thread of its own, so a `join` right after
/// initialisation overlaps it with connecting, joining and ICE instead of waiting for it after
/// ICE; [`dtls_certificate_ready`] waits for it.
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
            gstrsrtp::plugin_register_static().map_err(|e| format!("elements: rtp: {e}"))?;
            let spawned = std::thread::Builder::new()
                .name("streamwire-dtls-cert".into())
                .spawn(|| {
                    if let Err(e) = dtls_certificate_ready() {
                        tracing::debug!(error = %e, "no DTLS certificate generated in advance");
                    }
                });
            if let Err(e) = spawned {
                tracing::debug!(error = %e, "no thread for the DTLS certificate");
            }
            Ok(())
        })
        .clone()
        .map_err(|e| match e.strip_prefix("gst: ") {
            Some(rest) => InitError::Gst(rest.to_owned()),
            None => InitError::Elements(e.trim_start_matches("elements: ").to_owned()),
        })
}

/// Wait until the process's DTLS certificate exists (generating it now if [`init`] has not
/// started it): creating a `dtlsdec` element blocks until the shared certificate is there.
/// Call [`init`] first.
///
/// ```
/// streamwire::gst_init::init().unwrap();
/// streamwire::gst_init::dtls_certificate_ready().expect("the dtls plugin is installed");
/// ```
pub fn dtls_certificate_ready() -> Result<(), InitError> {
    gst::ElementFactory::make("dtlsdec")
        .build()
        .map(drop)
        .map_err(|e| InitError::Elements(format!("dtlsdec (gst-plugins-bad dtls): {e}")))
}
