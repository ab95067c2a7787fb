//! Real-time messages: ordering, delivery results, payload limits, reconnect-and-resume with
//! no loss and no duplicates (sockets killed mid-stream), grace expiry, keepalive, flooding.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::*;
use serde_json::json;
use streamwire::signalling::client::{Client, ClientConfig, ClientError, Event, SignallingState};
use streamwire::signalling::protocol::{
    DEFAULT_MAX_PAYLOAD, DeliveryStatus, ErrorCode, LeaveReason, Payload, ServerMsg,
};

fn fast_cfg(url: &str, room: &str, user: &str) -> ClientConfig {
    let mut c = ClientConfig::new(url, room, &token(room, user, &all()));
    c.backoff_initial = Duration::from_millis(20);
    c.backoff_max = Duration::from_millis(200);
    c
}

async fn next_message(
    ev: &mut streamwire::signalling::client::Events,
) -> (String, u64, bool, Payload) {
    within("message event", async {
        loop {
            if let Event::Message {
                from,
                seq,
                direct,
                payload,
            } = ev.recv().await.expect("events ended")
            {
                return (from, seq, direct, payload);
            }
        }
    })
    .await
}

#[tokio::test]
async fn messages_are_ordered_and_each_gets_a_delivery_result() {
    let mut cfg = config();
    cfg.limits.rate_per_sec = 100_000;
    cfg.limits.burst = 100_000;
    let srv = start(cfg).await;
    let (a, _) = within("a", Client::connect(fast_cfg(&srv.url, "m", "a")))
        .await
        .unwrap();
    let (b, mut bev) = within("b", Client::connect(fast_cfg(&srv.url, "m", "b")))
        .await
        .unwrap();
    let (c, mut cev) = within("c", Client::connect(fast_cfg(&srv.url, "m", "c")))
        .await
        .unwrap();
    let n = 300u64;
    let pending: Vec<_> = (0..n)
        .map(|i| {
            a.start_message(None, Payload::Text(format!("m{i}")))
                .unwrap()
        })
        .collect();
    for (i, p) in pending.into_iter().enumerate() {
        let d = within("delivery", p).await.unwrap().unwrap();
        assert_eq!(
            (d.seq, d.status, d.recipients, d.reason),
            (i as u64 + 1, DeliveryStatus::Delivered, 2, None)
        );
    }
    let aid = a.peer_id().unwrap();
    for ev in [&mut bev, &mut cev] {
        for i in 0..n {
            let (from, seq, direct, payload) = next_message(ev).await;
            assert_eq!((from.as_str(), seq, direct), (aid.as_str(), i + 1, false));
            assert_eq!(payload, Payload::Text(format!("m{i}")));
        }
    }
    // Direct binary message: only b gets it, byte-exact; the largest allowed payload passes.
    let bid = b.peer_id().unwrap();
    let blob: Vec<u8> = (0..64 * 1024).map(|i| (i * 7 % 256) as u8).collect();
    let d = within(
        "direct",
        a.send_message(Some(&bid), Payload::Binary(blob.clone())),
    )
    .await
    .unwrap();
    assert_eq!((d.status, d.recipients), (DeliveryStatus::Delivered, 1));
    let (_, seq, direct, payload) = next_message(&mut bev).await;
    assert_eq!((seq, direct), (n + 1, true));
    assert_eq!(payload, Payload::Binary(blob));
    // One byte over the payload limit: the client refuses it before sending (the server's
    // answer to such a payload, a failed delivery, is in `oversized_frames_...`).
    let err = within(
        "too big",
        a.send_message(None, Payload::Binary(vec![1; 64 * 1024 + 1])),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::TooLarge {
                limit_name: "max_payload_bytes",
                ..
            }
        ),
        "{err}"
    );
    let d = within(
        "unknown peer",
        a.send_message(Some("nobody"), Payload::Text("x".into())),
    )
    .await
    .unwrap();
    assert_eq!(
        (d.status, d.reason, d.seq),
        (DeliveryStatus::Failed, Some(ErrorCode::UnknownPeer), n + 2)
    );
    let d = within(
        "after failures",
        a.send_message(None, Payload::Text("still ok".into())),
    )
    .await
    .unwrap();
    assert_eq!((d.status, d.seq), (DeliveryStatus::Delivered, n + 3));
    let (_, seq, direct, _) = next_message(&mut cev).await;
    assert_eq!(
        (seq, direct),
        (n + 3, false),
        "c never saw the direct message nor the failed ones"
    );
    for x in [a, b, c] {
        x.leave().await;
    }
}

