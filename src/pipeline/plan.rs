//! Build and run the GStreamer pipeline a validated [`Preset`] describes.
//!
//! [`Plan::new`] resolves devices and the video encoder and renders a gst-launch description (what
//! `streamwire check` prints); [`Plan::start`] parses exactly that description into a pipeline and
//! plays it; [`Running::run`] waits for EOS (or stops it cleanly with EOS after a time limit or a
//! [`StopHandle::stop`]) while reporting a [`Status`] once per second.
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

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use gst::prelude::*;

use crate::encoder::{
    self, Encoder, EncoderConfig, EncoderError, FactorySource, Selection, SystemRegistry,
};
use crate::preset::{
    AudioSource, Output, Preset, RotationMode, RotationOutput, RotationSettings, SensorSource,
    TelemetrySettings, VideoSource,
};
use devices::{DeviceClass, quote};

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
    /// The rotation sensor cannot be used.
    #[error("{0}")]
    Sensor(String),
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

/// A pipeline ready to start: its description and the choices made.
#[derive(Debug, Clone)]
pub struct Plan {
    /// gst-launch description, exactly what [`Plan::start`] builds.
    pub description: String,
    /// The video encoder choice, when the preset encodes video.
    pub video_encoder: Option<Selection>,
    /// Stop after this long (from the preset's `duration`).
    pub duration: Option<Duration>,
    /// Notes about choices made (e.g. default devices used).
    pub notes: Vec<String>,
    /// Whether the pipeline shows video in a window.
    needs_display: bool,
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

/// Where `sensor = "iio"` looks for accelerometers.
pub(crate) const IIO_DEVICES: &str = "/sys/bus/iio/devices";

/// The first IIO device directory under `root` with an accelerometer (`in_accel_x_raw`).
pub(crate) fn find_iio_accelerometer(root: &std::path::Path) -> Option<std::path::PathBuf> {
    let mut dirs: Vec<std::path::PathBuf> = std::fs::read_dir(root)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("in_accel_x_raw").is_file())
        .collect();
    dirs.sort();
    dirs.into_iter().next()
}

/// `sensorrotation ...` for a preset's `[rotation]` table, plus `videoflip video-direction=auto`
/// after it when the pictures stay local (`local`) and the orientation travels as metadata.
fn rotation_fragment(r: &RotationSettings, local: bool) -> Result<String, PipelineError> {
    let mut s = format!("sensorrotation name={}", names::ROTATION);
    match &r.mode {
        RotationMode::FollowSensor(src) => {
            s.push_str(" mode=follow-sensor");
            match src {
                SensorSource::Replay(p) => {
                    s.push_str(&format!(" replay-file={}", quote(&p.to_string_lossy())));
                }
                SensorSource::Iio(dir) => {
                    if !dir.join("in_accel_x_raw").is_file() {
                        return Err(PipelineError::Sensor(format!(
                            "rotation.sensor: {} is not an IIO accelerometer (no in_accel_x_raw)",
                            dir.display()
                        )));
                    }
                    s.push_str(&format!(" iio-device={}", quote(&dir.to_string_lossy())));
                }
                SensorSource::IioAuto => {
                    let dir = find_iio_accelerometer(std::path::Path::new(IIO_DEVICES))
                        .ok_or_else(|| {
                            PipelineError::Sensor(format!(
                                "rotation.sensor = \"iio\": no accelerometer under {IIO_DEVICES} \
                                 (use sensor = \"replay:PATH\", or mode = \"follow-app\")"
                            ))
                        })?;
                    s.push_str(&format!(" iio-device={}", quote(&dir.to_string_lossy())));
                }
            }
        }
        RotationMode::FollowApp { rotation } => {
            s.push_str(&format!(" mode=follow-app rotation={rotation}"));
        }
        RotationMode::Off => s.push_str(" mode=off"),
    }
    if r.output == RotationOutput::Pixels {
        s.push_str(" output=pixels");
    }
    if let Some(h) = r.hysteresis {
        s.push_str(&format!(" hysteresis={h}"));
    }
    if let Some(h) = r.hold_ms {
        s.push_str(&format!(" hold-time={h}"));
    }
    if local && r.output == RotationOutput::Metadata {
        s.push_str(" ! videoflip video-direction=auto");
    }
    Ok(s)
}

