//! Recording what a [`Subscriber`](super::subscriber::Subscriber) receives
//! ([`VideoOutput::Record`](super::subscriber::VideoOutput::Record)): the audio and video of
//! each remote peer, as sent (no re-encoding), in one Matroska file.
//!
//! ```text
//! webrtcbin src (VP8/H264) -> depay [-> h264parse] -> queue -> matroskamux -> filesink
//! webrtcbin src (OPUS)     -> rtpopusdepay         -> queue ----^ (offset-to-zero)
//!              (sender time ^ restamped entering the depayloader)
//! ```
//! - **One file per peer connection.** The first track of a peer creates `<peer>.mkv` (or
//!   `<peer>-N.mkv` when that exists: a recording is never overwritten, so a member who leaves
//!   and rejoins gets a second file) with one muxer pad per track the peer's session
//!   description announces, so the muxer writes both tracks from their start.
//! - **The sender's clock.** Each packet is stamped with its capture time on the sender's
//!   clock (its RTP time through the sender's RTCP reports, [`super::sender_time`]), not its
//!   arrival, so a frame sent or delivered late keeps its place beside the audio.
//! - **Timestamps from zero**, audio and video on one timeline (`offset-to-zero`). The first
//!   buffer of each track waits (at most [`TRACK_WAIT`]) for the first of the others, and a
//!   track that starts later has its first buffer moved to the earliest start, so every track
//!   starts at 0 and the duration the muxer writes (the longest track) is where the content
//!   ends.
//! - **Frame rate.** RTP does not carry it: the RTP timestamps of the first [`RATE_FRAMES`]
//!   frames are timed (waiting at most [`RATE_WAIT`]) and the rate goes into the track header,
//!   rounded to an integer rate within [`RATE_TOLERANCE`] (or N×1000/1001 when that fits
//!   clearly better); without such a rate the header has none.
//! - **A track that does not come.** A track the description announces but that has not
//!   started [`TRACK_WAIT`] after the first one is left out of the file (its pad is ended), so
//!   the muxer writes the others; a track starting later goes to a new file.
//! - **Finished files.** When the peer leaves ([`Subscriber::detach`]), every track is ended
//!   and the muxer writes the duration and the index (waiting at most [`FINISH_WAIT`]). A
//!   recorder that is killed leaves a file without them that still plays (Matroska is written
//!   cluster by cluster).
//!
//! ```no_run
//! use streamwire::webrtc::subscriber::{Subscriber, SubscriberConfig, VideoOutput};
//! // Every peer attached to this subscriber is recorded to recordings/<peer>.mkv.
//! let (subscriber, _events) = Subscriber::new(SubscriberConfig {
//!     video: VideoOutput::Record("recordings".into()),
//!     ..SubscriberConfig::default()
//! })?;
//! # Ok::<(), streamwire::webrtc::WebrtcError>(())
//! ```
//!
//! [`Subscriber::detach`]: super::subscriber::Subscriber::detach

use parking_lot::{Condvar, Mutex};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use gst::prelude::*;

use super::sender_time::{self, SenderClock};
use super::{MediaKind, WebrtcError, make};

/// How long a recording waits for a track its peer announced before writing without it.
pub const TRACK_WAIT: Duration = Duration::from_secs(5);
/// Frames timed to measure a video track's frame rate.
pub const RATE_FRAMES: usize = 8;
/// How far (relative) a measured frame rate may be from the integer rate it is rounded to.
pub const RATE_TOLERANCE: f64 = 0.01;
/// Longest wait for those frames before the rate is taken from the frames seen (or left out).
pub const RATE_WAIT: Duration = Duration::from_secs(1);
/// Longest wait for the muxer to finish a file when its peer leaves.
pub const FINISH_WAIT: Duration = Duration::from_secs(5);

