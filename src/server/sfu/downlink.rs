//! What each simulcast subscriber's downlink loses, from Janus's Admin API: the bandwidth side
//! of the layer choice ([`super::layers`], docs/sfu.md, "Simulcast").
//!
//! Every [`DOWNLINK_POLL`] while the room has simulcast streams and the Admin API is
//! configured, the room task has the counters of each subscription's video m-lines read
//! (`handle_info`, off the task: the query can take up to its timeout). A stream whose
//! subscriber, since the last reading, asked again (NACK) for or reported lost at least
//! [`LOSS_DOWN`] of the packets Janus sent it (over at least [`MIN_PACKETS`]) goes one layer
//! down, as on Janus's own `slowlink` event. NACKs count because a receiver that recovers its
//! losses by retransmission reports little loss (its cumulative count even goes down), while
//! the retransmissions load its link further.

use std::collections::HashMap;
use std::time::Instant;

use tokio::sync::mpsc;

use super::admin::{self, Downlink, SfuAdmin};
use super::room::State;

pub(crate) use admin::DOWNLINK_POLL;

/// The share of the packets sent that the subscriber NACKed or lost within a reading that
/// takes the stream one layer down.
pub(super) const LOSS_DOWN: f64 = 0.10;
/// Fewer packets sent since the last reading than this say nothing about the link.
pub(super) const MIN_PACKETS: u64 = 20;

/// One reading of the room's subscriptions: handle → mid → counters.
pub(super) type Reading = HashMap<u64, HashMap<String, Downlink>>;

/// The share of the packets sent between readings `before` and `now` that the subscriber
/// NACKed or reported lost; `None` when too few were sent (or the counters restarted).
pub(super) fn loss(before: Downlink, now: Downlink) -> Option<f64> {
    let sent = now.sent.checked_sub(before.sent)?;
    if sent < MIN_PACKETS {
        return None;
    }
    let nacked = now.nacked.saturating_sub(before.nacked);
    let lost = now.lost.saturating_sub(before.lost);
    Some(nacked.max(lost) as f64 / sent as f64)
}

impl State {
    /// Have the downlinks of the room's simulcast subscriptions read, unless a reading is
    /// under way; the reading comes back on `done`.
    pub(super) fn read_downlinks(
        &mut self,
        admin: &SfuAdmin,
        done: &mpsc::UnboundedSender<Reading>,
    ) {
        if self.downlink_reading {
            return;
        }
        // The handles to read, by the instance serving them.
        let mut by_instance: HashMap<usize, Vec<u64>> = HashMap::new();
        for m in self.members.values() {
            if let (Some(i), Some(s)) = (m.instance, &m.subscription)
                && !s.layers.is_empty()
            {
                by_instance.entry(i).or_default().push(s.handle);
            }
        }
        let queries: Vec<_> = by_instance
            .into_iter()
            .filter_map(|(i, handles)| Some((self.janus_at(i)?, handles)))
            .collect();
        if queries.is_empty() {
            return;
        }
        self.downlink_reading = true;
        let admin = admin.clone();
        let done = done.clone();
        let room = self.task.name.clone();
        tokio::spawn(async move {
            let mut reading = Reading::new();
            for (janus, handles) in queries {
                let r = admin::downlinks(janus.address(), &admin, janus.session_id(), &handles);
                match r.await {
                    Ok(r) => reading.extend(r),
                    Err(e) => {
                        tracing::debug!(%room, error = %e, "no downlink counters from Janus")
                    }
                }
            }
            let _ = done.send(reading);
        });
    }

    /// A reading came back: each stream that lost too much goes one layer down.
    pub(super) async fn downlinks_read(&mut self, reading: Reading) {
        self.downlink_reading = false;
        let now = Instant::now();
        let mut changed = Vec::new();
        for (peer, m) in &mut self.members {
            let Some(s) = &mut m.subscription else {
                continue;
            };
            let Some(counters) = reading.get(&s.handle) else {
                continue;
            };
            let mut down = false;
            for (mid, l) in &mut s.layers {
                let Some(c) = counters.get(mid).copied() else {
                    continue;
                };
                let before = l.downlink.replace(c);
                let Some(share) = before.and_then(|b| loss(b, c)) else {
                    continue;
                };
                tracing::trace!(room = %self.task.name, subscriber = %peer, mid,
                                share, layer = l.asked, "SFU downlink");
                if share >= LOSS_DOWN && l.lost(now) {
                    tracing::info!(room = %self.task.name, subscriber = %peer, mid,
                                   loss = format!("{:.0}%", share * 100.0),
                                   "SFU downlink losing packets: one simulcast layer down");
                    down = true;
                }
            }
            if down {
                changed.push(peer.clone());
            }
        }
        for peer in changed {
            self.apply_layers(&peer).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(sent: u64, nacked: u64, lost: u64) -> Downlink {
        Downlink { sent, nacked, lost }
    }

    #[test]
    fn loss_is_the_larger_of_nacks_and_reported_loss() {
        assert_eq!(loss(at(100, 0, 0), at(200, 30, 5)), Some(0.3));
        assert_eq!(loss(at(100, 0, 10), at(200, 2, 30)), Some(0.2));
        // A cumulative loss that went down (retransmissions received) is no loss.
        assert_eq!(loss(at(100, 0, 40), at(200, 0, 30)), Some(0.0));
    }

    #[test]
    fn too_few_packets_or_restarted_counters_say_nothing() {
        assert_eq!(loss(at(100, 0, 0), at(100 + MIN_PACKETS - 1, 19, 0)), None);
        assert_eq!(loss(at(500, 0, 0), at(100, 50, 0)), None);
    }
}
