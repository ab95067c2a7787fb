//! The latency benchmark with every subscriber in its own child process, so that the
//! publisher's CPU (`getrusage(RUSAGE_SELF)` of this process) is measured alone.
//!
//! The child is the same benchmark binary started with a flag; it calls [`subscriber_child`].
//! Parent and child talk JSON lines over the child's stdin/stdout ([`ToChild`], [`FromChild`]):
//! signalling, and per-frame counter readings with CLOCK_MONOTONIC times (GStreamer's system
//! clock, the same clock in every process on the machine).

use std::io::{BufRead, BufReader, Write};

use gst::prelude::*;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use super::latency::{
    BenchError, LatencyOptions, LatencyReport, Shared, luma_of, now_ns, pipeline, play,
    process_cpu_seconds, start_publisher, summarize, thread_cpu_seconds,
};
use crate::webrtc::MediaKind;
use crate::webrtc::peer::{Peer, PeerConfig, Role, SignalIn, SignalOut};
use crate::webrtc::publisher::ENCODER_QUEUE_NAME;
use crate::webrtc::subscriber::{Subscriber, SubscriberConfig, VideoOutput};

/// Parent to child.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
#[serde(tag = "msg", rename_all = "kebab-case")]
pub enum ToChild {
    /// Create the peer and offer.
    Start,
    /// Signalling from the publisher.
    Signal {
        /// The message.
        signal: SignalIn,
    },
}

/// Child to parent.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
#[serde(tag = "msg", rename_all = "kebab-case")]
pub enum FromChild {
    /// Initialised (GStreamer, DTLS certificate); waiting for `Start`.
    Ready,
    /// Signalling for the publisher.
    Signal {
        /// The message.
        signal: SignalOut,
    },
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

fn send_line(out: &Mutex<std::io::Stdout>, msg: &FromChild) {
    if let Ok(line) = serde_json::to_string(msg) {
        let mut o = out.lock().unwrap_or_else(|p| p.into_inner());
        let _ = writeln!(o, "{line}");
        let _ = o.flush();
    }
}

/// Child side: one subscriber, driven through stdin/stdout. Returns when stdin closes.
pub fn subscriber_child(jitter_latency_ms: u32) -> Result<(), BenchError> {
    crate::gst_init::init().map_err(|e| BenchError::Init(e.to_string()))?;
    drop(crate::webrtc::make("dtlsdec")?);
    let clock = gst::SystemClock::obtain();
    let out = Arc::new(Mutex::new(std::io::stdout()));
    let pipe = pipeline("bench-subscriber", &clock);
    let (subscriber, _events) = Subscriber::new(SubscriberConfig {
        video: VideoOutput::AppSink,
        sync: true,
        ..SubscriberConfig::default()
    });
    {
        let (out, clock) = (out.clone(), clock.clone());
        subscriber.on_decoded_video(move |_, buf, caps| {
            let t_ns = now_ns(&clock);
            let msg = match luma_of(buf, caps) {
                Some(n) => FromChild::Decoded { n, t_ns },
                None => FromChild::Unreadable,
            };
            send_line(&out, &msg);
        });
    }
    {
        let (out, clock) = (out.clone(), clock.clone());
        subscriber.on_video_sample(move |_, sample| {
            let t_ns = now_ns(&clock);
            if let (Some(buf), Some(caps)) = (sample.buffer(), sample.caps())
                && let Some(n) = luma_of(buf, &caps.to_owned())
            {
                send_line(&out, &FromChild::Rendered { n, t_ns });
            }
        });
    }
    play(&pipe)?;
    send_line(&out, &FromChild::Ready);

    let mut peer: Option<Peer> = None;
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let msg: ToChild = serde_json::from_str(&line)
            .map_err(|e| BenchError::Run(format!("child: bad line `{line}`: {e}")))?;
        match msg {
            ToChild::Start => {
                let mut cfg = PeerConfig::loopback(Role::Offerer)
                    .receiving(&[MediaKind::Video, MediaKind::Audio]);
                cfg.jitter_latency_ms = jitter_latency_ms;
                let (p, mut io) = Peer::new(&pipe, "publisher", cfg)?;
                subscriber.attach(&p);
                let out = out.clone();
                std::thread::spawn(move || {
                    while let Some(signal) = io.signals.blocking_recv() {
                        send_line(&out, &FromChild::Signal { signal });
                    }
                });
                p.negotiate()?;
                peer = Some(p);
            }
            ToChild::Signal { signal } => {
                if let Some(p) = &peer {
                    p.apply(signal)?;
                }
            }
        }
    }
    let _ = pipe.set_state(gst::State::Null);
    Ok(())
}

