//! Validation of the located tree into a [`Preset`]: one function per table (`[input]`,
//! `[video]`, `[audio]`, `output`; `[rotation]` and `[telemetry]` in `elements.rs`, `[room]` in
//! `room.rs`), and the cross-checks between them.

use crate::webrtc::dsp::{AudioProcessing, EchoCancel, EchoSuppression, NoiseSuppression};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::doc;
use super::elements;
use super::error::{ErrorKind, Origin, PresetError, suggest};
use super::model::{
    AudioCodec, AudioInput, AudioSettings, Container, DeviceSelector, Input, Output, Preset,
    VideoInput, VideoSettings,
};
use super::room::{self, RoomRole};
use super::room_roles::{self, RoomInput};
use super::schema::{Section, invalid};
use crate::encoder::{Codec, HardwarePolicy};

const TOP_KEYS: &[&str] = &[
    "description",
    "duration",
    "input",
    "video",
    "audio",
    "output",
    "rotation",
    "telemetry",
    "room",
    "whiteboard",
];
const INPUT_KEYS: &[&str] = &["video", "audio", "video_device", "audio_device"];
const VIDEO_KEYS: &[&str] = &[
    "width",
    "height",
    "framerate",
    "codec",
    "bitrate",
    "keyframe_interval",
    "hardware",
];
const AUDIO_KEYS: &[&str] = &[
    "codec",
    "bitrate",
    "channels",
    "echo_cancel",
    "delay_agnostic",
    "noise_suppression",
    "gain_control",
    "high_pass_filter",
    "dump",
];
/// `[audio]` keys for a room publisher's microphone only.
const MIC_KEYS: &[&str] = &[
    "echo_cancel",
    "delay_agnostic",
    "noise_suppression",
    "gain_control",
    "high_pass_filter",
    "dump",
];
const VIDEO_INPUTS: &[&str] = &["camera", "screen", "test", "file:PATH", "room", "none"];
const AUDIO_INPUTS: &[&str] = &["mic", "test", "file:PATH", "room", "none"];
const OUTPUTS: &[&str] = &["file:PATH", "display", "fakesink", "room", "record:DIR"];

pub(super) fn parse_duration(
    s: &str,
    node: &doc::Node,
    key: &str,
) -> Result<Duration, PresetError> {
    humantime::parse_duration(s).map_err(|e| {
        invalid(
            &node.at,
            ErrorKind::InvalidValue {
                key: key.to_owned(),
                value: s.to_owned(),
                expected: format!("a duration such as \"10s\", \"1m 30s\" or \"500ms\" ({e})"),
                suggestion: None,
            },
        )
    })
}

fn device(section: &Section<'_>, key: &str) -> Result<Option<DeviceSelector>, PresetError> {
    match section.node(key) {
        None => Ok(None),
        Some(node) => match &node.value {
            doc::Value::String(s) => Ok(Some(DeviceSelector::Name(s.clone()))),
            doc::Value::Integer(_) => {
                let (n, _) = section.uint(key, 0, 1024, false)?.ok_or_else(|| {
                    invalid(
                        &node.at,
                        ErrorKind::Missing {
                            key: key.to_owned(),
                        },
                    )
                })?;
                Ok(Some(DeviceSelector::Index(n)))
            }
            other => Err(invalid(
                &node.at,
                ErrorKind::WrongType {
                    key: section.full_key(key),
                    expected: "a device name (string) or index (integer)",
                    found: other.type_name(),
                },
            )),
        },
    }
}

