//! Statistics per peer and track, sampled from webrtcbin's `get-stats` (every 2 s by
//! [`StatsCollector`]), plus frame counters from the publisher and subscriber.
//!
//! # Quality score (0–5)
//! From the worst track of the interval:
//! ```text
//! score = 5 - min(loss_% / 2, 5)                      // 2 % loss costs one point, 10 % all
//!           - min(max(rtt_ms - 150, 0) / 150, 2)      // RTT above 150 ms, one point per 150 ms
//!           - min(max(jitter_ms - 30, 0) / 30, 2)     // jitter above 30 ms, one point per 30 ms
//!           - min(freezes, 3)                         // each video freeze of the interval
//!           - (3 if a received video track decoded under 5 fps)   // frozen picture
//! ```
//! clamped to 0..=5 and rounded. The first three terms are [`quality_score`]. `loss_%` is the
//! loss left after repair: for a received track, the packets the jitter buffer gave up on
//! less those ULPFEC recovered; for a sent track, the loss the receiver reports (before its
//! repair, the only figure a sender has). A receive track that got no packet during the
//! interval (media stalled) counts as 100 % loss. Freezes follow the webrtc-stats definition
//! ([`super::freeze`]).
//!
//! # Repair and playout figures
//! Per track, cumulative since the connection started ([`RepairStats`], [`Playout`]): NACKs,
//! keyframe requests (PLI + FIR), retransmitted packets (RTX), packets recovered in time
//! (retransmissions that reached the jitter buffer before their deadline, plus ULPFEC
//! recoveries), FEC packets; frames received, decoded and dropped, freezes and their total
//! duration, and concealed audio samples. RTX and FEC packets are counted per connection (the
//! RTP streams of one BUNDLE transport) and reported on its video track, the only kind that
//! uses them.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

use super::MediaKind;
use super::peer::Peer;
use super::publisher::Publisher;
use super::repair::RepairCounters;
use super::subscriber::Subscriber;
use super::subscriber::TrackCounters;

/// Default sampling interval.
pub const STATS_INTERVAL: Duration = Duration::from_secs(2);

/// Direction of a track, from the local side's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Sent to the peer.
    Send,
    /// Received from the peer.
    Receive,
}

/// One track's statistics over the last interval.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TrackStats {
    /// Audio or video (None when webrtcbin reports no codec for the SSRC).
    pub kind: Option<MediaKind>,
    /// Send or receive.
    pub direction: Direction,
    /// RTP SSRC.
    pub ssrc: u32,
    /// MIME type, e.g. `video/VP8`.
    pub codec: String,
    /// Payload bitrate over the interval (kbit/s).
    pub bitrate_kbps: f64,
    /// Packet loss over the interval (%): measured locally when receiving, from the receiver's
    /// reports when sending.
    pub loss_pct: f64,
    /// Interarrival jitter (ms).
    pub jitter_ms: f64,
    /// Frames per second (video).
    pub fps: Option<f64>,
    /// Frame width (video).
    pub width: Option<i32>,
    /// Frame height (video).
    pub height: Option<i32>,
    /// Loss repair (cumulative).
    pub repair: RepairStats,
    /// What the receiver played (receive tracks; cumulative).
    pub playout: Playout,
}

/// Loss repair of one track, cumulative; the send side counts what it received from the
/// remote side (NACKs, keyframe requests) and what it sent (RTX, FEC), the receive side the
/// reverse.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct RepairStats {
    /// NACK feedback packets (sent for a receive track, received for a send track).
    pub nacks: u64,
    /// PLI + FIR keyframe requests (sent / received).
    pub keyframe_requests: u64,
    /// RTX retransmissions (received / sent).
    pub retransmitted: u64,
    /// Packets repaired in time: retransmissions the jitter buffer used, plus ULPFEC
    /// recoveries (receive tracks).
    pub recovered: u64,
    /// ULPFEC packets (received / sent).
    pub fec_packets: u64,
    /// Current ULPFEC overhead (% of media packets; send video tracks).
    pub fec_pct: Option<u32>,
    /// Current jitter-buffer latency (ms; receive tracks).
    pub jitter_buffer_ms: Option<u32>,
}

