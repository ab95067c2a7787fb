//! Recording a whole room into one Matroska file
//! ([`VideoOutput::RecordRoom`](super::subscriber::VideoOutput::RecordRoom)): every received
//! member's audio mixed, every member's video composed into a grid and, when asked, the
//! live-rendered whiteboard, all on the session pipeline's clock.
//!
//! ```text
//! videotestsrc (black, live) -> compositor (grid of the members' decoded videos) -> vp8enc --+
//! audiotestsrc (silence, live) -> audiomixer (every member's decoded audio) -> opusenc ------+-> matroskamux -> filesink
//! whiteboardsrc is-live=true (fed from the room's board) -> videoconvert -> vp8enc ----------+
//! ```
//!
//! - **Fixed tracks.** The file has the same tracks from its first byte to its end, whoever
//!   joins or leaves (`matroskamux` lists the tracks in the header it writes first: a track
//!   added after it is not in the file, see the unit tests): track 1 the composed video (VP8), track 2 the mixed audio (Opus, 48 kHz
//!   mono), and with a whiteboard track 3 the board (VP8), all at
//!   [`RoomRecordingConfig::width`] × [`RoomRecordingConfig::height`] and
//!   [`RoomRecordingConfig::fps`]. A member who joins later gets a cell of the grid and a
//!   mixer input from its first decoded frame on; one who leaves gives them back (the grid is
//!   laid out again: `ceil(sqrt(n))` columns, cells filled row by row, each picture scaled
//!   into its cell keeping its aspect ratio). Until the first member's media comes the video
//!   is black and the audio silent.
//! - **One clock.** Every track is timed on the session pipeline's running time. A member's
//!   audio and video by their capture times: each packet's sender time (its RTP time through
//!   the member's RTCP sender reports, [`super::sender_time`]) put on this machine's
//!   timeline by reading the sender's wall clock as this machine's (so the member's capture,
//!   encoder and network delays are taken out; when the clocks disagree by more than 1 s, or
//!   before the first sender report, by arrival instead). The mixer puts each member's audio
//!   at those times ([`ALIGNMENT`]). The whiteboard by when each frame is painted, less half a
//!   frame interval: a frame shows the updates received during the interval before it, so
//!   each is recorded within half a frame of its arrival. So a stroke is recorded where it
//!   reached the recorder and the speech where it was captured: the board lags by the
//!   update's delivery time (docs/whiteboard.md, "Recording", gives the measured figures).
//!   The file starts at 0 (`offset-to-zero`).
//! - **Latency.** The mixer and the compositor wait [`MIX_LATENCY`] beyond their inputs'
//!   reported latency for a late member's media before they produce a stretch without it.
//! - **Finished file.** [`RoomRecording::finish`] ends every track; the muxer writes the
//!   duration and the index (waiting at most [`super::recording::FINISH_WAIT`]). A session
//!   does it when it leaves. A recorder that is killed leaves a file without them that still
//!   plays.
//! - **Never overwritten.** The file is created when the recording is built, and refused when
//!   it exists.
//!
//! ```no_run
//! use streamwire::webrtc::room_recording::RoomRecordingConfig;
//! use streamwire::webrtc::subscriber::{SubscriberConfig, VideoOutput};
//! let mut rec = RoomRecordingConfig::new("room.mkv");
//! rec.whiteboard = Some("main".into());
//! let output = SubscriberConfig {
//!     video: VideoOutput::RecordRoom(rec),
//!     ..SubscriberConfig::default()
//! };
//! // SessionConfig { output, .. }: the session records the room and feeds the board.
//! ```

use parking_lot::{Condvar, Mutex};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gst::prelude::*;

use super::recording::FINISH_WAIT;
use super::sender_time::SenderClock;
use super::{MediaKind, WebrtcError, make};

