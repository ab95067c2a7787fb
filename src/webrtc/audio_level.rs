//! Audio levels (RFC 6464, `urn:ietf:params:rtp-hdrext:ssrc-audio-level`) and the active
//! speaker.
//!
//! Sending: the publisher measures every raw audio buffer before the Opus encoder
//! ([`dbov_s16`], [`dbov_f32`]) and puts the latest level as a `GstAudioLevelMeta` on each
//! encoded buffer entering the tee, so every peer's `rtpopuspay` writes it with
//! `rtphdrextclientaudiolevel` (the encoder's output buffers are new buffers: a meta on the
//! raw buffers would not reach the payloader).
//!
//! Receiving: the subscriber reads the extension from each RTP packet at the Opus
//! depayloader's sink pad, and a per-subscriber tracker turns the levels of all members
//! into [`SubscriberEvent::AudioLevels`] (at most one per [`LEVEL_EVENT_INTERVAL`]) and
//! [`SubscriberEvent::ActiveSpeakerChanged`] (a member must be loudest by
//! [`ACTIVE_SPEAKER_MARGIN_DB`] for [`ACTIVE_SPEAKER_HOLD`]).
//!
//! Levels are in dBov as RFC 6464 sends them: 0 is the loudest, 127 silence.
//!
//! ```
//! use streamwire::webrtc::audio_level::{SILENCE_DBOV, dbov_s16};
//! assert_eq!(dbov_s16(&[0; 960]), SILENCE_DBOV);
//! assert_eq!(dbov_s16(&[i16::MAX, i16::MIN]), 0);
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use gst::prelude::*;

use super::subscriber::{MemberLevel, SubscriberEvent};

/// URI of the client-to-mixer audio level header extension (RFC 6464).
pub const AUDIO_LEVEL_URI: &str = "urn:ietf:params:rtp-hdrext:ssrc-audio-level";
/// The level of digital silence (and of a member whose audio stopped arriving), in dBov.
pub const SILENCE_DBOV: u8 = 127;
/// Levels at or below this (louder) carry the voice-activity flag and can make a member the
/// active speaker (dBov).
pub const SPEECH_MAX_DBOV: u8 = 70;
/// At most one [`SubscriberEvent::AudioLevels`] per interval (4 per second).
pub const LEVEL_EVENT_INTERVAL: Duration = Duration::from_millis(250);
/// A member whose last level is older than this counts as silent ([`SILENCE_DBOV`]): Opus
/// DTX or a stopped track sends no packets.
pub const LEVEL_STALE: Duration = Duration::from_secs(1);
/// A new active speaker must be at least this much louder than the current one (dB).
pub const ACTIVE_SPEAKER_MARGIN_DB: u8 = 6;
/// ... continuously for this long.
pub const ACTIVE_SPEAKER_HOLD: Duration = Duration::from_millis(1000);

/// Level in dBov (0 loudest, [`SILENCE_DBOV`] silence) of an RMS relative to full scale.
fn dbov_of_rms(rms: f64) -> u8 {
    if rms <= 0.0 || !rms.is_finite() {
        return SILENCE_DBOV;
    }
    let db = -20.0 * rms.min(1.0).log10();
    db.round().clamp(0.0, f64::from(SILENCE_DBOV)) as u8
}

/// Level in dBov of signed 16-bit samples (RMS against full scale).
pub fn dbov_s16(samples: &[i16]) -> u8 {
    if samples.is_empty() {
        return SILENCE_DBOV;
    }
    let sum: f64 = samples
        .iter()
        .map(|&s| {
            let x = f64::from(s) / 32768.0;
            x * x
        })
        .sum();
    dbov_of_rms((sum / samples.len() as f64).sqrt())
}

/// Level in dBov of 32-bit float samples (full scale ±1.0).
pub fn dbov_f32(samples: &[f32]) -> u8 {
    if samples.is_empty() {
        return SILENCE_DBOV;
    }
    let sum: f64 = samples
        .iter()
        .map(|&s| {
            let x = f64::from(s);
            x * x
        })
        .sum();
    dbov_of_rms((sum / samples.len() as f64).sqrt())
}

/// Level of one raw buffer of `format` (`S16LE` or `F32LE`); `None` for other formats.
fn buffer_dbov(buf: &gst::BufferRef, format: &str) -> Option<u8> {
    let map = buf.map_readable().ok()?;
    let bytes = map.as_slice();
    match format {
        "S16LE" => {
            let s: Vec<i16> = bytes
                .chunks_exact(2)
                .map(|c| i16::from_le_bytes([c[0], c[1]]))
                .collect();
            Some(dbov_s16(&s))
        }
        "F32LE" => {
            let s: Vec<f32> = bytes
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            Some(dbov_f32(&s))
        }
        _ => None,
    }
}

