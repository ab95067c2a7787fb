//! The whiteboard against a real server: members sync one Yjs document through it, a late
//! joiner gets everything at once, the server enforces the `draw` grant and ownership
//! (only the presenter changes what others made), the boards survive a restart (SQLite,
//! with compaction), and boards larger than a member's queue reach late joiners in chunks.
//! What the server refuses of a member's change to others' items: tests/whiteboard_permissions.rs.

mod common;
mod whiteboard_support;

use std::time::Duration;

use common::*;
use gststreamwire::whiteboard::Item;
use streamwire::signalling::client::{Client, ClientConfig, Event};
use streamwire::signalling::protocol::{ErrorCode, Grant};
use streamwire::whiteboard::Whiteboard;
use tokio::sync::mpsc;
use whiteboard_support::*;

#[tokio::test]
async fn members_converge_and_a_late_joiner_gets_the_document_at_once() {
    let srv = start(config()).await;
    let a = member(&srv.url, "wb", "ann", DRAW).await;
    let b = member(&srv.url, "wb", "bob", DRAW).await;
    // The server created the board with its first page.
    assert_eq!(a.board.pages().len(), 1);
    assert_eq!(a.board.pages()[0].id, "p1");
    a.board.draw(&stroke("a1", "", 10.0)).unwrap();
    b.board.draw(&stroke("b1", "", 20.0)).unwrap();
    a.board.draw(&stroke("a2", "", 30.0)).unwrap();
    until_items("a", &a.board, &["a1", "a2", "b1"]).await;
    until_items("b", &b.board, &["a1", "a2", "b1"]).await;
    // Authors are the token's user.
    let authors: Vec<String> = a.board.items(None).into_iter().map(|i| i.author).collect();
    assert_eq!(authors.iter().filter(|x| *x == "ann").count(), 2);
    assert_eq!(authors.iter().filter(|x| *x == "bob").count(), 1);
    // A late joiner is synced (one step-2 answer) with everything, no replay needed.
    let c = member(&srv.url, "wb", "cid", VIEW).await;
    let mut got: Vec<String> = c.board.items(None).into_iter().map(|i| i.id).collect();
    got.sort();
    assert_eq!(got, ["a1", "a2", "b1"]);
    // Identical documents: equal encoded state vectors.
    let deadline = tokio::time::Instant::now() + T;
    while a.board.state_vector() != b.board.state_vector() {
        assert!(tokio::time::Instant::now() < deadline, "a and b differ");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(c.board.state_vector(), a.board.state_vector());
    drop((a.client, b.client, c.client));
}

#[tokio::test]
async fn a_member_without_the_draw_grant_receives_but_cannot_change_the_board() {
    let srv = start(config()).await;
    let a = member(&srv.url, "wb", "ann", DRAW).await;
    let mut v = member(&srv.url, "wb", "vic", VIEW).await;
    a.board.draw(&stroke("a1", "", 10.0)).unwrap();
    until_items("viewer sees a1", &v.board, &["a1"]).await;
    v.board.draw(&stroke("v1", "", 50.0)).unwrap();
    let (code, message, in_type) = next_error(&mut v).await;
    assert_eq!(code, ErrorCode::Forbidden);
    assert_eq!(in_type.as_deref(), Some("whiteboard"));
    assert!(
        message.contains("`draw` or `publish` grant"),
        "reason names the grant: {message}"
    );
    // Nobody else got it: a later stroke of ann arrives at the viewer, v1 never at ann, and a
    // late joiner has only ann's strokes.
    a.board.draw(&stroke("a2", "", 90.0)).unwrap();
    until_items("viewer sees a2", &v.board, &["a1", "a2", "v1"]).await;
    until_items("ann", &a.board, &["a1", "a2"]).await;
    let late = member(&srv.url, "wb", "lia", VIEW).await;
    until_items("late joiner", &late.board, &["a1", "a2"]).await;
    // `publish` implies drawing.
    let p = member(&srv.url, "wb", "pat", &[Grant::Publish]).await;
    p.board.draw(&stroke("p1", "", 120.0)).unwrap();
    until_items("ann sees pat's", &a.board, &["a1", "a2", "p1"]).await;
}

#[tokio::test]
async fn only_the_presenter_changes_what_others_made() {
    let srv = start(config()).await;
    let a = member(&srv.url, "wb", "ann", DRAW).await;
    let mut b = member(&srv.url, "wb", "bob", DRAW).await;
    let t = member(&srv.url, "wb", "tea", PRESENTER).await;
    a.board.draw(&stroke("a1", "", 10.0)).unwrap();
    a.board.draw(&stroke("a2", "", 20.0)).unwrap();
    b.board.draw(&stroke("b1", "", 30.0)).unwrap();
    until_items("bob", &b.board, &["a1", "a2", "b1"]).await;
    // Bob erases ann's stroke: refused, naming why.
    assert_eq!(b.board.remove(&["a1".to_owned()]), 1);
    let (code, message, _) = next_error(&mut b).await;
    assert_eq!(code, ErrorCode::Forbidden);
    assert!(message.contains("user `ann`"), "{message}");
    assert!(message.contains("`admin`"), "{message}");
    // Bob erasing his own stroke is fine.
    assert_eq!(b.board.remove(&["b1".to_owned()]), 1);
    until_items("ann sees b1 gone", &a.board, &["a1", "a2"]).await;
    // The presenter erases ann's stroke.
    until_items("teacher", &t.board, &["a1", "a2"]).await;
    assert_eq!(t.board.remove(&["a2".to_owned()]), 1);
    until_items("ann sees a2 gone", &a.board, &["a1"]).await;
    // The server's copy: a late joiner has a1 only (bob's refused deletion never applied).
    let late = member(&srv.url, "wb", "lia", VIEW).await;
    until_items("late joiner", &late.board, &["a1"]).await;
    assert!(b.errors.try_recv().is_err(), "one refusal only");
}

#[tokio::test]
async fn boards_survive_a_server_restart_with_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("wb.db");
    let cfg = || {
        let mut c = config();
        c.whiteboard.db = Some(db.clone());
        c.whiteboard.compact_after = 4;
        c
    };
    let ids: Vec<String> = (0..10).map(|i| format!("s{i:02}")).collect();
    {
        let srv = start(cfg()).await;
        let a = member(&srv.url, "keep", "ann", DRAW).await;
        for (i, id) in ids.iter().enumerate() {
            a.board.draw(&stroke(id, "", i as f32 * 10.0)).unwrap();
        }
        let a2 = member(&srv.url, "keep", "amy", VIEW).await;
        let want: Vec<&str> = ids.iter().map(String::as_str).collect();
        until_items("before restart", &a2.board, &want).await;
        // Stored: a compacted snapshot plus the updates since (10 updates, compacted every 4).
        assert!(srv.handle.whiteboard_stored_bytes("keep", "main").unwrap() > 0);
        a.client.leave().await;
        a2.client.leave().await;
        srv.handle.shutdown().await;
    }
    let srv = start(cfg()).await;
    let b = member(&srv.url, "keep", "bob", VIEW).await;
    let want: Vec<&str> = ids.iter().map(String::as_str).collect();
    until_items("after restart", &b.board, &want).await;
    // Ownership survives too: bob (draw, not admin) still cannot erase ann's strokes.
    let mut c = member(&srv.url, "keep", "cal", DRAW).await;
    c.board.remove(&["s03".to_owned()]);
    let (code, message, _) = next_error(&mut c).await;
    assert_eq!(code, ErrorCode::Forbidden, "{message}");
    assert!(message.contains("user `ann`"), "{message}");
}

