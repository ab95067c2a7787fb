//! Running one media test: the connection, the pipeline and peer, the reports.

use std::time::{Duration, Instant};

use async_tungstenite::tungstenite::Message;
use futures::StreamExt;
use gst::prelude::*;

use super::{
    BANDWIDTH_MAX_LOSS_PCT, MediaTestError, PathReport, TestConfig, TestReport, TestSummary,
};
use crate::encoder::Codec;
use crate::session::ice::IceServers;
use crate::signalling::client::transport::{self, Ws};
use crate::signalling::protocol::media_test::{MEDIA_TEST_PEER, MediaTestKind, ServerReport};
use crate::signalling::protocol::{ClientMsg, PROTOCOL_VERSION, ServerMsg};
use crate::webrtc::peer::{
    ConnectionState, Peer, PeerConfig, PeerEvent, PeerIo, Role, SignalIn, SignalOut,
};
use crate::webrtc::publisher::{AudioSource, Publisher, PublisherConfig, VideoSource};
use crate::webrtc::repair::RepairConfig;
use crate::webrtc::stats::{Direction, PeerStats, StatsSampler, quality_score};
use crate::webrtc::subscriber::{AudioOutput, Subscriber, SubscriberConfig, VideoOutput};
use crate::webrtc::{MediaKind, WebrtcError};

/// Time allowed for the connection and the server's `media_test_ready`.
const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// The far-end reference of an echo test that plays its echo while a microphone captures.
const ECHO_PROBE: &str = "media-test-far-end";
/// How often the echo's arrival is looked for.
const ECHO_POLL: Duration = Duration::from_millis(50);

/// Run a `test` as `cfg` says, calling `on_report` with each report, until the server ends
/// it. See the [module documentation](super) for an example.
pub async fn run(
    test: MediaTestKind,
    cfg: &TestConfig,
    mut on_report: impl FnMut(&TestReport),
) -> Result<TestSummary, MediaTestError> {
    crate::gst_init::init().map_err(|e| WebrtcError::State(format!("GStreamer init: {e}")))?;
    let (mut ws, ready) = tokio::time::timeout(READY_TIMEOUT, connect(test, cfg))
        .await
        .map_err(|_| {
            MediaTestError::Connect(format!(
                "no `media_test_ready` within {} s",
                READY_TIMEOUT.as_secs()
            ))
        })??;
    let (media, io) = Media::build(test, cfg, &ready.ice_servers)?;
    let result = media.drive(test, &mut ws, io, &ready, &mut on_report).await;
    let _ = transport::send(&mut ws, &ClientMsg::Leave {}).await;
    let _ = ws.close(None).await;
    tokio::task::spawn_blocking(move || media.close())
        .await
        .map_err(|e| MediaTestError::Protocol(format!("teardown: {e}")))?;
    result
}

/// What `media_test_ready` said.
struct Ready {
    test_id: String,
    delay_ms: u32,
    ice_servers: Vec<crate::signalling::protocol::IceServer>,
}

async fn connect(test: MediaTestKind, cfg: &TestConfig) -> Result<(Ws, Ready), MediaTestError> {
    let mut ws = transport::open(&cfg.url, cfg.tls.as_ref())
        .await
        .map_err(MediaTestError::Connect)?;
    let first = ClientMsg::MediaTest {
        v: PROTOCOL_VERSION,
        room: cfg.room.clone(),
        token: cfg.token.clone(),
        test,
        seconds: cfg.seconds,
    };
    transport::send(&mut ws, &first)
        .await
        .map_err(MediaTestError::Connect)?;
    loop {
        match next_frame(&mut ws).await? {
            ServerMsg::MediaTestReady {
                test_id,
                delay_ms,
                ice_servers,
                ..
            } => {
                return Ok((
                    ws,
                    Ready {
                        test_id,
                        delay_ms,
                        ice_servers,
                    },
                ));
            }
            ServerMsg::Error { code, message, .. } | ServerMsg::Bye { code, message, .. } => {
                return Err(MediaTestError::Refused { code, message });
            }
            _ => {}
        }
    }
}

/// The next protocol frame; the end of the connection is an error.
async fn next_frame(ws: &mut Ws) -> Result<ServerMsg, MediaTestError> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => {
                return serde_json::from_str(t.as_str()).map_err(|e| {
                    MediaTestError::Protocol(format!("undecodable frame from the server: {e}"))
                });
            }
            Some(Ok(Message::Close(_))) | None => {
                return Err(MediaTestError::Protocol(
                    "the server closed the connection".into(),
                ));
            }
            Some(Err(e)) => return Err(MediaTestError::Connect(e.to_string())),
            Some(Ok(_)) => {}
        }
    }
}

