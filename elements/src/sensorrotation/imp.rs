// SPDX-License-Identifier: MIT OR Apache-2.0
//! `sensorrotation` subclass implementation.

use parking_lot::Mutex;
use std::path::PathBuf;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Instant;

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::prelude::*;
use gst_base::subclass::prelude::*;
use gst_video::subclass::prelude::*;

use super::settings::{
    DEFAULT_HOLD_MS, DEFAULT_HYSTERESIS, DEFAULT_IIO_POLL_MS, MAX_HOLD_MS, MAX_IIO_POLL_MS,
    MIN_IIO_POLL_MS, Settings,
};
use super::source::{AccelSource, AppQueue, AppSource, IioSource, ReplaySource, Timeline};
use super::{Angle, Mode, Output, pixels};
use crate::meta;
use crate::orientation::{
    CameraFacing, FilterConfig, MAX_HYSTERESIS_DEG, Orientation, OrientationFilter, Rotation,
    Sample,
};

pub(crate) static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "sensorrotation",
        gst::DebugColorFlags::empty(),
        Some("Streamwire sensor-driven picture rotation"),
    )
});

struct State {
    source: Option<Box<dyn AccelSource>>,
    filter: OrientationFilter,
    /// Orientation last signalled downstream (tag or pixel rotation); `None` before the first.
    sent: Option<Orientation>,
    /// Orientation of the buffer being processed.
    current: Orientation,
    /// Camera of the buffer being processed (meta, CVO `C` bit).
    camera: Option<CameraFacing>,
    /// Upstream stream tags with `image-orientation` removed.
    upstream_tags: Option<gst::TagList>,
    /// Last stream time seen, for buffers without a timestamp.
    last_stream_ms: u64,
}

impl Default for State {
    fn default() -> Self {
        State {
            source: None,
            filter: OrientationFilter::new(FilterConfig::default()),
            sent: None,
            current: Orientation::default(),
            camera: None,
            upstream_tags: None,
            last_stream_ms: 0,
        }
    }
}

/// Orientation packed into an atomic: quarter turns in bits 0-1, flip in bit 2.
fn pack(o: Orientation) -> u32 {
    o.rotation.quarter_turns() | (u32::from(o.flip) << 2)
}

fn unpack(v: u32) -> Orientation {
    Orientation {
        rotation: Rotation::from_quarter_turns(v & 0b11),
        flip: v & 0b100 != 0,
    }
}

pub struct SensorRotation {
    settings: Mutex<Settings>,
    state: Mutex<State>,
    app_queue: AppQueue,
    /// Orientation applied to the pixels and used for the caps (pixel output only), packed.
    pixel: AtomicU32,
    /// Between `start` and `stop`: NULL/READY-only properties are refused.
    started: AtomicBool,
    epoch: Instant,
}

impl Default for SensorRotation {
    fn default() -> Self {
        SensorRotation {
            settings: Mutex::default(),
            state: Mutex::default(),
            app_queue: AppQueue::default(),
            pixel: AtomicU32::new(0),
            started: AtomicBool::new(false),
            epoch: Instant::now(),
        }
    }
}

impl SensorRotation {
    fn monotonic_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn pixel_orientation(&self) -> Orientation {
        unpack(self.pixel.load(Ordering::SeqCst))
    }

    /// Sets passthrough / in-place according to mode, output and the pixel orientation.
    fn configure_transform(&self, settings: &Settings) {
        let obj = self.obj();
        match (settings.mode, settings.output) {
            (Mode::Off, _) => {
                obj.set_passthrough(true);
            }
            (_, Output::Metadata) => {
                obj.set_in_place(true);
                obj.set_passthrough(false);
            }
            (_, Output::Pixels) => {
                obj.set_in_place(false);
                obj.set_passthrough(self.pixel_orientation() == Orientation::default());
            }
        }
    }

    fn tag_event(o: Orientation, upstream: Option<&gst::TagList>) -> gst::Event {
        let mut tags = upstream.cloned().unwrap_or_default();
        tags.make_mut()
            .add::<gst::tags::ImageOrientation>(&o.tag_value(), gst::TagMergeMode::Replace);
        gst::event::Tag::new(tags)
    }

