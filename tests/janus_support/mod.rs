//! A real Janus 1.1.2 (Debian `janus`) for the SFU tests: a minimal configuration generated in
//! a temporary directory (the VideoRoom plugin and the WebSocket transport only, `api_secret`
//! and the VideoRoom `admin_key` set, a small RTP port range, `slowlink` events on,
//! ICE on every non-loopback interface),
//! started by the test and killed on drop.
//!
//! Janus never gathers ICE candidates on loopback: the test gives it and the clients the two
//! ends of a veth pair in its own namespace ([`veth`]); nothing leaves that namespace.
#![allow(dead_code)]

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const API_SECRET: &str = "test-janus-api-secret";
pub const ADMIN_KEY: &str = "test-janus-admin-key";
/// Janus's `admin_secret` (its Admin API).
pub const ADMIN_SECRET: &str = "test-janus-admin-secret";
/// Packets lost within a second that make Janus send a `slowlink` event (the value
/// docs/sfu.md recommends; the server's simulcast layer choice needs these events).
pub const SLOWLINK_THRESHOLD: u32 = 4;

/// The clients' address (`v0`); Janus gathers on both ends of the veth pair (see [`veth`]).
pub const CLIENT_ADDR: &str = "10.77.0.1";

/// Restrict a Rust session's ICE to [`CLIENT_ADDR`] (the `SessionConfig` tweak of the SFU
/// tests).
pub fn on_veth(cfg: &mut streamwire::session::SessionConfig) {
    cfg.local_addresses = vec![CLIENT_ADDR.to_owned()];
}

/// The runtime the SFU tests run in (two workers, the machine's cores).
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Add the veth pair `v0` (10.77.0.1) / `v1` (10.77.0.2), both ends in the current namespace.
pub fn veth() {
    crate::netns_support::sh(
        "ip link add v0 type veth peer name v1 && ip addr add 10.77.0.1/24 dev v0 \
         && ip addr add 10.77.0.2/24 dev v1 && ip link set v0 up && ip link set v1 up",
    );
}

/// `/sfu/status` of `room` on `server` with an admin token of it: the `sfu` object (null
/// when the room has no SFU room).
pub async fn sfu_status(server: &crate::common::TestServer, room: &str) -> serde_json::Value {
    let token = crate::common::token(
        room,
        "operator",
        &[streamwire::signalling::protocol::Grant::Admin],
    );
    let (status, body) = crate::common::http_get(
        server.addr,
        &format!("/sfu/status?room={room}"),
        &format!("Authorization: Bearer {token}\r\n"),
    )
    .await;
    assert!(status.contains("200"), "{status}: {body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(v["room"], room);
    v["sfu"].clone()
}

/// A running Janus.
pub struct Janus {
    child: Option<Child>,
    _dir: tempfile::TempDir,
    port: u16,
    /// Its Admin API WebSocket port (on 127.0.0.1).
    pub admin_port: u16,
    /// Its WebSocket API, `ws://127.0.0.1:PORT`.
    pub url: String,
}

impl Drop for Janus {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(60).collect();
            eprintln!("--- Janus log (last 60 lines) ---");
            for l in tail.iter().rev() {
                eprintln!("{l}");
            }
        }
        self.kill();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

const LIB: &str = "/usr/lib/x86_64-linux-gnu/janus";

impl Janus {
    /// Start Janus with RTP (and ICE) ports `rtp_ports` (`"40000-40200"`).
    pub fn start(rtp_ports: &str) -> Janus {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let admin_port = free_port();
        let d = dir.path().display();
        let plugins = [
            "audiobridge",
            "duktape",
            "echotest",
            "lua",
            "nosip",
            "recordplay",
            "sip",
            "streaming",
            "textroom",
            "videocall",
            "voicemail",
        ]
        .map(|p| format!("libjanus_{p}.so"))
        .join(",");
        let main = format!(
            r#"general: {{
    configs_folder = "{d}"
    plugins_folder = "{LIB}/plugins"
    transports_folder = "{LIB}/transports"
    events_folder = "{LIB}/events"
    loggers_folder = "{LIB}/loggers"
    log_to_stdout = true
    debug_level = 4
    api_secret = "{API_SECRET}"
    admin_secret = "{ADMIN_SECRET}"
}}
media: {{
    rtp_port_range = "{rtp_ports}"
    slowlink_threshold = {SLOWLINK_THRESHOLD}
}}
plugins: {{
    disable = "{plugins}"
}}
transports: {{
    disable = "libjanus_http.so,libjanus_mqtt.so,libjanus_nanomsg.so,libjanus_pfunix.so,libjanus_rabbitmq.so"
}}
events: {{
    broadcast = false
    disable = "libjanus_gelfevh.so,libjanus_mqttevh.so,libjanus_nanomsgevh.so,libjanus_rabbitmqevh.so,libjanus_sampleevh.so,libjanus_wsevh.so"
}}
loggers: {{
    disable = "libjanus_jsonlog.so"
}}
"#
        );
        std::fs::write(dir.path().join("janus.jcfg"), main).expect("janus.jcfg");
        std::fs::write(
            dir.path().join("janus.plugin.videoroom.jcfg"),
            format!("general: {{\n    admin_key = \"{ADMIN_KEY}\"\n}}\n"),
        )
        .expect("videoroom config");
        std::fs::write(
            dir.path().join("janus.transport.websockets.jcfg"),
            format!(
                "general: {{\n    ws = true\n    ws_port = {port}\n    ws_ip = \"127.0.0.1\"\n    wss = false\n}}\nadmin: {{\n    admin_ws = true\n    admin_ws_port = {admin_port}\n    admin_ws_ip = \"127.0.0.1\"\n}}\n"
            ),
        )
        .expect("websockets config");
        let mut janus = Janus {
            child: None,
            _dir: dir,
            port,
            admin_port,
            url: format!("ws://127.0.0.1:{port}"),
        };
        janus.restart();
        janus
    }

    /// Kill Janus at once (SIGKILL, as a crash): its rooms, sessions and media are gone.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Start Janus (again, after [`Janus::kill`]) with the same configuration and port, and
    /// wait until it listens.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "Janus is running");
        let dir = self._dir.path();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("janus.log"))
            .expect("log file");
        let child = Command::new("janus")
            .arg("-C")
            .arg(dir.join("janus.jcfg"))
            .arg("-F")
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("janus (Debian package `janus`, scripts/packages.sh)");
        self.child = Some(child);
        let port = self.port;
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "Janus did not listen on 127.0.0.1:{port} within 10 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The server's SFU settings for this instance (its URL, the test's secrets, its Admin
    /// API).
    pub fn sfu_config(&self) -> streamwire::server::sfu::SfuConfig {
        let mut cfg =
            streamwire::server::sfu::SfuConfig::new(vec![self.url.clone()], API_SECRET, ADMIN_KEY);
        cfg.admin = Some(self.admin());
        cfg
    }

    /// The Admin API settings of this instance (every test instance has the same secret).
    pub fn admin(&self) -> streamwire::server::sfu::SfuAdmin {
        streamwire::server::sfu::SfuAdmin {
            port: self.admin_port,
            secret: ADMIN_SECRET.to_owned(),
        }
    }

    /// Janus's log so far (for a failing assertion).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("janus.log")).unwrap_or_default()
    }
}
