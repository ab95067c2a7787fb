//! The telemetry store: SQLite (WAL mode), schema migrations from `migrations/`, batched
//! ingest, retention purge, and the data-subject operations export and delete.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use gststreamwire::telemetry::{Consent, any_field};
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use super::ip::coarse_prefix;
pub use super::subject::Scope;
use crate::signalling::protocol::telemetry::{Batch, Feedback, FieldValue, MAX_COMMENT_CHARS};

/// Default telemetry database file, in the working directory.
pub const DEFAULT_DB_FILE: &str = "streamwire-telemetry.db";

/// Default retention: 30 days.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);

const DAY_MS: i64 = 24 * 3600 * 1000;

/// Schema migrations, applied in order; the database's `PRAGMA user_version` is the number of
/// the last one applied.
pub static MIGRATIONS: &[(&str, &str)] = &[
    (
        "migrations/0001_init.sql",
        include_str!("../../migrations/0001_init.sql"),
    ),
    (
        "migrations/0002_session_name.sql",
        include_str!("../../migrations/0002_session_name.sql"),
    ),
];

/// Errors of the telemetry store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite failed.
    #[error("telemetry database {path}: {source}")]
    Sqlite {
        /// Database file.
        path: PathBuf,
        /// The SQLite error.
        source: rusqlite::Error,
    },
    /// A migration failed to apply.
    #[error("telemetry database {path}: migration {file} failed: {source}")]
    Migration {
        /// Database file.
        path: PathBuf,
        /// Migration file.
        file: &'static str,
        /// The SQLite error.
        source: rusqlite::Error,
    },
    /// The database was written by a newer Streamwire.
    #[error(
        "telemetry database {path} has schema version {found}, newer than this streamwire \
         knows ({known}); upgrade streamwire"
    )]
    TooNew {
        /// Database file.
        path: PathBuf,
        /// Version in the file.
        found: u32,
        /// Newest version known here.
        known: u32,
    },
    /// A batch or feedback message is invalid.
    #[error("invalid telemetry {what}: {reason}")]
    Invalid {
        /// `batch`, `records[3].ts_ms`, `feedback.rating`, ...
        what: String,
        /// What is wrong.
        reason: String,
    },
}

/// Who sent a batch: room, session and peer, the user identity and display name from the room
/// token, and the connection's address (only its coarse prefix is stored).
#[derive(Debug, Clone)]
pub struct Tags<'a> {
    /// Room name.
    pub room: &'a str,
    /// Session id (one connection of a client).
    pub session: &'a str,
    /// Peer id in the room.
    pub peer: &'a str,
    /// The token's user identity (`sub`).
    pub user: &'a str,
    /// The token's display name (`name`), stored with the session; reports name members by it.
    pub name: &'a str,
    /// The connection's address, if known; reduced to /24 or /48 before storing.
    pub addr: Option<IpAddr>,
}

/// Result of an ingest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct IngestSummary {
    /// Field values stored.
    pub stored: u64,
    /// Field values dropped because they are undisclosed or above the batch's consent.
    pub dropped: u64,
}

/// Rows removed by a purge or a delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Removed {
    /// Rows from `records`.
    pub records: u64,
    /// Rows from `feedback`.
    pub feedback: u64,
    /// Rows from `sessions`.
    pub sessions: u64,
}

impl Removed {
    /// Total rows.
    pub fn total(&self) -> u64 {
        self.records + self.feedback + self.sessions
    }
}

/// One audit entry: action, time and row count, nothing that identifies a person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEntry {
    /// Milliseconds since the Unix epoch.
    pub ts_ms: i64,
    /// `purge`, `export-user` or `delete-user`.
    pub action: String,
    /// Rows concerned.
    pub rows: u64,
}

/// The numeric samples of one field of one peer's device or track, in time order.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Peer id.
    pub peer: String,
    /// The peer's display name (empty for sessions stored before schema version 2).
    pub name: String,
    /// `device` or `peer`.
    pub source: String,
    /// Track (empty for device records).
    pub track: String,
    /// Field key.
    pub field: String,
    /// `(milliseconds since the Unix epoch, value)`.
    pub points: Vec<(i64, f64)>,
}