/// Measure the raw audio passing `raw_pad` and put the latest level as `GstAudioLevelMeta`
/// on every encoded buffer passing `encoded_pad` (the tee's sink pad), for the payloaders'
/// `rtphdrextclientaudiolevel`.
pub(crate) fn stamp_levels(raw_pad: &gst::Pad, encoded_pad: &gst::Pad) {
    let level = Arc::new(AtomicU8::new(SILENCE_DBOV));
    let l = level.clone();
    raw_pad.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
        let format = pad.current_caps().and_then(|c| {
            c.structure(0)
                .and_then(|s| s.get::<&str>("format").ok().map(str::to_owned))
        });
        if let (Some(buf), Some(format)) = (info.buffer(), format)
            && let Some(db) = buffer_dbov(buf, &format)
        {
            l.store(db, Ordering::Relaxed);
        }
        gst::PadProbeReturn::Ok
    });
    encoded_pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        if let Some(buf) = info.buffer_mut() {
            let buf = buf.make_mut();
            if buf.meta::<gst_audio::AudioLevelMeta>().is_none() {
                let db = level.load(Ordering::Relaxed);
                gst_audio::AudioLevelMeta::add(buf, db, db <= SPEECH_MAX_DBOV);
            }
        }
        gst::PadProbeReturn::Ok
    });
}

/// The audio level header extension id in RTP caps (`extmap-N` naming [`AUDIO_LEVEL_URI`]).
pub(crate) fn ext_id_in_caps(s: &gst::StructureRef) -> Option<u8> {
    s.iter().find_map(|(name, value)| {
        let id = name.strip_prefix("extmap-")?.parse::<u8>().ok()?;
        let uri = value.get::<String>().ok().or_else(|| {
            // `extmap-N` may also be an array (direction, uri, attributes).
            value
                .get::<gst::Array>()
                .ok()
                .and_then(|a| a.as_slice().get(1).and_then(|v| v.get::<String>().ok()))
        })?;
        (uri == AUDIO_LEVEL_URI).then_some(id)
    })
}

/// The level and voice-activity flag an RTP packet carries in extension `id` (one-byte or
/// two-byte header form); `None` if it has none or is not RTP.
pub(crate) fn rtp_level(buf: &gst::BufferRef, id: u8) -> Option<(u8, bool)> {
    let rtp = gst_rtp::RTPBuffer::from_buffer_readable(buf).ok()?;
    let data = rtp
        .extension_onebyte_header(id, 0)
        .or_else(|| rtp.extension_twobytes_header(id, 0).map(|(_, d)| d))?;
    let b = *data.first()?;
    Some((b & 0x7f, b & 0x80 != 0))
}

/// The levels of all received members and the active speaker, with the event rate bound and
/// the hysteresis of the module documentation.
#[derive(Debug, Default)]
pub(crate) struct Speakers {
    levels: BTreeMap<String, (u8, Instant)>,
    last_emit: Option<Instant>,
    active: Option<String>,
    /// The member that is loudest by the margin, and since when.
    candidate: Option<(String, Instant)>,
}

impl Speakers {
    /// The current level of each member (stale ones count as silence).
    fn current(&self, now: Instant) -> Vec<MemberLevel> {
        self.levels
            .iter()
            .map(|(peer, (db, at))| MemberLevel {
                peer: peer.clone(),
                dbov: if now.duration_since(*at) > LEVEL_STALE {
                    SILENCE_DBOV
                } else {
                    *db
                },
            })
            .collect()
    }

    /// `peer`'s audio arrived at `level` at `now`; the events to emit.
    pub(crate) fn observe(&mut self, peer: &str, level: u8, now: Instant) -> Vec<SubscriberEvent> {
        match self.levels.get_mut(peer) {
            Some(e) => *e = (level, now),
            None => {
                self.levels.insert(peer.to_owned(), (level, now));
            }
        }
        let current = self.current(now);
        let mut out = Vec::new();
        if let Some(ev) = self.decide(&current, now) {
            out.push(ev);
        }
        if self
            .last_emit
            .is_none_or(|t| now.duration_since(t) >= LEVEL_EVENT_INTERVAL)
        {
            self.last_emit = Some(now);
            out.push(SubscriberEvent::AudioLevels { levels: current });
        }
        out
    }