/// Kill both clients' sockets (via a proxy) repeatedly while 1,500 messages flow; every
/// message must arrive exactly once, in order, and every delivery result must arrive once.
#[tokio::test]
async fn resume_after_killed_sockets_loses_and_duplicates_nothing() {
    let mut cfg = config();
    cfg.limits.rate_per_sec = 100_000;
    cfg.limits.burst = 100_000;
    let srv = start(cfg).await;
    let proxy = Proxy::start(srv.addr).await;
    let (sender, mut sev) = within(
        "sender",
        Client::connect(fast_cfg(&proxy.url, "res", "sender")),
    )
    .await
    .unwrap();
    let (rx, mut rev) = within(
        "receiver",
        Client::connect(fast_cfg(&proxy.url, "res", "receiver")),
    )
    .await
    .unwrap();
    let rx_id = rx.peer_id().unwrap();
    let total = 1500u64;
    let collector = tokio::spawn(async move {
        let mut seqs = Vec::new();
        let mut resumed = 0;
        let mut joined = 0;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while (seqs.len() as u64) < total {
            let ev = tokio::time::timeout_at(deadline, rev.recv())
                .await
                .expect("collector timed out")
                .expect("ended");
            match ev {
                Event::Message { seq, payload, .. } => {
                    assert_eq!(payload, Payload::Text(format!("#{seq}")));
                    seqs.push(seq);
                }
                Event::Resumed { .. } => resumed += 1,
                Event::Joined(_) => joined += 1,
                _ => {}
            }
        }
        (seqs, resumed, joined)
    });
    let mut results: HashMap<u64, DeliveryStatus> = HashMap::new();
    let mut pending = Vec::new();
    let mut kills = 0;
    for i in 1..=total {
        // Alternate broadcast and direct messages; both go through the same reliable path.
        let to = if i % 2 == 0 {
            Some(rx_id.as_str())
        } else {
            None
        };
        pending.push((
            i,
            sender
                .start_message(to, Payload::Text(format!("#{i}")))
                .unwrap(),
        ));
        if i % 100 == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        if i % 400 == 0 {
            // Mid-stream: frames are in flight in both directions.
            kills += proxy.kill();
        }
    }
    for (i, p) in pending {
        let d = within("delivery result", p).await.unwrap().unwrap();
        assert_eq!(d.seq, i);
        assert!(
            results.insert(i, d.status).is_none(),
            "duplicate result for {i}"
        );
        assert_eq!(d.status, DeliveryStatus::Delivered, "seq {i}: {d:?}");
    }
    let (seqs, resumed, joined) = within("collector", collector).await.unwrap();
    let expected: Vec<u64> = (1..=total).collect();
    assert_eq!(seqs, expected, "no loss, no duplicates, in order");
    assert!(kills >= 4, "sockets were killed mid-stream ({kills})");
    assert!(resumed >= 1, "receiver resumed at least once");
    assert_eq!(
        joined, 1,
        "only the initial join: the receiver never lost its session"
    );
    assert_eq!(rx.peer_id().unwrap(), rx_id, "identity kept across resumes");
    // The sender saw its state go through reconnecting and back to connected.
    let mut states = Vec::new();
    while let Ok(Some(ev)) = tokio::time::timeout(Duration::from_millis(50), sev.recv()).await {
        if let Event::State(s) = ev {
            states.push(s);
        }
    }
    assert!(
        states
            .iter()
            .any(|s| matches!(s, SignallingState::Reconnecting { .. })),
        "{states:?}"
    );
    assert_eq!(sender.state(), SignallingState::Connected);
    sender.leave().await;
    rx.leave().await;
}

