//! The whiteboard service: the server is a member of every board, holding the authoritative
//! Yjs document of each (`board.rs`), answering sync requests, checking and applying the
//! members' updates and relaying them, relaying awareness (rate-limited, never stored), and
//! persisting every board in SQLite (`store.rs`): each accepted update is appended, and after
//! [`WhiteboardConfig::compact_after`] updates the board is compacted into one snapshot.
//! Boards not changed for [`WhiteboardConfig::retention`] are deleted by the hourly purge.
//! Documents (PDF, or office files through LibreOffice) become pages (`documents.rs`).
//!
//! The model and the wire format are specified in `docs/whiteboard.md`.

mod board;
pub(super) mod documents;
mod guard;
mod store;
mod transfer;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use parking_lot::Mutex;
use yrs::sync::{Message, SyncMessage};
use yrs::updates::decoder::Decode;
use yrs::updates::encoder::Encode;

use crate::signalling::protocol::{ErrorCode, ServerMsg};
use crate::signalling::service::{
    Caller, RoomRelay, ServiceError, WhiteboardOutcome, WhiteboardRequest,
};
use crate::telemetry::now_ms;
use crate::telemetry::store::Scope;
use crate::whiteboard::chunk::{ChunkAck, MSG_SYNC_CHUNK_ACK};
use board::{Board, Refusal};
use store::BoardStore;

/// Where and how the server keeps whiteboards.
#[derive(Debug, Clone)]
pub struct WhiteboardConfig {
    /// SQLite database file (`streamwire serve` uses the `--db` file); `None` keeps boards in
    /// memory only (lost on restart).
    pub db: Option<PathBuf>,
    /// A board not changed for this long is deleted. Default 30 days.
    pub retention: Duration,
    /// Updates stored before a board is compacted into one snapshot. Default 1000.
    pub compact_after: usize,
    /// Boards per room. Default 16.
    pub max_boards_per_room: usize,
    /// Awareness updates (cursor, laser) relayed per member and second; more are dropped.
    /// Default 30.
    pub awareness_per_sec: u32,
    /// Largest imported document, bytes. Default 50 MiB.
    pub max_document_bytes: usize,
    /// Most pages of an imported document. Default 200.
    pub max_document_pages: usize,
    /// Resolution imported pages are rendered at, dots per inch. Default 110 (an A4/letter
    /// page is about 1280 pixels wide).
    pub document_dpi: u32,
    /// A sync answer larger than this many bytes (of Yjs update) is sent in chunks of this
    /// size (docs/whiteboard.md, "Size of a board"); [`WhiteboardConfig::fit`] lowers it to
    /// the queue limit. Default 512 KiB.
    pub sync_chunk_bytes: usize,
    /// Chunks of a sync answer sent ahead of the member's confirmations. Default 2.
    pub sync_window: usize,
}

impl Default for WhiteboardConfig {
    fn default() -> Self {
        WhiteboardConfig {
            db: None,
            retention: Duration::from_secs(30 * 24 * 3600),
            compact_after: 1000,
            max_boards_per_room: 16,
            awareness_per_sec: 30,
            max_document_bytes: 50 * 1024 * 1024,
            max_document_pages: 200,
            document_dpi: 110,
            sync_chunk_bytes: 512 * 1024,
            sync_window: 2,
        }
    }
}

/// Bytes a sync chunk of `chunk` bytes takes in the member's queue at most: the base64 of
/// the chunk and its header, the frame around it and the queue's bookkeeping.
fn sync_frame_bytes(chunk: usize) -> usize {
    chunk.saturating_add(32).div_ceil(3).saturating_mul(4) + 256 + 64
}