/// What the receiver played of one track, cumulative (receive tracks only).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Playout {
    /// Video frames that reached the depayloader.
    pub frames_received: Option<u64>,
    /// Video frames decoded.
    pub frames_decoded: Option<u64>,
    /// Received frames that were not decoded (incomplete, or waiting for a keyframe).
    pub frames_dropped: Option<u64>,
    /// Freezes (webrtc-stats `freezeCount`).
    pub freezes: Option<u64>,
    /// Their total duration (ms, `totalFreezesDuration`).
    pub freeze_ms: Option<f64>,
    /// Audio samples the decoder concealed (`concealedSamples`).
    pub concealed_samples: Option<u64>,
    /// Concealed share of the decoded audio samples (%).
    pub concealed_pct: Option<f64>,
    /// Last received audio level (dBov: 0 loudest, 127 silence; RFC 6464 header extension),
    /// if the sender sends it.
    pub audio_level: Option<u8>,
}

/// Statistics of one peer connection.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PeerStats {
    /// Remote peer id.
    pub peer: String,
    /// Round-trip time from RTCP receiver reports (ms).
    pub rtt_ms: Option<f64>,
    /// Total send bitrate (kbit/s).
    pub send_kbps: f64,
    /// Total receive bitrate (kbit/s).
    pub recv_kbps: f64,
    /// Congestion-control estimate towards the peer (kbit/s).
    pub estimated_kbps: Option<u32>,
    /// Network quality 0–5 (see the module documentation).
    pub quality: u8,
    /// Per-track figures.
    pub tracks: Vec<TrackStats>,
}

impl PeerStats {
    /// One-line human summary (for a CLI status line).
    pub fn status_line(&self) -> String {
        let video = self
            .tracks
            .iter()
            .find(|t| t.kind == Some(MediaKind::Video) && t.fps.is_some());
        let v = video
            .map(|t| {
                format!(
                    " {}x{}@{:.0}",
                    t.width.unwrap_or(0),
                    t.height.unwrap_or(0),
                    t.fps.unwrap_or(0.0)
                )
            })
            .unwrap_or_default();
        format!(
            "{}: q{} up {:.0} kbit/s down {:.0} kbit/s rtt {}{}",
            self.peer,
            self.quality,
            self.send_kbps,
            self.recv_kbps,
            self.rtt_ms
                .map(|r| format!("{r:.0} ms"))
                .unwrap_or_else(|| "-".into()),
            v
        )
    }
}

/// Network quality 0–5 from loss (%), RTT (ms) and jitter (ms); see the module docs.
///
/// ```
/// use streamwire::webrtc::stats::quality_score;
/// assert_eq!(quality_score(0.0, Some(5.0), 1.0), 5);
/// assert_eq!(quality_score(4.0, Some(5.0), 1.0), 3);
/// assert_eq!(quality_score(20.0, Some(400.0), 100.0), 0);
/// ```
pub fn quality_score(loss_pct: f64, rtt_ms: Option<f64>, jitter_ms: f64) -> u8 {
    let loss = (loss_pct.max(0.0) / 2.0).min(5.0);
    let rtt = rtt_ms
        .map(|r| ((r - 150.0).max(0.0) / 150.0).min(2.0))
        .unwrap_or(0.0);
    let jitter = ((jitter_ms - 30.0).max(0.0) / 30.0).min(2.0);
    let score = (5.0 - loss - rtt - jitter).clamp(0.0, 5.0);
    // Clamped to 0..=5 above, so the cast cannot truncate.
    score.round() as u8
}

#[derive(Debug, Clone, Copy)]
struct Counter {
    bytes: u64,
    packets: u64,
    lost: i64,
    frames: u64,
    freezes: u64,
}

/// Turns successive `get-stats` snapshots of one peer into interval figures.
#[derive(Debug)]
pub struct StatsSampler {
    prev: HashMap<(u32, Direction), Counter>,
    prev_at: Option<Instant>,
    /// When the sampler was created (with its peer, by [`StatsCollector::watch`]): the first
    /// interval runs from here, its counters from zero.
    created: Instant,
}