/// One file being written.
struct Recording {
    mux: gst::Element,
    sink: gst::Element,
    /// Muxer pads no track has been linked to yet.
    pending: Vec<(MediaKind, gst::Pad)>,
    /// Branches whose track ended (m-line inactive), kept until the file is finished.
    retired: Vec<Vec<gst::Element>>,
    /// Signalled when the file sink sees end-of-stream.
    done: Arc<(Mutex<bool>, Condvar)>,
    /// The tracks' common start.
    start: Arc<(Mutex<Start>, Condvar)>,
    /// The sender's clock the tracks are stamped on.
    clock: Arc<SenderClock>,
}

/// The first buffers of a recording's tracks.
#[derive(Default)]
struct Start {
    /// Tracks the file was made for.
    expected: usize,
    /// Running times of the first buffers seen.
    firsts: Vec<gst::ClockTime>,
    /// Tracks ended before their first buffer.
    ended: usize,
    /// No more waiting (the common start is fixed, or the file is being finished).
    fixed: bool,
}

/// The recordings of a subscriber, by peer.
pub(super) struct Recorder {
    dir: PathBuf,
    by_peer: Mutex<HashMap<String, Vec<Recording>>>,
}

impl Recorder {
    pub(super) fn new(dir: PathBuf) -> Arc<Self> {
        Arc::new(Recorder {
            dir,
            by_peer: Mutex::new(HashMap::new()),
        })
    }

    /// Link a new track of `peer` (its branch runs from `head`, the depayloader, to `tail`,
    /// added to `bin`) into the peer's recording, starting a file when the peer has none with a
    /// free pad of `kind`. Returns the path of a file it started.
    pub(super) fn attach(
        self: &Arc<Self>,
        bin: &gst::Bin,
        webrtcbin: Option<&gst::Element>,
        peer: &str,
        kind: MediaKind,
        (head, tail): (&gst::Element, &gst::Element),
    ) -> Result<Option<PathBuf>, WebrtcError> {
        let src = tail
            .static_pad("src")
            .ok_or_else(|| WebrtcError::MissingElement("record queue src pad".into()))?;
        let mut map = self.by_peer.lock();
        let list = map.entry(peer.to_owned()).or_default();
        let free = list.iter_mut().find_map(|r| {
            let i = r.pending.iter().position(|(k, _)| *k == kind)?;
            Some(r.pending.remove(i).1)
        });
        let (pad, started) = match free {
            Some(pad) => (pad, None),
            None => {
                let mut kinds = webrtcbin.map(announced_kinds).unwrap_or_default();
                if let Some(i) = kinds.iter().position(|k| *k == kind) {
                    kinds.remove(i);
                }
                let path = free_path(&self.dir, peer);
                let (rec, pad) = start_file(bin, &path, kind, &kinds)?;
                if !rec.pending.is_empty() {
                    self.end_pending_later(peer, &rec.mux);
                }
                rec.mux
                    .sync_state_with_parent()
                    .and(rec.sink.sync_state_with_parent())
                    .map_err(|e| WebrtcError::State(format!("starting the recording: {e}")))?;
                list.push(rec);
                (pad, Some(path))
            }
        };
        if let Some(rec) = list
            .iter()
            .find(|r| pad.parent_element().as_ref() == Some(&r.mux))
        {
            if let Some(webrtcbin) = webrtcbin {
                sender_time::enable(webrtcbin);
            }
            if let Some(sink) = head.static_pad("sink") {
                sender_time::restamp(&sink, rec.clock.clone());
            }
            common_start(&src, rec.start.clone());
        }
        src.link(&pad).map_err(|e| WebrtcError::Link {
            what: format!("{} track to the recording", kind.as_str()),
            detail: format!("{e:?}"),
        })?;
        Ok(started)
    }

