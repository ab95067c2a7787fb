//! What a client holds on to, bounded so that a long disconnection cannot grow it without
//! end: the frames no socket has taken yet (queued while disconnected, or on their way to the
//! connection task), at most [`ClientConfig::max_backlog`], and the `message` frames without
//! a delivery result (kept to be sent again after a reconnection until the server accepts
//! them), at most [`ClientConfig::max_pending_messages`]. A send beyond either fails
//! ([`ClientError::Backlog`], [`ClientError::PendingMessages`]) and nothing is queued, rather
//! than something older being dropped.
//!
//! [`ClientConfig::max_backlog`]: super::ClientConfig::max_backlog
//! [`ClientConfig::max_pending_messages`]: super::ClientConfig::max_pending_messages

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::ClientError;

/// Both bounds, shared by the `Client` and its connection task.
#[derive(Clone)]
pub(super) struct Backlogs {
    /// Frames not taken by a socket yet.
    pub frames: Arc<Backlog>,
    /// `message` frames without a delivery result.
    pub messages: Arc<Backlog>,
}

pub(super) struct Backlog {
    /// Frames handed to the connection task that it has not taken yet.
    in_transit: AtomicUsize,
    /// Frames the connection task holds (unsent frames, or messages without a result).
    unsent: AtomicUsize,
    limit: usize,
    /// The error of a refused frame.
    refusal: fn(usize) -> ClientError,
}

impl Backlog {
    /// The bound of frames not taken by a socket yet.
    pub fn new(limit: usize) -> Backlog {
        Backlog::with_refusal(limit, |limit| ClientError::Backlog { limit })
    }

    /// The bound of `message` frames without a delivery result.
    pub fn messages(limit: usize) -> Backlog {
        Backlog::with_refusal(limit, |limit| ClientError::PendingMessages { limit })
    }

    fn with_refusal(limit: usize, refusal: fn(usize) -> ClientError) -> Backlog {
        Backlog {
            in_transit: AtomicUsize::new(0),
            unsent: AtomicUsize::new(0),
            limit,
            refusal,
        }
    }

    /// Count one more frame, or refuse it when `limit` are held already.
    pub fn reserve(&self) -> Result<(), ClientError> {
        let before = self.in_transit.fetch_add(1, Ordering::SeqCst);
        if before + self.unsent.load(Ordering::SeqCst) >= self.limit {
            self.in_transit.fetch_sub(1, Ordering::SeqCst);
            return Err((self.refusal)(self.limit));
        }
        Ok(())
    }

    /// A reserved frame never reached the connection task.
    pub fn cancel(&self) {
        self.in_transit.fetch_sub(1, Ordering::SeqCst);
    }

    /// The connection task took a reserved frame and now holds `unsent` frames unsent. The new
    /// total is stored before the frame leaves `in_transit`, so the sum never undercounts.
    pub fn taken(&self, unsent: usize) {
        self.unsent.store(unsent, Ordering::SeqCst);
        self.in_transit.fetch_sub(1, Ordering::SeqCst);
    }

    /// The connection task now holds `unsent` frames unsent.
    pub fn set_unsent(&self, unsent: usize) {
        self.unsent.store(unsent, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_beyond_the_limit_and_frees_what_was_sent() {
        let b = Backlog::new(2);
        b.reserve().unwrap();
        b.reserve().unwrap();
        assert_eq!(b.reserve(), Err(ClientError::Backlog { limit: 2 }));
        // The task took both and holds them unsent (disconnected): still full.
        b.taken(1);
        b.taken(2);
        assert_eq!(b.reserve(), Err(ClientError::Backlog { limit: 2 }));
        // Connected again: everything went out.
        b.set_unsent(0);
        b.reserve().unwrap();
        b.cancel();
        b.reserve().unwrap();
        b.reserve().unwrap();
    }

    #[test]
    fn messages_are_refused_with_their_own_error() {
        let b = Backlog::messages(1);
        b.reserve().unwrap();
        b.taken(1);
        assert_eq!(b.reserve(), Err(ClientError::PendingMessages { limit: 1 }));
        // Its delivery result came.
        b.set_unsent(0);
        b.reserve().unwrap();
    }
}
