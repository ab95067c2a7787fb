//! A simulated echo path for the microphone processing: far-end speech (espeak-ng, resampled
//! by sox) is played through a playback path ending in the far-end reference
//! (`dsp::echo_probe_chain`) and a clock-synchronised sink (the "loudspeaker"); each played
//! 10 ms is fed back, delayed and attenuated, into a live `appsrc` "microphone", mixed with
//! near-end speech, and processed by `AudioProcessing::chain`. Everything runs in real time
//! on the pipeline clock, as a call does.
#![allow(dead_code)]

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use gst::prelude::*;
use parking_lot::Mutex;
use streamwire::webrtc::dsp::{AudioProcessing, DSP_RATE, dsp_caps, echo_probe_chain};

/// Samples per 10 ms at the DSP rate.
pub const FRAME: usize = (DSP_RATE / 100) as usize;
const RATE: usize = DSP_RATE as usize;

pub const FAR_TEXT: &str = "The quick brown fox jumps over the lazy dog. \
    Every morning the train leaves the station at seven, and the passengers read their \
    newspapers quietly. When the weather is fine we walk along the river to the old bridge, \
    where the children feed the ducks and the fishermen wait for hours. Tomorrow we will \
    discuss the budget for next year, the new office and the schedule for the summer holidays.";
pub const NEAR_TEXT: &str = "Sorry to interrupt, but I cannot hear the second part. \
    Could you repeat the number please?";

/// Speak `text` with espeak-ng `voice` and return it as 48 kHz mono 16-bit samples (sox).
pub fn speech(dir: &Path, name: &str, voice: &str, text: &str) -> Vec<i16> {
    let wav = dir.join(format!("{name}.wav"));
    let raw = dir.join(format!("{name}.raw"));
    let st = Command::new("espeak-ng")
        .args(["-v", voice, "-s", "160", "-w"])
        .arg(&wav)
        .arg(text)
        .status()
        .expect("espeak-ng (apt package espeak-ng) runs");
    assert!(st.success(), "espeak-ng failed: {st}");
    let st = Command::new("sox")
        .arg(&wav)
        .args([
            "-r",
            "48000",
            "-c",
            "1",
            "-b",
            "16",
            "-e",
            "signed-integer",
            "-t",
            "raw",
        ])
        .arg(&raw)
        .status()
        .expect("sox (apt package sox) runs");
    assert!(st.success(), "sox failed: {st}");
    let bytes = std::fs::read(&raw).unwrap();
    bytes
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect()
}

/// The path from the playback sink to the microphone: `delay_ms` in all, of which
/// `reported_ms` is the loudspeaker's output latency that the sink reports in the latency
/// query (`render-delay`, as an audio sink reports its device buffer) and the rest is not
/// reported (acoustic distance, a device that under-reports its latency); the direct sound
/// with `gain`, and two weaker reflections (7 ms and 19 ms later, 0.4x and 0.2x of it).
#[derive(Debug, Clone, Copy)]
pub struct EchoPath {
    pub delay_ms: u32,
    pub reported_ms: u32,
    pub gain: f32,
}

impl EchoPath {
    /// Delays (samples after the sound leaves the loudspeaker) and gains.
    fn taps(&self) -> [(usize, f32); 3] {
        let d = (self.delay_ms - self.reported_ms) as usize * RATE / 1000;
        let ms = RATE / 1000;
        [
            (d, self.gain),
            (d + 7 * ms, 0.4 * self.gain),
            (d + 19 * ms, 0.2 * self.gain),
        ]
    }
}

/// A scenario on the microphone timeline (sample indices at 48 kHz).
pub struct Scenario {
    /// Far-end speech, played from `far_at`.
    pub far: Vec<i16>,
    pub far_at: usize,
    /// Near-end speech (already at its microphone level) and where it is spoken: once alone
    /// (the reference) and once over the far end (double talk).
    pub near: Vec<i16>,
    pub near_alone_at: usize,
    pub near_double_at: usize,
    /// Total length.
    pub len: usize,
}

