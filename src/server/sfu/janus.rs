//! A client of Janus's own API over its WebSocket transport (`janus-protocol`): one Janus
//! session per instance, handles attached to the VideoRoom plugin, requests matched to their
//! replies by transaction, and the events Janus sends on its own routed to the handle's owner.
//!
//! Every request carries the `api_secret` (Janus refuses requests without it, so clients that
//! could reach the address still cannot use it); the session is kept alive with a keepalive
//! every [`KEEPALIVE`] (Janus drops sessions silent for 60 s by default).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use async_tungstenite::tungstenite::Message;
use async_tungstenite::tungstenite::client::IntoClientRequest;
use futures::StreamExt;
use parking_lot::Mutex;
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot, watch};

/// How often the Janus session is kept alive.
pub(crate) const KEEPALIVE: Duration = Duration::from_secs(20);

/// How long a request waits for Janus's reply.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a Janus request failed.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum JanusError {
    /// The WebSocket to Janus could not be opened or is closed.
    #[error("Janus at {url}: {detail}")]
    Connection {
        /// The instance.
        url: String,
        /// What failed.
        detail: String,
    },
    /// Janus (or its VideoRoom plugin) refused the request.
    #[error("Janus refused `{request}`: {code} {reason}")]
    Refused {
        /// The request (`create`, `join`, `publish`, ...).
        request: String,
        /// Janus's error code.
        code: i64,
        /// Janus's reason.
        reason: String,
    },
    /// No reply within [`REQUEST_TIMEOUT`].
    #[error("Janus did not answer `{0}` within 10 s")]
    Timeout(String),
}

/// A message Janus sent on its own about a handle (`event`, `webrtcup`, `media`, `hangup`,
/// `detached`, ...), as received.
pub(crate) type HandleEvent = (u64, Value);

struct Inner {
    url: String,
    /// The instance's address (its URL's host, resolved): where other instances send the
    /// RTP of the rooms they share with it (docs/sfu.md, "Several instances").
    address: std::net::IpAddr,
    secret: String,
    session: AtomicU64,
    next_tx: AtomicU64,
    out: mpsc::UnboundedSender<Message>,
    pending: Mutex<HashMap<String, oneshot::Sender<Value>>>,
    /// Where the unsolicited events of each handle go.
    handles: Mutex<HashMap<u64, mpsc::UnboundedSender<HandleEvent>>>,
    alive: AtomicBool,
    /// Set once the connection (or the Janus session) is lost, never cleared: a lost
    /// instance's sessions and handles are gone, a reconnection is a new [`Janus`].
    lost: watch::Sender<bool>,
}

/// One Janus instance (cheap to clone).
#[derive(Clone)]
pub(crate) struct Janus {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Janus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Janus")
            .field("url", &self.inner.url)
            .finish()
    }
}

/// The reply to a plugin request: the plugin's data and the JSEP, if any.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    /// `plugindata.data`.
    pub data: Value,
    /// `jsep` (`{type, sdp}`).
    pub jsep: Option<Value>,
}