fn telemetry_fragment(t: &TelemetrySettings) -> String {
    let mut s = format!(
        "devicetelemetry name={} consent={} interval={}",
        names::TELEMETRY,
        t.consent.as_str(),
        t.interval.as_millis()
    );
    if let Some(res) = &t.screen_resolution {
        s.push_str(&format!(" screen-resolution={}", quote(res)));
    }
    s
}

fn has_display() -> bool {
    ["DISPLAY", "WAYLAND_DISPLAY"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|x| !x.is_empty()))
}

fn first_installed(list: &[&'static str]) -> Option<&'static str> {
    list.iter()
        .copied()
        .find(|f| gst::ElementFactory::find(f).is_some())
}

const CAMERA_DEFAULTS: &[&str] = &[
    "v4l2src",
    "avfvideosrc",
    "mfvideosrc",
    "ksvideosrc",
    "ahcsrc",
];
const SCREEN_SOURCES: &[&str] = &[
    "ximagesrc",
    "avfvideosrc",
    "d3d11screencapturesrc",
    "dx9screencapsrc",
    "gdiscreencapsrc",
];

fn screen_fragment(f: &str) -> String {
    match f {
        "ximagesrc" => "ximagesrc use-damage=false".to_owned(),
        "avfvideosrc" => "avfvideosrc capture-screen=true".to_owned(),
        other => other.to_owned(),
    }
}

impl Plan {
    /// Plan with the real GStreamer registry.
    pub fn new(preset: &Preset) -> Result<Plan, PipelineError> {
        Plan::with_registry(preset, &SystemRegistry::new())
    }

    /// Plan choosing the encoder from `registry`.
    pub fn with_registry(
        preset: &Preset,
        registry: &dyn FactorySource,
    ) -> Result<Plan, PipelineError> {
        let mut notes = Vec::new();
        let mut branches = Vec::new();
        let encode = !matches!(preset.output, Output::Display);
        let file_src = |p: &std::path::Path| {
            format!(
                "filesrc location={} ! decodebin name=dec",
                quote(&p.to_string_lossy())
            )
        };
        let mut decoders: Vec<(std::path::PathBuf, String)> = Vec::new();
        let inputs = [
            match &preset.input.video {
                VideoSource::File(p) => Some(p),
                _ => None,
            },
            match &preset.input.audio {
                AudioSource::File(p) => Some(p),
                _ => None,
            },
        ];
        if let Some(p) = inputs.into_iter().flatten().find(|p| !p.exists()) {
            return Err(PipelineError::MissingInput(p.clone()));
        }
        let mut dec_ref = |p: &std::path::Path, branches: &mut Vec<String>| -> String {
            if let Some((_, name)) = decoders.iter().find(|(q, _)| q == p) {
                return format!("{name}. ! queue");
            }
            let name = format!("dec{}", decoders.len());
            branches.push(file_src(p).replace("name=dec", &format!("name={name}")));
            decoders.push((p.to_owned(), name.clone()));
            format!("{name}. ! queue")
        };

        let mut video_encoder = None;
        if let Some(v) = preset
            .video
            .as_ref()
            .filter(|_| preset.input.video != VideoSource::None)
        {
            let src = match &preset.input.video {
                VideoSource::Test => "videotestsrc is-live=true pattern=smpte".to_owned(),
                VideoSource::Camera => {
                    match devices::resolve(DeviceClass::Camera, preset.input.video_device.as_ref())
                        .map_err(PipelineError::Device)?
                    {
                        Some(s) => s,
                        None => {
                            let f = first_installed(CAMERA_DEFAULTS).ok_or(
                                PipelineError::NoElement {
                                    what: "camera capture",
                                    searched: CAMERA_DEFAULTS.to_vec(),
                                },
                            )?;
                            notes.push(format!(
                                "the device monitor lists no camera; using {f}'s default device"
                            ));
                            f.to_owned()
                        }
                    }
                }
                VideoSource::Screen => {
                    let f = first_installed(SCREEN_SOURCES).ok_or(PipelineError::NoElement {
                        what: "screen capture",
                        searched: SCREEN_SOURCES.to_vec(),
                    })?;
                    screen_fragment(f)
                }
                VideoSource::File(p) => dec_ref(p, &mut branches),
                VideoSource::None => String::new(), // excluded by the condition above
            };
            // With pixel rotation the frame size changes mid-stream and videoconvert fixates
            // the caps again; without pinned colorimetry it picks bt601 for some sizes and bt709
            // for others, a change muxers refuse ("Caps changes are not supported by Matroska").
            let pin = if preset
                .rotation
                .as_ref()
                .is_some_and(|r| r.output == RotationOutput::Pixels)
            {
                ",colorimetry=bt709,chroma-site=mpeg2"
            } else {
                ""
            };
            let raw = format!(
                "{src} ! videoconvert ! videoscale ! videorate ! video/x-raw,width={},height={},framerate={}/1{pin}",
                v.width, v.height, v.framerate
            );
            // Processing slot: rotation acts on raw frames, before the encoder. Local outputs
            // (file, display) get upright pictures through videoflip in metadata mode; the
            // telemetry element goes after the encoder (below) to measure the encoded stream,
            // or here when nothing is encoded.
            let mut raw = raw;
            if let Some(r) = &preset.rotation {
                let local = matches!(preset.output, Output::File { .. } | Output::Display);
                raw = format!("{raw} ! {}", rotation_fragment(r, local)?);
            }
            if let (false, Some(t)) = (encode, &preset.telemetry) {
                raw = format!("{raw} ! {}", telemetry_fragment(t));
            }
            let raw = format!("{raw} ! identity name={}", names::VIDEO_RAW);
            let branch = if encode {
                let selection = encoder::select(v.codec, v.hardware, registry)?;
                let cfg = EncoderConfig {
                    width: v.width,
                    height: v.height,
                    fps: v.framerate,
                    bitrate_kbps: v.bitrate_kbps,
                    keyframe_interval: v.keyframe_interval,
                };
                let props: String = selection
                    .launch_properties(&cfg)
                    .iter()
                    .map(|(k, val)| format!(" {k}={}", quote(val)))
                    .collect();
                let mut enc = format!(
                    "{raw} ! queue ! {} name={}{props}",
                    selection.factory,
                    names::VIDEO_ENCODER
                );
                if let Some(t) = &preset.telemetry {
                    enc.push_str(&format!(" ! {}", telemetry_fragment(t)));
                }
                let sink = match &preset.output {
                    Output::File { .. } => {
                        if let Some(p) = v.codec.parser() {
                            enc.push_str(&format!(" ! {p}"));
                        }
                        format!("queue ! {}.", names::MUXER)
                    }
                    _ => "fakesink name=vsink sync=false".to_owned(),
                };
                video_encoder = Some(selection);
                format!("{enc} ! {sink}")
            } else {
                format!("{raw} ! autovideosink name=vsink")
            };
            branches.push(branch);
        }

        if let Some(a) = preset
            .audio
            .as_ref()
            .filter(|_| preset.input.audio != AudioSource::None)
        {
            let src = match &preset.input.audio {
                AudioSource::Test => {
                    "audiotestsrc is-live=true wave=sine freq=440 volume=0.2".to_owned()
                }
                AudioSource::Mic => {
                    match devices::resolve(
                        DeviceClass::Microphone,
                        preset.input.audio_device.as_ref(),
                    )
                    .map_err(PipelineError::Device)?
                    {
                        Some(s) if preset.input.audio_device.is_some() => s,
                        _ => "autoaudiosrc".to_owned(),
                    }
                }
                AudioSource::File(p) => dec_ref(p, &mut branches),
                AudioSource::None => String::new(), // excluded by the condition above
            };
            let raw = format!(
                "{src} ! audioconvert ! audioresample ! audio/x-raw,rate=48000,channels={}",
                a.channels
            );
            let branch = if encode {
                let enc = format!(
                    "{raw} ! queue ! opusenc name={} bitrate={}",
                    names::AUDIO_ENCODER,
                    a.bitrate_kbps * 1000
                );
                match &preset.output {
                    Output::File { .. } => format!("{enc} ! queue ! {}.", names::MUXER),
                    _ => format!("{enc} ! fakesink name=asink sync=false"),
                }
            } else {
                format!("{raw} ! autoaudiosink name=asink")
            };
            branches.push(branch);
        }

        if let Output::File { path, container } = &preset.output {
            branches.insert(
                0,
                format!(
                    "{} name={} ! filesink location={}",
                    container.muxer(),
                    names::MUXER,
                    quote(&path.to_string_lossy())
                ),
            );
        }
        Ok(Plan {
            description: branches.join("  "),
            video_encoder,
            duration: preset.duration,
            notes,
            needs_display: !encode && preset.video.is_some(),
        })
    }

    /// Parse the description into a pipeline and set it to PLAYING.
    pub fn start(&self) -> Result<Running, PipelineError> {
        // Headless, autovideosink's probing of display sinks can crash the process (seen with
        // GStreamer 1.22 on Debian 12), so refuse with a clear message instead.
        if self.needs_display && cfg!(target_os = "linux") && !has_display() {
            return Err(PipelineError::NoDisplay);
        }
        let element = gst::parse::launch(&self.description).map_err(|e| PipelineError::Parse {
            description: self.description.clone(),
            message: e.to_string(),
        })?;
        let pipeline = element
            .downcast::<gst::Pipeline>()
            .map_err(|_| PipelineError::Parse {
                description: self.description.clone(),
                message: "description did not produce a pipeline".to_owned(),
            })?;
        let stats = Arc::new(Counters::default());
        let encoder = pipeline
            .by_name(names::VIDEO_ENCODER)
            .map(Encoder::from_element)
            .transpose()?;
        // Count video frames and bytes after the encoder, or after raw conversion when not encoding.
        let counted = encoder
            .as_ref()
            .map(|e| e.element().clone())
            .or_else(|| pipeline.by_name(names::VIDEO_RAW));
        if let Some(pad) = counted.and_then(|e| e.static_pad("src")) {
            let c = stats.clone();
            pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
                if let Some(buf) = info.buffer() {
                    c.frames.fetch_add(1, Ordering::Relaxed);
                    c.bytes.fetch_add(buf.size() as u64, Ordering::Relaxed);
                }
                gst::PadProbeReturn::Ok
            });
        }
        let running = Running {
            pipeline,
            stats,
            encoder,
            stop: Arc::new(AtomicBool::new(false)),
        };
        if running.pipeline.set_state(gst::State::Playing).is_err() {
            let err = running
                .bus_error(Duration::from_secs(2))
                .unwrap_or(PipelineError::Runtime {
                    element: "pipeline".to_owned(),
                    message: "failed to start (state change to PLAYING failed)".to_owned(),
                    debug: None,
                });
            let _ = running.pipeline.set_state(gst::State::Null);
            return Err(err);
        }
        Ok(running)
    }
}

