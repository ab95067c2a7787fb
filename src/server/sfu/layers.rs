//! Simulcast: which layer Janus forwards on each simulcast m-line of a subscription
//! (docs/sfu.md, "Simulcast").
//!
//! A browser publishes its camera in three VP8 layers (rid `h`, `m`, `l`: full, half and
//! quarter size; Janus substreams 2, 1 and 0). For each subscriber and simulcast stream the
//! server asks Janus (`configure`, `streams: [{mid, substream}]`) for the lower of two layers:
//! - **bandwidth**: the layer the subscriber's downlink carried lately. Loss takes the stream
//!   one layer below the one it had: a reading of the Admin API with too much of it
//!   ([`super::downlink`]), or Janus's `slowlink` event on the subscriber's handle (the
//!   subscriber reported at least Janus's `slowlink_threshold` packets lost within a second).
//!   After [`PROBE_AFTER`] without loss the stream tries one layer up; a
//!   probe that loses within [`PROBE_WINDOW`] goes back down and doubles the wait before the
//!   next one (up to [`PROBE_MAX`]).
//! - **size**: the smallest layer at least as large as the subscriber renders the video
//!   (its `sfu_view` frames), relative to the publisher's announced capture size.
//!
//! Janus makes a change at the new layer's next keyframe, which it asks the publisher for
//! once; a change it has not reported making (its event with the stream's `substream`) is
//! asked for again every [`REASK_AFTER`], at most [`MAX_REASKS`] times.

use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{Value, json};

use super::admin::{Downlink, NEGATIVE_LOSS};
use super::room::{State, Subscription};
use crate::signalling::protocol::{PeerId, TrackInfo, TrackKind};

/// The full-size layer (Janus substream 2, rid `h`).
pub(super) const TOP: u8 = 2;
/// Slow-link events within this time of a layer change are about the layer before it (the
/// losses of the last second, reported by the subscriber's next receiver report): ignored.
pub(super) const SETTLE: Duration = Duration::from_secs(2);
/// First wait before trying a layer up again after a slow link.
pub(super) const PROBE_AFTER: Duration = Duration::from_secs(8);
/// A probe that loses within this time failed.
pub(super) const PROBE_WINDOW: Duration = Duration::from_secs(5);
/// Longest wait between probes.
pub(super) const PROBE_MAX: Duration = Duration::from_secs(64);
/// A layer change Janus has not made after this long is asked for again: Janus switches at
/// the new layer's next keyframe and asks the publisher for one once per request, and that
/// request can go unanswered (seen with Chromium publishers: the layer never changed).
pub(super) const REASK_AFTER: Duration = Duration::from_millis(500);
/// Times a change is asked for again at most (each costs the publisher a keyframe); after
/// that the server takes what Janus forwards (e.g. its fallback while the publisher does
/// not send that layer at all).
pub(super) const MAX_REASKS: u8 = 6;

/// The layer state of one simulcast m-line of a subscription.
#[derive(Debug, Clone)]
pub(super) struct StreamLayer {
    /// The member whose video it carries.
    pub publisher: PeerId,
    /// Highest layer the downlink carries, as far as the server knows.
    pub bandwidth: u8,
    /// Layer the rendered size needs ([`TOP`] until the subscriber says).
    pub size: u8,
    /// Layer last asked of Janus.
    pub asked: u8,
    /// When it was asked (again).
    pub asked_at: Instant,
    /// Times it may still be asked again while Janus does not forward it (set on a change).
    pub reasks_left: u8,
    /// The layer Janus says it forwards (its event after a switch), once it said.
    pub forwarded: Option<u8>,
    /// Last change of `bandwidth`.
    pub changed: Instant,
    /// Wait before the next probe.
    pub probe_wait: Duration,
    /// When `bandwidth` goes one layer up again (while it is below `size`).
    pub probe_at: Option<Instant>,
    /// `bandwidth` was raised by a probe at this time, and the probe has not lost yet.
    pub probing_since: Option<Instant>,
    /// The downlink counters of the last Admin API reading ([`super::downlink`]).
    pub downlink: Option<Downlink>,
}