#[tokio::test]
async fn privacy_export_and_delete_cover_the_users_strokes_in_the_callers_room_only() {
    let srv = start(config()).await;
    let a = member(&srv.url, "wb", "ann", DRAW).await;
    let o = member(&srv.url, "other", "ann", DRAW).await;
    let b = member(&srv.url, "wb", "bob", DRAW).await;
    a.board.draw(&stroke("a1", "", 10.0)).unwrap();
    a.board.draw(&stroke("a2", "", 20.0)).unwrap();
    o.board.draw(&stroke("o1", "", 30.0)).unwrap();
    b.board.draw(&stroke("b1", "", 40.0)).unwrap();
    until_items("bob", &b.board, &["a1", "a2", "b1"]).await;
    let late_other = member(&srv.url, "other", "oli", VIEW).await;
    until_items("other room", &late_other.board, &["o1"]).await;
    // The admin of room `wb` asks.
    let mut cfg = ClientConfig::new(&srv.url, "wb", &token("wb", "adm", &[Grant::Admin]));
    cfg.backoff_initial = Duration::from_millis(20);
    let (admin, mut events) = within("admin", Client::connect(cfg)).await.unwrap();
    admin.privacy_export("ann").unwrap();
    let data = within("export", async {
        loop {
            if let Some(Event::PrivacyExport { data, .. }) = events.recv().await {
                return data;
            }
        }
    })
    .await;
    let mut ids: Vec<&str> = data["whiteboard"]
        .as_array()
        .expect("whiteboard items in the export")
        .iter()
        .map(|i| {
            assert_eq!(i["room"], "wb", "only the caller's room: {i}");
            i["id"].as_str().unwrap()
        })
        .collect();
    ids.sort();
    assert_eq!(ids, ["a1", "a2"]);
    admin.privacy_delete("ann").unwrap();
    let strokes = within("delete", async {
        loop {
            if let Some(Event::PrivacyDeleted { strokes, .. }) = events.recv().await {
                return strokes;
            }
        }
    })
    .await;
    assert_eq!(strokes, 2);
    // Removed for every member of `wb`, and from the server's copy; room `other` untouched.
    until_items("bob after delete", &b.board, &["b1"]).await;
    let late = member(&srv.url, "wb", "lia", VIEW).await;
    until_items("late joiner after delete", &late.board, &["b1"]).await;
    let late_other = member(&srv.url, "other", "ola", VIEW).await;
    until_items("other room after delete", &late_other.board, &["o1"]).await;
}

