//! The presets shipped with Streamwire: their TOML text and data files, embedded in the binary,
//! and the lookup by name.

use std::path::{Path, PathBuf};

use super::error::{PresetError, suggest};
use super::model::Preset;

/// Presets shipped with Streamwire, embedded in the binary: `(name, TOML text)`.
pub const BUNDLED: &[(&str, &str)] = &[
    (
        "test-to-file",
        include_str!("../../pipelines/test-to-file.toml"),
    ),
    (
        "camera-preview",
        include_str!("../../pipelines/camera-preview.toml"),
    ),
    (
        "camera-record",
        include_str!("../../pipelines/camera-record.toml"),
    ),
    (
        "screen-record",
        include_str!("../../pipelines/screen-record.toml"),
    ),
    (
        "rotation-demo",
        include_str!("../../pipelines/rotation-demo.toml"),
    ),
    (
        "publish-test",
        include_str!("../../pipelines/publish-test.toml"),
    ),
    (
        "publish-camera",
        include_str!("../../pipelines/publish-camera.toml"),
    ),
    (
        "subscribe-display",
        include_str!("../../pipelines/subscribe-display.toml"),
    ),
    (
        "subscribe-record",
        include_str!("../../pipelines/subscribe-record.toml"),
    ),
];

/// The source tree's `pipelines/`: relative paths inside bundled presets (replay traces) resolve
/// against it when it exists, otherwise against a copy of [`BUNDLED_DATA`] (see [`bundled_dir`]).
pub const BUNDLED_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/pipelines");

/// Data files bundled presets refer to, embedded in the binary: `(path under pipelines/, text)`.
pub const BUNDLED_DATA: &[(&str, &str)] = &[(
    "data/rotation-demo.txt",
    include_str!("../../pipelines/data/rotation-demo.txt"),
)];

/// The directory bundled presets' relative paths resolve against: the source tree's
/// `pipelines/` when it is there (a build from the repository), otherwise `fallback` after
/// [`BUNDLED_DATA`] has been written under it (an installed binary).
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// let base = streamwire::preset::bundled_dir(dir.path());
/// assert!(base.join("data/rotation-demo.txt").is_file());
/// ```
pub fn bundled_dir(fallback: &Path) -> PathBuf {
    let source = Path::new(BUNDLED_DIR);
    if BUNDLED_DATA.iter().all(|(p, _)| source.join(p).is_file()) {
        return source.to_owned();
    }
    write_bundled_data(fallback);
    fallback.to_owned()
}

/// Write [`BUNDLED_DATA`] under `dir` (files already there with the same text are left alone).
fn write_bundled_data(dir: &Path) {
    for (p, text) in BUNDLED_DATA {
        let path = dir.join(p);
        let unchanged = std::fs::read_to_string(&path).is_ok_and(|t| t == *text);
        let written = unchanged
            || path
                .parent()
                .is_some_and(|d| std::fs::create_dir_all(d).is_ok())
                && std::fs::write(&path, text).is_ok();
        if !written {
            tracing::warn!("cannot write bundled preset data to {}", path.display());
        }
    }
}

/// [`bundled_dir`] with the fallback in the system's temporary directory.
fn bundled_base() -> PathBuf {
    bundled_dir(&std::env::temp_dir().join(concat!(
        "streamwire-",
        env!("CARGO_PKG_VERSION"),
        "-pipelines"
    )))
}

/// Load the bundled preset `name_or_path` (with or without `.toml`), or say why there is none.
pub(super) fn load(name_or_path: &str, overrides: &[String]) -> Result<Preset, PresetError> {
    let path = Path::new(name_or_path);
    let name = name_or_path.strip_suffix(".toml").unwrap_or(name_or_path);
    if let Some((n, text)) = BUNDLED.iter().find(|(n, _)| *n == name) {
        return Preset::parse(
            text,
            &format!("pipelines/{n}.toml"),
            &bundled_base(),
            overrides,
        )
        .map(|mut p| {
            p.source = format!("bundled:{n}");
            p
        });
    }
    if path.components().count() > 1 || path.extension().is_some() {
        return Err(PresetError::Io {
            path: path.to_owned(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
        });
    }
    let names: Vec<&'static str> = BUNDLED.iter().map(|(n, _)| *n).collect();
    Err(PresetError::NotFound {
        name: name_or_path.to_owned(),
        suggestion: suggest(name, &names).map(str::to_owned),
        available: names,
    })
}

impl Preset {
    /// One-line description of each bundled preset: `(name, description)`.
    ///
    /// ```
    /// let all = streamwire::preset::Preset::bundled();
    /// assert!(all.iter().any(|(name, d)| *name == "test-to-file" && d.is_ok()));
    /// ```
    pub fn bundled() -> Vec<(&'static str, Result<String, PresetError>)> {
        BUNDLED
            .iter()
            .map(|(name, text)| {
                let desc = Preset::parse(
                    text,
                    &format!("pipelines/{name}.toml"),
                    &bundled_base(),
                    &[],
                )
                .map(|p| p.description);
                (*name, desc)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::preset::{RotationMode, RotationSettings, SensorSource};

    #[test]
    fn bundled_data_written_elsewhere_serves_the_bundled_presets() {
        let dir = tempfile::tempdir().unwrap();
        write_bundled_data(dir.path());
        write_bundled_data(dir.path()); // idempotent
        for (p, text) in BUNDLED_DATA {
            assert_eq!(std::fs::read_to_string(dir.path().join(p)).unwrap(), *text);
        }
        for (name, text) in BUNDLED {
            let p = Preset::parse(text, &format!("pipelines/{name}.toml"), dir.path(), &[])
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            if let Some(RotationSettings {
                mode: RotationMode::FollowSensor(SensorSource::Replay(path)),
                ..
            }) = p.rotation
            {
                assert!(path.starts_with(dir.path()), "{name}: {path:?}");
            }
        }
        // Without the data, the bundled demo reports the missing trace at its line.
        let empty = tempfile::tempdir().unwrap();
        let (_, text) = BUNDLED.iter().find(|(n, _)| *n == "rotation-demo").unwrap();
        let e = Preset::parse(text, "pipelines/rotation-demo.toml", empty.path(), &[]).unwrap_err();
        assert!(e.to_string().contains("does not exist"), "{e}");
        assert!(e.line_column().is_some(), "{e}");
    }
}