fn source_word(
    section: &Section<'_>,
    key: &str,
    allowed: &[&'static str],
) -> Result<Option<(String, Option<PathBuf>)>, PresetError> {
    let Some((s, node)) = section.string(key)? else {
        return Ok(None);
    };
    if let Some(path) = s.strip_prefix("file:") {
        if path.is_empty() {
            return Err(invalid(
                &node.at,
                ErrorKind::InvalidValue {
                    key: section.full_key(key),
                    value: s.to_owned(),
                    expected: "a path after `file:`".to_owned(),
                    suggestion: None,
                },
            ));
        }
        return Ok(Some(("file".to_owned(), Some(PathBuf::from(path)))));
    }
    let words: Vec<&'static str> = allowed
        .iter()
        .copied()
        .filter(|w| !w.contains(':'))
        .collect();
    if words.contains(&s) {
        return Ok(Some((s.to_owned(), None)));
    }
    let expected = format!("one of: {}", allowed.join(", "));
    Err(invalid(
        &node.at,
        ErrorKind::InvalidValue {
            key: section.full_key(key),
            value: s.to_owned(),
            expected,
            suggestion: suggest(s, &words).map(str::to_owned),
        },
    ))
}

/// Validate the whole preset: the top-level keys, then each table in turn.
pub(super) fn validate(
    root: &BTreeMap<String, doc::Node>,
    start: Origin,
    path: &str,
    base: &Path,
) -> Result<Preset, PresetError> {
    let top = Section {
        prefix: "",
        table: root,
        at: start.clone(),
    };
    top.check_keys(TOP_KEYS, &[])?;
    let description = top
        .string("description")?
        .map(|(s, _)| s.trim().to_owned())
        .unwrap_or_default();
    let duration = match top.string("duration")? {
        Some((s, node)) => Some(parse_duration(s, node, "duration")?),
        None => None,
    };

    let empty = BTreeMap::new();
    let input_sec = top.table("input")?.unwrap_or(Section {
        prefix: "input",
        table: &empty,
        at: start.clone(),
    });
    let input = match input(&input_sec)? {
        Sources::Local(input) => input,
        Sources::Room { video, audio } => {
            return room_roles::room_input(
                &top,
                &input_sec,
                RoomInput {
                    video,
                    audio,
                    path,
                    base,
                    description,
                    duration,
                },
            );
        }
    };
    let video_sec = top.table("video")?;
    let video = video(video_sec.as_ref(), &start)?.filter(|_| input.video != VideoInput::None);
    let (output, out_node) = output(&top, &start)?;
    let publish_room = matches!(&out_node.value, doc::Value::String(s) if s == "room");
    let audio_sec = top.table("audio")?;
    if let Some(sec) = &audio_sec
        && !(publish_room && input.audio == AudioInput::Mic)
        && let Some(key) = MIC_KEYS.iter().find(|k| sec.node(k).is_some())
    {
        return Err(invalid(
            &sec.node(key)
                .map(|n| n.key_at.clone())
                .unwrap_or(sec.at.clone()),
            ErrorKind::ImpossibleCaps {
                key: sec.full_key(key),
                reason: "applies to a room publisher's microphone only (output = \"room\", \
                         input.audio = \"mic\")"
                    .to_owned(),
            },
        ));
    }
    let audio = audio(audio_sec.as_ref())?.filter(|_| input.audio != AudioInput::None);
    check_container(&output, video.as_ref(), video_sec.as_ref(), &out_node.at)?;

    // [rotation] and [telemetry]: both act on the video branch of a local pipeline (a room
    // publisher's telemetry is the session's and needs no video).
    let rotation_sec = top.table("rotation")?;
    let telemetry_sec = top.table("telemetry")?;
    let on_video = if publish_room {
        [&rotation_sec, &None]
    } else {
        [&rotation_sec, &telemetry_sec]
    };
    for sec in on_video.into_iter().flatten() {
        if video.is_none() {
            return Err(invalid(
                &sec.at,
                ErrorKind::ImpossibleCaps {
                    key: sec.prefix.to_owned(),
                    reason: format!(
                        "[{}] acts on the video branch, but input.video is \"none\"",
                        sec.prefix
                    ),
                },
            ));
        }
    }
    let mut rotation = rotation_sec
        .as_ref()
        .map(|s| elements::rotation(s, base, input.video == VideoInput::Camera))
        .transpose()?;
    let telemetry = telemetry_sec
        .as_ref()
        .map(elements::telemetry)
        .transpose()?;

    // [whiteboard]: only with a room input (returned above).
    if let Some(sec) = top.table("whiteboard")? {
        return Err(invalid(
            &sec.at,
            ErrorKind::ImpossibleCaps {
                key: "whiteboard".to_owned(),
                reason: "[whiteboard] records a room's board: it needs input.video = \"room\" \
                         and output = \"record:DIR\""
                    .to_owned(),
            },
        ));
    }

    // [room]: only with output = "room" here (a room input returned above).
    let room = match (publish_room, top.table("room")?) {
        (false, None) => None,
        (false, Some(sec)) => {
            return Err(invalid(
                &sec.at,
                ErrorKind::ImpossibleCaps {
                    key: "room".to_owned(),
                    reason: "[room] is used only with output = \"room\" or input.video = \"room\""
                        .to_owned(),
                },
            ));
        }
        (true, None) => {
            return Err(invalid(
                &out_node.at,
                ErrorKind::Missing {
                    key: "room".to_owned(),
                },
            ));
        }
        (true, Some(sec)) => {
            room_roles::check_publishable(&input_sec, video_sec.as_ref(), video.as_ref())?;
            if let (Some(rsec), Some(r)) = (&rotation_sec, &mut rotation) {
                room_roles::check_rotation(rsec, r)?;
            }
            if let Some(tsec) = &telemetry_sec {
                room_roles::check_telemetry(tsec)?;
            }
            Some(room::room(&sec, base, RoomRole::Publish)?)
        }
    };

    Ok(Preset {
        source: path.to_owned(),
        description,
        duration,
        input,
        video,
        audio,
        output,
        rotation,
        telemetry,
        room,
        whiteboard: None,
    })
}

/// What `[input]` declares: local capture, or a room (validated by [`room_roles::room_input`]).
enum Sources {
    /// Local sources (at least one of them not `none`).
    Local(Input),
    /// `input.video` or `input.audio` is `"room"`: the words as written.
    Room {
        video: Option<String>,
        audio: Option<String>,
    },
}

/// Validate `[input]`.
fn input(sec: &Section<'_>) -> Result<Sources, PresetError> {
    sec.check_keys(INPUT_KEYS, &[])?;
    let video_word = source_word(sec, "video", VIDEO_INPUTS)?;
    let audio_word = source_word(sec, "audio", AUDIO_INPUTS)?;
    let is_room =
        |w: &Option<(String, Option<PathBuf>)>| w.as_ref().is_some_and(|(w, _)| w == "room");
    if is_room(&video_word) || is_room(&audio_word) {
        return Ok(Sources::Room {
            video: video_word.map(|w| w.0),
            audio: audio_word.map(|w| w.0),
        });
    }
    let video = match video_word {
        None => VideoInput::Test,
        Some((w, p)) => match (w.as_str(), p) {
            ("file", Some(p)) => VideoInput::File(p),
            ("camera", _) => VideoInput::Camera,
            ("screen", _) => VideoInput::Screen,
            ("test", _) => VideoInput::Test,
            _ => VideoInput::None,
        },
    };
    let audio = match audio_word {
        None => AudioInput::None,
        Some((w, p)) => match (w.as_str(), p) {
            ("file", Some(p)) => AudioInput::File(p),
            ("mic", _) => AudioInput::Mic,
            ("test", _) => AudioInput::Test,
            _ => AudioInput::None,
        },
    };
    if video == VideoInput::None && audio == AudioInput::None {
        return Err(invalid(
            &at_or(sec, "video"),
            ErrorKind::ImpossibleCaps {
                key: "input".to_owned(),
                reason: "both input.video and input.audio are \"none\": nothing to run".to_owned(),
            },
        ));
    }
    Ok(Sources::Local(Input {
        video_device: device(sec, "video_device")?,
        audio_device: device(sec, "audio_device")?,
        video,
        audio,
    }))
}

/// Validate `[video]` (defaults when the table is absent, positioned at `start`).
fn video(sec: Option<&Section<'_>>, start: &Origin) -> Result<Option<VideoSettings>, PresetError> {
    match sec {
        Some(sec) => {
            sec.check_keys(VIDEO_KEYS, &[])?;
            video_settings(sec).map(Some)
        }
        None => video_settings(&Section {
            prefix: "video",
            table: &BTreeMap::new(),
            at: start.clone(),
        })
        .map(Some),
    }
}

/// Validate `[audio]` (defaults when the table is absent).
fn audio(sec: Option<&Section<'_>>) -> Result<Option<AudioSettings>, PresetError> {
    match sec {
        Some(sec) => {
            sec.check_keys(AUDIO_KEYS, &[])?;
            audio_settings(sec).map(Some)
        }
        None => Ok(Some(AudioSettings {
            codec: AudioCodec::Opus,
            bitrate_kbps: 64,
            channels: 2,
            processing: AudioProcessing::default(),
            dump: None,
        })),
    }
}

/// Validate `output` for a preset with local sources; returns the node for later checks.
/// `output = "room"` gives [`Output::Fakesink`] here (the `[room]` table says the rest).
fn output<'a>(top: &Section<'a>, start: &Origin) -> Result<(Output, &'a doc::Node), PresetError> {
    let (out, out_node) = output_word(top, start)?;
    let bad = |expected, suggestion| bad_output(out_node, expected, suggestion);
    let output = if out == "room" {
        Output::Fakesink
    } else if out.starts_with("record:") {
        return Err(bad(
            "`record:DIR` only with a room input (input.video = \"room\"); \
             to record local capture use `file:PATH`"
                .to_owned(),
            None,
        ));
    } else if let Some(p) = out.strip_prefix("file:") {
        let path = PathBuf::from(p);
        let container = Container::from_path(&path)
            .ok_or_else(|| bad("a file name ending in .mp4, .mkv or .webm".to_owned(), None))?;
        Output::File { path, container }
    } else {
        match out {
            "display" => Output::Display,
            "fakesink" => Output::Fakesink,
            other => {
                return Err(bad(
                    format!("one of: {}", OUTPUTS.join(", ")),
                    suggest(other, &["display", "fakesink", "room"]).map(str::to_owned),
                ));
            }
        }
    };
    Ok((output, out_node))
}

