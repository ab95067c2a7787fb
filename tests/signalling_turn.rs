//! TURN credentials minted by a real signalling server on 127.0.0.1: per-peer REST-API
//! credentials in `welcome` (checked against `openssl dgst -hmac`), fresh ones in `resumed`
//! and in an `ice_servers` frame every half lifetime (also through the Rust client), and the
//! `serve` flags: `--turn-*` and the state directory.
//! Run: unshare -n sh -c 'ip link set lo up; cargo test --test signalling_turn'

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{Raw, within};
use streamwire::server::turn::TurnConfig;
use streamwire::signalling::client::{Client, ClientConfig, Event};
use streamwire::signalling::protocol::{IceServer, ServerMsg};

const EXE: &str = env!("CARGO_BIN_EXE_streamwire");
const TURN_SECRET: &[u8] = b"coturn-static-auth-secret";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// base64(HMAC-SHA1(key, text)) computed by openssl, an implementation of its own.
fn openssl_hmac(key: &[u8], text: &str) -> String {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "openssl dgst -sha1 -hmac '{}' -binary | base64",
            std::str::from_utf8(key).unwrap()
        ))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("openssl");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// The minted entry of a server list: urls, username, and the username's expiry.
fn minted(servers: &[IceServer], peer_id: &str) -> (Vec<String>, String, u64) {
    let s = servers
        .iter()
        .find(|s| s.username.is_some())
        .unwrap_or_else(|| panic!("no credentials in {servers:?}"));
    let user = s.username.clone().unwrap();
    let (expiry, name) = user.split_once(':').unwrap();
    assert_eq!(name, peer_id);
    assert_eq!(
        s.credential.as_deref(),
        Some(openssl_hmac(TURN_SECRET, &user).as_str()),
        "credential of {user}"
    );
    (s.urls.clone(), user.clone(), expiry.parse().unwrap())
}

fn config(ttl: Duration) -> streamwire::server::ServerConfig {
    let mut cfg = common::config();
    cfg.ice_servers = vec![IceServer {
        urls: vec!["stun:127.0.0.1:3478".into()],
        username: None,
        credential: None,
    }];
    cfg.turn = Some(
        TurnConfig::new(
            vec![
                "turn:127.0.0.1:3478".into(),
                "turn:127.0.0.1:3478?transport=tcp".into(),
            ],
            TURN_SECRET.to_vec(),
            ttl,
        )
        .unwrap(),
    );
    cfg
}

#[tokio::test]
async fn welcome_resumed_and_refresh_carry_fresh_per_peer_credentials() {
    let ttl = Duration::from_secs(10);
    let srv = common::start(config(ttl)).await;
    let token = common::token("r", "ann", &common::all());
    let (mut a, w) = Raw::join(&srv.url, "r", &token).await;
    let ServerMsg::Welcome { ice_servers, .. } = w else {
        unreachable!()
    };
    // The configured STUN server first, then the minted TURN entry.
    assert_eq!(ice_servers[0].urls, vec!["stun:127.0.0.1:3478".to_string()]);
    assert!(ice_servers[0].username.is_none());
    let (urls, user, expiry) = minted(&ice_servers, &a.peer_id);
    assert_eq!(
        urls,
        vec![
            "turn:127.0.0.1:3478".to_string(),
            "turn:127.0.0.1:3478?transport=tcp".to_string()
        ]
    );
    assert!(expiry.abs_diff(now() + 10) <= 2, "expiry {expiry}");
    // Another peer has credentials of its own.
    let (b, wb) = Raw::join(&srv.url, "r", &common::token("r", "bob", &common::all())).await;
    let ServerMsg::Welcome {
        ice_servers: ib, ..
    } = wb
    else {
        unreachable!()
    };
    let (_, user_b, _) = minted(&ib, &b.peer_id);
    assert_ne!(user, user_b);

    // Every half lifetime the session gets fresh ones in its stream.
    let fresh = tokio::time::timeout(Duration::from_secs(8), async {
        loop {
            if let ServerMsg::IceServers { n, ice_servers } = a.recv().await {
                assert!(n > 0, "part of the reliable stream");
                return ice_servers;
            }
        }
    })
    .await
    .expect("an ice_servers frame within 8 s (refresh every 5 s)");
    let (_, user2, expiry2) = minted(&fresh, &a.peer_id);
    assert!(expiry2 > expiry, "{user2} after {user}");

    // A resume mints again.
    let tok = a.resume_token.clone();
    drop(a);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let mut back = Raw::connect(&srv.url).await;
    back.send_json(serde_json::json!({"type":"resume","v":1,"resume_token":tok,"last_n":0}))
        .await;
    match back.recv().await {
        ServerMsg::Resumed {
            peer_id,
            ice_servers,
            ..
        } => {
            let (_, _, expiry3) = minted(&ice_servers, &peer_id);
            assert!(expiry3 >= expiry2, "{expiry3} < {expiry2}");
            assert_eq!(ice_servers.len(), 2, "the STUN entry too");
        }
        other => panic!("{other:?}"),
    }
    drop(b);
}

