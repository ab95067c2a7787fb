//! The client batcher at each consent level, fed by a real `devicetelemetry` pipeline that
//! posts everything (consent `full` on the element): the batcher, not the producer, decides.

use std::time::{Duration, Instant};

use gst::prelude::*;
use gststreamwire::telemetry::{Class, Consent, MESSAGE_NAME, any_field};
use streamwire::signalling::protocol::telemetry::Source;
use streamwire::telemetry::batcher::{Batcher, TrackSample};

/// Runs a live pipeline through `devicetelemetry consent=full interval=100` for `run`,
/// returning the bus messages it posted.
fn messages(run: Duration) -> Vec<gst::Message> {
    streamwire::gst_init::init().unwrap();
    let pipeline = gst::parse::launch(
        "videotestsrc is-live=true ! video/x-raw,width=320,height=240,framerate=30/1 ! \
         devicetelemetry consent=full interval=100 ! fakesink",
    )
    .unwrap();
    let bus = pipeline.bus().unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let deadline = Instant::now() + run;
    let mut out = Vec::new();
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        let Some(msg) = bus.timed_pop_filtered(
            gst::ClockTime::from_nseconds(left.as_nanos() as u64),
            &[gst::MessageType::Element, gst::MessageType::Error],
        ) else {
            break;
        };
        if let gst::MessageView::Error(e) = msg.view() {
            panic!("{}: {:?}", e.error(), e.debug());
        }
        out.push(msg);
    }
    pipeline.set_state(gst::State::Null).unwrap();
    out
}

