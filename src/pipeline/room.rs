//! Run a room preset: the [`SessionConfig`] (and the publisher's [`PublisherConfig`]) a
//! validated [`Preset`] with a `[room]` table describes.
//!
//! The preset says what it captures ([`VideoInput`], [`AudioInput`]); the publisher says what
//! the engine captures ([`VideoSource`], [`AudioSource`]). The conversions here copy what
//! both sides have and refuse what the session cannot do with an error naming the preset and
//! the key. Validation refuses the same things in a loaded preset at their line, so for a
//! loaded preset only an IIO sensor gone since loading is refused here; the other refusals
//! are for presets built or changed in code.

use crate::preset::{
    AudioInput, ErrorKind, Origin, Preset, PresetError, RoomReceive, RoomRole, RotationMode,
    RotationOutput, RotationSettings, SensorSource, TelemetrySettings, VideoInput,
};
use crate::session::telemetry::TelemetryConfig;
use crate::session::{SessionConfig, Subscribe};
use crate::webrtc::encode::check_sendable;
use crate::webrtc::publisher::{
    AudioSource, PublisherConfig, Rotation, RotationConfig, VideoSource,
};
use crate::webrtc::recording::free_path;
use crate::webrtc::room_recording::RoomRecordingConfig;
use crate::webrtc::subscriber::{AudioOutput, SubscriberConfig, VideoOutput};

/// `preset` cannot be run this way at `key`.
fn refused(preset: &Preset, key: &str, reason: String) -> PresetError {
    PresetError::Invalid {
        origin: Origin::Preset {
            source: preset.source.clone(),
        },
        kind: Box::new(ErrorKind::ImpossibleCaps {
            key: key.to_owned(),
            reason,
        }),
    }
}

/// `value` as the publisher's `i32`, or refused at `key`.
fn int(preset: &Preset, key: &str, value: u32) -> Result<i32, PresetError> {
    i32::try_from(value).map_err(|_| refused(preset, key, format!("{value} is too large")))
}

impl TryFrom<&Preset> for SessionConfig {
    type Error = PresetError;

    /// The session that runs a room preset: the token is resolved now (file or environment),
    /// a publishing preset's capture and `[video]`/`[audio]`/`[rotation]` become the publisher
    /// (see [`PublisherConfig::try_from`]; it receives nobody), a receiving preset's output
    /// becomes the subscriber's, and `[telemetry]` the session's telemetry: `consent` as is,
    /// `interval` as the device sampling interval (batches go to the server every
    /// [`DEFAULT_TELEMETRY_INTERVAL`](crate::session::telemetry::DEFAULT_TELEMETRY_INTERVAL)
    /// and when the session leaves, with the per-peer WebRTC
    /// statistics). `record:DIR` with `[whiteboard] record = true` becomes a room recording
    /// ([`VideoOutput::RecordRoom`]) into `DIR/room.mkv` (`DIR/room-N.mkv` when that exists)
    /// with the board `whiteboard.board`. A `record:DIR` directory is not created here. A
    /// preset without `[room]` is refused.
    ///
    /// ```
    /// use streamwire::preset::Preset;
    /// use streamwire::session::SessionConfig;
    /// use streamwire::webrtc::publisher::VideoSource;
    ///
    /// let p = Preset::load("publish-test", &["room.token=jwt".into()]).unwrap();
    /// let cfg = SessionConfig::try_from(&p).unwrap();
    /// let publish = cfg.publish.unwrap();
    /// assert!(matches!(publish.video, VideoSource::TestPattern(_)));
    /// assert_eq!((publish.width, publish.height), (640, 360));
    ///
    /// let p = Preset::load(
    ///     "subscribe-record",
    ///     &["room.token=jwt".into(), "telemetry.consent=necessary".into(), "telemetry.interval=2s".into()],
    /// )
    /// .unwrap();
    /// let cfg = SessionConfig::try_from(&p).unwrap();
    /// assert_eq!(cfg.telemetry.consent, streamwire::telemetry::Consent::Necessary);
    /// assert_eq!(cfg.telemetry.sample_interval, std::time::Duration::from_secs(2));
    ///
    /// let p = Preset::load(
    ///     "subscribe-record",
    ///     &["room.token=jwt".into(), "whiteboard.record=true".into()],
    /// )
    /// .unwrap();
    /// let cfg = SessionConfig::try_from(&p).unwrap();
    /// let streamwire::webrtc::subscriber::VideoOutput::RecordRoom(rec) = cfg.output.video else {
    ///     panic!("not a room recording");
    /// };
    /// assert_eq!(rec.whiteboard.as_deref(), Some("main"));
    /// assert!(rec.path.ends_with("room.mkv"));
    ///
    /// let local = Preset::load("test-to-file", &[]).unwrap();
    /// let Err(e) = SessionConfig::try_from(&local) else { panic!("a local preset converted") };
    /// assert_eq!(e.to_string(), "bundled:test-to-file: impossible settings at `room`: \
    ///     the preset has no [room] table: run it with pipeline::Plan");
    /// ```
    fn try_from(preset: &Preset) -> Result<Self, Self::Error> {
        let Some(room) = &preset.room else {
            return Err(refused(
                preset,
                "room",
                "the preset has no [room] table: run it with pipeline::Plan".to_owned(),
            ));
        };
        let token = room.token.resolve()?;
        let mut cfg = SessionConfig::new(&room.server, &room.room, &token);
        cfg.ice_servers = room.ice_servers.clone();
        cfg.local_addresses = room.ice_addresses.clone();
        if let Some(t) = &preset.telemetry {
            cfg.telemetry = telemetry_config(preset, t)?;
        }
        match &room.role {
            RoomRole::Publish => {
                cfg.publish = Some(PublisherConfig::try_from(preset)?);
                cfg.subscribe = Subscribe::Users(Vec::new());
            }
            RoomRole::Receive { audio, output } => {
                let board = preset
                    .whiteboard
                    .as_ref()
                    .filter(|w| w.record)
                    .map(|w| w.board.clone());
                cfg.output = SubscriberConfig {
                    video: match output {
                        RoomReceive::Display => VideoOutput::Display,
                        RoomReceive::Record(dir) if board.is_some() => {
                            VideoOutput::RecordRoom(RoomRecordingConfig {
                                whiteboard: board,
                                ..RoomRecordingConfig::new(free_path(dir, "room"))
                            })
                        }
                        RoomReceive::Record(dir) => VideoOutput::Record(dir.clone()),
                        RoomReceive::Discard => VideoOutput::Discard,
                    },
                    audio: match output {
                        RoomReceive::Display if *audio => AudioOutput::Play { echo_probe: None },
                        _ => AudioOutput::Discard,
                    },
                    ..SubscriberConfig::default()
                };
            }
        }
        Ok(cfg)
    }
}

