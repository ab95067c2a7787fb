//! Loss repair between real webrtcbin peers: NACK/RTX, RED and ULPFEC are negotiated both ways,
//! and under 5 % network-level UDP loss (nftables, in a network namespace the test makes for
//! itself) the subscriber, with its default (adaptive) jitter buffer, still decodes at least
//! 98 % of the frames while the stats count the NACKs and retransmissions.
//!
//! The lossy test re-runs itself alone in a fresh namespace ([`netns_support::isolated`]), so
//! its nftables rule drops only its own packets (not those of tests running beside it). Needs
//! root, `unshare` and `nft` (scripts/packages.sh).
//! Run: unshare -n sh -c 'ip link set lo up; cargo test --test webrtc_resilience'

mod netns_support;
mod webrtc_support;

use std::time::Duration;

use streamwire::session::latency::{read_stamp, stamp_frames};
use streamwire::webrtc::MediaKind;
use streamwire::webrtc::peer::{Peer, PeerConfig, PeerIo, Role, SignalOut};
use streamwire::webrtc::publisher::{AudioSource, PublisherConfig};
use streamwire::webrtc::stats::{Direction, StatsSampler};
use streamwire::webrtc::subscriber::SubscriberConfig;
use webrtc_support::{Endpoint, wait_for};

/// Carry `from`'s signalling to `to`, remembering every SDP.
fn relay_recording(
    mut from: PeerIo,
    to: Peer,
    sdps: std::sync::Arc<parking_lot::Mutex<Vec<String>>>,
) {
    tokio::spawn(async move {
        while let Some(msg) = from.signals.recv().await {
            if let SignalOut::Offer { sdp } | SignalOut::Answer { sdp } = &msg {
                sdps.lock().push(sdp.clone());
            }
            to.apply(msg.into()).expect("apply");
        }
    });
}

fn video_sections(sdp: &str) -> Vec<String> {
    sdp.split("m=")
        .filter(|m| m.starts_with("video"))
        .map(str::to_owned)
        .collect()
}

