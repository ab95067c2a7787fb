// SPDX-License-Identifier: MIT OR Apache-2.0
//! `sensorrotation`'s property values (defaults and limits) and what the streaming thread
//! copies of them per buffer.

use super::{Angle, Mode, Output};
use crate::orientation::{CameraFacing, FilterConfig, Orientation, Rotation, camera_orientation};

pub(super) const DEFAULT_HYSTERESIS: f64 = 15.0;
pub(super) const DEFAULT_HOLD_MS: u32 = 300;
pub(super) const MAX_HOLD_MS: u32 = 10_000;
pub(super) const DEFAULT_IIO_POLL_MS: u32 = 50;
pub(super) const MIN_IIO_POLL_MS: u32 = 10;
pub(super) const MAX_IIO_POLL_MS: u32 = 1000;

#[derive(Debug, Clone)]
pub(super) struct Settings {
    pub mode: Mode,
    pub rotation: Angle,
    pub camera_facing: CameraFacing,
    pub sensor_orientation: Angle,
    pub output: Output,
    pub hysteresis: f64,
    pub hold_ms: u32,
    pub replay_file: Option<String>,
    pub iio_device: Option<String>,
    pub iio_poll_ms: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            mode: Mode::FollowSensor,
            rotation: Angle::R0,
            camera_facing: CameraFacing::Back,
            sensor_orientation: Angle::R0,
            output: Output::Metadata,
            hysteresis: DEFAULT_HYSTERESIS,
            hold_ms: DEFAULT_HOLD_MS,
            replay_file: None,
            iio_device: None,
            iio_poll_ms: DEFAULT_IIO_POLL_MS,
        }
    }
}

impl Settings {
    pub(super) fn filter_config(&self) -> FilterConfig {
        FilterConfig {
            hysteresis_deg: self.hysteresis,
            hold_ms: u64::from(self.hold_ms),
        }
    }

    /// What the streaming thread needs per buffer (no strings to clone).
    pub(super) fn per_buffer(&self) -> PerBuffer {
        PerBuffer {
            mode: self.mode,
            output: self.output,
            rotation: self.rotation,
            camera_facing: self.camera_facing,
            sensor_orientation: self.sensor_orientation,
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub(super) struct PerBuffer {
    pub mode: Mode,
    pub output: Output,
    pub rotation: Angle,
    pub camera_facing: CameraFacing,
    pub sensor_orientation: Angle,
}

impl PerBuffer {
    /// The picture orientation for a device rotation, with this camera.
    pub(super) fn picture(&self, device: Rotation) -> Orientation {
        camera_orientation(device, self.camera_facing, self.sensor_orientation.into())
    }

    /// The picture orientation in `follow-app`: the app's rotation, mirrored for a front camera.
    pub(super) fn app_picture(&self) -> Orientation {
        Orientation {
            rotation: self.rotation.into(),
            flip: self.camera_facing == CameraFacing::Front,
        }
    }
}