impl Default for StatsSampler {
    fn default() -> Self {
        Self::new()
    }
}

fn field_u64(s: &gst::StructureRef, name: &str) -> Option<u64> {
    s.get::<u64>(name)
        .ok()
        .or_else(|| s.get::<u32>(name).ok().map(u64::from))
}

fn field_i64(s: &gst::StructureRef, name: &str) -> Option<i64> {
    s.get::<i64>(name)
        .ok()
        .or_else(|| s.get::<i32>(name).ok().map(i64::from))
}

impl StatsSampler {
    /// New sampler. Create it with its peer: the first sample's rates cover the time since
    /// then, from counters that started at zero (so a fresh connection does not show 0 kbit/s
    /// for its first interval).
    pub fn new() -> Self {
        StatsSampler {
            prev: HashMap::new(),
            prev_at: None,
            created: Instant::now(),
        }
    }

    /// Sample `peer` now, adding frame figures from `publisher` / `subscriber` when given.
    pub fn sample(
        &mut self,
        peer: &Peer,
        publisher: Option<&Publisher>,
        subscriber: Option<&Subscriber>,
    ) -> Option<PeerStats> {
        let raw = peer.raw_stats(Duration::from_secs(1))?;
        let repair = peer.repair_counters();
        let now = Instant::now();
        let dt = Some(
            now.duration_since(self.prev_at.unwrap_or(self.created))
                .as_secs_f64(),
        )
        .filter(|d| *d > 0.0);
        self.prev_at = Some(now);
        let mut stats = self.sample_raw(&raw, dt, peer.id(), publisher, subscriber, Some(&repair));
        stats.estimated_kbps = peer.estimated_bitrate().map(|b| b / 1000);
        Some(stats)
    }