/// How long the mixer and the compositor wait for a member's late media (beyond the
/// latency their inputs report) before producing a stretch without it.
pub const MIX_LATENCY: Duration = Duration::from_millis(200);
/// How far a member's audio may drift from its timestamps in the mix before it is put back
/// at them (at once: a gap of silence or a cut of that size).
pub const ALIGNMENT: Duration = Duration::from_millis(10);
/// Largest picture of a track, each side.
pub const MAX_SIDE: u32 = 3840;
/// Highest frame rate of the video tracks.
pub const MAX_FPS: u32 = 60;
/// Queue before the muxer, per track: the muxer interleaves by time, so a track that is
/// ready early (the whiteboard, painted at once) waits there for the others.
const MUX_QUEUE: Duration = Duration::from_secs(3);
/// Opus bitrate of the mixed audio, bit/s.
const AUDIO_BPS: i32 = 64_000;

/// What a room recording writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomRecordingConfig {
    /// The Matroska file; refused when it exists.
    pub path: PathBuf,
    /// Width of the video tracks (the grid and the board), pixels; default 1280.
    pub width: u32,
    /// Height of the video tracks, pixels; default 720.
    pub height: u32,
    /// Frame rate of the video tracks; default 30.
    pub fps: u32,
    /// Bitrate of each video track, kbit/s; default 2000.
    pub video_kbps: u32,
    /// Record this whiteboard of the room (`main` is the one the browser shows) as a third
    /// track; `None`: no board track.
    pub whiteboard: Option<String>,
}

impl RoomRecordingConfig {
    /// 1280×720 at 30 fps, 2000 kbit/s per video track, no whiteboard.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        RoomRecordingConfig {
            path: path.into(),
            width: 1280,
            height: 720,
            fps: 30,
            video_kbps: 2000,
            whiteboard: None,
        }
    }

    /// Refuse sizes and rates outside 16..=[`MAX_SIDE`] pixels, 1..=[`MAX_FPS`] fps and
    /// 100..=50000 kbit/s, and an existing file.
    ///
    /// ```
    /// use streamwire::webrtc::room_recording::RoomRecordingConfig;
    /// let mut c = RoomRecordingConfig::new("/nonexistent-dir/room.mkv");
    /// assert!(c.validate().is_ok());
    /// c.fps = 0;
    /// assert_eq!(
    ///     c.validate().unwrap_err().to_string(),
    ///     "invalid configuration `fps`: 0 is not in 1..=60"
    /// );
    /// ```
    pub fn validate(&self) -> Result<(), WebrtcError> {
        let range = |field: &'static str, v: u32, lo: u32, hi: u32| {
            if (lo..=hi).contains(&v) {
                Ok(())
            } else {
                Err(WebrtcError::Config {
                    field,
                    detail: format!("{v} is not in {lo}..={hi}"),
                })
            }
        };
        range("width", self.width, 16, MAX_SIDE)?;
        range("height", self.height, 16, MAX_SIDE)?;
        range("fps", self.fps, 1, MAX_FPS)?;
        range("video_kbps", self.video_kbps, 100, 50_000)?;
        if self.path.exists() {
            return Err(exists(&self.path));
        }
        Ok(())
    }
}

fn exists(path: &Path) -> WebrtcError {
    WebrtcError::Config {
        field: "path",
        detail: format!(
            "{} exists; a recording never overwrites a file",
            path.display()
        ),
    }
}

/// A member's input to the compositor or the mixer.
struct Member {
    peer: String,
    kind: MediaKind,
    pad: gst::Pad,
}

/// A room recording being written (see the module documentation).
pub struct RoomRecording {
    config: RoomRecordingConfig,
    compositor: gst::Element,
    mixer: gst::Element,
    /// The live sources that drive the tracks (background, silence, board).
    sources: Vec<gst::Element>,
    board: Option<gst::Element>,
    members: Mutex<Vec<Member>>,
    /// Each member's sender clock, shared by its tracks.
    clocks: Mutex<std::collections::HashMap<String, Arc<SenderClock>>>,
    /// Set when the file sink sees end-of-stream.
    done: Arc<(Mutex<bool>, Condvar)>,
    finished: Mutex<bool>,
}

