//! Packet counters by kind (media, retransmission, FEC) at the edge of the transport: sent
//! RTP before SRTP encryption, received RTP right after decryption.

use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

/// Payload types of the repair streams, from the negotiated descriptions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct RepairPayloadTypes {
    /// `rtx` payload types.
    pub rtx: Vec<u8>,
    /// `red` payload types.
    pub red: Vec<u8>,
    /// `ulpfec` payload types.
    pub ulpfec: Vec<u8>,
    /// (original, `rtx`) payload-type pairs (`a=fmtp:<rtx> apt=<original>`).
    pub apt: Vec<(u8, u8)>,
}

impl RepairPayloadTypes {
    /// Payload types named `rtx`, `red`, `ulpfec` in the `rtpmap`s of `sdp`.
    pub(crate) fn from_sdp(sdp: &gst_sdp::SDPMessageRef) -> Self {
        let mut pts = RepairPayloadTypes::default();
        for media in sdp.medias() {
            for (pt, enc, _) in crate::webrtc::sdp::media_codecs(media) {
                let list = match enc.to_ascii_lowercase().as_str() {
                    "rtx" => &mut pts.rtx,
                    "red" => &mut pts.red,
                    "ulpfec" => &mut pts.ulpfec,
                    _ => continue,
                };
                if !list.contains(&pt) {
                    list.push(pt);
                }
            }
            for a in media.attributes().filter(|a| a.key() == "fmtp") {
                let Some((rtx, params)) = a.value().and_then(|v| v.split_once(' ')) else {
                    continue;
                };
                let apt = params
                    .split(';')
                    .find_map(|p| p.trim().strip_prefix("apt="))
                    .and_then(|v| v.parse::<u8>().ok());
                if let (Ok(rtx), Some(apt)) = (rtx.parse::<u8>(), apt)
                    && !pts.apt.contains(&(apt, rtx))
                {
                    pts.apt.push((apt, rtx));
                }
            }
        }
        pts
    }

    /// Merge `other` into `self`.
    pub(crate) fn merge(&mut self, other: RepairPayloadTypes) {
        for (dst, src) in [
            (&mut self.rtx, other.rtx),
            (&mut self.red, other.red),
            (&mut self.ulpfec, other.ulpfec),
        ] {
            for pt in src {
                if !dst.contains(&pt) {
                    dst.push(pt);
                }
            }
        }
        for pair in other.apt {
            if !self.apt.contains(&pair) {
                self.apt.push(pair);
            }
        }
    }

    /// What an RTP packet with payload type `pt` and payload `payload` carries.
    pub(crate) fn classify(&self, pt: u8, payload: &[u8]) -> PacketClass {
        if self.rtx.contains(&pt) {
            return PacketClass::Retransmission;
        }
        if self.ulpfec.contains(&pt) {
            return PacketClass::Fec;
        }
        if self.red.contains(&pt) {
            // RFC 2198: the last block header is one byte, F bit clear, then the block's PT.
            // rtpredenc sends the primary block only (distance 0), so the first byte names it.
            if let Some(first) = payload.first()
                && first & 0x80 == 0
                && self.ulpfec.contains(&(first & 0x7f))
            {
                return PacketClass::Fec;
            }
        }
        PacketClass::Media
    }
}

/// Kind of an RTP packet on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PacketClass {
    /// Audio or video (possibly wrapped in RED).
    Media,
    /// An RTX retransmission (RFC 4588).
    Retransmission,
    /// A ULPFEC packet (RFC 5109), alone or in RED.
    Fec,
}

#[derive(Debug, Default)]
pub(crate) struct Tally {
    packets: AtomicU64,
    bytes: AtomicU64,
}

impl Tally {
    fn add(&self, bytes: usize) {
        self.packets.fetch_add(1, Ordering::Relaxed);
        self.bytes
            .fetch_add(u64::try_from(bytes).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    fn get(&self) -> (u64, u64) {
        (
            self.packets.load(Ordering::Relaxed),
            self.bytes.load(Ordering::Relaxed),
        )
    }
}

/// Live tallies of one direction.
#[derive(Debug, Default)]
pub(crate) struct DirectionTally {
    media: Tally,
    rtx: Tally,
    fec: Tally,
}

impl DirectionTally {
    pub(crate) fn add(&self, class: PacketClass, bytes: usize) {
        match class {
            PacketClass::Media => self.media.add(bytes),
            PacketClass::Retransmission => self.rtx.add(bytes),
            PacketClass::Fec => self.fec.add(bytes),
        }
    }

    pub(crate) fn snapshot(&self) -> DirectionCounts {
        let (media_packets, media_bytes) = self.media.get();
        let (rtx_packets, rtx_bytes) = self.rtx.get();
        let (fec_packets, fec_bytes) = self.fec.get();
        DirectionCounts {
            media_packets,
            media_bytes,
            rtx_packets,
            rtx_bytes,
            fec_packets,
            fec_bytes,
        }
    }
}

/// Packets and bytes of one direction of a connection, by kind (RTP header and payload, before
/// SRTP; RTCP not included).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct DirectionCounts {
    /// Audio and video packets.
    pub media_packets: u64,
    /// Their bytes.
    pub media_bytes: u64,
    /// RTX retransmissions.
    pub rtx_packets: u64,
    /// Their bytes.
    pub rtx_bytes: u64,
    /// ULPFEC packets.
    pub fec_packets: u64,
    /// Their bytes.
    pub fec_bytes: u64,
}

impl DirectionCounts {
    /// Repair overhead: (RTX + FEC bytes) / media bytes, in %; 0 before any media.
    ///
    /// ```
    /// use streamwire::webrtc::repair::RepairCounters;
    /// let c = RepairCounters::default();
    /// assert_eq!(c.sent.overhead_pct(), 0.0);
    /// ```
    pub fn overhead_pct(&self) -> f64 {
        if self.media_bytes == 0 {
            return 0.0;
        }
        100.0 * (self.rtx_bytes + self.fec_bytes) as f64 / self.media_bytes as f64
    }
}

impl std::ops::Add for DirectionCounts {
    type Output = DirectionCounts;

