//! A room's whiteboard as the library holds it: the shared Yjs document (`yrs`), kept in sync
//! with the server over the signalling connection ([`Session::whiteboard`](crate::session::Session::whiteboard)).
//!
//! - observe changes ([`Whiteboard::changes`]): every update applied, local or remote;
//! - draw programmatically ([`Whiteboard::draw`], [`Whiteboard::remove`]): a bot can annotate,
//!   with its token's `draw` or `publish` grant;
//! - read the board ([`Whiteboard::items`], [`Whiteboard::pages`]) in the layout of
//!   [`gststreamwire::whiteboard`] (`docs/whiteboard.md`);
//! - record the timestamped update log that `whiteboardsrc location=` replays
//!   ([`Whiteboard::record_log`]), or feed a live `whiteboardsrc` ([`Whiteboard::feed`]).
//!
//! On opening, the board sends sync step 1; the server answers with everything the board lacks
//! (step 2) and, to a member allowed to draw, its own step 1, answered with what the server
//! lacks. An answer larger than one chunk comes in chunks ([`chunk`]): each is confirmed, the
//! whole is applied once complete, then step 1 goes again for what changed meanwhile. Local changes then go out as updates, exactly once across reconnects; after a
//! fresh join (the old session was lost) the board syncs again.
//!
//! ```no_run
//! # async fn demo(session: streamwire::session::Session) -> Result<(), Box<dyn std::error::Error>> {
//! use gststreamwire::whiteboard::Item;
//! let board = session.whiteboard("main")?;
//! board.synced().await;
//! let mut changes = board.changes();
//! board.draw(&Item::pen("bot-1", "p1", "", "#d00000", 4.0, &[[100.0, 100.0, 0.5], [400.0, 300.0, 0.5]]))?;
//! while let Some(change) = changes.recv().await {
//!     println!("{} items", board.items(Some("p1")).len());
//!     if change.remote { break; }
//! }
//! # Ok(()) }
//! ```

pub mod chunk;

use std::sync::Arc;

use gst::prelude::ObjectExt;
use gststreamwire::whiteboard::log::LogWriter;
use gststreamwire::whiteboard::{Item, Page, insert_item, items, pages, remove_items};
use parking_lot::Mutex;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use tokio::sync::watch;
use yrs::sync::{Message, SyncMessage};
use yrs::updates::decoder::Decode;
use yrs::updates::encoder::Encode;
use yrs::{Doc, ReadTxn, StateVector, Transact, Update};

use crate::signalling::client::{Client, ClientError};

/// Origin of transactions that apply what came from the server (not sent back).
const REMOTE: &str = "streamwire-remote";

/// One applied update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// From the server (another member or the sync); false: made here.
    pub remote: bool,
    /// The Yjs update (v1 encoding): a local transaction's changes, or a remote update as
    /// the server sent it.
    pub update: Vec<u8>,
}

/// How the last sync answer that came in chunks went ([`Whiteboard::chunked_sync`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkedSync {
    /// Bytes of the update.
    pub bytes: usize,
    /// Chunks.
    pub chunks: usize,
    /// When the first chunk was received.
    pub first_chunk: std::time::Instant,
    /// When the last chunk was received.
    pub last_chunk: std::time::Instant,
    /// When the whole update was decoded and applied.
    pub applied: std::time::Instant,
}

/// Why a whiteboard operation failed.
#[derive(Debug, thiserror::Error)]
pub enum WhiteboardError {
    /// The signalling client is closed.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// An update from the server could not be applied.
    #[error("whiteboard `{board}`: {reason}")]
    Update {
        /// Board.
        board: String,
        /// What is wrong.
        reason: String,
    },
    /// The board name is invalid.
    #[error("whiteboard name: {0}")]
    Name(String),
    /// The update log could not be written.
    #[error("whiteboard log: {0}")]
    Log(#[from] std::io::Error),
}

/// Transfer id, bytes so far, when the first chunk came, chunks so far.
type Partial = (u32, Vec<u8>, std::time::Instant, usize);

struct Inner {
    board: String,
    doc: Doc,
    client: Client,
    user: String,
    watchers: Mutex<Vec<UnboundedSender<Change>>>,
    logs: Mutex<Vec<LogWriter<std::fs::File>>>,
    feeds: Mutex<Vec<gst::Element>>,
    synced: watch::Sender<bool>,
    /// A sync answer arriving in chunks: its transfer id, the bytes so far, when the first
    /// came and how many.
    partial: Mutex<Option<Partial>>,
    /// The last sync answer that came in chunks.
    chunked: Mutex<Option<ChunkedSync>>,
    /// Set by the document observer when a remote transaction changed the document.
    remote_changed: std::sync::atomic::AtomicBool,
}

/// A whiteboard of the room (cheap to clone; clones share the document).
#[derive(Clone)]
pub struct Whiteboard {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Whiteboard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Whiteboard")
            .field("board", &self.inner.board)
            .finish_non_exhaustive()
    }
}