impl Janus {
    /// Connect to `url` (`ws://HOST:PORT`), create the Janus session and keep it alive.
    pub(crate) async fn connect(url: &str, secret: &str) -> Result<Janus, JanusError> {
        let conn_err = |detail: String| JanusError::Connection {
            url: url.to_owned(),
            detail,
        };
        let mut req = url
            .into_client_request()
            .map_err(|e| conn_err(e.to_string()))?;
        req.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            async_tungstenite::tungstenite::http::HeaderValue::from_static("janus-protocol"),
        );
        let address = resolve(req.uri())
            .await
            .map_err(|e| conn_err(format!("resolving the host: {e}")))?;
        let (ws, _) = async_tungstenite::tokio::connect_async(req)
            .await
            .map_err(|e| conn_err(e.to_string()))?;
        let (mut sink, mut stream) = ws.split();
        let (out, mut out_rx) = mpsc::unbounded_channel::<Message>();
        let inner = Arc::new(Inner {
            url: url.to_owned(),
            address,
            secret: secret.to_owned(),
            session: AtomicU64::new(0),
            next_tx: AtomicU64::new(1),
            out,
            pending: Mutex::new(HashMap::new()),
            handles: Mutex::new(HashMap::new()),
            alive: AtomicBool::new(true),
            lost: watch::Sender::new(false),
        });
        tokio::spawn(async move {
            while let Some(m) = out_rx.recv().await {
                if sink.send(m).await.is_err() {
                    break;
                }
            }
        });
        let weak = Arc::downgrade(&inner);
        tokio::spawn(async move {
            while let Some(Ok(m)) = stream.next().await {
                let Some(inner) = weak.upgrade() else { return };
                let Message::Text(text) = m else { continue };
                match serde_json::from_str::<Value>(&text) {
                    Ok(v) => inner.dispatch(v),
                    Err(e) => {
                        tracing::warn!(url = %inner.url, error = %e, "undecodable Janus message")
                    }
                }
            }
            if let Some(inner) = weak.upgrade() {
                tracing::warn!(url = %inner.url, "connection to Janus closed");
                inner.lose();
            }
        });
        let janus = Janus { inner };
        let created = janus.call(json!({"janus": "create"}), "create").await?;
        let id = created["data"]["id"]
            .as_u64()
            .ok_or_else(|| conn_err("`create` reply without a session id".into()))?;
        janus.inner.session.store(id, Ordering::Relaxed);
        let weak = Arc::downgrade(&janus.inner);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(KEEPALIVE).await;
                let Some(inner) = weak.upgrade() else { return };
                if !inner.alive.load(Ordering::Relaxed) {
                    return;
                }
                let tx = inner.transaction();
                let msg = json!({"janus": "keepalive", "session_id": id, "transaction": tx,
                                 "apisecret": inner.secret});
                let _ = inner.out.send(Message::Text(msg.to_string().into()));
            }
        });
        tracing::info!(url, session = id, "connected to Janus");
        Ok(janus)
    }

    /// The instance's URL.
    pub(crate) fn url(&self) -> &str {
        &self.inner.url
    }

    /// The instance's address on the private network (its URL's host): a room spanning
    /// several instances has its media forwarded to this address.
    pub(crate) fn address(&self) -> std::net::IpAddr {
        self.inner.address
    }

    /// The Janus session of this connection (its handles belong to it).
    pub(crate) fn session_id(&self) -> u64 {
        self.inner.session.load(Ordering::Relaxed)
    }

    /// Whether the WebSocket to Janus is still open.
    pub(crate) fn alive(&self) -> bool {
        self.inner.alive.load(Ordering::Relaxed)
    }

    /// Resolves once this connection is lost (at once if it already is): Janus closed the
    /// WebSocket (it stopped or died) or timed the session out. Every handle of it is gone.
    pub(crate) async fn lost(&self) {
        let mut rx = self.inner.lost.subscribe();
        let _ = rx.wait_for(|lost| *lost).await;
    }

    /// Send `msg` (with transaction, secret and session added) and wait for the first reply
    /// that is not an `ack`.
    async fn call(&self, mut msg: Value, what: &str) -> Result<Value, JanusError> {
        let inner = &self.inner;
        if !self.alive() {
            return Err(JanusError::Connection {
                url: inner.url.clone(),
                detail: "connection closed".into(),
            });
        }
        let tx = inner.transaction();
        msg["transaction"] = json!(tx);
        msg["apisecret"] = json!(inner.secret);
        let session = inner.session.load(Ordering::Relaxed);
        if session != 0 {
            msg["session_id"] = json!(session);
        }
        let (reply_tx, reply_rx) = oneshot::channel();
        inner.pending.lock().insert(tx.clone(), reply_tx);
        let _ = inner.out.send(Message::Text(msg.to_string().into()));
        let reply = match tokio::time::timeout(REQUEST_TIMEOUT, reply_rx).await {
            Ok(Ok(v)) => v,
            Ok(Err(_)) => {
                return Err(JanusError::Connection {
                    url: inner.url.clone(),
                    detail: "connection closed".into(),
                });
            }
            Err(_) => {
                inner.pending.lock().remove(&tx);
                return Err(JanusError::Timeout(what.to_owned()));
            }
        };
        if reply["janus"] == "error" {
            return Err(JanusError::Refused {
                request: what.to_owned(),
                code: reply["error"]["code"].as_i64().unwrap_or(0),
                reason: reply["error"]["reason"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            });
        }
        Ok(reply)
    }

    /// Attach a new handle to the VideoRoom plugin; its unsolicited events go to `events`.
    pub(crate) async fn attach(
        &self,
        events: mpsc::UnboundedSender<HandleEvent>,
    ) -> Result<u64, JanusError> {
        let reply = self
            .call(
                json!({"janus": "attach", "plugin": "janus.plugin.videoroom"}),
                "attach",
            )
            .await?;
        let id = reply["data"]["id"]
            .as_u64()
            .ok_or_else(|| JanusError::Connection {
                url: self.inner.url.clone(),
                detail: "`attach` reply without a handle id".into(),
            })?;
        self.inner.handles.lock().insert(id, events);
        Ok(id)
    }

    /// Detach `handle` (Janus hangs up its PeerConnection).
    pub(crate) async fn detach(&self, handle: u64) {
        self.inner.handles.lock().remove(&handle);
        if let Err(e) = self
            .call(json!({"janus": "detach", "handle_id": handle}), "detach")
            .await
        {
            tracing::debug!(handle, error = %e, "detaching a Janus handle");
        }
    }

    /// A VideoRoom request on `handle` with an optional JSEP; the plugin's reply (an error in
    /// it becomes [`JanusError::Refused`]).
    pub(crate) async fn message(
        &self,
        handle: u64,
        body: Value,
        jsep: Option<Value>,
    ) -> Result<Reply, JanusError> {
        let what = body["request"].as_str().unwrap_or("message").to_owned();
        let mut msg = json!({"janus": "message", "handle_id": handle, "body": body});
        if let Some(j) = jsep {
            msg["jsep"] = j;
        }
        let reply = self.call(msg, &what).await?;
        let data = reply["plugindata"]["data"].clone();
        if let Some(code) = data["error_code"].as_i64() {
            return Err(JanusError::Refused {
                request: what,
                code,
                reason: data["error"].as_str().unwrap_or_default().to_owned(),
            });
        }
        Ok(Reply {
            data,
            jsep: reply.get("jsep").cloned(),
        })
    }

    /// Trickle one candidate (`None`: end of candidates) on `handle`.
    pub(crate) fn trickle(&self, handle: u64, candidate: Option<(&str, u32)>) {
        let inner = &self.inner;
        let c = match candidate {
            Some((line, mline)) => json!({"candidate": line, "sdpMLineIndex": mline}),
            None => json!({"completed": true}),
        };
        let msg = json!({"janus": "trickle", "handle_id": handle, "candidate": c,
                         "session_id": inner.session.load(Ordering::Relaxed),
                         "transaction": inner.transaction(), "apisecret": inner.secret});
        let _ = inner.out.send(Message::Text(msg.to_string().into()));
    }
}

