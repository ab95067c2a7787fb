//! A battery of malformed frames: each gets an error frame naming the problem (type and
//! field where there is one), the connection stays usable, and the server keeps serving
//! the room and other peers throughout.

mod common;

use async_tungstenite::tungstenite::Message;
use common::*;
use serde_json::json;
use streamwire::signalling::protocol::{DeliveryStatus, ServerMsg};

/// (frame, expected code, expected in_type, expected field)
fn battery() -> Vec<(
    String,
    &'static str,
    Option<&'static str>,
    Option<&'static str>,
)> {
    let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    vec![
        ("".into(), "bad_json", None, None),
        ("{".into(), "bad_json", None, None),
        ("not json at all".into(), "bad_json", None, None),
        ("[1,2,3]".into(), "bad_json", None, None),
        ("42".into(), "bad_json", None, None),
        ("null".into(), "bad_json", None, None),
        ("\"join\"".into(), "bad_json", None, None),
        (deep, "bad_json", None, None),
        ("{}".into(), "missing_field", None, Some("type")),
        (
            r#"{"to":"x","sdp":"y"}"#.into(),
            "missing_field",
            None,
            Some("type"),
        ),
        (r#"{"type":5}"#.into(), "invalid_field", None, Some("type")),
        (
            r#"{"type":"nope"}"#.into(),
            "unknown_type",
            Some("nope"),
            None,
        ),
        (
            r#"{"type":"OFFER","to":"x","sdp":"y"}"#.into(),
            "unknown_type",
            Some("OFFER"),
            None,
        ),
        (
            r#"{"type":"telemetry","events":[]}"#.into(),
            "missing_field",
            Some("telemetry"),
            Some("batch"),
        ),
        (
            r#"{"type":"feedback","rating":"five"}"#.into(),
            "invalid_field",
            Some("feedback"),
            Some("rating"),
        ),
        (
            r#"{"type":"offer","to":"x"}"#.into(),
            "missing_field",
            Some("offer"),
            Some("sdp"),
        ),
        (
            r#"{"type":"offer","sdp":"v=0"}"#.into(),
            "missing_field",
            Some("offer"),
            Some("to"),
        ),
        (
            r#"{"type":"offer","to":7,"sdp":"v=0"}"#.into(),
            "invalid_field",
            Some("offer"),
            Some("to"),
        ),
        (
            r#"{"type":"answer","to":"x","sdp":null}"#.into(),
            "invalid_field",
            Some("answer"),
            Some("sdp"),
        ),
        (
            r#"{"type":"ice","to":"x","candidate":"c"}"#.into(),
            "missing_field",
            Some("ice"),
            Some("sdp_mline_index"),
        ),
        (
            r#"{"type":"ice","to":"x","candidate":"c","sdp_mline_index":-1}"#.into(),
            "invalid_field",
            Some("ice"),
            Some("sdp_mline_index"),
        ),
        (
            r#"{"type":"ice","to":"x","candidate":"c","sdp_mline_index":0,"sdp_mid":3}"#.into(),
            "invalid_field",
            Some("ice"),
            Some("sdp_mid"),
        ),
        (
            r#"{"type":"message","payload":{"text":"x"}}"#.into(),
            "missing_field",
            Some("message"),
            Some("seq"),
        ),
        (
            r#"{"type":"message","seq":"one","payload":{"text":"x"}}"#.into(),
            "invalid_field",
            Some("message"),
            Some("seq"),
        ),
        (
            r#"{"type":"message","seq":1}"#.into(),
            "missing_field",
            Some("message"),
            Some("payload"),
        ),
        (
            r#"{"type":"message","seq":1,"payload":{"binary":"%%%not base64"}}"#.into(),
            "invalid_field",
            Some("message"),
            Some("payload.binary"),
        ),
        (
            r#"{"type":"message","seq":1,"payload":{"audio":"x"}}"#.into(),
            "invalid_field",
            Some("message"),
            Some("payload.audio"),
        ),
        (
            r#"{"type":"message","seq":1,"payload":"x"}"#.into(),
            "invalid_field",
            Some("message"),
            Some("payload"),
        ),
        (
            r#"{"type":"message","seq":1,"to":["a"],"payload":{"text":"x"}}"#.into(),
            "invalid_field",
            Some("message"),
            Some("to"),
        ),
        (
            r#"{"type":"publish","track":{"id":"a","kind":"smell"}}"#.into(),
            "invalid_field",
            Some("publish"),
            Some("track.kind"),
        ),
        (
            r#"{"type":"publish","track":{"kind":"video"}}"#.into(),
            "missing_field",
            Some("publish"),
            Some("track.id"),
        ),
        (
            r#"{"type":"telemetry","batch":{"consent":"full","records":[{"ts_ms":1,"source":"device","fields":{}},{"ts_ms":"now","source":"device","fields":{}}]}}"#.into(),
            "invalid_field",
            Some("telemetry"),
            Some("batch.records[1].ts_ms"),
        ),
        (
            r#"{"type":"telemetry","batch":{"records":[]}}"#.into(),
            "missing_field",
            Some("telemetry"),
            Some("batch.consent"),
        ),
        (
            r#"{"type":"publish"}"#.into(),
            "missing_field",
            Some("publish"),
            Some("track"),
        ),
        (
            r#"{"type":"ack","n":-5}"#.into(),
            "invalid_field",
            Some("ack"),
            Some("n"),
        ),
        (r#"{"type":"ack","n":1e400}"#.into(), "bad_json", None, None),
        (
            r#"{"type":"ack","n":18446744073709551616}"#.into(),
            "invalid_field",
            Some("ack"),
            Some("n"),
        ),
        (
            r#"{"type":"kick"}"#.into(),
            "missing_field",
            Some("kick"),
            Some("peer_id"),
        ),
        (
            r#"{"type":"join","v":1,"room":"r"}"#.into(),
            "missing_field",
            Some("join"),
            Some("token"),
        ),
        (
            r#"{"type":"resume","v":1,"resume_token":"x"}"#.into(),
            "missing_field",
            Some("resume"),
            Some("last_n"),
        ),
        // Not a u32.
        (
            r#"{"type":"sfu_view","mid":"1","width":-1,"height":1}"#.into(),
            "invalid_field",
            Some("sfu_view"),
            Some("width"),
        ),
    ]
}

#[tokio::test]
async fn malformed_frame_battery_leaves_the_server_serving() {
    let srv = start(config()).await;
    let (mut a, _) = Raw::join(&srv.url, "mf", &token("mf", "a", &all())).await;
    let (mut b, _) = Raw::join(&srv.url, "mf", &token("mf", "b", &all())).await;
    // An unjoined connection gets the same diagnostics.
    let mut unjoined = Raw::connect(&srv.url).await;
    let mut seq = 0u64;
    for (frame, code, in_type, field) in battery() {
        for (who, conn) in [("joined", &mut a), ("unjoined", &mut unjoined)] {
            conn.send(&frame).await;
            let (c, t, f, msg) = conn.error().await;
            let shown: String = frame.chars().take(60).collect();
            assert_eq!(
                (c.as_str(), t.as_deref(), f.as_deref()),
                (code, in_type, field),
                "{who}: frame {shown:?} -> {msg}"
            );
            assert!(!msg.is_empty());
        }
        // Between malformed frames, the room keeps working in both directions.
        seq += 1;
        a.send_json(json!({"type":"message","seq":seq,"payload":{"text":"ok"}}))
            .await;
        a.expect("delivery", |m| matches!(m, ServerMsg::Delivery { seq: s, status: DeliveryStatus::Delivered, recipients: 1, .. } if *s == seq).then_some(())).await;
        b.expect("message", |m| {
            matches!(m, ServerMsg::Message { seq: s, .. } if *s == seq).then_some(())
        })
        .await;
    }
    // Binary WebSocket frames are refused with an explanation.
    within("binary", a.ws.send(Message::Binary(vec![0u8, 1, 2].into())))
        .await
        .unwrap();
    let (code, _, _, msg) = a.error().await;
    assert_eq!(code, "bad_json");
    assert!(msg.contains("binary"), "{msg}");
    // Invalid UTF-8 in a text frame is a WebSocket protocol violation: that one connection is
    // closed, and nobody else notices.
    let mut evil = Raw::join(&srv.url, "mf", &token("mf", "evil", &all()))
        .await
        .0;
    let evil_id = evil.peer_id.clone();
    let raw = evil.ws.get_mut().get_mut();
    // Masked text frame, FIN, 2-byte payload 0xC3 0x28 (invalid UTF-8), mask key 0.
    tokio::io::AsyncWriteExt::write_all(raw, &[0x81, 0x82, 0, 0, 0, 0, 0xC3, 0x28])
        .await
        .unwrap();
    // b sees evil join, and eventually leave once the grace period ends; meanwhile a/b work.
    seq += 1;
    a.send_json(json!({"type":"message","seq":seq,"payload":{"text":"still here"}}))
        .await;
    b.expect("message after evil", |m| {
        matches!(m, ServerMsg::Message { seq: s, .. } if *s == seq).then_some(())
    })
    .await;
    assert!(srv.handle.stats().rooms == 1);
    let closed = within("evil closed", async {
        loop {
            match futures::StreamExt::next(&mut evil.ws).await {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return true,
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    assert!(closed, "the protocol violator's connection is closed");
    // Its session waits out the grace period like any dropped connection (resumable).
    assert!(
        b.drain()
            .await
            .iter()
            .all(|m| !matches!(m, ServerMsg::PeerLeft { peer_id, .. } if *peer_id == evil_id))
    );
    // A fresh peer can still join the room and talk to the survivors.
    let (mut c, w) = Raw::join(&srv.url, "mf", &token("mf", "c", &all())).await;
    let ServerMsg::Welcome { peers, .. } = w else {
        unreachable!()
    };
    assert!(peers.len() >= 2);
    c.send_json(json!({"type":"offer","to":a.peer_id,"sdp":"v=0"}))
        .await;
    a.expect("offer from c", |m| {
        matches!(m, ServerMsg::Offer { from, .. } if *from == c.peer_id).then_some(())
    })
    .await;
}

/// Values the telemetry store refuses are named by their dotted path in the frame too
/// (before: the bare leaf, `ts_ms`, or the container).
#[tokio::test]
async fn store_refusals_name_the_dotted_path() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config();
    cfg.telemetry = Some(streamwire::server::TelemetryConfig::new(
        dir.path().join("t.db"),
    ));
    let srv = start(cfg).await;
    let (mut a, _) = Raw::join(&srv.url, "st", &token("st", "a", &all())).await;
    let cases = [
        (
            json!({"type":"telemetry","batch":{"consent":"full","records":[
                {"ts_ms":5,"source":"device","fields":{}},
                {"ts_ms":0,"source":"device","fields":{}}]}}),
            "batch.records[1].ts_ms",
        ),
        (
            json!({"type":"telemetry","batch":{"consent":"none","records":[]}}),
            "batch.consent",
        ),
        (json!({"type":"feedback","rating":9}), "rating"),
        (
            json!({"type":"feedback","rating":3,"comment":"c".repeat(2001)}),
            "comment",
        ),
    ];
    for (frame, field) in cases {
        a.send_json(frame.clone()).await;
        let (code, _, f, msg) = a.error().await;
        assert_eq!(
            (code.as_str(), f.as_deref()),
            ("invalid_field", Some(field)),
            "{frame}: {msg}"
        );
        assert!(msg.contains(field), "{msg}");
    }
}

/// `sfu_view`'s bounds (docs/protocol.md, "Limits") are checked for a joined member, in a mesh
/// room too; the connection stays usable.
#[tokio::test]
async fn sfu_view_bounds_are_checked() {
    let srv = start(config()).await;
    let (mut a, _) = Raw::join(&srv.url, "sv", &token("sv", "a", &all())).await;
    let long_mid = "m".repeat(65);
    for (frame, field) in [
        (
            json!({"type":"sfu_view","mid":"","width":1,"height":1}),
            "mid",
        ),
        (
            json!({"type":"sfu_view","mid":long_mid,"width":1,"height":1}),
            "mid",
        ),
        (
            json!({"type":"sfu_view","mid":"1","width":16385,"height":1}),
            "width",
        ),
        (
            json!({"type":"sfu_view","mid":"1","width":1,"height":99999}),
            "height",
        ),
    ] {
        a.send_json(frame.clone()).await;
        let (code, t, f, msg) = a.error().await;
        assert_eq!(
            (code.as_str(), t.as_deref(), f.as_deref()),
            ("invalid_field", Some("sfu_view"), Some(field)),
            "{frame} -> {msg}"
        );
    }
    // In range it is taken (a mesh room ignores it) and the connection carries on.
    a.send_json(json!({"type":"sfu_view","mid":"1","width":16384,"height":0}))
        .await;
    a.send_json(json!({"type":"ping"})).await;
    a.expect("pong", |m| matches!(m, ServerMsg::Pong {}).then_some(()))
        .await;
}
