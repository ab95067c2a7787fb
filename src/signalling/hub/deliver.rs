//! Delivery of frames to the members of a room: relays to one peer, broadcasts, real-time
//! messages and their delivery results. A recipient whose reliable stream is full is ended
//! with `slow_consumer`, never silently dropped frames.

use std::sync::Arc;

use super::Hub;
use super::session::{Session, body};
use crate::signalling::protocol::{
    DeliveryStatus, ErrorCode, Grant, LeaveReason, Payload, ServerMsg,
};
use crate::signalling::service::RoomRelay;

impl Hub {
    /// Push one frame to one peer of the sender's room.
    pub fn relay(&self, from: &Session, to: &str, frame: &ServerMsg) -> Result<(), ErrorCode> {
        let target = from.room.peers.lock().get(to).cloned();
        match target {
            Some(t) if t.peer_id != from.peer_id => {
                if !t.push(body(frame), self.cfg.limits.max_queue_bytes) {
                    self.terminate(&t, LeaveReason::SlowConsumer, ErrorCode::SlowConsumer);
                    return Err(ErrorCode::SlowConsumer);
                }
                Ok(())
            }
            _ => Err(ErrorCode::UnknownPeer),
        }
    }

    /// Push one frame to every other peer of the sender's room (optionally only to subscribers).
    pub fn broadcast(&self, from: &Session, frame: &ServerMsg, subscribers_only: bool) -> u32 {
        let b = body(frame);
        let mut count = 0u32;
        let mut overflowed = Vec::new();
        {
            let peers = from.room.peers.lock();
            for s in peers.values() {
                if s.peer_id == from.peer_id || (subscribers_only && !s.has(Grant::Subscribe)) {
                    continue;
                }
                if s.push(b.clone(), self.cfg.limits.max_queue_bytes) {
                    count += 1;
                } else {
                    overflowed.push(s.clone());
                }
            }
        }
        for s in overflowed {
            self.terminate(&s, LeaveReason::SlowConsumer, ErrorCode::SlowConsumer);
        }
        count
    }

    /// Deliver a real-time message and return the delivery result for the sender.
    pub fn message(
        &self,
        from: &Session,
        seq: u64,
        to: Option<&str>,
        payload: Payload,
    ) -> ServerMsg {
        let failed = |reason| ServerMsg::Delivery {
            n: 0,
            seq,
            status: DeliveryStatus::Failed,
            recipients: 0,
            reason: Some(reason),
        };
        let frame = ServerMsg::Message {
            n: 0,
            from: from.peer_id.clone(),
            seq,
            direct: to.is_some(),
            payload,
        };
        let recipients = match to {
            Some(to) => match self.relay(from, to, &frame) {
                Ok(()) => 1,
                Err(code) => return failed(code),
            },
            None => self.broadcast(from, &frame, false),
        };
        ServerMsg::Delivery {
            n: 0,
            seq,
            status: DeliveryStatus::Delivered,
            recipients,
            reason: None,
        }
    }

    /// Push one frame to every peer of the sender's room except the sender (everyone, not
    /// only subscribers: whiteboards are for every member).
    pub fn relay_room(&self, from: &Session, frame: &ServerMsg) -> u32 {
        self.broadcast(from, frame, false)
    }

    /// Find a peer of the sender's room.
    pub fn peer_in_room(&self, from: &Session, id: &str) -> Option<Arc<Session>> {
        from.room.peers.lock().get(id).cloned()
    }
}

impl RoomRelay for Hub {
    fn to_room(&self, room: &str, frame: &ServerMsg) -> u32 {
        let Some(room) = self.rooms.lock().get(room).cloned() else {
            return 0;
        };
        let b = body(frame);
        let mut count = 0u32;
        let mut overflowed = Vec::new();
        for s in room.peers.lock().values() {
            if s.push(b.clone(), self.cfg.limits.max_queue_bytes) {
                count += 1;
            } else {
                overflowed.push(s.clone());
            }
        }
        for s in overflowed {
            self.terminate(&s, LeaveReason::SlowConsumer, ErrorCode::SlowConsumer);
        }
        count
    }
}