    /// After [`TRACK_WAIT`], end the pads of `mux` that no track has taken.
    fn end_pending_later(self: &Arc<Self>, peer: &str, mux: &gst::Element) {
        let clock = gst::SystemClock::obtain();
        let wait = u64::try_from(TRACK_WAIT.as_nanos()).unwrap_or(u64::MAX);
        let at = clock.time() + gst::ClockTime::from_nseconds(wait);
        let weak: Weak<Recorder> = Arc::downgrade(self);
        let mux = mux.downgrade();
        let peer = peer.to_owned();
        let id = clock.new_single_shot_id(at);
        let scheduled = id.wait_async(move |_, _, _| {
            let (Some(rec), Some(mux)) = (weak.upgrade(), mux.upgrade()) else {
                return;
            };
            let pads: Vec<gst::Pad> = {
                let mut map = rec.by_peer.lock();
                let Some(r) = map
                    .get_mut(&peer)
                    .and_then(|l| l.iter_mut().find(|r| r.mux == mux))
                else {
                    return;
                };
                let pads: Vec<gst::Pad> = r.pending.drain(..).map(|(_, p)| p).collect();
                r.start.0.lock().ended += pads.len();
                r.start.1.notify_all();
                pads
            };
            for p in pads {
                tracing::info!(peer = %peer, pad = %p.name(), "recording without a track that did not start");
                p.send_event(gst::event::Eos::new());
            }
        });
        if let Err(e) = scheduled {
            tracing::warn!("cannot schedule the recording's track wait: {e}");
        }
    }

    /// A track of `peer` ended while the peer stays (its branch `els`, already unlinked from
    /// webrtcbin): end its muxer pad; the branch is torn down when the file is finished.
    pub(super) fn retire(&self, peer: &str, els: Vec<gst::Element>) {
        end_branch(&els);
        let mut map = self.by_peer.lock();
        let tail_peer = els
            .last()
            .and_then(|e| e.static_pad("src"))
            .and_then(|p| p.peer())
            .and_then(|p| p.parent_element());
        let rec = map.get_mut(peer).and_then(|l| {
            l.iter_mut()
                .find(|r| tail_peer.as_ref().is_some_and(|m| *m == r.mux))
        });
        match rec {
            Some(r) => r.retired.push(els),
            None => stop(&els),
        }
    }

    /// `peer` left: end every track of its recordings (`branches`, already unlinked from
    /// webrtcbin, and the pads still waiting for one), let the muxer write the duration and
    /// index, then remove the recording elements. The caller removes `branches` afterwards.
    pub(super) fn finish(&self, peer: &str, branches: &[Vec<gst::Element>]) {
        let recs = self.by_peer.lock().remove(peer).unwrap_or_default();
        for els in branches {
            end_branch(els);
        }
        for r in &recs {
            r.start.0.lock().fixed = true;
            r.start.1.notify_all();
            for (_, p) in &r.pending {
                p.send_event(gst::event::Eos::new());
            }
        }
        let deadline = Instant::now() + FINISH_WAIT;
        for r in recs {
            let (done, cv) = &*r.done;
            let mut d = done.lock();
            while !*d {
                if cv.wait_until(&mut d, deadline).timed_out() {
                    tracing::warn!(peer = %peer, "the recording was not finished within {FINISH_WAIT:?}");
                    break;
                }
            }
            drop(d);
            for els in &r.retired {
                stop(els);
            }
            stop(&[r.mux, r.sink]);
        }
    }
}

/// Send end-of-stream into a branch (its first element), so what it holds reaches the muxer.
fn end_branch(els: &[gst::Element]) {
    if let Some(sink) = els.first().and_then(|e| e.static_pad("sink")) {
        sink.send_event(gst::event::Eos::new());
    }
}

/// Stop `els` and remove them from their bin.
fn stop(els: &[gst::Element]) {
    for e in els {
        let _ = e.set_state(gst::State::Null);
        if let Some(bin) = e.parent().and_then(|p| p.downcast::<gst::Bin>().ok()) {
            let _ = bin.remove(e);
        }
    }
}

