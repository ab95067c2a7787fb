//! The audio dump: a published microphone's audio before and after processing, and the
//! far-end reference the echo canceller compares it with, as three sample-aligned WAV files
//! and a JSON sidecar, for debugging echo, noise and level problems.
//!
//! Files in the dump directory (the directory is created; a directory that already holds a
//! dump is refused):
//!
//! | file | what |
//! |------|------|
//! | `raw.wav` | the microphone before `webrtcdsp` (converted to the DSP's format) |
//! | `far-end.wav` | the far-end reference: what the `webrtcechoprobe` passes to playback |
//! | `processed.wav` | the `webrtcdsp` output (what is encoded and sent) |
//! | `dump.json` | [`DumpSidecar`]: start time, format, DSP settings, device, why it stopped |
//!
//! All three WAVs are 16-bit mono at [`DSP_RATE`](super::dsp::DSP_RATE) and start at the
//! same running time (that of the first microphone buffer): sample `n` of each file is
//! running time `start + n / rate`. Gaps (no far end yet, a dropped buffer) are silence.
//! Each file is bounded by [`AudioDumpConfig::max_bytes`]; when one reaches it the dump
//! stops (all three files are finalised, the sidecar says `"size-limit"`).
//!
//! The dump is raw voice: it stays in the directory the application names, Streamwire never
//! sends it anywhere, and it runs only between an explicit
//! [`Publisher::start_audio_dump`](super::publisher::Publisher::start_audio_dump) (or
//! `Session::start_audio_dump`, `streamwire run --audio-dump DIR`) and its stop. It is in
//! the privacy registry (`docs/privacy.md`, field `audio_dump`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::thread::JoinHandle;

use gst::prelude::*;
use parking_lot::Mutex;
use serde::Serialize;

use super::WebrtcError;
use super::dsp::{AudioProcessing, DSP_RATE, EchoCancel};

/// Default [`AudioDumpConfig::max_bytes`]: 64 MiB per file, about 11 minutes at 48 kHz.
pub const DEFAULT_DUMP_MAX_BYTES: u64 = 64 * 1024 * 1024;
/// Smallest accepted [`AudioDumpConfig::max_bytes`] (one second of audio).
pub const MIN_DUMP_MAX_BYTES: u64 = 2 * DSP_RATE as u64;
/// Buffers (10-20 ms each) queued for the writer thread; beyond this they are dropped and
/// counted ([`DumpSidecar::dropped_buffers`]), never blocking the audio threads.
const QUEUE: usize = 512;
const HEADER_BYTES: u64 = 44;

/// Where and how much to dump.
///
/// ```
/// use streamwire::webrtc::audio_dump::{AudioDumpConfig, DEFAULT_DUMP_MAX_BYTES};
/// let c = AudioDumpConfig::new("/tmp/dump");
/// assert_eq!(c.max_bytes, DEFAULT_DUMP_MAX_BYTES);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioDumpConfig {
    /// The dump directory (created if missing).
    pub dir: PathBuf,
    /// Size limit of each WAV file, header included ([`MIN_DUMP_MAX_BYTES`]..).
    pub max_bytes: u64,
}

impl AudioDumpConfig {
    /// A dump into `dir` with the default size limit.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        AudioDumpConfig {
            dir: dir.into(),
            max_bytes: DEFAULT_DUMP_MAX_BYTES,
        }
    }
}

/// The three streams of a dump.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stream {
    Raw = 0,
    FarEnd = 1,
    Processed = 2,
}

const FILES: [&str; 3] = ["raw.wav", "far-end.wav", "processed.wav"];
const SIDECAR: &str = "dump.json";

