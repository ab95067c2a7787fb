// SPDX-License-Identifier: MIT OR Apache-2.0
//! `whiteboardsrc` subclass implementation.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::LazyLock;

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::prelude::*;
use gst_base::subclass::base_src::CreateSuccess;
use gst_base::subclass::prelude::*;
use parking_lot::Mutex;
use yrs::updates::decoder::Decode;
use yrs::{Doc, Transact, Update};

use crate::whiteboard::log::{self, Entry};
use crate::whiteboard::{Canvas, items, pages};

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "whiteboardsrc",
        gst::DebugColorFlags::empty(),
        Some("Streamwire whiteboard renderer"),
    )
});

/// How long a replayed log keeps showing its final state before end of stream.
const TAIL: gst::ClockTime = gst::ClockTime::from_seconds(1);

#[derive(Debug, Clone, Default)]
struct Settings {
    location: Option<PathBuf>,
    page: String,
    backgrounds: Option<PathBuf>,
    is_live: bool,
}

struct State {
    doc: Doc,
    log: Vec<Entry>,
    next: usize,
    info: Option<gst_video::VideoInfo>,
    canvas: Option<Canvas>,
    dirty: bool,
    frame: u64,
    last: Option<gst::Buffer>,
    backgrounds: HashMap<String, Option<Vec<u8>>>,
}

impl Default for State {
    fn default() -> Self {
        State {
            doc: Doc::new(),
            log: Vec::new(),
            next: 0,
            info: None,
            canvas: None,
            dirty: true,
            frame: 0,
            last: None,
            backgrounds: HashMap::new(),
        }
    }
}

#[derive(Default)]
pub struct WhiteboardSrc {
    settings: Mutex<Settings>,
    state: Mutex<State>,
    /// Updates pushed with `push-update`, applied before the next frame.
    pushed: Mutex<Vec<Vec<u8>>>,
    clock_wait: Mutex<(Option<gst::SingleShotClockId>, bool)>,
}

#[glib::object_subclass]
impl ObjectSubclass for WhiteboardSrc {
    const NAME: &'static str = "GstWhiteboardSrc";
    type Type = super::WhiteboardSrc;
    type ParentType = gst_base::PushSrc;
}

fn apply(doc: &Doc, bytes: &[u8]) -> Result<(), String> {
    let update = Update::decode_v1(bytes).map_err(|e| format!("not a Yjs update: {e}"))?;
    doc.transact_mut()
        .apply_update(update)
        .map_err(|e| format!("cannot apply: {e}"))
}

impl ObjectImpl for WhiteboardSrc {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            vec![
                glib::ParamSpecString::builder("location")
                    .nick("Update log")
                    .blurb("Whiteboard update log to replay (one {\"t_ms\", \"update\"} JSON object per line)")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("page")
                    .nick("Page")
                    .blurb("Page id to show; empty: the first page in order")
                    .mutable_playing()
                    .build(),
                glib::ParamSpecString::builder("backgrounds")
                    .nick("Backgrounds")
                    .blurb("Directory of page background images: a page background URL ending in DOC/N.png is read from DIR/DOC/N.png")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoolean::builder("is-live")
                    .nick("Is live")
                    .blurb("Follow the pipeline clock and render what push-update feeds in")
                    .default_value(false)
                    .mutable_ready()
                    .build(),
            ]
        });
        PROPERTIES.as_ref()
    }

    fn signals() -> &'static [glib::subclass::Signal] {
        static SIGNALS: LazyLock<Vec<glib::subclass::Signal>> = LazyLock::new(|| {
            vec![
                // push-update(update): one Yjs update (v1 encoding) for the document.
                glib::subclass::Signal::builder("push-update")
                    .param_types([glib::Bytes::static_type()])
                    .action()
                    .class_handler(|args| {
                        let obj = args[0].get::<super::WhiteboardSrc>().ok()?;
                        let bytes = args[1].get::<glib::Bytes>().ok()?;
                        obj.imp().pushed.lock().push(bytes.to_vec());
                        None
                    })
                    .build(),
            ]
        });
        SIGNALS.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let mut s = self.settings.lock();
        match pspec.name() {
            "location" => {
                s.location = value
                    .get::<Option<String>>()
                    .ok()
                    .flatten()
                    .map(PathBuf::from)
            }
            "page" => {
                s.page = value
                    .get::<Option<String>>()
                    .ok()
                    .flatten()
                    .unwrap_or_default();
                self.state.lock().dirty = true;
            }
            "backgrounds" => {
                s.backgrounds = value
                    .get::<Option<String>>()
                    .ok()
                    .flatten()
                    .map(PathBuf::from)
            }
            "is-live" => s.is_live = value.get().unwrap_or(false),
            other => gst::warning!(CAT, imp = self, "unknown property {other}"),
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        let s = self.settings.lock();
        match pspec.name() {
            "location" => s
                .location
                .as_ref()
                .map(|p| p.display().to_string())
                .to_value(),
            "page" => s.page.to_value(),
            "backgrounds" => s
                .backgrounds
                .as_ref()
                .map(|p| p.display().to_string())
                .to_value(),
            "is-live" => s.is_live.to_value(),
            _ => None::<String>.to_value(),
        }
    }

    fn constructed(&self) {
        self.parent_constructed();
        let obj = self.obj();
        obj.set_format(gst::Format::Time);
    }
}

