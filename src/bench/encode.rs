//! `streamwire bench encode`: throughput and per-frame latency of the chosen encoder per codec.
//!
//! Frames come from `videotestsrc` (not live, so the encoder is the bottleneck) as I420 at the
//! given size. Latency is measured per frame by recording the wall-clock time a buffer with a
//! given PTS enters the encoder's sink pad and matching it with the output buffer of the same PTS
//! on the src pad (encoders are configured without B-frames, so PTS are not reordered; a constant
//! shift some encoders apply, such as x264enc's 1000 hours, is learnt from the first output).

use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use gst::prelude::*;

use streamwire::encoder::{self, Codec, EncoderConfig, FactorySource, HardwarePolicy};

/// Benchmark parameters.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct EncodeParams {
    /// Width.
    pub width: u32,
    /// Height.
    pub height: u32,
    /// Nominal frame rate (caps and rate control).
    pub fps: u32,
    /// Frames per run.
    pub frames: u32,
    /// Runs per codec (medians are over runs).
    pub runs: u32,
    /// Target bitrate, kbit/s.
    pub bitrate_kbps: u32,
}

impl Default for EncodeParams {
    fn default() -> Self {
        EncodeParams {
            width: 1280,
            height: 720,
            fps: 30,
            frames: 300,
            runs: 3,
            bitrate_kbps: 2000,
        }
    }
}

/// One run of one encoder.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RunResult {
    /// Frames out of the encoder.
    pub frames: u64,
    /// Frames per second (output frames / time from first input to last output).
    pub fps: f64,
    /// Median per-frame latency, ms.
    pub latency_ms_median: f64,
    /// 95th percentile per-frame latency, ms.
    pub latency_ms_p95: f64,
}

/// Result for one codec.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CodecResult {
    /// Codec.
    pub codec: &'static str,
    /// Encoder factory (absent when none is usable).
    pub encoder: Option<String>,
    /// Hardware or not.
    pub hardware: Option<bool>,
    /// Median over runs of fps.
    pub fps_median: Option<f64>,
    /// Median over runs of the per-run median latency, ms.
    pub latency_ms_median: Option<f64>,
    /// Median over runs of the per-run p95 latency, ms.
    pub latency_ms_p95: Option<f64>,
    /// Each run.
    pub runs: Vec<RunResult>,
    /// Why there is no result, if there is none.
    pub error: Option<String>,
}

/// Full report, printed as JSON by `streamwire bench encode --json`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct EncodeReport {
    /// Always `"encode"`.
    pub benchmark: &'static str,
    /// Parameters.
    pub params: EncodeParams,
    /// Per codec.
    pub results: Vec<CodecResult>,
}

/// Run the benchmark for `codecs` with encoders chosen from `registry`.
pub fn run(params: &EncodeParams, codecs: &[Codec], registry: &dyn FactorySource) -> EncodeReport {
    let results = codecs
        .iter()
        .map(|&codec| {
            let mut r = CodecResult {
                codec: codec.name(),
                encoder: None,
                hardware: None,
                fps_median: None,
                latency_ms_median: None,
                latency_ms_p95: None,
                runs: Vec::new(),
                error: None,
            };
            let selection = match encoder::select(codec, HardwarePolicy::Auto, registry) {
                Ok(s) => s,
                Err(e) => {
                    r.error = Some(e.to_string());
                    return r;
                }
            };
            r.encoder = Some(selection.factory.clone());
            r.hardware = Some(selection.candidate.hardware);
            for i in 0..params.runs {
                match run_once(&selection, params) {
                    Ok(run) => {
                        tracing::info!("{codec} run {}: {:.1} fps", i + 1, run.fps);
                        r.runs.push(run)
                    }
                    Err(e) => {
                        r.error = Some(e);
                        break;
                    }
                }
            }
            let col =
                |f: fn(&RunResult) -> f64| super::median(&r.runs.iter().map(f).collect::<Vec<_>>());
            r.fps_median = col(|x| x.fps);
            r.latency_ms_median = col(|x| x.latency_ms_median);
            r.latency_ms_p95 = col(|x| x.latency_ms_p95);
            r
        })
        .collect();
    EncodeReport {
        benchmark: "encode",
        params: *params,
        results,
    }
}