impl Scenario {
    /// 1 s silence, the near-end phrase alone, 0.5 s, then the far-end speech with the near-end
    /// phrase again 8 s into it, 1 s after the far end ends.
    pub fn standard(far: Vec<i16>, near: Vec<i16>, near_gain: f32) -> Scenario {
        let near: Vec<i16> = near
            .iter()
            .map(|s| (*s as f32 * near_gain) as i16)
            .collect();
        let near_alone_at = RATE;
        let far_at = near_alone_at + near.len() + RATE / 2;
        let near_double_at = far_at + 8 * RATE;
        assert!(
            near_double_at + near.len() + 2 * RATE < far_at + far.len(),
            "the far-end speech ({} s) must outlast the double talk",
            far.len() / RATE
        );
        let len = far_at + far.len() + RATE;
        Scenario {
            far,
            far_at,
            near,
            near_alone_at,
            near_double_at,
            len,
        }
    }

    /// The far-end signal on the playback timeline (zero outside the speech).
    fn far_sample(&self, i: usize) -> i16 {
        i.checked_sub(self.far_at)
            .and_then(|k| self.far.get(k).copied())
            .unwrap_or(0)
    }

    /// The near-end signal on the microphone timeline.
    pub fn near_sample(&self, i: usize) -> f32 {
        let at = |start: usize| {
            i.checked_sub(start)
                .and_then(|k| self.near.get(k).copied())
                .map(f32::from)
                .unwrap_or(0.0)
        };
        at(self.near_alone_at) + at(self.near_double_at)
    }
}

/// What a run recorded, sample-aligned on the microphone timeline.
pub struct Run {
    /// The microphone input (echo + near end).
    pub mic: Vec<i16>,
    /// The echo alone (what the microphone picked up from the loudspeaker).
    pub echo: Vec<f32>,
    /// The processed output.
    pub out: Vec<i16>,
}

