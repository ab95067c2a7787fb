// SPDX-License-Identifier: MIT OR Apache-2.0
//! `docs/elements.md` must be what the plugin generates, and the plugin's metadata must read
//! as gst-plugins-rs's: a real origin, an author, a doc-uri per element, and property
//! descriptions that do not repeat what gst-inspect-1.0 prints (range, default, states).

use gst::glib;
use gst::prelude::*;

fn init() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        gst::init().unwrap();
        gststreamwire::plugin_register_static().unwrap();
    });
}

#[test]
fn committed_elements_doc_matches_the_plugin() {
    init();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/elements.md");
    let committed = std::fs::read_to_string(path).expect("docs/elements.md exists");
    let generated = gststreamwire::docs::elements_markdown();
    assert!(
        committed == generated,
        "docs/elements.md is out of date; regenerate it with \
         `cargo run -p gst-plugin-streamwire --example elements-doc > docs/elements.md`"
    );
    for f in gststreamwire::sensorrotation::pixels::supported_formats() {
        assert!(committed.contains(&format!("`{}`", f.to_str())), "{f:?}");
    }
}

#[test]
fn metadata_reads_as_a_first_party_plugin() {
    init();
    let plugin = gst::Registry::get().find_plugin("streamwire").unwrap();
    let origin = plugin.origin();
    assert!(!origin.contains("example.invalid"), "{origin}");
    assert!(origin.contains(gststreamwire::DOC_PATH), "{origin}");
    for name in gststreamwire::docs::ELEMENTS {
        let f = gst::ElementFactory::find(name).unwrap();
        assert_eq!(
            f.metadata("doc-uri"),
            Some(format!("{}#{name}", gststreamwire::DOC_PATH).as_str())
        );
        let author = f.metadata("author").unwrap();
        assert!(!author.is_empty(), "{name}");
        assert_eq!(author, env!("CARGO_PKG_AUTHORS"));
        let class = glib::object::ObjectClass::from_type(f.element_type()).unwrap();
        for p in class.list_properties().iter() {
            if p.owner_type() != f.element_type() {
                continue;
            }
            let blurb = p.blurb().unwrap_or_default();
            assert!(!blurb.is_empty(), "{name}.{}: no description", p.name());
            for banned in ["Default", "Range", "Settable in", "Changeable", "Read-only"] {
                assert!(
                    !blurb.contains(banned),
                    "{name}.{}: `{blurb}` repeats {banned}",
                    p.name()
                );
            }
            assert!(!blurb.ends_with('.'), "{name}.{}: `{blurb}`", p.name());
        }
    }
}
