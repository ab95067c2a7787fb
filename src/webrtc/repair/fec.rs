//! ULPFEC overhead that follows the loss the remote side reports, and the reported loss handed
//! to the peer's listeners (the publisher feeds the audio figure to Opus).

use std::collections::HashMap;
use std::time::Duration;

use gst::prelude::*;
use gst_webrtc::{WebRTCFECType, WebRTCRTPTransceiver, WebRTCRTPTransceiverDirection};

use crate::webrtc::MediaKind;
use crate::webrtc::peer::{ConnectionState, Peer};

/// How often the remote loss is read (RTCP receiver reports arrive about once a second).
const PERIOD: Duration = Duration::from_secs(1);

/// ULPFEC overhead (% of media packets) for a measured loss (%): none under 1 % (a clean link
/// costs nothing), else three times the loss rounded up to a multiple of 5, at most `max_pct`.
/// RTX repairs what FEC does not; FEC saves the round trip on the packets it covers.
///
/// ```
/// use streamwire::webrtc::repair::fec_percentage_for_loss;
/// assert_eq!(fec_percentage_for_loss(0.4, 50), 0);
/// assert_eq!(fec_percentage_for_loss(2.0, 50), 10);
/// assert_eq!(fec_percentage_for_loss(5.0, 50), 15);
/// assert_eq!(fec_percentage_for_loss(30.0, 50), 50);
/// ```
pub fn fec_percentage_for_loss(loss_pct: f64, max_pct: u32) -> u32 {
    if !loss_pct.is_finite() || loss_pct < 1.0 {
        return 0;
    }
    let want = (loss_pct * 3.0 / 5.0).ceil() * 5.0;
    // `want` is finite and positive here; the cast saturates anyway.
    (want as u32).min(max_pct)
}

/// From a `get-stats` structure: the loss fraction (0..=1) the remote side reported per sent
/// SSRC, by kind (the `fraction-lost` of each `remote-inbound-rtp`, the kind from the `codec`
/// entries: webrtcbin 1.22 mislabels `kind` under BUNDLE), and the video RTP packets sent so
/// far (`packets-sent` of the video `outbound-rtp` entries).
fn sent_by_kind(raw: &gst::StructureRef) -> (Vec<(MediaKind, f64)>, u64) {
    let mut kind_by_ssrc: HashMap<u32, MediaKind> = HashMap::new();
    let mut remote = Vec::new();
    let mut sent: Vec<(u32, u64)> = Vec::new();
    for (_, value) in raw.iter() {
        let Ok(s) = value.get::<gst::Structure>() else {
            continue;
        };
        match s.name().as_str() {
            "codec" => {
                if let (Ok(ssrc), Ok(mime)) = (s.get::<u32>("ssrc"), s.get::<String>("mime-type")) {
                    let kind = mime.split('/').next().and_then(MediaKind::from_sdp);
                    if let Some(kind) = kind {
                        kind_by_ssrc.insert(ssrc, kind);
                    }
                }
            }
            "remote-inbound-rtp" => {
                if let (Ok(ssrc), Ok(f)) = (s.get::<u32>("ssrc"), s.get::<f64>("fraction-lost")) {
                    remote.push((ssrc, f));
                }
            }
            "outbound-rtp" => {
                if let (Ok(ssrc), Ok(n)) = (s.get::<u32>("ssrc"), s.get::<u64>("packets-sent")) {
                    sent.push((ssrc, n));
                }
            }
            _ => {}
        }
    }
    let video = sent
        .iter()
        .filter(|(ssrc, _)| kind_by_ssrc.get(ssrc) == Some(&MediaKind::Video))
        .map(|(_, n)| n)
        .sum();
    let loss = remote
        .into_iter()
        .filter_map(|(ssrc, f)| Some((*kind_by_ssrc.get(&ssrc)?, f)))
        .collect();
    (loss, video)
}

/// Video loss (%) seen from the sender over one period: packets retransmitted per video packet
/// sent. With RTX the receiver's reports say little (a repaired packet counts as received), so
/// this is the loss FEC follows. Retransmissions, not requests: a lost FEC packet is requested
/// but cannot be retransmitted, and counting it would raise the FEC that is lost in turn.
pub(crate) fn nacked_loss_pct(requests: u64, packets: u64) -> f64 {
    if packets == 0 {
        return 0.0;
    }
    (100.0 * requests as f64 / packets as f64).min(100.0)
}

