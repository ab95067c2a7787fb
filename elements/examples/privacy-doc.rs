// SPDX-License-Identifier: MIT OR Apache-2.0
//! Prints `docs/privacy.md`, generated from the telemetry field registry:
//! `cargo run -p gst-plugin-streamwire --example privacy-doc > docs/privacy.md`

fn main() {
    print!("{}", gststreamwire::telemetry::privacy_markdown());
}
