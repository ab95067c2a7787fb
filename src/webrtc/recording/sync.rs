//! One timeline for a recording's tracks, placed by the sender's clock.
//!
//! A recorded peer's packets are timed from their RTP timestamps (`rtpbin`
//! `buffer-mode=none`, [`stamp_from_sender`]), not from when they arrived: a frame the sender
//! sent late, or that waited for a retransmission, keeps its place. Each track's timestamps
//! then start at 0 at its first packet, so the tracks are placed against each other by when
//! the sender captured those first packets: the RTP timestamp of each track's first packet
//! mapped through that track's RTCP sender report (NTP time ↔ RTP time, RFC 3550 section
//! 6.4.1; one sender, one NTP clock). The first track waits for the reports at most
//! [`TRACK_WAIT`](super::TRACK_WAIT) (GStreamer and browsers send their first within about
//! 3 s); when a track has none by then, the tracks are placed by their first packets' arrival
//! instead (off by the difference in network and encoder delay, and logged).
//!
//! The track that starts later then has its first buffer moved to the earliest start (its
//! duration grown to match), so every track starts at 0 and the muxer's duration (the
//! longest track) is where the content ends.

use std::sync::Arc;
use std::time::{Duration, Instant};

use gst::prelude::*;
use parking_lot::{Condvar, Mutex};

use super::TRACK_WAIT;

/// How often a waiting track looks for its sender report.
const REPORT_POLL: Duration = Duration::from_millis(50);

/// Time `webrtcbin`'s received packets from the sender's RTP timestamps rather than their
/// arrival (the default, `slave`, follows arrival to keep playback latency steady; a file has
/// no latency to keep). Call before any stream exists: `rtpbin` gives the mode to each jitter
/// buffer it creates.
pub(in crate::webrtc) fn stamp_from_sender(webrtcbin: &gst::Element) {
    match rtpbin(webrtcbin) {
        Some(rtpbin) => rtpbin.set_property_from_str("buffer-mode", "none"),
        None => tracing::warn!(
            "webrtcbin has no `rtpbin` child: recorded timestamps follow packet arrival"
        ),
    }
}

fn rtpbin(webrtcbin: &gst::Element) -> Option<gst::Element> {
    webrtcbin
        .downcast_ref::<gst::Bin>()
        .and_then(|b| b.by_name("rtpbin"))
}

/// A track's first RTP packet, as it left `webrtcbin`.
#[derive(Debug, Clone, Copy)]
struct FirstPacket {
    ssrc: u32,
    rtp_time: u32,
    clock_rate: u32,
    /// Its running time (from its timestamp).
    running: i128,
    /// The pipeline's running time when it left `webrtcbin` (nanoseconds).
    arrival: i128,
}

/// Where a track's running time 0 is, on the sender's clock and on the arrival clock.
#[derive(Debug, Clone, Copy)]
struct Origin {
    sender: Option<i128>,
    arrival: i128,
}

/// The tracks of one recording file and their common timeline.
#[derive(Default)]
pub(super) struct Timeline {
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Default)]
struct State {
    /// Tracks the file was made for.
    expected: usize,
    /// First buffers seen: running time and origin.
    firsts: Vec<(i128, Origin)>,
    /// Tracks ended before their first buffer.
    ended: usize,
    /// No more waiting: the reference is fixed (or the file is being finished).
    fixed: bool,
    /// The origin every track is placed against, once fixed; `sender` only when every track
    /// had a report.
    reference: Option<Origin>,
    /// The earliest start on the common timeline, once fixed.
    earliest: i128,
}

impl Timeline {
    /// A timeline for `expected` tracks.
    pub(super) fn new(expected: usize) -> Arc<Self> {
        Arc::new(Timeline {
            state: Mutex::new(State {
                expected,
                ..State::default()
            }),
            changed: Condvar::new(),
        })
    }

    /// `n` tracks will not come.
    pub(super) fn tracks_ended(&self, n: usize) {
        self.state.lock().ended += n;
        self.changed.notify_all();
    }

    /// Stop waiting (the file is being finished).
    pub(super) fn close(&self) {
        self.state.lock().fixed = true;
        self.changed.notify_all();
    }