impl StreamLayer {
    pub(super) fn new(publisher: PeerId, asked: u8, now: Instant) -> StreamLayer {
        StreamLayer {
            publisher,
            bandwidth: TOP,
            size: TOP,
            asked,
            asked_at: now,
            reasks_left: 0,
            forwarded: None,
            changed: now,
            probe_wait: PROBE_AFTER,
            probe_at: None,
            probing_since: None,
            downlink: None,
        }
    }

    /// The layer to forward.
    pub(super) fn target(&self) -> u8 {
        self.bandwidth.min(self.size)
    }

    /// The subscriber lost packets of this stream (a `slowlink` event): one layer down,
    /// unless the loss is about the layer before the last change. Whether it changed.
    pub(super) fn lost(&mut self, now: Instant) -> bool {
        if now.duration_since(self.changed) < SETTLE || self.asked == 0 {
            return false;
        }
        if self
            .probing_since
            .is_some_and(|t| now.duration_since(t) < PROBE_WINDOW)
        {
            self.probe_wait = (self.probe_wait * 2).min(PROBE_MAX);
        }
        self.probing_since = None;
        self.bandwidth = self.asked - 1;
        self.changed = now;
        self.probe_at = Some(now + self.probe_wait);
        true
    }

    /// Time passed: a probe that did not lose succeeded; a due probe raises `bandwidth` one
    /// layer (only while it, not the size, limits the stream). Whether `bandwidth` changed.
    pub(super) fn tick(&mut self, now: Instant) -> bool {
        if let Some(t) = self
            .probing_since
            .filter(|t| now.duration_since(*t) >= PROBE_WINDOW)
        {
            // The probe held: the next one comes the first wait after it.
            self.probing_since = None;
            self.probe_wait = PROBE_AFTER;
            self.probe_at = self.probe_at.map(|_| t + PROBE_AFTER);
        }
        let Some(at) = self.probe_at else {
            return false;
        };
        if now < at || self.bandwidth >= self.size {
            return false;
        }
        self.bandwidth += 1;
        self.changed = now;
        self.probing_since = Some(now);
        self.probe_at = (self.bandwidth < TOP).then(|| now + self.probe_wait);
        true
    }

    /// A change the server asked for is not made yet and may be asked for again now.
    fn reask_due(&self, now: Instant) -> bool {
        self.reasks_left > 0
            && self.forwarded != Some(self.asked)
            && now.duration_since(self.asked_at) >= REASK_AFTER
    }

    /// What limits the stream now: `bandwidth`, `size`, or `none` (the full layer).
    pub(super) fn limit(&self) -> &'static str {
        if self.target() == TOP {
            "none"
        } else if self.bandwidth <= self.size {
            "bandwidth"
        } else {
            "size"
        }
    }
}

/// The layer that rendering at `width`×`height` needs of a video captured at
/// `full_width`×`full_height`: the smallest of the quarter (0), half (1) and full (2) sizes
/// covering both dimensions. Nothing rendered (a zero dimension) needs the smallest layer.
pub(super) fn layer_for_size(width: u32, height: u32, full_width: u32, full_height: u32) -> u8 {
    if width == 0 || height == 0 {
        return 0;
    }
    if full_width == 0 || full_height == 0 {
        return TOP;
    }
    // Layer `l` has 1 / 2^(TOP - l) of the full size in each dimension.
    (0..TOP)
        .find(|l| {
            let div = 1u32 << (TOP - l);
            width <= full_width / div && height <= full_height / div
        })
        .unwrap_or(TOP)
}

/// The capture size of a member's camera: its first announced video track with a size that
/// is not labelled `screen` (a screen share is sent in one layer).
pub(super) fn camera_size(tracks: &[TrackInfo]) -> Option<(u32, u32)> {
    tracks
        .iter()
        .filter(|t| t.kind == TrackKind::Video && t.label.as_deref() != Some("screen"))
        .find_map(|t| Some((t.width?, t.height?)))
}

