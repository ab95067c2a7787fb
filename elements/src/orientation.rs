// SPDX-License-Identifier: MIT OR Apache-2.0
//! Pure orientation maths: gravity vector to device rotation with hysteresis and a
//! minimum hold time, device rotation to picture orientation for a front, back or external
//! camera, the `image-orientation` tag vocabulary, and the replay file format.
//!
//! Nothing here touches a pipeline, so it is unit-tested directly.
//!
//! # Conventions
//! Accelerometer axes follow the Android/Linux IIO convention for a device held in its
//! natural (portrait) orientation: `x` to the right, `y` up, `z` out of the screen. The
//! sensor reports the reaction to gravity, so a device standing upright reads about
//! `(0, +9.81, 0)`. Units do not matter (only the direction is used).
//!
//! The filter's [`Rotation`] is the device rotation: how far the device is turned clockwise
//! from its natural orientation, as Android's `OrientationEventListener` reports it (90 =
//! right edge down, `x` = -g, "left side at the top"). [`camera_orientation`] turns it into
//! the picture orientation with Android's camera rule (`CameraCharacteristics.SENSOR_ORIENTATION`).
//!
//! An [`Orientation`] is what GStreamer's `image-orientation` tag means and what
//! `videoflip video-direction=auto` applies to show the picture upright: `rotate-N` rotates
//! `N` degrees clockwise; `flip-rotate-N` mirrors horizontally first, then rotates `N`
//! degrees clockwise.
//!
//! ```
//! use gststreamwire::orientation::{FilterConfig, OrientationFilter, Rotation};
//! let mut f = OrientationFilter::new(FilterConfig { hysteresis_deg: 15.0, hold_ms: 100 });
//! f.observe(0, 0.0, 9.81, 0.0); // upright: the first reading is adopted at once
//! assert_eq!(f.poll(0), Rotation::R0);
//! f.observe(1000, -9.81, 0.0, 0.0); // right edge down
//! assert_eq!(f.poll(1050), Rotation::R0); // not held long enough yet
//! assert_eq!(f.poll(1100), Rotation::R90);
//! ```

use gst::glib;

use std::fmt;

/// Picture rotation in clockwise quarter turns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Rotation {
    /// Upright.
    #[default]
    R0,
    /// Rotate 90 degrees clockwise to display.
    R90,
    /// Rotate 180 degrees.
    R180,
    /// Rotate 270 degrees clockwise (90 counter-clockwise) to display.
    R270,
}

impl Rotation {
    /// All rotations in increasing order.
    pub const ALL: [Rotation; 4] = [Rotation::R0, Rotation::R90, Rotation::R180, Rotation::R270];

    /// Degrees clockwise: 0, 90, 180 or 270.
    ///
    /// ```
    /// assert_eq!(gststreamwire::orientation::Rotation::R270.degrees(), 270);
    /// ```
    pub fn degrees(self) -> u32 {
        self.quarter_turns() * 90
    }

    /// Quarter turns clockwise: 0..=3.
    pub fn quarter_turns(self) -> u32 {
        match self {
            Rotation::R0 => 0,
            Rotation::R90 => 1,
            Rotation::R180 => 2,
            Rotation::R270 => 3,
        }
    }

    /// From quarter turns (taken modulo 4).
    pub fn from_quarter_turns(q: u32) -> Rotation {
        Rotation::ALL[(q % 4) as usize]
    }

    /// From degrees; only exact multiples of 90 (modulo 360) are accepted.
    ///
    /// ```
    /// use gststreamwire::orientation::Rotation;
    /// assert_eq!(Rotation::from_degrees(450), Some(Rotation::R90));
    /// assert_eq!(Rotation::from_degrees(45), None);
    /// ```
    pub fn from_degrees(deg: u32) -> Option<Rotation> {
        deg.is_multiple_of(90)
            .then(|| Rotation::from_quarter_turns(deg / 90))
    }

    /// True for 90 and 270, where width and height swap.
    pub fn swaps_dimensions(self) -> bool {
        matches!(self, Rotation::R90 | Rotation::R270)
    }

    /// `self + other`, modulo a full turn.
    ///
    /// ```
    /// use gststreamwire::orientation::Rotation;
    /// assert_eq!(Rotation::R270.plus(Rotation::R180), Rotation::R90);
    /// ```
    pub fn plus(self, other: Rotation) -> Rotation {
        Rotation::from_quarter_turns(self.quarter_turns() + other.quarter_turns())
    }

