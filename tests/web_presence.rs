//! Tiles follow presence and connection state (no ghost tiles): after a server restart every
//! page shows exactly one live tile per member; a member whose browser died shows as
//! reconnecting/lost instead of frozen figures, and when it rejoins its new tile replaces the
//! old one at once (not after the 30 s grace period).
//! Run: unshare -n sh -c 'ip link set lo up; cargo nextest run --test web_presence'

mod browser_support;
mod common;

use std::time::Duration;

use browser_support::{Browser, page_url};
use serde_json::{Value, json};

const LONG: Duration = Duration::from_secs(45);

/// JS: the remote camera tiles as [peer id, name, playing] (playing: videoWidth > 0).
const TILES: &str = "[...document.querySelectorAll('.tile[data-kind=camera]:not([data-peer=local])')]
    .map(t => [t.dataset.peer, t.querySelector('.name').textContent, t.querySelector('video').videoWidth > 0])";

async fn open(srv: &common::TestServer, room: &str, user: &str) -> (Browser, String) {
    let mut b = Browser::launch().await;
    let token = common::token(room, user, &common::all());
    b.goto(&page_url(srv.addr, room, &token, user, true)).await;
    b.wait_for(
        &format!("{user} in the call"),
        "window.streamwireApp?.view === 'call' && window.streamwireApp.client.state === 'joined'",
        LONG,
    )
    .await;
    (b, token)
}

/// Wait until `b` shows exactly one remote tile, of `name`, playing, whose peer id is the
/// member's current one and not `not`; return that id.
async fn one_live_tile(b: &mut Browser, name: &str, not: &str) -> String {
    let v = b
        .wait_for(
            &format!("exactly one live tile of {name}"),
            &format!(
                "(() => {{ const t = {TILES}; const c = window.streamwireApp.client;
                   return t.length === 1 && t[0][1] === '{name}' && t[0][2] && c.peers.has(t[0][0]) && t[0][0] !== '{not}' && t[0][0]; }})()"
            ),
            LONG,
        )
        .await;
    v.as_str().expect("peer id").to_owned()
}

async fn playing_advances(b: &mut Browser) {
    let t = "document.querySelector('.tile[data-kind=camera]:not([data-peer=local]) video').currentTime";
    let t0 = b.eval(t).await.as_f64().unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let t1 = b.eval(t).await.as_f64().unwrap();
    assert!(
        t1 > t0 + 0.5,
        "the remote video does not play: {t0} -> {t1}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_restart_leaves_one_live_tile_per_member() {
    let srv = common::start(common::config()).await;
    let addr = srv.addr;
    let room = "restart";
    let (mut a, _) = open(&srv, room, "alice").await;
    let (mut b, _) = open(&srv, room, "bob").await;
    let bob_before = one_live_tile(&mut a, "bob", "").await;
    let alice_before = one_live_tile(&mut b, "alice", "").await;

    srv.handle.shutdown().await;
    drop(srv);
    // The same address again (the pages reconnect to it).
    let mut cfg = common::config();
    cfg.addr = addr;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let srv2 = loop {
        match streamwire::server::Server::bind(cfg.clone()).await {
            Ok(s) => break s,
            Err(e) => {
                assert!(tokio::time::Instant::now() < deadline, "rebind {addr}: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    let task = tokio::spawn(srv2.run());

    // Resume is refused (new server), so each page joins afresh; the old tile goes and the
    // member's new tile plays.
    let bob_after = one_live_tile(&mut a, "bob", &bob_before).await;
    let alice_after = one_live_tile(&mut b, "alice", &alice_before).await;
    assert_ne!(bob_after, bob_before);
    assert_ne!(alice_after, alice_before);
    playing_advances(&mut a).await;
    playing_advances(&mut b).await;
    // And it stays that way (no late ghost).
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(b.eval(&format!("{TILES}.length")).await, json!(1));
    assert_eq!(a.eval(&format!("{TILES}.length")).await, json!(1));
    let left = a
        .eval("[...document.querySelectorAll('#log li')].map(l => l.textContent)")
        .await;
    assert!(
        !left
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l.as_str().unwrap().contains("bob left")),
        "a lost session is not reported as leaving: {left}"
    );
    a.assert_no_console_errors().await;
    b.assert_no_console_errors().await;
    task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crashed_member_shows_lost_then_its_rejoin_replaces_the_tile() {
    let srv = common::start(common::config()).await;
    let room = "crash";
    let (mut a, _) = open(&srv, room, "alice").await;
    let (b, bob_token) = open(&srv, room, "bob").await;
    let old = one_live_tile(&mut a, "bob", "").await;
    // Let the figures fill, then kill bob's browser (no pagehide, no leave).
    a.wait_for(
        "bob's figures",
        &format!("document.querySelector('.tile[data-peer=\"{old}\"] .stats').textContent.includes('kbit/s')"),
        LONG,
    )
    .await;
    drop(b);
    // Still in presence for the grace period, but its connection is gone: the tile says so and
    // its figures are cleared, not frozen.
    let state = a
        .wait_for(
            "bob's tile to show the lost connection",
            &format!(
                "(() => {{ const t = document.querySelector('.tile[data-peer=\"{old}\"]');
                   const s = t?.querySelector('.state').textContent;
                   return s && t.querySelector('.stats').textContent === '' && s; }})()"
            ),
            LONG,
        )
        .await;
    assert!(
        state == json!("Reconnecting…") || state == json!("Connection lost"),
        "{state}"
    );
    // Bob comes back with the same token: his new tile replaces the old one at once.
    let mut b2 = Browser::launch().await;
    b2.goto(&page_url(srv.addr, room, &bob_token, "bob", true))
        .await;
    let t0 = tokio::time::Instant::now();
    let new = one_live_tile(&mut a, "bob", &old).await;
    assert_ne!(new, old);
    assert!(
        t0.elapsed() < Duration::from_secs(20),
        "the old tile lingered {:?}",
        t0.elapsed()
    );
    let tiles: Value = a.eval(TILES).await;
    assert_eq!(tiles.as_array().unwrap().len(), 1, "{tiles}");
    playing_advances(&mut a).await;
    b2.wait_for(
        "bob sees alice",
        "document.querySelectorAll('.tile[data-kind=camera]:not([data-peer=local])').length === 1",
        LONG,
    )
    .await;
    a.assert_no_console_errors().await;
}
