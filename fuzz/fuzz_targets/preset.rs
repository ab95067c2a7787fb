//! The preset parser never panics on any text, and every error is located in the file (a
//! line of the text and a column within it).
#![no_main]

use libfuzzer_sys::fuzz_target;
use streamwire::preset::{Origin, Preset, PresetError};

const PATH: &str = "fuzz.toml";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Err(e) = Preset::from_str(text, PATH, &[]) else {
        return;
    };
    let PresetError::Invalid { origin, .. } = &e else {
        panic!("an error without a place: {e} for {text:?}");
    };
    let Origin::File { path, line, .. } = origin else {
        panic!("not located in the file: {e} for {text:?}");
    };
    assert_eq!(path.as_str(), PATH);
    assert!(
        *line >= 1 && *line <= text.split('\n').count(),
        "line {line} outside the text: {e}"
    );
});
