//! Room presets through the real `streamwire` binary: a real signalling server on 127.0.0.1:0
//! in the test, `streamwire run publish-test` and `streamwire run subscribe-record` as two
//! processes, the recording decoded with a GStreamer pipeline.
//! Run: unshare -n sh -c 'ip link set lo up; cargo test --test run_room'

mod common;
mod proc_support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use gst::prelude::*;
use proc_support::{BIN, Proc, received_frames};
/// The room presets gather ICE candidates on every interface by default; the tests run in a
/// loopback-only namespace, so they choose loopback explicitly.
const LOOPBACK_ICE: &str = r#"room.ice_addresses=["127.0.0.1"]"#;

/// Decode a recording with `filesrc ! matroskademux ! vp8dec ! appsink`: (frames, width,
/// height, the last frame's timestamp).
fn decode_recording(path: &Path) -> (u64, i32, i32, gst::ClockTime) {
    streamwire::gst_init::init().unwrap();
    let pipeline = gst::parse::launch(&format!(
        "filesrc location=\"{}\" ! matroskademux ! vp8dec ! videoconvert ! \
         video/x-raw,format=I420 ! appsink name=sink sync=false",
        path.display()
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let sink = pipeline
        .by_name("sink")
        .unwrap()
        .downcast::<gst_app::AppSink>()
        .unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let mut frames = 0;
    let mut size = (0, 0);
    let mut last = gst::ClockTime::ZERO;
    while let Some(sample) = sink.try_pull_sample(gst::ClockTime::from_seconds(10)) {
        if let Some(pts) = sample.buffer().and_then(|b| b.pts()) {
            last = last.max(pts);
        }
        let caps = sample.caps().unwrap();
        let s = caps.structure(0).unwrap();
        size = (
            s.get::<i32>("width").unwrap(),
            s.get::<i32>("height").unwrap(),
        );
        frames += 1;
    }
    // The stream ended (EOS) rather than erroring.
    let bus = pipeline.bus().unwrap();
    let err = bus.pop_filtered(&[gst::MessageType::Error]);
    pipeline.set_state(gst::State::Null).unwrap();
    assert!(err.is_none(), "decoding {}: {err:?}", path.display());
    (frames, size.0, size.1, last)
}

/// Discoverer's view of a recording: (video streams, audio streams, duration).
fn discover(path: &Path) -> (usize, usize, Option<gst::ClockTime>) {
    streamwire::gst_init::init().unwrap();
    let discoverer = gst_pbutils::Discoverer::new(gst::ClockTime::from_seconds(10)).unwrap();
    let uri = gst::glib::filename_to_uri(path, None).unwrap();
    let info = discoverer.discover_uri(&uri).unwrap();
    (
        info.video_streams().len(),
        info.audio_streams().len(),
        info.duration(),
    )
}

/// `ffprobe -count_packets`: (codec name, packets) per stream.
fn ffprobe_packets(path: &Path) -> Vec<(String, u64)> {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-count_packets",
            "-show_entries",
            "stream=codec_name,nb_read_packets",
            "-of",
            "csv=p=0",
        ])
        .arg(path)
        .output()
        .expect("ffprobe runs (package ffmpeg, scripts/packages.sh)");
    assert!(out.status.success(), "ffprobe: {out:?}");
    let mut v: Vec<(String, u64)> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let (c, n) = l.split_once(',')?;
            Some((c.to_owned(), n.trim().parse().ok()?))
        })
        .collect();
    v.sort();
    v
}

/// The largest "up N kbit/s" of the status lines so far.
fn up_kbps(stderr: &str) -> f64 {
    stderr
        .lines()
        .filter_map(|l| {
            let (_, rest) = l.split_once("| up ")?;
            rest.split_whitespace().next()?.parse::<f64>().ok()
        })
        .fold(0.0, f64::max)
}