struct ChildSub {
    child: Child,
    stdin: Arc<Mutex<std::process::ChildStdin>>,
    seen_first: Arc<AtomicBool>,
}

fn to_child(stdin: &Mutex<std::process::ChildStdin>, msg: &ToChild) {
    if let Ok(line) = serde_json::to_string(msg) {
        let mut s = stdin.lock().unwrap_or_else(|p| p.into_inner());
        let _ = writeln!(s, "{line}");
        let _ = s.flush();
    }
}

/// Run the benchmark with each subscriber in a child process started by `child()` (which must
/// end up calling [`subscriber_child`]). `process_cpu_per_s` is then the publisher's alone.
pub fn run_separate(
    opts: &LatencyOptions,
    child: &dyn Fn() -> Command,
) -> Result<LatencyReport, BenchError> {
    crate::gst_init::init().map_err(|e| BenchError::Init(e.to_string()))?;
    if opts.subscribers == 0 {
        return Err(BenchError::Run("need at least one subscriber".into()));
    }
    drop(crate::webrtc::make("dtlsdec")?);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| BenchError::Run(format!("runtime: {e}")))?;
    let shared = Shared::new(gst::SystemClock::obtain());
    let (pub_pipe, publisher) = start_publisher(opts, &shared)?;
    std::thread::sleep(Duration::from_secs(1));

    let first_frames: Arc<Mutex<Vec<f64>>> = Arc::default();
    let mut subs: Vec<ChildSub> = Vec::new();
    let mut peers = Vec::new();
    for i in 0..opts.subscribers {
        let mut cmd = child();
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped());
        let mut proc = cmd
            .spawn()
            .map_err(|e| BenchError::Run(format!("starting subscriber process: {e}")))?;
        let (Some(stdin), Some(stdout)) = (proc.stdin.take(), proc.stdout.take()) else {
            return Err(BenchError::Run("subscriber process without pipes".into()));
        };
        let stdin = Arc::new(Mutex::new(stdin));
        let (ready_tx, ready_rx) = mpsc::channel::<()>();
        let (peer_tx, peer_rx) = mpsc::channel::<Peer>();
        let seen_first = Arc::new(AtomicBool::new(false));
        let joined: Arc<Mutex<Option<Instant>>> = Arc::default();
        {
            let (shared, first_frames, seen_first, joined) = (
                shared.clone(),
                first_frames.clone(),
                seen_first.clone(),
                joined.clone(),
            );
            std::thread::spawn(move || {
                let mut peer: Option<Peer> = None;
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    let Ok(msg) = serde_json::from_str::<FromChild>(&line) else {
                        continue;
                    };
                    match msg {
                        FromChild::Ready => {
                            let _ = ready_tx.send(());
                            peer = peer_rx.recv_timeout(Duration::from_secs(30)).ok();
                        }
                        FromChild::Signal { signal } => {
                            if let Some(p) = &peer
                                && let Err(e) = p.apply(signal.into())
                            {
                                tracing::warn!("subscriber signal rejected: {e}");
                            }
                        }
                        FromChild::Decoded { n, t_ns } => {
                            if !seen_first.swap(true, Ordering::Relaxed)
                                && let Some(j) = *joined.lock().unwrap_or_else(|p| p.into_inner())
                            {
                                first_frames
                                    .lock()
                                    .unwrap_or_else(|p| p.into_inner())
                                    .push(j.elapsed().as_secs_f64() * 1000.0);
                            }
                            if shared.measuring.load(Ordering::Relaxed)
                                && let Some(ms) = shared.latency_ms(n, t_ns)
                            {
                                shared
                                    .decoded
                                    .lock()
                                    .unwrap_or_else(|p| p.into_inner())
                                    .push(ms);
                            }
                        }
                        FromChild::Rendered { n, t_ns } => {
                            if shared.measuring.load(Ordering::Relaxed) {
                                *shared
                                    .rendered_frames
                                    .lock()
                                    .unwrap_or_else(|p| p.into_inner()) += 1;
                                if let Some(ms) = shared.latency_ms(n, t_ns) {
                                    shared
                                        .rendered
                                        .lock()
                                        .unwrap_or_else(|p| p.into_inner())
                                        .push(ms);
                                }
                            }
                        }
                        FromChild::Unreadable => {
                            if shared.measuring.load(Ordering::Relaxed) {
                                *shared.unreadable.lock().unwrap_or_else(|p| p.into_inner()) += 1;
                            }
                        }
                    }
                }
            });
        }
        ready_rx
            .recv_timeout(Duration::from_secs(60))
            .map_err(|_| BenchError::Run("subscriber process did not become ready".into()))?;
        let mut cfg = PeerConfig::loopback(Role::Answerer);
        cfg.congestion = opts
            .congestion_control
            .then(|| crate::webrtc::peer::CongestionConfig {
                min_kbps: 300,
                start_kbps: opts.bitrate_kbps,
                max_kbps: opts.bitrate_kbps.max(300) * 2,
            });
        let (pub_peer, mut pub_io) = Peer::new(&pub_pipe, &format!("sub{i}"), cfg)?;
        publisher.attach(&pub_peer)?;
        {
            let stdin = stdin.clone();
            rt.spawn(async move {
                while let Some(signal) = pub_io.signals.recv().await {
                    to_child(
                        &stdin,
                        &ToChild::Signal {
                            signal: signal.into(),
                        },
                    );
                }
            });
        }
        let _ = peer_tx.send(pub_peer.clone());
        *joined.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
        to_child(&stdin, &ToChild::Start);
        peers.push(pub_peer);
        subs.push(ChildSub {
            child: proc,
            stdin,
            seen_first,
        });
    }

    let deadline = Instant::now() + Duration::from_secs(30);
    let result = (|| {
        while subs.iter().any(|s| !s.seen_first.load(Ordering::Relaxed)) {
            if Instant::now() > deadline {
                return Err(BenchError::Run(
                    "a subscriber decoded no frame within 30 s".into(),
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_secs_f64(opts.warmup_seconds.max(0.0)));
        let cpu0 = process_cpu_seconds();
        let enc_name = format!("{ENCODER_QUEUE_NAME}:src");
        let enc0 = thread_cpu_seconds(&enc_name);
        let t0 = Instant::now();
        shared.measuring.store(true, Ordering::Relaxed);
        std::thread::sleep(Duration::from_secs_f64(opts.seconds.max(0.1)));
        shared.measuring.store(false, Ordering::Relaxed);
        let wall = t0.elapsed().as_secs_f64();
        let cpu1 = process_cpu_seconds();
        let enc1 = thread_cpu_seconds(&enc_name);
        Ok((cpu0, cpu1, enc0, enc1, wall))
    })();

    // Tear down: closing stdin ends each child; kill any that lingers.
    let _ = pub_pipe.set_state(gst::State::Null);
    drop(peers);
    for mut s in subs {
        drop(s.stdin);
        let end = Instant::now() + Duration::from_secs(5);
        loop {
            match s.child.try_wait() {
                Ok(Some(_)) => break,
                Ok(None) if Instant::now() < end => std::thread::sleep(Duration::from_millis(50)),
                _ => {
                    let _ = s.child.kill();
                    let _ = s.child.wait();
                    break;
                }
            }
        }
    }
    drop(rt);
    let (cpu0, cpu1, enc0, enc1, wall) = result?;

    let take =
        |m: &Mutex<Vec<f64>>| std::mem::take(&mut *m.lock().unwrap_or_else(|p| p.into_inner()));
    let rendered_frames = *shared
        .rendered_frames
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    let unreadable = *shared.unreadable.lock().unwrap_or_else(|p| p.into_inner());
    Ok(LatencyReport {
        options: LatencyOptions {
            separate_processes: true,
            ..opts.clone()
        },
        decoded: summarize(take(&shared.decoded)),
        rendered: summarize(take(&shared.rendered)),
        first_frame: summarize(take(&first_frames)),
        process_cpu_per_s: (cpu1 - cpu0) / wall,
        encoder_cpu_per_s: enc0.zip(enc1).map(|(a, b)| (b - a) / wall),
        frames_captured: u64::from(shared.frames_in_window.load(Ordering::Relaxed)),
        rendered_fps_per_subscriber: rendered_frames as f64 / wall / opts.subscribers as f64,
        unreadable_frames: unreadable,
    })
}
