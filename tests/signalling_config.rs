//! `streamwire serve --config FILE`: every flag is a key of the TOML file, command-line flags
//! override the file, and a bad key or value is reported at its line and column.

mod common;

use std::process::Command;

use common::*;
use serde_json::json;
use streamwire::signalling::protocol::ServerMsg;

const EXE: &str = env!("CARGO_BIN_EXE_streamwire");

#[tokio::test]
async fn the_config_file_sets_every_flag_and_the_command_line_wins() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("streamwire.toml");
    std::fs::write(
        &path,
        r#"# limits
max-frame-bytes = 65536
max-payload-bytes = 32768
rate = 50
burst = 100
max-peers-per-room = 3
max-queue-bytes = 1048576
grace = "5s"
handshake-timeout = "3s"
dev = true
ice-server = ["stun:stun.invalid:3478", "turn:turn.invalid:3478"]
retention = "7d"
"#,
    )
    .unwrap();
    let path_s = path.to_str().unwrap();
    let srv = ServeProcess::spawn(&["--config", path_s, "--rate", "77"], None).await;
    let (_a, w) = Raw::join(&srv.url, "cfg", &token("cfg", "a", &all())).await;
    let ServerMsg::Welcome {
        limits,
        ice_servers,
        grace_ms,
        ..
    } = w
    else {
        unreachable!()
    };
    assert_eq!(
        (
            limits.max_frame_bytes,
            limits.max_payload_bytes,
            limits.rate_per_sec,
            limits.burst,
            limits.max_peers_per_room
        ),
        (65536, 32768, 77, 100, 3),
        "from the file, except --rate from the command line"
    );
    assert_eq!(grace_ms, 5000);
    let urls: Vec<String> = ice_servers.into_iter().flat_map(|s| s.urls).collect();
    assert_eq!(urls, ["stun:stun.invalid:3478", "turn:turn.invalid:3478"]);
    // `dev = true`: the development endpoint is on.
    let mut r = Raw::connect(&srv.url).await;
    r.send_json(json!({"type":"ping"})).await;
    assert!(matches!(r.recv().await, ServerMsg::Pong {}));
    let body = reqwest_like_get(srv.addr, "/dev").await;
    assert!(body.ends_with("{\"dev\":true}"), "{body}");
}

async fn reqwest_like_get(addr: std::net::SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = String::new();
    within("answer", s.read_to_string(&mut out)).await.unwrap();
    out
}

/// `streamwire serve --config <file with text>` run until it fails; its stderr.
fn refused(text: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, text).unwrap();
    let out = Command::new(EXE)
        .arg("serve")
        .arg("--config")
        .arg(&path)
        .args(["--addr", "127.0.0.1:0", "--secret-file"])
        .arg(dir.path().join("secret"))
        .arg("--db")
        .arg(dir.path().join("t.db"))
        .output()
        .unwrap();
    assert!(!out.status.success(), "accepted:\n{text}");
    String::from_utf8_lossy(&out.stderr).replace(&path.display().to_string(), "bad.toml")
}

#[test]
fn bad_keys_and_values_are_reported_at_their_line() {
    let e = refused("rate = 10\n\nmax-frame-byte = 1000\n");
    assert!(e.contains("bad.toml:3:1: `max-frame-byte`"), "{e}");
    assert!(
        e.contains("--max-frame-bytes"),
        "the similar flag is suggested: {e}"
    );
    let e = refused("burst = 4\nrate = \"fast\"\n");
    assert!(e.contains("bad.toml:2:8: `rate`"), "{e}");
    assert!(e.contains("fast"), "{e}");
    let e = refused("grace = \"soon\"\n");
    assert!(
        e.contains("bad.toml:1:9: `grace`") && e.contains("soon"),
        "{e}"
    );
    let e = refused("dev = \"yes\"\n");
    assert!(e.contains("bad.toml:1:7") && e.contains("switch"), "{e}");
    let e = refused("ice-server = [1, {a = 1}]\n");
    assert!(
        e.contains("bad.toml:1:18") && e.contains("ice-server"),
        "{e}"
    );
    let e = refused("retention = \"0s\"\n");
    assert!(e.contains("bad.toml:1:13: `retention`"), "{e}");
    let e = refused("rate = [\n");
    assert!(e.contains("bad.toml:") && e.contains("invalid TOML"), "{e}");
    let e = refused("config = \"other.toml\"\n");
    assert!(
        e.contains("bad.toml:1:1") && e.contains("cannot be set in a config file"),
        "{e}"
    );
    // The offending line is shown under the message.
    let e = refused("rate = \"fast\"\n");
    assert!(e.contains("  1 | rate = \"fast\""), "{e}");
}
