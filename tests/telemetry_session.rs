//! A `Session` forwards its telemetry by itself: the `devicetelemetry` element in its pipeline
//! and the per-peer WebRTC statistics, batched at the app's consent, sent through its
//! signalling client to a real server with a real SQLite store; consent changes at runtime;
//! batches are split under the server's frame limit without losing a record.
//!
//! Loopback only: `unshare -n sh -c 'ip link set lo up; cargo test --test telemetry_session'`.

mod common;
mod session_support;

use std::collections::BTreeMap;
use std::time::Duration;

use gst::prelude::*;
use gststreamwire::telemetry::{Class, Consent, any_field};
use session_support::{Joined, join, small, wait_for};
use streamwire::encoder::Codec;
use streamwire::server::TelemetryConfig as StoreConfig;
use streamwire::session::SessionEvent;
use streamwire::session::telemetry::TelemetryConfig;
use streamwire::signalling::client::{Client, ClientConfig, Event};
use streamwire::signalling::protocol::Grant;
use streamwire::signalling::protocol::telemetry::{Batch, FieldValue, Record, Source};

const T: Duration = Duration::from_secs(30);

/// Sum of the server's `telemetry_ack`s seen by a session: (acks, stored, dropped).
fn acks(j: &Joined) -> (u64, u64, u64) {
    j.events().iter().fold((0, 0, 0), |(n, s, d), e| match e {
        SessionEvent::ServiceReply(Event::TelemetryAck { stored, dropped }) => {
            (n + 1, s + stored, d + dropped)
        }
        _ => (n, s, d),
    })
}

fn server_errors(j: &Joined) -> Vec<String> {
    j.events()
        .iter()
        .filter_map(|e| match e {
            SessionEvent::Error { context, detail } => Some(format!("{context}: {detail}")),
            _ => None,
        })
        .collect()
}

fn consent_of(el: &gst::Element) -> String {
    el.property_value("consent")
        .serialize()
        .map(|s| s.to_string())
        .unwrap()
}