#[derive(Debug, Default)]
struct Counters {
    frames: AtomicU64,
    bytes: AtomicU64,
}

/// A live status sample, printed once per second by `streamwire run`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Status {
    /// Time since the pipeline started playing.
    pub elapsed: Duration,
    /// Video frames so far.
    pub frames: u64,
    /// Frames per second over the last interval.
    pub fps: f64,
    /// Encoded video bitrate over the last interval (kbit/s); 0 without an encoder.
    pub bitrate_kbps: f64,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.elapsed.as_secs();
        write!(
            f,
            "{:02}:{:02}:{:02}  frames {:>6}  {:>5.1} fps  {:>7.0} kbit/s",
            s / 3600,
            (s / 60) % 60,
            s % 60,
            self.frames,
            self.fps,
            self.bitrate_kbps
        )
    }
}

/// What a finished run did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    /// Wall-clock time from PLAYING to EOS.
    pub elapsed: Duration,
    /// Video frames counted.
    pub frames: u64,
    /// Encoded video bytes (0 when not encoding).
    pub bytes: u64,
    /// `streamwire-telemetry` messages received on the bus (preset `[telemetry]`).
    pub telemetry_reports: u64,
}

/// Asks a running pipeline to stop with a clean EOS. Cheap to clone, usable from any thread
/// (for example a Ctrl-C handler).
#[derive(Debug, Clone)]
pub struct StopHandle(Arc<AtomicBool>);

