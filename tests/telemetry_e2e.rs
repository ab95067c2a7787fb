//! End to end: a real `devicetelemetry` pipeline, the batcher and the signalling client
//! forwarding telemetry through a byte-capturing loopback TCP proxy to a real server with a
//! real SQLite store. Every byte that leaves the client is captured, its WebSocket frames
//! unmasked and checked at each consent level; then the admin privacy API over the wire.
//!
//! `real_sessions_send_only_what_the_consent_allows` does the same with two real `Session`s
//! (publisher and subscriber, real webrtcbin media) forwarding telemetry by themselves.
//!
//! Loopback only; run inside `unshare -n sh -c 'ip link set lo up; ...'` in CI.

mod common;
mod session_support;

use parking_lot::Mutex;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{config, start, token, within};
use gst::prelude::*;
use gststreamwire::telemetry::{Class, Consent, MESSAGE_NAME, REGISTRY, any_field};
use streamwire::server::TelemetryConfig;
use streamwire::signalling::client::{Client, ClientConfig, Event, Events};
use streamwire::signalling::protocol::{ClientMsg, ErrorCode, Grant, ServerMsg};
use streamwire::telemetry::batcher::{Batcher, TrackSample};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A loopback TCP proxy that records every byte the client sends.
struct Capture {
    url: String,
    sent: Arc<Mutex<Vec<u8>>>,
}

async fn capture(target: SocketAddr) -> Capture {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let sent: Arc<Mutex<Vec<u8>>> = Arc::default();
    let rec = sent.clone();
    tokio::spawn(async move {
        while let Ok((inbound, _)) = l.accept().await {
            let rec = rec.clone();
            tokio::spawn(async move {
                let Ok(out) = TcpStream::connect(target).await else {
                    return;
                };
                let (mut ci, mut co) = inbound.into_split();
                let (mut si, mut so) = out.into_split();
                let up = async {
                    let mut buf = vec![0u8; 64 * 1024];
                    loop {
                        let n = match ci.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        rec.lock().extend_from_slice(&buf[..n]);
                        if so.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                    let _ = so.shutdown().await;
                };
                let down = async {
                    let _ = tokio::io::copy(&mut si, &mut co).await;
                    let _ = co.shutdown().await;
                };
                tokio::join!(up, down);
            });
        }
    });
    Capture {
        url: format!("ws://{addr}"),
        sent,
    }
}

/// Text payloads of the client's WebSocket frames (after the HTTP upgrade), unmasked.
fn client_frames(bytes: &[u8]) -> Vec<String> {
    let start = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("HTTP upgrade request")
        + 4;
    let mut i = start;
    let mut out = Vec::new();
    while i + 2 <= bytes.len() {
        let opcode = bytes[i] & 0x0f;
        let masked = bytes[i + 1] & 0x80 != 0;
        assert!(masked, "client frames are masked (RFC 6455)");
        let mut len = u64::from(bytes[i + 1] & 0x7f);
        i += 2;
        if len == 126 {
            len = u64::from(u16::from_be_bytes([bytes[i], bytes[i + 1]]));
            i += 2;
        } else if len == 127 {
            len = u64::from_be_bytes(bytes[i..i + 8].try_into().unwrap());
            i += 8;
        }
        let key = [bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]];
        i += 4;
        let len = len as usize;
        assert!(i + len <= bytes.len(), "truncated frame");
        let payload: Vec<u8> = bytes[i..i + len]
            .iter()
            .enumerate()
            .map(|(j, b)| b ^ key[j % 4])
            .collect();
        i += len;
        if opcode == 1 {
            out.push(String::from_utf8(payload).expect("text frame is UTF-8"));
        }
    }
    assert_eq!(i, bytes.len(), "trailing bytes after the last frame");
    out
}