/// The DSP settings in the sidecar.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct DumpProcessing {
    /// `off`, or the suppression level (`low`, `moderate`, `high`).
    pub echo_cancel: String,
    /// Whether a far-end reference (`webrtcechoprobe`) is configured.
    pub far_end_reference: bool,
    /// `delay-agnostic`.
    pub delay_agnostic: bool,
    /// `off` or the level.
    pub noise_suppression: String,
    /// `gain-control`.
    pub gain_control: bool,
    /// `high-pass-filter`.
    pub high_pass_filter: bool,
}

impl DumpProcessing {
    fn new(p: &AudioProcessing, probe: bool) -> Self {
        DumpProcessing {
            echo_cancel: match p.echo_cancel {
                EchoCancel::Off => "off".into(),
                EchoCancel::On(l) => l.nick().into(),
            },
            far_end_reference: probe,
            delay_agnostic: p.delay_agnostic,
            noise_suppression: p
                .noise_suppression
                .map(|l| l.nick().to_owned())
                .unwrap_or_else(|| "off".into()),
            gain_control: p.gain_control,
            high_pass_filter: p.high_pass_filter,
        }
    }
}

/// `dump.json`: written when the dump starts and again when it stops.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct DumpSidecar {
    /// Sidecar format version (1).
    pub version: u32,
    /// File names: `raw`, `far_end`, `processed`.
    pub files: DumpFiles,
    /// Sample rate of every file (Hz).
    pub sample_rate: u32,
    /// Channels of every file (1).
    pub channels: u16,
    /// Sample format (`S16LE`).
    pub sample_format: &'static str,
    /// Running time of sample 0 (ns), once the first microphone buffer arrived.
    pub start_running_time_ns: Option<u64>,
    /// Pipeline clock time of sample 0 (running time + the pipeline's base time, ns).
    pub start_clock_time_ns: Option<u64>,
    /// The microphone processing.
    pub processing: DumpProcessing,
    /// The capture device (element and device name where the element says).
    pub device: String,
    /// The size limit of each file (bytes).
    pub max_bytes: u64,
    /// Samples written to each file (`raw`, `far_end`, `processed`).
    pub samples: [u64; 3],
    /// Buffers dropped because the writer fell behind.
    pub dropped_buffers: u64,
    /// `null` while running, then `stopped` (by the application) or `size-limit`.
    pub stopped: Option<&'static str>,
}

/// The WAV file names in a dump directory.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct DumpFiles {
    /// `raw.wav`.
    pub raw: &'static str,
    /// `far-end.wav`.
    pub far_end: &'static str,
    /// `processed.wav`.
    pub processed: &'static str,
}

/// What a publisher's microphone chain offers a dump.
#[derive(Debug, Clone)]
pub(crate) struct MicTaps {
    /// The capture element (for the device name).
    pub source: gst::Element,
    /// The `webrtcdsp`: its sink pad carries raw audio, its src pad processed audio.
    pub dsp: gst::Element,
    /// The far-end reference's `webrtcechoprobe` name.
    pub probe: Option<String>,
    pub processing: AudioProcessing,
}

enum Msg {
    Data {
        stream: Stream,
        running_time: u64,
        samples: Vec<i16>,
    },
    Stop,
}

struct Shared {
    dropped: AtomicU64,
    probes: Mutex<Vec<(gst::Pad, gst::PadProbeId)>>,
    far_attached: std::sync::atomic::AtomicBool,
}

/// A running audio dump; [`AudioDump::stop`] (or dropping it) finalises the files.
pub struct AudioDump {
    tx: SyncSender<Msg>,
    shared: Arc<Shared>,
    writer: Option<JoinHandle<Result<DumpSidecar, String>>>,
    dir: PathBuf,
}

impl std::fmt::Debug for AudioDump {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AudioDump").field("dir", &self.dir).finish()
    }
}

fn io_err(path: &Path, e: impl std::fmt::Display) -> WebrtcError {
    WebrtcError::Config {
        field: "audio_dump.dir",
        detail: format!("{}: {e}", path.display()),
    }
}

