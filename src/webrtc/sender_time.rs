//! Recorded timestamps on the sender's clock: each packet's RTP time mapped through its
//! sender's RTCP sender reports, so the tracks of a recording stay in step however late each
//! one arrives.
//!
//! `rtpjitterbuffer` stamps a packet with its (smoothed) *arrival* time. A sender starved of
//! CPU, or a path that queues one track longer than the other, delivers frames late, and an
//! arrival-stamped recording shows them late: the picture lags the sound by as much as the
//! video was delayed. The sender's time is in the packets instead: the RTP timestamp says when
//! a frame was captured, and each RTCP sender report (SR) ties the track's RTP clock to the
//! sender's NTP clock, one clock for all the tracks of a sender.
//!
//! With `add-reference-timestamp-meta` the jitter buffers attach that sender time (caps
//! `timestamp/x-ntp`) to every packet once its stream's first report has arrived.
//!
//! [`restamp`] moves each packet of a recording to
//! `anchor running time + (its sender time − anchor sender time)`, where the anchor is the
//! first packet of the recording that carries a sender time (on any of its tracks).
//! Packets that come before their track's first report keep their arrival time. A packet is
//! never moved to or before the previous frame of its track (at least [`MIN_STEP_NS`] after
//! it): when a track switches from arrival to sender time a few frames may be squeezed
//! together, so its timestamps only go forward.

use parking_lot::Mutex;
use std::sync::Arc;

use gst::prelude::*;

/// The jitter buffer's element factory.
const JITTER_BUFFER: &str = "rtpjitterbuffer";

/// The jitter buffer property that attaches sender times.
const SENDER_TIME_PROPERTY: &str = "add-reference-timestamp-meta";

/// Seconds from the NTP epoch (1900) to the Unix epoch (1970).
const NTP_TO_UNIX_S: u64 = 2_208_988_800;

/// The caps of the sender times the jitter buffer attaches.
const NTP_REFERENCE: &str = "timestamp/x-ntp";

/// How far a packet's sender time may put it from its arrival before the mapping starts over
/// from that packet.
pub(super) const RESYNC: std::time::Duration = std::time::Duration::from_secs(1);

/// One recording's mapping from its sender's clock to running time, fixed by the first packet
/// that carries a sender time.
#[derive(Debug, Default)]
pub(super) struct SenderClock {
    anchor: Mutex<Option<Anchor>>,
    /// Anchor at the capture time itself (the sender's and this machine's wall clocks taken
    /// as one, see [`SenderClock::at_capture`]), not at the anchor packet's arrival.
    at_capture: bool,
}

#[derive(Debug, Clone, Copy)]
struct Anchor {
    sender_ns: u64,
    running_ns: u64,
}

impl SenderClock {
    /// A clock whose anchor is the anchor packet's capture time on this machine's timeline:
    /// its sender time (the sender's wall clock, NTP) read on this machine's wall clock, so
    /// the sender's capture and send delays (capture buffer, encoder frame, network) are
    /// taken out. When the two wall clocks disagree (the packet would have taken less than
    /// nothing or more than [`RESYNC`]), the anchor is the arrival, as for the default clock.
    pub(super) fn at_capture() -> Self {
        SenderClock {
            anchor: Mutex::new(None),
            at_capture: true,
        }
    }

    /// With [`SenderClock::at_capture`]: the running time (on the timeline where `now_ns` is
    /// now) at which a packet with sender time `sender_ns` was captured.
    fn capture_running_time(&self, sender_ns: u64, now_ns: u64) -> Option<u64> {
        if !self.at_capture {
            return None;
        }
        let wall = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .ok()?
            .as_nanos()
            + u128::from(NTP_TO_UNIX_S) * 1_000_000_000;
        let delay = wall.checked_sub(u128::from(sender_ns))?;
        if delay >= RESYNC.as_nanos() {
            return None;
        }
        now_ns.checked_sub(u64::try_from(delay).ok()?)
    }

    /// [`SenderClock::running_time_from`] anchored at the arrival (the default clock's way).
    #[cfg(test)]
    fn running_time_of(&self, sender_ns: u64, running_ns: u64) -> u64 {
        self.running_time_from(sender_ns, running_ns, running_ns)
    }

