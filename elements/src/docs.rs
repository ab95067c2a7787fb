// SPDX-License-Identifier: MIT OR Apache-2.0
//! `docs/elements.md`, generated from the registered plugin (element metadata, pad
//! templates, properties with their types, ranges, defaults and when they can change,
//! signals), so the reference cannot drift from what `gst-inspect-1.0 streamwire` prints.
//!
//! `cargo run -p gst-plugin-streamwire --example elements-doc > docs/elements.md`
//!
//! ```
//! gst::init().unwrap();
//! gststreamwire::plugin_register_static().unwrap();
//! let md = gststreamwire::docs::elements_markdown();
//! assert!(md.contains("## sensorrotation"));
//! assert!(md.contains("| `camera-facing` |"));
//! ```

use std::fmt::Write;

use gst::glib;
use gst::prelude::*;

/// The elements documented, in order.
pub const ELEMENTS: &[&str] = &[
    "sensorrotation",
    "rtphdrextcvo",
    "devicetelemetry",
    "whiteboardsrc",
];

/// Signals of the elements (element, signal, argument names); their types come from the
/// registered signal.
pub const SIGNALS: &[(&str, &str, &str)] = &[
    ("sensorrotation", "push-sample", "x, y, z"),
    ("whiteboardsrc", "push-update", "update"),
];

/// Extra reference text per element that the type system cannot say.
fn notes(element: &str) -> String {
    match element {
        "sensorrotation" => {
            let formats: Vec<String> = crate::sensorrotation::pixels::supported_formats()
                .iter()
                .map(|f| format!("`{}`", f.to_str()))
                .collect();
            format!(
                "{}\n\nPixel output (`output=pixels`) rotates these {} formats (system memory, \
                 progressive); any other format fails to negotiate in pixel output. Metadata \
                 output accepts any raw video in any memory (DMABuf, GL, ...) and never copies \
                 or maps it.\n\n{}\n",
                SENSORROTATION_NOTES.trim(),
                formats.len(),
                formats.join(", ")
            )
        }
        "rtphdrextcvo" => RTPHDREXTCVO_NOTES.trim().to_owned() + "\n",
        "devicetelemetry" => DEVICETELEMETRY_NOTES.trim().to_owned() + "\n",
        "whiteboardsrc" => WHITEBOARDSRC_NOTES.trim().to_owned() + "\n",
        _ => String::new(),
    }
}

