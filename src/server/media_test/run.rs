//! One running media test: its pipeline and peer, the task that carries the peer's signalling
//! and reports to the client, and the teardown.

use std::sync::Arc;
use std::time::{Duration, Instant};

use gst::prelude::*;
use tokio::sync::{Notify, mpsc};

use super::echo::Echo;
use super::probe::Probe;
use super::{MediaTestConfig, Place};
use crate::session::ice::IceServers;
use crate::signalling::protocol::ServerMsg;
use crate::signalling::protocol::media_test::{
    MEDIA_TEST_PEER, MediaTestEnd, MediaTestKind, REPORT_INTERVAL, ReceivedTrack, ServerReport,
};
use crate::signalling::service::{MediaTestRequest, MediaTestRun, PseudoPeerSignal, ServiceError};
use crate::webrtc::peer::{
    ConnectionState, Peer, PeerConfig, PeerEvent, PeerIo, Role, SignalIn, SignalOut,
};
use crate::webrtc::stats::{Direction, StatsSampler};
use crate::webrtc::{MediaKind, WebrtcError, repair::RepairConfig};

/// The first report comes this long after the connection is up, then every report interval
/// (short, so that the first result is there within 3 s of the start).
const FIRST_REPORT: Duration = Duration::from_millis(500);

/// How long after the answer the media connection may take to come up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The kind of each received media stream, by SSRC.
type ReceivedKinds = Arc<parking_lot::Mutex<std::collections::HashMap<u32, MediaKind>>>;

/// What the test does with the media.
enum Kind {
    Echo(Arc<Echo>),
    Probe(Probe),
}

/// A running test (the hub's [`MediaTestRun`]); dropping it stops the test.
pub(super) struct TestRun {
    id: String,
    delay_ms: u32,
    peer: Peer,
    kind: Kind,
    stop: Arc<Notify>,
    /// Taken by the teardown.
    teardown: Option<(gst::Pipeline, Place)>,
}

impl TestRun {
    /// Build the pipeline and the answering peer, and start the task that drives them.
    pub(super) fn start(
        request: &MediaTestRequest,
        cfg: &MediaTestConfig,
        to_client: mpsc::Sender<ServerMsg>,
        place: Place,
    ) -> Result<TestRun, WebrtcError> {
        let (id, test) = (request.id.clone(), request.test);
        let pipeline = gst::Pipeline::with_name(&format!("media-test-{id}"));
        let mut peer_cfg = PeerConfig::new(Role::Answerer);
        peer_cfg.local_addresses = cfg.local_addresses.clone();
        // The servers the client got: STUN and TURN (credentials minted for this test).
        let (servers, problems) =
            IceServers::resolve(&request.ice_servers, &[], std::time::SystemTime::now());
        for p in problems {
            tracing::warn!(%id, error = %p, "ICE server of the media test peer skipped");
        }
        peer_cfg.stun_server = servers.stun;
        peer_cfg.turn_servers = servers.turns;
        let kind = match test {
            MediaTestKind::Echo => Kind::Echo(Arc::new(Echo::new(&pipeline, cfg.echo_delay))),
            MediaTestKind::Probe => {
                // The network's loss, not what repair leaves of it.
                peer_cfg.repair = RepairConfig::off();
                if let Some(cc) = peer_cfg.congestion.as_mut() {
                    cc.max_kbps = cfg.probe_max_kbps;
                    cc.start_kbps = cc.start_kbps.min(cfg.probe_max_kbps);
                }
                Kind::Probe(Probe::new(&pipeline, cfg.probe_max_kbps)?)
            }
        };
        pipeline
            .set_state(gst::State::Playing)
            .map_err(|e| WebrtcError::State(format!("media test pipeline: {e}")))?;
        let (peer, io) = match Peer::new(&pipeline, MEDIA_TEST_PEER, peer_cfg) {
            Ok(p) => p,
            Err(e) => {
                let _ = pipeline.set_state(gst::State::Null);
                return Err(e);
            }
        };
        let attached = match &kind {
            Kind::Echo(echo) => {
                echo.attach(&peer);
                Ok(())
            }
            Kind::Probe(probe) => probe.attach(&peer),
        };
        if let Err(e) = attached {
            let _ = peer.close();
            let _ = pipeline.set_state(gst::State::Null);
            return Err(e);
        }
        // The received media streams by SSRC, from webrtcbin's source pads: the stats of a
        // receive stream without a codec entry (webrtcbin 1.22 under BUNDLE) get their kind
        // from here, and streams without a pad (RTX, FEC, a sender's probing padding) are
        // not media tracks of the report.
        let received: ReceivedKinds = Arc::default();
        let kinds = received.clone();
        peer.webrtcbin().connect_pad_added(move |_, pad| {
            let caps = pad.current_caps();
            let s = caps.as_ref().and_then(|c| c.structure(0));
            if let Some((ssrc, kind)) = s.and_then(|s| {
                let kind = s.get::<&str>("media").ok().and_then(MediaKind::from_sdp)?;
                Some((s.get::<u32>("ssrc").ok()?, kind))
            }) {
                kinds.lock().insert(ssrc, kind);
            }
        });
        let stop = Arc::new(Notify::new());
        let probe = test == MediaTestKind::Probe;
        tokio::spawn(drive(
            id.clone(),
            peer.clone(),
            io,
            to_client,
            stop.clone(),
            probe,
            received,
        ));
        let delay_ms = match test {
            MediaTestKind::Echo => u32::try_from(cfg.echo_delay.as_millis()).unwrap_or(u32::MAX),
            MediaTestKind::Probe => 0,
        };
        Ok(TestRun {
            id,
            delay_ms,
            peer,
            kind,
            stop,
            teardown: Some((pipeline, place)),
        })
    }
}