/// The test's pipeline: what is sent, the peer, what is received.
struct Media {
    pipeline: gst::Pipeline,
    publisher: Publisher,
    subscriber: Option<Subscriber>,
    peer: Peer,
}

impl Media {
    fn build(
        test: MediaTestKind,
        cfg: &TestConfig,
        ice: &[crate::signalling::protocol::IceServer],
    ) -> Result<(Media, PeerIo), MediaTestError> {
        let pipeline = gst::Pipeline::with_name("media-test");
        let mut peer_cfg = PeerConfig::new(Role::Offerer);
        peer_cfg.local_addresses = cfg.local_addresses.clone();
        let (servers, problems) = IceServers::resolve(ice, &[], std::time::SystemTime::now());
        for p in problems {
            tracing::warn!(error = %p, "ICE server of the media test skipped");
        }
        peer_cfg.stun_server = servers.stun;
        peer_cfg.turn_servers = servers.turns;
        let publish = match test {
            MediaTestKind::Echo => {
                let mut p = cfg.publish.clone();
                // A played echo reaches the microphone again: cancel it against the playback,
                // or every echo comes back once more.
                if cfg.playback
                    && let AudioSource::Microphone { echo_probe }
                    | AudioSource::MicrophoneElement { echo_probe, .. } = &mut p.audio
                {
                    echo_probe.get_or_insert_with(|| ECHO_PROBE.to_owned());
                }
                p
            }
            MediaTestKind::Probe => {
                // The network's loss, not what repair leaves; rate up to the cap.
                peer_cfg.repair = RepairConfig::off();
                if let Some(cc) = peer_cfg.congestion.as_mut() {
                    cc.max_kbps = cfg.probe_max_kbps;
                    cc.start_kbps = cc.start_kbps.min(cfg.probe_max_kbps);
                    cc.min_kbps = cc.min_kbps.min(cc.start_kbps);
                }
                let defaults = PublisherConfig::default();
                PublisherConfig {
                    video: VideoSource::Noise,
                    audio: AudioSource::None,
                    codec: Codec::Vp8,
                    start_kbps: defaults.start_kbps.min(cfg.probe_max_kbps),
                    ceiling_kbps: cfg.probe_max_kbps,
                    ..defaults
                }
            }
        };
        let mut receive = Vec::new();
        if !matches!(publish.video, VideoSource::None) {
            receive.push(MediaKind::Video);
        }
        if test == MediaTestKind::Echo && !matches!(publish.audio, AudioSource::None) {
            receive.push(MediaKind::Audio);
        }
        peer_cfg.receive = receive;
        let far_end = match &publish.audio {
            AudioSource::Microphone { echo_probe }
            | AudioSource::MicrophoneElement { echo_probe, .. } => echo_probe.clone(),
            _ => None,
        };
        let publisher = Publisher::new(&pipeline, publish)?;
        let subscriber = match test {
            MediaTestKind::Echo => {
                let sub = SubscriberConfig {
                    video: if cfg.playback {
                        VideoOutput::Display
                    } else {
                        VideoOutput::Discard
                    },
                    audio: if cfg.playback {
                        AudioOutput::Play {
                            echo_probe: far_end.clone(),
                        }
                    } else {
                        AudioOutput::Discard
                    },
                    ..SubscriberConfig::default()
                };
                let subscriber = Subscriber::new(sub)?.0;
                // The far-end reference must exist before the microphone's DSP starts.
                subscriber.prepare(pipeline.upcast_ref())?;
                Some(subscriber)
            }
            MediaTestKind::Probe => None,
        };
        pipeline
            .set_state(gst::State::Playing)
            .map_err(|e| WebrtcError::State(format!("media test pipeline: {e}")))?;
        let (peer, io) = Peer::new(&pipeline, MEDIA_TEST_PEER, peer_cfg)?;
        publisher.attach(&peer)?;
        match &subscriber {
            Some(s) => s.attach(&peer),
            None => peer.discard_received(),
        }
        peer.negotiate()?;
        Ok((
            Media {
                pipeline,
                publisher,
                subscriber,
                peer,
            },
            io,
        ))
    }

