// SPDX-License-Identifier: MIT OR Apache-2.0
//! Accelerometer sources for `sensorrotation`: Linux IIO, replay file, app-pushed samples.

use parking_lot::Mutex;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::orientation::{Sample, parse_replay};

/// Which clock a source's sample timestamps are on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timeline {
    /// Stream time in milliseconds (replay files: deterministic, follows the buffers and the
    /// position after a seek).
    Stream,
    /// Milliseconds since the element started, wall-clock monotonic (live sensors, app).
    Monotonic,
}

/// A source of gravity samples.
///
/// The element calls [`drain`](AccelSource::drain) once per buffer with the current time on
/// the source's [`Timeline`]; the source hands over every sample taken up to then.
pub trait AccelSource: Send {
    /// The timeline of `now_ms` and of the samples' `t_ms`.
    fn timeline(&self) -> Timeline;
    /// Passes every sample with `t_ms <= now_ms` not handed over yet to `out`, in order.
    ///
    /// Returns an error when the source starts failing (a sensor that disappeared or reads
    /// garbage), once per episode: the element posts it as a warning and keeps the last
    /// orientation.
    fn drain(&mut self, now_ms: u64, out: &mut dyn FnMut(Sample)) -> Result<(), SourceError>;
    /// Short description for logs.
    fn describe(&self) -> String;
    /// Starts over after a flush (seek); sources without history ignore it.
    fn rewind(&mut self) {}
    /// Whether a [`rewind`](AccelSource::rewind) lets the source hand over its samples again
    /// (a recorded trace), so the orientation at a new position can be recomputed.
    fn replays(&self) -> bool {
        false
    }
}

/// Error opening a source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceError(pub String);

impl std::fmt::Display for SourceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SourceError {}

/// Samples from a replay file (format: [`parse_replay`]), on the stream-time timeline.
pub struct ReplaySource {
    path: PathBuf,
    samples: Vec<Sample>,
    next: usize,
}

impl ReplaySource {
    /// Reads and parses `path`; errors name the file and line.
    pub fn open(path: &Path) -> Result<Self, SourceError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            SourceError(format!(
                "cannot read replay-file {}: {e}",
                path.to_string_lossy()
            ))
        })?;
        let samples = parse_replay(&text).map_err(|e| {
            SourceError(if e.line == 0 {
                format!("replay-file {}: {e}", path.to_string_lossy())
            } else {
                format!(
                    "replay-file {}:{}: {}",
                    path.to_string_lossy(),
                    e.line,
                    e.message
                )
            })
        })?;
        Ok(ReplaySource {
            path: path.to_owned(),
            samples,
            next: 0,
        })
    }
}

impl AccelSource for ReplaySource {
    fn timeline(&self) -> Timeline {
        Timeline::Stream
    }

    fn drain(&mut self, now_ms: u64, out: &mut dyn FnMut(Sample)) -> Result<(), SourceError> {
        while let Some(s) = self.samples.get(self.next) {
            if s.t_ms > now_ms {
                break;
            }
            out(*s);
            self.next += 1;
        }
        Ok(())
    }

    fn rewind(&mut self) {
        self.next = 0;
    }

    fn replays(&self) -> bool {
        true
    }

    fn describe(&self) -> String {
        format!(
            "replay file {} ({} samples)",
            self.path.to_string_lossy(),
            self.samples.len()
        )
    }
}

/// Where Linux lists IIO devices (`/sys/bus/iio/devices`).
pub const IIO_DEVICES: &str = "/sys/bus/iio/devices";

/// Checks that `dir` is an IIO accelerometer: it has an `in_accel_x_raw` channel.
///
/// ```
/// use gststreamwire::sensorrotation::source::check_iio_accelerometer;
/// let e = check_iio_accelerometer(std::path::Path::new("/nonexistent/iio:device9")).unwrap_err();
/// assert!(e.0.contains("/nonexistent/iio:device9 is not an IIO accelerometer"), "{e}");
/// ```
pub fn check_iio_accelerometer(dir: &Path) -> Result<(), SourceError> {
    if dir.join("in_accel_x_raw").is_file() {
        Ok(())
    } else {
        Err(SourceError(format!(
            "{} is not an IIO accelerometer (no in_accel_x_raw)",
            dir.to_string_lossy()
        )))
    }
}