/// One simulcast stream of a subscription, as `/sfu/status` shows it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct LayerStatus {
    /// The subscribing member.
    pub subscriber: PeerId,
    /// The member whose video the stream carries.
    pub publisher: PeerId,
    /// Its m-line on the subscribing connection.
    pub mid: String,
    /// The layer asked of Janus: 0 (quarter size) to 2 (full).
    pub substream: u8,
    /// The layer Janus says it forwards (it switches at the asked layer's next keyframe);
    /// `None` until it said.
    pub forwarded: Option<u8>,
    /// `none` (full layer), `bandwidth` (the downlink lost packets at a higher layer) or
    /// `size` (the subscriber renders it smaller).
    pub limited_by: &'static str,
}

impl State {
    fn subscription_mut(&mut self, peer: &str) -> Option<&mut Subscription> {
        self.members.get_mut(peer)?.subscription.as_mut()
    }

    /// The layer state of `peer`'s simulcast stream `mid`.
    fn layer_mut(&mut self, peer: &str, mid: &str) -> Option<&mut StreamLayer> {
        self.subscription_mut(peer)?.layers.get_mut(mid)
    }

    /// Janus's offer on `peer`'s subscription: keep a layer state for each of its active
    /// simulcast video streams (Janus names the publisher's simulcast state in the stream).
    pub(super) fn track_simulcast(&mut self, peer: &str, streams: &[(String, PeerId, Value)]) {
        let Some(s) = self.subscription_mut(peer) else {
            return;
        };
        let now = Instant::now();
        s.layers
            .retain(|mid, _| streams.iter().any(|(m, _, _)| m == mid));
        for (mid, publisher, sim) in streams {
            let asked = sim["substream-target"]
                .as_u64()
                .and_then(|v| u8::try_from(v).ok())
                .filter(|v| *v <= TOP)
                .unwrap_or(TOP);
            s.layers
                .entry(mid.clone())
                .or_insert_with(|| StreamLayer::new(publisher.clone(), asked, now));
        }
    }

    /// Janus's `slowlink` on subscriber handle `handle`: the subscriber lost packets of `mid`.
    pub(super) async fn slow_link(&mut self, handle: u64, mid: &str, lost: u64) {
        let Some(peer) = self.subscriber_of(handle) else {
            return;
        };
        tracing::debug!(room = %self.task.name, subscriber = %peer, mid, lost, "SFU slow link");
        // Janus takes the difference of the 24-bit cumulative loss of two receiver reports: a
        // count that went down (duplicates received, e.g. retransmissions) wraps to near 2^24.
        if lost >= NEGATIVE_LOSS {
            return;
        }
        let now = Instant::now();
        let changed = self.layer_mut(&peer, mid).is_some_and(|l| l.lost(now));
        if changed {
            tracing::info!(room = %self.task.name, subscriber = %peer, mid, lost,
                           "SFU downlink losing packets: one simulcast layer down");
            self.apply_layers(&peer).await;
        }
    }

    /// The subscriber renders `mid` at `width`×`height` (an `sfu_view` frame).
    pub(super) async fn view(&mut self, peer: &str, mid: &str, width: u32, height: u32) {
        let Some(publisher) = self.layer_mut(peer, mid).map(|l| l.publisher.clone()) else {
            return;
        };
        let (fw, fh) = self
            .members
            .get(&publisher)
            .and_then(|m| m.camera)
            .unwrap_or((0, 0));
        let size = layer_for_size(width, height, fw, fh);
        if let Some(l) = self.layer_mut(peer, mid) {
            l.size = size;
            if l.bandwidth < size && l.probe_at.is_none() {
                l.probe_at = Some(Instant::now() + l.probe_wait);
            }
        }
        self.apply_layers(peer).await;
    }

