// SPDX-License-Identifier: MIT OR Apache-2.0
//! `rtphdrextcvo`: the Coordination of Video Orientation RTP header extension,
//! `urn:3gpp:video-orientation` (3GPP TS 26.114, section 7.4.5), as a
//! `GstRTPHeaderExtension`.
//!
//! Payload: one byte `0 0 0 0 C F R1 R0` (one-byte or two-byte header form):
//! - `R1 R0`: rotation in quarter turns. Like WebRTC/Chromium (`ConvertCVOByteToVideoRotation`),
//!   value `n` means the receiver must rotate the picture `n * 90` degrees clockwise to show
//!   it upright, i.e. the `image-orientation` tag `rotate-(n*90)`.
//! - `F`: horizontal flip (the `flip-rotate-*` tags). `C`: camera (0 front, 1 back); written
//!   as 0 and ignored on read, like WebRTC.
//!
//! Sending: the payloader calls the extension for every packet; the orientation comes from
//! the [`crate::meta`] orientation meta of the input buffer (set by `sensorrotation` and kept
//! by encoders; the last seen value is reused for buffers without one, `rotate-0` before the
//! first) and is written only on the marker (last) packet of each frame.
//!
//! Receiving: the depayloader hands over the extension of the marker packet; the orientation
//! is attached as the orientation meta to the depayloaded buffer. A header extension has no
//! pad of its own, so the `image-orientation` tag is produced downstream by
//! `sensorrotation mode=follow-meta` (after the decoder, which keeps the meta), exactly one
//! tag per change.
//!
//! ```
//! use gststreamwire::orientation::{Orientation, Rotation};
//! use gststreamwire::rtphdrextcvo::{cvo_byte, orientation_from_cvo};
//! let o = Orientation { rotation: Rotation::R270, flip: true };
//! assert_eq!(cvo_byte(o), 0b0000_0111);
//! assert_eq!(orientation_from_cvo(0b0000_1001), Orientation::rotated(Rotation::R90));
//! ```

use gst::glib;
use gst::prelude::*;

use crate::orientation::{Orientation, Rotation};

mod imp;

/// The extension's URI.
pub const URI: &str = "urn:3gpp:video-orientation";

/// Encodes an orientation as a CVO byte (`C` = 0).
pub fn cvo_byte(o: Orientation) -> u8 {
    (u8::from(o.flip) << 2) | (o.rotation.quarter_turns() as u8)
}

/// Decodes a CVO byte; the camera bit and the reserved high bits are ignored.
pub fn orientation_from_cvo(b: u8) -> Orientation {
    Orientation {
        rotation: Rotation::from_quarter_turns(u32::from(b & 0b11)),
        flip: b & 0b100 != 0,
    }
}

glib::wrapper! {
    /// The `rtphdrextcvo` RTP header extension.
    pub struct RtpHeaderExtCvo(ObjectSubclass<imp::RtpHeaderExtCvo>)
        @extends gst_rtp::RTPHeaderExtension, gst::Element, gst::Object;
}

/// Registers `rtphdrextcvo` with `plugin`.
pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(
        Some(plugin),
        "rtphdrextcvo",
        gst::Rank::MARGINAL,
        RtpHeaderExtCvo::static_type(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cvo_bytes_match_webrtc_layout() {
        assert_eq!(cvo_byte(Orientation::rotated(Rotation::R0)), 0);
        assert_eq!(cvo_byte(Orientation::rotated(Rotation::R90)), 1);
        assert_eq!(cvo_byte(Orientation::rotated(Rotation::R180)), 2);
        assert_eq!(cvo_byte(Orientation::rotated(Rotation::R270)), 3);
        for flip in [false, true] {
            for r in Rotation::ALL {
                let o = Orientation { rotation: r, flip };
                assert_eq!(orientation_from_cvo(cvo_byte(o)), o);
                // camera bit and reserved bits do not change the meaning
                assert_eq!(orientation_from_cvo(cvo_byte(o) | 0b1111_1000), o);
            }
        }
    }
}