/// Bus messages of a live pipeline whose `devicetelemetry` posts everything (consent full).
fn pipeline_messages(run: Duration) -> Vec<gst::Message> {
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

async fn next_event<R>(ev: &mut Events, what: &str, mut f: impl FnMut(&Event) -> Option<R>) -> R {
    within(what, async {
        loop {
            let e = ev
                .recv()
                .await
                .unwrap_or_else(|| panic!("events ended: {what}"));
            if let Some(r) = f(&e) {
                return r;
            }
        }
    })
    .await
}

async fn connect(url: &str, room: &str, user: &str, grants: &[Grant]) -> (Client, Events) {
    let (c, mut ev) = within(
        "connect",
        Client::connect(ClientConfig::new(url, room, &token(room, user, grants))),
    )
    .await
    .unwrap();
    next_event(&mut ev, "joined", |e| {
        matches!(e, Event::Joined(_)).then_some(())
    })
    .await;
    (c, ev)
}

const OPTIONAL_KEYS: &[&str] = &[
    "process-memory",
    "process-cpu-usage",
    "load-average",
    "cpu-frequency",
    "nack-count",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_byte_the_client_sends_respects_consent_and_admin_api_works_over_the_wire() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("telemetry.db");
    let mut cfg = config();
    cfg.telemetry = Some(TelemetryConfig::new(db.clone()));
    let srv = start(cfg).await;

    let msgs = tokio::task::spawn_blocking(|| pipeline_messages(Duration::from_millis(700)))
        .await
        .unwrap();
    let posted = msgs
        .iter()
        .filter(|m| {
            matches!(m.view(), gst::MessageView::Element(e)
                if e.structure().is_some_and(|s| s.name() == MESSAGE_NAME))
        })
        .count();
    assert!(posted >= 3, "{posted} telemetry messages");
    let stats = TrackSample {
        bitrate: Some(1.0e6),
        fps: Some(30.0),
        rtt_ms: Some(12.0),
        packet_loss_pct: Some(0.0),
        jitter_ms: Some(2.0),
        quality_score: None,
        nack_count: Some(1.0),
    };
    let user_grants = [Grant::Publish, Grant::Subscribe, Grant::Message];

    for consent in [Consent::None, Consent::Necessary, Consent::Full] {
        let cap = capture(srv.addr).await;
        let user = format!("user-{}", consent.as_str());
        let (client, mut ev) = connect(&cap.url, "e2e", &user, &user_grants).await;
        let mut b = Batcher::new(consent);
        for m in &msgs {
            b.push_message(m, streamwire::telemetry::store::now_ms());
        }
        b.push_track_sample("video0", &stats, streamwire::telemetry::store::now_ms());
        match b.take_batch() {
            Some(batch) => {
                client.send_telemetry(batch).unwrap();
                let (stored, dropped) = next_event(&mut ev, "telemetry ack", |e| match e {
                    Event::TelemetryAck { stored, dropped } => Some((*stored, *dropped)),
                    _ => None,
                })
                .await;
                assert!(stored > 0);
                assert_eq!(dropped, 0, "the batcher already filtered");
            }
            None => assert_eq!(consent, Consent::None),
        }
        client.leave().await;
        drop(client);
        // Let the proxy see the close frame.
        tokio::time::sleep(Duration::from_millis(100)).await;

        let frames = client_frames(&cap.sent.lock());
        assert!(
            frames.iter().any(|f| f.contains("\"type\":\"join\"")),
            "{frames:?}"
        );
        let all = frames.join("\n");
        let telemetry: Vec<ClientMsg> = frames
            .iter()
            .filter_map(|f| serde_json::from_str::<ClientMsg>(f).ok())
            .filter(|m| matches!(m, ClientMsg::Telemetry { .. }))
            .collect();
        match consent {
            Consent::None => {
                assert!(telemetry.is_empty());
                for f in REGISTRY {
                    assert!(!all.contains(&format!("\"{}\"", f.key)), "{} sent", f.key);
                }
                assert!(!all.contains("rtt") && !all.contains("telemetry"), "{all}");
            }
            Consent::Necessary => {
                assert_eq!(telemetry.len(), 1);
                for k in OPTIONAL_KEYS {
                    assert!(!all.contains(k), "{k} left the client at necessary");
                }
                let ClientMsg::Telemetry { batch } = &telemetry[0] else {
                    unreachable!()
                };
                assert_eq!(batch.records.len(), posted + 1);
                for r in &batch.records {
                    for k in r.fields.keys() {
                        assert_eq!(any_field(k).map(|f| f.class), Some(Class::Necessary), "{k}");
                    }
                }
            }
            Consent::Full => {
                assert_eq!(telemetry.len(), 1);
                assert!(all.contains("\"process-memory\"") && all.contains("\"nack-count\""));
            }
        }
    }

    // The server stored only what was sent, and no raw address.
    let check = rusqlite::Connection::open(&db).unwrap();
    let users: Vec<String> = check
        .prepare("SELECT DISTINCT user_id FROM sessions ORDER BY user_id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(users, ["user-full", "user-necessary"]);
    let optional_rows_of_necessary: i64 = check
        .query_row(
            "SELECT count(*) FROM records r JOIN sessions s ON s.id = r.session_id
             WHERE s.user_id = 'user-necessary' AND r.field IN
             ('process-memory','process-cpu-usage','load-average','cpu-frequency','nack-count')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(optional_rows_of_necessary, 0);
    let prefixes: Vec<Option<String>> = check
        .prepare("SELECT net_prefix FROM sessions")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(
        prefixes
            .iter()
            .all(|p| p.as_deref() == Some("127.0.0.0/24"))
    );
    drop(check);
    // No column of any table holds the raw address.
    assert_nowhere_in_db(&db, "127.0.0.1");

    // Feedback over the wire, stored only when sent.
    let (fb, mut fb_ev) = connect(&srv.url, "e2e", "user-feedback", &user_grants).await;
    fb.send_feedback(4, Some("clear audio".into())).unwrap();
    next_event(&mut fb_ev, "feedback ack", |e| {
        matches!(e, Event::FeedbackAck).then_some(())
    })
    .await;
    fb.send_feedback(9, None).unwrap();
    let (code, field) = next_event(&mut fb_ev, "bad rating", |e| match e {
        Event::ServerError { code, field, .. } => Some((*code, field.clone())),
        _ => None,
    })
    .await;
    assert_eq!(
        (code, field.as_deref()),
        (ErrorCode::InvalidField, Some("rating"))
    );
    fb.leave().await;

    // Admin API: refused without the admin grant...
    let (plain, mut plain_ev) = connect(&srv.url, "e2e", "nosy", &user_grants).await;
    plain.privacy_export("user-full").unwrap();
    plain.privacy_delete("user-full").unwrap();
    for what in ["export refused", "delete refused"] {
        let code = next_event(&mut plain_ev, what, |e| match e {
            Event::ServerError { code, .. } => Some(*code),
            Event::PrivacyExport { .. } | Event::PrivacyDeleted { .. } => {
                panic!("privacy operation without admin grant: {e:?}")
            }
            _ => None,
        })
        .await;
        assert_eq!(code, ErrorCode::Forbidden);
    }
    plain.leave().await;

    // ...and done with it, by the admin of the users' room (a room admin reaches only its own
    // room: tests/telemetry_scoping.rs).
    let (admin, mut admin_ev) = connect(&srv.url, "e2e", "admin", &[Grant::Admin]).await;
    admin.privacy_export("user-full").unwrap();
    let data = next_event(&mut admin_ev, "export", |e| match e {
        Event::PrivacyExport { user, data } if user == "user-full" => Some(data.clone()),
        _ => None,
    })
    .await;
    let sessions = data["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 1);
    assert!(
        sessions[0]["records"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["field"] == "process-memory")
    );
    assert!(!data.to_string().contains("user-necessary"));
    admin.privacy_delete("user-full").unwrap();
    let records = next_event(&mut admin_ev, "delete", |e| match e {
        Event::PrivacyDeleted { user, records, .. } if user == "user-full" => Some(*records),
        _ => None,
    })
    .await;
    assert!(records > 0);
    admin.privacy_export("user-full").unwrap();
    let again = next_event(&mut admin_ev, "export after delete", |e| match e {
        Event::PrivacyExport { data, .. } => Some(data.clone()),
        _ => None,
    })
    .await;
    assert_eq!(again["sessions"].as_array().unwrap().len(), 0);
    admin.leave().await;
}

/// A server started without a telemetry store (the library default) answers every service
/// message with `not_implemented`, naming the message and the missing `--db`, and the
/// connection keeps serving.
#[tokio::test]
async fn without_a_store_telemetry_and_feedback_are_not_implemented() {
    let srv = start(config()).await;
    let (mut admin, _) = common::Raw::join(
        &srv.url,
        "no-store",
        &token("no-store", "admin", &Grant::ALL),
    )
    .await;
    let frames = [
        (
            "telemetry",
            serde_json::json!({"type":"telemetry","batch":{"consent":"necessary","records":[]}}),
        ),
        (
            "feedback",
            serde_json::json!({"type":"feedback","rating":4}),
        ),
    ];
    for (ty, frame) in frames {
        admin.send_json(frame).await;
        let (code, in_type, field, message) = admin.error().await;
        assert_eq!(
            (code.as_str(), in_type.as_deref(), field),
            ("not_implemented", Some(ty), None),
            "{message}"
        );
        assert!(message.contains("--db"), "{ty}: {message}");
    }
    // The privacy requests still cover the whiteboards, which every server keeps.
    admin
        .send_json(serde_json::json!({"type":"privacy_export","user":"u"}))
        .await;
    let data = admin
        .expect("privacy_export", |m| match m {
            ServerMsg::PrivacyExport { data, .. } => Some(data.clone()),
            _ => None,
        })
        .await;
    assert_eq!(data["whiteboard"], serde_json::json!([]), "{data}");
    admin
        .send_json(serde_json::json!({"type":"privacy_delete","user":"u"}))
        .await;
    let (records, strokes) = admin
        .expect("privacy_deleted", |m| match m {
            ServerMsg::PrivacyDeleted {
                records, strokes, ..
            } => Some((*records, *strokes)),
            _ => None,
        })
        .await;
    assert_eq!((records, strokes), (0, 0));
    assert!(admin.drain().await.is_empty());
}

#[tokio::test]
async fn the_server_purges_expired_telemetry_by_itself() {
    use std::collections::BTreeMap;
    use streamwire::signalling::protocol::telemetry::{Batch, FieldValue, Record, Source};
    use streamwire::telemetry::Consent;
    use streamwire::telemetry::store::{Store, Tags, now_ms};
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("telemetry.db");
    let day = 24 * 3600 * 1000;
    {
        let mut s = Store::open(&db, Duration::from_secs(365 * 86400)).unwrap();
        let records = [now_ms() - 40 * day, now_ms() - day]
            .into_iter()
            .map(|ts_ms| Record {
                ts_ms,
                source: Source::Device,
                track: String::new(),
                fields: BTreeMap::from([("cpu-usage".to_owned(), FieldValue::Num(1.0))]),
            })
            .collect();
        let tags = Tags {
            room: "r",
            session: "s",
            peer: "p",
            user: "u",
            name: "u",
            addr: None,
        };
        s.ingest(
            &tags,
            &Batch {
                consent: Consent::Necessary,
                records,
            },
            now_ms(),
        )
        .unwrap();
    }
    let mut cfg = config();
    cfg.telemetry = Some(TelemetryConfig::new(db.clone()));
    let _srv = start(cfg).await;
    let check = rusqlite::Connection::open(&db).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let n: i64 = check
            .query_row("SELECT count(*) FROM records", [], |r| r.get(0))
            .unwrap();
        if n == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "still {n} records after 10 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let purges: i64 = check
        .query_row(
            "SELECT count(*) FROM audit WHERE action = 'purge' AND rows = 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(purges, 1);
}

/// Every text column of every table of `db`: none may contain `needle` (a raw address).
fn assert_nowhere_in_db(db: &std::path::Path, needle: &str) {
    let check = rusqlite::Connection::open(db).unwrap();
    let tables: Vec<String> = check
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(tables.iter().any(|t| t == "records"), "{tables:?}");
    for t in &tables {
        let mut stmt = check.prepare(&format!("SELECT * FROM \"{t}\"")).unwrap();
        let n = stmt.column_count();
        let mut rows = stmt.query([]).unwrap();
        while let Some(row) = rows.next().unwrap() {
            for i in 0..n {
                if let rusqlite::types::ValueRef::Text(v) = row.get_ref(i).unwrap() {
                    let v = String::from_utf8_lossy(v);
                    assert!(!v.contains(needle), "{t} column {i}: {v}");
                }
            }
        }
    }
}

fn db_strings(db: &std::path::Path, sql: &str) -> Vec<String> {
    let c = rusqlite::Connection::open(db).unwrap();
    c.prepare(sql)
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_sessions_send_only_what_the_consent_allows() {
    use session_support::{join, small, wait_for};
    use streamwire::encoder::Codec;
    use streamwire::session::SessionEvent;
    use streamwire::session::telemetry::TelemetryConfig as SessionTelemetry;
    use streamwire::signalling::protocol::telemetry::Source;
    use streamwire::webrtc::MediaKind;

    const WAIT: Duration = Duration::from_secs(30);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("telemetry.db");
    let mut cfg = config();
    cfg.telemetry = Some(TelemetryConfig::new(db.clone()));
    let srv = start(cfg).await;

    for consent in [Consent::None, Consent::Necessary, Consent::Full] {
        let c = consent.as_str();
        let room = format!("consent-{c}");
        let tele = |s: &mut streamwire::session::SessionConfig| {
            s.telemetry = SessionTelemetry {
                consent,
                interval: Duration::from_millis(1000),
                sample_interval: Duration::from_millis(300),
                device: true,
            };
        };
        // Each session's signalling goes through its own byte-capturing proxy.
        let cap_pub = capture(srv.addr).await;
        let cap_sub = capture(srv.addr).await;
        let publisher = join(
            &cap_pub.url,
            &room,
            &format!("pub-{c}"),
            Some(small(160, 120, Codec::Vp8)),
            tele,
        )
        .await;
        let subscriber = join(&cap_sub.url, &room, &format!("sub-{c}"), None, tele).await;
        let pub_id = publisher.session.peer_id().unwrap();
        wait_for("video decoded by the subscriber", WAIT, || {
            subscriber.decoded_from(&pub_id, MediaKind::Video) > 10
        })
        .await;
        // WebRTC statistics with media bitrate on both sides (every 2 s), then one more
        // interval.
        wait_for("statistics with tracks", WAIT, || {
            [&publisher, &subscriber].iter().all(|j| {
                j.any(|e| {
                    matches!(e, SessionEvent::Stats(s)
                        if s.stats.tracks.iter().any(|t| t.bitrate_kbps > 0.0))
                })
            })
        })
        .await;
        tokio::time::sleep(Duration::from_millis(1200)).await;
        publisher.session.leave().await;
        subscriber.session.leave().await;
        tokio::time::sleep(Duration::from_millis(200)).await;

        for (who, cap) in [("publisher", &cap_pub), ("subscriber", &cap_sub)] {
            let frames = client_frames(&cap.sent.lock());
            assert!(
                frames.iter().any(|f| f.contains("\"type\":\"join\"")),
                "{who} {c}: {frames:?}"
            );
            assert!(
                frames.iter().any(|f| f.contains("\"type\":\"ice\"")),
                "{who} {c}: the session negotiated through this proxy"
            );
            let all = frames.join("\n");
            let batches: Vec<streamwire::signalling::protocol::telemetry::Batch> = frames
                .iter()
                .filter_map(|f| serde_json::from_str::<ClientMsg>(f).ok())
                .filter_map(|m| match m {
                    ClientMsg::Telemetry { batch } => Some(batch),
                    _ => None,
                })
                .collect();
            let keys: Vec<&str> = batches
                .iter()
                .flat_map(|b| &b.records)
                .flat_map(|r| r.fields.keys().map(String::as_str))
                .collect();
            match consent {
                Consent::None => {
                    assert!(batches.is_empty(), "{who}: telemetry sent at none");
                    assert!(!all.contains("\"type\":\"telemetry\""));
                    for f in REGISTRY.iter().chain(gststreamwire::telemetry::PEER_STATS) {
                        assert!(
                            !all.contains(&format!("\"{}\":", f.key)),
                            "{who}: {} left the client at none",
                            f.key
                        );
                    }
                }
                Consent::Necessary | Consent::Full => {
                    assert!(!batches.is_empty(), "{who} {c}: no telemetry sent");
                    for b in &batches {
                        assert_eq!(b.consent, consent);
                    }
                    let sources: Vec<Source> = batches
                        .iter()
                        .flat_map(|b| b.records.iter().map(|r| r.source))
                        .collect();
                    assert!(
                        sources.contains(&Source::Device),
                        "{who} {c}: no device record"
                    );
                    assert!(sources.contains(&Source::Peer), "{who} {c}: no peer record");
                    let peer_bitrate = batches
                        .iter()
                        .flat_map(|b| &b.records)
                        .filter(|r| r.source == Source::Peer)
                        .filter_map(|r| match r.fields.get("bitrate") {
                            Some(streamwire::signalling::protocol::telemetry::FieldValue::Num(
                                n,
                            )) => Some(*n),
                            _ => None,
                        })
                        .fold(0.0, f64::max);
                    assert!(
                        peer_bitrate > 0.0,
                        "{who} {c}: media bitrate reported {:?}",
                        batches
                            .iter()
                            .flat_map(|b| &b.records)
                            .filter(|r| r.source == Source::Peer)
                            .collect::<Vec<_>>()
                    );
                    for k in &keys {
                        let class = any_field(k).map(|f| f.class);
                        assert!(class.is_some(), "{who}: undisclosed key {k}");
                        if consent == Consent::Necessary {
                            assert_eq!(class, Some(Class::Necessary), "{who}: {k} at necessary");
                        }
                    }
                    if consent == Consent::Necessary {
                        for k in OPTIONAL_KEYS {
                            assert!(
                                !all.contains(&format!("\"{k}\"")),
                                "{who}: {k} left the client at necessary"
                            );
                        }
                    } else {
                        for k in ["process-memory", "process-cpu-usage"] {
                            assert!(keys.contains(&k), "{who}: optional {k} missing at full");
                        }
                    }
                }
            }
        }
    }

    // The store: only the necessary and full sessions, no optional field of the necessary
    // ones, and no raw IP anywhere (only the coarse prefix).
    let users = db_strings(
        &db,
        "SELECT DISTINCT user_id FROM sessions ORDER BY user_id",
    );
    assert_eq!(
        users,
        ["pub-full", "pub-necessary", "sub-full", "sub-necessary"]
    );
    let optional_of_necessary = db_strings(
        &db,
        "SELECT DISTINCT r.field FROM records r JOIN sessions s ON s.id = r.session_id
         WHERE s.user_id LIKE '%-necessary' AND r.field IN
         ('process-memory','process-cpu-usage','load-average','cpu-frequency','nack-count')",
    );
    assert!(
        optional_of_necessary.is_empty(),
        "{optional_of_necessary:?}"
    );
    let optional_of_full = db_strings(
        &db,
        "SELECT DISTINCT r.field FROM records r JOIN sessions s ON s.id = r.session_id
         WHERE s.user_id LIKE '%-full' AND r.field = 'process-memory'",
    );
    assert_eq!(optional_of_full, ["process-memory"]);
    let prefixes = db_strings(&db, "SELECT DISTINCT net_prefix FROM sessions");
    assert_eq!(prefixes, ["127.0.0.0/24"]);
    assert_nowhere_in_db(&db, "127.0.0.1");
}