fn mkv_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "mkv"))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_test_is_recorded_by_subscribe_record() {
    let server = common::start(common::config()).await;
    let dir = tempfile::tempdir().unwrap();
    let server_set = format!("room.server={}", server.url);
    let pub_token = common::token("demo", "camera", &common::all());
    let rec_token = common::token("demo", "recorder", &common::all());

    // The recorder joins first and records into `rec/` (relative to its working directory).
    let rec_set = format!("room.token={rec_token}");
    let recorder = Proc::spawn(
        &[
            "run",
            "subscribe-record",
            "--set",
            &server_set,
            "--set",
            &rec_set,
            "--set",
            "output=record:rec",
            "--set",
            LOOPBACK_ICE,
        ],
        &[],
        dir.path(),
    );
    recorder
        .wait_for("joined room `demo`", Duration::from_secs(20))
        .await;

    // The publisher takes its token from the environment and stops after --for.
    let publisher = Proc::spawn(
        &[
            "run",
            "publish-test",
            "--set",
            &server_set,
            "--set",
            LOOPBACK_ICE,
            "--for",
            "10s",
        ],
        &[(streamwire::preset::TOKEN_ENV, &pub_token)],
        dir.path(),
    );
    recorder
        .wait_for("receiving video (VP8)", Duration::from_secs(20))
        .await;
    // Let the recording run (at least 90 frames by its status line), then stop the recorder
    // with Ctrl-C: it leaves cleanly.
    let started = Instant::now();
    while received_frames(&recorder.stderr()) < 90 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "recorder status lines:\n{}",
            recorder.stderr()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        recorder.stderr().contains("peers 1 |"),
        "{}",
        recorder.stderr()
    );
    // The publisher's test tone makes it the active speaker (RFC 6464 levels).
    recorder
        .wait_for("active speaker: ", Duration::from_secs(10))
        .await;
    // ... and until the publisher's status line shows what it sends to the recorder.
    while up_kbps(&publisher.stderr()) <= 50.0 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "publisher status never showed a sent bitrate:\n{}",
            publisher.stderr()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    recorder.interrupt();
    let (status, rec_err) = recorder.finish(Duration::from_secs(20)).await;
    assert!(status.success(), "recorder: {status:?}\n{rec_err}");
    assert!(rec_err.contains("leaving the room"), "{rec_err}");
    assert!(rec_err.contains("left room `demo`"), "{rec_err}");

    let (status, pub_err) = publisher.finish(Duration::from_secs(30)).await;
    assert!(status.success(), "publisher: {status:?}\n{pub_err}");
    assert!(pub_err.contains("joined room `demo`"), "{pub_err}");
    assert!(pub_err.contains("(recorder) joined"), "{pub_err}");
    assert!(pub_err.contains("(recorder) left"), "{pub_err}");
    // Status lines: one peer, frames going out.
    assert!(pub_err.contains("peers 1 |"), "{pub_err}");
    assert!(pub_err.contains("frames sent"), "{pub_err}");
    // The sent bitrate is measured (outbound-rtp byte deltas), not a placeholder.
    assert!(up_kbps(&pub_err) > 50.0, "{pub_err}");

    let rec_dir = dir.path().join("rec");
    let files = mkv_files(&rec_dir);
    assert_eq!(files.len(), 1, "one recording per publisher: {files:?}");
    assert!(
        rec_err.contains(&files[0].display().to_string())
            || rec_err.contains(&format!(
                "rec/{}",
                files[0].file_name().unwrap().to_string_lossy()
            )),
        "the recorder names the file it writes:\n{rec_err}"
    );
    let (frames, w, h, last) = decode_recording(&files[0]);
    assert_eq!((w, h), (640, 360), "publish-test sends 640x360");
    assert!(
        frames >= 60,
        "only {frames} frames decoded from the recording"
    );
    // Left cleanly: audio and video, and a duration that covers every frame (the last one
    // starts at most one frame before the end).
    let (video, audio, duration) = discover(&files[0]);
    assert_eq!((video, audio), (1, 1), "{}", files[0].display());
    let duration = duration.expect("a finished recording has a duration");
    assert!(
        duration >= last,
        "the last of {frames} frames is at {last}, the duration {duration}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_recorder_leaves_a_playable_file() {
    let server = common::start(common::config()).await;
    let dir = tempfile::tempdir().unwrap();
    let server_set = format!("room.server={}", server.url);
    let rec_set = format!(
        "room.token={}",
        common::token("demo", "recorder", &common::all())
    );
    let recorder = Proc::spawn(
        &[
            "run",
            "subscribe-record",
            "--set",
            &server_set,
            "--set",
            &rec_set,
            "--set",
            "output=record:rec",
            "--set",
            LOOPBACK_ICE,
        ],
        &[],
        dir.path(),
    );
    recorder
        .wait_for("joined room `demo`", Duration::from_secs(20))
        .await;
    let publisher = Proc::spawn(
        &[
            "run",
            "publish-test",
            "--set",
            &server_set,
            "--set",
            LOOPBACK_ICE,
            "--for",
            "20s",
        ],
        &[(
            streamwire::preset::TOKEN_ENV,
            &common::token("demo", "camera", &common::all()),
        )],
        dir.path(),
    );
    recorder
        .wait_for("recording ", Duration::from_secs(20))
        .await;
    let started = Instant::now();
    while received_frames(&recorder.stderr()) < 90 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "recorder status lines:\n{}",
            recorder.stderr()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    recorder.kill();
    let (status, rec_err) = recorder.finish(Duration::from_secs(10)).await;
    assert!(!status.success(), "killed: {status:?}\n{rec_err}");
    drop(publisher);

    let files = mkv_files(&dir.path().join("rec"));
    assert_eq!(files.len(), 1, "{files:?}");
    // Both streams are there and decode up to the kill.
    let (video, audio, _) = discover(&files[0]);
    assert_eq!((video, audio), (1, 1), "{}", files[0].display());
    let (frames, w, h, _) = decode_recording(&files[0]);
    assert_eq!((w, h), (640, 360));
    assert!(frames >= 60, "only {frames} frames decoded after the kill");
    let packets = ffprobe_packets(&files[0]);
    assert_eq!(
        packets.iter().map(|(c, _)| c.as_str()).collect::<Vec<_>>(),
        ["opus", "vp8"],
        "{packets:?}"
    );
    assert!(packets.iter().all(|(_, n)| *n >= 60), "{packets:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn room_presets_with_telemetry_give_a_report_naming_both_members() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("telemetry.db");
    let mut cfg = common::config();
    cfg.telemetry = Some(streamwire::server::TelemetryConfig::new(db.clone()));
    let server = common::start(cfg).await;
    let server_set = format!("room.server={}", server.url);
    let rec_set = format!(
        "room.token={}",
        common::token("demo", "recorder", &common::all())
    );
    let pub_token = common::token("demo", "camera", &common::all());
    let consent = "telemetry.consent=necessary";
    let interval = "telemetry.interval=500ms";
    let recorder = Proc::spawn(
        &[
            "run",
            "subscribe-record",
            "--set",
            &server_set,
            "--set",
            &rec_set,
            "--set",
            "output=record:rec",
            "--set",
            consent,
            "--set",
            interval,
            "--set",
            LOOPBACK_ICE,
        ],
        &[],
        dir.path(),
    );
    recorder
        .wait_for("joined room `demo`", Duration::from_secs(20))
        .await;
    let publisher = Proc::spawn(
        &[
            "run",
            "publish-test",
            "--set",
            &server_set,
            "--set",
            consent,
            "--set",
            interval,
            "--set",
            LOOPBACK_ICE,
            "--for",
            "6s",
        ],
        &[(streamwire::preset::TOKEN_ENV, &pub_token)],
        dir.path(),
    );
    let (status, pub_err) = publisher.finish(Duration::from_secs(40)).await;
    assert!(status.success(), "publisher: {status:?}\n{pub_err}");
    assert!(pub_err.contains("(recorder) joined"), "{pub_err}");
    recorder.interrupt();
    let (status, rec_err) = recorder.finish(Duration::from_secs(20)).await;
    assert!(status.success(), "recorder: {status:?}\n{rec_err}");

    let store = streamwire::telemetry::Store::open(&db, Duration::from_secs(86400)).unwrap();
    let series = store.room_series("demo", 0).unwrap();
    // Both members stored device fields and per-peer WebRTC statistics, necessary fields
    // only: the publisher its sent tracks, the recorder its received ones.
    for (name, dir) in [("camera", "send"), ("recorder", "recv")] {
        let mine: Vec<_> = series.iter().filter(|s| s.name == name).collect();
        assert!(
            mine.iter()
                .any(|s| s.source == "device" && s.field == "cpu-usage"),
            "{name}: no device cpu-usage in {series:?}"
        );
        assert!(
            mine.iter().any(|s| s.source == "peer"
                && s.track.contains(&format!("/video-{dir}-"))
                && s.field == "bitrate"
                && s.points.iter().any(|p| p.1 > 0.0)),
            "{name}: no video {dir} bitrate"
        );
    }
    let html = streamwire::report::generate(&store, "demo", 0, None).unwrap();
    assert!(html.contains("2 members: camera, recorder"), "{html}");
    assert!(
        html.contains("<tr><td>recorder</td><td>camera/video-recv-"),
        "{html}"
    );
    assert!(
        html.contains("<tr><td>camera</td><td>recorder/video-send-"),
        "{html}"
    );
}

#[test]
fn check_prints_what_a_room_preset_would_do() {
    let out = Command::new(BIN)
        .args(["check", "subscribe-record"])
        .env_remove(streamwire::preset::TOKEN_ENV)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("join room `demo` on ws://127.0.0.1:8443"),
        "{stdout}"
    );
    assert!(
        stdout.contains("environment variable STREAMWIRE_TOKEN"),
        "{stdout}"
    );
    assert!(stdout.contains("recordings/<peer>.mkv"), "{stdout}");
    assert!(!stdout.contains("# telemetry"), "{stdout}");
    let out = Command::new(BIN)
        .args([
            "check",
            "subscribe-record",
            "--set",
            "telemetry.consent=necessary",
        ])
        .env_remove(streamwire::preset::TOKEN_ENV)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("# telemetry: consent necessary, device sampled every 5s"),
        "{stdout}"
    );
    let out = Command::new(BIN)
        .args([
            "check",
            "publish-test",
            "--set",
            "room.token=secret-token-text",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("vp8 640x360@30"), "{stdout}");
    assert!(stdout.contains("token from room.token"), "{stdout}");
    assert!(!stdout.contains("secret-token-text"), "{stdout}");

    // [rotation] in a publishing room preset: metadata, or a located error for pixels.
    let dir = tempfile::tempdir().unwrap();
    let room = "[room]\nserver = \"ws://127.0.0.1:8443\"\nroom = \"demo\"\ntoken = \"t\"\n";
    let file = dir.path().join("rot.toml");
    std::fs::write(
        &file,
        format!("output = \"room\"\n[rotation]\nmode = \"follow-app\"\nrotation = 90\n{room}"),
    )
    .unwrap();
    let out = Command::new(BIN).arg("check").arg(&file).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("rotation: FollowApp { rotation: 90 }, sent as metadata"),
        "{stdout}"
    );
    std::fs::write(
        &file,
        format!("output = \"room\"\n[rotation]\nmode = \"off\"\noutput = \"pixels\"\n{room}"),
    )
    .unwrap();
    let out = Command::new(BIN).arg("check").arg(&file).output().unwrap();
    assert!(!out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("{}:4:10:", file.display())) && stderr.contains("rotation.output"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn room_preset_without_token_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let p = Proc::spawn(&["run", "publish-test", "--for", "1s"], &[], dir.path());
    let (status, err) = p.finish(Duration::from_secs(20)).await;
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(err.contains(streamwire::preset::TOKEN_ENV), "{err}");
    assert!(err.contains("room.token"), "{err}");

    // A token file that disappeared between check and run is named with its path.
    let token_file = dir.path().join("gone.token");
    let preset = dir.path().join("p.toml");
    std::fs::write(&token_file, "x").unwrap();
    std::fs::write(
        &preset,
        "output = \"room\"\n[room]\nserver = \"ws://127.0.0.1:9\"\nroom = \"demo\"\ntoken_file = \"gone.token\"\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["check", preset.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("gone.token"), "{stdout}");
    assert!(
        !stdout.contains("\nx"),
        "check never prints the token: {stdout}"
    );
    std::fs::remove_file(&token_file).unwrap();
    let out = Command::new(BIN)
        .args(["run", preset.to_str().unwrap(), "--for", "1s"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains(&token_file.display().to_string()), "{err}");
}

#[test]
fn subscribe_display_without_a_display_is_a_clear_error() {
    let out = Command::new(BIN)
        .args([
            "run",
            "subscribe-display",
            "--set",
            "room.token=t",
            "--for",
            "1s",
        ])
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("needs a graphical session"), "{err}");
    assert!(!err.contains("joined room"), "fails before joining: {err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_token_names_the_server_and_room() {
    let server = common::start(common::config()).await;
    let dir = tempfile::tempdir().unwrap();
    // A token for another room.
    let token = common::token("elsewhere", "camera", &common::all());
    let server_set = format!("room.server={}", server.url);
    let p = Proc::spawn(
        &["run", "publish-test", "--set", &server_set, "--for", "2s"],
        &[(streamwire::preset::TOKEN_ENV, &token)],
        dir.path(),
    );
    let (status, err) = p.finish(Duration::from_secs(20)).await;
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(err.contains("joining room `demo`"), "{err}");
    assert!(err.contains(&server.url), "{err}");
}
