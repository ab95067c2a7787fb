//! Plan a local preset: the gst-launch description of its pipeline and the choices made
//! (devices, rotation sensor, video encoder).

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::devices::{self, DeviceClass, quote};
use super::{PipelineError, names};
use crate::encoder::{self, EncoderConfig, FactorySource, Selection, SystemRegistry};
use crate::preset::{
    AudioInput, AudioSettings, Output, Preset, RotationMode, RotationOutput, RotationSettings,
    SensorSource, TelemetrySettings, VideoInput, VideoSettings,
};
use crate::webrtc::publisher::{CameraFacing, Rotation};

/// A pipeline ready to start: its description and the choices made.
#[derive(Debug, Clone)]
pub struct Plan {
    /// gst-launch description, exactly what [`Plan::start`] builds.
    pub description: String,
    /// The video encoder choice, when the preset encodes video.
    pub video_encoder: Option<Selection>,
    /// Stop after this long (from the preset's `duration`).
    pub duration: Option<Duration>,
    /// Notes about choices made (e.g. default devices used).
    pub notes: Vec<String>,
    /// Whether the pipeline shows video in a window.
    pub(super) needs_display: bool,
}

/// `sensorrotation ...` for a preset's `[rotation]` table, plus `videoflip video-direction=auto`
/// after it when the pictures stay local (`local`) and the orientation travels as metadata.
fn rotation_fragment(r: &RotationSettings, local: bool) -> Result<String, PipelineError> {
    let mut s = format!("sensorrotation name={}", names::ROTATION);
    match &r.mode {
        RotationMode::FollowSensor(src) => {
            s.push_str(" mode=follow-sensor");
            match src {
                SensorSource::Replay(p) => {
                    s.push_str(&format!(" replay-file={}", quote(&p.to_string_lossy())));
                }
                SensorSource::Iio(_) | SensorSource::IioAuto => {
                    let dir = src.iio_accelerometer().map_err(PipelineError::Sensor)?;
                    s.push_str(&format!(" iio-device={}", quote(&dir.to_string_lossy())));
                }
            }
        }
        RotationMode::FollowApp { rotation } => {
            s.push_str(&format!(" mode=follow-app rotation={rotation}"));
        }
        RotationMode::Off => s.push_str(" mode=off"),
    }
    if r.output == RotationOutput::Pixels {
        s.push_str(" output=pixels");
    }
    if let Some(h) = r.hysteresis {
        s.push_str(&format!(" hysteresis={h}"));
    }
    if let Some(h) = r.hold_ms {
        s.push_str(&format!(" hold-time={h}"));
    }
    // The element's defaults (back, 0) are left out.
    if r.camera_facing != CameraFacing::Back {
        s.push_str(&format!(" camera-facing={}", r.camera_facing.nick()));
    }
    if r.sensor_orientation != Rotation::R0 {
        s.push_str(&format!(" sensor-orientation={}", r.sensor_orientation));
    }
    if local && r.output == RotationOutput::Metadata {
        s.push_str(" ! videoflip video-direction=auto");
    }
    Ok(s)
}

fn telemetry_fragment(t: &TelemetrySettings) -> String {
    let mut s = format!(
        "devicetelemetry name={} consent={} interval={}",
        names::TELEMETRY,
        t.consent.as_str(),
        t.interval.as_millis()
    );
    if let Some(res) = &t.screen_resolution {
        s.push_str(&format!(" screen-resolution={}", quote(res)));
    }
    s
}