impl StopHandle {
    /// Request a clean stop (EOS). Returns `true` if a stop had already been requested.
    pub fn stop(&self) -> bool {
        self.0.swap(true, Ordering::SeqCst)
    }
}

/// A playing pipeline.
#[derive(Debug)]
pub struct Running {
    pipeline: gst::Pipeline,
    stats: Arc<Counters>,
    encoder: Option<Encoder>,
    stop: Arc<AtomicBool>,
}

/// How long to wait for EOS to reach the sinks after sending it.
const EOS_TIMEOUT: Duration = Duration::from_secs(15);

impl Running {
    /// The pipeline.
    pub fn pipeline(&self) -> &gst::Pipeline {
        &self.pipeline
    }

    /// The video encoder, for changing its bitrate while playing.
    pub fn encoder(&self) -> Option<&Encoder> {
        self.encoder.as_ref()
    }

    /// A handle to stop the run cleanly from elsewhere.
    pub fn stop_handle(&self) -> StopHandle {
        StopHandle(self.stop.clone())
    }

    fn bus_error(&self, wait: Duration) -> Option<PipelineError> {
        let bus = self.pipeline.bus()?;
        let msg = bus.timed_pop_filtered(
            gst::ClockTime::from_nseconds(wait.as_nanos() as u64),
            &[gst::MessageType::Error],
        )?;
        match msg.view() {
            gst::MessageView::Error(e) => Some(runtime_error(&msg, e)),
            _ => None,
        }
    }

