//! Declarative pipeline presets: TOML files in `pipelines/` that describe a media graph in user terms.
//!
//! A preset is parsed into a located tree, `--set key.path=value` overrides are applied, and the
//! result is validated into a [`Preset`]. Every error names the file, line and column (or the
//! override) and what was expected; see [`PresetError`]. The format is documented in
//! `docs/presets.md`.
//!
//! ```
//! use streamwire::preset::{Preset, Output, VideoSource};
//!
//! let preset = Preset::from_str(
//!     r#"
//! description = "test pattern to a WebM file"
//! output = "file:out.webm"
//! [input]
//! video = "test"
//! audio = "test"
//! [video]
//! codec = "vp8"
//! "#,
//!     "example.toml",
//!     &[],
//! )
//! .unwrap();
//! assert_eq!(preset.input.video, VideoSource::Test);
//! assert!(matches!(preset.output, Output::File { .. }));
//!
//! let err = Preset::from_str("[video]\nwidht = 640\n", "bad.toml", &[]).unwrap_err();
//! assert_eq!(err.line_column(), Some((2, 1)));
//! assert!(err.to_string().contains("did you mean `video.width`"));
//! ```

mod doc;
mod elements;
mod error;
mod room;
mod schema;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use elements::{
    RotationMode, RotationOutput, RotationSettings, SensorSource, TelemetrySettings,
};
pub use error::{ErrorKind, Origin, PresetError};
pub use room::{RoomReceive, RoomRole, RoomSettings, TOKEN_ENV, TokenSource};

use crate::encoder::{Codec, HardwarePolicy};
use error::suggest;
use schema::{Section, invalid};

/// Presets shipped with Streamwire, embedded in the binary: `(name, TOML text)`.
pub const BUNDLED: &[(&str, &str)] = &[
    (
        "test-to-file",
        include_str!("../../pipelines/test-to-file.toml"),
    ),
    (
        "camera-preview",
        include_str!("../../pipelines/camera-preview.toml"),
    ),
    (
        "camera-record",
        include_str!("../../pipelines/camera-record.toml"),
    ),
    (
        "screen-record",
        include_str!("../../pipelines/screen-record.toml"),
    ),
    (
        "rotation-demo",
        include_str!("../../pipelines/rotation-demo.toml"),
    ),
    (
        "publish-test",
        include_str!("../../pipelines/publish-test.toml"),
    ),
    (
        "publish-camera",
        include_str!("../../pipelines/publish-camera.toml"),
    ),
    (
        "subscribe-display",
        include_str!("../../pipelines/subscribe-display.toml"),
    ),
    (
        "subscribe-record",
        include_str!("../../pipelines/subscribe-record.toml"),
    ),
];

/// The source tree's `pipelines/`: relative paths inside bundled presets (replay traces) resolve
/// against it when it exists, otherwise against a copy of [`BUNDLED_DATA`] (see [`bundled_dir`]).
pub const BUNDLED_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/pipelines");

/// Data files bundled presets refer to, embedded in the binary: `(path under pipelines/, text)`.
pub const BUNDLED_DATA: &[(&str, &str)] = &[(
    "data/rotation-demo.txt",
    include_str!("../../pipelines/data/rotation-demo.txt"),
)];

/// The directory bundled presets' relative paths resolve against: the source tree's
/// `pipelines/` when it is there (a build from the repository), otherwise `fallback` after
/// [`BUNDLED_DATA`] has been written under it (an installed binary).
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// let base = streamwire::preset::bundled_dir(dir.path());
/// assert!(base.join("data/rotation-demo.txt").is_file());
/// ```
pub fn bundled_dir(fallback: &Path) -> PathBuf {
    let source = Path::new(BUNDLED_DIR);
    if BUNDLED_DATA.iter().all(|(p, _)| source.join(p).is_file()) {
        return source.to_owned();
    }
    write_bundled_data(fallback);
    fallback.to_owned()
}