/// Both directions: the offerer sends video and receives video, so the offer and the answer
/// each carry a sending and a receiving video m-line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offer_and_answer_carry_rtx_red_and_ulpfec_both_ways() {
    let publish = || {
        Some(PublisherConfig {
            audio: AudioSource::None,
            ..PublisherConfig::default()
        })
    };
    let a = Endpoint::new("answerer", publish(), SubscriberConfig::default());
    let b = Endpoint::new("offerer", publish(), SubscriberConfig::default());
    let (pa, io_a) = a.peer("offerer", PeerConfig::loopback(Role::Answerer));
    let (pb, io_b) = b.peer(
        "answerer",
        PeerConfig::loopback(Role::Offerer).receiving(&[MediaKind::Video]),
    );
    let sdps = std::sync::Arc::new(parking_lot::Mutex::new(Vec::new()));
    relay_recording(io_a, pb.clone(), sdps.clone());
    relay_recording(io_b, pa.clone(), sdps.clone());
    pb.negotiate().unwrap();
    wait_for("video both ways", Duration::from_secs(20), || {
        a.subscriber.counters("offerer", MediaKind::Video).decoded > 10
            && b.subscriber.counters("answerer", MediaKind::Video).decoded > 10
    })
    .await;
    let sdps = sdps.lock().clone();
    assert_eq!(sdps.len(), 2, "one offer, one answer");
    for (what, sdp) in ["offer", "answer"].iter().zip(&sdps) {
        let videos = video_sections(sdp);
        assert_eq!(videos.len(), 2, "{what}: two video m-lines\n{sdp}");
        for m in &videos {
            let vp8 = m
                .lines()
                .find_map(|l| l.strip_prefix("a=rtpmap:")?.strip_suffix(" VP8/90000"))
                .unwrap_or_else(|| panic!("{what}: VP8 in\n{m}"));
            assert!(
                m.contains(&format!(" apt={vp8}")),
                "{what}: an rtx payload type for VP8 ({vp8})\n{m}"
            );
            assert!(m.contains(" red/90000"), "{what}: RED\n{m}");
            assert!(m.contains(" ulpfec/90000"), "{what}: ULPFEC\n{m}");
            assert!(m.contains(" rtx/90000"), "{what}: RTX\n{m}");
            assert!(
                m.contains(&format!("a=rtcp-fb:{vp8} nack")),
                "{what}: NACK\n{m}"
            );
        }
        // The sending side names its RTX SSRC (RFC 5576 FID group).
        assert!(
            sdp.contains("a=ssrc-group:FID "),
            "{what}: FID group\n{sdp}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_percent_loss_is_repaired() {
    if !netns_support::isolated("five_percent_loss_is_repaired") {
        return;
    }
    streamwire::impair::loopback_up().unwrap();
    streamwire::impair::random_loss(5).unwrap();

    let receiver = Endpoint::new("viewer", None, SubscriberConfig::default());
    let sender = Endpoint::new(
        "camera",
        Some(PublisherConfig {
            width: 640,
            height: 360,
            start_kbps: 800,
            ceiling_kbps: 1200,
            keyframe_interval: 3000,
            ..PublisherConfig::default()
        }),
        SubscriberConfig::default(),
    );
    // The default (adaptive) jitter buffer.
    // The impairment drops UDP: a TCP candidate pair (ICE-TCP is on by default) would carry
    // the media without a single loss and measure nothing.
    let udp_only = |role| PeerConfig {
        ice_tcp: false,
        ..PeerConfig::loopback(role)
    };
    let (pv, io_v) = receiver.peer("camera", udp_only(Role::Answerer));
    let (pc, io_c) = sender.peer("viewer", udp_only(Role::Offerer));
    // Frames are counted by number: the publisher paints a counter into every raw frame and
    // the receiver reads it back from each decoded frame, so a change of the jitter buffer's
    // latency during the window (frames held back or released) does not count as loss.
    let painted = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    {
        let painted = painted.clone();
        let raw = sender
            .publisher
            .as_ref()
            .and_then(|p| p.raw_video_pad())
            .expect("raw video pad");
        stamp_frames(&raw, gst::SystemClock::obtain(), move |n, _| {
            painted.store(n, std::sync::atomic::Ordering::Relaxed);
        });
    }
    let readable = std::sync::Arc::new(parking_lot::Mutex::new(std::collections::BTreeSet::new()));
    {
        let readable = readable.clone();
        receiver.subscriber.on_decoded_video(move |_, buf, caps| {
            // 0: a decoded frame whose counter could not be read.
            readable.lock().insert(read_stamp(buf, caps).unwrap_or(0));
        });
    }
    let _ev = webrtc_support::relay(io_v, pc.clone());
    let _ec = webrtc_support::relay(io_c, pv.clone());
    pc.negotiate().unwrap();
    let decoded = || {
        receiver
            .subscriber
            .counters("camera", MediaKind::Video)
            .decoded
    };
    wait_for("first frames", Duration::from_secs(40), || decoded() > 30).await;
    let t_first = std::time::Instant::now();
    let trail = watch_receive_path(&receiver.pipeline, t_first);
    {
        let (r, s, p) = (
            pv.webrtcbin().clone(),
            pc.webrtcbin().clone(),
            sender.publisher.clone().unwrap(),
        );
        let sub = receiver.subscriber.clone();
        std::thread::spawn(move || {
            for i in 0..64 {
                let (enc, key) = p.video_frame_counts();
                let dec = sub.counters("camera", MediaKind::Video).decoded;
                eprintln!(
                    "t {:5} enc {enc} key {key} dec {dec} {}",
                    i * 250,
                    timeline_line(&r, &s)
                );
                std::thread::sleep(Duration::from_millis(250));
            }
        });
    }
    // Settle (the congestion controller's first reaction to the loss), then measure.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut recv_stats = StatsSampler::new();
    let mut send_stats = StatsSampler::new();
    let publisher = sender.publisher.clone().unwrap();
    let _ = recv_stats.sample(&pv, None, Some(&receiver.subscriber));
    let _ = send_stats.sample(&pc, Some(&publisher), None);
    eprintln!("window opens at {} ms", t_first.elapsed().as_millis());
    eprintln!(
        "start: receiver\n{}sender\n{}",
        internals(pv.webrtcbin()),
        internals(pc.webrtcbin())
    );
    let depay0 = trail.lock().depay_frames;
    let recv0 = receiver
        .subscriber
        .counters("camera", MediaKind::Video)
        .frames_received;
    let (enc0, key0) = publisher.video_frame_counts();
    let first = painted.load(std::sync::atomic::Ordering::Relaxed) + 1;
    tokio::time::sleep(Duration::from_secs(12)).await;
    let last = painted.load(std::sync::atomic::Ordering::Relaxed);
    let recv1 = receiver
        .subscriber
        .counters("camera", MediaKind::Video)
        .frames_received;
    {
        let t = trail.lock();
        let next_key = |at: f64| {
            t.depay_keyframes
                .iter()
                .find(|k| **k >= at)
                .map(|k| format!("{:.0}", k - at))
                .unwrap_or_else(|| "-".into())
        };
        let lost: Vec<String> = t
            .lost_events
            .iter()
            .map(|l| format!("{l:.0}(+{})", next_key(*l)))
            .collect();
        eprintln!(
            "end: receiver\n{}sender\n{}frames received at the depayloader {}, out of it {}, \
             keyframes out {:?}, keyframe requests {:?} (ms since the first frames)\nlost events (ms, +ms to next keyframe) {lost:?}",
            internals(pv.webrtcbin()),
            internals(pc.webrtcbin()),
            recv1 - recv0,
            t.depay_frames - depay0,
            t.depay_keyframes
                .iter()
                .map(|k| k.round())
                .collect::<Vec<_>>(),
            t.keyframe_requests
                .iter()
                .map(|k| k.round())
                .collect::<Vec<_>>(),
        );
    }
    let (enc1, key1) = publisher.video_frame_counts();
    // The window's last frames are still on their way (the jitter buffer holds at most
    // MAX_JITTER_LATENCY_MS).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let encoded = u64::from(last.saturating_sub(first) + 1);
    let got = readable.lock().range(first..=last).count() as u64;
    {
        let seen = readable.lock();
        let missing: Vec<u32> = (first..=last).filter(|n| !seen.contains(n)).collect();
        eprintln!(
            "window: frames {first}..={last}, missing {missing:?}, a decoded frame unreadable: {}",
            seen.contains(&0)
        );
    }
    let pct = 100.0 * got as f64 / encoded as f64;
    eprintln!("publisher: {} frames encoded in the window", enc1 - enc0);
    let rs = recv_stats
        .sample(&pv, None, Some(&receiver.subscriber))
        .expect("receiver stats");
    let ss = send_stats
        .sample(&pc, Some(&publisher), None)
        .expect("sender stats");
    if let Some(raw) = pv.raw_stats(Duration::from_secs(5)) {
        for (name, v) in raw.iter() {
            if let Ok(s) = v.get::<gst::Structure>()
                && (s.name().contains("candidate-pair") || s.name().contains("local-candidate"))
            {
                eprintln!("{name}: {s}");
            }
        }
    }
    let rc = pv.repair_counters();
    let sc = pc.repair_counters();
    eprintln!(
        "encoded {encoded} decoded {got} ({pct:.1} %), keyframes {}\nreceiver {rs:#?}\nsender {ss:#?}\nreceiver repair {rc:#?}\nsender repair {sc:#?}",
        key1 - key0
    );
    assert!(encoded > 250, "the publisher kept encoding ({encoded})");
    assert!(
        pct >= 98.0,
        "decoded {pct:.1} % of the frames under 5 % loss"
    );

    let rv = rs
        .tracks
        .iter()
        .find(|t| t.direction == Direction::Receive && t.kind == Some(MediaKind::Video))
        .expect("received video track");
    let sv = ss
        .tracks
        .iter()
        .find(|t| t.direction == Direction::Send && t.kind == Some(MediaKind::Video))
        .expect("sent video track");
    assert!(rv.repair.nacks > 0, "receiver sent NACKs: {rv:?}");
    assert!(rv.repair.retransmitted > 0, "receiver got RTX: {rv:?}");
    assert!(rv.repair.recovered > 0, "packets repaired: {rv:?}");
    assert!(sv.repair.nacks > 0, "sender got NACKs: {sv:?}");
    assert!(sv.repair.retransmitted > 0, "sender sent RTX: {sv:?}");
    // The network loss the receiver measured is near the rule's 5 % (two-way: NACKs and
    // retransmissions are lost too, so repair is not perfect, but most is repaired).
    assert!(rc.received.rtx_packets > 0 && sc.sent.rtx_packets > 0);
    assert!(sc.rtx_requests_received > 0);
    // NACK/RTX alone: ULPFEC is negotiated but sends nothing by default (fec_max_pct 0).
    assert!(
        sc.fec_percentage.iter().all(|p| *p == 0),
        "no FEC by default: {:?}",
        sc.fec_percentage
    );
}

/// What the receive path did with the frames, counted in the test from outside the library:
/// packets the jitter buffer gave up (`GstRTPPacketLost`), frames and keyframes leaving the
/// depayloader, keyframe requests it sent upstream, and when each happened (ms).
#[derive(Debug, Default)]
struct Trail {
    lost_events: Vec<f64>,
    depay_frames: u64,
    depay_keyframes: Vec<f64>,
    keyframe_requests: Vec<f64>,
}

/// Watch the video depayloaders and decoders under `pipeline` (receive side).
fn watch_receive_path(
    pipeline: &gst::Pipeline,
    t0: std::time::Instant,
) -> std::sync::Arc<parking_lot::Mutex<Trail>> {
    use gst::prelude::*;
    let trail = std::sync::Arc::new(parking_lot::Mutex::new(Trail::default()));
    let ms = move || t0.elapsed().as_secs_f64() * 1000.0;
    for e in pipeline.iterate_recurse().into_iter().flatten() {
        let is_depay = e.factory().is_some_and(|f| f.name() == "rtpvp8depay");
        if !is_depay {
            continue;
        }
        let (Some(sink), Some(src)) = (e.static_pad("sink"), e.static_pad("src")) else {
            continue;
        };
        let t = trail.clone();
        sink.add_probe(gst::PadProbeType::EVENT_DOWNSTREAM, move |_, info| {
            if let Some(ev) = info.event()
                && ev
                    .structure()
                    .is_some_and(|s| s.name() == "GstRTPPacketLost")
            {
                t.lock().lost_events.push(ms());
            }
            gst::PadProbeReturn::Ok
        });
        let t = trail.clone();
        sink.add_probe(gst::PadProbeType::EVENT_UPSTREAM, move |_, info| {
            if let Some(ev) = info.event()
                && gst_video::UpstreamForceKeyUnitEvent::parse(ev).is_ok()
            {
                t.lock().keyframe_requests.push(ms());
            }
            gst::PadProbeReturn::Ok
        });
        let t = trail.clone();
        src.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            if let Some(b) = info.buffer() {
                let mut t = t.lock();
                t.depay_frames += 1;
                if !b.flags().contains(gst::BufferFlags::DELTA_UNIT) {
                    t.depay_keyframes.push(ms());
                }
            }
            gst::PadProbeReturn::Ok
        });
    }
    trail
}

