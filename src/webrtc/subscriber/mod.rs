//! Receive side: decode each remote track and render it, or hand frames to the application.
//!
//! ```text
//! webrtcbin src_N (VP8)  -> rtpvp8depay  -> vp8dec                -> output
//! webrtcbin src_N (H264) -> rtph264depay -> h264parse -> avdec_h264 -> output
//! webrtcbin src_N (OPUS) -> rtpopusdepay -> opusdec               -> output
//! ```
//! The jitter buffer is the peer's ([`super::peer::PeerConfig::jitter_buffer`]). `opusdec`
//! conceals lost packets (PLC) and decodes Opus in-band FEC. Per track the subscriber counts
//! frames received (distinct RTP timestamps reaching the depayloader) and decoded, freezes
//! ([`super::freeze::FreezeDetector`], at the decoder output) and concealed audio samples.
//! Recording ([`VideoOutput::Record`]) is in [`super::recording`], the room recording
//! ([`VideoOutput::RecordRoom`]: decoded, composed and mixed) in [`super::room_recording`].

use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;

use gst::prelude::*;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

mod config;
mod counters;
mod events;
mod playback;

use config::check_appsink;
pub use config::{
    AudioOutput, DecodedVideoCallback, SubscriberConfig, VideoOutput, VideoSampleCallback,
};
use counters::{install_counter, read_levels};
pub use events::{MemberLevel, SubscriberEvent, TrackCounters};

use super::audio_level::{Speakers, ext_id_in_caps};
use super::freeze::FreezeDetector;
use super::peer::Peer;
use super::recording::{Recorder, record_queue};
use super::room_recording::{RoomRecording, mix_caps};
use super::sdp::video_codec_of;
use super::{MediaKind, WebrtcError, make};
use crate::encoder::Codec;

/// A decode branch: track kind and its elements, depayloader first.
type Branch = (MediaKind, Vec<gst::Element>);

struct Inner {
    config: SubscriberConfig,
    events: UnboundedSender<SubscriberEvent>,
    counters: Mutex<HashMap<(String, MediaKind), TrackCounters>>,
    freezes: Mutex<HashMap<(String, MediaKind), FreezeDetector>>,
    started: std::time::Instant,
    ssrcs: Mutex<HashMap<u32, (MediaKind, String)>>,
    branches: Mutex<HashMap<String, Vec<Branch>>>,
    on_sample: Mutex<Option<VideoSampleCallback>>,
    on_decoded: Mutex<Option<DecodedVideoCallback>>,
    recorder: Option<Arc<Recorder>>,
    speakers: Mutex<Speakers>,
    /// [`AudioOutput::Play`]: the mixer every received audio track is played through.
    playback: Mutex<Option<playback::Playback>>,
    /// [`VideoOutput::RecordRoom`]: the room's file, from [`Subscriber::prepare`].
    room: Mutex<Option<Arc<RoomRecording>>>,
}

/// Decodes the tracks of any number of peers.
#[derive(Clone)]
pub struct Subscriber {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Subscriber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscriber")
            .field("config", &self.inner.config)
            .finish()
    }
}

impl Subscriber {
    /// Create a subscriber; events arrive on the returned receiver. The configuration is
    /// checked first ([`SubscriberConfig::validate`]).
    ///
    /// ```no_run
    /// use streamwire::webrtc::subscriber::{Subscriber, SubscriberConfig};
    /// let (subscriber, mut events) = Subscriber::new(SubscriberConfig::default()).unwrap();
    /// ```
    pub fn new(
        config: SubscriberConfig,
    ) -> Result<(Self, UnboundedReceiver<SubscriberEvent>), WebrtcError> {
        config.validate()?;
        let (tx, rx) = unbounded_channel();
        let recorder = match &config.video {
            VideoOutput::Record(dir) => Some(Recorder::new(dir.clone())),
            _ => None,
        };
        Ok((
            Subscriber {
                inner: Arc::new(Inner {
                    on_sample: Mutex::new(config.on_video_sample.clone()),
                    on_decoded: Mutex::new(config.on_decoded_video.clone()),
                    config,
                    events: tx,
                    counters: Mutex::new(HashMap::new()),
                    freezes: Mutex::new(HashMap::new()),
                    started: std::time::Instant::now(),
                    ssrcs: Mutex::new(HashMap::new()),
                    branches: Mutex::new(HashMap::new()),
                    recorder,
                    speakers: Mutex::new(Speakers::default()),
                    playback: Mutex::new(None),
                    room: Mutex::new(None),
                }),
            },
            rx,
        ))
    }

