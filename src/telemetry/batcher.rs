//! The client-side, consent-aware batcher: turns `devicetelemetry` bus messages and per-peer
//! WebRTC statistics into [`Batch`]es at the application's consent level.
//!
//! Every key is filtered through the field registry here, whatever the producer put in its
//! message: undisclosed keys are never batched, optional keys only at `full`, and at `none`
//! nothing is kept at all.

use std::collections::{BTreeMap, VecDeque};

use gststreamwire::telemetry::{Consent, MESSAGE_NAME, PEER_STATS, REGISTRY};

use crate::signalling::protocol::telemetry::{Batch, FieldValue, Record, Source};

/// Default bound on pending records; the oldest are dropped beyond it.
pub const DEFAULT_MAX_PENDING: usize = 10_000;

/// One track's telemetry sample over the last interval (the fields of a `peer` record; the
/// media engine's own figures are [`crate::webrtc::stats::PeerStats`], turned into these by
/// [`Batcher::push_webrtc_stats`]). `None` means unknown.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TrackSample {
    /// Bits per second.
    pub bitrate: Option<f64>,
    /// Frames per second (video).
    pub fps: Option<f64>,
    /// Round-trip time, milliseconds.
    pub rtt_ms: Option<f64>,
    /// Packet loss over the interval, percent.
    pub packet_loss_pct: Option<f64>,
    /// Jitter, milliseconds.
    pub jitter_ms: Option<f64>,
    /// Quality score 0-100; derived with [`quality_score`] when unset and loss, RTT or jitter
    /// are known.
    pub quality_score: Option<f64>,
    /// NACKs over the interval (optional field).
    pub nack_count: Option<f64>,
}

/// A simple 0-100 call-quality score: 100 minus penalties for loss (4 points per percent),
/// RTT above 150 ms (1 point per 10 ms) and jitter above 30 ms (1 point per 2 ms).
///
/// ```
/// use streamwire::telemetry::batcher::quality_score;
/// assert_eq!(quality_score(Some(50.0), Some(0.0), Some(5.0)), 100.0);
/// assert!(quality_score(Some(400.0), Some(10.0), Some(60.0)) < 40.0);
/// ```
pub fn quality_score(rtt_ms: Option<f64>, loss_pct: Option<f64>, jitter_ms: Option<f64>) -> f64 {
    let loss = loss_pct.unwrap_or(0.0).max(0.0) * 4.0;
    let rtt = (rtt_ms.unwrap_or(0.0) - 150.0).max(0.0) / 10.0;
    let jitter = (jitter_ms.unwrap_or(0.0) - 30.0).max(0.0) / 2.0;
    (100.0 - loss - rtt - jitter).clamp(0.0, 100.0)
}

/// Consent-aware batcher.
///
/// ```
/// use gststreamwire::telemetry::Consent;
/// use streamwire::telemetry::batcher::{Batcher, TrackSample};
/// let mut b = Batcher::new(Consent::Necessary);
/// b.push_track_sample("video0", &TrackSample { rtt_ms: Some(20.0), nack_count: Some(3.0), ..Default::default() }, 1_000);
/// let batch = b.take_batch().unwrap();
/// assert!(batch.records[0].fields.contains_key("rtt"));
/// assert!(!batch.records[0].fields.contains_key("nack-count")); // optional field
/// let mut none = Batcher::new(Consent::None);
/// none.push_track_sample("video0", &TrackSample { rtt_ms: Some(20.0), ..Default::default() }, 1_000);
/// assert!(none.take_batch().is_none());
/// ```
#[derive(Debug)]
pub struct Batcher {
    consent: Consent,
    pending: VecDeque<Record>,
    max_pending: usize,
    dropped_overflow: u64,
}

impl Batcher {
    /// A batcher at `consent` with [`DEFAULT_MAX_PENDING`].
    pub fn new(consent: Consent) -> Self {
        Self::with_capacity(consent, DEFAULT_MAX_PENDING)
    }

    /// A batcher at `consent` keeping at most `max_pending` records.
    pub fn with_capacity(consent: Consent, max_pending: usize) -> Self {
        Self {
            consent,
            pending: VecDeque::new(),
            max_pending: max_pending.max(1),
            dropped_overflow: 0,
        }
    }

    /// The current consent level.
    pub fn consent(&self) -> Consent {
        self.consent
    }

    /// Changes the consent level. Lowering it also strips pending records of what the new
    /// level does not allow (at `none`, everything pending is discarded).
    pub fn set_consent(&mut self, consent: Consent) {
        self.consent = consent;
        let allowed = |source: Source, key: &str| field_ok(source, key, consent);
        for r in &mut self.pending {
            let source = r.source;
            r.fields.retain(|k, _| allowed(source, k));
        }
        self.pending.retain(|r| !r.fields.is_empty());
    }

    /// Pending records.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// Whether nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Records dropped because the pending queue was full.
    pub fn dropped_overflow(&self) -> u64 {
        self.dropped_overflow
    }

    /// Takes a bus message: returns `true` if it was a `streamwire-telemetry` element message
    /// (whether or not anything of it was kept).
    pub fn push_message(&mut self, msg: &gst::MessageRef, ts_ms: i64) -> bool {
        match msg.view() {
            gst::MessageView::Element(e) => match e.structure() {
                Some(s) if s.name() == MESSAGE_NAME => {
                    self.push_structure(s, ts_ms);
                    true
                }
                _ => false,
            },
            _ => false,
        }
    }

