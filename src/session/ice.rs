//! ICE server URLs: the RTCIceServer form of the server's join reply converted to webrtcbin's,
//! merged with the application's extra servers.

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
    /// webrtcbin's form). An unusable URL is skipped; the first such error is returned beside
    /// the servers that are usable.
    pub(crate) fn resolve(
        reply: &[IceServer],
        extra: &[String],
    ) -> (IceServers, Option<SessionError>) {
        let mut servers = IceServers::default();
        let from_reply = reply.iter().flat_map(|s| {
            s.urls.iter().map(move |u| {
                ice_url_for_webrtcbin(u, s.username.as_deref(), s.credential.as_deref())
            })
        });
        let mut first_err = None;
        for url in from_reply.chain(extra.iter().map(|u| Ok(u.clone()))) {
            match url {
                Ok(u) if u.starts_with("stun://") => {
                    servers.stun.get_or_insert(u);
                }
                Ok(u) => servers.turns.push(u),
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        (servers, first_err)
    }
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

/// Convert an RTCIceServer URL (`stun:host:port`, `turn:host:port?transport=udp`) with optional
/// credentials to webrtcbin's form (`stun://host:port`, `turn://user:pass@host:port`).
///
/// ```
/// use streamwire::session::ice_url_for_webrtcbin;
/// assert_eq!(ice_url_for_webrtcbin("stun:127.0.0.1:3478", None, None).unwrap(), "stun://127.0.0.1:3478");
/// assert_eq!(
///     ice_url_for_webrtcbin("turn:127.0.0.1:3478", Some("u"), Some("p")).unwrap(),
///     "turn://u:p@127.0.0.1:3478"
/// );
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
    let host = rest.split('?').next().unwrap_or_default();
    if host.is_empty() {
        return Err(bad("no host"));
    }
    match scheme {
        "stun" => Ok(format!("stun://{host}")),
        "turn" | "turns" => {
            let (Some(u), Some(c)) = (username, credential) else {
                return Err(bad("TURN needs `username` and `credential`"));
            };
            let enc = |s: &str| {
                s.chars()
                    .map(|ch| match ch {
                        ':' | '@' | '/' | '%' => format!("%{:02X}", ch as u32),
                        c => c.to_string(),
                    })
                    .collect::<String>()
            };
            Ok(format!("{scheme}://{}:{}@{host}", enc(u), enc(c)))
        }
        other => Err(bad(&format!("unknown scheme `{other}`"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let (servers, err) = IceServers::resolve(&reply, &extra);
        assert_eq!(servers.stun.as_deref(), Some("stun://127.0.0.1:3478"));
        assert_eq!(
            servers.turns,
            vec!["turn://u:p%40ss@127.0.0.1:3478".to_string()]
        );
        let err = err.expect("the bogus URL is reported");
        assert!(err.to_string().contains("`bogus`"), "{err}");
    }
}
