//! Loss repair of one peer connection: NACK with RTX in both directions, RED + ULPFEC for
//! video with an overhead that follows the measured loss, a bounded retransmission history,
//! an adaptive jitter buffer, and the counters the statistics read.
//!
//! * Negotiation ([`setup_transceiver`]): every video transceiver (send and receive, offer and
//!   answer) gets webrtcbin's `do-nack` and `fec-type=ulp-red`. webrtcbin then offers an `rtx`
//!   payload type per video codec (`a=fmtp:N apt=PT`, and one for RED), RED and ULPFEC; when
//!   answering it keeps what the offer (Chromium's too) lists for the chosen codec.
//! * Retransmission history: `rtprtxsend` keeps at most [`RepairConfig::rtx_history_ms`] and
//!   [`RepairConfig::rtx_history_packets`] of sent packets.
//! * Requests only while they can arrive in time: `rtpjitterbuffer` requests a missing packet
//!   until its deadline, which is the jitter buffer's current latency (`rtx-deadline=-1`); the
//!   adaptive buffer sets the retry timeout and stops retrying a round trip and a margin before
//!   that deadline (`rtx-retry-timeout`, `rtx-retry-period`, see `internals.rs`), so a
//!   retransmission that could only arrive after the frame's playout time is never asked for.
//! * RTCP: every connection's `rtpsession` gets [`RTCP_BANDWIDTH`] and
//!   [`RTCP_REPORT_INTERVAL`], so NACKs and PLIs go out when they are due (with `rtpsession`'s
//!   defaults a receive-only connection could send one feedback packet per 0.3-1 s and the
//!   rest expired unsent). The depayloader asks for a keyframe (PLI) only when the
//!   jitter buffer gave a packet up, that is when repair failed (repeated while nothing decodes:
//!   `receive_watch`); the publisher rate-limits what reaches its encoder
//!   (`PublisherConfig::keyframe_min_interval_ms`).
//! * `rtprtxreceive` gets every negotiated `apt` pair when a negotiation completes (webrtcbin
//!   1.22 sometimes fills its map from another transceiver on the answerer, and then drops
//!   every retransmission).
//! * FEC overhead ([`fec_percentage_for_loss`]): none on a clean link; from 1 % video loss,
//!   ULPFEC at three times the loss, at most [`RepairConfig::fec_max_pct`], which is 0 by
//!   default: RED+ULPFEC is negotiated but sends nothing unless asked. With GStreamer 1.22 a
//!   lost ULPFEC packet (it cannot be retransmitted) made the receiver drop frames: at 5 %
//!   loss 75 % of the frames were decoded with FEC against 100 % with NACK/RTX alone
//!   (`tests/webrtc_resilience.rs` setup). The loss is the higher of the receiver's RTCP
//!   `fraction lost` and the share of sent video packets retransmitted in the last second
//!   (with RTX the receiver counts a repaired packet as received, so its reports read near 0).
//! * Jitter buffer ([`JitterBuffer`]): adaptive by default (see `jitter.rs`), fixed as an
//!   override.

mod counters;
mod fec;
mod internals;
mod jitter;
mod meter;

use gst::prelude::*;
use gst_webrtc::{WebRTCFECType, WebRTCRTPTransceiver};

pub use counters::{DirectionCounts, RepairCounters};
pub use fec::fec_percentage_for_loss;
pub(crate) use fec::spawn_fec_control;
pub(crate) use internals::{Internals, watch_internals};
pub use jitter::{JitterBuffer, JitterEstimator};
pub use meter::SendMeter;

use super::MediaKind;

