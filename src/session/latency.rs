//! Capture-to-decode latency of a session's video, measured in the picture itself.
//!
//! [`stamp_frames`] paints a frame counter into the luma plane of every raw frame (32 blocks
//! along the top: a 24-bit counter and an 8-bit check) and reports its capture time;
//! [`read_stamp`] reads the counter back from a decoded frame, so the counter survives encoding,
//! RTP and decoding. [`FrameStamper`] puts both on a session: it stamps right before the
//! publisher's encoder and reads at a subscriber's decoder output, in the same process. Both
//! ends use GStreamer's monotonic system clock, so the difference is the decoded latency.
//! (`streamwire bench latency` measures with the same counter.)
//!
//! ```no_run
//! # async fn f(session_a: &streamwire::session::Session, session_b: &streamwire::session::Session) {
//! use streamwire::session::latency::FrameStamper;
//! let stamper = FrameStamper::new();
//! stamper.stamp(&session_a.publisher().await.unwrap());
//! stamper.measure(session_b.subscriber());
//! // later
//! println!("{:?}", stamper.take_samples_ms());
//! # }
//! ```

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use gst::prelude::*;
use gst_video::prelude::*;
use parking_lot::Mutex;

use crate::webrtc::publisher::Publisher;
use crate::webrtc::subscriber::Subscriber;

/// Bits painted per frame: a 24-bit counter and its 8-bit check.
const BITS: usize = 32;

/// The narrowest frame (pixels) [`stamp_frames`] can paint a counter into; narrower frames
/// pass unstamped.
pub const MIN_STAMP_WIDTH: i32 = 144;

/// Block size and top row of the painted blocks for a frame `width` pixels wide; `None` when
/// the frame is too narrow to carry them.
fn geometry(width: usize) -> Option<(usize, usize)> {
    let block = ((width.saturating_sub(16)) / BITS).min(32);
    (block >= 4).then_some((block, 8))
}

fn check_byte(n: u32) -> u32 {
    (n ^ (n >> 8) ^ (n >> 16) ^ 0x5a) & 0xff
}

/// Paint `n` (24 bits) and its check byte into the luma plane.
fn paint(plane: &mut [u8], stride: usize, width: usize, n: u32) {
    let Some((block, top)) = geometry(width) else {
        return;
    };
    let word = (n & 0xff_ffff) | (check_byte(n & 0xff_ffff) << 24);
    for bit in 0..BITS {
        let v = if word & (1 << bit) != 0 { 235 } else { 16 };
        let x0 = 8 + bit * block;
        for y in top..top + block {
            let row = y * stride;
            if let Some(px) = plane.get_mut(row + x0..row + x0 + block) {
                px.fill(v);
            }
        }
    }
}

/// Read a painted counter back; `None` if the check byte does not match.
fn read(plane: &[u8], stride: usize, width: usize) -> Option<u32> {
    let (block, top) = geometry(width)?;
    let mut word = 0u32;
    let q = block / 4;
    for bit in 0..BITS {
        let x0 = 8 + bit * block + q;
        let (mut sum, mut count) = (0u32, 0u32);
        for y in top + q..top + block - q {
            let row = y * stride;
            for px in plane.get(row + x0..row + x0 + block - 2 * q)? {
                sum += u32::from(*px);
                count += 1;
            }
        }
        if count > 0 && sum / count > 128 {
            word |= 1 << bit;
        }
    }
    let n = word & 0xff_ffff;
    (word >> 24 == check_byte(n)).then_some(n)
}

fn now_ns(clock: &gst::Clock) -> u64 {
    clock.time().nseconds()
}

/// Paint a 24-bit frame counter into the luma plane of every raw video frame passing `pad`
/// (any raw format whose first plane is luma, e.g. I420 or NV12, at least [`MIN_STAMP_WIDTH`]
/// pixels wide),
/// starting at 1, and call `on_stamp(counter, capture_time_ns)` for each frame, the time read
/// from `clock` right after painting. Frames whose caps or memory cannot be mapped pass
/// unchanged and are not reported.
///
/// ```
/// use gst::prelude::*;
/// use streamwire::session::latency::{read_stamp, stamp_frames};
///
/// streamwire::gst_init::init().unwrap();
/// let pipeline = gst::parse::launch(
///     "videotestsrc num-buffers=3 ! video/x-raw,format=I420,width=320,height=240 \
///      ! identity name=stamp ! appsink name=out",
/// )
/// .unwrap()
/// .downcast::<gst::Pipeline>()
/// .unwrap();
/// let pad = pipeline.by_name("stamp").unwrap().static_pad("src").unwrap();
/// stamp_frames(&pad, gst::SystemClock::obtain(), |_, _| {});
/// let out = pipeline.by_name("out").unwrap().downcast::<gst_app::AppSink>().unwrap();
/// pipeline.set_state(gst::State::Playing).unwrap();
/// let sample = out.pull_sample().unwrap();
/// let caps = sample.caps().unwrap().to_owned();
/// assert_eq!(read_stamp(sample.buffer().unwrap(), &caps), Some(1));
/// pipeline.set_state(gst::State::Null).unwrap();
/// ```
pub fn stamp_frames(
    pad: &gst::Pad,
    clock: gst::Clock,
    on_stamp: impl Fn(u32, u64) + Send + Sync + 'static,
) {
    let counter = AtomicU32::new(1);
    pad.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
        let Some(caps) = pad.current_caps() else {
            return gst::PadProbeReturn::Ok;
        };
        let Ok(vinfo) = gst_video::VideoInfo::from_caps(&caps) else {
            return gst::PadProbeReturn::Ok;
        };
        let Some(buf) = info.buffer_mut() else {
            return gst::PadProbeReturn::Ok;
        };
        let n = counter.fetch_add(1, Ordering::Relaxed) & 0xff_ffff;
        let buf = buf.make_mut();
        let Ok(mut frame) = gst_video::VideoFrameRef::from_buffer_ref_writable(buf, &vinfo) else {
            return gst::PadProbeReturn::Ok;
        };
        let stride = usize::try_from(frame.plane_stride()[0]).unwrap_or(0);
        let w = vinfo.width() as usize;
        let Ok(plane) = frame.plane_data_mut(0) else {
            return gst::PadProbeReturn::Ok;
        };
        paint(plane, stride, w, n);
        on_stamp(n, now_ns(&clock));
        gst::PadProbeReturn::Ok
    });
}

