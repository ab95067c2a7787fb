// SPDX-License-Identifier: MIT OR Apache-2.0
//! `docs/privacy.md` must be exactly what the registry generates.

#[test]
fn committed_privacy_doc_matches_the_registry() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/privacy.md");
    let committed = std::fs::read_to_string(path).expect("docs/privacy.md exists");
    let generated = gststreamwire::telemetry::privacy_markdown();
    assert!(
        committed == generated,
        "docs/privacy.md is out of date; regenerate it with \
         `cargo run -p gst-plugin-streamwire --example privacy-doc > docs/privacy.md`"
    );
    // Every registry field is disclosed with its class.
    for f in gststreamwire::telemetry::REGISTRY {
        assert!(committed.contains(&format!("| `{}` | {} |", f.key, f.class)));
    }
}

#[test]
fn no_hardware_identifier_is_read_by_the_telemetry_code() {
    // Static guard: the sampler source never touches identifier APIs or files.
    let src = include_str!("../src/telemetry/sampler.rs");
    let code: String = src
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    for banned in [
        "mac_address",
        "product_serial",
        "board_serial",
        "product_uuid",
        "chassis_serial",
        "machine-id",
        "ip_networks",
        "accel",
    ] {
        assert!(!code.contains(banned), "telemetry code mentions {banned}");
    }
}
