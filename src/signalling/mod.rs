//! Signalling: rooms, tokens, SDP/ICE relay, real-time messages, and the async client.
//!
//! - [`protocol`]: the versioned JSON messages shared by server and client.
//! - [`token`]: HS256 room tokens (mint/verify).
//! - [`server`]: the WebSocket server behind `streamwire serve`.
//! - [`client`]: the async client the WebRTC session layer drives.
//!
//! ```
//! use streamwire::signalling::protocol::{ClientMsg, PROTOCOL_VERSION};
//! let join = ClientMsg::Join { v: PROTOCOL_VERSION, room: "r".into(), token: "jwt".into(), metadata: serde_json::Value::Null };
//! assert!(serde_json::to_string(&join).unwrap().starts_with(r#"{"type":"join""#));
//! ```

pub mod client;
pub mod protocol;
pub mod server;
pub mod token;
