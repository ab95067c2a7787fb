//! Recovery of peer connections after a network change: the path between two peers is cut
//! for a while, or an address of this machine changed.
//!
//! webrtcbin 1.22 cannot restart ICE: `create-offer` has no `ice-restart` option and it
//! reuses the ICE credentials of its previous offer, and neither webrtcbin nor its libnice
//! wrapper ever calls `nice_agent_restart` (checked in the 1.22 binaries: no such symbol or
//! option string). libnice does not notice a dead path on its own either (its
//! `keepalive-conncheck` and `consent-freshness` are off in webrtcbin, so the state stays
//! `connected`). So the session watches each connection itself and, when the path is gone,
//! **rebuilds that one peer connection** (a new `webrtcbin` with fresh ICE credentials and
//! candidates on the current addresses), leaving the others alone:
//!
//! - A connection that has connected and carries media in either direction is never silent
//!   for long (RTP, or the receiver's RTCP and transport-wide feedback; measured on loopback:
//!   at most ~0.3 s between packets at a publish-only side). Silence for
//!   [`RecoveryConfig::stall_after`] makes it *stalled* (reported, nothing else yet): when the
//!   path returns with the same addresses, the old connection simply carries media again
//!   (nothing on it has timed out), which is the fastest recovery there is.
//! - The pair's offerer rebuilds a connection that stays silent for
//!   [`RecoveryConfig::rebuild_after`], that webrtcbin reports `failed` or `disconnected`, or
//!   that has media or a data channel negotiated but never connected within
//!   [`RecoveryConfig::connect_timeout`] of being built: libnice
//!   keeps repeating the new connection's checks, so once the path returns one of them gets
//!   through. A rebuilt connection that does not connect is rebuilt again after the connect
//!   timeout.
//! - The answerer never offers: it rebuilds when an offer arrives with new ICE credentials
//!   (an ICE restart, RFC 8839), and answers it on the new connection.
//! - An address of this machine appearing or disappearing rebuilds every connection this
//!   side offers for at once (a path from a vanished address never returns), and reconnects
//!   the signalling socket, which may be bound to a vanished address too. When the
//!   answerer's address changes, its offerer sees the silence and rebuilds after
//!   `rebuild_after`.
//!
//! Each step is reported as [`SessionEvent::Recovery`](super::SessionEvent::Recovery).

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::webrtc::peer::ConnectionState;

/// How a session recovers its peer connections (see the module documentation).
///
/// ```
/// use std::time::Duration;
/// use streamwire::session::{RecoveryConfig, SessionConfig};
/// let mut cfg = SessionConfig::new("wss://sig.example.org", "room", "jwt");
/// cfg.recovery = RecoveryConfig { rebuild_after: Duration::from_secs(5), ..RecoveryConfig::default() };
/// assert!(cfg.recovery.enabled);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveryConfig {
    /// Rebuild connections whose path is gone. Default true.
    pub enabled: bool,
    /// A connected connection carrying media that received nothing for this long is
    /// reported stalled. Default 1.5 s (five times the longest gap measured between packets).
    pub stall_after: Duration,
    /// The offerer rebuilds a connection silent for this long. Default 3 s.
    pub rebuild_after: Duration,
    /// A connection not connected this long after it was built is rebuilt (offerer) or
    /// reported stalled (answerer). Default 10 s.
    pub connect_timeout: Duration,
}

impl Default for RecoveryConfig {
    fn default() -> Self {
        RecoveryConfig {
            enabled: true,
            stall_after: Duration::from_millis(1500),
            rebuild_after: Duration::from_secs(3),
            connect_timeout: Duration::from_secs(10),
        }
    }
}

/// What happened to a peer connection's path, in [`SessionEvent::Recovery`](super::SessionEvent::Recovery).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum Recovery {
    /// Nothing arrived for `silent_ms` on a connection carrying media, webrtcbin reported
    /// `failed`, or it never connected: the path is gone.
    Stalled {
        /// How long nothing arrived (ms).
        silent_ms: u64,
    },
    /// The peer connection is being rebuilt (a new `webrtcbin`); media stops until it is up.
    Rebuilding {
        /// Rebuilds since the stall, from 1.
        attempt: u32,
        /// Why.
        reason: RebuildReason,
    },
    /// Media flows again.
    Recovered {
        /// Time since the stall (ms).
        after_ms: u64,
        /// On a rebuilt connection (false: the old path came back).
        rebuilt: bool,
    },
}

/// Why a peer connection is rebuilt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RebuildReason {
    /// It stalled (and, when retrying, is still stalled).
    Stalled,
    /// An address of this machine appeared or disappeared.
    AddressChanged,
    /// The remote offerer restarted ICE (an offer with new ICE credentials).
    RemoteRestart,
}

/// What the watch of one connection decided at a tick.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Report this.
    Report(Recovery),
    /// Rebuild the connection now (reported by the caller as `Rebuilding`).
    Rebuild(RebuildReason),
}

