//! The `[rotation]` and `[telemetry]` tables: settings for Streamwire's own elements
//! (`sensorrotation`, `devicetelemetry`, in the `elements/` plugin crate).

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::error::{ErrorKind, PresetError};
use super::schema::{Section, invalid};
use crate::telemetry::Consent;
pub use gststreamwire::orientation::{CameraFacing, Rotation};
use gststreamwire::sensorrotation::source::{
    IIO_DEVICES, SourceError, check_iio_accelerometer, find_iio_accelerometer,
};

/// The `[rotation]` table: inserts `sensorrotation` in the raw video branch.
///
/// ```
/// use streamwire::preset::{Preset, RotationMode, RotationOutput};
///
/// let p = Preset::from_str(
///     "output = \"fakesink\"\n[rotation]\nmode = \"follow-app\"\nrotation = 90\noutput = \"pixels\"\n",
///     "r.toml",
///     &[],
/// )
/// .unwrap();
/// let r = p.rotation.unwrap();
/// assert_eq!(r.mode, RotationMode::FollowApp { rotation: 90 });
/// assert_eq!(r.output, RotationOutput::Pixels);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotationSettings {
    /// `rotation.mode` (with `rotation.rotation` and `rotation.sensor`). Default follow-sensor.
    pub mode: RotationMode,
    /// `rotation.output`. Default metadata.
    pub output: RotationOutput,
    /// `rotation.hysteresis`: degrees past the 45-degree boundary (0..=44). Default: the element's (15).
    pub hysteresis: Option<u32>,
    /// `rotation.hold_ms`: how long a new orientation must persist (0..=10000). Default: the element's (300).
    pub hold_ms: Option<u32>,
    /// `rotation.camera_facing`: which way the camera faces (the element's `camera-facing`: the
    /// rotation rule, a front camera's mirror, the CVO camera bit). Default `external` with
    /// `input.video = "camera"` (a desktop webcam), `back` otherwise (the picture turns with
    /// the device).
    pub camera_facing: CameraFacing,
    /// `rotation.sensor_orientation`: the camera sensor's mounting, clockwise degrees (the
    /// element's `sensor-orientation`; only with `follow-sensor`). Default 0.
    pub sensor_orientation: Rotation,
}

/// How the orientation is decided (`rotation.mode`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RotationMode {
    /// Follow the gravity sensor.
    FollowSensor(SensorSource),
    /// A fixed rotation set by the application (0, 90, 180 or 270; changeable at run time on
    /// the element named `pipeline::names::ROTATION`).
    FollowApp {
        /// Clockwise degrees.
        rotation: u32,
    },
    /// Pass-through (the element is present so an application can switch it on).
    Off,
}

/// Where the accelerometer samples come from (`rotation.sensor`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SensorSource {
    /// `"iio"`: the first Linux IIO accelerometer found under `/sys/bus/iio/devices` when the
    /// pipeline is planned (a room preset: when it is loaded).
    IioAuto,
    /// `"iio:DIR"`: this IIO device directory.
    Iio(PathBuf),
    /// `"replay:PATH"`: a recorded trace (`t_ms x y z` per line), checked to exist.
    Replay(PathBuf),
}

impl SensorSource {
    /// The IIO accelerometer this source reads: `iio:DIR` checked to be one, `iio` looked up
    /// now (the first under `/sys/bus/iio/devices`). A replay source reads none: an error.
    /// The one place a preset's sensor is resolved; the lookup itself is the `sensorrotation`
    /// element's (`gststreamwire::sensorrotation::source`).
    ///
    /// ```
    /// use streamwire::preset::SensorSource;
    /// let e = SensorSource::Iio("/nonexistent/iio:device9".into()).iio_accelerometer().unwrap_err();
    /// assert_eq!(
    ///     e.to_string(),
    ///     "sensor = \"iio:/nonexistent/iio:device9\": /nonexistent/iio:device9 is not an IIO \
    ///      accelerometer (no in_accel_x_raw)"
    /// );
    /// ```
    pub fn iio_accelerometer(&self) -> Result<PathBuf, SourceError> {
        match self {
            SensorSource::IioAuto => find_iio_accelerometer(Path::new(IIO_DEVICES)).map_err(|e| {
                SourceError(format!(
                    "sensor = \"iio\" (the default with mode = \"follow-sensor\"): {e} (use \
                     sensor = \"replay:PATH\", or mode = \"follow-app\")"
                ))
            }),
            SensorSource::Iio(dir) => check_iio_accelerometer(dir)
                .map(|()| dir.clone())
                .map_err(|e| SourceError(format!("sensor = \"iio:{}\": {e}", dir.display()))),
            SensorSource::Replay(path) => Err(SourceError(format!(
                "sensor = \"replay:{}\" reads a trace, not an IIO accelerometer",
                path.display()
            ))),
        }
    }
}