const WHITEBOARDSRC_NOTES: &str = "
Renders one page of a whiteboard document (the layout of `docs/whiteboard.md`) to RGBA video
(default 1280x720 at 30/1 when downstream leaves them open): the page is fitted into the frame
keeping its 16:9 proportion, white, with its background image when `backgrounds` holds it,
and its items painted in `z` order (text boxes are not painted: there is no font rasteriser). The document comes from the update log `location`
(`{\"t_ms\", \"update\"}` lines: each entry is applied from the first frame whose
timestamp is at or after `t_ms`; a malformed line fails the start naming the line) or, with
`is-live=true`, from the Yjs updates the application emits with `push-update` (the
`streamwire` library's `Whiteboard::feed` does that). A frame is painted only when the
document changed; otherwise the previous picture is sent again. Live, frame N is painted when
the clock reaches its time (N / framerate) with every update pushed before; frames whose time
passed while downstream held the element are skipped, so a frame's time is within one frame
interval of its painting. Without `is-live` and with a log, the stream ends one second after
the last entry.

    gst-launch-1.0 whiteboardsrc location=board.log num-buffers=300 ! videoconvert ! x264enc ! matroskamux ! filesink location=board.mkv
";

const SENSORROTATION_NOTES: &str = "
Sensor source: `replay-file` if set, else `iio-device` if set, else samples pushed by the
application with `push-sample`. A replayed trace follows the stream time, so after a flushing
seek the orientation is the trace's at the new position. The first usable reading is adopted
at once (a device already in landscape is signalled so from the first frame and, in pixel
output, caps are negotiated once); later changes must pass `hysteresis` and persist for
`hold-time`. A live sensor that disappears or reads garbage posts a warning message on the bus
(once per episode) and the last orientation stays. The IIO mounting matrix
(`in_accel_mount_matrix` or `mount_matrix`) is applied.

Picture orientation (Android's camera rule, device turned `d` degrees clockwise, sensor
mounted at `s = sensor-orientation`): `back` gives `rotate-((s + d) % 360)`; `front` is upright
after `(s - d) % 360` and is sent mirrored, i.e. `flip-rotate-((d - s) % 360)` (mirror first,
then rotate, as `videoflip video-direction=auto` applies it); `external` gives `rotate-s`
whatever the device does. In `follow-app`, `rotation` is the picture rotation (mirrored for
`front`).

In metadata output every change of orientation sends exactly one `image-orientation` tag
(merged with upstream stream tags) before the first buffer with it, and every buffer carries
the orientation meta (rotation, flip, camera). Pixel output rotates (and mirrors) the frames
itself, renegotiating when width and height swap, and sends no orientation tag.

`output`, `replay-file`, `iio-device` and `iio-poll-interval` can only be changed in the NULL
and READY states; a change while PAUSED or PLAYING is ignored with a warning in the debug log.";

const RTPHDREXTCVO_NOTES: &str = "
Payload `0 0 0 0 C F R1 R0` (3GPP TS 26.114 7.4.5), written only on the marker packet of each
frame from the orientation meta (`R1 R0`: clockwise quarter turns, `F`: mirror, `C`: 1 for a
back camera, 0 for front, external or unknown), read back into the meta on receive. Used
through `extmap-N=urn:3gpp:video-orientation` caps or `auto-header-extension`.";

const DEVICETELEMETRY_NOTES: &str = "
Every `interval` it posts a `streamwire-telemetry` element message with the fields of
`docs/privacy.md` that `consent` allows; at `none` nothing is read or posted. `cpu-usage` and
`process-cpu-usage` are averages over the interval before the message: the sampler primes
them one interval ahead, so they are in every message, the first included (after consent is
raised while playing, the next message comes one interval later).";

fn type_name(pspec: &glib::ParamSpec) -> String {
    let t = pspec.value_type();
    if let Some(e) = pspec.downcast_ref::<glib::ParamSpecEnum>() {
        let values: Vec<String> = e
            .enum_class()
            .values()
            .iter()
            .map(|v| format!("`{}`", v.nick()))
            .collect();
        return format!("enum {}", values.join(" / "));
    }
    match t {
        glib::Type::STRING => "string".into(),
        glib::Type::BOOL => "boolean".into(),
        glib::Type::U32 => "unsigned int".into(),
        glib::Type::F64 => "double".into(),
        other => other.name().to_owned(),
    }
}

fn range(pspec: &glib::ParamSpec) -> String {
    if let Some(p) = pspec.downcast_ref::<glib::ParamSpecUInt>() {
        return format!("{} - {}", p.minimum(), p.maximum());
    }
    if let Some(p) = pspec.downcast_ref::<glib::ParamSpecDouble>() {
        return format!("{} - {}", p.minimum(), p.maximum());
    }
    String::new()
}

fn default(pspec: &glib::ParamSpec) -> String {
    let v = pspec.default_value();
    if let Some(e) = pspec.downcast_ref::<glib::ParamSpecEnum>() {
        let d = e.default_value_as_i32();
        return e
            .enum_class()
            .value(d)
            .map(|v| format!("`{}`", v.nick()))
            .unwrap_or_default();
    }
    if let Ok(s) = v.get::<Option<String>>() {
        return s.map_or("none".into(), |s| format!("`{s}`"));
    }
    if let Ok(x) = v.get::<u32>() {
        return x.to_string();
    }
    if let Ok(x) = v.get::<f64>() {
        return x.to_string();
    }
    if let Ok(x) = v.get::<bool>() {
        return x.to_string();
    }
    String::new()
}

fn access(pspec: &glib::ParamSpec) -> &'static str {
    let f = pspec.flags();
    if !f.contains(glib::ParamFlags::WRITABLE) {
        return "read-only";
    }
    let bits = f.bits();
    let has = |flag: i32| u32::try_from(flag).is_ok_and(|flag| bits & flag != 0);
    if has(gst::ffi::GST_PARAM_MUTABLE_PLAYING) {
        "any state"
    } else if has(gst::ffi::GST_PARAM_MUTABLE_PAUSED) {
        "NULL, READY, PAUSED"
    } else if has(gst::ffi::GST_PARAM_MUTABLE_READY) {
        "NULL, READY"
    } else {
        "NULL"
    }
}