fn producer_keys(msgs: &[gst::Message]) -> Vec<String> {
    let mut keys: Vec<String> = msgs
        .iter()
        .filter_map(|m| match m.view() {
            gst::MessageView::Element(e) => e.structure().map(|s| s.to_owned()),
            _ => None,
        })
        .filter(|s| s.name() == MESSAGE_NAME)
        .flat_map(|s| s.fields().map(|f| f.to_string()).collect::<Vec<_>>())
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

#[test]
fn batcher_sends_only_what_the_consent_allows() {
    let msgs = messages(Duration::from_millis(700));
    let produced = producer_keys(&msgs);
    // The producer posted optional fields: the filtering below is doing real work.
    assert!(
        produced.iter().any(|k| k == "process-memory"),
        "{produced:?}"
    );
    assert!(produced.iter().any(|k| k == "cpu-usage"), "{produced:?}");
    let telemetry_msgs = msgs
        .iter()
        .filter(|m| {
            matches!(m.view(), gst::MessageView::Element(e)
                if e.structure().is_some_and(|s| s.name() == MESSAGE_NAME))
        })
        .count();
    assert!(telemetry_msgs >= 3, "{telemetry_msgs} telemetry messages");

    let stats = TrackSample {
        bitrate: Some(1.2e6),
        fps: Some(30.0),
        rtt_ms: Some(40.0),
        packet_loss_pct: Some(0.5),
        jitter_ms: Some(3.0),
        quality_score: None,
        nack_count: Some(4.0),
    };

    // none: nothing at all.
    let mut none = Batcher::new(Consent::None);
    for m in &msgs {
        none.push_message(m, 1_000);
    }
    none.push_track_sample("video0", &stats, 1_000);
    assert!(none.is_empty());
    assert!(none.take_batch().is_none());

    // necessary: records from every message, no optional field anywhere.
    let mut nec = Batcher::new(Consent::Necessary);
    for m in &msgs {
        nec.push_message(m, 1_000);
    }
    nec.push_track_sample("video0", &stats, 1_000);
    let batch = nec.take_batch().unwrap();
    assert_eq!(batch.records.len(), telemetry_msgs + 1);
    let json = serde_json::to_string(&batch).unwrap();
    for r in &batch.records {
        assert!(!r.fields.is_empty());
        for k in r.fields.keys() {
            let f = any_field(k).unwrap_or_else(|| panic!("undisclosed key {k}"));
            assert_eq!(f.class, Class::Necessary, "{k} sent at necessary");
        }
    }
    for optional in [
        "process-memory",
        "process-cpu-usage",
        "load-average",
        "cpu-frequency",
        "nack-count",
    ] {
        assert!(
            !json.contains(optional),
            "{optional} in a necessary batch: {json}"
        );
    }
    assert!(json.contains("\"cpu-usage\""));
    assert!(json.contains("\"quality-score\""));
    assert!(!json.contains("\"consent\":\"full\""));

    // full: the optional fields the producer posted come through.
    let mut full = Batcher::new(Consent::Full);
    for m in &msgs {
        full.push_message(m, 1_000);
    }
    full.push_track_sample("video0", &stats, 1_000);
    let batch = full.take_batch().unwrap();
    let device_keys: Vec<&String> = batch
        .records
        .iter()
        .filter(|r| r.source == Source::Device)
        .flat_map(|r| r.fields.keys())
        .collect();
    assert!(device_keys.iter().any(|k| *k == "process-memory"));
    let peer = batch
        .records
        .iter()
        .find(|r| r.source == Source::Peer)
        .unwrap();
    assert!(peer.fields.contains_key("nack-count"));
    assert_eq!(peer.track, "video0");
}

#[test]
fn forged_keys_are_never_batched_and_lowering_consent_strips_pending() {
    streamwire::gst_init::init().unwrap();
    let s = gst::Structure::builder(MESSAGE_NAME)
        .field("consent", "full")
        .field("cpu-usage", 12.5f64)
        .field("process-memory", 1000u64)
        .field("ip-address", "192.0.2.1")
        .field("mac-address", "00:11:22:33:44:55")
        .build();
    let mut b = Batcher::new(Consent::Full);
    b.push_structure(&s, 5);
    let before = serde_json::to_string(&b.take_batch().unwrap()).unwrap();
    assert!(before.contains("process-memory"));
    // The structure's own `consent` entry is not a field either.
    assert!(!before.contains("\"fields\":{\"consent\""), "{before}");
    for forged in ["ip-address", "192.0.2.1", "mac-address", "00:11:22"] {
        assert!(!before.contains(forged), "{forged} batched: {before}");
    }
    b.push_structure(&s, 6);
    b.set_consent(Consent::Necessary);
    let batch = b.take_batch().unwrap();
    assert_eq!(batch.records[0].fields.len(), 1);
    assert!(batch.records[0].fields.contains_key("cpu-usage"));
    b.push_structure(&s, 7);
    b.set_consent(Consent::None);
    assert!(b.is_empty());
    assert!(b.take_batch().is_none());
}

#[test]
fn webrtc_engine_stats_become_one_record_per_track() {
    use streamwire::signalling::protocol::telemetry::FieldValue;
    use streamwire::webrtc::MediaKind;
    use streamwire::webrtc::stats::{Direction, PeerStats, TrackStats};
    let track = |kind, direction, ssrc, fps| TrackStats {
        kind: Some(kind),
        direction,
        ssrc,
        codec: "video/VP8".into(),
        bitrate_kbps: 800.0,
        loss_pct: 6.5,
        jitter_ms: 4.0,
        fps,
        width: Some(640),
        height: Some(480),
        repair: Default::default(),
        playout: Default::default(),
    };
    let stats = PeerStats {
        peer: "p2".into(),
        rtt_ms: Some(15.0),
        send_kbps: 800.0,
        recv_kbps: 800.0,
        estimated_kbps: Some(1200),
        quality: 3,
        tracks: vec![
            track(MediaKind::Video, Direction::Send, 11, Some(30.0)),
            track(MediaKind::Audio, Direction::Receive, 22, None),
        ],
    };
    let mut none = Batcher::new(Consent::None);
    none.push_webrtc_stats(&stats, 10);
    assert!(none.take_batch().is_none());

    let mut b = Batcher::new(Consent::Necessary);
    b.push_webrtc_stats(&stats, 10);
    let batch = b.take_batch().unwrap();
    let tracks: Vec<&str> = batch.records.iter().map(|r| r.track.as_str()).collect();
    assert_eq!(tracks, ["p2/video-send-11", "p2/audio-recv-22"]);
    let v = &batch.records[0].fields;
    assert_eq!(v["bitrate"], FieldValue::Num(800_000.0));
    assert_eq!(v["fps"], FieldValue::Num(30.0));
    assert_eq!(v["rtt"], FieldValue::Num(15.0));
    assert_eq!(v["packet-loss"], FieldValue::Num(6.5));
    assert_eq!(v["quality-score"], FieldValue::Num(60.0));
    assert!(!batch.records[1].fields.contains_key("fps"));
}