/// The telemetry store.
///
/// ```
/// use streamwire::telemetry::store::{Scope, Store, Tags, DEFAULT_RETENTION};
/// use streamwire::signalling::protocol::telemetry::Batch;
/// let dir = tempfile::tempdir().unwrap();
/// let mut store = Store::open(&dir.path().join("t.db"), DEFAULT_RETENTION).unwrap();
/// let batch: Batch = serde_json::from_str(
///     r#"{"consent":"necessary","records":[{"ts_ms":1000,"source":"device","fields":{"cpu-usage":12.5}}]}"#,
/// ).unwrap();
/// let tags = Tags { room: "r", session: "s", peer: "p", user: "alice", name: "Alice", addr: None };
/// assert_eq!(store.ingest(&tags, &batch, 2000).unwrap().stored, 1);
/// let export = store.export_user("alice", Scope::Everywhere).unwrap();
/// assert_eq!(export["sessions"][0]["records"][0]["field"], "cpu-usage");
/// assert_eq!(export["sessions"][0]["name"], "Alice");
/// ```
pub struct Store {
    pub(super) conn: Connection,
    pub(super) path: PathBuf,
    retention_ms: i64,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .field("retention_ms", &self.retention_ms)
            .finish()
    }
}

/// How long a connection waits for another one's lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Switches the database to WAL mode. The switch needs the file briefly to itself, and when
/// several processes open a new database at once SQLite can answer `SQLITE_BUSY` without
/// consulting the busy handler, so this retries within [`BUSY_TIMEOUT`].
fn enable_wal(conn: &Connection) -> rusqlite::Result<()> {
    let deadline = std::time::Instant::now() + BUSY_TIMEOUT;
    loop {
        match conn.pragma_update(None, "journal_mode", "WAL") {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::DatabaseBusy
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(5));
            }
            result => return result,
        }
    }
}

impl Store {
    /// Opens (creating if needed) the database at `path`, switches it to WAL mode and applies
    /// pending migrations. `retention` caps how long any value is kept.
    pub fn open(path: &Path, retention: Duration) -> Result<Self, StoreError> {
        let p = path.to_path_buf();
        let sq = |source| StoreError::Sqlite {
            path: p.clone(),
            source,
        };
        let conn = Connection::open(path).map_err(sq)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(sq)?;
        enable_wal(&conn).map_err(sq)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(sq)?;
        conn.pragma_update(None, "foreign_keys", "ON").map_err(sq)?;
        let mut store = Store {
            conn,
            path: p,
            retention_ms: i64::try_from(retention.as_millis()).unwrap_or(i64::MAX),
        };
        store.migrate()?;
        Ok(store)
    }

    fn sq(&self) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
        move |source| StoreError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    fn migrate(&mut self) -> Result<(), StoreError> {
        let current = self.schema_version()?;
        let known = MIGRATIONS.len() as u32;
        if current > known {
            return Err(StoreError::TooNew {
                path: self.path.clone(),
                found: current,
                known,
            });
        }
        for (i, (file, sql)) in MIGRATIONS.iter().enumerate().skip(current as usize) {
            let version = i as u32 + 1;
            let path = self.path.clone();
            let mig = |source| StoreError::Migration {
                path: path.clone(),
                file,
                source,
            };
            // IMMEDIATE takes the write lock first, and the version is read again under it:
            // two processes opening a new database at once apply each migration exactly once.
            let tx = self
                .conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(mig)?;
            let now: u32 = tx
                .pragma_query_value(None, "user_version", |r| r.get(0))
                .map_err(mig)?;
            if now >= version {
                continue;
            }
            tx.execute_batch(sql).map_err(mig)?;
            tx.pragma_update(None, "user_version", version)
                .map_err(mig)?;
            tx.commit().map_err(mig)?;
            tracing::info!(file, version, "applied telemetry migration");
        }
        Ok(())
    }

    /// The schema version (`PRAGMA user_version`).
    pub fn schema_version(&self) -> Result<u32, StoreError> {
        self.conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(self.sq())
    }

    /// The SQLite journal mode (`wal` once opened).
    pub fn journal_mode(&self) -> Result<String, StoreError> {
        self.conn
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .map_err(self.sq())
    }

    /// The underlying connection, for inspection (tests, tooling).
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    fn session_id(
        tx: &rusqlite::Transaction<'_>,
        tags: &Tags<'_>,
        consent: &str,
        now_ms: i64,
    ) -> rusqlite::Result<i64> {
        let prefix = tags.addr.map(coarse_prefix);
        tx.query_row(
            "INSERT INTO sessions (room, session, peer, user_id, name, consent, net_prefix, first_ms, last_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)
             ON CONFLICT (room, session, peer, user_id) DO UPDATE SET
                 last_ms = max(last_ms, excluded.last_ms),
                 name = excluded.name,
                 consent = excluded.consent,
                 net_prefix = coalesce(excluded.net_prefix, net_prefix)
             RETURNING id",
            params![
                tags.room,
                tags.session,
                tags.peer,
                tags.user,
                tags.name,
                consent,
                prefix,
                now_ms
            ],
            |r| r.get(0),
        )
    }