/// Play `sc` through the simulated echo path into `processing` and record the result. `probe`
/// names the far-end reference (unique per concurrent run).
pub fn run(sc: &Scenario, path: EchoPath, processing: AudioProcessing, probe: &str) -> Run {
    streamwire::gst_init::init().unwrap();
    let pipeline = gst::Pipeline::new();
    let caps = dsp_caps();
    let far_src = gst_app::AppSrc::builder()
        .caps(&caps)
        .format(gst::Format::Time)
        .is_live(true)
        .block(true)
        .max_bytes(FRAME as u64 * 2 * 20)
        .build();
    let speaker = gst_app::AppSink::builder().sync(true).build();
    // Hands each buffer over `reported_ms` before it is heard, and says so in the latency
    // query (no sound card period to allow for besides).
    speaker.set_property("processing-deadline", 0u64);
    speaker.set_property("render-delay", u64::from(path.reported_ms) * 1_000_000);
    let mic_src = gst_app::AppSrc::builder()
        .caps(&caps)
        .format(gst::Format::Time)
        .is_live(true)
        .build();
    let out_sink = gst_app::AppSink::builder().sync(false).build();
    // The microphone side gets data only once the loudspeaker plays: its sink must not hold
    // the pipeline's change to PLAYING waiting for a preroll buffer.
    out_sink.set_property("async", false);

    let mut play: Vec<gst::Element> = vec![far_src.clone().upcast()];
    play.extend(echo_probe_chain(probe).unwrap());
    play.push(speaker.clone().upcast());
    let mut capture: Vec<gst::Element> = vec![mic_src.clone().upcast()];
    capture.extend(processing.chain(Some(probe)).unwrap());
    capture.push(out_sink.clone().upcast());
    pipeline.add_many(&play).unwrap();
    pipeline.add_many(&capture).unwrap();
    gst::Element::link_many(&play).unwrap();
    gst::Element::link_many(&capture).unwrap();

    // The loudspeaker: every played 10 ms becomes 10 ms of microphone signal, timestamped
    // with the running time it is heard at.
    let taps = path.taps();
    // (everything played so far, microphone, echo alone, samples fed to the microphone)
    let state = Arc::new(Mutex::new((
        Vec::<f32>::new(),
        Vec::<i16>::new(),
        Vec::<f32>::new(),
        0usize,
    )));
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let sc_len = sc.len;
    {
        let state = state.clone();
        let mic_src = mic_src.clone();
        let near: Vec<f32> = (0..sc.len).map(|i| sc.near_sample(i)).collect();
        speaker.set_callbacks(
            gst_app::AppSinkCallbacks::builder()
                .new_sample(move |sink| {
                    let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                    let buf = sample.buffer().ok_or(gst::FlowError::Error)?;
                    let map = buf.map_readable().map_err(|_| gst::FlowError::Error)?;
                    let played: Vec<f32> = map
                        .chunks_exact(2)
                        .map(|b| f32::from(i16::from_le_bytes([b[0], b[1]])))
                        .collect();
                    // Captured when it is heard: its running time plus the loudspeaker
                    // path's latency (the pipeline's, which the probe also uses).
                    let mut q = gst::query::Latency::new();
                    let latency = if sink.query(&mut q) {
                        q.result().1
                    } else {
                        gst::ClockTime::ZERO
                    };
                    let pts = buf.pts().map(|t| t + latency);
                    let mut st = state.lock();
                    let (hist, mic, echo, n) = &mut *st;
                    let mut frame = Vec::with_capacity(played.len() * 2);
                    for s in played {
                        hist.push(s);
                        let last = hist.len() - 1;
                        let e: f32 = taps
                            .iter()
                            .filter_map(|(d, g)| last.checked_sub(*d).map(|k| hist[k] * g))
                            .sum();
                        let v = (e + near.get(*n).copied().unwrap_or(0.0)).clamp(-32768.0, 32767.0)
                            as i16;
                        mic.push(v);
                        echo.push(e);
                        frame.extend_from_slice(&v.to_le_bytes());
                        *n += 1;
                    }
                    let done = *n >= sc_len;
                    drop(st);
                    let mut b = gst::Buffer::from_mut_slice(frame);
                    b.get_mut().unwrap().set_pts(pts);
                    let _ = mic_src.push_buffer(b);
                    if done {
                        let _ = mic_src.end_of_stream();
                        let _ = done_tx.send(());
                    }
                    Ok(gst::FlowSuccess::Ok)
                })
                .build(),
        );
    }
    let out = Arc::new(Mutex::new(Vec::<i16>::new()));
    {
        let out = out.clone();
        out_sink.set_callbacks(
            gst_app::AppSinkCallbacks::builder()
                .new_sample(move |sink| {
                    let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                    let buf = sample.buffer().ok_or(gst::FlowError::Error)?;
                    let map = buf.map_readable().map_err(|_| gst::FlowError::Error)?;
                    out.lock().extend(
                        map.chunks_exact(2)
                            .map(|b| i16::from_le_bytes([b[0], b[1]])),
                    );
                    Ok(gst::FlowSuccess::Ok)
                })
                .build(),
        );
    }
    pipeline.set_state(gst::State::Playing).unwrap();
    // Feed the far end, 10 ms per buffer, from running time zero; appsrc blocks when its
    // queue is full, so this paces itself by the loudspeaker.
    let frames = sc.len.div_ceil(FRAME);
    for f in 0..frames {
        let data: Vec<u8> = (f * FRAME..(f + 1) * FRAME)
            .flat_map(|i| sc.far_sample(i).to_le_bytes())
            .collect();
        let mut b = gst::Buffer::from_mut_slice(data);
        {
            let b = b.get_mut().unwrap();
            b.set_pts(gst::ClockTime::from_mseconds(f as u64 * 10));
            b.set_duration(gst::ClockTime::from_mseconds(10));
        }
        far_src.push_buffer(b).expect("far-end buffer accepted");
    }
    far_src.end_of_stream().unwrap();
    let limit = Duration::from_millis(sc.len as u64 * 1000 / RATE as u64 + 15_000);
    done_rx
        .recv_timeout(limit)
        .expect("the loudspeaker played the whole scenario");
    let bus = pipeline.bus().unwrap();
    let mut eos = false;
    // EOS reaches the bus once both sinks have it.
    while let Some(msg) = bus.timed_pop(gst::ClockTime::from_seconds(10)) {
        match msg.view() {
            gst::MessageView::Eos(_) => {
                eos = true;
                break;
            }
            gst::MessageView::Error(e) => panic!("pipeline error: {} ({:?})", e.error(), e.debug()),
            gst::MessageView::Warning(w) => {
                panic!("pipeline warning: {} ({:?})", w.error(), w.debug())
            }
            _ => {}
        }
    }
    pipeline.set_state(gst::State::Null).unwrap();
    assert!(eos, "no EOS from the simulated call");
    let (_, mic, echo, _) = std::mem::take(&mut *state.lock());
    let out = std::mem::take(&mut *out.lock());
    Run { mic, echo, out }
}