/// `<dir>/<name>.mkv`, or `<dir>/<name>-N.mkv` (N = 2, 3, ...) for the first that does not
/// exist (`name` made file-safe: ASCII letters, digits, `-` and `_` kept, anything else `_`).
///
/// ```
/// let dir = std::env::temp_dir().join("streamwire-free-path-doc");
/// let p = streamwire::webrtc::recording::free_path(&dir, "peer/1");
/// assert_eq!(p, dir.join("peer_1.mkv"));
/// ```
pub fn free_path(dir: &Path, peer: &str) -> PathBuf {
    let safe = file_safe(peer);
    let first = dir.join(format!("{safe}.mkv"));
    if !first.exists() {
        return first;
    }
    (2u64..)
        .map(|n| dir.join(format!("{safe}-{n}.mkv")))
        .find(|p| !p.exists())
        .unwrap_or(first)
}

/// A peer id as a file name: ASCII letters, digits, `-` and `_` kept, anything else `_`.
fn file_safe(peer: &str) -> String {
    peer.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The kinds of the tracks a peer's remote description says it sends (`sendrecv`/`sendonly`
/// m-lines that are not rejected), in m-line order.
fn announced_kinds(webrtcbin: &gst::Element) -> Vec<MediaKind> {
    let Some(desc) =
        webrtcbin.property::<Option<gst_webrtc::WebRTCSessionDescription>>("remote-description")
    else {
        return Vec::new();
    };
    desc.sdp()
        .medias()
        // Port 0 is a rejected m-line, unless it is bundled (`bundle-only`, max-bundle offers).
        .filter(|m| m.port() != 0 || m.attributes().any(|a| a.key() == "bundle-only"))
        .filter(|m| {
            !m.attributes()
                .any(|a| a.key() == "recvonly" || a.key() == "inactive")
        })
        .filter_map(|m| m.media().and_then(MediaKind::from_sdp))
        .collect()
}

/// A muxer and file sink for `path` in `bin` (not started), with a pad for the first track
/// (`first`, returned) and one waiting for each of `others`.
fn start_file(
    bin: &gst::Bin,
    path: &Path,
    first: MediaKind,
    others: &[MediaKind],
) -> Result<(Recording, gst::Pad), WebrtcError> {
    let mux = make("matroskamux")?;
    // Not streamable: the duration and the index are written when the file is finished.
    mux.set_property("streamable", false);
    mux.set_property("offset-to-zero", true);
    let sink = make("filesink")?;
    sink.set_property("location", path);
    sink.set_property("async", false);
    let done = eos_flag(&sink);
    let request = |kind: MediaKind| {
        let template = match kind {
            MediaKind::Audio => "audio_%u",
            MediaKind::Video => "video_%u",
        };
        mux.request_pad_simple(template)
            .ok_or_else(|| WebrtcError::Link {
                what: "recording".into(),
                detail: format!("matroskamux gave no {template} pad"),
            })
    };
    let first_pad = request(first)?;
    let start = Arc::new((
        Mutex::new(Start {
            expected: 1 + others.len(),
            ..Start::default()
        }),
        Condvar::new(),
    ));
    let pending = others
        .iter()
        .map(|k| Ok((*k, request(*k)?)))
        .collect::<Result<Vec<_>, WebrtcError>>()?;
    bin.add_many([&mux, &sink])
        .map_err(|e| WebrtcError::State(format!("adding the recording: {e}")))?;
    mux.link(&sink).map_err(|e| WebrtcError::Link {
        what: "matroskamux to filesink".into(),
        detail: e.to_string(),
    })?;
    Ok((
        Recording {
            mux,
            sink,
            pending,
            retired: Vec::new(),
            done,
            start,
            clock: Arc::default(),
        },
        first_pad,
    ))
}

/// A flag set (and signalled) when `sink` sees end-of-stream: the file is finished.
pub(super) fn eos_flag(sink: &gst::Element) -> Arc<(Mutex<bool>, Condvar)> {
    let done = Arc::new((Mutex::new(false), Condvar::new()));
    if let Some(p) = sink.static_pad("sink") {
        let done = done.clone();
        p.add_probe(gst::PadProbeType::EVENT_DOWNSTREAM, move |_, info| {
            if let Some(gst::PadProbeData::Event(ev)) = &info.data
                && ev.type_() == gst::EventType::Eos
            {
                *done.0.lock() = true;
                done.1.notify_all();
            }
            gst::PadProbeReturn::Ok
        });
    }
    done
}

/// On the first buffer leaving `src` (a track's queue): wait until every track of the
/// recording has its first buffer (or [`TRACK_WAIT`]), then move this one to the earliest
/// start if it starts later. A track whose first buffer comes after the start was fixed
/// keeps its timestamps.
fn common_start(src: &gst::Pad, start: Arc<(Mutex<Start>, Condvar)>) {
    src.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
        let Some(segment) = pad
            .sticky_event::<gst::event::Segment>(0)
            .and_then(|e| e.segment().clone().downcast::<gst::ClockTime>().ok())
        else {
            return gst::PadProbeReturn::Remove;
        };
        let Some(gst::PadProbeData::Buffer(buf)) = &mut info.data else {
            return gst::PadProbeReturn::Ok;
        };
        let Some(rt) = buf.pts().and_then(|p| segment.to_running_time(p)) else {
            return gst::PadProbeReturn::Ok;
        };
        let (state, cv) = &*start;
        let mut st = state.lock();
        if st.fixed {
            return gst::PadProbeReturn::Remove;
        }
        st.firsts.push(rt);
        cv.notify_all();
        let deadline = Instant::now() + TRACK_WAIT;
        while !st.fixed && st.firsts.len() + st.ended < st.expected {
            if cv.wait_until(&mut st, deadline).timed_out() {
                break;
            }
        }
        st.fixed = true;
        cv.notify_all();
        let earliest = st.firsts.iter().min().copied().unwrap_or(rt);
        drop(st);
        if earliest < rt
            && let Some(pts) = segment.position_from_running_time(earliest)
        {
            let b = buf.make_mut();
            let moved = rt - earliest;
            b.set_pts(pts);
            if let Some(dts) = b.dts() {
                b.set_dts(dts.checked_sub(moved));
            }
            if let Some(d) = b.duration() {
                b.set_duration(d + moved);
            }
        }
        gst::PadProbeReturn::Remove
    });
}

