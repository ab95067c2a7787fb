//! Declarative pipeline presets: TOML files in `pipelines/` that describe a media graph in user terms.
//!
//! A preset is parsed into a located tree, `--set key.path=value` overrides are applied, and the
//! result is validated into a [`Preset`]. Every error names the file, line and column (or the
//! override) and what was expected; see [`PresetError`]. The format is documented in
//! `docs/presets.md`.
//!
//! This module is the model: it parses and validates, and nothing more. The layers that run a
//! preset consume it: `pipeline::Plan` builds a local GStreamer pipeline from it, and
//! `SessionConfig::try_from(&preset)` (in `pipeline`) turns a room preset into a
//! `session::SessionConfig`.
//!
//! ```
//! use streamwire::preset::{Preset, Output, VideoInput};
//!
//! let preset = Preset::from_str(
//!     r#"
//! description = "test pattern to a WebM file"
//! output = "file:out.webm"
//! [input]
//! video = "test"
//! audio = "test"
//! [video]
//! codec = "vp8"
//! "#,
//!     "example.toml",
//!     &[],
//! )
//! .unwrap();
//! assert_eq!(preset.input.video, VideoInput::Test);
//! assert!(matches!(preset.output, Output::File { .. }));
//!
//! let err = Preset::from_str("[video]\nwidht = 640\n", "bad.toml", &[]).unwrap_err();
//! assert_eq!(err.line_column(), Some((2, 1)));
//! assert!(err.to_string().contains("did you mean `video.width`"));
//! ```

mod bundled;
mod doc;
mod elements;
mod error;
mod model;
mod room;
mod room_roles;
mod schema;
mod validate;
mod whiteboard;

use std::path::Path;

pub use bundled::{BUNDLED, BUNDLED_DATA, BUNDLED_DIR, bundled_dir};
pub use elements::{
    CameraFacing, RotationMode, RotationOutput, RotationSettings, SensorSource, TelemetrySettings,
};
pub use error::{ErrorKind, Origin, PresetError};
pub use model::{
    AudioCodec, AudioInput, AudioSettings, Container, DeviceSelector, Input, Output, Preset,
    VideoInput, VideoSettings,
};
pub use room::{RoomReceive, RoomRole, RoomSettings, TOKEN_ENV, TokenSource};
pub use whiteboard::{DEFAULT_BOARD, WhiteboardSettings};

impl Preset {
    /// Load a preset by file path, or by bundled name when `name_or_path` is not an existing file,
    /// then apply `overrides` (`key.path=value`) and validate.
    ///
    /// ```
    /// let p = streamwire::preset::Preset::load("test-to-file", &["video.codec=vp9".into()]).unwrap();
    /// assert_eq!(p.video.unwrap().codec, streamwire::encoder::Codec::Vp9);
    /// ```
    pub fn load(name_or_path: &str, overrides: &[String]) -> Result<Preset, PresetError> {
        let path = Path::new(name_or_path);
        if path.is_file() {
            let text = std::fs::read_to_string(path).map_err(|source| PresetError::Io {
                path: path.to_owned(),
                source,
            })?;
            return Preset::from_str(&text, name_or_path, overrides);
        }
        bundled::load(name_or_path, overrides)
    }

    /// Parse and validate preset text. `path` is used in error positions and to resolve
    /// relative paths inside the preset (replay traces) against its directory.
    #[allow(clippy::should_implement_trait)]
    pub fn from_str(text: &str, path: &str, overrides: &[String]) -> Result<Preset, PresetError> {
        let base = Path::new(path).parent().unwrap_or(Path::new(""));
        Preset::parse(text, path, base, overrides)
    }

    /// Parse `text`, apply `overrides`, validate; relative paths resolve against `base`.
    fn parse(
        text: &str,
        path: &str,
        base: &Path,
        overrides: &[String],
    ) -> Result<Preset, PresetError> {
        let mut root = doc::parse(text, path)?;
        for arg in overrides {
            doc::apply_override(&mut root, arg)?;
        }
        let start = Origin::File {
            path: path.to_owned(),
            line: 1,
            column: 1,
            text: text.lines().next().unwrap_or("").to_owned(),
        };
        validate::validate(&root, start, path, base)
    }
}
