//! Rate control of a [`Publisher`]: the video encoder follows the lowest congestion-control
//! estimate among the peers.

use std::collections::HashMap;
use std::sync::Arc;

use super::Publisher;

/// Encoder bitrate change.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BitrateChange {
    /// New video bitrate (kbit/s).
    pub kbps: u32,
    /// Peer whose estimate is the lowest (None when clamped to the ceiling with no estimate).
    pub limited_by: Option<String>,
}

pub(super) type BitrateListener = Arc<dyn Fn(&BitrateChange) + Send + Sync>;

pub(super) struct RateState {
    estimates: HashMap<String, u32>,
    current_kbps: u32,
}

impl RateState {
    /// No estimate yet; the encoder runs at `start_kbps`.
    pub(super) fn new(start_kbps: u32) -> Self {
        RateState {
            estimates: HashMap::new(),
            current_kbps: start_kbps,
        }
    }
}

impl Publisher {
    /// Call `f` whenever the controller changes the encoder bitrate.
    pub fn on_bitrate_change(&self, f: impl Fn(&BitrateChange) + Send + Sync + 'static) {
        self.inner.listeners.lock().push(Arc::new(f));
    }

    /// Feed a congestion-control estimate (bit/s to peer `peer`, `None` removes the peer) and
    /// retarget the encoder to the lowest estimate, clamped to floor..=ceiling.
    pub fn update_estimate(&self, peer: &str, bps: Option<u32>) {
        let Some((encoder, _, _)) = &self.inner.video else {
            return;
        };
        let cfg = &self.inner.config;
        let change = {
            let mut rate = self.inner.rate.lock();
            match bps {
                Some(b) => {
                    rate.estimates.insert(peer.to_owned(), b);
                }
                None => {
                    rate.estimates.remove(peer);
                }
            }
            let lowest = rate
                .estimates
                .iter()
                .min_by_key(|(_, b)| **b)
                .map(|(p, b)| (p.clone(), *b));
            // The estimate covers everything sent to the peer: leave room for audio and RTP
            // overhead (about 5 %).
            let audio_kbps = if self.inner.audio_tee.is_some() {
                u32::try_from(cfg.audio_bps / 1000).unwrap_or(0) + 8
            } else {
                0
            };
            let (kbps, limited_by) = match lowest {
                Some((p, b)) => (
                    (b / 1000).saturating_mul(95) / 100
                        - audio_kbps.min((b / 1000).saturating_mul(95) / 100),
                    Some(p),
                ),
                None => (cfg.start_kbps, None),
            };
            let kbps = kbps.clamp(cfg.floor_kbps, cfg.ceiling_kbps);
            // Ignore changes under 3 % to avoid churning the rate controller.
            let diff = kbps.abs_diff(rate.current_kbps);
            if diff * 100 < rate.current_kbps * 3 {
                None
            } else {
                rate.current_kbps = kbps;
                Some(BitrateChange { kbps, limited_by })
            }
        };
        if let Some(change) = change {
            tracing::debug!(kbps = change.kbps, limited_by = ?change.limited_by, "encoder bitrate");
            encoder.set_bitrate(change.kbps);
            let listeners = self.inner.listeners.lock().clone();
            for l in listeners {
                l(&change);
            }
        }
    }
}