impl TryFrom<&Preset> for PublisherConfig {
    type Error = PresetError;

    /// The publisher for a preset's capture: `input.video` camera or test pattern,
    /// `input.audio` microphone or test tone, `[video]` size, rate, codec, bitrate (start and
    /// ceiling) and keyframe interval, `[audio]` bitrate, `[rotation]` as the rotation
    /// metadata mode with its camera (`camera_facing`, `sensor_orientation`). Refused, naming
    /// the key: screen and file inputs, a codec the WebRTC path cannot send, pixel rotation
    /// and the rotation filter settings (the publisher sends the orientation as metadata with
    /// the element's defaults), an IIO sensor that is not there.
    ///
    /// ```
    /// use streamwire::encoder::Codec;
    /// use streamwire::preset::Preset;
    /// use streamwire::webrtc::publisher::PublisherConfig;
    ///
    /// let mut p = Preset::load("publish-test", &[]).unwrap();
    /// assert!(PublisherConfig::try_from(&p).is_ok());
    /// p.video.as_mut().unwrap().codec = Codec::Vp9;
    /// let e = PublisherConfig::try_from(&p).unwrap_err();
    /// assert_eq!(e.to_string(), "bundled:publish-test: impossible settings at `video.codec`: \
    ///     the WebRTC publisher cannot send vp9 video (a room carries vp8 or h264)");
    /// ```
    fn try_from(preset: &Preset) -> Result<Self, Self::Error> {
        let video = match (&preset.input.video, &preset.video) {
            (_, None) | (VideoInput::None, _) => VideoSource::None,
            (VideoInput::Camera, Some(_)) => VideoSource::Camera,
            (VideoInput::Test, Some(_)) => VideoSource::TestPattern("smpte".into()),
            (other @ (VideoInput::Screen | VideoInput::File(_)), Some(_)) => {
                return Err(refused(
                    preset,
                    "input.video",
                    format!(
                        "a room publisher captures the camera or a test pattern, not {other:?}"
                    ),
                ));
            }
        };
        let audio = match (&preset.input.audio, &preset.audio) {
            (_, None) | (AudioInput::None, _) => AudioSource::None,
            (AudioInput::Mic, Some(_)) => AudioSource::Microphone { echo_probe: None },
            (AudioInput::Test, Some(_)) => AudioSource::TestTone,
            (other @ AudioInput::File(_), Some(_)) => {
                return Err(refused(
                    preset,
                    "input.audio",
                    format!(
                        "a room publisher captures the microphone or a test tone, not {other:?}"
                    ),
                ));
            }
        };
        let mut p = PublisherConfig {
            video,
            audio,
            ..PublisherConfig::default()
        };
        if let Some(v) = &preset.video {
            check_sendable(v.codec).map_err(|_| {
                refused(
                    preset,
                    "video.codec",
                    format!(
                        "the WebRTC publisher cannot send {} video (a room carries vp8 or h264)",
                        v.codec.name()
                    ),
                )
            })?;
            p.codec = v.codec;
            p.width = int(preset, "video.width", v.width)?;
            p.height = int(preset, "video.height", v.height)?;
            p.fps = int(preset, "video.framerate", v.framerate)?;
            p.start_kbps = v.bitrate_kbps;
            p.ceiling_kbps = v.bitrate_kbps;
            p.floor_kbps = p.floor_kbps.min(v.bitrate_kbps);
            p.keyframe_interval = v.keyframe_interval;
        }
        if let Some(a) = &preset.audio {
            let bps = a.bitrate_kbps.saturating_mul(1000);
            p.audio_bps = int(preset, "audio.bitrate", bps)?;
            p.audio_processing = a.processing;
        }
        p.rotation = preset
            .rotation
            .as_ref()
            .map(|r| rotation_config(preset, r))
            .transpose()?;
        if let Some(r) = &preset.rotation {
            p.camera_facing = r.camera_facing;
            p.sensor_orientation = r.sensor_orientation;
        }
        Ok(p)
    }
}