#[tokio::test]
async fn concurrent_drawing_across_dropped_connections_converges() {
    let srv = start(config()).await;
    let proxy = Proxy::start(srv.addr).await;
    let a = member(&proxy.url, "flaky", "ann", DRAW).await;
    let b = member(&proxy.url, "flaky", "bob", DRAW).await;
    let mut want = Vec::new();
    let mut kills = 0;
    for round in 0..5 {
        for i in 0..10 {
            let (ia, ib) = (format!("a{round}-{i}"), format!("b{round}-{i}"));
            // Both draw on the same area at the same time.
            a.board.draw(&stroke(&ia, "", i as f32)).unwrap();
            b.board.draw(&stroke(&ib, "", i as f32)).unwrap();
            want.push(ia);
            want.push(ib);
        }
        // Every connection through the proxy is cut; the clients resume and resend.
        kills += proxy.kill();
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    assert!(kills >= 2, "connections were cut ({kills})");
    want.sort();
    let want: Vec<&str> = want.iter().map(String::as_str).collect();
    until_items("ann", &a.board, &want).await;
    until_items("bob", &b.board, &want).await;
    let late = member(&srv.url, "flaky", "lia", VIEW).await;
    assert_eq!(late.board.items(None).len(), want.len());
    let deadline = tokio::time::Instant::now() + T;
    while a.board.state_vector() != late.board.state_vector()
        || b.board.state_vector() != late.board.state_vector()
    {
        assert!(tokio::time::Instant::now() < deadline, "documents differ");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A stroke of 16 points (about 530 bytes of document).
fn long_stroke(id: &str, i: usize) -> Item {
    let (x, y) = ((i % 1500) as f32, ((i / 1500) % 800) as f32);
    let pts: Vec<[f32; 3]> = (0..16)
        .map(|k| [x + k as f32 * 3.0, y + k as f32 * 2.0, 0.5])
        .collect();
    Item::pen(id, "p1", "", "#1f1f1f", 3.0, &pts)
}

/// Fill the board of `m` with `n` long strokes (updates of 100 strokes, under
/// `max_payload_bytes`), each after `check` applied the one before (so the relayed updates
/// stay within its queue limit, as with a person drawing), and wait until `check` holds them
/// all (then the server does too).
async fn fill(m: &Member, check: &Member, n: usize) {
    let mut changes = check.board.changes();
    for start in (0..n).step_by(100) {
        let batch: Vec<Item> = (start..(start + 100).min(n))
            .map(|i| long_stroke(&format!("s{i}"), i))
            .collect();
        m.board.draw_all(&batch);
        loop {
            let c = tokio::time::timeout(Duration::from_secs(30), changes.recv())
                .await
                .expect("a batch relayed within 30 s")
                .expect("board open");
            if c.remote {
                break;
            }
        }
    }
    assert_eq!(check.board.items(None).len(), n, "the board was filled");
}

/// A raw member (no `Whiteboard`): its whiteboard frames, undecoded.
async fn raw(url: &str, room: &str, user: &str) -> (Client, mpsc::UnboundedReceiver<Vec<u8>>) {
    let (client, mut events) = within(
        "connect",
        Client::connect(ClientConfig::new(url, room, &token(room, user, VIEW))),
    )
    .await
    .unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(ev) = events.recv().await {
            if let Event::Whiteboard { data, .. } = ev {
                let _ = tx.send(data);
            }
        }
    });
    (client, rx)
}

#[tokio::test]
async fn a_board_larger_than_the_queue_limit_reaches_late_joiners_in_chunks() {
    use streamwire::whiteboard::chunk::{Chunk, ChunkAck};
    let cfg = config();
    let queue = cfg.limits.max_queue_bytes;
    let chunk = cfg.whiteboard.sync_chunk_bytes;
    assert_eq!(queue, 4 * 1024 * 1024, "the default queue limit");
    let srv = start(cfg).await;
    let a = member(&srv.url, "big", "ann", DRAW).await;
    let b = member(&srv.url, "big", "bob", VIEW).await;
    fill(&a, &b, 13_000).await;
    let doc = a.board.encode_state().len();
    assert!(
        doc > queue,
        "the document ({doc} bytes) is larger than the queue limit ({queue} bytes)"
    );

    // A late joiner gets it in chunks, while ann keeps drawing.
    let drawing = {
        let board = a.board.clone();
        tokio::spawn(async move {
            for i in 0..50 {
                board
                    .draw(&stroke(&format!("late-{i}"), "", i as f32))
                    .unwrap();
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    let mut cfg = ClientConfig::new(&srv.url, "big", &token("big", "cid", VIEW));
    cfg.backoff_initial = Duration::from_millis(20);
    let (client, mut events) = within("connect", Client::connect(cfg)).await.unwrap();
    let late = Whiteboard::open(&client, "main", "cid").unwrap();
    let (l2, chunks) = (
        late.clone(),
        std::sync::Arc::new(std::sync::Mutex::new(Vec::new())),
    );
    let seen = chunks.clone();
    tokio::spawn(async move {
        while let Some(ev) = events.recv().await {
            if let Event::Whiteboard { data, .. } = ev {
                if let Ok(Some(c)) = Chunk::decode_message(&data) {
                    seen.lock().unwrap().push((c.offset, c.data.len(), c.total));
                }
                l2.receive(&data).unwrap();
            }
        }
    });
    // A debug build on a loaded machine decodes 4.8 MB slowly: more than the usual T.
    tokio::time::timeout(Duration::from_secs(60), late.synced())
        .await
        .expect("late joiner synced within 60 s");
    drawing.await.unwrap();
    let got = chunks.lock().unwrap().clone();
    assert!(
        got.len() >= doc / chunk,
        "{} chunks for a document of {doc} bytes",
        got.len()
    );
    assert!(got.iter().all(|(_, len, _)| *len <= chunk), "{got:?}");
    let total = a.board.items(None).len();
    assert_eq!(total, 13_050);
    until_items_count("late joiner", &late, total).await;
    let deadline = tokio::time::Instant::now() + T;
    while late.state_vector() != a.board.state_vector() {
        assert!(tokio::time::Instant::now() < deadline, "documents differ");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // A member that does not confirm gets two chunks (the window) and no more, and stays;
    // each confirmation lets one more go.
    let (slow, mut frames) = raw(&srv.url, "big", "dan").await;
    slow.send_whiteboard(
        "main",
        yrs::updates::encoder::Encode::encode_v1(&yrs::sync::Message::Sync(
            yrs::sync::SyncMessage::SyncStep1(yrs::StateVector::default()),
        )),
    )
    .unwrap();
    let mut first = Vec::new();
    for _ in 0..2 {
        first.push(within("chunk", frames.recv()).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(frames.try_recv().is_err(), "nothing beyond the window");
    assert_eq!(
        slow.state(),
        streamwire::signalling::client::SignallingState::Connected,
        "the member is still in the room"
    );
    let c = Chunk::decode_message(&first[0]).unwrap().unwrap();
    slow.send_whiteboard(
        "main",
        ChunkAck {
            transfer: c.transfer,
            received: c.data.len(),
        }
        .encode(),
    )
    .unwrap();
    let next = within("next chunk", frames.recv()).await.unwrap();
    let n = Chunk::decode_message(&next).unwrap().unwrap();
    assert_eq!((n.transfer, n.offset), (c.transfer, 2 * chunk));
    drop((a.client, b.client, client, slow));
}

async fn until_items_count(what: &str, board: &Whiteboard, n: usize) {
    let deadline = tokio::time::Instant::now() + T;
    while board.items(None).len() != n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: {} items, expected {n}",
            board.items(None).len()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn sync_chunks_are_fitted_to_the_queue_limit_and_an_impossible_window_is_refused() {
    // A window of 1000 chunks of at least 1 KiB does not fit half of 1 MiB.
    let mut cfg = config();
    cfg.limits.max_queue_bytes = 1024 * 1024;
    cfg.whiteboard.sync_window = 1000;
    match streamwire::server::Server::bind(cfg).await {
        Err(e) => assert!(e.to_string().contains("sync_window"), "{e}"),
        Ok(_) => panic!("1000 chunks do not fit half of a 1 MiB queue"),
    }
    // A 1 MiB queue: smaller chunks, and a board larger than the queue still syncs.
    let mut cfg = config();
    cfg.limits.max_queue_bytes = 1024 * 1024;
    let srv = start(cfg).await;
    let a = member(&srv.url, "small", "ann", DRAW).await;
    let b = member(&srv.url, "small", "bob", VIEW).await;
    fill(&a, &b, 3_000).await;
    assert!(a.board.encode_state().len() > 1024 * 1024);
    let c = member(&srv.url, "small", "cid", VIEW).await;
    let sync = c.board.chunked_sync().expect("the answer came in chunks");
    assert!(sync.bytes / sync.chunks < 256 * 1024, "{sync:?}");
    assert_eq!(c.board.items(None).len(), 3_000);
}