impl WhiteboardConfig {
    /// Fit the sync chunks to the signalling queue limit: the chunks in flight to one member
    /// ([`WhiteboardConfig::sync_window`] of them, as base64 frames) may take at most half
    /// of `max_queue_bytes`, the rest is for the room's other frames; a larger
    /// [`WhiteboardConfig::sync_chunk_bytes`] is lowered to fit (`Server::bind` does this).
    /// The error names the setting that cannot work.
    ///
    /// ```
    /// let mut wb = streamwire::server::WhiteboardConfig::default();
    /// wb.fit(4 * 1024 * 1024).unwrap();
    /// assert_eq!(wb.sync_chunk_bytes, 512 * 1024, "the default fits the default queue");
    /// wb.fit(1024 * 1024).unwrap();
    /// assert!(wb.sync_chunk_bytes < 200 * 1024, "two chunks in half of 1 MiB");
    /// wb.sync_window = 1000;
    /// assert!(wb.fit(1024 * 1024).unwrap_err().contains("sync_window"));
    /// ```
    pub fn fit(&mut self, max_queue_bytes: usize) -> Result<(), String> {
        if self.sync_window == 0 {
            return Err("whiteboard sync_window must be at least 1".into());
        }
        let per_chunk = max_queue_bytes / 2 / self.sync_window;
        // The largest chunk whose frame (`sync_frame_bytes`) fits `per_chunk`.
        let largest = (per_chunk.saturating_sub(320) / 4 * 3).saturating_sub(32);
        let chunk = self.sync_chunk_bytes.min(largest);
        if chunk < 1024 {
            return Err(format!(
                "whiteboard sync_window ({}) chunks of at least 1024 bytes (sync_chunk_bytes {}) \
                 do not fit half of max_queue_bytes ({max_queue_bytes})",
                self.sync_window, self.sync_chunk_bytes
            ));
        }
        debug_assert!(sync_frame_bytes(chunk) * self.sync_window <= max_queue_bytes / 2);
        self.sync_chunk_bytes = chunk;
        Ok(())
    }
}

/// Whiteboard storage and document failures.
#[derive(Debug, thiserror::Error)]
pub enum WhiteboardError {
    /// SQLite failed.
    #[error("whiteboard store {path}: {source}")]
    Sqlite {
        /// Database file.
        path: PathBuf,
        /// Cause.
        source: rusqlite::Error,
    },
    /// A stored board cannot be read back.
    #[error("whiteboard `{board}` of room `{room}` is damaged: {reason}")]
    Damaged {
        /// Room.
        room: String,
        /// Board.
        board: String,
        /// What is wrong.
        reason: String,
    },
}

/// Rate buckets kept before the idle ones are dropped.
const AWARENESS_PRUNE_AT: usize = 4096;

/// Awareness rate per member: a token bucket.
struct Rate {
    tokens: f64,
    at: Instant,
}

/// The boards in memory, by room and board name.
type Boards = HashMap<(String, String), Arc<Mutex<Board>>>;

pub(crate) struct WhiteboardService {
    cfg: WhiteboardConfig,
    store: Mutex<BoardStore>,
    boards: Mutex<Boards>,
    awareness: Mutex<HashMap<String, Rate>>,
    transfers: Mutex<transfer::Transfers>,
    relay: OnceLock<Weak<dyn RoomRelay>>,
}

fn refused(code: ErrorCode, reason: String, field: Option<&'static str>) -> ServiceError {
    ServiceError::Refused {
        code,
        reason,
        field,
    }
}

fn failed(e: WhiteboardError) -> ServiceError {
    tracing::warn!(error = %e, "whiteboard store failed");
    ServiceError::Failed("whiteboard store failed".into())
}

fn frame(from: Option<&str>, board: &str, msg: &Message) -> ServerMsg {
    raw_frame(from, board, msg.encode_v1())
}

fn raw_frame(from: Option<&str>, board: &str, data: Vec<u8>) -> ServerMsg {
    ServerMsg::Whiteboard {
        n: 0,
        from: from.map(str::to_owned),
        board: board.to_owned(),
        data,
    }
}