/// Cross-check: can the output file's container carry the video codec?
fn check_container(
    output: &Output,
    video: Option<&VideoSettings>,
    video_sec: Option<&Section<'_>>,
    out_at: &Origin,
) -> Result<(), PresetError> {
    let (Output::File { container, .. }, Some(v)) = (output, video) else {
        return Ok(());
    };
    if container.video_codecs().contains(&v.codec) {
        return Ok(());
    }
    let at = video_sec
        .and_then(|s| s.node("codec"))
        .map(|n| n.at.clone())
        .unwrap_or(out_at.clone());
    let carried: Vec<&str> = container.video_codecs().iter().map(|c| c.name()).collect();
    Err(invalid(
        &at,
        ErrorKind::ImpossibleCaps {
            key: "video.codec".to_owned(),
            reason: format!(
                "a {} file cannot carry {} video (it carries {})",
                container.muxer().trim_end_matches("mux"),
                v.codec.name(),
                carried.join(", ")
            ),
        },
    ))
}

/// `output` as written (required; reported missing at `start`) and its node.
pub(super) fn output_word<'a>(
    top: &Section<'a>,
    start: &Origin,
) -> Result<(&'a str, &'a doc::Node), PresetError> {
    top.string("output")?.ok_or_else(|| {
        invalid(
            start,
            ErrorKind::Missing {
                key: "output".to_owned(),
            },
        )
    })
}

