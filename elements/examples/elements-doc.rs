// SPDX-License-Identifier: MIT OR Apache-2.0
//! Prints `docs/elements.md`, generated from the registered plugin:
//! `cargo run -p gst-plugin-streamwire --example elements-doc > docs/elements.md`

fn main() -> Result<(), Box<dyn std::error::Error>> {
    gst::init()?;
    gststreamwire::plugin_register_static()?;
    print!("{}", gststreamwire::docs::elements_markdown());
    Ok(())
}