/// The repair elements' own statistics under `bin`, one line each.
fn internals(bin: &gst::Element) -> String {
    use gst::prelude::*;
    let Ok(bin) = bin.clone().downcast::<gst::Bin>() else {
        return String::new();
    };
    let mut out = String::new();
    for e in bin.iterate_recurse().into_iter().flatten() {
        let Some(f) = e.factory() else { continue };
        let props: &[&str] = match f.name().as_str() {
            "rtpjitterbuffer" => &[
                "latency",
                "stats",
                "rtx-delay",
                "rtx-min-retry-timeout",
                "rtx-retry-timeout",
                "rtx-retry-period",
                "rtx-max-retries",
                "rtx-deadline",
                "do-retransmission",
                "do-lost",
            ],
            "rtprtxsend" => &[
                "num-rtx-requests",
                "num-rtx-packets",
                "max-size-time",
                "max-size-packets",
                "payload-type-map",
            ],
            "rtprtxreceive" => &[
                "num-rtx-requests",
                "num-rtx-packets",
                "num-rtx-assoc-packets",
                "payload-type-map",
            ],
            _ => continue,
        };
        out.push_str(&format!("{}:", e.name()));
        for p in props {
            if e.find_property(p).is_some() {
                let v = e.property_value(p);
                let s = v
                    .get::<Option<gst::Structure>>()
                    .ok()
                    .flatten()
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| format!("{v:?}"));
                out.push_str(&format!(" {p}={s}"));
            }
        }
        out.push('\n');
    }
    out
}

