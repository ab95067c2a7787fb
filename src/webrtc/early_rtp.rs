//! RTP that arrives before webrtcbin has linked its receive path must not stop the transport.
//!
//! webrtcbin 1.22 links a transport's RTP output into `rtpbin` (`recv_rtp_sink_N`) only when a
//! description first makes one of its m-lines receive. When that happens in a renegotiation of
//! a connection that is already up, the remote side may start sending on the new m-lines
//! before this side has applied the answer: a browser answering our re-offer sends as soon as
//! it set its own answer, which reaches us over the signalling server later than its first
//! RTP packets reach us directly. A packet pushed while the transport receive bin's `rtp_src`
//! pad is still unlinked returns `not-linked` up to `nicesrc`, whose streaming task then stops
//! for good ("streaming stopped, reason not-linked"): no more STUN answers, so the remote
//! side's ICE goes `disconnected` and then `failed` seconds later, although the negotiation was
//! correct. This was the browser late-publish flake (docs/web.md, "Negotiation").
//!
//! The fix: a probe on every transport receive bin's `rtp_src` pad drops RTP while that pad has
//! no peer (a dropped buffer returns `ok`). The few packets lost this way are what any receiver
//! loses before it is ready; the sender's next keyframe (or our PLI) starts the picture.

use gst::prelude::*;

/// GObject type name of webrtcbin's internal per-transport receive bin (not a public factory).
const TRANSPORT_RECEIVE_BIN: &str = "TransportReceiveBin";

/// Watch `webrtcbin` for transport receive bins and guard each one's RTP output (see the
/// module documentation). Call once, right after creating the element.
pub(crate) fn guard(webrtcbin: &gst::Element) {
    let Some(bin) = webrtcbin.downcast_ref::<gst::Bin>() else {
        return;
    };
    // Bins that exist already (none for a new webrtcbin), then every one added later.
    for child in bin.iterate_elements().into_iter().flatten() {
        guard_receive_bin(&child);
    }
    bin.connect_element_added(|_, child| guard_receive_bin(child));
}

fn guard_receive_bin(element: &gst::Element) {
    if element.type_().name() != TRANSPORT_RECEIVE_BIN {
        return;
    }
    let Some(pad) = element.static_pad("rtp_src") else {
        tracing::warn!(
            element = %element.name(),
            "webrtcbin transport receive bin without an rtp_src pad: early RTP is not guarded"
        );
        return;
    };
    pad.add_probe(
        gst::PadProbeType::BUFFER | gst::PadProbeType::BUFFER_LIST,
        |pad, _| {
            if pad.is_linked() {
                gst::PadProbeReturn::Ok
            } else {
                gst::PadProbeReturn::Drop
            }
        },
    );
}
