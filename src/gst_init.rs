//! One-time GStreamer initialisation, including Streamwire's own elements.

use parking_lot::Mutex;
use std::sync::{Once, OnceLock};

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

/// The thread generating the DTLS certificate, while it runs.
static CERT_THREAD: Mutex<Option<std::thread::JoinHandle<()>>> = Mutex::new(None);
static CERT_STARTED: Once = Once::new();

/// Start generating the process's DTLS certificate on a thread of its own (once per process;
/// [`init`] first). The DTLS elements of every peer connection share one certificate per
/// process, generated when the first of them is created (an RSA key: 50–700 ms here, more on a
/// busy machine), and every peer connection waits for it. `Session::join` starts it before it
/// connects to the signalling server, so it overlaps connecting and joining; an application
/// that knows it will call may start it earlier, at start-up. Before the process exits, let
/// [`dtls_certificate_ready`] return (or have left the session): a process that exits while
/// OpenSSL generates the key can crash in OpenSSL's exit handlers.
///
/// ```
/// streamwire::gst_init::init().unwrap();
/// streamwire::gst_init::prepare_dtls_certificate();
/// // ... later, before exiting without a call:
/// streamwire::gst_init::dtls_certificate_ready().unwrap();
/// ```
pub fn prepare_dtls_certificate() {
    CERT_STARTED.call_once(|| {
        let spawned = std::thread::Builder::new()
            .name("streamwire-dtls-cert".into())
            .spawn(|| {
                if let Err(e) = make_dtls_element() {
                    tracing::debug!(error = %e, "no DTLS certificate generated in advance");
                }
            });
        match spawned {
            Ok(handle) => *CERT_THREAD.lock() = Some(handle),
            Err(e) => tracing::debug!(error = %e, "no thread for the DTLS certificate"),
        }
    });
}

/// Wait until the process's DTLS certificate exists: for the thread of
/// [`prepare_dtls_certificate`] if it runs, else by generating it now. Call [`init`] first.
///
/// ```
/// streamwire::gst_init::init().unwrap();
/// streamwire::gst_init::dtls_certificate_ready().expect("the dtls plugin is installed");
/// ```
pub fn dtls_certificate_ready() -> Result<(), InitError> {
    let running = CERT_THREAD.lock().take();
    if let Some(handle) = running {
        let _ = handle.join();
    }
    make_dtls_element()
}

/// Creating a `dtlsdec` element blocks until the shared certificate exists.
fn make_dtls_element() -> Result<(), InitError> {
    gst::ElementFactory::make("dtlsdec")
        .build()
        .map(drop)
        .map_err(|e| InitError::Elements(format!("dtlsdec (gst-plugins-bad dtls): {e}")))
}
