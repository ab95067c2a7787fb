//! The latency benchmark with every subscriber in its own child process, so that the
//! publisher's CPU (`getrusage(RUSAGE_SELF)` of this process) is measured alone.
//!
//! The child is the same benchmark binary started with a flag; it calls [`subscriber_child`].
//! It joins the parent's embedded signalling server as a [`Session`] (URL and token in the
//! environment variables [`URL_ENV`] and [`TOKEN_ENV`], set by [`run_separate`]), so SDP and ICE go
//! through the server exactly as in-process. Over its stdin/stdout the child only says when it is
//! ready and reports frame readings ([`FromChild`]) with CLOCK_MONOTONIC times (GStreamer's system
//! clock, the same clock in every process on the machine); the parent says when to join
//! ([`ToChild`]).

use parking_lot::Mutex;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use super::latency::{
    BenchError, FirstFrame, FrameReading, LatencyOptions, LatencyReport, measure, report, start,
    subscriber_config,
};
use streamwire::session::Session;

/// Environment variable carrying the signalling server URL to a child.
pub const URL_ENV: &str = "STREAMWIRE_BENCH_URL";
/// Environment variable carrying the child's room token.
pub const TOKEN_ENV: &str = "STREAMWIRE_BENCH_TOKEN";
/// Environment variable carrying the address a child gathers ICE on (default 127.0.0.1).
pub const ICE_ENV: &str = "STREAMWIRE_BENCH_ICE";

/// Parent to child.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
#[serde(tag = "msg", rename_all = "kebab-case")]
pub enum ToChild {
    /// Join the room now.
    Start,
}

/// Child to parent.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
#[serde(tag = "msg", rename_all = "kebab-case")]
pub enum FromChild {
    /// Initialised (GStreamer, and the DTLS certificate unless cold); waiting for `Start`.
    Ready,
    /// The join failed.
    Failed {
        /// Why.
        error: String,
    },
    /// A frame reading.
    Frame {
        /// The reading.
        reading: FrameReading,
    },
}

fn send_line(out: &Mutex<std::io::Stdout>, msg: &FromChild) {
    if let Ok(line) = serde_json::to_string(msg) {
        let mut o = out.lock();
        let _ = writeln!(o, "{line}");
        let _ = o.flush();
    }
}

/// Child side: one subscribing session, driven through stdin/stdout. Returns when stdin closes
/// (after leaving the room). `cold`: do not wait for the DTLS certificate before `Ready` (the
/// parent says `Start` at once, so the join is an application's first call).
pub fn subscriber_child(jitter_latency_ms: Option<u32>, cold: bool) -> Result<(), BenchError> {
    let env = |name: &str| {
        std::env::var(name).map_err(|_| BenchError::Run(format!("child: {name} is not set")))
    };
    let (url, token) = (env(URL_ENV)?, env(TOKEN_ENV)?);
    streamwire::gst_init::init().map_err(|e| BenchError::Init(e.to_string()))?;
    if !cold {
        super::latency::pay_dtls_certificate()?;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| BenchError::Run(format!("runtime: {e}")))?;
    let clock = gst::SystemClock::obtain();
    let out = Arc::new(Mutex::new(std::io::stdout()));
    send_line(&out, &FromChild::Ready);

    let mut session: Option<Session> = None;
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let msg: ToChild = serde_json::from_str(&line)
            .map_err(|e| BenchError::Run(format!("child: bad line `{line}`: {e}")))?;
        match msg {
            ToChild::Start if session.is_none() => {
                let on = {
                    let out = out.clone();
                    Arc::new(move |reading| send_line(&out, &FromChild::Frame { reading }))
                };
                let ice = std::env::var(ICE_ENV).ok();
                let cfg =
                    subscriber_config(&url, &token, jitter_latency_ms, &clock, on, ice.as_deref());
                match rt.block_on(Session::join(cfg)) {
                    Ok((s, _events)) => {
                        session = Some(s);
                    }
                    Err(e) => send_line(
                        &out,
                        &FromChild::Failed {
                            error: e.to_string(),
                        },
                    ),
                }
            }
            ToChild::Start => {}
        }
    }
    if let Some(s) = session {
        rt.block_on(s.leave());
    }
    Ok(())
}

struct ChildSub {
    child: Child,
    stdin: std::process::ChildStdin,
}

/// Run the benchmark with each subscriber in a child process started by `child()` (which must
/// end up calling [`subscriber_child`]; the server URL and token are added to its environment).
/// `process_cpu_per_s` is then the publisher's alone (and the embedded server's, which is idle
/// once everyone has joined).
pub fn run_separate(
    opts: &LatencyOptions,
    child: &dyn Fn() -> Command,
) -> Result<LatencyReport, BenchError> {
    let (room, shared, publisher) = start(opts)?;
    let mut subs: Vec<ChildSub> = Vec::new();
    let mut firsts = Vec::new();
    let failed: Arc<Mutex<Option<String>>> = Arc::default();
    let result = (|| {
        for i in 0..opts.subscribers {
            let mut cmd = child();
            cmd.env(URL_ENV, &room.url)
                .env(TOKEN_ENV, room.token(&format!("sub{i}"))?)
                .envs(opts.ice_address.iter().map(|a| (ICE_ENV, a)))
                .stdin(Stdio::piped())
                .stdout(Stdio::piped());
            let mut proc = cmd
                .spawn()
                .map_err(|e| BenchError::Run(format!("starting subscriber process: {e}")))?;
            let (Some(mut stdin), Some(stdout)) = (proc.stdin.take(), proc.stdout.take()) else {
                return Err(BenchError::Run("subscriber process without pipes".into()));
            };
            let first = Arc::new(FirstFrame::default());
            let (ready_tx, ready_rx) = mpsc::channel::<()>();
            {
                let (shared, first, failed) = (shared.clone(), first.clone(), failed.clone());
                std::thread::spawn(move || {
                    for line in BufReader::new(stdout).lines() {
                        let Ok(line) = line else { break };
                        match serde_json::from_str::<FromChild>(&line) {
                            Ok(FromChild::Ready) => {
                                let _ = ready_tx.send(());
                            }
                            Ok(FromChild::Frame { reading }) => shared.record(&first, reading),
                            Ok(FromChild::Failed { error }) => {
                                *failed.lock() = Some(format!("subscriber {i}: {error}"));
                            }
                            Err(_) => {}
                        }
                    }
                });
            }
            if ready_rx.recv_timeout(Duration::from_secs(60)).is_err() {
                let _ = proc.kill();
                let _ = proc.wait();
                return Err(BenchError::Run(format!(
                    "subscriber process {i} did not become ready"
                )));
            }
            first.start();
            let line = serde_json::to_string(&ToChild::Start)
                .map_err(|e| BenchError::Run(e.to_string()))?;
            let sent = writeln!(stdin, "{line}").and_then(|()| stdin.flush());
            subs.push(ChildSub { child: proc, stdin });
            sent.map_err(|e| BenchError::Run(format!("subscriber {i} stdin: {e}")))?;
            firsts.push(first);
        }
        let window = measure(opts, &shared, &firsts);
        match failed.lock().take() {
            Some(e) => Err(BenchError::Run(e)),
            None => window,
        }
    })();

    // Tear down: closing stdin makes each child leave and exit; kill any that lingers.
    room.rt.block_on(publisher.leave());
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
    let window = result?;
    Ok(report(
        LatencyOptions {
            separate_processes: true,
            ..opts.clone()
        },
        &room,
        &shared,
        &window,
    ))
}
