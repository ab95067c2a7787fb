//! Echo test and pre-call network probe, the client side (`streamwire echo-test`,
//! `streamwire net-probe`; the server side is the media test peer of `streamwire serve`,
//! `docs/protocol.md` "Media tests", `docs/audio.md`).
//!
//! A test opens a connection of its own with a room token (it never joins the room), builds a
//! pipeline with one [`Publisher`] and one [`Peer`] to the server's media test peer, and
//! reports every two seconds until the server ends it:
//!
//! - [`MediaTestKind::Echo`]: the configured audio and video go to the server, which sends
//!   them back after its delay (`media_test_ready.delay_ms`); the echo is played
//!   ([`TestConfig::playback`]) or dropped, and the report carries the round trip, the time
//!   the echo took to arrive and the quality each way.
//! - [`MediaTestKind::Probe`]: noise video goes up and comes down, both at the rate of each
//!   side's congestion controller; the report carries both estimates (the bandwidth each
//!   way), loss and jitter each way, the round trip and the 0-5 quality.
//!
//! ```no_run
//! # async fn demo() -> Result<(), streamwire::media_test::MediaTestError> {
//! use streamwire::media_test::{run, MediaTestKind, TestConfig};
//! let cfg = TestConfig::new("wss://rtc.example.com", "lobby", "eyJ...");
//! let summary = run(MediaTestKind::Probe, &cfg, |r| {
//!     println!("up {:?} kbit/s, down {:?} kbit/s, quality {}",
//!         r.uplink.estimate_kbps, r.downlink.estimate_kbps, r.quality);
//! })
//! .await?;
//! println!("ended: {:?}", summary.end);
//! # Ok(()) }
//! ```
//!
//! [`Publisher`]: crate::webrtc::publisher::Publisher
//! [`Peer`]: crate::webrtc::peer::Peer

mod run;

use std::sync::Arc;

use tokio_rustls::rustls;

use crate::signalling::protocol::ErrorCode;
pub use crate::signalling::protocol::media_test::{MediaTestEnd, MediaTestKind};
use crate::webrtc::WebrtcError;
use crate::webrtc::publisher::{AudioSource, PublisherConfig, VideoSource};
pub use run::run;

/// How a media test is run.
#[derive(Debug, Clone)]
pub struct TestConfig {
    /// Signalling server, `ws://` or `wss://`.
    pub url: String,
    /// The room the token is for (the test never joins it).
    pub room: String,
    /// A token for `room`.
    pub token: String,
    /// How long the test runs, s; `None`: the server's default (20 s).
    pub seconds: Option<u32>,
    /// Echo: what is sent (its `video`, `audio`, size, codec). The probe always sends noise
    /// video of its own.
    pub publish: PublisherConfig,
    /// Echo: play the echo (`autovideosink`, `autoaudiosink`) instead of dropping it.
    pub playback: bool,
    /// Local addresses ICE gathers on; empty: every interface.
    pub local_addresses: Vec<String>,
    /// Probe: the highest rate of the probe stream sent, kbit/s (the uplink estimate stops
    /// there). Default 4000.
    pub probe_max_kbps: u32,
    /// TLS client configuration for `wss://` (trust roots). Required for `wss://`, as in
    /// [`ClientConfig::tls`](crate::signalling::client::ClientConfig::tls).
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

impl TestConfig {
    /// The production defaults: camera and microphone, the echo played, ICE on every
    /// interface, the server's default length.
    ///
    /// ```
    /// use streamwire::media_test::TestConfig;
    /// let cfg = TestConfig::new("ws://127.0.0.1:8443", "lobby", "token");
    /// assert!(cfg.playback && cfg.local_addresses.is_empty());
    /// ```
    pub fn new(url: &str, room: &str, token: &str) -> Self {
        TestConfig {
            url: url.to_owned(),
            room: room.to_owned(),
            token: token.to_owned(),
            seconds: None,
            publish: PublisherConfig {
                video: VideoSource::Camera,
                audio: AudioSource::Microphone { echo_probe: None },
                ..PublisherConfig::default()
            },
            playback: true,
            local_addresses: Vec::new(),
            probe_max_kbps: 4000,
            tls: None,
        }
    }