#[tokio::test]
async fn resume_keeps_identity_and_publications_and_replays_presence() {
    let srv = start(config()).await;
    let (mut a, _) = Raw::join(&srv.url, "p", &token("p", "a", &all())).await;
    let (mut obs, _) = Raw::join(&srv.url, "p", &token("p", "obs", &all())).await;
    a.send_json(json!({"type":"publish","track":{"id":"mic","kind":"audio"}}))
        .await;
    obs.expect("published", |m| {
        matches!(m, ServerMsg::Published { .. }).then_some(())
    })
    .await;
    let frames_before = a.drain().await; // peer_joined(obs) = n 1
    let last_n = frames_before.iter().filter_map(|m| m.n()).max().unwrap();
    let (id, tok) = (a.peer_id.clone(), a.resume_token.clone());
    drop(a); // abrupt: no leave
    // While a is away: obs sends a direct message and metadata changes.
    obs.send_json(json!({"type":"message","seq":1,"to":id,"payload":{"text":"while away"}}))
        .await;
    obs.expect("delivery", |m| {
        matches!(
            m,
            ServerMsg::Delivery {
                status: DeliveryStatus::Delivered,
                ..
            }
        )
        .then_some(())
    })
    .await;
    obs.send_json(json!({"type":"set_metadata","metadata":{"x":1}}))
        .await;
    let mut back = Raw::connect(&srv.url).await;
    back.send_json(json!({"type":"resume","v":1,"resume_token":tok,"last_n":last_n}))
        .await;
    match back.recv().await {
        ServerMsg::Resumed {
            peer_id, replay, ..
        } => assert_eq!((peer_id, replay), (id.clone(), 2)),
        other => panic!("{other:?}"),
    }
    let replayed = back.drain().await;
    assert!(
        matches!(&replayed[0], ServerMsg::Message { n, seq: 1, direct: true, .. } if *n == last_n + 1),
        "{replayed:?}"
    );
    assert!(
        matches!(&replayed[1], ServerMsg::MetadataChanged { n, .. } if *n == last_n + 2),
        "{replayed:?}"
    );
    assert_eq!(replayed.len(), 2);
    // Publications survived: a newcomer sees a's track under the same peer id.
    let (_, w) = Raw::join(&srv.url, "p", &token("p", "late", &all())).await;
    let ServerMsg::Welcome { peers, .. } = w else {
        unreachable!()
    };
    let pa = peers
        .iter()
        .find(|p| p.peer_id == id)
        .expect("a still present");
    assert_eq!(pa.tracks.len(), 1);
    // The observer never saw a leave.
    assert!(
        !obs.drain()
            .await
            .iter()
            .any(|m| matches!(m, ServerMsg::PeerLeft { peer_id, .. } if *peer_id == id))
    );
    // Resuming from a point the client never received is refused with the field named.
    let mut bogus = Raw::connect(&srv.url).await;
    bogus
        .send_json(json!({"type":"resume","v":1,"resume_token":back.resume_token,"last_n":999}))
        .await;
    let _ = bogus.error().await;
    bogus
        .send_json(json!({"type":"resume","v":1,"resume_token":"nope","last_n":0}))
        .await;
    let (code, _, field, _) = bogus.error().await;
    assert_eq!(
        (code.as_str(), field.as_deref()),
        ("resume_unknown", Some("resume_token"))
    );
}

#[tokio::test]
async fn session_expires_after_grace_and_resume_is_refused() {
    let mut cfg = config();
    cfg.grace = Duration::from_millis(300);
    let srv = start(cfg).await;
    let (mut obs, _) = Raw::join(&srv.url, "g", &token("g", "obs", &all())).await;
    let (a, _) = Raw::join(&srv.url, "g", &token("g", "a", &all())).await;
    let (id, tok) = (a.peer_id.clone(), a.resume_token.clone());
    drop(a);
    let started = tokio::time::Instant::now();
    let reason = obs
        .expect("peer_left after grace", |m| match m {
            ServerMsg::PeerLeft {
                peer_id, reason, ..
            } if *peer_id == id => Some(*reason),
            _ => None,
        })
        .await;
    assert_eq!(reason, LeaveReason::Timeout);
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "not before the grace period"
    );
    let mut late = Raw::connect(&srv.url).await;
    late.send_json(json!({"type":"resume","v":1,"resume_token":tok,"last_n":0}))
        .await;
    assert_eq!(late.error().await.0, "resume_unknown");
}