/// What a tick sees of one connection.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sample {
    pub state: ConnectionState,
    /// Since the last packet from the remote side; None before the first.
    pub silence: Option<Duration>,
    /// A negotiated media direction exists (traffic is expected).
    pub carries_media: bool,
    /// The local description has something to connect (media or a data channel); a
    /// connection without it is never timed out.
    pub has_transport: bool,
}

#[derive(Debug, Clone)]
struct Stall {
    since: Instant,
    /// Rebuilds since the stall.
    attempts: u32,
}

/// The recovery state of one remote member, across rebuilds of its connection.
#[derive(Debug, Clone)]
pub(crate) struct Watch {
    /// When the current connection was built.
    built: Instant,
    /// The current connection has reached `connected`.
    connected: bool,
    stall: Option<Stall>,
}

impl Watch {
    pub(crate) fn new(now: Instant) -> Self {
        Watch {
            built: now,
            connected: false,
            stall: None,
        }
    }

    /// Look at the connection; `offerer`: this side offers for the pair (only it rebuilds
    /// on its own).
    pub(crate) fn tick(
        &mut self,
        cfg: &RecoveryConfig,
        now: Instant,
        offerer: bool,
        s: Sample,
    ) -> Vec<Decision> {
        let mut out = Vec::new();
        if s.state == ConnectionState::Connected {
            self.connected = true;
        }
        let age = now.duration_since(self.built);
        // Silence on a connection that has carried packets and must keep carrying them.
        let silence = s
            .silence
            .filter(|_| self.connected && s.carries_media)
            .unwrap_or_default();
        let broken = matches!(
            s.state,
            ConnectionState::Failed | ConnectionState::Disconnected
        );
        let lost = if self.connected {
            broken || silence >= cfg.rebuild_after
        } else {
            s.has_transport && (broken || age >= cfg.connect_timeout)
        };
        match &self.stall {
            None if lost || silence >= cfg.stall_after => {
                let silent_for = if self.connected { silence } else { age };
                self.stall = Some(Stall {
                    since: now.checked_sub(silent_for).unwrap_or(now),
                    attempts: 0,
                });
                out.push(Decision::Report(Recovery::Stalled {
                    silent_ms: millis(silent_for),
                }));
            }
            Some(st)
                if s.state == ConnectionState::Connected
                    && s.silence.is_some_and(|d| d < cfg.stall_after) =>
            {
                out.push(Decision::Report(Recovery::Recovered {
                    after_ms: millis(now.duration_since(st.since)),
                    rebuilt: st.attempts > 0,
                }));
                self.stall = None;
                return out;
            }
            _ => {}
        }
        if lost && offerer {
            out.push(Decision::Rebuild(RebuildReason::Stalled));
        }
        out
    }

    /// The connection is about to be replaced although this side saw no stall yet: the
    /// remote side rebuilt a connection that never connected here (its offer carries new ICE
    /// credentials). Reported as a stall of the connection's age, so the application hears
    /// of the loss on both sides, whichever noticed first.
    pub(crate) fn replaced_before_connecting(&self, now: Instant) -> Option<Recovery> {
        (self.stall.is_none() && !self.connected).then(|| Recovery::Stalled {
            silent_ms: millis(now.duration_since(self.built)),
        })
    }