/// The first IIO device directory under `root` (in name order) that is an accelerometer (see
/// [`check_iio_accelerometer`]); `root` is normally [`IIO_DEVICES`].
///
/// ```
/// use gststreamwire::sensorrotation::source::find_iio_accelerometer;
/// let e = find_iio_accelerometer(std::path::Path::new("/nonexistent")).unwrap_err();
/// assert_eq!(e.0, "no accelerometer under /nonexistent");
/// ```
pub fn find_iio_accelerometer(root: &Path) -> Result<PathBuf, SourceError> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| check_iio_accelerometer(p).is_ok())
        .collect();
    dirs.sort();
    dirs.into_iter()
        .next()
        .ok_or_else(|| SourceError(format!("no accelerometer under {}", root.to_string_lossy())))
}

/// A Linux IIO accelerometer read through sysfs: `in_accel_{x,y,z}_raw` multiplied by
/// `in_accel_scale` (or per-axis `in_accel_{x,y,z}_scale`), turned into device axes with the
/// sensor's mounting matrix (`in_accel_mount_matrix` or `mount_matrix`; identity when the
/// driver has none), polled at most every `poll_interval_ms` from the streaming thread
/// (three small file reads per poll).
pub struct IioSource {
    dir: PathBuf,
    scale: [f64; 3],
    mount: MountMatrix,
    poll_interval_ms: u64,
    last_poll: Option<u64>,
    failing: bool,
}

/// An IIO mounting matrix: rows of the rotation from the sensor chip's axes to the device's
/// (`v_device = M * v_sensor`), as the kernel prints it: `x1, y1, z1; x2, y2, z2; x3, y3, z3`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MountMatrix(pub [[f64; 3]; 3]);

impl MountMatrix {
    /// The identity (chip mounted along the device axes).
    pub const IDENTITY: MountMatrix =
        MountMatrix([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]);

    /// Parses the sysfs text.
    ///
    /// ```
    /// use gststreamwire::sensorrotation::source::MountMatrix;
    /// let m = MountMatrix::parse("0, 1, 0; -1, 0, 0; 0, 0, 1").unwrap();
    /// assert_eq!(m.apply([1.0, 2.0, 3.0]), [2.0, -1.0, 3.0]);
    /// assert!(MountMatrix::parse("1, 0; 0, 1").is_err());
    /// ```
    pub fn parse(text: &str) -> Result<MountMatrix, String> {
        let rows: Vec<&str> = text.trim().split(';').collect();
        if rows.len() != 3 {
            return Err(format!(
                "expected 3 rows separated by `;`, found {}",
                rows.len()
            ));
        }
        let mut m = [[0.0; 3]; 3];
        for (r, row) in rows.iter().enumerate() {
            let cols: Vec<&str> = row.split(',').map(str::trim).collect();
            if cols.len() != 3 {
                return Err(format!(
                    "row {}: expected 3 numbers, found {}",
                    r + 1,
                    cols.len()
                ));
            }
            for (c, v) in cols.iter().enumerate() {
                m[r][c] = v
                    .parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite())
                    .ok_or_else(|| format!("row {}: `{v}` is not a number", r + 1))?;
            }
        }
        Ok(MountMatrix(m))
    }

    /// `M * v`.
    pub fn apply(&self, v: [f64; 3]) -> [f64; 3] {
        let m = &self.0;
        [0, 1, 2].map(|r| m[r][0] * v[0] + m[r][1] * v[1] + m[r][2] * v[2])
    }
}

fn read_number(path: &Path) -> Result<f64, SourceError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| SourceError(format!("cannot read {}: {e}", path.to_string_lossy())))?;
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .ok_or_else(|| {
            SourceError(format!(
                "{} does not hold a number: `{}`",
                path.to_string_lossy(),
                text.trim()
            ))
        })
}

