//! Grants enforced on media. The server relays every SDP: an `offer`/`answer` that would send
//! audio or video from a peer without `publish`, or to a peer without `subscribe`, is refused
//! (`forbidden`, field `sdp`) and not relayed; presence carries each peer's grants, and Rust
//! sessions set up their transceivers from them. Checked with hand-written SDP, with real
//! `webrtcbin` sessions and with a real Chromium that ignores its grants, in both join orders.
//! Run: unshare -n sh -c 'ip link set lo up; cargo test --test signalling_media_grants'

mod browser_support;
mod common;
mod session_support;

use std::time::Duration;

use common::*;
use serde_json::json;
use session_support::{Joined, join_as, small, wait_for};
use streamwire::encoder::Codec;
use streamwire::session::SessionEvent;
use streamwire::signalling::protocol::{Grant, ServerMsg};
use streamwire::webrtc::MediaKind;

const VIEWER: &[Grant] = &[Grant::Subscribe, Grant::Message];
const BLIND: &[Grant] = &[Grant::Publish, Grant::Message];

fn sdp(body: &str) -> String {
    format!("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n{body}")
}

#[tokio::test]
async fn sdp_that_would_send_media_against_the_grants_is_refused() {
    let srv = start(config()).await;
    let (mut publ, _) = Raw::join(&srv.url, "g", &token("g", "pub", &all())).await;
    let (viewer, w) = Raw::join(&srv.url, "g", &token("g", "viewer", VIEWER)).await;
    let (blind, _) = Raw::join(&srv.url, "g", &token("g", "blind", BLIND)).await;
    // Presence carries the grants.
    let ServerMsg::Welcome { peers, .. } = w else {
        unreachable!()
    };
    assert_eq!(peers[0].grants, Grant::ALL.to_vec());
    let joined = publ
        .expect("viewer joined", |m| match m {
            ServerMsg::PeerJoined { peer, .. } if peer.user == "viewer" => {
                Some(peer.grants.clone())
            }
            _ => None,
        })
        .await;
    assert_eq!(joined, VIEWER.to_vec());

    let send_video = sdp("m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:0\r\na=sendonly\r\n");
    let default_sendrecv = sdp("m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\n");
    let session_level = sdp("a=sendrecv\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n");
    let receive_only = sdp(
        "m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=recvonly\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n",
    );
    let disabled = sdp("m=video 0 UDP/TLS/RTP/SAVPF 96\r\na=sendrecv\r\n");
    let (p, v, b) = (
        publ.peer_id.clone(),
        viewer.peer_id.clone(),
        blind.peer_id.clone(),
    );
    const PUB: usize = 0;
    const VIE: usize = 1;
    const BLI: usize = 2;
    let mut raws = [publ, viewer, blind];
    let mut inbox: [Vec<ServerMsg>; 3] = Default::default();
    // (sender, type, to, sdp, refused because)
    let cases: Vec<(usize, &str, &str, &str, Option<&str>)> = vec![
        (VIE, "offer", &p, &send_video, Some("`publish`")),
        (VIE, "offer", &p, &default_sendrecv, Some("`publish`")),
        (VIE, "answer", &p, &session_level, Some("`publish`")),
        (VIE, "offer", &p, &receive_only, None),
        (VIE, "answer", &p, &disabled, None),
        (PUB, "offer", &b, &send_video, Some("`subscribe`")),
        (PUB, "answer", &b, &default_sendrecv, Some("`subscribe`")),
        (PUB, "offer", &b, &receive_only, None),
        (BLI, "offer", &p, &send_video, None),
        (PUB, "offer", &v, &send_video, None),
    ];
    for (who, ty, to, body, refused) in cases {
        let from = &mut raws[who];
        from.send_json(json!({"type":ty,"to":to,"sdp":body})).await;
        let answer = from.drain().await;
        inbox[who].extend(answer.iter().cloned());
        let error = answer.iter().find_map(|m| match m {
            ServerMsg::Error {
                code,
                field,
                message,
                in_type,
            } => Some((
                code.as_str(),
                field.as_deref(),
                in_type.as_deref(),
                message.clone(),
            )),
            _ => None,
        });
        match refused {
            Some(grant) => {
                let (code, field, in_type, message) =
                    error.unwrap_or_else(|| panic!("{ty} to {to} relayed: {body}"));
                assert_eq!(
                    (code, field, in_type),
                    ("forbidden", Some("sdp"), Some(ty)),
                    "{message}"
                );
                assert!(
                    message.contains(grant) && message.contains("m-line 0"),
                    "{message}"
                );
            }
            None => assert!(error.is_none(), "{ty} to {to} refused: {error:?}"),
        }
    }
    for (i, r) in raws.iter_mut().enumerate() {
        inbox[i].extend(r.drain().await);
    }
    let sdps = |msgs: &[ServerMsg]| -> Vec<String> {
        msgs.iter()
            .filter_map(|m| match m {
                ServerMsg::Offer { sdp, .. } | ServerMsg::Answer { sdp, .. } => Some(sdp.clone()),
                _ => None,
            })
            .collect()
    };
    // Nothing refused reached its addressee; what was allowed did, in order.
    assert_eq!(
        sdps(&inbox[PUB]),
        vec![receive_only.clone(), disabled.clone(), send_video.clone()]
    );
    assert_eq!(sdps(&inbox[BLI]), vec![receive_only.clone()]);
    assert_eq!(sdps(&inbox[VIE]), vec![send_video.clone()]);
    let [_, mut viewer, _] = raws;
    // A refused sequenced frame consumes its seq like any other.
    viewer
        .send_json(json!({"type":"offer","seq":1,"to":p,"sdp":send_video}))
        .await;
    assert_eq!(viewer.error().await.0, "forbidden");
    viewer
        .send_json(json!({"type":"offer","seq":2,"to":p,"sdp":receive_only}))
        .await;
    assert!(
        viewer
            .drain()
            .await
            .iter()
            .all(|m| !matches!(m, ServerMsg::Error { .. }))
    );
}