fn first_installed(list: &[&'static str]) -> Option<&'static str> {
    list.iter()
        .copied()
        .find(|f| gst::ElementFactory::find(f).is_some())
}

const CAMERA_DEFAULTS: &[&str] = &[
    "v4l2src",
    "avfvideosrc",
    "mfvideosrc",
    "ksvideosrc",
    "ahcsrc",
];
const SCREEN_SOURCES: &[&str] = &[
    "ximagesrc",
    "avfvideosrc",
    "d3d11screencapturesrc",
    "dx9screencapsrc",
    "gdiscreencapsrc",
];

fn screen_fragment(f: &str) -> String {
    match f {
        "ximagesrc" => "ximagesrc use-damage=false".to_owned(),
        "avfvideosrc" => "avfvideosrc capture-screen=true".to_owned(),
        other => other.to_owned(),
    }
}

impl Plan {
    /// Plan with the real GStreamer registry.
    pub fn new(preset: &Preset) -> Result<Plan, PipelineError> {
        Plan::with_registry(preset, &SystemRegistry::new())
    }

    /// Plan choosing the encoder from `registry`.
    pub fn with_registry(
        preset: &Preset,
        registry: &dyn FactorySource,
    ) -> Result<Plan, PipelineError> {
        let inputs = [
            match &preset.input.video {
                VideoInput::File(p) => Some(p),
                _ => None,
            },
            match &preset.input.audio {
                AudioInput::File(p) => Some(p),
                _ => None,
            },
        ];
        if let Some(p) = inputs.into_iter().flatten().find(|p| !p.exists()) {
            return Err(PipelineError::MissingInput(p.clone()));
        }
        let encode = !matches!(preset.output, Output::Display);
        let mut b = Branches::default();
        let mut video_encoder = None;
        if let Some(v) = preset
            .video
            .as_ref()
            .filter(|_| preset.input.video != VideoInput::None)
        {
            video_encoder = b.video(preset, v, encode, registry)?;
        }
        if let Some(a) = preset
            .audio
            .as_ref()
            .filter(|_| preset.input.audio != AudioInput::None)
        {
            b.audio(preset, a, encode)?;
        }
        if let Output::File { path, container } = &preset.output {
            b.branches.insert(
                0,
                format!(
                    "{} name={} ! filesink location={}",
                    container.muxer(),
                    names::MUXER,
                    quote(&path.to_string_lossy())
                ),
            );
        }
        Ok(Plan {
            description: b.branches.join("  "),
            video_encoder,
            duration: preset.duration,
            notes: b.notes,
            needs_display: !encode && preset.video.is_some(),
        })
    }
}

/// The description being built: its branches in order, the file decoders they share, notes.
#[derive(Default)]
struct Branches {
    branches: Vec<String>,
    /// One `decodebin` per input file: `(path, element name)`.
    decoders: Vec<(PathBuf, String)>,
    notes: Vec<String>,
}

impl Branches {
    /// A reference to the decoder of file `p`, adding its `filesrc ! decodebin` branch the
    /// first time (video and audio from one file share it).
    fn decoded(&mut self, p: &Path) -> String {
        if let Some((_, name)) = self.decoders.iter().find(|(q, _)| q == p) {
            return format!("{name}. ! queue");
        }
        let name = format!("dec{}", self.decoders.len());
        self.branches.push(format!(
            "filesrc location={} ! decodebin name={name}",
            quote(&p.to_string_lossy())
        ));
        self.decoders.push((p.to_owned(), name.clone()));
        format!("{name}. ! queue")
    }

    /// The video source element(s) for `input.video`.
    fn video_source(&mut self, preset: &Preset) -> Result<String, PipelineError> {
        Ok(match &preset.input.video {
            VideoInput::Test => "videotestsrc is-live=true pattern=smpte".to_owned(),
            VideoInput::Camera => {
                match devices::resolve(DeviceClass::Camera, preset.input.video_device.as_ref())
                    .map_err(PipelineError::Device)?
                {
                    Some(s) => s,
                    None => {
                        let f =
                            first_installed(CAMERA_DEFAULTS).ok_or(PipelineError::NoElement {
                                what: "camera capture",
                                searched: CAMERA_DEFAULTS.to_vec(),
                            })?;
                        self.notes.push(format!(
                            "the device monitor lists no camera; using {f}'s default device"
                        ));
                        f.to_owned()
                    }
                }
            }
            VideoInput::Screen => {
                let f = first_installed(SCREEN_SOURCES).ok_or(PipelineError::NoElement {
                    what: "screen capture",
                    searched: SCREEN_SOURCES.to_vec(),
                })?;
                screen_fragment(f)
            }
            VideoInput::File(p) => self.decoded(p),
            VideoInput::None => String::new(), // the caller plans no video branch then
        })
    }

    /// Add the video branch; returns the encoder chosen when it encodes.
    fn video(
        &mut self,
        preset: &Preset,
        v: &VideoSettings,
        encode: bool,
        registry: &dyn FactorySource,
    ) -> Result<Option<Selection>, PipelineError> {
        let src = self.video_source(preset)?;
        // With pixel rotation the frame size changes mid-stream and videoconvert fixates
        // the caps again; without pinned colorimetry it picks bt601 for some sizes and bt709
        // for others, a change muxers refuse ("Caps changes are not supported by Matroska").
        let pin = if preset
            .rotation
            .as_ref()
            .is_some_and(|r| r.output == RotationOutput::Pixels)
        {
            ",colorimetry=bt709,chroma-site=mpeg2"
        } else {
            ""
        };
        let mut raw = format!(
            "{src} ! videoconvert ! videoscale ! videorate ! video/x-raw,width={},height={},framerate={}/1{pin}",
            v.width, v.height, v.framerate
        );
        // Processing slot: rotation acts on raw frames, before the encoder. Local outputs
        // (file, display) get upright pictures through videoflip in metadata mode; the
        // telemetry element goes after the encoder (below) to measure the encoded stream,
        // or here when nothing is encoded.
        if let Some(r) = &preset.rotation {
            let local = matches!(preset.output, Output::File { .. } | Output::Display);
            raw = format!("{raw} ! {}", rotation_fragment(r, local)?);
        }
        if let (false, Some(t)) = (encode, &preset.telemetry) {
            raw = format!("{raw} ! {}", telemetry_fragment(t));
        }
        let raw = format!("{raw} ! identity name={}", names::VIDEO_RAW);
        if !encode {
            self.branches
                .push(format!("{raw} ! autovideosink name=vsink"));
            return Ok(None);
        }
        let selection = encoder::select(v.codec, v.hardware, registry)?;
        let cfg = EncoderConfig {
            width: v.width,
            height: v.height,
            fps: v.framerate,
            bitrate_kbps: v.bitrate_kbps,
            keyframe_interval: v.keyframe_interval,
        };
        let props: String = selection
            .launch_properties(&cfg)
            .iter()
            .map(|(k, val)| format!(" {k}={}", quote(val)))
            .collect();
        let mut enc = format!(
            "{raw} ! queue ! {} name={}{props}",
            selection.factory,
            names::VIDEO_ENCODER
        );
        if let Some(t) = &preset.telemetry {
            enc.push_str(&format!(" ! {}", telemetry_fragment(t)));
        }
        let sink = match &preset.output {
            Output::File { .. } => {
                if let Some(p) = v.codec.parser() {
                    enc.push_str(&format!(" ! {p}"));
                }
                format!("queue ! {}.", names::MUXER)
            }
            _ => "fakesink name=vsink sync=false".to_owned(),
        };
        self.branches.push(format!("{enc} ! {sink}"));
        Ok(Some(selection))
    }

    /// Add the audio branch.
    fn audio(
        &mut self,
        preset: &Preset,
        a: &AudioSettings,
        encode: bool,
    ) -> Result<(), PipelineError> {
        let src = match &preset.input.audio {
            AudioInput::Test => {
                "audiotestsrc is-live=true wave=sine freq=440 volume=0.2".to_owned()
            }
            AudioInput::Mic => {
                match devices::resolve(DeviceClass::Microphone, preset.input.audio_device.as_ref())
                    .map_err(PipelineError::Device)?
                {
                    Some(s) if preset.input.audio_device.is_some() => s,
                    _ => "autoaudiosrc".to_owned(),
                }
            }
            AudioInput::File(p) => self.decoded(p),
            AudioInput::None => String::new(), // the caller plans no audio branch then
        };
        let raw = format!(
            "{src} ! audioconvert ! audioresample ! audio/x-raw,rate=48000,channels={}",
            a.channels
        );
        let branch = if encode {
            let enc = format!(
                "{raw} ! queue ! opusenc name={} bitrate={}",
                names::AUDIO_ENCODER,
                a.bitrate_kbps * 1000
            );
            match &preset.output {
                Output::File { .. } => format!("{enc} ! queue ! {}.", names::MUXER),
                _ => format!("{enc} ! fakesink name=asink sync=false"),
            }
        } else {
            format!("{raw} ! autoaudiosink name=asink")
        };
        self.branches.push(branch);
        Ok(())
    }
}