/// Write [`BUNDLED_DATA`] under `dir` (files already there with the same text are left alone).
fn write_bundled_data(dir: &Path) {
    for (p, text) in BUNDLED_DATA {
        let path = dir.join(p);
        let unchanged = std::fs::read_to_string(&path).is_ok_and(|t| t == *text);
        let written = unchanged
            || path
                .parent()
                .is_some_and(|d| std::fs::create_dir_all(d).is_ok())
                && std::fs::write(&path, text).is_ok();
        if !written {
            tracing::warn!("cannot write bundled preset data to {}", path.display());
        }
    }
}

/// [`bundled_dir`] with the fallback in the system's temporary directory.
fn bundled_base() -> PathBuf {
    bundled_dir(&std::env::temp_dir().join(concat!(
        "streamwire-",
        env!("CARGO_PKG_VERSION"),
        "-pipelines"
    )))
}

/// A validated preset.
#[derive(Debug, Clone, PartialEq)]
pub struct Preset {
    /// Where it came from (a file path or `bundled:NAME`).
    pub source: String,
    /// One-line description.
    pub description: String,
    /// Stop after this long (clean EOS); `None` runs until EOS or Ctrl-C.
    pub duration: Option<Duration>,
    /// Sources.
    pub input: Input,
    /// Video settings; `None` when there is no video source.
    pub video: Option<VideoSettings>,
    /// Audio settings; `None` when there is no audio source.
    pub audio: Option<AudioSettings>,
    /// Where the media goes.
    pub output: Output,
    /// `[rotation]`: insert `sensorrotation` in the video branch; `None` without the table.
    pub rotation: Option<RotationSettings>,
    /// `[telemetry]`: insert `devicetelemetry` after the video encoder; `None` without the table.
    pub telemetry: Option<TelemetrySettings>,
    /// `[room]`: the preset publishes to (`output = "room"`) or receives from
    /// (`input.video = "room"`) a room and runs through a [`Session`](crate::session::Session),
    /// not a [`Plan`](crate::pipeline::Plan). Then `output` is a placeholder (`Fakesink` for
    /// publishing and recording, `Display` for displaying) and a receiving preset's `input`
    /// sources, `video` and `audio` are `None`: the room's publishers capture and encode.
    pub room: Option<RoomSettings>,
}

/// The `[input]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Input {
    /// `input.video`.
    pub video: VideoSource,
    /// `input.audio`.
    pub audio: AudioSource,
    /// `input.video_device`: which camera (name substring or index); default: the first one.
    pub video_device: Option<DeviceSelector>,
    /// `input.audio_device`: which microphone; default: the system default.
    pub audio_device: Option<DeviceSelector>,
}

/// Video source kinds (`input.video`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VideoSource {
    /// A capture device (`v4l2src`, `avfvideosrc`, ... chosen through the device monitor).
    Camera,
    /// The screen (`ximagesrc`, `avfvideosrc capture-screen=true`, `d3d11screencapturesrc`).
    Screen,
    /// `videotestsrc`.
    Test,
    /// The video stream of a media file (`decodebin`).
    File(PathBuf),
    /// No video.
    None,
}

/// Audio source kinds (`input.audio`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AudioSource {
    /// A microphone (default source, or chosen through the device monitor).
    Mic,
    /// `audiotestsrc` (a 440 Hz tone).
    Test,
    /// The audio stream of a media file.
    File(PathBuf),
    /// No audio.
    None,
}

/// Device selection by index (0-based, in device-monitor order) or by name (case-insensitive substring).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceSelector {
    /// N-th device.
    Index(u32),
    /// First device whose display name contains this (case-insensitive).
    Name(String),
}

/// The `[video]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoSettings {
    /// Width in pixels (even, 16..=7680). Default 1280.
    pub width: u32,
    /// Height in pixels (even, 16..=4320). Default 720.
    pub height: u32,
    /// Frames per second (1..=240). Default 30.
    pub framerate: u32,
    /// Codec. Default vp8.
    pub codec: Codec,
    /// Target bitrate in kbit/s (16..=100000). Default 2000.
    pub bitrate_kbps: u32,
    /// Frames between keyframes (1..=3000). Default: two seconds of frames.
    pub keyframe_interval: u32,
    /// Hardware encoder policy. Default auto.
    pub hardware: HardwarePolicy,
}