const T: Duration = Duration::from_secs(40);

fn errors(j: &Joined) -> Vec<String> {
    j.events()
        .into_iter()
        .filter_map(|e| match e {
            SessionEvent::Error { context, detail } => Some(format!("{context}: {detail}")),
            _ => None,
        })
        .collect()
}

fn remote_tracks_from(j: &Joined, peer: &str) -> usize {
    j.events()
        .iter()
        .filter(|e| matches!(e, SessionEvent::TrackAdded { peer_id, .. } if peer_id == peer))
        .count()
}

/// Real sessions, both join orders: a viewer configured with a camera but without `publish`
/// receives and never sends; a publisher without `subscribe` sends and never receives; the
/// server refuses nothing because the sessions follow the presence grants.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_follow_the_presence_grants_in_both_join_orders() {
    let server = start(config()).await;
    let url = server.url.clone();
    for (order, viewer_first) in [("publisher first", false), ("viewer first", true)] {
        let room = if viewer_first { "order-b" } else { "order-a" };
        let cam = || Some(small(176, 144, Codec::Vp8));
        let (ann, vic) = if viewer_first {
            let vic = join_as(&url, room, "vic", VIEWER, cam(), |_| {}).await;
            let ann = join_as(&url, room, "ann", &Grant::ALL, cam(), |_| {}).await;
            (ann, vic)
        } else {
            let ann = join_as(&url, room, "ann", &Grant::ALL, cam(), |_| {}).await;
            let vic = join_as(&url, room, "vic", VIEWER, cam(), |_| {}).await;
            (ann, vic)
        };
        let (a, v) = (
            ann.session.peer_id().unwrap(),
            vic.session.peer_id().unwrap(),
        );
        wait_for(
            &format!("{order}: the viewer decodes the publisher"),
            T,
            || vic.decoded_from(&a, MediaKind::Video) > 10,
        )
        .await;
        // A publisher without `subscribe` joins last: it sends to both, receives from none.
        let bob = join_as(&url, room, "bob", BLIND, cam(), |_| {}).await;
        let b = bob.session.peer_id().unwrap();
        wait_for(
            &format!("{order}: both decode the blind publisher"),
            T,
            || {
                ann.decoded_from(&b, MediaKind::Video) > 10
                    && vic.decoded_from(&b, MediaKind::Video) > 10
            },
        )
        .await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(
            ann.decoded_from(&v, MediaKind::Video),
            0,
            "{order}: media from a viewer"
        );
        assert_eq!(remote_tracks_from(&ann, &v), 0, "{order}");
        assert_eq!(
            bob.decoded_from(&a, MediaKind::Video),
            0,
            "{order}: media to the blind"
        );
        assert_eq!(bob.decoded_from(&v, MediaKind::Video), 0, "{order}");
        assert_eq!(
            remote_tracks_from(&bob, &a) + remote_tracks_from(&bob, &v),
            0,
            "{order}"
        );
        // The viewer is told once that its camera is not sent; the server refused nothing.
        assert_eq!(errors(&vic).len(), 1, "{order}: {:?}", errors(&vic));
        assert!(errors(&vic)[0].contains("lacks the `publish` grant"));
        for j in [&ann, &bob] {
            assert!(errors(j).is_empty(), "{order}: {:?}", errors(j));
        }
        for j in [ann, vic, bob] {
            j.session.leave().await;
        }
    }
}

