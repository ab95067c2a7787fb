//! Data-subject requests are scoped to the admin's own room: a room admin's `privacy_export`,
//! `privacy_delete` and `GET /report` never reach another room's data (before, an admin of
//! room B exported a user who was only ever in room A, with the feedback comment, and
//! deleted another room's data); requests across rooms are the operator's, on the database.

mod common;

use common::*;
use serde_json::{Value, json};
use streamwire::server::TelemetryConfig;
use streamwire::signalling::protocol::{Grant, ServerMsg};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// `user` joins `room`, sends one telemetry batch and one feedback, and leaves.
async fn seed(url: &str, room: &str, user: &str) {
    let (mut r, _) = Raw::join(url, room, &token(room, user, &all())).await;
    r.send_json(
        json!({"type":"telemetry","batch":{"consent":"necessary","records":[
        {"ts_ms":now_ms(),"source":"device","fields":{"cpu-usage":12.5}}]}}),
    )
    .await;
    r.expect("telemetry_ack", |m| {
        matches!(m, ServerMsg::TelemetryAck { stored: 1, .. }).then_some(())
    })
    .await;
    r.send_json(
        json!({"type":"feedback","rating":3,"comment":format!("said in {room} by {user}")}),
    )
    .await;
    r.expect("feedback_ack", |m| {
        matches!(m, ServerMsg::FeedbackAck {}).then_some(())
    })
    .await;
    r.send_json(json!({"type":"leave"})).await;
}

async fn export(admin: &mut Raw, user: &str) -> Value {
    admin
        .send_json(json!({"type":"privacy_export","user":user}))
        .await;
    admin
        .expect("privacy_export", |m| match m {
            ServerMsg::PrivacyExport { data, .. } => Some(data.clone()),
            _ => None,
        })
        .await
}

async fn delete(admin: &mut Raw, user: &str) -> (u64, u64, u64) {
    admin
        .send_json(json!({"type":"privacy_delete","user":user}))
        .await;
    admin
        .expect("privacy_deleted", |m| match m {
            ServerMsg::PrivacyDeleted {
                records,
                feedback,
                sessions,
                ..
            } => Some((*records, *feedback, *sessions)),
            _ => None,
        })
        .await
}

fn rooms_of(export: &Value) -> Vec<String> {
    export["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["room"].as_str().unwrap().to_owned())
        .collect()
}

fn count(db: &std::path::Path, sql: &str) -> i64 {
    rusqlite::Connection::open(db)
        .unwrap()
        .query_row(sql, [], |r| r.get(0))
        .unwrap()
}

#[tokio::test]
async fn a_room_admin_reaches_only_its_own_room() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let mut cfg = config();
    cfg.telemetry = Some(TelemetryConfig::new(db.clone()));
    let srv = start(cfg).await;
    seed(&srv.url, "room-a", "u").await;
    seed(&srv.url, "room-b", "u").await;
    seed(&srv.url, "room-a", "only-a").await;
    let (mut admin_b, _) = Raw::join(
        &srv.url,
        "room-b",
        &token("room-b", "admin-b", &[Grant::Admin]),
    )
    .await;

    // Export: room B's sessions of `u` only; nothing of room A, not even the comment.
    let e = export(&mut admin_b, "u").await;
    assert_eq!(rooms_of(&e), ["room-b"], "{e}");
    assert!(!e.to_string().contains("said in room-a"), "{e}");
    let e = export(&mut admin_b, "only-a").await;
    assert!(rooms_of(&e).is_empty(), "a user only ever in room A: {e}");

    // Delete: nothing of room A goes.
    assert_eq!(delete(&mut admin_b, "only-a").await, (0, 0, 0));
    assert_eq!(delete(&mut admin_b, "u").await, (1, 1, 1));
    assert_eq!(
        count(&db, "SELECT count(*) FROM sessions WHERE room = 'room-a'"),
        2
    );
    assert_eq!(count(&db, "SELECT count(*) FROM feedback"), 2);
    assert_eq!(
        count(&db, "SELECT count(*) FROM sessions WHERE room = 'room-b'"),
        0
    );

    // The report of another room: 403, with the admin token of room B.
    let b_token = token("room-b", "admin-b", &[Grant::Admin]);
    let mut s = tokio::net::TcpStream::connect(srv.addr).await.unwrap();
    s.write_all(
        format!(
            "GET /report?room=room-a HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {b_token}\r\n\r\n"
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let mut resp = String::new();
    within("report answer", s.read_to_string(&mut resp))
        .await
        .unwrap();
    assert!(resp.starts_with("HTTP/1.1 403 "), "{resp}");
    assert!(!resp.contains("cpu-usage"));

    // The operator, on the database, reaches every room.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_streamwire"))
        .args(["privacy", "export", "--user", "u", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let all: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rooms_of(&all), ["room-a"], "what is left of `u`: {all}");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_streamwire"))
        .args([
            "privacy", "export", "--user", "only-a", "--room", "room-b", "--db",
        ])
        .arg(&db)
        .output()
        .unwrap();
    let none: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(rooms_of(&none).is_empty(), "{none}");
}