    /// Set (replace) the callback for every decoded video sample (I420) the appsink releases,
    /// with the remote peer id. Only [`VideoOutput::AppSink`] has samples: with any other
    /// output this fails with [`WebrtcError::Config`] instead of never calling `f`. Frames
    /// that arrive before the call are not seen: to see the first, set
    /// [`SubscriberConfig::on_video_sample`]. Runs on a streaming thread: keep it short.
    pub fn on_video_sample(
        &self,
        f: impl Fn(&str, &gst::Sample) + Send + Sync + 'static,
    ) -> Result<(), WebrtcError> {
        check_appsink(&self.inner.config.video)?;
        *self.inner.on_sample.lock() = Some(Arc::new(f));
        Ok(())
    }

    /// Set (replace) the callback for every decoded video frame, right at the decoder's output
    /// (before any clock synchronisation, and never held back by a synchronised sink), with
    /// the remote peer id and the frame's caps. To see the first frame, set
    /// [`SubscriberConfig::on_decoded_video`] instead. Runs on a streaming thread: keep it
    /// short.
    pub fn on_decoded_video(
        &self,
        f: impl Fn(&str, &gst::BufferRef, &gst::Caps) + Send + Sync + 'static,
    ) {
        *self.inner.on_decoded.lock() = Some(Arc::new(f));
    }

    /// Counters of one remote track.
    pub fn counters(&self, peer: &str, kind: MediaKind) -> TrackCounters {
        let mut c = self
            .inner
            .counters
            .lock()
            .get(&(peer.to_owned(), kind))
            .cloned()
            .unwrap_or_default();
        if kind == MediaKind::Audio {
            // opusdec's own count of the samples it made up for missing packets.
            let dec = self.inner.branches.lock().get(peer).and_then(|v| {
                v.iter()
                    .find(|(k, _)| *k == MediaKind::Audio)
                    .and_then(|(_, els)| els.get(1).cloned())
            });
            if let Some(dec) = dec.filter(|d| d.has_property("stats")) {
                let stats = dec.property::<gst::Structure>("stats");
                c.concealed_samples = stats.get::<u64>("plc-num-samples").unwrap_or(0);
            }
        }
        c
    }

    /// Ask `peer` for a video keyframe now: an upstream force-key-unit event from the
    /// depayloader, which `rtpsession` turns into RTCP PLI (or FIR). Returns false if no video
    /// track from `peer` is being received.
    pub fn request_keyframe(&self, peer: &str) -> bool {
        let depay = self.inner.branches.lock().get(peer).and_then(|v| {
            v.iter()
                .find(|(k, _)| *k == MediaKind::Video)
                .and_then(|(_, els)| els.first().cloned())
        });
        let Some(pad) = depay.and_then(|d| d.static_pad("sink")) else {
            return false;
        };
        let ev = gst_video::UpstreamForceKeyUnitEvent::builder()
            .all_headers(false)
            .build();
        pad.push_event(ev)
    }

