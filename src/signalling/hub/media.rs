//! Grants enforced on media: the server relays every SDP, so it refuses an `offer` or
//! `answer` that would send audio or video from a peer without `publish`, or to a peer
//! without `subscribe`.
//!
//! Media flows peer to peer, but only over m-lines both sides negotiated through the server:
//! an m-line that is `recvonly`, `inactive` or disabled (port 0) carries nothing from the
//! SDP's author. Data channels (`m=application`) are not media.

/// An audio or video m-line on which the SDP's author would send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Sending {
    /// 0-based index of the m-line.
    pub index: usize,
    /// `audio` or `video`.
    pub kind: String,
    /// `sendrecv` or `sendonly` (explicit, or implied by the RFC 4566 default).
    pub direction: &'static str,
}

/// The audio/video m-lines of `sdp` on which its author would send (RFC 3264 section 5.1:
/// the direction is the media-level attribute, else the session-level one, else
/// `sendrecv`; an m-line with port 0 is disabled unless it is `bundle-only`).
pub(super) fn sending(sdp: &str) -> Vec<Sending> {
    struct Section {
        kind: String,
        disabled: bool,
        bundle_only: bool,
        direction: Option<&'static str>,
    }
    let direction_of = |line: &str| match line {
        "a=sendrecv" => Some("sendrecv"),
        "a=sendonly" => Some("sendonly"),
        "a=recvonly" => Some("recvonly"),
        "a=inactive" => Some("inactive"),
        _ => None,
    };
    let mut session_direction = None;
    let mut sections: Vec<Section> = Vec::new();
    for line in sdp.lines().map(str::trim_end) {
        if let Some(media) = line.strip_prefix("m=") {
            let mut parts = media.split_whitespace();
            let kind = parts.next().unwrap_or("").to_owned();
            let port = parts.next().unwrap_or("");
            sections.push(Section {
                kind,
                disabled: port.split('/').next() == Some("0"),
                bundle_only: false,
                direction: None,
            });
            continue;
        }
        match (sections.last_mut(), direction_of(line)) {
            (None, Some(d)) => session_direction = Some(d),
            (Some(s), Some(d)) => s.direction = Some(d),
            (Some(s), None) if line == "a=bundle-only" => s.bundle_only = true,
            _ => {}
        }
    }
    sections
        .into_iter()
        .enumerate()
        .filter(|(_, s)| s.kind == "audio" || s.kind == "video")
        .filter(|(_, s)| !s.disabled || s.bundle_only)
        .filter_map(|(index, s)| {
            let direction = s.direction.or(session_direction).unwrap_or("sendrecv");
            matches!(direction, "sendrecv" | "sendonly").then_some(Sending {
                index,
                kind: s.kind,
                direction,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directions_follow_rfc_3264() {
        let sdp = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n\
                   m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\na=recvonly\r\n\
                   m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:1\r\na=sendonly\r\n\
                   m=video 0 UDP/TLS/RTP/SAVPF 96\r\na=mid:2\r\na=sendrecv\r\n\
                   m=video 0 UDP/TLS/RTP/SAVPF 96\r\na=bundle-only\r\na=mid:3\r\n\
                   m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=sendrecv\r\n\
                   m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=inactive\r\n";
        let s = sending(sdp);
        let got: Vec<(usize, &str, &str)> = s
            .iter()
            .map(|x| (x.index, x.kind.as_str(), x.direction))
            .collect();
        // m-line 3 has no direction: the default, sendrecv; port 0 + bundle-only is active.
        assert_eq!(got, [(1, "video", "sendonly"), (3, "video", "sendrecv")]);
        // A session-level direction applies to m-lines without their own.
        let s = sending("v=0\na=recvonly\nm=audio 9 RTP/AVP 0\nm=video 9 RTP/AVP 96\na=sendrecv\n");
        assert_eq!(s.len(), 1);
        assert_eq!((s[0].index, s[0].kind.as_str()), (1, "video"));
        assert!(sending("not an sdp at all").is_empty());
    }
}
