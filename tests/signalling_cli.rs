//! The binary: `streamwire serve` + `streamwire token` end to end (secret file created,
//! token minted, a client joins, SIGTERM shuts down gracefully), and `streamwire bench
//! signalling` at a tiny size reporting consistent counts.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::within;
use streamwire::signalling::client::{Client, ClientConfig};
use streamwire::signalling::protocol::ServerMsg;

const EXE: &str = env!("CARGO_BIN_EXE_streamwire");

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn serve_and_token_end_to_end_with_graceful_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret");
    let port = free_port();
    let mut server = Command::new(EXE)
        .args([
            "serve",
            "--addr",
            &format!("127.0.0.1:{port}"),
            "--grace",
            "5s",
            "--secret-file",
        ])
        .arg(&secret)
        .arg("--db")
        .arg(dir.path().join("telemetry.db"))
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    within("server listening", async {
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert_eq!(
        std::fs::read(&secret).unwrap().len(),
        64,
        "random secret written"
    );
    let out = Command::new(EXE)
        .args([
            "token",
            "--room",
            "cli",
            "--user",
            "ann",
            "--ttl",
            "10m",
            "--grant",
            "message,publish",
            "--secret-file",
        ])
        .arg(&secret)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let url = format!("ws://127.0.0.1:{port}");
    let (client, _ev) = within(
        "join",
        Client::connect(ClientConfig::new(&url, "cli", &token)),
    )
    .await
    .unwrap();
    let w = client.welcome().unwrap();
    assert_eq!((w.user.as_str(), w.grants.len()), ("ann", 2));
    // A raw peer sees the shutdown announcement on SIGTERM.
    let (mut raw, _) = common::Raw::join(&url, "cli", &{
        let o = Command::new(EXE)
            .args(["token", "--room", "cli", "--user", "bob", "--secret-file"])
            .arg(&secret)
            .output()
            .unwrap();
        String::from_utf8(o.stdout).unwrap().trim().to_owned()
    })
    .await;
    let st = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    raw.expect("bye shutdown", |m| {
        matches!(
            m,
            ServerMsg::Bye {
                reconnect: true,
                ..
            }
        )
        .then_some(())
    })
    .await;
    let status = within("server exits", async {
        loop {
            if let Some(s) = server.try_wait().unwrap() {
                return s;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(status.success(), "{status}");
    // Bad input is reported clearly, not with a panic.
    let out = Command::new(EXE)
        .args([
            "token",
            "--room",
            "r",
            "--user",
            "u",
            "--grant",
            "superpowers",
            "--secret-file",
        ])
        .arg(&secret)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--grant") && err.contains("superpowers"),
        "{err}"
    );
    std::fs::write(dir.path().join("short"), "tooshort").unwrap();
    let out = Command::new(EXE)
        .args(["token", "--room", "r", "--user", "u", "--secret-file"])
        .arg(dir.path().join("short"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("short") && err.contains("32"),
        "{err}"
    );
}

#[test]
fn bench_signalling_runs_and_counts_consistently() {
    let out = Command::new(EXE)
        .args([
            "bench",
            "signalling",
            "--peers",
            "20",
            "--rooms",
            "4",
            "--duration",
            "1s",
            "--broadcast-rate",
            "100",
        ])
        .args(["--relay-pairs", "2", "--relay-rates", "400", "--json"])
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["peers"], 20);
    assert_eq!(r["connections_held"], 24, "20 peers + 2 pairs");
    assert_eq!(r["memory"]["method"], "child-process");
    assert!(
        r["memory"]["rss_after_kib"].as_u64().unwrap()
            > r["memory"]["rss_before_kib"].as_u64().unwrap()
    );
    let b = &r["broadcast"];
    assert!(b["expected_deliveries"].as_u64().unwrap() > 0);
    assert_eq!(
        b["deliveries"], b["expected_deliveries"],
        "every broadcast delivered"
    );
    assert_eq!(b["latency"]["samples"], b["deliveries"]);
    let relay = &r["relay"][0];
    assert_eq!(relay["offered_per_s"], 400);
    assert_eq!(relay["received"], relay["sent"]);
    assert!(relay["sent"].as_u64().unwrap() >= 300, "{relay}");
}