impl WhiteboardService {
    pub(crate) fn open(cfg: WhiteboardConfig) -> Result<Self, WhiteboardError> {
        let store = BoardStore::open(cfg.db.as_deref())?;
        Ok(WhiteboardService {
            cfg,
            store: Mutex::new(store),
            boards: Mutex::new(HashMap::new()),
            awareness: Mutex::new(HashMap::new()),
            transfers: Mutex::new(transfer::Transfers::default()),
            relay: OnceLock::new(),
        })
    }

    pub(crate) fn config(&self) -> &WhiteboardConfig {
        &self.cfg
    }

    pub(crate) fn set_relay(&self, relay: Weak<dyn RoomRelay>) {
        let _ = self.relay.set(relay);
    }

    /// Send `frame` to every member of `room` (imports, privacy deletions).
    fn to_room(&self, room: &str, frame: &ServerMsg) {
        if let Some(r) = self.relay.get().and_then(Weak::upgrade) {
            r.to_room(room, frame);
        }
    }

    /// The board in memory, loaded or created; `create: false` gives `None` for a board that
    /// does not exist.
    fn board(
        &self,
        room: &str,
        name: &str,
        create: bool,
    ) -> Result<Option<Arc<Mutex<Board>>>, ServiceError> {
        let key = (room.to_owned(), name.to_owned());
        let mut boards = self.boards.lock();
        if let Some(b) = boards.get(&key) {
            return Ok(Some(b.clone()));
        }
        let store = self.store.lock();
        let board = match store.load(room, name).map_err(failed)? {
            Some(stored) => {
                Board::restore(stored.snapshot.as_deref(), &stored.updates, stored.owners).map_err(
                    |reason| {
                        failed(WhiteboardError::Damaged {
                            room: room.into(),
                            board: name.into(),
                            reason,
                        })
                    },
                )?
            }
            None if !create => return Ok(None),
            None => {
                let have = store.board_count(room).map_err(failed)?;
                if have >= self.cfg.max_boards_per_room {
                    return Err(refused(
                        ErrorCode::InvalidField,
                        format!(
                            "room `{room}` already has the maximum of {} whiteboards; board `{name}` is not created",
                            self.cfg.max_boards_per_room
                        ),
                        Some("board"),
                    ));
                }
                let (b, state) = Board::create();
                store.create(room, name, &state, now_ms()).map_err(failed)?;
                tracing::info!(%room, board = %name, "whiteboard created");
                b
            }
        };
        let b = Arc::new(Mutex::new(board));
        boards.insert(key, b.clone());
        Ok(Some(b))
    }

