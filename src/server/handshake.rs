//! The HTTP/1.1 request head every connection starts with, and the WebSocket upgrade.
//!
//! The caller runs all of it (TLS, reading the head, answering or upgrading) under one
//! deadline, `ServerConfig::handshake_timeout`, whatever arrives or does not: a client that
//! sends part of a head, or trickles it byte by byte, is cut at that deadline.
//!
//! Invalid requests get a 4xx answer naming what is wrong (RFC 6455 section 4.2.1 for the
//! upgrade, RFC 9110/9112 for HTTP), never a silent close.

use async_tungstenite::WebSocketStream;
use async_tungstenite::tokio::TokioAdapter;
use async_tungstenite::tungstenite::handshake::derive_accept_key;
use async_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use base64::Engine;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Largest request head accepted (request line and headers), bytes.
pub(super) const MAX_HEAD: usize = 8 * 1024;

/// Most header fields accepted in one request head.
const MAX_HEADERS: usize = 64;

/// A parsed request head.
pub(super) struct Request {
    /// `GET`, `HEAD`, ...
    pub method: String,
    /// The request target (path and query).
    pub target: String,
    /// Header fields, names as sent.
    pub headers: Vec<(String, String)>,
    /// Bytes that arrived after the head (a client may send its first frames early).
    pub rest: Vec<u8>,
    /// The minor HTTP version (`1` for HTTP/1.1).
    pub minor_version: u8,
}

impl Request {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether the comma-separated header `name` holds `token` (case-insensitive).
    fn has_token(&self, name: &str, token: &str) -> bool {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .flat_map(|(_, v)| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    }

    /// Whether the request asks for a WebSocket upgrade.
    pub fn wants_websocket(&self) -> bool {
        self.has_token("upgrade", "websocket")
    }
}

/// Why no request head could be read.
#[derive(Debug)]
pub(super) enum HeadError {
    /// The client closed (or reset) before the head was complete.
    Closed,
    /// Not a valid HTTP/1.x request head: answered `400`.
    Malformed(String),
    /// The request line alone exceeds [`MAX_HEAD`]: answered `414`.
    UriTooLong,
    /// The head exceeds [`MAX_HEAD`] or has too many fields: answered `431`.
    HeadTooLarge,
}

impl HeadError {
    /// The HTTP answer to send, if any.
    pub fn response(&self) -> Option<Vec<u8>> {
        match self {
            HeadError::Closed => None,
            HeadError::Malformed(why) => Some(super::http::response(
                "400 Bad Request",
                super::http::TEXT,
                format!("malformed HTTP request: {why}\n"),
            )),
            HeadError::UriTooLong => Some(super::http::response(
                "414 URI Too Long",
                super::http::TEXT,
                format!("the request line exceeds {MAX_HEAD} bytes\n"),
            )),
            HeadError::HeadTooLarge => Some(super::http::response(
                "431 Request Header Fields Too Large",
                super::http::TEXT,
                format!(
                    "the request head exceeds {MAX_HEAD} bytes or {MAX_HEADERS} header fields\n"
                ),
            )),
        }
    }
}

/// Read and parse one request head. The caller bounds the time.
pub(super) async fn read_head<S: AsyncRead + Unpin>(s: &mut S) -> Result<Request, HeadError> {
    // Start small: most heads are a few hundred bytes, and this buffer exists for every
    // connection in the handshake.
    let mut buf: Vec<u8> = Vec::with_capacity(1024);
    loop {
        if buf.len() >= MAX_HEAD {
            return Err(if buf.windows(2).any(|w| w == b"\r\n") {
                HeadError::HeadTooLarge
            } else {
                HeadError::UriTooLong
            });
        }
        if buf.len() == buf.capacity() {
            buf.reserve((buf.capacity()).min(MAX_HEAD - buf.len()));
        }
        let want = (MAX_HEAD - buf.len()).min(buf.capacity() - buf.len());
        let start = buf.len();
        buf.resize(start + want, 0);
        // A read error (reset) ends the head like a close.
        let n: usize = s.read(&mut buf[start..]).await.unwrap_or_default();
        buf.truncate(start + n);
        if n == 0 {
            return Err(HeadError::Closed);
        }
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(&buf) {
            Ok(httparse::Status::Partial) => continue,
            Ok(httparse::Status::Complete(len)) => {
                let request = Request {
                    method: req.method.unwrap_or("").to_owned(),
                    target: req.path.unwrap_or("/").to_owned(),
                    headers: req
                        .headers
                        .iter()
                        .map(|h| {
                            (
                                h.name.to_owned(),
                                String::from_utf8_lossy(h.value).trim().to_owned(),
                            )
                        })
                        .collect(),
                    rest: buf[len..].to_vec(),
                    minor_version: req.version.unwrap_or(0),
                };
                return Ok(request);
            }
            Err(httparse::Error::TooManyHeaders) => return Err(HeadError::HeadTooLarge),
            Err(e) => return Err(HeadError::Malformed(e.to_string())),
        }
    }
}

/// Why an upgrade request was refused: the 4xx answer.
pub(super) fn check_upgrade(req: &Request) -> Result<String, Vec<u8>> {
    let bad = |why: &str| {
        super::http::response(
            "400 Bad Request",
            super::http::TEXT,
            format!("invalid WebSocket upgrade request: {why}\n"),
        )
    };
    if req.method != "GET" {
        return Err(bad(&format!("method must be GET, not {}", req.method)));
    }
    if req.minor_version < 1 {
        return Err(bad("the upgrade needs HTTP/1.1"));
    }
    if req.header("host").is_none() {
        return Err(bad("no Host header"));
    }
    if !req.has_token("connection", "upgrade") {
        return Err(bad("the Connection header must contain `Upgrade`"));
    }
    if req.header("sec-websocket-version").map(str::trim) != Some("13") {
        let body =
            "this server speaks WebSocket version 13 (RFC 6455); send Sec-WebSocket-Version: 13\n";
        return Err(format!(
            "HTTP/1.1 426 Upgrade Required\r\nSec-WebSocket-Version: 13\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            super::http::TEXT,
            body.len()
        )
        .into_bytes());
    }
    let Some(key) = req.header("sec-websocket-key") else {
        return Err(bad("no Sec-WebSocket-Key header"));
    };
    match base64::engine::general_purpose::STANDARD.decode(key.trim()) {
        Ok(k) if k.len() == 16 => Ok(derive_accept_key(key.trim().as_bytes())),
        _ => Err(bad(
            "Sec-WebSocket-Key must be 16 bytes in base64 (RFC 6455 section 4.1)",
        )),
    }
}

/// Answer `101 Switching Protocols` and wrap the stream as a server-side WebSocket.
pub(super) async fn upgrade<S>(
    mut s: S,
    accept_key: &str,
    rest: Vec<u8>,
    cfg: WebSocketConfig,
) -> std::io::Result<WebSocketStream<TokioAdapter<S>>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let resp = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept_key}\r\n\r\n"
    );
    s.write_all(resp.as_bytes()).await?;
    s.flush().await?;
    Ok(
        WebSocketStream::from_partially_read(TokioAdapter::new(s), rest, Role::Server, Some(cfg))
            .await,
    )
}