    /// The running time of sender time `sender_ns` for a packet that arrived at running time
    /// `running_ns`. The first packet becomes the anchor, at running time `anchor_ns` (its
    /// arrival, or with [`SenderClock::at_capture`] its capture time); so does a packet whose
    /// sender time is more than [`RESYNC`] away from its arrival on the anchor's timeline (the
    /// sender's clock jumped, or the path's delay changed by that much): its tracks follow
    /// from there.
    fn running_time_from(&self, sender_ns: u64, running_ns: u64, anchor_ns: u64) -> u64 {
        let mut anchor = self.anchor.lock();
        let a = *anchor.get_or_insert(Anchor {
            sender_ns,
            running_ns: anchor_ns,
        });
        let shifted = i128::from(a.running_ns) + i128::from(sender_ns) - i128::from(a.sender_ns);
        if (shifted - i128::from(running_ns)).abs() > RESYNC.as_nanos() as i128 {
            tracing::debug!(
                sender_ns,
                running_ns,
                "sender time {} ms from arrival: the recording's clock mapping starts over",
                (shifted - i128::from(running_ns)) / 1_000_000
            );
            *anchor = Some(Anchor {
                sender_ns,
                running_ns: anchor_ns,
            });
            return anchor_ns;
        }
        u64::try_from(shifted.max(0)).unwrap_or(u64::MAX)
    }
}

/// Ask the jitter buffers of `webrtcbin` for sender times: its `rtpbin` for the ones it
/// creates from now on, and the ones that exist (a track's jitter buffer exists by the time
/// the track starts).
pub(super) fn enable(webrtcbin: &gst::Element) {
    let Some(bin) = webrtcbin.downcast_ref::<gst::Bin>() else {
        return;
    };
    if let Some(rtpbin) = bin.by_name("rtpbin") {
        rtpbin.set_property(SENDER_TIME_PROPERTY, true);
    }
    for el in bin.iterate_recurse().into_iter().flatten() {
        if el.factory().is_some_and(|f| f.name() == JITTER_BUFFER)
            && !el.property::<bool>(SENDER_TIME_PROPERTY)
        {
            el.set_property(SENDER_TIME_PROPERTY, true);
        }
    }
}

/// The sender time the jitter buffer attached to `buf`, in nanoseconds.
fn sender_time(buf: &gst::BufferRef) -> Option<u64> {
    buf.iter_meta::<gst::ReferenceTimestampMeta>()
        .find(|m| {
            m.reference()
                .structure(0)
                .is_some_and(|s| s.name() == NTP_REFERENCE)
        })
        .map(|m| m.timestamp().nseconds())
}

/// The smallest step between two frames of a track: a later frame is never stamped at or
/// before an earlier one (a parser takes a repeated timestamp for the previous frame's and
/// leaves the frame without one), and Matroska stores milliseconds.
const MIN_STEP_NS: u64 = 1_000_000;

/// The previous packet of a track.
#[derive(Debug, Clone, Copy)]
struct Previous {
    rtp: Option<u32>,
    running_ns: u64,
}

/// Move the RTP packets entering `sink` (a recorded track's depayloader) to their sender's
/// clock, on the timeline of `clock` (one per recording).
pub(super) fn restamp(sink: &gst::Pad, clock: Arc<SenderClock>) {
    let previous: Mutex<Option<Previous>> = Mutex::new(None);
    sink.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
        let Some(gst::PadProbeData::Buffer(buf)) = &mut info.data else {
            return gst::PadProbeReturn::Ok;
        };
        let Some(segment) = pad
            .sticky_event::<gst::event::Segment>(0)
            .and_then(|e| e.segment().clone().downcast::<gst::ClockTime>().ok())
        else {
            return gst::PadProbeReturn::Ok;
        };
        let Some(arrival) = buf
            .pts()
            .and_then(|p| segment.to_running_time(p))
            .map(gst::ClockTime::nseconds)
        else {
            return gst::PadProbeReturn::Ok;
        };
        let rtp = gst_rtp::RTPBuffer::from_buffer_readable(buf)
            .ok()
            .map(|r| r.timestamp());
        let mut running = match sender_time(buf) {
            Some(ns) => {
                let now = pad
                    .parent_element()
                    .and_then(|e| e.clock()?.time().checked_sub(e.base_time()?))
                    .map(gst::ClockTime::nseconds);
                let anchor = now
                    .and_then(|now| clock.capture_running_time(ns, now))
                    .unwrap_or(arrival);
                clock.running_time_from(ns, arrival, anchor)
            }
            None => arrival,
        };
        let mut previous = previous.lock();
        running = step_after(*previous, rtp, running);
        *previous = Some(Previous {
            rtp,
            running_ns: running,
        });
        drop(previous);
        if running != arrival
            && let Some(pts) =
                segment.position_from_running_time(gst::ClockTime::from_nseconds(running))
        {
            let b = buf.make_mut();
            b.set_pts(pts);
            // The decoding time with it: WebRTC's codecs send frames in presentation order,
            // and the jitter buffer's decoding time is the arrival this replaces.
            if b.dts().is_some() {
                b.set_dts(pts);
            }
        }
        gst::PadProbeReturn::Ok
    });
}

