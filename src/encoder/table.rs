//! The one table of encoder candidates: which element, which codec, hardware or not, how to make
//! it real-time, and which property (in which unit) carries the bitrate and the keyframe interval.
//!
//! Order is priority: for each codec, hardware candidates come first (whatever their GStreamer rank:
//! `vah264enc` has rank NONE in 1.22), then software. Properties an installed version does not have
//! are skipped with a debug log, so one row can cover several releases of an element.

use super::Codec;

/// Unit of a bitrate property.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BitrateUnit {
    /// bit/s.
    BitsPerSecond,
    /// kbit/s.
    KilobitsPerSecond,
}

/// How the bitrate is set, at start and while playing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BitrateControl {
    /// A numeric property.
    Property(&'static str, BitrateUnit),
    /// A field of the V4L2 `extra-controls` structure, in bit/s.
    V4l2Control(&'static str),
}

/// How the keyframe interval is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyframeControl {
    /// A property counted in frames.
    Frames(&'static str),
    /// A property counted in whole seconds (rounded up).
    Seconds(&'static str),
    /// A field of the V4L2 `extra-controls` structure, in frames.
    V4l2Control(&'static str),
}

/// One encoder element Streamwire knows how to drive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    /// Element factory name, or a prefix ending in `*` (e.g. `amcvidenc-*`), in which case the
    /// factory must also produce the codec's caps.
    pub factory: &'static str,
    /// Codec produced.
    pub codec: Codec,
    /// Hardware (GPU / SoC) encoder.
    pub hardware: bool,
    /// API family, for messages (`VA-API`, `NVENC`, `x264`, ...).
    pub family: &'static str,
    /// Real-time settings (no B-frames, zero latency, CBR), as gst-launch property strings.
    pub realtime: &'static [(&'static str, &'static str)],
    /// Bitrate property and unit; changeable while playing.
    pub bitrate: BitrateControl,
    /// Keyframe interval property.
    pub keyframe: KeyframeControl,
}

use BitrateControl::{Property, V4l2Control};
use BitrateUnit::{BitsPerSecond as Bps, KilobitsPerSecond as Kbps};
use KeyframeControl::{Frames, Seconds};

const VA_H26X: &[(&str, &str)] = &[
    ("b-frames", "0"),
    ("rate-control", "cbr"),
    ("target-usage", "7"),
];
const VAAPI: &[(&str, &str)] = &[("max-bframes", "0"), ("rate-control", "cbr")];
const NVENC: &[(&str, &str)] = &[
    ("bframes", "0"),
    ("rc-mode", "cbr"),
    ("zerolatency", "true"),
    ("zero-reorder-delay", "true"),
    ("preset", "low-latency-hq"),
];
const QSV: &[(&str, &str)] = &[
    ("b-frames", "0"),
    ("rate-control", "cbr"),
    ("target-usage", "7"),
];
const VTENC: &[(&str, &str)] = &[("realtime", "true"), ("allow-frame-reordering", "false")];
const NONE: &[(&str, &str)] = &[];

macro_rules! hw {
    ($f:literal, $c:ident, $fam:literal, $rt:expr, $br:expr, $kf:expr) => {
        Candidate {
            factory: $f,
            codec: Codec::$c,
            hardware: true,
            family: $fam,
            realtime: $rt,
            bitrate: $br,
            keyframe: $kf,
        }
    };
}
macro_rules! sw {
    ($f:literal, $c:ident, $fam:literal, $rt:expr, $br:expr, $kf:expr) => {
        Candidate {
            factory: $f,
            codec: Codec::$c,
            hardware: false,
            family: $fam,
            realtime: $rt,
            bitrate: $br,
            keyframe: $kf,
        }
    };
}

/// Every candidate, in priority order (hardware first within each codec).
pub const CANDIDATES: &[Candidate] = &[
    // ---- H.264 ----
    hw!(
        "vah264enc",
        H264,
        "VA-API",
        VA_H26X,
        Property("bitrate", Kbps),
        Frames("key-int-max")
    ),
    hw!(
        "vah264lpenc",
        H264,
        "VA-API",
        VA_H26X,
        Property("bitrate", Kbps),
        Frames("key-int-max")
    ),
    hw!(
        "vaapih264enc",
        H264,
        "VA-API (gstreamer-vaapi)",
        VAAPI,
        Property("bitrate", Kbps),
        Frames("keyframe-period")
    ),
    hw!(
        "vtenc_h264_hw",
        H264,
        "VideoToolbox",
        VTENC,
        Property("bitrate", Kbps),
        Frames("max-keyframe-interval")
    ),
    hw!(
        "amcvidenc-*",
        H264,
        "MediaCodec",
        NONE,
        Property("bitrate", Bps),
        Seconds("i-frame-interval")
    ),
    hw!(
        "nvh264enc",
        H264,
        "NVENC",
        NVENC,
        Property("bitrate", Kbps),
        Frames("gop-size")
    ),
    hw!(
        "nvcudah264enc",
        H264,
        "NVENC (CUDA)",
        NVENC,
        Property("bitrate", Kbps),
        Frames("gop-size")
    ),
    hw!(
        "qsvh264enc",
        H264,
        "Intel QSV",
        QSV,
        Property("bitrate", Kbps),
        Frames("gop-size")
    ),
    hw!(
        "v4l2h264enc",
        H264,
        "V4L2 M2M",
        NONE,
        V4l2Control("video_bitrate"),
        KeyframeControl::V4l2Control("h264_i_frame_period")
    ),
    sw!(
        "x264enc",
        H264,
        "x264",
        &[
            ("tune", "zerolatency"),
            ("speed-preset", "ultrafast"),
            ("bframes", "0"),
            ("pass", "cbr"),
            ("vbv-buf-capacity", "300")
        ],
        Property("bitrate", Kbps),
        Frames("key-int-max")
    ),
    sw!(
        "openh264enc",
        H264,
        "OpenH264",
        &[
            ("usage-type", "camera"),
            ("rate-control", "bitrate"),
            ("complexity", "low")
        ],
        Property("bitrate", Bps),
        Frames("gop-size")
    ),
    // ---- VP8 ----
    hw!(
        "vavp8enc",
        Vp8,
        "VA-API",
        VA_H26X,
        Property("bitrate", Kbps),
        Frames("key-int-max")
    ),
    hw!(
        "vaapivp8enc",
        Vp8,
        "VA-API (gstreamer-vaapi)",
        &[("rate-control", "cbr")],
        Property("bitrate", Kbps),
        Frames("keyframe-period")
    ),
    hw!(
        "amcvidenc-*",
        Vp8,
        "MediaCodec",
        NONE,
        Property("bitrate", Bps),
        Seconds("i-frame-interval")
    ),
    hw!(
        "v4l2vp8enc",
        Vp8,
        "V4L2 M2M",
        NONE,
        V4l2Control("video_bitrate"),
        KeyframeControl::V4l2Control("video_gop_size")
    ),
    sw!(
        "vp8enc",
        Vp8,
        "libvpx",
        &[
            ("deadline", "1"),
            ("end-usage", "cbr"),
            ("lag-in-frames", "0"),
            ("cpu-used", "8"),
            ("error-resilient", "default")
        ],
        Property("target-bitrate", Bps),
        Frames("keyframe-max-dist")
    ),
    // ---- VP9 ----
    hw!(
        "vavp9enc",
        Vp9,
        "VA-API",
        VA_H26X,
        Property("bitrate", Kbps),
        Frames("key-int-max")
    ),
    hw!(
        "vavp9lpenc",
        Vp9,
        "VA-API",
        VA_H26X,
        Property("bitrate", Kbps),
        Frames("key-int-max")
    ),
    hw!(
        "vaapivp9enc",
        Vp9,
        "VA-API (gstreamer-vaapi)",
        &[("rate-control", "cbr")],
        Property("bitrate", Kbps),
        Frames("keyframe-period")
    ),
    hw!(
        "amcvidenc-*",
        Vp9,
        "MediaCodec",
        NONE,
        Property("bitrate", Bps),
        Seconds("i-frame-interval")
    ),
    hw!(
        "qsvvp9enc",
        Vp9,
        "Intel QSV",
        QSV,
        Property("bitrate", Kbps),
        Frames("gop-size")
    ),
    hw!(
        "v4l2vp9enc",
        Vp9,
        "V4L2 M2M",
        NONE,
        V4l2Control("video_bitrate"),
        KeyframeControl::V4l2Control("video_gop_size")
    ),
    sw!(
        "vp9enc",
        Vp9,
        "libvpx",
        &[
            ("deadline", "1"),
            ("end-usage", "cbr"),
            ("lag-in-frames", "0"),
            ("cpu-used", "8"),
            ("row-mt", "true"),
            ("tile-columns", "2"),
            ("threads", "2")
        ],
        Property("target-bitrate", Bps),
        Frames("keyframe-max-dist")
    ),
    // ---- AV1 ----
    hw!(
        "vaav1enc",
        Av1,
        "VA-API",
        VA_H26X,
        Property("bitrate", Kbps),
        Frames("key-int-max")
    ),
    hw!(
        "vaav1lpenc",
        Av1,
        "VA-API",
        VA_H26X,
        Property("bitrate", Kbps),
        Frames("key-int-max")
    ),
    hw!(
        "amcvidenc-*",
        Av1,
        "MediaCodec",
        NONE,
        Property("bitrate", Bps),
        Seconds("i-frame-interval")
    ),
    hw!(
        "nvav1enc",
        Av1,
        "NVENC",
        NVENC,
        Property("bitrate", Kbps),
        Frames("gop-size")
    ),
    hw!(
        "nvcudaav1enc",
        Av1,
        "NVENC (CUDA)",
        NVENC,
        Property("bitrate", Kbps),
        Frames("gop-size")
    ),
    hw!(
        "qsvav1enc",
        Av1,
        "Intel QSV",
        QSV,
        Property("bitrate", Kbps),
        Frames("gop-size")
    ),
    sw!(
        "svtav1enc",
        Av1,
        "SVT-AV1",
        &[("preset", "12")],
        Property("target-bitrate", Kbps),
        Frames("intra-period-length")
    ),
    sw!(
        "rav1enc",
        Av1,
        "rav1e",
        &[("low-latency", "true"), ("speed-preset", "10")],
        Property("bitrate", Bps),
        Frames("max-key-frame-interval")
    ),
    sw!(
        "av1enc",
        Av1,
        "libaom",
        // The element's quantizer defaults are 0..0, on which libaom 3.6 aborts in CBR mode
        // (ratectrl.c assertion); an explicit range avoids it.
        &[
            ("usage-profile", "realtime"),
            ("end-usage", "cbr"),
            ("lag-in-frames", "0"),
            ("cpu-used", "10"),
            ("row-mt", "true"),
            ("threads", "2"),
            ("min-quantizer", "4"),
            ("max-quantizer", "56")
        ],
        Property("target-bitrate", Kbps),
        Frames("keyframe-max-dist")
    ),
];

impl Candidate {
    /// Does this candidate's factory pattern match `name`?
    pub fn matches(&self, name: &str) -> bool {
        match self.factory.strip_suffix('*') {
            Some(prefix) => name.starts_with(prefix),
            None => name == self.factory,
        }
    }

    /// The candidate row driving `factory_name` (first match in priority order).
    pub fn for_factory(factory_name: &str, codec: Option<Codec>) -> Option<&'static Candidate> {
        CANDIDATES
            .iter()
            .find(|c| c.matches(factory_name) && codec.is_none_or(|k| k == c.codec))
    }
}