    /// `self - other`, modulo a full turn.
    ///
    /// ```
    /// use gststreamwire::orientation::Rotation;
    /// assert_eq!(Rotation::R90.minus(Rotation::R180), Rotation::R270);
    /// ```
    pub fn minus(self, other: Rotation) -> Rotation {
        Rotation::from_quarter_turns(self.quarter_turns() + 4 - other.quarter_turns())
    }
}

/// Which way the camera faces (`camera-facing` of `sensorrotation`, the CVO `C` bit).
#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, Default, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstSensorRotationCameraFacing")]
pub enum CameraFacing {
    /// Facing the user (selfie camera): the picture is sent mirrored.
    #[enum_value(name = "Front: facing the user, mirrored", nick = "front")]
    Front = 0,
    /// Facing away from the user.
    #[default]
    #[enum_value(name = "Back: facing away from the user", nick = "back")]
    Back = 1,
    /// Not attached to the device (USB or network camera): the device rotation does not
    /// turn it.
    #[enum_value(name = "External: not turned by the device", nick = "external")]
    External = 2,
}

impl CameraFacing {
    /// Every value, in declaration order.
    pub const ALL: [CameraFacing; 3] = [
        CameraFacing::Front,
        CameraFacing::Back,
        CameraFacing::External,
    ];

    /// The `camera-facing` property value (`front`, `back`, `external`).
    ///
    /// ```
    /// use gststreamwire::orientation::CameraFacing;
    /// assert_eq!(CameraFacing::External.nick(), "external");
    /// ```
    pub fn nick(self) -> &'static str {
        match self {
            CameraFacing::Front => "front",
            CameraFacing::Back => "back",
            CameraFacing::External => "external",
        }
    }
}

/// The picture orientation for a camera whose sensor is mounted `sensor` degrees off the
/// device's natural orientation (Android's `SENSOR_ORIENTATION`: the clockwise rotation that
/// makes its image upright with the device in its natural orientation) when the device is
/// turned `device` degrees clockwise.
///
/// Android's rule (`CameraCharacteristics.SENSOR_ORIENTATION`): the image of a back camera is
/// upright after `(sensor + device) % 360` degrees clockwise, that of a front camera after
/// `(sensor - device + 360) % 360` (the front camera faces the other way, so it sees the
/// device turn the other way). A front camera's picture is shown mirrored, as its preview is
/// (`Camera.setDisplayOrientation`); since `flip-rotate-N` mirrors *before* rotating, the
/// mirrored picture's rotation is the negated one. An external camera is not turned by the
/// device: only `sensor` applies.
///
/// ```
/// use gststreamwire::orientation::{camera_orientation, CameraFacing, Orientation, Rotation};
/// // A back camera mounted at 90 degrees, device turned 90 degrees clockwise (landscape).
/// let o = camera_orientation(Rotation::R90, CameraFacing::Back, Rotation::R90);
/// assert_eq!(o, Orientation::rotated(Rotation::R180));
/// // A front camera mounted at 270 degrees, device upright: mirrored, rotated 90.
/// let o = camera_orientation(Rotation::R0, CameraFacing::Front, Rotation::R270);
/// assert_eq!(o.tag_value(), "flip-rotate-90");
/// ```
pub fn camera_orientation(device: Rotation, facing: CameraFacing, sensor: Rotation) -> Orientation {
    match facing {
        CameraFacing::Back => Orientation::rotated(sensor.plus(device)),
        CameraFacing::Front => Orientation {
            // Upright after `sensor - device`; mirrored first, so the other way round.
            rotation: device.minus(sensor),
            flip: true,
        },
        CameraFacing::External => Orientation::rotated(sensor),
    }
}

impl fmt::Display for Rotation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.degrees())
    }
}

/// A picture orientation as carried by the `image-orientation` tag: a rotation and an
/// optional horizontal flip applied before the rotation (`flip-rotate-N`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Orientation {
    /// Clockwise rotation to display the picture upright.
    pub rotation: Rotation,
    /// Horizontal mirror (`flip-rotate-*` tags, CVO `F` bit).
    pub flip: bool,
}

impl Orientation {
    /// An orientation without flip.
    pub fn rotated(rotation: Rotation) -> Self {
        Orientation {
            rotation,
            flip: false,
        }
    }