fn run_once(selection: &encoder::Selection, p: &EncodeParams) -> Result<RunResult, String> {
    let cfg = EncoderConfig {
        width: p.width,
        height: p.height,
        fps: p.fps,
        bitrate_kbps: p.bitrate_kbps,
        keyframe_interval: p.fps * 2,
    };
    let enc = selection
        .build(&cfg, Some("venc"))
        .map_err(|e| e.to_string())?;
    let pipeline = gst::Pipeline::new();
    let make = |f: &str| {
        gst::ElementFactory::make(f)
            .build()
            .map_err(|e| e.to_string())
    };
    let src = make("videotestsrc")?;
    src.set_property("num-buffers", p.frames.min(i32::MAX as u32) as i32);
    src.set_property_from_str("pattern", "smpte");
    let caps = make("capsfilter")?;
    caps.set_property(
        "caps",
        gst::Caps::builder("video/x-raw")
            .field("format", "I420")
            .field("width", p.width as i32)
            .field("height", p.height as i32)
            .field("framerate", gst::Fraction::new(p.fps as i32, 1))
            .build(),
    );
    let convert = make("videoconvert")?;
    let sink = make("fakesink")?;
    sink.set_property("sync", false);
    let element = enc.element().clone();
    pipeline
        .add_many([&src, &caps, &convert, &element, &sink])
        .map_err(|e| e.to_string())?;
    gst::Element::link_many([&src, &caps, &convert, &element, &sink]).map_err(|e| e.to_string())?;

    let entered: Arc<Mutex<HashMap<u64, Instant>>> = Arc::default();
    let latencies: Arc<Mutex<Vec<f64>>> = Arc::default();
    let first_in: Arc<Mutex<Option<Instant>>> = Arc::default();
    let last_out: Arc<Mutex<Option<Instant>>> = Arc::default();
    let sinkpad = element
        .static_pad("sink")
        .ok_or("encoder has no sink pad")?;
    let srcpad = element.static_pad("src").ok_or("encoder has no src pad")?;
    {
        let entered = entered.clone();
        let first_in = first_in.clone();
        sinkpad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            if let Some(pts) = info.buffer().and_then(|b| b.pts()) {
                let now = Instant::now();
                entered.lock().insert(pts.nseconds(), now);
                first_in.lock().get_or_insert(now);
            }
            gst::PadProbeReturn::Ok
        });
    }
    {
        let entered = entered.clone();
        let latencies = latencies.clone();
        let last_out = last_out.clone();
        let offset = std::sync::OnceLock::<i128>::new();
        srcpad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            if let Some(pts) = info.buffer().and_then(|b| b.pts()) {
                let now = Instant::now();
                // Some encoders shift timestamps by a constant (x264enc adds 1000 hours so DTS
                // never goes negative): learn the shift from the first output buffer.
                let shift = *offset.get_or_init(|| {
                    let first_in = entered.lock().keys().min().copied();
                    first_in.map_or(0, |f| i128::from(pts.nseconds()) - i128::from(f))
                });
                let key = (i128::from(pts.nseconds()) - shift).max(0) as u64;
                let start = entered.lock().remove(&key);
                if let Some(start) = start {
                    latencies
                        .lock()
                        .push(now.duration_since(start).as_secs_f64() * 1000.0);
                }
                *last_out.lock() = Some(now);
            }
            gst::PadProbeReturn::Ok
        });
    }
    pipeline
        .set_state(gst::State::Playing)
        .map_err(|_| "cannot start the benchmark pipeline".to_owned())?;
    let bus = pipeline.bus().ok_or("no bus")?;
    // Bounded: a fixed frame count, and at most 10 minutes per run.
    let msg = bus.timed_pop_filtered(
        gst::ClockTime::from_seconds(600),
        &[gst::MessageType::Eos, gst::MessageType::Error],
    );
    let _ = pipeline.set_state(gst::State::Null);
    match msg.as_ref().map(|m| m.view()) {
        Some(gst::MessageView::Eos(_)) => {}
        Some(gst::MessageView::Error(e)) => return Err(e.error().to_string()),
        _ => return Err(format!("no EOS within {:?}", Duration::from_secs(600))),
    }
    let lat = latencies.lock().clone();
    let span = match (*first_in.lock(), *last_out.lock()) {
        (Some(a), Some(b)) => b.duration_since(a).as_secs_f64(),
        _ => return Err("the encoder produced no output".to_owned()),
    };
    if lat.is_empty() {
        return Err("no output buffer matched an input PTS; latency cannot be measured".to_owned());
    }
    let frames = lat.len() as u64;
    Ok(RunResult {
        frames,
        fps: if span > 0.0 {
            frames as f64 / span
        } else {
            0.0
        },
        latency_ms_median: super::median(&lat).unwrap_or(0.0),
        latency_ms_p95: super::percentile(&lat, 95.0).unwrap_or(0.0),
    })
}
