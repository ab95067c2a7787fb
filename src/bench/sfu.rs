//! `streamwire bench sfu`: one publisher (1280x720@30 and one audio track) and N subscribers,
//! each in its own process, through a real `streamwire` server (embedded, with its SFU bridge)
//! and a real Janus, compared in the same run with the mesh (the same server without the SFU).
//!
//! Janus: `--janus URL` (with its secrets), or one started here with a minimal configuration
//! in a temporary directory (VideoRoom + WebSocket transport on 127.0.0.1, `api_secret` and
//! `admin_key` random, RTP ports 40000-40999). Janus gathers no ICE candidates on loopback, so
//! the benchmark needs two non-loopback addresses: run as root in a private network namespace
//! (`unshare -n`), where it adds the veth pair `swb0` 10.77.0.1 / `swb1` 10.77.0.2 (they
//! vanish with the namespace); every session restricts its ICE to 10.77.0.1. It refuses to
//! touch the machine's own namespace.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::latency::{BenchError, LatencyOptions, LatencyReport, SfuTarget};

/// Address every benchmark session gathers ICE on.
pub const CLIENT_ADDR: &str = "10.77.0.1";

const LIB: &str = "/usr/lib/x86_64-linux-gnu/janus";

/// A Janus started by the benchmark (killed on drop).
pub struct OwnJanus {
    child: Child,
    /// Its configuration directory (removed on drop).
    dir: std::path::PathBuf,
    /// `ws://127.0.0.1:PORT`.
    pub url: String,
    /// Its `api_secret`.
    pub api_secret: String,
    /// Its VideoRoom `admin_key`.
    pub admin_key: String,
}