fn caps_text(caps: &gst::Caps) -> String {
    caps.to_string()
}

fn element_section(out: &mut String, name: &str) {
    let Some(factory) = gst::ElementFactory::find(name) else {
        let _ = writeln!(out, "## {name}\n\n(not registered)\n");
        return;
    };
    let meta = |k: &str| factory.metadata(k).unwrap_or_default().to_owned();
    let _ = writeln!(out, "## {name}\n");
    let _ = writeln!(out, "{}. {}\n", meta("long-name"), meta("description"));
    let _ = writeln!(
        out,
        "Class `{}`, rank {}, type `{}`.\n",
        meta("klass"),
        i32::from(factory.rank()),
        factory.element_type().name()
    );
    out.push_str(&notes(name));
    out.push('\n');

    let templates = factory.static_pad_templates();
    if !templates.is_empty() {
        out.push_str("Pads:\n\n| pad | direction | presence | caps |\n|---|---|---|---|\n");
        for t in templates {
            let _ = writeln!(
                out,
                "| `{}` | {:?} | {:?} | `{}` |",
                t.name_template(),
                t.direction(),
                t.presence(),
                caps_text(&t.caps())
            );
        }
        out.push('\n');
    }

    let ty = factory.element_type();
    let class = glib::object::ObjectClass::from_type(ty);
    let props: Vec<glib::ParamSpec> = class
        .map(|c| {
            c.list_properties()
                .iter()
                .filter(|p| p.owner_type() == ty)
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    if !props.is_empty() {
        out.push_str(
            "Properties:\n\n| property | type | range | default | changeable | description |\n\
             |---|---|---|---|---|---|\n",
        );
        for p in &props {
            let _ = writeln!(
                out,
                "| `{}` | {} | {} | {} | {} | {} |",
                p.name(),
                type_name(p),
                range(p),
                default(p),
                access(p),
                p.blurb().unwrap_or_default()
            );
        }
        out.push('\n');
    }

    let signals: Vec<(glib::subclass::SignalId, &str)> = SIGNALS
        .iter()
        .filter(|(e, _, _)| *e == name)
        .filter_map(|(_, s, args)| Some((glib::subclass::SignalId::lookup(s, ty)?, *args)))
        .collect();
    if !signals.is_empty() {
        out.push_str("Signals:\n\n| signal | arguments | returns | kind |\n|---|---|---|---|\n");
        for (id, names) in signals {
            let q = id.query();
            let args: Vec<String> = q
                .param_types()
                .iter()
                .zip(names.split(','))
                .map(|(t, n)| format!("`{}` {}", n.trim(), t.type_().name()))
                .collect();
            let kind = if q.flags().contains(glib::SignalFlags::ACTION) {
                "action"
            } else {
                "emitted"
            };
            let _ = writeln!(
                out,
                "| `{}` | {} | {} | {kind} |",
                q.signal_name(),
                args.join(", "),
                q.return_type().type_().name()
            );
        }
        out.push('\n');
    }
}

/// The Markdown of `docs/elements.md`. The plugin must be registered.
pub fn elements_markdown() -> String {
    let mut out = String::from(
        "# Elements reference\n\n\
         Generated from the `streamwire` GStreamer plugin (`elements/`) by\n\
         `cargo run -p gst-plugin-streamwire --example elements-doc > docs/elements.md`;\n\
         `elements/tests/elements_doc.rs` fails when this file is stale. `gst-inspect-1.0\n\
         streamwire` prints the same metadata, pads, properties and signals.\n\n",
    );
    for e in ELEMENTS {
        element_section(&mut out, e);
    }
    while out.ends_with("\n\n") {
        out.pop();
    }
    out
}