    /// On each tick of the room task: due probes go one layer up, and layer changes Janus has
    /// not made yet are asked for again.
    pub(super) async fn probe_layers(&mut self) {
        let now = Instant::now();
        let mut due = Vec::new();
        for (peer, m) in &mut self.members {
            let Some(s) = &mut m.subscription else {
                continue;
            };
            let raised = s.layers.values_mut().fold(false, |r, l| l.tick(now) | r);
            let pending = s.layers.values().any(|l| l.reask_due(now));
            if raised {
                tracing::debug!(room = %self.task.name, subscriber = %peer,
                                "SFU probing a higher simulcast layer");
            }
            if raised || pending {
                due.push(peer.clone());
            }
        }
        for peer in due {
            self.apply_layers(&peer).await;
        }
    }

    /// Janus's event on subscriber handle `handle`: it forwards layer `substream` on `mid`.
    pub(super) fn forwarded(&mut self, handle: u64, mid: &str, substream: u8) {
        let Some(peer) = self.subscriber_of(handle) else {
            return;
        };
        if let Some(l) = self.layer_mut(&peer, mid) {
            l.forwarded = Some(substream);
        }
    }

    /// Whether any subscription has a simulcast stream (the room task then ticks).
    pub(super) fn has_simulcast(&self) -> bool {
        self.members
            .values()
            .filter_map(|m| m.subscription.as_ref())
            .any(|s| !s.layers.is_empty())
    }

    /// Ask Janus for each of `peer`'s simulcast streams whose target layer changed, or that
    /// it has not switched to [`REASK_AFTER`] after the last request.
    pub(super) async fn apply_layers(&mut self, peer: &str) {
        let Some(janus) = self.janus_of(peer) else {
            return;
        };
        let Some(s) = self.subscription_mut(peer) else {
            return;
        };
        let now = Instant::now();
        let mut streams = Vec::new();
        for (mid, l) in &mut s.layers {
            let t = l.target();
            if t != l.asked {
                tracing::debug!(
                    subscriber = peer,
                    mid,
                    from = l.asked,
                    to = t,
                    limited_by = l.limit(),
                    "SFU simulcast layer"
                );
                l.reasks_left = MAX_REASKS;
            } else if l.reask_due(now) {
                l.reasks_left -= 1;
            } else {
                continue;
            }
            l.asked = t;
            l.asked_at = now;
            streams.push(json!({"mid": mid, "substream": t}));
        }
        if streams.is_empty() {
            return;
        }
        let body = json!({"request": "configure", "streams": streams});
        if let Err(e) = janus.message(s.handle, body, None).await {
            tracing::warn!(subscriber = peer, error = %e, "SFU layer change refused");
        }
    }

    /// The member whose subscription has handle `handle`.
    pub(super) fn subscriber_of(&self, handle: u64) -> Option<PeerId> {
        self.members
            .iter()
            .find(|(_, m)| m.subscription.as_ref().is_some_and(|s| s.handle == handle))
            .map(|(id, _)| id.clone())
    }