    /// Stop receiving from `peer`: remove its decode branches. When recording, the peer's
    /// files are finished first (duration and index written; at most
    /// [`FINISH_WAIT`](super::recording::FINISH_WAIT)).
    pub fn detach(&self, peer: &str) {
        let branches = self.inner.branches.lock().remove(peer).unwrap_or_default();
        for (_, els) in &branches {
            if let Some(sink) = els.first().and_then(|e| e.static_pad("sink"))
                && let Some(src) = sink.peer()
            {
                let _ = src.unlink(&sink);
            }
        }
        // After the unlink: no packet of `peer` reaches the level probe any more.
        let ended = self.inner.speakers.lock().remove(peer);
        if let Some(ev) = ended {
            let _ = self.inner.events.send(ev);
        }
        if let Some(rec) = &self.inner.recorder {
            let chains: Vec<Vec<gst::Element>> =
                branches.iter().map(|(_, els)| els.clone()).collect();
            rec.finish(peer, &chains);
        }
        for (kind, els) in branches {
            self.remove_branch(kind, &els);
        }
    }

    /// Stop and remove a branch's elements; an audio branch gives its playback mixer pad back.
    fn remove_branch(&self, kind: MediaKind, els: &[gst::Element]) {
        for e in els {
            let _ = e.set_state(gst::State::Null);
        }
        if kind == MediaKind::Audio
            && let (Some(p), Some(tail)) = (self.inner.playback.lock().as_ref(), els.last())
        {
            p.remove(tail);
        }
        if let (Some(r), Some(tail)) = (self.inner.room.lock().as_ref(), els.last()) {
            r.remove(tail);
        }
        for e in els {
            if let Some(bin) = e.parent().and_then(|p| p.downcast::<gst::Bin>().ok()) {
                let _ = bin.remove(e);
            }
        }
    }

    /// Stop decoding the remote track on `peer`'s webrtcbin source pad `pad` (its m-line went
    /// inactive in a renegotiation): remove its decode branch and park the pad on a `fakesink`,
    /// so late packets are dropped and webrtcbin's caps query on that pad no longer meets
    /// the old decoder (webrtcbin 1.22 may query it while answering a later offer). Returns
    /// whether a branch was removed.
    pub fn release_pad(&self, peer: &str, pad: &gst::Pad) -> bool {
        let Some(depay_sink) = pad.peer() else {
            return false;
        };
        let branch = {
            let mut map = self.inner.branches.lock();
            let Some(list) = map.get_mut(peer) else {
                return false;
            };
            let Some(i) = list.iter().position(|(_, els)| {
                els.first()
                    .and_then(|e| e.static_pad("sink"))
                    .is_some_and(|p| p == depay_sink)
            }) else {
                return false;
            };
            list.remove(i)
        };
        let _ = pad.unlink(&depay_sink);
        if branch.0 == MediaKind::Audio {
            let ended = self.inner.speakers.lock().remove(peer);
            if let Some(ev) = ended {
                let _ = self.inner.events.send(ev);
            }
        }
        let bin = branch
            .1
            .first()
            .and_then(|e| e.parent())
            .and_then(|p| p.downcast::<gst::Bin>().ok());
        if let Some(rec) = &self.inner.recorder {
            // The track's end goes into its file; the branch goes when the file is finished.
            rec.retire(peer, branch.1);
        } else {
            self.remove_branch(branch.0, &branch.1);
        }
        if let (Some(bin), Ok(sink)) = (bin, make("fakesink").map(live_sink)) {
            sink.set_property("sync", false);
            if bin.add(&sink).is_ok() {
                let _ = sink.sync_state_with_parent();
                if let Some(sp) = sink.static_pad("sink") {
                    let _ = pad.link(&sp);
                }
            }
        }
        true
    }