    /// The connection is being rebuilt now; returns the attempt number since the stall.
    pub(crate) fn rebuilding(&mut self, now: Instant) -> u32 {
        let st = self.stall.get_or_insert(Stall {
            since: now,
            attempts: 0,
        });
        st.attempts += 1;
        self.built = now;
        self.connected = false;
        st.attempts
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The machine's interface addresses, to notice a change between ticks.
#[derive(Debug, Default)]
pub(crate) struct Addresses(BTreeSet<IpAddr>);

impl Addresses {
    /// The current addresses (empty if they cannot be read).
    pub(crate) fn now() -> Self {
        Addresses(
            if_addrs::get_if_addrs()
                .map(|v| v.into_iter().map(|i| i.ip()).collect())
                .unwrap_or_default(),
        )
    }

    /// Replace with `current`; whether anything changed.
    pub(crate) fn update(&mut self, current: Addresses) -> bool {
        let changed = self.0 != current.0;
        if changed {
            tracing::info!(before = ?self.0, after = ?current.0, "local addresses changed");
        }
        self.0 = current.0;
        changed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONNECTED: ConnectionState = ConnectionState::Connected;

    fn sample(state: ConnectionState, silence_ms: Option<u64>) -> Sample {
        Sample {
            state,
            silence: silence_ms.map(Duration::from_millis),
            carries_media: true,
            has_transport: true,
        }
    }

    #[test]
    fn silence_is_reported_then_the_offerer_rebuilds_and_recovery_is_reported() {
        let cfg = RecoveryConfig::default();
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let mut w = Watch::new(t0);
        assert!(
            w.tick(&cfg, at(100), true, sample(CONNECTED, Some(20)))
                .is_empty()
        );
        // 1.4 s of silence: not yet.
        assert!(
            w.tick(&cfg, at(1500), true, sample(CONNECTED, Some(1400)))
                .is_empty()
        );
        assert_eq!(
            w.tick(&cfg, at(1700), true, sample(CONNECTED, Some(1600))),
            vec![Decision::Report(Recovery::Stalled { silent_ms: 1600 })]
        );
        assert!(
            w.tick(&cfg, at(2900), true, sample(CONNECTED, Some(2800)))
                .is_empty()
        );
        assert_eq!(
            w.tick(&cfg, at(3100), true, sample(CONNECTED, Some(3000))),
            vec![Decision::Rebuild(RebuildReason::Stalled)]
        );
        assert_eq!(w.rebuilding(at(3100)), 1);
        // The new connection is still coming up: nothing until the connect timeout...
        let connecting = sample(ConnectionState::Connecting, None);
        assert!(w.tick(&cfg, at(12_000), true, connecting).is_empty());
        // ...then it is rebuilt again.
        assert_eq!(
            w.tick(&cfg, at(13_100), true, connecting),
            vec![Decision::Rebuild(RebuildReason::Stalled)]
        );
        assert_eq!(w.rebuilding(at(13_100)), 2);
        // Up and receiving: recovered, on a rebuilt connection, 13.5 s after the silence began.
        assert_eq!(
            w.tick(&cfg, at(13_600), true, sample(CONNECTED, Some(30))),
            vec![Decision::Report(Recovery::Recovered {
                after_ms: 13_500,
                rebuilt: true
            })]
        );
        assert!(
            w.tick(&cfg, at(14_000), true, sample(CONNECTED, Some(30)))
                .is_empty()
        );
    }

    #[test]
    fn the_answerer_only_reports_and_a_returning_path_recovers_without_a_rebuild() {
        let cfg = RecoveryConfig::default();
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let mut w = Watch::new(t0);
        w.tick(&cfg, at(100), false, sample(CONNECTED, Some(10)));
        assert_eq!(
            w.tick(&cfg, at(2000), false, sample(CONNECTED, Some(1900))),
            vec![Decision::Report(Recovery::Stalled { silent_ms: 1900 })]
        );
        assert!(
            w.tick(&cfg, at(9000), false, sample(CONNECTED, Some(8900)))
                .is_empty()
        );
        assert_eq!(
            w.tick(&cfg, at(9100), false, sample(CONNECTED, Some(50))),
            vec![Decision::Report(Recovery::Recovered {
                after_ms: 9000,
                rebuilt: false
            })]
        );
    }

    #[test]
    fn no_stall_without_media_and_before_connecting_only_after_the_timeout() {
        let cfg = RecoveryConfig::default();
        let t0 = Instant::now();
        let mut w = Watch::new(t0);
        let quiet = Sample {
            state: CONNECTED,
            silence: Some(Duration::from_secs(20)),
            carries_media: false,
            has_transport: true,
        };
        assert!(
            w.tick(&cfg, t0 + Duration::from_secs(20), true, quiet)
                .is_empty()
        );
        // Nothing negotiated to connect: never timed out.
        let mut w = Watch::new(t0);
        let nothing = Sample {
            state: ConnectionState::New,
            silence: None,
            carries_media: false,
            has_transport: false,
        };
        assert!(
            w.tick(&cfg, t0 + Duration::from_secs(60), true, nothing)
                .is_empty()
        );
        let mut w = Watch::new(t0);
        let new = sample(ConnectionState::Connecting, None);
        assert!(
            w.tick(&cfg, t0 + Duration::from_secs(9), true, new)
                .is_empty()
        );
        assert_eq!(
            w.tick(&cfg, t0 + Duration::from_secs(10), true, new),
            vec![
                Decision::Report(Recovery::Stalled { silent_ms: 10_000 }),
                Decision::Rebuild(RebuildReason::Stalled)
            ]
        );
    }

    #[test]
    fn failed_is_rebuilt_at_once() {
        let cfg = RecoveryConfig::default();
        let t0 = Instant::now();
        let mut w = Watch::new(t0);
        w.tick(&cfg, t0, true, sample(CONNECTED, Some(10)));
        let d = w.tick(&cfg, t0, true, sample(ConnectionState::Failed, Some(300)));
        assert_eq!(
            d,
            vec![
                Decision::Report(Recovery::Stalled { silent_ms: 300 }),
                Decision::Rebuild(RebuildReason::Stalled)
            ]
        );
    }

    #[test]
    fn a_connection_replaced_before_it_connected_is_reported_once() {
        let cfg = RecoveryConfig::default();
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut w = Watch::new(t0);
        // The answerer's connection comes up for 8 s (under the connect timeout)...
        let connecting = sample(ConnectionState::Connecting, None);
        assert!(w.tick(&cfg, at(8000), false, connecting).is_empty());
        // ...then the offerer replaces it: this side reports the loss once, as a stall.
        assert_eq!(
            w.replaced_before_connecting(at(8000)),
            Some(Recovery::Stalled { silent_ms: 8000 })
        );
        assert_eq!(w.rebuilding(at(8000)), 1);
        assert_eq!(w.replaced_before_connecting(at(15_000)), None);
        // A connection that connected is not reported on replacement (its silence is).
        let mut w = Watch::new(t0);
        w.tick(&cfg, at(100), false, sample(CONNECTED, Some(10)));
        assert_eq!(w.replaced_before_connecting(at(200)), None);
    }
}
