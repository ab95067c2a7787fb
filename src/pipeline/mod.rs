//! Run presets: the layer that consumes a validated [`Preset`](crate::preset::Preset).
//!
//! A local preset becomes a GStreamer pipeline: [`Plan::new`] resolves devices, the rotation
//! sensor and the video encoder and renders a gst-launch description (what `streamwire check`
//! prints); [`Plan::start`] parses exactly that description into a pipeline and plays it;
//! [`Running::run`] waits for EOS (or stops it cleanly with EOS after a time limit or a
//! [`StopHandle::stop`]) while reporting a [`Status`] once per second. A room preset becomes a
//! [`SessionConfig`](crate::session::SessionConfig) through `SessionConfig::try_from(&preset)`
//! (and its capture a [`PublisherConfig`](crate::webrtc::publisher::PublisherConfig)).
//!
//! Layering: `pipeline` uses `preset`, `encoder`, `session` and `webrtc`; none of them uses
//! `pipeline`.
//!
//! ```no_run
//! use streamwire::{pipeline::Plan, preset::Preset};
//! use std::time::Duration;
//!
//! streamwire::gst_init::init().unwrap();
//! let preset = Preset::load("test-to-file", &["output=file:/tmp/x.webm".into()]).unwrap();
//! let plan = Plan::new(&preset).unwrap();
//! println!("{}", plan.description);
//! let summary = plan.start().unwrap().run(Some(Duration::from_secs(2)), |s| println!("{s}")).unwrap();
//! assert!(summary.frames > 0);
//! ```

pub mod devices;
mod plan;
mod room;
mod run;

use std::time::Duration;

use gststreamwire::sensorrotation::source::SourceError;

use crate::encoder::EncoderError;

pub use plan::Plan;
pub use run::{Running, Status, StopHandle, Summary};

/// Errors building or running a pipeline.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// Encoder selection or configuration failed.
    #[error(transparent)]
    Encoder(#[from] EncoderError),
    /// The selected device does not exist.
    #[error("{0}")]
    Device(String),
    /// No element for a source or sink kind is installed.
    #[error("no {what} element installed (searched: {})", searched.join(", "))]
    NoElement {
        /// What was needed (e.g. "screen capture").
        what: &'static str,
        /// Factories searched.
        searched: Vec<&'static str>,
    },
    /// GStreamer rejected the description.
    #[error("cannot build pipeline `{description}`: {message}")]
    Parse {
        /// The description.
        description: String,
        /// GStreamer's message.
        message: String,
    },
    /// The pipeline failed (to start or while running).
    #[error("pipeline error from {element}: {message}{}", debug.as_ref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Runtime {
        /// Element path that posted the error.
        element: String,
        /// Message.
        message: String,
        /// Debug detail.
        debug: Option<String>,
    },
    /// The rotation sensor cannot be used (see
    /// [`SensorSource::iio_accelerometer`](crate::preset::SensorSource::iio_accelerometer)).
    #[error("[rotation] {0}")]
    Sensor(#[source] SourceError),
    /// An input file does not exist.
    #[error("input file {} does not exist", .0.display())]
    MissingInput(std::path::PathBuf),
    /// `output = "display"` without a graphical session.
    #[error(
        "output = \"display\" needs a graphical session, but neither DISPLAY nor WAYLAND_DISPLAY is set (use output = \"fakesink\" or a file when headless)"
    )]
    NoDisplay,
    /// EOS was sent but the pipeline did not finish.
    #[error(
        "pipeline did not finish within {0:?} after EOS was sent; the output may be incomplete"
    )]
    EosTimeout(Duration),
}

/// Element names in built pipelines, for code that wants to find them.
pub mod names {
    /// Video encoder.
    pub const VIDEO_ENCODER: &str = "venc";
    /// Audio encoder.
    pub const AUDIO_ENCODER: &str = "aenc";
    /// Muxer (file output).
    pub const MUXER: &str = "mux";
    /// Last element of the video branch before the encoder (status counting for display output).
    pub const VIDEO_RAW: &str = "vraw";
    /// `sensorrotation` (preset `[rotation]`).
    pub const ROTATION: &str = "rotation";
    /// `devicetelemetry` (preset `[telemetry]`).
    pub const TELEMETRY: &str = "telemetry";
}

/// Name of the element messages `devicetelemetry` posts on the bus.
pub const TELEMETRY_MESSAGE: &str = "streamwire-telemetry";