    /// Signal, collect the reports, until the server ends the test.
    async fn drive(
        &self,
        test: MediaTestKind,
        ws: &mut Ws,
        mut io: PeerIo,
        ready: &Ready,
        on_report: &mut impl FnMut(&TestReport),
    ) -> Result<TestSummary, MediaTestError> {
        let mut sampler = Some(StatsSampler::new());
        let mut up_since: Option<Instant> = None;
        let mut echo_delay_ms: Option<u64> = None;
        let mut poll = tokio::time::interval(ECHO_POLL);
        let mut reports = Vec::new();
        loop {
            tokio::select! {
                signal = io.signals.recv() => {
                    let frame = match signal {
                        Some(SignalOut::Offer { sdp }) => ClientMsg::Offer {
                            to: MEDIA_TEST_PEER.into(),
                            sdp,
                            seq: None,
                        },
                        Some(SignalOut::Ice { mline, candidate }) => ClientMsg::Ice {
                            to: MEDIA_TEST_PEER.into(),
                            candidate,
                            sdp_mline_index: mline,
                            sdp_mid: None,
                            seq: None,
                        },
                        Some(SignalOut::Answer { .. }) => continue,
                        None => return Err(MediaTestError::Protocol("the peer stopped".into())),
                    };
                    transport::send(ws, &frame).await.map_err(MediaTestError::Connect)?;
                }
                event = io.events.recv() => match event {
                    Some(PeerEvent::ConnectionState { state: ConnectionState::Connected, .. }) => {
                        up_since.get_or_insert_with(Instant::now);
                    }
                    Some(PeerEvent::ConnectionState { state: ConnectionState::Failed, .. }) => {
                        return Err(MediaTestError::Protocol(
                            "the media connection to the server failed (ICE or DTLS)".into(),
                        ));
                    }
                    Some(PeerEvent::NegotiationFailed { reason, .. }) => {
                        return Err(MediaTestError::Protocol(format!("negotiation failed: {reason}")));
                    }
                    _ => {}
                },
                _ = poll.tick(), if test == MediaTestKind::Echo && echo_delay_ms.is_none() => {
                    if let (Some(since), Some(sub)) = (up_since, &self.subscriber) {
                        let video = sub.counters(MEDIA_TEST_PEER, MediaKind::Video).frames_received;
                        let audio = sub.counters(MEDIA_TEST_PEER, MediaKind::Audio).samples;
                        if video > 0 || audio > 0 {
                            echo_delay_ms = u64::try_from(since.elapsed().as_millis()).ok();
                        }
                    }
                }
                frame = next_frame(ws) => match frame? {
                    ServerMsg::Answer { sdp, .. } => self.peer.apply(SignalIn::Answer { sdp })?,
                    ServerMsg::Ice { candidate, sdp_mline_index, .. } => {
                        self.peer.apply(SignalIn::Ice { mline: sdp_mline_index, candidate })?;
                    }
                    ServerMsg::MediaTestReport { report } => {
                        let Some(mut s) = sampler.take() else { continue };
                        let (peer, publisher, subscriber) =
                            (self.peer.clone(), self.publisher.clone(), self.subscriber.clone());
                        let (s, stats) = tokio::task::spawn_blocking(move || {
                            let stats = s.sample(&peer, Some(&publisher), subscriber.as_ref());
                            (s, stats)
                        })
                        .await
                        .map_err(|e| MediaTestError::Protocol(format!("stats: {e}")))?;
                        sampler = Some(s);
                        let Some(stats) = stats else { continue };
                        let r = combine(test, &stats, &report, echo_delay_ms, reports.last());
                        on_report(&r);
                        reports.push(r);
                    }
                    ServerMsg::MediaTestEnded { reason, message } => {
                        return Ok(TestSummary {
                            test,
                            test_id: ready.test_id.clone(),
                            delay_ms: ready.delay_ms,
                            end: reason,
                            message,
                            reports,
                        });
                    }
                    ServerMsg::Error { code, message, .. } => {
                        return Err(MediaTestError::Refused { code, message });
                    }
                    _ => {}
                },
            }
        }
    }

