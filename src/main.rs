//! The `streamwire` command-line tool.

fn main() -> anyhow::Result<()> {
    streamwire::gst_init::init()?;
    Ok(())
}