#[tokio::test]
async fn the_rust_client_takes_refreshed_servers_into_its_welcome() {
    let srv = common::start(config(Duration::from_secs(10))).await;
    let token = common::token("r", "ann", &common::all());
    let (client, mut events) = Client::connect(ClientConfig::new(&srv.url, "r", &token))
        .await
        .unwrap();
    let w = client.welcome().unwrap();
    let (_, first, _) = minted(&w.ice_servers, &w.peer_id);
    let fresh = within("Event::IceServers", async {
        loop {
            if let Some(Event::IceServers { ice_servers }) = events.recv().await {
                return ice_servers;
            }
        }
    })
    .await;
    let (_, second, _) = minted(&fresh, &w.peer_id);
    assert_ne!(first, second);
    assert_eq!(client.welcome().unwrap().ice_servers, fresh);
    client.leave().await;
}

#[test]
fn serve_turn_flags_and_state_directory() {
    let dir = tempfile::tempdir().unwrap();
    // --turn-url without a secret, and a bad TURN URL, are refused before listening.
    let out = Command::new(EXE)
        .args([
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--turn-url",
            "turn:h:3478",
        ])
        .arg("--state-dir")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--turn-secret-file"), "{err}");
    let secret = dir.path().join("turn.secret");
    std::fs::write(&secret, "s\n").unwrap();
    let out = Command::new(EXE)
        .args([
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--turn-url",
            "stun:h:3478",
        ])
        .arg("--turn-secret-file")
        .arg(&secret)
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("`stun:h:3478`") && err.contains("--turn-url"),
        "{err}"
    );

    // With a state directory: the secret and the database go there (created), the paths
    // are printed, and `token` finds the same secret there.
    let state = dir.path().join("state");
    let mut server = Command::new(EXE)
        .args(["serve", "--addr", "127.0.0.1:0"])
        .arg("--state-dir")
        .arg(&state)
        .args(["--turn-url", "turn:127.0.0.1:3478", "--turn-ttl", "30m"])
        .arg("--turn-secret-file")
        .arg(&secret)
        .current_dir(dir.path())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = server.stderr.take().unwrap();
    let lines = std::thread::spawn(move || {
        use std::io::BufRead;
        std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
            .take(2)
            .collect::<Vec<_>>()
    })
    .join()
    .unwrap();
    let _ = server.kill();
    let _ = server.wait();
    let text = lines.join("\n");
    assert!(
        text.contains(&format!(
            "secret {}",
            state.join("streamwire.secret").display()
        )) && text.contains(&format!(
            "telemetry database {}",
            state.join("streamwire-telemetry.db").display()
        )),
        "{text}"
    );
    assert!(
        text.contains("TURN credentials for turn:127.0.0.1:3478 (lifetime 30m)"),
        "{text}"
    );
    assert!(state.join("streamwire.secret").is_file());
    assert!(
        !dir.path().join("streamwire.secret").exists(),
        "nothing in the current directory"
    );
    let out = Command::new(EXE)
        .args(["token", "--room", "r", "--user", "u"])
        .env("STREAMWIRE_STATE_DIR", &state)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
