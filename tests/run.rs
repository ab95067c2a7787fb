//! Real pipeline runs through the `streamwire` binary, checked with GStreamer's Discoverer.

use std::path::Path;

use gst_pbutils::prelude::*;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use streamwire::pipeline::Plan;
use streamwire::preset::Preset;

const BIN: &str = env!("CARGO_BIN_EXE_streamwire");

fn streamwire(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("streamwire runs")
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

struct Discovered {
    duration: Duration,
    video: Vec<(String, i32, i32)>,
    audio: Vec<(String, u32)>,
}

fn discover(path: &Path) -> Discovered {
    streamwire::gst_init::init().unwrap();
    let uri = gst::glib::filename_to_uri(path, None).unwrap();
    let d = gst_pbutils::Discoverer::new(gst::ClockTime::from_seconds(10)).unwrap();
    let info = d.discover_uri(&uri).unwrap();
    let video = info
        .video_streams()
        .iter()
        .map(|v| {
            let caps = v.caps().unwrap();
            let name = caps.structure(0).unwrap().name().to_string();
            (name, v.width() as i32, v.height() as i32)
        })
        .collect();
    let audio = info
        .audio_streams()
        .iter()
        .map(|a| {
            let caps = a.caps().unwrap();
            (caps.structure(0).unwrap().name().to_string(), a.channels())
        })
        .collect();
    Discovered {
        duration: info.duration().map(Duration::from).unwrap_or_default(),
        video,
        audio,
    }
}

fn assert_playable(path: &Path, video_caps: &str, min: Duration, max: Duration) {
    let d = discover(path);
    assert!(
        d.duration >= min && d.duration <= max,
        "{}: duration {:?} not in {min:?}..{max:?}",
        path.display(),
        d.duration
    );
    assert_eq!(
        d.video,
        vec![(video_caps.to_owned(), 1280, 720)],
        "{}",
        path.display()
    );
    assert_eq!(
        d.audio,
        vec![("audio/x-opus".to_owned(), 2)],
        "{}",
        path.display()
    );
}

#[test]
fn test_to_file_webm_is_playable() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("t.webm");
    let o = streamwire(&[
        "run",
        "test-to-file",
        "--for",
        "2s",
        "--set",
        &format!("output=file:{}", out.display()),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("video encoder: vp8enc"), "{err}");
    assert!(err.contains(" fps "), "status line missing: {err}");
    assert!(err.contains("wrote "), "{err}");
    assert_playable(
        &out,
        "video/x-vp8",
        Duration::from_millis(1500),
        Duration::from_millis(3500),
    );
}

#[test]
fn test_to_file_mp4_h264_is_playable() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("t.mp4");
    let o = streamwire(&[
        "run",
        "test-to-file",
        "--for",
        "2s",
        "--set",
        "video.codec=h264",
        "--set",
        &format!("output=file:{}", out.display()),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert_playable(
        &out,
        "video/x-h264",
        Duration::from_millis(1500),
        Duration::from_millis(3500),
    );
}

#[test]
fn preset_duration_stops_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("d.mkv");
    let preset = dir.path().join("short.toml");
    std::fs::write(
        &preset,
        format!(
            "description = \"short\"\nduration = \"1s\"\noutput = \"file:{}\"\n[input]\nvideo = \"test\"\naudio = \"test\"\n[video]\ncodec = \"vp9\"\n",
            out.display()
        ),
    )
    .unwrap();
    let o = streamwire(&["run", "-q", preset.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    assert_playable(
        &out,
        "video/x-vp9",
        Duration::from_millis(700),
        Duration::from_millis(2500),
    );
}

#[test]
fn file_source_transcodes_to_mkv() {
    let dir = tempfile::tempdir().unwrap();
    let first = dir.path().join("in.webm");
    let o = streamwire(&[
        "run",
        "-q",
        "test-to-file",
        "--for",
        "2s",
        "--set",
        &format!("output=file:{}", first.display()),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let second = dir.path().join("out.mkv");
    let file = format!("file:{}", first.display());
    let o = streamwire(&[
        "run",
        "-q",
        "test-to-file",
        "--set",
        &format!("input.video={file}"),
        "--set",
        &format!("input.audio={file}"),
        "--set",
        "video.codec=h264",
        "--set",
        &format!("output=file:{}", second.display()),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert_playable(
        &second,
        "video/x-h264",
        Duration::from_millis(1500),
        Duration::from_millis(3500),
    );
}

#[test]
fn ctrl_c_stops_with_clean_eos() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("c.webm");
    let mut child = Command::new(BIN)
        .args(["run", "-q", "test-to-file", "--set", "duration=\"60s\""])
        .arg("--set")
        .arg(format!("output=file:{}", out.display()))
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(2));
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("streamwire did not stop after SIGINT");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "{status:?}");
    assert_playable(
        &out,
        "video/x-vp8",
        Duration::from_millis(1000),
        Duration::from_secs(5),
    );
}

#[test]
fn library_run_reports_status_and_frames() {
    streamwire::gst_init::init().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let preset = Preset::load(
        "test-to-file",
        &[
            "output=fakesink".into(),
            "video.framerate=15".into(),
            "video.width=320".into(),
            "video.height=240".into(),
        ],
    )
    .unwrap();
    let plan = Plan::new(&preset).unwrap();
    assert!(
        plan.description.contains("fakesink name=vsink"),
        "{}",
        plan.description
    );
    let running = plan.start().unwrap();
    assert!(running.encoder().is_some());
    let mut statuses = Vec::new();
    let summary = running
        .run(Some(Duration::from_millis(2500)), |s| statuses.push(*s))
        .unwrap();
    // Samples arrive about once per second with monotonic counters (rates are not asserted:
    // speed belongs in benchmarks, and this machine is shared).
    assert!(statuses.len() >= 2, "{statuses:?}");
    for w in statuses.windows(2) {
        assert!(
            w[1].elapsed > w[0].elapsed && w[1].frames >= w[0].frames,
            "{statuses:?}"
        );
    }
    assert!(
        statuses.iter().any(|s| s.fps > 0.0 && s.bitrate_kbps > 0.0),
        "{statuses:?}"
    );
    // A live 15 fps source for ~2.5 s cannot produce more than ~40 frames.
    assert!(summary.frames > 0 && summary.frames <= 45, "{summary:?}");
    assert!(summary.bytes > 0);
    drop(dir);
}

#[test]
fn check_prints_the_pipeline() {
    let o = streamwire(&["check", "test-to-file"]);
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("# video encoder: vp8enc (libvpx, software)"),
        "{out}"
    );
    let desc = out.lines().last().unwrap();
    for part in [
        "webmmux name=mux ! filesink location=streamwire-test.webm",
        "videotestsrc is-live=true",
        "video/x-raw,width=1280,height=720,framerate=30/1",
        "vp8enc name=venc deadline=1 end-usage=cbr lag-in-frames=0",
        "target-bitrate=2000000 keyframe-max-dist=60",
        "opusenc name=aenc bitrate=64000",
    ] {
        assert!(desc.contains(part), "missing `{part}` in {desc}");
    }
    // The printed description is valid GStreamer syntax.
    streamwire::gst_init::init().unwrap();
    gst::parse::launch(desc).unwrap();

    let o = streamwire(&[
        "check",
        "test-to-file",
        "--set",
        "video.codec=h264",
        "--set",
        "output=file:a b.mp4",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("mp4mux name=mux ! filesink location=\"a b.mp4\""),
        "{out}"
    );
    assert!(
        out.contains("x264enc name=venc") && out.contains("! h264parse !"),
        "{out}"
    );
}

#[test]
fn presets_lists_bundled_with_descriptions() {
    let o = streamwire(&["presets"]);
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    for name in [
        "test-to-file",
        "camera-preview",
        "camera-record",
        "screen-record",
        "rotation-demo",
    ] {
        let line = out
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{out}"));
        assert!(line.len() > name.len() + 10, "{line}");
    }
}

#[test]
fn bad_preset_exits_2_with_position() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.toml");
    std::fs::write(&p, "output = \"fakesink\"\n[video]\nframrate = 30\n").unwrap();
    for cmd in ["check", "run"] {
        let o = streamwire(&[cmd, p.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains(&format!(
                "{}:3:1: unknown key `video.framrate`, did you mean `video.framerate`?",
                p.display()
            )),
            "{err}"
        );
        assert!(!err.contains("panicked"), "{err}");
    }
    let o = streamwire(&["run", "no-such-preset"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let o = streamwire(&["check", "test-to-file", "--set", "video.codec=h265"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("did you mean `h264`"),
        "{}",
        text(&o)
    );
    // Usage errors (clap) are 2 as well.
    let o = streamwire(&["run", "test-to-file", "--for", "soon"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}

#[test]
fn probe_json_reports_encoders_per_codec() {
    let o = streamwire(&["probe", "--json"]);
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v["gstreamer"].as_str().unwrap().starts_with("GStreamer 1."));
    assert!(v["cameras"].is_array() && v["microphones"].is_array());
    let encoders = v["encoders"].as_array().unwrap();
    let codecs: Vec<&str> = encoders
        .iter()
        .map(|e| e["codec"].as_str().unwrap())
        .collect();
    assert_eq!(codecs, ["h264", "vp8", "vp9", "av1"]);
    let vp8 = &encoders[1];
    assert!(vp8["chosen"].is_string());
    if vp8["hardware"] == false {
        assert_eq!(vp8["chosen"], "vp8enc");
        // Every hardware candidate was skipped, each with a reason.
        let skipped = vp8["skipped"].as_array().unwrap();
        assert!(
            skipped
                .iter()
                .all(|s| s["hardware"] == true && s["reason"].is_string()),
            "{skipped:?}"
        );
        assert!(
            skipped.iter().any(|s| s["factory"] == "vaapivp8enc"),
            "{skipped:?}"
        );
    }
}

#[test]
fn bench_encode_json_shape() {
    // Shape only: speed belongs in docs/benchmarks.md, measured with a release build.
    let o = streamwire(&[
        "bench", "encode", "--json", "--frames", "20", "--runs", "1", "--codec", "vp8", "--codec",
        "h264",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["benchmark"], "encode");
    assert_eq!(v["params"]["width"], 1280);
    let results = v["results"].as_array().unwrap();
    let codecs: Vec<&str> = results
        .iter()
        .map(|r| r["codec"].as_str().unwrap())
        .collect();
    assert_eq!(codecs, ["vp8", "h264"]);
    for r in results {
        // x264enc shifts timestamps by 1000 hours; matching must still pair every frame.
        assert_eq!(
            r["runs"][0]["frames"], 20,
            "every input frame matched an output PTS: {r}"
        );
        let median = r["latency_ms_median"].as_f64().unwrap();
        assert!(median > 0.0, "{r}");
        assert!(r["latency_ms_p95"].as_f64().unwrap() >= median, "{r}");
        assert!(r["fps_median"].as_f64().unwrap() > 0.0, "{r}");
    }
}

#[test]
fn display_output_without_a_display_is_a_clear_error() {
    let o = Command::new(BIN)
        .args([
            "run",
            "test-to-file",
            "--set",
            "output=display",
            "--for",
            "1s",
        ])
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("needs a graphical session"), "{err}");
}

#[test]
fn plan_uses_the_selected_hardware_encoder_and_checks_inputs() {
    use streamwire::encoder::{Codec, FactoryList};
    use streamwire::pipeline::PipelineError;
    streamwire::gst_init::init().unwrap();
    let preset = Preset::load(
        "camera-record",
        &["input.video=test".into(), "input.audio=test".into()],
    )
    .unwrap();
    let machine = FactoryList::new([("x264enc", Codec::H264), ("nvh264enc", Codec::H264)]);
    let plan = Plan::with_registry(&preset, &machine).unwrap();
    assert_eq!(plan.video_encoder.as_ref().unwrap().factory, "nvh264enc");
    assert!(
        plan.description
            .contains("nvh264enc name=venc bframes=0 rc-mode=cbr zerolatency=true"),
        "{}",
        plan.description
    );
    assert!(
        plan.description
            .contains("bitrate=4000 gop-size=60 ! h264parse"),
        "{}",
        plan.description
    );

    let preset = Preset::load(
        "test-to-file",
        &["input.video=file:/nonexistent/in.webm".into()],
    )
    .unwrap();
    match Plan::new(&preset) {
        Err(PipelineError::MissingInput(p)) => assert_eq!(p, Path::new("/nonexistent/in.webm")),
        other => panic!("{other:?}"),
    }
}

#[test]
fn hardware_require_reports_what_was_searched() {
    let o = streamwire(&["check", "test-to-file", "--set", "video.hardware=require"]);
    if o.status.success() {
        // This machine has a working hardware VP8 encoder.
        assert!(
            String::from_utf8_lossy(&o.stdout).contains(", hardware)"),
            "{}",
            text(&o)
        );
    } else {
        assert_eq!(o.status.code(), Some(1), "{}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("no usable hardware vp8 encoder"), "{err}");
        assert!(err.contains("vaapivp8enc ("), "{err}");
        assert!(
            err.contains("vp8enc (software, hardware = \"require\")"),
            "{err}"
        );
    }
}

#[test]
fn unknown_camera_name_lists_devices() {
    let o = streamwire(&[
        "check",
        "camera-preview",
        "--set",
        "input.video_device=\"NoSuchCamera-xyz\"",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("no camera matches name \"NoSuchCamera-xyz\" (devices found: "),
        "{err}"
    );
}

// ---- [rotation] and [telemetry] presets ----

#[test]
fn rotation_demo_pixels_mode_writes_rotated_frames() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.webm");
    // The shipped trace starts with the device held sideways (rotate 90); hold_ms = 0 adopts
    // that from the first frame, so the whole 2 s file is 240x320 instead of 320x240.
    let o = streamwire(&[
        "-v",
        "run",
        "rotation-demo",
        "--for",
        "2s",
        "--set",
        "rotation.hold_ms=0",
        // Small frames: the pixel rotation of a debug build is slow on a shared machine.
        "--set",
        "video.width=320",
        "--set",
        "video.height=240",
        "--set",
        &format!("output=file:{}", out.display()),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let d = discover(&out);
    assert_eq!(d.video, vec![("video/x-vp8".to_owned(), 240, 320)]);
    // The source is live and pixel rotation in a debug build is slow: on a loaded 2-core machine
    // late frames are dropped, so only a loose bound on the recorded span is meaningful here.
    assert!(
        d.duration >= Duration::from_millis(1000) && d.duration <= Duration::from_millis(3500),
        "{:?}",
        d.duration
    );
    // The bundled preset also posts telemetry every second; -v logs it with the element's
    // field names, including the encoded stream's resolution.
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("telemetry: consent=\"necessary\"")
            && err.contains("stream-resolution=\"240x320\""),
        "{err}"
    );
}

#[test]
fn check_shows_rotation_and_telemetry_elements() {
    let o = streamwire(&["check", "rotation-demo"]);
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    let desc = out.lines().last().unwrap();
    for part in [
        "framerate=30/1,colorimetry=bt709,chroma-site=mpeg2 ! sensorrotation name=rotation mode=follow-sensor replay-file=",
        "pipelines/data/rotation-demo.txt output=pixels hold-time=300 ! identity name=vraw",
        "vp8enc name=venc",
        "! devicetelemetry name=telemetry consent=necessary interval=1000 ! queue ! mux.",
    ] {
        assert!(desc.contains(part), "missing `{part}` in {desc}");
    }
    assert!(!desc.contains("videoflip"), "{desc}");
    streamwire::gst_init::init().unwrap();
    gst::parse::launch(desc).unwrap();

    // Metadata mode to a file: videoflip makes the recorded pictures upright.
    let o = streamwire(&[
        "check",
        "rotation-demo",
        "--set",
        "rotation.output=metadata",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("hold-time=300 ! videoflip video-direction=auto ! identity name=vraw"),
        "{out}"
    );
    // Metadata mode to fakesink (not a local picture): no videoflip.
    let o = streamwire(&[
        "check",
        "rotation-demo",
        "--set",
        "rotation.output=metadata",
        "--set",
        "output=fakesink",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(!out.contains("videoflip"), "{out}");
    assert!(out.contains("sensorrotation name=rotation"), "{out}");

    // Display output: nothing is encoded, so telemetry sits in the raw branch, and metadata
    // mode gets videoflip for upright pictures on screen.
    let o = streamwire(&[
        "check",
        "rotation-demo",
        "--set",
        "rotation.output=metadata",
        "--set",
        "output=display",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains(
            "hold-time=300 ! videoflip video-direction=auto ! devicetelemetry name=telemetry consent=necessary interval=1000 ! identity name=vraw ! autovideosink"
        ),
        "{out}"
    );

    // A bad section is reported with its position, exit status 2.
    let o = streamwire(&[
        "check",
        "rotation-demo",
        "--set",
        "rotation.mode=follow-meta",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("follow-meta is for receivers"),
        "{}",
        text(&o)
    );
}

#[test]
fn follow_app_rotation_runs_through_the_library() {
    streamwire::gst_init::init().unwrap();
    let preset = Preset::load(
        "rotation-demo",
        &[
            "output=fakesink".into(),
            "video.width=320".into(),
            "video.height=240".into(),
            "rotation.sensor=".into(),
        ],
    );
    // An empty sensor is a located error, not a panic.
    assert!(
        preset
            .unwrap_err()
            .to_string()
            .contains("--set rotation.sensor=")
    );

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("app.toml");
    std::fs::write(
        &file,
        "output = \"fakesink\"\n[video]\nwidth = 320\nheight = 240\n[rotation]\nmode = \"follow-app\"\nrotation = 270\noutput = \"pixels\"\n",
    )
    .unwrap();
    let preset = Preset::load(&file.to_string_lossy(), &[]).unwrap();
    let plan = Plan::new(&preset).unwrap();
    assert!(
        plan.description
            .contains("sensorrotation name=rotation mode=follow-app rotation=270 output=pixels"),
        "{}",
        plan.description
    );
    let running = plan.start().unwrap();
    let rot = running
        .pipeline()
        .by_name(streamwire::pipeline::names::ROTATION)
        .unwrap();
    // The caps the rotation element sends downstream to the encoder, read while playing (a
    // probe added now could miss the caps event: the pipeline is already negotiating).
    let src = rot.static_pad("src").unwrap();
    let mut seen = Vec::new();
    // The element's read-only `orientation` while playing (it resets when stopped).
    let mut orientations = Vec::new();
    let summary = running
        .run(Some(Duration::from_millis(2500)), |_| {
            orientations.push(rot.property::<u32>("orientation"));
            if let Some(st) = src
                .current_caps()
                .and_then(|c| c.structure(0).map(|s| s.to_owned()))
            {
                seen.push((
                    st.get::<i32>("width").unwrap(),
                    st.get::<i32>("height").unwrap(),
                ));
            }
        })
        .unwrap();
    assert!(summary.frames > 0, "{summary:?}");
    assert!(
        !orientations.is_empty() && orientations.iter().all(|o| *o == 270),
        "{orientations:?}"
    );
    assert_eq!(seen.last(), Some(&(240, 320)), "{seen:?}");
}

#[test]
fn telemetry_consent_gates_bus_reports() {
    streamwire::gst_init::init().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("telemetry.toml");
    std::fs::write(
        &file,
        "output = \"fakesink\"\n[video]\nwidth = 320\nheight = 240\n[telemetry]\n",
    )
    .unwrap();
    let run = |consent: &str| {
        let preset = Preset::load(
            &file.to_string_lossy(),
            &[
                format!("telemetry.consent={consent}"),
                "telemetry.interval=300ms".into(),
            ],
        )
        .unwrap();
        let plan = Plan::new(&preset).unwrap();
        assert!(
            plan.description.contains(&format!(
                "devicetelemetry name=telemetry consent={consent} interval=300"
            )),
            "{}",
            plan.description
        );
        plan.start()
            .unwrap()
            .run(Some(Duration::from_millis(2000)), |_| {})
            .unwrap()
    };
    let s = run("necessary");
    assert!(s.telemetry_reports >= 2, "{s:?}");
    // ~2 s at one report per 300 ms cannot exceed about 7.
    assert!(s.telemetry_reports <= 8, "{s:?}");
    let s = run("none");
    assert_eq!(s.telemetry_reports, 0, "{s:?}");
}

#[test]
fn iio_sensor_preset_follows_a_sysfs_style_accelerometer() {
    streamwire::gst_init::init().unwrap();
    // A directory laid out like /sys/bus/iio/devices/iio:deviceN: the device lies on its left
    // side (gravity along -x), which is a 90-degree rotation.
    let dir = tempfile::tempdir().unwrap();
    for (f, v) in [
        ("in_accel_x_raw", "-980"),
        ("in_accel_y_raw", "3"),
        ("in_accel_z_raw", "-2"),
        ("in_accel_scale", "0.01"),
    ] {
        std::fs::write(dir.path().join(f), format!("{v}\n")).unwrap();
    }
    let text = format!(
        "output = \"fakesink\"\n[video]\nwidth = 320\nheight = 240\n[rotation]\nsensor = \"iio:{}\"\nhold_ms = 0\n",
        dir.path().display()
    );
    let preset = Preset::from_str(&text, "iio.toml", &[]).unwrap();
    let plan = Plan::new(&preset).unwrap();
    assert!(
        plan.description.contains("iio-device="),
        "{}",
        plan.description
    );
    let running = plan.start().unwrap();
    let rot = running
        .pipeline()
        .by_name(streamwire::pipeline::names::ROTATION)
        .unwrap();
    let mut orientations = Vec::new();
    running
        .run(Some(Duration::from_millis(2500)), |_| {
            orientations.push(rot.property::<u32>("orientation"))
        })
        .unwrap();
    assert!(orientations.contains(&90), "{orientations:?}");

    // A directory without accelerometer channels is refused when planning, naming it.
    let empty = tempfile::tempdir().unwrap();
    let text = format!(
        "output = \"fakesink\"\n[rotation]\nsensor = \"iio:{}\"\n",
        empty.path().display()
    );
    let preset = Preset::from_str(&text, "iio.toml", &[]).unwrap();
    let e = Plan::new(&preset).unwrap_err();
    assert!(
        e.to_string().contains("is not an IIO accelerometer")
            && e.to_string().contains(&empty.path().display().to_string()),
        "{e}"
    );
}

#[test]
fn pixel_rotation_survives_mid_stream_size_changes_in_a_file() {
    // Sideways for 500 ms, then upright: the frame size changes from 360x640 to 640x360 while
    // recording. 640 rows is above the SD limit, so without pinned colorimetry videoconvert
    // would switch bt709 <-> bt601 with the size and the Matroska muxer would stop the run.
    let dir = tempfile::tempdir().unwrap();
    let mut trace = String::from("# sideways, then upright\n");
    for t in (0..3000).step_by(50) {
        let (x, y) = if t < 500 { (-9.8, 0.0) } else { (0.0, 9.8) };
        trace.push_str(&format!("{t} {x} {y} 0.1\n"));
    }
    std::fs::write(dir.path().join("turn.txt"), trace).unwrap();
    let preset = dir.path().join("turn.toml");
    let out = dir.path().join("turn.mkv");
    std::fs::write(
        &preset,
        format!(
            "output = \"file:{}\"\n[video]\nwidth = 640\nheight = 360\nframerate = 10\n[rotation]\nsensor = \"replay:turn.txt\"\noutput = \"pixels\"\nhold_ms = 0\n",
            out.display()
        ),
    )
    .unwrap();
    let o = streamwire(&["run", &preset.to_string_lossy(), "--for", "2s"]);
    assert!(o.status.success(), "{}", text(&o));
    let d = discover(&out);
    assert_eq!(d.video.len(), 1, "{:?}", d.video);
    assert!(
        d.duration >= Duration::from_millis(1000),
        "{:?}",
        d.duration
    );
}

#[test]
fn audio_dump_flag_needs_a_room_publishers_microphone() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("dump");
    let d = d.to_str().unwrap();
    // A local pipeline.
    let o = streamwire(&["run", "test-to-file", "--audio-dump", d, "--for", "1s"]);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("is not a room publisher"),
        "{}",
        text(&o)
    );
    // A room publisher of a test tone (refused before joining: no server is contacted).
    let o = streamwire(&[
        "run",
        "publish-test",
        "--set",
        "room.token=jwt",
        "--audio-dump",
        d,
    ]);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("does not publish a microphone"),
        "{}",
        text(&o)
    );
    assert!(!dir.path().join("dump").exists(), "nothing written");
}