/// Default [`RepairConfig::rtx_history_ms`].
pub const DEFAULT_RTX_HISTORY_MS: u32 = 1000;
/// Default [`RepairConfig::rtx_history_packets`].
pub const DEFAULT_RTX_HISTORY_PACKETS: u32 = 1000;
/// RTCP bandwidth of every peer connection (bit/s, `rtpsession`'s `rtcp-fraction` as an
/// absolute figure). It bounds how often feedback may go out early: about one compound packet
/// (150 bytes, four streams in the bundle) per 25 ms, so a NACK or PLI leaves within a few ms
/// of the request instead of waiting up to a second (see `internals::configure_rtcp`). What is
/// actually sent stays what is needed: a report per [`RTCP_REPORT_INTERVAL`] and a feedback
/// packet when there is a loss to report.
pub const RTCP_BANDWIDTH: u32 = 200_000;
/// Regular RTCP report interval (`rtpsession` `rtcp-min-interval`; each report goes out 0.5 to
/// 1.5 times this apart): libwebrtc's video report interval. The `rtpsession` default, 5 s,
/// left loss reports (FEC, Opus and congestion control feed on them) and any feedback that
/// missed an early slot 2.5 to 7.5 s apart.
pub const RTCP_REPORT_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);
/// Default [`RepairConfig::fec_max_pct`]: no FEC sent (see the module documentation).
pub const DEFAULT_FEC_MAX_PCT: u32 = 0;

/// Loss repair of a peer connection.
///
/// ```
/// use streamwire::webrtc::repair::RepairConfig;
/// let cfg = RepairConfig::default();
/// assert!(cfg.nack && cfg.fec);
/// assert_eq!(cfg.rtx_history_ms, 1000);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RepairConfig {
    /// NACK + RTX on video, both directions. Default on.
    pub nack: bool,
    /// RED + ULPFEC negotiated on video, its overhead adapted to the measured loss up to
    /// [`fec_max_pct`](Self::fec_max_pct). Default on.
    pub fec: bool,
    /// Highest ULPFEC overhead, % of media packets (0..=100). Default 0: negotiated, none
    /// sent (see the module documentation); 50 lets it follow up to three times the loss.
    pub fec_max_pct: u32,
    /// Longest time a sent packet stays available for retransmission (ms, 1..=10000).
    /// Default 1000: longer than any jitter buffer target ([`JitterBuffer`] caps at 1000 ms).
    pub rtx_history_ms: u32,
    /// Most packets kept for retransmission (1..=100000). Default 1000 (about 4 s of 720p
    /// video at 2.5 Mbit/s, so the time bound is the one that applies).
    pub rtx_history_packets: u32,
}

impl Default for RepairConfig {
    fn default() -> Self {
        RepairConfig {
            nack: true,
            fec: true,
            fec_max_pct: DEFAULT_FEC_MAX_PCT,
            rtx_history_ms: DEFAULT_RTX_HISTORY_MS,
            rtx_history_packets: DEFAULT_RTX_HISTORY_PACKETS,
        }
    }
}

impl RepairConfig {
    /// No NACK, no FEC (what webrtcbin does by default).
    pub fn off() -> Self {
        RepairConfig {
            nack: false,
            fec: false,
            ..RepairConfig::default()
        }
    }

    pub(crate) fn validate(&self) -> Result<(), super::WebrtcError> {
        let bad = |field, detail: String| Err(super::WebrtcError::Config { field, detail });
        if self.fec_max_pct > 100 {
            return bad(
                "repair.fec_max_pct",
                format!("{} is above 100 %", self.fec_max_pct),
            );
        }
        if !(1..=10_000).contains(&self.rtx_history_ms) {
            return bad(
                "repair.rtx_history_ms",
                format!("{} ms is outside 1..=10000", self.rtx_history_ms),
            );
        }
        if !(1..=100_000).contains(&self.rtx_history_packets) {
            return bad(
                "repair.rtx_history_packets",
                format!("{} is outside 1..=100000", self.rtx_history_packets),
            );
        }
        Ok(())
    }
}

/// Give a transceiver of `kind` the repair `cfg` asks for, before an offer or answer is created
/// from it: video gets `do-nack` and RED+ULPFEC (0 % until loss is measured); audio relies on
/// Opus in-band FEC instead.
pub(crate) fn setup_transceiver(trans: &WebRTCRTPTransceiver, kind: MediaKind, cfg: &RepairConfig) {
    let video = kind == MediaKind::Video;
    trans.set_property("do-nack", video && cfg.nack);
    let fec = if video && cfg.fec {
        WebRTCFECType::UlpRed
    } else {
        WebRTCFECType::None
    };
    trans.set_property("fec-type", fec);
    trans.set_property("fec-percentage", 0u32);
}