    fn decide(&mut self, current: &[MemberLevel], now: Instant) -> Option<SubscriberEvent> {
        // Loudest = lowest dBov; ties go to the first id.
        let loudest = current.iter().min_by_key(|m| m.dbov)?;
        let active_db = self
            .active
            .as_ref()
            .and_then(|a| current.iter().find(|m| &m.peer == a))
            .map_or(SILENCE_DBOV, |m| m.dbov);
        let wins = loudest.dbov <= SPEECH_MAX_DBOV
            && self.active.as_deref() != Some(loudest.peer.as_str())
            && loudest.dbov.saturating_add(ACTIVE_SPEAKER_MARGIN_DB) <= active_db;
        if !wins {
            self.candidate = None;
            return None;
        }
        match &self.candidate {
            Some((p, since)) if p == &loudest.peer => {
                if now.duration_since(*since) >= ACTIVE_SPEAKER_HOLD {
                    self.candidate = None;
                    self.active = Some(loudest.peer.clone());
                    return Some(SubscriberEvent::ActiveSpeakerChanged {
                        peer: self.active.clone(),
                    });
                }
                None
            }
            _ => {
                self.candidate = Some((loudest.peer.clone(), now));
                None
            }
        }
    }

    /// `peer` stopped sending (left, or its audio track was removed); an event if it was the
    /// active speaker.
    pub(crate) fn remove(&mut self, peer: &str) -> Option<SubscriberEvent> {
        self.levels.remove(peer);
        if self.candidate.as_ref().is_some_and(|(p, _)| p == peer) {
            self.candidate = None;
        }
        if self.active.as_deref() == Some(peer) {
            self.active = None;
            return Some(SubscriberEvent::ActiveSpeakerChanged { peer: None });
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn changes(evs: &[SubscriberEvent]) -> Vec<Option<String>> {
        evs.iter()
            .filter_map(|e| match e {
                SubscriberEvent::ActiveSpeakerChanged { peer } => Some(peer.clone()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn dbov_of_a_full_scale_sine_is_3_and_of_a_tenth_23() {
        let sine = |amp: f64| -> Vec<i16> {
            (0..4800)
                .map(|i| (amp * 32767.0 * (i as f64 * 0.0571).sin()) as i16)
                .collect()
        };
        assert_eq!(dbov_s16(&sine(1.0)), 3);
        assert_eq!(dbov_s16(&sine(0.1)), 23);
        assert_eq!(dbov_f32(&[0.0; 10]), SILENCE_DBOV);
        assert_eq!(dbov_f32(&[1e-9; 10]), SILENCE_DBOV);
    }

    #[test]
    fn a_speaker_needs_the_margin_for_the_hold_time() {
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        let mut s = Speakers::default();
        let mut evs = Vec::new();
        // a speaks, b is silent: a becomes active after the hold time, not before.
        for n in (0..=900).step_by(20) {
            evs.extend(s.observe("a", 20, ms(n)));
            evs.extend(s.observe("b", 127, ms(n)));
        }
        assert!(changes(&evs).is_empty());
        evs.extend(s.observe("a", 20, ms(1020)));
        assert_eq!(changes(&evs), vec![Some("a".to_owned())]);
        // b gets louder than a, but by less than the margin: no change.
        evs.clear();
        for n in (1040..4000).step_by(20) {
            evs.extend(s.observe("a", 20, ms(n)));
            evs.extend(s.observe("b", 16, ms(n)));
        }
        assert!(changes(&evs).is_empty());
        // By the margin, but for less than the hold time, interrupted: no change.
        for n in (4000..4800).step_by(20) {
            evs.extend(s.observe("a", 20, ms(n)));
            evs.extend(s.observe("b", 10, ms(n)));
        }
        evs.extend(s.observe("b", 19, ms(4800)));
        assert!(changes(&evs).is_empty());
        // By the margin for the hold time: b.
        for n in (4820..6000).step_by(20) {
            evs.extend(s.observe("a", 20, ms(n)));
            evs.extend(s.observe("b", 10, ms(n)));
        }
        assert_eq!(changes(&evs), vec![Some("b".to_owned())]);
        assert_eq!(
            s.remove("b"),
            Some(SubscriberEvent::ActiveSpeakerChanged { peer: None })
        );
    }

    #[test]
    fn level_events_are_at_most_four_per_second_and_stale_members_are_silent() {
        let t0 = Instant::now();
        let mut s = Speakers::default();
        let mut levels = Vec::new();
        for n in (0..2000).step_by(20) {
            for e in s.observe("a", 30, t0 + Duration::from_millis(n)) {
                if let SubscriberEvent::AudioLevels { levels: l } = e {
                    levels.push(l);
                }
            }
        }
        assert_eq!(levels.len(), 8);
        let _ = s.observe("b", 50, t0 + Duration::from_millis(1990));
        // a's packets stopped 1.5 s before.
        let evs = s.observe("b", 50, t0 + Duration::from_millis(3500));
        let Some(SubscriberEvent::AudioLevels { levels }) = evs.last() else {
            panic!("no levels: {evs:?}");
        };
        assert_eq!(
            levels,
            &vec![
                MemberLevel {
                    peer: "a".into(),
                    dbov: SILENCE_DBOV
                },
                MemberLevel {
                    peer: "b".into(),
                    dbov: 50
                },
            ]
        );
    }
}
