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
        (ErrorCode::InvalidField, Some("payload"))
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
