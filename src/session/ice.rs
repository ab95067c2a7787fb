//! ICE server URLs: the RTCIceServer form of the server's join reply converted to webrtcbin's,
//! merged with the application's extra servers.

use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::signalling::protocol::IceServer;

use super::SessionError;

/// The STUN and TURN servers every new peer connection is configured with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct IceServers {
    /// The first STUN server (webrtcbin takes one).
    pub stun: Option<String>,
    /// Every TURN server.
    pub turns: Vec<String>,
}

impl IceServers {
    /// The servers of a join reply followed by the configured `extra` ones (already in
    /// webrtcbin's form). An unusable URL is skipped; TURN credentials in the time-limited
    /// form (`<expiry>:<name>`) whose expiry is before `now` are kept but reported (the TURN
    /// server will refuse them, so relayed candidates will be missing). Every problem is
    /// returned beside the servers that are usable.
    pub(crate) fn resolve(
        reply: &[IceServer],
        extra: &[String],
        now: SystemTime,
    ) -> (IceServers, Vec<SessionError>) {
        let now = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let mut servers = IceServers::default();
        let mut problems = Vec::new();
        let from_reply = reply.iter().flat_map(|s| {
            s.urls.iter().map(move |u| {
                let url = ice_url_for_webrtcbin(u, s.username.as_deref(), s.credential.as_deref());
                (u.as_str(), s.username.clone(), url)
            })
        });
        let from_config = extra
            .iter()
            .map(|u| (u.as_str(), webrtcbin_username(u), Ok(u.clone())));
        for (given, username, url) in from_reply.chain(from_config) {
            match url {
                Ok(u) if u.starts_with("stun://") => {
                    servers.stun.get_or_insert(u);
                }
                Ok(u) => {
                    if let Some((expiry, ago)) = username.as_deref().and_then(|n| expired(n, now)) {
                        problems.push(SessionError::IceServer {
                            url: given.to_owned(),
                            detail: format!(
                                "the TURN credentials expired at {expiry} (Unix time), {ago} s ago: \
                                 the TURN server will refuse them and no relayed candidate will be \
                                 gathered (is the TTL too short, or this clock wrong?)"
                            ),
                        });
                    }
                    servers.turns.push(u);
                }
                Err(e) => problems.push(e),
            }
        }
        (servers, problems)
    }
}

/// A TURN username in the time-limited (REST-API) form `<expiry>:<name>` whose expiry (Unix
/// seconds) is before `now`: the expiry and how many seconds ago it was.
fn expired(username: &str, now: u64) -> Option<(u64, u64)> {
    let expiry: u64 = username.split_once(':')?.0.parse().ok()?;
    (expiry < now).then(|| (expiry, now - expiry))
}

/// The percent-decoded username of a webrtcbin TURN URL (`turn://user:pass@host`).
fn webrtcbin_username(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let (userinfo, _) = rest.rsplit_once('@')?;
    let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
    percent_decode(user)
}

fn percent_decode(s: &str) -> Option<String> {
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        if b == b'%' {
            let hex = [bytes.next()?, bytes.next()?];
            out.push(u8::from_str_radix(std::str::from_utf8(&hex).ok()?, 16).ok()?);
        } else {
            out.push(b);
        }
    }
    String::from_utf8(out).ok()
}

/// Whether every address of `local` (ICE's gathering restriction) is a loopback address;
/// false when unrestricted (empty: every interface).
fn loopback_only(local: &[String]) -> bool {
    !local.is_empty()
        && local
            .iter()
            .all(|a| a.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback()))
}

/// Host and port of a `ws://` / `wss://` URL (IPv6 without brackets).
fn url_host(url: &str) -> Option<(String, u16)> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let default_port = if scheme.eq_ignore_ascii_case("wss") {
        443
    } else {
        80
    };
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, after) = v6.split_once(']')?;
        (h, after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    let port = match port {
        Some(p) => p.parse().ok()?,
        None => default_port,
    };
    (!host.is_empty()).then(|| (host.to_owned(), port))
}

/// Whether the signalling server at `url` is on loopback: `localhost`, a loopback address,
/// or a name that resolves to loopback addresses only. `None` if that cannot be told (bad
/// URL, name does not resolve).
async fn server_on_loopback(url: &str) -> Option<bool> {
    let (host, port) = url_host(url)?;
    if host.eq_ignore_ascii_case("localhost") {
        return Some(true);
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Some(ip.is_loopback());
    }
    let addrs: Vec<_> = tokio::net::lookup_host((host.as_str(), port))
        .await
        .ok()?
        .collect();
    (!addrs.is_empty()).then(|| addrs.iter().all(|a| a.ip().is_loopback()))
}

