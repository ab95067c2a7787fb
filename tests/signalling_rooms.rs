//! Rooms, presence, tokens, grants, room isolation, SDP/ICE relay, replacement, shutdown,
//! TLS: against a real server on 127.0.0.1.

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;
use streamwire::signalling::client::{Client, ClientConfig, Event, SignallingState};
use streamwire::signalling::protocol::{Grant, LeaveReason, ServerMsg, TrackKind};
use streamwire::signalling::token::{Claims, mint};

#[tokio::test]
async fn join_and_presence() {
    let srv = start(config()).await;
    let (mut a, wa) = Raw::join(&srv.url, "r1", &token("r1", "alice", &all())).await;
    let ServerMsg::Welcome {
        peers,
        offer_to,
        ice_servers,
        grants,
        room,
        user,
        ..
    } = wa
    else {
        unreachable!()
    };
    assert!(peers.is_empty() && offer_to.is_empty());
    assert!(
        ice_servers.is_empty(),
        "no ICE servers unless configured (never a public STUN)"
    );
    assert_eq!(
        (room.as_str(), user.as_str(), grants.len()),
        ("r1", "alice", Grant::ALL.len())
    );
    assert_eq!(srv.handle.stats().rooms, 1);

    let (mut b, wb) = Raw::join(&srv.url, "r1", &token("r1", "bob", &all())).await;
    let ServerMsg::Welcome {
        peers, offer_to, ..
    } = wb
    else {
        unreachable!()
    };
    assert_eq!(peers.len(), 1);
    assert_eq!(peers[0].peer_id, a.peer_id);
    assert_eq!(peers[0].user, "alice");
    assert_eq!(
        offer_to,
        vec![a.peer_id.clone()],
        "the newcomer offers to existing peers"
    );

    let (p, expect_offer) = a
        .expect("peer_joined", |m| match m {
            ServerMsg::PeerJoined {
                peer,
                expect_offer,
                n,
            } => {
                assert!(*n >= 1);
                Some((peer.clone(), *expect_offer))
            }
            _ => None,
        })
        .await;
    assert_eq!(p.peer_id, b.peer_id);
    assert_eq!(p.name, "bob");
    assert!(expect_offer);

    b.send_json(json!({"type":"publish","track":{"id":"cam","kind":"video","label":"Camera"}}))
        .await;
    let (who, track) = a
        .expect("published", |m| match m {
            ServerMsg::Published { peer_id, track, .. } => Some((peer_id.clone(), track.clone())),
            _ => None,
        })
        .await;
    assert_eq!(
        (who.as_str(), track.id.as_str(), track.kind),
        (b.peer_id.as_str(), "cam", TrackKind::Video)
    );

    b.send_json(json!({"type":"set_metadata","metadata":{"muted":true}}))
        .await;
    let md = a
        .expect("metadata_changed", |m| match m {
            ServerMsg::MetadataChanged { metadata, .. } => Some(metadata.clone()),
            _ => None,
        })
        .await;
    assert_eq!(md, json!({"muted":true}));

    // A third peer sees bob's track and metadata in its welcome.
    let (mut c, wc) = Raw::join(&srv.url, "r1", &token("r1", "carol", &all())).await;
    let ServerMsg::Welcome {
        peers, offer_to, ..
    } = wc
    else {
        unreachable!()
    };
    assert_eq!(peers.len(), 2);
    assert_eq!(offer_to.len(), 2);
    let bob = peers.iter().find(|p| p.user == "bob").unwrap();
    assert_eq!(bob.tracks.len(), 1);
    assert_eq!(bob.metadata, json!({"muted":true}));

    b.send_json(json!({"type":"unpublish","track_id":"cam"}))
        .await;
    a.expect("unpublished", |m| {
        matches!(m, ServerMsg::Unpublished { track_id, .. } if track_id == "cam").then_some(())
    })
    .await;
    b.send_json(json!({"type":"unpublish","track_id":"cam"}))
        .await;
    let (code, in_type, field, _) = b.error().await;
    assert_eq!(
        (code.as_str(), in_type.as_deref(), field.as_deref()),
        ("invalid_field", Some("unpublish"), Some("track_id"))
    );

    b.send_json(json!({"type":"leave"})).await;
    let (who, reason) = a
        .expect("peer_left", |m| match m {
            ServerMsg::PeerLeft {
                peer_id, reason, ..
            } => Some((peer_id.clone(), *reason)),
            _ => None,
        })
        .await;
    assert_eq!((who, reason), (b.peer_id.clone(), LeaveReason::Left));
    c.send_json(json!({"type":"leave"})).await;
    a.send_json(json!({"type":"leave"})).await;
    within("room dropped", async {
        while srv.handle.stats().rooms != 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
}

#[tokio::test]
async fn token_refusals_then_valid_join_on_same_connection() {
    let srv = start(config()).await;
    let mut r = Raw::connect(&srv.url).await;
    let mut expired = Claims::new("r1", "u", "U", Duration::from_secs(0), &all());
    expired.exp -= 100;
    let forged = mint(
        b"some-other-secret-that-is-long-enough!!",
        &Claims::new("r1", "u", "U", Duration::from_secs(60), &all()),
    )
    .unwrap();
    let cases = [
        ("", "r1", "token_missing", "token"),
        (
            &mint(SECRET, &expired).unwrap()[..],
            "r1",
            "token_expired",
            "token",
        ),
        (&forged[..], "r1", "token_forged", "token"),
        (
            &token("r2", "u", &all())[..],
            "r1",
            "token_wrong_room",
            "room",
        ),
        ("not.a.jwt", "r1", "token_invalid", "token"),
    ];
    for (tok, room, code, field) in cases {
        r.send_json(json!({"type":"join","v":1,"room":room,"token":tok}))
            .await;
        let (c, in_type, f, msg) = r.error().await;
        assert_eq!(
            (c.as_str(), in_type.as_deref(), f.as_deref()),
            (code, Some("join"), Some(field)),
            "{msg}"
        );
        assert!(!msg.is_empty());
    }
    r.send_json(json!({"type":"join","v":2,"room":"r1","token":token("r1","u",&all())}))
        .await;
    assert_eq!(r.error().await.0, "unsupported_version");
    r.send_json(json!({"type":"offer","to":"x","sdp":"v=0"}))
        .await;
    assert_eq!(r.error().await.0, "not_joined");
    // Still the same connection: a valid token now works.
    r.send_json(json!({"type":"join","v":1,"room":"r1","token":token("r1","u",&all())}))
        .await;
    assert!(matches!(r.recv().await, ServerMsg::Welcome { .. }));
    r.send_json(json!({"type":"join","v":1,"room":"r1","token":token("r1","u",&all())}))
        .await;
    assert_eq!(r.error().await.0, "already_joined");
}

#[tokio::test]
async fn grants_are_enforced() {
    let srv = start(config()).await;
    let (mut viewer, _) =
        Raw::join(&srv.url, "g", &token("g", "viewer", &[Grant::Subscribe])).await;
    let (mut blind, _) = Raw::join(&srv.url, "g", &token("g", "blind", &[Grant::Message])).await;
    let (mut admin, _) = Raw::join(&srv.url, "g", &token("g", "admin", &all())).await;

    viewer
        .send_json(json!({"type":"publish","track":{"id":"a","kind":"audio"}}))
        .await;
    let (code, in_type, ..) = viewer.error().await;
    assert_eq!(
        (code.as_str(), in_type.as_deref()),
        ("forbidden", Some("publish"))
    );
    viewer
        .send_json(json!({"type":"message","seq":1,"payload":{"text":"hi"}}))
        .await;
    let d = viewer
        .expect("delivery", |m| {
            matches!(m, ServerMsg::Delivery { .. }).then(|| m.clone())
        })
        .await;
    assert!(
        matches!(
            d,
            ServerMsg::Delivery {
                seq: 1,
                reason: Some(streamwire::signalling::protocol::ErrorCode::Forbidden),
                ..
            }
        ),
        "{d:?}"
    );
    viewer
        .send_json(json!({"type":"kick","peer_id":blind.peer_id}))
        .await;
    assert_eq!(viewer.error().await.0, "forbidden");

    // Without `subscribe`, published tracks are not shown.
    admin
        .send_json(json!({"type":"publish","track":{"id":"cam","kind":"video"}}))
        .await;
    viewer
        .expect("published", |m| {
            matches!(m, ServerMsg::Published { .. }).then_some(())
        })
        .await;
    let seen = blind.drain().await;
    assert!(
        !seen
            .iter()
            .any(|m| matches!(m, ServerMsg::Published { .. })),
        "{seen:?}"
    );

    // Admin kicks: the target is told and closed; others see `kicked`.
    let blind_id = blind.peer_id.clone();
    admin
        .send_json(json!({"type":"kick","peer_id":blind_id}))
        .await;
    blind
        .expect("bye", |m| {
            matches!(
                m,
                ServerMsg::Bye {
                    code: streamwire::signalling::protocol::ErrorCode::Kicked,
                    reconnect: false,
                    ..
                }
            )
            .then_some(())
        })
        .await;
    viewer
        .expect("peer_left kicked", |m| {
            matches!(
                m,
                ServerMsg::PeerLeft {
                    reason: LeaveReason::Kicked,
                    ..
                }
            )
            .then_some(())
        })
        .await;
}

#[tokio::test]
async fn same_user_twice_replaces_older_connection() {
    let srv = start(config()).await;
    let (mut other, _) = Raw::join(&srv.url, "r", &token("r", "other", &all())).await;
    let (mut old, _) = Raw::join(&srv.url, "r", &token("r", "dup", &all())).await;
    let (new, w) = Raw::join(&srv.url, "r", &token("r", "dup", &all())).await;
    let ServerMsg::Welcome { peers, .. } = w else {
        unreachable!()
    };
    assert_eq!(peers.len(), 1, "the replaced session is gone: {peers:?}");
    let (msg, reconnect) = old
        .expect("bye replaced", |m| match m {
            ServerMsg::Bye {
                code,
                message,
                reconnect,
            } if code.as_str() == "replaced" => Some((message.clone(), *reconnect)),
            _ => None,
        })
        .await;
    assert!(!reconnect && msg.contains("same user"), "{msg}");
    other.expect("old left (replaced)", |m| matches!(m, ServerMsg::PeerLeft { peer_id, reason: LeaveReason::Replaced, .. } if *peer_id == old.peer_id).then_some(())).await;
    other
        .expect("new joined", |m| {
            matches!(m, ServerMsg::PeerJoined { peer, .. } if peer.peer_id == new.peer_id)
                .then_some(())
        })
        .await;
}

#[tokio::test]
async fn sdp_and_ice_relay_between_two_peers() {
    let srv = start(config()).await;
    let (mut a, _) = Raw::join(&srv.url, "call", &token("call", "a", &all())).await;
    let (mut b, wb) = Raw::join(&srv.url, "call", &token("call", "b", &all())).await;
    let ServerMsg::Welcome { offer_to, .. } = wb else {
        unreachable!()
    };
    assert_eq!(offer_to, vec![a.peer_id.clone()]);
    let sdp_offer =
        "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n";
    b.send_json(json!({"type":"offer","to":a.peer_id,"sdp":sdp_offer}))
        .await;
    let (from, sdp) = a
        .expect("offer", |m| match m {
            ServerMsg::Offer { from, sdp, .. } => Some((from.clone(), sdp.clone())),
            _ => None,
        })
        .await;
    assert_eq!(
        (from.as_str(), sdp.as_str()),
        (b.peer_id.as_str(), sdp_offer)
    );
    a.send_json(json!({"type":"answer","to":b.peer_id,"sdp":"v=0 answer"}))
        .await;
    let (from, sdp) = b
        .expect("answer", |m| match m {
            ServerMsg::Answer { from, sdp, .. } => Some((from.clone(), sdp.clone())),
            _ => None,
        })
        .await;
    assert_eq!(
        (from.as_str(), sdp.as_str()),
        (a.peer_id.as_str(), "v=0 answer")
    );
    for i in 0..5u32 {
        a.send_json(json!({"type":"ice","to":b.peer_id,"candidate":format!("candidate:{i} 1 UDP 2122252543 127.0.0.1 5{i}000 typ host"),"sdp_mline_index":i % 2,"sdp_mid":format!("{}", i % 2)})).await;
    }
    a.send_json(json!({"type":"ice","to":b.peer_id,"candidate":"","sdp_mline_index":0}))
        .await;
    for i in 0..5u32 {
        let (c, idx, mid) = b
            .expect("ice", |m| match m {
                ServerMsg::Ice {
                    candidate,
                    sdp_mline_index,
                    sdp_mid,
                    from,
                    ..
                } if *from == a.peer_id => {
                    Some((candidate.clone(), *sdp_mline_index, sdp_mid.clone()))
                }
                _ => None,
            })
            .await;
        assert!(c.starts_with(&format!("candidate:{i} ")), "in order: {c}");
        assert_eq!((idx, mid), (i % 2, Some(format!("{}", i % 2))));
    }
    let end = b
        .expect("end of candidates", |m| match m {
            ServerMsg::Ice {
                candidate, sdp_mid, ..
            } => Some((candidate.clone(), sdp_mid.clone())),
            _ => None,
        })
        .await;
    assert_eq!(end, (String::new(), None));
    // A peer cannot address itself.
    a.send_json(json!({"type":"offer","to":a.peer_id,"sdp":"x"}))
        .await;
    assert_eq!(a.error().await.0, "unknown_peer");
}

#[tokio::test]
async fn rooms_are_isolated_for_every_message_type() {
    let srv = start(config()).await;
    let (mut a, _) = Raw::join(&srv.url, "room-a", &token("room-a", "a", &all())).await;
    let (mut a2, _) = Raw::join(&srv.url, "room-a", &token("room-a", "a2", &all())).await;
    let (mut x, _) = Raw::join(&srv.url, "room-x", &token("room-x", "x", &all())).await;
    let xid = x.peer_id.clone();
    let probes = [
        json!({"type":"offer","to":xid,"sdp":"s"}),
        json!({"type":"answer","to":xid,"sdp":"s"}),
        json!({"type":"ice","to":xid,"candidate":"c","sdp_mline_index":0}),
        json!({"type":"kick","peer_id":xid}),
    ];
    for p in probes {
        let t = p["type"].as_str().unwrap().to_owned();
        a.send_json(p).await;
        let (code, in_type, field, msg) = a.error().await;
        assert_eq!(
            (code.as_str(), in_type.as_deref()),
            ("unknown_peer", Some(t.as_str())),
            "{msg}"
        );
        assert!(field.is_some());
    }
    a.send_json(json!({"type":"message","seq":1,"to":xid,"payload":{"text":"leak?"}}))
        .await;
    let d = a
        .expect("delivery", |m| {
            matches!(m, ServerMsg::Delivery { .. }).then(|| m.clone())
        })
        .await;
    assert!(
        matches!(
            d,
            ServerMsg::Delivery {
                seq: 1,
                recipients: 0,
                reason: Some(streamwire::signalling::protocol::ErrorCode::UnknownPeer),
                ..
            }
        ),
        "{d:?}"
    );
    a.send_json(json!({"type":"message","seq":2,"payload":{"text":"room only"}}))
        .await;
    let d = a
        .expect("delivery", |m| {
            matches!(m, ServerMsg::Delivery { .. }).then(|| m.clone())
        })
        .await;
    assert!(
        matches!(
            d,
            ServerMsg::Delivery {
                seq: 2,
                recipients: 1,
                ..
            }
        ),
        "only a2 is reached: {d:?}"
    );
    a.send_json(json!({"type":"publish","track":{"id":"t","kind":"audio"}}))
        .await;
    a.send_json(json!({"type":"set_metadata","metadata":1}))
        .await;
    a2.expect("room message", |m| {
        matches!(m, ServerMsg::Message { seq: 2, .. }).then_some(())
    })
    .await;
    // Nothing at all reached room-x (pings are answered in order, so everything sent before
    // the pong has arrived).
    let leaked = x.drain().await;
    assert!(leaked.is_empty(), "frames crossed rooms: {leaked:?}");
    // The same user id in another room is a different identity (no replacement across rooms).
    let (_, w) = Raw::join(&srv.url, "room-x", &token("room-x", "a", &all())).await;
    let ServerMsg::Welcome { peers, .. } = w else {
        unreachable!()
    };
    assert_eq!(peers.len(), 1);
    assert!(
        a.drain()
            .await
            .iter()
            .all(|m| !matches!(m, ServerMsg::Bye { .. }))
    );
}

#[tokio::test]
async fn room_full_is_refused() {
    let mut cfg = config();
    cfg.limits.max_peers_per_room = 2;
    let srv = start(cfg).await;
    let _a = Raw::join(&srv.url, "small", &token("small", "a", &all())).await;
    let _b = Raw::join(&srv.url, "small", &token("small", "b", &all())).await;
    let mut c = Raw::connect(&srv.url).await;
    c.send_json(json!({"type":"join","v":1,"room":"small","token":token("small","c",&all())}))
        .await;
    let (code, _, _, msg) = c.error().await;
    assert_eq!(code, "room_full");
    assert!(msg.contains("small") && msg.contains('2'), "{msg}");
}

#[tokio::test]
async fn graceful_shutdown_tells_peers_and_client_reconnects_elsewhere() {
    let srv1 = start(config()).await;
    let srv2 = start(config()).await;
    let mut raw = Raw::join(&srv1.url, "s", &token("s", "raw", &all()))
        .await
        .0;
    let mut cfg = ClientConfig::new(&srv1.url, "s", &token("s", "cli", &all()));
    cfg.urls.push(srv2.url.clone());
    cfg.backoff_initial = Duration::from_millis(20);
    let (client, mut events) = within("connect", Client::connect(cfg)).await.unwrap();
    let first_id = client.peer_id().unwrap();
    assert_eq!(client.state(), SignallingState::Connected);
    srv1.handle.shutdown().await;
    let bye = raw
        .expect("bye", |m| match m {
            ServerMsg::Bye {
                code, reconnect, ..
            } => Some((code.as_str().to_owned(), *reconnect)),
            _ => None,
        })
        .await;
    assert_eq!(bye, ("shutdown".to_owned(), true));
    let mut saw_reconnecting = false;
    let w = within("rejoin on the second server", async {
        loop {
            match events.recv().await.expect("events ended") {
                Event::State(SignallingState::Reconnecting { .. }) => saw_reconnecting = true,
                Event::Joined(w) if saw_reconnecting => return w,
                _ => {}
            }
        }
    })
    .await;
    assert!(saw_reconnecting);
    assert_ne!(w.peer_id, first_id);
    assert_eq!(srv2.handle.stats().rooms, 1);
    assert_eq!(srv1.handle.stats().connections, 0);
    client.leave().await;
}

#[tokio::test]
async fn tls_serves_wss() {
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    let st = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
        ])
        .args([
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-addext",
            "basicConstraints=critical,CA:FALSE",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(std::process::Stdio::null())
        .status()
        .expect("openssl");
    assert!(st.success());
    let mut cfg = config();
    cfg.tls = Some((cert.clone(), key.clone()));
    let srv = start(cfg).await;
    let url = format!("wss://{}", srv.addr);
    let mut ccfg = ClientConfig::new(&url, "t", &token("t", "u", &all()));
    ccfg.tls = Some(streamwire::server::tls::client_config_trusting(&cert).unwrap());
    let (client, _ev) = within("wss connect", Client::connect(ccfg)).await.unwrap();
    assert!(client.peer_id().is_some());
    // Plain ws:// against the TLS port fails cleanly.
    let mut plain = ClientConfig::new(&format!("ws://{}", srv.addr), "t", &token("t", "v", &all()));
    plain.max_attempts = 1;
    plain.backoff_initial = Duration::from_millis(10);
    assert!(within("plain", Client::connect(plain)).await.is_err());
    // A bad key file is reported with its path.
    let mut bad = config();
    std::fs::write(dir.path().join("empty.pem"), "").unwrap();
    bad.tls = Some((cert, dir.path().join("empty.pem")));
    let err = streamwire::server::Server::bind(bad)
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("empty.pem"), "{err}");
    client.leave().await;
}