    /// Takes a `streamwire-telemetry` structure's fields (keys outside the registry or above
    /// the consent are ignored).
    pub fn push_structure(&mut self, s: &gst::StructureRef, ts_ms: i64) {
        if self.consent == Consent::None {
            return;
        }
        let mut fields = BTreeMap::new();
        for (key, value) in s.iter() {
            if !field_ok(Source::Device, key.as_str(), self.consent) {
                continue;
            }
            if let Some(v) = to_field_value(value) {
                fields.insert(key.as_str().to_owned(), v);
            }
        }
        self.push(Record {
            ts_ms,
            source: Source::Device,
            track: String::new(),
            fields,
        });
    }

    /// Takes per-peer statistics of one track.
    pub fn push_track_sample(&mut self, track: &str, stats: &TrackSample, ts_ms: i64) {
        if self.consent == Consent::None {
            return;
        }
        let score = stats.quality_score.or_else(|| {
            (stats.rtt_ms.is_some() || stats.packet_loss_pct.is_some() || stats.jitter_ms.is_some())
                .then(|| quality_score(stats.rtt_ms, stats.packet_loss_pct, stats.jitter_ms))
        });
        let mut fields = BTreeMap::new();
        for (key, v) in [
            ("bitrate", stats.bitrate),
            ("fps", stats.fps),
            ("rtt", stats.rtt_ms),
            ("packet-loss", stats.packet_loss_pct),
            ("jitter", stats.jitter_ms),
            ("quality-score", score),
            ("nack-count", stats.nack_count),
        ] {
            if let Some(v) = v.filter(|v| v.is_finite())
                && field_ok(Source::Peer, key, self.consent)
            {
                fields.insert(key.to_owned(), FieldValue::Num(v));
            }
        }
        self.push(Record {
            ts_ms,
            source: Source::Peer,
            track: track.to_owned(),
            fields,
        });
    }

    /// Takes the WebRTC engine's statistics of one peer connection: one record per track,
    /// named `REMOTE/KIND-DIRECTION-SSRC` (e.g. `p2/video-send-1234`), with the peer's RTT
    /// and its 0-5 network quality scaled to the 0-100 `quality-score`.
    ///
    /// ```
    /// use gststreamwire::telemetry::Consent;
    /// use streamwire::telemetry::batcher::Batcher;
    /// use streamwire::webrtc::stats::PeerStats;
    /// let stats = PeerStats { peer: "p2".into(), rtt_ms: Some(8.0), send_kbps: 0.0, recv_kbps: 0.0,
    ///     estimated_kbps: None, quality: 5, tracks: vec![] };
    /// let mut b = Batcher::new(Consent::Necessary);
    /// b.push_webrtc_stats(&stats, 1);
    /// assert!(b.is_empty()); // no tracks, nothing to report
    /// ```
    pub fn push_webrtc_stats(&mut self, stats: &crate::webrtc::stats::PeerStats, ts_ms: i64) {
        for t in &stats.tracks {
            let kind = t.kind.map_or("unknown", |k| k.as_str());
            let dir = match t.direction {
                crate::webrtc::stats::Direction::Send => "send",
                crate::webrtc::stats::Direction::Receive => "recv",
            };
            let track = format!("{}/{kind}-{dir}-{}", stats.peer, t.ssrc);
            let ps = TrackSample {
                bitrate: Some(t.bitrate_kbps * 1000.0),
                fps: t.fps,
                rtt_ms: stats.rtt_ms,
                packet_loss_pct: Some(t.loss_pct),
                jitter_ms: Some(t.jitter_ms),
                quality_score: Some(f64::from(stats.quality.min(5)) * 20.0),
                nack_count: None,
            };
            self.push_track_sample(&track, &ps, ts_ms);
        }
    }

    fn push(&mut self, r: Record) {
        if r.fields.is_empty() {
            return;
        }
        if self.pending.len() >= self.max_pending {
            self.pending.pop_front();
            self.dropped_overflow += 1;
        }
        self.pending.push_back(r);
    }

    /// Takes everything pending as one batch; `None` when nothing is pending or consent is
    /// `none`.
    pub fn take_batch(&mut self) -> Option<Batch> {
        if self.consent == Consent::None {
            self.pending.clear();
            return None;
        }
        if self.pending.is_empty() {
            return None;
        }
        Some(Batch {
            consent: self.consent,
            records: self.pending.drain(..).collect(),
        })
    }
}

fn field_ok(source: Source, key: &str, consent: Consent) -> bool {
    let table = match source {
        Source::Device => REGISTRY,
        Source::Peer => PEER_STATS,
    };
    table
        .iter()
        .any(|f| f.key == key && consent.allows(f.class))
}

fn to_field_value(v: &gst::glib::SendValue) -> Option<FieldValue> {
    if let Ok(s) = v.get::<String>() {
        return Some(FieldValue::Text(s));
    }
    let n = v
        .get::<f64>()
        .ok()
        .or_else(|| v.get::<u64>().ok().map(|x| x as f64))
        .or_else(|| v.get::<i64>().ok().map(|x| x as f64))
        .or_else(|| v.get::<u32>().ok().map(f64::from))
        .or_else(|| v.get::<i32>().ok().map(f64::from))
        .or_else(|| v.get::<f32>().ok().map(f64::from))?;
    n.is_finite().then_some(FieldValue::Num(n))
}
