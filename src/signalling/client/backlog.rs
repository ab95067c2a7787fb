//! The frames a client holds that no socket has taken yet (queued while disconnected, or on
//! their way to the connection task), bounded by [`ClientConfig::max_backlog`]: a send beyond
//! it fails with [`ClientError::Backlog`] and nothing is queued, rather than an older frame
//! being dropped.
//!
//! [`ClientConfig::max_backlog`]: super::ClientConfig::max_backlog

use std::sync::atomic::{AtomicUsize, Ordering};

use super::ClientError;

pub(super) struct Backlog {
    /// Frames handed to the connection task that it has not taken yet.
    in_transit: AtomicUsize,
    /// Frames the connection task holds unsent.
    unsent: AtomicUsize,
    limit: usize,
}

impl Backlog {
    pub fn new(limit: usize) -> Backlog {
        Backlog {
            in_transit: AtomicUsize::new(0),
            unsent: AtomicUsize::new(0),
            limit,
        }
    }

    /// Count one more frame, or refuse it when `limit` are held already.
    pub fn reserve(&self) -> Result<(), ClientError> {
        let before = self.in_transit.fetch_add(1, Ordering::SeqCst);
        if before + self.unsent.load(Ordering::SeqCst) >= self.limit {
            self.in_transit.fetch_sub(1, Ordering::SeqCst);
            return Err(ClientError::Backlog { limit: self.limit });
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
}