/// The running time for a packet with RTP time `rtp` mapped to `running`, after `previous`:
/// the packets of one frame (one RTP time) share one time, and a later frame comes at least
/// [`MIN_STEP_NS`] after the one before.
fn step_after(previous: Option<Previous>, rtp: Option<u32>, running: u64) -> u64 {
    match previous {
        None => running,
        Some(p) if rtp.is_some() && p.rtp == rtp => p.running_ns,
        Some(p) => running.max(p.running_ns + MIN_STEP_NS),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_sender_time_anchors_every_track() {
        let clock = SenderClock::default();
        // Audio's first report: its packet at running time 3.0 s was captured at 100.0 s.
        assert_eq!(
            clock.running_time_of(100_000_000_000, 3_000_000_000),
            3_000_000_000
        );
        // Video captured 20 ms later arrives 150 ms late: it goes where it was captured.
        assert_eq!(
            clock.running_time_of(100_020_000_000, 3_170_000_000),
            3_020_000_000
        );
        // A capture before the anchor maps before it.
        assert_eq!(
            clock.running_time_of(99_900_000_000, 2_950_000_000),
            2_900_000_000
        );
    }

    #[test]
    fn a_jump_of_the_sender_clock_starts_the_mapping_over() {
        let clock = SenderClock::default();
        assert_eq!(
            clock.running_time_of(100_000_000_000, 3_000_000_000),
            3_000_000_000
        );
        // The sender's clock jumps back a minute: the packet keeps its arrival time ...
        assert_eq!(
            clock.running_time_of(40_040_000_000, 3_050_000_000),
            3_050_000_000
        );
        // ... and the next ones follow it on the new anchor.
        assert_eq!(
            clock.running_time_of(40_060_000_000, 3_100_000_000),
            3_070_000_000
        );
        // Within a second of the arrival the mapping holds, never below zero.
        assert_eq!(
            clock.running_time_of(37_900_000_000, 500_000_000),
            910_000_000
        );
        assert_eq!(clock.running_time_of(36_500_000_000, 0), 0);
    }

    #[test]
    fn frames_only_go_forward_and_a_frame_keeps_one_time() {
        let at = |rtp: u32, running_ns: u64| {
            Some(Previous {
                rtp: Some(rtp),
                running_ns,
            })
        };
        assert_eq!(step_after(None, Some(9), 500), 500);
        // Another packet of the same frame mapped elsewhere keeps the frame's time.
        assert_eq!(step_after(at(9, 500), Some(9), 700), 500);
        // A later frame mapped before the previous one goes just after it ...
        assert_eq!(step_after(at(9, 5_000_000), Some(12), 0), 6_000_000);
        // ... and one mapped after it stays where it is.
        assert_eq!(
            step_after(at(9, 5_000_000), Some(12), 40_000_000),
            40_000_000
        );
        // Without an RTP header nothing is taken for the same frame.
        assert_eq!(step_after(at(9, 5_000_000), None, 0), 6_000_000);
    }

    #[test]
    fn only_ntp_reference_timestamps_are_sender_times() {
        gst::init().unwrap();
        let mut buf = gst::Buffer::new();
        let b = buf.get_mut().unwrap();
        gst::ReferenceTimestampMeta::add(
            b,
            &gst::Caps::new_empty_simple("timestamp/x-unix"),
            gst::ClockTime::from_seconds(1),
            None,
        );
        assert_eq!(sender_time(b), None);
        gst::ReferenceTimestampMeta::add(
            b,
            &gst::Caps::new_empty_simple(NTP_REFERENCE),
            gst::ClockTime::from_seconds(7),
            None,
        );
        assert_eq!(sender_time(b), Some(7_000_000_000));
    }
}
