//! Data-subject requests on the store: export and delete everything held about a user,
//! everywhere (the operator: `streamwire privacy`, on the database) or within one room (that
//! room's admin, over the signalling protocol: `privacy_export` / `privacy_delete`).

use rusqlite::params;
use serde_json::{Value as Json, json};

use super::now_ms;
use super::store::{Removed, Store, StoreError};

/// Which of a user's data a data-subject request covers.
///
/// ```
/// use streamwire::telemetry::store::Scope;
/// assert_eq!(Scope::Room("standup").room(), Some("standup"));
/// assert_eq!(Scope::Everywhere.room(), None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope<'a> {
    /// Every room: for the operator of the database only.
    Everywhere,
    /// One room: what that room's admin may ask for.
    Room(&'a str),
}

impl Scope<'_> {
    /// The room, when the scope is one.
    pub fn room(&self) -> Option<&str> {
        match self {
            Scope::Everywhere => None,
            Scope::Room(r) => Some(r),
        }
    }
}

impl Store {
    /// Everything held about `user` within `scope`, as JSON: their sessions (room, session,
    /// peer, display name, consent, network prefix, times), every record and every feedback.
    /// Records an audit entry.
    pub fn export_user(&mut self, user: &str, scope: Scope<'_>) -> Result<Json, StoreError> {
        let path = self.path.clone();
        let sq = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        let mut sessions = Vec::new();
        let mut rows = 0u64;
        {
            let mut s = self
                .conn
                .prepare(
                    "SELECT id, room, session, peer, consent, net_prefix, first_ms, last_ms, name
                     FROM sessions WHERE user_id = ?1 AND (?2 IS NULL OR room = ?2) ORDER BY id",
                )
                .map_err(sq)?;
            let mut r = self
                .conn
                .prepare(
                    "SELECT ts_ms, source, track, field, num, txt, expires_ms FROM records
                     WHERE session_id = ?1 ORDER BY ts_ms, id",
                )
                .map_err(sq)?;
            let mut f = self
                .conn
                .prepare(
                    "SELECT ts_ms, rating, comment FROM feedback WHERE session_id = ?1 ORDER BY id",
                )
                .map_err(sq)?;
            let found: Vec<(i64, Json)> = s
                .query_map(params![user, scope.room()], |row| {
                    Ok((
                        row.get::<_, i64>(0)?,
                        json!({
                            "room": row.get::<_, String>(1)?,
                            "session": row.get::<_, String>(2)?,
                            "peer": row.get::<_, String>(3)?,
                            "name": row.get::<_, String>(8)?,
                            "consent": row.get::<_, String>(4)?,
                            "net_prefix": row.get::<_, Option<String>>(5)?,
                            "first_ms": row.get::<_, i64>(6)?,
                            "last_ms": row.get::<_, i64>(7)?,
                        }),
                    ))
                })
                .map_err(sq)?
                .collect::<Result<_, _>>()
                .map_err(sq)?;
            for (id, mut obj) in found {
                let records: Vec<Json> = r
                    .query_map(params![id], |row| {
                        let num: Option<f64> = row.get(4)?;
                        let txt: Option<String> = row.get(5)?;
                        Ok(json!({
                            "ts_ms": row.get::<_, i64>(0)?,
                            "source": row.get::<_, String>(1)?,
                            "track": row.get::<_, String>(2)?,
                            "field": row.get::<_, String>(3)?,
                            "value": num.map(Json::from).or(txt.map(Json::from)),
                            "expires_ms": row.get::<_, i64>(6)?,
                        }))
                    })
                    .map_err(sq)?
                    .collect::<Result<_, _>>()
                    .map_err(sq)?;
                let feedback: Vec<Json> = f
                    .query_map(params![id], |row| {
                        Ok(json!({
                            "ts_ms": row.get::<_, i64>(0)?,
                            "rating": row.get::<_, i64>(1)?,
                            "comment": row.get::<_, Option<String>>(2)?,
                        }))
                    })
                    .map_err(sq)?
                    .collect::<Result<_, _>>()
                    .map_err(sq)?;
                rows += 1 + records.len() as u64 + feedback.len() as u64;
                obj["records"] = Json::from(records);
                obj["feedback"] = Json::from(feedback);
                sessions.push(obj);
            }
        }
        self.conn
            .execute(
                "INSERT INTO audit (ts_ms, action, rows) VALUES (?1, 'export-user', ?2)",
                params![now_ms(), rows as i64],
            )
            .map_err(sq)?;
        Ok(json!({ "user": user, "sessions": sessions }))
    }

    /// Deletes everything about `user` within `scope` in one transaction and leaves only an
    /// audit entry (action, time, row count; no identifier and no hash of one).
    pub fn delete_user(
        &mut self,
        user: &str,
        scope: Scope<'_>,
        now_ms: i64,
    ) -> Result<Removed, StoreError> {
        let path = self.path.clone();
        let sq = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        let room = scope.room();
        let tx = self.conn.transaction().map_err(sq)?;
        let records = tx
            .execute(
                "DELETE FROM records WHERE session_id IN
                 (SELECT id FROM sessions WHERE user_id = ?1 AND (?2 IS NULL OR room = ?2))",
                params![user, room],
            )
            .map_err(sq)? as u64;
        let feedback = tx
            .execute(
                "DELETE FROM feedback WHERE session_id IN
                 (SELECT id FROM sessions WHERE user_id = ?1 AND (?2 IS NULL OR room = ?2))",
                params![user, room],
            )
            .map_err(sq)? as u64;
        let sessions = tx
            .execute(
                "DELETE FROM sessions WHERE user_id = ?1 AND (?2 IS NULL OR room = ?2)",
                params![user, room],
            )
            .map_err(sq)? as u64;
        let removed = Removed {
            records,
            feedback,
            sessions,
        };
        tx.execute(
            "INSERT INTO audit (ts_ms, action, rows) VALUES (?1, 'delete-user', ?2)",
            params![now_ms, removed.total() as i64],
        )
        .map_err(sq)?;
        tx.commit().map_err(sq)?;
        // Make the deletion durable in the main file too, not only in the WAL.
        self.conn
            .execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
            .map_err(sq)?;
        Ok(removed)
    }
}