/// Audio codecs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudioCodec {
    /// Opus (`opusenc`).
    Opus,
}

/// The `[audio]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioSettings {
    /// Codec. Default opus.
    pub codec: AudioCodec,
    /// Bitrate in kbit/s (6..=510). Default 64.
    pub bitrate_kbps: u32,
    /// Channels (1 or 2). Default 2.
    pub channels: u32,
}

/// Container formats for file output, chosen by extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Container {
    /// `.mp4` (`mp4mux`).
    Mp4,
    /// `.mkv` (`matroskamux`).
    Mkv,
    /// `.webm` (`webmmux`).
    Webm,
}

impl Container {
    /// Muxer element factory name.
    pub fn muxer(self) -> &'static str {
        match self {
            Container::Mp4 => "mp4mux",
            Container::Mkv => "matroskamux",
            Container::Webm => "webmmux",
        }
    }

    /// Video codecs this container carries.
    pub fn video_codecs(self) -> &'static [Codec] {
        match self {
            Container::Mp4 => &[Codec::H264, Codec::Vp9, Codec::Av1],
            Container::Mkv => &Codec::ALL,
            Container::Webm => &[Codec::Vp8, Codec::Vp9, Codec::Av1],
        }
    }

    fn from_path(path: &Path) -> Option<Container> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "mp4" => Some(Container::Mp4),
            "mkv" => Some(Container::Mkv),
            "webm" => Some(Container::Webm),
            _ => None,
        }
    }
}

/// Where the media goes (`output`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Encode and write a file; the container follows the extension.
    File {
        /// File path.
        path: PathBuf,
        /// Container.
        container: Container,
    },
    /// Show the video (and play the audio) without encoding.
    Display,
    /// Encode and discard (for measurements).
    Fakesink,
}

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
const AUDIO_KEYS: &[&str] = &["codec", "bitrate", "channels"];
const VIDEO_SOURCES: &[&str] = &["camera", "screen", "test", "file:PATH", "room", "none"];
const AUDIO_SOURCES: &[&str] = &["mic", "test", "file:PATH", "room", "none"];
const OUTPUTS: &[&str] = &["file:PATH", "display", "fakesink", "room", "record:DIR"];

impl Preset {
    /// Load a preset by file path, or by bundled name when `name_or_path` is not an existing file,
    /// then apply `overrides` (`key.path=value`) and validate.
    ///
    /// ```
    /// let p = streamwire::preset::Preset::load("test-to-file", &["video.codec=vp9".into()]).unwrap();
    /// assert_eq!(p.video.unwrap().codec, streamwire::encoder::Codec::Vp9);
    /// ```
    pub fn load(name_or_path: &str, overrides: &[String]) -> Result<Preset, PresetError> {
        let path = Path::new(name_or_path);
        if path.is_file() {
            let text = std::fs::read_to_string(path).map_err(|source| PresetError::Io {
                path: path.to_owned(),
                source,
            })?;
            return Preset::from_str(&text, name_or_path, overrides);
        }
        let name = name_or_path.strip_suffix(".toml").unwrap_or(name_or_path);
        match BUNDLED.iter().find(|(n, _)| *n == name) {
            Some((n, text)) => Preset::parse(
                text,
                &format!("pipelines/{n}.toml"),
                &bundled_base(),
                overrides,
            )
            .map(|mut p| {
                p.source = format!("bundled:{n}");
                p
            }),
            None => {
                let names: Vec<&'static str> = BUNDLED.iter().map(|(n, _)| *n).collect();
                if path.components().count() > 1 || path.extension().is_some() {
                    return Err(PresetError::Io {
                        path: path.to_owned(),
                        source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
                    });
                }
                Err(PresetError::NotFound {
                    name: name_or_path.to_owned(),
                    suggestion: suggest(name, &names).map(str::to_owned),
                    available: names,
                })
            }
        }
    }