impl Drop for OwnJanus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl OwnJanus {
    /// Its process id (for its CPU time).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

fn random_hex() -> Result<String, BenchError> {
    let mut b = [0u8; 16];
    getrandom::getrandom(&mut b).map_err(|e| BenchError::Run(format!("randomness: {e}")))?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

fn sh(script: &str) -> Result<(), BenchError> {
    let out = Command::new("sh")
        .arg("-c")
        .arg(script)
        .output()
        .map_err(|e| BenchError::Run(format!("sh: {e}")))?;
    if !out.status.success() {
        return Err(BenchError::Run(format!(
            "`{script}` failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

/// Add the veth pair in the current network namespace, which must be a private one.
pub fn prepare_network() -> Result<(), BenchError> {
    let ours = std::fs::read_link("/proc/self/ns/net").ok();
    let init = std::fs::read_link("/proc/1/ns/net").ok();
    if ours.is_none() || ours == init {
        return Err(BenchError::Run(
            "bench sfu adds a veth pair and must run in a private network namespace: \
             unshare -n sh -c 'ip link set lo up; streamwire bench sfu ...'"
                .into(),
        ));
    }
    let have = Command::new("ip")
        .args(["-o", "addr", "show", "to", CLIENT_ADDR])
        .output()
        .map(|o| !o.stdout.is_empty())
        .unwrap_or(false);
    if have {
        return Ok(());
    }
    sh(
        "ip link add swb0 type veth peer name swb1 && ip addr add 10.77.0.1/24 dev swb0 \
        && ip addr add 10.77.0.2/24 dev swb1 && ip link set swb0 up && ip link set swb1 up",
    )
}

/// Start Janus with a generated minimal configuration.
pub fn start_janus() -> Result<OwnJanus, BenchError> {
    let err = |what: &str, e: std::io::Error| BenchError::Run(format!("{what}: {e}"));
    let dir = std::env::temp_dir().join(format!("streamwire-bench-janus-{}", random_hex()?));
    std::fs::create_dir(&dir).map_err(|e| err("temp dir", e))?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| err("a free port", e))?
        .port();
    let (api_secret, admin_key) = (random_hex()?, random_hex()?);
    let d = dir.display();
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
        "general: {{\n configs_folder = \"{d}\"\n plugins_folder = \"{LIB}/plugins\"\n \
         transports_folder = \"{LIB}/transports\"\n events_folder = \"{LIB}/events\"\n \
         loggers_folder = \"{LIB}/loggers\"\n log_to_stdout = true\n debug_level = 3\n \
         api_secret = \"{api_secret}\"\n}}\nmedia: {{\n rtp_port_range = \"40000-40999\"\n}}\n\
         plugins: {{\n disable = \"{plugins}\"\n}}\ntransports: {{\n disable = \
         \"libjanus_http.so,libjanus_mqtt.so,libjanus_nanomsg.so,libjanus_pfunix.so,libjanus_rabbitmq.so\"\n}}\n\
         events: {{\n broadcast = false\n disable = \"libjanus_gelfevh.so,libjanus_mqttevh.so,\
         libjanus_nanomsgevh.so,libjanus_rabbitmqevh.so,libjanus_sampleevh.so,libjanus_wsevh.so\"\n}}\n\
         loggers: {{\n disable = \"libjanus_jsonlog.so\"\n}}\n"
    );
    let write =
        |name: &str, text: String| std::fs::write(dir.join(name), text).map_err(|e| err(name, e));
    write("janus.jcfg", main)?;
    write(
        "janus.plugin.videoroom.jcfg",
        format!("general: {{\n admin_key = \"{admin_key}\"\n}}\n"),
    )?;
    write(
        "janus.transport.websockets.jcfg",
        format!(
            "general: {{\n ws = true\n ws_port = {port}\n ws_ip = \"127.0.0.1\"\n wss = false\n}}\n\
             admin: {{\n admin_ws = false\n}}\n"
        ),
    )?;
    let log = std::fs::File::create(dir.join("janus.log")).map_err(|e| err("log", e))?;
    let child = Command::new("janus")
        .arg("-C")
        .arg(dir.join("janus.jcfg"))
        .arg("-F")
        .arg(&dir)
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(|e| err("log", e))?)
        .stderr(log)
        .spawn()
        .map_err(|e| err("starting janus (Debian package `janus`)", e))?;
    let mut own = OwnJanus {
        child,
        dir,
        url: format!("ws://127.0.0.1:{port}"),
        api_secret,
        admin_key,
    };
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if start.elapsed() > Duration::from_secs(10)
            || own.child.try_wait().ok().flatten().is_some()
        {
            return Err(BenchError::Run(format!(
                "Janus did not listen on 127.0.0.1:{port} within 10 s"
            )));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(own)
}

/// One line of the result: a topology at one subscriber count.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SfuRow {
    /// `sfu` or `mesh`.
    pub topology: &'static str,
    /// Subscribers.
    pub subscribers: usize,
    /// Publisher process CPU seconds per second.
    pub publisher_cpu_per_s: f64,
    /// RTP bytes the publisher sent per second (all its connections), kbit/s.
    pub publisher_uplink_kbps: Option<f64>,
    /// Capture to decoded frame, every subscriber.
    pub decoded: super::latency::Summary,
    /// Capture to the clock-synchronised sink.
    pub rendered: super::latency::Summary,
    /// Join to first decoded frame, one sample per subscriber.
    pub first_frame: super::latency::Summary,
    /// Janus CPU seconds per second (SFU rows, with a Janus started here).
    pub sfu_cpu_per_s: Option<f64>,
    /// The lowest subscriber's decoded frame rate over the window.
    pub min_fps: f64,
}

impl SfuRow {
    /// The row of a latency report.
    pub fn from_report(topology: &'static str, r: &LatencyReport) -> SfuRow {
        SfuRow {
            topology,
            subscribers: r.options.subscribers,
            publisher_cpu_per_s: r.process_cpu_per_s,
            publisher_uplink_kbps: r.publisher_uplink_kbps,
            decoded: r.decoded,
            rendered: r.rendered,
            first_frame: r.first_frame,
            sfu_cpu_per_s: r.sfu_cpu_per_s,
            min_fps: r.min_decoded_fps,
        }
    }
}

/// The options of one run through `target` (`None`: the mesh), ICE on [`CLIENT_ADDR`].
pub fn options(
    base: &LatencyOptions,
    subscribers: usize,
    target: Option<SfuTarget>,
) -> LatencyOptions {
    LatencyOptions {
        subscribers,
        sfu: target,
        ice_address: Some(CLIENT_ADDR.to_owned()),
        ..base.clone()
    }
}