    /// What tests and benchmarks choose: the test pattern and tone, the echo dropped, ICE
    /// on 127.0.0.1 alone.
    ///
    /// ```
    /// use streamwire::media_test::TestConfig;
    /// let cfg = TestConfig::loopback("ws://127.0.0.1:8443", "lobby", "token");
    /// assert_eq!(cfg.local_addresses, ["127.0.0.1"]);
    /// ```
    pub fn loopback(url: &str, room: &str, token: &str) -> Self {
        TestConfig {
            publish: PublisherConfig::default(),
            playback: false,
            local_addresses: vec!["127.0.0.1".into()],
            ..TestConfig::new(url, room, token)
        }
    }
}

/// The loss under which a probe interval's receive rate counts as bandwidth
/// ([`PathReport::bandwidth_kbps`]), %.
pub const BANDWIDTH_MAX_LOSS_PCT: f64 = 2.0;

/// One direction of the path.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct PathReport {
    /// The sending side's congestion controller estimate, kbit/s (probe; uplink: this
    /// client's, downlink: the server's); `None` for an echo test or before the first.
    pub estimate_kbps: Option<u32>,
    /// What the receiving side got over the interval, kbit/s.
    pub kbps: f64,
    /// Probe: the path's bandwidth as measured so far, kbit/s: the highest rate received
    /// over one report interval with less than [`BANDWIDTH_MAX_LOSS_PCT`] loss, while the
    /// sender's congestion controller drove its rate; `None` for an echo test or before
    /// such an interval. Steadier than the estimate, which saw-tooths around the capacity.
    pub bandwidth_kbps: Option<f64>,
    /// Loss over the interval, %, the worst track (probe: the network's, nothing is
    /// repaired; echo: what retransmission left).
    pub loss_pct: f64,
    /// Interarrival jitter, ms, the worst track.
    pub jitter_ms: f64,
}

/// One report, every `report_interval_ms` (2 s) once the media is up.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TestReport {
    /// Echo or probe.
    pub test: MediaTestKind,
    /// Since the media connection came up, ms.
    pub elapsed_ms: u64,
    /// Round-trip time (RTCP), ms.
    pub rtt_ms: Option<f64>,
    /// This client to the server.
    pub uplink: PathReport,
    /// The server to this client.
    pub downlink: PathReport,
    /// Echo: from the media connection coming up to the first echoed packet, ms (the
    /// server's delay plus the way there and back).
    pub echo_delay_ms: Option<u64>,
    /// Network quality 0-5, the worse direction
    /// ([`quality_score`](crate::webrtc::stats::quality_score)).
    pub quality: u8,
}

/// How a test ended.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TestSummary {
    /// Echo or probe.
    pub test: MediaTestKind,
    /// The server's id of the test.
    pub test_id: String,
    /// The echo delay the server applied, ms (0 for a probe).
    pub delay_ms: u32,
    /// Why it ended.
    pub end: MediaTestEnd,
    /// The server's words.
    pub message: String,
    /// Every report, in order.
    pub reports: Vec<TestReport>,
}

/// Why a media test could not run.
#[derive(Debug, thiserror::Error)]
pub enum MediaTestError {
    /// The connection to the server failed.
    #[error("cannot reach the signalling server: {0}")]
    Connect(String),
    /// The server refused the test (token, cap, a server without media tests).
    #[error("the server refused the media test ({code}): {message}")]
    Refused {
        /// The error code.
        code: ErrorCode,
        /// The server's message.
        message: String,
    },
    /// The server broke the protocol or closed the connection early.
    #[error("media test protocol: {0}")]
    Protocol(String),
    /// Building or running the media failed.
    #[error(transparent)]
    Webrtc(#[from] WebrtcError),
}