    /// Build the standing playback path of [`AudioOutput::Play`] in `bin` now (else it comes
    /// with the first received audio track): a session calls it before its publisher starts,
    /// so the far-end reference `echo_probe` exists when the microphone's `webrtcdsp` looks
    /// it up. Every received audio track is then mixed into it. With
    /// [`VideoOutput::RecordRoom`] it builds the room recording instead (creating its file,
    /// refused when it exists), which must exist before the pipeline starts. No-op for other
    /// outputs, or when it exists.
    ///
    /// ```no_run
    /// use gst::prelude::*;
    /// use streamwire::webrtc::subscriber::{AudioOutput, Subscriber, SubscriberConfig};
    /// streamwire::gst_init::init().unwrap();
    /// let pipeline = gst::Pipeline::new();
    /// let cfg = SubscriberConfig {
    ///     audio: AudioOutput::Play { echo_probe: Some("far-end".into()) },
    ///     ..SubscriberConfig::default()
    /// };
    /// let (subscriber, _events) = Subscriber::new(cfg).unwrap();
    /// subscriber.prepare(pipeline.upcast_ref()).unwrap();
    /// ```
    pub fn prepare(&self, bin: &gst::Bin) -> Result<(), WebrtcError> {
        if let VideoOutput::RecordRoom(cfg) = &self.inner.config.video {
            let mut room = self.inner.room.lock();
            if room.is_none() {
                *room = Some(RoomRecording::build(bin, cfg.clone())?);
            }
            return Ok(());
        }
        let AudioOutput::Play { echo_probe } = &self.inner.config.audio else {
            return Ok(());
        };
        if self.inner.recorder.is_some() {
            return Ok(());
        }
        let mut playback = self.inner.playback.lock();
        if playback.is_none() {
            *playback = Some(playback::Playback::build(bin, echo_probe.as_deref())?);
        }
        Ok(())
    }

    /// The room recording of [`VideoOutput::RecordRoom`] (once [`Subscriber::prepare`] built it).
    pub fn room_recording(&self) -> Option<Arc<RoomRecording>> {
        self.inner.room.lock().clone()
    }

    /// Kind and codec (`video/VP8`, ...) of a received SSRC.
    pub fn track_of_ssrc(&self, ssrc: u32) -> Option<(MediaKind, String)> {
        self.inner.ssrcs.lock().get(&ssrc).cloned()
    }

    /// Receive and decode whatever `peer` sends.
    pub fn attach(&self, peer: &Peer) {
        self.attach_mapped(peer, |_| None);
    }

    /// [`Subscriber::attach`] for a connection that carries several members' media (an SFU's):
    /// `member_of` names the member whose media a new source pad carries (by its m-line), and
    /// its tracks are counted and reported under that id; `None`: under the peer's own id.
    pub fn attach_mapped(
        &self,
        peer: &Peer,
        member_of: impl Fn(&gst::Pad) -> Option<String> + Send + Sync + 'static,
    ) {
        let weak = Arc::downgrade(&self.inner);
        let own_id = peer.id().to_owned();
        let bin = peer.bin().clone();
        peer.webrtcbin().connect_pad_added(move |_, pad| {
            if pad.direction() != gst::PadDirection::Src {
                return;
            }
            let Some(inner) = weak.upgrade() else { return };
            let peer_id = member_of(pad).unwrap_or_else(|| own_id.clone());
            if let Err(e) = build_receive_branch(&inner, &bin, &peer_id, pad) {
                tracing::warn!(peer = %peer_id, "cannot decode remote track: {e}");
                let _ = inner.events.send(SubscriberEvent::Unsupported {
                    peer: peer_id.clone(),
                    reason: e.to_string(),
                });
            }
        });
    }
}

