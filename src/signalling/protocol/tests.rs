//! Round trips and decode diagnostics of the protocol.

use super::*;

#[test]
fn roundtrip_and_diagnostics() {
    let m = ClientMsg::Message {
        seq: 1,
        to: None,
        payload: Payload::Binary(vec![0, 1, 2, 255]),
    };
    let s = serde_json::to_string(&m).unwrap();
    assert_eq!(
        s,
        r#"{"type":"message","seq":1,"payload":{"binary":"AAEC/w=="}}"#
    );
    assert_eq!(decode_client(&s).unwrap(), m);

    let e = decode_client("{nope").unwrap_err();
    assert_eq!(e.code, ErrorCode::BadJson);
    let e = decode_client("[1]").unwrap_err();
    assert_eq!(e.code, ErrorCode::BadJson);
    let e = decode_client(r#"{"to":"x"}"#).unwrap_err();
    assert_eq!(
        (e.code, e.field.as_deref()),
        (ErrorCode::MissingField, Some("type"))
    );
    let e = decode_client(r#"{"type":"dance"}"#).unwrap_err();
    assert_eq!(
        (e.code, e.in_type.as_deref()),
        (ErrorCode::UnknownType, Some("dance"))
    );
    let e = decode_client(r#"{"type":"telemetry"}"#).unwrap_err();
    assert_eq!(
        (e.code, e.field.as_deref()),
        (ErrorCode::MissingField, Some("batch"))
    );
    let e = decode_client(r#"{"type":"feedback","rating":"great"}"#).unwrap_err();
    assert_eq!(
        (e.code, e.field.as_deref()),
        (ErrorCode::InvalidField, Some("rating"))
    );
    let e = decode_client(r#"{"type":"ice","to":"a","candidate":"c","sdp_mline_index":"zero"}"#)
        .unwrap_err();
    assert_eq!(
        (e.code, e.in_type.as_deref(), e.field.as_deref()),
        (
            ErrorCode::InvalidField,
            Some("ice"),
            Some("sdp_mline_index")
        )
    );
    let e = decode_client(r#"{"type":"message","seq":1,"payload":{"binary":"!!"}}"#).unwrap_err();
    assert_eq!(
        (e.code, e.field.as_deref()),
        (ErrorCode::InvalidField, Some("payload.binary"))
    );
    let e = decode_client(r#"{"type":"ack"}"#).unwrap_err();
    assert_eq!(
        (e.code, e.field.as_deref()),
        (ErrorCode::MissingField, Some("n"))
    );
}

#[test]
fn server_n_is_omitted_when_zero() {
    let m = ServerMsg::PeerLeft {
        n: 0,
        peer_id: "a".into(),
        reason: LeaveReason::Left,
    };
    let s = serde_json::to_string(&m).unwrap();
    assert_eq!(s, r#"{"type":"peer_left","peer_id":"a","reason":"left"}"#);
    let stamped = format!("{{\"n\":5,{}", &s[1..]);
    let back: ServerMsg = serde_json::from_str(&stamped).unwrap();
    assert_eq!(back.n(), Some(5));
}

/// Every nested field is named by its dotted path (`docs/protocol.md`, "Errors").
#[test]
fn nested_fields_are_named_by_their_dotted_path() {
    use ErrorCode::{InvalidField as I, MissingField as M};
    let rec = |r: &str| {
        format!(
            r#"{{"type":"telemetry","batch":{{"consent":"full","records":[{ok},{ok},{r},{ok}]}}}}"#,
            ok = r#"{"ts_ms":1,"source":"device","fields":{"cpu-usage":1}}"#
        )
    };
    let cases: Vec<(String, ErrorCode, &str)> = vec![
        (
            r#"{"type":"publish","track":{"kind":"video"}}"#.into(),
            M,
            "track.id",
        ),
        (
            r#"{"type":"publish","track":{"id":"a"}}"#.into(),
            M,
            "track.kind",
        ),
        (
            r#"{"type":"publish","track":{"id":5,"kind":"video"}}"#.into(),
            I,
            "track.id",
        ),
        (
            r#"{"type":"publish","track":{"id":"a","kind":"smell"}}"#.into(),
            I,
            "track.kind",
        ),
        (
            r#"{"type":"publish","track":{"id":"a","kind":"audio","label":7}}"#.into(),
            I,
            "track.label",
        ),
        (r#"{"type":"publish","track":"cam"}"#.into(), I, "track"),
        (
            r#"{"type":"message","seq":1,"payload":{"text":5}}"#.into(),
            I,
            "payload.text",
        ),
        (
            r#"{"type":"message","seq":1,"payload":{"binary":"%%"}}"#.into(),
            I,
            "payload.binary",
        ),
        (
            r#"{"type":"message","seq":1,"payload":{"audio":"x"}}"#.into(),
            I,
            "payload.audio",
        ),
        (
            r#"{"type":"message","seq":1,"payload":"x"}"#.into(),
            I,
            "payload",
        ),
        (
            r#"{"type":"telemetry","batch":{"records":[]}}"#.into(),
            M,
            "batch.consent",
        ),
        (
            r#"{"type":"telemetry","batch":{"consent":"maybe","records":[]}}"#.into(),
            I,
            "batch.consent",
        ),
        (
            r#"{"type":"telemetry","batch":{"consent":"full"}}"#.into(),
            M,
            "batch.records",
        ),
        (
            r#"{"type":"telemetry","batch":{"consent":"full","records":{}}}"#.into(),
            I,
            "batch.records",
        ),
        (
            rec(r#"{"source":"device","fields":{}}"#),
            M,
            "batch.records[2].ts_ms",
        ),
        (
            rec(r#"{"ts_ms":"x","source":"device","fields":{}}"#),
            I,
            "batch.records[2].ts_ms",
        ),
        (
            rec(r#"{"ts_ms":1,"fields":{}}"#),
            M,
            "batch.records[2].source",
        ),
        (
            rec(r#"{"ts_ms":1,"source":"disk","fields":{}}"#),
            I,
            "batch.records[2].source",
        ),
        (
            rec(r#"{"ts_ms":1,"source":"peer","track":3,"fields":{}}"#),
            I,
            "batch.records[2].track",
        ),
        (
            rec(r#"{"ts_ms":1,"source":"device"}"#),
            M,
            "batch.records[2].fields",
        ),
        (
            rec(r#"{"ts_ms":1,"source":"device","fields":{"cpu-usage":true}}"#),
            I,
            "batch.records[2].fields.cpu-usage",
        ),
        (r#"{"type":"feedback","rating":"five"}"#.into(), I, "rating"),
        (
            r#"{"type":"feedback","rating":4,"comment":1}"#.into(),
            I,
            "comment",
        ),
        (r#"{"type":"feedback"}"#.into(), M, "rating"),
        (
            r#"{"type":"ice","to":"a","candidate":"c","sdp_mline_index":0,"sdp_mid":1}"#.into(),
            I,
            "sdp_mid",
        ),
        (
            r#"{"type":"kick","peer_id":"a","ban_ms":-1}"#.into(),
            I,
            "ban_ms",
        ),
        (
            r#"{"type":"join","v":1,"room":"r","token":"t","metadata":1}"#.into(),
            I,
            "__decodes__",
        ),
    ];
    for (frame, code, field) in cases {
        if field == "__decodes__" {
            assert!(decode_client(&frame).is_ok(), "{frame}");
            continue;
        }
        let e = decode_client(&frame).unwrap_err();
        assert_eq!(
            (e.code, e.field.as_deref()),
            (code, Some(field)),
            "{frame} -> {}",
            e.message
        );
        assert!(e.message.contains(field), "{}", e.message);
    }
}

/// Two bad members with the same serde message (found by tests/proptest_decoder.rs): the
/// error still names one of them.
#[test]
fn two_bad_members_with_one_message_are_located() {
    let e = decode_client(r#"{"sdp":[],"to":[null],"type":"answer"}"#).unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidField);
    assert!(
        matches!(e.field.as_deref(), Some("sdp" | "to")),
        "{:?}",
        e.field
    );
    let e = decode_client(r#"{"type":"publish","track":{"id":[],"kind":"video","label":[]}}"#)
        .unwrap_err();
    assert!(
        matches!(e.field.as_deref(), Some("track.id" | "track.label")),
        "{:?}",
        e.field
    );
}

/// Nesting: a frame may nest arrays/objects [`MAX_NESTING`] levels deep (the frame object
/// itself is level 1); one more is `bad_json` (`docs/protocol.md`, "Limits").
#[test]
fn nesting_limit_is_max_nesting() {
    // `metadata` is level 2; `levels` more levels inside it.
    let frame = |levels: usize| {
        format!(
            r#"{{"type":"set_metadata","metadata":{}1{}}}"#,
            "[".repeat(levels),
            "]".repeat(levels)
        )
    };
    let inner = MAX_NESTING - 1;
    assert!(decode_client(&frame(inner)).is_ok());
    let e = decode_client(&frame(inner + 1)).unwrap_err();
    assert_eq!(e.code, ErrorCode::BadJson, "{e:?}");
    assert!(e.message.contains("recursion limit"), "{e:?}");
}
