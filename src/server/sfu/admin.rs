//! Janus's Admin API, for what its VideoRoom API does not say: the bitrate of each handle's
//! media. The server asks it only when `/sfu/status` or a report wants the figures: one
//! WebSocket to the instance's admin transport (`janus-admin-protocol`, on the host of its
//! `--sfu` URL and the port of `SfuConfig::admin`), one `handle_info` per handle, each
//! medium's `bytes_lastsec` in and out summed (docs/sfu.md, "Status").

use std::collections::HashMap;
use std::time::Duration;

use async_tungstenite::tungstenite::Message;
use async_tungstenite::tungstenite::client::IntoClientRequest;
use futures::StreamExt;
use serde_json::{Value, json};

/// How the server reaches the Admin API of its instances.
#[derive(Debug, Clone)]
pub struct SfuAdmin {
    /// Port of each instance's admin WebSocket (janus.transport.websockets.jcfg
    /// `admin.admin_ws_port`), on the host of its `--sfu` URL.
    pub port: u16,
    /// Janus's `admin_secret` (janus.jcfg, `general.admin_secret`).
    pub secret: String,
}

/// The longest the whole query of one instance may take.
pub(crate) const ADMIN_TIMEOUT: Duration = Duration::from_secs(3);

/// Bits per second of one handle's media in the last second: (into Janus, out of Janus).
pub(crate) type Rates = HashMap<u64, (u64, u64)>;

/// The rates of `handles` of Janus session `session` on the instance at `host`; handles
/// Janus does not know (gone meanwhile) are left out. `Err` names what failed.
pub(crate) async fn rates(
    host: std::net::IpAddr,
    admin: &SfuAdmin,
    session: u64,
    handles: &[u64],
) -> Result<Rates, String> {
    let host = match host {
        std::net::IpAddr::V6(v6) => format!("[{v6}]"),
        v4 => v4.to_string(),
    };
    let url = format!("ws://{host}:{}", admin.port);
    let work = async {
        let mut req = url
            .as_str()
            .into_client_request()
            .map_err(|e| e.to_string())?;
        req.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            async_tungstenite::tungstenite::http::HeaderValue::from_static("janus-admin-protocol"),
        );
        let (mut ws, _) = async_tungstenite::tokio::connect_async(req)
            .await
            .map_err(|e| format!("{url}: {e}"))?;
        let mut out = Rates::new();
        for (i, h) in handles.iter().enumerate() {
            let tx = format!("swa{i}");
            let msg = json!({"janus": "handle_info", "session_id": session, "handle_id": h,
                             "transaction": tx, "admin_secret": admin.secret});
            ws.send(Message::Text(msg.to_string().into()))
                .await
                .map_err(|e| format!("{url}: {e}"))?;
            let reply = loop {
                let Some(m) = ws.next().await else {
                    return Err(format!("{url}: the admin connection closed"));
                };
                let Message::Text(text) = m.map_err(|e| format!("{url}: {e}"))? else {
                    continue;
                };
                let v: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
                if v["transaction"] == tx.as_str() {
                    break v;
                }
            };
            match reply["janus"].as_str() {
                Some("success") => {
                    out.insert(*h, handle_rates(&reply["info"]));
                }
                // A handle that went away meanwhile.
                _ if reply["error"]["code"] == 459 => {}
                _ => {
                    return Err(format!(
                        "{url}: `handle_info` refused: {}",
                        reply["error"]["reason"]
                            .as_str()
                            .unwrap_or("no reason given")
                    ));
                }
            }
        }
        let _ = ws.close(None).await;
        Ok(out)
    };
    tokio::time::timeout(ADMIN_TIMEOUT, work)
        .await
        .map_err(|_| format!("{url}: no answer within {ADMIN_TIMEOUT:?}"))?
}

/// (in, out) bits per second over every medium of a `handle_info` reply's `info`.
fn handle_rates(info: &Value) -> (u64, u64) {
    let mut rates = (0, 0);
    if let Some(media) = info["webrtc"]["media"].as_object() {
        for m in media.values() {
            let stats = &m["stats"];
            rates.0 += stats["in"]["bytes_lastsec"].as_u64().unwrap_or(0) * 8;
            rates.1 += stats["out"]["bytes_lastsec"].as_u64().unwrap_or(0) * 8;
        }
    }
    rates
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_sum_every_medium_in_bits() {
        let info = json!({"webrtc": {"media": {
            "0": {"type": "audio", "stats": {"in": {"bytes_lastsec": 4000}, "out": {"bytes_lastsec": 10}}},
            "1": {"type": "video", "stats": {"in": {"bytes_lastsec": 30000}, "out": {"bytes_lastsec": 0}}}
        }}});
        assert_eq!(handle_rates(&info), (272_000, 80));
        assert_eq!(handle_rates(&json!({})), (0, 0));
    }
}