/// One line of the repair elements' counters (video jitter buffer, RTX both ends) for a
/// timeline.
fn timeline_line(receiver: &gst::Element, sender: &gst::Element) -> String {
    use gst::prelude::*;
    let mut out = String::new();
    let all = |bin: &gst::Element| -> Vec<gst::Element> {
        bin.clone()
            .downcast::<gst::Bin>()
            .map(|b| b.iterate_recurse().into_iter().flatten().collect())
            .unwrap_or_default()
    };
    for e in all(receiver) {
        match e.factory().map(|f| f.name().to_string()).as_deref() {
            Some("rtpjitterbuffer") if e.property::<bool>("do-retransmission") => {
                let s = e.property::<gst::Structure>("stats");
                let g = |k: &str| s.get::<u64>(k).unwrap_or(0);
                out.push_str(&format!(
                    "jb lat {} pushed {} lost {} late {} rtx {} ok {} rtt {:.1} ",
                    e.property::<u32>("latency"),
                    g("num-pushed"),
                    g("num-lost"),
                    g("num-late"),
                    g("rtx-count"),
                    g("rtx-success-count"),
                    g("rtx-rtt") as f64 / 1e6
                ));
            }
            Some("rtprtxreceive") => out.push_str(&format!(
                "rx req {} got {} ",
                e.property::<u32>("num-rtx-requests"),
                e.property::<u32>("num-rtx-assoc-packets")
            )),
            _ => {}
        }
    }
    for e in all(sender) {
        if e.factory().is_some_and(|f| f.name() == "rtprtxsend") {
            out.push_str(&format!(
                "tx req {} sent {} ",
                e.property::<u32>("num-rtx-requests"),
                e.property::<u32>("num-rtx-packets")
            ));
        }
    }
    out
}