fn build_receive_branch(
    inner: &Arc<Inner>,
    bin: &gst::Bin,
    peer_id: &str,
    pad: &gst::Pad,
) -> Result<(), WebrtcError> {
    let caps = pad.current_caps().unwrap_or_else(|| pad.query_caps(None));
    let s = caps.structure(0).ok_or_else(|| WebrtcError::Link {
        what: "remote track".into(),
        detail: "pad has no caps".into(),
    })?;
    let encoding = s
        .get::<&str>("encoding-name")
        .unwrap_or_default()
        .to_owned();
    let media = s.get::<&str>("media").unwrap_or_default();
    let cfg = &inner.config;
    // Element whose output is counted: the decoder (or, when recording, the last element
    // before the muxer).
    let mut count_at = 1;
    let (kind, mut chain) = match (media, encoding.as_str()) {
        ("audio", "OPUS") => {
            if inner.recorder.is_some() {
                count_at = 0;
                (
                    MediaKind::Audio,
                    // opusparse gives each packet its duration: the file ends where the audio does.
                    vec![make("rtpopusdepay")?, make("opusparse")?, record_queue()?],
                )
            } else {
                let dec = make("opusdec")?;
                // Conceal lost packets, and rebuild them from the next packet's in-band FEC
                // when the sender includes it (the publisher's `opusenc inband-fec`).
                dec.set_property("plc", true);
                dec.set_property("use-inband-fec", true);
                super::opus_latency::report_held_packet(&dec);
                let mut c = vec![make("rtpopusdepay")?, dec];
                let room = matches!(cfg.video, VideoOutput::RecordRoom(_));
                match &cfg.audio {
                    // Into the room's mixer (`room_recording.rs`), linked below.
                    _ if room => {
                        c.push(make("audioconvert")?);
                        c.push(make("audioresample")?);
                        let caps = make("capsfilter")?;
                        caps.set_property("caps", mix_caps());
                        c.push(caps);
                    }
                    AudioOutput::Play { .. } => {
                        // Into the playback mixer (`playback.rs`), linked below.
                        c.push(make("audioconvert")?);
                        c.push(make("audioresample")?);
                        let caps = make("capsfilter")?;
                        caps.set_property("caps", playback::mix_caps());
                        c.push(caps);
                    }
                    AudioOutput::Discard => {
                        let sink = live_sink(make("fakesink")?);
                        sink.set_property("sync", cfg.sync);
                        c.push(sink);
                    }
                }
                (MediaKind::Audio, c)
            }
        }
        ("video", enc) => {
            let codec = video_codec_of(enc).ok_or_else(|| WebrtcError::Link {
                what: "remote video".into(),
                detail: format!("unsupported encoding `{enc}`"),
            })?;
            if inner.recorder.is_some() {
                let mut c = match codec {
                    Codec::Vp8 => vec![depayloader("rtpvp8depay")?],
                    Codec::H264 => vec![depayloader("rtph264depay")?, make("h264parse")?],
                    other @ (Codec::Vp9 | Codec::Av1) => return Err(not_received(other)),
                };
                count_at = c.len() - 1;
                let queue = record_queue()?;
                super::recording::add_framerate(&c[0], &queue);
                c.push(queue);
                (MediaKind::Video, c)
            } else {
                let mut c = match codec {
                    Codec::Vp8 => {
                        let dec = make("vp8dec")?;
                        dec.set_property("threads", 2u32);
                        vec![depayloader("rtpvp8depay")?, dec]
                    }
                    Codec::H264 => {
                        let dec = make("avdec_h264")?;
                        // Slice threads only: frame threading delays output by a frame per thread.
                        dec.set_property_from_str("thread-type", "slice");
                        vec![depayloader("rtph264depay")?, make("h264parse")?, dec]
                    }
                    other @ (Codec::Vp9 | Codec::Av1) => return Err(not_received(other)),
                };
                // A clock-synchronised sink holds each frame until its display time; straight
                // after the decoder that would hold the decoder too (frame N would leave it
                // only once frame N-1 was shown). A queue decouples them.
                if cfg.video == VideoOutput::Display
                    || cfg.sync
                    || matches!(cfg.video, VideoOutput::RecordRoom(_))
                {
                    let q = make("queue")?;
                    q.set_property("max-size-buffers", 0u32);
                    q.set_property("max-size-bytes", 0u32);
                    q.set_property("max-size-time", gst::ClockTime::SECOND);
                    c.push(q);
                }
                match &cfg.video {
                    VideoOutput::Display => {
                        c.push(make("videoconvert")?);
                        c.push(live_sink(make("autovideosink")?));
                    }
                    VideoOutput::AppSink => {
                        c.push(make("videoconvert")?);
                        let sink = gst_app::AppSink::builder()
                            .caps(
                                &gst::Caps::builder("video/x-raw")
                                    .field("format", "I420")
                                    .build(),
                            )
                            .sync(cfg.sync)
                            .async_(false)
                            .max_buffers(4)
                            .drop(true)
                            .build();
                        let weak = Arc::downgrade(inner);
                        let pid = peer_id.to_owned();
                        sink.set_callbacks(
                            gst_app::AppSinkCallbacks::builder()
                                .new_sample(move |sink| {
                                    let sample =
                                        sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                                    if let Some(inner) = weak.upgrade() {
                                        let cb = inner.on_sample.lock().clone();
                                        if let Some(cb) = cb {
                                            cb(&pid, &sample);
                                        }
                                    }
                                    Ok(gst::FlowSuccess::Ok)
                                })
                                .build(),
                        );
                        c.push(sink.upcast());
                    }
                    // The queue goes into the room's compositor, linked below.
                    VideoOutput::RecordRoom(_) => {}
                    VideoOutput::Discard | VideoOutput::Record(_) => {
                        let sink = live_sink(make("fakesink")?);
                        sink.set_property("sync", cfg.sync);
                        c.push(sink);
                    }
                }
                // After the decoder: rtph264depay, h264parse, avdec_h264 / rtpvp8depay, vp8dec.
                count_at = if codec == Codec::H264 { 2 } else { 1 };
                (MediaKind::Video, c)
            }
        }
        (m, e) => {
            return Err(WebrtcError::Link {
                what: "remote track".into(),
                detail: format!("unsupported media `{m}` encoding `{e}`"),
            });
        }
    };
    // Count decoded output right after the decoder.
    let dec_src = chain[count_at]
        .static_pad("src")
        .ok_or_else(|| WebrtcError::MissingElement("decoder src pad".into()))?;
    install_counter(inner, peer_id, kind, &dec_src);
    if kind == MediaKind::Audio
        && let Some(depay_sink) = chain[0].static_pad("sink")
    {
        match ext_id_in_caps(s) {
            Some(id) => read_levels(inner, peer_id, id, &depay_sink),
            None => tracing::debug!(peer = %peer_id, "no audio level extension negotiated"),
        }
    }
    if kind == MediaKind::Video
        && let Some(depay_sink) = chain[0].static_pad("sink")
    {
        let weak = Arc::downgrade(inner);
        let key = (peer_id.to_owned(), MediaKind::Video);
        super::receive_watch::watch_received_frames(&depay_sink, move || {
            let inner = weak.upgrade()?;
            let mut map = inner.counters.lock();
            let c = map.entry(key.clone()).or_default();
            c.frames_received += 1;
            Some((c.frames_received, c.decoded))
        });
    }

    bin.add_many(&chain)
        .map_err(|e| WebrtcError::State(format!("adding receive branch: {e}")))?;
    gst::Element::link_many(&chain).map_err(|e| WebrtcError::Link {
        what: format!("{} receive branch", kind.as_str()),
        detail: e.to_string(),
    })?;
    if kind == MediaKind::Audio
        && inner.recorder.is_none()
        && !matches!(cfg.video, VideoOutput::RecordRoom(_))
        && let (AudioOutput::Play { echo_probe }, Some(tail)) = (&cfg.audio, chain.last())
    {
        let mut playback = inner.playback.lock();
        if playback.is_none() {
            *playback = Some(playback::Playback::build(bin, echo_probe.as_deref())?);
        }
        if let Some(p) = playback.as_ref() {
            p.add(tail)?;
        }
    }
    if let (VideoOutput::RecordRoom(_), Some(tail)) = (&cfg.video, chain.last()) {
        let room = inner.room.lock().clone().ok_or_else(|| {
            WebrtcError::State(
                "the room recording is not built: call Subscriber::prepare before the \
                 pipeline starts"
                    .into(),
            )
        })?;
        if let Some(sink) = chain[0].static_pad("sink") {
            room.stamp_sender_time(pad.parent_element().as_ref(), peer_id, &sink);
        }
        room.add(peer_id, kind, tail)?;
    }
    let mut recording = None;
    if let (Some(rec), Some(tail)) = (&inner.recorder, chain.last()) {
        let webrtcbin = pad.parent_element();
        recording = rec.attach(bin, webrtcbin.as_ref(), peer_id, kind, (&chain[0], tail))?;
    }
    for e in chain.iter_mut() {
        e.sync_state_with_parent()
            .map_err(|e| WebrtcError::State(format!("starting receive branch: {e}")))?;
    }
    let sink = chain[0]
        .static_pad("sink")
        .ok_or_else(|| WebrtcError::MissingElement("depayloader sink pad".into()))?;
    pad.link(&sink).map_err(|e| WebrtcError::Link {
        what: "webrtcbin to depayloader".into(),
        detail: format!("{e:?}"),
    })?;
    // The sinks do not preroll (see `live_sink`), so the pipeline does not recompute its
    // latency for them by itself: ask, so the new sinks wait out the jitter buffer.
    super::recalculate_pipeline_latency(&chain[0]);
    inner
        .branches
        .lock()
        .entry(peer_id.to_owned())
        .or_default()
        .push((kind, chain.clone()));
    if let Ok(ssrc) = s.get::<u32>("ssrc") {
        inner
            .ssrcs
            .lock()
            .insert(ssrc, (kind, format!("{}/{}", kind.as_str(), encoding)));
    }
    let _ = inner.events.send(SubscriberEvent::TrackAdded {
        peer: peer_id.to_owned(),
        kind,
        codec: encoding,
    });
    if let Some(path) = recording {
        let _ = inner.events.send(SubscriberEvent::Recording {
            peer: peer_id.to_owned(),
            path,
        });
    }
    Ok(())
}

