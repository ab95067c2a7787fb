//! The signalling server under test: started as a child process, in-process or reached at a
//! URL, and the process figures (RSS, CPU, load) read around it.

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;
use tokio::net::TcpStream;
use tokio::time::Instant;

use streamwire::server::{Server, ServerConfig, ServerHandle};

use super::{BenchError, ServerTarget};
use crate::bench::TempDb;

/// Raise the soft fd limit to the hard limit (5,000 peers need > 10,000 fds with an
/// in-process server). Returns the new soft limit.
pub fn raise_fd_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid pointer to a properly sized struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 0;
        }
        lim.rlim_cur = lim.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
    }
    lim.rlim_cur
}

pub(crate) fn rss_kib(pid: Option<u32>) -> Option<u64> {
    let path = match pid {
        Some(p) => format!("/proc/{p}/status"),
        None => "/proc/self/status".to_owned(),
    };
    let s = std::fs::read_to_string(path).ok()?;
    let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// CPU seconds (user + system) consumed so far by a process (`None` = this process).
pub(super) fn cpu_secs(pid: Option<u32>) -> Option<f64> {
    let path = match pid {
        Some(p) => format!("/proc/{p}/stat"),
        None => "/proc/self/stat".to_owned(),
    };
    let s = std::fs::read_to_string(path).ok()?;
    let after = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    (hz > 0).then(|| ticks / hz as f64)
}

pub(super) fn load_avg() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// CPU used by the server and by the load generator during one phase.
#[derive(Debug, Clone, Serialize)]
pub struct CpuReport {
    /// Server process CPU seconds (absent in-process or with `--url`).
    pub server_cpu_s: Option<f64>,
    /// Load generator (this process) CPU seconds; includes the server when in-process.
    pub generator_cpu_s: Option<f64>,
    /// 1-minute load average when the phase ended (other processes share the machine).
    pub load_avg_1m: Option<f64>,
}

pub(super) struct CpuMark(Option<f64>, Option<f64>);

impl CpuMark {
    pub(super) fn now(server: Option<u32>) -> CpuMark {
        CpuMark(server.and_then(|p| cpu_secs(Some(p))), cpu_secs(None))
    }
    pub(super) fn since(&self, server: Option<u32>) -> CpuReport {
        let end = CpuMark::now(server);
        CpuReport {
            server_cpu_s: end.0.zip(self.0).map(|(b, a)| b - a),
            generator_cpu_s: end.1.zip(self.1).map(|(b, a)| b - a),
            load_avg_1m: load_avg(),
        }
    }
}

pub(super) struct Running {
    pub(super) url: String,
    pub(super) secret: Vec<u8>,
    pub(super) child: Option<std::process::Child>,
    pub(super) in_process: Option<(ServerHandle, tokio::task::JoinHandle<()>)>,
    _secret_file: Option<TempFile>,
    /// The child server's telemetry database, removed afterwards.
    _telemetry_db: Option<TempDb>,
}

pub(super) struct TempFile(PathBuf);
impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(c) = &mut self.child {
            let _ = c.kill();
            let _ = c.wait();
        }
        if let Some((_, t)) = &self.in_process {
            t.abort();
        }
    }
}

pub(super) fn bench_secret() -> Vec<u8> {
    let mut raw = [0u8; 32];
    let _ = getrandom::getrandom(&mut raw);
    raw.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>()
        .into_bytes()
}

pub(super) fn bench_server_config(addr: std::net::SocketAddr, secret: Vec<u8>) -> ServerConfig {
    let mut cfg = ServerConfig::new(addr, secret);
    cfg.limits.rate_per_sec = 1_000_000;
    cfg.limits.burst = 1_000_000;
    cfg.limits.max_peers_per_room = 1_000_000;
    // Every bench peer connects from 127.0.0.1, many at once.
    cfg.limits.max_pending = 100_000;
    cfg.limits.max_pending_per_ip = 100_000;
    cfg
}

pub(super) async fn start_server(target: &ServerTarget) -> Result<Running, BenchError> {
    match target {
        ServerTarget::Url { url, secret } => Ok(Running {
            url: url.clone(),
            secret: secret.clone(),
            child: None,
            in_process: None,
            _secret_file: None,
            _telemetry_db: None,
        }),
        ServerTarget::InProcess => {
            let secret = bench_secret();
            let server = Server::bind(bench_server_config(
                ([127, 0, 0, 1], 0).into(),
                secret.clone(),
            ))
            .await
            .map_err(|e| BenchError::Server(e.to_string()))?;
            let url = format!("ws://{}", server.local_addr());
            let handle = server.handle();
            let task = tokio::spawn(server.run());
            Ok(Running {
                url,
                secret,
                child: None,
                in_process: Some((handle, task)),
                _secret_file: None,
                _telemetry_db: None,
            })
        }
        ServerTarget::Spawn(exe) => {
            let secret = bench_secret();
            let file = TempFile(
                std::env::temp_dir()
                    .join(format!("streamwire-bench-{}.secret", std::process::id())),
            );
            std::fs::write(&file.0, &secret)
                .map_err(|e| BenchError::Server(format!("{}: {e}", file.0.display())))?;
            let db = TempDb::new(&std::env::temp_dir(), "telemetry");
            // Pick a free loopback port (tiny race window; the child reports bind failures).
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map_err(|e| BenchError::Server(e.to_string()))?
                .port();
            let child = std::process::Command::new(exe)
                .args([
                    "serve",
                    "--addr",
                    &format!("127.0.0.1:{port}"),
                    "--rate",
                    "1000000",
                    "--burst",
                    "1000000",
                ])
                .args(["--max-peers-per-room", "1000000"])
                // Every bench peer connects from 127.0.0.1, many at once.
                .args(["--max-pending", "100000", "--max-pending-per-ip", "100000"])
                .arg("--secret-file")
                .arg(&file.0)
                // Keep the telemetry database out of the working directory.
                .arg("--db")
                .arg(&db.0)
                .env(
                    "RUST_LOG",
                    std::env::var("STREAMWIRE_BENCH_SERVER_LOG").unwrap_or_else(|_| "warn".into()),
                )
                .stdin(std::process::Stdio::null())
                // `serve` prints where its state is; the bench's stdout is its JSON report.
                .stdout(std::process::Stdio::null())
                .spawn()
                .map_err(|e| BenchError::Server(format!("spawning {}: {e}", exe.display())))?;
            let url = format!("ws://127.0.0.1:{port}");
            let mut running = Running {
                url,
                secret,
                child: Some(child),
                in_process: None,
                _secret_file: Some(file),
                _telemetry_db: Some(db),
            };
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                if TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                    break;
                }
                if let Some(c) = &mut running.child
                    && let Ok(Some(st)) = c.try_wait()
                {
                    return Err(BenchError::Server(format!("server process exited: {st}")));
                }
                if Instant::now() > deadline {
                    return Err(BenchError::Server(
                        "server did not start listening within 20 s".into(),
                    ));
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Ok(running)
        }
    }
}