    /// The `image-orientation` tag value, e.g. `rotate-90` or `flip-rotate-180`.
    ///
    /// ```
    /// use gststreamwire::orientation::{Orientation, Rotation};
    /// assert_eq!(Orientation::rotated(Rotation::R90).tag_value(), "rotate-90");
    /// ```
    pub fn tag_value(self) -> &'static str {
        match (self.flip, self.rotation) {
            (false, Rotation::R0) => "rotate-0",
            (false, Rotation::R90) => "rotate-90",
            (false, Rotation::R180) => "rotate-180",
            (false, Rotation::R270) => "rotate-270",
            (true, Rotation::R0) => "flip-rotate-0",
            (true, Rotation::R90) => "flip-rotate-90",
            (true, Rotation::R180) => "flip-rotate-180",
            (true, Rotation::R270) => "flip-rotate-270",
        }
    }

    /// Parses an `image-orientation` tag value; `None` for anything else.
    ///
    /// ```
    /// use gststreamwire::orientation::{Orientation, Rotation};
    /// let o = Orientation::from_tag_value("flip-rotate-270").unwrap();
    /// assert!(o.flip);
    /// assert_eq!(o.rotation, Rotation::R270);
    /// ```
    pub fn from_tag_value(value: &str) -> Option<Self> {
        let (flip, rest) = match value.strip_prefix("flip-") {
            Some(rest) => (true, rest),
            None => (false, value),
        };
        let deg: u32 = rest.strip_prefix("rotate-")?.parse().ok()?;
        if deg >= 360 {
            return None;
        }
        Some(Orientation {
            rotation: Rotation::from_degrees(deg)?,
            flip,
        })
    }
}

/// Tuning of [`OrientationFilter`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FilterConfig {
    /// Degrees past the 45-degree boundary the device must turn before a new orientation
    /// becomes a candidate (0..45). 0 switches exactly at the boundary.
    pub hysteresis_deg: f64,
    /// Milliseconds a candidate orientation must persist before it is adopted.
    pub hold_ms: u64,
}

impl Default for FilterConfig {
    fn default() -> Self {
        FilterConfig {
            hysteresis_deg: 15.0,
            hold_ms: 300,
        }
    }
}

/// Largest accepted hysteresis: at 45 degrees the device could never leave an orientation.
pub const MAX_HYSTERESIS_DEG: f64 = 44.0;

/// Turns gravity samples into a stable [`Rotation`].
///
/// Samples are fed with [`observe`](Self::observe) and the current rotation is read with
/// [`poll`](Self::poll); both take a timestamp in milliseconds on any monotonic timeline.
#[derive(Debug, Clone)]
pub struct OrientationFilter {
    cfg: FilterConfig,
    current: Rotation,
    /// False until the first usable sample: that one is adopted without hold time or
    /// hysteresis (a device already in landscape at start is landscape from the first frame).
    settled: bool,
    candidate: Option<(Rotation, u64)>,
}

/// Clockwise device roll in degrees, `[0, 360)`, or `None` when the device lies too flat
/// (the gravity component in the screen plane is under half of the total) for the roll
/// to mean anything.
///
/// ```
/// let a = gststreamwire::orientation::roll_degrees(-1.0, 0.0, 0.0).unwrap();
/// assert!((a - 90.0).abs() < 1e-9);
/// assert!(gststreamwire::orientation::roll_degrees(0.0, 0.1, 9.8).is_none());
/// ```
pub fn roll_degrees(x: f64, y: f64, z: f64) -> Option<f64> {
    if !(x.is_finite() && y.is_finite() && z.is_finite()) {
        return None;
    }
    let planar = x.hypot(y);
    let total = (x * x + y * y + z * z).sqrt();
    if total <= f64::EPSILON || planar < 0.5 * total {
        return None;
    }
    Some((-x).atan2(y).to_degrees().rem_euclid(360.0))
}

fn angular_distance(a: f64, b: f64) -> f64 {
    let d = (a - b).rem_euclid(360.0);
    d.min(360.0 - d)
}

fn nearest(angle: f64) -> Rotation {
    Rotation::from_quarter_turns(((angle / 90.0).round() as u32) % 4)
}

impl OrientationFilter {
    /// A filter at [`Rotation::R0`] until its first usable sample, which it adopts at once.
    /// The hysteresis is clamped to `0..=MAX_HYSTERESIS_DEG`.
    pub fn new(cfg: FilterConfig) -> Self {
        let mut f = OrientationFilter {
            cfg,
            current: Rotation::R0,
            settled: false,
            candidate: None,
        };
        f.set_config(cfg);
        f
    }

