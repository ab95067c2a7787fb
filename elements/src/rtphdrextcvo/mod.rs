// SPDX-License-Identifier: MIT OR Apache-2.0
//! `rtphdrextcvo`: the Coordination of Video Orientation RTP header extension,
//! `urn:3gpp:video-orientation` (3GPP TS 26.114, section 7.4.5), as a
//! `GstRTPHeaderExtension`.
//!
//! Payload: one byte `0 0 0 0 C F R1 R0` (one-byte or two-byte header form):
//! - `R1 R0`: rotation in quarter turns. Like WebRTC/Chromium (`ConvertCVOByteToVideoRotation`),
//!   value `n` means the receiver must rotate the picture `n * 90` degrees clockwise to show
//!   it upright, i.e. the `image-orientation` tag `rotate-(n*90)`.
//! - `F`: horizontal flip (the `flip-rotate-*` tags: mirror, then rotate).
//! - `C`: camera, 0 = front (facing the user, and the value when unknown), 1 = back. Written
//!   from the meta's camera (`sensorrotation camera-facing`: `back` gives 1, `front`,
//!   `external` and unknown give 0); Chromium ignores `C` and `F`.
//!
//! Sending: the payloader calls the extension for every packet; the orientation comes from
//! the [`crate::meta`] orientation meta of the input buffer (set by `sensorrotation` and kept
//! by encoders; the last seen value is reused for buffers without one, `rotate-0` before the
//! first) and is written only on the marker (last) packet of each frame.
//!
//! Receiving: the depayloader hands over the extension of the marker packet; the orientation
//! and the camera (`C`) are attached as the orientation meta to the depayloaded buffer. A header extension has no
//! pad of its own, so the `image-orientation` tag is produced downstream by
//! `sensorrotation mode=follow-meta` (after the decoder, which keeps the meta), exactly one
//! tag per change.
//!
//! ```
//! use gststreamwire::orientation::{CameraFacing, Orientation, Rotation};
//! use gststreamwire::rtphdrextcvo::{camera_from_cvo, cvo_byte, orientation_from_cvo};
//! let o = Orientation { rotation: Rotation::R270, flip: true };
//! assert_eq!(cvo_byte(o, Some(CameraFacing::Front)), 0b0000_0111);
//! assert_eq!(cvo_byte(Orientation::rotated(Rotation::R90), Some(CameraFacing::Back)), 0b0000_1001);
//! assert_eq!(orientation_from_cvo(0b0000_1001), Orientation::rotated(Rotation::R90));
//! assert_eq!(camera_from_cvo(0b0000_1001), CameraFacing::Back);
//! ```

use gst::glib;
use gst::prelude::*;

use crate::orientation::{CameraFacing, Orientation, Rotation};

mod imp;

/// The extension's URI.
pub const URI: &str = "urn:3gpp:video-orientation";

/// Encodes an orientation and camera as a CVO byte `0 0 0 0 C F R1 R0`; `C` is 1 for a back
/// camera only (TS 26.114: 0 for front and when unknown).
pub fn cvo_byte(o: Orientation, camera: Option<CameraFacing>) -> u8 {
    (u8::from(camera == Some(CameraFacing::Back)) << 3)
        | (u8::from(o.flip) << 2)
        | (o.rotation.quarter_turns() as u8)
}

/// The camera of a CVO byte (`C` bit).
pub fn camera_from_cvo(b: u8) -> CameraFacing {
    if b & 0b1000 != 0 {
        CameraFacing::Back
    } else {
        CameraFacing::Front
    }
}

/// Decodes the orientation of a CVO byte; the camera bit and the reserved high bits are
/// ignored.
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
        let front = Some(CameraFacing::Front);
        assert_eq!(cvo_byte(Orientation::rotated(Rotation::R0), front), 0);
        assert_eq!(cvo_byte(Orientation::rotated(Rotation::R90), front), 1);
        assert_eq!(cvo_byte(Orientation::rotated(Rotation::R180), front), 2);
        assert_eq!(cvo_byte(Orientation::rotated(Rotation::R270), front), 3);
        let o = Orientation::rotated(Rotation::R0);
        assert_eq!(cvo_byte(o, Some(CameraFacing::Back)), 0b1000);
        assert_eq!(cvo_byte(o, Some(CameraFacing::External)), 0);
        assert_eq!(cvo_byte(o, None), 0);
        for flip in [false, true] {
            for r in Rotation::ALL {
                let o = Orientation { rotation: r, flip };
                for cam in [CameraFacing::Front, CameraFacing::Back] {
                    let b = cvo_byte(o, Some(cam));
                    assert_eq!(orientation_from_cvo(b), o);
                    assert_eq!(camera_from_cvo(b), cam);
                    // reserved bits do not change the meaning
                    assert_eq!(orientation_from_cvo(b | 0b1111_0000), o);
                    assert_eq!(camera_from_cvo(b | 0b1111_0000), cam);
                }
            }
        }
    }
}
