//! Measuring core of `streamwire bench impairment`: the `bench latency` publisher (painted
//! frame counter, 1280x720@30 + Opus test tone) and one subscriber joined through the embedded
//! signalling server on 127.0.0.1, with the network impaired per cell:
//!
//! * random loss: an nftables rule dropping `loss` % of the UDP datagrams arriving on every
//!   interface of the namespace, so both directions lose (media, NACKs, retransmissions,
//!   RTCP). Only in a network namespace this process is alone in
//!   ([`streamwire::impair::check_private_namespace`]); it refuses to run anywhere else.
//! * `--burst`: the same mean loss as Gilbert–Elliott bursts (mean burst 4 packets) at the
//!   subscriber's `nicesrc`s, instead of the nftables rule (so only the media direction loses).
//! * jitter: a `netsim` between each of the subscriber's transports and its `rtpbin`, delaying
//!   every RTP packet by a uniform random 0..=`jitter` ms (RTCP is not delayed).
//!
//! Per cell: frames painted vs frames decoded with a readable counter (%), freezes and their
//! duration (webrtc-stats definition, at the subscriber's decoder output), rendered latency
//! (capture to the clock-synchronised sink), concealed audio (% of the decoded samples) and the
//! repair overhead (RTX + FEC bytes the publisher sent ÷ its media bytes), all over the
//! measuring window. The subscriber uses the default (adaptive) jitter buffer.
//!
//! With [`ImpairmentOptions::reference`] (the default) every cell without jitter is then
//! measured again with the gst-plugins-rs `webrtcsink` → `webrtcsrc` pair under the same
//! impairment (`impairment_reference`, feature `reference-pair`). Cells with jitter are not:
//! with the `netsim` behind its transport the reference subscriber decoded nothing.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use gst::prelude::*;

use super::latency::{
    BenchError, FirstFrame, LatencyOptions, Summary, measure_from, start, subscriber_config,
    summarize,
};
use streamwire::encoder::Codec;
use streamwire::impair::{BurstLoss, ReceiveImpairment};
use streamwire::webrtc::MediaKind;
use streamwire::webrtc::repair::DirectionCounts;

/// Mean length (packets) of a `--burst` loss burst.
pub const MEAN_BURST_PACKETS: f64 = 4.0;

/// What to measure.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ImpairmentOptions {
    /// Loss of each cell (%).
    pub loss_pct: Vec<u32>,
    /// Jitter of each cell (ms).
    pub jitter_ms: Vec<u32>,
    /// Loss in bursts (Gilbert–Elliott) at the subscriber instead of random nftables loss.
    pub burst: bool,
    /// Video codec.
    pub codec: Codec,
    /// Measuring window per cell (s), after a 3 s warm-up.
    pub seconds: f64,
    /// Frame size and rate.
    pub width: i32,
    /// Frame height.
    pub height: i32,
    /// Frames per second.
    pub fps: i32,
    /// Also measure the gst-plugins-rs `webrtcsink` → `webrtcsrc` pair in every cell (see
    /// `impairment_reference`; needs the `reference-pair` feature), right after the
    /// Streamwire pair.
    pub reference: bool,
}

impl Default for ImpairmentOptions {
    /// The cells: loss 0, 2, 5, 10 %, jitter 0, 20, 50 ms, VP8 1280x720@30, 20 s.
    fn default() -> Self {
        ImpairmentOptions {
            loss_pct: vec![0, 2, 5, 10],
            jitter_ms: vec![0, 20, 50],
            burst: false,
            codec: Codec::Vp8,
            seconds: 20.0,
            width: 1280,
            height: 720,
            fps: 30,
            reference: true,
        }
    }
}

/// Result of one cell.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CellReport {
    /// Which stack was measured: `streamwire`, or the reference pair
    /// (`webrtcsink-webrtcsrc`, see `impairment_reference`).
    pub stack: &'static str,
    /// Loss applied (%).
    pub loss_pct: u32,
    /// Jitter applied (ms).
    pub jitter_ms: u32,
    /// Loss in bursts.
    pub burst: bool,
    /// Frames painted (captured) during the window.
    pub frames_painted: u64,
    /// Frames decoded with a readable counter during the window.
    pub frames_decoded: u64,
    /// `frames_decoded` ÷ `frames_painted` (%).
    pub frames_decoded_pct: f64,
    /// Freezes during the window.
    pub freezes: u64,
    /// Their total duration (ms).
    pub freeze_ms: f64,
    /// Capture to rendered (ms).
    pub rendered: Summary,
    /// Concealed share of the decoded audio samples during the window (%).
    pub audio_concealed_pct: Option<f64>,
    /// RTX + FEC bytes ÷ media bytes the publisher sent during the window (%).
    pub overhead_pct: Option<f64>,
    /// RTX packets the publisher sent during the window.
    pub rtx_packets: u64,
    /// FEC packets the publisher sent during the window.
    pub fec_packets: u64,
    /// Subscriber jitter-buffer latency at the end of the window (ms).
    pub jitter_buffer_ms: Option<u32>,
}

