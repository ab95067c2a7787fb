//! Preset parsing and every error kind, with positions asserted.

use std::time::Duration;

use streamwire::encoder::{Codec, HardwarePolicy};
use streamwire::preset::{
    AudioInput, Container, DeviceSelector, ErrorKind, Origin, Output, Preset, PresetError,
    RoomReceive, RoomRole, RotationMode, RotationOutput, SensorSource, TokenSource, VideoInput,
};
use streamwire::session::SessionConfig;
use streamwire::telemetry::Consent;
use streamwire::webrtc::publisher::{CameraFacing, PublisherConfig, Rotation};

fn parse(text: &str) -> Result<Preset, PresetError> {
    Preset::from_str(text, "t.toml", &[])
}

fn err(text: &str) -> PresetError {
    match parse(text) {
        Ok(p) => panic!("expected an error, got {p:?}"),
        Err(e) => e,
    }
}

const GOOD: &str = r#"description = "d"
output = "file:out.webm"
[input]
video = "test"
audio = "test"
[video]
width = 640
height = 360
framerate = 25
codec = "vp9"
bitrate = 800
keyframe_interval = 50
hardware = "off"
[audio]
bitrate = 32
channels = 1
"#;

#[test]
fn bundled_presets_all_parse_with_descriptions() {
    let list = Preset::bundled();
    let names: Vec<&str> = list.iter().map(|(n, _)| *n).collect();
    for want in [
        "test-to-file",
        "camera-preview",
        "camera-record",
        "screen-record",
        "rotation-demo",
    ] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    for (name, desc) in list {
        let desc = desc.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!desc.is_empty() && !desc.contains('\n'), "{name}: {desc:?}");
    }
}

#[test]
fn full_preset_parses_into_typed_values() {
    let p = parse(GOOD).unwrap();
    assert_eq!(p.input.video, VideoInput::Test);
    assert_eq!(p.input.audio, AudioInput::Test);
    let v = p.video.unwrap();
    assert_eq!((v.width, v.height, v.framerate), (640, 360, 25));
    assert_eq!(v.codec, Codec::Vp9);
    assert_eq!(v.bitrate_kbps, 800);
    assert_eq!(v.keyframe_interval, 50);
    assert_eq!(v.hardware, HardwarePolicy::Off);
    let a = p.audio.unwrap();
    assert_eq!((a.bitrate_kbps, a.channels), (32, 1));
    assert_eq!(
        p.output,
        Output::File {
            path: "out.webm".into(),
            container: Container::Webm
        }
    );
}

#[test]
fn defaults_apply_and_none_sources_drop_settings() {
    let p = parse("output = \"fakesink\"\n").unwrap();
    let v = p.video.unwrap();
    assert_eq!((v.width, v.height, v.framerate), (1280, 720, 30));
    assert_eq!(v.codec, Codec::Vp8);
    assert_eq!(v.keyframe_interval, 60);
    assert_eq!(v.hardware, HardwarePolicy::Auto);
    assert!(p.audio.is_none(), "audio defaults to none");
    assert!(p.duration.is_none());

    let p = parse("output = \"display\"\n[input]\nvideo = \"none\"\naudio = \"mic\"\n").unwrap();
    assert!(p.video.is_none());
    assert_eq!(p.audio.unwrap().channels, 2);
}

#[test]
fn sources_devices_and_duration() {
    let p = parse(
        "duration = \"1m 30s\"\noutput = \"file:x.mkv\"\n[input]\nvideo = \"file:/media/in.mp4\"\naudio = \"file:/media/in.mp4\"\nvideo_device = 2\naudio_device = \"USB\"\n",
    )
    .unwrap();
    assert_eq!(p.duration, Some(Duration::from_secs(90)));
    assert_eq!(p.input.video, VideoInput::File("/media/in.mp4".into()));
    assert_eq!(p.input.audio, AudioInput::File("/media/in.mp4".into()));
    assert_eq!(p.input.video_device, Some(DeviceSelector::Index(2)));
    assert_eq!(
        p.input.audio_device,
        Some(DeviceSelector::Name("USB".into()))
    );
}

#[test]
fn syntax_error_has_position() {
    let e = err("description = \"x\"\n[video\nwidth = 3\n");
    assert!(matches!(e.kind(), Some(ErrorKind::Syntax { .. })), "{e}");
    assert_eq!(e.line_column().map(|l| l.0), Some(2), "{e}");
    assert!(e.to_string().starts_with("t.toml:2:"), "{e}");
}

