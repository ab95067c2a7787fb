//! A member without `admin` changing what another made (a move, a point added to a stroke)
//! through a real server: refused, and undone for every member; only a member with `admin`
//! is relayed as the presenter.

mod common;
mod whiteboard_support;

use std::time::Duration;

use common::*;
use gststreamwire::whiteboard::Item;
use streamwire::signalling::client::{Client, ClientConfig, Event};
use streamwire::signalling::protocol::ErrorCode;
use streamwire::whiteboard::Whiteboard;
use whiteboard_support::*;

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