    /// Run until EOS, an error, `limit` (then a clean EOS), or [`StopHandle::stop`].
    /// `on_status` is called about once per second.
    pub fn run(
        self,
        limit: Option<Duration>,
        mut on_status: impl FnMut(&Status),
    ) -> Result<Summary, PipelineError> {
        let result = self.run_inner(limit, &mut on_status);
        let _ = self.pipeline.set_state(gst::State::Null);
        result
    }

    fn run_inner(
        &self,
        limit: Option<Duration>,
        on_status: &mut dyn FnMut(&Status),
    ) -> Result<Summary, PipelineError> {
        let bus = self.pipeline.bus().ok_or_else(|| PipelineError::Runtime {
            element: "pipeline".to_owned(),
            message: "pipeline has no bus".to_owned(),
            debug: None,
        })?;
        let started = Instant::now();
        let mut eos_sent: Option<Instant> = None;
        let mut last = (started, 0u64, 0u64);
        let mut telemetry_reports = 0u64;
        loop {
            let msg = bus.timed_pop_filtered(
                gst::ClockTime::from_mseconds(200),
                &[
                    gst::MessageType::Eos,
                    gst::MessageType::Error,
                    gst::MessageType::Warning,
                    gst::MessageType::Element,
                ],
            );
            if let Some(msg) = msg {
                match msg.view() {
                    gst::MessageView::Eos(_) => break,
                    gst::MessageView::Error(e) => return Err(runtime_error(&msg, e)),
                    gst::MessageView::Warning(w) => tracing::warn!(
                        "{}: {}",
                        msg.src()
                            .map(|s| s.path_string().to_string())
                            .unwrap_or_default(),
                        w.error()
                    ),
                    gst::MessageView::Element(e) => {
                        if let Some(st) = e.structure().filter(|st| st.name() == TELEMETRY_MESSAGE)
                        {
                            telemetry_reports += 1;
                            log_telemetry(st);
                        }
                    }
                    _ => {}
                }
            }
            let now = Instant::now();
            let stop_requested = self.stop.load(Ordering::SeqCst)
                || limit.is_some_and(|l| now.duration_since(started) >= l);
            if stop_requested && eos_sent.is_none() {
                tracing::info!("stopping: sending EOS");
                self.pipeline.send_event(gst::event::Eos::new());
                eos_sent = Some(now);
            }
            if eos_sent.is_some_and(|t| now.duration_since(t) > EOS_TIMEOUT) {
                return Err(PipelineError::EosTimeout(EOS_TIMEOUT));
            }
            if now.duration_since(last.0) >= Duration::from_secs(1) {
                let frames = self.stats.frames.load(Ordering::Relaxed);
                let bytes = self.stats.bytes.load(Ordering::Relaxed);
                let dt = now.duration_since(last.0).as_secs_f64();
                on_status(&Status {
                    elapsed: now.duration_since(started),
                    frames,
                    fps: (frames - last.1) as f64 / dt,
                    bitrate_kbps: if self.encoder.is_some() {
                        (bytes - last.2) as f64 * 8.0 / 1000.0 / dt
                    } else {
                        0.0
                    },
                });
                last = (now, frames, bytes);
            }
        }
        Ok(Summary {
            elapsed: started.elapsed(),
            frames: self.stats.frames.load(Ordering::Relaxed),
            bytes: if self.encoder.is_some() {
                self.stats.bytes.load(Ordering::Relaxed)
            } else {
                0
            },
            telemetry_reports,
        })
    }
}