impl IioSource {
    /// Opens the IIO device directory (e.g. `/sys/bus/iio/devices/iio:device0`), checking
    /// that the raw channels and a scale are readable.
    pub fn open(dir: &Path, poll_interval_ms: u64) -> Result<Self, SourceError> {
        let mut scale = [1.0; 3];
        let shared = read_number(&dir.join("in_accel_scale"));
        for (i, axis) in ["x", "y", "z"].iter().enumerate() {
            read_number(&dir.join(format!("in_accel_{axis}_raw")))?;
            scale[i] = match &shared {
                Ok(s) => *s,
                Err(_) => {
                    read_number(&dir.join(format!("in_accel_{axis}_scale"))).map_err(|e| {
                        SourceError(format!(
                            "iio-device {}: no in_accel_scale and {e}",
                            dir.to_string_lossy()
                        ))
                    })?
                }
            };
        }
        let mut mount = MountMatrix::IDENTITY;
        for name in ["in_accel_mount_matrix", "mount_matrix"] {
            let path = dir.join(name);
            if let Ok(text) = std::fs::read_to_string(&path) {
                mount = MountMatrix::parse(&text)
                    .map_err(|e| SourceError(format!("{}: {e}", path.to_string_lossy())))?;
                break;
            }
        }
        Ok(IioSource {
            dir: dir.to_owned(),
            scale,
            mount,
            poll_interval_ms: poll_interval_ms.max(1),
            last_poll: None,
            failing: false,
        })
    }

    /// The mounting matrix in use.
    pub fn mount_matrix(&self) -> MountMatrix {
        self.mount
    }

    fn read(&self) -> Result<[f64; 3], SourceError> {
        let mut v = [0.0; 3];
        for (i, axis) in ["x", "y", "z"].iter().enumerate() {
            v[i] = read_number(&self.dir.join(format!("in_accel_{axis}_raw")))? * self.scale[i];
        }
        Ok(self.mount.apply(v))
    }
}

impl AccelSource for IioSource {
    fn timeline(&self) -> Timeline {
        Timeline::Monotonic
    }

    fn drain(&mut self, now_ms: u64, out: &mut dyn FnMut(Sample)) -> Result<(), SourceError> {
        if let Some(last) = self.last_poll
            && now_ms < last.saturating_add(self.poll_interval_ms)
        {
            return Ok(());
        }
        self.last_poll = Some(now_ms);
        match self.read() {
            Ok([x, y, z]) => {
                self.failing = false;
                out(Sample {
                    t_ms: now_ms,
                    x,
                    y,
                    z,
                });
                Ok(())
            }
            // Reported once per episode; no sample means the last orientation stays.
            Err(e) if !self.failing => {
                self.failing = true;
                Err(e)
            }
            Err(_) => Ok(()),
        }
    }

    fn describe(&self) -> String {
        format!("IIO device {}", self.dir.to_string_lossy())
    }
}

/// Samples pushed by the application (`push-sample` action signal), stamped on arrival.
#[derive(Clone, Default)]
pub struct AppQueue(Arc<Mutex<VecDeque<Sample>>>);

/// Bound on queued app samples; older ones are dropped first (only the latest matter).
const APP_QUEUE_MAX: usize = 1024;

impl AppQueue {
    /// Queues one sample taken at `t_ms` (monotonic).
    pub fn push(&self, s: Sample) {
        let mut q = self.0.lock();
        if q.len() >= APP_QUEUE_MAX {
            q.pop_front();
        }
        q.push_back(s);
    }
}

/// The app-pushed source reading an [`AppQueue`].
pub struct AppSource(pub AppQueue);

impl AccelSource for AppSource {
    fn timeline(&self) -> Timeline {
        Timeline::Monotonic
    }

    fn drain(&mut self, now_ms: u64, out: &mut dyn FnMut(Sample)) -> Result<(), SourceError> {
        let mut q = self.0.0.lock();
        while let Some(s) = q.front() {
            if s.t_ms > now_ms {
                break;
            }
            out(*s);
            q.pop_front();
        }
        Ok(())
    }