impl GstObjectImpl for WhiteboardSrc {}

impl ElementImpl for WhiteboardSrc {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static META: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            crate::element_metadata(
                "Whiteboard source",
                "Source/Video",
                "Renders a Streamwire whiteboard document (saved update log or live updates) to raw video",
                "whiteboardsrc",
            )
        });
        Some(&META)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            let caps = gst_video::VideoCapsBuilder::new()
                .format(gst_video::VideoFormat::Rgba)
                .width_range(16..=7680)
                .height_range(16..=4320)
                .framerate_range(gst::Fraction::new(1, 1)..=gst::Fraction::new(120, 1))
                .build();
            vec![
                gst::PadTemplate::new(
                    "src",
                    gst::PadDirection::Src,
                    gst::PadPresence::Always,
                    &caps,
                )
                .expect("src pad template"),
            ]
        });
        TEMPLATES.as_ref()
    }
}

impl BaseSrcImpl for WhiteboardSrc {
    fn start(&self) -> Result<(), gst::ErrorMessage> {
        let s = self.settings.lock().clone();
        self.obj().set_live(s.is_live);
        let mut st = State::default();
        if let Some(path) = &s.location {
            let file = std::fs::File::open(path).map_err(|e| {
                gst::error_msg!(
                    gst::ResourceError::OpenRead,
                    ["cannot open whiteboard log {}: {e}", path.display()]
                )
            })?;
            st.log = log::read(std::io::BufReader::new(file)).map_err(|e| {
                gst::error_msg!(
                    gst::ResourceError::Read,
                    [
                        "whiteboard log {}:{}: {}",
                        path.display(),
                        e.line,
                        e.message
                    ]
                )
            })?;
            gst::info!(
                CAT,
                imp = self,
                "{} log entries from {}",
                st.log.len(),
                path.display()
            );
        }
        *self.state.lock() = st;
        self.clock_wait.lock().1 = false;
        Ok(())
    }

    fn stop(&self) -> Result<(), gst::ErrorMessage> {
        *self.state.lock() = State::default();
        Ok(())
    }

    fn is_seekable(&self) -> bool {
        false
    }

    fn fixate(&self, mut caps: gst::Caps) -> gst::Caps {
        caps.truncate();
        if let Some(s) = caps.make_mut().structure_mut(0) {
            s.fixate_field_nearest_int("width", 1280);
            s.fixate_field_nearest_int("height", 720);
            s.fixate_field_nearest_fraction("framerate", gst::Fraction::new(30, 1));
        }
        self.parent_fixate(caps)
    }

    fn set_caps(&self, caps: &gst::Caps) -> Result<(), gst::LoggableError> {
        let info = gst_video::VideoInfo::from_caps(caps)
            .map_err(|_| gst::loggable_error!(CAT, "invalid caps {caps}"))?;
        let canvas = Canvas::new(info.width(), info.height())
            .ok_or_else(|| gst::loggable_error!(CAT, "cannot paint {caps}"))?;
        let mut st = self.state.lock();
        st.info = Some(info);
        st.canvas = Some(canvas);
        st.dirty = true;
        st.last = None;
        Ok(())
    }

    fn unlock(&self) -> Result<(), gst::ErrorMessage> {
        let mut w = self.clock_wait.lock();
        w.1 = true;
        if let Some(id) = w.0.take() {
            id.unschedule();
        }
        Ok(())
    }

    fn unlock_stop(&self) -> Result<(), gst::ErrorMessage> {
        self.clock_wait.lock().1 = false;
        Ok(())
    }
}

impl WhiteboardSrc {
    /// Live: wait until the clock reaches the frame's running time. Err(Flushing) when unlocked.
    fn wait_for(&self, running: gst::ClockTime) -> Result<(), gst::FlowError> {
        let obj = self.obj();
        let (Some(clock), Some(base)) = (obj.clock(), obj.base_time()) else {
            return Ok(());
        };
        let id = {
            let mut w = self.clock_wait.lock();
            if w.1 {
                return Err(gst::FlowError::Flushing);
            }
            let id = clock.new_single_shot_id(base + running);
            w.0 = Some(id.clone());
            id
        };
        let (res, _) = id.wait();
        let mut w = self.clock_wait.lock();
        w.0 = None;
        if w.1 || res == Err(gst::ClockError::Unscheduled) {
            return Err(gst::FlowError::Flushing);
        }
        Ok(())
    }

