//! Media through a real TURN server between peers that have no direct path, with the
//! credentials the signalling server mints: coturn (`turnserver`, `use-auth-secret`) and the
//! signalling server on a "TURN host" (the test's own namespace, 10.0.0.1), and two
//! `streamwire run` processes (publish-test, subscribe-record), each in a namespace of its own
//! joined to the host by a veth pair, with a route to the host only (the host does not
//! forward). The peers gather ICE on every interface, their production default. UDP TURN with
//! TCP to the TURN port dropped, and TCP TURN (`?transport=tcp`) with UDP to it dropped; coturn's
//! log shows both peers' allocations under their minted usernames. Expired credentials are named
//! at join, and the connection that cannot connect is reported lost and rebuilt.
//! Run: unshare -n sh -c 'ip link set lo up; cargo test --test turn_relay'

mod common;
mod netns_support;
mod proc_support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use netns_support::{Netns, isolated, sh};
use proc_support::{BIN, Proc, received_frames};
use streamwire::server::Server;
use streamwire::server::turn::TurnConfig;

const HOST: &str = "10.0.0.1";
const TURN_PORT: u16 = 3478;
const TURN_SECRET: &[u8] = b"coturn-static-auth-secret-for-tests";

/// coturn on `HOST`, REST-API credentials checked against `TURN_SECRET` (ended on drop).
struct Coturn {
    child: Child,
    _dir: tempfile::TempDir,
}

