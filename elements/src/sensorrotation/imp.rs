// SPDX-License-Identifier: MIT OR Apache-2.0
//! `sensorrotation` subclass implementation.

use parking_lot::Mutex;
use std::path::PathBuf;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Instant;

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::subclass::prelude::*;
use gst_video::prelude::*;
use gst_video::subclass::prelude::*;

use super::rotate::{PlaneGeom, rotate_plane};
use super::source::{AccelSource, AppQueue, AppSource, IioSource, ReplaySource, Timeline};
use super::{Angle, Mode, Output};
use crate::meta;
use crate::orientation::{
    FilterConfig, MAX_HYSTERESIS_DEG, Orientation, OrientationFilter, Rotation, Sample,
};

pub(crate) static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "sensorrotation",
        gst::DebugColorFlags::empty(),
        Some("Streamwire sensor-driven picture rotation"),
    )
});

const DEFAULT_HYSTERESIS: f64 = 15.0;
const DEFAULT_HOLD_MS: u32 = 300;
const MAX_HOLD_MS: u32 = 10_000;
const DEFAULT_IIO_POLL_MS: u32 = 50;

/// Formats the pixel output can rotate: every plane is subsampled equally in both
/// directions, so a rotated plane keeps the format's layout.
const PIXEL_FORMATS: &[gst_video::VideoFormat] = &[
    gst_video::VideoFormat::I420,
    gst_video::VideoFormat::Yv12,
    gst_video::VideoFormat::Nv12,
    gst_video::VideoFormat::Nv21,
    gst_video::VideoFormat::Y444,
    gst_video::VideoFormat::Gray8,
    gst_video::VideoFormat::Rgba,
    gst_video::VideoFormat::Bgra,
    gst_video::VideoFormat::Argb,
    gst_video::VideoFormat::Abgr,
    gst_video::VideoFormat::Rgbx,
    gst_video::VideoFormat::Bgrx,
    gst_video::VideoFormat::Xrgb,
    gst_video::VideoFormat::Xbgr,
    gst_video::VideoFormat::Rgb,
    gst_video::VideoFormat::Bgr,
];

#[derive(Debug, Clone)]
struct Settings {
    mode: Mode,
    rotation: Angle,
    output: Output,
    hysteresis: f64,
    hold_ms: u32,
    replay_file: Option<String>,
    iio_device: Option<String>,
    iio_poll_ms: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            mode: Mode::FollowSensor,
            rotation: Angle::R0,
            output: Output::Metadata,
            hysteresis: DEFAULT_HYSTERESIS,
            hold_ms: DEFAULT_HOLD_MS,
            replay_file: None,
            iio_device: None,
            iio_poll_ms: DEFAULT_IIO_POLL_MS,
        }
    }
}

impl Settings {
    fn filter_config(&self) -> FilterConfig {
        FilterConfig {
            hysteresis_deg: self.hysteresis,
            hold_ms: u64::from(self.hold_ms),
        }
    }
}

struct State {
    source: Option<Box<dyn AccelSource>>,
    filter: OrientationFilter,
    /// Orientation last signalled downstream (tag or pixel rotation); `None` before the first.
    sent: Option<Orientation>,
    /// Orientation of the buffer being processed.
    current: Orientation,
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
            upstream_tags: None,
            last_stream_ms: 0,
        }
    }
}

pub struct SensorRotation {
    settings: Mutex<Settings>,
    state: Mutex<State>,
    app_queue: AppQueue,
    /// Quarter turns used for caps and pixel rotation (pixel output only).
    pixel_turns: AtomicU32,
    epoch: Instant,
}

impl Default for SensorRotation {
    fn default() -> Self {
        SensorRotation {
            settings: Mutex::default(),
            state: Mutex::default(),
            app_queue: AppQueue::default(),
            pixel_turns: AtomicU32::new(0),
            epoch: Instant::now(),
        }
    }
}

