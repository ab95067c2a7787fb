//! One RTCP compound packet per received medium, as browsers send them, instead of the one
//! compound a bundled `rtpsession` sends for all of them.
//!
//! With `max-bundle`, webrtcbin has one RTP session for every m-line, and `rtpsession` sends
//! one compound packet per interval: a receiver report with a report block for each medium it
//! receives (in no fixed order), then the feedback (NACK, PLI, transport-wide CC). Janus maps a
//! compound from a peer that sends nothing (a subscriber) to a medium by the SSRC of the
//! *first* report block, and handles everything in it as that medium's: when that block is the
//! audio one, the video's PLIs are dropped (VideoRoom only acts on video feedback) and its
//! NACKs are looked up among the audio packets, so a Rust subscriber through Janus neither
//! got keyframes on request nor retransmissions, and its loss went unreported. Browsers send
//! one compound per medium, which is what Janus expects.
//!
//! Worse, the early feedback `rtpsession` sends between its regular reports (a NACK, a PLI or
//! FIR) carries an empty receiver report: Janus then finds the medium of a NACK by its media
//! SSRC, but drops a PLI or FIR (it looks for the SSRC of a payload-specific feedback nowhere),
//! so a Rust subscriber's keyframe requests never reached the publisher through Janus.
//!
//! [`split_per_media`] watches the RTCP leaving `rtpbin` and splits each compound with report
//! blocks for several media (or feedback for a medium other than the first block's) into one
//! compound per medium: the report (SR or RR, its sender part unchanged) with that medium's
//! block only, the SDES, and the feedback about that medium. Feedback about a medium without
//! a block in the compound gets that medium's last block ([`Blocks`], its delay since the
//! last sender report advanced by the time since), or, before there is one, a compound with an
//! empty report of its own. BYE, APP and XR stay in the first compound. Any compound this does
//! not understand (no report first, padding, a length that does not add up) passes unchanged.
//! RFC 3550 allows any number of compounds per interval. Only connections to Janus do this
//! (`PeerConfig::rtcp_per_medium`): with it on for a mesh peer, a browser's processed
//! microphone recording in `tests/web_audio_dump.rs` came out nearly silent in 3 of 7 runs
//! (not understood; 0 of 4 without it), so the mesh keeps `rtpsession`'s compounds.

use std::cell::Cell;
use std::collections::HashMap;
use std::time::Instant;

use gst::prelude::*;
use parking_lot::Mutex;

const SR: u8 = 200;
const RR: u8 = 201;
const SDES: u8 = 202;
const RTPFB: u8 = 205;
const PSFB: u8 = 206;
/// A report block's size (RFC 3550 6.4.1).
const BLOCK: usize = 24;

thread_local! {
    /// The probe is pushing the extra compounds of a split itself: let them through.
    static PUSHING: Cell<bool> = const { Cell::new(false) };
}

/// Split the RTCP `rtpbin` (webrtcbin's) sends into one compound per medium (see the module
/// documentation). Call once, when the peer is created.
pub(crate) fn split_per_media(rtpbin: &gst::Element) {
    for pad in rtpbin.src_pads() {
        watch(&pad);
    }
    rtpbin.connect_pad_added(|_, pad| watch(pad));
}

fn watch(pad: &gst::Pad) {
    if !pad.name().starts_with("send_rtcp_src_") {
        return;
    }
    let blocks = Mutex::new(Blocks::default());
    pad.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
        if PUSHING.get() {
            return gst::PadProbeReturn::Ok;
        }
        let Some(buffer) = info.buffer() else {
            return gst::PadProbeReturn::Ok;
        };
        let parts = match buffer.map_readable() {
            Ok(map) => split(&map, &mut blocks.lock(), Instant::now()),
            Err(_) => None,
        };
        let Some(parts) = parts else {
            return gst::PadProbeReturn::Ok;
        };
        let pts = buffer.pts();
        let make = |bytes: Vec<u8>| {
            let mut b = gst::Buffer::from_mut_slice(bytes);
            if let Some(b) = b.get_mut() {
                b.set_pts(pts);
            }
            b
        };
        let mut parts = parts.into_iter();
        let Some(first) = parts.next() else {
            return gst::PadProbeReturn::Ok;
        };
        PUSHING.set(true);
        for p in parts {
            if pad.push(make(p)).is_err() {
                break;
            }
        }
        PUSHING.set(false);
        info.data = Some(gst::PadProbeData::Buffer(make(first)));
        gst::PadProbeReturn::Ok
    });
}

