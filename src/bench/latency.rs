//! Measuring core of `streamwire bench latency`: a real publisher and N real subscribers over
//! loopback (ICE, DTLS-SRTP, encode, decode), each in its own pipeline, in one process.
//!
//! * A frame counter is painted into the luma plane of every raw frame right before the
//!   encoder (32 blocks: 24-bit counter + 8-bit check; `streamwire::session::latency`) and its
//!   capture time recorded.
//! * **Decoded latency**: counter read back at the subscriber's decoder output.
//! * **Rendered latency**: counter read back when a clock-synchronised `appsink` releases the
//!   frame, i.e. when a display sink would show it (pipeline latency included).
//! * All timestamps come from one monotonic clock (GStreamer's system clock, which every
//!   pipeline is made to use).
//! * **First frame**: from a subscriber's `Session::join` call (WebSocket connect, `join`,
//!   `welcome`, offer/answer and trickle ICE through the signalling server, ICE, DTLS) to its
//!   first decoded frame, with the publisher already streaming and the process's DTLS
//!   certificate already generated.
//! * **CPU**: process CPU seconds per wall second (`getrusage`; includes the subscribers'
//!   decoders, which run in the same process) and the shared encoder thread's alone.
//!
//! Every peer is a [`Session`] joined to an embedded signalling server on 127.0.0.1 (a fresh
//! random secret per run), so SDP and ICE take the same path as in a call.

use parking_lot::Mutex;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use gst::prelude::*;

use super::latency_breakdown::{EncoderLog, Marks, breakdown, hook_subscriber_pipeline};
use super::usage::{pid_cpu_seconds, process_cpu_seconds, rtp_bytes_sent, thread_cpu_seconds};
use streamwire::encoder::Codec;
use streamwire::server::{Server, ServerConfig};
use streamwire::session::latency::{CaptureTimes, MIN_STAMP_WIDTH, read_stamp, stamp_frames};
use streamwire::session::{Session, SessionConfig, Subscribe};
use streamwire::signalling::protocol::Grant;
use streamwire::signalling::token::{Claims, mint};
use streamwire::webrtc::WebrtcError;
use streamwire::webrtc::publisher::{
    AudioSource, ENCODER_QUEUE_NAME, PublisherConfig, VideoSource,
};
use streamwire::webrtc::subscriber::{SubscriberConfig, VideoOutput};

/// Benchmark failure.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// The media engine failed.
    #[error(transparent)]
    Webrtc(#[from] WebrtcError),
    /// GStreamer could not be initialised.
    #[error("GStreamer initialisation failed: {0}")]
    Init(String),
    /// The run itself failed.
    #[error("latency benchmark: {0}")]
    Run(String),
}

/// A Janus instance for the SFU runs of `bench sfu`.
#[derive(Debug, Clone)]
pub struct SfuTarget {
    /// WebSocket API URL.
    pub url: String,
    /// Its `api_secret`.
    pub api_secret: String,
    /// Its VideoRoom `admin_key`.
    pub admin_key: String,
    /// Its process, when started by the benchmark (its CPU is measured).
    pub pid: Option<u32>,
}

/// What to measure.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LatencyOptions {
    /// Number of subscribers (each its own pipeline and webrtcbin pair).
    pub subscribers: usize,
    /// Video codec.
    pub codec: Codec,
    /// Frame width.
    pub width: i32,
    /// Frame height.
    pub height: i32,
    /// Frames per second.
    pub fps: i32,
    /// Length of the measuring window (s).
    pub seconds: f64,
    /// Time after the last join before measuring (s).
    pub warmup_seconds: f64,
    /// Subscriber jitter-buffer latency (ms); `None`: adaptive (the default).
    pub jitter_latency_ms: Option<u32>,
    /// Video bitrate (kbit/s), also the congestion-control start.
    pub bitrate_kbps: u32,
    /// Subscribers ran as child processes (set by `latency_process::run_separate`); the
    /// process CPU figure is then the publisher's alone.
    pub separate_processes: bool,
    /// Each subscriber is a fresh process that joins right after initialising the library,
    /// without waiting for its DTLS certificate: the first call of an application.
    pub cold: bool,
    /// The room goes through this Janus (`bench sfu`); `None`: a mesh.
    #[serde(skip)]
    pub sfu: Option<SfuTarget>,
    /// Every session gathers ICE on this address only; `None`: 127.0.0.1.
    pub ice_address: Option<String>,
    /// The sessions gather ICE-TCP candidates too (the default); `bench impairment` turns it
    /// off: its loss drops UDP, and a TCP pair would carry the media without a loss.
    pub ice_tcp: bool,
}