/// The capture device's name: the element's factory, and its `device-name`/`device`
/// property (or, for an auto source, its chosen child's) where it has one.
fn device_name(src: &gst::Element) -> String {
    let describe = |e: &gst::Element| {
        let factory = e
            .factory()
            .map(|f| f.name().to_string())
            .unwrap_or_default();
        let dev = ["device-name", "device"].iter().find_map(|p| {
            e.find_property(p)
                .filter(|spec| spec.value_type() == String::static_type())
                .and_then(|_| e.property::<Option<String>>(p))
        });
        match dev {
            Some(d) => format!("{factory} ({d})"),
            None => factory,
        }
    };
    if let Some(bin) = src.downcast_ref::<gst::Bin>()
        && let Some(child) = bin.children().into_iter().next()
    {
        return format!("{} -> {}", describe(src), describe(&child));
    }
    describe(src)
}

impl AudioDump {
    /// Start dumping the microphone of `taps` (in `pipeline`) into `cfg.dir`.
    pub(crate) fn start(
        pipeline: &gst::Bin,
        taps: &MicTaps,
        cfg: &AudioDumpConfig,
    ) -> Result<AudioDump, WebrtcError> {
        if cfg.max_bytes < MIN_DUMP_MAX_BYTES {
            return Err(WebrtcError::Config {
                field: "audio_dump.max_bytes",
                detail: format!(
                    "{} bytes is below the minimum of {MIN_DUMP_MAX_BYTES} (one second)",
                    cfg.max_bytes
                ),
            });
        }
        std::fs::create_dir_all(&cfg.dir).map_err(|e| io_err(&cfg.dir, e))?;
        for f in FILES.iter().chain([&SIDECAR]) {
            let p = cfg.dir.join(f);
            if p.exists() {
                return Err(io_err(
                    &cfg.dir,
                    format!("already holds an audio dump ({f}); choose an empty directory"),
                ));
            }
        }
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: DSP_RATE as u32,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut writers = Vec::new();
        for f in FILES {
            let p = cfg.dir.join(f);
            writers.push(hound::WavWriter::create(&p, spec).map_err(|e| io_err(&p, e))?);
        }
        let sidecar = DumpSidecar {
            version: 1,
            files: DumpFiles {
                raw: FILES[0],
                far_end: FILES[1],
                processed: FILES[2],
            },
            sample_rate: DSP_RATE as u32,
            channels: 1,
            sample_format: "S16LE",
            start_running_time_ns: None,
            start_clock_time_ns: None,
            processing: DumpProcessing::new(&taps.processing, taps.probe.is_some()),
            device: device_name(&taps.source),
            max_bytes: cfg.max_bytes,
            samples: [0; 3],
            dropped_buffers: 0,
            stopped: None,
        };
        write_sidecar(&cfg.dir, &sidecar).map_err(|e| io_err(&cfg.dir.join(SIDECAR), e))?;

        let (tx, rx) = sync_channel(QUEUE);
        let shared = Arc::new(Shared {
            dropped: AtomicU64::new(0),
            probes: Mutex::new(Vec::new()),
            far_attached: std::sync::atomic::AtomicBool::new(false),
        });
        let base_time = pipeline.base_time().map(|t| t.nseconds());
        let writer = {
            let dir = cfg.dir.clone();
            let shared = shared.clone();
            let max = cfg.max_bytes;
            std::thread::Builder::new()
                .name("swaudiodump".into())
                .spawn(move || write_loop(rx, writers, sidecar, dir, max, base_time, &shared))
                .map_err(|e| WebrtcError::State(format!("starting the audio dump writer: {e}")))?
        };
        let dump = AudioDump {
            tx,
            shared,
            writer: Some(writer),
            dir: cfg.dir.clone(),
        };
        let pad = |name: &str| {
            taps.dsp
                .static_pad(name)
                .ok_or_else(|| WebrtcError::MissingElement(format!("webrtcdsp {name} pad")))
        };
        dump.tap(&pad("sink")?, Stream::Raw);
        dump.tap(&pad("src")?, Stream::Processed);
        // The far-end reference as it is now: webrtcdsp itself needs its probe to exist when
        // it starts, so a probe that appears later serves neither.
        if let Some(probe) = &taps.probe {
            dump.attach_far_end(pipeline, probe);
        }
        tracing::info!(dir = %cfg.dir.display(), "audio dump started");
        Ok(dump)
    }