impl std::fmt::Debug for RoomRecording {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoomRecording")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl RoomRecording {
    /// Create the file (refused when it exists) and build the recording in `bin`, started with
    /// it: build it before the pipeline starts, so every track starts at running time 0.
    pub fn build(bin: &gst::Bin, config: RoomRecordingConfig) -> Result<Arc<Self>, WebrtcError> {
        config.validate()?;
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&config.path)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::AlreadyExists => exists(&config.path),
                _ => WebrtcError::Config {
                    field: "path",
                    detail: format!("cannot create {}: {e}", config.path.display()),
                },
            })?;
        let (w, h, fps) = (
            i32::try_from(config.width).unwrap_or(1280),
            i32::try_from(config.height).unwrap_or(720),
            i32::try_from(config.fps).unwrap_or(30),
        );
        let latency = u64::try_from(MIX_LATENCY.as_nanos()).unwrap_or(u64::MAX);
        let video_caps = |format: &str| {
            gst::Caps::builder("video/x-raw")
                .field("format", format)
                .field("width", w)
                .field("height", h)
                .field("framerate", gst::Fraction::new(fps, 1))
                .build()
        };
        let caps = |c: gst::Caps| -> Result<gst::Element, WebrtcError> {
            let f = make("capsfilter")?;
            f.set_property("caps", c);
            Ok(f)
        };

        let mux = make("matroskamux")?;
        // Not streamable: the duration and the index are written when the file is finished.
        mux.set_property("streamable", false);
        mux.set_property("offset-to-zero", true);
        let sink = make("filesink")?;
        sink.set_property("location", &config.path);
        sink.set_property("async", false);
        let done = super::recording::eos_flag(&sink);

        let background = make("videotestsrc")?;
        background.set_property("is-live", true);
        background.set_property_from_str("pattern", "black");
        let compositor = make("compositor")?;
        compositor.set_property("latency", latency);
        compositor.set_property_from_str("background", "black");
        let video = vec![
            background.clone(),
            caps(video_caps("I420"))?,
            compositor.clone(),
            caps(video_caps("I420"))?,
            vp8(&config)?,
            mux_queue()?,
        ];

        let silence = make("audiotestsrc")?;
        silence.set_property("is-live", true);
        silence.set_property_from_str("wave", "silence");
        let mixer = make("audiomixer")?;
        mixer.set_property("latency", latency);
        // Each member's audio at its timestamps: by default the mixer lays a stream's samples
        // end to end and follows its timestamps only once they are 40 ms off for a second,
        // which moved a burst of speech by up to 80 ms against the board (measured in
        // tests/room_recording.rs).
        mixer.set_property(
            "alignment-threshold",
            u64::try_from(ALIGNMENT.as_nanos()).unwrap_or(u64::MAX),
        );
        mixer.set_property("discont-wait", 0u64);
        let opus = make("opusenc")?;
        opus.set_property("bitrate", AUDIO_BPS);
        let audio = vec![
            silence.clone(),
            caps(mix_caps())?,
            mixer.clone(),
            caps(mix_caps())?,
            opus,
            mux_queue()?,
        ];

        let mut chains = vec![(MediaKind::Video, video), (MediaKind::Audio, audio)];
        let mut sources = vec![background, silence];
        let mut board = None;
        if config.whiteboard.is_some() {
            let src = make("whiteboardsrc")?;
            src.set_property("is-live", true);
            chains.push((
                MediaKind::Video,
                vec![
                    src.clone(),
                    caps(video_caps("RGBA"))?,
                    make("videoconvert")?,
                    vp8(&config)?,
                    mux_queue()?,
                ],
            ));
            centre_frames(&src, config.fps);
            sources.push(src.clone());
            board = Some(src);
        }

        bin.add_many([&mux, &sink])
            .map_err(|e| WebrtcError::State(format!("adding the room recording: {e}")))?;
        mux.link(&sink)
            .map_err(|e| link("matroskamux to filesink", e))?;
        for (kind, chain) in &chains {
            bin.add_many(chain)
                .map_err(|e| WebrtcError::State(format!("adding the room recording: {e}")))?;
            gst::Element::link_many(chain).map_err(|e| link("the room recording's track", e))?;
            let template = match kind {
                MediaKind::Audio => "audio_%u",
                MediaKind::Video => "video_%u",
            };
            let pad = mux
                .request_pad_simple(template)
                .ok_or_else(|| link("the room recording", format!("no {template} pad")))?;
            chain
                .last()
                .and_then(|q| q.static_pad("src"))
                .ok_or_else(|| WebrtcError::MissingElement("mux queue src pad".into()))?
                .link(&pad)
                .map_err(|e| link("a track to matroskamux", format!("{e:?}")))?;
        }
        let mut all: Vec<&gst::Element> = vec![&sink, &mux];
        all.extend(chains.iter().flat_map(|(_, c)| c.iter().rev()));
        for e in all {
            e.sync_state_with_parent()
                .map_err(|e| WebrtcError::State(format!("starting the room recording: {e}")))?;
        }
        Ok(Arc::new(RoomRecording {
            config,
            compositor,
            mixer,
            sources,
            board,
            members: Mutex::new(Vec::new()),
            clocks: Mutex::new(std::collections::HashMap::new()),
            done,
            finished: Mutex::new(false),
        }))
    }

    /// The configuration it records with.
    pub fn config(&self) -> &RoomRecordingConfig {
        &self.config
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.config.path
    }

    /// The `whiteboardsrc` of the board track (feed it with
    /// [`Whiteboard::feed`](crate::whiteboard::Whiteboard::feed); a session does), if the
    /// recording has one.
    pub fn board_element(&self) -> Option<&gst::Element> {
        self.board.as_ref()
    }

    /// Stamp the RTP packets entering `depay_sink` (a track of `peer` received by
    /// `webrtcbin`) with their sender's capture times, on one timeline for all of `peer`'s
    /// tracks ([`super::sender_time`]).
    pub(super) fn stamp_sender_time(
        &self,
        webrtcbin: Option<&gst::Element>,
        peer: &str,
        depay_sink: &gst::Pad,
    ) {
        if let Some(w) = webrtcbin {
            super::sender_time::enable(w);
        }
        let clock = self
            .clocks
            .lock()
            .entry(peer.to_owned())
            .or_insert_with(|| Arc::new(SenderClock::at_capture()))
            .clone();
        super::sender_time::restamp(depay_sink, clock);
    }

    /// Mix (audio, in [`mix_caps`]) or compose (video, any raw format) the branch of `peer`
    /// ending in `tail` into the file. Refused after [`RoomRecording::finish`].
    pub fn add(&self, peer: &str, kind: MediaKind, tail: &gst::Element) -> Result<(), WebrtcError> {
        if *self.finished.lock() {
            return Err(WebrtcError::State("the room recording is finished".into()));
        }
        let agg = match kind {
            MediaKind::Audio => &self.mixer,
            MediaKind::Video => &self.compositor,
        };
        let pad = agg
            .request_pad_simple("sink_%u")
            .ok_or_else(|| link("the room recording", "no mixer pad".to_owned()))?;
        if kind == MediaKind::Video {
            pad.set_property_from_str("sizing-policy", "keep-aspect-ratio");
            pad.set_property("zorder", 1u32);
        }
        let src = tail
            .static_pad("src")
            .ok_or_else(|| WebrtcError::MissingElement("receive branch src pad".into()))?;
        src.link(&pad)
            .map_err(|e| link("a member to the room recording", format!("{e:?}")))?;
        let mut members = self.members.lock();
        members.push(Member {
            peer: peer.to_owned(),
            kind,
            pad,
        });
        self.layout(&members);
        tracing::info!(peer, kind = kind.as_str(), path = %self.config.path.display(), "member recorded");
        Ok(())
    }

    /// Give back the input the branch ending in `tail` fed (after the branch stopped) and lay
    /// out the grid again.
    pub fn remove(&self, tail: &gst::Element) {
        let Some(pad) = tail.static_pad("src").and_then(|s| {
            let p = s.peer()?;
            let _ = s.unlink(&p);
            Some(p)
        }) else {
            return;
        };
        let mut members = self.members.lock();
        let Some(i) = members.iter().position(|m| m.pad == pad) else {
            return;
        };
        let m = members.remove(i);
        match m.kind {
            MediaKind::Audio => self.mixer.release_request_pad(&pad),
            MediaKind::Video => self.compositor.release_request_pad(&pad),
        }
        tracing::info!(peer = %m.peer, kind = m.kind.as_str(), "member no longer recorded");
        self.layout(&members);
    }

    /// Place the members' videos in a grid: `ceil(sqrt(n))` columns, filled row by row.
    fn layout(&self, members: &[Member]) {
        let videos: Vec<&Member> = members
            .iter()
            .filter(|m| m.kind == MediaKind::Video)
            .collect();
        let cells = grid(videos.len(), self.config.width, self.config.height);
        for (m, (x, y, w, h)) in videos.iter().zip(cells) {
            m.pad.set_property("xpos", x);
            m.pad.set_property("ypos", y);
            m.pad.set_property("width", w);
            m.pad.set_property("height", h);
        }
    }

    /// End every track and wait (at most [`FINISH_WAIT`]) until the muxer has written the
    /// duration and the index. Members still recorded end here too. Returns whether the file
    /// was finished in time; a second call returns at once.
    pub fn finish(&self) -> bool {
        {
            let mut f = self.finished.lock();
            if *f {
                return *self.done.0.lock();
            }
            *f = true;
        }
        let pads: Vec<gst::Pad> = self.members.lock().iter().map(|m| m.pad.clone()).collect();
        for p in pads {
            p.send_event(gst::event::Eos::new());
        }
        for s in &self.sources {
            s.send_event(gst::event::Eos::new());
        }
        let deadline = Instant::now() + FINISH_WAIT;
        let (done, cv) = &*self.done;
        let mut d = done.lock();
        while !*d {
            if cv.wait_until(&mut d, deadline).timed_out() {
                tracing::warn!(path = %self.config.path.display(), "the room recording was not finished within {FINISH_WAIT:?}");
                return false;
            }
        }
        true
    }
}

