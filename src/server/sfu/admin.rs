//! Janus's Admin API, for what its VideoRoom API does not say: one WebSocket to the
//! instance's admin transport (`janus-admin-protocol`, on the host of its `--sfu` URL and the
//! port of `SfuConfig::admin`), one `handle_info` per handle. Read from it:
//! - the bitrate of each handle's media, when `/sfu/status` or a report wants the figures:
//!   each medium's `bytes_lastsec` in and out summed (docs/sfu.md, "Status");
//! - what each subscriber's downlink lost, every [`DOWNLINK_POLL`] while the room has
//!   simulcast streams: per video m-line, the packets Janus sent and the packets the
//!   subscriber asked again for (NACKs) or reported lost (docs/sfu.md, "Simulcast").

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

/// A loss count from here up is a negative 24-bit number (RTCP's cumulative loss is signed:
/// duplicates, e.g. retransmissions, make it go below zero), not a loss.
pub(crate) const NEGATIVE_LOSS: u64 = 0x80_0000;

/// How often the downlinks of a room's simulcast subscriptions are read.
pub(crate) const DOWNLINK_POLL: Duration = Duration::from_secs(1);

/// Bits per second of one handle's media in the last second: (into Janus, out of Janus).
pub(crate) type Rates = HashMap<u64, (u64, u64)>;

/// Cumulative counters of one video m-line Janus sends to a subscriber.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Downlink {
    /// RTP packets sent (`stats.out.packets`).
    pub sent: u64,
    /// Packets the subscriber asked to be sent again (`stats.in.nacks`: NACKs received).
    pub nacked: u64,
    /// Packets the subscriber's receiver reports say it lost (`rtcp.main.lost-by-remote`;
    /// 0 while that count is negative).
    pub lost: u64,
}

/// The rates of `handles` of Janus session `session` on the instance at `host`; handles
/// Janus does not know (gone meanwhile) are left out. `Err` names what failed.
pub(crate) async fn rates(
    host: std::net::IpAddr,
    admin: &SfuAdmin,
    session: u64,
    handles: &[u64],
) -> Result<Rates, String> {
    let infos = handle_infos(host, admin, session, handles).await?;
    Ok(infos
        .into_iter()
        .map(|(h, info)| (h, handle_rates(&info)))
        .collect())
}

/// The downlink counters of each video m-line (by `mid`) of each of `handles`, as
/// [`rates`] asks.
pub(crate) async fn downlinks(
    host: std::net::IpAddr,
    admin: &SfuAdmin,
    session: u64,
    handles: &[u64],
) -> Result<HashMap<u64, HashMap<String, Downlink>>, String> {
    let infos = handle_infos(host, admin, session, handles).await?;
    Ok(infos
        .into_iter()
        .map(|(h, info)| (h, video_downlinks(&info)))
        .collect())
}

/// The `info` of each handle's `handle_info` reply.
async fn handle_infos(
    host: std::net::IpAddr,
    admin: &SfuAdmin,
    session: u64,
    handles: &[u64],
) -> Result<HashMap<u64, Value>, String> {
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
        let mut out = HashMap::new();
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
                    out.insert(*h, reply["info"].clone());
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

/// The counters of each video medium of a `handle_info` reply's `info`, by `mid`.
fn video_downlinks(info: &Value) -> HashMap<String, Downlink> {
    let Some(media) = info["webrtc"]["media"].as_object() else {
        return HashMap::new();
    };
    media
        .values()
        .filter(|m| m["type"] == "video")
        .filter_map(|m| {
            let mid = m["mid"].as_str()?.to_owned();
            let stats = &m["stats"];
            let counters = Downlink {
                sent: stats["out"]["packets"].as_u64()?,
                nacked: stats["in"]["nacks"].as_u64().unwrap_or(0),
                lost: m["rtcp"]["main"]["lost-by-remote"]
                    .as_u64()
                    .filter(|l| *l < NEGATIVE_LOSS)
                    .unwrap_or(0),
            };
            Some((mid, counters))
        })
        .collect()
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

    #[test]
    fn downlinks_are_read_per_video_mid() {
        let info = json!({"webrtc": {"media": {
            "0": {"type": "audio", "mid": "0", "stats": {"out": {"packets": 50}}},
            "1": {"type": "video", "mid": "1",
                  "rtcp": {"main": {"lost-by-remote": 7}},
                  "stats": {"in": {"nacks": 12}, "out": {"packets": 900}}},
            "2": {"type": "video", "mid": "2",
                  "rtcp": {"main": {"lost-by-remote": 16777215}},
                  "stats": {"out": {"packets": 3}}},
            "3": {"type": "data", "mid": "3"}
        }}});
        let d = video_downlinks(&info);
        assert_eq!(d.len(), 2);
        assert_eq!(
            d["1"],
            Downlink {
                sent: 900,
                nacked: 12,
                lost: 7
            }
        );
        assert_eq!(
            d["2"],
            Downlink {
                sent: 3,
                nacked: 0,
                lost: 0
            }
        );
    }
}
