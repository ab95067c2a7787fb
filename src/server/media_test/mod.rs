//! The server's media test peer: echo tests and network probes (`docs/protocol.md`, "Media
//! tests"; `docs/audio.md`).
//!
//! Each test is one GStreamer pipeline with one `webrtcbin` ([`Peer`], the answerer) that
//! belongs to that test alone, so a failing test takes nothing else down:
//!
//! - echo (`echo.rs`): every received track is depayloaded, held for the echo delay and
//!   payloaded again onto the offer's `recvonly` m-line of its kind (no decoding);
//! - probe (`probe.rs`): the received probe stream is counted and dropped; a [`Publisher`] of
//!   noise video sends back at the rate of the congestion controller's estimate.
//!
//! `run.rs` drives a test: signalling to the client, reports every two seconds, the end.
//! The service caps the tests at [`MediaTestConfig::max_tests`] and one per user and room;
//! a test's place is freed once its pipeline is torn down.
//!
//! [`Peer`]: crate::webrtc::peer::Peer
//! [`Publisher`]: crate::webrtc::publisher::Publisher

mod echo;
mod probe;
mod run;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use gst::prelude::*;
use parking_lot::Mutex;

use crate::signalling::protocol::{ErrorCode, ServerMsg};
use crate::signalling::service::{MediaTestRequest, MediaTestRun, MediaTests, ServiceError};
use crate::webrtc::WebrtcError;

/// Highest [`MediaTestConfig::echo_delay`].
pub const MAX_ECHO_DELAY: Duration = Duration::from_secs(5);
/// Lowest [`MediaTestConfig::probe_max_kbps`].
pub const MIN_PROBE_MAX_KBPS: u32 = 300;

/// The media test peer's settings (`streamwire serve --max-media-tests ...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaTestConfig {
    /// Tests running at once; 0 turns media tests off (`not_implemented`). Default 8.
    pub max_tests: usize,
    /// Longest test, s. Default 60.
    pub max_seconds: u32,
    /// How long the echo test holds the media before sending it back. Default 2.5 s, at
    /// most [`MAX_ECHO_DELAY`].
    pub echo_delay: Duration,
    /// Highest rate of the probe stream the server sends, kbit/s: the downlink estimate
    /// stops there. Default 4000, at least [`MIN_PROBE_MAX_KBPS`].
    pub probe_max_kbps: u32,
    /// Local addresses the tests' ICE gathers on; empty (the default): every interface.
    pub local_addresses: Vec<String>,
}

impl Default for MediaTestConfig {
    /// The production defaults: 8 tests of at most 60 s, echo after 2.5 s, probes up to
    /// 4 Mbit/s, ICE on every interface.
    ///
    /// ```
    /// use streamwire::server::MediaTestConfig;
    /// let cfg = MediaTestConfig::default();
    /// assert_eq!((cfg.max_tests, cfg.max_seconds), (8, 60));
    /// assert!(cfg.local_addresses.is_empty());
    /// assert!(cfg.check().is_ok());
    /// ```
    fn default() -> Self {
        MediaTestConfig {
            max_tests: 8,
            max_seconds: 60,
            echo_delay: Duration::from_millis(2500),
            probe_max_kbps: 4000,
            local_addresses: Vec::new(),
        }
    }
}

impl MediaTestConfig {
    /// Check the bounds; the error names the setting.
    ///
    /// ```
    /// use std::time::Duration;
    /// use streamwire::server::MediaTestConfig;
    /// let cfg = MediaTestConfig { echo_delay: Duration::from_secs(9), ..Default::default() };
    /// assert!(cfg.check().unwrap_err().contains("echo_delay"));
    /// ```
    pub fn check(&self) -> Result<(), String> {
        if self.max_seconds == 0 {
            return Err("media test max_seconds must be at least 1".into());
        }
        if self.echo_delay > MAX_ECHO_DELAY {
            return Err(format!(
                "media test echo_delay is {} ms, at most {} ms",
                self.echo_delay.as_millis(),
                MAX_ECHO_DELAY.as_millis()
            ));
        }
        if self.probe_max_kbps < MIN_PROBE_MAX_KBPS {
            return Err(format!(
                "media test probe_max_kbps is {}, at least {MIN_PROBE_MAX_KBPS}",
                self.probe_max_kbps
            ));
        }
        Ok(())
    }
}

/// The service the hub starts tests through.
pub(crate) struct MediaTestService {
    inner: Arc<Places>,
    cfg: MediaTestConfig,
}

/// The running tests, by (room, user).
#[derive(Default)]
struct Places {
    running: Mutex<HashSet<(String, String)>>,
}

/// A running test's place; freed on drop.
pub(crate) struct Place {
    places: Arc<Places>,
    key: (String, String),
}

impl Drop for Place {
    fn drop(&mut self) {
        self.places.running.lock().remove(&self.key);
    }
}

impl MediaTestService {
    /// The service, after checking `cfg`; GStreamer must be initialised.
    pub(crate) fn new(cfg: MediaTestConfig) -> Self {
        MediaTestService {
            inner: Arc::default(),
            cfg,
        }
    }

    /// Tests running now.
    pub(crate) fn running(&self) -> usize {
        self.inner.running.lock().len()
    }

    fn take_place(&self, room: &str, user: &str) -> Result<Place, ServiceError> {
        let mut running = self.inner.running.lock();
        let key = (room.to_owned(), user.to_owned());
        let refuse = |reason: String| ServiceError::Refused {
            code: ErrorCode::MediaTestFull,
            reason,
            field: None,
        };
        if running.contains(&key) {
            return Err(refuse(format!(
                "user `{user}` already runs a media test in room `{room}` (one at a time)"
            )));
        }
        if running.len() >= self.cfg.max_tests {
            return Err(refuse(format!(
                "the server runs {} media tests, its --max-media-tests; try again shortly",
                running.len()
            )));
        }
        running.insert(key.clone());
        Ok(Place {
            places: self.inner.clone(),
            key,
        })
    }
}

impl MediaTests for MediaTestService {
    fn max_seconds(&self) -> u32 {
        self.cfg.max_seconds
    }

    fn start(
        &self,
        request: MediaTestRequest,
        to_client: tokio::sync::mpsc::Sender<ServerMsg>,
    ) -> Result<Box<dyn MediaTestRun>, ServiceError> {
        let place = self.take_place(&request.from.room, &request.from.user)?;
        let run = run::TestRun::start(&request, &self.cfg, to_client, place).map_err(|e| {
            tracing::warn!(error = %e, "media test could not start");
            ServiceError::Failed(format!("the media test could not start: {e}"))
        })?;
        Ok(Box::new(run))
    }
}

fn link(src: &gst::Pad, sink: &gst::Pad) -> Result<(), WebrtcError> {
    src.link(sink).map(|_| ()).map_err(|e| WebrtcError::Link {
        what: format!("received pad `{}`", src.name()),
        detail: format!("{e:?}"),
    })
}
