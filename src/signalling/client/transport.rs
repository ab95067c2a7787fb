//! Transport of the client: URL parsing, TCP, TLS (`wss://`) and the WebSocket handshake, and
//! writing one protocol frame.

use std::sync::Arc;

use async_tungstenite::WebSocketStream;
use async_tungstenite::tokio::TokioAdapter;
use async_tungstenite::tungstenite::Message;
use async_tungstenite::tungstenite::client::IntoClientRequest;
use async_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::rustls;

use super::ClientError;
use crate::signalling::protocol::ClientMsg;

pub(crate) trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}
pub(crate) type Ws = WebSocketStream<TokioAdapter<Box<dyn Io>>>;

pub(super) struct ParsedUrl {
    tls: bool,
    host: String,
    port: u16,
}

pub(super) fn parse_url(url: &str) -> Result<ParsedUrl, ClientError> {
    let bad = |reason: &str| ClientError::Url {
        url: url.to_owned(),
        reason: reason.to_owned(),
    };
    let req = url.into_client_request().map_err(|e| bad(&e.to_string()))?;
    let uri = req.uri();
    let tls = match uri.scheme_str() {
        Some("ws") => false,
        Some("wss") => true,
        _ => return Err(bad("scheme must be ws:// or wss://")),
    };
    let host = uri.host().ok_or_else(|| bad("no host"))?;
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
    Ok(ParsedUrl { tls, host, port })
}

pub(crate) async fn open(url: &str, tls: Option<&Arc<rustls::ClientConfig>>) -> Result<Ws, String> {
    let p = parse_url(url).map_err(|e| e.to_string())?;
    let tcp = TcpStream::connect((p.host.as_str(), p.port))
        .await
        .map_err(|e| format!("TCP connect to {}:{}: {e}", p.host, p.port))?;
    let _ = tcp.set_nodelay(true);
    let io: Box<dyn Io> = if p.tls {
        let cfg = tls.ok_or("wss:// needs ClientConfig::tls (trust roots)")?;
        let name = rustls::pki_types::ServerName::try_from(p.host.clone())
            .map_err(|e| format!("invalid TLS server name `{}`: {e}", p.host))?;
        let s = tokio_rustls::TlsConnector::from(cfg.clone())
            .connect(name, tcp)
            .await
            .map_err(|e| format!("TLS handshake: {e}"))?;
        Box::new(s)
    } else {
        Box::new(tcp)
    };
    let ws_cfg = WebSocketConfig::default()
        .read_buffer_size(8 * 1024)
        .write_buffer_size(16 * 1024);
    let (ws, _) = async_tungstenite::tokio::client_async_with_config(url, io, Some(ws_cfg))
        .await
        .map_err(|e| format!("WebSocket handshake: {e}"))?;
    Ok(ws)
}

pub(crate) async fn send(ws: &mut Ws, m: &ClientMsg) -> Result<(), String> {
    let text = serde_json::to_string(m).map_err(|e| e.to_string())?;
    ws.send(Message::Text(text.into()))
        .await
        .map_err(|e| e.to_string())
}