/// What `sensorrotation` produces (`rotation.output`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RotationOutput {
    /// An `image-orientation` tag per change and an orientation meta on each buffer.
    Metadata,
    /// Rotated frames (width and height swap at 90/270).
    Pixels,
}

/// The `[telemetry]` table: inserts `devicetelemetry` after the video encoder.
///
/// ```
/// use streamwire::preset::Preset;
/// use streamwire::telemetry::Consent;
/// use std::time::Duration;
///
/// let p = Preset::from_str(
///     "output = \"fakesink\"\n[telemetry]\nconsent = \"necessary\"\ninterval = \"2s\"\n",
///     "t.toml",
///     &[],
/// )
/// .unwrap();
/// let t = p.telemetry.unwrap();
/// assert_eq!(t.consent, Consent::Necessary);
/// assert_eq!(t.interval, Duration::from_secs(2));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TelemetrySettings {
    /// `telemetry.consent`. Default none.
    pub consent: Consent,
    /// `telemetry.interval` (100 ms ..= 1 h). Default 5 s.
    pub interval: Duration,
    /// `telemetry.screen_resolution` (`WIDTHxHEIGHT`). Default: not reported.
    pub screen_resolution: Option<String>,
}

pub(crate) const ROTATION_KEYS: &[&str] = &[
    "mode",
    "rotation",
    "output",
    "sensor",
    "hysteresis",
    "hold_ms",
    "camera_facing",
    "sensor_orientation",
];
pub(crate) const TELEMETRY_KEYS: &[&str] = &["consent", "interval", "screen_resolution"];

fn bad(
    sec: &Section<'_>,
    key: &str,
    value: impl Into<String>,
    expected: impl Into<String>,
) -> PresetError {
    let at = sec
        .node(key)
        .map(|n| n.at.clone())
        .unwrap_or_else(|| sec.at.clone());
    invalid(
        &at,
        ErrorKind::InvalidValue {
            key: sec.full_key(key),
            value: value.into(),
            expected: expected.into(),
            suggestion: None,
        },
    )
}

/// A quarter turn (`0`, `90`, `180`, `270`) at `key`, or `None` when the key is absent.
fn quarter_turn(sec: &Section<'_>, key: &str) -> Result<Option<u32>, PresetError> {
    match sec.node(key).map(|n| &n.value) {
        Some(super::doc::Value::Integer(r)) if ![0, 90, 180, 270].contains(r) => {
            Err(bad(sec, key, r.to_string(), "one of: 0, 90, 180, 270"))
        }
        _ => Ok(sec.uint(key, 0, 270, false)?.map(|v| v.0)),
    }
}

/// Validate `[rotation]`. Relative replay paths resolve against `base`; `camera` says whether
/// the preset captures a camera (`input.video = "camera"`: `camera_facing` defaults to
/// `external`).
pub(crate) fn rotation(
    sec: &Section<'_>,
    base: &Path,
    camera: bool,
) -> Result<RotationSettings, PresetError> {
    sec.check_keys(ROTATION_KEYS, &[])?;
    let mode_word = match sec.string("mode")? {
        Some(("follow-meta", node)) => {
            return Err(invalid(
                &node.at,
                ErrorKind::InvalidValue {
                    key: sec.full_key("mode"),
                    value: "follow-meta".to_owned(),
                    expected: "one of: follow-sensor, follow-app, off (follow-meta is for \
                               receivers; a capture preset has no incoming orientation meta)"
                        .to_owned(),
                    suggestion: None,
                },
            ));
        }
        Some(_) => sec
            .word("mode", &["follow-sensor", "follow-app", "off"])?
            .map(|(w, _)| w),
        None => None,
    }
    .unwrap_or("follow-sensor");

    let rotation = quarter_turn(sec, "rotation")?;
    if let Some(r) = rotation
        && mode_word != "follow-app"
    {
        return Err(bad(
            sec,
            "rotation",
            r.to_string(),
            format!(
                "no `rotation` with mode = \"{mode_word}\" (it applies to mode = \"follow-app\" only)"
            ),
        ));
    }
    let sensor_orientation = quarter_turn(sec, "sensor_orientation")?;
    if let Some(r) = sensor_orientation
        && mode_word != "follow-sensor"
    {
        return Err(bad(
            sec,
            "sensor_orientation",
            r.to_string(),
            format!(
                "no `sensor_orientation` with mode = \"{mode_word}\" (it applies to mode = \
                 \"follow-sensor\" only)"
            ),
        ));
    }
    let words: Vec<&str> = CameraFacing::ALL.iter().map(|f| f.nick()).collect();
    let camera_facing = match sec.word("camera_facing", &words)? {
        Some((w, _)) => CameraFacing::ALL
            .into_iter()
            .find(|f| f.nick() == w)
            .unwrap_or_default(),
        None if camera => CameraFacing::External,
        None => CameraFacing::Back,
    };
    if camera_facing == CameraFacing::External && mode_word == "follow-sensor" {
        let (value, why) = if sec.node("camera_facing").is_some() {
            ("external", "")
        } else {
            (
                "external",
                " (the default with input.video = \"camera\": a desktop webcam)",
            )
        };
        return Err(invalid(
            &super::validate::at_or(sec, "camera_facing"),
            ErrorKind::InvalidValue {
                key: sec.full_key("camera_facing"),
                value: value.to_owned(),
                expected: format!(
                    "\"front\" or \"back\" with mode = \"follow-sensor\": the device's \
                     rotation does not turn an external camera{why}; for a camera built into \
                     the device say which way it faces, for a webcam use mode = \"follow-app\""
                ),
                suggestion: None,
            },
        ));
    }

    let sensor = match sec.string("sensor")? {
        None => None,
        Some((s, _)) => {
            if mode_word != "follow-sensor" {
                return Err(bad(
                    sec,
                    "sensor",
                    s,
                    format!(
                        "no `sensor` with mode = \"{mode_word}\" (it applies to mode = \"follow-sensor\" only)"
                    ),
                ));
            }
            Some(sensor_source(sec, s, base)?)
        }
    };

    let mode = match mode_word {
        "follow-app" => RotationMode::FollowApp {
            rotation: rotation.unwrap_or(0),
        },
        "off" => RotationMode::Off,
        _ => RotationMode::FollowSensor(sensor.unwrap_or(SensorSource::IioAuto)),
    };
    let output = match sec.word("output", &["metadata", "pixels"])? {
        Some(("pixels", _)) => RotationOutput::Pixels,
        _ => RotationOutput::Metadata,
    };
    Ok(RotationSettings {
        mode,
        output,
        hysteresis: sec.uint("hysteresis", 0, 44, false)?.map(|v| v.0),
        hold_ms: sec.uint("hold_ms", 0, 10_000, false)?.map(|v| v.0),
        camera_facing,
        sensor_orientation: sensor_orientation
            .and_then(Rotation::from_degrees)
            .unwrap_or_default(),
    })
}

