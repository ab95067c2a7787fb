//! Room recording (`VideoOutput::RecordRoom`, `streamwire record`) against a real server,
//! real webrtcbin peers and a real whiteboard; the file decoded with GStreamer
//! (`filesrc ! matroskademux ! opusdec / vp8dec ! appsink`) and the Discoverer.
//! - a stroke drawn when a 1 kHz tone starts is in the file within one frame interval of the
//!   tone's onset;
//! - `streamwire record`: a member who joins after the recording started is in the file, the
//!   file is finished (has a duration) after `--for`, an existing file is refused;
//! - `streamwire record` in an SFU room (a real Janus): the member's picture and tone are in
//!   the file;
//! - `[whiteboard]` preset values give located errors.
//!
//! Run: unshare -n sh -c 'ip link set lo up; cargo test --offline --test room_recording'

mod common;
mod janus_support;
mod netns_support;
mod proc_support;
mod session_support;
mod tone_support;
mod whiteboard_support;

use parking_lot::Mutex;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use gst::prelude::*;
use gststreamwire::whiteboard::Item;
use proc_support::Proc;
use streamwire::preset::{Preset, TOKEN_ENV};
use streamwire::signalling::protocol::Grant;
use streamwire::webrtc::MediaKind;
use streamwire::webrtc::publisher::{AudioSource, PublisherConfig, VideoSource};
use streamwire::webrtc::room_recording::RoomRecordingConfig;
use streamwire::webrtc::subscriber::{SubscriberConfig, VideoOutput};

/// Frame rate of the recorded video tracks.
const FPS: u32 = 30;
/// Tone bursts (and strokes) per run.
const BURSTS: u64 = 5;
/// A burst starts every PERIOD and lasts TONE.
const PERIOD: gst::ClockTime = gst::ClockTime::from_mseconds(1210);
const TONE: gst::ClockTime = gst::ClockTime::from_mseconds(300);
/// The tone's frequency and amplitude (of i16 full scale).
const FREQ: f64 = 1000.0;
const VOLUME: f64 = 0.5;
const T: Duration = Duration::from_secs(30);

/// Everything decoded from a room recording.
#[derive(Default)]
struct Decoded {
    /// Mixed audio: (pts of the buffer, its samples, 48 kHz mono).
    audio: Vec<(gst::ClockTime, Vec<i16>)>,
    /// Board track: (pts, red pixels in the band of each stroke, see [`stroke`]).
    board: Vec<(gst::ClockTime, Vec<usize>)>,
    /// Composed track: (pts, pixels that are not black).
    grid: Vec<(gst::ClockTime, usize)>,
}