    /// Place the track that leaves `webrtcbin` at `rtp_src` and reaches the muxer from
    /// `src` (its queue) on this timeline.
    pub(super) fn place(self: &Arc<Self>, rtp_src: &gst::Pad, src: &gst::Pad) {
        let first = Arc::new(Mutex::new(None));
        watch_first_packet(rtp_src, first.clone());
        let webrtcbin = rtp_src.parent_element();
        let timeline = self.clone();
        // The track's shift onto the common timeline, once its first buffer passed.
        let placed: Mutex<Option<i128>> = Mutex::new(None);
        src.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
            let Some(segment) = pad
                .sticky_event::<gst::event::Segment>(0)
                .and_then(|e| e.segment().clone().downcast::<gst::ClockTime>().ok())
            else {
                return gst::PadProbeReturn::Ok;
            };
            let Some(gst::PadProbeData::Buffer(buf)) = &mut info.data else {
                return gst::PadProbeReturn::Ok;
            };
            let Some(rt) = buf.pts().and_then(|p| segment.to_running_time(p)) else {
                return gst::PadProbeReturn::Ok;
            };
            let rt = i128::from(rt.nseconds());
            let known = *placed.lock();
            let by = match known {
                Some(by) => by,
                None => {
                    let first = *first.lock();
                    let (by, earliest) = timeline.first_buffer(rt, first, webrtcbin.as_ref());
                    *placed.lock() = Some(by);
                    // A later start moves to the earliest (its first buffer lasts longer).
                    if rt + by > earliest {
                        let moved = rt + by - earliest;
                        let b = buf.make_mut();
                        if let Some(d) = b.duration() {
                            b.set_duration(d + ns(moved));
                        }
                        return shifted(b, &segment, by - moved);
                    }
                    by
                }
            };
            if by != 0 {
                return shifted(buf.make_mut(), &segment, by);
            }
            gst::PadProbeReturn::Ok
        });
    }

    /// A track's first buffer (running time `rt`): wait for the others (and the sender
    /// reports) as long as allowed, then return its shift and the earliest start.
    fn first_buffer(
        &self,
        rt: i128,
        first: Option<FirstPacket>,
        webrtcbin: Option<&gst::Element>,
    ) -> (i128, i128) {
        let deadline = Instant::now() + TRACK_WAIT;
        let arrival = first.map_or(rt, |f| f.arrival - f.running);
        let mut origin = Origin {
            sender: None,
            arrival,
        };
        let mut st = self.state.lock();
        if !st.fixed
            && let (Some(f), Some(w)) = (first, webrtcbin)
        {
            // Look for this track's report while the others arrive.
            drop(st);
            loop {
                if let Some(at) = sender_time(w, f) {
                    origin.sender = Some(at - f.running);
                    break;
                }
                if Instant::now() >= deadline || self.state.lock().fixed {
                    tracing::info!(
                        ssrc = f.ssrc,
                        "no sender report within {TRACK_WAIT:?}: the recording's tracks are placed by arrival"
                    );
                    break;
                }
                std::thread::sleep(REPORT_POLL);
            }
            st = self.state.lock();
        }
        if let Some(reference) = st.reference {
            // A track that started after the others were placed.
            return (shift(origin, reference), st.earliest);
        }
        st.firsts.push((rt, origin));
        self.changed.notify_all();
        while !st.fixed && st.firsts.len() + st.ended < st.expected {
            if self.changed.wait_until(&mut st, deadline).timed_out() {
                break;
            }
        }
        if st.reference.is_none() {
            let all_reported = st.firsts.iter().all(|(_, o)| o.sender.is_some());
            let reference = Origin {
                sender: all_reported
                    .then(|| st.firsts.iter().filter_map(|(_, o)| o.sender).min())
                    .flatten(),
                arrival: st
                    .firsts
                    .iter()
                    .map(|(_, o)| o.arrival)
                    .min()
                    .unwrap_or(arrival),
            };
            st.earliest = st
                .firsts
                .iter()
                .map(|(t, o)| t + shift(*o, reference))
                .min()
                .unwrap_or(rt);
            st.reference = Some(reference);
        }
        st.fixed = true;
        self.changed.notify_all();
        let reference = st.reference.unwrap_or(origin);
        (shift(origin, reference), st.earliest)
    }
}

/// How far a track with `origin` moves on a timeline placed against `reference`.
fn shift(origin: Origin, reference: Origin) -> i128 {
    match (origin.sender, reference.sender) {
        (Some(o), Some(r)) => o - r,
        _ => origin.arrival - reference.arrival,
    }
}

fn ns(t: i128) -> gst::ClockTime {
    gst::ClockTime::from_nseconds(u64::try_from(t.max(0)).unwrap_or(u64::MAX))
}

/// Move `b` by `by` nanoseconds of running time (never before 0).
fn shifted(
    b: &mut gst::BufferRef,
    segment: &gst::FormattedSegment<gst::ClockTime>,
    by: i128,
) -> gst::PadProbeReturn {
    let mv = |t: gst::ClockTime| -> Option<gst::ClockTime> {
        let rt = i128::from(segment.to_running_time(t)?.nseconds()) + by;
        segment.position_from_running_time(ns(rt))
    };
    if let Some(p) = b.pts() {
        b.set_pts(mv(p));
    }
    if let Some(d) = b.dts() {
        b.set_dts(mv(d));
    }
    gst::PadProbeReturn::Ok
}

