//! The whiteboard against a real server: members sync one Yjs document through it, a late
//! joiner gets everything at once, the server enforces the `draw` grant and ownership
//! (only the presenter changes what others made), and the boards survive a restart (SQLite,
//! with compaction).

mod common;

use std::time::Duration;

use common::*;
use gststreamwire::whiteboard::Item;
use streamwire::signalling::client::{Client, ClientConfig, Event};
use streamwire::signalling::protocol::{ErrorCode, Grant};
use streamwire::whiteboard::Whiteboard;
use tokio::sync::mpsc;

/// A member with its board open; the client's events are routed to the board, the server's
/// errors to `errors`.
struct Member {
    client: Client,
    board: Whiteboard,
    errors: mpsc::UnboundedReceiver<(ErrorCode, String, Option<String>)>,
}

async fn member(url: &str, room: &str, user: &str, grants: &[Grant]) -> Member {
    let mut cfg = ClientConfig::new(url, room, &token(room, user, grants));
    cfg.backoff_initial = Duration::from_millis(20);
    cfg.backoff_max = Duration::from_millis(200);
    let (client, mut events) = within("connect", Client::connect(cfg)).await.unwrap();
    let board = Whiteboard::open(&client, "main", user).unwrap();
    let (tx, errors) = mpsc::unbounded_channel();
    let b = board.clone();
    tokio::spawn(async move {
        while let Some(ev) = events.recv().await {
            match ev {
                Event::Whiteboard { board, data, .. } if board == "main" => {
                    b.receive(&data).unwrap()
                }
                Event::ServerError {
                    code,
                    message,
                    in_type,
                    ..
                } => {
                    let _ = tx.send((code, message, in_type));
                }
                _ => {}
            }
        }
    });
    within("synced", board.synced()).await;
    Member {
        client,
        board,
        errors,
    }
}

fn stroke(id: &str, author: &str, x: f32) -> Item {
    Item::pen(
        id,
        "p1",
        author,
        "#d00000",
        4.0,
        &[[x, 100.0, 0.5], [x + 50.0, 200.0, 0.5]],
    )
}