    /// Interval figures from a raw `get-stats` structure taken `dt` seconds after the previous.
    /// An SSRC not seen before counts from zero over `dt` (it started during the interval, or
    /// this is the first interval of a sampler created with its peer). `repair` (the peer's
    /// [`Peer::repair_counters`]) adds the RTX and FEC figures to the video tracks.
    pub fn sample_raw(
        &mut self,
        raw: &gst::StructureRef,
        dt: Option<f64>,
        peer_id: &str,
        publisher: Option<&Publisher>,
        subscriber: Option<&Subscriber>,
        repair: Option<&RepairCounters>,
    ) -> PeerStats {
        // webrtcbin 1.22 mislabels `kind` / `codec-id` under BUNDLE; the codec entries carry the
        // right SSRC and MIME type.
        let mut mime_by_ssrc: HashMap<u32, String> = HashMap::new();
        let mut entries = Vec::new();
        for (_, value) in raw.iter() {
            let Ok(s) = value.get::<gst::Structure>() else {
                continue;
            };
            if s.name() == "codec"
                && let (Ok(ssrc), Ok(mime)) = (s.get::<u32>("ssrc"), s.get::<String>("mime-type"))
            {
                mime_by_ssrc.insert(ssrc, mime);
            }
            entries.push(s);
        }
        let remote_inbound: HashMap<u32, &gst::Structure> = entries
            .iter()
            .filter(|s| s.name() == "remote-inbound-rtp")
            .filter_map(|s| Some((s.get::<u32>("ssrc").ok()?, s)))
            .collect();

        let mut tracks = Vec::new();
        let mut rtt: Option<f64> = None;
        let mut interval_freezes = 0u64;
        for s in &entries {
            let direction = match s.name().as_str() {
                "outbound-rtp" => Direction::Send,
                "inbound-rtp" => Direction::Receive,
                _ => continue,
            };
            let Ok(ssrc) = s.get::<u32>("ssrc") else {
                continue;
            };
            let mut codec = mime_by_ssrc.get(&ssrc).cloned().unwrap_or_default();
            let mut kind = if codec.starts_with("video/") {
                Some(MediaKind::Video)
            } else if codec.starts_with("audio/") {
                Some(MediaKind::Audio)
            } else {
                None
            };
            if kind.is_none()
                && direction == Direction::Receive
                && let Some((k, c)) = subscriber.and_then(|sub| sub.track_of_ssrc(ssrc))
            {
                kind = Some(k);
                codec = c;
            }
            let count = |s: &gst::StructureRef, f: &str| field_u64(s, f).unwrap_or(0);
            let mut rs = RepairStats {
                nacks: count(s, "nack-count"),
                keyframe_requests: count(s, "pli-count") + count(s, "fir-count"),
                ..RepairStats::default()
            };
            let (bytes, packets, mut lost, jitter_s) = match direction {
                Direction::Send => {
                    let ri = remote_inbound.get(&ssrc);
                    // Present once a receiver report arrived; may be 0 on loopback (the
                    // RTCP delay fields have 1/65536 s resolution).
                    if let Some(r) = ri.and_then(|r| r.get::<f64>("round-trip-time").ok())
                        && r >= 0.0
                    {
                        rtt = Some(rtt.map_or(r, |x: f64| x.max(r)));
                    }
                    (
                        field_u64(s, "bytes-sent").unwrap_or(0),
                        field_u64(s, "packets-sent").unwrap_or(0),
                        ri.and_then(|r| field_i64(r, "packets-lost")).unwrap_or(0),
                        ri.and_then(|r| r.get::<f64>("jitter").ok()).unwrap_or(0.0),
                    )
                }
                Direction::Receive => (
                    field_u64(s, "bytes-received").unwrap_or(0),
                    field_u64(s, "packets-received").unwrap_or(0),
                    field_i64(s, "packets-lost").unwrap_or(0),
                    s.get::<f64>("jitter").unwrap_or(0.0),
                ),
            };
            if packets == 0 && lost == 0 {
                // Unused SSRC (e.g. the local SSRC of a recvonly transceiver).
                continue;
            }
            let is_video = kind == Some(MediaKind::Video);
            if direction == Direction::Receive {
                // webrtcbin 1.22 reports the jitter buffer's `num-lost` (given up after repair
                // by retransmission) as `packets-lost`; ULPFEC recovers some of those later.
                let fec = if is_video {
                    repair.map_or(0, |r| r.fec_recovered)
                } else {
                    0
                };
                lost = (lost - i64::try_from(fec).unwrap_or(i64::MAX)).max(0);
                // webrtcbin 1.22's `packets-repaired` is the jitter buffer's count of
                // retransmissions that arrived in time, but with RED negotiated `rtpreddec`
                // drops the retransmission flag, so it stays 0. Then: RTX packets received
                // less the packets the jitter buffer discarded as too late.
                let rtx_in_time = match count(s, "packets-repaired") {
                    0 if is_video => repair.map_or(0, |r| {
                        r.received
                            .rtx_packets
                            .saturating_sub(count(s, "packets-discarded"))
                    }),
                    n => n,
                };
                rs.recovered = rtx_in_time + fec;
                rs.jitter_buffer_ms =
                    repair.and_then(|r| r.jitter_latency_ms.iter().max().copied());
            }
            if is_video && let Some(r) = repair {
                match direction {
                    Direction::Send => {
                        rs.retransmitted = r.sent.rtx_packets;
                        rs.fec_packets = r.sent.fec_packets;
                        rs.fec_pct = r.fec_percentage.iter().max().copied();
                    }
                    Direction::Receive => {
                        rs.retransmitted = r.received.rtx_packets;
                        rs.fec_packets = r.received.fec_packets;
                    }
                }
            }
            let mut playout = Playout::default();
            let (frames, size) = match (kind, direction) {
                (Some(MediaKind::Video), Direction::Send) => (
                    publisher.map(|p| p.video_frame_counts().0),
                    publisher.and_then(|p| p.video_size()),
                ),
                (Some(k), Direction::Receive) => {
                    let c = subscriber.map(|sub| sub.counters(peer_id, k));
                    if let Some(c) = &c {
                        playout = playout_of(k, c);
                    }
                    (
                        c.as_ref().map(|c| c.decoded),
                        c.filter(|c| c.width > 0).map(|c| (c.width, c.height)),
                    )
                }
                _ => (None, None),
            };
            let cur = Counter {
                bytes,
                packets,
                lost,
                frames: frames.unwrap_or(0),
                freezes: playout.freezes.unwrap_or(0),
            };
            let prev = self.prev.insert((ssrc, direction), cur);
            interval_freezes += prev.map_or(cur.freezes, |p| cur.freezes.saturating_sub(p.freezes));
            let (bitrate_kbps, loss_pct, fps) = match (prev, dt) {
                (Some(p), Some(dt)) => {
                    let db = cur.bytes.saturating_sub(p.bytes) as f64;
                    let dp = cur.packets.saturating_sub(p.packets) as f64;
                    let dl = (cur.lost - p.lost).max(0) as f64;
                    let loss = if dp + dl > 0.0 {
                        100.0 * dl / (dp + dl)
                    } else if direction == Direction::Receive {
                        100.0
                    } else {
                        0.0
                    };
                    let fps = frames.map(|_| cur.frames.saturating_sub(p.frames) as f64 / dt);
                    (db * 8.0 / 1000.0 / dt, loss, fps)
                }
                (None, Some(dt)) => {
                    // New SSRC: its counters started at zero within the interval. No fps (the
                    // frame counters are not per peer), no "stalled" loss for an idle receiver.
                    let dp = cur.packets as f64;
                    let dl = cur.lost.max(0) as f64;
                    let loss = if dp + dl > 0.0 {
                        100.0 * dl / (dp + dl)
                    } else {
                        0.0
                    };
                    (cur.bytes as f64 * 8.0 / 1000.0 / dt, loss, None)
                }
                _ => (0.0, 0.0, None),
            };
            tracks.push(TrackStats {
                kind,
                direction,
                ssrc,
                codec,
                bitrate_kbps,
                loss_pct,
                jitter_ms: jitter_s * 1000.0,
                fps: if is_video { fps } else { None },
                width: size.map(|s| s.0),
                height: size.map(|s| s.1),
                repair: rs,
                playout,
            });
        }
        tracks.sort_by_key(|t| {
            (
                t.direction == Direction::Receive,
                t.kind.map(|k| k.as_str()),
            )
        });
        let rtt_ms = rtt.map(|r| r * 1000.0);
        let worst_loss = tracks.iter().map(|t| t.loss_pct).fold(0.0, f64::max);
        let worst_jitter = tracks.iter().map(|t| t.jitter_ms).fold(0.0, f64::max);
        let frozen = tracks.iter().any(|t| {
            t.direction == Direction::Receive
                && t.kind == Some(MediaKind::Video)
                && t.fps.is_some_and(|f| f < 5.0)
        });
        let quality = if (dt.is_none() || self.prev.is_empty()) && tracks.is_empty() {
            0
        } else {
            let penalty =
                u8::try_from(interval_freezes.min(3)).unwrap_or(3) + if frozen { 3 } else { 0 };
            quality_score(worst_loss, rtt_ms, worst_jitter).saturating_sub(penalty)
        };
        PeerStats {
            peer: peer_id.to_owned(),
            rtt_ms,
            send_kbps: tracks
                .iter()
                .filter(|t| t.direction == Direction::Send)
                .fold(0.0, |acc, t| acc + t.bitrate_kbps),
            recv_kbps: tracks
                .iter()
                .filter(|t| t.direction == Direction::Receive)
                .fold(0.0, |acc, t| acc + t.bitrate_kbps),
            estimated_kbps: None,
            quality,
            tracks,
        }
    }
}