/// Note the first RTP packet leaving `rtp_src`.
fn watch_first_packet(rtp_src: &gst::Pad, into: Arc<Mutex<Option<FirstPacket>>>) {
    rtp_src.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
        let Some(gst::PadProbeData::Buffer(buf)) = &info.data else {
            return gst::PadProbeReturn::Ok;
        };
        let Ok(rtp) = gst_rtp::RTPBuffer::from_buffer_readable(buf) else {
            return gst::PadProbeReturn::Ok;
        };
        let clock_rate = pad
            .current_caps()
            .and_then(|c| c.structure(0)?.get::<i32>("clock-rate").ok())
            .and_then(|r| u32::try_from(r).ok())
            .filter(|r| *r > 0);
        let segment = pad
            .sticky_event::<gst::event::Segment>(0)
            .and_then(|e| e.segment().clone().downcast::<gst::ClockTime>().ok());
        let running = buf
            .pts()
            .zip(segment)
            .and_then(|(p, s)| s.to_running_time(p));
        let arrival = pad.parent_element().and_then(|e| e.current_running_time());
        if let (Some(clock_rate), Some(running), Some(arrival)) = (clock_rate, running, arrival) {
            *into.lock() = Some(FirstPacket {
                ssrc: rtp.ssrc(),
                rtp_time: rtp.timestamp(),
                clock_rate,
                running: i128::from(running.nseconds()),
                arrival: i128::from(arrival.nseconds()),
            });
        }
        gst::PadProbeReturn::Remove
    });
}

/// The sender's time (nanoseconds on its NTP clock) of `first`, from the last sender report
/// of its SSRC that `rtpbin` holds.
fn sender_time(webrtcbin: &gst::Element, first: FirstPacket) -> Option<i128> {
    let rtpbin = rtpbin(webrtcbin)?;
    // max-bundle: one session; look a little further for other bundle policies.
    (0u32..4).find_map(|id| {
        let session =
            rtpbin.emit_by_name::<Option<gst::glib::Object>>("get-internal-session", &[&id])?;
        let stats = session.property::<gst::Structure>("stats");
        let sources = stats.get::<gst::glib::ValueArray>("source-stats").ok()?;
        sources.iter().find_map(|v| {
            let s = v.get::<gst::Structure>().ok()?;
            if s.get::<u32>("ssrc").ok()? != first.ssrc || !s.get::<bool>("have-sr").ok()? {
                return None;
            }
            let ntp = s.get::<u64>("sr-ntptime").ok()?;
            let sr_rtp = s.get::<u32>("sr-rtptime").ok()?;
            Some(ntp_ns(ntp) - rtp_ns(sr_rtp.wrapping_sub(first.rtp_time), first.clock_rate))
        })
    })
}

/// NTP 32.32 fixed point to nanoseconds.
fn ntp_ns(ntp: u64) -> i128 {
    i128::from(ntp >> 32) * 1_000_000_000 + ((i128::from(ntp & 0xffff_ffff) * 1_000_000_000) >> 32)
}

/// An RTP timestamp difference (modulo 2^32, taken as the nearer of the two directions) in
/// nanoseconds.
fn rtp_ns(diff: u32, clock_rate: u32) -> i128 {
    i128::from(diff as i32) * 1_000_000_000 / i128::from(clock_rate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ntp_fixed_point_to_nanoseconds() {
        assert_eq!(ntp_ns(0), 0);
        assert_eq!(ntp_ns(1 << 32), 1_000_000_000);
        assert_eq!(ntp_ns((3 << 32) | (1 << 31)), 3_500_000_000);
    }

    #[test]
    fn rtp_differences_wrap() {
        assert_eq!(rtp_ns(90_000, 90_000), 1_000_000_000);
        // The report is older than the packet: a negative difference modulo 2^32.
        assert_eq!(rtp_ns(0u32.wrapping_sub(48_000), 48_000), -1_000_000_000);
    }

    #[test]
    fn tracks_are_placed_by_sender_time_only_when_both_have_it() {
        let audio = Origin {
            sender: Some(1_000),
            arrival: 5_000,
        };
        let video = Origin {
            sender: Some(1_060),
            arrival: 5_200,
        };
        assert_eq!(shift(video, audio), 60);
        let no_report = Origin {
            sender: None,
            arrival: 5_200,
        };
        assert_eq!(shift(no_report, audio), 200);
    }
}