    /// Stream time of `buf` in milliseconds: a replayed trace follows the position in the
    /// stream, so after a seek it is evaluated at the new position.
    fn stream_ms(&self, state: &mut State, buf: &gst::BufferRef) -> u64 {
        let segment = self.obj().segment();
        let st = segment
            .downcast_ref::<gst::ClockTime>()
            .and_then(|seg| buf.pts().and_then(|pts| seg.to_stream_time(pts)));
        if let Some(st) = st {
            state.last_stream_ms = st.mseconds();
        }
        state.last_stream_ms
    }

    fn build_source(&self, settings: &Settings) -> Result<Box<dyn AccelSource>, gst::ErrorMessage> {
        if let Some(path) = &settings.replay_file {
            return ReplaySource::open(&PathBuf::from(path))
                .map(|s| Box::new(s) as Box<dyn AccelSource>)
                .map_err(|e| gst::error_msg!(gst::ResourceError::Read, ("{}", e)));
        }
        if let Some(dir) = &settings.iio_device {
            return IioSource::open(&PathBuf::from(dir), u64::from(settings.iio_poll_ms))
                .map(|s| Box::new(s) as Box<dyn AccelSource>)
                .map_err(|e| gst::error_msg!(gst::ResourceError::OpenRead, ("{}", e)));
        }
        Ok(Box::new(AppSource(self.app_queue.clone())))
    }

    fn push_sample(&self, x: f64, y: f64, z: f64) {
        self.app_queue.push(Sample {
            t_ms: self.monotonic_ms(),
            x,
            y,
            z,
        });
    }

    /// Feeds the samples up to `now` into the filter; a source that starts failing is
    /// returned to be posted as a warning (without the state lock held).
    fn drain_source(state: &mut State, now: u64) -> Option<String> {
        let State { source, filter, .. } = state;
        let src = source.as_mut()?;
        src.drain(now, &mut |s| filter.observe(s.t_ms, s.x, s.y, s.z))
            .err()
            .map(|e| format!("{e} ({})", src.describe()))
    }

    fn post_sensor_warning(&self, problem: &str) {
        gst::element_imp_warning!(
            self,
            gst::ResourceError::Read,
            ("Accelerometer read failed, keeping the last orientation: {problem}")
        );
    }

    /// Whether a NULL/READY-only property must be refused now (with a warning).
    fn refuse_while_running(&self, name: &str) -> bool {
        if !self.started.load(Ordering::SeqCst) {
            return false;
        }
        gst::warning!(
            CAT,
            imp = self,
            "Changing the `{name}` property is only supported in the NULL and READY states; \
             ignored"
        );
        true
    }
}

#[glib::object_subclass]
impl ObjectSubclass for SensorRotation {
    const NAME: &'static str = "GstSensorRotation";
    type Type = super::SensorRotation;
    type ParentType = gst_video::VideoFilter;
}