/// A browser page speaking the protocol by hand that adds its camera to every connection
/// whatever its grants say: its token lacks `publish`. Whether it offers (joining last) or
/// answers (joining first), the server refuses the SDP and no frame of it reaches the Rust
/// publisher.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_without_publish_cannot_send_its_camera_in_either_join_order() {
    let server = start(config()).await;
    let url = server.url.clone();
    for (order, browser_first) in [("browser joins last", false), ("browser joins first", true)] {
        let room = if browser_first { "web-b" } else { "web-a" };
        let mut browser = browser_support::Browser::launch().await;
        browser.goto(&format!("http://{}/", server.addr)).await;
        browser
            .wait_for("page loaded", "document.readyState === 'complete'", T)
            .await;
        let script = PAGE
            .replace("URL", &json!(url).to_string())
            .replace("ROOM", &json!(room).to_string())
            .replace("TOKEN", &json!(token(room, "web", VIEWER)).to_string());
        let ann = if browser_first {
            browser.eval(&script).await;
            browser.wait_for("browser joined", "window.joined", T).await;
            join_as(
                &url,
                room,
                "ann",
                &Grant::ALL,
                Some(small(176, 144, Codec::Vp8)),
                |_| {},
            )
            .await
        } else {
            let ann = join_as(
                &url,
                room,
                "ann",
                &Grant::ALL,
                Some(small(176, 144, Codec::Vp8)),
                |_| {},
            )
            .await;
            browser.eval(&script).await;
            ann
        };
        let refused = browser
            .wait_for(
                &format!("{order}: the server refuses the camera"),
                "window.errors.find(e => e.code === 'forbidden' && e.field === 'sdp') || (window.jsErrors.length && window.jsErrors)",
                T,
            )
            .await;
        assert!(refused.is_object(), "{order}: page errors {refused}");
        assert!(
            refused["message"]
                .as_str()
                .unwrap_or("")
                .contains("`publish`"),
            "{refused}"
        );
        let web = browser
            .eval("window.peerId")
            .await
            .as_str()
            .unwrap()
            .to_owned();
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert_eq!(ann.decoded_from(&web, MediaKind::Video), 0, "{order}");
        assert_eq!(remote_tracks_from(&ann, &web), 0, "{order}");
        ann.session.leave().await;
    }
}

/// The page's client: joins, adds its camera to every connection (sendrecv), offers to
/// `offer_to`, answers offers, trickles ICE, records `error` frames.
const PAGE: &str = r#"(async () => {
  window.errors = []; window.jsErrors = []; window.joined = false;
  const cam = await navigator.mediaDevices.getUserMedia({video: true, audio: false});
  const ws = new WebSocket(URL);
  const send = m => ws.send(JSON.stringify(m));
  const pcs = {};
  const pc = id => {
    if (pcs[id]) return pcs[id];
    const p = new RTCPeerConnection({iceServers: []});
    // Adding the camera to a connection it answers asks for a new offer: make it.
    p.onnegotiationneeded = async () => {
      try {
        if (p.signalingState !== 'stable' || !p.remoteDescription) return;
        await p.setLocalDescription(await p.createOffer());
        send({type: 'offer', to: id, sdp: p.localDescription.sdp});
      } catch (e) { window.jsErrors.push(String(e)); }
    };
    p.onicecandidate = e => { if (e.candidate) send({type: 'ice', to: id, candidate: e.candidate.candidate, sdp_mline_index: e.candidate.sdpMLineIndex}); };
    return pcs[id] = p;
  };
  ws.onmessage = async ev => { try {
    const m = JSON.parse(ev.data);
    if (m.n) send({type: 'ack', n: m.n});
    if (m.type === 'error') window.errors.push(m);
    if (m.type === 'welcome') {
      window.peerId = m.peer_id; window.joined = true;
      for (const id of m.offer_to) {
        const p = pc(id);
        cam.getTracks().forEach(t => p.addTrack(t, cam));
        await p.setLocalDescription(await p.createOffer());
        send({type: 'offer', to: id, sdp: p.localDescription.sdp});
      }
    } else if (m.type === 'offer') {
      const p = pc(m.from);
      await p.setRemoteDescription({type: 'offer', sdp: m.sdp});
      cam.getTracks().forEach(t => p.addTrack(t, cam));
      p.getTransceivers().forEach(t => { t.direction = 'sendrecv'; });
      await p.setLocalDescription(await p.createAnswer());
      send({type: 'answer', to: m.from, sdp: p.localDescription.sdp});
      // An offer without an m-line to send on: add one for the camera (a new offer follows).
      if (!p.getTransceivers().some(t => t.currentDirection === 'sendrecv' || t.currentDirection === 'sendonly')) {
        cam.getTracks().forEach(t => p.addTransceiver(t, {direction: 'sendrecv', streams: [cam]}));
      }
    } else if (m.type === 'answer') {
      await pcs[m.from]?.setRemoteDescription({type: 'answer', sdp: m.sdp});
    } else if (m.type === 'ice' && m.candidate) {
      await pcs[m.from]?.addIceCandidate({candidate: m.candidate, sdpMLineIndex: m.sdp_mline_index});
    }
  } catch (e) { window.jsErrors.push(String(e)); } };
  await new Promise(r => { ws.onopen = r; });
  send({type: 'join', v: 1, room: ROOM, token: TOKEN});
  return true;
})()"#;