impl Default for LatencyOptions {
    /// 1 subscriber, VP8, 1280x720@30, 10 s after 2 s warm-up, adaptive jitter buffer,
    /// 2500 kbit/s,
    /// congestion control on.
    fn default() -> Self {
        LatencyOptions {
            subscribers: 1,
            codec: Codec::Vp8,
            width: 1280,
            height: 720,
            fps: 30,
            seconds: 10.0,
            warmup_seconds: 2.0,
            jitter_latency_ms: None,
            bitrate_kbps: 2500,
            separate_processes: false,
            cold: false,
            sfu: None,
            ice_address: None,
            ice_tcp: true,
        }
    }
}

/// p50 / p95 / max of a set of samples, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct Summary {
    /// Number of samples.
    pub samples: usize,
    /// Median.
    pub p50_ms: f64,
    /// 95th percentile.
    pub p95_ms: f64,
    /// Maximum.
    pub max_ms: f64,
}

/// Summarise samples (nearest-rank percentiles).
pub fn summarize(mut v: Vec<f64>) -> Summary {
    if v.is_empty() {
        return Summary::default();
    }
    v.sort_by(f64::total_cmp);
    let rank = |p: f64| {
        let idx = ((p * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1;
        v[idx]
    };
    Summary {
        samples: v.len(),
        p50_ms: rank(0.50),
        p95_ms: rank(0.95),
        max_ms: v[v.len() - 1],
    }
}

/// Result of one run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LatencyReport {
    /// What was measured.
    pub options: LatencyOptions,
    /// Capture to decoded frame.
    pub decoded: Summary,
    /// Capture to the moment a clock-synchronised sink shows the frame.
    pub rendered: Summary,
    /// Join to first decoded frame, one sample per subscriber.
    pub first_frame: Summary,
    /// Process CPU seconds per second over the window (publisher and subscribers).
    pub process_cpu_per_s: f64,
    /// CPU seconds per second of the shared encoder thread alone.
    pub encoder_cpu_per_s: Option<f64>,
    /// Frames captured during the window.
    pub frames_captured: u64,
    /// Frames shown by the synchronised sinks during the window, per second and subscriber.
    pub rendered_fps_per_subscriber: f64,
    /// Decoded frames whose counter could not be read (should be 0).
    pub unreadable_frames: u64,
    /// The embedded signalling server every peer joined (`ws://127.0.0.1:PORT`).
    pub signalling_server: String,
    /// RTP payload bytes the publisher sent per second over the window (every connection,
    /// audio and video, from webrtcbin's `outbound-rtp` stats), kbit/s.
    pub publisher_uplink_kbps: Option<f64>,
    /// CPU seconds per second of the SFU (Janus) process, when the benchmark started it.
    pub sfu_cpu_per_s: Option<f64>,
    /// The lowest subscriber's decoded frames per second over the window.
    pub min_decoded_fps: f64,
    /// Where join → first frame went, step by step (in-process runs only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_frame_breakdown: Option<super::latency_breakdown::BreakdownReport>,
}

/// The time on `clock` (ns).
pub(crate) fn now_ns(clock: &gst::Clock) -> u64 {
    clock.time().nseconds()
}

/// One frame reading at a subscriber: the counter read back at the decoder's output or when the
/// synchronised sink released the frame, with the monotonic time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "frame", rename_all = "kebab-case")]
pub enum FrameReading {
    /// Frame `n` left the decoder at `t_ns`.
    Decoded {
        /// Counter.
        n: u32,
        /// Monotonic time (ns).
        t_ns: u64,
    },
    /// Frame `n` was released by the synchronised sink at `t_ns`.
    Rendered {
        /// Counter.
        n: u32,
        /// Monotonic time (ns).
        t_ns: u64,
    },
    /// A decoded frame's counter could not be read.
    Unreadable,
}

/// Report every decoded and rendered frame of a subscriber configured with `cfg` (an
/// [`VideoOutput::AppSink`] with `sync`) to `on`, with times from `clock`. The callbacks go
/// into the configuration, so the first frame is seen too.
pub(crate) fn report_frames(
    cfg: &mut SubscriberConfig,
    clock: &gst::Clock,
    on: Arc<dyn Fn(FrameReading) + Send + Sync>,
) {
    {
        let (on, clock) = (on.clone(), clock.clone());
        cfg.on_decoded_video = Some(Arc::new(move |_, buf, caps| {
            let t_ns = now_ns(&clock);
            on(match read_stamp(buf, caps) {
                Some(n) => FrameReading::Decoded { n, t_ns },
                None => FrameReading::Unreadable,
            });
        }));
    }
    let clock = clock.clone();
    cfg.on_video_sample = Some(Arc::new(move |_, sample| {
        let t_ns = now_ns(&clock);
        if let (Some(buf), Some(caps)) = (sample.buffer(), sample.caps())
            && let Some(n) = read_stamp(buf, &caps.to_owned())
        {
            on(FrameReading::Rendered { n, t_ns });
        }
    }));
}

/// Join-to-first-frame clock of one subscriber.
#[derive(Default)]
pub(crate) struct FirstFrame {
    joined: Mutex<Option<Instant>>,
    seen: AtomicBool,
    /// Frames decoded during the measuring window.
    window_frames: AtomicU32,
}

impl FirstFrame {
    /// The subscriber starts joining now.
    pub(crate) fn start(&self) {
        *self.joined.lock() = Some(Instant::now());
    }

    pub(crate) fn seen(&self) -> bool {
        self.seen.load(Ordering::Relaxed)
    }
}

pub(crate) struct Shared {
    pub(crate) clock: gst::Clock,
    pub(crate) captured: CaptureTimes,
    pub(crate) measuring: AtomicBool,
    pub(crate) decoded: Mutex<Vec<f64>>,
    pub(crate) rendered: Mutex<Vec<f64>>,
    pub(crate) first_frames: Mutex<Vec<f64>>,
    pub(crate) rendered_frames: Mutex<u64>,
    pub(crate) unreadable: Mutex<u64>,
    pub(crate) frames_in_window: AtomicU32,
    /// The publishing session's pipeline (its connections' send statistics).
    pub(crate) publisher: Mutex<Option<gst::Pipeline>>,
}

impl Shared {
    pub(crate) fn new(clock: gst::Clock) -> Arc<Self> {
        Arc::new(Shared {
            clock,
            captured: CaptureTimes::default(),
            measuring: AtomicBool::new(false),
            decoded: Mutex::new(Vec::new()),
            rendered: Mutex::new(Vec::new()),
            first_frames: Mutex::new(Vec::new()),
            rendered_frames: Mutex::new(0),
            unreadable: Mutex::new(0),
            frames_in_window: AtomicU32::new(0),
            publisher: Mutex::new(None),
        })
    }

    /// Latency of frame `n` seen at clock time `t_ns`, if its capture time is known.
    pub(crate) fn latency_ms(&self, n: u32, t_ns: u64) -> Option<f64> {
        let c = self.captured.get(n)?;
        Some(t_ns.saturating_sub(c) as f64 / 1e6)
    }

    /// Account one reading of the subscriber whose first-frame clock is `first`.
    pub(crate) fn record(&self, first: &FirstFrame, reading: FrameReading) {
        let push = |m: &Mutex<Vec<f64>>, v: f64| m.lock().push(v);
        if let FrameReading::Decoded { .. } = reading
            && !first.seen.swap(true, Ordering::Relaxed)
            && let Some(j) = *first.joined.lock()
        {
            push(&self.first_frames, j.elapsed().as_secs_f64() * 1000.0);
        }
        if !self.measuring.load(Ordering::Relaxed) {
            return;
        }
        match reading {
            FrameReading::Decoded { n, t_ns } => {
                first.window_frames.fetch_add(1, Ordering::Relaxed);
                if let Some(ms) = self.latency_ms(n, t_ns) {
                    push(&self.decoded, ms);
                }
            }
            FrameReading::Rendered { n, t_ns } => {
                *self.rendered_frames.lock() += 1;
                if let Some(ms) = self.latency_ms(n, t_ns) {
                    push(&self.rendered, ms);
                }
            }
            FrameReading::Unreadable => {
                *self.unreadable.lock() += 1;
            }
        }
    }
}

/// Room every benchmark session joins.
pub(crate) const ROOM: &str = "bench";

/// The benchmark's tokio runtime and an embedded signalling server on 127.0.0.1 with a fresh
/// random secret; every peer joins it, so join → first frame includes the WebSocket connect,
/// `join`/`welcome`, the offer/answer and trickle ICE through the server.
pub(crate) struct BenchRoom {
    pub(crate) rt: tokio::runtime::Runtime,
    pub(crate) url: String,
    secret: Vec<u8>,
    server: tokio::task::JoinHandle<()>,
}

impl BenchRoom {
    pub(crate) fn start(sfu: Option<&SfuTarget>) -> Result<BenchRoom, BenchError> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| BenchError::Run(format!("runtime: {e}")))?;
        let mut secret = vec![0u8; 32];
        getrandom::getrandom(&mut secret)
            .map_err(|e| BenchError::Run(format!("random server secret: {e}")))?;
        let mut cfg = ServerConfig::new(
            std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
            secret.clone(),
        );
        cfg.sfu = sfu.map(|t| {
            streamwire::server::sfu::SfuConfig::new(
                vec![t.url.clone()],
                &t.api_secret,
                &t.admin_key,
            )
        });
        let server = rt
            .block_on(Server::bind(cfg))
            .map_err(|e| BenchError::Run(format!("embedded signalling server: {e}")))?;
        let url = format!("ws://{}", server.local_addr());
        let server = rt.spawn(server.run());
        Ok(BenchRoom {
            rt,
            url,
            secret,
            server,
        })
    }

    /// A token for `user` in [`ROOM`].
    pub(crate) fn token(&self, user: &str) -> Result<String, BenchError> {
        mint(
            &self.secret,
            &Claims::new(ROOM, user, user, Duration::from_secs(3600), &Grant::ALL),
        )
        .map_err(|e| BenchError::Run(format!("minting a token: {e}")))
    }
}