/// A stats event.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct StatsEvent {
    /// Seconds since the collector started.
    pub at_s: f64,
    /// Figures of one peer.
    pub stats: PeerStats,
}

struct Watched {
    peer: Peer,
    sampler: StatsSampler,
}

/// Samples a set of peers every [`STATS_INTERVAL`] on its own thread; stops when dropped.
pub struct StatsCollector {
    stop: Arc<AtomicBool>,
    peers: Arc<parking_lot::Mutex<Vec<Watched>>>,
    publisher: Arc<parking_lot::Mutex<Option<Publisher>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for StatsCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatsCollector").finish_non_exhaustive()
    }
}

impl StatsCollector {
    /// Start sampling every `interval`; events arrive on the returned receiver.
    ///
    /// ```no_run
    /// use streamwire::webrtc::stats::{StatsCollector, STATS_INTERVAL};
    /// let (collector, mut events) = StatsCollector::start(STATS_INTERVAL, None, None);
    /// // collector.watch(&peer);
    /// ```
    pub fn start(
        interval: Duration,
        publisher: Option<Publisher>,
        subscriber: Option<Subscriber>,
    ) -> (Self, UnboundedReceiver<StatsEvent>) {
        let (tx, rx) = unbounded_channel();
        let stop = Arc::new(AtomicBool::new(false));
        let peers: Arc<parking_lot::Mutex<Vec<Watched>>> = Arc::default();
        let publisher = Arc::new(parking_lot::Mutex::new(publisher));
        let thread = {
            let stop = stop.clone();
            let peers = peers.clone();
            let publisher = publisher.clone();
            std::thread::Builder::new()
                .name("sw-stats".into())
                .spawn(move || run(interval, stop, peers, publisher, subscriber, tx))
                .ok()
        };
        (
            StatsCollector {
                stop,
                peers,
                publisher,
                thread,
            },
            rx,
        )
    }