impl Coturn {
    fn start() -> Coturn {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display();
        let child = Command::new("turnserver")
            .args([
                "-n",
                &format!("--listening-ip={HOST}"),
                &format!("--relay-ip={HOST}"),
                &format!("--listening-port={TURN_PORT}"),
                "--use-auth-secret",
                &format!(
                    "--static-auth-secret={}",
                    std::str::from_utf8(TURN_SECRET).unwrap()
                ),
                "--realm=streamwire.test",
                "--no-tls",
                "--no-dtls",
                "--no-cli",
                "--min-port=49160",
                "--max-port=49260",
                &format!("--pidfile={d}/turnserver.pid"),
                &format!("--userdb={d}/turndb"),
                &format!("--log-file={d}/turn.log"),
                "--simple-log",
                "--verbose",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("turnserver (Debian coturn) starts");
        let t = Coturn { child, _dir: dir };
        // Listening once it answers a TCP connection on the TURN port.
        let start = Instant::now();
        while std::net::TcpStream::connect((HOST, TURN_PORT)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "coturn did not listen"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        t
    }
}

impl Coturn {
    /// coturn's log so far.
    fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("turn.log")).unwrap_or_default()
    }

    /// Both peers allocated a relay with their own minted `<expiry>:<peer id>` username.
    fn assert_both_peers_allocated(&self) {
        let log = self.log();
        let users: std::collections::BTreeSet<&str> = log
            .lines()
            .filter(|l| l.contains("ALLOCATE processed, success"))
            .filter_map(|l| l.split_once(" user <")?.1.split_once('>').map(|(u, _)| u))
            .collect();
        assert_eq!(users.len(), 2, "allocations by {users:?}:\n{log}");
        for u in users {
            let (expiry, peer) = u.split_once(':').unwrap();
            assert!(expiry.parse::<u64>().is_ok() && !peer.is_empty(), "{u}");
        }
    }
}

impl Drop for Coturn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Two peer namespaces, each with a route to the host only; asserts there is no path
/// between them.
fn peers() -> (Netns, Netns) {
    sh(&format!(
        "ip addr add {HOST}/32 dev lo && sysctl -qw net.ipv4.ip_forward=0"
    ));
    let a = Netns::new();
    a.link("va", "10.0.1.1/24", "10.0.1.2/24");
    a.sh(&format!("ip route add {HOST}/32 via 10.0.1.1"));
    let b = Netns::new();
    b.link("vb", "10.0.2.1/24", "10.0.2.2/24");
    b.sh(&format!("ip route add {HOST}/32 via 10.0.2.1"));
    // No route from a to b's address (and the host would not forward anyway).
    let out = a
        .command("ip")
        .args(["route", "get", "10.0.2.2"])
        .output()
        .unwrap();
    assert!(!out.status.success(), "a has a route to b");
    (a, b)
}

/// Drop `proto` (tcp or udp) to the TURN port on the host.
fn drop_to_turn_port(proto: &str) {
    sh(&format!(
        "nft add table inet t && nft add chain inet t in '{{ type filter hook input priority 0; }}' \
         && nft add rule inet t in {proto} dport {TURN_PORT} drop"
    ));
}

/// The signalling server on `HOST` announcing `turn_urls` (if any) with minted credentials.
async fn signalling(turn_urls: Vec<String>) -> String {
    let mut cfg = common::config();
    cfg.addr = format!("{HOST}:0").parse().unwrap();
    cfg.turn = (!turn_urls.is_empty()).then(|| {
        TurnConfig::new(turn_urls, TURN_SECRET.to_vec(), Duration::from_secs(600)).unwrap()
    });
    let server = Server::bind(cfg).await.expect("bind");
    let url = format!("ws://{}", server.local_addr());
    tokio::spawn(server.run());
    url
}

/// publish-test in `a`, subscribe-record in `b`: the recorder receives 60 frames.
async fn media_through(url: &str, a: &Netns, b: &Netns) {
    let dir = tempfile::tempdir().unwrap();
    let server_set = format!("room.server={url}");
    let rec_token = common::token("demo", "recorder", &common::all());
    let pub_token = common::token("demo", "camera", &common::all());
    let mut rec = b.command(BIN);
    rec.args(["run", "subscribe-record", "--set", &server_set])
        .args(["--set", &format!("room.token={rec_token}")])
        .args(["--set", "output=record:rec", "--for", "40s"])
        .env_remove("RUST_LOG")
        .env_remove(streamwire::preset::TOKEN_ENV)
        .current_dir(dir.path());
    let recorder = Proc::start(rec);
    recorder
        .wait_for("joined room `demo`", Duration::from_secs(20))
        .await;
    let mut publ = a.command(BIN);
    publ.args(["run", "publish-test", "--set", &server_set])
        .args(["--set", &format!("room.token={pub_token}")])
        .args(["--for", "40s"])
        .env_remove("RUST_LOG")
        .env_remove(streamwire::preset::TOKEN_ENV)
        .current_dir(dir.path());
    let publisher = Proc::start(publ);
    let start = Instant::now();
    while received_frames(&recorder.stderr()) < 60 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "recorder:\n{}\npublisher:\n{}",
            recorder.stderr(),
            publisher.stderr()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    recorder.interrupt();
    publisher.interrupt();
    let (status, err) = recorder.finish(Duration::from_secs(20)).await;
    assert!(status.success(), "recorder: {status:?}\n{err}");
    let (status, err) = publisher.finish(Duration::from_secs(20)).await;
    assert!(status.success(), "publisher: {status:?}\n{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_flows_through_udp_turn_between_peers_with_no_route() {
    if !isolated("media_flows_through_udp_turn_between_peers_with_no_route") {
        return;
    }
    let (a, b) = peers();
    let turn = Coturn::start();
    // TCP to the TURN port never arrives: the relay is UDP TURN.
    drop_to_turn_port("tcp");
    let url = signalling(vec![format!("turn:{HOST}:{TURN_PORT}")]).await;
    media_through(&url, &a, &b).await;
    turn.assert_both_peers_allocated();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_flows_through_tcp_turn_when_udp_to_it_is_dropped() {
    if !isolated("media_flows_through_tcp_turn_when_udp_to_it_is_dropped") {
        return;
    }
    let (a, b) = peers();
    let turn = Coturn::start();
    // UDP to the TURN port never arrives: only TURN over TCP can work.
    drop_to_turn_port("udp");
    let url = signalling(vec![format!("turn:{HOST}:{TURN_PORT}?transport=tcp")]).await;
    media_through(&url, &a, &b).await;
    turn.assert_both_peers_allocated();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_turn_credentials_are_named_and_the_connection_is_retried() {
    if !isolated("expired_turn_credentials_are_named_and_the_connection_is_retried") {
        return;
    }
    let (a, b) = peers();
    let _turn = Coturn::start();
    // No TURN from the server: only the peers' own credentials, which expired in 1970.
    let url = signalling(Vec::new()).await;
    let dir = tempfile::tempdir().unwrap();
    let server_set = format!("room.server={url}");
    let ice_set = format!(r#"room.ice_servers=["turn://1500%3Apeer:secret@{HOST}:{TURN_PORT}"]"#);
    let start = |ns: &Netns, preset: &str, user: &str, extra: &[&str]| {
        let token = common::token("demo", user, &common::all());
        let mut cmd = ns.command(BIN);
        cmd.args(["run", preset, "--set", &server_set, "--set", &ice_set])
            .args(["--set", &format!("room.token={token}")])
            .args(extra)
            .args(["--for", "40s"])
            .env_remove(streamwire::preset::TOKEN_ENV)
            .env("RUST_LOG", "warn")
            .current_dir(dir.path());
        Proc::start(cmd)
    };
    let recorder = start(
        &b,
        "subscribe-record",
        "recorder",
        &["--set", "output=record:rec"],
    );
    recorder
        .wait_for("joined room `demo`", Duration::from_secs(20))
        .await;
    let publisher = start(&a, "publish-test", "camera", &[]);
    // The expiry is named at join...
    publisher
        .wait_for(
            "the TURN credentials expired at 1500",
            Duration::from_secs(20),
        )
        .await;
    // ...and the connection that cannot connect (ICE fails: coturn refuses the allocation and
    // there is no direct path) is reported and rebuilt, not left hanging.
    publisher
        .wait_for("rebuilding the connection to", Duration::from_secs(30))
        .await;
    // The answerer reports once its connection (rebuilt on each new offer) has not connected
    // within the connect timeout (10 s).
    recorder
        .wait_for("lost: nothing for", Duration::from_secs(30))
        .await;
    assert_eq!(
        received_frames(&recorder.stderr()),
        0,
        "{}",
        recorder.stderr()
    );
    recorder.interrupt();
    publisher.interrupt();
    let (status, err) = recorder.finish(Duration::from_secs(20)).await;
    assert!(status.success(), "recorder: {status:?}\n{err}");
    let (status, err) = publisher.finish(Duration::from_secs(20)).await;
    assert!(status.success(), "publisher: {status:?}\n{err}");
}
