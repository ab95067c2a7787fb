//! The `[whiteboard]` table of a receiving room preset: record the room's whiteboard with its
//! media (`output = "record:DIR"`; `SessionConfig::try_from` in `pipeline` turns it into a
//! room recording, `webrtc::room_recording`).

use super::error::{ErrorKind, PresetError};
use super::schema::{Section, invalid};

pub(crate) const WHITEBOARD_KEYS: &[&str] = &["record", "board"];

/// The board recorded when `whiteboard.board` is not set.
pub const DEFAULT_BOARD: &str = "main";

/// The `[whiteboard]` table.
///
/// ```
/// use streamwire::preset::Preset;
///
/// let p = Preset::load("subscribe-record", &["whiteboard.record=true".into()]).unwrap();
/// let w = p.whiteboard.unwrap();
/// assert!(w.record);
/// assert_eq!(w.board, "main");
///
/// let e = Preset::load("subscribe-record", &["whiteboard.board=a b".into()]).unwrap_err();
/// assert!(e.to_string().contains("whiteboard.board"), "{e}");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WhiteboardSettings {
    /// `whiteboard.record`: record the board (default false). With `output = "record:DIR"`
    /// the room goes into one file, `DIR/room.mkv` (`DIR/room-N.mkv` when that exists):
    /// every publisher's video composed, every publisher's audio mixed, and the board,
    /// instead of one file per publisher.
    pub record: bool,
    /// `whiteboard.board`: which board (default [`DEFAULT_BOARD`]).
    pub board: String,
}

/// Validate `[whiteboard]`.
pub(crate) fn whiteboard(sec: &Section<'_>) -> Result<WhiteboardSettings, PresetError> {
    sec.check_keys(WHITEBOARD_KEYS, &[])?;
    let record = sec.bool("record")?.is_some_and(|(b, _)| b);
    let board = match sec.string("board")? {
        None => DEFAULT_BOARD.to_owned(),
        Some((s, node)) => {
            if let Err(reason) = crate::signalling::protocol::whiteboard::valid_board(s) {
                return Err(invalid(
                    &node.at,
                    ErrorKind::InvalidValue {
                        key: sec.full_key("board"),
                        value: s.to_owned(),
                        expected: format!("a board name ({reason})"),
                        suggestion: None,
                    },
                ));
            }
            s.to_owned()
        }
    };
    Ok(WhiteboardSettings { record, board })
}
