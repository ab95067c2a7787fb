//! What a room preset may hold besides `[room]`: a receiving preset (`input.video = "room"`)
//! captures nothing locally and records or shows what it receives; a publishing preset
//! (`output = "room"`) captures only what the session's publisher can send. Either may have a
//! `[telemetry]` table, which configures the session's telemetry.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::elements::{RotationMode, RotationOutput, RotationSettings, SensorSource};
use super::error::{ErrorKind, PresetError, suggest};
use super::model::{AudioInput, Input, Output, Preset, VideoInput, VideoSettings};
use super::room::{RoomReceive, RoomRole, bad_value, room};
use super::schema::{Section, invalid};
use super::validate::{at_or, bad_output, output_word};
use crate::encoder::Codec;

/// Check a publishing room preset's `[rotation]` table (`sec`, parsed as `r`): a room carries
/// the orientation as metadata (the CVO RTP header extension, see
/// `webrtc::publisher::RotationConfig`), so `output = "pixels"` is
/// refused, and so are `hysteresis` and `hold_ms` (the room publisher uses the element's
/// defaults). The sensor is resolved here ([`SensorSource::iio_accelerometer`]): `sensor =
/// "iio"` (the default) to the first accelerometer under `/sys/bus/iio/devices`, refused when
/// there is none, like an `iio:DIR` that is not an accelerometer.
pub(crate) fn check_rotation(
    sec: &Section<'_>,
    r: &mut RotationSettings,
) -> Result<(), PresetError> {
    if r.output == RotationOutput::Pixels {
        return Err(bad_value(
            sec,
            "output",
            "pixels",
            "\"metadata\" with output = \"room\" (the picture is sent as captured and the \
             orientation travels beside it in the CVO RTP header extension; the receiver rotates)"
                .to_owned(),
        ));
    }
    for key in ["hysteresis", "hold_ms"] {
        if let Some(node) = sec.node(key) {
            return Err(invalid(
                &node.key_at,
                ErrorKind::ImpossibleCaps {
                    key: sec.full_key(key),
                    reason: "not applied with output = \"room\" yet (the room publisher uses \
                             the element's default); remove it"
                        .to_owned(),
                },
            ));
        }
    }
    let RotationMode::FollowSensor(src) = &mut r.mode else {
        return Ok(());
    };
    if !matches!(src, SensorSource::Replay(_)) {
        let dir = src.iio_accelerometer().map_err(|e| {
            invalid(
                &at_or(sec, "sensor"),
                ErrorKind::ImpossibleCaps {
                    key: sec.full_key("sensor"),
                    reason: e.to_string(),
                },
            )
        })?;
        *src = SensorSource::Iio(dir);
    }
    Ok(())
}

/// What a room input needs besides the tables.
pub(super) struct RoomInput<'a> {
    /// `input.video` as written.
    pub(super) video: Option<String>,
    /// `input.audio` as written.
    pub(super) audio: Option<String>,
    /// The preset's path (its `source`).
    pub(super) path: &'a str,
    /// What relative paths resolve against.
    pub(super) base: &'a Path,
    /// `description`.
    pub(super) description: String,
    /// `duration`.
    pub(super) duration: Option<Duration>,
}