    /// Parse and validate preset text. `path` is used in error positions and to resolve
    /// relative paths inside the preset (replay traces) against its directory.
    #[allow(clippy::should_implement_trait)]
    pub fn from_str(text: &str, path: &str, overrides: &[String]) -> Result<Preset, PresetError> {
        let base = Path::new(path).parent().unwrap_or(Path::new(""));
        Preset::parse(text, path, base, overrides)
    }

    fn parse(
        text: &str,
        path: &str,
        base: &Path,
        overrides: &[String],
    ) -> Result<Preset, PresetError> {
        let mut root = doc::parse(text, path)?;
        for arg in overrides {
            doc::apply_override(&mut root, arg)?;
        }
        let start = Origin::File {
            path: path.to_owned(),
            line: 1,
            column: 1,
            text: text.lines().next().unwrap_or("").to_owned(),
        };
        validate(&root, start, path, base)
    }

    /// One-line description of each bundled preset: `(name, description)`.
    pub fn bundled() -> Vec<(&'static str, Result<String, PresetError>)> {
        BUNDLED
            .iter()
            .map(|(name, text)| {
                let desc = Preset::parse(
                    text,
                    &format!("pipelines/{name}.toml"),
                    &bundled_base(),
                    &[],
                )
                .map(|p| p.description);
                (*name, desc)
            })
            .collect()
    }
}

