//! Plain HTTP on the signalling port: the router, request parsing, and, with `--dev`, the
//! token minting endpoint for the demo page.
//!
//! A connection is routed by its request head (`handshake.rs`): an `Upgrade: websocket`
//! header goes to the signalling protocol, anything else is answered here (one request, then
//! close), with or without TLS.
//!
//! Routes:
//! - `GET /` and `GET /index.html`: the demo page; `/app.js`, `/streamwire.js`, `/style.css`
//!   (`web.rs`).
//! - `GET /dev/token?room=R&name=N[&user=U]`: (only when [`super::ServerConfig::dev`] is set) a
//!   room token with every grant, valid for one hour, as `{"token": "..."}`; its `sub` is
//!   `dev-U` (the page's per-browser id) or random. 404 otherwise.
//! - `POST /whiteboard/ROOM/documents` (a document becomes whiteboard pages) and
//!   `GET /whiteboard/ROOM/documents/DOC/N.png` (its page images), with a room token
//!   (`whiteboard/documents.rs`).
//! - `GET /report?room=R[&since=1h]`: the room's HTML performance report rendered from the
//!   telemetry store ([`crate::report::generate`]). Needs a token for room `R` with the
//!   `admin` grant, as `Authorization: Bearer <jwt>` or the `token` query parameter: 401
//!   without a valid token, 403 for another room or without `admin`, 404 when the server keeps
//!   no telemetry (no `--db`) or holds none for the room (`report.rs`).
//! - `GET /sfu/status?room=R`: what the SFU bridge holds for room `R`, as JSON, for the same
//!   token (`sfu/status.rs`); 404 on a server without `--sfu`.

use std::time::Duration;

use tokio::io::AsyncRead;

use super::handshake::Request;
use super::telemetry::SharedStore;
use crate::signalling::protocol::{Grant, validate_room};
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
    /// The SFU bridge, when the server has Janus instances (`/sfu/status`).
    pub sfu: Option<std::sync::Arc<super::sfu::Bridge>>,
}

/// The answer to one plain HTTP request (the connection closes after it); `body` is the
/// connection, for the one route that reads a request body.
pub(super) async fn respond<S: AsyncRead + Unpin>(
    req: &Request,
    cx: &Context,
    body: &mut S,
) -> Vec<u8> {
    let method = req.method.as_str();
    let target = req.target.as_str();
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let resp = if path.starts_with("/whiteboard/") && method == "POST" {
        super::whiteboard::documents::post(
            cx.whiteboard.clone(),
            &cx.secret,
            req,
            body,
            path,
            query,
        )
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
    } else if path.starts_with("/whiteboard/") && super::web::asset(path).is_none() {
        super::whiteboard::documents::get(cx.whiteboard.clone(), &cx.secret, req, path, query).await
    } else if path == "/report" {
        super::report::serve(
            &cx.secret,
            req.header("authorization"),
            query,
            cx.store.clone(),
            cx.sfu.clone(),
        )
        .await
    } else if path == "/sfu/status" {
        sfu_status(cx, req, query).await
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
    if method == "HEAD" {
        match find(&resp, b"\r\n\r\n") {
            Some(i) => resp[..i + 4].to_vec(),
            None => resp,
        }
    } else {
        resp
    }
}

/// `GET /sfu/status?room=R` (`sfu/status.rs`).
async fn sfu_status(cx: &Context, req: &Request, query: &str) -> Vec<u8> {
    const ENDPOINT: &str = "/sfu/status";
    let room = match room_param(ENDPOINT, query) {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let auth = req.header("authorization");
    if let Err(resp) =
        super::room_admin::check(ENDPOINT, "the SFU status", &cx.secret, auth, query, &room)
    {
        return resp;
    }
    match &cx.sfu {
        Some(bridge) => response(
            "200 OK",
            "application/json",
            super::sfu::status::body(bridge, &room).await,
        ),
        None => response(
            "404 Not Found",
            TEXT,
            format!("{ENDPOINT}: this server has no SFU (start it with --sfu)\n"),
        ),
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
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

/// The `room` query parameter of a request to `endpoint`, or the 400 answer saying that it is
/// missing or what is wrong with it.
pub(super) fn room_param(endpoint: &str, query: &str) -> Result<String, Vec<u8>> {
    let bad = |why: String| {
        response(
            "400 Bad Request",
            TEXT,
            format!("{endpoint}: query parameter `room` {why}\n"),
        )
    };
    let room = query_param(query, "room").ok_or_else(|| bad("is missing".into()))?;
    validate_room(&room).map_err(bad)?;
    Ok(room)
}

fn dev_token(secret: &[u8], query: &str) -> Vec<u8> {
    let room = match room_param("/dev/token", query) {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let name = query_param(query, "name")
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "guest".to_owned());
    // `user`: a stable id the page keeps per browser, so that a rejoin replaces the older
    // session of the same user; otherwise a random one.
    if let Some(u) = query_param(query, "user").filter(|u| !u.is_empty()) {
        if u.len() > 64
            || !u
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return response(
                "400 Bad Request",
                "text/plain; charset=utf-8",
                "/dev/token: `user` must be 1 to 64 characters of A-Z, a-z, 0-9, `-` and `_`\n"
                    .to_owned(),
            );
        }
        let claims = Claims::new(
            &room,
            &format!("dev-{u}"),
            &name,
            Duration::from_secs(3600),
            &Grant::ALL,
        );
        return minted(secret, &claims, &room, &name);
    }
    let mut id = [0u8; 6];
    let user = match getrandom::getrandom(&mut id) {
        Ok(()) => format!(
            "dev-{}",
            id.iter().map(|b| format!("{b:02x}")).collect::<String>()
        ),
        Err(_) => format!("dev-{name}"),
    };
    let claims = Claims::new(&room, &user, &name, Duration::from_secs(3600), &Grant::ALL);
    minted(secret, &claims, &room, &name)
}

fn minted(secret: &[u8], claims: &Claims, room: &str, name: &str) -> Vec<u8> {
    match mint(secret, claims) {
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
    fn query_decoding() {
        assert_eq!(query_param("room=a%20b&name=x+y", "room").unwrap(), "a b");
        assert_eq!(query_param("room=a%20b&name=x+y", "name").unwrap(), "x y");
        assert_eq!(query_param("room=%zz", "room").unwrap(), "%zz");
        assert_eq!(query_param("room=a%2", "room").unwrap(), "a%2");
        assert!(query_param("room=a", "name").is_none());
    }
}