impl ObjectImpl for SensorRotation {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            vec![
                glib::ParamSpecEnum::builder_with_default("mode", Mode::FollowSensor)
                    .nick("Mode")
                    .blurb("How the orientation is decided")
                    .mutable_playing()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("rotation", Angle::R0)
                    .nick("Rotation")
                    .blurb("Clockwise rotation of the picture in follow-app mode")
                    .mutable_playing()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("camera-facing", CameraFacing::Back)
                    .nick("Camera facing")
                    .blurb(
                        "Which way the camera faces: selects the rotation rule, mirrors a \
                         front camera's picture and sets the CVO camera bit",
                    )
                    .mutable_playing()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("sensor-orientation", Angle::R0)
                    .nick("Sensor orientation")
                    .blurb(
                        "Clockwise rotation that makes the camera's image upright with the \
                         device in its natural orientation (Android's SENSOR_ORIENTATION)",
                    )
                    .mutable_playing()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("output", Output::Metadata)
                    .nick("Output")
                    .blurb("Signal the orientation downstream, or rotate the pixels here")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecDouble::builder("hysteresis")
                    .nick("Hysteresis")
                    .blurb(
                        "Degrees the device must turn past the 45-degree boundary before the \
                         orientation changes",
                    )
                    .minimum(0.0)
                    .maximum(MAX_HYSTERESIS_DEG)
                    .default_value(DEFAULT_HYSTERESIS)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("hold-time")
                    .nick("Hold time")
                    .blurb("Milliseconds a new orientation must persist before it is adopted")
                    .maximum(MAX_HOLD_MS)
                    .default_value(DEFAULT_HOLD_MS)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecString::builder("replay-file")
                    .nick("Replay file")
                    .blurb(
                        "Accelerometer trace to replay, one `t_ms x y z` sample per line \
                         (t_ms: stream time in milliseconds); takes precedence over iio-device",
                    )
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("iio-device")
                    .nick("IIO device")
                    .blurb(
                        "Linux IIO accelerometer directory, e.g. \
                         /sys/bus/iio/devices/iio:device0; unset: samples come from push-sample",
                    )
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("iio-poll-interval")
                    .nick("IIO poll interval")
                    .blurb("Milliseconds between reads of the IIO accelerometer")
                    .minimum(MIN_IIO_POLL_MS)
                    .maximum(MAX_IIO_POLL_MS)
                    .default_value(DEFAULT_IIO_POLL_MS)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("orientation")
                    .nick("Orientation")
                    .blurb("Clockwise rotation currently signalled or applied, in degrees")
                    .maximum(270)
                    .read_only()
                    .build(),
            ]
        });
        PROPERTIES.as_ref()
    }

    fn signals() -> &'static [glib::subclass::Signal] {
        static SIGNALS: LazyLock<Vec<glib::subclass::Signal>> = LazyLock::new(|| {
            vec![
                // push-sample(x, y, z): one accelerometer reading in device axes.
                glib::subclass::Signal::builder("push-sample")
                    .param_types([f64::static_type(), f64::static_type(), f64::static_type()])
                    .action()
                    .class_handler(|args| {
                        let obj = args[0].get::<super::SensorRotation>().ok()?;
                        let x = args[1].get::<f64>().ok()?;
                        let y = args[2].get::<f64>().ok()?;
                        let z = args[3].get::<f64>().ok()?;
                        obj.imp().push_sample(x, y, z);
                        None
                    })
                    .build(),
            ]
        });
        SIGNALS.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let name = pspec.name();
        if matches!(
            name,
            "output" | "replay-file" | "iio-device" | "iio-poll-interval"
        ) && self.refuse_while_running(name)
        {
            return;
        }
        let mut settings = self.settings.lock();
        match name {
            "mode" => {
                settings.mode = value.get().unwrap_or_default();
                let s = settings.clone();
                drop(settings);
                self.state.lock().sent = None;
                if s.output == Output::Pixels
                    && s.mode == Mode::Off
                    && self.pixel.swap(0, Ordering::SeqCst) != 0
                {
                    // Back to the upstream geometry.
                    self.obj().reconfigure_src();
                }
                self.configure_transform(&s);
                return;
            }
            "rotation" => settings.rotation = value.get().unwrap_or_default(),
            "camera-facing" => settings.camera_facing = value.get().unwrap_or_default(),
            "sensor-orientation" => settings.sensor_orientation = value.get().unwrap_or_default(),
            "output" => settings.output = value.get().unwrap_or_default(),
            "hysteresis" => settings.hysteresis = value.get().unwrap_or(DEFAULT_HYSTERESIS),
            "hold-time" => settings.hold_ms = value.get().unwrap_or(DEFAULT_HOLD_MS),
            "replay-file" => settings.replay_file = value.get().ok().flatten(),
            "iio-device" => settings.iio_device = value.get().ok().flatten(),
            "iio-poll-interval" => {
                settings.iio_poll_ms = value.get().unwrap_or(DEFAULT_IIO_POLL_MS)
            }
            other => {
                gst::warning!(CAT, imp = self, "unknown property {other}");
                return;
            }
        }
        let cfg = settings.filter_config();
        drop(settings);
        self.state.lock().filter.set_config(cfg);
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        if pspec.name() == "orientation" {
            return self.state.lock().current.rotation.degrees().to_value();
        }
        let settings = self.settings.lock();
        match pspec.name() {
            "mode" => settings.mode.to_value(),
            "rotation" => settings.rotation.to_value(),
            "camera-facing" => settings.camera_facing.to_value(),
            "sensor-orientation" => settings.sensor_orientation.to_value(),
            "output" => settings.output.to_value(),
            "hysteresis" => settings.hysteresis.to_value(),
            "hold-time" => settings.hold_ms.to_value(),
            "replay-file" => settings.replay_file.to_value(),
            "iio-device" => settings.iio_device.to_value(),
            "iio-poll-interval" => settings.iio_poll_ms.to_value(),
            _ => pspec.default_value().clone(),
        }
    }

    fn constructed(&self) {
        self.parent_constructed();
        let s = self.settings.lock().clone();
        self.configure_transform(&s);
    }
}