/// The `output` at `node` is not allowed: `expected` instead, maybe `suggestion`.
pub(super) fn bad_output(
    node: &doc::Node,
    expected: String,
    suggestion: Option<String>,
) -> PresetError {
    let value = match &node.value {
        doc::Value::String(s) => s.clone(),
        other => other.type_name().to_owned(),
    };
    invalid(
        &node.at,
        ErrorKind::InvalidValue {
            key: "output".to_owned(),
            value,
            expected,
            suggestion,
        },
    )
}

/// Where `key` of `sec` is, or the table itself when the key is absent.
pub(super) fn at_or(sec: &Section<'_>, key: &str) -> Origin {
    sec.node(key)
        .map(|n| n.at.clone())
        .unwrap_or(sec.at.clone())
}

fn video_settings(sec: &Section<'_>) -> Result<VideoSettings, PresetError> {
    let width = sec.uint("width", 16, 7680, true)?;
    let height = sec.uint("height", 16, 4320, true)?;
    for (key, v) in [("width", width), ("height", height)] {
        if let Some((n, node)) = v
            && n % 2 != 0
        {
            return Err(invalid(
                &node.at,
                ErrorKind::ImpossibleCaps {
                    key: sec.full_key(key),
                    reason: format!("{n} is odd; 4:2:0 video needs even width and height"),
                },
            ));
        }
    }
    let framerate = sec
        .uint("framerate", 1, 240, true)?
        .map(|v| v.0)
        .unwrap_or(30);
    let codec = match sec.string("codec")? {
        None => Codec::Vp8,
        Some((s, node)) => Codec::from_name(s).ok_or_else(|| {
            let names: Vec<&'static str> = Codec::ALL.iter().map(|c| c.name()).collect();
            invalid(
                &node.at,
                ErrorKind::UnknownCodec {
                    key: sec.full_key("codec"),
                    value: s.to_owned(),
                    suggestion: suggest(s, &names).map(str::to_owned),
                    expected: names,
                },
            )
        })?,
    };
    let hardware = match sec.word("hardware", &["auto", "require", "off"])? {
        None | Some(("auto", _)) => HardwarePolicy::Auto,
        Some(("require", _)) => HardwarePolicy::Require,
        Some(_) => HardwarePolicy::Off,
    };
    Ok(VideoSettings {
        width: width.map(|v| v.0).unwrap_or(1280),
        height: height.map(|v| v.0).unwrap_or(720),
        framerate,
        codec,
        bitrate_kbps: sec
            .uint("bitrate", 16, 100_000, false)?
            .map(|v| v.0)
            .unwrap_or(2000),
        keyframe_interval: sec
            .uint("keyframe_interval", 1, 3000, false)?
            .map(|v| v.0)
            .unwrap_or(framerate * 2),
        hardware,
    })
}

