//! Telemetry forwarding of a [`Session`](super::Session): device records from the session's
//! `devicetelemetry` element and the per-peer WebRTC statistics,
//! batched at the application's consent level and sent through the session's signalling
//! client every [`TelemetryConfig::interval`].
//!
//! - Consent `none` (the default): the element reads nothing, nothing is batched, nothing is
//!   sent — not even an empty frame.
//! - `necessary` / `full`: every key goes through the field registry in the
//!   [`Batcher`]; optional keys only at `full`.
//! - Consent can change at runtime ([`Session::set_consent`](super::Session::set_consent));
//!   lowering it strips what is pending of what the new level does not allow.
//! - The element is not linked to a stream (it samples the device on its own timer), so it
//!   runs in a small pipeline of its own: its bus is read here without taking the session
//!   pipeline's bus away from the application.
//! - Each flush is split so every `telemetry` frame stays within the server's
//!   `max_frame_bytes` (announced in `welcome`); no record is dropped by the split.

use parking_lot::Mutex;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::StreamExt;
use gst::prelude::*;
/// Consent levels (`none`, `necessary`, `full`), re-exported from the elements crate so an
/// application needs no direct dependency on it.
pub use gststreamwire::telemetry::Consent;
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::watch;

use super::SessionEvent;
use crate::signalling::client::Client;
use crate::telemetry::batcher::Batcher;
use crate::telemetry::now_ms;
use crate::webrtc::stats::PeerStats;

/// Default interval between two telemetry batches.
pub const DEFAULT_TELEMETRY_INTERVAL: Duration = Duration::from_secs(10);

/// Default device sampling interval (the same as the WebRTC statistics').
pub const DEFAULT_SAMPLE_INTERVAL: Duration = crate::webrtc::stats::STATS_INTERVAL;

/// Frame limit assumed when the server's `welcome` is not known (the server's default).
const FALLBACK_MAX_FRAME_BYTES: usize = 128 * 1024;

/// Telemetry settings of a [`Session`](super::Session).
///
/// ```
/// use streamwire::session::telemetry::{Consent, TelemetryConfig};
/// let cfg = TelemetryConfig::default();
/// assert_eq!(cfg.consent, Consent::None); // nothing read, nothing sent
/// let full = TelemetryConfig { consent: Consent::Full, ..TelemetryConfig::default() };
/// assert!(full.device);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TelemetryConfig {
    /// The end user's consent, as the application obtained it. Default `none`.
    pub consent: Consent,
    /// Interval between batches sent to the server. Default [`DEFAULT_TELEMETRY_INTERVAL`].
    pub interval: Duration,
    /// Device sampling interval of the `devicetelemetry` element (clamped to its
    /// 100 ms..1 h). Default [`DEFAULT_SAMPLE_INTERVAL`], the WebRTC statistics' interval.
    pub sample_interval: Duration,
    /// Run a `devicetelemetry` element with the session (device fields: CPU, memory, OS,
    /// ...). Default true. Per-peer WebRTC statistics are forwarded either way.
    pub device: bool,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        TelemetryConfig {
            consent: Consent::None,
            interval: DEFAULT_TELEMETRY_INTERVAL,
            sample_interval: DEFAULT_SAMPLE_INTERVAL,
            device: true,
        }
    }
}

/// What the session's telemetry forwarding has done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TelemetryCounters {
    /// Batches taken from the batcher (one per flush with something pending).
    pub batches: u64,
    /// `telemetry` frames handed to the signalling client.
    pub frames: u64,
    /// Records in those frames.
    pub records: u64,
    /// Field values in those records.
    pub fields: u64,
    /// Records that could not fit in a frame on their own (never expected: records are a
    /// few hundred bytes).
    pub too_large: u64,
}

#[derive(Default)]
struct Counters {
    batches: AtomicU64,
    frames: AtomicU64,
    records: AtomicU64,
    fields: AtomicU64,
    too_large: AtomicU64,
}

struct Shared {
    batcher: Mutex<Batcher>,
    client: Client,
    counters: Counters,
    events: UnboundedSender<SessionEvent>,
}

/// The session's telemetry forwarder (one per session).
pub(crate) struct Forwarder {
    shared: Arc<Shared>,
    /// The device element and the pipeline it runs in.
    device: Option<(gst::Pipeline, gst::Element)>,
    _stop: watch::Sender<()>,
}