impl ImpairmentOptions {
    /// The `bench latency` options of one cell's pair: one subscriber, a 3 s warm-up, UDP-only
    /// ICE (the loss drops UDP; a TCP pair would carry the media without a loss).
    pub(crate) fn latency_options(&self) -> LatencyOptions {
        LatencyOptions {
            subscribers: 1,
            codec: self.codec,
            width: self.width,
            height: self.height,
            fps: self.fps,
            seconds: self.seconds,
            warmup_seconds: 3.0,
            ice_tcp: false,
            ..LatencyOptions::default()
        }
    }
}

/// What a cell measured, the same way for either stack.
pub(crate) struct Measured {
    pub(crate) painted: u64,
    pub(crate) decoded: u64,
    pub(crate) freezes: u64,
    pub(crate) freeze_ms: f64,
    pub(crate) rendered: Summary,
    pub(crate) audio_concealed_pct: Option<f64>,
    /// What the publisher sent during the window.
    pub(crate) sent: Option<DirectionCounts>,
    pub(crate) jitter_buffer_ms: Option<u32>,
}

impl CellReport {
    /// The report of `stack` for the cell (`loss`, `jitter`) of `opts`.
    pub(crate) fn new(
        stack: &'static str,
        opts: &ImpairmentOptions,
        (loss, jitter): (u32, u32),
        m: Measured,
    ) -> CellReport {
        CellReport {
            stack,
            loss_pct: loss,
            jitter_ms: jitter,
            burst: opts.burst,
            frames_painted: m.painted,
            frames_decoded: m.decoded,
            frames_decoded_pct: if m.painted > 0 {
                100.0 * m.decoded as f64 / m.painted as f64
            } else {
                0.0
            },
            freezes: m.freezes,
            freeze_ms: m.freeze_ms,
            rendered: m.rendered,
            audio_concealed_pct: m.audio_concealed_pct,
            overhead_pct: m
                .sent
                .filter(|d| d.media_bytes > 0)
                .map(|d| d.overhead_pct()),
            rtx_packets: m.sent.map_or(0, |d| d.rtx_packets),
            fec_packets: m.sent.map_or(0, |d| d.fec_packets),
            jitter_buffer_ms: m.jitter_buffer_ms,
        }
    }
}

fn check(opts: &ImpairmentOptions) -> Result<(), BenchError> {
    if opts.loss_pct.is_empty() || opts.jitter_ms.is_empty() {
        return Err(BenchError::Run(
            "need at least one loss and one jitter value".into(),
        ));
    }
    if let Some(l) = opts.loss_pct.iter().find(|l| **l > 50) {
        return Err(BenchError::Run(format!("--loss {l}: at most 50 %")));
    }
    if let Some(j) = opts.jitter_ms.iter().find(|j| **j > 500) {
        return Err(BenchError::Run(format!("--jitter-ms {j}: at most 500 ms")));
    }
    Ok(())
}

/// Run every cell (loss × jitter), one after the other, each with a fresh publisher,
/// subscriber and signalling server, for Streamwire and (with `reference`) then for the
/// reference pair under the same impairment. Needs a private network namespace (see the module
/// documentation); the loss rule is removed at the end.
pub fn run(opts: &ImpairmentOptions) -> Result<Vec<CellReport>, BenchError> {
    check(opts)?;
    let ns = |e: streamwire::impair::ImpairError| BenchError::Run(e.to_string());
    streamwire::impair::check_private_namespace().map_err(ns)?;
    streamwire::impair::loopback_up().map_err(ns)?;
    let mut out = Vec::new();
    let result = (|| -> Result<(), BenchError> {
        for &loss in &opts.loss_pct {
            for &jitter in &opts.jitter_ms {
                out.push(cell(opts, loss, jitter)?);
                if opts.reference && jitter > 0 {
                    // Measured, the reference subscriber decoded nothing once the jitter's
                    // `netsim` sat in its receive path: a figure of the harness, not of the pair.
                    eprintln!(
                        "note: the reference pair is not measured with jitter (loss {loss} %, \
                         jitter {jitter} ms): webrtcsrc's stream does not survive the netsim"
                    );
                } else if opts.reference {
                    out.push(reference_cell(opts, loss, jitter)?);
                }
            }
        }
        Ok(())
    })();
    let cleared = streamwire::impair::random_loss(0).map_err(ns);
    result?;
    cleared?;
    Ok(out)
}

#[cfg(feature = "reference-pair")]
fn reference_cell(
    opts: &ImpairmentOptions,
    loss: u32,
    jitter: u32,
) -> Result<CellReport, BenchError> {
    super::impairment_reference::cell(opts, loss, jitter, impairment(opts, loss, jitter))
}

#[cfg(not(feature = "reference-pair"))]
fn reference_cell(_: &ImpairmentOptions, _: u32, _: u32) -> Result<CellReport, BenchError> {
    Err(BenchError::Run(
        "built without the `reference-pair` feature: pass --no-reference".into(),
    ))
}

