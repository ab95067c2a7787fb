//! Whiteboard persistence in SQLite (tables `wb_*`, beside the telemetry store's in the same
//! database file, or in memory without one): per board a compacted snapshot plus the updates
//! accepted since, which client ids belong to which user, and imported document pages.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, params};

use super::WhiteboardError;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS wb_boards (
    room TEXT NOT NULL, board TEXT NOT NULL, snapshot BLOB, updated_ms INTEGER NOT NULL,
    PRIMARY KEY (room, board));
CREATE TABLE IF NOT EXISTS wb_updates (
    id INTEGER PRIMARY KEY, room TEXT NOT NULL, board TEXT NOT NULL, ts_ms INTEGER NOT NULL,
    user TEXT NOT NULL, data BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS wb_updates_board ON wb_updates (room, board, id);
CREATE TABLE IF NOT EXISTS wb_clients (
    room TEXT NOT NULL, board TEXT NOT NULL, client INTEGER NOT NULL, user TEXT NOT NULL,
    PRIMARY KEY (room, board, client));
CREATE TABLE IF NOT EXISTS wb_pages (
    room TEXT NOT NULL, doc TEXT NOT NULL, page INTEGER NOT NULL, png BLOB NOT NULL,
    width INTEGER NOT NULL, height INTEGER NOT NULL, created_ms INTEGER NOT NULL,
    PRIMARY KEY (room, doc, page));
";

/// What is stored of one board.
#[derive(Debug, Default)]
pub(super) struct Stored {
    /// Compacted state (a Yjs update of everything up to the compaction).
    pub snapshot: Option<Vec<u8>>,
    /// Updates accepted since, in order.
    pub updates: Vec<Vec<u8>>,
    /// Client id → user.
    pub owners: Vec<(u64, String)>,
}

/// One image page of an imported document.
pub(super) struct PageImage {
    pub png: Vec<u8>,
    pub width: u32,
    pub height: u32,
}

pub(super) struct BoardStore {
    conn: Connection,
    path: PathBuf,
}

impl BoardStore {
    /// Open (create) the tables in `path`, or in memory.
    pub fn open(path: Option<&Path>) -> Result<Self, WhiteboardError> {
        let shown = path
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from(":memory:"));
        let sq = |source| WhiteboardError::Sqlite {
            path: shown.clone(),
            source,
        };
        let conn = match path {
            Some(p) => Connection::open(p),
            None => Connection::open_in_memory(),
        }
        .map_err(sq)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(sq)?;
        if path.is_some() {
            conn.pragma_update(None, "journal_mode", "WAL")
                .map_err(sq)?;
            conn.pragma_update(None, "synchronous", "NORMAL")
                .map_err(sq)?;
        }
        conn.execute_batch(SCHEMA).map_err(sq)?;
        Ok(BoardStore { conn, path: shown })
    }

    fn sq(&self) -> impl Fn(rusqlite::Error) -> WhiteboardError + '_ {
        move |source| WhiteboardError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    /// The stored board, `None` if it was never created.
    pub fn load(&self, room: &str, board: &str) -> Result<Option<Stored>, WhiteboardError> {
        let sq = self.sq();
        let snapshot: Option<Option<Vec<u8>>> = self
            .conn
            .query_row(
                "SELECT snapshot FROM wb_boards WHERE room = ?1 AND board = ?2",
                params![room, board],
                |r| r.get(0),
            )
            .optional()
            .map_err(&sq)?;
        let Some(snapshot) = snapshot else {
            return Ok(None);
        };
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT data FROM wb_updates WHERE room = ?1 AND board = ?2 ORDER BY id",
            )
            .map_err(&sq)?;
        let updates = st
            .query_map(params![room, board], |r| r.get::<_, Vec<u8>>(0))
            .map_err(&sq)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(&sq)?;
        let mut st = self
            .conn
            .prepare_cached("SELECT client, user FROM wb_clients WHERE room = ?1 AND board = ?2")
            .map_err(&sq)?;
        let owners = st
            .query_map(params![room, board], |r| {
                Ok((r.get::<_, i64>(0)? as u64, r.get::<_, String>(1)?))
            })
            .map_err(&sq)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(&sq)?;
        Ok(Some(Stored {
            snapshot,
            updates,
            owners,
        }))
    }

    /// Create a board with its first state.
    pub fn create(
        &self,
        room: &str,
        board: &str,
        snapshot: &[u8],
        now_ms: i64,
    ) -> Result<(), WhiteboardError> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO wb_boards (room, board, snapshot, updated_ms) VALUES (?1, ?2, ?3, ?4)",
                params![room, board, snapshot, now_ms],
            )
            .map_err(self.sq())?;
        Ok(())
    }

    /// Append an accepted update.
    pub fn append(
        &self,
        room: &str,
        board: &str,
        user: &str,
        data: &[u8],
        now_ms: i64,
    ) -> Result<(), WhiteboardError> {
        let sq = self.sq();
        self.conn
            .prepare_cached(
                "INSERT INTO wb_updates (room, board, ts_ms, user, data) VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .and_then(|mut s| s.execute(params![room, board, now_ms, user, data]))
            .map_err(&sq)?;
        self.conn
            .prepare_cached("UPDATE wb_boards SET updated_ms = ?3 WHERE room = ?1 AND board = ?2")
            .and_then(|mut s| s.execute(params![room, board, now_ms]))
            .map_err(&sq)?;
        Ok(())
    }

    /// Record that `client` belongs to `user`.
    pub fn claim(
        &self,
        room: &str,
        board: &str,
        client: u64,
        user: &str,
    ) -> Result<(), WhiteboardError> {
        self.conn
            .prepare_cached(
                "INSERT OR REPLACE INTO wb_clients (room, board, client, user) VALUES (?1, ?2, ?3, ?4)",
            )
            .and_then(|mut s| s.execute(params![room, board, client as i64, user]))
            .map_err(self.sq())?;
        Ok(())
    }

    /// Replace the board's history by one snapshot of its state.
    pub fn compact(
        &mut self,
        room: &str,
        board: &str,
        snapshot: &[u8],
        now_ms: i64,
    ) -> Result<(), WhiteboardError> {
        let path = self.path.clone();
        let sq = move |source| WhiteboardError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(&sq)?;
        tx.execute(
            "UPDATE wb_boards SET snapshot = ?3, updated_ms = ?4 WHERE room = ?1 AND board = ?2",
            params![room, board, snapshot, now_ms],
        )
        .map_err(&sq)?;
        tx.execute(
            "DELETE FROM wb_updates WHERE room = ?1 AND board = ?2",
            params![room, board],
        )
        .map_err(&sq)?;
        tx.commit().map_err(&sq)?;
        Ok(())
    }

    /// Every stored board.
    pub fn boards(&self) -> Result<Vec<(String, String)>, WhiteboardError> {
        let sq = self.sq();
        let mut st = self
            .conn
            .prepare("SELECT room, board FROM wb_boards ORDER BY room, board")
            .map_err(&sq)?;
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(&sq)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(&sq)
    }

    /// Boards stored for `room`.
    pub fn board_count(&self, room: &str) -> Result<usize, WhiteboardError> {
        self.conn
            .query_row(
                "SELECT COUNT(*) FROM wb_boards WHERE room = ?1",
                params![room],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n as usize)
            .map_err(self.sq())
    }

    /// Client ids of `user` get the owner `replacement` (after a privacy deletion).
    pub fn disown(
        &self,
        user: &str,
        replacement: &str,
        room: Option<&str>,
    ) -> Result<usize, WhiteboardError> {
        let sq = self.sq();
        let n = self
            .conn
            .execute(
                "UPDATE wb_clients SET user = ?2 WHERE user = ?1 AND (?3 IS NULL OR room = ?3)",
                params![user, replacement, room],
            )
            .map_err(&sq)?;
        self.conn
            .execute(
                "UPDATE wb_updates SET user = ?2 WHERE user = ?1 AND (?3 IS NULL OR room = ?3)",
                params![user, replacement, room],
            )
            .map_err(&sq)?;
        Ok(n)
    }

    /// Delete boards (and their documents' pages) not changed since `before_ms`; returns the
    /// `(room, board)`s deleted.
    pub fn purge(&mut self, before_ms: i64) -> Result<Vec<(String, String)>, WhiteboardError> {
        let path = self.path.clone();
        let sq = move |source| WhiteboardError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(&sq)?;
        let old: Vec<(String, String)> = {
            let mut st = tx
                .prepare("SELECT room, board FROM wb_boards WHERE updated_ms < ?1")
                .map_err(&sq)?;
            st.query_map(params![before_ms], |r| Ok((r.get(0)?, r.get(1)?)))
                .map_err(&sq)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(&sq)?
        };
        for (room, board) in &old {
            for table in ["wb_boards", "wb_updates", "wb_clients"] {
                tx.execute(
                    &format!("DELETE FROM {table} WHERE room = ?1 AND board = ?2"),
                    params![room, board],
                )
                .map_err(&sq)?;
            }
        }
        tx.execute(
            "DELETE FROM wb_pages WHERE room NOT IN (SELECT room FROM wb_boards) AND created_ms < ?1",
            params![before_ms],
        )
        .map_err(&sq)?;
        tx.commit().map_err(&sq)?;
        Ok(old)
    }

    /// Store the rendered pages of an imported document, all or none.
    pub fn put_pages(
        &mut self,
        room: &str,
        doc: &str,
        pages: &[PageImage],
        now_ms: i64,
    ) -> Result<(), WhiteboardError> {
        let path = self.path.clone();
        let sq = move |source| WhiteboardError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(&sq)?;
        for (i, p) in pages.iter().enumerate() {
            tx.execute(
                "INSERT INTO wb_pages (room, doc, page, png, width, height, created_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![room, doc, i as i64 + 1, p.png, p.width, p.height, now_ms],
            )
            .map_err(&sq)?;
        }
        tx.commit().map_err(&sq)?;
        Ok(())
    }

    /// One page image of an imported document.
    pub fn page(
        &self,
        room: &str,
        doc: &str,
        page: u32,
    ) -> Result<Option<Vec<u8>>, WhiteboardError> {
        self.conn
            .query_row(
                "SELECT png FROM wb_pages WHERE room = ?1 AND doc = ?2 AND page = ?3",
                params![room, doc, page],
                |r| r.get(0),
            )
            .optional()
            .map_err(self.sq())
    }

    /// Bytes of the board's stored state (snapshot plus updates), for the benchmark.
    pub fn stored_bytes(&self, room: &str, board: &str) -> Result<u64, WhiteboardError> {
        self.conn
            .query_row(
                "SELECT COALESCE((SELECT LENGTH(snapshot) FROM wb_boards WHERE room = ?1 AND board = ?2), 0)
                      + COALESCE((SELECT SUM(LENGTH(data)) FROM wb_updates WHERE room = ?1 AND board = ?2), 0)",
                params![room, board],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n as u64)
            .map_err(self.sq())
    }
}