/// The session's telemetry for `[telemetry]`: the consent, and the interval as the device
/// sampling interval. A screen resolution is refused (the session reports none).
fn telemetry_config(
    preset: &Preset,
    t: &TelemetrySettings,
) -> Result<TelemetryConfig, PresetError> {
    if t.screen_resolution.is_some() {
        return Err(refused(
            preset,
            "telemetry.screen_resolution",
            "not reported by a room session's telemetry".to_owned(),
        ));
    }
    Ok(TelemetryConfig {
        consent: t.consent,
        sample_interval: t.interval,
        ..TelemetryConfig::default()
    })
}

/// The publisher's rotation metadata mode for `[rotation]`: `follow-app` is a fixed angle,
/// `off` a fixed 0 degrees (the element is there, so the application can turn it later with
/// [`Publisher::set_rotation`](crate::webrtc::publisher::Publisher::set_rotation)),
/// `follow-sensor` the replay file or the IIO accelerometer.
fn rotation_config(preset: &Preset, r: &RotationSettings) -> Result<RotationConfig, PresetError> {
    if r.output == RotationOutput::Pixels {
        return Err(refused(
            preset,
            "rotation.output",
            "a room sends the orientation as metadata (the CVO RTP header extension), not \
             rotated pixels"
                .to_owned(),
        ));
    }
    for (key, set) in [
        ("rotation.hysteresis", r.hysteresis.is_some()),
        ("rotation.hold_ms", r.hold_ms.is_some()),
    ] {
        if set {
            return Err(refused(
                preset,
                key,
                "not applied with output = \"room\" (the room publisher uses the element's \
                 default)"
                    .to_owned(),
            ));
        }
    }
    Ok(match &r.mode {
        RotationMode::FollowApp { rotation } => {
            RotationConfig::Fixed(Rotation::from_degrees(*rotation).ok_or_else(|| {
                refused(
                    preset,
                    "rotation.rotation",
                    format!("{rotation} is not a multiple of 90 degrees"),
                )
            })?)
        }
        RotationMode::Off => RotationConfig::Fixed(Rotation::R0),
        RotationMode::FollowSensor(SensorSource::Replay(p)) => RotationConfig::Sensor {
            replay_file: Some(p.to_string_lossy().into_owned()),
            iio_device: None,
        },
        RotationMode::FollowSensor(src) => {
            let dir = src
                .iio_accelerometer()
                .map_err(|e| refused(preset, "rotation.sensor", e.to_string()))?;
            RotationConfig::Sensor {
                replay_file: None,
                iio_device: Some(dir.to_string_lossy().into_owned()),
            }
        }
    })
}