/// What the subscriber of a cell gets on its `nicesrc`s (the random loss is the namespace's
/// nftables rule, set per cell).
fn impairment(opts: &ImpairmentOptions, loss: u32, jitter: u32) -> ReceiveImpairment {
    ReceiveImpairment {
        burst: (opts.burst && loss > 0)
            .then(|| BurstLoss::with_mean_loss(f64::from(loss), MEAN_BURST_PACKETS)),
        jitter_ms: jitter,
    }
}

fn cell(opts: &ImpairmentOptions, loss: u32, jitter: u32) -> Result<CellReport, BenchError> {
    let ns = |e: streamwire::impair::ImpairError| BenchError::Run(e.to_string());
    let lopts = opts.latency_options();
    // Joins and the warm-up happen under the impairment too, as on a real path.
    let imp = impairment(opts, loss, jitter);
    streamwire::impair::random_loss(if opts.burst { 0 } else { loss }).map_err(ns)?;
    let (room, shared, publisher) = start(&lopts)?;
    let first = Arc::new(FirstFrame::default());
    let on = {
        let (shared, f) = (shared.clone(), first.clone());
        Arc::new(move |r| shared.record(&f, r))
    };
    let mut cfg = subscriber_config(
        &room.url,
        &room.token("sub0")?,
        None,
        &shared.clock,
        on,
        None,
    );
    cfg.ice_tcp = false;
    first.start();
    let (sub, _events) = room
        .rt
        .block_on(streamwire::session::Session::join(cfg))
        .map_err(|e| BenchError::Run(format!("subscriber join: {e}")))?;
    let impaired =
        streamwire::impair::impair_receiver(sub.pipeline().upcast_ref::<gst::Bin>(), imp);
    let result = (|| {
        // The ids each side knows the other by.
        let ids = |s: &streamwire::session::Session| room.rt.block_on(s.peers());
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let (pub_id, sub_id) = loop {
            if let (Some(p), Some(s)) =
                (ids(&sub).first().cloned(), ids(&publisher).first().cloned())
            {
                break (p, s);
            }
            if std::time::Instant::now() > deadline {
                return Err(BenchError::Run(
                    "the peers did not see each other in 30 s".into(),
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let snapshot = || {
            let v = sub.subscriber().counters(&pub_id, MediaKind::Video);
            let a = sub.subscriber().counters(&pub_id, MediaKind::Audio);
            let r = room.rt.block_on(publisher.repair_counters(&sub_id));
            (v, a, r)
        };
        // `measure` waits for the first frame and warms up before it opens the window; the
        // counters are read right around the window.
        let before = Arc::new(parking_lot::Mutex::new(None));
        let window = {
            let before = before.clone();
            let snap = &snapshot;
            measure_with(&lopts, &shared, &first, move || {
                *before.lock() = Some(snap())
            })?
        };
        let (v1, a1, r1) = snapshot();
        let (v0, a0, r0) = before
            .lock()
            .take()
            .ok_or_else(|| BenchError::Run("no counters at the window's start".into()))?;
        if (imp.burst.is_some() || jitter > 0) && impaired.load(Ordering::Relaxed) == 0 {
            return Err(BenchError::Run(
                "the subscriber's transport appeared before the impairment was hooked".into(),
            ));
        }
        let painted = u64::from(shared.frames_in_window.load(Ordering::Relaxed));
        let decoded = window;
        let samples = a1.samples.saturating_sub(a0.samples);
        let concealed = a1.concealed_samples.saturating_sub(a0.concealed_samples);
        let sent = r0.zip(r1).map(|(r0, r1)| r1.sent - r0.sent);
        let jb = room
            .rt
            .block_on(sub.repair_counters(&pub_id))
            .and_then(|c| c.jitter_latency_ms.iter().max().copied());
        Ok(CellReport::new(
            "streamwire",
            opts,
            (loss, jitter),
            Measured {
                painted,
                decoded,
                freezes: v1.freezes.saturating_sub(v0.freezes),
                freeze_ms: (v1.freeze_ms - v0.freeze_ms).max(0.0),
                rendered: summarize(std::mem::take(&mut *shared.rendered.lock())),
                audio_concealed_pct: (samples > 0)
                    .then(|| 100.0 * concealed as f64 / samples as f64),
                sent,
                jitter_buffer_ms: jb,
            },
        ))
    })();
    room.rt.block_on(async {
        sub.leave().await;
        publisher.leave().await;
    });
    result
}

/// [`measure_from`] for one subscriber, calling `at_start` as the window opens; the frames
/// the subscriber decoded (readable) in the window.
fn measure_with(
    opts: &LatencyOptions,
    shared: &super::latency::Shared,
    first: &Arc<FirstFrame>,
    at_start: impl FnOnce(),
) -> Result<u64, BenchError> {
    let w = measure_from(opts, shared, std::slice::from_ref(first), at_start)?;
    Ok(u64::from(w.min_frames))
}