fn audio_settings(sec: &Section<'_>) -> Result<AudioSettings, PresetError> {
    let codec = match sec.string("codec")? {
        None | Some(("opus", _)) => AudioCodec::Opus,
        Some((s, node)) => {
            return Err(invalid(
                &node.at,
                ErrorKind::UnknownCodec {
                    key: sec.full_key("codec"),
                    value: s.to_owned(),
                    expected: vec!["opus"],
                    suggestion: suggest(s, &["opus"]).map(str::to_owned),
                },
            ));
        }
    };
    Ok(AudioSettings {
        codec,
        bitrate_kbps: sec
            .uint("bitrate", 6, 510, false)?
            .map(|v| v.0)
            .unwrap_or(64),
        channels: sec.uint("channels", 1, 2, true)?.map(|v| v.0).unwrap_or(2),
        processing: processing(sec)?,
        dump: sec.string("dump")?.map(|(s, _)| PathBuf::from(s)),
    })
}

/// The microphone processing keys of `[audio]`.
fn processing(sec: &Section<'_>) -> Result<AudioProcessing, PresetError> {
    let mut p = AudioProcessing::default();
    if let Some((w, _)) = sec.word("echo_cancel", &["off", "low", "moderate", "high"])? {
        p.echo_cancel = match w {
            "off" => EchoCancel::Off,
            "low" => EchoCancel::On(EchoSuppression::Low),
            "high" => EchoCancel::On(EchoSuppression::High),
            _ => EchoCancel::On(EchoSuppression::Moderate),
        };
    }
    if let Some((w, _)) = sec.word(
        "noise_suppression",
        &["off", "low", "moderate", "high", "very-high"],
    )? {
        p.noise_suppression = match w {
            "off" => None,
            "low" => Some(NoiseSuppression::Low),
            "high" => Some(NoiseSuppression::High),
            "very-high" => Some(NoiseSuppression::VeryHigh),
            _ => Some(NoiseSuppression::Moderate),
        };
    }
    if let Some((b, _)) = sec.bool("delay_agnostic")? {
        p.delay_agnostic = b;
    }
    if let Some((b, _)) = sec.bool("gain_control")? {
        p.gain_control = b;
    }
    if let Some((b, _)) = sec.bool("high_pass_filter")? {
        p.high_pass_filter = b;
    }
    Ok(p)
}