impl GstObjectImpl for SensorRotation {}

impl ElementImpl for SensorRotation {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static ELEMENT_METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            crate::element_metadata(
                "Sensor rotation",
                "Filter/Effect/Video",
                "Follows the gravity sensor, the application or an orientation meta and \
                 signals the picture orientation downstream, or rotates the pixels",
                "sensorrotation",
            )
        });
        Some(&*ELEMENT_METADATA)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static PAD_TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            // Metadata output takes any raw video in any memory (DMABuf, GL, ...) in place;
            // pixel output narrows this to `pixels::caps()` when negotiating.
            let caps = gst::Caps::builder("video/x-raw").any_features().build();
            vec![
                gst::PadTemplate::new(
                    "src",
                    gst::PadDirection::Src,
                    gst::PadPresence::Always,
                    &caps,
                )
                .expect("static pad template"),
                gst::PadTemplate::new(
                    "sink",
                    gst::PadDirection::Sink,
                    gst::PadPresence::Always,
                    &caps,
                )
                .expect("static pad template"),
            ]
        });
        PAD_TEMPLATES.as_ref()
    }
}

impl BaseTransformImpl for SensorRotation {
    const MODE: gst_base::subclass::BaseTransformMode = gst_base::subclass::BaseTransformMode::Both;
    const PASSTHROUGH_ON_SAME_CAPS: bool = false;
    const TRANSFORM_IP_ON_PASSTHROUGH: bool = false;

    fn start(&self) -> Result<(), gst::ErrorMessage> {
        let settings = self.settings.lock().clone();
        let source = self.build_source(&settings)?;
        gst::info!(CAT, imp = self, "sensor source: {}", source.describe());
        let mut state = State {
            source: Some(source),
            filter: OrientationFilter::new(settings.filter_config()),
            ..State::default()
        };
        // Read the sensor now, so the first caps and the first buffer already carry the
        // device's orientation (no rotate-0 start for a device already in landscape, and a
        // single caps negotiation in pixel output).
        let mut warning = None;
        let camera = settings.per_buffer();
        let initial = match settings.mode {
            Mode::FollowApp => camera.app_picture(),
            Mode::FollowSensor => {
                let now = match state.source.as_ref().map(|s| s.timeline()) {
                    Some(Timeline::Stream) => 0,
                    _ => self.monotonic_ms(),
                };
                warning = Self::drain_source(&mut state, now);
                camera.picture(state.filter.poll(now))
            }
            Mode::FollowMeta | Mode::Off => Orientation::default(),
        };
        *self.state.lock() = state;
        if let Some(w) = warning {
            self.post_sensor_warning(&w);
        }
        let pixel = if settings.output == Output::Pixels && settings.mode != Mode::Off {
            initial
        } else {
            Orientation::default()
        };
        self.pixel.store(pack(pixel), Ordering::SeqCst);
        self.started.store(true, Ordering::SeqCst);
        self.configure_transform(&settings);
        Ok(())
    }

    fn stop(&self) -> Result<(), gst::ErrorMessage> {
        *self.state.lock() = State::default();
        self.started.store(false, Ordering::SeqCst);
        Ok(())
    }

    fn transform_caps(
        &self,
        _direction: gst::PadDirection,
        caps: &gst::Caps,
        filter: Option<&gst::Caps>,
    ) -> Option<gst::Caps> {
        let (mode, output) = {
            let s = self.settings.lock();
            (s.mode, s.output)
        };
        let mut out = caps.clone();
        if output == Output::Pixels && mode != Mode::Off {
            out = out.intersect_with_mode(&pixels::caps(), gst::CapsIntersectMode::First);
            if self.pixel_orientation().rotation.swaps_dimensions() {
                pixels::swap_dimensions(&mut out);
            }
        }
        Some(match filter {
            Some(f) => f.intersect_with_mode(&out, gst::CapsIntersectMode::First),
            None => out,
        })
    }