/// The IP address of `uri`'s host (the first one it resolves to).
async fn resolve(
    uri: &async_tungstenite::tungstenite::http::Uri,
) -> Result<std::net::IpAddr, String> {
    let host = uri.host().ok_or("the URL has no host")?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = host.parse() {
        return Ok(ip);
    }
    let port = uri.port_u16().unwrap_or(80);
    tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| e.to_string())?
        .next()
        .map(|a| a.ip())
        .ok_or_else(|| format!("`{host}` has no address"))
}

impl Inner {
    /// The connection is of no more use: fail what waits on it and tell [`Janus::lost`].
    fn lose(&self) {
        self.alive.store(false, Ordering::Relaxed);
        self.pending.lock().clear();
        self.handles.lock().clear();
        // After a session timeout the WebSocket is still open: close it, which also ends the
        // reading task.
        let _ = self.out.send(Message::Close(None));
        self.lost.send_replace(true);
    }

    fn transaction(&self) -> String {
        format!("sw{}", self.next_tx.fetch_add(1, Ordering::Relaxed))
    }

    /// Route one message from Janus: a reply to a pending request, else an event of a handle.
    fn dispatch(&self, v: Value) {
        let kind = v["janus"].as_str().unwrap_or_default();
        if kind == "ack" {
            return;
        }
        if let Some(tx) = v["transaction"].as_str()
            && let Some(reply) = self.pending.lock().remove(tx)
        {
            let _ = reply.send(v);
            return;
        }
        let Some(handle) = v["sender"].as_u64() else {
            if kind != "timeout" {
                tracing::debug!(url = %self.url, message = %v, "Janus message for no handle");
            } else {
                tracing::warn!(url = %self.url, "Janus session timed out");
                self.lose();
            }
            return;
        };
        let to = self.handles.lock().get(&handle).cloned();
        if let Some(to) = to {
            let _ = to.send((handle, v));
        }
    }
}