fn energy(x: impl Iterator<Item = f32>) -> f64 {
    x.map(|v| f64::from(v) * f64::from(v)).sum()
}

/// Frames (10 ms, by start sample) in `range` where `signal` is active (above -50 dBFS RMS).
fn active_frames(
    range: std::ops::Range<usize>,
    signal: impl Fn(usize) -> f32,
) -> Vec<std::ops::Range<usize>> {
    let threshold = (32768.0f64 * 10f64.powf(-50.0 / 20.0)).powi(2) * FRAME as f64;
    let start = range.start.div_ceil(FRAME) * FRAME;
    (start..range.end.saturating_sub(FRAME))
        .step_by(FRAME)
        .map(|s| s..s + FRAME)
        .filter(|r| energy(r.clone().map(&signal)) > threshold)
        .collect()
}

/// The measured figures of one run.
#[derive(Debug, Clone, Copy)]
pub struct Figures {
    /// Echo return loss enhancement in the far-end single-talk parts after 3 s of
    /// convergence (microphone energy over output energy, in frames where echo is active).
    pub erle_db: f64,
    /// How much the processing attenuates near-end speech in double talk, against the same
    /// phrase spoken alone (output energy alone over output energy in double talk, in frames
    /// where the near end is active). Residual echo counts as near end here, so a poor
    /// canceller shows as a negative figure.
    pub near_attenuation_db: f64,
}

pub fn figures(sc: &Scenario, run: &Run) -> Figures {
    let n = run.out.len().min(run.mic.len());
    let near = |i: usize| sc.near_sample(i);
    let echo = |i: usize| run.echo.get(i).copied().unwrap_or(0.0);
    let single: Vec<_> = [
        sc.far_at + 3 * RATE..sc.near_double_at,
        sc.near_double_at + sc.near.len() + RATE / 2..(sc.far_at + sc.far.len()).min(n),
    ]
    .into_iter()
    .flat_map(|r| active_frames(r, echo))
    .collect();
    let sum = |frames: &[std::ops::Range<usize>], x: &dyn Fn(usize) -> f32| {
        energy(frames.iter().flat_map(|r| r.clone()).map(x))
    };
    let mic = |i: usize| f32::from(run.mic[i]);
    let out = |i: usize| f32::from(run.out[i]);
    let erle_db = 10.0 * (sum(&single, &mic) / sum(&single, &out)).log10();
    let alone = active_frames(sc.near_alone_at..sc.near_alone_at + sc.near.len(), near);
    let offset = sc.near_double_at - sc.near_alone_at;
    let double: Vec<_> = alone
        .iter()
        .map(|r| r.start + offset..r.end + offset)
        .filter(|r| r.end <= n)
        .collect();
    let near_attenuation_db = 10.0 * (sum(&alone, &out) / sum(&double, &out)).log10();
    Figures {
        erle_db,
        near_attenuation_db,
    }
}
