//! Subscriber records a remote peer's audio and video, without re-encoding, into one Matroska
//! file that plays right: both streams, timestamps from zero, the frame rate, the duration
//! within one frame, audio and video in step (a white flash and a tone burst sent together
//! each second are recorded together, within 40 ms, also when the sender's encoder thread
//! stalls at each flash), and a second file when the peer rejoins.
//! Checked with GStreamer (discoverer, decoding) and `ffprobe`.
//! Run: unshare -n sh -c 'ip link set lo up; cargo test --test webrtc_record'

mod webrtc_support;

use parking_lot::Mutex;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use gst::prelude::*;
use gst_pbutils::prelude::*;
use streamwire::encoder::Codec;
use streamwire::webrtc::MediaKind;
use streamwire::webrtc::publisher::{AudioSource, PublisherConfig, VideoSource};
use streamwire::webrtc::subscriber::{SubscriberConfig, SubscriberEvent, VideoOutput};
use webrtc_support::{Endpoint, connect_pair, wait_for};

const FPS: i32 = 30;
/// A marker (white frame, 1 kHz burst) starts every second of running time and lasts this long.
const MARK: gst::ClockTime = gst::ClockTime::from_mseconds(50);
/// A marker counts when this much dark video or quiet audio comes before it (one cut by the
/// start of the recording does not).
const QUIET: gst::ClockTime = gst::ClockTime::from_mseconds(200);
/// From here on in a recording, the sender's first RTCP sender reports have arrived.
const SYNCED: gst::ClockTime = gst::ClockTime::from_seconds(4);
/// Video frames recorded per visit (8 s).
const FRAMES: u64 = 240;

/// How long a starved sender's encoder thread stalls at each flash
/// ([`records_in_step_when_the_video_is_sent_late`]).
const STALL: Duration = Duration::from_millis(150);

/// Black 320x240 test video whose frames are white during the first [`MARK`] of each second.
fn flashing_video() -> gst::Element {
    let bin = gst::parse::bin_from_description(
        &format!(
            "videotestsrc is-live=true pattern=black ! \
             video/x-raw,format=I420,width=320,height=240,framerate={FPS}/1 ! \
             identity name=flash"
        ),
        true,
    )
    .unwrap();
    let pad = bin.by_name("flash").unwrap().static_pad("src").unwrap();
    pad.add_probe(gst::PadProbeType::BUFFER, |_, info| {
        if let Some(gst::PadProbeData::Buffer(buf)) = &mut info.data {
            let pts = buf.pts().unwrap();
            if pts.nseconds() % 1_000_000_000 < MARK.nseconds() {
                let b = buf.make_mut();
                let mut map = b.map_writable().unwrap();
                // The Y plane (320x240) white; chroma stays neutral.
                map[..320 * 240].fill(235);
            }
        }
        gst::PadProbeReturn::Ok
    });
    bin.upcast()
}

/// Silent 48 kHz mono audio with a 1 kHz burst during the first [`MARK`] of each second.
fn beeping_audio() -> gst::Element {
    let bin = gst::parse::bin_from_description(
        "audiotestsrc is-live=true wave=silence samplesperbuffer=480 ! \
         audio/x-raw,format=S16LE,rate=48000,channels=1,layout=interleaved ! identity name=beep",
        true,
    )
    .unwrap();
    let pad = bin.by_name("beep").unwrap().static_pad("src").unwrap();
    pad.add_probe(gst::PadProbeType::BUFFER, |_, info| {
        if let Some(gst::PadProbeData::Buffer(buf)) = &mut info.data {
            let pts = buf.pts().unwrap().nseconds();
            let b = buf.make_mut();
            let mut map = b.map_writable().unwrap();
            for (i, s) in map.chunks_exact_mut(2).enumerate() {
                let t = pts + i as u64 * 1_000_000_000 / 48_000;
                let v = if t % 1_000_000_000 < MARK.nseconds() {
                    let phase = (t % 1_000_000) as f64 / 1e6 * std::f64::consts::TAU;
                    (phase.sin() * 16000.0) as i16
                } else {
                    0
                };
                s.copy_from_slice(&v.to_le_bytes());
            }
        }
        gst::PadProbeReturn::Ok
    });
    bin.upcast()
}

