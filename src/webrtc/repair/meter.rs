//! The sent-packet counters of [`RepairCounters::sent`](super::RepairCounters), for any
//! `webrtcbin`: one that Streamwire did not create (another framework's, a benchmark's
//! reference peer) can be measured exactly as a Streamwire peer connection is.

use std::sync::Arc;

use gst::prelude::*;

use super::counters::{DirectionCounts, Live};
use super::internals::{Side, count_rtp, negotiated_payload_types};

/// Counts what one `webrtcbin` sends, by kind (media, RTX, ULPFEC), at the same place and by
/// the same rules as a Streamwire peer connection's repair counters: RTP header and payload
/// before SRTP, the kinds from the negotiated payload types.
///
/// Attach it before the `webrtcbin` negotiates (it learns the payload types whenever a
/// description is applied, and counts on every transport created from then on).
///
/// ```
/// use streamwire::webrtc::repair::SendMeter;
/// streamwire::gst_init::init().unwrap();
/// let webrtcbin = gst::ElementFactory::make("webrtcbin").build().unwrap();
/// let meter = SendMeter::attach(&webrtcbin);
/// assert_eq!(meter.counts().media_packets, 0);
/// ```
#[derive(Debug, Clone)]
pub struct SendMeter {
    live: Arc<Live>,
}

impl SendMeter {
    /// Start counting what `webrtcbin` sends.
    pub fn attach(webrtcbin: &gst::Element) -> SendMeter {
        let live = Arc::new(Live::default());
        // A description was applied whenever the signalling state changes.
        let weak = Arc::downgrade(&live);
        webrtcbin.connect_notify(Some("signaling-state"), move |webrtcbin, _| {
            if let Some(live) = weak.upgrade() {
                *live.pts.lock() = negotiated_payload_types(webrtcbin);
            }
        });
        *live.pts.lock() = negotiated_payload_types(webrtcbin);
        let count = {
            let weak = Arc::downgrade(&live);
            move |element: &gst::Element| {
                if element.type_().name() == "TransportSendBin"
                    && let Some(pad) = element.static_pad("rtp_sink")
                {
                    count_rtp(&pad, weak.clone(), Side::Sent);
                }
            }
        };
        if let Some(bin) = webrtcbin.downcast_ref::<gst::Bin>() {
            for element in bin.iterate_recurse().into_iter().flatten() {
                count(&element);
            }
            bin.connect_deep_element_added(move |_, _, element| count(element));
        }
        SendMeter { live }
    }

    /// What the `webrtcbin` sent so far.
    pub fn counts(&self) -> DirectionCounts {
        self.live.sent.snapshot()
    }
}