fn count(db: &std::path::Path, sql: &str) -> i64 {
    let c = rusqlite::Connection::open(db).unwrap();
    c.query_row(sql, [], |r| r.get(0)).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_forwards_device_and_webrtc_telemetry_split_under_the_frame_limit() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("telemetry.db");
    let mut cfg = common::config();
    cfg.telemetry = Some(StoreConfig::new(db.clone()));
    // Room for SDP offers, but not for one interval's batch (25 device records of ~400 bytes
    // plus the per-track statistics).
    cfg.limits.max_frame_bytes = 8 * 1024;
    let srv = common::start(cfg).await;
    let tele = |c: Consent| {
        move |s: &mut streamwire::session::SessionConfig| {
            s.telemetry = TelemetryConfig {
                consent: c,
                interval: Duration::from_millis(5000),
                sample_interval: Duration::from_millis(200),
                device: true,
            };
        }
    };
    let alice = join(
        &srv.url,
        "tr",
        "alice",
        Some(small(160, 120, Codec::Vp8)),
        tele(Consent::Full),
    )
    .await;
    let bob = join(
        &srv.url,
        "tr",
        "bob",
        Some(small(160, 120, Codec::Vp8)),
        tele(Consent::Full),
    )
    .await;
    assert_eq!(alice.session.consent(), Consent::Full);
    let el = alice
        .session
        .telemetry_element()
        .expect("the session runs a devicetelemetry element")
        .clone();
    assert_eq!(el.property::<u32>("interval"), 200);
    assert_eq!(consent_of(&el), "full");
    // The device element runs in its own pipeline: the session pipeline's bus stays the
    // application's (its messages are still there to be read).
    assert!(
        alice.session.pipeline().bus().unwrap().pop().is_some(),
        "session bus drained by telemetry"
    );

    // Peer stats arrive every 2 s; wait until both sessions have sent batches with them.
    wait_for("peer statistics forwarded by both sessions", T, || {
        count(
            &db,
            "SELECT count(DISTINCT s.user_id) FROM records r JOIN sessions s ON s.id = r.session_id
             WHERE r.source = 'peer' AND r.field = 'bitrate' AND r.num > 0",
        ) == 2
    })
    .await;
    // Batches were split: more frames than one per interval, each under the limit (the server
    // would have answered `frame_too_large`, which the session reports as an error).
    wait_for("a batch split into several frames", T, || {
        let c = alice.session.telemetry_counters();
        c.frames > c.batches
    })
    .await;
    let c = alice.session.telemetry_counters();
    assert_eq!(c.too_large, 0);
    assert!(
        c.records > c.frames,
        "several records per frame, still split: {c:?}"
    );

    // Every field the client sent is stored: the sum of the acks equals what was sent.
    alice.session.flush_telemetry();
    let sent = alice.session.telemetry_counters();
    wait_for("every frame acknowledged", T, || {
        acks(&alice).0 == alice.session.telemetry_counters().frames
    })
    .await;
    let (n, stored, dropped) = acks(&alice);
    assert_eq!(n, sent.frames);
    assert_eq!(stored, sent.fields, "no field lost: {sent:?}");
    assert_eq!(dropped, 0);
    assert!(
        server_errors(&alice).is_empty(),
        "{:?}",
        server_errors(&alice)
    );
    let rows = count(
        &db,
        "SELECT count(*) FROM records r JOIN sessions s ON s.id = r.session_id WHERE s.user_id = 'alice'",
    );
    assert_eq!(rows as u64, sent.fields);
    // Device fields (necessary and optional) and per-peer stats, per track.
    for (field, source) in [
        ("cpu-usage", "device"),
        ("memory-used", "device"),
        ("process-memory", "device"),
        ("fps", "peer"),
        ("rtt", "peer"),
        ("quality-score", "peer"),
    ] {
        let n = count(
            &db,
            &format!(
                "SELECT count(*) FROM records r JOIN sessions s ON s.id = r.session_id
                 WHERE s.user_id = 'alice' AND r.field = '{field}' AND r.source = '{source}'"
            ),
        );
        assert!(n > 0, "no {source} field {field}");
    }
    let tracks = count(
        &db,
        "SELECT count(DISTINCT track) FROM records r JOIN sessions s ON s.id = r.session_id
         WHERE s.user_id = 'alice' AND r.source = 'peer'",
    );
    assert!(tracks >= 2, "send and receive tracks, got {tracks}");

    // Consent down to `none` at runtime: the element reads nothing, nothing more is sent.
    alice.session.set_consent(Consent::None);
    assert_eq!(consent_of(&el), "none");
    let before = alice.session.telemetry_counters();
    tokio::time::sleep(Duration::from_millis(5500)).await;
    alice.session.flush_telemetry();
    assert_eq!(alice.session.telemetry_counters(), before);

    // Back to `necessary`: batches flow again, without optional fields.
    let t0 = streamwire::telemetry::store::now_ms();
    alice.session.set_consent(Consent::Necessary);
    wait_for("necessary batches after the consent change", T, || {
        alice.session.telemetry_counters().frames > before.frames
    })
    .await;
    alice.session.flush_telemetry();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let optional_after = count(
        &db,
        &format!(
            "SELECT count(*) FROM records r JOIN sessions s ON s.id = r.session_id
             WHERE s.user_id = 'alice' AND r.ts_ms >= {t0} AND r.field IN
             ('process-memory','process-cpu-usage','load-average','cpu-frequency','nack-count')"
        ),
    );
    assert_eq!(optional_after, 0);
    let necessary_after = count(
        &db,
        &format!(
            "SELECT count(*) FROM records r JOIN sessions s ON s.id = r.session_id
             WHERE s.user_id = 'alice' AND r.ts_ms >= {t0}"
        ),
    );
    assert!(necessary_after > 0);

    alice.session.leave().await;
    bob.session.leave().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consent_none_reads_nothing_and_sends_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("telemetry.db");
    let mut cfg = common::config();
    cfg.telemetry = Some(StoreConfig::new(db.clone()));
    let srv = common::start(cfg).await;
    // Default config: consent none.
    let a = join(&srv.url, "n", "carol", None, |s| {
        s.telemetry.interval = Duration::from_millis(200);
    })
    .await;
    assert_eq!(a.session.consent(), Consent::None);
    let el = a.session.telemetry_element().unwrap().clone();
    assert_eq!(consent_of(&el), "none");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    a.session.flush_telemetry();
    assert_eq!(
        a.session.telemetry_counters(),
        streamwire::session::telemetry::TelemetryCounters::default()
    );
    a.session.leave().await;
    assert_eq!(count(&db, "SELECT count(*) FROM records"), 0);
    assert_eq!(count(&db, "SELECT count(*) FROM sessions"), 0);
}

