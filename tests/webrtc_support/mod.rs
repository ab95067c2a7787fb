//! Helpers shared by the WebRTC tests: in-process signalling between peer wrappers.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use gst::prelude::*;
use streamwire::webrtc::peer::{Peer, PeerConfig, PeerEvent, PeerIo, Role};
use streamwire::webrtc::publisher::Publisher;
use streamwire::webrtc::subscriber::Subscriber;
use tokio::sync::mpsc::UnboundedReceiver;

/// Carry `from`'s outgoing signalling to `to` (a tokio channel plays the signalling server).
pub fn relay(mut from: PeerIo, to: Peer) -> UnboundedReceiver<PeerEvent> {
    tokio::spawn(async move {
        while let Some(msg) = from.signals.recv().await {
            if std::env::var_os("SDP_DUMP").is_some() {
                eprintln!("-> {}: {msg:?}", to.id());
            }
            if let Err(e) = to.apply(msg.into()) {
                panic!("apply failed: {e}");
            }
        }
    });
    from.events
}

/// One local endpoint: a pipeline, optionally a publisher and a subscriber, peers by id.
pub struct Endpoint {
    pub name: String,
    pub pipeline: gst::Pipeline,
    pub publisher: Option<Publisher>,
    pub subscriber: Subscriber,
    pub sub_events: UnboundedReceiver<streamwire::webrtc::subscriber::SubscriberEvent>,
}

impl Endpoint {
    pub fn new(
        name: &str,
        publish: Option<streamwire::webrtc::publisher::PublisherConfig>,
        sub: streamwire::webrtc::subscriber::SubscriberConfig,
    ) -> Self {
        streamwire::gst_init::init().unwrap();
        let pipeline = gst::Pipeline::with_name(name);
        let publisher = publish.map(|c| Publisher::new(&pipeline, c).unwrap());
        let (subscriber, sub_events) = Subscriber::new(sub).unwrap();
        pipeline.set_state(gst::State::Playing).unwrap();
        Endpoint {
            name: name.into(),
            pipeline,
            publisher,
            subscriber,
            sub_events,
        }
    }

    /// Create the peer towards `remote` with `cfg`, attaching publisher and subscriber.
    pub fn peer(&self, remote: &str, cfg: PeerConfig) -> (Peer, PeerIo) {
        let (peer, io) = Peer::new(&self.pipeline, remote, cfg).unwrap();
        if let Some(p) = &self.publisher {
            p.attach(&peer).unwrap();
        }
        self.subscriber.attach(&peer);
        (peer, io)
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

/// Connect endpoint `a` (older, answerer) and `b` (newer, offerer) with each other.
/// Returns (peer in a towards b, peer in b towards a, events of both).
pub fn connect_pair(
    a: &Endpoint,
    b: &Endpoint,
    b_receives: &[streamwire::webrtc::MediaKind],
    tweak_b: impl FnOnce(&mut PeerConfig),
) -> (
    Peer,
    Peer,
    UnboundedReceiver<PeerEvent>,
    UnboundedReceiver<PeerEvent>,
) {
    let (pa, io_a) = a.peer(&b.name, PeerConfig::loopback(Role::Answerer));
    let mut cfg_b = PeerConfig::loopback(Role::Offerer).receiving(b_receives);
    tweak_b(&mut cfg_b);
    let (pb, io_b) = b.peer(&a.name, cfg_b);
    let ev_a = relay(io_a, pb.clone());
    let ev_b = relay(io_b, pa.clone());
    pb.negotiate().unwrap();
    (pa, pb, ev_a, ev_b)
}

/// Wait (bounded) until `cond` holds, polling every 50 ms.
pub async fn wait_for(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    loop {
        if cond() {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Police the packets arriving at `peer`'s ICE transport (before DTLS/SRTP and rtpsession, so
/// they count as network loss) to `kbps` kbit/s with a 10 kB bucket; 0 = unlimited. Emulates a
/// bottleneck link in-process. Returns false if the transport does not exist yet.
pub fn police_incoming(peer: &Peer, kbps: std::sync::Arc<std::sync::atomic::AtomicU32>) -> bool {
    use std::sync::atomic::Ordering;
    let bin = peer.webrtcbin().clone().downcast::<gst::Bin>().unwrap();
    let sources: Vec<gst::Element> = bin
        .iterate_recurse()
        .into_iter()
        .flatten()
        .filter(|e| e.factory().map(|f| f.name() == "nicesrc").unwrap_or(false))
        .collect();
    for nicesrc in &sources {
        let pad = nicesrc.static_pad("src").unwrap();
        let kbps = kbps.clone();
        let bucket = parking_lot::Mutex::new((10_000.0f64, Instant::now()));
        pad.add_probe(
            gst::PadProbeType::BUFFER | gst::PadProbeType::BUFFER_LIST,
            move |_, info| {
                let rate = kbps.load(Ordering::Relaxed);
                let mut b = bucket.lock();
                let now = Instant::now();
                let elapsed = now.duration_since(b.1).as_secs_f64();
                b.1 = now;
                if rate == 0 {
                    b.0 = 10_000.0;
                    return gst::PadProbeReturn::Ok;
                }
                let size = match &info.data {
                    Some(gst::PadProbeData::Buffer(buf)) => buf.size(),
                    Some(gst::PadProbeData::BufferList(l)) => l.calculate_size(),
                    _ => return gst::PadProbeReturn::Ok,
                } as f64;
                b.0 = (b.0 + elapsed * f64::from(rate) * 1000.0 / 8.0).min(10_000.0);
                if b.0 >= size {
                    b.0 -= size;
                    gst::PadProbeReturn::Ok
                } else {
                    gst::PadProbeReturn::Drop
                }
            },
        );
    }
    !sources.is_empty()
}