/// Log one telemetry report at info level: the element's own field names and values, nothing more.
fn log_telemetry(st: &gst::StructureRef) {
    let fields: Vec<String> = st
        .iter()
        .map(|(name, value)| {
            let v = match value.get::<&str>() {
                Ok(s) => format!("{s:?}"),
                Err(_) => value
                    .serialize()
                    .map(|v| v.to_string())
                    .unwrap_or_else(|_| format!("{value:?}")),
            };
            format!("{name}={v}")
        })
        .collect();
    tracing::info!("telemetry: {}", fields.join(" "));
}

fn runtime_error(msg: &gst::Message, e: &gst::message::Error) -> PipelineError {
    PipelineError::Runtime {
        element: msg
            .src()
            .map(|s| s.path_string().to_string())
            .unwrap_or_else(|| "pipeline".to_owned()),
        message: e.error().to_string(),
        debug: e.debug().map(|d| d.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iio_lookup_picks_the_first_device_with_accelerometer_channels() {
        let root = tempfile::tempdir().unwrap();
        for (dev, accel) in [
            ("iio:device0", false),
            ("iio:device2", true),
            ("iio:device1", true),
        ] {
            let d = root.path().join(dev);
            std::fs::create_dir(&d).unwrap();
            let f = if accel {
                "in_accel_x_raw"
            } else {
                "in_illuminance_raw"
            };
            std::fs::write(d.join(f), "1\n").unwrap();
        }
        assert_eq!(
            find_iio_accelerometer(root.path()),
            Some(root.path().join("iio:device1"))
        );
        let empty = tempfile::tempdir().unwrap();
        assert_eq!(find_iio_accelerometer(empty.path()), None);
        assert_eq!(find_iio_accelerometer(&empty.path().join("missing")), None);
    }
}