/// Decode `path`: `audio_0` (mixed audio), `video_0` (the grid) and, with `board`, `video_1`.
fn decode(path: &Path, board: bool) -> Decoded {
    streamwire::gst_init::init().unwrap();
    let video = |pad: &str, name: &str| {
        format!(
            "d.{pad} ! queue max-size-time=0 max-size-bytes=0 max-size-buffers=0 ! vp8dec ! \
             videoconvert ! video/x-raw,format=RGBA ! appsink name={name} sync=false "
        )
    };
    let desc = format!(
        "filesrc location=\"{}\" ! matroskademux name=d \
         d.audio_0 ! queue max-size-time=0 max-size-bytes=0 max-size-buffers=0 ! opusdec ! \
         audioconvert ! audioresample ! audio/x-raw,format=S16LE,rate=48000,channels=1 ! \
         appsink name=a sync=false {} {}",
        path.display(),
        video("video_0", "g"),
        if board {
            video("video_1", "b")
        } else {
            String::new()
        }
    );
    let pipeline = gst::parse::launch(&desc)
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
    let out: Arc<Mutex<Decoded>> = Arc::default();
    let sink = |name: &str| {
        pipeline
            .by_name(name)
            .unwrap()
            .downcast::<gst_app::AppSink>()
            .unwrap()
    };
    let o = out.clone();
    sink("a").set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |s| {
                let sample = s.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                let buf = sample.buffer().unwrap();
                let map = buf.map_readable().unwrap();
                let samples: Vec<i16> = map
                    .chunks_exact(2)
                    .map(|c| i16::from_le_bytes([c[0], c[1]]))
                    .collect();
                o.lock().audio.push((buf.pts().unwrap(), samples));
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
    let o = out.clone();
    sink("g").set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |s| {
                let sample = s.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                let buf = sample.buffer().unwrap();
                let map = buf.map_readable().unwrap();
                let lit = map
                    .chunks_exact(4)
                    .filter(|p| p[0] > 40 || p[1] > 40 || p[2] > 40)
                    .count();
                o.lock().grid.push((buf.pts().unwrap(), lit));
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
    if board {
        let o = out.clone();
        sink("b").set_callbacks(
            gst_app::AppSinkCallbacks::builder()
                .new_sample(move |s| {
                    let sample = s.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                    let info = gst_video::VideoInfo::from_caps(sample.caps().unwrap()).unwrap();
                    let buf = sample.buffer().unwrap();
                    let map = buf.map_readable().unwrap();
                    let stride = info.stride()[0] as usize;
                    let bands = (0..BURSTS)
                        .map(|n| {
                            let (top, bottom) = stroke_rows(n, info.height());
                            (top..bottom)
                                .flat_map(|y| {
                                    map[y * stride..y * stride + info.width() as usize * 4]
                                        .chunks_exact(4)
                                })
                                .filter(|p| p[0] > 150 && p[1] < 90 && p[2] < 90)
                                .count()
                        })
                        .collect();
                    o.lock().board.push((buf.pts().unwrap(), bands));
                    Ok(gst::FlowSuccess::Ok)
                })
                .build(),
        );
    }
    pipeline.set_state(gst::State::Playing).unwrap();
    let bus = pipeline.bus().unwrap();
    let msg = bus
        .timed_pop_filtered(
            gst::ClockTime::from_seconds(60),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        )
        .expect("decoding ends");
    if let gst::MessageView::Error(e) = msg.view() {
        panic!(
            "decoding {}: {} ({:?})",
            path.display(),
            e.error(),
            e.debug()
        );
    }
    pipeline.set_state(gst::State::Null).unwrap();
    std::mem::take(&mut *out.lock())
}

/// The file's duration as the Discoverer reads it (`None`: the muxer did not finish it).
fn duration(path: &Path) -> Option<gst::ClockTime> {
    let discoverer = gst_pbutils::Discoverer::new(gst::ClockTime::from_seconds(10)).unwrap();
    let uri = gst::glib::filename_to_uri(path, None).unwrap();
    discoverer.discover_uri(&uri).unwrap().duration()
}

/// Onsets of the tone in `audio`: the first sample above a quarter of the tone's amplitude
/// after at least 200 ms without one, confirmed as the tone (its 1 kHz energy over the next
/// 20 ms, Goertzel, is most of the window's energy).
fn tone_onsets(audio: &[(gst::ClockTime, Vec<i16>)]) -> Vec<gst::ClockTime> {
    let rate = u64::from(tone_support::RATE);
    let loud = VOLUME * f64::from(i16::MAX) / 4.0;
    let mut all: Vec<(gst::ClockTime, i16)> = Vec::new();
    for (pts, samples) in audio {
        for (i, s) in samples.iter().enumerate() {
            all.push((
                *pts + gst::ClockTime::from_nseconds(i as u64 * 1_000_000_000 / rate),
                *s,
            ));
        }
    }
    let gap = gst::ClockTime::from_mseconds(200);
    let mut last_loud: Option<gst::ClockTime> = None;
    let mut onsets = Vec::new();
    for i in 0..all.len() {
        let (t, v) = all[i];
        if f64::from(v).abs() <= loud {
            continue;
        }
        if last_loud.is_none_or(|l| t > l + gap) {
            let window: Vec<i16> = all[i..(i + 960).min(all.len())]
                .iter()
                .map(|x| x.1)
                .collect();
            let total: f64 = window.iter().map(|x| f64::from(*x).powi(2)).sum();
            // A pure tone at FREQ has a Goertzel energy of N/2 times its sum of squares.
            let tone = tone_support::energy_at(&window, FREQ);
            let share = tone / (total * window.len() as f64 / 2.0);
            assert!(
                share > 0.5,
                "an onset at {t} that is not the {FREQ} Hz tone ({share:.2} of the energy)"
            );
            onsets.push(t);
        }
        last_loud = Some(t);
    }
    onsets
}

/// The first frame showing each stroke: the first whose band (see [`stroke_rows`]) holds at
/// least half the red pixels it holds at the end.
fn stroke_frames(board: &[(gst::ClockTime, Vec<usize>)]) -> Vec<Option<gst::ClockTime>> {
    let Some((_, last)) = board.last() else {
        return Vec::new();
    };
    (0..last.len())
        .map(|n| {
            let full = last[n];
            (full > 100)
                .then(|| {
                    board
                        .iter()
                        .find(|(_, b)| b[n] * 2 >= full)
                        .map(|(t, _)| *t)
                })
                .flatten()
        })
        .collect()
}

/// The page y of stroke `n` (page units, 1600x900 page).
fn stroke_y(n: u64) -> f32 {
    100.0 + n as f32 * 150.0
}

/// The pixel rows of stroke `n` (40 page units thick) on a board track of `height` rows
/// (the 16:9 page fills a 16:9 track).
fn stroke_rows(n: u64, height: u32) -> (usize, usize) {
    let scale = height as f32 / 900.0;
    let (top, bottom) = ((stroke_y(n) - 30.0) * scale, (stroke_y(n) + 30.0) * scale);
    (
        top.max(0.0) as usize,
        (bottom as usize).min(height as usize),
    )
}

/// When the bursts of [`bursting_tone`] start: burst `n` at `first + (n + 1) × PERIOD` of the
/// running time of the publisher's pipeline (its `clock` and `base` time).
struct Schedule {
    first: gst::ClockTime,
    clock: gst::Clock,
    base: gst::ClockTime,
}

impl Schedule {
    /// The clock time burst `n` starts at (its first sample's capture time).
    fn start_of(&self, n: u64) -> gst::ClockTime {
        self.base + self.first + PERIOD * (n + 1)
    }
}

/// A live 1 kHz source, silent except for [`BURSTS`] bursts on a fixed schedule (by the
/// buffers' capture times) that starts once `armed`; the schedule is sent on `schedule`.
fn bursting_tone(
    armed: Arc<AtomicBool>,
    schedule: tokio::sync::mpsc::UnboundedSender<Schedule>,
) -> gst::Element {
    streamwire::gst_init::init().unwrap();
    let src = gst::ElementFactory::make("audiotestsrc")
        .property("is-live", true)
        .property("freq", FREQ)
        .property("volume", VOLUME)
        .property("samplesperbuffer", 480i32)
        .build()
        .unwrap();
    let first: Mutex<Option<gst::ClockTime>> = Mutex::new(None);
    src.static_pad("src")
        .unwrap()
        .add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
            let Some(gst::PadProbeData::Buffer(buf)) = &mut info.data else {
                return gst::PadProbeReturn::Ok;
            };
            let pts = buf.pts().unwrap_or_default();
            let mut tone = false;
            if armed.load(Ordering::SeqCst) {
                let mut f = first.lock();
                let first = match *f {
                    Some(t) => t,
                    None => {
                        *f = Some(pts);
                        let el = pad.parent_element().unwrap();
                        let _ = schedule.send(Schedule {
                            first: pts,
                            clock: el.clock().unwrap(),
                            base: el.base_time().unwrap(),
                        });
                        pts
                    }
                };
                let rel = pts.saturating_sub(first).nseconds();
                let burst = rel / PERIOD.nseconds();
                tone = (1..=BURSTS).contains(&burst) && rel % PERIOD.nseconds() < TONE.nseconds();
            }
            if !tone {
                buf.make_mut().map_writable().unwrap().fill(0);
            }
            gst::PadProbeReturn::Ok
        });
    src
}