/// The queue between a recorded track and the muxer: it holds the track while the frame
/// rate is measured and while the muxer waits for the peer's other tracks
/// ([`RATE_WAIT`] + [`TRACK_WAIT`], plus a second).
///
/// Bounded in buffers and bytes, not time: a queue's time level is measured from its source
/// side's position, which is still the segment start while it holds its first buffer, so a
/// peer that joins a long-running pipeline (running time already past the limit) would fill
/// a time-bounded queue with its first frame and stall the very frames the rate is measured
/// from.
pub(super) fn record_queue() -> Result<gst::Element, WebrtcError> {
    /// Buffers a held second can bring: 60 fps video or 50 Opus packets per second, twice over.
    const BUFFERS_PER_SECOND: u64 = 120;
    /// Bytes a held second can bring: 8 Mbit/s.
    const BYTES_PER_SECOND: u64 = 1_000_000;
    let hold = (RATE_WAIT + TRACK_WAIT + Duration::from_secs(1)).as_secs();
    let q = make("queue")?;
    q.set_property("max-size-time", 0u64);
    q.set_property(
        "max-size-buffers",
        u32::try_from(hold * BUFFERS_PER_SECOND).unwrap_or(u32::MAX),
    );
    q.set_property(
        "max-size-bytes",
        u32::try_from(hold * BYTES_PER_SECOND).unwrap_or(u32::MAX),
    );
    Ok(q)
}

/// What the frame-rate probes share.
#[derive(Default)]
struct RateState {
    /// Distinct RTP timestamps, unwrapped relative to the first.
    stamps: Vec<i64>,
    first: Option<u32>,
    clock_rate: u32,
    done: bool,
    rate: Option<gst::Fraction>,
    /// The first caps went out (with the rate, if there was one).
    caps_sent: bool,
}

impl RateState {
    fn estimate(&self) -> Option<gst::Fraction> {
        frame_rate(&self.stamps, self.clock_rate)
    }
}