    fn sink_event(&self, event: gst::Event) -> bool {
        if let gst::EventView::FlushStop(_) = event.view() {
            // After a seek a replayed trace is evaluated again from its start up to the new
            // position (stream time), and the orientation is signalled again.
            let cfg = self.settings.lock().filter_config();
            let mut state = self.state.lock();
            if let Some(src) = state.source.as_mut()
                && src.replays()
            {
                src.rewind();
                state.filter = OrientationFilter::new(cfg);
            }
            state.sent = None;
        }
        if let gst::EventView::Tag(ev) = event.view() {
            let mode = self.settings.lock().mode;
            let tags = ev.tag_owned();
            if mode != Mode::Off && tags.scope() == gst::TagScope::Stream {
                // This element owns the orientation downstream: upstream tag updates are
                // forwarded without it (so each change yields exactly one orientation tag),
                // and remembered to be merged into the next orientation tag.
                let mut stripped = tags.copy();
                stripped.make_mut().remove::<gst::tags::ImageOrientation>();
                self.state.lock().upstream_tags = Some(stripped.clone());
                return self.parent_sink_event(gst::event::Tag::new(stripped));
            }
        }
        self.parent_sink_event(event)
    }

    fn before_transform(&self, inbuf: &gst::BufferRef) {
        let settings = self.settings.lock().per_buffer();
        if settings.mode == Mode::Off {
            return;
        }
        let mut state = self.state.lock();
        let mut warning = None;
        let (o, camera) = match settings.mode {
            Mode::FollowApp => (settings.app_picture(), Some(settings.camera_facing)),
            Mode::FollowMeta => (
                meta::orientation(inbuf).unwrap_or(state.current),
                meta::camera(inbuf).or(state.camera),
            ),
            _ => {
                let now = match state.source.as_ref().map(|s| s.timeline()) {
                    Some(Timeline::Stream) => self.stream_ms(&mut state, inbuf),
                    _ => self.monotonic_ms(),
                };
                warning = Self::drain_source(&mut state, now);
                let device = state.filter.poll(now);
                (settings.picture(device), Some(settings.camera_facing))
            }
        };
        state.current = o;
        state.camera = camera;
        let changed = state.sent != Some(o);
        state.sent = Some(o);
        let upstream = state.upstream_tags.clone();
        drop(state);
        if let Some(w) = warning {
            self.post_sensor_warning(&w);
        }
        if !changed {
            return;
        }
        gst::debug!(CAT, imp = self, "orientation now {}", o.tag_value());
        match settings.output {
            Output::Metadata => {
                let ev = Self::tag_event(o, upstream.as_ref());
                if !self.obj().src_pad().push_event(ev) {
                    gst::debug!(CAT, imp = self, "downstream did not accept the tag event");
                }
            }
            Output::Pixels => {
                if self.pixel.swap(pack(o), Ordering::SeqCst) != pack(o) {
                    let obj = self.obj();
                    obj.set_passthrough(o == Orientation::default());
                    obj.reconfigure_src();
                }
            }
        }
        self.obj().notify("orientation");
    }

    fn transform_ip(&self, buf: &mut gst::BufferRef) -> Result<gst::FlowSuccess, gst::FlowError> {
        let (o, camera) = {
            let state = self.state.lock();
            (state.current, state.camera)
        };
        meta::set_orientation(buf, o, camera);
        Ok(gst::FlowSuccess::Ok)
    }
}

impl VideoFilterImpl for SensorRotation {
    fn transform_frame(
        &self,
        inframe: &gst_video::VideoFrameRef<&gst::BufferRef>,
        outframe: &mut gst_video::VideoFrameRef<&mut gst::BufferRef>,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        let o = self.pixel_orientation();
        if let Err(e) = pixels::transform_frame(inframe, outframe, o) {
            gst::element_imp_error!(
                self,
                gst::StreamError::Format,
                ("Cannot rotate the frame by {}: {e}", o.tag_value())
            );
            return Err(gst::FlowError::NotNegotiated);
        }
        Ok(gst::FlowSuccess::Ok)
    }
}