impl Whiteboard {
    /// Open `board` over `client` (joined) as `user` (the token's `sub`, written as the author
    /// of what [`Whiteboard::draw`] adds without one) and start syncing.
    pub fn open(client: &Client, board: &str, user: &str) -> Result<Whiteboard, WhiteboardError> {
        crate::signalling::protocol::whiteboard::valid_board(board)
            .map_err(WhiteboardError::Name)?;
        let (synced, _) = watch::channel(false);
        let wb = Whiteboard {
            inner: Arc::new(Inner {
                board: board.to_owned(),
                doc: Doc::new(),
                client: client.clone(),
                user: user.to_owned(),
                watchers: Mutex::new(Vec::new()),
                logs: Mutex::new(Vec::new()),
                feeds: Mutex::new(Vec::new()),
                synced,
                partial: Mutex::new(None),
                chunked: Mutex::new(None),
                remote_changed: std::sync::atomic::AtomicBool::new(false),
            }),
        };
        let weak = Arc::downgrade(&wb.inner);
        wb.inner
            .doc
            // Not `observe_update_v1`: it encodes every transaction's update, which for the
            // sync answer of a large board is a second copy of the whole board, never used
            // (remote changes are passed on as received, see `apply_remote`).
            .observe_transaction_cleanup("streamwire", move |txn, _| {
                let Some(inner) = weak.upgrade() else {
                    return;
                };
                let changed =
                    !txn.delete_set().is_empty() || txn.before_state() != txn.after_state();
                if !changed {
                    return;
                }
                let remote = txn
                    .origin()
                    .is_some_and(|o| o.as_ref() == REMOTE.as_bytes());
                if remote {
                    inner
                        .remote_changed
                        .store(true, std::sync::atomic::Ordering::Relaxed);
                    return;
                }
                let update = txn.encode_update_v1();
                let msg = Message::Sync(SyncMessage::Update(update.clone())).encode_v1();
                if let Err(err) = inner.client.send_whiteboard(&inner.board, msg) {
                    tracing::warn!(board = %inner.board, error = %err, "whiteboard update not sent");
                }
                inner.fan_out(Change {
                    remote: false,
                    update,
                });
            })
            .map_err(|e| WhiteboardError::Update {
                board: board.to_owned(),
                reason: e.to_string(),
            })?;
        wb.resync()?;
        Ok(wb)
    }

    /// Board name.
    pub fn board(&self) -> &str {
        &self.inner.board
    }

    /// The document (read it with `yrs`, or with [`gststreamwire::whiteboard`]).
    pub fn doc(&self) -> &Doc {
        &self.inner.doc
    }

    /// Send sync step 1 (done on open; the session does it after a fresh join; with a bare
    /// [`Client`], call it on its second and later [`Event::Joined`](crate::signalling::client::Event::Joined)).
    pub fn resync(&self) -> Result<(), WhiteboardError> {
        let sv = self.inner.doc.transact().state_vector();
        self.inner.client.send_whiteboard(
            &self.inner.board,
            Message::Sync(SyncMessage::SyncStep1(sv)).encode_v1(),
        )?;
        Ok(())
    }