fn sensor_source(sec: &Section<'_>, s: &str, base: &Path) -> Result<SensorSource, PresetError> {
    const FORMS: &str = "one of: iio, iio:/sys/bus/iio/devices/iio:deviceN, replay:PATH";
    if s == "iio" {
        return Ok(SensorSource::IioAuto);
    }
    if let Some(dir) = s.strip_prefix("iio:") {
        if dir.is_empty() {
            return Err(bad(
                sec,
                "sensor",
                s,
                "an IIO device directory after `iio:`",
            ));
        }
        return Ok(SensorSource::Iio(PathBuf::from(dir)));
    }
    if let Some(p) = s.strip_prefix("replay:") {
        if p.is_empty() {
            return Err(bad(sec, "sensor", s, "a trace file path after `replay:`"));
        }
        let path = Path::new(p);
        let path = if path.is_relative() {
            base.join(path)
        } else {
            path.to_owned()
        };
        if !path.is_file() {
            return Err(bad(
                sec,
                "sensor",
                s,
                format!(
                    "an existing replay file (`{}` does not exist; relative paths are resolved \
                     against the preset's directory)",
                    path.display()
                ),
            ));
        }
        return Ok(SensorSource::Replay(path));
    }
    Err(bad(sec, "sensor", s, FORMS))
}

/// Validate `[telemetry]`.
pub(crate) fn telemetry(sec: &Section<'_>) -> Result<TelemetrySettings, PresetError> {
    sec.check_keys(TELEMETRY_KEYS, &[])?;
    let consent = match sec.word("consent", &["none", "necessary", "full"])? {
        Some(("necessary", _)) => Consent::Necessary,
        Some(("full", _)) => Consent::Full,
        _ => Consent::None,
    };
    let interval = match sec.string("interval")? {
        None => Duration::from_secs(5),
        Some((s, node)) => {
            let d = super::validate::parse_duration(s, node, &sec.full_key("interval"))?;
            if d < Duration::from_millis(100) || d > Duration::from_secs(3600) {
                return Err(bad(sec, "interval", s, "a duration from 100ms to 1h"));
            }
            d
        }
    };
    let screen_resolution = match sec.string("screen_resolution")? {
        None => None,
        Some((s, _)) => {
            let ok = s.split_once('x').is_some_and(|(w, h)| {
                [w, h]
                    .iter()
                    .all(|n| n.parse::<u32>().is_ok_and(|n| (1..=100_000).contains(&n)))
            });
            if !ok {
                return Err(bad(
                    sec,
                    "screen_resolution",
                    s,
                    "WIDTHxHEIGHT in pixels, e.g. \"1920x1080\"",
                ));
            }
            Some(s.to_owned())
        }
    };
    Ok(TelemetrySettings {
        consent,
        interval,
        screen_resolution,
    })
}
