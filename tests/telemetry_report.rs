//! A report generated from real recorded data: a live pipeline through `devicetelemetry`,
//! its bus messages batched at consent `necessary`, stored in SQLite, then rendered.

use std::time::{Duration, Instant};

use gst::prelude::*;
use gststreamwire::telemetry::Consent;
use streamwire::telemetry::batcher::Batcher;
use streamwire::telemetry::store::{Store, Tags, now_ms};

fn record(batcher: &mut Batcher, run: Duration) {
    streamwire::gst_init::init().unwrap();
    let pipeline = gst::parse::launch(
        "videotestsrc is-live=true ! video/x-raw,width=320,height=240,framerate=30/1 ! \
         devicetelemetry consent=necessary interval=100 ! fakesink",
    )
    .unwrap();
    let bus = pipeline.bus().unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let deadline = Instant::now() + run;
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
        batcher.push_message(&msg, now_ms());
    }
    pipeline.set_state(gst::State::Null).unwrap();
}

#[test]
fn report_from_a_real_session_contains_its_charts() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("telemetry.db");
    let mut store = Store::open(&db, Duration::from_secs(86400)).unwrap();
    let start = now_ms();
    for peer in ["alice-laptop", "bob-phone"] {
        let mut b = Batcher::new(Consent::Necessary);
        record(&mut b, Duration::from_millis(800));
        let batch = b.take_batch().expect("telemetry was recorded");
        let tags = Tags {
            room: "standup",
            session: peer,
            peer,
            user: peer,
            addr: Some("127.0.0.1".parse().unwrap()),
        };
        let sum = store.ingest(&tags, &batch, now_ms()).unwrap();
        assert!(sum.stored > 10, "{sum:?}");
        assert_eq!(sum.dropped, 0);
    }
    let html = streamwire::report::generate(&store, "standup", start - 1000).unwrap();
    std::fs::write(dir.path().join("report.html"), &html).unwrap();
    // One chart each for bitrate, fps, CPU and memory (the device and stream fields).
    for metric in ["Bitrate", "Frames per second", "CPU", "Memory used"] {
        let marker = format!("<figure data-metric=\"{metric}\"><svg");
        assert!(html.contains(&marker), "no {metric} chart");
    }
    assert_eq!(html.matches("<svg").count(), 4);
    // Both peers are plotted (legend) and summarised (table).
    for peer in ["alice-laptop", "bob-phone"] {
        assert!(html.contains(&format!("{peer} (device)")), "{peer} missing");
        assert!(html.contains(&format!(
            "<tr><td>{peer}</td><td>device</td><td>stream-fps</td>"
        )));
    }
    // The chart lines carry data: a polyline with many points per series.
    assert!(html.contains("<polyline"), "no lines drawn");
    // An unknown room is a clear error, not an empty report.
    let err = streamwire::report::generate(&store, "no-such-room", 0).unwrap_err();
    assert!(err.to_string().contains("no-such-room"), "{err}");
}