/// Write an HTTP answer, then close: half-close the write side and read (and discard) what
/// the client still sends, up to `linger`, so the answer is not destroyed by a reset.
pub(super) async fn answer_and_close<S>(mut s: S, bytes: &[u8], linger: std::time::Duration)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let _ = s.write_all(bytes).await;
    let _ = s.flush().await;
    crate::signalling::hub::drain_and_close(&mut s, linger).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn parse(bytes: &[u8]) -> Result<Request, HeadError> {
        let mut r = bytes;
        read_head(&mut r).await
    }

    #[tokio::test]
    async fn heads_are_parsed_or_refused_with_the_right_status() {
        let r = parse(b"GET /x?y=1 HTTP/1.1\r\nHost: a\r\nUpgrade: WebSocket\r\nConnection: keep-alive, Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\nEXTRA").await.unwrap();
        assert_eq!((r.method.as_str(), r.target.as_str()), ("GET", "/x?y=1"));
        assert!(r.wants_websocket());
        assert_eq!(r.rest, b"EXTRA");
        // The RFC 6455 example key.
        assert_eq!(check_upgrade(&r).unwrap(), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        let status = |b: Vec<u8>| String::from_utf8_lossy(&b[..12]).into_owned();
        let no_key = parse(b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n").await.unwrap();
        assert_eq!(status(check_upgrade(&no_key).unwrap_err()), "HTTP/1.1 400");
        let v8 = parse(b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 8\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n").await.unwrap();
        assert_eq!(status(check_upgrade(&v8).unwrap_err()), "HTTP/1.1 426");
        assert!(matches!(parse(b"GET / HT").await, Err(HeadError::Closed)));
        assert!(matches!(
            parse(b"\x01\x02 nonsense\r\n\r\n").await,
            Err(HeadError::Malformed(_))
        ));
        let long = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(70_000));
        assert!(matches!(
            parse(long.as_bytes()).await,
            Err(HeadError::UriTooLong)
        ));
        let many = format!("GET / HTTP/1.1\r\n{}\r\n", "X-A: b\r\n".repeat(2000));
        assert!(matches!(
            parse(many.as_bytes()).await,
            Err(HeadError::HeadTooLarge)
        ));
    }
}
