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
        let (ws, _) = within("ws connect", async_tungstenite::tokio::connect_async(url))
            .await
            .expect("connect");
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
        let task = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = l.accept().await {
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
        }
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