    /// Every simulcast stream of the room's subscriptions, for `/sfu/status`.
    pub(super) fn layer_status(&self) -> Vec<LayerStatus> {
        let mut out: Vec<LayerStatus> = self
            .members
            .iter()
            .filter_map(|(id, m)| Some((id, m.subscription.as_ref()?)))
            .flat_map(|(id, s)| {
                s.layers.iter().map(|(mid, l)| LayerStatus {
                    subscriber: id.clone(),
                    publisher: l.publisher.clone(),
                    mid: mid.clone(),
                    substream: l.asked,
                    forwarded: l.forwarded,
                    limited_by: l.limit(),
                })
            })
            .collect();
        out.sort_by(|a, b| (&a.subscriber, &a.mid).cmp(&(&b.subscriber, &b.mid)));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendered_size_picks_the_smallest_covering_layer() {
        assert_eq!(layer_for_size(320, 180, 1280, 720), 0);
        assert_eq!(layer_for_size(321, 180, 1280, 720), 1);
        assert_eq!(layer_for_size(640, 360, 1280, 720), 1);
        assert_eq!(layer_for_size(640, 361, 1280, 720), 2);
        assert_eq!(layer_for_size(1920, 1080, 1280, 720), 2);
        assert_eq!(layer_for_size(0, 0, 1280, 720), 0, "hidden");
        assert_eq!(layer_for_size(320, 180, 0, 0), TOP, "capture size unknown");
    }

    #[test]
    fn loss_steps_down_and_probes_back_up_with_backoff() {
        let t0 = Instant::now();
        let mut l = StreamLayer::new("p".into(), TOP, t0);
        assert!(
            !l.lost(t0 + Duration::from_secs(1)),
            "settling after the start"
        );
        let t = t0 + SETTLE;
        assert!(l.lost(t));
        assert_eq!((l.bandwidth, l.target()), (1, 1));
        l.asked = l.target();
        assert!(
            !l.lost(t + Duration::from_secs(1)),
            "losses of the layer before"
        );
        let t = t + SETTLE;
        assert!(l.lost(t));
        l.asked = l.target();
        assert_eq!(l.asked, 0);
        assert!(!l.lost(t + SETTLE), "nothing below the lowest layer");
        // No probe before PROBE_AFTER, one layer up then.
        assert!(!l.tick(t + PROBE_AFTER - Duration::from_millis(1)));
        let p = t + PROBE_AFTER;
        assert!(l.tick(p));
        assert_eq!(l.target(), 1);
        l.asked = 1;
        // The probe loses: back down, and the next probe waits twice as long.
        assert!(l.lost(p + SETTLE));
        assert_eq!(l.target(), 0);
        l.asked = 0;
        assert_eq!(l.probe_wait, PROBE_AFTER * 2);
        assert!(!l.tick(p + SETTLE + PROBE_AFTER));
        let p2 = p + SETTLE + PROBE_AFTER * 2;
        assert!(l.tick(p2));
        l.asked = 1;
        // A probe that holds for PROBE_WINDOW resets the wait.
        assert!(!l.tick(p2 + PROBE_WINDOW));
        assert_eq!(l.probe_wait, PROBE_AFTER);
        assert_eq!(l.limit(), "bandwidth");
        assert!(l.tick(p2 + PROBE_AFTER));
        assert_eq!(l.target(), TOP);
        assert_eq!(l.limit(), "none");
        assert_eq!(l.probe_at, None, "nothing above the full layer");
    }

    #[test]
    fn no_probe_above_the_rendered_size() {
        let t0 = Instant::now();
        let mut l = StreamLayer::new("p".into(), TOP, t0);
        l.size = 0;
        assert_eq!(l.target(), 0);
        assert_eq!(l.limit(), "size");
        l.asked = 0;
        l.bandwidth = 0;
        l.probe_at = Some(t0);
        assert!(
            !l.tick(t0 + PROBE_MAX),
            "the size limits, not the bandwidth"
        );
        assert_eq!(l.bandwidth, 0);
    }

    #[test]
    fn an_unmade_change_is_asked_again_a_bounded_number_of_times() {
        let t0 = Instant::now();
        let mut l = StreamLayer::new("p".into(), TOP, t0);
        assert!(
            !l.reask_due(t0 + PROBE_MAX),
            "the initial layer is Janus's own choice"
        );
        // The server asks for layer 0 (what apply_layers does on a change).
        l.asked = 0;
        l.asked_at = t0;
        l.reasks_left = MAX_REASKS;
        assert!(!l.reask_due(t0 + REASK_AFTER / 2));
        let mut t = t0;
        let mut asked = 0;
        while l.reask_due(t + REASK_AFTER) {
            t += REASK_AFTER;
            l.reasks_left -= 1;
            l.asked_at = t;
            asked += 1;
        }
        assert_eq!(asked, MAX_REASKS);
        // Janus reports the switch: nothing more to ask.
        l.reasks_left = MAX_REASKS;
        l.forwarded = Some(0);
        assert!(!l.reask_due(t + PROBE_MAX));
    }

    #[test]
    fn probe_wait_is_bounded() {
        let mut t = Instant::now();
        let mut l = StreamLayer::new("p".into(), TOP, t);
        for _ in 0..12 {
            t += SETTLE;
            l.asked = 1;
            l.probing_since = Some(t);
            l.lost(t + Duration::from_millis(10));
        }
        assert_eq!(l.probe_wait, PROBE_MAX);
    }
}
