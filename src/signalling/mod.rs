//! Signalling: rooms, tokens, SDP/ICE relay, real-time messages, and the async client.
//!
//! - [`protocol`]: the versioned JSON messages shared by server and client.
//! - [`token`]: HS256 room tokens (mint/verify).
//! - the hub (crate-internal): rooms, sessions and the protocol state machine of each
//!   WebSocket connection, run by `streamwire::server`; its limits are [`Limits`].
//! - [`client`]: the async client the WebRTC session layer drives.
//!
//! Signalling stores nothing and depends on no other part of the crate: the server plugs the
//! telemetry store in through a service seam.
//!
//! ```
//! use streamwire::signalling::protocol::{ClientMsg, PROTOCOL_VERSION};
//! let join = ClientMsg::Join { v: PROTOCOL_VERSION, room: "r".into(), token: "jwt".into(), metadata: serde_json::Value::Null };
//! assert!(serde_json::to_string(&join).unwrap().starts_with(r#"{"type":"join""#));
//! ```

pub mod client;
pub(crate) mod hub;
pub mod protocol;
pub(crate) mod service;
pub mod token;

pub use hub::Limits;