#[tokio::test]
async fn client_rejoins_when_resume_is_impossible() {
    let mut cfg = config();
    cfg.grace = Duration::from_millis(100);
    let srv = start(cfg).await;
    let proxy = Proxy::start(srv.addr).await;
    let mut c = fast_cfg(&proxy.url, "rj", "u");
    c.backoff_initial = Duration::from_millis(400); // longer than the grace period
    c.backoff_max = Duration::from_millis(400);
    let (client, mut ev) = within("connect", Client::connect(c)).await.unwrap();
    let first = client.peer_id().unwrap();
    proxy.kill();
    let w = within("fresh join", async {
        loop {
            if let Event::Joined(w) = ev.recv().await.unwrap()
                && w.peer_id != first
            {
                return w;
            }
        }
    })
    .await;
    assert_ne!(
        w.peer_id, first,
        "a new session (new peer id) after the grace period"
    );
    let d = within(
        "send after rejoin",
        client.send_message(None, Payload::Text("x".into())),
    )
    .await
    .unwrap();
    assert_eq!(d.seq, 1, "sequence restarts with the new session");
    client.leave().await;
}

#[tokio::test]
async fn dead_connections_are_detected_by_keepalive() {
    let mut cfg = config();
    cfg.ping_interval = Duration::from_millis(50);
    cfg.idle_timeout = Duration::from_millis(200);
    cfg.grace = Duration::from_millis(100);
    // The silent peer never answers the close handshake: keep its closing socket briefly.
    cfg.close_linger = Duration::from_millis(50);
    let srv = start(cfg).await;
    let (mut obs, _) = Raw::join(&srv.url, "k", &token("k", "obs", &all())).await;
    // A peer that joins and then never reads again (so never answers pings).
    let (mute, _) = Raw::join(&srv.url, "k", &token("k", "mute", &all())).await;
    let mute_id = mute.peer_id.clone();
    let t0 = tokio::time::Instant::now();
    // obs keeps talking (pings) so it stays alive; mute is silent.
    let reason = within("mute cleaned up", async {
        loop {
            for m in obs.drain().await {
                if let ServerMsg::PeerLeft {
                    peer_id, reason, ..
                } = m
                    && peer_id == mute_id
                {
                    return reason;
                }
            }
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
    })
    .await;
    assert_eq!(reason, LeaveReason::Timeout);
    let took = t0.elapsed();
    assert!(
        took < Duration::from_secs(2),
        "cleaned within a bounded time: {took:?}"
    );
    assert_eq!(
        srv.handle.stats().connections,
        1,
        "only obs remains connected"
    );
    drop(mute);
}

#[tokio::test]
async fn flooding_is_rate_limited_without_dropping_the_connection() {
    let mut cfg = config();
    cfg.limits.rate_per_sec = 50;
    cfg.limits.burst = 20;
    let srv = start(cfg).await;
    let (mut a, _) = Raw::join(&srv.url, "f", &token("f", "a", &all())).await;
    let (mut b, _) = Raw::join(&srv.url, "f", &token("f", "b", &all())).await;
    for seq in 1..=200u64 {
        a.send_json(json!({"type":"message","seq":seq,"payload":{"text":format!("{seq}")}}))
            .await;
    }
    let mut delivered = 0;
    let mut limited = 0;
    for _ in 0..200 {
        let (seq_status, reason) = a
            .expect("delivery", |m| match m {
                ServerMsg::Delivery {
                    seq,
                    status,
                    reason,
                    ..
                } => Some(((*seq, *status), *reason)),
                _ => None,
            })
            .await;
        match seq_status.1 {
            DeliveryStatus::Delivered => delivered += 1,
            DeliveryStatus::Failed => {
                assert_eq!(reason, Some(ErrorCode::RateLimited));
                limited += 1;
            }
        }
    }
    assert!(limited > 100, "most of the flood was refused ({limited})");
    // The join frame took one token of the burst of 20; the bucket refills at 50/s meanwhile.
    assert!(
        (15..=60).contains(&delivered),
        "about the burst got through ({delivered})"
    );
    // b got exactly the delivered ones, in increasing seq order.
    let got: Vec<u64> = b
        .drain()
        .await
        .iter()
        .filter_map(|m| match m {
            ServerMsg::Message { seq, .. } => Some(*seq),
            _ => None,
        })
        .collect();
    assert_eq!(got.len(), delivered);
    assert!(got.windows(2).all(|w| w[0] < w[1]));
    // The bucket is empty now. State-changing frames are never dropped for the rate: they
    // wait for their token. (Before, a `publish` after a chat burst got `rate_limited` and
    // nobody ever saw that camera.)
    for seq in 201..=260u64 {
        a.send_json(json!({"type":"message","seq":seq,"payload":{"text":"burst"}}))
            .await;
    }
    a.send_json(json!({"type":"publish","track":{"id":"cam","kind":"video"}}))
        .await;
    a.send_json(json!({"type":"offer","to":b.peer_id,"sdp":"v=0"}))
        .await;
    for i in 0..60 {
        a.send_json(json!({"type":"set_metadata","metadata":i}))
            .await;
    }
    a.send_json(json!({"type":"ice","to":b.peer_id,"candidate":"","sdp_mline_index":0}))
        .await;
    b.expect("published after the burst", |m| {
        matches!(m, ServerMsg::Published { track, .. } if track.id == "cam").then_some(())
    })
    .await;
    b.expect("offer after the burst", |m| {
        matches!(m, ServerMsg::Offer { .. }).then_some(())
    })
    .await;
    let mut last_md = None;
    b.expect("every set_metadata", |m| {
        if let ServerMsg::MetadataChanged { metadata, .. } = m {
            last_md = metadata.as_i64();
        }
        (last_md == Some(59)).then_some(())
    })
    .await;
    b.expect("end of candidates after the burst", |m| {
        matches!(m, ServerMsg::Ice { candidate, .. } if candidate.is_empty()).then_some(())
    })
    .await;
    // No error frame for any of them; the burst messages got delivery results.
    let rest = a.drain().await;
    assert!(
        !rest.iter().any(|m| matches!(m, ServerMsg::Error { .. })),
        "{rest:?}"
    );
    // After the bucket refills the connection works normally.
    tokio::time::sleep(Duration::from_millis(600)).await;
    a.drain().await;
    a.send_json(json!({"type":"message","seq":261,"payload":{"text":"calm"}}))
        .await;
    a.expect("delivered after calm", |m| {
        matches!(
            m,
            ServerMsg::Delivery {
                seq: 261,
                status: DeliveryStatus::Delivered,
                ..
            }
        )
        .then_some(())
    })
    .await;
}

#[tokio::test]
async fn oversized_frames_get_an_error_and_the_connection_goes_on() {
    let mut cfg = config();
    cfg.limits.max_frame_bytes = 8 * 1024;
    cfg.limits.hard_frame_bytes = 64 * 1024;
    let srv = start(cfg).await;
    let (mut a, _) = Raw::join(&srv.url, "o", &token("o", "a", &all())).await;
    let (mut b, _) = Raw::join(&srv.url, "o", &token("o", "b", &all())).await;
    let big = "x".repeat(10 * 1024);
    a.send_json(json!({"type":"message","seq":1,"payload":{"text":big}}))
        .await;
    // The frame is not processed, but its seq is consumed with a failed delivery, so the
    // sequence goes on (before, seq 1 was left unconsumed and every later frame failed).
    a.expect("frame_too_large delivery", |m| {
        matches!(
            m,
            ServerMsg::Delivery {
                seq: 1,
                status: DeliveryStatus::Failed,
                reason: Some(ErrorCode::FrameTooLarge),
                ..
            }
        )
        .then_some(())
    })
    .await;
    a.send_json(json!({"type":"message","seq":2,"payload":{"text":"small"}}))
        .await;
    a.expect("delivery", |m| {
        matches!(
            m,
            ServerMsg::Delivery {
                seq: 2,
                status: DeliveryStatus::Delivered,
                ..
            }
        )
        .then_some(())
    })
    .await;
    b.expect("message", |m| {
        matches!(m, ServerMsg::Message { seq: 2, .. }).then_some(())
    })
    .await;
    // A sequenced signalling frame too large: an error naming it; its seq is consumed too.
    a.send_json(json!({"type":"offer","seq":3,"to":b.peer_id,"sdp":big}))
        .await;
    let (code, in_type, _, msg) = a.error().await;
    assert_eq!(
        (code.as_str(), in_type.as_deref()),
        ("frame_too_large", Some("offer"))
    );
    assert!(msg.contains("8192") && msg.contains("seq 3"), "{msg}");
    a.send_json(json!({"type":"offer","seq":4,"to":b.peer_id,"sdp":"v=0"}))
        .await;
    b.expect("offer seq 4 relayed", |m| {
        matches!(m, ServerMsg::Offer { sdp, .. } if sdp == "v=0").then_some(())
    })
    .await;
    // A payload above max_payload_bytes in a frame that fits: failed delivery, seq consumed.
    let payload = "p".repeat(DEFAULT_MAX_PAYLOAD + 1);
    let mut cfg_small = config();
    cfg_small.limits.max_frame_bytes = 2 * DEFAULT_MAX_PAYLOAD;
    let srv2 = start(cfg_small).await;
    let (mut p, _) = Raw::join(&srv2.url, "o", &token("o", "p", &all())).await;
    p.send_json(json!({"type":"message","seq":1,"payload":{"text":payload}}))
        .await;
    p.expect("payload_too_large", |m| {
        matches!(
            m,
            ServerMsg::Delivery {
                seq: 1,
                reason: Some(ErrorCode::PayloadTooLarge),
                ..
            }
        )
        .then_some(())
    })
    .await;
    assert!(
        !a.drain()
            .await
            .iter()
            .any(|m| matches!(m, ServerMsg::Error { .. })),
        "no bad_sequence after the oversized frames"
    );
    // Beyond the hard limit the WebSocket layer closes that connection; others are unaffected.
    let huge = "y".repeat(100 * 1024);
    let _ =
        a.ws.send(async_tungstenite::tungstenite::Message::Text(huge.into()))
            .await;
    let close = within("closed", async {
        loop {
            match futures::StreamExt::next(&mut a.ws).await {
                None | Some(Err(_)) => return None,
                Some(Ok(async_tungstenite::tungstenite::Message::Close(c))) => return c,
                Some(Ok(_)) => {}
            }
        }
    })
    .await
    .expect("a close frame (RFC 6455: 1009), not a bare TCP close");
    assert_eq!(u16::from(close.code), 1009);
    assert!(close.reason.contains("65536"), "{}", close.reason);
    let (_, w) = Raw::join(&srv.url, "o", &token("o", "c", &all())).await;
    assert!(matches!(w, ServerMsg::Welcome { .. }));
    assert!(
        b.drain()
            .await
            .iter()
            .any(|m| matches!(m, ServerMsg::PeerJoined { .. }))
    );
}

/// SDP/ICE sent by the client library are sequenced too: killing both sockets while 600
/// candidates flow loses and duplicates none of them.
#[tokio::test]
async fn ice_relay_survives_killed_sockets_exactly_once() {
    let mut cfg = config();
    cfg.limits.rate_per_sec = 100_000;
    cfg.limits.burst = 100_000;
    let srv = start(cfg).await;
    let proxy = Proxy::start(srv.addr).await;
    let (tx, _tev) = within("tx", Client::connect(fast_cfg(&proxy.url, "ice", "tx")))
        .await
        .unwrap();
    let (rx, mut rev) = within("rx", Client::connect(fast_cfg(&proxy.url, "ice", "rx")))
        .await
        .unwrap();
    let rx_id = rx.peer_id().unwrap();
    let tx_id = tx.peer_id().unwrap();
    let total = 600u32;
    let me = rx_id.clone();
    let collector = tokio::spawn(async move {
        let mut got = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while got.len() < total as usize {
            match tokio::time::timeout_at(deadline, rev.recv())
                .await
                .expect("timed out")
                .expect("ended")
            {
                Event::Ice {
                    from,
                    candidate,
                    sdp_mline_index,
                    ..
                } => {
                    assert_eq!(from, tx_id);
                    assert_eq!(candidate, format!("candidate:{sdp_mline_index}"));
                    got.push(sdp_mline_index);
                }
                Event::Joined(w) if w.peer_id != me => panic!("receiver lost its session"),
                _ => {}
            }
        }
        got
    });
    let mut kills = 0;
    for i in 1..=total {
        tx.send_ice(&rx_id, format!("candidate:{i}"), i, None)
            .unwrap();
        if i % 50 == 0 {
            tokio::time::sleep(Duration::from_millis(3)).await;
        }
        if i % 150 == 0 {
            kills += proxy.kill();
        }
    }
    let got = within("collector", collector).await.unwrap();
    assert_eq!(
        got,
        (1..=total).collect::<Vec<_>>(),
        "every candidate once, in order"
    );
    assert!(kills >= 3, "sockets were killed mid-stream ({kills})");
    // A frame with a sequence gap is refused with the field named.
    let (mut raw, _) = Raw::join(&srv.url, "ice", &token("ice", "raw", &all())).await;
    raw.send_json(json!({"type":"ice","seq":5,"to":rx_id,"candidate":"c","sdp_mline_index":0}))
        .await;
    let (code, in_type, field, _) = raw.error().await;
    assert_eq!(
        (code.as_str(), in_type.as_deref(), field.as_deref()),
        ("bad_sequence", Some("ice"), Some("seq"))
    );
    tx.leave().await;
    rx.leave().await;
}

/// The client checks `welcome.limits` before sending: a payload or frame the server would
/// refuse fails locally with an error naming the limit, nothing is sent, the sequence goes on,
/// and the connection never drops (before, a message above the WebSocket limit made the
/// client reconnect and resend it in a loop).
#[tokio::test]
async fn client_refuses_oversized_sends_locally() {
    let mut cfg = config();
    cfg.limits.max_frame_bytes = 8 * 1024;
    cfg.limits.hard_frame_bytes = 64 * 1024;
    cfg.limits.max_payload_bytes = 4 * 1024;
    let srv = start(cfg).await;
    let (a, mut aev) = within("a", Client::connect(fast_cfg(&srv.url, "lim", "a")))
        .await
        .unwrap();
    let (b, mut bev) = within("b", Client::connect(fast_cfg(&srv.url, "lim", "b")))
        .await
        .unwrap();
    let bid = b.peer_id().unwrap();
    let err = a
        .send_message(None, Payload::Text("p".repeat(5 * 1024)))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::TooLarge {
                limit_name: "max_payload_bytes",
                limit: 4096,
                ..
            }
        ),
        "{err}"
    );
    let err = a
        .send_message(None, Payload::Text("q".repeat(2_000_000)))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("max_payload_bytes"), "{err}");
    // Base64 makes a 4 KiB binary payload fit, a frame with a long `to` does not.
    let err = a
        .send_message(Some(&"x".repeat(9000)), Payload::Text("hi".into()))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::TooLarge {
                what: "message",
                limit_name: "max_frame_bytes",
                ..
            }
        ),
        "{err}"
    );
    let err = a.send_offer(&bid, "v".repeat(9000)).unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::TooLarge {
                what: "offer",
                limit: 8192,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("not sent"), "{err}");
    // Nothing was sent: the next message is seq 1 and arrives; the connection never dropped.
    let d = within(
        "small",
        a.send_message(None, Payload::Binary(vec![7; 4096])),
    )
    .await
    .unwrap();
    assert_eq!((d.seq, d.status), (1, DeliveryStatus::Delivered));
    let (_, seq, _, _) = next_message(&mut bev).await;
    assert_eq!(seq, 1);
    a.send_offer(&bid, "v=0".into()).unwrap();
    within("offer", async {
        loop {
            if let Event::Offer { sdp, .. } = bev.recv().await.unwrap() {
                assert_eq!(sdp, "v=0");
                return;
            }
        }
    })
    .await;
    while let Some(ev) = aev.try_recv() {
        assert!(
            !matches!(ev, Event::State(SignallingState::Reconnecting { .. })),
            "the client reconnected"
        );
    }
    a.leave().await;
    b.leave().await;
}

