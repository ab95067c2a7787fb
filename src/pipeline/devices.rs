//! Capture devices through GStreamer's device monitor, and turning a device into a launch fragment.

use gst::prelude::*;

use crate::preset::DeviceSelector;

/// A capture device found by the device monitor.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DeviceInfo {
    /// Index among devices of the same class (what `video_device = 0` selects).
    pub index: usize,
    /// Display name (what `video_device = "name"` matches, case-insensitively, as a substring).
    pub name: String,
    /// Device class, e.g. `Video/Source` or `Audio/Source`.
    pub class: String,
    /// The source element and non-default properties it would use, as a gst-launch fragment.
    pub launch: Option<String>,
    /// Caps the device offers (may be long).
    pub caps: Option<String>,
}

/// Which devices to look for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceClass {
    /// Cameras (`Video/Source`).
    Camera,
    /// Microphones (`Audio/Source`).
    Microphone,
}

impl DeviceClass {
    fn filter(self) -> &'static str {
        match self {
            DeviceClass::Camera => "Video/Source",
            DeviceClass::Microphone => "Audio/Source",
        }
    }
}

/// List devices of `class`. Returns an empty list when no provider finds any.
///
/// ```no_run
/// streamwire::gst_init::init().unwrap();
/// for d in streamwire::pipeline::devices::list(streamwire::pipeline::devices::DeviceClass::Camera) {
///     println!("{}: {}", d.index, d.name);
/// }
/// ```
pub fn list(class: DeviceClass) -> Vec<DeviceInfo> {
    raw(class)
        .iter()
        .enumerate()
        .map(|(index, d)| DeviceInfo {
            index,
            name: d.display_name().to_string(),
            class: d.device_class().to_string(),
            launch: d.create_element(None).ok().map(|e| describe_element(&e)),
            caps: d.caps().map(|c| c.to_string()),
        })
        .collect()
}

fn raw(class: DeviceClass) -> Vec<gst::Device> {
    let monitor = gst::DeviceMonitor::new();
    monitor.add_filter(Some(class.filter()), None);
    if monitor.start().is_err() {
        tracing::debug!("device monitor for {} did not start", class.filter());
        return Vec::new();
    }
    let devices: Vec<gst::Device> = monitor.devices().into_iter().collect();
    monitor.stop();
    devices
}

/// Find a device and return its launch fragment. `Ok(None)` when there are no devices at all and
/// no selector was given (the caller then uses the platform's default source element).
pub(crate) fn resolve(
    class: DeviceClass,
    selector: Option<&DeviceSelector>,
) -> Result<Option<String>, String> {
    let devices = raw(class);
    let names: Vec<String> = devices
        .iter()
        .map(|d| d.display_name().to_string())
        .collect();
    let found = match selector {
        None => devices.first(),
        Some(DeviceSelector::Index(i)) => devices.get(*i as usize),
        Some(DeviceSelector::Name(n)) => {
            let needle = n.to_lowercase();
            devices
                .iter()
                .find(|d| d.display_name().to_lowercase().contains(&needle))
        }
    };
    match (found, selector) {
        (Some(d), _) => d
            .create_element(None)
            .map(|e| Some(describe_element(&e)))
            .map_err(|e| {
                format!(
                    "cannot create a source for device `{}`: {e}",
                    d.display_name()
                )
            }),
        (None, None) => Ok(None),
        (None, Some(sel)) => Err(format!(
            "no {} matches {} (devices found: {})",
            match class {
                DeviceClass::Camera => "camera",
                DeviceClass::Microphone => "microphone",
            },
            match sel {
                DeviceSelector::Index(i) => format!("index {i}"),
                DeviceSelector::Name(n) => format!("name \"{n}\""),
            },
            if names.is_empty() {
                "none".to_owned()
            } else {
                names
                    .iter()
                    .enumerate()
                    .map(|(i, n)| format!("{i}: {n}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        )),
    }
}

/// Quote a value for a gst-launch description if needed.
pub(crate) fn quote(value: &str) -> String {
    if !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:+".contains(c))
    {
        value.to_owned()
    } else {
        format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""))
    }
}

/// `factory prop=value ...` for an element's writable properties that differ from their defaults.
pub(crate) fn describe_element(element: &gst::Element) -> String {
    let factory = element
        .factory()
        .map(|f| f.name().to_string())
        .unwrap_or_else(|| "unknown".to_owned());
    let mut out = factory;
    for pspec in element.list_properties() {
        let flags = pspec.flags();
        let name = pspec.name();
        if name == "name"
            || name == "parent"
            || !flags.contains(gst::glib::ParamFlags::READABLE)
            || !flags.contains(gst::glib::ParamFlags::WRITABLE)
        {
            continue;
        }
        let value = element.property_value(name);
        let (Ok(v), Ok(d)) = (value.serialize(), pspec.default_value().serialize()) else {
            continue;
        };
        if v != d {
            out.push_str(&format!(" {name}={}", quote(&v)));
        }
    }
    out
}