/// The counter [`stamp_frames`] painted into the raw frame `buf` (with `caps`), read back;
/// `None` when the frame cannot be mapped or carries no readable counter (the check byte does
/// not match).
pub fn read_stamp(buf: &gst::BufferRef, caps: &gst::Caps) -> Option<u32> {
    let info = gst_video::VideoInfo::from_caps(caps).ok()?;
    let frame = gst_video::VideoFrameRef::from_buffer_ref_readable(buf, &info).ok()?;
    let stride = usize::try_from(*frame.plane_stride().first()?).ok()?;
    read(frame.plane_data(0).ok()?, stride, info.width() as usize)
}

/// Capture times of stamped frames by counter, keeping only about the latest 2,048 frames
/// (bounded however long a session runs).
///
/// ```
/// use streamwire::session::latency::CaptureTimes;
/// let times = CaptureTimes::default();
/// for n in 1..=5000 {
///     times.remember(n, u64::from(n) * 1000);
/// }
/// assert_eq!(times.get(5000), Some(5_000_000));
/// assert_eq!(times.get(1), None);
/// ```
#[derive(Debug, Default)]
pub struct CaptureTimes(Mutex<HashMap<u32, u64>>);

impl CaptureTimes {
    /// Frame `n` was captured at `t_ns`.
    pub fn remember(&self, n: u32, t_ns: u64) {
        let mut map = self.0.lock();
        map.insert(n, t_ns);
        if map.len() > 4096 {
            let oldest = n.saturating_sub(2048);
            map.retain(|k, _| *k >= oldest);
        }
    }

    /// When frame `n` was captured, if it is still known.
    pub fn get(&self, n: u32) -> Option<u64> {
        self.0.lock().get(&n).copied()
    }
}

#[derive(Default)]
struct Shared {
    captured: CaptureTimes,
    samples: Mutex<Vec<f64>>,
}

/// Stamps published frames and measures when subscribers decode them.
#[derive(Clone)]
pub struct FrameStamper {
    clock: gst::Clock,
    shared: Arc<Shared>,
}

impl Default for FrameStamper {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for FrameStamper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameStamper").finish_non_exhaustive()
    }
}

impl FrameStamper {
    /// A stamper on GStreamer's system clock.
    pub fn new() -> Self {
        FrameStamper {
            clock: gst::SystemClock::obtain(),
            shared: Arc::default(),
        }
    }

    /// Paint the counter into every raw frame of `publisher` before encoding. Returns false if
    /// the publisher has no video.
    pub fn stamp(&self, publisher: &Publisher) -> bool {
        let Some(raw) = publisher.raw_video_pad() else {
            return false;
        };
        let shared = self.shared.clone();
        stamp_frames(&raw, self.clock.clone(), move |n, t| {
            shared.captured.remember(n, t)
        });
        true
    }

    /// Read the counter back from every frame `subscriber` decodes (replaces its decoded-video
    /// callback).
    pub fn measure(&self, subscriber: &Subscriber) {
        let clock = self.clock.clone();
        let shared = self.shared.clone();
        subscriber.on_decoded_video(move |_, buf, caps| {
            let t = now_ns(&clock);
            let Some(n) = read_stamp(buf, caps) else {
                return;
            };
            let Some(t0) = shared.captured.get(n) else {
                return;
            };
            shared
                .samples
                .lock()
                .push(t.saturating_sub(t0) as f64 / 1e6);
        });
    }

    /// Latency samples (ms) collected since the last call.
    pub fn take_samples_ms(&self) -> Vec<f64> {
        std::mem::take(&mut *self.shared.samples.lock())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_round_trips_through_the_luma_plane() {
        let (w, h) = (1280usize, 64usize);
        let mut plane = vec![128u8; w * h];
        for n in [0u32, 1, 0xabcdef, 0xff_ffff, 123_456] {
            paint(&mut plane, w, w, n);
            assert_eq!(read(&plane, w, w), Some(n));
        }
        // A corrupted block fails the check byte instead of giving a wrong number.
        paint(&mut plane, w, w, 42);
        let (block, top) = geometry(w).unwrap();
        for y in top..top + block {
            let x0 = 8; // bit 0, which is 0 in 42
            plane[y * w + x0..y * w + x0 + block].fill(235);
        }
        assert_eq!(read(&plane, w, w), None);
        let min = MIN_STAMP_WIDTH as usize;
        assert!(geometry(min).is_some() && geometry(min - 1).is_none());
    }
}
