//! WebRTC media engine: one `webrtcbin` per remote peer, a shared encoder per published
//! track, receive branches, congestion control and statistics.
//!
//! The module is transport-agnostic: a [`peer::Peer`] emits [`peer::SignalOut`] messages
//! (SDP offer/answer, trickle ICE candidates) on a channel and accepts [`peer::SignalIn`]
//! through [`peer::Peer::apply`], so any signalling layer can carry them.
//!
//! ```no_run
//! use streamwire::webrtc::{peer::{Peer, PeerConfig, Role}, publisher::{Publisher, PublisherConfig}};
//! streamwire::gst_init::init().unwrap();
//! let pipeline = gst::Pipeline::new();
//! let publisher = Publisher::new(&pipeline, PublisherConfig::default()).unwrap();
//! let (peer, _io) = Peer::new(&pipeline, "bob", PeerConfig::loopback(Role::Offerer)).unwrap();
//! publisher.attach(&peer).unwrap();
//! peer.negotiate().unwrap();
//! ```

pub mod audio_dump;
pub mod audio_level;
pub mod dsp;
mod early_rtp;
pub mod encode;
pub mod freeze;
pub mod opus_latency;
pub mod peer;
pub mod publisher;
pub mod receive_watch;
pub mod recording;
pub mod repair;
pub mod room_recording;
mod rtcp_split;
pub(crate) mod sdp;
mod sender_time;
pub mod stats;
pub mod subscriber;

/// Errors of the WebRTC media engine.
#[derive(Debug, thiserror::Error)]
pub enum WebrtcError {
    /// A GStreamer element is not installed.
    #[error("GStreamer element `{0}` is not available (is its plugin package installed?)")]
    MissingElement(String),
    /// Two elements or pads could not be linked.
    #[error("could not link {what}: {detail}")]
    Link {
        /// What was being linked.
        what: String,
        /// GStreamer's reason.
        detail: String,
    },
    /// A session description could not be parsed or applied.
    #[error("invalid SDP in {context}: {detail}")]
    Sdp {
        /// Which message (offer / answer) and step.
        context: &'static str,
        /// What is wrong.
        detail: String,
    },
    /// An incoming signalling message does not fit the peer's role or state.
    #[error("signalling message `{message}` rejected: {detail}")]
    Signal {
        /// Message kind (`offer`, `answer`, `ice`).
        message: &'static str,
        /// Why it was rejected.
        detail: String,
    },
    /// Invalid configuration value.
    #[error("invalid configuration `{field}`: {detail}")]
    Config {
        /// The configuration field.
        field: &'static str,
        /// What is wrong with it.
        detail: String,
    },
    /// A pipeline or element failed to change state.
    #[error("state change failed: {0}")]
    State(String),
}

/// Kind of a media track.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MediaKind {
    /// Audio (Opus).
    Audio,
    /// Video (VP8 or H.264).
    Video,
}

impl MediaKind {
    /// The SDP media name (`audio` / `video`).
    pub fn as_str(self) -> &'static str {
        match self {
            MediaKind::Audio => "audio",
            MediaKind::Video => "video",
        }
    }

    /// The kind of an SDP media name (`audio` / `video`); `None` for anything else
    /// (`application`, ...).
    ///
    /// ```
    /// use streamwire::webrtc::MediaKind;
    /// assert_eq!(MediaKind::from_sdp("video"), Some(MediaKind::Video));
    /// assert_eq!(MediaKind::from_sdp("application"), None);
    /// ```
    pub fn from_sdp(name: &str) -> Option<MediaKind> {
        match name {
            "audio" => Some(MediaKind::Audio),
            "video" => Some(MediaKind::Video),
            _ => None,
        }
    }
}

/// Create an element, naming the missing factory in the error.
pub(crate) fn make(factory: &str) -> Result<gst::Element, WebrtcError> {
    gst::ElementFactory::make(factory)
        .build()
        .map_err(|_| WebrtcError::MissingElement(factory.to_owned()))
}

/// Link `pad`, a stream a peer received, to a new unsynchronised `fakesink` in `bin`: a
/// stream nobody wants is still consumed, so webrtcbin never sees `not-linked`
/// ([`peer::Peer::discard_received`] does it for every stream of a peer).
pub(crate) fn discard(bin: &gst::Bin, pad: &gst::Pad) -> Result<(), WebrtcError> {
    use gst::prelude::*;
    let sink = make("fakesink")?;
    sink.set_property("async", false);
    sink.set_property("sync", false);
    bin.add(&sink).map_err(|e| WebrtcError::Link {
        what: "fakesink".into(),
        detail: e.to_string(),
    })?;
    sink.sync_state_with_parent()
        .map_err(|e| WebrtcError::State(format!("fakesink: {e}")))?;
    let input = sink
        .static_pad("sink")
        .ok_or_else(|| WebrtcError::MissingElement("fakesink sink pad".into()))?;
    pad.link(&input).map(|_| ()).map_err(|e| WebrtcError::Link {
        what: format!("received pad `{}`", pad.name()),
        detail: format!("{e:?}"),
    })
}

/// Have the top-level pipeline holding `element` recompute its latency and hand it to its
/// sinks, from a GStreamer thread (not the caller's streaming thread). GStreamer leaves this to
/// the application, on the `LATENCY` message an element posts when its latency changed; the
/// session does not take the pipeline's bus from the application, so the elements whose
/// latency changes while playing (the adaptive jitter buffers, `opusdec`) ask here.
pub(crate) fn recalculate_pipeline_latency(element: &gst::Element) {
    use gst::prelude::*;
    let mut top = element.clone().upcast::<gst::Object>();
    while let Some(parent) = top.parent() {
        top = parent;
    }
    // At most one recomputation queued per pipeline: many jitter buffers asking at once (a
    // mesh of several peers) get one.
    static PENDING: parking_lot::Mutex<Vec<usize>> = parking_lot::Mutex::new(Vec::new());
    if let Ok(pipeline) = top.downcast::<gst::Element>() {
        let key = pipeline.as_ptr() as usize;
        {
            let mut pending = PENDING.lock();
            if pending.contains(&key) {
                return;
            }
            pending.push(key);
        }
        pipeline.call_async(move |p| {
            PENDING.lock().retain(|k| *k != key);
            if let Some(bin) = p.downcast_ref::<gst::Bin>()
                && bin.recalculate_latency().is_err()
            {
                tracing::debug!("the pipeline could not recompute its latency");
            }
        });
    }
}

/// Transport-wide congestion control RTP header extension URI (draft-holmer-rmcat-transport-wide-cc-extensions-01).
pub const TWCC_URI: &str =
    "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01";