/// A codec `video_codec_of` does not map to (it names only the codecs WebRTC carries).
fn not_received(codec: Codec) -> WebrtcError {
    WebrtcError::Link {
        what: "remote video".into(),
        detail: format!("`{codec}` is not received over WebRTC"),
    }
}

/// Video depayloader that drops incomplete frames until the next keyframe and asks the sender
/// for one (RTCP PLI) when packets are missing.
fn depayloader(factory: &str) -> Result<gst::Element, WebrtcError> {
    let d = make(factory)?;
    d.set_property("request-keyframe", true);
    d.set_property("wait-for-keyframe", true);
    Ok(d)
}

/// Make `sink` (a sink, or an auto-plugging bin such as `autoaudiosink` and the sink it
/// creates) change state without prerolling (`async=false`), as a sink added to a playing
/// live pipeline must. A prerolling sink makes the whole pipeline lose its state: it goes
/// back to `PAUSED` until the sink has a buffer, and a branch added meanwhile starts paused
/// and blocks its streaming thread in the preroll wait until the pipeline's continuation
/// sets it playing. That continuation sends `LATENCY` to every `webrtcbin`, which waits for
/// the `webrtcbin`'s state lock, so closing a connection at that moment (which holds that
/// lock while it waits for the blocked streaming thread) deadlocked: seen in
/// tests/web_audio_levels.rs when a member left within a second of joining.
fn live_sink(sink: gst::Element) -> gst::Element {
    if sink.has_property("async") {
        sink.set_property("async", false);
    } else if let Some(bin) = sink.downcast_ref::<gst::Bin>() {
        bin.connect_element_added(|_, child| {
            if child.has_property("async") {
                child.set_property("async", false);
            }
        });
    }
    sink
}