/// The last report block sent about each medium (by its SSRC), and when.
#[derive(Default)]
struct Blocks(HashMap<u32, ([u8; BLOCK], Instant)>);

/// Media whose last report block is kept at most (a peer receives a few).
const MAX_BLOCKS: usize = 64;

impl Blocks {
    fn keep(&mut self, ssrc: u32, block: &[u8], now: Instant) {
        let Ok(b) = <[u8; BLOCK]>::try_from(block) else {
            return;
        };
        if self.0.len() >= MAX_BLOCKS && !self.0.contains_key(&ssrc) {
            self.0.clear();
        }
        self.0.insert(ssrc, (b, now));
    }

    /// The last block about `ssrc` as it reads at `now`: its DLSR (the delay since the last
    /// sender report, 1/65536 s) grown by the time since it was sent, so that the sender's
    /// round-trip time stays right.
    fn at(&self, ssrc: u32, now: Instant) -> Option<[u8; BLOCK]> {
        let (mut b, sent) = *self.0.get(&ssrc)?;
        let lsr = u32::from_be_bytes([b[16], b[17], b[18], b[19]]);
        if lsr != 0 {
            let dlsr = u32::from_be_bytes([b[20], b[21], b[22], b[23]]);
            let since = (now.duration_since(sent).as_secs_f64() * 65536.0) as u32;
            b[20..24].copy_from_slice(&dlsr.saturating_add(since).to_be_bytes());
        }
        Some(b)
    }
}

/// One RTCP packet of a compound.
struct Packet<'a> {
    kind: u8,
    bytes: &'a [u8],
}

/// The packets of compound `data`, or `None` if it is malformed or padded.
fn packets(data: &[u8]) -> Option<Vec<Packet<'_>>> {
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        if rest.len() < 4 || rest[0] >> 6 != 2 || rest[0] & 0x20 != 0 {
            return None;
        }
        let len = (usize::from(u16::from_be_bytes([rest[2], rest[3]])) + 1) * 4;
        if len > rest.len() {
            return None;
        }
        out.push(Packet {
            kind: rest[1],
            bytes: &rest[..len],
        });
        rest = &rest[len..];
    }
    Some(out)
}

fn ssrc_at(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at + 4)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// `report` (an SR or RR) with only `blocks` (each [`BLOCK`] bytes) and no extension.
fn report_with(report: &[u8], fixed: usize, blocks: &[&[u8]]) -> Vec<u8> {
    let mut out = report[..fixed].to_vec();
    for b in blocks {
        out.extend_from_slice(b);
    }
    out[0] = (out[0] & 0xe0) | (blocks.len() as u8 & 0x1f);
    let words = (out.len() / 4 - 1) as u16;
    out[2..4].copy_from_slice(&words.to_be_bytes());
    out
}

