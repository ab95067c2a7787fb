//! Sync answers larger than one chunk, sent in chunks (`crate::whiteboard::chunk`), at most
//! [`WhiteboardConfig::sync_window`](super::WhiteboardConfig::sync_window) chunks ahead of
//! what the member has confirmed, so a joining member's unacknowledged frames stay within
//! the signalling queue limit however large the board is.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::whiteboard::chunk::{Chunk, ChunkAck};

/// A transfer not continued for this long is dropped (the member left, or started over).
pub(super) const TRANSFER_IDLE: Duration = Duration::from_secs(60);

/// Room, board, peer.
type Key = (String, String, String);

struct Transfer {
    id: u32,
    data: Arc<[u8]>,
    /// Bytes sent.
    sent: usize,
    /// Bytes the member confirmed.
    received: usize,
    touched: Instant,
}

/// The transfers in progress, one per member and board at most.
#[derive(Default)]
pub(super) struct Transfers {
    next_id: u32,
    map: HashMap<Key, Transfer>,
}

impl Transfer {
    /// The chunks that may go out now: up to `window` chunks of `chunk` bytes beyond what
    /// the member confirmed.
    fn more(&mut self, chunk: usize, window: usize) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let ahead = chunk.saturating_mul(window);
        while self.sent < self.data.len() && self.sent - self.received < ahead {
            let end = (self.sent + chunk).min(self.data.len());
            out.push(
                Chunk {
                    transfer: self.id,
                    total: self.data.len(),
                    offset: self.sent,
                    data: &self.data[self.sent..end],
                }
                .encode(),
            );
            self.sent = end;
        }
        out
    }
}

impl Transfers {
    fn prune(&mut self) {
        self.map.retain(|_, t| t.touched.elapsed() < TRANSFER_IDLE);
    }

    /// Start sending `data` to a member (replacing a transfer of the same board to it);
    /// returns the first chunk messages.
    pub fn start(
        &mut self,
        key: Key,
        data: Arc<[u8]>,
        chunk: usize,
        window: usize,
    ) -> Vec<Vec<u8>> {
        self.prune();
        self.next_id = self.next_id.wrapping_add(1);
        let mut t = Transfer {
            id: self.next_id,
            data,
            sent: 0,
            received: 0,
            touched: Instant::now(),
        };
        let out = t.more(chunk, window);
        tracing::debug!(room = %key.0, board = %key.1, peer = %key.2, bytes = t.data.len(), "whiteboard sync in chunks");
        self.map.insert(key, t);
        out
    }

    /// A member confirmed chunks: the chunk messages that may go out now (none for a
    /// transfer that is finished, replaced or unknown).
    pub fn ack(&mut self, key: &Key, ack: ChunkAck, chunk: usize, window: usize) -> Vec<Vec<u8>> {
        self.prune();
        let Some(t) = self.map.get_mut(key).filter(|t| t.id == ack.transfer) else {
            tracing::debug!(peer = %key.2, transfer = ack.transfer, "chunk confirmation of no current transfer ignored");
            return Vec::new();
        };
        t.received = t.received.max(ack.received.min(t.sent));
        t.touched = Instant::now();
        if t.received >= t.data.len() {
            self.map.remove(key);
            return Vec::new();
        }
        t.more(chunk, window)
    }

    /// Transfers in progress.
    #[cfg(test)]
    pub fn count(&self) -> usize {
        self.map.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> Key {
        ("r".into(), "main".into(), "p".into())
    }

    #[test]
    fn at_most_the_window_is_unconfirmed_and_the_chunks_rebuild_the_data() {
        let data: Arc<[u8]> = (0..=255u8).cycle().take(10_000).collect::<Vec<_>>().into();
        let mut ts = Transfers::default();
        let mut got = Vec::new();
        let mut msgs = ts.start(key(), data.clone(), 1000, 3);
        assert_eq!(msgs.len(), 3, "three chunks ahead");
        let mut transfer = 0;
        while !msgs.is_empty() {
            // Confirm one chunk at a time: one more chunk may go each time.
            let m = msgs.remove(0);
            let c = Chunk::decode_message(&m).unwrap().unwrap();
            assert_eq!(c.offset, got.len());
            assert_eq!(c.total, data.len());
            transfer = c.transfer;
            got.extend_from_slice(c.data);
            let more = ts.ack(
                &key(),
                ChunkAck {
                    transfer,
                    received: got.len(),
                },
                1000,
                3,
            );
            assert!(more.len() <= 1);
            msgs.extend(more);
            assert!(msgs.len() <= 3);
        }
        assert_eq!(&got[..], &data[..]);
        assert_eq!(ts.count(), 0, "a finished transfer is dropped");
        // A confirmation of a finished transfer sends nothing.
        let none = ts.ack(
            &key(),
            ChunkAck {
                transfer,
                received: 0,
            },
            1000,
            3,
        );
        assert!(none.is_empty());
    }

    #[test]
    fn a_confirmation_beyond_what_was_sent_does_not_open_the_window_further() {
        let data: Arc<[u8]> = vec![1u8; 10_000].into();
        let mut ts = Transfers::default();
        let first = ts.start(key(), data, 1000, 2);
        let c = Chunk::decode_message(&first[0]).unwrap().unwrap();
        let more = ts.ack(
            &key(),
            ChunkAck {
                transfer: c.transfer,
                received: usize::MAX,
            },
            1000,
            2,
        );
        // Clamped to the 2000 bytes sent: two more chunks, not the rest.
        assert_eq!(more.len(), 2);
    }
}