    fn tap(&self, pad: &gst::Pad, stream: Stream) {
        if let Some(id) = tap(pad, stream, self.tx.clone(), Arc::downgrade(&self.shared)) {
            self.shared.probes.lock().push((pad.clone(), id));
        }
    }

    fn attach_far_end(&self, bin: &gst::Bin, probe: &str) {
        attach_far(bin, probe, &self.tx, &self.shared);
    }

    /// The dump directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Stop: remove the taps, finalise the WAV files and the sidecar, and return the sidecar.
    pub fn stop(mut self) -> Result<DumpSidecar, WebrtcError> {
        self.finish()
    }

    fn finish(&mut self) -> Result<DumpSidecar, WebrtcError> {
        for (pad, id) in self.shared.probes.lock().drain(..) {
            pad.remove_probe(id);
        }
        // Blocks until the writer took it: everything queued before is written.
        let _ = self.tx.send(Msg::Stop);
        let Some(writer) = self.writer.take() else {
            return Err(WebrtcError::State(
                "the audio dump was already stopped".into(),
            ));
        };
        let result = writer
            .join()
            .map_err(|_| WebrtcError::State("the audio dump writer panicked".into()))?
            .map_err(|e| io_err(&self.dir, e));
        tracing::info!(dir = %self.dir.display(), "audio dump stopped");
        result
    }
}

impl Drop for AudioDump {
    fn drop(&mut self) {
        if self.writer.is_some()
            && let Err(e) = self.finish()
        {
            tracing::warn!("finishing the audio dump: {e}");
        }
    }
}

fn attach_far(bin: &gst::Bin, probe: &str, tx: &SyncSender<Msg>, shared: &Arc<Shared>) {
    let Some(el) = bin.by_name(probe) else {
        return;
    };
    let Some(pad) = el.static_pad("sink") else {
        return;
    };
    if shared.far_attached.swap(true, Ordering::AcqRel) {
        return;
    }
    if let Some(id) = tap(&pad, Stream::FarEnd, tx.clone(), Arc::downgrade(shared)) {
        shared.probes.lock().push((pad, id));
    }
}

/// A buffer probe on `pad` sending its samples, stamped with running time, to the writer.
fn tap(
    pad: &gst::Pad,
    stream: Stream,
    tx: SyncSender<Msg>,
    shared: std::sync::Weak<Shared>,
) -> Option<gst::PadProbeId> {
    pad.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
        let Some(buf) = info.buffer() else {
            return gst::PadProbeReturn::Ok;
        };
        let running_time = buf.pts().and_then(|pts| {
            let seg = pad.sticky_event::<gst::event::Segment>(0)?;
            seg.segment()
                .downcast_ref::<gst::format::Time>()?
                .to_running_time(pts)
        });
        let (Some(rt), Ok(map)) = (running_time, buf.map_readable()) else {
            return gst::PadProbeReturn::Ok;
        };
        let samples = map
            .chunks_exact(2)
            .map(|b| i16::from_le_bytes([b[0], b[1]]))
            .collect();
        let msg = Msg::Data {
            stream,
            running_time: rt.nseconds(),
            samples,
        };
        if let Err(TrySendError::Full(_)) = tx.try_send(msg)
            && let Some(s) = shared.upgrade()
        {
            s.dropped.fetch_add(1, Ordering::Relaxed);
        }
        gst::PadProbeReturn::Ok
    })
}

