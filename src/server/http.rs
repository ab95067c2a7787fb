//! Plain HTTP on the signalling port: the router, request parsing, and, with `--dev`, the
//! token minting endpoint for the demo page.
//!
//! A connection is routed by its request head: a `Upgrade: websocket` header goes to the
//! signalling protocol, anything else is answered here (one request, then close). Only plain
//! `ws://` servers route this way; a TLS server keeps serving WebSocket only.
//!
//! Routes:
//! - `GET /` and `GET /index.html`: the demo page; `/app.js`, `/streamwire.js`, `/style.css`
//!   (`web.rs`).
//! - `GET /dev/token?room=R&name=N`: (only when [`super::ServerConfig::dev`] is set) a room
//!   token with every grant, valid for one hour, as `{"token": "..."}`. 404 otherwise.
//! - `POST /whiteboard/ROOM/documents` (a document becomes whiteboard pages) and
//!   `GET /whiteboard/ROOM/documents/DOC/N.png` (its page images), with a room token
//!   (`whiteboard/documents.rs`).
//! - `GET /report?room=R[&since=1h]`: the room's HTML performance report rendered from the
//!   telemetry store ([`crate::report::generate`]). Needs a token for room `R` with the
//!   `admin` grant, as `Authorization: Bearer <jwt>` or the `token` query parameter: 401
//!   without a valid token, 403 for another room or without `admin`, 404 when the server keeps
//!   no telemetry (no `--db`) or holds none for the room (`report.rs`).

use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::telemetry::SharedStore;
use crate::signalling::protocol::Grant;
use crate::signalling::token::{Claims, mint};

/// What the HTTP routes need of the server.
pub(super) struct Context {
    /// The HS256 secret (report tokens are verified, dev tokens minted with it).
    pub secret: Vec<u8>,
    /// Whether `/dev/token` is served.
    pub dev: bool,
    /// The telemetry store, when the server keeps one.
    pub store: Option<SharedStore>,
    /// The whiteboards (document import and page images).
    pub whiteboard: std::sync::Arc<super::whiteboard::WhiteboardService>,
}

/// Largest request head accepted.
const MAX_HEAD: usize = 8 * 1024;

/// What a new plain connection is.
pub(super) enum Route {
    /// A WebSocket upgrade (or something we cannot tell apart): the signalling protocol.
    WebSocket,
    /// A plain HTTP request.
    Http,
}

