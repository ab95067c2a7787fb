//! Kicks: a kicked user stays out of that room (its token, or any token of the same user)
//! until the token expires or the ban the admin gave ends; other rooms are not affected; and
//! a victim busy sending still receives its `bye` and the close frame.

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;
use streamwire::signalling::client::{Client, ClientConfig, Event, SignallingState};
use streamwire::signalling::protocol::{ClientMsg, ErrorCode, Grant, LeaveReason, ServerMsg};

async fn kick(admin: &mut Raw, victim: &Raw, ban_ms: Option<u64>) {
    let mut k = json!({"type":"kick","peer_id":victim.peer_id});
    if let Some(ms) = ban_ms {
        k["ban_ms"] = json!(ms);
    }
    admin.send_json(k).await;
    admin
        .expect("peer_left kicked", |m| {
            matches!(m, ServerMsg::PeerLeft { peer_id, reason: LeaveReason::Kicked, .. } if *peer_id == victim.peer_id)
                .then_some(())
        })
        .await;
}

async fn join_error(url: &str, room: &str, token: &str) -> (String, String) {
    let mut r = Raw::connect(url).await;
    r.send_json(json!({"type":"join","v":1,"room":room,"token":token}))
        .await;
    match r.recv().await {
        ServerMsg::Error { code, message, .. } => (code.as_str().to_owned(), message),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn a_kicked_user_stays_out_for_the_token_lifetime_or_the_given_ban() {
    let srv = start(config()).await;
    let (mut admin, _) = Raw::join(&srv.url, "k", &token("k", "admin", &all())).await;
    // Default: banned until the kicked token expires (an hour here), whatever token it brings.
    let eve_token = token("k", "eve", &[Grant::Message]);
    let (eve, _) = Raw::join(&srv.url, "k", &eve_token).await;
    kick(&mut admin, &eve, None).await;
    let (code, message) = join_error(&srv.url, "k", &eve_token).await;
    assert_eq!(code, "banned", "{message}");
    assert!(message.contains("`k`"), "{message}");
    let (code, _) = join_error(&srv.url, "k", &token("k", "eve", &all())).await;
    assert_eq!(
        code, "banned",
        "a fresh token of the same user is refused too"
    );
    // The ban is for that room only.
    let (_other, w) = Raw::join(&srv.url, "elsewhere", &token("elsewhere", "eve", &all())).await;
    assert!(matches!(w, ServerMsg::Welcome { .. }));
    // An explicit ban ends when the admin said.
    let (mal, _) = Raw::join(&srv.url, "k", &token("k", "mal", &all())).await;
    kick(&mut admin, &mal, Some(1500)).await;
    assert_eq!(
        join_error(&srv.url, "k", &token("k", "mal", &all()))
            .await
            .0,
        "banned"
    );
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (_mal, w) = Raw::join(&srv.url, "k", &token("k", "mal", &all())).await;
    assert!(matches!(w, ServerMsg::Welcome { .. }), "ban over");
    // `ban_ms: 0` removes without a ban.
    let (bob, _) = Raw::join(&srv.url, "k", &token("k", "bob", &all())).await;
    kick(&mut admin, &bob, Some(0)).await;
    let (_bob, w) = Raw::join(&srv.url, "k", &token("k", "bob", &all())).await;
    assert!(matches!(w, ServerMsg::Welcome { .. }));
    // A token that expires in 2 s: the default ban ends with it.
    let short = streamwire::signalling::token::mint(
        SECRET,
        &streamwire::signalling::token::Claims::new(
            "k",
            "sam",
            "sam",
            Duration::from_secs(2),
            &all(),
        ),
    )
    .unwrap();
    let (sam, _) = Raw::join(&srv.url, "k", &short).await;
    kick(&mut admin, &sam, None).await;
    assert_eq!(
        join_error(&srv.url, "k", &token("k", "sam", &all()))
            .await
            .0,
        "banned"
    );
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let (_sam, w) = Raw::join(&srv.url, "k", &token("k", "sam", &all())).await;
    assert!(
        matches!(w, ServerMsg::Welcome { .. }),
        "the ban ended with the token"
    );
}

/// Victims busy sending thousands of frames per second when they are kicked: every one
/// receives `bye kicked` and stops (before, the server closed with their frames unread, the
/// connection was reset, and a victim whose next write failed took it for a lost connection:
/// it never saw the `bye` and reconnected).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_victims_get_their_bye_before_the_close() {
    let srv = start(config()).await;
    let (mut admin, _) = Raw::join(&srv.url, "busy", &token("busy", "admin", &all())).await;
    let mut victims = Vec::new();
    for i in 0..20 {
        let mut cfg = ClientConfig::new(&srv.url, "busy", &token("busy", &format!("v{i}"), &all()));
        cfg.backoff_initial = Duration::from_millis(10);
        let (c, ev) = within("victim joins", Client::connect(cfg)).await.unwrap();
        victims.push((c, ev));
    }
    admin.drain().await;
    let mut tasks = Vec::new();
    for (c, mut ev) in victims {
        let id = c.peer_id().unwrap();
        let flood = c.clone();
        // ~4,000 frames/s until the client stops, at most 10 s.
        let writer = tokio::spawn(async move {
            let t0 = tokio::time::Instant::now();
            while flood.state() == SignallingState::Connected
                && t0.elapsed() < Duration::from_secs(10)
            {
                for _ in 0..20 {
                    if flood.send_raw(ClientMsg::Ack { n: 0 }).is_err() {
                        return;
                    }
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        });
        let reader = tokio::spawn(async move {
            let (mut kicked, mut reconnected) = (false, false);
            let end = tokio::time::timeout(T, async {
                while let Some(e) = ev.recv().await {
                    match e {
                        Event::ServerError {
                            code: ErrorCode::Kicked,
                            ..
                        } => kicked = true,
                        Event::State(SignallingState::Reconnecting { .. }) => reconnected = true,
                        Event::State(SignallingState::Failed { reason }) => return Some(reason),
                        _ => {}
                    }
                }
                None
            })
            .await
            .ok()
            .flatten();
            (kicked, reconnected, end)
        });
        tasks.push((id, c, writer, reader));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    for (id, ..) in &tasks {
        admin.send_json(json!({"type":"kick","peer_id":id})).await;
    }
    let mut missed = Vec::new();
    for (id, _c, writer, reader) in tasks {
        let (kicked, reconnected, end) = within("victim events", reader).await.unwrap();
        writer.abort();
        let stopped = end.as_deref().is_some_and(|r| r.starts_with("kicked"));
        if !kicked || reconnected || !stopped {
            missed.push((id, kicked, reconnected, end));
        }
    }
    assert!(
        missed.is_empty(),
        "victims that missed their bye: {missed:?}"
    );
}