    /// Field by field (saturating): the counts of two connections together.
    fn add(self, o: DirectionCounts) -> DirectionCounts {
        DirectionCounts {
            media_packets: self.media_packets.saturating_add(o.media_packets),
            media_bytes: self.media_bytes.saturating_add(o.media_bytes),
            rtx_packets: self.rtx_packets.saturating_add(o.rtx_packets),
            rtx_bytes: self.rtx_bytes.saturating_add(o.rtx_bytes),
            fec_packets: self.fec_packets.saturating_add(o.fec_packets),
            fec_bytes: self.fec_bytes.saturating_add(o.fec_bytes),
        }
    }
}

impl std::ops::Sub for DirectionCounts {
    type Output = DirectionCounts;

    /// Field by field (saturating at 0): what was counted between two snapshots.
    ///
    /// ```
    /// use streamwire::webrtc::repair::DirectionCounts;
    /// let before = DirectionCounts { media_bytes: 1000, ..Default::default() };
    /// let after = DirectionCounts { media_bytes: 5000, rtx_bytes: 40, ..Default::default() };
    /// assert_eq!((after - before).media_bytes, 4000);
    /// assert!(((after - before).overhead_pct() - 1.0).abs() < 1e-9);
    /// ```
    fn sub(self, o: DirectionCounts) -> DirectionCounts {
        DirectionCounts {
            media_packets: self.media_packets.saturating_sub(o.media_packets),
            media_bytes: self.media_bytes.saturating_sub(o.media_bytes),
            rtx_packets: self.rtx_packets.saturating_sub(o.rtx_packets),
            rtx_bytes: self.rtx_bytes.saturating_sub(o.rtx_bytes),
            fec_packets: self.fec_packets.saturating_sub(o.fec_packets),
            fec_bytes: self.fec_bytes.saturating_sub(o.fec_bytes),
        }
    }
}

/// Repair counters of one peer connection, cumulative since it was created.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct RepairCounters {
    /// What this side sent.
    pub sent: DirectionCounts,
    /// What this side received.
    pub received: DirectionCounts,
    /// Retransmission requests (NACKed packets) `rtprtxsend` got from the remote side.
    pub rtx_requests_received: u64,
    /// Packets ULPFEC recovered on this side.
    pub fec_recovered: u64,
    /// Current ULPFEC overhead towards the remote side (% of media packets), per video
    /// transceiver.
    pub fec_percentage: Vec<u32>,
    /// Current jitter-buffer latency of each received stream (ms).
    pub jitter_latency_ms: Vec<u32>,
}

/// Shared live state the probes update.
#[derive(Debug, Default)]
pub(crate) struct Live {
    pub sent: DirectionTally,
    pub received: DirectionTally,
    pub pts: Mutex<RepairPayloadTypes>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_rtx_ulpfec_and_fec_inside_red() {
        let pts = RepairPayloadTypes {
            rtx: vec![97, 99],
            red: vec![98],
            ulpfec: vec![100],
            apt: vec![(96, 97), (98, 99)],
        };
        assert_eq!(pts.classify(96, &[0x90]), PacketClass::Media);
        assert_eq!(pts.classify(97, &[]), PacketClass::Retransmission);
        assert_eq!(pts.classify(100, &[]), PacketClass::Fec);
        // RED whose primary block is VP8 (96) or ULPFEC (100).
        assert_eq!(pts.classify(98, &[96]), PacketClass::Media);
        assert_eq!(pts.classify(98, &[100, 1, 2]), PacketClass::Fec);
        // A redundant block header (F bit) is not read as the primary one.
        assert_eq!(pts.classify(98, &[0x80 | 100]), PacketClass::Media);
    }

    #[test]
    fn payload_types_come_from_rtpmaps() {
        crate::gst_init::init().unwrap();
        let sdp = "v=0\r\no=- 0 0 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n\
                   m=video 9 UDP/TLS/RTP/SAVPF 96 97 98 99 100\r\n\
                   a=rtpmap:96 VP8/90000\r\na=rtpmap:97 rtx/90000\r\na=fmtp:97 apt=96\r\n\
                   a=rtpmap:98 red/90000\r\na=rtpmap:99 rtx/90000\r\na=fmtp:99 apt=98\r\n\
                   a=rtpmap:100 ulpfec/90000\r\n";
        let msg = gst_sdp::SDPMessage::parse_buffer(sdp.as_bytes()).unwrap();
        let pts = RepairPayloadTypes::from_sdp(&msg);
        assert_eq!(pts.rtx, vec![97, 99]);
        assert_eq!(pts.red, vec![98]);
        assert_eq!(pts.ulpfec, vec![100]);
        assert_eq!(pts.apt, vec![(96, 97), (98, 99)]);
        let c = DirectionCounts {
            media_bytes: 1000,
            rtx_bytes: 20,
            fec_bytes: 10,
            ..Default::default()
        };
        assert!((c.overhead_pct() - 3.0).abs() < 1e-9);
    }
}