#[test]
fn unknown_key_in_section_suggests_and_points_at_key() {
    let e = err("output = \"fakesink\"\n[video]\nwidth = 640\n  widht = 640\n");
    assert_eq!(e.line_column(), Some((4, 3)), "{e}");
    match e.kind() {
        Some(ErrorKind::UnknownKey {
            key,
            suggestion,
            expected,
        }) => {
            assert_eq!(key, "video.widht");
            assert_eq!(suggestion.as_deref(), Some("video.width"));
            assert!(expected.contains(&"height"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        e.to_string(),
        "t.toml:4:3: unknown key `video.widht`, did you mean `video.width`? (expected one of: width, height, framerate, codec, bitrate, keyframe_interval, hardware)"
    );
}

#[test]
fn unknown_top_level_key_suggests() {
    let e = err("descripton = \"x\"\noutput = \"fakesink\"\n");
    assert_eq!(e.line_column(), Some((1, 1)));
    assert!(e.to_string().contains("did you mean `description`?"), "{e}");
    // Nothing close: no suggestion, still the list.
    let e = err("output = \"fakesink\"\nzzzz = 1\n");
    assert_eq!(e.line_column(), Some((2, 1)));
    match e.kind() {
        Some(ErrorKind::UnknownKey { suggestion, .. }) => assert_eq!(suggestion, &None),
        other => panic!("{other:?}"),
    }
}

#[test]
fn wrong_type_points_at_value() {
    let e = err("output = \"fakesink\"\n[video]\nwidth = \"640\"\n");
    assert_eq!(e.line_column(), Some((3, 9)), "{e}");
    assert_eq!(
        e.kind(),
        Some(&ErrorKind::WrongType {
            key: "video.width".into(),
            expected: "an integer",
            found: "a string",
        })
    );
    let e = err("output = 3\n");
    assert_eq!(e.line_column(), Some((1, 10)), "{e}");
    assert!(
        e.to_string()
            .contains("`output` must be a string, found an integer"),
        "{e}"
    );
    let e = err("output = \"fakesink\"\nvideo = 1\n");
    assert_eq!(e.line_column(), Some((2, 9)), "{e}");
    assert!(e.to_string().contains("must be a table"), "{e}");
    let e = err("output = \"fakesink\"\n[input]\nvideo_device = 1.5\n");
    assert_eq!(e.line_column(), Some((3, 16)), "{e}");
}

#[test]
fn unknown_codec_suggests() {
    let e = err("output = \"fakesink\"\n[video]\ncodec = \"h265\"\n");
    assert_eq!(e.line_column(), Some((3, 9)));
    match e.kind() {
        Some(ErrorKind::UnknownCodec {
            key,
            value,
            expected,
            suggestion,
        }) => {
            assert_eq!(key, "video.codec");
            assert_eq!(value, "h265");
            assert_eq!(expected, &vec!["h264", "vp8", "vp9", "av1"]);
            assert_eq!(suggestion.as_deref(), Some("h264"));
        }
        other => panic!("{other:?}"),
    }
    let e = err("output = \"fakesink\"\n[input]\naudio = \"test\"\n[audio]\ncodec = \"aac\"\n");
    assert_eq!(e.line_column(), Some((5, 9)));
    assert!(
        matches!(e.kind(), Some(ErrorKind::UnknownCodec { .. })),
        "{e}"
    );
}

#[test]
fn invalid_source_and_output_words() {
    let e = err("output = \"fakesink\"\n[input]\nvideo = \"camra\"\n");
    assert_eq!(e.line_column(), Some((3, 9)));
    assert!(e.to_string().contains("did you mean `camera`?"), "{e}");
    let e = err("output = \"dispaly\"\n");
    assert!(e.to_string().contains("did you mean `display`?"), "{e}");
    let e = err("output = \"file:out.avi\"\n");
    assert_eq!(e.line_column(), Some((1, 10)));
    assert!(e.to_string().contains(".mp4, .mkv or .webm"), "{e}");
    let e = err("output = \"fakesink\"\n[video]\nhardware = \"always\"\n");
    assert_eq!(e.line_column(), Some((3, 12)));
    assert!(e.to_string().contains("auto, require, off"), "{e}");
    let e = err("output = \"fakesink\"\n[input]\nvideo = \"file:\"\n");
    assert!(e.to_string().contains("a path after `file:`"), "{e}");
}

const ROOM: &str = "[room]\nserver = \"ws://127.0.0.1:8443\"\nroom = \"demo\"\n";

#[test]
fn room_presets_parse_into_typed_values() {
    // Publish: the capture sections become the publisher; token from room.token.
    let p = parse(&format!(
        "output = \"room\"\n[input]\nvideo = \"test\"\naudio = \"mic\"\n[video]\ncodec = \"h264\"\nwidth = 320\nheight = 240\n{ROOM}token = \"jwt\"\nice_servers = [\"stun://127.0.0.1:3478\", \"turn://u:p@127.0.0.1:3478\"]\n"
    ))
    .unwrap();
    let room = p.room.clone().unwrap();
    assert_eq!(room.role, RoomRole::Publish);
    assert_eq!(room.server, "ws://127.0.0.1:8443");
    assert_eq!(room.room, "demo");
    assert_eq!(room.token, TokenSource::Inline("jwt".into()));
    assert_eq!(room.ice_servers.len(), 2);
    assert_eq!(p.video.as_ref().unwrap().codec, Codec::H264);
    let cfg = SessionConfig::try_from(&p).unwrap();
    let publish = cfg.publish.unwrap();
    assert_eq!((publish.width, publish.height), (320, 240));
    assert_eq!(cfg.ice_servers, room.ice_servers);
    assert!(cfg.local_addresses.is_empty(), "every interface by default");

    // Receive: output says what to do with the media; no token anywhere means the environment.
    let p = parse(&format!(
        "output = \"record:recs\"\n[input]\nvideo = \"room\"\naudio = \"room\"\n{ROOM}"
    ))
    .unwrap();
    let room = p.room.clone().unwrap();
    assert_eq!(
        room.role,
        RoomRole::Receive {
            audio: true,
            output: RoomReceive::Record("recs".into())
        }
    );
    assert_eq!(room.token, TokenSource::Env);
    assert!(p.video.is_none() && p.audio.is_none());
    for (out, want) in [
        ("display", RoomReceive::Display),
        ("fakesink", RoomReceive::Discard),
    ] {
        let p = parse(&format!(
            "output = \"{out}\"\n[input]\nvideo = \"room\"\n{ROOM}"
        ))
        .unwrap();
        assert_eq!(
            p.room.unwrap().role,
            RoomRole::Receive {
                audio: false,
                output: want
            }
        );
    }

    // token_file resolves against the preset's directory.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("t.token"), "jwt-from-file\n").unwrap();
    let path = dir.path().join("p.toml");
    std::fs::write(
        &path,
        format!("output = \"room\"\n{ROOM}token_file = \"t.token\"\n"),
    )
    .unwrap();
    let p = Preset::load(path.to_str().unwrap(), &[]).unwrap();
    let token = p.room.unwrap().token;
    assert_eq!(token, TokenSource::File(dir.path().join("t.token")));
    assert_eq!(token.resolve().unwrap(), "jwt-from-file");

    // --set room.token=... on a bundled preset; arrays through --set too.
    let p = Preset::load(
        "subscribe-record",
        &[
            "room.token=abc".into(),
            "room.server=wss://example.test:443".into(),
            r#"room.ice_servers=["stun://127.0.0.1:3478"]"#.into(),
        ],
    )
    .unwrap();
    let room = p.room.unwrap();
    assert_eq!(room.token, TokenSource::Inline("abc".into()));
    assert_eq!(room.server, "wss://example.test:443");
    assert_eq!(room.ice_servers, vec!["stun://127.0.0.1:3478".to_string()]);
}

#[test]
fn room_presets_map_telemetry_onto_the_session() {
    use streamwire::session::telemetry::{DEFAULT_TELEMETRY_INTERVAL, TelemetryConfig};
    // Publishing (also without video: the session's telemetry is not on a video branch) and
    // receiving presets.
    for head in [
        "output = \"room\"\n",
        "output = \"room\"\n[input]\nvideo = \"none\"\naudio = \"test\"\n",
        "output = \"record:r\"\n[input]\nvideo = \"room\"\n",
        "output = \"fakesink\"\n[input]\nvideo = \"room\"\n",
    ] {
        let p = parse(&format!(
            "{head}[telemetry]\nconsent = \"necessary\"\ninterval = \"2s\"\n{ROOM}token = \"t\"\n"
        ))
        .unwrap_or_else(|e| panic!("{head}: {e}"));
        let t = p.telemetry.clone().unwrap();
        assert_eq!(
            (t.consent, t.interval),
            (Consent::Necessary, Duration::from_secs(2))
        );
        let cfg = SessionConfig::try_from(&p).unwrap();
        assert_eq!(
            cfg.telemetry,
            TelemetryConfig {
                consent: Consent::Necessary,
                interval: DEFAULT_TELEMETRY_INTERVAL,
                sample_interval: Duration::from_secs(2),
                device: true,
            },
            "{head}"
        );
    }
    // Without the table: the session's default, consent none (nothing read, nothing sent).
    let p = parse(&format!("output = \"room\"\n{ROOM}token = \"t\"\n")).unwrap();
    assert_eq!(
        SessionConfig::try_from(&p).unwrap().telemetry,
        TelemetryConfig::default()
    );
    // --set creates the table on a bundled preset.
    let p = Preset::load(
        "publish-test",
        &["room.token=t".into(), "telemetry.consent=full".into()],
    )
    .unwrap();
    assert_eq!(
        SessionConfig::try_from(&p).unwrap().telemetry.consent,
        Consent::Full
    );
    // A preset changed in code is refused at the key the session cannot apply.
    let mut p = p;
    p.telemetry.as_mut().unwrap().screen_resolution = Some("1x1".into());
    let Err(e) = SessionConfig::try_from(&p) else {
        panic!("a screen resolution was accepted")
    };
    assert!(
        e.to_string().contains("`telemetry.screen_resolution`"),
        "{e}"
    );
}

#[test]
fn room_ice_addresses_default_to_every_interface() {
    let addresses = |room: &str| {
        let text = format!("output = \"room\"\n[room]\n{room}token = \"jwt\"\n");
        let p = Preset::from_str(&text, "ice.toml", &[]).unwrap_or_else(|e| panic!("{e}"));
        let room = p.room.clone().unwrap();
        let cfg = SessionConfig::try_from(&p).unwrap();
        assert_eq!(cfg.local_addresses, room.ice_addresses);
        room.ice_addresses
    };
    // Every interface (libnice's default) wherever the server is, unless the preset says:
    // loopback only is an explicit choice.
    for server in [
        "ws://127.0.0.1:8443",
        "wss://localhost:8443",
        "wss://sig.example.org",
        "ws://192.168.1.5:8443",
        "ws://[2001:db8::1]:1",
    ] {
        assert!(
            addresses(&format!("server = \"{server}\"\nroom = \"r\"\n")).is_empty(),
            "{server}"
        );
    }
    assert_eq!(
        addresses("server = \"ws://127.0.0.1:1\"\nroom = \"r\"\nice_addresses = [\"127.0.0.1\"]\n"),
        vec!["127.0.0.1".to_string()]
    );
    assert_eq!(
        addresses(
            "server = \"wss://sig.example.org\"\nroom = \"r\"\nice_addresses = [\"192.168.1.20\", \"fe80::1\"]\n"
        ),
        vec!["192.168.1.20".to_string(), "fe80::1".to_string()]
    );
    assert!(
        addresses("server = \"ws://127.0.0.1:1\"\nroom = \"r\"\nice_addresses = \"all\"\n")
            .is_empty()
    );
}

#[test]
fn bundled_room_presets() {
    for (name, publish) in [
        ("publish-test", true),
        ("publish-camera", true),
        ("subscribe-display", false),
        ("subscribe-record", false),
    ] {
        let p = Preset::load(name, &[]).unwrap_or_else(|e| panic!("{name}: {e}"));
        let room = p.room.unwrap_or_else(|| panic!("{name} is a room preset"));
        assert_eq!(room.role == RoomRole::Publish, publish, "{name}");
        assert!(room.server.starts_with("ws://127.0.0.1:"), "{name}");
        assert_eq!(
            room.token,
            TokenSource::Env,
            "{name}: no token in a bundled preset"
        );
    }
}

#[test]
fn bad_room_presets_are_located() {
    let cases: Vec<(String, (usize, usize), &str)> = vec![
        // Missing [room], for a publisher (at output) and a receiver (at input.video).
        (
            "output = \"room\"\n".into(),
            (1, 10),
            "missing required key `room`",
        ),
        (
            "output = \"display\"\n[input]\nvideo = \"room\"\n".into(),
            (3, 9),
            "missing required key `room`",
        ),
        // Server URL scheme, with a did-you-mean.
        (
            "output = \"room\"\n[room]\nserver = \"https://sig.example:443\"\nroom = \"r\"\n"
                .into(),
            (3, 10),
            "did you mean `wss://sig.example:443`",
        ),
        (
            "output = \"room\"\n[room]\nserver = \"127.0.0.1:8443\"\nroom = \"r\"\n".into(),
            (3, 10),
            "a ws:// or wss:// URL",
        ),
        (
            "output = \"room\"\n[room]\nserver = \"ws://\"\nroom = \"r\"\n".into(),
            (3, 10),
            "with a host",
        ),
        // ICE addresses: not an IP, an empty list, a wrong type.
        (
            format!("output = \"room\"\n{ROOM}ice_addresses = [\"127.0.0.1\", \"eth0\"]\n"),
            (5, 31),
            "array of IP addresses",
        ),
        (
            format!("output = \"room\"\n{ROOM}ice_addresses = []\n"),
            (5, 17),
            "would gather nothing",
        ),
        (
            format!("output = \"room\"\n{ROOM}ice_addresses = 5\n"),
            (5, 17),
            "a string or an array of strings",
        ),
        // Missing and empty keys; unknown key with did-you-mean.
        (
            "output = \"room\"\n[room]\nserver = \"ws://h:1\"\n".into(),
            (2, 2),
            "missing required key `room.room`",
        ),
        (
            "output = \"room\"\n[room]\nserver = \"ws://h:1\"\nroom = \" \"\n".into(),
            (4, 8),
            "non-empty",
        ),
        (
            format!("output = \"room\"\n{ROOM}tokn = \"x\"\n"),
            (5, 1),
            "did you mean `room.token`",
        ),
        // Token file that does not exist, named with its path; token and token_file both.
        (
            format!("output = \"room\"\n{ROOM}token_file = \"/nonexistent/dir/t.token\"\n"),
            (5, 14),
            "`/nonexistent/dir/t.token` does not exist",
        ),
        (
            format!("output = \"room\"\n{ROOM}token = \"a\"\ntoken_file = \"b\"\n"),
            (6, 14),
            "not both",
        ),
        // ICE servers: type and scheme.
        (
            format!("output = \"room\"\n{ROOM}ice_servers = 3\n"),
            (5, 15),
            "must be an array of strings",
        ),
        (
            format!(
                "output = \"room\"\n{ROOM}ice_servers = [\"stun://127.0.0.1:3478\", \"stun:127.0.0.1:3478\"]\n"
            ),
            (5, 41),
            "did you mean `stun://127.0.0.1:3478`",
        ),
        // What a room publisher can send.
        (
            format!("output = \"room\"\n[video]\ncodec = \"vp9\"\n{ROOM}"),
            (3, 9),
            "a room carries vp8 or h264 video, not vp9",
        ),
        (
            format!("output = \"room\"\n[input]\nvideo = \"screen\"\n{ROOM}"),
            (3, 9),
            "test, camera, none",
        ),
        // [telemetry] in a room is the session's: no screen resolution.
        (
            format!(
                "output = \"room\"\n[telemetry]\nconsent = \"full\"\nscreen_resolution = \"1920x1080\"\n{ROOM}"
            ),
            (4, 1),
            "telemetry.screen_resolution`: not reported by a room session",
        ),
        (
            format!(
                "output = \"display\"\n[input]\nvideo = \"room\"\n[telemetry]\nscreen_resolution = \"1x1\"\n{ROOM}"
            ),
            (5, 1),
            "not reported by a room session",
        ),
        (
            format!("output = \"room\"\n[telemetry]\ninterval = \"10ms\"\n{ROOM}"),
            (3, 12),
            "a duration from 100ms to 1h",
        ),
        // [rotation] in a room: metadata only, the element's default filter settings.
        (
            format!("output = \"room\"\n[rotation]\nmode = \"off\"\noutput = \"pixels\"\n{ROOM}"),
            (4, 10),
            "\"metadata\" with output = \"room\"",
        ),
        (
            format!("output = \"room\"\n[rotation]\nmode = \"follow-app\"\nhold_ms = 100\n{ROOM}"),
            (4, 1),
            "rotation.hold_ms",
        ),
        (
            format!("output = \"room\"\n[rotation]\nhysteresis = 10\n{ROOM}"),
            (3, 1),
            "not applied with output = \"room\"",
        ),
        (
            format!(
                "output = \"room\"\n[rotation]\nsensor = \"iio:/nonexistent/iio:device9\"\n{ROOM}"
            ),
            (3, 10),
            "/nonexistent/iio:device9 is not an IIO accelerometer",
        ),
        // A room input: what the output may be, and no local capture settings.
        (
            format!("output = \"file:rec/x.mkv\"\n[input]\nvideo = \"room\"\n{ROOM}"),
            (1, 10),
            "did you mean `record:rec`",
        ),
        (
            format!("output = \"room\"\n[input]\nvideo = \"room\"\n{ROOM}"),
            (1, 10),
            "not supported",
        ),
        (
            format!("output = \"display\"\n[input]\nvideo = \"room\"\naudio = \"test\"\n{ROOM}"),
            (4, 9),
            "cannot mix local capture and a room input",
        ),
        (
            format!("output = \"display\"\n[input]\nvideo = \"test\"\naudio = \"room\"\n{ROOM}"),
            (3, 9),
            "input.video = \"room\"",
        ),
        (
            format!(
                "output = \"display\"\n[input]\nvideo = \"room\"\n[video]\nwidth = 640\n{ROOM}"
            ),
            (4, 2),
            "configures local capture and encoding",
        ),
        (
            format!("output = \"display\"\n[input]\nvideo = \"room\"\nvideo_device = 0\n{ROOM}"),
            (4, 1),
            "captures nothing locally",
        ),
        // record:DIR and [room] outside room presets.
        (
            "output = \"record:x\"\n".into(),
            (1, 10),
            "only with a room input",
        ),
        (
            format!("output = \"fakesink\"\n{ROOM}"),
            (2, 2),
            "[room] is used only with",
        ),
        (
            "output = \"rooom\"\n".into(),
            (1, 10),
            "did you mean `room`",
        ),
    ];
    for (text, at, needle) in cases {
        let e = err(&text);
        assert_eq!(e.line_column(), Some(at), "{text}\n-> {e}");
        assert!(e.to_string().contains(needle), "{text}\n-> {e}");
        assert!(e.to_string().starts_with("t.toml:"), "{e}");
    }

    // Overrides are located at the --set argument.
    let e = Preset::load("publish-test", &["room.server=http://h:1".into()]).unwrap_err();
    assert!(
        e.to_string().starts_with("--set room.server=http://h:1: "),
        "{e}"
    );
    assert!(e.to_string().contains("did you mean `ws://h:1`"), "{e}");
}

#[test]
fn room_preset_rotation_becomes_the_publishers_metadata_mode() {
    use streamwire::webrtc::publisher::{Rotation, RotationConfig};
    let rotation_of = |table: &str| {
        let p = parse(&format!(
            "output = \"room\"\n[rotation]\n{table}{ROOM}token = \"jwt\"\n"
        ))
        .unwrap_or_else(|e| panic!("{table}: {e}"));
        let cfg = SessionConfig::try_from(&p).unwrap();
        cfg.publish.unwrap().rotation
    };
    assert_eq!(
        rotation_of("mode = \"follow-app\"\nrotation = 90\n"),
        Some(RotationConfig::Fixed(Rotation::R90))
    );
    assert_eq!(
        rotation_of("mode = \"follow-app\"\nrotation = 270\noutput = \"metadata\"\n"),
        Some(RotationConfig::Fixed(Rotation::R270))
    );
    // `off`: the element is there at 0 degrees, so the app can turn it later.
    assert_eq!(
        rotation_of("mode = \"off\"\n"),
        Some(RotationConfig::Fixed(Rotation::R0))
    );

    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("trace.txt");
    std::fs::write(&trace, "0 0 -9.8 0\n").unwrap();
    assert_eq!(
        rotation_of(&format!("sensor = \"replay:{}\"\n", trace.display())),
        Some(RotationConfig::Sensor {
            replay_file: Some(trace.display().to_string()),
            iio_device: None,
        })
    );
    let iio = dir.path().join("iio:device0");
    std::fs::create_dir(&iio).unwrap();
    std::fs::write(iio.join("in_accel_x_raw"), "0\n").unwrap();
    assert_eq!(
        rotation_of(&format!(
            "mode = \"follow-sensor\"\nsensor = \"iio:{}\"\n",
            iio.display()
        )),
        Some(RotationConfig::Sensor {
            replay_file: None,
            iio_device: Some(iio.display().to_string()),
        })
    );

    // Without [rotation], no orientation is sent.
    let p = parse(&format!("output = \"room\"\n{ROOM}token = \"jwt\"\n")).unwrap();
    let cfg = SessionConfig::try_from(&p).unwrap();
    assert_eq!(cfg.publish.unwrap().rotation, None);

    // The default sensor (the first IIO accelerometer) is resolved when the preset loads; on a
    // machine without one the error points at the [rotation] table.
    let has_accel = std::fs::read_dir("/sys/bus/iio/devices")
        .map(|d| {
            d.flatten()
                .any(|e| e.path().join("in_accel_x_raw").is_file())
        })
        .unwrap_or(false);
    let r = parse(&format!(
        "output = \"room\"\n[rotation]\n{ROOM}token = \"jwt\"\n"
    ));
    if has_accel {
        let p = r.unwrap();
        assert!(matches!(
            p.rotation.unwrap().mode,
            RotationMode::FollowSensor(SensorSource::Iio(_))
        ));
    } else {
        let e = r.unwrap_err();
        assert_eq!(e.line_column(), Some((2, 2)), "{e}");
        assert!(
            e.to_string()
                .contains("no accelerometer under /sys/bus/iio/devices"),
            "{e}"
        );
    }
}

#[test]
fn room_conversion_refuses_what_a_session_cannot_send_naming_preset_and_key() {
    // Loaded presets are refused at their line (above); a preset changed in code is refused
    // when it is converted, naming its source and the key, instead of being mapped to
    // something else.
    let refused = |p: &Preset| {
        let Err(e) = SessionConfig::try_from(p) else {
            panic!("{} converted", p.source)
        };
        assert_eq!(e.line_column(), None, "{e}");
        assert!(
            matches!(e.origin(), Some(Origin::Preset { source }) if *source == p.source),
            "{e}"
        );
        match e.kind() {
            Some(ErrorKind::ImpossibleCaps { key, .. }) => (key.clone(), e.to_string()),
            other => panic!("{other:?}: {e}"),
        }
    };
    let base = parse(&format!("output = \"room\"\n{ROOM}token = \"jwt\"\n")).unwrap();
    assert!(SessionConfig::try_from(&base).is_ok());

    for codec in [Codec::Vp9, Codec::Av1] {
        let mut p = base.clone();
        p.video.as_mut().unwrap().codec = codec;
        let (key, msg) = refused(&p);
        assert_eq!(key, "video.codec");
        assert!(msg.starts_with("t.toml: "), "{msg}");
        assert!(
            msg.contains(&format!("cannot send {} video", codec.name())),
            "{msg}"
        );
    }
    // Both codecs a room carries are copied, not mapped.
    let mut p = base.clone();
    p.video.as_mut().unwrap().codec = Codec::H264;
    let publish = PublisherConfig::try_from(&p).unwrap();
    assert_eq!(publish.codec, Codec::H264);

    let mut p = base.clone();
    p.input.video = VideoInput::Screen;
    assert_eq!(refused(&p).0, "input.video");
    let mut p = base.clone();
    p.input.audio = AudioInput::File("/media/in.mp4".into());
    p.audio = base
        .audio
        .clone()
        .or(Some(streamwire::preset::AudioSettings {
            codec: streamwire::preset::AudioCodec::Opus,
            bitrate_kbps: 64,
            channels: 2,
        }));
    assert_eq!(refused(&p).0, "input.audio");

    let mut p = base.clone();
    p.rotation = Some(streamwire::preset::RotationSettings {
        mode: RotationMode::Off,
        output: RotationOutput::Pixels,
        hysteresis: None,
        hold_ms: None,
        camera_facing: CameraFacing::Back,
        sensor_orientation: Rotation::R0,
    });
    assert_eq!(refused(&p).0, "rotation.output");
    let r = p.rotation.as_mut().unwrap();
    r.output = RotationOutput::Metadata;
    r.hold_ms = Some(100);
    assert_eq!(refused(&p).0, "rotation.hold_ms");
    let r = p.rotation.as_mut().unwrap();
    r.hold_ms = None;
    r.mode = RotationMode::FollowApp { rotation: 45 };
    assert_eq!(refused(&p).0, "rotation.rotation");
    let r = p.rotation.as_mut().unwrap();
    r.mode = RotationMode::FollowSensor(SensorSource::Iio("/nonexistent/iio:device9".into()));
    let (key, msg) = refused(&p);
    assert_eq!(key, "rotation.sensor");
    assert!(
        msg.contains("/nonexistent/iio:device9 is not an IIO accelerometer"),
        "{msg}"
    );

    // A local preset has no session.
    let local = parse("output = \"fakesink\"\n").unwrap();
    assert_eq!(refused(&local).0, "room");
}

#[test]
fn room_token_errors_name_the_source() {
    let e = TokenSource::File("/nonexistent/x.token".into())
        .resolve()
        .unwrap_err();
    assert!(e.to_string().contains("/nonexistent/x.token"), "{e}");
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.token");
    std::fs::write(&empty, "\n").unwrap();
    let e = TokenSource::File(empty.clone()).resolve().unwrap_err();
    assert!(e.to_string().contains("is empty"), "{e}");
    assert!(e.to_string().contains(&empty.display().to_string()), "{e}");
}

#[test]
fn impossible_caps() {
    let cases = [
        ("[video]\nwidth = 641\n", (3, 9), "odd"),
        ("[video]\nheight = 0\n", (3, 10), "outside 16..=4320"),
        ("[video]\nframerate = 500\n", (3, 13), "outside 1..=240"),
        (
            "[input]\naudio = \"test\"\n[audio]\nchannels = 6\n",
            (5, 12),
            "outside 1..=2",
        ),
        (
            "[input]\nvideo = \"none\"\naudio = \"none\"\n",
            (3, 9),
            "nothing to run",
        ),
    ];
    for (body, pos, text) in cases {
        let e = err(&format!("output = \"fakesink\"\n{body}"));
        assert!(
            matches!(e.kind(), Some(ErrorKind::ImpossibleCaps { .. })),
            "{body}: {e}"
        );
        assert_eq!(e.line_column(), Some(pos), "{body}: {e}");
        assert!(e.to_string().contains(text), "{body}: {e}");
    }
    // Codec the container cannot carry, reported at the codec line.
    let e = err("output = \"file:a.webm\"\n[video]\ncodec = \"h264\"\n");
    assert_eq!(e.line_column(), Some((3, 9)));
    assert!(e.to_string().contains("cannot carry h264"), "{e}");
    // ...or at the output when the codec is the default.
    let e = err("output = \"file:a.mp4\"\n");
    assert_eq!(e.line_column(), Some((1, 10)));
    assert!(e.to_string().contains("cannot carry vp8"), "{e}");
}

#[test]
fn out_of_range_values_and_durations() {
    let e = err("output = \"fakesink\"\n[video]\nbitrate = 5\n");
    assert!(
        matches!(e.kind(), Some(ErrorKind::InvalidValue { .. })),
        "{e}"
    );
    assert_eq!(e.line_column(), Some((3, 11)));
    let e = err("duration = \"soon\"\noutput = \"fakesink\"\n");
    assert_eq!(e.line_column(), Some((1, 12)));
    assert!(e.to_string().contains("a duration"), "{e}");
}

#[test]
fn missing_output() {
    let e = err("description = \"x\"\n");
    assert_eq!(
        e.kind(),
        Some(&ErrorKind::Missing {
            key: "output".into()
        })
    );
    assert_eq!(e.line_column(), Some((1, 1)));
}

#[test]
fn overrides_apply_and_errors_name_the_override() {
    let p = Preset::from_str(
        GOOD,
        "t.toml",
        &[
            "video.codec=av1".into(),
            "video.width=320".into(),
            "output=file:o.mkv".into(),
            "description=\"quoted\"".into(),
        ],
    )
    .unwrap();
    let v = p.video.unwrap();
    assert_eq!((v.codec, v.width), (Codec::Av1, 320));
    assert_eq!(p.description, "quoted");
    assert!(matches!(
        p.output,
        Output::File {
            container: Container::Mkv,
            ..
        }
    ));

    let e = Preset::from_str(GOOD, "t.toml", &["video.codec=h265".into()]).unwrap_err();
    assert_eq!(
        e.origin(),
        Some(&Origin::Override {
            arg: "video.codec=h265".into()
        })
    );
    assert!(
        e.to_string()
            .starts_with("--set video.codec=h265: unknown codec"),
        "{e}"
    );
    let e = Preset::from_str(GOOD, "t.toml", &["video.hieght=2".into()]).unwrap_err();
    assert!(e.to_string().contains("did you mean `video.height`"), "{e}");

    for bad in ["novalue", "=3", "video..codec=vp8", "output.x=1"] {
        let e = Preset::from_str(GOOD, "t.toml", &[bad.into()]).unwrap_err();
        assert!(matches!(e, PresetError::BadOverride { .. }), "{bad}: {e}");
    }
}

#[test]
fn load_by_name_by_path_and_not_found() {
    let p = Preset::load("test-to-file", &[]).unwrap();
    assert_eq!(p.source, "bundled:test-to-file");
    assert!(p.duration.is_some());

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mine.toml");
    std::fs::write(&path, "output = \"fakesink\"\n[video]\ncodec = 7\n").unwrap();
    let e = Preset::load(path.to_str().unwrap(), &[]).unwrap_err();
    assert!(
        e.to_string()
            .starts_with(&format!("{}:3:9:", path.display())),
        "{e}"
    );

    let e = Preset::load("test-to-fil", &[]).unwrap_err();
    match &e {
        PresetError::NotFound { suggestion, .. } => {
            assert_eq!(suggestion.as_deref(), Some("test-to-file"))
        }
        other => panic!("{other:?}"),
    }
    let e = Preset::load("/nonexistent/dir/p.toml", &[]).unwrap_err();
    assert!(matches!(e, PresetError::Io { .. }), "{e}");
}

#[test]
fn columns_count_characters_not_bytes() {
    let e = err("description = \"héllo\" \noutput = \"fakesink\"\n[video]\ncodec = \"héllo\"  \n");
    assert_eq!(e.line_column(), Some((4, 9)));
    let e = err("description = \"é\"; output = 1\n");
    assert!(matches!(e.kind(), Some(ErrorKind::Syntax { .. })), "{e}");
}

#[test]
fn snippet_shows_the_line_and_column() {
    let e = err("output = \"fakesink\"\n[video]\n  widht = 640\n");
    assert_eq!(e.snippet().unwrap(), "  3 |   widht = 640\n    |   ^");
    let e = Preset::from_str(GOOD, "t.toml", &["video.codec=h265".into()]).unwrap_err();
    assert_eq!(e.snippet(), None, "overrides have no file line");
}

// ---- [rotation] and [telemetry] ----

/// A preset file written next to a replay trace, so relative `replay:` paths can be checked.
fn with_trace() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("data")).unwrap();
    std::fs::write(dir.path().join("data/trace.txt"), "0 0 9.8 0\n").unwrap();
    let preset = dir.path().join("p.toml");
    (dir, preset)
}

#[test]
fn rotation_section_parses_every_mode() {
    let (dir, file) = with_trace();
    let path = file.to_string_lossy().into_owned();
    let p = Preset::from_str(
        "output = \"fakesink\"\n[rotation]\nsensor = \"replay:data/trace.txt\"\noutput = \"pixels\"\nhysteresis = 10\nhold_ms = 0\n",
        &path,
        &[],
    )
    .unwrap();
    let r = p.rotation.unwrap();
    assert_eq!(
        r.mode,
        RotationMode::FollowSensor(SensorSource::Replay(dir.path().join("data/trace.txt")))
    );
    assert_eq!(r.output, RotationOutput::Pixels);
    assert_eq!((r.hysteresis, r.hold_ms), (Some(10), Some(0)));

    // Defaults: follow-sensor on the first IIO accelerometer, metadata, the element's filter.
    let r = parse("output = \"fakesink\"\n[rotation]\n")
        .unwrap()
        .rotation
        .unwrap();
    assert_eq!(r.mode, RotationMode::FollowSensor(SensorSource::IioAuto));
    assert_eq!(r.output, RotationOutput::Metadata);
    assert_eq!((r.hysteresis, r.hold_ms), (None, None));

    let r = parse(
        "output = \"fakesink\"\n[rotation]\nsensor = \"iio:/sys/bus/iio/devices/iio:device0\"\n",
    )
    .unwrap()
    .rotation
    .unwrap();
    assert_eq!(
        r.mode,
        RotationMode::FollowSensor(SensorSource::Iio("/sys/bus/iio/devices/iio:device0".into()))
    );
    // follow-app without rotation means 0.
    let r = parse("output = \"fakesink\"\n[rotation]\nmode = \"follow-app\"\n")
        .unwrap()
        .rotation
        .unwrap();
    assert_eq!(r.mode, RotationMode::FollowApp { rotation: 0 });
    let r = parse("output = \"fakesink\"\n[rotation]\nmode = \"follow-app\"\nrotation = 270\n")
        .unwrap()
        .rotation
        .unwrap();
    assert_eq!(r.mode, RotationMode::FollowApp { rotation: 270 });
    let r = parse("output = \"fakesink\"\n[rotation]\nmode = \"off\"\n")
        .unwrap()
        .rotation
        .unwrap();
    assert_eq!(r.mode, RotationMode::Off);
    // No table, no element.
    assert_eq!(parse("output = \"fakesink\"\n").unwrap().rotation, None);
}

#[test]
fn rotation_errors_are_located() {
    let h = "output = \"fakesink\"\n[rotation]\n";
    let cases: &[(&str, (usize, usize), &str)] = &[
        (
            "mode = \"follow-meta\"\n",
            (3, 8),
            "follow-meta is for receivers",
        ),
        (
            "mode = \"follow-sensr\"\n",
            (3, 8),
            "did you mean `follow-sensor`",
        ),
        (
            "mode = \"follow-app\"\nrotation = 45\n",
            (4, 12),
            "invalid value `45` for `rotation.rotation` (expected one of: 0, 90, 180, 270)",
        ),
        (
            "mode = \"follow-app\"\nrotation = 360\n",
            (4, 12),
            "one of: 0, 90, 180, 270",
        ),
        (
            "mode = \"follow-app\"\nrotation = \"90\"\n",
            (4, 12),
            "`rotation.rotation` must be an integer, found a string",
        ),
        (
            "rotation = 90\n",
            (3, 12),
            "applies to mode = \"follow-app\" only",
        ),
        (
            "mode = \"off\"\nsensor = \"iio\"\n",
            (4, 10),
            "applies to mode = \"follow-sensor\" only",
        ),
        (
            "sensor = \"gravity\"\n",
            (3, 10),
            "one of: iio, iio:/sys/bus/iio/devices/iio:deviceN, replay:PATH",
        ),
        (
            "sensor = \"replay:\"\n",
            (3, 10),
            "a trace file path after `replay:`",
        ),
        (
            "sensor = \"iio:\"\n",
            (3, 10),
            "an IIO device directory after `iio:`",
        ),
        (
            "sensor = \"replay:no/such/trace.txt\"\n",
            (3, 10),
            "no/such/trace.txt` does not exist",
        ),
        ("output = \"pixel\"\n", (3, 10), "did you mean `pixels`"),
        ("hysteresis = 45\n", (3, 14), "an integer in 0..=44"),
        ("hold_ms = 10001\n", (3, 11), "an integer in 0..=10000"),
        ("hold = 10\n", (3, 1), "did you mean `rotation.hold_ms`"),
    ];
    for (body, at, want) in cases {
        let e = err(&format!("{h}{body}"));
        assert_eq!(e.line_column(), Some(*at), "{body}: {e}");
        assert!(e.to_string().contains(want), "{body}: {e}");
        assert!(e.to_string().starts_with("t.toml:"), "{e}");
    }
    // Rotation needs a video branch.
    let e = err("output = \"fakesink\"\n[input]\nvideo = \"none\"\naudio = \"test\"\n[rotation]\n");
    assert_eq!(e.line_column(), Some((5, 2)), "{e}");
    assert!(e.to_string().contains("input.video is \"none\""), "{e}");
    // Overrides are checked the same way and name the override.
    let e = Preset::from_str(
        "output = \"fakesink\"\n[rotation]\n",
        "t.toml",
        &["rotation.output=sideways".into()],
    )
    .unwrap_err();
    assert!(matches!(e.origin(), Some(Origin::Override { .. })), "{e}");
    assert!(e.to_string().contains("metadata, pixels"), "{e}");
}

#[test]
fn telemetry_section_parses_with_defaults() {
    let t = parse("output = \"fakesink\"\n[telemetry]\n")
        .unwrap()
        .telemetry
        .unwrap();
    assert_eq!(t.consent, Consent::None);
    assert_eq!(t.interval, Duration::from_secs(5));
    assert_eq!(t.screen_resolution, None);
    let t = parse(
        "output = \"fakesink\"\n[telemetry]\nconsent = \"full\"\ninterval = \"500ms\"\nscreen_resolution = \"1920x1080\"\n",
    )
    .unwrap()
    .telemetry
    .unwrap();
    assert_eq!(t.consent, Consent::Full);
    assert_eq!(t.interval, Duration::from_millis(500));
    assert_eq!(t.screen_resolution.as_deref(), Some("1920x1080"));
    assert_eq!(parse("output = \"fakesink\"\n").unwrap().telemetry, None);
}

#[test]
fn telemetry_errors_are_located() {
    let h = "output = \"fakesink\"\n[telemetry]\n";
    let cases: &[(&str, (usize, usize), &str)] = &[
        (
            "consent = \"all\"\n",
            (3, 11),
            "one of: none, necessary, full",
        ),
        (
            "consent = \"neccessary\"\n",
            (3, 11),
            "did you mean `necessary`",
        ),
        (
            "consent = true\n",
            (3, 11),
            "must be a string, found a boolean",
        ),
        ("interval = \"soon\"\n", (3, 12), "a duration such as"),
        (
            "interval = \"50ms\"\n",
            (3, 12),
            "a duration from 100ms to 1h",
        ),
        (
            "interval = \"2h\"\n",
            (3, 12),
            "a duration from 100ms to 1h",
        ),
        (
            "interval = 5\n",
            (3, 12),
            "must be a string, found an integer",
        ),
        (
            "screen_resolution = \"1920*1080\"\n",
            (3, 21),
            "WIDTHxHEIGHT",
        ),
        ("screen_resolution = \"0x1080\"\n", (3, 21), "WIDTHxHEIGHT"),
        (
            "consnet = \"full\"\n",
            (3, 1),
            "did you mean `telemetry.consent`",
        ),
    ];
    for (body, at, want) in cases {
        let e = err(&format!("{h}{body}"));
        assert_eq!(e.line_column(), Some(*at), "{body}: {e}");
        assert!(e.to_string().contains(want), "{body}: {e}");
    }
    let e = err("telemetry = \"on\"\noutput = \"fakesink\"\n");
    assert_eq!(e.line_column(), Some((1, 13)), "{e}");
    assert!(e.to_string().contains("must be a table"), "{e}");
}

#[test]
fn bundled_rotation_demo_uses_the_shipped_trace() {
    let p = Preset::load("rotation-demo", &[]).unwrap();
    let r = p.rotation.unwrap();
    let RotationMode::FollowSensor(SensorSource::Replay(path)) = r.mode else {
        panic!("{:?}", r.mode);
    };
    assert!(
        path.ends_with("pipelines/data/rotation-demo.txt"),
        "{path:?}"
    );
    assert!(path.is_file(), "{path:?}");
    assert_eq!(p.telemetry.unwrap().consent, Consent::Necessary);
}

#[test]
fn rotation_camera_keys_follow_the_camera() {
    let rot = |text: &str| {
        parse(text)
            .unwrap_or_else(|e| panic!("{text}: {e}"))
            .rotation
            .unwrap()
    };
    // A test pattern turns with the device by default: the element's `back`, mounted at 0.
    let r = rot("output = \"fakesink\"\n[rotation]\n");
    assert_eq!(
        (r.camera_facing, r.sensor_orientation),
        (CameraFacing::Back, Rotation::R0)
    );
    let r = rot(
        "output = \"fakesink\"\n[rotation]\ncamera_facing = \"front\"\nsensor_orientation = 270\n",
    );
    assert_eq!(
        (r.camera_facing, r.sensor_orientation),
        (CameraFacing::Front, Rotation::R270)
    );
    // A camera input is a desktop webcam unless told otherwise.
    let r = rot(
        "output = \"fakesink\"\n[input]\nvideo = \"camera\"\n[rotation]\nmode = \"follow-app\"\n",
    );
    assert_eq!(r.camera_facing, CameraFacing::External);
    let r = rot(
        "output = \"fakesink\"\n[input]\nvideo = \"camera\"\n[rotation]\nsensor = \"iio\"\ncamera_facing = \"back\"\n",
    );
    assert_eq!(r.camera_facing, CameraFacing::Back);

    let h = "output = \"fakesink\"\n[rotation]\n";
    let cases: &[(&str, (usize, usize), &str)] = &[
        (
            "camera_facing = \"rear\"\n",
            (3, 17),
            "one of: front, back, external",
        ),
        (
            "sensor_orientation = 45\n",
            (3, 22),
            "invalid value `45` for `rotation.sensor_orientation` (expected one of: 0, 90, 180, 270)",
        ),
        (
            "mode = \"follow-app\"\nsensor_orientation = 90\n",
            (4, 22),
            "applies to mode = \"follow-sensor\" only",
        ),
        (
            "camera_facing = \"external\"\n",
            (3, 17),
            "the device's rotation does not turn an external camera",
        ),
    ];
    for (body, at, want) in cases {
        let e = err(&format!("{h}{body}"));
        assert_eq!(e.line_column(), Some(*at), "{body}: {e}");
        assert!(e.to_string().contains(want), "{body}: {e}");
    }
    // The webcam default with the accelerometer mode: the error says where it came from.
    let e = err("output = \"fakesink\"\n[input]\nvideo = \"camera\"\n[rotation]\n");
    assert!(
        e.to_string()
            .contains("the default with input.video = \"camera\""),
        "{e}"
    );
}

#[test]
fn rotation_camera_reaches_the_element() {
    use gst::prelude::*;
    use streamwire::pipeline::Plan;
    streamwire::gst_init::init().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("trace.txt");
    std::fs::write(&trace, "0 0 -9.8 0\n").unwrap();
    let file = dir.path().join("cam.toml");
    std::fs::write(
        &file,
        format!(
            "output = \"fakesink\"\n[video]\nwidth = 320\nheight = 240\n[rotation]\nsensor = \"replay:{}\"\ncamera_facing = \"front\"\nsensor_orientation = 90\n",
            trace.display()
        ),
    )
    .unwrap();
    let preset = Preset::load(&file.to_string_lossy(), &[]).unwrap();
    let plan = Plan::new(&preset).unwrap();
    assert!(
        plan.description
            .contains("camera-facing=front sensor-orientation=90"),
        "{}",
        plan.description
    );
    let running = plan.start().unwrap();
    let rot = running
        .pipeline()
        .by_name(streamwire::pipeline::names::ROTATION)
        .unwrap();
    assert_eq!(
        rot.property::<CameraFacing>("camera-facing"),
        CameraFacing::Front
    );
    assert_eq!(
        rot.property_value("sensor-orientation")
            .serialize()
            .unwrap(),
        "90"
    );

    // A room publisher gets the same camera.
    let p = parse(&format!(
        "output = \"room\"\n[rotation]\nsensor = \"replay:{}\"\ncamera_facing = \"front\"\nsensor_orientation = 90\n{ROOM}token = \"jwt\"\n",
        trace.display()
    ))
    .unwrap();
    let publish = SessionConfig::try_from(&p).unwrap().publish.unwrap();
    assert_eq!(
        (publish.camera_facing, publish.sensor_orientation),
        (CameraFacing::Front, Rotation::R90)
    );
}