impl Forwarder {
    /// Starts forwarding through `client`. Must be called inside a tokio runtime.
    pub(crate) fn start(
        client: Client,
        cfg: &TelemetryConfig,
        events: UnboundedSender<SessionEvent>,
    ) -> Result<Self, crate::webrtc::WebrtcError> {
        let shared = Arc::new(Shared {
            batcher: Mutex::new(Batcher::new(cfg.consent)),
            client,
            counters: Counters::default(),
            events,
        });
        let (stop_tx, stop_rx) = watch::channel(());
        let device = if cfg.device {
            Some(device_pipeline(cfg)?)
        } else {
            None
        };
        if let Some(bus) = device.as_ref().and_then(|(p, _)| p.bus()) {
            let mut messages = bus.stream_filtered(&[gst::MessageType::Element]);
            let shared = Arc::downgrade(&shared);
            let mut stop = stop_rx.clone();
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        m = messages.next() => {
                            let (Some(m), Some(s)) = (m, shared.upgrade()) else { break };
                            s.batcher.lock().push_message(&m, now_ms());
                        }
                        _ = stop.changed() => break,
                    }
                }
            });
        }
        let weak = Arc::downgrade(&shared);
        let mut stop = stop_rx;
        let interval = cfg.interval.max(Duration::from_millis(100));
        tokio::spawn(async move {
            let mut tick =
                tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => {
                        let Some(s) = weak.upgrade() else { break };
                        flush(&s);
                    }
                    _ = stop.changed() => break,
                }
            }
        });
        Ok(Forwarder {
            shared,
            device,
            _stop: stop_tx,
        })
    }

    /// The current consent level.
    pub(crate) fn consent(&self) -> Consent {
        self.shared.batcher.lock().consent()
    }

    /// Changes the consent level of the batcher and of the device element.
    pub(crate) fn set_consent(&self, consent: Consent) {
        self.shared.batcher.lock().set_consent(consent);
        if let Some((_, e)) = &self.device {
            e.set_property_from_str("consent", consent.as_str());
        }
    }

    /// Adds one peer's WebRTC statistics (ignored at consent `none`).
    pub(crate) fn push_stats(&self, stats: &PeerStats) {
        self.shared
            .batcher
            .lock()
            .push_webrtc_stats(stats, now_ms());
    }

    /// Sends everything pending now.
    pub(crate) fn flush(&self) {
        flush(&self.shared);
    }

    /// Stops device sampling and sends what is pending (the session is leaving).
    pub(crate) fn finish(&self) {
        if let Some((p, _)) = &self.device {
            let _ = p.set_state(gst::State::Null);
        }
        flush(&self.shared);
    }

    /// The `devicetelemetry` element, if the session runs one.
    pub(crate) fn element(&self) -> Option<&gst::Element> {
        self.device.as_ref().map(|(_, e)| e)
    }

    /// Counters so far.
    pub(crate) fn counters(&self) -> TelemetryCounters {
        let c = &self.shared.counters;
        TelemetryCounters {
            batches: c.batches.load(Ordering::Relaxed),
            frames: c.frames.load(Ordering::Relaxed),
            records: c.records.load(Ordering::Relaxed),
            fields: c.fields.load(Ordering::Relaxed),
            too_large: c.too_large.load(Ordering::Relaxed),
        }
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        if let Some((p, _)) = &self.device {
            let _ = p.set_state(gst::State::Null);
        }
    }
}

fn device_pipeline(
    cfg: &TelemetryConfig,
) -> Result<(gst::Pipeline, gst::Element), crate::webrtc::WebrtcError> {
    use crate::webrtc::WebrtcError;
    let interval_ms = u32::try_from(cfg.sample_interval.as_millis())
        .unwrap_or(u32::MAX)
        .clamp(100, 3_600_000);
    let e = gst::ElementFactory::make("devicetelemetry")
        .name("session-devicetelemetry")
        .property("interval", interval_ms)
        .property_from_str("consent", cfg.consent.as_str())
        .build()
        .map_err(|e| WebrtcError::State(format!("creating devicetelemetry: {e}")))?;
    // Not linked to any stream: it samples the device on its own timer from PAUSED on.
    let pipeline = gst::Pipeline::with_name("streamwire-session-telemetry");
    pipeline
        .add(&e)
        .map_err(|e| WebrtcError::State(format!("adding devicetelemetry: {e}")))?;
    pipeline
        .set_state(gst::State::Playing)
        .map_err(|e| WebrtcError::State(format!("starting devicetelemetry: {e}")))?;
    Ok((pipeline, e))
}

fn flush(s: &Shared) {
    let Some(batch) = s.batcher.lock().take_batch() else {
        return;
    };
    let max = s
        .client
        .welcome()
        .map_or(FALLBACK_MAX_FRAME_BYTES, |w| w.limits.max_frame_bytes);
    s.counters.batches.fetch_add(1, Ordering::Relaxed);
    let (parts, too_large) = batch.split(max);
    for e in too_large {
        s.counters.too_large.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(error = %e, "telemetry record not sent");
        let _ = s.events.send(SessionEvent::Error {
            context: "telemetry".into(),
            detail: e.to_string(),
        });
    }
    let total: usize = parts.iter().map(|p| p.records.len()).sum();
    let mut sent = 0;
    for part in parts {
        let records = part.records.len();
        let fields: u64 = part.records.iter().map(|r| r.fields.len() as u64).sum();
        match s.client.send_telemetry(part) {
            Ok(()) => {
                sent += records;
                s.counters.frames.fetch_add(1, Ordering::Relaxed);
                s.counters
                    .records
                    .fetch_add(records as u64, Ordering::Relaxed);
                s.counters.fields.fetch_add(fields, Ordering::Relaxed);
            }
            Err(e) => {
                // The client refuses once it is closed for good (during a reconnect it
                // queues), or a batch without consent, which the batcher never builds.
                tracing::warn!(error = %e, not_sent = total - sent, "telemetry records not sent");
                break;
            }
        }
    }
}