impl MediaTestRun for TestRun {
    fn id(&self) -> &str {
        &self.id
    }

    fn delay_ms(&self) -> u32 {
        self.delay_ms
    }

    fn signal(&self, signal: PseudoPeerSignal) -> Result<(), ServiceError> {
        let invalid = |reason: String| ServiceError::Invalid {
            what: "sdp".into(),
            reason,
        };
        let msg = match signal {
            PseudoPeerSignal::Offer(sdp) => {
                let parsed = gst_sdp::SDPMessage::parse_buffer(sdp.as_bytes())
                    .map_err(|_| invalid("not an SDP offer".into()))?;
                match &self.kind {
                    Kind::Echo(echo) => echo.prepare(&self.peer, &parsed).map_err(invalid)?,
                    Kind::Probe(probe) => probe.check_offer(&parsed).map_err(invalid)?,
                }
                SignalIn::Offer { sdp }
            }
            PseudoPeerSignal::Ice { candidate, mline } => SignalIn::Ice { mline, candidate },
            PseudoPeerSignal::Answer(_) => {
                return Err(invalid(
                    "the client offers; the media test peer answers".into(),
                ));
            }
        };
        self.peer.apply(msg).map_err(|e| ServiceError::Invalid {
            what: "frame".into(),
            reason: e.to_string(),
        })
    }
}

impl Drop for TestRun {
    fn drop(&mut self) {
        self.stop.notify_one();
        let Some((pipeline, place)) = self.teardown.take() else {
            return;
        };
        let peer = self.peer.clone();
        let id = self.id.clone();
        // State changes block; the place is freed once the pipeline is gone.
        let spawned = std::thread::Builder::new()
            .name("sw-media-test-end".into())
            .spawn(move || {
                let _ = peer.close();
                let _ = pipeline.set_state(gst::State::Null);
                drop(place);
                tracing::debug!(%id, "media test torn down");
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "no thread for a media test's teardown");
        }
    }
}