/// Start the peer's FEC control thread: every second, read the loss the remote side reports,
/// set the ULPFEC overhead of every sending video transceiver and tell the peer's loss
/// listeners. Ends when the peer is dropped or closed.
pub(crate) fn spawn_fec_control(peer: &Peer, max_pct: u32) {
    let weak = peer.downgrade();
    let spawned = std::thread::Builder::new()
        .name("sw-fec".into())
        .spawn(move || {
            // Smoothed loss per kind (%), so one bad report does not swing the overhead.
            let mut smoothed: HashMap<MediaKind, f64> = HashMap::new();
            // (retransmissions sent, video packets sent) at the last period.
            let mut last_video: Option<(u64, u64)> = None;
            loop {
                std::thread::sleep(PERIOD);
                let Some(peer) = weak.upgrade() else {
                    return;
                };
                let closed = matches!(
                    peer.connection_state(),
                    ConnectionState::Closed | ConnectionState::Failed
                );
                // `Peer::close` stops the webrtcbin and takes it out of its bin.
                if closed || peer.webrtcbin().parent().is_none() {
                    return;
                }
                let Some(raw) = peer.raw_stats(Duration::from_millis(500)) else {
                    continue;
                };
                let mut now: HashMap<MediaKind, f64> = HashMap::new();
                let (reported, video_sent) = sent_by_kind(&raw);
                for (kind, f) in reported {
                    let e = now.entry(kind).or_insert(0.0);
                    *e = e.max(f * 100.0);
                }
                let requests = peer.repair_counters().sent.rtx_packets;
                if let Some((r0, v0)) = last_video.replace((requests, video_sent)) {
                    let nacked =
                        nacked_loss_pct(requests.saturating_sub(r0), video_sent.saturating_sub(v0));
                    let e = now.entry(MediaKind::Video).or_insert(0.0);
                    *e = e.max(nacked);
                }
                for (kind, pct) in now {
                    let s = smoothed.entry(kind).or_insert(pct);
                    // Up at once, down slowly.
                    *s = if pct > *s { pct } else { 0.7 * *s + 0.3 * pct };
                }
                let video = smoothed.get(&MediaKind::Video).copied().unwrap_or(0.0);
                set_fec_percentage(peer.webrtcbin(), fec_percentage_for_loss(video, max_pct));
                for (kind, pct) in &smoothed {
                    peer.remote_loss(*kind, *pct);
                }
            }
        });
    if let Err(e) = spawned {
        tracing::warn!("no FEC control thread: {e}");
    }
}

/// The sending video transceivers with RED+ULPFEC of `webrtcbin` (a sending transceiver has a
/// sink pad).
pub(crate) fn fec_transceivers(webrtcbin: &gst::Element) -> Vec<WebRTCRTPTransceiver> {
    webrtcbin
        .sink_pads()
        .into_iter()
        .filter(|p| p.has_property("transceiver"))
        .filter_map(|p| p.property::<Option<WebRTCRTPTransceiver>>("transceiver"))
        .filter(|t| {
            let dir = t.property::<WebRTCRTPTransceiverDirection>("direction");
            matches!(
                dir,
                WebRTCRTPTransceiverDirection::Sendonly | WebRTCRTPTransceiverDirection::Sendrecv
            ) && t.property::<WebRTCFECType>("fec-type") == WebRTCFECType::UlpRed
        })
        .collect()
}

fn set_fec_percentage(webrtcbin: &gst::Element, pct: u32) {
    for t in fec_transceivers(webrtcbin) {
        if t.property::<u32>("fec-percentage") != pct {
            tracing::debug!(pct, "ULPFEC overhead");
            t.set_property("fec-percentage", pct);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_fec_on_a_clean_link_and_capped_overhead() {
        assert_eq!(fec_percentage_for_loss(0.0, 50), 0);
        assert_eq!(fec_percentage_for_loss(0.99, 50), 0);
        assert_eq!(fec_percentage_for_loss(1.0, 50), 5);
        assert_eq!(fec_percentage_for_loss(10.0, 50), 30);
        assert_eq!(fec_percentage_for_loss(10.0, 20), 20);
        assert_eq!(fec_percentage_for_loss(f64::NAN, 50), 0);
    }

    #[test]
    fn nacked_share_of_the_sent_packets() {
        assert_eq!(nacked_loss_pct(0, 0), 0.0);
        assert_eq!(nacked_loss_pct(5, 100), 5.0);
        assert_eq!(nacked_loss_pct(300, 100), 100.0);
    }
}