    /// Stores a batch in one transaction. Every field is checked against the registry again
    /// (the producer is not trusted): undisclosed keys and keys above the batch's consent are
    /// dropped and counted. A batch at consent `none` is rejected.
    pub fn ingest(
        &mut self,
        tags: &Tags<'_>,
        batch: &Batch,
        now_ms: i64,
    ) -> Result<IngestSummary, StoreError> {
        let consent = batch.consent;
        if consent == Consent::None {
            return Err(StoreError::Invalid {
                what: "batch.consent".into(),
                reason: "telemetry sent at consent none; nothing may be stored".into(),
            });
        }
        for (i, r) in batch.records.iter().enumerate() {
            if r.ts_ms <= 0 {
                return Err(StoreError::Invalid {
                    what: format!("batch.records[{i}].ts_ms"),
                    reason: format!("{} is not a time after 1970", r.ts_ms),
                });
            }
        }
        let retention_ms = self.retention_ms;
        let path = self.path.clone();
        let sq = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(sq)?;
        let sid = Self::session_id(&tx, tags, consent.as_str(), now_ms).map_err(sq)?;
        let mut summary = IngestSummary::default();
        {
            let mut ins = tx
                .prepare_cached(
                    "INSERT INTO records (session_id, ts_ms, source, track, field, num, txt, expires_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )
                .map_err(sq)?;
            for r in &batch.records {
                for (key, value) in &r.fields {
                    let Some(f) = any_field(key).filter(|f| consent.allows(f.class)) else {
                        summary.dropped += 1;
                        continue;
                    };
                    let keep_ms = (i64::from(f.retention_days) * DAY_MS).min(retention_ms);
                    let (num, txt) = match value {
                        FieldValue::Num(n) if n.is_finite() => (Some(*n), None),
                        FieldValue::Num(_) => {
                            summary.dropped += 1;
                            continue;
                        }
                        FieldValue::Text(t) => (None, Some(t.as_str())),
                    };
                    ins.execute(params![
                        sid,
                        r.ts_ms,
                        r.source.as_str(),
                        r.track,
                        f.key,
                        num,
                        txt,
                        r.ts_ms.saturating_add(keep_ms)
                    ])
                    .map_err(sq)?;
                    summary.stored += 1;
                }
            }
        }
        tx.commit().map_err(sq)?;
        if summary.dropped > 0 {
            tracing::warn!(
                dropped = summary.dropped,
                "dropped undisclosed or unconsented telemetry fields"
            );
        }
        Ok(summary)
    }

    /// Stores end-user feedback (only ever called when the user sent some).
    pub fn add_feedback(
        &mut self,
        tags: &Tags<'_>,
        feedback: &Feedback,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        if !(1..=5).contains(&feedback.rating) {
            return Err(StoreError::Invalid {
                what: "feedback.rating".into(),
                reason: format!("{} is not between 1 and 5", feedback.rating),
            });
        }
        if let Some(c) = &feedback.comment {
            let n = c.chars().count();
            if n > MAX_COMMENT_CHARS {
                return Err(StoreError::Invalid {
                    what: "feedback.comment".into(),
                    reason: format!("{n} characters, at most {MAX_COMMENT_CHARS} allowed"),
                });
            }
        }
        let path = self.path.clone();
        let sq = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(sq)?;
        // Feedback alone does not widen consent: a session row created here says `necessary`.
        let existing: Option<String> = tx
            .query_row(
                "SELECT consent FROM sessions WHERE room=?1 AND session=?2 AND peer=?3 AND user_id=?4",
                params![tags.room, tags.session, tags.peer, tags.user],
                |r| r.get(0),
            )
            .optional()
            .map_err(sq)?;
        let consent = existing.unwrap_or_else(|| "necessary".into());
        let sid = Self::session_id(&tx, tags, &consent, now_ms).map_err(sq)?;
        tx.execute(
            "INSERT INTO feedback (session_id, ts_ms, rating, comment) VALUES (?1, ?2, ?3, ?4)",
            params![sid, now_ms, feedback.rating, feedback.comment],
        )
        .map_err(sq)?;
        tx.commit().map_err(sq)
    }

    /// Deletes everything past its retention (per-field retention or the configured one,
    /// whichever is shorter), then sessions left without data; records an audit entry.
    pub fn purge(&mut self, now_ms: i64) -> Result<Removed, StoreError> {
        let cutoff = now_ms.saturating_sub(self.retention_ms);
        let path = self.path.clone();
        let sq = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(sq)?;
        let records = tx
            .execute(
                "DELETE FROM records WHERE expires_ms <= ?1 OR ts_ms < ?2",
                params![now_ms, cutoff],
            )
            .map_err(sq)? as u64;
        let feedback = tx
            .execute("DELETE FROM feedback WHERE ts_ms < ?1", params![cutoff])
            .map_err(sq)? as u64;
        let sessions = tx
            .execute(
                "DELETE FROM sessions WHERE last_ms < ?1
                   AND NOT EXISTS (SELECT 1 FROM records r WHERE r.session_id = sessions.id)
                   AND NOT EXISTS (SELECT 1 FROM feedback f WHERE f.session_id = sessions.id)",
                params![cutoff],
            )
            .map_err(sq)? as u64;
        let removed = Removed {
            records,
            feedback,
            sessions,
        };
        tx.execute(
            "INSERT INTO audit (ts_ms, action, rows) VALUES (?1, 'purge', ?2)",
            params![now_ms, removed.total() as i64],
        )
        .map_err(sq)?;
        tx.commit().map_err(sq)?;
        Ok(removed)
    }

    /// The audit trail, oldest first.
    pub fn audit(&self) -> Result<Vec<AuditEntry>, StoreError> {
        let mut s = self
            .conn
            .prepare("SELECT ts_ms, action, rows FROM audit ORDER BY id")
            .map_err(self.sq())?;
        s.query_map([], |r| {
            Ok(AuditEntry {
                ts_ms: r.get(0)?,
                action: r.get(1)?,
                rows: r.get::<_, i64>(2)? as u64,
            })
        })
        .map_err(self.sq())?
        .collect::<Result<_, _>>()
        .map_err(self.sq())
    }

    /// Numeric samples of `room` at or after `since_ms`, one [`Series`] per peer, source,
    /// track and field, each in time order, with the peer's display name (the input of the
    /// `report` module).
    pub fn room_series(&self, room: &str, since_ms: i64) -> Result<Vec<Series>, StoreError> {
        let mut s = self
            .conn
            .prepare(
                "SELECT s.peer, r.source, r.track, r.field, r.ts_ms, r.num, s.name
                 FROM records r JOIN sessions s ON s.id = r.session_id
                 WHERE s.room = ?1 AND r.ts_ms >= ?2 AND r.num IS NOT NULL
                 ORDER BY s.peer, r.source, r.track, r.field, r.ts_ms",
            )
            .map_err(self.sq())?;
        let mut rows = s.query(params![room, since_ms]).map_err(self.sq())?;
        let mut out: Vec<Series> = Vec::new();
        while let Some(row) = rows.next().map_err(self.sq())? {
            let text = |i| -> rusqlite::Result<&str> {
                row.get_ref(i)?.as_str().map_err(|_| {
                    rusqlite::Error::InvalidColumnType(
                        i,
                        String::new(),
                        rusqlite::types::Type::Text,
                    )
                })
            };
            let (peer, source, track, field) = (
                text(0).map_err(self.sq())?,
                text(1).map_err(self.sq())?,
                text(2).map_err(self.sq())?,
                text(3).map_err(self.sq())?,
            );
            let point = (
                row.get::<_, i64>(4).map_err(self.sq())?,
                row.get::<_, f64>(5).map_err(self.sq())?,
            );
            // Rows arrive grouped: compare with the current series without allocating.
            match out.last_mut() {
                Some(cur)
                    if cur.peer == peer
                        && cur.source == source
                        && cur.track == track
                        && cur.field == field =>
                {
                    cur.points.push(point)
                }
                _ => out.push(Series {
                    peer: peer.to_owned(),
                    name: text(6).map_err(self.sq())?.to_owned(),
                    source: source.to_owned(),
                    track: track.to_owned(),
                    field: field.to_owned(),
                    points: vec![point],
                }),
            }
        }
        Ok(out)
    }
}

/// Milliseconds since the Unix epoch, now (the clock of every stored timestamp).
pub use super::now_ms;