    /// Close the peer and stop the pipeline (blocking).
    fn close(self) {
        let _ = self.peer.close();
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

/// This client's stats and the server's report as one report: the uplink from what the
/// server received (and this side's estimate), the downlink from what this side received
/// (and the server's estimate).
fn combine(
    test: MediaTestKind,
    own: &PeerStats,
    server: &ServerReport,
    echo_delay_ms: Option<u64>,
    previous: Option<&TestReport>,
) -> TestReport {
    let worst = |loss: f64, jitter: f64, (l, j): (f64, f64)| (loss.max(l), jitter.max(j));
    let (up_loss, up_jitter) = server.received.iter().fold((0.0, 0.0), |(l, j), t| {
        worst(l, j, (t.loss_pct, t.jitter_ms))
    });
    let received: Vec<_> = own
        .tracks
        .iter()
        .filter(|t| t.direction == Direction::Receive)
        .collect();
    let (down_loss, down_jitter) = received.iter().fold((0.0, 0.0), |(l, j), t| {
        worst(l, j, (t.loss_pct, t.jitter_ms))
    });
    let probe = test == MediaTestKind::Probe;
    let rtt_ms = own.rtt_ms.or(server.rtt_ms);
    let quality = quality_score(up_loss, rtt_ms, up_jitter).min(quality_score(
        down_loss,
        rtt_ms,
        down_jitter,
    ));
    // (A float sum of nothing is -0.0.)
    let up_kbps = server.received.iter().fold(0.0, |a, t| a + t.kbps);
    let down_kbps = received.iter().fold(0.0, |a, t| a + t.bitrate_kbps);
    // The highest clean interval so far.
    let bandwidth = |kbps: f64, loss: f64, before: Option<f64>| {
        let now = (probe && loss < BANDWIDTH_MAX_LOSS_PCT && kbps > 0.0).then_some(kbps);
        match (now, before) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    };
    TestReport {
        test,
        elapsed_ms: server.elapsed_ms,
        rtt_ms,
        uplink: PathReport {
            estimate_kbps: own.estimated_kbps.filter(|_| probe),
            kbps: up_kbps,
            bandwidth_kbps: bandwidth(
                up_kbps,
                up_loss,
                previous.and_then(|p| p.uplink.bandwidth_kbps),
            ),
            loss_pct: up_loss,
            jitter_ms: up_jitter,
        },
        downlink: PathReport {
            estimate_kbps: server.estimate_kbps.filter(|_| probe),
            kbps: down_kbps,
            bandwidth_kbps: bandwidth(
                down_kbps,
                down_loss,
                previous.and_then(|p| p.downlink.bandwidth_kbps),
            ),
            loss_pct: down_loss,
            jitter_ms: down_jitter,
        },
        echo_delay_ms,
        quality,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signalling::protocol::media_test::ReceivedTrack;

    #[test]
    fn the_worse_direction_sets_the_quality() {
        let own = PeerStats {
            peer: MEDIA_TEST_PEER.into(),
            rtt_ms: Some(20.0),
            send_kbps: 470.0,
            recv_kbps: 1800.0,
            estimated_kbps: Some(480),
            quality: 5,
            tracks: Vec::new(),
        };
        let server = ServerReport {
            elapsed_ms: 3000,
            estimate_kbps: Some(1900),
            sent_kbps: 1800.0,
            rtt_ms: Some(21.0),
            received: vec![ReceivedTrack {
                kind: "video".into(),
                kbps: 450.0,
                loss_pct: 4.0,
                jitter_ms: 3.0,
            }],
        };
        let r = combine(MediaTestKind::Probe, &own, &server, None, None);
        assert_eq!(r.uplink.estimate_kbps, Some(480));
        // 4 % loss: not a clean interval, no bandwidth yet; a clean one counts, and the
        // highest clean one stays.
        assert_eq!(r.uplink.bandwidth_kbps, None);
        let clean = ServerReport {
            received: vec![ReceivedTrack {
                loss_pct: 0.5,
                ..server.received[0].clone()
            }],
            ..server.clone()
        };
        let r2 = combine(MediaTestKind::Probe, &own, &clean, None, Some(&r));
        assert_eq!(r2.uplink.bandwidth_kbps, Some(450.0));
        let slower = ServerReport {
            received: vec![ReceivedTrack {
                kbps: 300.0,
                ..clean.received[0].clone()
            }],
            ..clean.clone()
        };
        let r3 = combine(MediaTestKind::Probe, &own, &slower, None, Some(&r2));
        assert_eq!(r3.uplink.bandwidth_kbps, Some(450.0));
        assert_eq!(r.downlink.estimate_kbps, Some(1900));
        assert_eq!((r.uplink.loss_pct, r.uplink.kbps), (4.0, 450.0));
        assert_eq!(r.rtt_ms, Some(20.0));
        // 4 % loss up costs two points; the clean downlink does not lift it.
        assert_eq!(r.quality, 3);
        // Nothing received yet is 0, not -0.
        let empty = ServerReport {
            received: Vec::new(),
            ..server.clone()
        };
        let r0 = combine(MediaTestKind::Probe, &own, &empty, None, None);
        assert!(r0.uplink.kbps == 0.0 && r0.uplink.kbps.is_sign_positive());
        // An echo test reports no estimates.
        let e = combine(MediaTestKind::Echo, &own, &server, Some(2600), None);
        assert_eq!(
            (e.uplink.estimate_kbps, e.downlink.estimate_kbps),
            (None, None)
        );
        assert_eq!(e.echo_delay_ms, Some(2600));
    }
}
