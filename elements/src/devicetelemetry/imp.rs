// SPDX-License-Identifier: MIT OR Apache-2.0
//! `devicetelemetry` subclass implementation.

use parking_lot::{Condvar, Mutex};
use std::sync::{Arc, LazyLock};
use std::thread::JoinHandle;
use std::time::Duration;

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::prelude::*;
use gst_base::subclass::prelude::*;

use crate::telemetry::sampler::parse_resolution;
use crate::telemetry::{Consent, Ctx, Sampler, StreamCounters};

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "devicetelemetry",
        gst::DebugColorFlags::empty(),
        Some("Streamwire privacy-aware device telemetry"),
    )
});

const DEFAULT_INTERVAL_MS: u32 = 5000;
const MIN_INTERVAL_MS: u32 = 100;
const MAX_INTERVAL_MS: u32 = 3_600_000;
/// Environment variable giving the screen resolution when the app does not set it.
pub const SCREEN_ENV: &str = "STREAMWIRE_SCREEN_RESOLUTION";

#[derive(Debug, Clone)]
struct Settings {
    consent: Consent,
    interval_ms: u32,
    screen_resolution: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        let env = std::env::var(SCREEN_ENV)
            .ok()
            .filter(|s| parse_resolution(s).is_some());
        Settings {
            consent: Consent::None,
            interval_ms: DEFAULT_INTERVAL_MS,
            screen_resolution: env,
        }
    }
}

/// What wakes the sampler thread before its interval is over.
#[derive(Default)]
struct Wake {
    stop: bool,
    /// Consent changed: prime for the new level and start a new interval.
    consent_changed: bool,
}

type WakeCell = Arc<(Mutex<Wake>, Condvar)>;

struct Worker {
    wake: WakeCell,
    handle: JoinHandle<()>,
}

#[derive(Default)]
pub struct DeviceTelemetry {
    settings: Arc<Mutex<Settings>>,
    counters: Mutex<Arc<StreamCounters>>,
    worker: Mutex<Option<Worker>>,
}

#[glib::object_subclass]
impl ObjectSubclass for DeviceTelemetry {
    const NAME: &'static str = "GstDeviceTelemetry";
    type Type = super::DeviceTelemetry;
    type ParentType = gst_base::BaseTransform;
}

impl ObjectImpl for DeviceTelemetry {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            vec![
                glib::ParamSpecEnum::builder_with_default("consent", Consent::None)
                    .nick("Consent")
                    .blurb("End user's consent: which telemetry fields may be read and posted")
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("interval")
                    .nick("Interval")
                    .blurb("Milliseconds between telemetry messages")
                    .minimum(MIN_INTERVAL_MS)
                    .maximum(MAX_INTERVAL_MS)
                    .default_value(DEFAULT_INTERVAL_MS)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecString::builder("screen-resolution")
                    .nick("Screen resolution")
                    .blurb(
                        "Screen resolution WIDTHxHEIGHT as known to the application; unset: \
                         $STREAMWIRE_SCREEN_RESOLUTION if valid, else not reported",
                    )
                    .mutable_playing()
                    .build(),
            ]
        });
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let mut s = self.settings.lock();
        match pspec.name() {
            "consent" => {
                s.consent = value.get().unwrap_or_default();
                drop(s);
                if let Some(w) = self.worker.lock().as_ref() {
                    let (m, cv) = &*w.wake;
                    m.lock().consent_changed = true;
                    cv.notify_all();
                }
            }
            "interval" => s.interval_ms = value.get().unwrap_or(DEFAULT_INTERVAL_MS),
            "screen-resolution" => {
                let v: Option<String> = value.get().ok().flatten();
                match v {
                    None => s.screen_resolution = None,
                    Some(r) if parse_resolution(&r).is_some() => s.screen_resolution = Some(r),
                    Some(r) => gst::warning!(
                        CAT,
                        imp = self,
                        "screen-resolution `{r}` is not WIDTHxHEIGHT; ignored"
                    ),
                }
            }
            other => gst::warning!(CAT, imp = self, "unknown property {other}"),
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        let s = self.settings.lock();
        match pspec.name() {
            "consent" => s.consent.to_value(),
            "interval" => s.interval_ms.to_value(),
            "screen-resolution" => s.screen_resolution.to_value(),
            _ => pspec.default_value().clone(),
        }
    }

    fn constructed(&self) {
        self.parent_constructed();
        self.obj().set_passthrough(true);
    }
}

impl GstObjectImpl for DeviceTelemetry {}