/// What decoding a recording finds.
#[derive(Debug, Default)]
struct Decoded {
    /// Video frames: (pts, duration, mean luma).
    frames: Vec<(gst::ClockTime, Option<gst::ClockTime>, f64)>,
    /// Audio: (pts of the first sample, samples at 48 kHz mono).
    audio: Vec<(gst::ClockTime, Vec<i16>)>,
}

impl Decoded {
    /// Starts of the white flashes (a white frame after 200 ms of dark ones).
    fn flashes(&self) -> Vec<gst::ClockTime> {
        let mut out = Vec::new();
        let mut dark_since: Option<gst::ClockTime> = None;
        for (pts, _, luma) in &self.frames {
            if *luma > 128.0 {
                if dark_since.is_some_and(|d| *pts >= d + QUIET) {
                    out.push(*pts);
                }
                dark_since = None;
            } else if dark_since.is_none() {
                dark_since = Some(*pts);
            }
        }
        out
    }

    /// Starts of the tone bursts (a loud sample after 200 ms of quiet ones).
    fn beeps(&self) -> Vec<gst::ClockTime> {
        let mut out = Vec::new();
        let mut quiet_since: Option<gst::ClockTime> = None;
        for (pts, samples) in &self.audio {
            for (i, s) in samples.iter().enumerate() {
                let t = *pts + gst::ClockTime::from_nseconds(i as u64 * 1_000_000_000 / 48_000);
                if s.unsigned_abs() > 4000 {
                    if quiet_since.is_some_and(|q| t >= q + QUIET) {
                        out.push(t);
                    }
                    quiet_since = None;
                } else if quiet_since.is_none() {
                    quiet_since = Some(t);
                }
            }
        }
        out
    }

    /// End of the last video frame and of the last audio sample.
    fn ends(&self) -> (gst::ClockTime, gst::ClockTime) {
        let frame = gst::ClockTime::from_nseconds(1_000_000_000 / FPS as u64);
        let v = self
            .frames
            .iter()
            .map(|(p, d, _)| *p + d.unwrap_or(frame))
            .max()
            .unwrap();
        let a = self
            .audio
            .iter()
            .map(|(p, s)| {
                *p + gst::ClockTime::from_nseconds(s.len() as u64 * 1_000_000_000 / 48_000)
            })
            .max()
            .unwrap();
        (v, a)
    }
}