    /// Take the sent-frame figures from `publisher` from the next sample on (a session that
    /// starts or stops publishing after it joined).
    pub fn set_publisher(&self, publisher: Option<Publisher>) {
        *self.publisher.lock() = publisher;
    }

    /// Sample `peer` from now on.
    pub fn watch(&self, peer: &Peer) {
        self.peers.lock().push(Watched {
            peer: peer.clone(),
            sampler: StatsSampler::new(),
        });
    }

    /// Stop sampling `peer_id`.
    pub fn unwatch(&self, peer_id: &str) {
        self.peers.lock().retain(|w| w.peer.id() != peer_id);
    }
}

fn run(
    interval: Duration,
    stop: Arc<AtomicBool>,
    peers: Arc<parking_lot::Mutex<Vec<Watched>>>,
    publisher: Arc<parking_lot::Mutex<Option<Publisher>>>,
    subscriber: Option<Subscriber>,
    tx: UnboundedSender<StatsEvent>,
) {
    let start = Instant::now();
    let mut next = start + interval;
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        if now < next {
            std::thread::sleep((next - now).min(Duration::from_millis(100)));
            continue;
        }
        next += interval;
        let publisher = publisher.lock().clone();
        let mut list = peers.lock();
        for w in list.iter_mut() {
            if let Some(stats) = w
                .sampler
                .sample(&w.peer, publisher.as_ref(), subscriber.as_ref())
            {
                let ev = StatsEvent {
                    at_s: start.elapsed().as_secs_f64(),
                    stats,
                };
                if tx.send(ev).is_err() {
                    return;
                }
            }
        }
    }
}

impl Drop for StatsCollector {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The playout figures of a received track from the subscriber's counters.
fn playout_of(kind: MediaKind, c: &TrackCounters) -> Playout {
    match kind {
        MediaKind::Video => Playout {
            frames_received: Some(c.frames_received),
            frames_decoded: Some(c.decoded),
            frames_dropped: Some(c.frames_received.saturating_sub(c.decoded)),
            freezes: Some(c.freezes),
            freeze_ms: Some(c.freeze_ms),
            ..Playout::default()
        },
        MediaKind::Audio => Playout {
            concealed_samples: Some(c.concealed_samples),
            concealed_pct: (c.samples > 0)
                .then(|| 100.0 * c.concealed_samples as f64 / c.samples as f64),
            audio_level: c.audio_level,
            ..Playout::default()
        },
    }
}