pub(crate) fn parse_duration(
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

fn validate(
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

    // [input]
    let empty = BTreeMap::new();
    let input_sec = top.table("input")?.unwrap_or(Section {
        prefix: "input",
        table: &empty,
        at: start.clone(),
    });
    input_sec.check_keys(INPUT_KEYS, &[])?;
    let video_word = source_word(&input_sec, "video", VIDEO_SOURCES)?;
    let audio_word = source_word(&input_sec, "audio", AUDIO_SOURCES)?;
    let is_room =
        |w: &Option<(String, Option<PathBuf>)>| w.as_ref().is_some_and(|(w, _)| w == "room");
    if is_room(&video_word) || is_room(&audio_word) {
        return room_input(
            &top,
            &input_sec,
            RoomInput {
                video: video_word.map(|w| w.0),
                audio: audio_word.map(|w| w.0),
                path,
                base,
                description,
                duration,
            },
        );
    }
    let video_src = match video_word {
        None => VideoSource::Test,
        Some((w, p)) => match (w.as_str(), p) {
            ("file", Some(p)) => VideoSource::File(p),
            ("camera", _) => VideoSource::Camera,
            ("screen", _) => VideoSource::Screen,
            ("test", _) => VideoSource::Test,
            _ => VideoSource::None,
        },
    };
    let audio_src = match audio_word {
        None => AudioSource::None,
        Some((w, p)) => match (w.as_str(), p) {
            ("file", Some(p)) => AudioSource::File(p),
            ("mic", _) => AudioSource::Mic,
            ("test", _) => AudioSource::Test,
            _ => AudioSource::None,
        },
    };
    if video_src == VideoSource::None && audio_src == AudioSource::None {
        let at = input_sec
            .node("video")
            .map(|n| n.at.clone())
            .unwrap_or(input_sec.at.clone());
        return Err(invalid(
            &at,
            ErrorKind::ImpossibleCaps {
                key: "input".to_owned(),
                reason: "both input.video and input.audio are \"none\": nothing to run".to_owned(),
            },
        ));
    }
    let input = Input {
        video_device: device(&input_sec, "video_device")?,
        audio_device: device(&input_sec, "audio_device")?,
        video: video_src,
        audio: audio_src,
    };

    // [video]
    let video_sec = top.table("video")?;
    let video = match &video_sec {
        Some(sec) => {
            sec.check_keys(VIDEO_KEYS, &[])?;
            Some(video_settings(sec)?)
        }
        None => Some(video_settings(&Section {
            prefix: "video",
            table: &empty,
            at: start.clone(),
        })?),
    }
    .filter(|_| input.video != VideoSource::None);

    // [audio]
    let audio_sec = top.table("audio")?;
    let audio = match &audio_sec {
        Some(sec) => {
            sec.check_keys(AUDIO_KEYS, &[])?;
            Some(audio_settings(sec)?)
        }
        None => Some(AudioSettings {
            codec: AudioCodec::Opus,
            bitrate_kbps: 64,
            channels: 2,
        }),
    }
    .filter(|_| input.audio != AudioSource::None);

    // output
    let (out, out_node) = top.string("output")?.ok_or_else(|| {
        invalid(
            &start,
            ErrorKind::Missing {
                key: "output".to_owned(),
            },
        )
    })?;
    let publish_room = out == "room";
    let output = if publish_room {
        Output::Fakesink
    } else if out.starts_with("record:") {
        return Err(invalid(
            &out_node.at,
            ErrorKind::InvalidValue {
                key: "output".to_owned(),
                value: out.to_owned(),
                expected: "`record:DIR` only with a room input (input.video = \"room\"); \
                           to record local capture use `file:PATH`"
                    .to_owned(),
                suggestion: None,
            },
        ));
    } else if let Some(p) = out.strip_prefix("file:") {
        let path = PathBuf::from(p);
        let container = Container::from_path(&path).ok_or_else(|| {
            invalid(
                &out_node.at,
                ErrorKind::InvalidValue {
                    key: "output".to_owned(),
                    value: out.to_owned(),
                    expected: "a file name ending in .mp4, .mkv or .webm".to_owned(),
                    suggestion: None,
                },
            )
        })?;
        Output::File { path, container }
    } else {
        match out {
            "display" => Output::Display,
            "fakesink" => Output::Fakesink,
            other => {
                let words = ["display", "fakesink", "room"];
                return Err(invalid(
                    &out_node.at,
                    ErrorKind::InvalidValue {
                        key: "output".to_owned(),
                        value: other.to_owned(),
                        expected: format!("one of: {}", OUTPUTS.join(", ")),
                        suggestion: suggest(other, &words).map(str::to_owned),
                    },
                ));
            }
        }
    };

    // Cross-checks: can the container carry the codec?
    if let (Output::File { container, .. }, Some(v)) = (&output, &video)
        && !container.video_codecs().contains(&v.codec)
    {
        let at = video_sec
            .as_ref()
            .and_then(|s| s.node("codec"))
            .map(|n| n.at.clone())
            .unwrap_or(out_node.at.clone());
        let carried: Vec<&str> = container.video_codecs().iter().map(|c| c.name()).collect();
        return Err(invalid(
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
        ));
    }

    // [rotation] and [telemetry]: both act on the video branch.
    let rotation_sec = top.table("rotation")?;
    let telemetry_sec = top.table("telemetry")?;
    for (sec, what) in [(&rotation_sec, "rotation"), (&telemetry_sec, "telemetry")] {
        if let Some(sec) = sec
            && video.is_none()
        {
            return Err(invalid(
                &sec.at,
                ErrorKind::ImpossibleCaps {
                    key: what.to_owned(),
                    reason: format!(
                        "[{what}] acts on the video branch, but input.video is \"none\""
                    ),
                },
            ));
        }
    }
    let mut rotation = rotation_sec
        .as_ref()
        .map(|s| elements::rotation(s, base))
        .transpose()?;
    let telemetry = telemetry_sec
        .as_ref()
        .map(elements::telemetry)
        .transpose()?;

    // [room]: only with output = "room" here (a room input returned above).
    let room_sec = top.table("room")?;
    let room = match (publish_room, &room_sec) {
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
            check_publishable(&input_sec, &video_sec, &video, [&telemetry_sec])?;
            if let (Some(rsec), Some(r)) = (&rotation_sec, &mut rotation) {
                room::check_rotation(rsec, r)?;
            }
            Some(room::room(sec, base, RoomRole::Publish)?)
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
    })
}

/// What a room input needs besides the tables.
struct RoomInput<'a> {
    video: Option<String>,
    audio: Option<String>,
    path: &'a str,
    base: &'a Path,
    description: String,
    duration: Option<Duration>,
}