/// Decode `path` (Matroska, VP8 or H.264 + Opus) with GStreamer.
fn decode(path: &Path, codec: Codec) -> Decoded {
    let dec = match codec {
        Codec::Vp8 => "vp8dec",
        Codec::H264 => "h264parse ! avdec_h264",
        other => unreachable!("not recorded from WebRTC: {other}"),
    };
    let pipeline = gst::parse::launch(&format!(
        "filesrc location=\"{}\" ! matroskademux name=d \
         d.video_0 ! queue ! {dec} ! videoconvert ! video/x-raw,format=GRAY8 ! \
         appsink name=v sync=false \
         d.audio_0 ! queue ! opusdec ! audioconvert ! audioresample ! \
         audio/x-raw,format=S16LE,rate=48000,channels=1 ! appsink name=a sync=false",
        path.display()
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let out = Arc::new(Mutex::new(Decoded::default()));
    let appsink = |name: &str| {
        pipeline
            .by_name(name)
            .unwrap()
            .downcast::<gst_app::AppSink>()
            .unwrap()
    };
    let o = out.clone();
    appsink("v").set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |s| {
                let sample = s.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                let buf = sample.buffer().unwrap();
                let map = buf.map_readable().unwrap();
                let luma = map.iter().map(|&y| f64::from(y)).sum::<f64>() / map.len() as f64;
                o.lock()
                    .frames
                    .push((buf.pts().unwrap(), buf.duration(), luma));
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
    let o = out.clone();
    appsink("a").set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |s| {
                let sample = s.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                let buf = sample.buffer().unwrap();
                let map = buf.map_readable().unwrap();
                let samples = map
                    .chunks_exact(2)
                    .map(|c| i16::from_le_bytes([c[0], c[1]]))
                    .collect();
                o.lock().audio.push((buf.pts().unwrap(), samples));
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
    pipeline.set_state(gst::State::Playing).unwrap();
    let bus = pipeline.bus().unwrap();
    let msg = bus
        .timed_pop_filtered(
            gst::ClockTime::from_seconds(30),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        )
        .expect("decoding the recording ends");
    assert_eq!(msg.type_(), gst::MessageType::Eos, "decoding: {msg:?}");
    pipeline.set_state(gst::State::Null).unwrap();
    std::mem::take(&mut *out.lock())
}

/// `ffprobe`'s view: (format duration, [(codec_name, r_frame_rate)]).
fn ffprobe(path: &Path) -> (Option<f64>, Vec<(String, String)>) {
    let out = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "format=duration:stream=codec_name,r_frame_rate",
            "-of",
            "compact",
        ])
        .arg(path)
        .output()
        .expect("ffprobe runs (package ffmpeg, scripts/packages.sh)");
    assert!(out.status.success(), "ffprobe: {out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |line: &str, key: &str| {
        line.split('|')
            .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
            .map(str::to_owned)
    };
    let mut duration = None;
    let mut streams = Vec::new();
    for line in text.lines() {
        if line.starts_with("stream|") {
            streams.push((
                field(line, "codec_name").unwrap_or_default(),
                field(line, "r_frame_rate").unwrap_or_default(),
            ));
        } else if line.starts_with("format|") {
            duration = field(line, "duration").and_then(|d| d.parse().ok());
        }
    }
    (duration, streams)
}

/// Where the content ends: the latest packet end (pts + duration) in the file, by `ffprobe`.
fn content_end(path: &Path) -> f64 {
    let out = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "packet=pts_time,duration_time",
            "-of",
            "csv=p=0",
        ])
        .arg(path)
        .output()
        .expect("ffprobe runs");
    assert!(out.status.success(), "ffprobe: {out:?}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let (pts, dur) = l.split_once(',')?;
            Some(pts.parse::<f64>().ok()? + dur.trim_end_matches(',').parse::<f64>().ok()?)
        })
        .fold(0.0, f64::max)
}

/// Discoverer's view: (duration, video caps, audio caps).
fn discover(path: &Path) -> (Option<gst::ClockTime>, gst::Caps, gst::Caps) {
    let discoverer = gst_pbutils::Discoverer::new(gst::ClockTime::from_seconds(10)).unwrap();
    let uri = gst::glib::filename_to_uri(path, None).unwrap();
    let info = discoverer.discover_uri(&uri).unwrap();
    let video = info.video_streams();
    let audio = info.audio_streams();
    assert_eq!(
        (video.len(), audio.len()),
        (1, 1),
        "one video and one audio stream"
    );
    (
        info.duration(),
        video[0].caps().unwrap(),
        audio[0].caps().unwrap(),
    )
}

