//! A large sync answer in chunks: the two whiteboard messages that carry a board bigger than
//! one chunk to a member (docs/whiteboard.md, "Size of a board").
//!
//! Both are y-protocols custom messages (first varint the tag, then one length-prefixed
//! payload), so every y-protocols decoder reads them as a whole message:
//!
//! | tag | message | payload (varints, then bytes) | sent by |
//! |---|---|---|---|
//! | [`MSG_SYNC_CHUNK`] (8) | sync chunk | `transfer`, `total`, `offset`, `data` (length-prefixed) | the server, in answer to a sync step 1 whose answer is larger than one chunk |
//! | [`MSG_SYNC_CHUNK_ACK`] (9) | chunk received | `transfer`, `received` (bytes held of the transfer) | the member, for each chunk |
//!
//! The chunks of one transfer, concatenated in `offset` order, are the v1 update the sync
//! step 2 would have carried; the member applies it once complete and then sends sync step 1
//! again, answered by a normal (small) step 2 with whatever changed meanwhile.
//!
//! ```
//! use streamwire::whiteboard::chunk::{Chunk, ChunkAck};
//! let msg = Chunk { transfer: 7, total: 10, offset: 4, data: b"abcdef" }.encode();
//! assert_eq!(Chunk::decode_message(&msg).unwrap(), Some(Chunk { transfer: 7, total: 10, offset: 4, data: &b"abcdef"[..] }));
//! let ack = ChunkAck { transfer: 7, received: 10 }.encode();
//! assert_eq!(ChunkAck::decode_message(&ack).unwrap(), Some(ChunkAck { transfer: 7, received: 10 }));
//! ```

use yrs::encoding::read::{Cursor, Read};
use yrs::encoding::write::Write;

/// Tag of the sync chunk message (server to member).
pub const MSG_SYNC_CHUNK: u8 = 8;
/// Tag of the chunk-received message (member to server).
pub const MSG_SYNC_CHUNK_ACK: u8 = 9;

/// One chunk of a sync answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chunk<'a> {
    /// Transfer id (per server; a new sync step 1 starts a new transfer).
    pub transfer: u32,
    /// Bytes of the whole update.
    pub total: usize,
    /// Where `data` starts in it.
    pub offset: usize,
    /// The bytes.
    pub data: &'a [u8],
}

/// A member holds the first `received` bytes of `transfer`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkAck {
    /// Transfer id.
    pub transfer: u32,
    /// Bytes received.
    pub received: usize,
}

/// `payload` as one y-protocols custom message with `tag`.
fn message(tag: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 8);
    out.write_var(tag);
    out.write_buf(payload);
    out
}

/// The next length-prefixed buffer of `c`, borrowed from the message.
fn take<'a>(c: &mut Cursor<'a>, what: &str) -> Result<&'a [u8], String> {
    let len: u32 = c.read_var().map_err(|e| format!("{what}: {e}"))?;
    let start = c.next;
    let end = start
        .checked_add(len as usize)
        .filter(|end| *end <= c.buf.len())
        .ok_or_else(|| format!("{what}: {len} bytes announced, fewer present"))?;
    c.next = end;
    Ok(&c.buf[start..end])
}

/// The payload of a custom message with `tag`; `None` for any other message.
fn payload(msg: &[u8], tag: u8) -> Result<Option<&[u8]>, String> {
    let mut c = Cursor::new(msg);
    let t: u8 = c.read_var().map_err(|e| format!("message type: {e}"))?;
    if t != tag {
        return Ok(None);
    }
    take(&mut c, "payload").map(Some)
}

fn read_usize(c: &mut Cursor<'_>, what: &str) -> Result<usize, String> {
    let v: u64 = c.read_var().map_err(|e| format!("{what}: {e}"))?;
    usize::try_from(v).map_err(|_| format!("{what} {v} is out of range"))
}

impl<'a> Chunk<'a> {
    /// The whole message (tag [`MSG_SYNC_CHUNK`]).
    pub fn encode(&self) -> Vec<u8> {
        let mut p = Vec::with_capacity(self.data.len() + 24);
        p.write_var(self.transfer);
        p.write_var(self.total as u64);
        p.write_var(self.offset as u64);
        p.write_buf(self.data);
        message(MSG_SYNC_CHUNK, &p)
    }

    /// Read a sync chunk message; `Ok(None)`: another message.
    pub fn decode_message(msg: &'a [u8]) -> Result<Option<Chunk<'a>>, String> {
        let Some(p) = payload(msg, MSG_SYNC_CHUNK)? else {
            return Ok(None);
        };
        let mut c = Cursor::new(p);
        let transfer: u32 = c.read_var().map_err(|e| format!("transfer: {e}"))?;
        let total = read_usize(&mut c, "total")?;
        let offset = read_usize(&mut c, "offset")?;
        let data = take(&mut c, "data")?;
        if offset.checked_add(data.len()).is_none_or(|end| end > total) {
            return Err(format!(
                "chunk at {offset} of {} bytes goes past the total of {total}",
                data.len()
            ));
        }
        Ok(Some(Chunk {
            transfer,
            total,
            offset,
            data,
        }))
    }
}

impl ChunkAck {
    /// The whole message (tag [`MSG_SYNC_CHUNK_ACK`]).
    pub fn encode(&self) -> Vec<u8> {
        let mut p = Vec::with_capacity(12);
        p.write_var(self.transfer);
        p.write_var(self.received as u64);
        message(MSG_SYNC_CHUNK_ACK, &p)
    }

    /// Read a chunk-received message; `Ok(None)`: another message.
    pub fn decode_message(msg: &[u8]) -> Result<Option<ChunkAck>, String> {
        let Some(p) = payload(msg, MSG_SYNC_CHUNK_ACK)? else {
            return Ok(None);
        };
        let mut c = Cursor::new(p);
        let transfer: u32 = c.read_var().map_err(|e| format!("transfer: {e}"))?;
        let received = read_usize(&mut c, "received")?;
        Ok(Some(ChunkAck { transfer, received }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use yrs::sync::Message;
    use yrs::updates::decoder::Decode;

    #[test]
    fn chunks_are_y_protocols_custom_messages() {
        let msg = Chunk {
            transfer: 1,
            total: 3,
            offset: 0,
            data: b"xyz",
        }
        .encode();
        match Message::decode_v1(&msg) {
            Ok(Message::Custom(MSG_SYNC_CHUNK, _)) => {}
            other => panic!("not a custom message: {other:?}"),
        }
        assert!(ChunkAck::decode_message(&msg).unwrap().is_none());
    }

    #[test]
    fn a_chunk_past_its_total_is_refused() {
        let msg = Chunk {
            transfer: 1,
            total: 2,
            offset: 0,
            data: b"xyz",
        }
        .encode();
        assert!(Chunk::decode_message(&msg).is_err());
    }
}