/// Log a warning when ICE gathers on loopback addresses only while a signalling server is
/// not on loopback: peers that reach that server from elsewhere could never reach this one.
/// Returns whether it warned.
pub(crate) async fn warn_if_loopback_only(local: &[String], servers: &[String]) -> bool {
    if !loopback_only(local) {
        return false;
    }
    for url in servers {
        if server_on_loopback(url).await == Some(false) {
            tracing::warn!(
                server = %url,
                local_addresses = ?local,
                "ICE is restricted to loopback addresses but the signalling server is not on \
                 loopback: peers elsewhere cannot connect (set SessionConfig::local_addresses \
                 to empty for every interface)"
            );
            return true;
        }
    }
    false
}

/// Check an extra ICE server URL of the configuration (webrtcbin's form).
pub(crate) fn validate_ice_url(url: &str) -> Result<(), SessionError> {
    if url.starts_with("stun://") || url.starts_with("turn://") || url.starts_with("turns://") {
        Ok(())
    } else {
        Err(SessionError::IceServer {
            url: url.to_owned(),
            detail: "must start with stun://, turn:// or turns://".into(),
        })
    }
}

/// Convert an RTCIceServer URL (`stun:host:port`, `turn:host:port?transport=udp|tcp`,
/// `turns:host:port?transport=tcp`) with optional credentials to webrtcbin's form
/// (`stun://host:port`, `turn://user:pass@host:port?transport=tcp`).
///
/// The `transport` parameter survives: without it webrtcbin would use UDP TURN, which
/// exactly the networks that need TCP TURN (UDP blocked) cannot reach. The credentials are
/// percent-encoded, so a time-limited username (`<expiry>:<peer>`, with its `:`) and a base64
/// password (with `/`) reach the ICE agent intact. Other query parameters, and a `transport`
/// other than `udp` or `tcp`, are refused.
///
/// ```
/// use streamwire::session::ice_url_for_webrtcbin;
/// assert_eq!(ice_url_for_webrtcbin("stun:127.0.0.1:3478", None, None).unwrap(), "stun://127.0.0.1:3478");
/// assert_eq!(
///     ice_url_for_webrtcbin("turn:127.0.0.1:3478", Some("u"), Some("p")).unwrap(),
///     "turn://u:p@127.0.0.1:3478"
/// );
/// assert_eq!(
///     ice_url_for_webrtcbin("turn:turn.example.org:443?transport=tcp", Some("1700000000:p-1"), Some("a/b+c=")).unwrap(),
///     "turn://1700000000%3Ap-1:a%2Fb+c=@turn.example.org:443?transport=tcp"
/// );
/// assert!(ice_url_for_webrtcbin("turn:h:3478?transport=sctp", Some("u"), Some("p")).is_err());
/// ```
pub fn ice_url_for_webrtcbin(
    url: &str,
    username: Option<&str>,
    credential: Option<&str>,
) -> Result<String, SessionError> {
    let bad = |detail: &str| SessionError::IceServer {
        url: url.to_owned(),
        detail: detail.to_owned(),
    };
    let (scheme, rest) = url
        .split_once(':')
        .ok_or_else(|| bad("no scheme (stun:, turn:, turns:)"))?;
    let rest = rest.trim_start_matches("//");
    let (host, query) = match rest.split_once('?') {
        Some((h, q)) => (h, Some(q)),
        None => (rest, None),
    };
    if host.is_empty() {
        return Err(bad("no host"));
    }
    match scheme {
        "stun" => Ok(format!("stun://{host}")),
        "turn" | "turns" => {
            let (Some(u), Some(c)) = (username, credential) else {
                return Err(bad("TURN needs `username` and `credential`"));
            };
            let transport = match query {
                None | Some("") => String::new(),
                Some(q @ ("transport=udp" | "transport=tcp")) => format!("?{q}"),
                Some(q) => {
                    return Err(bad(&format!(
                        "unsupported query `{q}` (only transport=udp or transport=tcp)"
                    )));
                }
            };
            Ok(format!(
                "{scheme}://{}:{}@{host}{transport}",
                percent_encode(u),
                percent_encode(c)
            ))
        }
        other => Err(bad(&format!("unknown scheme `{other}`"))),
    }
}