/// Check a finished recording of [`flashing_video`] + [`beeping_audio`].
fn check_recording(path: &Path, codec: Codec) {
    let (duration, vcaps, acaps) = discover(path);
    let vs = vcaps.structure(0).unwrap();
    let want = match codec {
        Codec::Vp8 => "video/x-vp8",
        _ => "video/x-h264",
    };
    assert_eq!(vs.name(), want, "{vcaps}");
    assert_eq!(
        (
            vs.get::<i32>("width").unwrap(),
            vs.get::<i32>("height").unwrap()
        ),
        (320, 240)
    );
    assert_eq!(
        vs.get::<gst::Fraction>("framerate").unwrap(),
        gst::Fraction::new(FPS, 1),
        "{vcaps}"
    );
    assert_eq!(
        acaps.structure(0).unwrap().name(),
        "audio/x-opus",
        "{acaps}"
    );

    let d = decode(path, codec);
    assert!(d.frames.len() >= 90, "{} frames decoded", d.frames.len());
    // Timestamps from zero: the earlier track starts at 0.
    let first_v = d.frames.iter().map(|f| f.0).min().unwrap();
    let first_a = d.audio.iter().map(|a| a.0).min().unwrap();
    assert!(
        first_v.min(first_a) < gst::ClockTime::from_mseconds(10),
        "first video {first_v}, first audio {first_a}"
    );
    // The duration is where the content ends (the last packet's end), within one frame.
    let real = content_end(path);
    let frame_s = 1.0 / f64::from(FPS);
    let duration = duration.expect("the recording has a duration");
    assert!(
        (duration.nseconds() as f64 / 1e9 - real).abs() <= frame_s,
        "duration {duration}, content ends at {real}"
    );
    // ... which is where decoding ends, within one frame.
    let (end_v, end_a) = d.ends();
    let decoded = end_v.max(end_a).nseconds() as f64 / 1e9;
    assert!(
        (decoded - real).abs() <= frame_s,
        "decoded to {decoded}, content ends at {real}"
    );
    // Audio and video in step once the sender's RTCP reports have arrived (GStreamer sends
    // the first within about a second of its start): pair every flash from SYNCED on,
    // except one whose burst the end of the recording may have cut.
    let flashes = d.flashes();
    let beeps = d.beeps();
    let cut = end_v.min(end_a).saturating_sub(MARK);
    let paired: Vec<_> = flashes
        .iter()
        .filter(|f| **f >= SYNCED && **f < cut)
        .collect();
    assert!(paired.len() >= 2, "flashes at {flashes:?}");
    for f in paired {
        let nearest = beeps
            .iter()
            .min_by_key(|b| b.nseconds().abs_diff(f.nseconds()))
            .unwrap_or_else(|| panic!("no tone burst; flashes {flashes:?}"));
        let off = f.nseconds().abs_diff(nearest.nseconds());
        assert!(
            off < 40_000_000,
            "flash at {f}, burst at {nearest}: {} ms apart (flashes {flashes:?}, bursts {beeps:?})",
            off / 1_000_000
        );
    }

    let (ff_duration, streams) = ffprobe(path);
    let codec_name = match codec {
        Codec::Vp8 => "vp8",
        _ => "h264",
    };
    let mut streams = streams;
    streams.sort_by_key(|(c, _)| c != codec_name);
    assert_eq!(
        streams,
        vec![
            (codec_name.to_owned(), format!("{FPS}/1")),
            ("opus".to_owned(), "0/0".to_owned())
        ],
        "ffprobe streams"
    );
    let ff = ff_duration.expect("ffprobe reads a duration");
    assert!(
        (ff - real).abs() <= frame_s,
        "ffprobe duration {ff}, content ends at {real}"
    );
}

fn publisher(codec: Codec) -> PublisherConfig {
    streamwire::gst_init::init().unwrap();
    PublisherConfig {
        video: VideoSource::Element(flashing_video()),
        audio: AudioSource::Element(beeping_audio()),
        codec,
        width: 320,
        height: 240,
        fps: FPS,
        ..PublisherConfig::default()
    }
}

fn recorder(dir: &Path) -> Endpoint {
    Endpoint::new(
        "recorder",
        None,
        SubscriberConfig {
            video: VideoOutput::Record(dir.to_owned()),
            ..SubscriberConfig::default()
        },
    )
}