    /// Handle a whiteboard message from the server (the session routes them; with a bare
    /// [`Client`], pass the `data` of each [`Event::Whiteboard`](crate::signalling::client::Event::Whiteboard)
    /// of this board).
    pub fn receive(&self, data: &[u8]) -> Result<(), WhiteboardError> {
        let err = |reason: String| WhiteboardError::Update {
            board: self.inner.board.clone(),
            reason,
        };
        let msg = Message::decode_v1(data).map_err(|e| err(format!("undecodable message: {e}")))?;
        match msg {
            Message::Sync(SyncMessage::SyncStep1(sv)) => {
                let diff = self.inner.doc.transact().encode_state_as_update_v1(&sv);
                self.inner.client.send_whiteboard(
                    &self.inner.board,
                    Message::Sync(SyncMessage::SyncStep2(diff)).encode_v1(),
                )?;
            }
            Message::Sync(SyncMessage::SyncStep2(u)) => {
                self.apply_remote(&u).map_err(err)?;
                self.inner.synced.send_replace(true);
            }
            Message::Sync(SyncMessage::Update(u)) => self.apply_remote(&u).map_err(err)?,
            Message::Custom(chunk::MSG_SYNC_CHUNK, _) => {
                if let Some(c) = chunk::Chunk::decode_message(data).map_err(err)? {
                    self.receive_chunk(c)?;
                }
            }
            // Awareness (cursors, laser pointers) is for the browser UI.
            _ => {}
        }
        Ok(())
    }

    /// One chunk of a sync answer: kept, confirmed, and once complete applied, followed by
    /// sync step 1 for what changed meanwhile.
    fn receive_chunk(&self, c: chunk::Chunk<'_>) -> Result<(), WhiteboardError> {
        let done = {
            let mut partial = self.inner.partial.lock();
            if c.offset == 0 {
                // A new transfer replaces an unfinished one.
                *partial = Some((c.transfer, Vec::new(), std::time::Instant::now(), 0));
            }
            let Some((id, buf, _, count)) = partial.as_mut() else {
                return Ok(());
            };
            if *id != c.transfer || buf.len() != c.offset {
                tracing::debug!(board = %self.inner.board, transfer = c.transfer, offset = c.offset, "sync chunk out of place ignored");
                return Ok(());
            }
            buf.extend_from_slice(c.data);
            *count += 1;
            let received = buf.len();
            // Acknowledge the stream first: the server's queue holds the chunks until then.
            self.inner.client.ack_received()?;
            self.inner.client.send_whiteboard(
                &self.inner.board,
                chunk::ChunkAck {
                    transfer: c.transfer,
                    received,
                }
                .encode(),
            )?;
            if received < c.total {
                return Ok(());
            }
            partial.take()
        };
        let Some((_, done, first, chunks)) = done else {
            return Ok(());
        };
        let received = std::time::Instant::now();
        self.apply_remote(&done)
            .map_err(|reason| WhiteboardError::Update {
                board: self.inner.board.clone(),
                reason,
            })?;
        *self.inner.chunked.lock() = Some(ChunkedSync {
            bytes: done.len(),
            chunks,
            first_chunk: first,
            last_chunk: received,
            applied: std::time::Instant::now(),
        });
        self.resync()
    }

    /// How the last sync answer that came in chunks went (`None`: none did).
    pub fn chunked_sync(&self) -> Option<ChunkedSync> {
        *self.inner.chunked.lock()
    }

    /// Apply an update from the server and pass it on (as received) when it changed the
    /// document or is held for what it builds on.
    fn apply_remote(&self, u: &[u8]) -> Result<(), String> {
        use std::sync::atomic::Ordering;
        let update = Update::decode_v1(u).map_err(|e| format!("undecodable update: {e}"))?;
        self.inner.remote_changed.store(false, Ordering::Relaxed);
        let pending = {
            let mut t = self.inner.doc.transact_mut_with(REMOTE);
            t.apply_update(update)
                .map_err(|e| format!("cannot apply update: {e}"))?;
            t.has_missing_updates()
        };
        if self.inner.remote_changed.swap(false, Ordering::Relaxed) || pending {
            self.inner.fan_out(Change {
                remote: true,
                update: u.to_vec(),
            });
        }
        Ok(())
    }

