//! Shared helpers for the signalling tests: a real server on 127.0.0.1:0, raw WebSocket
//! peers speaking the protocol by hand, and a TCP proxy whose connections a test can kill.
#![allow(dead_code)]

use parking_lot::Mutex;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_tungstenite::tungstenite::Message;
use futures::StreamExt;
use streamwire::server::{Server, ServerConfig, ServerHandle};
use streamwire::signalling::protocol::{Grant, ServerMsg};
use streamwire::signalling::token::{Claims, mint};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

pub const SECRET: &[u8] = b"test-secret-0123456789abcdef-0123456789";
pub const T: Duration = Duration::from_secs(10);

/// Await with the test timeout.
pub async fn within<F: std::future::Future>(what: &str, f: F) -> F::Output {
    match tokio::time::timeout(T, f).await {
        Ok(v) => v,
        Err(_) => panic!("timed out: {what}"),
    }
}

/// One HTTP/1.1 GET of `path` with extra header lines (each ending in `\r\n`): the status
/// line and the body (the server closes the connection after one response).
pub async fn http_get(addr: SocketAddr, path: &str, headers: &str) -> (String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n{headers}\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = String::new();
    within("http response", s.read_to_string(&mut out))
        .await
        .unwrap();
    let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    let status = head.lines().next().unwrap_or("").to_owned();
    (status, body.to_owned())
}

pub fn config() -> ServerConfig {
    ServerConfig::new("127.0.0.1:0".parse().unwrap(), SECRET.to_vec())
}

pub struct TestServer {
    pub handle: ServerHandle,
    pub url: String,
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub async fn start(cfg: ServerConfig) -> TestServer {
    let server = Server::bind(cfg).await.expect("bind");
    let addr = server.local_addr();
    assert!(addr.ip().is_loopback());
    let handle = server.handle();
    let task = tokio::spawn(server.run());
    TestServer {
        handle,
        url: format!("ws://{addr}"),
        addr,
        task,
    }
}

pub fn token(room: &str, user: &str, grants: &[Grant]) -> String {
    mint(
        SECRET,
        &Claims::new(room, user, user, Duration::from_secs(3600), grants),
    )
    .unwrap()
}

pub fn all() -> Vec<Grant> {
    Grant::ALL.to_vec()
}

type RawWs = async_tungstenite::WebSocketStream<async_tungstenite::tokio::TokioAdapter<TcpStream>>;

/// A peer driving the protocol by hand.
pub struct Raw {
    pub ws: RawWs,
    pub peer_id: String,
    pub resume_token: String,
}

impl Raw {
    pub async fn connect(url: &str) -> Raw {
        // Plain TCP, then the handshake over it: one stream type whatever TLS features the
        // dependency tree enables in async-tungstenite (`connect_async`'s type follows them).
        let authority = url
            .strip_prefix("ws://")
            .and_then(|rest| rest.split('/').next())
            .expect("a ws:// URL");
        let tcp = within("tcp connect", TcpStream::connect(authority))
            .await
            .expect("tcp connect");
        let (ws, _) = within(
            "ws handshake",
            async_tungstenite::tokio::client_async(url, tcp),
        )
        .await
        .expect("handshake");
        Raw {
            ws,
            peer_id: String::new(),
            resume_token: String::new(),
        }
    }

    pub async fn send(&mut self, text: &str) {
        within("send", self.ws.send(Message::Text(text.to_owned().into())))
            .await
            .expect("send");
    }

    pub async fn send_json(&mut self, v: serde_json::Value) {
        self.send(&v.to_string()).await
    }

    /// Next text frame as (raw JSON value, typed message).
    pub async fn recv(&mut self) -> ServerMsg {
        loop {
            let m = within("recv", self.ws.next())
                .await
                .expect("stream ended")
                .expect("ws error");
            if let Message::Text(t) = m {
                return serde_json::from_str(t.as_str())
                    .unwrap_or_else(|e| panic!("bad server frame {t}: {e}"));
            }
        }
    }

    /// Receive frames until `f` matches, returning it; panics on timeout.
    pub async fn expect<R>(&mut self, what: &str, mut f: impl FnMut(&ServerMsg) -> Option<R>) -> R {
        let deadline = tokio::time::Instant::now() + T;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let m = tokio::time::timeout(left, self.recv())
                .await
                .unwrap_or_else(|_| panic!("timed out waiting for {what}"));
            if let Some(r) = f(&m) {
                return r;
            }
        }
    }