/// The format every member's audio is converted to before the mixer: 48 kHz mono S16LE.
pub fn mix_caps() -> gst::Caps {
    super::dsp::dsp_caps()
}

/// The cells (x, y, width, height) of `n` pictures in a `width` × `height` grid of
/// `ceil(sqrt(n))` columns, row by row.
fn grid(n: usize, width: u32, height: u32) -> Vec<(i32, i32, i32, i32)> {
    if n == 0 {
        return Vec::new();
    }
    let cols = (n as f64).sqrt().ceil() as u32;
    let rows = (n as u32).div_ceil(cols);
    let (cw, ch) = (width / cols, height / rows);
    (0..n as u32)
        .map(|i| {
            let (c, r) = (i % cols, i / cols);
            let v = |x: u32| i32::try_from(x).unwrap_or(i32::MAX);
            (v(c * cw), v(r * ch), v(cw), v(ch))
        })
        .collect()
}

/// Stamp the frames leaving the live `whiteboardsrc` `src` half a frame interval (at `fps`)
/// before the time they were painted at: a frame shows the updates that arrived during the
/// interval before it, so an update is then recorded within half a frame of its arrival
/// either way, instead of up to a whole frame late.
fn centre_frames(src: &gst::Element, fps: u32) {
    let half = gst::ClockTime::SECOND / (2 * u64::from(fps.max(1)));
    if let Some(pad) = src.static_pad("src") {
        pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            if let Some(gst::PadProbeData::Buffer(buf)) = &mut info.data
                && let Some(pts) = buf.pts()
                && pts >= half
            {
                buf.make_mut().set_pts(pts - half);
            }
            gst::PadProbeReturn::Ok
        });
    }
}