/// Percent-encode the characters that would end or split a URL's user-info part.
fn percent_encode(s: &str) -> String {
    s.chars()
        .map(|ch| match ch {
            ':' | '@' | '/' | '%' | '?' | '#' | ' ' => format!("%{:02X}", ch as u32),
            c => c.to_string(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turn_urls_keep_their_transport_and_encode_credentials() {
        let conv = |u: &str| ice_url_for_webrtcbin(u, Some("1700000000:peer 1"), Some("x/y#z"));
        assert_eq!(
            conv("turns:turn.example.org:443?transport=tcp").unwrap(),
            "turns://1700000000%3Apeer%201:x%2Fy%23z@turn.example.org:443?transport=tcp"
        );
        assert_eq!(
            conv("turn:10.0.0.1:3478?transport=udp").unwrap(),
            "turn://1700000000%3Apeer%201:x%2Fy%23z@10.0.0.1:3478?transport=udp"
        );
        assert_eq!(
            conv("turn://[2001:db8::1]:3478").unwrap(),
            "turn://1700000000%3Apeer%201:x%2Fy%23z@[2001:db8::1]:3478"
        );
        for bad in [
            "turn:h:1?transport=sctp",
            "turn:h:1?foo=bar",
            "turn:?transport=tcp",
        ] {
            let e = conv(bad).unwrap_err().to_string();
            assert!(e.contains(bad), "{e}");
        }
        assert!(ice_url_for_webrtcbin("turn:h:1", None, None).is_err());
    }

    #[test]
    fn url_hosts() {
        assert_eq!(
            url_host("ws://127.0.0.1:8443/x"),
            Some(("127.0.0.1".into(), 8443))
        );
        assert_eq!(url_host("wss://[::1]/"), Some(("::1".into(), 443)));
        assert_eq!(
            url_host("ws://sig.example.org"),
            Some(("sig.example.org".into(), 80))
        );
        assert_eq!(url_host("ws://:1"), None);
        assert_eq!(url_host("nonsense"), None);
    }

    #[tokio::test]
    async fn loopback_restriction_warns_only_against_a_server_elsewhere() {
        let lo = vec!["127.0.0.1".to_string()];
        let remote = vec!["ws://192.0.2.7:8443".to_string()];
        assert!(warn_if_loopback_only(&lo, &remote).await);
        assert!(warn_if_loopback_only(&["::1".into()], &["wss://[2001:db8::1]".into()]).await);
        for local in [
            vec![],
            vec!["10.0.0.2".to_string()],
            vec!["127.0.0.1".into(), "10.0.0.2".into()],
        ] {
            assert!(!warn_if_loopback_only(&local, &remote).await, "{local:?}");
        }
        for server in [
            "ws://127.0.0.1:8443",
            "ws://127.9.0.1/x",
            "wss://localhost:8443",
            "ws://[::1]:1",
        ] {
            assert!(
                !warn_if_loopback_only(&lo, &[server.to_string()]).await,
                "{server}"
            );
        }
    }

    #[test]
    fn reply_servers_come_first_and_a_bad_url_is_reported_but_skipped() {
        let reply = vec![
            IceServer {
                urls: vec!["stun:127.0.0.1:3478".into(), "bogus".into()],
                username: None,
                credential: None,
            },
            IceServer {
                urls: vec!["turn:127.0.0.1:3478?transport=udp".into()],
                username: Some("u".into()),
                credential: Some("p@ss".into()),
            },
        ];
        let extra = vec!["stun://127.0.0.2:3478".into()];
        let (servers, problems) = IceServers::resolve(&reply, &extra, SystemTime::now());
        assert_eq!(servers.stun.as_deref(), Some("stun://127.0.0.1:3478"));
        assert_eq!(
            servers.turns,
            vec!["turn://u:p%40ss@127.0.0.1:3478?transport=udp".to_string()]
        );
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].to_string().contains("`bogus`"),
            "{}",
            problems[0]
        );
    }

    #[test]
    fn expired_time_limited_credentials_are_reported_from_the_reply_and_the_config() {
        let now = UNIX_EPOCH + std::time::Duration::from_secs(2_000);
        let reply = vec![
            IceServer {
                urls: vec!["turn:10.0.0.1:3478".into()],
                username: Some("1990:p-1".into()),
                credential: Some("c".into()),
            },
            IceServer {
                urls: vec!["turn:10.0.0.1:3478?transport=tcp".into()],
                username: Some("2010:p-1".into()),
                credential: Some("c".into()),
            },
            IceServer {
                urls: vec!["turn:10.0.0.2:3478".into()],
                username: Some("static-user".into()),
                credential: Some("c".into()),
            },
        ];
        let extra = vec!["turns://1500%3Aapp:pw@10.0.0.3:443?transport=tcp".to_string()];
        let (servers, problems) = IceServers::resolve(&reply, &extra, now);
        assert_eq!(servers.turns.len(), 4, "expired ones are still configured");
        let texts: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
        assert_eq!(texts.len(), 2, "{texts:?}");
        assert!(
            texts[0].contains("`turn:10.0.0.1:3478`") && texts[0].contains("10 s ago"),
            "{texts:?}"
        );
        assert!(
            texts[1].contains("10.0.0.3:443") && texts[1].contains("expired at 1500"),
            "{texts:?}"
        );
    }
}