/// Time the RTP timestamps of the first frames entering `depay` and put their rate into the
/// caps `queue` (the branch's last element) sends on: the first caps wait for it, at most
/// [`RATE_WAIT`], while the queue holds the frames.
pub(super) fn add_framerate(depay: &gst::Element, queue: &gst::Element) {
    let (Some(rtp), Some(src)) = (depay.static_pad("sink"), queue.static_pad("src")) else {
        return;
    };
    let shared = Arc::new((Mutex::new(RateState::default()), Condvar::new()));
    let s = shared.clone();
    rtp.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
        let (state, cv) = &*s;
        let mut st = state.lock();
        if st.done {
            return gst::PadProbeReturn::Remove;
        }
        if st.clock_rate == 0 {
            st.clock_rate = pad
                .current_caps()
                .and_then(|c| c.structure(0)?.get::<i32>("clock-rate").ok())
                .and_then(|r| u32::try_from(r).ok())
                .unwrap_or(90_000);
        }
        let Some(ts) = info
            .buffer()
            .and_then(|b| gst_rtp::RTPBuffer::from_buffer_readable(b).ok())
            .map(|r| r.timestamp())
        else {
            return gst::PadProbeReturn::Ok;
        };
        let first = *st.first.get_or_insert(ts);
        let rel = i64::from(ts.wrapping_sub(first) as i32);
        if !st.stamps.contains(&rel) {
            st.stamps.push(rel);
        }
        if st.stamps.len() >= RATE_FRAMES {
            st.rate = st.estimate();
            st.done = true;
            cv.notify_all();
            return gst::PadProbeReturn::Remove;
        }
        gst::PadProbeReturn::Ok
    });
    src.add_probe(gst::PadProbeType::EVENT_DOWNSTREAM, move |pad, info| {
        let Some(gst::PadProbeData::Event(ev)) = &info.data else {
            return gst::PadProbeReturn::Ok;
        };
        let gst::EventView::Caps(c) = ev.view() else {
            return gst::PadProbeReturn::Ok;
        };
        let caps = c.caps_owned();
        let known = caps
            .structure(0)
            .and_then(|s| s.get::<gst::Fraction>("framerate").ok())
            .is_some_and(|f| f.numer() > 0);
        if known {
            return gst::PadProbeReturn::Ok;
        }
        let (rate, first) = {
            let (state, cv) = &*shared;
            let mut st = state.lock();
            let deadline = Instant::now() + RATE_WAIT;
            while !st.done && !cv.wait_until(&mut st, deadline).timed_out() {}
            if !st.done {
                st.rate = st.estimate();
                st.done = true;
            }
            let first = !st.caps_sent;
            st.caps_sent = true;
            (st.rate, first)
        };
        if let Some(rate) = rate {
            // Frames without a duration last one frame, so the file ends where they do.
            let frame = u64::try_from(rate.numer())
                .ok()
                .zip(u64::try_from(rate.denom()).ok())
                .and_then(|(n, d)| gst::ClockTime::SECOND.mul_div_floor(d, n));
            if let (true, Some(frame)) = (first, frame) {
                pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
                    if let Some(gst::PadProbeData::Buffer(buf)) = &mut info.data
                        && buf.duration().is_none()
                    {
                        buf.make_mut().set_duration(frame);
                    }
                    gst::PadProbeReturn::Ok
                });
            }
            let mut caps = caps;
            if let Some(s) = caps.make_mut().structure_mut(0) {
                s.set("framerate", rate);
            }
            info.data = Some(gst::PadProbeData::Event(gst::event::Caps::new(&caps)));
        }
        gst::PadProbeReturn::Ok
    });
}

