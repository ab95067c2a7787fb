//! Tokens and room names at the edges: `exp` equal to now is expired (RFC 7519), an empty
//! `sub` is refused, `streamwire token` refuses a zero lifetime and an empty user, room names
//! outside the allowed characters are refused naming the field, and nothing a client sends
//! puts a control character into the server's log.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;
use serde_json::json;
use streamwire::signalling::token::{Claims, mint};

const EXE: &str = env!("CARGO_BIN_EXE_streamwire");

fn now_s() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test]
async fn expiry_now_empty_subject_and_bad_room_names_are_refused() {
    let srv = start(config()).await;
    let mut r = Raw::connect(&srv.url).await;
    // `exp` = the current second: RFC 7519 says now must be *before* exp.
    let mut now = Claims::new("r1", "u", "U", Duration::from_secs(0), &all());
    now.exp = now_s();
    r.send_json(json!({"type":"join","v":1,"room":"r1","token":mint(SECRET, &now).unwrap()}))
        .await;
    let (code, in_type, field, msg) = r.error().await;
    assert_eq!(
        (code.as_str(), in_type.as_deref(), field.as_deref()),
        ("token_expired", Some("join"), Some("token")),
        "{msg}"
    );
    let nobody = Claims::new("r1", "", "Nobody", Duration::from_secs(60), &all());
    r.send_json(json!({"type":"join","v":1,"room":"r1","token":mint(SECRET, &nobody).unwrap()}))
        .await;
    let (code, _, field, msg) = r.error().await;
    assert_eq!(
        (code.as_str(), field.as_deref()),
        ("token_invalid", Some("token"))
    );
    assert!(msg.contains("`sub`"), "{msg}");
    for (room, needle) in [
        ("", "empty"),
        ("a\u{0}b", "U+0000"),
        ("bell\u{7}", "U+0007"),
        ("two words", "U+0020"),
        ("caf\u{e9}", "U+00E9"),
        (&"x".repeat(65)[..], "65 bytes"),
    ] {
        let t = mint(
            SECRET,
            &Claims::new(room, "u", "U", Duration::from_secs(60), &all()),
        )
        .unwrap();
        r.send_json(json!({"type":"join","v":1,"room":room,"token":t}))
            .await;
        let (code, in_type, field, msg) = r.error().await;
        assert_eq!(
            (code.as_str(), in_type.as_deref(), field.as_deref()),
            ("invalid_field", Some("join"), Some("room")),
            "{room:?}: {msg}"
        );
        assert!(msg.contains(needle), "{room:?}: {msg}");
    }
    // The longest allowed name, with every allowed punctuation character, works.
    let room = format!("A-z_0.9~:@{}", "r".repeat(54));
    assert_eq!(room.len(), 64);
    r.send_json(json!({"type":"join","v":1,"room":room,"token":token(&room, "u", &all())}))
        .await;
    assert!(matches!(
        r.recv().await,
        streamwire::signalling::protocol::ServerMsg::Welcome { .. }
    ));
}

#[test]
fn token_command_refuses_zero_lifetime_empty_user_and_bad_rooms() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret");
    std::fs::write(&secret, SECRET).unwrap();
    let run = |args: &[&str]| {
        let out = Command::new(EXE)
            .arg("token")
            .args(args)
            .arg("--secret-file")
            .arg(&secret)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, err) = run(&["--room", "r", "--user", "u", "--ttl", "0s"]);
    assert!(
        !ok && err.contains("--ttl") && err.contains("at least 1s"),
        "{err}"
    );
    let (ok, err) = run(&["--room", "r", "--user", ""]);
    assert!(!ok && err.contains("--user"), "{err}");
    let (ok, err) = run(&["--room", "a\u{7}", "--user", "u"]);
    assert!(
        !ok && err.contains("--room") && err.contains("U+0007"),
        "{err}"
    );
    let (ok, err) = run(&["--room", "r", "--user", "u", "--ttl", "1s"]);
    assert!(ok, "{err}");
}

/// Control characters in room names, message types, fields and token claims never reach the
/// server's log raw (before, NUL and BEL from a `join` went straight into it).
#[tokio::test]
async fn nothing_a_client_sends_puts_control_characters_into_the_log() {
    let srv = ServeProcess::spawn_logging(&[], None, "debug").await;
    let evil = "\u{0}\u{7}\u{1b}[31m\r\nFAKE LOG LINE\u{8}";
    let mut r = Raw::connect(&srv.url).await;
    r.send_json(json!({"type":"join","v":1,"room":evil,"token":"x"}))
        .await;
    r.error().await;
    r.send_json(json!({"type":"join","v":1,"room":"ok","token":format!("{evil}.{evil}.{evil}")}))
        .await;
    r.error().await;
    let claims = Claims::new("ok", evil, evil, Duration::from_secs(60), &all());
    r.send_json(json!({"type":"join","v":1,"room":"other","token":mint(SECRET, &claims).unwrap()}))
        .await;
    r.error().await;
    r.send_json(json!({"type":evil})).await;
    r.error().await;
    r.send_json(json!({"type":"offer","to":evil,"sdp":evil}))
        .await;
    r.error().await;
    r.send(&format!("{{\"type\":\"join\",{evil}")).await;
    r.error().await;
    // A joined peer whose token carries control characters in `sub` and `name`.
    let (mut p, _) = Raw::join(&srv.url, "ok", &mint(SECRET, &claims).unwrap()).await;
    p.send_json(json!({"type":"kick","peer_id":evil})).await;
    p.error().await;
    p.send_json(json!({"type":"set_metadata","metadata":evil}))
        .await;
    p.send_json(json!({"type":"leave"})).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let log = srv.log();
    assert!(
        log.contains("join refused"),
        "the log has the refusals: {log}"
    );
    let bad: Vec<(usize, char)> = log
        .char_indices()
        .filter(|(_, c)| c.is_control() && *c != '\n')
        .collect();
    assert!(
        bad.is_empty(),
        "control characters in the log at {:?}:\n{log}",
        &bad[..bad.len().min(10)]
    );
}