    fn awareness_allowed(&self, peer: &str) -> bool {
        let rate = f64::from(self.cfg.awareness_per_sec.max(1));
        let mut m = self.awareness.lock();
        if m.len() >= AWARENESS_PRUNE_AT {
            // A bucket idle for a second is full again: forgetting it changes nothing.
            m.retain(|_, r| r.at.elapsed() < Duration::from_secs(1));
        }
        let r = m.entry(peer.to_owned()).or_insert(Rate {
            tokens: rate,
            at: Instant::now(),
        });
        let now = Instant::now();
        r.tokens = (r.tokens + now.duration_since(r.at).as_secs_f64() * rate).min(rate);
        r.at = now;
        if r.tokens >= 1.0 {
            r.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// One member message (blocking: SQLite).
    fn handle(
        &self,
        from: &Caller,
        req: WhiteboardRequest,
    ) -> Result<WhiteboardOutcome, ServiceError> {
        let msg = Message::decode_v1(&req.data).map_err(|e| ServiceError::Invalid {
            what: "data".into(),
            reason: format!("not a y-protocols message: {e}"),
        })?;
        let board_name = req.board.as_str();
        match msg {
            Message::Sync(SyncMessage::SyncStep1(sv)) => {
                let board = self
                    .board(&from.room, board_name, true)?
                    .ok_or_else(|| ServiceError::Failed("board vanished".into()))?;
                let mut b = board.lock();
                // A newcomer's answer is the whole board, encoded once per change.
                let answer: Arc<[u8]> = if sv.is_empty() {
                    b.state()
                } else {
                    b.diff(&sv).into()
                };
                if answer.len() > self.cfg.sync_chunk_bytes {
                    drop(b);
                    // In chunks, paced by the member's confirmations; it asks again (step 1)
                    // once it has applied them, for what changed meanwhile.
                    let key = (from.room.clone(), board_name.to_owned(), from.peer.clone());
                    let chunks = self.transfers.lock().start(
                        key,
                        answer,
                        self.cfg.sync_chunk_bytes,
                        self.cfg.sync_window,
                    );
                    let reply = chunks
                        .into_iter()
                        .map(|c| raw_frame(None, board_name, c))
                        .collect();
                    return Ok(WhiteboardOutcome { reply, relay: None });
                }
                let mut reply = vec![frame(
                    None,
                    board_name,
                    &Message::Sync(SyncMessage::SyncStep2(answer.to_vec())),
                )];
                if req.can_draw {
                    reply.push(frame(
                        None,
                        board_name,
                        &Message::Sync(SyncMessage::SyncStep1(b.state_vector())),
                    ));
                }
                Ok(WhiteboardOutcome { reply, relay: None })
            }
            Message::Sync(SyncMessage::SyncStep2(update) | SyncMessage::Update(update)) => {
                if !req.can_draw {
                    return Err(refused(
                        ErrorCode::Forbidden,
                        format!(
                            "changing whiteboard `{board_name}` needs the `draw` or `publish` grant, which your token lacks"
                        ),
                        Some("data"),
                    ));
                }
                let board = self
                    .board(&from.room, board_name, true)?
                    .ok_or_else(|| ServiceError::Failed("board vanished".into()))?;
                let mut b = board.lock();
                let claimed = match b.apply(&update, &from.user, req.admin) {
                    Ok(c) => c,
                    Err(Refusal::Forbidden(why)) => {
                        return Err(refused(ErrorCode::Forbidden, why, Some("data")));
                    }
                    Err(Refusal::Reverted {
                        why,
                        update,
                        claimed,
                    }) => {
                        // The sender holds the change, the server holds it undone: everyone
                        // gets the undoing (and the sender's clocks), then the sender the error.
                        self.persist(
                            &from.room, board_name, &from.user, &update, &claimed, &mut b,
                        )?;
                        drop(b);
                        self.to_room(
                            &from.room,
                            &frame(
                                None,
                                board_name,
                                &Message::Sync(SyncMessage::Update(update)),
                            ),
                        );
                        return Err(refused(ErrorCode::Forbidden, why, Some("data")));
                    }
                    Err(Refusal::Malformed(why)) => {
                        return Err(ServiceError::Invalid {
                            what: "data".into(),
                            reason: format!("not a valid Yjs update: {why}"),
                        });
                    }
                };
                self.persist(
                    &from.room, board_name, &from.user, &update, &claimed, &mut b,
                )?;
                Ok(WhiteboardOutcome {
                    reply: Vec::new(),
                    relay: Some(frame(
                        Some(&from.peer),
                        board_name,
                        &Message::Sync(SyncMessage::Update(update)),
                    )),
                })
            }
            Message::Awareness(mut a) => {
                if !self.awareness_allowed(&from.peer) {
                    tracing::debug!(peer = %from.peer, "awareness update over the rate limit dropped");
                    return Ok(WhiteboardOutcome::default());
                }
                if !req.admin {
                    let n = guard::drop_presenter_claims(&mut a);
                    if n > 0 {
                        tracing::info!(peer = %from.peer, user = %from.user, states = n,
                            "presenter claim without the `admin` grant withdrawn from awareness");
                    }
                }
                Ok(WhiteboardOutcome {
                    reply: Vec::new(),
                    relay: Some(frame(Some(&from.peer), board_name, &Message::Awareness(a))),
                })
            }
            Message::Custom(MSG_SYNC_CHUNK_ACK, _) => {
                let ack = ChunkAck::decode_message(&req.data)
                    .map_err(|e| ServiceError::Invalid {
                        what: "data".into(),
                        reason: format!("not a chunk confirmation: {e}"),
                    })?
                    .ok_or_else(|| ServiceError::Failed("chunk confirmation vanished".into()))?;
                let key = (from.room.clone(), board_name.to_owned(), from.peer.clone());
                let chunks = self.transfers.lock().ack(
                    &key,
                    ack,
                    self.cfg.sync_chunk_bytes,
                    self.cfg.sync_window,
                );
                Ok(WhiteboardOutcome {
                    reply: chunks
                        .into_iter()
                        .map(|c| raw_frame(None, board_name, c))
                        .collect(),
                    relay: None,
                })
            }
            other => Err(ServiceError::Invalid {
                what: "data".into(),
                reason: format!(
                    "y-protocols message {} is not used here (sync step 1, step 2, update, awareness or chunk confirmation)",
                    match other {
                        Message::Auth(_) => "auth",
                        Message::AwarenessQuery => "awareness query",
                        _ => "custom",
                    }
                ),
            }),
        }
    }

    /// Store an accepted update; compact when due.
    fn persist(
        &self,
        room: &str,
        board: &str,
        user: &str,
        update: &[u8],
        claimed: &[u64],
        b: &mut Board,
    ) -> Result<(), ServiceError> {
        let mut store = self.store.lock();
        let now = now_ms();
        for c in claimed {
            store.claim(room, board, *c, user).map_err(failed)?;
        }
        store
            .append(room, board, user, update, now)
            .map_err(failed)?;
        b.since_compaction += 1;
        if b.since_compaction >= self.cfg.compact_after {
            store
                .compact(room, board, &b.state(), now)
                .map_err(failed)?;
            tracing::debug!(%room, %board, "whiteboard compacted");
            b.since_compaction = 0;
        }
        Ok(())
    }

    /// A server-side change of a board (document import): applied, stored, relayed to the room.
    pub(crate) fn server_change(
        &self,
        room: &str,
        board: &str,
        change: impl FnOnce(&mut yrs::TransactionMut, &[gststreamwire::whiteboard::Page]),
    ) -> Result<(), ServiceError> {
        let arc = self
            .board(room, board, true)?
            .ok_or_else(|| ServiceError::Failed("board vanished".into()))?;
        let mut b = arc.lock();
        let pages = gststreamwire::whiteboard::pages(&yrs::Transact::transact(&b.doc));
        let Some(update) = b.server_change(|t| change(t, &pages)) else {
            return Ok(());
        };
        self.persist(room, board, board::SERVER, &update, &[], &mut b)?;
        drop(b);
        self.to_room(
            room,
            &frame(None, board, &Message::Sync(SyncMessage::Update(update))),
        );
        Ok(())
    }

    /// Every item `user` made on the boards of `scope` (`privacy_export`: the caller's room).
    pub(crate) fn export_user(
        &self,
        user: &str,
        scope: Scope<'_>,
    ) -> Result<serde_json::Value, ServiceError> {
        let names = self.boards_in(scope)?;
        let mut out = Vec::new();
        for (room, name) in names {
            let Some(b) = self.board(&room, &name, false)? else {
                continue;
            };
            let b = b.lock();
            let txn = yrs::Transact::transact(&b.doc);
            for item in gststreamwire::whiteboard::items(&txn, None)
                .into_iter()
                .filter(|i| i.author == user)
            {
                out.push(serde_json::json!({
                    "room": room, "board": name, "id": item.id, "page": item.page,
                    "kind": item.kind.as_str(), "color": item.color, "width": item.width,
                    "points": item.points, "bounds": item.bounds, "text": item.text,
                }));
            }
        }
        Ok(serde_json::Value::Array(out))
    }

    /// The stored boards of `scope`.
    fn boards_in(&self, scope: Scope<'_>) -> Result<Vec<(String, String)>, ServiceError> {
        let names = self.store.lock().boards().map_err(failed)?;
        Ok(names
            .into_iter()
            .filter(|(room, _)| scope.room().is_none_or(|r| r == room))
            .collect())
    }

    /// Remove every item `user` made on the boards of `scope` (`privacy_delete`: the caller's
    /// room), and rewrite each board's history as one snapshot so the content is gone from
    /// storage too. Returns how many items were removed.
    pub(crate) fn delete_user(&self, user: &str, scope: Scope<'_>) -> Result<u64, ServiceError> {
        let names = self.boards_in(scope)?;
        let mut removed = 0u64;
        for (room, name) in names {
            let Some(arc) = self.board(&room, &name, false)? else {
                continue;
            };
            let mut b = arc.lock();
            let ids = gststreamwire::whiteboard::items_of(&yrs::Transact::transact(&b.doc), user);
            b.erase_owner(user);
            let update = if ids.is_empty() {
                None
            } else {
                removed += ids.len() as u64;
                b.server_change(|t| {
                    gststreamwire::whiteboard::remove_items(t, &ids);
                })
            };
            {
                let mut store = self.store.lock();
                store
                    .compact(&room, &name, &b.state(), now_ms())
                    .map_err(failed)?;
                b.since_compaction = 0;
            }
            drop(b);
            if let Some(u) = update {
                self.to_room(
                    &room,
                    &frame(None, &name, &Message::Sync(SyncMessage::Update(u))),
                );
            }
        }
        self.store
            .lock()
            .disown(user, board::ERASED, scope.room())
            .map_err(failed)?;
        Ok(removed)
    }

    /// Delete boards not changed within the retention (hourly).
    pub(crate) fn purge(&self) -> Result<usize, WhiteboardError> {
        let before = now_ms()
            .saturating_sub(i64::try_from(self.cfg.retention.as_millis()).unwrap_or(i64::MAX));
        let gone = self.store.lock().purge(before)?;
        let mut boards = self.boards.lock();
        for k in &gone {
            boards.remove(k);
        }
        Ok(gone.len())
    }

    /// Bytes stored for a board (benchmark).
    pub(crate) fn stored_bytes(&self, room: &str, board: &str) -> Result<u64, WhiteboardError> {
        self.store.lock().stored_bytes(room, board)
    }

    /// An imported page image.
    pub(crate) fn page_image(
        &self,
        room: &str,
        doc: &str,
        page: u32,
    ) -> Result<Option<Vec<u8>>, WhiteboardError> {
        self.store.lock().page(room, doc, page)
    }

    fn store_pages(
        &self,
        room: &str,
        doc: &str,
        pages: &[store::PageImage],
    ) -> Result<(), WhiteboardError> {
        self.store.lock().put_pages(room, doc, pages, now_ms())
    }

    /// Forget a room's boards in memory (they are stored).
    pub(crate) fn unload_room(&self, room: &str) {
        self.boards.lock().retain(|(r, _), _| r != room);
    }

    /// The whiteboard part of [`Service::whiteboard`](crate::signalling::service::Service).
    pub(crate) fn call(
        self: &Arc<Self>,
        from: Caller,
        req: WhiteboardRequest,
    ) -> BoxFuture<'static, Result<WhiteboardOutcome, ServiceError>> {
        let me = self.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || me.handle(&from, req))
                .await
                .unwrap_or_else(|e| {
                    tracing::warn!(error = %e, "whiteboard task failed");
                    Err(ServiceError::Failed("whiteboard task failed".into()))
                })
        })
    }
}