/// A batch far above the frame limit, split and sent through a real client: every record
/// arrives, in order, and no frame is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_batch_is_split_and_every_record_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("telemetry.db");
    let mut cfg = common::config();
    cfg.telemetry = Some(StoreConfig::new(db.clone()));
    cfg.limits.max_frame_bytes = 16 * 1024;
    let srv = common::start(cfg).await;
    let token = common::token("big", "dave", &[Grant::Publish]);
    let (client, mut events) = Client::connect(ClientConfig::new(&srv.url, "big", &token))
        .await
        .unwrap();
    let max = client.welcome().unwrap().limits.max_frame_bytes;
    assert_eq!(max, 16 * 1024);
    let now = streamwire::telemetry::store::now_ms();
    let records: Vec<Record> = (0..3000)
        .map(|i| Record {
            ts_ms: now - 3000 + i,
            source: Source::Peer,
            track: format!("p{}/video-recv-{i}", i % 7),
            fields: BTreeMap::from([
                ("bitrate".to_string(), FieldValue::Num(1000.0 + i as f64)),
                ("rtt".to_string(), FieldValue::Num(12.5)),
                ("jitter".to_string(), FieldValue::Num(3.0)),
            ]),
        })
        .collect();
    let batch = Batch {
        consent: Consent::Necessary,
        records: records.clone(),
    };
    assert!(
        batch.frame_len() > 10 * max,
        "the batch would exceed the limit"
    );
    let (parts, too_large) = batch.split(max);
    assert!(too_large.is_empty());
    assert!(parts.len() >= 10);
    for p in &parts {
        assert!(p.frame_len() <= max, "{} > {max}", p.frame_len());
    }
    let rejoined: Vec<Record> = parts.iter().flat_map(|p| p.records.clone()).collect();
    assert_eq!(rejoined, records, "split keeps every record, in order");
    let n = parts.len();
    for p in parts {
        client.send_telemetry(p).unwrap();
    }
    let (mut got, mut stored) = (0, 0);
    while got < n {
        let ev = common::within("telemetry acks", events.recv())
            .await
            .unwrap();
        match ev {
            Event::TelemetryAck { stored: s, dropped } => {
                assert_eq!(dropped, 0);
                stored += s;
                got += 1;
            }
            Event::ServerError { code, message, .. } => panic!("{code:?}: {message}"),
            _ => {}
        }
    }
    assert_eq!(stored, 3 * 3000);
    assert_eq!(count(&db, "SELECT count(*) FROM records"), 9000);
    client.leave().await;

    // A record that cannot fit in any frame is reported, not silently dropped or sent.
    let huge = Record {
        ts_ms: now,
        source: Source::Device,
        track: String::new(),
        fields: BTreeMap::from([("os-name".to_string(), FieldValue::Text("x".repeat(max)))]),
    };
    let (parts, too_large) = Batch {
        consent: Consent::Necessary,
        records: vec![records[0].clone(), huge],
    }
    .split(max);
    assert_eq!(parts.len(), 1);
    assert_eq!(too_large.len(), 1);
    assert!(too_large[0].to_string().contains("max_frame_bytes"));
    // Classes on the wire come from the registry.
    assert_eq!(any_field("rtt").map(|f| f.class), Some(Class::Necessary));
}