/// Hold the first encoded frame of each second (the flash) `stall` long in the encoder's
/// thread, as on a sender starved of CPU: it leaves with its capture timestamp, late.
fn stall_encoded_flashes(pipeline: &gst::Pipeline, stall: Duration) {
    let encoder = pipeline
        .iterate_recurse()
        .into_iter()
        .flatten()
        .find(|e| e.factory().is_some_and(|f| f.name() == "vp8enc"))
        .expect("the publisher encodes with vp8enc");
    let frame = 1_000_000_000 / FPS as u64;
    encoder
        .static_pad("src")
        .unwrap()
        .add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            if let Some(gst::PadProbeData::Buffer(buf)) = &info.data
                && buf.pts().unwrap().nseconds() % 1_000_000_000 < frame
            {
                std::thread::sleep(stall);
            }
            gst::PadProbeReturn::Ok
        });
}

/// Record `camera` until `frames` video frames are in, then let it leave.
async fn record_a_visit(camera: &Endpoint, rec: &Endpoint, frames: u64) {
    let before = rec.subscriber.counters("camera", MediaKind::Video).decoded;
    let (pc, pr, _e1, _e2) =
        connect_pair(camera, rec, &[MediaKind::Audio, MediaKind::Video], |_| {});
    wait_for("recorded frames", Duration::from_secs(30), || {
        rec.subscriber.counters("camera", MediaKind::Video).decoded >= before + frames
    })
    .await;
    // Leave as a session does: stop the recorder's peer, then detach the subscriber.
    pr.close().unwrap();
    rec.subscriber.detach("camera");
    if let Some(p) = &camera.publisher {
        p.cut_off("recorder");
        pc.close().unwrap();
        p.detach("recorder");
    }
}

async fn record(codec: Codec, stall: Option<Duration>) {
    let dir = tempfile::tempdir().unwrap();
    let camera = Endpoint::new(
        "camera",
        Some(publisher(codec)),
        SubscriberConfig::default(),
    );
    if let Some(stall) = stall {
        stall_encoded_flashes(&camera.pipeline, stall);
    }
    let mut rec = recorder(dir.path());
    record_a_visit(&camera, &rec, FRAMES).await;
    let mut started = Vec::new();
    while let Ok(ev) = rec.sub_events.try_recv() {
        if let SubscriberEvent::Recording { peer, path } = ev {
            started.push((peer, path));
        }
    }
    let path = dir.path().join("camera.mkv");
    assert_eq!(started, vec![("camera".to_owned(), path.clone())]);
    check_recording(&path, codec);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_vp8_and_opus_in_step() {
    record(Codec::Vp8, None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_h264_and_opus_in_step() {
    record(Codec::H264, None).await;
}

/// A sender starved of CPU: its video thread stalls for [`STALL`] at each flash, so the flash
/// is sent that much later than the tone burst captured with it. The recording keeps them in
/// step: its timestamps are the sender's (RTP time through the RTCP sender reports), not the
/// packets' arrival.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_in_step_when_the_video_is_sent_late() {
    record(Codec::Vp8, Some(STALL)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_rejoins_gets_a_second_file() {
    let dir = tempfile::tempdir().unwrap();
    let camera = Endpoint::new(
        "camera",
        Some(publisher(Codec::Vp8)),
        SubscriberConfig::default(),
    );
    let rec = recorder(dir.path());
    record_a_visit(&camera, &rec, FRAMES).await;
    let first = dir.path().join("camera.mkv");
    let size = std::fs::metadata(&first).unwrap().len();
    record_a_visit(&camera, &rec, FRAMES).await;
    assert_eq!(
        std::fs::metadata(&first).unwrap().len(),
        size,
        "the first visit's file is left alone"
    );
    check_recording(&first, Codec::Vp8);
    check_recording(&dir.path().join("camera-2.mkv"), Codec::Vp8);
}