fn at_or(sec: &Section<'_>, key: &str) -> Origin {
    sec.node(key)
        .map(|n| n.at.clone())
        .unwrap_or(sec.at.clone())
}

/// Validate a preset whose `input.video` (and maybe `input.audio`) is `"room"`.
fn room_input(
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
    for key in ["video_device", "audio_device"] {
        if let Some(node) = input_sec.node(key) {
            return Err(invalid(
                &node.key_at,
                ErrorKind::ImpossibleCaps {
                    key: input_sec.full_key(key),
                    reason: "a room input captures nothing locally; remove the device".to_owned(),
                },
            ));
        }
    }
    for table in ["video", "audio", "rotation", "telemetry"] {
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
    let start = top.at.clone();
    let (out, out_node) = top.string("output")?.ok_or_else(|| {
        invalid(
            &start,
            ErrorKind::Missing {
                key: "output".to_owned(),
            },
        )
    })?;
    let bad = |expected: String, suggestion: Option<String>| {
        invalid(
            &out_node.at,
            ErrorKind::InvalidValue {
                key: "output".to_owned(),
                value: out.to_owned(),
                expected,
                suggestion,
            },
        )
    };
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
    let room = room::room(
        &room_sec,
        r.base,
        RoomRole::Receive {
            audio,
            output: receive,
        },
    )?;
    Ok(Preset {
        source: r.path.to_owned(),
        description: r.description,
        duration: r.duration,
        input: Input {
            video: VideoSource::None,
            audio: AudioSource::None,
            video_device: None,
            audio_device: None,
        },
        video: None,
        audio: None,
        output,
        rotation: None,
        telemetry: None,
        room: Some(room),
    })
}

/// With `output = "room"`: what the session's publisher can send.
fn check_publishable(
    input_sec: &Section<'_>,
    video_sec: &Option<Section<'_>>,
    video: &Option<VideoSettings>,
    tables: [&Option<Section<'_>>; 1],
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
    for key in ["video_device", "audio_device"] {
        if let Some(node) = input_sec.node(key) {
            return Err(invalid(
                &node.key_at,
                ErrorKind::ImpossibleCaps {
                    key: input_sec.full_key(key),
                    reason: "with output = \"room\" the system's default device is published \
                             (device choice for rooms is not implemented yet)"
                        .to_owned(),
                },
            ));
        }
    }
    if let Some(v) = video
        && !matches!(v.codec, Codec::Vp8 | Codec::H264)
    {
        let at = video_sec
            .as_ref()
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
    if let Some(sec) = tables.into_iter().flatten().next() {
        return Err(invalid(
            &sec.at,
            ErrorKind::ImpossibleCaps {
                key: sec.prefix.to_owned(),
                reason: format!("[{}] is not applied to output = \"room\" yet", sec.prefix),
            },
        ));
    }
    Ok(())
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
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundled_data_written_elsewhere_serves_the_bundled_presets() {
        let dir = tempfile::tempdir().unwrap();
        write_bundled_data(dir.path());
        write_bundled_data(dir.path()); // idempotent
        for (p, text) in BUNDLED_DATA {
            assert_eq!(std::fs::read_to_string(dir.path().join(p)).unwrap(), *text);
        }
        for (name, text) in BUNDLED {
            let p = Preset::parse(text, &format!("pipelines/{name}.toml"), dir.path(), &[])
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            if let Some(RotationSettings {
                mode: RotationMode::FollowSensor(SensorSource::Replay(path)),
                ..
            }) = p.rotation
            {
                assert!(path.starts_with(dir.path()), "{name}: {path:?}");
            }
        }
        // Without the data, the bundled demo reports the missing trace at its line.
        let empty = tempfile::tempdir().unwrap();
        let (_, text) = BUNDLED.iter().find(|(n, _)| *n == "rotation-demo").unwrap();
        let e = Preset::parse(text, "pipelines/rotation-demo.toml", empty.path(), &[]).unwrap_err();
        assert!(e.to_string().contains("does not exist"), "{e}");
        assert!(e.line_column().is_some(), "{e}");
    }
}