/// A thick red horizontal stroke, the `n`th (each lower on the page).
fn stroke(n: u64) -> Item {
    let y = stroke_y(n);
    Item::pen(
        &format!("s{n}"),
        "p1",
        "",
        "#d00000",
        40.0,
        &[[100.0, y, 0.5], [800.0, y, 0.5], [1500.0, y, 0.5]],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stroke_drawn_at_a_tone_onset_is_recorded_with_it() {
    let srv = common::start(common::config()).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("room.mkv");
    let rec = RoomRecordingConfig {
        width: 320,
        height: 180,
        fps: FPS,
        video_kbps: 1000,
        whiteboard: Some("main".into()),
        ..RoomRecordingConfig::new(&path)
    };
    let recorder = session_support::join(&srv.url, "rr", "rec", None, |c| {
        c.output = SubscriberConfig {
            video: VideoOutput::RecordRoom(rec),
            ..SubscriberConfig::default()
        };
    })
    .await;
    let drawer = whiteboard_support::member(&srv.url, "rr", "ann", whiteboard_support::DRAW).await;
    let armed = Arc::new(AtomicBool::new(false));
    let (tx, mut bursts) = tokio::sync::mpsc::unbounded_channel();
    let publisher = session_support::join(
        &srv.url,
        "rr",
        "pub",
        Some(PublisherConfig {
            video: VideoSource::None,
            audio: AudioSource::Element(bursting_tone(armed.clone(), tx)),
            audio_dtx: false,
            ..PublisherConfig::default()
        }),
        |_| {},
    )
    .await;
    let pub_id = publisher.session.peer_id().unwrap();
    session_support::wait_for("the recorder decodes the publisher's audio", T, || {
        recorder.decoded_from(&pub_id, MediaKind::Audio) > 50
    })
    .await;
    // The board track has the room's (empty) board: the recorder's board is synced.
    let board = recorder.session.whiteboard("main").unwrap();
    common::within("recorder board synced", board.synced()).await;
    // Past the first RTCP reports and the jitter buffer's settling.
    tokio::time::sleep(Duration::from_secs(2)).await;
    armed.store(true, Ordering::SeqCst);
    let schedule = common::within("the bursts are scheduled", bursts.recv())
        .await
        .unwrap();
    // Each stroke is drawn when the publisher's clock reaches its burst's capture time.
    let late = tokio::task::spawn_blocking(move || {
        (0..BURSTS)
            .map(|n| {
                let at = schedule.start_of(n);
                let _ = schedule.clock.new_single_shot_id(at).wait();
                drawer.board.draw(&stroke(n)).unwrap();
                (schedule.clock.time().saturating_sub(at)).mseconds()
            })
            .collect::<Vec<_>>()
    })
    .await
    .unwrap();
    eprintln!("strokes drawn after their burst's capture time, ms: {late:?}");
    whiteboard_support::until_items(
        "the recorder's board",
        &board,
        &["s0", "s1", "s2", "s3", "s4"],
    )
    .await;
    // The last burst (and stroke) well inside the file.
    tokio::time::sleep(Duration::from_secs(2)).await;
    publisher.session.leave().await;
    recorder.session.leave().await;

    assert!(
        duration(&path).is_some_and(|d| d > gst::ClockTime::from_seconds(5)),
        "the file is finished with its duration"
    );
    let d = decode(&path, true);
    let onsets = tone_onsets(&d.audio);
    let strokes = stroke_frames(&d.board);
    assert_eq!(onsets.len(), BURSTS as usize, "tone onsets {onsets:?}");
    assert_eq!(strokes.len(), BURSTS as usize, "stroke frames {strokes:?}");
    let frame_ms = 1000.0 / f64::from(FPS);
    let diffs: Vec<f64> = onsets
        .iter()
        .zip(&strokes)
        .map(|(a, s)| {
            let s = s.expect("every stroke is on the board");
            (s.nseconds() as f64 - a.nseconds() as f64) / 1e6
        })
        .collect();
    eprintln!("stroke frame - tone onset, ms: {diffs:.1?} (frame interval {frame_ms:.1} ms)");
    // The aim is one frame interval; single strokes on a loaded machine were seen up to
    // 35.2 ms off (docs/whiteboard.md, "Recording"): the median must meet the aim and every
    // stroke be within two frame intervals.
    let mut sorted = diffs.clone();
    sorted.sort_by(f64::total_cmp);
    let median = sorted[sorted.len() / 2];
    assert!(
        median.abs() <= frame_ms,
        "the median stroke is {median:.1} ms from its tone's onset (more than one frame, \
         {frame_ms:.1} ms): {diffs:.1?}"
    );
    for (i, d) in diffs.iter().enumerate() {
        assert!(
            d.abs() <= 2.0 * frame_ms,
            "burst {i}: the stroke is {d:.1} ms from the tone's onset (more than two frames, \
             {:.1} ms): {diffs:.1?}",
            2.0 * frame_ms
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamwire_record_takes_a_late_member_finishes_the_file_and_never_overwrites() {
    let srv = common::start(common::config()).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("room.mkv");
    let out_arg = out.display().to_string();
    let token = common::token("rc", "rec", &[Grant::Subscribe]);
    let args = [
        "record",
        "--server",
        &srv.url,
        "--room",
        "rc",
        "--out",
        &out_arg,
        "--whiteboard",
        "main",
        "--for",
        "8s",
        "--width",
        "320",
        "--height",
        "180",
        "--local-address",
        "127.0.0.1",
        "--quiet",
    ];
    let env = [(TOKEN_ENV, token.as_str())];
    let rec = Proc::spawn(&args, &env, dir.path());
    rec.wait_for("joined room", T).await;
    // The member joins 2 s into the recording.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let member = session_support::join(
        &srv.url,
        "rc",
        "late",
        Some(PublisherConfig {
            video: VideoSource::TestPattern("smpte".into()),
            audio: AudioSource::TestTone,
            ..session_support::small(320, 180, streamwire::encoder::Codec::Vp8)
        }),
        |_| {},
    )
    .await;
    let (status, stderr) = rec.finish(T).await;
    member.session.leave().await;
    assert!(status.success(), "streamwire record failed: {stderr}");
    assert!(stderr.contains("wrote"), "{stderr}");

    let length = duration(&out).expect("the file is finished: it has a duration");
    // Recorded for 8 s after joining. Shorter when the recorder's pipeline fell behind real
    // time (its live sources time their frames by count: seen at 6.5 s on a machine with a
    // load average of 7 on 2 cores).
    eprintln!("recorded for 8 s: the file lasts {length}");
    assert!(
        length >= gst::ClockTime::from_seconds(5) && length <= gst::ClockTime::from_seconds(10),
        "the file lasts {length}, recorded for 8 s"
    );
    let d = decode(&out, true);
    let lit = |from: u64, to: u64| {
        d.grid
            .iter()
            .filter(|(t, _)| t.seconds() >= from && t.seconds() < to)
            .map(|(_, n)| *n)
            .max()
            .unwrap_or(0)
    };
    let loud = |from: u64, to: u64| {
        d.audio
            .iter()
            .filter(|(t, _)| t.seconds() >= from && t.seconds() < to)
            .flat_map(|(_, s)| s.iter().map(|v| v.unsigned_abs()))
            .max()
            .unwrap_or(0)
    };
    // Before the member joined: a black picture and silence; at the end: its picture (the
    // test pattern fills most of the grid) and its tone.
    assert_eq!(lit(0, 1), 0, "the grid is black before anyone joins");
    assert_eq!(loud(0, 1), 0, "the mix is silent before anyone joins");
    let end = length.seconds();
    let per_second: Vec<(usize, u16)> =
        (0..=end).map(|s| (lit(s, s + 1), loud(s, s + 1))).collect();
    eprintln!("per second (lit pixels, audio peak): {per_second:?}");
    assert!(
        lit(end - 1, end) > 320 * 180 / 2,
        "the late member's video is in the grid: {per_second:?}"
    );
    assert!(
        loud(end - 1, end) > 1000,
        "the late member's audio is in the mix: {per_second:?}"
    );
    assert!(!d.board.is_empty(), "the board track has frames");

    // A second run with the same --out is refused and leaves the file alone.
    let size = std::fs::metadata(&out).unwrap().len();
    let again = Proc::spawn(&args, &env, dir.path());
    let (status, stderr) = again.finish(T).await;
    assert!(
        !status.success(),
        "an existing file was overwritten: {stderr}"
    );
    assert!(stderr.contains("exists"), "{stderr}");
    assert_eq!(std::fs::metadata(&out).unwrap().len(), size);

    // Without a token (no --token, no STREAMWIRE_TOKEN) it says where one comes from.
    let other = dir.path().join("no-token.mkv").display().to_string();
    let mut no_token = args.to_vec();
    no_token[6] = &other;
    let (status, stderr) = Proc::spawn(&no_token, &[], dir.path()).finish(T).await;
    assert!(!status.success());
    assert!(
        stderr.contains("no room token") && stderr.contains(TOKEN_ENV),
        "{stderr}"
    );

    // Ctrl-C (SIGINT) finishes the file too.
    let out2 = dir.path().join("interrupted.mkv");
    let out2_arg = out2.display().to_string();
    let mut args2 = args.to_vec();
    args2[6] = &out2_arg;
    args2.drain(9..11); // no --for
    let rec = Proc::spawn(&args2, &env, dir.path());
    rec.wait_for("joined room", T).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    rec.interrupt();
    let (status, stderr) = rec.finish(T).await;
    assert!(status.success(), "interrupted streamwire record: {stderr}");
    assert!(
        duration(&out2).is_some_and(|d| d >= gst::ClockTime::from_mseconds(1500)),
        "the interrupted recording is finished: {stderr}"
    );
}

/// The recorder in an SFU room: it receives the member through its subscribing connection
/// to Janus like any member (Janus gathers no ICE candidates on loopback: the test runs in a
/// namespace of its own with a veth pair, and both sides use its 10.77.0.1 end).
#[test]
fn streamwire_record_in_an_sfu_room() {
    if !netns_support::isolated("streamwire_record_in_an_sfu_room") {
        return;
    }
    janus_support::veth();
    let janus = janus_support::Janus::start("40000-40100");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut cfg = common::config();
        cfg.sfu = Some(janus.sfu_config());
        let srv = common::start(cfg).await;
        let member = session_support::join(
            &srv.url,
            "rs",
            "speaker",
            Some(PublisherConfig {
                video: VideoSource::TestPattern("smpte".into()),
                audio: AudioSource::TestTone,
                ..session_support::small(320, 180, streamwire::encoder::Codec::Vp8)
            }),
            |c| c.local_addresses = vec![janus_support::CLIENT_ADDR.to_owned()],
        )
        .await;
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("sfu-room.mkv");
        let out_arg = out.display().to_string();
        let token = common::token("rs", "rec", &[Grant::Subscribe]);
        let args = [
            "record",
            "--server",
            &srv.url,
            "--room",
            "rs",
            "--out",
            &out_arg,
            "--for",
            "6s",
            "--width",
            "320",
            "--height",
            "180",
            "--local-address",
            janus_support::CLIENT_ADDR,
            "--quiet",
        ];
        let rec = Proc::spawn(&args, &[(TOKEN_ENV, token.as_str())], dir.path());
        let (status, stderr) = rec.finish(T).await;
        member.session.leave().await;
        assert!(status.success(), "streamwire record failed: {stderr}");
        let length = duration(&out).expect("the file is finished: it has a duration");
        let d = decode(&out, false);
        let end = length.seconds();
        let lit = d
            .grid
            .iter()
            .filter(|(t, _)| t.seconds() + 1 >= end)
            .map(|(_, n)| *n)
            .max()
            .unwrap_or(0);
        let loud = d
            .audio
            .iter()
            .filter(|(t, _)| t.seconds() + 1 >= end)
            .flat_map(|(_, s)| s.iter().map(|v| v.unsigned_abs()))
            .max()
            .unwrap_or(0);
        eprintln!("SFU room recorded: {length}, last second: {lit} lit pixels, audio peak {loud}");
        assert!(
            lit > 320 * 180 / 2,
            "the member's video is in the grid ({lit} lit pixels)"
        );
        assert!(
            loud > 1000,
            "the member's audio is in the mix (peak {loud})"
        );
    });
}

#[test]
fn whiteboard_preset_values_are_refused_where_they_are() {
    let room = "[input]\nvideo = \"room\"\n[room]\nserver = \"ws://127.0.0.1:1\"\nroom = \"r\"\n\
                token = \"t\"\n";
    // The board goes into the room's file: it needs output = "record:DIR".
    let text = format!("output = \"fakesink\"\n{room}[whiteboard]\nrecord = true\n");
    let e = Preset::from_str(&text, "p.toml", &[]).unwrap_err();
    assert_eq!(e.line_column(), Some((9, 10)), "{e}");
    assert!(e.to_string().contains("whiteboard.record"), "{e}");
    let text =
        format!("output = \"record:rec\"\n{room}[whiteboard]\nrecord = true\nboard = \"a b\"\n");
    let e = Preset::from_str(&text, "p.toml", &[]).unwrap_err();
    assert_eq!(e.line_column(), Some((10, 9)), "{e}");
    assert!(e.to_string().contains("whiteboard.board"), "{e}");
    let text = format!("output = \"record:rec\"\n{room}[whiteboard]\nrecord = \"yes\"\n");
    let e = Preset::from_str(&text, "p.toml", &[]).unwrap_err();
    assert_eq!(e.line_column().map(|l| l.0), Some(9), "{e}");
    let text = format!("output = \"record:rec\"\n{room}[whiteboard]\nrecrod = true\n");
    let e = Preset::from_str(&text, "p.toml", &[]).unwrap_err();
    assert_eq!(e.line_column().map(|l| l.0), Some(9), "{e}");
    // A local preset has no room board.
    let e = Preset::load("test-to-file", &["whiteboard.record=true".into()]).unwrap_err();
    assert!(e.to_string().contains("[whiteboard]"), "{e}");
    // And a good one records `main` into DIR/room.mkv.
    let text = format!("output = \"record:rec\"\n{room}[whiteboard]\nrecord = true\n");
    let p = Preset::from_str(&text, "p.toml", &[]).unwrap();
    assert_eq!(p.whiteboard.unwrap().board, "main");
}