impl SensorRotation {
    fn monotonic_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Sets passthrough / in-place according to mode, output and the pixel rotation.
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
                obj.set_passthrough(self.pixel_turns.load(Ordering::SeqCst) == 0);
            }
        }
    }

    fn tag_event(o: Orientation, upstream: Option<&gst::TagList>) -> gst::Event {
        let mut tags = upstream.cloned().unwrap_or_default();
        tags.make_mut()
            .add::<gst::tags::ImageOrientation>(&o.tag_value(), gst::TagMergeMode::Replace);
        gst::event::Tag::new(tags)
    }

    fn stream_ms(&self, state: &mut State, buf: &gst::BufferRef) -> u64 {
        let segment = self.obj().segment();
        let rt = segment
            .downcast_ref::<gst::ClockTime>()
            .and_then(|seg| buf.pts().and_then(|pts| seg.to_running_time(pts)));
        if let Some(rt) = rt {
            state.last_stream_ms = rt.mseconds();
        }
        state.last_stream_ms
    }

    fn build_source(&self, settings: &Settings) -> Result<Box<dyn AccelSource>, gst::ErrorMessage> {
        if let Some(path) = &settings.replay_file {
            return ReplaySource::open(&PathBuf::from(path))
                .map(|s| Box::new(s) as Box<dyn AccelSource>)
                .map_err(|e| gst::error_msg!(gst::ResourceError::OpenRead, ["{}", e]));
        }
        if let Some(dir) = &settings.iio_device {
            return IioSource::open(&PathBuf::from(dir), u64::from(settings.iio_poll_ms))
                .map(|s| Box::new(s) as Box<dyn AccelSource>)
                .map_err(|e| gst::error_msg!(gst::ResourceError::OpenRead, ["{}", e]));
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
                    .blurb(
                        "How the orientation is decided: follow-sensor (accelerometer), \
                         follow-app (the rotation property), follow-meta (orientation meta on \
                         incoming buffers, e.g. from rtphdrextcvo), off (pass-through). \
                         Default: follow-sensor. Changeable while playing.",
                    )
                    .mutable_playing()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("rotation", Angle::R0)
                    .nick("Rotation")
                    .blurb(
                        "Clockwise rotation used in mode follow-app: 0, 90, 180 or 270. \
                         Default: 0. Changeable while playing.",
                    )
                    .mutable_playing()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("output", Output::Metadata)
                    .nick("Output")
                    .blurb(
                        "metadata: image-orientation tag on each change plus an orientation \
                         meta on every buffer; pixels: rotate the frames here (width/height \
                         swap at 90/270). Default: metadata. Settable in NULL/READY.",
                    )
                    .mutable_ready()
                    .build(),
                glib::ParamSpecDouble::builder("hysteresis")
                    .nick("Hysteresis")
                    .blurb(
                        "Degrees the device must turn past the 45-degree boundary before the \
                         orientation changes. Range: 0 - 44. Default: 15.",
                    )
                    .minimum(0.0)
                    .maximum(MAX_HYSTERESIS_DEG)
                    .default_value(DEFAULT_HYSTERESIS)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("hold-time")
                    .nick("Hold time")
                    .blurb(
                        "Milliseconds a new orientation must persist before it is adopted. \
                         Range: 0 - 10000. Default: 300.",
                    )
                    .maximum(MAX_HOLD_MS)
                    .default_value(DEFAULT_HOLD_MS)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecString::builder("replay-file")
                    .nick("Replay file")
                    .blurb(
                        "Accelerometer samples to replay: one `t_ms x y z` per line (t_ms = \
                         stream running time in ms, non-decreasing; # starts a comment). Takes \
                         precedence over iio-device. Default: none. Settable in NULL/READY.",
                    )
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("iio-device")
                    .nick("IIO device")
                    .blurb(
                        "Linux IIO accelerometer directory, e.g. \
                         /sys/bus/iio/devices/iio:device0 (in_accel_{x,y,z}_raw * \
                         in_accel_scale). Default: none (samples come from push-sample). \
                         Settable in NULL/READY.",
                    )
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("iio-poll-interval")
                    .nick("IIO poll interval")
                    .blurb("Milliseconds between IIO reads. Range: 10 - 1000. Default: 50.")
                    .minimum(10)
                    .maximum(1000)
                    .default_value(DEFAULT_IIO_POLL_MS)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("orientation")
                    .nick("Orientation")
                    .blurb(
                        "Clockwise degrees currently signalled (0, 90, 180, 270). Read-only. \
                         Default: 0.",
                    )
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
        let mut settings = self.settings.lock();
        match pspec.name() {
            "mode" => {
                settings.mode = value.get().unwrap_or_default();
                let s = settings.clone();
                drop(settings);
                self.state.lock().sent = None;
                if s.output == Output::Pixels
                    && s.mode == Mode::Off
                    && self.pixel_turns.swap(0, Ordering::SeqCst) != 0
                {
                    // Back to the upstream geometry.
                    self.obj().reconfigure_src();
                }
                self.configure_transform(&s);
                return;
            }
            "rotation" => settings.rotation = value.get().unwrap_or_default(),
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
            gst::subclass::ElementMetadata::new(
                "Sensor rotation",
                "Filter/Effect/Video",
                "Follows the gravity sensor (Linux IIO, replay file or app-pushed samples), the \
                 app, or an orientation meta, and signals the picture orientation downstream \
                 (image-orientation tag + buffer meta) or rotates the pixels",
                "The Streamwire developers",
            )
        });
        Some(&*ELEMENT_METADATA)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static PAD_TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            let caps = gst_video::VideoCapsBuilder::new().build();
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

fn pixel_caps() -> gst::Caps {
    gst_video::VideoCapsBuilder::new()
        .format_list(PIXEL_FORMATS.iter().copied())
        .build()
}

fn swap_dimensions(caps: &mut gst::Caps) {
    for s in caps.make_mut().iter_mut() {
        let w = s.value("width").ok().cloned();
        let h = s.value("height").ok().cloned();
        if let (Some(w), Some(h)) = (w, h) {
            s.set_value("width", h);
            s.set_value("height", w);
        }
        if let Ok(par) = s.get::<gst::Fraction>("pixel-aspect-ratio")
            && par.numer() > 0
        {
            s.set(
                "pixel-aspect-ratio",
                gst::Fraction::new(par.denom(), par.numer()),
            );
        }
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
        let mut state = self.state.lock();
        *state = State {
            source: Some(source),
            filter: OrientationFilter::new(settings.filter_config()),
            ..State::default()
        };
        drop(state);
        self.pixel_turns.store(0, Ordering::SeqCst);
        self.configure_transform(&settings);
        Ok(())
    }

    fn stop(&self) -> Result<(), gst::ErrorMessage> {
        *self.state.lock() = State::default();
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
            out = out.intersect_with_mode(&pixel_caps(), gst::CapsIntersectMode::First);
            let rot = Rotation::from_quarter_turns(self.pixel_turns.load(Ordering::SeqCst));
            if rot.swaps_dimensions() {
                swap_dimensions(&mut out);
            }
        }
        Some(match filter {
            Some(f) => f.intersect_with_mode(&out, gst::CapsIntersectMode::First),
            None => out,
        })
    }

    fn sink_event(&self, event: gst::Event) -> bool {
        if let gst::EventView::FlushStop(_) = event.view() {
            // After a seek the replayed trace is evaluated again from its start up to the
            // new position, and the orientation is signalled again.
            let cfg = self.settings.lock().filter_config();
            let mut state = self.state.lock();
            if let Some(src) = state.source.as_mut() {
                src.rewind();
            }
            state.filter = OrientationFilter::new(cfg);
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
        let settings = {
            let s = self.settings.lock();
            (s.mode, s.output, s.rotation)
        };
        let (mode, output, app_rotation) = settings;
        if mode == Mode::Off {
            return;
        }
        let mut state = self.state.lock();
        let o = match mode {
            Mode::FollowApp => Orientation::rotated(app_rotation.into()),
            Mode::FollowMeta => meta::orientation(inbuf).unwrap_or(state.current),
            _ => {
                let now = match state.source.as_ref().map(|s| s.timeline()) {
                    Some(Timeline::Stream) => self.stream_ms(&mut state, inbuf),
                    _ => self.monotonic_ms(),
                };
                let State { source, filter, .. } = &mut *state;
                if let Some(src) = source.as_mut() {
                    src.drain(now, &mut |s| filter.observe(s.t_ms, s.x, s.y, s.z));
                }
                Orientation::rotated(filter.poll(now))
            }
        };
        state.current = o;
        if state.sent == Some(o) {
            return;
        }
        state.sent = Some(o);
        let upstream = state.upstream_tags.clone();
        drop(state);
        gst::debug!(CAT, imp = self, "orientation now {}", o.tag_value());
        match output {
            Output::Metadata => {
                let ev = Self::tag_event(o, upstream.as_ref());
                if !self.obj().src_pad().push_event(ev) {
                    gst::debug!(CAT, imp = self, "downstream did not accept the tag event");
                }
            }
            Output::Pixels => {
                // Flips are not produced by the sensor; only the rotation is applied.
                let turns = o.rotation.quarter_turns();
                if self.pixel_turns.swap(turns, Ordering::SeqCst) != turns {
                    let obj = self.obj();
                    obj.set_passthrough(turns == 0);
                    obj.reconfigure_src();
                }
            }
        }
        self.obj().notify("orientation");
    }

    fn transform_ip(&self, buf: &mut gst::BufferRef) -> Result<gst::FlowSuccess, gst::FlowError> {
        let o = self.state.lock().current;
        meta::set_orientation(buf, o);
        Ok(gst::FlowSuccess::Ok)
    }
}

impl VideoFilterImpl for SensorRotation {
    fn transform_frame(
        &self,
        inframe: &gst_video::VideoFrameRef<&gst::BufferRef>,
        outframe: &mut gst_video::VideoFrameRef<&mut gst::BufferRef>,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        let rot = Rotation::from_quarter_turns(self.pixel_turns.load(Ordering::SeqCst));
        let finfo = inframe.format_info();
        for plane in 0..inframe.n_planes() {
            let Some(comp) =
                (0..inframe.n_components()).find(|&c| finfo.plane()[c as usize] == plane)
            else {
                continue;
            };
            let elem = usize::try_from(finfo.pixel_stride()[comp as usize]).unwrap_or(0);
            let s = PlaneGeom {
                width: inframe.comp_width(comp) as usize,
                height: inframe.comp_height(comp) as usize,
                elem,
                stride: usize::try_from(inframe.plane_stride()[plane as usize]).unwrap_or(0),
            };
            let d = PlaneGeom {
                width: outframe.comp_width(comp) as usize,
                height: outframe.comp_height(comp) as usize,
                elem,
                stride: usize::try_from(outframe.plane_stride()[plane as usize]).unwrap_or(0),
            };
            let src = inframe
                .plane_data(plane)
                .map_err(|_| gst::FlowError::Error)?;
            let dst = outframe
                .plane_data_mut(plane)
                .map_err(|_| gst::FlowError::Error)?;
            if !rotate_plane(src, s, dst, d, rot) {
                gst::element_imp_error!(
                    self,
                    gst::StreamError::Format,
                    ["plane {plane}: cannot rotate {s:?} into {d:?} by {rot}"]
                );
                return Err(gst::FlowError::NotNegotiated);
            }
        }
        Ok(gst::FlowSuccess::Ok)
    }
}
