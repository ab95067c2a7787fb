//! The whiteboard messages' vocabulary: board names and their payload.
//!
//! A room has whiteboards named by [`valid_board`] names (`main` is the one the clients open
//! by default). Each is one shared Yjs document (a CRDT) whose server copy is authoritative
//! and persisted. A `whiteboard` frame ([`ClientMsg::Whiteboard`](super::ClientMsg::Whiteboard),
//! [`ServerMsg::Whiteboard`](super::ServerMsg::Whiteboard)) carries **one y-protocols message**
//! in `data` (base64 on the wire), exactly as `y-protocols/sync` and `y-protocols/awareness`
//! encode it (and `yrs::sync::Message` in Rust):
//!
//! | first varint | message | who sends it |
//! |---|---|---|
//! | `0`, then `0` | sync step 1 (the sender's state vector) | the client on opening a board; the server right after its step 2 to a member allowed to draw |
//! | `0`, then `1` | sync step 2 (what the other side lacks) | the server in answer to step 1; a drawing client in answer to the server's step 1 |
//! | `0`, then `2` | update | a drawing client for each local change; the server relays every accepted change to the other members |
//! | `1` | awareness update (cursor, laser pointer, page, who is drawing) | any member; relayed, never stored, rate-limited |
//! | `8` | sync chunk: a step 2 too large for one frame, in pieces (`crate::whiteboard::chunk`) | the server instead of a large step 2 |
//! | `9` | chunk received | a member, for each sync chunk |
//!
//! The full model (document layout, permissions, persistence) is in `docs/whiteboard.md`.
//!
//! ```
//! use streamwire::signalling::protocol::whiteboard::{valid_board, MAX_BOARD_NAME};
//! assert!(valid_board("main").is_ok());
//! assert!(valid_board("slides-2").is_ok());
//! assert!(valid_board("").is_err());
//! assert!(valid_board(&"x".repeat(MAX_BOARD_NAME + 1)).is_err());
//! ```

/// The board clients open when none is named.
pub const DEFAULT_BOARD: &str = "main";

/// Longest board name, characters.
pub const MAX_BOARD_NAME: usize = 64;

/// First varint of a y-protocols sync message.
pub const MSG_SYNC: u8 = 0;
/// First varint of a y-protocols awareness message.
pub const MSG_AWARENESS: u8 = 1;

/// Check a board name: 1 to [`MAX_BOARD_NAME`] characters of `A-Z a-z 0-9 - _ .`; the error
/// says what is wrong.
pub fn valid_board(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("board name is empty".into());
    }
    if name.len() > MAX_BOARD_NAME {
        return Err(format!(
            "board name is {} characters, at most {MAX_BOARD_NAME} are allowed",
            name.len()
        ));
    }
    match name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        Some(c) => Err(format!(
            "board name `{name}` contains `{c}`; only A-Z, a-z, 0-9, `-`, `_` and `.` are allowed"
        )),
        None => Ok(()),
    }
}
