//! Start a [`Plan`] and run it: the bus loop, the status once per second, the clean EOS stop.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use gst::prelude::*;

use super::{PipelineError, Plan, TELEMETRY_MESSAGE, names};
use crate::encoder::Encoder;

/// Whether a graphical session is there for display sinks.
pub(super) fn has_display() -> bool {
    ["DISPLAY", "WAYLAND_DISPLAY"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|x| !x.is_empty()))
}

impl Plan {
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