/// A real-time VP8 encoder for one of the recording's video tracks (a keyframe every two
/// seconds, so a player can seek).
fn vp8(config: &RoomRecordingConfig) -> Result<gst::Element, WebrtcError> {
    let e = make("vp8enc")?;
    e.set_property("deadline", 1i64);
    e.set_property("cpu-used", 8i32);
    e.set_property("threads", 2i32);
    e.set_property(
        "target-bitrate",
        i32::try_from(config.video_kbps.saturating_mul(1000)).unwrap_or(i32::MAX),
    );
    e.set_property(
        "keyframe-max-dist",
        i32::try_from(config.fps * 2).unwrap_or(60),
    );
    Ok(e)
}

/// The queue between a track and the muxer ([`MUX_QUEUE`] of it, no byte or buffer bound).
fn mux_queue() -> Result<gst::Element, WebrtcError> {
    let q = make("queue")?;
    q.set_property("max-size-buffers", 0u32);
    q.set_property("max-size-bytes", 0u32);
    q.set_property(
        "max-size-time",
        u64::try_from(MUX_QUEUE.as_nanos()).unwrap_or(u64::MAX),
    );
    Ok(q)
}

fn link(what: &str, detail: impl ToString) -> WebrtcError {
    WebrtcError::Link {
        what: what.to_owned(),
        detail: detail.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_fills_rows_of_ceil_sqrt_columns() {
        assert!(grid(0, 1280, 720).is_empty());
        assert_eq!(grid(1, 1280, 720), vec![(0, 0, 1280, 720)]);
        assert_eq!(
            grid(2, 1280, 720),
            vec![(0, 0, 640, 720), (640, 0, 640, 720)]
        );
        let g = grid(5, 1280, 720);
        assert_eq!(g.len(), 5);
        assert_eq!(g[3], (0, 360, 426, 360));
        assert_eq!(g[4], (426, 360, 426, 360));
    }

    /// Why the tracks are fixed: a pad `matroskamux` (GStreamer 1.22) gives after it wrote
    /// its header does not become a track of the file (the header lists the tracks once).
    #[test]
    fn a_track_added_after_the_header_is_not_in_the_file() {
        use gst_pbutils::prelude::*;
        crate::gst_init::init().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("late.mkv");
        let pipeline = gst::parse::launch(&format!(
            "videotestsrc is-live=true num-buffers=60 ! video/x-raw,width=160,height=120,framerate=30/1 ! \
             vp8enc deadline=1 ! matroskamux name=m streamable=false ! filesink name=s location={}",
            path.display()
        ))
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
        let mux = pipeline.by_name("m").unwrap();
        let written = Arc::new((Mutex::new(0u32), Condvar::new()));
        let w = written.clone();
        pipeline
            .by_name("s")
            .unwrap()
            .static_pad("sink")
            .unwrap()
            .add_probe(gst::PadProbeType::BUFFER, move |_, _| {
                *w.0.lock() += 1;
                w.1.notify_all();
                gst::PadProbeReturn::Ok
            });
        pipeline.set_state(gst::State::Playing).unwrap();
        {
            let mut n = written.0.lock();
            let deadline = Instant::now() + Duration::from_secs(10);
            while *n < 10 && !written.1.wait_until(&mut n, deadline).timed_out() {}
            assert!(*n >= 10, "the muxer wrote its header and some frames");
        }
        let late = gst::parse::bin_from_description(
            "audiotestsrc is-live=true num-buffers=50 ! opusenc",
            true,
        )
        .unwrap();
        pipeline.add(&late).unwrap();
        if let Some(pad) = mux.request_pad_simple("audio_%u") {
            late.static_pad("src").unwrap().link(&pad).unwrap();
            late.sync_state_with_parent().unwrap();
        }
        let bus = pipeline.bus().unwrap();
        let msg = bus
            .timed_pop_filtered(
                gst::ClockTime::from_seconds(20),
                &[gst::MessageType::Eos, gst::MessageType::Error],
            )
            .unwrap();
        pipeline.set_state(gst::State::Null).unwrap();
        if let gst::MessageView::Error(e) = msg.view() {
            tracing::info!("the late pad failed the mux: {}", e.error());
        }
        let uri = gst::glib::filename_to_uri(&path, None).unwrap();
        let info = gst_pbutils::Discoverer::new(gst::ClockTime::from_seconds(10))
            .unwrap()
            .discover_uri(&uri)
            .unwrap();
        assert_eq!(info.video_streams().len(), 1);
        assert!(
            info.audio_streams().is_empty(),
            "a track added after the header is in the file"
        );
    }

    #[test]
    fn refuses_an_existing_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("room.mkv");
        std::fs::write(&p, b"x").unwrap();
        let e = RoomRecordingConfig::new(&p).validate().unwrap_err();
        assert!(e.to_string().contains("exists"), "{e}");
    }
}