    /// Changes the tuning; the current rotation is kept.
    pub fn set_config(&mut self, cfg: FilterConfig) {
        let h = if cfg.hysteresis_deg.is_finite() {
            cfg.hysteresis_deg.clamp(0.0, MAX_HYSTERESIS_DEG)
        } else {
            FilterConfig::default().hysteresis_deg
        };
        self.cfg = FilterConfig {
            hysteresis_deg: h,
            hold_ms: cfg.hold_ms,
        };
    }

    /// The adopted rotation, without advancing time.
    pub fn current(&self) -> Rotation {
        self.current
    }

    /// Feeds one gravity sample taken at `t_ms`.
    pub fn observe(&mut self, t_ms: u64, x: f64, y: f64, z: f64) {
        // A candidate that was held long enough before this sample is adopted first.
        self.poll(t_ms);
        let Some(angle) = roll_degrees(x, y, z) else {
            // Flat or invalid: no evidence either way; a pending change is abandoned.
            self.candidate = None;
            return;
        };
        if !self.settled {
            self.settled = true;
            self.current = nearest(angle);
            self.candidate = None;
            return;
        }
        let target = if angular_distance(angle, f64::from(self.current.degrees()))
            > 45.0 + self.cfg.hysteresis_deg
        {
            nearest(angle)
        } else {
            self.current
        };
        if target == self.current {
            self.candidate = None;
        } else {
            match self.candidate {
                Some((r, _)) if r == target => {}
                _ => self.candidate = Some((target, t_ms)),
            }
        }
        self.poll(t_ms);
    }

    /// The rotation at `t_ms`: adopts a pending candidate once it has been held for the
    /// configured time.
    pub fn poll(&mut self, t_ms: u64) -> Rotation {
        if let Some((r, since)) = self.candidate
            && t_ms >= since.saturating_add(self.cfg.hold_ms)
        {
            self.current = r;
            self.candidate = None;
        }
        self.current
    }
}

/// One accelerometer sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// Milliseconds: stream time for replay files, monotonic time for live sources.
    pub t_ms: u64,
    /// Gravity reaction along the device x axis.
    pub x: f64,
    /// Along y.
    pub y: f64,
    /// Along z.
    pub z: f64,
}

/// A replay file that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayError {
    /// 1-based line number; 0 when the problem is the file as a whole (no samples).
    pub line: usize,
    /// What is wrong on that line.
    pub message: String,
}

impl fmt::Display for ReplayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            f.write_str(&self.message)
        } else {
            write!(f, "line {}: {}", self.line, self.message)
        }
    }
}

impl std::error::Error for ReplayError {}