impl Drop for BenchRoom {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Session configuration of a measuring subscriber: clock-synchronised appsink whose frames
/// (decoded and rendered) go to `on` with times from `clock`, loopback ICE, no data channel
/// (the benchmark measures media).
pub(crate) fn subscriber_config(
    url: &str,
    token: &str,
    jitter_latency_ms: Option<u32>,
    clock: &gst::Clock,
    on: Arc<dyn Fn(FrameReading) + Send + Sync>,
    ice_address: Option<&str>,
) -> SessionConfig {
    let mut cfg = SessionConfig::loopback(url, ROOM, token);
    if let Some(a) = ice_address {
        cfg.local_addresses = vec![a.to_owned()];
    }
    cfg.output = SubscriberConfig {
        video: VideoOutput::AppSink,
        sync: true,
        ..SubscriberConfig::default()
    };
    report_frames(&mut cfg.output, clock, on);
    if let Some(ms) = jitter_latency_ms {
        cfg.jitter_buffer = streamwire::webrtc::repair::JitterBuffer::Fixed(ms);
    }
    cfg.data_channel = false;
    cfg
}

fn check(opts: &LatencyOptions) -> Result<(), BenchError> {
    if opts.subscribers == 0 {
        return Err(BenchError::Run("need at least one subscriber".into()));
    }
    if opts.width < MIN_STAMP_WIDTH {
        return Err(BenchError::Run(format!(
            "width {} is too small for the frame counter (need >= {MIN_STAMP_WIDTH})",
            opts.width
        )));
    }
    Ok(())
}

/// A running application has generated its DTLS certificate (see
/// [`streamwire::gst_init::dtls_certificate_ready`]) before anyone joins, so the warm benchmark
/// waits for it before it starts measuring join-to-first-frame (`--cold` does not).
pub(crate) fn pay_dtls_certificate() -> Result<(), BenchError> {
    streamwire::gst_init::dtls_certificate_ready().map_err(|e| BenchError::Init(e.to_string()))
}

/// Common start: checks, GStreamer, the DTLS certificate, the embedded server, and the
/// publishing session (already streaming, frames stamped) joined as `publisher`.
pub(crate) fn start(
    opts: &LatencyOptions,
) -> Result<(BenchRoom, Arc<Shared>, Session), BenchError> {
    check(opts)?;
    streamwire::gst_init::init().map_err(|e| BenchError::Init(e.to_string()))?;
    pay_dtls_certificate()?;
    let room = BenchRoom::start(opts.sfu.as_ref())?;
    let shared = Shared::new(gst::SystemClock::obtain());
    let mut cfg = SessionConfig::loopback(&room.url, ROOM, &room.token("publisher")?);
    cfg.ice_tcp = opts.ice_tcp;
    if let Some(a) = &opts.ice_address {
        cfg.local_addresses = vec![a.clone()];
    }
    cfg.publish = Some(PublisherConfig {
        video: VideoSource::TestPattern("ball".into()),
        audio: AudioSource::TestTone,
        codec: opts.codec,
        width: opts.width,
        height: opts.height,
        fps: opts.fps,
        start_kbps: opts.bitrate_kbps,
        floor_kbps: 300,
        ceiling_kbps: opts.bitrate_kbps,
        keyframe_interval: u32::try_from(opts.fps.max(1) * 10).unwrap_or(300),
        ..PublisherConfig::default()
    });
    cfg.subscribe = Subscribe::Users(Vec::new());
    cfg.data_channel = false;
    let (session, _events) = room
        .rt
        .block_on(Session::join(cfg))
        .map_err(|e| BenchError::Run(format!("publisher join: {e}")))?;
    *shared.publisher.lock() = Some(session.pipeline().clone());
    let raw = room
        .rt
        .block_on(session.publisher())
        .and_then(|p| p.raw_video_pad())
        .ok_or_else(|| BenchError::Run("publisher has no video".into()))?;
    {
        let shared = shared.clone();
        let clock = shared.clock.clone();
        stamp_frames(&raw, clock, move |n, t| {
            shared.captured.remember(n, t);
            if shared.measuring.load(Ordering::Relaxed) {
                shared.frames_in_window.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    // Subscribers join a publisher that is already streaming, as in a call.
    std::thread::sleep(Duration::from_secs(1));
    Ok((room, shared, session))
}

/// CPU and wall time of the measuring window.
pub(crate) struct Window {
    cpu_s: f64,
    encoder_cpu_s: Option<f64>,
    wall_s: f64,
    uplink_bytes: Option<u64>,
    sfu_cpu_s: Option<f64>,
    /// The lowest subscriber's frames decoded (readable) in the window.
    pub(crate) min_frames: u32,
}

/// Wait (bounded) for every subscriber's first frame, warm up, then measure for
/// `opts.seconds`.
pub(crate) fn measure(
    opts: &LatencyOptions,
    shared: &Shared,
    firsts: &[Arc<FirstFrame>],
) -> Result<Window, BenchError> {
    measure_from(opts, shared, firsts, || {})
}

/// [`measure`], calling `at_start` right before the window opens.
pub(crate) fn measure_from(
    opts: &LatencyOptions,
    shared: &Shared,
    firsts: &[Arc<FirstFrame>],
    at_start: impl FnOnce(),
) -> Result<Window, BenchError> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while firsts.iter().any(|f| !f.seen()) {
        if Instant::now() > deadline {
            return Err(BenchError::Run(
                "a subscriber decoded no frame within 30 s".into(),
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_secs_f64(opts.warmup_seconds.max(0.0)));
    let enc_name = format!("{ENCODER_QUEUE_NAME}:src");
    let publisher = shared.publisher.lock().clone();
    let bytes = || publisher.as_ref().and_then(rtp_bytes_sent);
    let sfu_cpu = || {
        opts.sfu
            .as_ref()
            .and_then(|t| t.pid)
            .and_then(pid_cpu_seconds)
    };
    let (bytes0, sfu0) = (bytes(), sfu_cpu());
    for f in firsts {
        f.window_frames.store(0, Ordering::Relaxed);
    }
    at_start();
    let cpu0 = process_cpu_seconds();
    let enc0 = thread_cpu_seconds(&enc_name);
    let t0 = Instant::now();
    shared.measuring.store(true, Ordering::Relaxed);
    std::thread::sleep(Duration::from_secs_f64(opts.seconds.max(0.1)));
    shared.measuring.store(false, Ordering::Relaxed);
    let wall_s = t0.elapsed().as_secs_f64();
    let cpu1 = process_cpu_seconds();
    let enc1 = thread_cpu_seconds(&enc_name);
    let min_frames = firsts
        .iter()
        .map(|f| f.window_frames.load(Ordering::Relaxed))
        .min()
        .unwrap_or(0);
    Ok(Window {
        cpu_s: cpu1 - cpu0,
        encoder_cpu_s: enc0.zip(enc1).map(|(a, b)| b - a),
        wall_s,
        uplink_bytes: bytes0.zip(bytes()).map(|(a, b)| b.saturating_sub(a)),
        sfu_cpu_s: sfu0.zip(sfu_cpu()).map(|(a, b)| b - a),
        min_frames,
    })
}

/// The report from what `shared` collected over `w`.
pub(crate) fn report(
    opts: LatencyOptions,
    room: &BenchRoom,
    shared: &Shared,
    w: &Window,
) -> LatencyReport {
    let take = |m: &Mutex<Vec<f64>>| std::mem::take(&mut *m.lock());
    let rendered_frames = *shared.rendered_frames.lock();
    let unreadable = *shared.unreadable.lock();
    let subscribers = opts.subscribers.max(1) as f64;
    LatencyReport {
        decoded: summarize(take(&shared.decoded)),
        rendered: summarize(take(&shared.rendered)),
        first_frame: summarize(take(&shared.first_frames)),
        process_cpu_per_s: w.cpu_s / w.wall_s,
        encoder_cpu_per_s: w.encoder_cpu_s.map(|c| c / w.wall_s),
        frames_captured: u64::from(shared.frames_in_window.load(Ordering::Relaxed)),
        rendered_fps_per_subscriber: rendered_frames as f64 / w.wall_s / subscribers,
        unreadable_frames: unreadable,
        signalling_server: room.url.clone(),
        first_frame_breakdown: None,
        publisher_uplink_kbps: w.uplink_bytes.map(|b| b as f64 * 8.0 / 1000.0 / w.wall_s),
        sfu_cpu_per_s: w.sfu_cpu_s.map(|c| c / w.wall_s),
        min_decoded_fps: f64::from(w.min_frames) / w.wall_s,
        options: opts,
    }
}

/// Run the benchmark (blocking; takes about `warmup_seconds + seconds` plus joins): an
/// embedded signalling server on 127.0.0.1, a publishing [`Session`] and N subscribing
/// sessions in this process, all joined through the server.
pub fn run(opts: &LatencyOptions) -> Result<LatencyReport, BenchError> {
    let (room, shared, publisher) = start(opts)?;
    let encoder_log = Arc::new(EncoderLog::default());
    if encoder_log.hook(publisher.pipeline()) == 0 {
        tracing::warn!(
            "no video encoder found in the publisher: no keyframe steps in the breakdown"
        );
    }
    let mut subs = Vec::new();
    let mut firsts = Vec::new();
    let mut marks = Vec::new();
    let result = (|| {
        for i in 0..opts.subscribers {
            let first = Arc::new(FirstFrame::default());
            let on = {
                let (shared, f) = (shared.clone(), first.clone());
                Arc::new(move |r| shared.record(&f, r))
            };
            let cfg = subscriber_config(
                &room.url,
                &room.token(&format!("sub{i}"))?,
                opts.jitter_latency_ms,
                &shared.clock,
                on,
                opts.ice_address.as_deref(),
            );
            let mark = Marks::start();
            first.start();
            let (session, _events) = room
                .rt
                .block_on(Session::join(cfg))
                .map_err(|e| BenchError::Run(format!("subscriber {i} join: {e}")))?;
            mark.mark("joined");
            hook_subscriber_pipeline(session.pipeline(), &mark);
            marks.push(mark);
            subs.push(session);
            firsts.push(first);
        }
        measure(opts, &shared, &firsts)
    })();
    room.rt.block_on(async {
        for s in &subs {
            s.leave().await;
        }
        publisher.leave().await;
    });
    let window = result?;
    let mut r = report(opts.clone(), &room, &shared, &window);
    r.first_frame_breakdown = Some(super::latency_breakdown::report(
        marks.iter().map(|m| breakdown(m, &encoder_log)).collect(),
    ));
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles() {
        let s = summarize((1..=100).map(f64::from).collect());
        assert_eq!((s.p50_ms, s.p95_ms, s.max_ms), (50.0, 95.0, 100.0));
        assert_eq!(summarize(vec![]).samples, 0);
        let s = summarize(vec![3.0, 1.0, 2.0, 4.0]);
        assert_eq!((s.samples, s.p50_ms, s.max_ms), (4, 2.0, 4.0));
    }
}