/// Compound `data` split per medium, or `None` when it needs no split (or is not understood).
/// `blocks` keeps each medium's last report block, for feedback sent without one.
fn split(data: &[u8], kept: &mut Blocks, now: Instant) -> Option<Vec<Vec<u8>>> {
    let packets = packets(data)?;
    let report = packets.first().filter(|p| p.kind == SR || p.kind == RR)?;
    let fixed = if report.kind == SR { 28 } else { 8 };
    let count = usize::from(report.bytes[0] & 0x1f);
    if report.bytes.len() < fixed + count * BLOCK {
        return None;
    }
    let blocks: Vec<(u32, &[u8])> = (0..count)
        .map(|i| {
            let b = &report.bytes[fixed + i * BLOCK..fixed + (i + 1) * BLOCK];
            (u32::from_be_bytes([b[0], b[1], b[2], b[3]]), b)
        })
        .collect();
    for (ssrc, b) in &blocks {
        kept.keep(*ssrc, b, now);
    }
    let mut feedback: Vec<(u32, &[u8])> = Vec::new();
    let mut sdes: Vec<&[u8]> = Vec::new();
    let mut other: Vec<&[u8]> = Vec::new();
    for p in &packets[1..] {
        match p.kind {
            RTPFB | PSFB => feedback.push((ssrc_at(p.bytes, 8)?, p.bytes)),
            SDES => sdes.push(p.bytes),
            SR | RR => return None,
            _ => other.push(p.bytes),
        }
    }
    let first_medium = blocks.first().map(|(s, _)| *s);
    let needs_split = blocks.len() > 1 || feedback.iter().any(|(m, _)| Some(*m) != first_medium);
    if !needs_split {
        return None;
    }
    let mut out = Vec::new();
    for (i, (ssrc, block)) in blocks.iter().enumerate() {
        let mut c = report_with(report.bytes, fixed, &[block]);
        sdes.iter().for_each(|s| c.extend_from_slice(s));
        if i == 0 {
            other.iter().for_each(|o| c.extend_from_slice(o));
        }
        for (_, fb) in feedback.iter().filter(|(m, _)| m == ssrc) {
            c.extend_from_slice(fb);
        }
        out.push(c);
    }
    // Feedback about media without a block here: with the medium's last block if there is one.
    let mut orphans: Vec<&[u8]> = Vec::new();
    let mut media: Vec<u32> = Vec::new();
    for (m, fb) in &feedback {
        if blocks.iter().any(|(s, _)| s == m) {
            continue;
        }
        if kept.0.contains_key(m) {
            if !media.contains(m) {
                media.push(*m);
            }
        } else {
            orphans.push(fb);
        }
    }
    for m in media {
        let Some(block) = kept.at(m, now) else {
            continue;
        };
        let mut c = report_with(report.bytes, fixed, &[&block]);
        sdes.iter().for_each(|s| c.extend_from_slice(s));
        if out.is_empty() {
            other.iter().for_each(|o| c.extend_from_slice(o));
        }
        for (_, fb) in feedback.iter().filter(|(f, _)| *f == m) {
            c.extend_from_slice(fb);
        }
        out.push(c);
    }
    if !orphans.is_empty() || out.is_empty() {
        let mut c = report_with(report.bytes, fixed, &[]);
        sdes.iter().for_each(|s| c.extend_from_slice(s));
        if out.is_empty() {
            other.iter().for_each(|o| c.extend_from_slice(o));
        }
        orphans.iter().for_each(|fb| c.extend_from_slice(fb));
        out.push(c);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ME: u32 = 0x0102_0304;
    const AUDIO: u32 = 0xaaaa_0001;
    const VIDEO: u32 = 0xbbbb_0002;

    fn header(count: u8, kind: u8, body: &[u8]) -> Vec<u8> {
        let mut p = vec![0x80 | count, kind, 0, 0];
        p.extend_from_slice(body);
        let words = (p.len() / 4 - 1) as u16;
        p[2..4].copy_from_slice(&words.to_be_bytes());
        p
    }

    fn block(ssrc: u32, lost: u8) -> Vec<u8> {
        let mut b = ssrc.to_be_bytes().to_vec();
        b.extend_from_slice(&[lost; 20]);
        b
    }

    fn rr(blocks: &[u32]) -> Vec<u8> {
        let mut body = ME.to_be_bytes().to_vec();
        for (i, s) in blocks.iter().enumerate() {
            body.extend(block(*s, i as u8));
        }
        header(blocks.len() as u8, RR, &body)
    }

    fn sdes() -> Vec<u8> {
        let mut body = ME.to_be_bytes().to_vec();
        body.extend_from_slice(&[1, 2, b'a', b'b', 0, 0, 0, 0]);
        header(1, SDES, &body)
    }

    fn pli(media: u32) -> Vec<u8> {
        let mut body = ME.to_be_bytes().to_vec();
        body.extend(media.to_be_bytes());
        header(1, PSFB, &body)
    }

    fn nack(media: u32) -> Vec<u8> {
        let mut body = ME.to_be_bytes().to_vec();
        body.extend(media.to_be_bytes());
        body.extend_from_slice(&[0, 7, 0, 0]);
        header(1, RTPFB, &body)
    }

    fn concat(parts: &[Vec<u8>]) -> Vec<u8> {
        parts.concat()
    }

    /// [`split`] with nothing kept from earlier compounds.
    fn split_alone(data: &[u8]) -> Option<Vec<Vec<u8>>> {
        split(data, &mut Blocks::default(), Instant::now())
    }

    #[test]
    fn one_compound_per_medium_with_its_feedback() {
        let compound = concat(&[rr(&[AUDIO, VIDEO]), sdes(), nack(VIDEO), pli(VIDEO)]);
        let out = split_alone(&compound).expect("split");
        assert_eq!(out.len(), 2);
        assert_eq!(out[0], concat(&[rr(&[AUDIO]), sdes()]));
        // The video compound's report block is the video one (its loss figures kept).
        let mut video_rr = rr(&[VIDEO]);
        video_rr[8..].copy_from_slice(&block(VIDEO, 1));
        assert_eq!(out[1], concat(&[video_rr, sdes(), nack(VIDEO), pli(VIDEO)]));
        for c in &out {
            assert!(packets(c).is_some(), "well-formed");
        }
    }

    #[test]
    fn a_compound_about_one_medium_is_left_alone() {
        assert_eq!(
            split_alone(&concat(&[rr(&[VIDEO]), sdes(), pli(VIDEO)])),
            None
        );
        assert_eq!(split_alone(&concat(&[rr(&[]), sdes()])), None);
    }

    #[test]
    fn feedback_without_a_report_block_gets_a_compound_of_its_own() {
        let out = split_alone(&concat(&[rr(&[AUDIO]), sdes(), pli(VIDEO)])).expect("split");
        assert_eq!(
            out,
            vec![
                concat(&[rr(&[AUDIO]), sdes()]),
                concat(&[rr(&[]), sdes(), pli(VIDEO)])
            ]
        );
    }

    #[test]
    fn early_feedback_gets_the_mediums_last_block_with_its_delay_advanced() {
        let mut kept = Blocks::default();
        let t0 = Instant::now();
        // A regular report: its blocks are kept.
        let regular = concat(&[rr(&[AUDIO, VIDEO]), sdes()]);
        assert_eq!(split(&regular, &mut kept, t0).map(|o| o.len()), Some(2));
        // Early feedback half a second later, with an empty report.
        let early = concat(&[rr(&[]), sdes(), pli(VIDEO)]);
        let out = split(
            &early,
            &mut kept,
            t0 + std::time::Duration::from_millis(500),
        )
        .expect("split");
        assert_eq!(out.len(), 1);
        let c = &out[0];
        assert_eq!(c[0] & 0x1f, 1, "one report block");
        assert_eq!(ssrc_at(c, 8), Some(VIDEO));
        // block(VIDEO, 1): LSR 0x01010101, DLSR 0x01010101 + 0.5 s (32768).
        assert_eq!(ssrc_at(c, 8 + 16), Some(0x0101_0101));
        assert_eq!(ssrc_at(c, 8 + 20), Some(0x0101_0101 + 32768));
        assert!(c.ends_with(&pli(VIDEO)));
        assert!(packets(c).is_some());
    }

    #[test]
    fn what_is_not_understood_passes_unchanged() {
        let good = concat(&[rr(&[AUDIO, VIDEO]), sdes()]);
        assert_eq!(split_alone(&good[..good.len() - 4]), None, "truncated");
        assert_eq!(
            split_alone(&concat(&[sdes(), rr(&[AUDIO, VIDEO])])),
            None,
            "no report first"
        );
        let mut padded = good.clone();
        padded[0] |= 0x20;
        assert_eq!(split_alone(&padded), None, "padding");
        assert_eq!(split_alone(&[]), None);
    }

    #[test]
    fn a_sender_report_keeps_its_sender_part() {
        let mut body = ME.to_be_bytes().to_vec();
        body.extend_from_slice(&[9; 20]);
        body.extend(block(AUDIO, 0));
        body.extend(block(VIDEO, 1));
        let sr = header(2, SR, &body);
        let out = split_alone(&concat(&[sr.clone(), sdes()])).expect("split");
        assert_eq!(out.len(), 2);
        assert_eq!(&out[1][4..28], &sr[4..28], "SSRC and sender info");
        assert_eq!(ssrc_at(&out[1], 28), Some(VIDEO));
        assert_eq!(out[1][0] & 0x1f, 1);
    }
}