/// Parses a replay file.
///
/// Format: one sample per line, `t_ms x y z`, separated by whitespace, where `t_ms` is a
/// non-negative integer (milliseconds of stream time, non-decreasing) and `x y z`
/// are finite numbers in any consistent unit. `#` starts a comment that runs to the end of
/// the line; empty lines are ignored. A file without any sample is an error.
///
/// ```
/// let s = gststreamwire::orientation::parse_replay("# t x y z\n0 0 9.8 0\n500 -9.8 0 0 # turned\n").unwrap();
/// assert_eq!(s.len(), 2);
/// let e = gststreamwire::orientation::parse_replay("0 0 9.8\n").unwrap_err();
/// assert_eq!(e.line, 1);
/// assert!(gststreamwire::orientation::parse_replay("# nothing\n").is_err());
/// ```
pub fn parse_replay(text: &str) -> Result<Vec<Sample>, ReplayError> {
    let mut out = Vec::new();
    let mut last_t = 0u64;
    for (idx, raw) in text.lines().enumerate() {
        let line = idx + 1;
        let content = raw.split_once('#').map_or(raw, |(data, _)| data).trim();
        if content.is_empty() {
            continue;
        }
        let err = |message: String| ReplayError { line, message };
        let cols: Vec<&str> = content.split_whitespace().collect();
        if cols.len() != 4 {
            return Err(err(format!(
                "expected 4 columns `t_ms x y z`, found {}",
                cols.len()
            )));
        }
        let t_ms: u64 = cols[0].parse().map_err(|_| {
            err(format!(
                "t_ms `{}` is not a non-negative integer (milliseconds)",
                cols[0]
            ))
        })?;
        if t_ms < last_t {
            return Err(err(format!(
                "t_ms {t_ms} goes backwards (previous sample at {last_t})"
            )));
        }
        last_t = t_ms;
        let mut v = [0f64; 3];
        for (i, name) in ["x", "y", "z"].iter().enumerate() {
            let parsed: f64 = cols[i + 1]
                .parse()
                .map_err(|_| err(format!("{name} `{}` is not a number", cols[i + 1])))?;
            if !parsed.is_finite() {
                return Err(err(format!("{name} `{}` is not finite", cols[i + 1])));
            }
            v[i] = parsed;
        }
        out.push(Sample {
            t_ms,
            x: v[0],
            y: v[1],
            z: v[2],
        });
    }
    if out.is_empty() {
        return Err(ReplayError {
            line: 0,
            message: "holds no samples (expected lines `t_ms x y z`)".into(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const G: f64 = 9.81;

    #[test]
    fn camera_facing_nicks_are_the_enum_type_nicks() {
        use glib::prelude::*;
        let class = glib::EnumClass::with_type(CameraFacing::static_type()).unwrap();
        assert_eq!(class.values().len(), CameraFacing::ALL.len());
        for f in CameraFacing::ALL {
            assert_eq!(class.value(f as i32).unwrap().nick(), f.nick());
        }
    }

    fn at(deg: f64) -> (f64, f64, f64) {
        // Device rolled `deg` clockwise: gravity reaction rotates the other way in device axes.
        let r = deg.to_radians();
        (-G * r.sin(), G * r.cos(), 0.0)
    }

    #[test]
    fn roll_matches_convention() {
        for deg in [0.0, 30.0, 90.0, 180.0, 270.0, 300.0] {
            let (x, y, z) = at(deg);
            let got = roll_degrees(x, y, z).unwrap();
            assert!(angular_distance(got, deg) < 1e-6, "{deg} -> {got}");
        }
    }

    #[test]
    fn flat_device_gives_no_roll() {
        assert_eq!(roll_degrees(0.0, 0.0, G), None);
        assert_eq!(roll_degrees(0.0, 0.0, 0.0), None);
        assert_eq!(roll_degrees(f64::NAN, 1.0, 0.0), None);
        // 45 degrees of tilt towards flat still counts
        assert!(roll_degrees(0.0, G, G).is_some());
    }

    #[test]
    fn jitter_around_45_degrees_does_not_flap() {
        let mut f = OrientationFilter::new(FilterConfig {
            hysteresis_deg: 15.0,
            hold_ms: 0,
        });
        for i in 0..200u64 {
            let deg = if i % 2 == 0 { 40.0 } else { 55.0 };
            let (x, y, z) = at(deg);
            f.observe(i * 10, x, y, z);
            assert_eq!(f.poll(i * 10), Rotation::R0, "sample {i}");
        }
        // Clearly past the boundary plus hysteresis
        let (x, y, z) = at(61.0);
        f.observe(3000, x, y, z);
        assert_eq!(f.poll(3000), Rotation::R90);
        // Coming back to 35 degrees stays at 90 (only 55 from its centre)
        let (x, y, z) = at(35.0);
        f.observe(3010, x, y, z);
        assert_eq!(f.poll(3010), Rotation::R90);
        let (x, y, z) = at(29.0);
        f.observe(3020, x, y, z);
        assert_eq!(f.poll(3020), Rotation::R0);
    }

    /// A filter that has settled upright at t=0.
    fn settled(cfg: FilterConfig) -> OrientationFilter {
        let mut f = OrientationFilter::new(cfg);
        let (x, y, z) = at(0.0);
        f.observe(0, x, y, z);
        f
    }

    #[test]
    fn first_reading_is_adopted_without_hold_time() {
        for deg in [0.0, 90.0, 180.0, 270.0] {
            let mut f = OrientationFilter::new(FilterConfig::default());
            // Flat readings before do not settle the filter.
            f.observe(0, 0.0, 0.0, G);
            let (x, y, z) = at(deg);
            f.observe(10, x, y, z);
            assert_eq!(f.poll(10).degrees(), deg as u32);
            // Afterwards hold time and hysteresis apply again.
            let (x, y, z) = at(deg + 90.0);
            f.observe(20, x, y, z);
            assert_eq!(f.poll(319).degrees(), deg as u32);
            assert_eq!(f.poll(320).degrees(), (deg as u32 + 90) % 360);
        }
    }

    #[test]
    fn camera_rule_for_both_facings_through_all_device_orientations() {
        use CameraFacing::*;
        let r = Rotation::from_degrees;
        // (device, sensor, facing) -> expected tag, from Android's rule: back
        // (sensor + device), front (sensor - device) mirrored, i.e. flip-rotate-(device - sensor).
        let cases = [
            (0, 90, Back, "rotate-90"),
            (90, 90, Back, "rotate-180"),
            (180, 90, Back, "rotate-270"),
            (270, 90, Back, "rotate-0"),
            (0, 270, Front, "flip-rotate-90"),
            (90, 270, Front, "flip-rotate-180"),
            (180, 270, Front, "flip-rotate-270"),
            (270, 270, Front, "flip-rotate-0"),
            (0, 0, Back, "rotate-0"),
            (90, 0, Back, "rotate-90"),
            (90, 0, Front, "flip-rotate-90"),
            (270, 0, Front, "flip-rotate-270"),
            (90, 0, External, "rotate-0"),
            (270, 180, External, "rotate-180"),
        ];
        for (device, sensor, facing, tag) in cases {
            let o = camera_orientation(r(device).unwrap(), facing, r(sensor).unwrap());
            assert_eq!(
                o.tag_value(),
                tag,
                "device {device} sensor {sensor} {facing:?}"
            );
        }
    }

    #[test]
    fn hold_time_is_required() {
        let mut f = settled(FilterConfig {
            hysteresis_deg: 10.0,
            hold_ms: 300,
        });
        let (x, y, z) = at(180.0);
        f.observe(1000, x, y, z);
        assert_eq!(f.poll(1299), Rotation::R0);
        assert_eq!(f.poll(1300), Rotation::R180);
    }

    #[test]
    fn brief_excursion_is_ignored() {
        let mut f = settled(FilterConfig {
            hysteresis_deg: 10.0,
            hold_ms: 300,
        });
        let (x, y, z) = at(270.0);
        f.observe(0, x, y, z);
        let (x, y, z) = at(0.0);
        f.observe(200, x, y, z);
        assert_eq!(f.poll(1000), Rotation::R0);
        // A change of candidate restarts the hold time
        let (x, y, z) = at(90.0);
        f.observe(1000, x, y, z);
        let (x, y, z) = at(180.0);
        f.observe(1200, x, y, z);
        assert_eq!(f.poll(1400), Rotation::R0);
        assert_eq!(f.poll(1500), Rotation::R180);
    }

    #[test]
    fn flat_sample_cancels_candidate() {
        let mut f = settled(FilterConfig {
            hysteresis_deg: 10.0,
            hold_ms: 100,
        });
        let (x, y, z) = at(90.0);
        f.observe(0, x, y, z);
        f.observe(50, 0.0, 0.0, G);
        assert_eq!(f.poll(500), Rotation::R0);
    }

    #[test]
    fn hysteresis_is_clamped() {
        let mut f = settled(FilterConfig {
            hysteresis_deg: 80.0,
            hold_ms: 0,
        });
        let (x, y, z) = at(90.0);
        f.observe(1, x, y, z);
        assert_eq!(f.poll(1), Rotation::R90);
    }

    #[test]
    fn tag_values_round_trip() {
        for flip in [false, true] {
            for r in Rotation::ALL {
                let o = Orientation { rotation: r, flip };
                assert_eq!(Orientation::from_tag_value(o.tag_value()), Some(o));
            }
        }
        assert_eq!(Orientation::from_tag_value("rotate-45"), None);
        assert_eq!(Orientation::from_tag_value("rotate-360"), None);
        assert_eq!(Orientation::from_tag_value("sideways"), None);
    }

    #[test]
    fn replay_errors_name_the_line() {
        let e = parse_replay("0 0 1 0\n\n# c\n10 0 x 0\n").unwrap_err();
        assert_eq!(e.line, 4);
        assert!(e.message.contains("y `x`"), "{e}");
        let e = parse_replay("10 0 1 0\n5 0 1 0\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.message.contains("backwards"));
        let e = parse_replay("-1 0 1 0\n").unwrap_err();
        assert!(e.message.contains("t_ms"));
        let e = parse_replay("1 0 inf 0\n").unwrap_err();
        assert!(e.message.contains("finite"));
        let e = parse_replay("").unwrap_err();
        assert_eq!(e.line, 0);
        assert!(e.to_string().contains("no samples"), "{e}");
        assert!(parse_replay("# only\n\n  # comments\n").is_err());
    }

    #[test]
    fn trailing_comments_are_comments() {
        let s = parse_replay("0 0 9.8 0 # upright\n  10 -9.8 0 0#turned\n").unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[1].x, -9.8);
        // A comment does not hide a missing column.
        let e = parse_replay("0 0 9.8 # z missing\n").unwrap_err();
        assert!(e.message.contains("found 3"), "{e}");
    }
}
