//! Where encoder elements come from: the real GStreamer registry, or a given list (for tests and
//! for reasoning about other machines).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use gst::prelude::*;

use super::{Codec, EncoderConfig, build_element};
use crate::encoder::table::Candidate;

/// The set of encoder factories available, and a way to check that one actually starts.
pub trait FactorySource {
    /// Names of installed encoder factories that produce `codec`.
    fn encoders(&self, codec: Codec) -> Vec<String>;
    /// Try to start `factory` for `codec` (used for hardware encoders before choosing them).
    /// `Err` carries the reason it cannot run.
    fn try_start(&self, factory: &str, candidate: &Candidate) -> Result<(), String>;
}

/// The real GStreamer registry (call [`crate::gst_init::init`] first). Hardware encoders are
/// checked by encoding one small frame through them.
#[derive(Debug, Default, Clone)]
pub struct SystemRegistry {
    exclude: BTreeSet<String>,
    pretend: BTreeMap<String, Codec>,
}

impl SystemRegistry {
    /// The registry as installed.
    pub fn new() -> Self {
        Self::default()
    }

    /// Hide factories (as if not installed), e.g. to force the software path.
    pub fn without<I: IntoIterator<Item = S>, S: Into<String>>(mut self, names: I) -> Self {
        self.exclude.extend(names.into_iter().map(Into::into));
        self
    }

    /// List a factory as present even if it is not; its start check still really runs, so an
    /// element that is not installed fails to start (useful to exercise the fallback path).
    pub fn pretend_available(mut self, name: &str, codec: Codec) -> Self {
        self.pretend.insert(name.to_owned(), codec);
        self
    }
}

impl FactorySource for SystemRegistry {
    fn encoders(&self, codec: Codec) -> Vec<String> {
        let caps = gst::Caps::new_empty_simple(codec.caps_name());
        let mut names: Vec<String> = gst::ElementFactory::factories_with_type(
            gst::ElementFactoryType::ENCODER | gst::ElementFactoryType::MEDIA_VIDEO,
            gst::Rank::NONE,
        )
        .into_iter()
        .filter(|f| f.can_src_any_caps(&caps))
        .map(|f| f.name().to_string())
        .filter(|n| !self.exclude.contains(n))
        .collect();
        for (name, c) in &self.pretend {
            if *c == codec && !names.contains(name) {
                names.push(name.clone());
            }
        }
        names
    }

    fn try_start(&self, factory: &str, candidate: &Candidate) -> Result<(), String> {
        trial_encode(factory, candidate)
    }
}

/// Encode one 320x240 frame through `factory` to prove it runs on this machine.
pub(crate) fn trial_encode(factory: &str, candidate: &Candidate) -> Result<(), String> {
    let cfg = EncoderConfig {
        width: 320,
        height: 240,
        fps: 30,
        bitrate_kbps: 500,
        keyframe_interval: 30,
    };
    let enc = build_element(factory, candidate, &cfg, None).map_err(|e| e.to_string())?;
    let pipeline = gst::Pipeline::new();
    let src = gst::ElementFactory::make("videotestsrc")
        .property("num-buffers", 2i32)
        .build()
        .map_err(|e| e.to_string())?;
    let caps = gst::ElementFactory::make("capsfilter")
        .property(
            "caps",
            gst::Caps::builder("video/x-raw")
                .field("width", 320i32)
                .field("height", 240i32)
                .field("framerate", gst::Fraction::new(30, 1))
                .build(),
        )
        .build()
        .map_err(|e| e.to_string())?;
    let convert = gst::ElementFactory::make("videoconvert")
        .build()
        .map_err(|e| e.to_string())?;
    let sink = gst::ElementFactory::make("fakesink")
        .build()
        .map_err(|e| e.to_string())?;
    pipeline
        .add_many([&src, &caps, &convert, &enc, &sink])
        .map_err(|e| e.to_string())?;
    gst::Element::link_many([&src, &caps, &convert, &enc, &sink])
        .map_err(|e| format!("cannot link: {e}"))?;
    let result = (|| {
        pipeline
            .set_state(gst::State::Playing)
            .map_err(|_| "state change to PLAYING failed".to_owned())?;
        let bus = pipeline.bus().ok_or("pipeline without bus")?;
        let msg = bus.timed_pop_filtered(
            gst::ClockTime::from_seconds(5),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        );
        match msg.as_ref().map(|m| m.view()) {
            Some(gst::MessageView::Eos(_)) => Ok(()),
            Some(gst::MessageView::Error(e)) => Err(format!("{}", e.error())),
            _ => Err(format!("no output within {:?}", Duration::from_secs(5))),
        }
    })();
    let _ = pipeline.set_state(gst::State::Null);
    result
}

/// A fixed list of factories, for selection tests and "what would happen on machine X" questions.
/// Nothing is instantiated: listed factories start unless marked with [`FactoryList::failing`].
#[derive(Debug, Default, Clone)]
pub struct FactoryList {
    entries: Vec<(String, Codec)>,
    failing: BTreeMap<String, String>,
}

impl FactoryList {
    /// Factories present, each with the codec it produces.
    pub fn new<S: Into<String>>(entries: impl IntoIterator<Item = (S, Codec)>) -> Self {
        FactoryList {
            entries: entries.into_iter().map(|(n, c)| (n.into(), c)).collect(),
            failing: BTreeMap::new(),
        }
    }

    /// Mark `name` as present but failing to start with `reason`.
    pub fn failing(mut self, name: &str, reason: &str) -> Self {
        self.failing.insert(name.to_owned(), reason.to_owned());
        self
    }
}

impl FactorySource for FactoryList {
    fn encoders(&self, codec: Codec) -> Vec<String> {
        self.entries
            .iter()
            .filter(|(_, c)| *c == codec)
            .map(|(n, _)| n.clone())
            .collect()
    }

    fn try_start(&self, factory: &str, _candidate: &Candidate) -> Result<(), String> {
        match self.failing.get(factory) {
            Some(reason) => Err(reason.clone()),
            None => Ok(()),
        }
    }
}
