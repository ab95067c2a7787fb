//! The protocol decoder never panics on any text, and a field error names its field.
#![no_main]

use libfuzzer_sys::fuzz_target;
use streamwire::signalling::protocol::{ErrorCode, decode_client};

fuzz_target!(|data: &[u8]| {
    // WebSocket text frames are UTF-8 (tungstenite refuses anything else before the decoder).
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(e) = decode_client(text) {
        assert!(!e.message.is_empty(), "an error without a message for {text:?}");
        if matches!(e.code, ErrorCode::MissingField | ErrorCode::InvalidField) {
            assert!(
                e.field.as_deref().is_some_and(|f| !f.is_empty()),
                "{} names no field for {text:?}",
                e.code
            );
        }
    }
});