    fn describe(&self) -> String {
        "samples pushed by the application".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iio_source_reads_scaled_values_and_rate_limits() {
        let dir = std::env::temp_dir().join(format!("sw-iio-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("in_accel_x_raw"), "-1000\n").unwrap();
        std::fs::write(dir.join("in_accel_y_raw"), "20\n").unwrap();
        std::fs::write(dir.join("in_accel_z_raw"), "0\n").unwrap();
        std::fs::write(dir.join("in_accel_scale"), "0.00981\n").unwrap();
        let mut src = IioSource::open(&dir, 50).unwrap();
        let mut got = Vec::new();
        src.drain(0, &mut |s| got.push(s)).unwrap();
        src.drain(10, &mut |s| got.push(s)).unwrap();
        src.drain(50, &mut |s| got.push(s)).unwrap();
        assert_eq!(got.len(), 2);
        assert!((got[0].x + 9.81).abs() < 1e-9);
        // Garbage is reported once, then silently skipped until the sensor recovers.
        std::fs::write(dir.join("in_accel_y_raw"), "nan\n").unwrap();
        assert!(src.drain(100, &mut |s| got.push(s)).is_err());
        assert!(src.drain(150, &mut |s| got.push(s)).is_ok());
        assert_eq!(got.len(), 2);
        std::fs::write(dir.join("in_accel_y_raw"), "20\n").unwrap();
        src.drain(200, &mut |s| got.push(s)).unwrap();
        assert_eq!(got.len(), 3);
        // The mounting matrix turns chip axes into device axes.
        std::fs::write(
            dir.join("in_accel_mount_matrix"),
            "0, 1, 0; -1, 0, 0; 0, 0, 1\n",
        )
        .unwrap();
        let mut src = IioSource::open(&dir, 50).unwrap();
        let mut got = Vec::new();
        src.drain(0, &mut |s| got.push(s)).unwrap();
        assert!((got[0].x - 20.0 * 0.00981).abs() < 1e-9, "{got:?}");
        assert!((got[0].y - 9.81).abs() < 1e-9, "{got:?}");
        std::fs::write(
            dir.join("in_accel_mount_matrix"),
            "1, 0, 0; 0, 1; 0, 0, 1\n",
        )
        .unwrap();
        let e = IioSource::open(&dir, 50).err().unwrap();
        assert!(
            e.0.contains("in_accel_mount_matrix") && e.0.contains("row 2"),
            "{e}"
        );
        std::fs::remove_file(dir.join("in_accel_mount_matrix")).unwrap();
        std::fs::remove_file(dir.join("in_accel_scale")).unwrap();
        let e = IioSource::open(&dir, 50).err().unwrap();
        assert!(e.0.contains("in_accel_scale"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn iio_lookup_picks_the_first_device_with_accelerometer_channels() {
        let root = std::env::temp_dir().join(format!("sw-iio-root-{}", std::process::id()));
        for (dev, accel) in [
            ("iio:device0", false),
            ("iio:device2", true),
            ("iio:device1", true),
        ] {
            let d = root.join(dev);
            std::fs::create_dir_all(&d).unwrap();
            let f = if accel {
                "in_accel_x_raw"
            } else {
                "in_illuminance_raw"
            };
            std::fs::write(d.join(f), "1\n").unwrap();
        }
        assert_eq!(find_iio_accelerometer(&root), Ok(root.join("iio:device1")));
        let e = check_iio_accelerometer(&root.join("iio:device0")).unwrap_err();
        assert!(
            e.0.ends_with("iio:device0 is not an IIO accelerometer (no in_accel_x_raw)"),
            "{e}"
        );
        let empty = root.join("empty");
        std::fs::create_dir(&empty).unwrap();
        assert_eq!(
            find_iio_accelerometer(&empty),
            Err(SourceError(format!(
                "no accelerometer under {}",
                empty.display()
            )))
        );
        assert!(find_iio_accelerometer(&root.join("missing")).is_err());
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn app_queue_drains_in_order_up_to_now() {
        let q = AppQueue::default();
        let mut src = AppSource(q.clone());
        for t in [5, 10, 20] {
            q.push(Sample {
                t_ms: t,
                x: 0.0,
                y: 1.0,
                z: 0.0,
            });
        }
        let mut got = Vec::new();
        src.drain(10, &mut |s| got.push(s.t_ms)).unwrap();
        assert_eq!(got, vec![5, 10]);
    }
}