/// Cut `client`'s connection through `proxy` and hold it off until `proxy.hold(false)`;
/// returns once the client is reconnecting.
async fn cut_off(proxy: &Proxy, client: &Client) {
    proxy.hold(true);
    proxy.kill();
    let mut state = client.watch_state();
    within("reconnecting", async {
        while !matches!(*state.borrow(), SignallingState::Reconnecting { .. }) {
            state.changed().await.unwrap();
        }
    })
    .await;
}

#[tokio::test]
async fn frames_beyond_the_backlog_are_refused_while_disconnected_and_none_is_dropped() {
    const LIMIT: usize = 50;
    let srv = start(config()).await;
    let proxy = Proxy::start(srv.addr).await;
    let mut cfg = fast_cfg(&proxy.url, "backlog", "a");
    cfg.max_backlog = LIMIT;
    cfg.max_attempts = 1000;
    let (a, _aev) = within("a", Client::connect(cfg)).await.unwrap();
    let (_b, mut bev) = within("b", Client::connect(fast_cfg(&srv.url, "backlog", "b")))
        .await
        .unwrap();
    let a_id = a.peer_id().unwrap();

    // Cut a off and keep it off.
    cut_off(&proxy, &a).await;
    for n in 0..LIMIT {
        a.set_metadata(json!({ "n": n }))
            .unwrap_or_else(|e| panic!("frame {n} of {LIMIT} refused: {e}"));
    }
    assert_eq!(
        a.set_metadata(json!({ "n": LIMIT })),
        Err(ClientError::Backlog { limit: LIMIT }),
        "the frame past the backlog is refused, not queued over an older one"
    );

    // Back: every queued frame arrives, in order, and the backlog is free again.
    proxy.hold(false);
    let mut seen = Vec::new();
    within("b sees every queued change", async {
        while seen.last() != Some(&(LIMIT as u64 - 1)) {
            if let Some(Event::MetadataChanged { peer_id, metadata }) = bev.recv().await
                && peer_id == a_id
            {
                seen.push(metadata["n"].as_u64().unwrap());
            }
        }
    })
    .await;
    assert_eq!(seen, (0..LIMIT as u64).collect::<Vec<_>>());
    a.set_metadata(json!({ "n": "after" }))
        .expect("sends go through once the backlog went out");
}