    /// The running time of the element's clock now (`None` without a clock).
    fn running_time(&self) -> Option<gst::ClockTime> {
        let obj = self.obj();
        let (clock, base) = (obj.clock()?, obj.base_time()?);
        clock.time().checked_sub(base)
    }

    fn background(&self, st: &mut State, url: &str) -> Option<Vec<u8>> {
        let dir = self.settings.lock().backgrounds.clone()?;
        st.backgrounds
            .entry(url.to_owned())
            .or_insert_with(|| {
                let mut parts = url.rsplit('/');
                let file = parts.next()?;
                let doc = parts.next()?;
                let path = dir.join(doc).join(file);
                match std::fs::read(&path) {
                    Ok(b) => Some(b),
                    Err(e) => {
                        gst::warning!(CAT, imp = self, "background {}: {e}", path.display());
                        None
                    }
                }
            })
            .clone()
    }

    fn paint(&self, st: &mut State) {
        let page_setting = self.settings.lock().page.clone();
        let (page, bg, list) = {
            let txn = st.doc.transact();
            let all_pages = pages(&txn);
            let page = if !page_setting.is_empty() {
                page_setting
            } else if let Some(p) = all_pages.first() {
                p.id.clone()
            } else {
                items(&txn, None)
                    .last()
                    .map(|i| i.page.clone())
                    .unwrap_or_default()
            };
            let bg = all_pages
                .iter()
                .find(|p| p.id == page)
                .and_then(|p| p.background.clone());
            let list = items(&txn, Some(&page));
            (page, bg, list)
        };
        let png = bg.and_then(|url| self.background(st, &url));
        let Some(canvas) = st.canvas.as_mut() else {
            return;
        };
        canvas.clear();
        if let Some(png) = png
            && !canvas.background_png(&png)
        {
            gst::warning!(CAT, imp = self, "background of page {page} is not a PNG");
        }
        canvas.paint(&list);
    }
}

impl PushSrcImpl for WhiteboardSrc {
    fn create(
        &self,
        _buffer: Option<&mut gst::BufferRef>,
    ) -> Result<CreateSuccess, gst::FlowError> {
        let live = self.settings.lock().is_live;
        let now = if live { self.running_time() } else { None };
        let (pts, duration) = {
            let mut st = self.state.lock();
            let info = st.info.as_ref().ok_or(gst::FlowError::NotNegotiated)?;
            let fps = info.fps();
            let (n, d) = (fps.numer().max(1) as u64, fps.denom().max(1) as u64);
            let at =
                |f: u64| gst::ClockTime::from_nseconds(f.saturating_mul(d * 1_000_000_000) / n);
            // Live and late (downstream held the previous frame past this one's time): skip
            // to the frame the clock is in, so a frame's time is when it was painted and an
            // update shows at most one frame interval before the time it arrived.
            if let Some(now) = now {
                let current = now.nseconds().saturating_mul(n) / d.saturating_mul(1_000_000_000);
                if current > st.frame {
                    gst::debug!(
                        CAT,
                        imp = self,
                        "late: skipping {} frames",
                        current - st.frame
                    );
                    st.frame = current;
                }
            }
            (at(st.frame), at(st.frame + 1) - at(st.frame))
        };
        if live {
            self.wait_for(pts)?;
        }
        let mut st = self.state.lock();
        let pushed = std::mem::take(&mut *self.pushed.lock());
        for u in pushed {
            match apply(&st.doc, &u) {
                Ok(()) => st.dirty = true,
                Err(e) => gst::warning!(CAT, imp = self, "pushed update ignored: {e}"),
            }
        }
        while let Some(e) = st.log.get(st.next) {
            if gst::ClockTime::from_mseconds(e.t_ms) > pts {
                break;
            }
            let bytes = e.update.clone();
            let line = st.next + 1;
            st.next += 1;
            match apply(&st.doc, &bytes) {
                Ok(()) => st.dirty = true,
                Err(e) => gst::warning!(CAT, imp = self, "log entry {line} ignored: {e}"),
            }
        }
        if !live
            && !st.log.is_empty()
            && st.next == st.log.len()
            && pts > gst::ClockTime::from_mseconds(st.log[st.log.len() - 1].t_ms) + TAIL
        {
            return Err(gst::FlowError::Eos);
        }
        let buffer = if st.dirty || st.last.is_none() {
            self.paint(&mut st);
            st.dirty = false;
            let data = st
                .canvas
                .as_ref()
                .map(|c| c.data().to_vec())
                .ok_or(gst::FlowError::NotNegotiated)?;
            let b = gst::Buffer::from_mut_slice(data);
            st.last = Some(b.clone());
            b
        } else {
            st.last.clone().ok_or(gst::FlowError::Error)?
        };
        let mut buffer = buffer.copy();
        {
            let b = buffer.get_mut().ok_or(gst::FlowError::Error)?;
            b.set_pts(pts);
            b.set_duration(duration);
        }
        st.frame += 1;
        Ok(CreateSuccess::NewBuffer(buffer))
    }
}