    /// Resolves once the first sync answer of the server has been applied.
    pub async fn synced(&self) {
        let mut rx = self.inner.synced.subscribe();
        let _ = rx.wait_for(|s| *s).await;
    }

    /// Every update applied from now on.
    pub fn changes(&self) -> UnboundedReceiver<Change> {
        let (tx, rx) = unbounded_channel();
        self.inner.watchers.lock().push(tx);
        rx
    }

    /// Add or replace an item; an empty `author` becomes this member's user id. Needs the
    /// `draw` or `publish` grant (the server refuses the update otherwise, reported as a
    /// session error).
    pub fn draw(&self, item: &Item) -> Result<(), WhiteboardError> {
        let mut item = item.clone();
        if item.author.is_empty() {
            item.author = self.inner.user.clone();
        }
        if item.z == 0.0 {
            item.z = crate::telemetry::now_ms() as f64;
        }
        insert_item(&mut self.inner.doc.transact_mut(), &item);
        Ok(())
    }

    /// Add many items in one update.
    pub fn draw_all(&self, list: &[Item]) {
        let mut t = self.inner.doc.transact_mut();
        for item in list {
            insert_item(&mut t, item);
        }
    }

    /// Remove items by id (own items; anyone's with `admin`); returns how many existed.
    pub fn remove(&self, ids: &[String]) -> usize {
        remove_items(&mut self.inner.doc.transact_mut(), ids)
    }

    /// The items of `page` (all pages: `None`), in paint order.
    pub fn items(&self, page: Option<&str>) -> Vec<Item> {
        items(&self.inner.doc.transact(), page)
    }

    /// The pages, in order.
    pub fn pages(&self) -> Vec<Page> {
        pages(&self.inner.doc.transact())
    }

    /// The document's state vector in its canonical v1 encoding (entries sorted by client
    /// id; `yrs` and `yjs` otherwise write them in hash or insertion order): equal bytes on
    /// two members mean they hold the same updates.
    pub fn state_vector(&self) -> Vec<u8> {
        canonical_state_vector(&self.inner.doc.transact().state_vector())
    }

    /// The whole document as one update (v1 encoding).
    pub fn encode_state(&self) -> Vec<u8> {
        self.inner
            .doc
            .transact()
            .encode_state_as_update_v1(&StateVector::default())
    }

    /// Write every update from now on to `path` as a timestamped log (`whiteboardsrc
    /// location=` replays it); the document so far is its first entry.
    pub fn record_log(&self, path: &std::path::Path) -> Result<(), WhiteboardError> {
        let mut w = LogWriter::new(std::fs::File::create(path)?);
        w.push(&self.encode_state())?;
        self.inner.logs.lock().push(w);
        Ok(())
    }

    /// Feed a live `whiteboardsrc` (`is-live=true`): the document so far, then every update.
    pub fn feed(&self, element: &gst::Element) {
        let bytes = gst::glib::Bytes::from_owned(self.encode_state());
        element.emit_by_name::<()>("push-update", &[&bytes]);
        self.inner.feeds.lock().push(element.clone());
    }
}

/// `sv` encoded (v1) with its entries sorted by client id.
fn canonical_state_vector(sv: &StateVector) -> Vec<u8> {
    use yrs::encoding::write::Write;
    use yrs::updates::encoder::{Encoder, EncoderV1};
    let mut entries: Vec<(u64, u32)> = sv.iter().map(|(c, k)| (c.get(), *k)).collect();
    entries.sort_unstable();
    let mut enc = EncoderV1::new();
    enc.write_var(entries.len());
    for (client, clock) in entries {
        enc.write_var(client);
        enc.write_var(clock);
    }
    enc.to_vec()
}

impl Inner {
    fn fan_out(&self, change: Change) {
        for log in self.logs.lock().iter_mut() {
            if let Err(e) = log.push(&change.update) {
                tracing::warn!(board = %self.board, error = %e, "whiteboard log write failed");
            }
        }
        for e in self.feeds.lock().iter() {
            let bytes = gst::glib::Bytes::from(&change.update[..]);
            e.emit_by_name::<()>("push-update", &[&bytes]);
        }
        self.watchers
            .lock()
            .retain(|w| w.send(change.clone()).is_ok());
    }
}