#[tokio::test]
async fn messages_beyond_the_pending_limit_are_refused_while_disconnected_and_all_arrive() {
    const LIMIT: usize = 20;
    let srv = start(config()).await;
    let proxy = Proxy::start(srv.addr).await;
    let mut cfg = fast_cfg(&proxy.url, "pending", "a");
    cfg.max_pending_messages = LIMIT;
    cfg.max_attempts = 1000;
    let (a, _aev) = within("a", Client::connect(cfg)).await.unwrap();
    let (_b, mut bev) = within("b", Client::connect(fast_cfg(&srv.url, "pending", "b")))
        .await
        .unwrap();

    // Cut a off and keep it off: its messages wait for a delivery result.
    cut_off(&proxy, &a).await;
    let mut results = Vec::new();
    for n in 0..LIMIT {
        results.push(
            a.start_message(None, Payload::Text(format!("m{n}")))
                .unwrap_or_else(|e| panic!("message {n} of {LIMIT} refused: {e}")),
        );
    }
    assert_eq!(
        a.start_message(None, Payload::Text("one too many".into()))
            .err(),
        Some(ClientError::PendingMessages { limit: LIMIT }),
        "the message past the limit is refused, not queued"
    );

    // Back: every waiting message is delivered, in order, and the limit frees up.
    proxy.hold(false);
    for (n, r) in results.into_iter().enumerate() {
        let d = within("delivery result", r).await.unwrap();
        assert!(d.is_ok(), "message {n}: {d:?}");
    }
    let mut seen = Vec::new();
    within("b receives every message", async {
        while seen.len() < LIMIT {
            if let Some(Event::Message { payload, .. }) = bev.recv().await {
                seen.push(payload);
            }
        }
    })
    .await;
    let want: Vec<Payload> = (0..LIMIT).map(|n| Payload::Text(format!("m{n}"))).collect();
    assert_eq!(seen, want);
    within(
        "a message after the wait",
        a.send_message(None, Payload::Text("after".into())),
    )
    .await
    .expect("messages go through once the waiting ones were delivered");
}