/// Peek at the request head (without consuming it) to decide where the connection goes.
pub(super) async fn classify(tcp: &TcpStream, timeout: Duration) -> Route {
    let mut buf = vec![0u8; MAX_HEAD];
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let n = match tokio::time::timeout_at(deadline, tcp.peek(&mut buf)).await {
            Ok(Ok(n)) => n,
            // Errors and timeouts: let the WebSocket path report them as it always did.
            _ => return Route::WebSocket,
        };
        let head = &buf[..n];
        if n == 0 {
            return Route::WebSocket;
        }
        if let Some(end) = find(head, b"\r\n\r\n") {
            return if is_upgrade(&head[..end]) {
                Route::WebSocket
            } else {
                Route::Http
            };
        }
        if n >= MAX_HEAD {
            return Route::WebSocket;
        }
        // Head incomplete: wait a little for more bytes.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

pub(super) fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn is_upgrade(head: &[u8]) -> bool {
    String::from_utf8_lossy(head).lines().skip(1).any(|l| {
        let mut kv = l.splitn(2, ':');
        let k = kv.next().unwrap_or("").trim();
        let v = kv.next().unwrap_or("").trim();
        k.eq_ignore_ascii_case("upgrade") && v.eq_ignore_ascii_case("websocket")
    })
}

/// Answer one HTTP request and close.
pub(super) async fn serve(mut tcp: TcpStream, cx: &Context) {
    let mut buf = vec![0u8; MAX_HEAD];
    // The head is already in the socket (classify saw it); read it out.
    let n = match tokio::time::timeout(Duration::from_secs(5), read_head(&mut tcp, &mut buf)).await
    {
        Ok(Ok(n)) => n,
        _ => return,
    };
    let head = String::from_utf8_lossy(&buf[..n]).into_owned();
    let first = head.lines().next().unwrap_or("");
    let mut parts = first.split_whitespace();
    let method = parts.next().unwrap_or("");
    let target = parts.next().unwrap_or("/");
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let resp = if path.starts_with("/whiteboard/") && method == "POST" {
        let head_len = find(&buf[..n], b"\r\n\r\n").map(|i| i + 4).unwrap_or(n);
        let prefix = buf[head_len..n].to_vec();
        let wb = cx.whiteboard.clone();
        super::whiteboard::documents::post(wb, &cx.secret, &mut tcp, &head, &prefix, path, query)
            .await
    } else if method != "GET" && method != "HEAD" {
        response(
            "405 Method Not Allowed",
            "text/plain; charset=utf-8",
            format!("method {method} is not supported here; use GET\n"),
        )
    } else if path == "/dev/token" {
        if cx.dev {
            dev_token(&cx.secret, query)
        } else {
            response(
                "404 Not Found",
                "text/plain; charset=utf-8",
                "/dev/token exists only when the server runs with --dev\n".to_owned(),
            )
        }
    } else if path.starts_with("/whiteboard/") {
        super::whiteboard::documents::get(cx.whiteboard.clone(), &cx.secret, &head, path, query)
            .await
    } else if path == "/report" {
        super::report::serve(&cx.secret, &head, query, cx.store.clone()).await
    } else if path == "/dev" {
        response(
            "200 OK",
            "application/json",
            format!("{{\"dev\":{}}}", cx.dev),
        )
    } else {
        match super::web::asset(path) {
            Some((content_type, body)) => response("200 OK", content_type, body.to_owned()),
            None => response(
                "404 Not Found",
                "text/plain; charset=utf-8",
                format!("no such page: {path}\n"),
            ),
        }
    };
    let bytes = if method == "HEAD" {
        match find(&resp, b"\r\n\r\n") {
            Some(i) => resp[..i + 4].to_vec(),
            None => resp,
        }
    } else {
        resp
    };
    let _ = tcp.write_all(&bytes).await;
    let _ = tcp.shutdown().await;
}

async fn read_head(tcp: &mut TcpStream, buf: &mut [u8]) -> std::io::Result<usize> {
    use tokio::io::AsyncReadExt;
    let mut n = 0;
    while n < buf.len() {
        let r = tcp.read(&mut buf[n..]).await?;
        if r == 0 {
            break;
        }
        n += r;
        if find(&buf[..n], b"\r\n\r\n").is_some() {
            break;
        }
    }
    Ok(n)
}

pub(super) fn response(status: &str, content_type: &str, body: String) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Percent-decode one query value (`+` is a space).
pub(super) fn decode(v: &str) -> String {
    let b = v.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                match std::str::from_utf8(&b[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                {
                    Some(x) => {
                        out.push(x);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub(super) fn query_param(query: &str, key: &str) -> Option<String> {
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (k == key).then(|| decode(v))
    })
}

pub(super) const TEXT: &str = "text/plain; charset=utf-8";

fn dev_token(secret: &[u8], query: &str) -> Vec<u8> {
    let room = query_param(query, "room").unwrap_or_default();
    if room.is_empty() {
        return response(
            "400 Bad Request",
            "text/plain; charset=utf-8",
            "/dev/token: query parameter `room` is missing or empty\n".to_owned(),
        );
    }
    let name = query_param(query, "name")
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "guest".to_owned());
    let mut id = [0u8; 6];
    let user = match getrandom::getrandom(&mut id) {
        Ok(()) => format!(
            "dev-{}",
            id.iter().map(|b| format!("{b:02x}")).collect::<String>()
        ),
        Err(_) => format!("dev-{name}"),
    };
    let claims = Claims::new(&room, &user, &name, Duration::from_secs(3600), &Grant::ALL);
    match mint(secret, &claims) {
        Ok(t) => response(
            "200 OK",
            "application/json",
            serde_json::json!({ "token": t, "room": room, "name": name }).to_string(),
        ),
        Err(e) => response(
            "500 Internal Server Error",
            "text/plain; charset=utf-8",
            format!("minting a token failed: {e}\n"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upgrade_detection() {
        assert!(is_upgrade(
            b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket"
        ));
        assert!(is_upgrade(b"GET / HTTP/1.1\r\nupgrade:WebSocket"));
        assert!(!is_upgrade(b"GET / HTTP/1.1\r\nHost: x"));
    }

    #[test]
    fn query_decoding() {
        assert_eq!(query_param("room=a%20b&name=x+y", "room").unwrap(), "a b");
        assert_eq!(query_param("room=a%20b&name=x+y", "name").unwrap(), "x y");
        assert_eq!(query_param("room=%zz", "room").unwrap(), "%zz");
        assert_eq!(query_param("room=a%2", "room").unwrap(), "a%2");
        assert!(query_param("room=a", "name").is_none());
    }
}