/// Validate a preset whose `input.video` (and maybe `input.audio`) is `"room"`.
pub(super) fn room_input(
    top: &Section<'_>,
    input_sec: &Section<'_>,
    r: RoomInput<'_>,
) -> Result<Preset, PresetError> {
    if r.video.as_deref() != Some("room") {
        return Err(invalid(
            &at_or(input_sec, "video"),
            ErrorKind::InvalidValue {
                key: "input.video".to_owned(),
                value: r.video.unwrap_or_else(|| "test".to_owned()),
                expected: "\"room\": a room input is declared with input.video = \"room\" \
                           (input.audio = \"room\" adds the room's audio)"
                    .to_owned(),
                suggestion: None,
            },
        ));
    }
    let audio = match r.audio.as_deref() {
        None | Some("none") => false,
        Some("room") => true,
        Some(other) => {
            return Err(invalid(
                &at_or(input_sec, "audio"),
                ErrorKind::InvalidValue {
                    key: "input.audio".to_owned(),
                    value: other.to_owned(),
                    expected: "\"room\" or \"none\" with input.video = \"room\" \
                               (a preset cannot mix local capture and a room input)"
                        .to_owned(),
                    suggestion: None,
                },
            ));
        }
    };
    no_devices(
        input_sec,
        "a room input captures nothing locally; remove the device",
    )?;
    for table in ["video", "audio", "rotation"] {
        if let Some(sec) = top.table(table)? {
            return Err(invalid(
                &sec.at,
                ErrorKind::ImpossibleCaps {
                    key: table.to_owned(),
                    reason: format!(
                        "[{table}] configures local capture and encoding, but input.video = \
                         \"room\" receives media the room's publishers encoded"
                    ),
                },
            ));
        }
    }
    let (out, out_node) = output_word(top, &top.at)?;
    let bad = |expected, suggestion| bad_output(out_node, expected, suggestion);
    let (output, receive) = if let Some(dir) = out.strip_prefix("record:") {
        if dir.is_empty() {
            return Err(bad("a directory after `record:`".to_owned(), None));
        }
        (Output::Fakesink, RoomReceive::Record(PathBuf::from(dir)))
    } else {
        match out {
            "display" => (Output::Display, RoomReceive::Display),
            "fakesink" => (Output::Fakesink, RoomReceive::Discard),
            "room" => {
                return Err(bad(
                    "display, fakesink or record:DIR (receiving from and publishing to a room \
                     in one preset is not supported; run two presets)"
                        .to_owned(),
                    None,
                ));
            }
            other if other.starts_with("file:") => {
                let dir = Path::new(&other["file:".len()..])
                    .parent()
                    .map(|p| p.display().to_string())
                    .filter(|p| !p.is_empty())
                    .unwrap_or_else(|| ".".to_owned());
                return Err(bad(
                    "display, fakesink or record:DIR (a room input records one Matroska file \
                     per publisher, DIR/<peer>.mkv, so it takes a directory)"
                        .to_owned(),
                    Some(format!("record:{dir}")),
                ));
            }
            other => {
                return Err(bad(
                    "one of: display, fakesink, record:DIR (with input.video = \"room\")"
                        .to_owned(),
                    suggest(other, &["display", "fakesink"]).map(str::to_owned),
                ));
            }
        }
    };
    let Some(room_sec) = top.table("room")? else {
        return Err(invalid(
            &at_or(input_sec, "video"),
            ErrorKind::Missing {
                key: "room".to_owned(),
            },
        ));
    };
    let room = room(
        &room_sec,
        r.base,
        RoomRole::Receive {
            audio,
            output: receive,
        },
    )?;
    let whiteboard = match top.table("whiteboard")? {
        Some(sec) => {
            let w = super::whiteboard::whiteboard(&sec)?;
            if w.record
                && let (false, Some(node)) = (
                    matches!(
                        room.role,
                        RoomRole::Receive {
                            output: RoomReceive::Record(_),
                            ..
                        }
                    ),
                    sec.node("record"),
                )
            {
                return Err(invalid(
                    &node.at,
                    ErrorKind::ImpossibleCaps {
                        key: sec.full_key("record"),
                        reason: "the board is recorded into the room's file: it needs output = \
                                 \"record:DIR\""
                            .to_owned(),
                    },
                ));
            }
            Some(w)
        }
        None => None,
    };
    let telemetry = match top.table("telemetry")? {
        Some(sec) => {
            let t = super::elements::telemetry(&sec)?;
            check_telemetry(&sec)?;
            Some(t)
        }
        None => None,
    };
    Ok(Preset {
        source: r.path.to_owned(),
        description: r.description,
        duration: r.duration,
        input: Input {
            video: VideoInput::None,
            audio: AudioInput::None,
            video_device: None,
            audio_device: None,
        },
        video: None,
        audio: None,
        output,
        rotation: None,
        telemetry,
        room: Some(room),
        whiteboard,
    })
}

/// With `output = "room"`: what the session's publisher can send.
pub(super) fn check_publishable(
    input_sec: &Section<'_>,
    video_sec: Option<&Section<'_>>,
    video: Option<&VideoSettings>,
) -> Result<(), PresetError> {
    for (key, allowed) in [
        ("video", "test, camera, none"),
        ("audio", "test, mic, none"),
    ] {
        if let Some((s, node)) = input_sec.string(key)?
            && (s == "screen" || s.starts_with("file:"))
        {
            return Err(invalid(
                &node.at,
                ErrorKind::InvalidValue {
                    key: input_sec.full_key(key),
                    value: s.to_owned(),
                    expected: format!("one of: {allowed} (with output = \"room\")"),
                    suggestion: None,
                },
            ));
        }
    }
    no_devices(
        input_sec,
        "with output = \"room\" the system's default device is published (device choice \
         for rooms is not implemented yet)",
    )?;
    if let Some(v) = video
        && !matches!(v.codec, Codec::Vp8 | Codec::H264)
    {
        let at = video_sec
            .map(|s| at_or(s, "codec"))
            .unwrap_or(input_sec.at.clone());
        return Err(invalid(
            &at,
            ErrorKind::ImpossibleCaps {
                key: "video.codec".to_owned(),
                reason: format!("a room carries vp8 or h264 video, not {}", v.codec.name()),
            },
        ));
    }
    Ok(())
}

/// Check a room preset's `[telemetry]` table: it becomes the session's telemetry (consent and
/// device sampling interval; see `SessionConfig::try_from` in `pipeline`), which reports no
/// screen resolution, so `screen_resolution` is refused.
pub(crate) fn check_telemetry(sec: &Section<'_>) -> Result<(), PresetError> {
    match sec.node("screen_resolution") {
        Some(node) => Err(invalid(
            &node.key_at,
            ErrorKind::ImpossibleCaps {
                key: sec.full_key("screen_resolution"),
                reason: "not reported by a room session's telemetry (it sends the device \
                         fields and the per-peer WebRTC statistics); remove it"
                    .to_owned(),
            },
        )),
        None => Ok(()),
    }
}

/// Refuse `input.video_device` and `input.audio_device`, saying `reason`.
fn no_devices(input_sec: &Section<'_>, reason: &str) -> Result<(), PresetError> {
    for key in ["video_device", "audio_device"] {
        if let Some(node) = input_sec.node(key) {
            return Err(invalid(
                &node.key_at,
                ErrorKind::ImpossibleCaps {
                    key: input_sec.full_key(key),
                    reason: reason.to_owned(),
                },
            ));
        }
    }
    Ok(())
}