/// Carry the peer's answer and candidates to the client, end the test when the connection
/// fails, and report every interval once it is up (with the estimate for a `probe`).
async fn drive(
    id: String,
    peer: Peer,
    mut io: PeerIo,
    to_client: mpsc::Sender<ServerMsg>,
    stop: Arc<Notify>,
    probe: bool,
    kinds: ReceivedKinds,
) {
    let mut up_since: Option<Instant> = None;
    // Set with the answer: a connection not up by then fails the test.
    let mut connect_by: Option<tokio::time::Instant> = None;
    let mut next_report = tokio::time::Instant::now() + Duration::from_secs(3600);
    let mut sampler = Some(StatsSampler::new());
    let every = REPORT_INTERVAL;
    let end = |reason, message: String| ServerMsg::MediaTestEnded { reason, message };
    loop {
        tokio::select! {
            _ = stop.notified() => return,
            signal = io.signals.recv() => {
                let frame = match signal {
                    Some(SignalOut::Answer { sdp }) => {
                        connect_by = Some(tokio::time::Instant::now() + CONNECT_TIMEOUT);
                        ServerMsg::Answer {
                            n: 0,
                            from: MEDIA_TEST_PEER.into(),
                            sdp,
                        }
                    }
                    Some(SignalOut::Ice { mline, candidate }) => ServerMsg::Ice {
                        n: 0,
                        from: MEDIA_TEST_PEER.into(),
                        candidate,
                        sdp_mline_index: mline,
                        sdp_mid: None,
                    },
                    Some(SignalOut::Offer { .. }) => continue,
                    None => return,
                };
                if to_client.send(frame).await.is_err() {
                    return;
                }
            }
            event = io.events.recv() => {
                let failed = match event {
                    Some(PeerEvent::ConnectionState { state: ConnectionState::Connected, .. }) => {
                        if up_since.is_none() {
                            tracing::debug!(%id, "media test connected");
                            up_since = Some(Instant::now());
                            next_report = tokio::time::Instant::now() + FIRST_REPORT;
                        }
                        None
                    }
                    Some(PeerEvent::ConnectionState { state: ConnectionState::Failed, .. }) => {
                        Some("the media connection failed (ICE or DTLS)".to_owned())
                    }
                    Some(PeerEvent::NegotiationFailed { reason, .. }) => {
                        Some(format!("negotiation failed: {reason}"))
                    }
                    Some(_) => None,
                    None => return,
                };
                if let Some(why) = failed {
                    let _ = to_client.send(end(MediaTestEnd::Failed, why)).await;
                    return;
                }
            }
            _ = tokio::time::sleep_until(connect_by.unwrap_or(next_report)),
                if up_since.is_none() && connect_by.is_some() =>
            {
                let why = format!(
                    "no media connection within {} s of the answer (no ICE candidate pair \
                     worked: are the server's --media-test-address and the client on a common \
                     network?)",
                    CONNECT_TIMEOUT.as_secs()
                );
                let _ = to_client.send(end(MediaTestEnd::Failed, why)).await;
                return;
            }
            _ = tokio::time::sleep_until(next_report), if up_since.is_some() => {
                next_report += every;
                let Some(mut s) = sampler.take() else { return };
                let p = peer.clone();
                // `get-stats` waits on webrtcbin: off the runtime's threads.
                let Ok((s, stats)) = tokio::task::spawn_blocking(move || {
                    let stats = s.sample(&p, None, None);
                    (s, stats)
                })
                .await
                else {
                    return;
                };
                sampler = Some(s);
                let (Some(stats), Some(since)) = (stats, up_since) else { continue };
                let report = ServerReport {
                    elapsed_ms: u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX),
                    estimate_kbps: stats.estimated_kbps.filter(|_| probe),
                    sent_kbps: stats.send_kbps,
                    rtt_ms: stats.rtt_ms,
                    received: {
                        let kinds = kinds.lock();
                        stats
                            .tracks
                            .iter()
                            .filter(|t| t.direction == Direction::Receive)
                            .filter_map(|t| {
                                let kind = kinds.get(&t.ssrc)?;
                                Some(ReceivedTrack {
                                    kind: kind.as_str().to_owned(),
                                    kbps: t.bitrate_kbps,
                                    loss_pct: t.loss_pct,
                                    jitter_ms: t.jitter_ms,
                                })
                            })
                            .collect()
                    },
                };
                // A report that does not fit is dropped; the next one follows.
                let _ = to_client.try_send(ServerMsg::MediaTestReport { report });
            }
        }
    }
}