/// The frame rate of frames with the distinct RTP timestamps `stamps` (any order, in units
/// of `clock_rate` per second): frame intervals (of the median length; a dropped frame
/// leaves a gap of two) per second over their span, as an integer rate or
/// N×1000/1001 (see [`RATE_TOLERANCE`]); `None` with fewer than two stamps or no such rate.
fn frame_rate(stamps: &[i64], clock_rate: u32) -> Option<gst::Fraction> {
    let first = stamps.iter().min()?;
    let last = stamps.iter().max()?;
    let span = last - first;
    if span <= 0 || clock_rate == 0 {
        return None;
    }
    // Frame slots over the span, in units of the median interval: a frame the sender
    // dropped leaves a slot, jitter averages out over the span.
    let mut sorted = stamps.to_vec();
    sorted.sort_unstable();
    let mut gaps: Vec<i64> = sorted.windows(2).map(|w| w[1] - w[0]).collect();
    gaps.sort_unstable();
    let median = gaps[gaps.len() / 2] as f64;
    let slots = (span as f64 / median).round().max(1.0);
    let fps = slots * f64::from(clock_rate) / span as f64;
    let error = |target: f64| (fps - target).abs() / target;
    let n = fps.round();
    let ntsc = (fps * 1.001).round();
    let ntsc_rate = ntsc * 1000.0 / 1001.0;
    // N×1000/1001 only when it fits clearly better than N (they are 0.1 % apart).
    if ntsc >= 1.0 && error(ntsc_rate) < 0.0005 && error(ntsc_rate) < error(ntsc) {
        return Some(gst::Fraction::new(ntsc as i32 * 1000, 1001));
    }
    if n >= 1.0 && error(n) <= RATE_TOLERANCE {
        return Some(gst::Fraction::new(n as i32, 1));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RTP timestamps (90 kHz) of frames `ms` milliseconds apart.
    fn at_ms(ms: &[i64]) -> Vec<i64> {
        ms.iter().map(|m| m * 90).collect()
    }

    #[test]
    fn frame_rate_snaps_to_the_nominal_rate() {
        // 30 fps captured with a millisecond of jitter, in any order.
        let mut s: Vec<i64> = (0..8).map(|i| i * 3000 + (i % 3) * 90).collect();
        s.swap(2, 3);
        assert_eq!(frame_rate(&s, 90_000), Some(gst::Fraction::new(30, 1)));
        let s = at_ms(&[0, 40, 80, 120, 160, 200, 240, 280]);
        assert_eq!(frame_rate(&s, 90_000), Some(gst::Fraction::new(25, 1)));
        // A frame the sender dropped (no stamp at 9000) does not lower the rate.
        let s = [0, 3000, 6000, 12000, 15000, 18000, 21000, 24000];
        assert_eq!(frame_rate(&s, 90_000), Some(gst::Fraction::new(30, 1)));
        let s: Vec<i64> = (0..8).map(|i| i * 3003).collect();
        assert_eq!(
            frame_rate(&s, 90_000),
            Some(gst::Fraction::new(30000, 1001))
        );
    }

    #[test]
    fn frame_rate_needs_two_stamps_and_a_steady_rate() {
        assert_eq!(frame_rate(&[], 90_000), None);
        assert_eq!(frame_rate(&[5], 90_000), None);
        assert_eq!(frame_rate(&[0, 3000], 0), None);
        // 7 intervals over 283 ms: 24.7 fps, no integer rate within 1 %.
        let s = at_ms(&[0, 40, 80, 120, 160, 200, 240, 283]);
        assert_eq!(frame_rate(&s, 90_000), None);
        // Irregular intervals: 7 over 330 ms, 21.2 fps.
        let s = at_ms(&[0, 30, 90, 120, 170, 230, 280, 330]);
        assert_eq!(frame_rate(&s, 90_000), None);
    }

    #[test]
    fn free_path_never_reuses_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = free_path(dir.path(), "peer/1");
        assert_eq!(p, dir.path().join("peer_1.mkv"));
        std::fs::write(&p, b"x").unwrap();
        let p2 = free_path(dir.path(), "peer/1");
        assert_eq!(p2, dir.path().join("peer_1-2.mkv"));
        std::fs::write(&p2, b"x").unwrap();
        assert_eq!(
            free_path(dir.path(), "peer/1"),
            dir.path().join("peer_1-3.mkv")
        );
    }
}