    /// Ping/pong barrier: returns every frame received before the pong.
    pub async fn drain(&mut self) -> Vec<ServerMsg> {
        self.send(r#"{"type":"ping"}"#).await;
        let mut out = Vec::new();
        loop {
            match self.recv().await {
                ServerMsg::Pong {} => return out,
                m => out.push(m),
            }
        }
    }

    /// Join and return the welcome.
    pub async fn join(url: &str, room: &str, token: &str) -> (Raw, ServerMsg) {
        let mut r = Raw::connect(url).await;
        r.send_json(serde_json::json!({"type":"join","v":1,"room":room,"token":token}))
            .await;
        let w = r.recv().await;
        match &w {
            ServerMsg::Welcome {
                peer_id,
                resume_token,
                ..
            } => {
                r.peer_id = peer_id.clone();
                r.resume_token = resume_token.clone();
            }
            other => panic!("expected welcome, got {other:?}"),
        }
        (r, w)
    }

    pub async fn error(&mut self) -> (String, Option<String>, Option<String>, String) {
        self.expect("error frame", |m| match m {
            ServerMsg::Error {
                code,
                message,
                in_type,
                field,
            } => Some((
                code.as_str().to_owned(),
                in_type.clone(),
                field.clone(),
                message.clone(),
            )),
            _ => None,
        })
        .await
    }
}

/// TCP proxy in front of the server; `kill()` drops every live connection (both sides).
pub struct Proxy {
    pub url: String,
    conns: Arc<Mutex<Vec<JoinHandle<()>>>>,
    task: JoinHandle<()>,
    /// While set, new connections are closed at once (the server looks unreachable).
    hold: Arc<std::sync::atomic::AtomicBool>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
        self.kill();
    }
}

impl Proxy {
    pub async fn start(target: SocketAddr) -> Proxy {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let conns: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let c2 = conns.clone();
        let hold = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let held = hold.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = l.accept().await {
                if held.load(std::sync::atomic::Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let h = tokio::spawn(async move {
                    if let Ok(mut out) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                    }
                });
                c2.lock().push(h);
            }
        });
        Proxy {
            url: format!("ws://{addr}"),
            conns,
            task,
            hold,
        }
    }

    /// Refuse (`true`) or accept again (`false`) new connections.
    pub fn hold(&self, on: bool) {
        self.hold.store(on, std::sync::atomic::Ordering::SeqCst);
    }

    /// Abort every proxied connection: both sockets are closed abruptly mid-stream.
    pub fn kill(&self) -> usize {
        let v: Vec<_> = std::mem::take(&mut *self.conns.lock());
        let n = v.iter().filter(|h| !h.is_finished()).count();
        for h in v {
            h.abort();
        }
        n
    }
}

/// A `streamwire serve` child process on 127.0.0.1 (port 0) with a known secret, its stderr
/// collected, for tests that look at the server from outside: file descriptors, memory, log.
pub struct ServeProcess {
    pub child: std::process::Child,
    pub url: String,
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
    log: Arc<Mutex<String>>,
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl ServeProcess {
    /// Start `streamwire serve --addr 127.0.0.1:0 ... extra`, optionally with an fd limit
    /// (soft and hard), and wait until it listens.
    pub async fn spawn(extra: &[&str], nofile: Option<u64>) -> ServeProcess {
        Self::spawn_logging(extra, nofile, "info").await
    }

    /// [`ServeProcess::spawn`] with `RUST_LOG=<level>`.
    pub async fn spawn_logging(extra: &[&str], nofile: Option<u64>, level: &str) -> ServeProcess {
        use std::io::BufRead;
        use std::os::unix::process::CommandExt;
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("secret"), SECRET).unwrap();
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_streamwire"));
        cmd.args(["serve", "--addr", "127.0.0.1:0", "--secret-file"])
            .arg(dir.path().join("secret"))
            .arg("--db")
            .arg(dir.path().join("telemetry.db"))
            .args(extra)
            .env("RUST_LOG", level)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        if let Some(n) = nofile {
            // SAFETY: setrlimit is async-signal-safe; nothing else runs between fork and exec.
            unsafe {
                cmd.pre_exec(move || {
                    let lim = libc::rlimit {
                        rlim_cur: n,
                        rlim_max: n,
                    };
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let mut child = cmd.spawn().expect("spawn streamwire serve");
        let stderr = child.stderr.take().unwrap();
        let log: Arc<Mutex<String>> = Arc::default();
        let (tx, rx) = std::sync::mpsc::channel();
        let l2 = log.clone();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                // Colour codes, if the server writes any, are not part of the address.
                let plain = strip_ansi(&line);
                if let Some(rest) = plain.split("local_addr=").nth(1)
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(rest.split_whitespace().next().unwrap_or("").to_owned());
                }
                let mut l = l2.lock();
                l.push_str(&line);
                l.push('\n');
            }
        });
        let addr: SocketAddr = tokio::task::spawn_blocking(move || rx.recv_timeout(T))
            .await
            .unwrap()
            .expect("server never logged its address")
            .parse()
            .unwrap();
        ServeProcess {
            child,
            url: format!("ws://{addr}"),
            addr,
            dir,
            log,
        }
    }

    /// Open file descriptors of the server process.
    pub fn fd_count(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.child.id()))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    /// Resident memory of the server process, KiB.
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    }

    /// Everything the server logged so far.
    pub fn log(&self) -> String {
        self.log.lock().clone()
    }
}

/// `text` without ANSI escape sequences (`ESC [ ... letter`).
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}
