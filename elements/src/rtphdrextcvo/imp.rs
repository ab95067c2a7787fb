// SPDX-License-Identifier: MIT OR Apache-2.0
//! `rtphdrextcvo` subclass implementation.

use parking_lot::Mutex;
use std::sync::LazyLock;

use gst::glib;
use gst::subclass::prelude::*;
use gst_rtp::subclass::prelude::*;

use super::{camera_from_cvo, cvo_byte, orientation_from_cvo};
use crate::meta;
use crate::orientation::{CameraFacing, Orientation};

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "rtphdrextcvo",
        gst::DebugColorFlags::empty(),
        Some("RTP CVO (urn:3gpp:video-orientation) header extension"),
    )
});

#[derive(Default)]
struct State {
    /// Last orientation written (send) or read (receive).
    last: Orientation,
    /// Last camera written or read.
    camera: Option<CameraFacing>,
}

#[derive(Default)]
pub struct RtpHeaderExtCvo {
    state: Mutex<State>,
}

#[glib::object_subclass]
impl ObjectSubclass for RtpHeaderExtCvo {
    const NAME: &'static str = "GstRtpHeaderExtCvo";
    type Type = super::RtpHeaderExtCvo;
    type ParentType = gst_rtp::RTPHeaderExtension;
}

impl ObjectImpl for RtpHeaderExtCvo {}

impl GstObjectImpl for RtpHeaderExtCvo {}

impl ElementImpl for RtpHeaderExtCvo {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static ELEMENT_METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            crate::element_metadata(
                "RTP CVO (video orientation) header extension",
                gst_rtp::RTP_HDREXT_ELEMENT_CLASS,
                "Writes the picture orientation and camera into the urn:3gpp:video-orientation \
                 extension of the last packet of each frame, and attaches them as orientation \
                 meta to depayloaded buffers",
                "rtphdrextcvo",
            )
        });
        Some(&*ELEMENT_METADATA)
    }
}

impl RTPHeaderExtensionImpl for RtpHeaderExtCvo {
    const URI: &'static str = super::URI;

    fn supported_flags(&self) -> gst_rtp::RTPHeaderExtensionFlags {
        gst_rtp::RTPHeaderExtensionFlags::ONE_BYTE | gst_rtp::RTPHeaderExtensionFlags::TWO_BYTE
    }

    fn max_size(&self, _input: &gst::BufferRef) -> usize {
        1
    }

    fn write(
        &self,
        input: &gst::BufferRef,
        _write_flags: gst_rtp::RTPHeaderExtensionFlags,
        output: &gst::BufferRef,
        output_data: &mut [u8],
    ) -> Result<usize, gst::LoggableError> {
        let (o, camera) = {
            let mut state = self.state.lock();
            if let Some(o) = meta::orientation(input) {
                state.last = o;
                state.camera = meta::camera(input);
            }
            (state.last, state.camera)
        };
        let marker = gst_rtp::RTPBuffer::from_buffer_readable(output)
            .map(|rtp| rtp.is_marker())
            .map_err(|e| gst::loggable_error!(CAT, "output is not an RTP packet: {e}"))?;
        if !marker {
            return Ok(0);
        }
        let Some(slot) = output_data.first_mut() else {
            return Err(gst::loggable_error!(CAT, "no room for the CVO byte"));
        };
        *slot = cvo_byte(o, camera);
        gst::trace!(CAT, imp = self, "wrote {} as {:#04x}", o.tag_value(), *slot);
        Ok(1)
    }

    fn read(
        &self,
        _read_flags: gst_rtp::RTPHeaderExtensionFlags,
        input_data: &[u8],
        output: &mut gst::BufferRef,
    ) -> Result<(), gst::LoggableError> {
        let Some(&b) = input_data.first() else {
            return Err(gst::loggable_error!(
                CAT,
                "CVO extension element is empty (expected 1 byte)"
            ));
        };
        let o = orientation_from_cvo(b);
        let camera = camera_from_cvo(b);
        let mut state = self.state.lock();
        if state.last != o || state.camera != Some(camera) {
            gst::debug!(
                CAT,
                imp = self,
                "received {} from a {camera:?} camera",
                o.tag_value()
            );
        }
        state.last = o;
        state.camera = Some(camera);
        drop(state);
        meta::set_orientation(output, o, Some(camera));
        Ok(())
    }
}