fn write_sidecar(dir: &Path, s: &DumpSidecar) -> std::io::Result<()> {
    let json = serde_json::to_vec_pretty(s).map_err(std::io::Error::other)?;
    let tmp = dir.join(format!("{SIDECAR}.tmp"));
    std::fs::write(&tmp, json)?;
    std::fs::rename(tmp, dir.join(SIDECAR))
}

type Writer = hound::WavWriter<std::io::BufWriter<std::fs::File>>;

fn write_loop(
    rx: Receiver<Msg>,
    writers: Vec<Writer>,
    mut sidecar: DumpSidecar,
    dir: PathBuf,
    max_bytes: u64,
    base_time: Option<u64>,
    shared: &Shared,
) -> Result<DumpSidecar, String> {
    let mut writers: Option<Vec<Writer>> = Some(writers);
    let max_samples = (max_bytes - HEADER_BYTES) / 2;
    let mut start: Option<u64> = None;
    let mut last_flush = 0u64;
    let rate = u64::from(sidecar.sample_rate);
    while let Ok(msg) = rx.recv() {
        let Msg::Data {
            stream,
            running_time,
            samples,
        } = msg
        else {
            break;
        };
        let Some(ws) = writers.as_mut() else {
            continue; // stopped at the size limit: drain until stopped
        };
        let t0 = match start {
            Some(t) => t,
            None if stream == Stream::Raw => {
                start = Some(running_time);
                sidecar.start_running_time_ns = Some(running_time);
                sidecar.start_clock_time_ns = base_time.map(|b| b + running_time);
                write_sidecar(&dir, &sidecar).map_err(|e| e.to_string())?;
                running_time
            }
            None => continue,
        };
        let i = stream as usize;
        // Sample index of this buffer's first sample on the common timeline.
        let at = i128::from(running_time) - i128::from(t0);
        // Nearest sample: timestamps are whole nanoseconds, rounded down from sample times.
        let at = (at * i128::from(rate) + 500_000_000).div_euclid(1_000_000_000);
        let written = i128::from(sidecar.samples[i]);
        let skip = usize::try_from((written - at).max(0)).unwrap_or(usize::MAX);
        let gap = u64::try_from((at - written).max(0)).unwrap_or(0);
        let mut full = false;
        for _ in 0..gap {
            if sidecar.samples[i] >= max_samples {
                full = true;
                break;
            }
            ws[i].write_sample(0i16).map_err(|e| e.to_string())?;
            sidecar.samples[i] += 1;
        }
        for s in samples.iter().skip(skip) {
            if full || sidecar.samples[i] >= max_samples {
                full = true;
                break;
            }
            ws[i].write_sample(*s).map_err(|e| e.to_string())?;
            sidecar.samples[i] += 1;
        }
        if full {
            sidecar.stopped = Some("size-limit");
            sidecar.dropped_buffers = shared.dropped.load(Ordering::Relaxed);
            if let Some(ws) = writers.take() {
                for w in ws {
                    w.finalize().map_err(|e| e.to_string())?;
                }
            }
            write_sidecar(&dir, &sidecar).map_err(|e| e.to_string())?;
            tracing::info!(dir = %dir.display(), "audio dump stopped at its size limit");
            continue;
        }
        // Keep the headers valid about once a second (readable after an abrupt end).
        if stream == Stream::Raw && sidecar.samples[i] >= last_flush + rate {
            last_flush = sidecar.samples[i];
            for w in ws.iter_mut() {
                w.flush().map_err(|e| e.to_string())?;
            }
        }
    }
    if let Some(ws) = writers.take() {
        for w in ws {
            w.finalize().map_err(|e| e.to_string())?;
        }
        sidecar.stopped = Some("stopped");
    }
    sidecar.dropped_buffers = shared.dropped.load(Ordering::Relaxed);
    write_sidecar(&dir, &sidecar).map_err(|e| e.to_string())?;
    Ok(sidecar)
}