impl ElementImpl for DeviceTelemetry {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static ELEMENT_METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            crate::element_metadata(
                "Device telemetry",
                "Generic",
                "Pass-through that periodically posts consent-gated device and stream \
                 telemetry as streamwire-telemetry element messages",
                "devicetelemetry",
            )
        });
        Some(&*ELEMENT_METADATA)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static PAD_TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            let caps = gst::Caps::new_any();
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

fn run_sampler(
    weak: glib::WeakRef<super::DeviceTelemetry>,
    settings: Arc<Mutex<Settings>>,
    counters: Arc<StreamCounters>,
    wake: WakeCell,
) {
    let mut sampler = Sampler::new(Ctx::new(counters, None));
    loop {
        let (interval, consent) = {
            let s = settings.lock();
            (s.interval_ms, s.consent)
        };
        // Interval averages start here, so the message one interval later has them.
        sampler.prime(consent);
        {
            let (m, cv) = &*wake;
            let mut w = m.lock();
            cv.wait_while_for(
                &mut w,
                |w| !w.stop && !w.consent_changed,
                Duration::from_millis(u64::from(interval)),
            );
            if w.stop {
                return;
            }
            if w.consent_changed {
                w.consent_changed = false;
                continue;
            }
        }
        let (consent, screen) = {
            let s = settings.lock();
            (s.consent, s.screen_resolution.clone())
        };
        if consent == Consent::None {
            continue;
        }
        sampler.ctx_mut().set_screen_resolution(screen);
        let report = sampler.sample(consent);
        let Some(obj) = weak.upgrade() else {
            return;
        };
        gst::trace!(CAT, obj = obj, "posting {} fields", report.values.len());
        let msg = gst::message::Element::builder(report.to_structure(consent))
            .src(&obj)
            .build();
        let _ = obj.post_message(msg);
    }
}

impl DeviceTelemetry {
    fn stop_worker(&self) {
        let worker = self.worker.lock().take();
        if let Some(w) = worker {
            {
                let (m, cv) = &*w.wake;
                m.lock().stop = true;
                cv.notify_all();
            }
            // The element can be disposed from the sampler thread itself (it holds a strong
            // reference while posting); that thread then exits on its own.
            if w.handle.thread().id() != std::thread::current().id() && w.handle.join().is_err() {
                gst::error!(CAT, imp = self, "telemetry sampler thread panicked");
            }
        }
    }
}

impl BaseTransformImpl for DeviceTelemetry {
    const MODE: gst_base::subclass::BaseTransformMode =
        gst_base::subclass::BaseTransformMode::AlwaysInPlace;
    const PASSTHROUGH_ON_SAME_CAPS: bool = true;
    const TRANSFORM_IP_ON_PASSTHROUGH: bool = true;

    fn start(&self) -> Result<(), gst::ErrorMessage> {
        self.stop_worker();
        let counters = Arc::new(StreamCounters::default());
        *self.counters.lock() = counters.clone();
        let wake: WakeCell = Arc::new((Mutex::new(Wake::default()), Condvar::new()));
        let weak = self.obj().downgrade();
        let settings = self.settings.clone();
        let wake2 = wake.clone();
        let handle = std::thread::Builder::new()
            .name("devicetelemetry".into())
            .spawn(move || run_sampler(weak, settings, counters, wake2))
            .map_err(|e| {
                gst::error_msg!(
                    gst::CoreError::Failed,
                    ["cannot start the telemetry sampler thread: {e}"]
                )
            })?;
        *self.worker.lock() = Some(Worker { wake, handle });
        Ok(())
    }

    fn stop(&self) -> Result<(), gst::ErrorMessage> {
        self.stop_worker();
        Ok(())
    }

    fn sink_event(&self, event: gst::Event) -> bool {
        if let gst::EventView::Caps(c) = event.view() {
            let caps = c.caps();
            let res = caps.structure(0).and_then(|s| {
                if !s.name().starts_with("video/") {
                    return None;
                }
                let w = s.get::<i32>("width").ok()?;
                let h = s.get::<i32>("height").ok()?;
                Some((u32::try_from(w).ok()?, u32::try_from(h).ok()?))
            });
            let counters = self.counters.lock().clone();
            *counters.resolution.lock() = res;
        }
        self.parent_sink_event(event)
    }

    fn transform_ip_passthrough(
        &self,
        buf: &gst::Buffer,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        self.counters.lock().count(buf.size());
        Ok(gst::FlowSuccess::Ok)
    }
}

impl Drop for DeviceTelemetry {
    fn drop(&mut self) {
        self.stop_worker();
    }
}