/// Wait until `board` holds exactly the items `ids` (sorted), or fail naming what it holds.
async fn until_items(what: &str, board: &Whiteboard, ids: &[&str]) {
    let want: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
    let deadline = tokio::time::Instant::now() + T;
    loop {
        let mut got: Vec<String> = board.items(None).into_iter().map(|i| i.id).collect();
        got.sort();
        if got == want {
            return;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("{what}: board holds {got:?}, expected {want:?}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn next_error(m: &mut Member) -> (ErrorCode, String, Option<String>) {
    within("server error", m.errors.recv()).await.unwrap()
}

const DRAW: &[Grant] = &[Grant::Draw];
const VIEW: &[Grant] = &[Grant::Subscribe];
const PRESENTER: &[Grant] = &[Grant::Draw, Grant::Admin];

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

/// Ann's rectangle with the box `x1, y1, x2, y2`.
fn rect(id: &str, x: f32) -> Item {
    let mut r = stroke(id, "", x);
    r.kind = gststreamwire::whiteboard::Kind::Rect;
    r.points.clear();
    r.bounds = [x, 100.0, x + 80.0, 160.0];
    r
}

/// Set number keys of item `id` in `board`'s own document (sent like any local change).
fn set_keys(board: &Whiteboard, id: &str, keys: &[(&str, f64)]) {
    use yrs::{Map, Out, Transact};
    let items = board.doc().get_or_insert_map("items");
    let mut t = board.doc().transact_mut();
    let Some(Out::YMap(item)) = items.get(&t, id) else {
        panic!("no item {id}");
    };
    for (k, v) in keys {
        item.insert(&mut t, *k, *v);
    }
}

/// Append a point to stroke `id`'s `pts` in `board`'s own document.
fn add_point(board: &Whiteboard, id: &str, p: [f64; 3]) {
    use yrs::{Array, Map, Out, Transact};
    let items = board.doc().get_or_insert_map("items");
    let mut t = board.doc().transact_mut();
    let Some(Out::YMap(item)) = items.get(&t, id) else {
        panic!("no item {id}");
    };
    let Some(Out::YArray(pts)) = item.get(&t, "pts") else {
        panic!("{id} has no pts");
    };
    for v in p {
        pts.push_back(&mut t, v);
    }
}

/// Item `id` as `board` holds it.
fn item(board: &Whiteboard, id: &str) -> Item {
    board
        .items(None)
        .into_iter()
        .find(|i| i.id == id)
        .unwrap_or_else(|| panic!("no item {id}"))
}

/// Wait until `cond` holds on `board`, or fail naming `what` and the item.
async fn until_item(what: &str, board: &Whiteboard, id: &str, cond: impl Fn(&Item) -> bool) {
    let deadline = tokio::time::Instant::now() + T;
    loop {
        let i = item(board, id);
        if cond(&i) {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "{what}: {i:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Wait until every board holds the same document: equal state vectors and equal items.
async fn until_converged(what: &str, boards: &[&Whiteboard]) {
    let deadline = tokio::time::Instant::now() + T;
    loop {
        let first = (boards[0].state_vector(), boards[0].items(None));
        if boards[1..]
            .iter()
            .all(|b| (b.state_vector(), b.items(None)) == first)
        {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: documents differ: {:?}",
            boards.iter().map(|b| b.items(None)).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_member_cannot_move_or_draw_on_what_another_made_and_the_change_is_undone_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("wb.db");
    let cfg = || {
        let mut c = config();
        c.whiteboard.db = Some(db.clone());
        c
    };
    {
        let srv = start(cfg()).await;
        let mut a = member(&srv.url, "wb", "ann", DRAW).await;
        let mut b = member(&srv.url, "wb", "bob", DRAW).await;
        let mut t = member(&srv.url, "wb", "tea", PRESENTER).await;
        a.board.draw(&rect("ar", 10.0)).unwrap();
        a.board.draw(&stroke("as", "", 200.0)).unwrap();
        b.board.draw(&stroke("bs", "", 400.0)).unwrap();
        until_items("bob", &b.board, &["ar", "as", "bs"]).await;
        until_items("teacher", &t.board, &["ar", "as", "bs"]).await;

        let unmoved = item(&a.board, "ar");
        assert_eq!(unmoved.offset, [0.0, 0.0]);
        // Bob's first move of ann's rectangle (only adds `dx`, `dy`): refused, naming why.
        set_keys(&b.board, "ar", &[("dx", 40.0), ("dy", 30.0)]);
        assert_eq!(item(&b.board, "ar").offset, [40.0, 30.0], "applied locally");
        let (code, message, in_type) = next_error(&mut b).await;
        assert_eq!(code, ErrorCode::Forbidden, "{message}");
        assert_eq!(in_type.as_deref(), Some("whiteboard"));
        assert!(message.contains("user `ann`"), "{message}");
        assert!(message.contains("`admin`"), "{message}");
        // Undone on bob too; everyone holds the same document, ann's rectangle unmoved.
        until_item("bob's copy undone", &b.board, "ar", |i| {
            i.offset == [0.0, 0.0]
        })
        .await;
        until_converged("after the move", &[&a.board, &b.board, &t.board]).await;
        assert_eq!(item(&a.board, "ar"), unmoved);
        assert_eq!(item(&b.board, "ar"), unmoved);

        // Bob draws on ann's stroke (a point appended to its `pts`): refused likewise.
        add_point(&b.board, "as", [300.0, 300.0, 0.5]);
        assert_eq!(item(&b.board, "as").points.len(), 3, "applied locally");
        let (code, message, _) = next_error(&mut b).await;
        assert_eq!(code, ErrorCode::Forbidden, "{message}");
        assert!(message.contains("user `ann`"), "{message}");
        until_item("bob's copy undone", &b.board, "as", |i| i.points.len() == 2).await;
        until_converged("after the point", &[&a.board, &b.board, &t.board]).await;
        assert_eq!(item(&t.board, "as").points.len(), 2);

        // Their own items: bob moves his stroke, ann moves her rectangle and extends her
        // stroke; the presenter moves ann's stroke. All accepted.
        set_keys(&b.board, "bs", &[("dx", 5.0), ("dy", 6.0)]);
        set_keys(&a.board, "ar", &[("dx", 7.0), ("dy", 8.0)]);
        add_point(&a.board, "as", [250.0, 260.0, 0.5]);
        until_item("teacher sees ann's stroke", &t.board, "as", |i| {
            i.points.len() == 3
        })
        .await;
        set_keys(&t.board, "as", &[("dx", 9.0), ("dy", 10.0)]);
        // Bob's next own stroke follows the refused clocks: it reaches everyone.
        b.board.draw(&stroke("b2", "", 500.0)).unwrap();
        until_items("ann", &a.board, &["ar", "as", "b2", "bs"]).await;
        until_converged("after the own changes", &[&a.board, &b.board, &t.board]).await;
        assert_eq!(item(&a.board, "bs").offset, [5.0, 6.0]);
        assert_eq!(item(&b.board, "ar").offset, [7.0, 8.0]);
        assert_eq!(item(&b.board, "as").offset, [9.0, 10.0]);
        assert_eq!(item(&b.board, "as").points.len(), 3);
        // A late joiner gets the same document from the server.
        let late = member(&srv.url, "wb", "lia", VIEW).await;
        until_converged("late joiner", &[&a.board, &late.board]).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(b.errors.try_recv().is_err(), "two refusals only");
        assert!(a.errors.try_recv().is_err(), "ann: no refusal");
        assert!(t.errors.try_recv().is_err(), "teacher: no refusal");
        for m in [a, b, t, late] {
            m.client.leave().await;
        }
        srv.handle.shutdown().await;
    }
    // What was stored (the undone changes with them) reads back the same after a restart.
    let srv = start(cfg()).await;
    let late = member(&srv.url, "wb", "lia", VIEW).await;
    until_items("after restart", &late.board, &["ar", "as", "b2", "bs"]).await;
    assert_eq!(item(&late.board, "ar").offset, [7.0, 8.0]);
    assert_eq!(item(&late.board, "as").offset, [9.0, 10.0]);
    assert_eq!(item(&late.board, "as").points.len(), 3);
}

/// One awareness message: Yjs client `client` announces `state`.
fn awareness(client: u64, state: &str) -> Vec<u8> {
    use yrs::sync::Message;
    use yrs::sync::awareness::{AwarenessUpdate, AwarenessUpdateEntry};
    use yrs::updates::encoder::Encode;
    let entry = AwarenessUpdateEntry {
        clock: 1,
        json: state.into(),
    };
    Message::Awareness(AwarenessUpdate {
        clients: [(yrs::ClientID::new(client), entry)].into(),
    })
    .encode_v1()
}

#[tokio::test]
async fn only_a_member_with_admin_is_relayed_as_the_presenter() {
    use yrs::sync::Message;
    use yrs::updates::decoder::Decode;
    let srv = start(config()).await;
    let a = member(&srv.url, "wb", "ann", DRAW).await;
    let t = member(&srv.url, "wb", "tea", PRESENTER).await;
    // A listener that keeps the awareness states it hears, by Yjs client id.
    let cfg = ClientConfig::new(&srv.url, "wb", &token("wb", "lis", VIEW));
    let (listener, mut events) = within("listener", Client::connect(cfg)).await.unwrap();
    let mut heard = async |client: u64| -> serde_json::Value {
        loop {
            let Some(ev) = events.recv().await else {
                panic!("listener closed");
            };
            if let Event::Whiteboard { data, .. } = ev
                && let Ok(Message::Awareness(u)) = Message::decode_v1(&data)
                && let Some(e) = u.clients.get(&yrs::ClientID::new(client))
            {
                return serde_json::from_str(&e.json).unwrap();
            }
        }
    };
    // Ann (no `admin`) claims to be the presenter: relayed with `presenter: false`, the rest
    // unchanged.
    a.client
        .send_whiteboard(
            "main",
            awareness(
                11,
                r#"{"user":"ann","page":"p2","laser":null,"presenter":true}"#,
            ),
        )
        .unwrap();
    let got = within("ann's state", heard(11)).await;
    assert_eq!(
        got,
        serde_json::json!({"user": "ann", "page": "p2", "laser": null, "presenter": false})
    );
    // Any truthy claim is withdrawn too.
    a.client
        .send_whiteboard("main", awareness(11, r#"{"user":"ann","presenter":1}"#))
        .unwrap();
    assert_eq!(within("ann's", heard(11)).await["presenter"], false);
    // The presenter's claim is relayed as sent.
    t.client
        .send_whiteboard(
            "main",
            awareness(22, r#"{"user":"tea","page":"p3","presenter":true}"#),
        )
        .unwrap();
    let got = within("teacher's state", heard(22)).await;
    assert_eq!(got["presenter"], true);
    assert_eq!(got["page"], "p3");
    drop(listener);
}
